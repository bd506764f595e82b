"""Test harnesses ``make`` runs with ``python -m`` (they are not ``thingpress`` commands).

* :mod:`.chaos`: ``make chaos``: several manifests at once while workers die and AWS misbehaves;
* :mod:`.preview_job`: ``make test-preview-job``: the PR preview workflow's test steps, run here.
"""
