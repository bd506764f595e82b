"""`make bench` reports the suite's wall times next to the local deploy (issue 15's three figures), and
fails naming every goal a run misses: the pipeline's and every handler's cold import (issue 23)."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import goals
import pytest
import run_all

from stacks.naming import FUNCTION_KEYS, handler_module


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
    """make bench exits 1 on a missed goal (run_all.main returns goals.exit_status over GOALS)."""
    figures = _pipeline_figures()
    assert goals.missed_goals(figures, run_all.GOALS) == []
    figures.update(quota_ratio_with_conflicts=0.71, lost_certificates=2)
    assert goals.missed_goals(figures, run_all.GOALS) == [
        "goal missed: quota_ratio_with_conflicts = 0.71 (goal >= 0.9)",
        "goal missed: lost_certificates = 2 (goal <= 0)"]
    assert goals.missed_goals({}, run_all.GOALS) == []  # nothing measured, nothing judged


def test_the_deploy_and_suite_times_the_table_gives_goals_for_are_judged(build):
    figures = {**_pipeline_figures(), "make_test_unit_seconds": 50.0, "make_test_seconds": 420.0}
    assert goals.missed_goals(figures, run_all.GOALS) == []
    text = run_all.markdown(figures)
    assert "| 80.0 s | goal <= 90 s |" in text and "| 420.0 s | goal <= 420 s (deploy included) |" in text
    figures.update(local_deploy_seconds=95.2, make_test_seconds=421.0, make_test_unit_seconds=51.0)
    assert goals.missed_goals(figures, run_all.GOALS) == [
        "goal missed: local_deploy_seconds = 95.2 (goal <= 90)",
        "goal missed: make_test_seconds = 421.0 (goal <= 420)",
        "goal missed: make_test_unit_seconds = 51.0 (goal <= 50)"]


def _cold_imports(slowest_ms: float) -> dict[str, float]:
    """Every handler's cold-import figure: 150 ms, the Microchip provider's ``slowest_ms``."""
    found = {goals.cold_import_figure(handler_module(key)): 150.0 for key in FUNCTION_KEYS}
    found[goals.cold_import_figure("microchip_handler")] = slowest_ms
    return found


def _fake_components(cold: dict[str, float], ran: list[tuple[str, ...]]):
    """script_output's stand-in: the cold-import script writes ``cold`` where --figures says."""

    def run(script, *args):
        ran.append((script, *args))
        if "--figures" in args:
            Path(args[args.index("--figures") + 1]).write_text(json.dumps(cold))
        return f"{script} printed figures"

    return run


def test_the_cold_import_figures_reach_the_goals(build):
    ran: list[tuple[str, ...]] = []
    figures: dict = {}
    run_all.component_phase(figures, run=_fake_components(_cold_imports(401.0), ran))

    assert [r[0] for r in ran] == [script for script, _ in run_all.COMPONENTS.values()]
    assert figures["cold_import"] == "bench_importer_import.py printed figures"
    assert len([k for k in figures if k.startswith("cold_import_ms_")]) == len(FUNCTION_KEYS) == 8
    assert goals.missed_goals(figures, run_all.GOALS) == [
        "goal missed: cold_import_ms_microchip_handler = 401.0 (goal <= 400)"]
    assert "| Cold import, slowest handler (from the deployed zips, median CPU) | 401 ms (microchip_handler) | " \
           "goal <= 400 ms" in run_all.markdown({**figures, **_pipeline_figures()})


def test_every_handler_over_its_cold_import_goal_is_named(build):
    figures: dict = {}
    every = {goals.cold_import_figure(handler_module(key)): 400.5 for key in FUNCTION_KEYS}
    run_all.component_phase(figures, run=_fake_components(every, []))
    assert goals.missed_goals(figures, run_all.GOALS) == [
        f"goal missed: {goals.cold_import_figure(handler_module(key))} = 400.5 (goal <= 400)" for key in FUNCTION_KEYS]


def test_a_cold_import_run_that_writes_no_figures_fails_the_bench(build):
    others = _fake_components({}, [])  # the components before it write their figures

    def run(script, *args):
        return "Traceback ..." if script == "bench_importer_import.py" else others(script, *args)

    with pytest.raises(SystemExit, match="bench_importer_import.py wrote no figures"):
        run_all.component_phase({}, run=run)


def test_a_synth_run_that_writes_no_figures_fails_the_bench(build):
    with pytest.raises(SystemExit, match="bench_synth.py wrote no figures"):
        run_all.component_phase({}, run=lambda script, *args: "Traceback ...")


@pytest.mark.parametrize(("slowest_ms", "status"), [(399.0, 0), (401.0, 1)])
def test_make_bench_exits_1_naming_a_missed_cold_import(build, monkeypatch, capsys, slowest_ms, status):
    """run_all.main end to end with every phase's figures given: the exit status is the goals' verdict."""
    docs = build.parent / "docs"
    monkeypatch.setattr(run_all, "DOCS", docs)
    monkeypatch.setattr(run_all, "script_output", _fake_components(_cold_imports(slowest_ms), []))
    monkeypatch.setattr(run_all, "local_phase", lambda args, figures: figures.update(_pipeline_figures()))
    monkeypatch.setattr(run_all, "plot", lambda figures, path: path.write_bytes(b""))

    assert run_all.main(["--skip-tests"]) == status

    missed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("goal missed")]
    assert missed == ([] if status == 0 else ["goal missed: cold_import_ms_microchip_handler = 401.0 (goal <= 400)"])
    written = json.loads((docs / "benchmarks.json").read_text())
    assert written[goals.cold_import_figure("microchip_handler")] == slowest_ms


def test_the_status_figure_has_its_row_with_its_goal(build):
    text = run_all.markdown({**_pipeline_figures(), "status_seconds_1m": 0.84, "status_rows": 1_000_000})
    assert ("| `thingpress status` at 1,000,000 certificate rows (local cloud, median) | **0.84 s** | goal <= 2 s;"
            in text)


def test_an_items_storage_is_sized_by_the_developer_guides_rules():
    """CapacityUnitCalculations.html: names and values (a number: a byte per two significant digits, plus one),
    3 bytes a list or map and 1 an element, plus 100 bytes an item."""
    import bench_cost

    item = {"pk": {"S": "D#é"}, "position": {"N": "-1234500"}, "ok": {"BOOL": True},
            "attributes": {"M": {"a": {"S": "xy"}}}, "groups": {"L": [{"S": "g"}]}}
    assert bench_cost.item_bytes(item) == 100 + (2 + 4) + (8 + 3 + 1) + (2 + 1) + (10 + 3 + 1 + 2 + 1) + (6 + 3 + 1 + 1)


def test_a_runs_storage_keeps_claims_for_their_lifetime_and_rows_for_the_retention(cloud, tmp_path):
    import bench_cost

    from thingpress_cli.core.certificates import write_manifest

    manifest = tmp_path / "kept.txt"
    write_manifest(manifest, count=4, prefix="Kept-")
    kept = bench_cost.storage(cloud.deployment, cloud.run(manifest), 4)
    assert kept["storage_days_kept"] == {"claims": 16, "rows": 365, "index by_state": 365, "index by_thing": 365}
    sizes = kept["storage_bytes_per_certificate"]
    assert sizes["index by_thing"] < sizes["rows"] and 150 < sizes["claims"] < 250
    breakdown = kept["storage_usd_per_million_breakdown"]
    assert breakdown["claims"] == round(sizes["claims"] * 1e6 / 2**30 * 16 / (365 / 12) * 0.25, 3)
    assert kept["storage_usd_per_million_before"] > kept["storage_usd_per_million"]
