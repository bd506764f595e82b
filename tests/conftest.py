"""Suite-wide fixtures: the vendor-samples setting and markers by folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: The real vendor samples are read in place, never copied into the repo.
SAMPLES_SETTING = "THINGPRESS_VENDOR_SAMPLES"
DEFAULT_SAMPLES = REPO.parent / "shared" / "vendor-samples"

_MARK_BY_FOLDER = {
    "unit": "unit", "stacks": "stacks", "contract": "contract",
    "integration": "integration", "fault": "fault", "fuzz": "fuzz",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        marker = _MARK_BY_FOLDER.get(parts[0]) if len(parts) > 1 else None
        if marker:
            item.add_marker(getattr(pytest.mark, marker))


def samples_dir() -> Path | None:
    path = Path(os.environ.get(SAMPLES_SETTING) or DEFAULT_SAMPLES)
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def vendor_samples() -> Path:
    """The real vendor samples folder. In CI a missing folder is an error, never a skip."""
    path = samples_dir()
    if path is None:
        where = os.environ.get(SAMPLES_SETTING) or DEFAULT_SAMPLES
        message = f"vendor samples not found at {where} (set {SAMPLES_SETTING})"
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
