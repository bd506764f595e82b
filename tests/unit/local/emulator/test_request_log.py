"""The emulator's request log (thingpress_cli/local/emulator/request_log.py): every request, its time, the slow ones."""

from __future__ import annotations

import threading

import pytest

from thingpress_cli.local.emulator.request_log import RequestLog

SIGNED = "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/{service}/aws4_request, SignedHeaders=host"


class Clock:
    def __init__(self) -> None:
        self.now = 1_796_524_000.0

    def __call__(self) -> float:
        return self.now


def environ(service: str, method: str = "POST", path: str = "/", target: str | None = None) -> dict:
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_AUTHORIZATION": SIGNED.format(service=service)}
    if target:
        env["HTTP_X_AMZ_TARGET"] = target
    return env


def lines(log: RequestLog) -> list[list[str]]:
    log.flush()
    return [line.split("\t") for line in log.path.read_text().splitlines()]


def test_each_request_is_logged_with_its_time_status_service_and_operation(tmp_path):
    clock = Clock()

    def app(env, start_response):
        clock.now += 0.0125  # the request takes 12.5 ms
        start_response("200 OK", [])
        return [b"{}"]

    log = RequestLog(app, tmp_path / "requests.log", clock=clock)
    assert log(environ("dynamodb", target="DynamoDB_20120810.TransactWriteItems"), lambda *a: None) == [b"{}"]
    log(environ("lambda", path="/2015-03-31/functions"), lambda *a: None)

    assert [row[1:] for row in lines(log)] == [
        ["12.5ms", "200", "dynamodb", "TransactWriteItems"],
        ["12.5ms", "200", "lambda", "POST /2015-03-31/functions"]]
    assert lines(log)[0][0] == "2026-12-06T02:26:40.000Z"
    assert log.in_flight == {}


def test_a_request_that_raises_is_logged_and_still_raises(tmp_path):
    def app(env, start_response):
        raise RuntimeError("moto failed")

    log = RequestLog(app, tmp_path / "requests.log", clock=Clock())
    with pytest.raises(RuntimeError):
        log(environ("iot", "PUT", "/things/a"), lambda *a: None)
    assert [row[2:] for row in lines(log)] == [["EXC", "iot", "PUT /things/a"]]


def test_a_request_that_hangs_is_reported_while_it_hangs(tmp_path):
    clock, entered, release = Clock(), threading.Event(), threading.Event()

    def app(env, start_response):
        entered.set()
        release.wait(10)
        start_response("201 Created", [])
        return [b""]

    log = RequestLog(app, tmp_path / "requests.log", clock=clock, slow_seconds=10)
    worker = threading.Thread(target=log, args=(environ("lambda", path="/2015-03-31/functions"), lambda *a: None))
    worker.start()
    assert entered.wait(5)
    clock.now += 9
    assert log.report_slow() == 0
    clock.now += 21

    assert log.report_slow() == 1
    assert [row[1:] for row in lines(log)] == [
        ["STILL RUNNING after 30 s", "-", "lambda", "POST /2015-03-31/functions"]]
    release.set()
    worker.join(5)
    assert [row[1:3] for row in lines(log)][-1] == ["30000.0ms", "201"]


def test_the_requests_thread_writes_nothing_and_the_watcher_writes_the_lines(tmp_path, monkeypatch):
    """A request's thread only queues its line (a write there gives up the GIL, then waits for it
    behind the busy threads); the watcher writes it within FLUSH_SECONDS."""
    from thingpress_cli.local.emulator import request_log

    def app(env, start_response):
        start_response("200 OK", [])
        return [b"{}"]

    log = RequestLog(app, tmp_path / "requests.log")
    log(environ("iot", "GET", "/things/a"), lambda *a: None)
    assert log.path.read_text() == ""
    monkeypatch.setattr(request_log, "FLUSH_SECONDS", 0.05)
    log.watch()
    deadline = threading.Event()
    for _ in range(100):
        if log.path.read_text():
            break
        deadline.wait(0.02)
    assert [row[2:] for row in (line.split("\t") for line in log.path.read_text().splitlines())] == [
        ["200", "iot", "GET /things/a"]]


def test_the_file_is_rotated_at_its_size_keeping_the_one_before(tmp_path):
    """Appended to across emulator runs, the log would grow without bound: at ``max_bytes`` it becomes
    ``requests.log.1`` (replacing the older one) and a new file starts."""
    def app(env, start_response):
        start_response("200 OK", [])
        return [b"{}"]

    path = tmp_path / "requests.log"
    path.write_text("an earlier run's line\n")
    log = RequestLog(app, path, clock=Clock(), max_bytes=200)
    for n in range(10):  # 55 bytes a line: rotated after t03 (with the earlier line), and again after t07
        log(environ("iot", "GET", f"/things/t{n:02d}"), lambda *a: None)
        log.flush()

    assert log.rotated == tmp_path / "requests.log.1"
    assert [row[4] for row in lines(log)] == ["GET /things/t08", "GET /things/t09"]
    assert [line.split("\t")[4] for line in log.rotated.read_text().splitlines()] == [
        "GET /things/t04", "GET /things/t05", "GET /things/t06", "GET /things/t07"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requests.log", "requests.log.1"]
