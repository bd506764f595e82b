"""`make bench` reports the suite's wall times next to the local deploy (issue 15's three figures)."""

from __future__ import annotations

import argparse
import subprocess

import pytest
from benchmarks import run_all


@pytest.fixture
def build(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "REPO", tmp_path)
    (tmp_path / "build").mkdir()
    return tmp_path / "build"


def test_bench_runs_both_targets_and_reads_the_seconds_they_write(build):
    ran = []

    def fake_make(command, cwd, check):
        target = command[1]
        ran.append(target)
        name = dict(run_all.TEST_TARGETS.values())[target]
        (build / name).write_text({"test-unit": "52\n", "test": "431\n"}[target])
        return subprocess.CompletedProcess(command, 0)

    figures: dict = {}
    run_all.test_phase(argparse.Namespace(skip_tests=False), figures, run=fake_make)

    assert ran == ["test-unit", "test"]
    assert figures == {"make_test_unit_seconds": 52.0, "make_test_seconds": 431.0}
    text_rows = run_all.markdown({**figures, **_pipeline_figures()})
    assert "`make test` wall time | 431.0 s" in text_rows and "`make test-unit` wall time | 52.0 s" in text_rows


def test_a_failing_suite_gives_no_figures(build):
    (build / "make-test-unit-seconds").write_text("40\n")  # stale: must not be reported
    with pytest.raises(SystemExit, match="make test-unit failed"):
        run_all.test_phase(argparse.Namespace(skip_tests=False), {},
                           run=lambda command, cwd, check: subprocess.CompletedProcess(command, 2))
    assert not (build / "make-test-unit-seconds").exists()


def test_skip_tests_reports_the_last_recorded_figures(build):
    (build / "make-test-seconds").write_text("470\n")
    figures: dict = {}
    run_all.test_phase(argparse.Namespace(skip_tests=True), figures,
                       run=lambda *a, **k: pytest.fail("make must not run with --skip-tests"))
    assert figures == {"make_test_seconds": 470.0}


def _pipeline_figures() -> dict:
    stat = {"median": 1.0, "min": 1.0, "max": 1.0, "n": 1}
    return {"floor_certs_per_s": stat, "pipeline_certs_per_s": stat, "pipeline_over_floor": 1.0,
            "pipeline_over_floor_runs": stat, "quota_default_binding_tps": 10, "quota_raised_binding_tps": 50,
            "quota_default_certs_per_s": stat, "quota_raised_certs_per_s": stat, "quota_ratio_default": 1.0,
            "quota_ratio_raised": 1.0, "quota_default_dlq_messages": 0, "quota_default_failed": 0,
            "quota_raised_dlq_messages": 0, "quota_raised_failed": 0, "lost_certificates": 0,
            "local_deploy_seconds": 80.0, "conflicts_concurrency": 20, "conflicts_hold_ms": 25.0,
            "conflicts_batch_size": 7, "conflicts_importer_timeout_s": 60,
            "conflicts_answered": 12, "conflicts_per_1000": 20.0, "quota_ratio_with_conflicts": 0.95,
            "quota_with_conflicts_dlq_messages": 0}


def test_a_missed_goal_is_named_and_fails_the_run():
    """make bench exits 1 on a missed goal (run_all.main returns missed_goals' verdict)."""
    figures = _pipeline_figures()
    assert run_all.missed_goals(figures) == []
    figures.update(quota_ratio_with_conflicts=0.71, lost_certificates=2)
    assert run_all.missed_goals(figures) == [
        "goal missed: quota_ratio_with_conflicts = 0.71 (goal >= 0.9)",
        "goal missed: lost_certificates = 2 (goal <= 0)"]
    assert run_all.missed_goals({}) == []  # nothing measured, nothing judged
