"""certs helpers, the vendor registry and the common scan / tally rules."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import factories
import pytest

from thingpress import certs
from thingpress.manifest import Scanned, Tally, scan
from thingpress.records import Certificate, ManifestError, Refusal
from thingpress.vendors import VENDORS, ParseOptions, parse_manifest, vendor_for_key


def test_fingerprint_is_sha256_of_der_and_pem_round_trips():
    device = factories.devices(1)[0]
    cert = certs.load_certificate(device.pem)
    assert certs.fingerprint(cert) == factories.fingerprint(device)
    der = certs.der_bytes(cert)
    assert certs.fingerprint(certs.load_certificate(der)) == factories.fingerprint(device)
    assert certs.pem_text(cert) == factories.certificate_pem(device)
    assert certs.common_name(cert) == "Device-0"


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "certificate is empty"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PEM block is not a CERTIFICATE"),
])
def test_load_certificate_reasons(data, reason):
    with pytest.raises(certs.CertificateError) as caught:
        certs.load_certificate(data)
    assert caught.value.reason == reason


def test_load_certificate_garbage_says_cannot_be_read():
    with pytest.raises(certs.CertificateError) as caught:
        certs.load_certificate(b"\x30\x03\x02\x01\x01")
    assert caught.value.reason.startswith("certificate cannot be read: ")


def test_a_serial_number_that_is_not_positive_is_refused():
    der = bytearray(certs.der_bytes(factories.devices(1)[0].certificate))
    serial_at = der.index(bytes([0xA0, 0x03, 0x02, 0x01, 0x02])) + 5  # after the v3 version field
    assert der[serial_at] == 0x02  # INTEGER
    der[serial_at + 2] |= 0x80  # its first octet's sign bit: the same length, a negative number
    with pytest.raises(certs.CertificateError) as caught:
        certs.load_der(bytes(der))
    assert caught.value.reason == "certificate serial number is not positive (RFC 5280 requires a positive one)"


def test_validity_problem_names_the_dates():
    cert = factories.devices(1)[0].certificate
    after = cert.not_valid_after_utc
    before = cert.not_valid_before_utc
    assert certs.validity_problem(cert, after.replace(year=after.year + 1)) == f"certificate expired on {after:%Y-%m-%d}"
    assert certs.validity_problem(cert, before.replace(year=before.year - 1)) == (
        f"certificate not valid before {before:%Y-%m-%d}")
    assert certs.validity_problem(cert, before) is None


@pytest.mark.parametrize(("name", "problem"), [
    ("Device-0", None),
    ("aa:bb_cc-DD09", None),
    ("x" * 128, None),
    ("x" * 129, "thing name is 129 characters long, IoT allows at most 128"),
    ("", "thing name is empty"),
    (None, "thing name is empty"),
    ("bad name!", "thing name 'bad name!' has characters IoT does not allow (' !'; allowed: a-z A-Z 0-9 : _ -)"),
])
def test_thing_name_rules(name, problem):
    assert certs.thing_name_problem(name) == problem


def test_registry_and_suffixes():
    assert {name: v.suffix for name, v in VENDORS.items()} == {
        "microchip": ".json", "infineon": ".7z", "espressif": ".csv", "generated": ".txt"}
    assert vendor_for_key("incoming/Reel.7Z") == "infineon"
    assert vendor_for_key("a/b/manifest.CSV") == "espressif"
    assert vendor_for_key("x.json") == "microchip"
    assert vendor_for_key("x.txt") == "generated"
    assert vendor_for_key("x.zip") is None


def test_parse_manifest_unknown_vendor():
    with pytest.raises(ManifestError) as caught:
        list(parse_manifest("acme", io.BytesIO(b"")))
    assert caught.value.reason == "unknown vendor 'acme' (known: espressif, generated, infineon, microchip)"


def _cert(position: int, fp: str, name: str = "Device-0") -> Certificate:
    now = datetime.now(UTC)
    return Certificate(position, name, "PEM", fp, now, now)


def test_scan_counts_duplicates_keeps_first_and_validates_names():
    a, b = "a" * 64, "b" * 64
    entries = [_cert(1, a), _cert(2, b), Refusal(3, "line 3: not standard base64", kind="malformed"),
               _cert(4, a, "Other"), _cert(5, "c" * 64, "bad name")]
    scanned = list(scan(entries))
    assert [s.duplicate_of for s in scanned] == [None, None, None, 1, None]
    assert isinstance(scanned[4].entry, Refusal)
    assert scanned[4].entry.reason == ("entry 5: thing name 'bad name' has characters IoT does not allow "
                                       "(' '; allowed: a-z A-Z 0-9 : _ -)")
    tally = Tally().count(scanned)
    assert (tally.entries, tally.accepted, tally.duplicates, tally.rejected) == (5, 2, 1, 2)
    assert tally.entries == tally.accepted + tally.duplicates + tally.rejected
    assert tally.errors == [{"position": 3, "reason": "line 3: not standard base64"},
                            {"position": 5, "reason": scanned[4].entry.reason}]
    assert tally.rejected_by_kind == {"malformed": 1, "thing_name": 1}


def test_scan_shares_seen_digests_for_resumption():
    seen: dict[bytes, int] = {}
    list(scan([_cert(1, "a" * 64)], seen))
    assert [s.duplicate_of for s in scan([_cert(2, "a" * 64)], seen)] == [1]


def test_tally_notes_and_error_bound():
    assert Tally().note() == "the manifest holds no entries: nothing to import"
    tally = Tally(max_errors=1)
    for position in (1, 2):
        tally.add(Scanned(Refusal(position, f"entry {position}: no cert", kind="no_certificate")))
    assert tally.no_certificates
    assert tally.note() == ("signed manifest holds no device certificates: all 2 entries carry none, "
                            "nothing to import")
    assert tally.rejected == 2 and len(tally.errors) == 1
    tally.add(Scanned(Refusal(3, "entry 3: expired", kind="expired")))
    assert not tally.no_certificates
    assert tally.note() == "every one of the 3 entries was refused: nothing to import"


def test_parse_options_default_rejects_expired():
    assert ParseOptions().expired == "reject"


class _Trickle:
    """An S3-body-like object: only ``read(n)``, and never more than 7 bytes at a time."""

    def __init__(self, data: bytes):
        self._inner = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(7 if n is None or n < 0 else min(n, 7))


@pytest.mark.parametrize("vendor", ["generated", "espressif", "microchip", "infineon"])
def test_parsers_read_plain_read_only_streams_in_small_pieces(vendor):
    devs = factories.devices(3)
    signer = factories.microchip_signer()
    data = {
        "generated": factories.generated_manifest(devs),
        "espressif": factories.espressif_manifest(factories.espressif_rows(devs)),
        "microchip": factories.microchip_manifest_for(devs, signer),
        "infineon": factories.infineon_reel({"E0E0": devs}),
    }[vendor]
    options = ParseOptions(microchip_signers=(signer.certificate,))
    trickled = list(parse_manifest(vendor, _Trickle(data), options))
    assert trickled == list(parse_manifest(vendor, io.BytesIO(data), options))
    assert sorted(e.fingerprint for e in trickled) == sorted(factories.fingerprint(d) for d in devs)
