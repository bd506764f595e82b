"""``thingpress inspect FILE``: parse a manifest locally, exactly as the provider would.

Same code path as the provider function (``thingpress.vendors.parse_manifest`` then
``thingpress.manifest.scan``), no AWS. Prints a summary and every refused entry
with its reason; ``--json`` prints one JSON object instead::

    {"file": ..., "vendor": ..., "entries": N, "accepted": N, "duplicates": N,
     "rejected": N, "rejected_by_kind": {...}, "no_certificates": bool, "note": str|null,
     "errors": [{"position": N, "reason": "..."}], "duplicate_of": [{"position": N, "first": N}]}

Exit status: 0 when the file was read (even if entries were refused), 2 when it
cannot be read as that vendor's manifest at all (one-line reason on stderr, or as JSON under ``--json``).

The vendor comes from ``--vendor`` or the file suffix. Microchip signer
certificates come from ``--signers DIR``, else the ``THINGPRESS_MICROCHIP_SIGNERS_DIR``
setting, else ``<repo>/../shared/vendor-samples/microchip-signers`` when present.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from thingpress.certs import EXPIRED_IMPORT, EXPIRED_REJECT
from thingpress.manifest import Tally, scan
from thingpress.records import ManifestError
from thingpress.vendors import VENDORS, ParseOptions, parse_manifest, vendor_for_key
from thingpress.vendors.infineon import BUNDLES
from thingpress.vendors.microchip_signers import load_signers
from thingpress_cli.core import samples
from thingpress_cli.core.errors import UsageError

SIGNERS_SETTING = "THINGPRESS_MICROCHIP_SIGNERS_DIR"
DEFAULT_SIGNERS = samples.DEFAULT / "microchip-signers"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="parse a manifest locally, as the provider would, and report what it holds",
        description="Parse and verify a manifest locally (no AWS), exactly as the provider function would: "
                    "print a summary and every refused entry with its reason.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the manifest file")
    parser.add_argument("--vendor", choices=sorted(VENDORS), help="vendor format (default: from the file suffix)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_parse_arguments(parser)
    parser.set_defaults(func=run)


def add_parse_arguments(parser: argparse.ArgumentParser) -> None:
    """The parse options ``inspect`` and ``plan`` share: signers, Infineon bundle, expired policy."""
    parser.add_argument("--signers", type=Path, metavar="DIR",
                        help=f"trusted Microchip manifest signer certificates (default: ${SIGNERS_SETTING}, "
                             "else ../shared/vendor-samples/microchip-signers)")
    parser.add_argument("--bundle", choices=BUNDLES, default="E0E0", help="Infineon bundle to import (default E0E0)")
    parser.add_argument("--expired", choices=(EXPIRED_REJECT, EXPIRED_IMPORT), default=EXPIRED_REJECT,
                        help="what expired or not-yet-valid certificates get (default reject)")


class OptionsError(Exception):
    """The parse options cannot be built (e.g. the Microchip signers cannot be read)."""


def vendor_of(path: Path, given: str | None) -> str:
    """The vendor from ``--vendor`` or the file suffix; raises OptionsError naming the known suffixes."""
    vendor = given or vendor_for_key(path.name)
    if vendor is None:
        suffixes = ", ".join(f"{v.suffix} ({name})" for name, v in VENDORS.items())
        raise OptionsError(f"cannot tell the vendor from the file name (known suffixes: {suffixes}); use --vendor")
    return vendor


def parse_options(vendor: str, args: argparse.Namespace) -> ParseOptions:
    """The parse options from the arguments of :func:`add_parse_arguments`."""
    signers = ()
    if vendor == "microchip":
        directory = signers_dir(args.signers)
        if directory is not None:
            try:
                signers = load_signers(directory)
            except (OSError, ValueError) as exc:
                raise OptionsError(f"cannot read Microchip signers from {directory}: {exc}") from None
    return ParseOptions(expired=args.expired, infineon_bundle=args.bundle, microchip_signers=signers)


def signers_dir(given: Path | None, environ: dict[str, str] | os._Environ[str] = os.environ) -> Path | None:
    if given is not None:
        return given
    if environ.get(SIGNERS_SETTING):
        return Path(environ[SIGNERS_SETTING])
    return DEFAULT_SIGNERS if DEFAULT_SIGNERS.is_dir() else None


def inspect_file(path: Path, vendor: str, options: ParseOptions) -> tuple[Tally, list[dict[str, int]]]:
    """Parse ``path`` as ``vendor``: the tally and the duplicates (raises ManifestError, OSError)."""
    tally = Tally()
    duplicates: list[dict[str, int]] = []
    with path.open("rb") as stream:
        for scanned in scan(parse_manifest(vendor, stream, options)):
            tally.add(scanned)
            if scanned.duplicate_of is not None:
                duplicates.append({"position": scanned.entry.position, "first": scanned.duplicate_of})
    return tally, duplicates


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        vendor = vendor_of(path, args.vendor)
        options = parse_options(vendor, args)
    except OptionsError as exc:
        raise UsageError(f"{path}: {exc}") from None
    try:
        tally, duplicates = inspect_file(path, vendor, options)
    except ManifestError as exc:
        raise UsageError(f"{path}: {exc.reason}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    if args.json:
        report = {"file": str(path), "vendor": vendor, **tally.as_dict(), "duplicate_of": duplicates}
        print(json.dumps(report, indent=2))
        return 0
    _print(path, vendor, tally, duplicates, options)
    return 0


def _print(path: Path, vendor: str, tally: Tally, duplicates: list[dict[str, int]], options: ParseOptions) -> None:
    extra = f", bundle {options.infineon_bundle}" if vendor == "infineon" else ""
    print(f"{path} ({vendor}{extra}, expired certificates: {options.expired})")
    print(f"  entries     {tally.entries}")
    print(f"  accepted    {tally.accepted}  (distinct certificates that would be imported)")
    print(f"  duplicates  {tally.duplicates}")
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(tally.rejected_by_kind.items()))
    print(f"  rejected    {tally.rejected}" + (f"  ({kinds})" if kinds else ""))
    note = tally.note()
    if note:
        print(f"note: {note}")
    if tally.errors:
        print("refused:")
        for error in tally.errors:
            print(f"  {error['position']}: {error['reason']}")
    if duplicates:
        print("duplicates:")
        for dup in duplicates:
            print(f"  {dup['position']}: same certificate as entry {dup['first']}")
