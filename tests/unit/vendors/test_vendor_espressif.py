"""Espressif manifests (.csv): MAC,cn,cert; thing name = MAC; bad rows refused alone."""

from __future__ import annotations

import io

import factories
import pytest

from thingpress.records import Certificate, ManifestError, Refusal
from thingpress.vendors import ParseOptions, parse_manifest


def parse(data: bytes, **options) -> list:
    return list(parse_manifest("espressif", io.BytesIO(data), ParseOptions(**options)))


def test_valid_rows_use_mac_as_thing_name():
    devs = factories.devices(4)
    entries = parse(factories.espressif_manifest(factories.espressif_rows(devs)))
    assert all(isinstance(e, Certificate) for e in entries)
    assert [e.thing_name for e in entries] == [factories.mac(i) for i in range(4)]
    assert [e.position for e in entries] == [1, 2, 3, 4]
    assert entries[2].details == {"cn": "Device-2"}
    assert [e.fingerprint for e in entries] == [factories.fingerprint(d) for d in devs]


def test_malformed_rows_are_refused_with_row_numbers_good_rows_kept():
    devs = factories.devices(3)
    good = factories.espressif_rows(devs)
    rows = [
        good[0],
        ("AA:BB:CC:DD:EE:FF", "Device-1", "not a pem"),
        ("ZZZZ", "Device-1", good[1][2]),
        ("AABBCCDDEEFF", "Device-9", good[1][2]),
        ("AABBCCDDEE00",),
        [],
        ("AA BB", "x", "y"),
        good[2],
    ]
    entries = parse(factories.espressif_manifest(rows))
    reasons = {e.position: e.reason for e in entries if isinstance(e, Refusal)}
    assert reasons.pop(2).startswith("row 2 (MAC AA:BB:CC:DD:EE:FF): certificate cannot be read: ")
    assert reasons == {
        3: "row 3 (MAC ZZZZ): 'ZZZZ' is not a MAC address (12 hex digits, optionally separated by ':' or '-')",
        4: "row 4 (MAC AABBCCDDEEFF): cn 'Device-9' differs from the certificate's CN 'Device-1'",
        5: "row 5: expected 3 fields (MAC,cn,cert), got 1",
        6: "row 6 (MAC AA BB): thing name 'AA BB' has characters IoT does not allow (' '; allowed: a-z A-Z 0-9 : _ -)",
    }
    assert [(e.position, e.thing_name) for e in entries if isinstance(e, Certificate)] == [
        (1, factories.mac(0)), (7, factories.mac(2))]


def test_expired_row_refused_by_default():
    rows = factories.espressif_rows(factories.devices(1, expired=True))
    [entry] = parse(factories.espressif_manifest(rows))
    assert isinstance(entry, Refusal) and entry.kind == "expired"
    assert entry.reason.startswith(f"row 1 (MAC {factories.mac(0)}): certificate expired on ")
    [entry] = parse(factories.espressif_manifest(rows), expired="import")
    assert isinstance(entry, Certificate)


def test_bom_and_lf_line_ends_are_accepted():
    rows = factories.espressif_rows(factories.devices(2))
    data = b"\xef\xbb\xbf" + factories.espressif_manifest(rows).replace(b"\r\n", b"\n")
    assert [e.thing_name for e in parse(data)] == [factories.mac(0), factories.mac(1)]


def test_field_over_the_csv_limit_stops_the_file():
    data = b'MAC,cn,cert\nAABBCCDDEEFF,x,"' + b"A" * 200_000
    with pytest.raises(ManifestError) as caught:
        parse(data)
    assert caught.value.reason.startswith("espressif manifest is not valid CSV after line ")
    assert caught.value.reason.endswith("(an unterminated quote?)")


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "espressif manifest is empty: expected a CSV with header MAC,cn,cert"),
    (b"[{\"payload\": \"x\"}]", "not an espressif manifest: expected CSV header MAC,cn,cert, got '[{\"payload\": \"x\"}]'"),
    (b"mac,cn,cert\n", "not an espressif manifest: expected CSV header MAC,cn,cert, got 'mac,cn,cert'"),
])
def test_not_an_espressif_manifest(data, reason):
    with pytest.raises(ManifestError) as caught:
        parse(data)
    assert caught.value.reason == reason
