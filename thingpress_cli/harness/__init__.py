"""Test harnesses ``make`` runs with ``python -m`` (they are not ``thingpress`` commands).

* :mod:`.chaos`: ``make chaos``: several manifests at once while workers die and AWS misbehaves;
  its parts: :mod:`.chaos_result` (settings, manifests, the summary line), :mod:`.chaos_kills` (the
  kill loop), :mod:`.chaos_checks` (what the run counts at the end);
* :mod:`.preview_job`: ``make test-preview-job``: the PR preview workflow's test steps, run here.
"""
