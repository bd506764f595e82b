"""bench_status.py (issue 25: ``thingpress status`` at 1,000,000 certificate rows within 2 s) runs end
to end on a small table, writes its figure where ``make bench`` reads it, and fails naming a missed goal."""

from __future__ import annotations

import json

import bench_status
import goals
import pytest
import run_all

from aws_fixtures import FAKE_CREDENTIALS


@pytest.fixture
def environment(monkeypatch):
    """The variables the benchmark sets, restored after the test."""
    for name, value in {**FAKE_CREDENTIALS, **bench_status.CREDENTIALS, "COLUMNS": "80"}.items():
        monkeypatch.setenv(name, value)


def test_a_small_table_is_timed_and_its_figure_written(environment, tmp_path, capsys):
    written = tmp_path / "bench-status.json"

    status = bench_status.main(["--rows", "2000", "--runs", "1", "--others", "12", "--figures", str(written)])

    printed = json.loads(capsys.readouterr().out)
    figure = json.loads(written.read_text())
    assert set(figure) == {"status_seconds_1m", "status_rows"} and figure["status_rows"] == 2000
    assert figure["status_seconds_1m"] == printed["status_seconds_1m"] > 0
    # 5 large manifests of 400 certificates, 12 others, one probe per state: every one listed
    assert printed["manifests"] == 5 + 12 + 6 and printed["items"]["outcome rows"] == printed["items"]["claims"] == 2000
    assert status == (0 if figure["status_seconds_1m"] <= 2.0 else 1)


def test_a_goal_out_of_reach_exits_1_naming_it(environment, monkeypatch, capsys):
    monkeypatch.setattr(goals, "STATUS", {"status_seconds_1m": ("<=", 0.0)})

    assert bench_status.main(["--rows", "500", "--runs", "1", "--others", "2"]) == 1

    err = capsys.readouterr().err
    assert [line.split(" = ")[0] for line in err.splitlines() if line.startswith("goal missed")] == [
        "goal missed: status_seconds_1m"]


def test_make_bench_runs_it_and_judges_its_figure():
    assert run_all.COMPONENTS["status"] == ("bench_status.py", ())
    assert run_all.FIGURE_FILES["status"] == "bench-status.json"
    assert goals.BENCH["status_seconds_1m"] == goals.STATUS["status_seconds_1m"] == ("<=", 2.0)
    assert goals.missed_goals({"status_seconds_1m": 2.4}, run_all.GOALS) == [
        "goal missed: status_seconds_1m = 2.4 (goal <= 2)"]
