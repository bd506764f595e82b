"""What ``make chaos`` counts: effective kills (thingpress_cli.harness.chaos_kills) and the most chains at once
(thingpress_cli.harness.chaos_checks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from thingpress_cli.harness import chaos_checks, chaos_kills

ENDPOINT = "http://127.0.0.1:1"  # no emulator: only the environment of these processes matters


def _line(mid: str, request: str, second: float, message: str = "sent") -> dict:
    whole, fraction = divmod(second, 1)
    return {"manifest_id": mid, "function_request_id": request, "message": message,
            "timestamp": f"2026-12-05 10:00:{int(whole):02d},{int(fraction * 1000):03d}+0000"}


def test_max_chains_counts_invocations_at_work_on_one_manifest_at_once():
    lines = [_line("m1", "a", 0, "manifest taken"), _line("m1", "a", 5), _line("m1", "a", 6, "manifest let go"),
             _line("m1", "b", 7, "manifest taken"), _line("m1", "b", 8, "manifest let go"),
             _line("m2", "c", 1, "manifest taken"), _line("m2", "d", 2, "manifest taken"),
             _line("m2", "c", 3, "manifest let go"), _line("m2", "d", 4, "manifest let go"),
             _line("other", "e", 1, "manifest taken"), _line("other", "f", 1.5, "manifest taken"),
             _line("m1", "g", 2)]  # lines of an invocation that took nothing do not count

    assert chaos_checks.max_chains(iter(lines), {"m1"}) == 1  # one after the other
    assert chaos_checks.max_chains(iter(lines), {"m1", "m2"}) == 2  # c and d overlapped on m2


def _sleeper(function: str) -> subprocess.Popen:
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": function, "AWS_ENDPOINT_URL": ENDPOINT}
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    for _ in range(100):  # until it has exec'd (its environment was the parent's until then)
        if process.pid in chaos_kills.worker_pids(function, ENDPOINT):
            return process
        time.sleep(0.02)
    raise AssertionError("the sleeper never showed up as a worker")


def test_only_a_worker_in_an_invocation_is_killed_and_its_kill_is_effective(tmp_path):
    idle, busy = _sleeper("chaos-test-idle"), _sleeper("chaos-test-busy")
    try:
        (tmp_path / str(busy.pid)).write_text("request-1")
        rng = chaos_kills.random.Random(1)

        assert chaos_kills.kill_one(["chaos-test-idle"], rng, ENDPOINT, busy_dir=tmp_path) == (None, False)
        assert chaos_kills.kill_one(["chaos-test-idle", "chaos-test-busy"], rng, ENDPOINT,
                                    busy_dir=tmp_path) == ("chaos-test-busy", True)

        assert busy.wait(5) == -9 and idle.poll() is None
        assert not (tmp_path / str(busy.pid)).exists()  # the dead worker's file is cleared
    finally:
        for process in (idle, busy):
            process.kill()
            process.wait()


def test_a_kill_that_lands_after_the_invocation_ended_is_not_effective(tmp_path, monkeypatch):
    worker = _sleeper("chaos-test-finishing")
    marker = tmp_path / str(worker.pid)
    marker.write_text("request-2")
    real_kill = os.kill

    def finishes_first(pid: int, sig: int) -> None:
        marker.unlink()  # the invocation ended (the worker removed its file) just before the signal
        real_kill(pid, sig)

    monkeypatch.setattr(chaos_kills.os, "kill", finishes_first)
    try:
        assert chaos_kills.kill_one(["chaos-test-finishing"], chaos_kills.random.Random(1), ENDPOINT,
                                    busy_dir=tmp_path) == ("chaos-test-finishing", False)
    finally:
        worker.kill()
        worker.wait()
