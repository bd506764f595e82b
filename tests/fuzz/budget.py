"""How many examples the fuzz and model-based tests run: one definition of the profiles.

``THINGPRESS_FUZZ_PROFILE`` picks the budget of every hypothesis test in ``tests/fuzz``:

* ``quick`` (``make test-unit``, the one-minute inner loop): a fiftieth of the default (at least 10),
  or the test's own quick figure;
* unset or ``default`` (``make test``): the figures each test states;
* ``long`` (``make fuzz-long``): ten times the default.

The properties checked are the same in every profile; only the number of generated
inputs changes.
"""

from __future__ import annotations

import os

SETTING = "THINGPRESS_FUZZ_PROFILE"
FACTORS = {"quick": 0.02, "default": 1.0, "long": 10.0}


def profile() -> str:
    name = os.environ.get(SETTING) or "default"
    if name not in FACTORS:
        raise ValueError(f"{SETTING}={name!r}: expected one of {', '.join(FACTORS)}")
    return name


def examples(default: int, quick: int | None = None) -> int:
    """The number of examples for a test whose ``make test`` budget is ``default`` (``quick``: its own
    figure in the quick profile, for a test whose every example is costly)."""
    if quick is not None and profile() == "quick":
        return quick
    return max(10, round(default * FACTORS[profile()]))
