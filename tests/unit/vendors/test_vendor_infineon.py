"""Infineon reels (.7z): archive of archives, bundle by setting, chip id = thing name, bounds."""

from __future__ import annotations

import io
import subprocess
import sys

import factories
import pytest

from thingpress.records import Certificate, ManifestError, Refusal
from thingpress.vendors import ArchiveLimits, ParseOptions, parse_manifest

REEL_PREFIX = f"{factories.REEL}_{factories.GUID}"


@pytest.fixture(scope="module")
def bundles():
    return factories.all_bundles(4)


@pytest.fixture(scope="module")
def reel(bundles) -> bytes:
    return factories.infineon_reel(bundles)


def parse(data: bytes, **options) -> list:
    return list(parse_manifest("infineon", io.BytesIO(data), ParseOptions(**options)))


class _Unseekable(io.RawIOBase):
    """An S3-body-like stream: read only, no seek."""

    def __init__(self, data: bytes):
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(n)


@pytest.mark.parametrize("bundle", ["E0E0", "E0E1", "E0E2"])
def test_each_bundle_yields_its_certificates_named_by_chip_id(reel, bundles, bundle):
    entries = parse(reel, infineon_bundle=bundle)
    chips = factories.infineon_chip_ids(4)
    assert all(isinstance(e, Certificate) for e in entries)
    assert [e.thing_name for e in entries] == sorted(chips)
    assert [e.position for e in entries] == [1, 2, 3, 4]
    assert {e.fingerprint for e in entries} == {factories.fingerprint(d) for d in bundles[bundle]}
    assert entries[0].details["bundle"] == bundle
    assert entries[0].details["file"] == f"{sorted(chips)[0]}_{bundle}.pem"


def test_unseekable_stream_is_spooled(reel):
    entries = list(parse_manifest("infineon", _Unseekable(reel), ParseOptions()))
    assert len(entries) == 4 and all(isinstance(e, Certificate) for e in entries)


def test_positions_follow_sorted_file_names_and_bad_files_are_refused_alone():
    dev = factories.devices(2)
    inner = factories.seven_zip({
        "ZZ_E0E0.pem": dev[1].pem,
        "AA_E0E0.pem": dev[0].pem,
        "MM_E0E0.pem": b"not a certificate",
        "notes.txt": b"hello",
        "BB_E0E1.pem": dev[0].pem,
        "CC_E0E0.pem": dev[0].pem + dev[1].pem,
    })
    reel = factories.seven_zip({f"{REEL_PREFIX}_E0E0_Certs.7z": inner})
    entries = parse(reel)
    assert [(e.position, getattr(e, "thing_name", None)) for e in entries if isinstance(e, Certificate)] == [
        (1, "AA"), (5, "ZZ")]  # byte order: upper case sorts before "notes.txt"
    reasons = {e.position: e.reason for e in entries if isinstance(e, Refusal)}
    assert reasons == {
        2: "file BB_E0E1.pem: not a chip certificate file (expected <chipId>_E0E0.pem)",
        3: "chip CC (CC_E0E0.pem): holds 2 certificates, expected 1",
        4: "chip MM (MM_E0E0.pem): certificate cannot be read: " + reasons[4].split("cannot be read: ")[1],
        6: "file notes.txt: not a chip certificate file (expected <chipId>_E0E0.pem)",
    }


def test_missing_bundle_is_refused_as_a_whole():
    reel = factories.infineon_reel({"E0E0": factories.devices(1)})
    with pytest.raises(ManifestError) as caught:
        parse(reel, infineon_bundle="E0E2")
    assert caught.value.reason == (
        f"infineon manifest holds no *_E0E2_Certs.7z archive(s) (expected exactly one); it holds: "
        f"{REEL_PREFIX}_E0E0_Certs.7z, {REEL_PREFIX}_keys.7z, README.txt")


def test_truncated_archive_is_refused_as_a_whole(reel):
    with pytest.raises(ManifestError) as caught:
        parse(reel[: len(reel) // 2])
    assert caught.value.reason.startswith("infineon manifest is not a readable 7z archive: ")
    assert caught.value.reason.endswith("(corrupt or truncated?)")


def test_corrupt_inner_archive_is_refused_as_a_whole(bundles):
    inner = factories.seven_zip({"AA_E0E0.pem": bundles["E0E0"][0].pem})
    broken = inner[:40] + bytes(b ^ 0xFF for b in inner[40:80]) + inner[80:]
    reel = factories.seven_zip({f"{REEL_PREFIX}_E0E0_Certs.7z": broken})
    with pytest.raises(ManifestError) as caught:
        parse(reel)
    assert caught.value.reason.startswith(f"infineon certificate archive {REEL_PREFIX}_E0E0_Certs.7z ")
    assert caught.value.reason.endswith("(corrupt or truncated?)")


def test_bounds_are_checked_before_extraction(reel, bundles):
    name = f"{REEL_PREFIX}_E0E0_Certs.7z"
    total = sum(len(d.pem) for d in bundles["E0E0"])
    first = bundles["E0E0"][0]
    cases = [
        (ArchiveLimits(max_archive_bytes=1000),
         f"infineon manifest is {len(reel)} bytes, more than the limit of 1000"),
        (ArchiveLimits(max_entries=3), "infineon manifest has 5 members, more than the limit of 3"),
        (ArchiveLimits(max_entry_bytes=100),
         f"infineon certificate archive {name}: {factories.infineon_chip_ids(4)[0]}_E0E0.pem declares "
         f"{len(first.pem)} bytes, more than the limit of 100 per file"),
        (ArchiveLimits(max_total_bytes=1000),
         f"infineon certificate archive {name} declares {total} bytes in all, more than the limit of 1000"),
        (ArchiveLimits(max_depth=1),
         f"infineon manifest: certificate archive {name} is nested deeper than the limit of 1"),
    ]
    for limits, reason in cases:
        with pytest.raises(ManifestError) as caught:
            parse(reel, limits=limits)
        assert caught.value.reason == reason


def test_archive_nested_inside_the_certificate_archive_is_refused():
    inner = factories.seven_zip({"deeper.7z": factories.seven_zip({"AA_E0E0.pem": b"x"})})
    reel = factories.seven_zip({f"{REEL_PREFIX}_E0E0_Certs.7z": inner})
    with pytest.raises(ManifestError) as caught:
        parse(reel)
    assert caught.value.reason == (f"infineon certificate archive {REEL_PREFIX}_E0E0_Certs.7z: deeper.7z is an "
                                   "archive nested deeper than the limit of 2")


def test_highly_compressible_bomb_is_refused_by_declared_size():
    inner = factories.seven_zip({"AA_E0E0.pem": b"\0" * 5_000_000})
    reel = factories.seven_zip({f"{REEL_PREFIX}_E0E0_Certs.7z": inner})
    assert len(reel) < 10_000
    with pytest.raises(ManifestError) as caught:
        parse(reel)
    assert caught.value.reason == (f"infineon certificate archive {REEL_PREFIX}_E0E0_Certs.7z: AA_E0E0.pem declares "
                                   "5000000 bytes, more than the limit of 65536 per file")


def test_expired_chip_certificate_rejected_by_default():
    reel = factories.infineon_reel({"E0E0": factories.devices(1, expired=True)})
    [entry] = parse(reel)
    chip = factories.infineon_chip_ids(1)[0]
    assert entry.reason.startswith(f"chip {chip} ({chip}_E0E0.pem): certificate expired on ")


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "infineon manifest is empty: expected a 7z archive (reel bundle)"),
    (b"MAC,cn,cert\n", "not an infineon manifest: expected a 7z archive (reel bundle), the file has no 7z signature"),
])
def test_not_an_infineon_manifest(data, reason):
    with pytest.raises(ManifestError) as caught:
        parse(data)
    assert caught.value.reason == reason


def test_unknown_bundle():
    with pytest.raises(ManifestError) as caught:
        parse(b"", infineon_bundle="E0E9")
    assert caught.value.reason == "unknown Infineon bundle 'E0E9' (expected one of E0E0, E0E1, E0E2)"


def test_py7zr_is_imported_by_the_first_extraction_not_by_the_functions_code():
    """Every provider and the watchdog import ``thingpress.provider`` (so every vendor); py7zr (with
    pycryptodomex and cffi) is left to the first reel extracted, the part of their cold import
    (tests/benchmarks/bench_importer_import.py) the other functions never use."""
    code = ("import io, sys; import thingpress.provider, thingpress.watchdog; print('py7zr' in sys.modules); "
            "from thingpress.vendors import ParseOptions, parse_manifest; "
            "list(parse_manifest('infineon', io.BytesIO(sys.stdin.buffer.read()), ParseOptions())); "
            "print('py7zr' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], input=factories.infineon_reel(factories.all_bundles(1)),
                          capture_output=True, check=True)
    assert done.stdout.split() == [b"False", b"True"]
