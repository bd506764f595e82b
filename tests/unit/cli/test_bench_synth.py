"""bench_synth.py writes its figures where ``make bench`` reads them and fails naming a missed goal (the fresh
interpreters it times stand in here with their printed phases)."""

from __future__ import annotations

import json
import subprocess

import bench_synth
import goals
import pytest
import run_all


@pytest.fixture
def phases(monkeypatch):
    """Each timed interpreter prints these phases (seconds); the artifact warm-up prints nothing."""
    printed = {"import": 2.3, "construct": 0.8, "synth": 0.1}

    def run(command, **kwargs):
        out = json.dumps(printed) if "-c" in command else ""
        return subprocess.CompletedProcess(command, 0, stdout=out + "\n", stderr="")

    monkeypatch.setattr(bench_synth.subprocess, "run", run)
    return printed


def test_the_overhead_is_judged_and_written(phases, tmp_path, capsys):
    written = tmp_path / "bench-synth.json"

    assert bench_synth.main(["3", "--figures", str(written)]) == 0

    assert json.loads(written.read_text()) == {"synth_overhead_seconds": 0.9, "synth_seconds": 3.2}
    assert "overhead median 0.90 s (goal <= 1.5 s)" in capsys.readouterr().out


def test_an_overhead_over_the_goal_exits_1_naming_it(phases, capsys):
    phases["construct"] = 1.6

    assert bench_synth.main(["1"]) == 1

    assert "goal missed: synth_overhead_seconds = 1.7 (goal <= 1.5)" in capsys.readouterr().err


def test_make_bench_runs_it_and_judges_its_figure():
    assert run_all.COMPONENTS["synth"] == ("bench_synth.py", ("3",))
    assert run_all.FIGURE_FILES["synth"] == "bench-synth.json"
    assert goals.BENCH["synth_overhead_seconds"] == goals.SYNTH["synth_overhead_seconds"] == ("<=", 1.5)
