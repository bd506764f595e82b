"""Microchip manifests (.json): ES256 JWS per entry, signer by kid + x5t#S256."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime

import factories
import pytest

from thingpress.manifest import Tally, scan
from thingpress.records import Certificate, ManifestError
from thingpress.vendors import ParseOptions, microchip_signers, parse_manifest
from thingpress.vendors.microchip_signers import b64url, index_signers


@pytest.fixture(scope="module")
def signer() -> factories.MicrochipSigner:
    return factories.microchip_signer()


def parse(data: bytes, *signers: factories.MicrochipSigner, **options) -> list:
    trusted = tuple(s.certificate for s in signers)
    return list(parse_manifest("microchip", io.BytesIO(data), ParseOptions(microchip_signers=trusted, **options)))


def test_signed_manifest_yields_certificates_named_by_unique_id(signer):
    devs = factories.devices(3)
    entries = parse(factories.microchip_manifest_for(devs, signer), signer)
    assert all(isinstance(e, Certificate) for e in entries)
    assert [e.thing_name for e in entries] == [factories.microchip_unique_id(i) for i in range(3)]
    assert [e.fingerprint for e in entries] == [factories.fingerprint(d) for d in devs]
    assert entries[0].details["signer_kid"] == signer.kid


def test_signer_is_indexed_by_ski_and_x5t(signer):
    [indexed] = index_signers([signer.certificate])[signer.kid]
    assert indexed.x5t == signer.x5t


def test_tampered_signature_is_refused(signer):
    entry = factories.microchip_entry(signer, "0123aa", factories.devices(1)[0])
    entry["signature"] = b64url(bytes(32) + bytes(32))
    [refusal] = parse(factories.microchip_manifest([entry]), signer)
    assert refusal.reason == f"entry 1 (uniqueId 0123aa): signature does not verify against signer kid '{signer.kid}'"
    assert refusal.kind == "signature" and refusal.thing_name == "0123aa"
    entry["signature"] = b64url(bytes(63))
    [refusal] = parse(factories.microchip_manifest([entry]), signer)
    assert refusal.reason == "entry 1 (uniqueId 0123aa): signature is not a 64-byte ES256 signature (got 63 bytes)"


def test_tampered_payload_is_refused(signer):
    good = factories.microchip_entry(signer, "0123aa", factories.devices(1)[0])
    other = factories.microchip_entry(signer, "0123bb", factories.devices(2)[1])
    good["payload"] = other["payload"]
    good["header"] = {"uniqueId": "0123bb"}
    [refusal] = parse(factories.microchip_manifest([good]), signer)
    assert refusal.reason == f"entry 1 (uniqueId 0123bb): signature does not verify against signer kid '{signer.kid}'"


def test_altered_unprotected_header_is_refused(signer):
    entry = factories.microchip_entry(signer, "0123aa", factories.devices(1)[0], header_unique_id="0123ff")
    [refusal] = parse(factories.microchip_manifest([entry]), signer)
    assert refusal.reason == ("entry 1 (uniqueId 0123ff): unprotected header uniqueId '0123ff' differs from the "
                              "signed uniqueId '0123aa'")


def test_unknown_kid_and_wrong_x5t_are_refused(signer):
    stranger = factories.microchip_signer(name="stranger")
    entry = factories.microchip_entry(stranger, "0123aa", factories.devices(1)[0])
    [refusal] = parse(factories.microchip_manifest([entry]), signer)
    assert refusal.reason == (f"entry 1 (uniqueId 0123aa): signed by unknown signer kid '{stranger.kid}' "
                              "(not one of the trusted Microchip signers)")
    assert refusal.kind == "signer"
    entry = factories.microchip_entry(signer, "0123aa", factories.devices(1)[0], protected={"x5t#S256": "AAAA"})
    [refusal] = parse(factories.microchip_manifest([entry]), signer)
    assert refusal.reason == (f"entry 1 (uniqueId 0123aa): x5t#S256 'AAAA' does not match the trusted signer "
                              f"with kid '{signer.kid}'")


def test_unsupported_alg_is_refused(signer):
    entry = factories.microchip_entry(signer, "0123aa", protected={"alg": "none"})
    [refusal] = parse(factories.microchip_manifest([entry]), signer)
    assert refusal.reason == "entry 1 (uniqueId 0123aa): unsupported signature algorithm 'none' (expected ES256)"


def test_signer_validity_is_judged_at_provisioning_time():
    expired_signer = factories.microchip_signer(datetime(2023, 7, 18, tzinfo=UTC), datetime(2026, 7, 18, tzinfo=UTC))
    dev = factories.devices(1)[0]
    inside = factories.microchip_entry(expired_signer, "0123aa", dev, provisioned_at=datetime(2025, 1, 1, tzinfo=UTC))
    outside = factories.microchip_entry(expired_signer, "0123bb", dev, provisioned_at=datetime(2026, 8, 1, tzinfo=UTC))
    missing = factories.microchip_entry(expired_signer, "0123cc", dev, payload_extra={"provisioningTimestamp": None})
    first, second, third = parse(factories.microchip_manifest([inside, outside, missing]), expired_signer)
    assert isinstance(first, Certificate)
    assert second.reason == (f"entry 2 (uniqueId 0123bb): signed on 2026-08-01, outside the validity of signer kid "
                             f"'{expired_signer.kid}' (2023-07-18 to 2026-07-18)")
    assert third.reason == ("entry 3 (uniqueId 0123cc): signed payload has no valid provisioningTimestamp "
                            "(got None); it is needed to judge the signer")


def test_entries_without_certificates_are_reported_as_such(signer):
    entries = [factories.microchip_entry(signer, f"0123{i:02x}") for i in range(3)]
    parsed = parse(factories.microchip_manifest(entries), signer)
    assert [e.reason for e in parsed] == [
        f"entry {i + 1} (uniqueId 0123{i:02x}): signed entry carries no device certificate (publicKeySet absent)"
        for i in range(3)]
    tally = Tally().count(scan(iter(parsed)))
    assert tally.no_certificates and tally.accepted == 0
    no_key0 = factories.microchip_entry(signer, "0123aa", payload_extra={"publicKeySet": {"keys": []}})
    [refusal] = parse(factories.microchip_manifest([no_key0]), signer)
    assert refusal.reason == ('entry 1 (uniqueId 0123aa): signed entry carries no device certificate '
                              '(publicKeySet has no key "0" with x5c)')


def test_certificate_must_hold_the_signed_key(signer):
    dev = factories.devices(1)[0]
    entry = factories.microchip_entry(signer, "0123aa", dev)
    payload = json.loads(base64.urlsafe_b64decode(entry["payload"] + "=="))
    payload["publicKeySet"]["keys"][0]["x"] = b64url(bytes(32))
    resigned = factories.microchip_entry(signer, "0123aa", None, payload_extra={"publicKeySet": payload["publicKeySet"]})
    [refusal] = parse(factories.microchip_manifest([resigned]), signer)
    assert refusal.reason == ("entry 1 (uniqueId 0123aa): device certificate x5c[0] public key differs from the "
                              "signed key 0 (x, y)")


def test_malformed_elements_are_refused_alone(signer):
    good = factories.microchip_entry(signer, "0123aa", factories.devices(1)[0])
    manifest = factories.microchip_manifest([42, {"protected": "x"}, {"protected": "!!", "payload": "", "signature": ""},
                                             good])
    entries = parse(manifest, signer)
    assert [getattr(e, "reason", None) for e in entries[:3]] == [
        "entry 1: not a signed entry (expected a JSON object with string protected, payload, signature)",
        "entry 2: not a signed entry (expected a JSON object with string protected, payload, signature)",
        "entry 3: protected header is not base64url JSON",
    ]
    assert isinstance(entries[3], Certificate)


def test_expired_device_certificate_rejected_by_default(signer):
    entry = factories.microchip_entry(signer, "0123aa", factories.devices(1, expired=True)[0])
    [refusal] = parse(factories.microchip_manifest([entry]), signer)
    assert refusal.reason.startswith("entry 1 (uniqueId 0123aa): certificate expired on ")
    [accepted] = parse(factories.microchip_manifest([entry]), signer, expired="import")
    assert isinstance(accepted, Certificate)


def test_streaming_reads_entries_across_buffer_boundaries(signer):
    devs = factories.devices(40)
    entries = parse(factories.microchip_manifest_for(devs, signer), signer)  # ~150 KiB: several 64 KiB reads
    assert [e.position for e in entries] == list(range(1, 41))
    assert all(isinstance(e, Certificate) for e in entries)


def test_truncated_manifest_fails_after_yielding_complete_entries(signer):
    data = factories.microchip_manifest_for(factories.devices(3), signer)
    second = data.index(b'"payload"', data.index(b'"payload"') + 1)
    stream = parse_manifest("microchip", io.BytesIO(data[: second + 50]),
                            ParseOptions(microchip_signers=(signer.certificate,)))
    assert isinstance(next(stream), Certificate)
    with pytest.raises(ManifestError) as caught:
        list(stream)
    assert caught.value.reason.startswith("microchip manifest is not valid JSON at entry 2: Unterminated string")
    assert caught.value.reason.endswith("(truncated file?)")
    after_comma = data[: data.index(b"\n  },\n") + 5]
    with pytest.raises(ManifestError) as caught:
        parse(after_comma, signer)
    assert caught.value.reason == "microchip manifest ends where entry 2 should be (truncated file?)"


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "microchip manifest is empty: expected a JSON array of signed entries"),
    (b"  \n", "microchip manifest is empty: expected a JSON array of signed entries"),
    (b"MAC,cn,cert\r\n", "not a microchip manifest: expected a JSON array of signed entries (flattened JWS), "
                         "found 'MAC,cn,cert\\r\\n' at the start"),
    (b'{"a": 1}', "not a microchip manifest: expected a JSON array of signed entries (flattened JWS), "
                  "found '{\"a\": 1}' at the start"),
    (b"[1 2]", "microchip manifest is not valid JSON after entry 1: expected ',' or ']', found '2]' (truncated file?)"),
    (b"[] x", "microchip manifest has data after the JSON array: 'x'"),
    (b"[\xff]", "microchip manifest is not UTF-8 text: invalid start byte"),
])
def test_not_a_microchip_manifest(data, reason, signer):
    with pytest.raises(ManifestError) as caught:
        parse(data, signer)
    assert caught.value.reason == reason


def test_empty_array_is_zero_entries_and_no_signers_is_an_error(signer):
    assert parse(b"[]", signer) == []
    with pytest.raises(ManifestError) as caught:
        parse(factories.microchip_manifest([factories.microchip_entry(signer, "0123aa")]))
    assert caught.value.reason == ("microchip manifest cannot be verified: no trusted Microchip manifest signer "
                                   "certificate is configured")


# -- signer files: one reader, one list of names (stack, provider, inspect) ---------------------------


def test_signer_files_are_read_as_pem_bundles_or_one_der_certificate(signer):
    from cryptography.hazmat.primitives.serialization import Encoding

    from thingpress.vendors.microchip_signers import read_signer_file

    pem = signer.certificate.public_bytes(Encoding.PEM)
    assert read_signer_file("a.crt", pem + pem) == (signer.certificate, signer.certificate)
    assert read_signer_file("b.CER", signer.certificate.public_bytes(Encoding.DER)) == (signer.certificate,)


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("signer.txt", None, "signer.txt: not taken as a Microchip signer certificate file: "
                         "the name must end in .crt, .pem or .cer"),
    ("notes.crt", b"not a certificate", "notes.crt: holds no PEM certificate, nor is it one DER certificate "
                                        "(certificate cannot be read: "),
    ("empty.pem", b"", "empty.pem: holds no PEM certificate (empty)"),
], ids=["name", "text", "empty"])
def test_a_signer_file_is_refused_with_its_name_and_reason(signer, tmp_path, name, data, reason):
    from cryptography.hazmat.primitives.serialization import Encoding

    from thingpress.errors import Refused
    from thingpress.vendors.microchip_signers import SignerFileError, load_signers

    (tmp_path / "good.crt").write_bytes(signer.certificate.public_bytes(Encoding.PEM))
    (tmp_path / name).write_bytes(signer.certificate.public_bytes(Encoding.PEM) if data is None else data)
    with pytest.raises(SignerFileError) as caught:
        load_signers(tmp_path)
    assert isinstance(caught.value, Refused) and caught.value.reason.startswith(reason)


# -- signer notices (thingpress plan, the stack's settings check) --------------------------------


def test_signer_notices_name_the_expired_and_the_expiring_within_90_days_only():
    now = datetime(2026, 5, 1, tzinfo=UTC)
    expired = factories.microchip_signer(not_after=datetime(2026, 4, 30, 23, 0, tzinfo=UTC), name="old signer")
    soon = factories.microchip_signer(not_after=datetime(2026, 7, 18, tzinfo=UTC), name="signer 4")
    later = factories.microchip_signer(not_after=datetime(2026, 7, 31, tzinfo=UTC), name="signer 5")  # 91 days

    notices = microchip_signers.signer_notices([later.certificate, soon.certificate, expired.certificate], now)

    assert notices == [
        "trusted Microchip signer 'old signer' expired on 2026-04-30: entries it signed after that are refused",
        "trusted Microchip signer 'signer 4' expires on 2026-07-18 (in 78 days): add its successor before "
        "manifests signed after that arrive"]
