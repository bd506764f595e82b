"""A real emulator process (moto server + the thingpress extension) for the local tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from thingpress_cli.local import emulator
from thingpress_cli.local.state import REGION


@pytest.fixture(scope="session")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = tmp_path_factory.mktemp("local") / "state.json"
    running = emulator.start(quotas="off", path=path)
    yield running.url
    emulator.stop(path=path)


@pytest.fixture
def aws(emulator_url: str, monkeypatch: pytest.MonkeyPatch):
    """A factory of boto3 clients bound to the emulator."""
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(key, raising=False)

    def client(service: str, **kwargs):
        return boto3.client(
            service, endpoint_url=emulator_url, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing", **kwargs,
        )

    return client
