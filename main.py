"""The CDKTF app: read the configuration, create the stack, synthesize.

Configuration comes from THINGPRESS_* environment variables and the cdktf context
``env`` (``cdktf synth --context env=pr12`` is not a cdktf flag; use
``THINGPRESS_ENV=pr12``, or ``"context": {"env": "..."}`` in cdktf.json). See
stacks/config/ for every setting (each module there lists the ones it reads).
"""

from __future__ import annotations

import sys

from cdktf import App

from stacks.config import ConfigError, StackConfig


def main() -> int:
    app = App()
    context_env = app.node.try_get_context("env")
    try:
        config = StackConfig.from_env(context_env=str(context_env) if context_env else None)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    from stacks.guards import GuardError
    from stacks.stack import ThingpressStack

    try:
        ThingpressStack(app, config)
    except GuardError as exc:
        print(f"thingpress stack {config.stack_name} is invalid:\n{exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
