"""``thingpress status`` and ``upload --wait`` with a STALLED manifest."""

from __future__ import annotations

import argparse
import json
from typing import Any

from thingpress.audit.states import COMPLETE, STALLED
from thingpress_cli.commands.status import cmd_status
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.summaries import wait_all

REASON = ("parsed, but 3 of 12 entries have no outcome (outstanding 3) and no import message remains "
          "(import queue and dead-letter queue empty); no progress since 2026-12-01T00:00:00Z")
STALLED_ROW = {"manifest_id": "generated-abc", "vendor": "generated", "state": STALLED, "entries": 12,
               "imported": 9, "queued": 12, "outstanding": 3, "parse_done": True, "reason": REASON,
               "started_at": "2026-11-30T23:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
               "stalled_at": "2026-12-01T01:00:00Z"}


class FakeTable:
    table = "audit"

    def __init__(self, rows: dict[str, dict[str, Any]]):
        self.rows = rows

    def get_summary(self, mid: str) -> dict[str, Any] | None:
        return self.rows.get(mid)


class FakeDeployment:
    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def audit_table(self) -> FakeTable:
        return FakeTable({r["manifest_id"]: r for r in self.rows})

    def manifest_summaries(self) -> list[dict[str, Any]]:
        return self.rows


def status(monkeypatch, capsys, *, json_out: bool, manifest: str | None = None) -> str:
    monkeypatch.setattr(Deployment, "from_args", classmethod(lambda cls, args: FakeDeployment([STALLED_ROW])))
    monkeypatch.setenv("COLUMNS", "400")
    args = argparse.Namespace(command="status", manifest=manifest, json=json_out, watch=False, outputs=None, env=None)
    assert cmd_status(args) == 0
    return capsys.readouterr().out


def test_status_shows_stalled_with_its_reason(monkeypatch, capsys):
    out = status(monkeypatch, capsys, json_out=False)
    (row,) = [line for line in out.splitlines() if "generated-abc" in line]
    assert "STALLED" in row and "parsed, but 3 of 12 entries have no outcome" in row


def test_status_json_says_stalled_and_not_complete(monkeypatch, capsys):
    (view,) = json.loads(status(monkeypatch, capsys, json_out=True))
    assert (view["state"], view["stalled"], view["complete"], view["reason"]) == (STALLED, True, False, REASON)
    assert (view["stalled_at"], view["updated_at"]) == ("2026-12-01T01:00:00Z", "2026-12-01T00:00:00Z")


def test_waiting_ends_at_stalled_instead_of_timing_out():
    rows = wait_all(FakeDeployment([STALLED_ROW]), ["generated-abc"], timeout=0, show_progress=False)
    assert rows["generated-abc"]["state"] == STALLED


def test_the_wait_between_reads_can_be_a_function_of_the_meters():
    rows = {"generated-abc": {**STALLED_ROW, "state": "IMPORTING", "imported": 3}}
    seen, slept = [], []

    def interval(meters):
        seen.append(meters["generated-abc"].finished)
        rows["generated-abc"] = STALLED_ROW  # done at the next read
        return 0.25

    class Deployment_(FakeDeployment):
        def audit_table(self) -> FakeTable:
            return FakeTable(rows)

    got = wait_all(Deployment_([]), ["generated-abc"], timeout=60, show_progress=False, interval=interval,
                   sleep=slept.append)
    assert (seen, slept, got["generated-abc"]["state"]) == ([3], [0.25], STALLED)


def test_status_json_says_whether_the_completion_event_was_sent(monkeypatch, capsys):
    lost = {**STALLED_ROW, "state": COMPLETE, "completion_event": "FAILED",
            "completion_event_error": "AccessDeniedException: not authorized"}
    monkeypatch.setattr(Deployment, "from_args", classmethod(lambda cls, args: FakeDeployment([lost])))
    args = argparse.Namespace(command="status", manifest=None, json=True, watch=False, outputs=None, env=None)
    assert cmd_status(args) == 0
    (view,) = json.loads(capsys.readouterr().out)
    assert (view["completion_event"], view["completion_event_error"]) == (
        "FAILED", "AccessDeniedException: not authorized")
