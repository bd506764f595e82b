"""Fixtures of the emulator's rule tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_fixtures import FAKE_CREDENTIALS, REGION, in_process_aws


@pytest.fixture
def iot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An IoT client on in-process AWS with the emulator's patch set."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with in_process_aws():
        yield boto3.client("iot", region_name=REGION)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    """A DynamoDB client on in-process AWS with the emulator's patch set, shared by one module's tests
    (each makes its own tables)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_CREDENTIALS.items():
            patch.setenv(name, value)
        with in_process_aws():
            yield boto3.client("dynamodb", region_name=REGION)
