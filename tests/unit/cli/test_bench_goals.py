"""Every benchmark exits 1 on a missed goal and names it, 0 when its goals are met (issue 23).

The measurements are replaced by given figures: what is tested is the verdict each benchmark's
``main`` returns over them (``goals.py``, the one definition all of them use). run_all's
(``make bench``) is in test_bench_wiring.py.
"""

from __future__ import annotations

import json

import bench_fairness
import bench_importer_import
import bench_scale
import goals
import pytest

from stacks.naming import FUNCTION_KEYS, handler_module


def missed(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("goal missed")]


# -- bench_fairness.py ------------------------------------------------------------------------


def fairness(seconds: float = 68.0, saturation: float = 0.98, backlog: float = 1.0) -> dict[str, float]:
    return {"fairness_default_seconds": seconds, "fairness_default_window_minutes": 1.0,
            "fairness_small_alone_seconds": 6.0, "fairness_ratio": round(seconds / 6.0, 2),
            "importer_saturation": saturation, "backlog_over_window": backlog, "backlog_max": 600 * backlog,
            "window_certificates": 600.0, "big_certificates": 100_000.0}


@pytest.mark.parametrize(("figures", "named"), [
    (fairness(), []),
    (fairness(seconds=90.0, saturation=0.95, backlog=1.1), []),
    (fairness(seconds=284.0), ["goal missed: fairness_default_seconds = 284.0 (goal <= 90)"]),
    (fairness(saturation=0.9), ["goal missed: importer_saturation = 0.9 (goal >= 0.95)"]),
    (fairness(backlog=1.25), ["goal missed: backlog_over_window = 1.25 (goal <= 1.1)"]),
])
def test_bench_fairness_exits_1_naming_a_missed_goal(monkeypatch, capsys, figures, named):
    monkeypatch.setattr(bench_fairness, "measure", lambda big_count: dict(figures))

    assert bench_fairness.main([]) == (1 if named else 0)

    out, err = capsys.readouterr()
    assert json.loads(out) == figures
    assert missed(err) == named


# -- bench_scale.py (make bench-scale) ---------------------------------------------------------


def scale(rss_1m: float = 62.0, overhead: float = 1.08, **more: float) -> dict:
    run = {"cpu_seconds": 10.0, "invocations": 20}
    return {"resume_overhead_generated": overhead, "resume_overhead_microchip": 1.03, "peak_rss_mib_1m": rss_1m,
            "peak_rss_mib_10k": 60.0, "_generated": {"one_pass": run, "chunked": run},
            "_microchip": {"one_pass": run, "chunked": run}, "_small": run, **fairness(), **more}


@pytest.mark.parametrize(("figures", "named"), [
    (scale(), []),
    (scale(overhead=1.2), ["goal missed: resume_overhead_generated = 1.2 (goal <= 1.15)"]),
    # 70 MiB is within 100 MiB, but 1m over 10k grew 16.7%: more than 10%
    (scale(rss_1m=70.0), ["goal missed: peak_rss_growth = 0.167 (goal <= 0.1)"]),
    (scale(backlog_over_window=1.5), ["goal missed: backlog_over_window = 1.5 (goal <= 1.1)"]),
])
def test_bench_scale_exits_1_naming_a_missed_goal(tmp_path, monkeypatch, capsys, figures, named):
    (tmp_path / "docs").mkdir()
    monkeypatch.setattr(bench_scale, "REPO", tmp_path)
    monkeypatch.setattr(bench_scale, "MEASUREMENTS", [lambda args: dict(figures)])

    assert bench_scale.main([]) == (1 if named else 0)

    out, err = capsys.readouterr()
    assert missed(err) == named
    assert out.splitlines()[-1] == ("goals NOT met" if named else "goals met")
    written = json.loads((tmp_path / "docs" / "scale.json").read_text())  # figures are written either way
    assert written["peak_rss_growth"] == round(figures["peak_rss_mib_1m"] / 60.0 - 1, 3)
    assert "| peak_rss_growth " in (tmp_path / "docs" / "scale.md").read_text()


# -- bench_importer_import.py (cold import; make bench reads its --figures) -------------------


@pytest.mark.parametrize(("microchip_cpu_ms", "status"), [(400.0, 0), (430.0, 1)])
def test_cold_import_exits_1_naming_the_handler_over_its_goal(tmp_path, monkeypatch, capsys, microchip_cpu_ms,
                                                             status):
    layout = bench_importer_import.Layout(tmp_path, {key: tmp_path for key in FUNCTION_KEYS})
    monkeypatch.setattr(bench_importer_import, "lambda_layout", lambda root: layout)
    monkeypatch.setattr(bench_importer_import, "cold_import_ms", lambda layout, key, runs: [
        (cpu + 5, cpu) for cpu in [microchip_cpu_ms if key == "provider_microchip" else 180.0] * runs])
    monkeypatch.setattr(bench_importer_import, "heaviest_imports", lambda layout, key: [(90_000, "boto3")])
    written = tmp_path / "figures.json"

    assert bench_importer_import.main(["--import-only", "--figures", str(written)]) == status

    out, err = capsys.readouterr()
    figure = goals.cold_import_figure("microchip_handler")
    assert missed(err) == ([] if status == 0 else [f"goal missed: {figure} = 430.0 (goal <= 400)"])
    assert ("ABOVE GOAL" in out) == bool(status)
    assert json.loads(written.read_text()) == {
        **{goals.cold_import_figure(handler_module(key)): microchip_cpu_ms if key == "provider_microchip" else 180.0
           for key in FUNCTION_KEYS},
        goals.COLD_IMPORT_MAX: microchip_cpu_ms}
    assert "heaviest top-level imports of microchip_handler" in out
