"""``thingpress plan FILE``: what an upload of FILE would do in this account, and how long it would take.

The parse, the read-only probe of the account, the classes and the estimate are
the engine's (:mod:`thingpress_cli.engines.plan`, which says what each class means
and what ``--json`` prints); this module holds the command: its arguments (the
parse options are ``inspect``'s), the run, the spinner and the human output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thingpress.records import ManifestError
from thingpress.throttle import Throttle
from thingpress.vendors import VENDORS
from thingpress_cli.commands import inspect as inspect_cmd
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.core.errors import UsageError
from thingpress_cli.core.quotas import deployment_quota_check
from thingpress_cli.core.streams import warn
from thingpress_cli.engines.plan import (ALREADY_REGISTERED, NEW, PROBE_TPS, THING_CONFLICT, AccountProbe, Plan,
                                         make_plan, probe_tps)

#: listed entries in the human output (``--json`` lists all).
SHOWN = 20


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _short_principal(arn: str) -> str:
    """``cert/<64 hex>`` ARNs as the id's first 16 digits (``--json`` has the whole ARN)."""
    _, _, ident = arn.rpartition("/")
    return f"{ident[:16]}…" if ":cert/" in arn else arn


def _print(plan: Plan) -> None:
    c = plan.counts
    print(f"{plan.file} ({plan.vendor}): {plan.tally.entries} entries")
    print(f"  new                 {c[NEW]}")
    print(f"  already registered  {c[ALREADY_REGISTERED]}")
    print(f"  thing conflict      {c[THING_CONFLICT]}  (thing exists with another certificate)")
    print(f"  refused             {plan.tally.rejected}")
    print(f"  duplicates          {plan.tally.duplicates}  (same certificate earlier in the file)")
    pace = "the lower of the deployed IoT budget and the account's quotas" if plan.quotas else "the deployed IoT budget"
    print(f"eta: {format_duration(plan.eta)} at {pace} "
          f"({plan.tally.accepted} certificates behind {plan.backlog} queued)")
    for notice in plan.signer_notices:
        print(f"warning: {notice}")
    for title, rows, show in (
        ("thing conflicts", plan.conflicts,
         lambda r: f"{r['position']}: thing {r['thing_name']} has certificate "
                   + ", ".join(_short_principal(p) for p in r["principals"])),
        ("refused", plan.tally.errors, lambda r: f"{r['position']}: {r['reason']}"),
    ):
        if rows:
            print(f"{title}:")
            for row in rows[:SHOWN]:
                print(f"  {show(row)}")
            if len(rows) > SHOWN:
                print(f"  ... {len(rows) - SHOWN} more (--json lists all)")


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        vendor = inspect_cmd.vendor_of(path, args.vendor)
        options = inspect_cmd.parse_options(vendor, args)
        deployment = Deployment.from_args(args)
        settings = deployment.importer_settings()
        backlog = deployment.import_backlog()
        quotas = deployment_quota_check(deployment, settings)
        for line in quotas.warnings():
            warn(line)
        probe = AccountProbe(deployment.client("iot"), Throttle(probe_tps(args.read_tps)))
        with _progress(not args.json) as tick:
            plan = make_plan(path, vendor, options, probe, settings, backlog, tick, names=deployment.thing_names(),
                             quotas=quotas)
    except inspect_cmd.OptionsError as exc:
        raise UsageError(f"{path}: {exc}") from None
    except ManifestError as exc:
        raise UsageError(f"{path}: {exc.reason}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    if args.json:
        print(json.dumps(plan.as_dict(), sort_keys=True))
    else:
        _print(plan)
    return 0


class _progress:
    """A spinner with a count on stderr while the account is asked (terminals only)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.progress: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn

        self.progress = Progress(SpinnerColumn(), TextColumn("asking the account: {task.completed} certificates"),
                                 console=Console(stderr=True), transient=True)
        self.progress.start()
        task = self.progress.add_task("plan", total=None)
        return lambda: self.progress.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "plan", help="what an upload of FILE would do in this account, and how long it would take",
        description="Parse FILE locally (as inspect), then ask the account, read-only and throttled, which "
                    "certificates are registered and which things exist with another certificate. The ETA is at "
                    "the lower of the importer's IoT budget and the account's quotas (Service Quotas, AWS's "
                    "defaults where it has no value); a budget above a quota is a warning on stderr.")
    parser.add_argument("file", type=Path, metavar="FILE", help="the manifest file")
    parser.add_argument("--vendor", choices=sorted(VENDORS), help="vendor format (default: from the file suffix)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--read-tps", type=float, default=None, metavar="N",
                        help="requests/second for DescribeCertificate and ListThingPrincipals (default "
                             f"{PROBE_TPS['DescribeCertificate']:g}: leaves the account's quota to running imports)")
    inspect_cmd.add_parse_arguments(parser)
    Deployment.add_arguments(parser)
    parser.set_defaults(func=run)
