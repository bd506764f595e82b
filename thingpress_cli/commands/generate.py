"""``thingpress generate N --out FILE``: write a test manifest of N generated device certificates.

The certificates and the manifest format are :mod:`thingpress_cli.core.certificates`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thingpress_cli.core.certificates import DEFAULT_DAYS, write_manifest
from thingpress_cli.core.errors import UsageError
from thingpress_cli.core.streams import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a test manifest of N generated device certificates (.txt)",
        description="Write a generated-format manifest: a test root CA, an intermediate CA and N device "
                    "certificates (CN Device-0..N-1, P-256), one base64 PEM per line.",
    )
    parser.add_argument("count", type=int, metavar="N", help="number of device certificates")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="manifest file to write (.txt)")
    parser.add_argument("--keys", type=Path, metavar="DIR",
                        help="give each device its own key and write it (plus the CA certificates) to DIR; "
                             "without it one key is shared by all devices and not written")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, metavar="D",
                        help=f"validity in days (default {DEFAULT_DAYS})")
    parser.add_argument("--expired", action="store_true",
                        help="make certificates that already expired (D days long, ended yesterday), for tests")
    parser.add_argument("--prefix", default="Device-",
                        help="thing name prefix: certificates get CN <prefix>0 ... (default Device-)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document: the file, count, validity and keys folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise UsageError("N must be at least 1")
    if args.days < 1:
        raise UsageError("--days must be at least 1 (use --expired for expired certificates)")
    if args.keys is None:
        sys.stderr.write("note: one device key is shared by all certificates (not written); "
                         "use --keys DIR for per-device keys\n")
    from rich.progress import Progress

    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("signing", total=args.count)
        result = write_manifest(args.out, args.count, keys_dir=args.keys, days=args.days, expired=args.expired,
                                prefix=args.prefix, progress=lambda n: bar.update(task, completed=n))
    if args.json:
        keys = str(result.keys_dir) if result.keys_dir else None
        print_json({"file": str(result.path), "count": result.count, "keys": keys,
                    "not_before": result.not_before.isoformat(), "not_after": result.not_after.isoformat()})
        return 0
    where = f", keys in {result.keys_dir}" if result.keys_dir else ""
    print(f"wrote {result.count} certificates to {result.path} (valid {result.not_before:%Y-%m-%d} to "
          f"{result.not_after:%Y-%m-%d}{where})")
    return 0
