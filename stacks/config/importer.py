"""The importer's budget: the IoT request rates it may use, how many instances share them, and how
much of its work the import queue may hold.

One concern because each number derives from the one before: the concurrency's default is the
slowest API's rate over an instance's share (``defaults.default_import_concurrency``), and the
window is minutes of that rate (``thingpress.backpressure``). The stack hands all three to the
functions (``thingpress.settings``), so the importer paces itself and the providers stop
enqueueing by the same figures the stack was sized with.

=====================================  ===========================================================
variable                               meaning (default)
=====================================  ===========================================================
THINGPRESS_IOT_TPS                     JSON {IoT API: requests/s} over the AWS default quotas
THINGPRESS_IMPORT_CONCURRENCY          importer maximum concurrency, 2..1000 (from the budget)
THINGPRESS_IMPORT_WINDOW_MINUTES       backpressure: the import queue holds at most this many minutes of
                                       the importer's budget, shared by the manifests being parsed;
                                       a number, more than 0 and at most 1440 (1; ``thingpress.backpressure``)
=====================================  ===========================================================
"""

from __future__ import annotations

import json
from typing import Any

from thingpress import backpressure, settings

from stacks import defaults
from stacks.config.reader import Reader


def read(r: Reader) -> dict[str, Any]:
    """``iot_tps``, ``import_concurrency``, ``import_window_minutes``."""
    tps = _iot_tps(r)
    concurrency = r.integer(settings.IMPORT_CONCURRENCY, defaults.default_import_concurrency(tps),
                            defaults.MIN_ESM_CONCURRENCY, defaults.MAX_ESM_CONCURRENCY)
    return {"iot_tps": tps, "import_concurrency": concurrency, "import_window_minutes": _window_minutes(r)}


def _iot_tps(r: Reader) -> dict[str, float]:
    tps = dict(settings.DEFAULT_IOT_TPS)
    raw_tps = r.get(settings.IOT_TPS)
    if raw_tps:
        try:
            given = json.loads(raw_tps)
            if not isinstance(given, dict):
                raise TypeError
            for api, rate in given.items():
                if api not in tps:
                    r.errors.append(f"{settings.IOT_TPS}: unknown IoT API {api!r}; known: {', '.join(tps)}")
                elif isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
                    r.errors.append(f"{settings.IOT_TPS}: {api} must be a positive number, got {rate!r}")
                else:
                    tps[api] = float(rate)
        except (ValueError, TypeError):
            r.errors.append(f"{settings.IOT_TPS}: must be a JSON object of IoT API name to requests/second")
    return tps


def _window_minutes(r: Reader) -> float:
    window_minutes = backpressure.DEFAULT_WINDOW_MINUTES
    raw_window = r.get(settings.IMPORT_WINDOW_MINUTES)
    if raw_window:
        try:
            window_minutes = float(raw_window)
            if not 0 < window_minutes <= backpressure.MAX_WINDOW_MINUTES:
                raise ValueError
        except ValueError:
            r.errors.append(f"{settings.IMPORT_WINDOW_MINUTES}: must be a number of minutes, more than 0 and at "
                            f"most {backpressure.MAX_WINDOW_MINUTES:g}, got {raw_window!r}")
            window_minutes = backpressure.DEFAULT_WINDOW_MINUTES
    return window_minutes
