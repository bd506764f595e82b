"""``upload --wait``, ``status [--watch]`` and ``report`` against in-process AWS."""

from __future__ import annotations

import io
import json

import factories
import pytest
from rich.console import Console

from thingpress.audit.table import AuditTable
from thingpress_cli.commands import report
from thingpress_cli.core import summaries
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.progress import Display, Meter, duration, short_id
from thingpress_cli.main import main


class FakeTime:
    """A clock that only moves when ``sleep`` is called; each sleep runs ``step`` (the pipeline's work)."""

    def __init__(self, step=lambda: None):
        self.now = 1000.0
        self.step = step

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.step()


def test_meter_rate_and_time_left():
    t = FakeTime()
    meter = Meter("generated-0123456789abcdef0123", clock=t.clock)
    meter.update({"state": "PARSING", "entries": 40, "imported": 0})
    assert (meter.total, meter.rate, meter.left) == (None, None, None)
    t.now += 2
    meter.update({"state": "QUEUED", "entries": 100, "parse_done": True, "imported": 10, "rejected": 2})
    assert (meter.finished, meter.total, meter.rate) == (12, 100, 6.0)
    assert meter.left == pytest.approx(88 / 6)
    assert meter.plain() == "generated-01234567 QUEUED 12/100 certificates, 6.0/s, 15s left"
    # the rate is measured over the last WINDOW seconds only
    for _ in range(10):
        t.now += 2
        meter.update({"state": "QUEUED", "entries": 100, "parse_done": True, "imported": meter.finished + 1})
    assert meter.rate == pytest.approx(0.5)
    meter.update({"state": "COMPLETE", "entries": 100, "parse_done": True, "imported": 100})
    assert (meter.done, meter.left) == (True, 0.0)


def test_short_id_and_duration():
    assert short_id("espressif-89abcdef0123456789ab") == "espressif-89abcdef"
    assert [duration(s) for s in (None, 4.4, 187, 3725)] == ["-", "4s", "3m07s", "1h02m"]


@pytest.mark.parametrize("width", [80, 100])
def test_terminal_progress_fits_the_width(width):
    mids = [f"{v}-0123456789abcdef0123" for v in ("microchip", "infineon", "espressif", "generated")]
    labels = {mid: short_id(mid) for mid in mids}
    labels[mids[0]] = "microchip: ECC608C-TNGTLSU-B.json (a long demo label)"
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    t = FakeTime()
    meters = {mid: Meter(mid, clock=t.clock) for mid in mids}
    with Display(labels, console=console, clock=t.clock) as display:
        for seconds in (0, 3):
            t.now += seconds
            for m in meters.values():
                m.update({"state": "QUEUED", "entries": 123456, "parse_done": True, "imported": 1000 * (seconds + 1)})
            display.show(meters)
        check = Console(file=io.StringIO(), width=width, record=True, color_system=None)
        check.print(display.renderable())
    lines = check.export_text().splitlines()
    assert len(lines) == 4 and all(len(line) <= width for line in lines)
    assert "generated-01234567" in lines[3] and "4000/123456" in lines[3] and "1000.0/s" in lines[3]
    assert "1m59s left" in lines[3]  # (123456 - 4000) / 1000 per second


def _pipeline_clock(cloud, monkeypatch, per_step: int):
    """``summaries``' clock and sleep: every sleep imports ``per_step`` certificates (the provider runs first)."""
    pending: list = []
    real_upload = Deployment.upload

    def upload(self, *args, **kwargs):
        uploaded = real_upload(self, *args, **kwargs)
        pending.append(uploaded)
        return uploaded

    def step():
        while pending:
            cloud.provide(pending.pop())
        cloud.import_some(per_step)

    t = FakeTime(step)
    monkeypatch.setattr(Deployment, "upload", upload)
    monkeypatch.setattr(summaries, "CLOCK", t.clock)
    monkeypatch.setattr(summaries, "SLEEP", t.sleep)
    return t


def test_upload_wait_prints_a_plain_line_every_few_seconds_when_not_a_terminal(cloud, tmp_path, capsys, monkeypatch):
    _pipeline_clock(cloud, monkeypatch, per_step=1)
    path = tmp_path / "twelve.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(12, prefix="Wait-")) + b"!!\n")
    assert main(["upload", str(path), "--wait"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    # polls every 0.5 s and imports 1 certificate per poll (2/s); a line every 5 s (10 polls) and the last one
    assert lines[0].endswith("WAITING 0/? certificates, -, - left")
    assert " QUEUED 11/13 certificates, 2.2/s, 1s left" in lines[1]  # 10 imported + 1 refused in 5 s
    assert "QUEUED 13/13" not in captured.err
    assert "COMPLETE 13/13 certificates, " in lines[-1] and lines[-1].endswith("/s, 0s left")
    assert all(line.startswith("generated-") for line in lines) and len(lines) == 3
    table = [line for line in captured.out.splitlines() if not line.startswith("{")]  # in-process provider logs
    assert any("COMPLETE" in line for line in table) and all(len(line) <= 80 for line in table)


def test_status_watch_follows_every_unfinished_manifest(cloud, tmp_path, capsys, monkeypatch):
    t = _pipeline_clock(cloud, monkeypatch, per_step=1)
    for name in ("a.txt", "b.txt"):
        path = tmp_path / name
        path.write_bytes(factories.generated_manifest(factories.devices(3, prefix=f"Watch-{name[0]}-")))
        assert main(["upload", str(path)]) == 0
    t.step()  # both provided, one certificate imported
    capsys.readouterr()
    assert main(["status", "--watch", "--json"]) == 0
    views = json.loads(capsys.readouterr().out)
    assert [(v["state"], v["imported"]) for v in views] == [("COMPLETE", 3), ("COMPLETE", 3)]


def _refused_and_done(cloud, tmp_path):
    good = tmp_path / "good.txt"
    good.write_bytes(factories.generated_manifest(factories.devices(3, prefix="Status-")) + b"!!\n")
    done = cloud.run(good)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"")
    refused = cloud.deployment.upload(bad)
    cloud.provide(refused)
    return done, refused.manifest_id


def test_status_fits_80_columns_with_short_ids_and_cut_reasons(cloud, tmp_path, capsys):
    done, refused = _refused_and_done(cloud, tmp_path)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if not line.startswith("{")]  # in-process provider logs
    assert all(len(line) <= 80 for line in lines), out
    row = next(line for line in lines if line.startswith(short_id(done)))
    assert row.split() == [short_id(done), "COMPLETE", "4", "0", "4", "3", "0"]
    assert lines[1].split() == ["manifest", "state", "total", "queued", "done", "imported", "failed", "reason"]
    refused_row = next(line for line in lines if line.startswith(short_id(refused)))
    assert "REFUSED" in refused_row and refused_row.endswith("…")
    assert refused_row.split()[7].startswith("generat")  # the reason without its s3://... object prefix
    full = cloud.audit.get_summary(refused)["reason"]
    assert len(full) > 30
    # under the table, the cut reason in full (without the object prefix the id names), wrapped to 80 columns
    under = lines[lines.index(refused_row) + 1:] if lines.index(refused_row) > lines.index(row) else \
        lines[lines.index(row) + 1:]
    assert " ".join(" ".join(under).split()) == f"{short_id(refused)}: {full.split('): ', 1)[1]}"
    assert main(["status", short_id(refused), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reason"] == full


def test_prefixes_resolve_or_name_the_candidates(cloud, tmp_path, capsys):
    done, refused = _refused_and_done(cloud, tmp_path)
    assert main(["report", "generated-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("thingpress report: manifest id prefix generated- is ambiguous: ")
    assert done in err and refused in err
    assert main(["report", "generated-", "--format", "json"]) == 2  # the error as the JSON document
    assert json.loads(capsys.readouterr().out)["error"]["message"].startswith("manifest id prefix generated-")
    assert main(["report", short_id(done), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 4
    assert main(["status", "generated-zzz"]) == 2
    assert capsys.readouterr().err.startswith("thingpress status: no manifest generated-zzz in audit table")


class QueryRecorder:
    """The DynamoDB client, each Query's arguments shown to ``seen`` first."""

    def __init__(self, real, seen):
        self.real, self.seen = real, seen

    def __getattr__(self, name):
        return getattr(self.real, name)

    def query(self, **kwargs):
        self.seen(kwargs)
        return self.real.query(**kwargs)


def test_report_streams_one_page_at_a_time(cloud, tmp_path, capsys, monkeypatch):
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(5, prefix="Report-")) + b"!!\n")
    mid = cloud.run(path)
    events: list[str] = []

    def seen(kwargs):
        # not the id's lookup: a summary read (AuditTable.summary_items) or the by_state index
        if "BETWEEN" not in kwargs["KeyConditionExpression"] and "IndexName" not in kwargs:
            events.append(f"query limit={kwargs.get('Limit')}")

    class Out(io.StringIO):
        def write(self, text):
            if text.strip():
                events.append("row")
            return super().write(text)

    monkeypatch.setattr(report, "REPORT_PAGE", 2)
    recorder = QueryRecorder(cloud.dynamodb, seen)
    monkeypatch.setattr(Deployment, "audit_table", lambda self: AuditTable(recorder, self.outputs.audit_table_name))
    out = Out()
    monkeypatch.setattr(report.sys, "stdout", out)
    assert main(["report", short_id(mid)]) == 0
    # header, then rows interleaved with the pages they came from (2 rows per page)
    assert events[:6] == ["row", "query limit=2", "row", "row", "query limit=2", "row"]
    rows = out.getvalue().splitlines()
    assert rows[0] == ",".join(report.REPORT_FIELDS) and len(rows) == 7
    assert sorted(r.split(",")[3] for r in rows[1:]) == ["IMPORTED"] * 5 + ["REJECTED"]
    monkeypatch.setattr(report.sys, "stdout", io.StringIO())
    assert main(["report", mid, "--format", "json"]) == 0
    assert len(json.loads(report.sys.stdout.getvalue())) == 6


def test_report_into_a_closed_pipe_ends_quietly(cloud, tmp_path, capsys, monkeypatch):
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(3, prefix="Pipe-")))
    mid = cloud.run(path)

    class ClosedAfterHeader(io.StringIO):
        def write(self, text):
            if self.getvalue():
                raise BrokenPipeError(32, "Broken pipe")
            return super().write(text)

    out = ClosedAfterHeader()
    monkeypatch.setattr(report.sys, "stdout", out)
    assert main(["report", mid]) == 0
    assert out.getvalue() == ",".join(report.REPORT_FIELDS) + "\n"


def test_status_shows_queued_done_and_total_of_a_large_manifest_in_80_columns():
    """Under backpressure a million-entry manifest has a window queued: total = queued + done."""
    import io

    from rich.console import Console

    from thingpress_cli.core.summaries import print_summary_table, summary_view

    row = {"manifest_id": "microchip-0123456789abcdef0123", "state": "PARSING", "entries": 1_000_000,
           "queued": 998_000, "outstanding": 6_000, "imported": 990_000, "already_present": 1_000, "rejected": 2_000,
           "failed": 1_000, "duplicates": 0}
    view = summary_view(row)
    assert (view["outstanding"], view["finished"]) == (6_000, 994_000)
    out = io.StringIO()
    print_summary_table([view], console=Console(file=out, width=80))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), out.getvalue()
    assert next(line for line in lines if line.startswith("microchip-")).split() == [
        "microchip-01234567", "PARSING", "1000000", "6000", "994000", "990000", "1000"]


def test_report_streams_the_results_file_once_written_and_the_table_when_asked(cloud, tmp_path, capsys, monkeypatch):
    from thingpress.results.writer import ResultsWriter

    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(4, prefix="Results-")) + b"!!\n")
    mid = cloud.run(path)
    capsys.readouterr()  # the in-process provider's logs
    assert main(["report", mid, "--from-results"]) == 2  # not written yet: said at once, nothing printed
    captured = capsys.readouterr()
    assert captured.out == "" and "no results file s3://" in captured.err and "--from-table" in captured.err
    assert main(["report", mid]) == 0  # not written yet: the table
    from_table = capsys.readouterr()
    assert "from s3://" not in from_table.err

    ResultsWriter(cloud.s3, cloud.audit, cloud.deployment.outputs.bucket_name).write(mid)
    capsys.readouterr()  # the writer's log
    assert main(["status", mid, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"] == {
        "results_key": f"results/{mid}/results.jsonl", "errors_key": f"results/{mid}/errors.jsonl", "lines": 5,
        "errors": 1}
    queries: list[dict] = []

    recorder = QueryRecorder(cloud.dynamodb, queries.append)
    monkeypatch.setattr(Deployment, "audit_table", lambda self: AuditTable(recorder, self.outputs.audit_table_name))
    assert main(["report", mid]) == 0
    from_results = capsys.readouterr()
    assert from_results.out == from_table.out  # the same records, columns and order
    assert f"from s3://{cloud.deployment.outputs.bucket_name}/results/{mid}/results.jsonl" in from_results.err
    assert queries and all("BETWEEN" in q["KeyConditionExpression"] for q in queries)  # summaries, no entry rows
    rows = from_results.out.splitlines()
    assert rows[0] == ",".join(report.REPORT_FIELDS) and len(rows) == 6
    assert sorted(r.split(",")[3] for r in rows[1:]) == ["IMPORTED"] * 4 + ["REJECTED"]
    assert main(["report", mid, "--from-table", "--format", "json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main(["report", mid, "--from-results", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == as_json
