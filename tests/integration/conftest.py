"""Integration fixtures: a deployment read from terraform-outputs.json.

The same tests run against the local emulator (``THINGPRESS_ENV=local``, the
default: the session brings the local environment up itself) and against a real
AWS deployment (``THINGPRESS_ENV=pr123`` with that deployment's outputs file).
They use only boto3, the outputs and, for local, the endpoint from the outputs.
"""

from __future__ import annotations

import pytest

from thingpress_cli.core.deployment import Deployment


@pytest.fixture(scope="session")
def deployment(local_environment) -> Deployment:
    return local_environment


@pytest.fixture(scope="session")
def iot(deployment):
    return deployment.client("iot")
