"""Suite-wide fixtures: the vendor-samples setting and markers by folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from thingpress_cli import samples

REPO = Path(__file__).resolve().parent.parent
SAMPLES_SETTING = samples.SETTING

_MARK_BY_FOLDER = {
    "unit": "unit", "stacks": "stacks", "contract": "contract",
    "integration": "integration", "fault": "fault", "fuzz": "fuzz", "environments": "environments",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        marker = _MARK_BY_FOLDER.get(parts[0]) if len(parts) > 1 else None
        if marker:
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def vendor_samples() -> Path:
    """The real vendor samples folder. In CI a missing folder is an error, never a skip."""
    path = samples.samples_dir()
    if path is None:
        message = f"vendor samples not found at {samples.configured_dir()} (set {SAMPLES_SETTING})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _use_project_toolchain() -> None:
    """Synth in-process and terraform/cdktf subprocesses use the project's toolchain:
    Node 22 for jsii (no end-of-life banner) and the offline-mirror CLI config."""
    from thingpress_cli.toolchain import tool_env

    os.environ.update(tool_env())


_use_project_toolchain()


@pytest.fixture(scope="session")
def local_environment():
    """The deployment under test, read from terraform-outputs.json.

    ``THINGPRESS_ENV`` names it (default ``local``). For ``local`` the session brings
    the local environment up itself (emulator, real ``cdktf deploy``, runner) and,
    if it started it, takes it down at the end (``THINGPRESS_KEEP_LOCAL=1`` keeps it).
    Against any other suffix it only reads that deployment's outputs.
    """
    from thingpress_cli.deployment import Deployment

    suffix = os.environ.get("THINGPRESS_ENV", "local")
    started = False
    if suffix == "local":
        from thingpress_cli.local import commands, runner

        # scheduled functions (the watchdog) run every few seconds, not every few minutes
        os.environ.setdefault(runner.SCHEDULE_SECONDS_SETTING, "5")

        started = not commands.is_up()
        commands.ensure_up()
    yield Deployment.load(suffix=suffix)
    if started and not os.environ.get("THINGPRESS_KEEP_LOCAL"):
        commands.down()
