"""Fault injection fixtures: the local deployment (its emulator, quota mode and runner).
"""

from __future__ import annotations

import pytest

from thingpress_cli.core.deployment import Deployment

@pytest.fixture(scope="session")
def deployment(local_environment) -> Deployment:
    if local_environment.outputs.target != "local":
        pytest.fail("fault injection needs the local emulator (THINGPRESS_ENV=local)")
    return local_environment


@pytest.fixture(scope="session")
def iot(deployment):
    return deployment.client("iot")
