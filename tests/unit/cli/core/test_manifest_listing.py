"""``status``, ``status --watch`` and id lookup list manifests through the ``by_state`` index, never a scan.

A scan of the audit table reads every certificate row to find the summaries; the index holds
only summary items (they alone carry ``state``). The shards, which carry the importer's
counters, are read with each manifest's summary (a Query on its partition).
"""

from __future__ import annotations

import json
from typing import Any

import factories
import pytest

from thingpress.audit.keys import INDEX_BY_STATE
from thingpress.audit.states import MANIFEST_STATES
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.progress import short_id
from thingpress_cli.main import main


class NoScan:
    """The DynamoDB client, with every call recorded and a scan refused."""

    def __init__(self, client: Any, calls: list[tuple[str, dict[str, Any]]]):
        self._client, self._calls = client, calls

    def scan(self, **kwargs: Any) -> Any:
        raise AssertionError(f"scan of {kwargs['TableName']}")

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def recorded(**kwargs: Any) -> Any:
            self._calls.append((name, kwargs))
            return method(**kwargs)
        return recorded


@pytest.fixture
def calls(cloud, monkeypatch):
    recorded: list[tuple[str, dict[str, Any]]] = []
    real = Deployment.client

    def client(self, service):
        made = real(self, service)
        return NoScan(made, recorded) if service == "dynamodb" else made
    monkeypatch.setattr(Deployment, "client", client)
    return recorded


def test_status_lists_through_the_index_and_merges_the_shards(cloud, calls, tmp_path, capsys):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_bytes(factories.generated_manifest(factories.devices(3, prefix="A-")))
    second.write_bytes(factories.generated_manifest(factories.devices(2, prefix="B-")) + b"!!\n")
    mids = [cloud.run(first), cloud.run(second)]
    capsys.readouterr()
    calls.clear()

    assert main(["status", "--json"]) == 0
    views = {v["manifest"]: v for v in json.loads(capsys.readouterr().out)}
    assert set(views) == set(mids)
    # the importer's counters are on the shards: read with each summary
    assert (views[mids[0]]["imported"], views[mids[1]]["imported"], views[mids[1]]["rejected"]) == (3, 2, 1)
    index_queries = [kw for name, kw in calls if kw.get("IndexName") == INDEX_BY_STATE]
    assert len(index_queries) == len(MANIFEST_STATES)
    assert {name for name, _ in calls} == {"query"}

    calls.clear()
    assert main(["report", short_id(mids[0]), "--format", "json"]) == 0  # a prefix: looked up in the index
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert any(kw.get("IndexName") == INDEX_BY_STATE for _, kw in calls)

    calls.clear()
    assert main(["status", "--watch", "--json"]) == 0  # nothing unfinished: nothing to watch
    assert len(json.loads(capsys.readouterr().out)) == 2
