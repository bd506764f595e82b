"""Fixtures for the operator command tests (the deployment itself is in ``cli_cloud``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_cloud import Cloud, make_cloud


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cloud]:
    yield from make_cloud(monkeypatch, tmp_path)
