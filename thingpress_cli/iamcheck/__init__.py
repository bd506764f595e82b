"""Least privilege proven: recorded calls and service paths evaluated against the synthesized policies.

See :mod:`.check` (``make iam-check``), which runs the steps of the other modules in
order. The evaluator, npm ``@cloud-copilot/iam-simulate`` (AGPL), and its data set are
test tools pinned in package.json: they run from ``node_modules`` and never enter a
Lambda artifact (stacks/packaging.py builds from ``lambdas/`` and ``shared/`` only).
"""
