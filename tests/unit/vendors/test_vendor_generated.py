"""Generated manifests (.txt): one base64 PEM per line, thing name = CN."""

from __future__ import annotations

import base64
import io

import factories
import pytest

from thingpress.manifest import Tally, scan
from thingpress.records import Certificate, ManifestError, Refusal
from thingpress.vendors import ParseOptions, parse_manifest


def parse(data: bytes, **options) -> list:
    return list(parse_manifest("generated", io.BytesIO(data), ParseOptions(**options)))


def test_valid_manifest_yields_each_certificate_with_cn_as_thing_name():
    devs = factories.devices(5)
    entries = parse(factories.generated_manifest(devs))
    assert [e.position for e in entries] == [1, 2, 3, 4, 5]
    assert all(isinstance(e, Certificate) for e in entries)
    assert [e.thing_name for e in entries] == [f"Device-{i}" for i in range(5)]
    assert [e.fingerprint for e in entries] == [factories.fingerprint(d) for d in devs]
    assert entries[0].certificate_pem == factories.certificate_pem(devs[0])


def test_bad_lines_are_refused_one_by_one_with_line_numbers():
    devs = factories.devices(3)
    lines = factories.generated_manifest(devs).splitlines(keepends=True)
    no_cn = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") + b"\n"
    data = b"".join([lines[0], b"\n", b"not*base64\n", base64.b64encode(b"hello") + b"\n", lines[1],
                     no_cn, b"QUJD\r\n", lines[2]])
    entries = parse(data)
    refusals = {e.position: e.reason for e in entries if isinstance(e, Refusal)}
    assert [e.position for e in entries] == [1, 2, 3, 4, 5, 6, 7]  # the blank line 2 is no entry
    assert refusals[2] == "line 3: not standard base64"
    assert refusals[3] == "line 4: base64 does not decode to a PEM certificate"
    assert refusals[5].startswith("line 6: certificate cannot be read: ")
    assert refusals[6] == "line 7: base64 does not decode to a PEM certificate"
    assert [e.thing_name for e in entries if isinstance(e, Certificate)] == ["Device-0", "Device-1", "Device-2"]


def test_expired_rejected_by_default_imported_on_request():
    data = factories.generated_manifest(factories.devices(2, expired=True))
    refused = parse(data)
    assert all(isinstance(e, Refusal) and e.kind == "expired" for e in refused)
    assert refused[0].reason.startswith("line 1 (Device-0): certificate expired on ")
    assert refused[0].thing_name == "Device-0" and refused[0].fingerprint
    assert all(isinstance(e, Certificate) for e in parse(data, expired="import"))


def test_invalid_cn_is_refused_as_thing_name():
    devs = factories.devices(1, prefix="bad name ")
    [entry] = parse(factories.generated_manifest(devs))
    assert isinstance(entry, Refusal) and entry.kind == "thing_name"
    assert entry.reason == ("line 1 (bad name 0): thing name 'bad name 0' has characters IoT does not allow "
                            "(' '; allowed: a-z A-Z 0-9 : _ -)")


def test_duplicate_lines_counted_once():
    line = factories.generated_manifest(factories.devices(1))
    tally = Tally().count(scan(parse_manifest("generated", io.BytesIO(line * 3), ParseOptions())))
    assert (tally.entries, tally.accepted, tally.duplicates, tally.rejected) == (3, 1, 2, 0)


def test_overlong_line_is_refused_alone():
    devs = factories.devices(1)
    data = b"A" * 70_000 + b"\n" + factories.generated_manifest(devs)
    first, second = parse(data)
    assert first.reason == "line 1: line is longer than 65536 bytes"
    assert isinstance(second, Certificate) and second.position == 2


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "generated manifest is empty: expected one standard-base64 PEM certificate per line"),
    (b"\n \n\r\n", "generated manifest is empty: expected one standard-base64 PEM certificate per line"),
    (b"MAC,cn,cert\n4BA2,x,y\n", "not a generated manifest: expected one standard-base64 PEM certificate per line, "
                                 "line 1 is not base64 text"),
    (b"\x00\x01\x02", "not a generated manifest: expected one standard-base64 PEM certificate per line, "
                      "line 1 is not base64 text"),
])
def test_not_a_generated_manifest(data, reason):
    with pytest.raises(ManifestError) as caught:
        parse(data)
    assert caught.value.reason == reason
