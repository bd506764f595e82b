"""Whole-stack snapshots (syrupy), one per target. Asset hashes are normalized: the
code's hash is checked against packaging in test_properties, and a handler edit
must not churn the snapshot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

REPO = Path(__file__).resolve().parents[2]


def normalized(doc: dict) -> dict:
    text = json.dumps(doc, sort_keys=True)
    text = re.sub(r'("source_code_hash": )"[^"]+"', r'\1"<hash>"', text)
    text = re.sub(r'(assets/[A-Za-z0-9_\-]+/)[0-9a-f]{32}/', r"\1<hash>/", text)
    text = re.sub(r"(layer-py[0-9.]+-[a-z0-9_]+-)[0-9a-f]{16}(\.zip)", r"\1<hash>\2", text)
    return json.loads(text)


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("target", ["aws", "local"])
def test_stack_snapshot(synth, snapshot_json, target):
    assert normalized(synth.json[target]) == snapshot_json


@pytest.mark.parametrize("target", ["aws", "local"])
def test_synth_holds_no_machine_specific_values(synth, target):
    text = json.dumps(synth.json[target])
    for needle in (str(REPO), str(Path.home()), "/tmp/", str(synth.outdir)):
        assert needle not in text
    assert not re.search(r"20\d\d-\d\d-\d\dT\d\d:\d\d", text), "a timestamp in the stack"
