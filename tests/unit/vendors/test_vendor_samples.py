"""The real vendor samples (../shared/vendor-samples, via the vendor_samples fixture)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from thingpress import certs
from thingpress.manifest import Tally, scan
from thingpress.records import Certificate
from thingpress.vendors import ParseOptions, parse_manifest, vendor_for_key
from thingpress.vendors.microchip_signers import load_signers

pytestmark = pytest.mark.samples


def tally(path: Path, **options) -> Tally:
    with path.open("rb") as stream:
        return Tally().count(scan(parse_manifest(vendor_for_key(path.name), stream, ParseOptions(**options))))


@pytest.fixture(scope="module")
def signers(vendor_samples):
    found = load_signers(vendor_samples / "microchip-signers")
    assert len(found) == 5
    return found


def test_microchip_trust_and_go_sample_has_10_certificates(vendor_samples, signers):
    result = tally(vendor_samples / "ECC608C-TNGTLSU-B.json", microchip_signers=signers)
    assert (result.entries, result.accepted, result.duplicates, result.rejected) == (10, 10, 0, 0)


def test_microchip_sample_stays_valid_when_judged_later(vendor_samples, signers):
    # signer validity is judged at provisioningTimestamp; device certs run to 2053
    result = tally(vendor_samples / "ECC608C-TNGTLSU-B.json", microchip_signers=signers,
                   now=datetime(2040, 1, 1, tzinfo=UTC))
    assert result.accepted == 10


def test_microchip_sample_without_certificates_is_reported_as_such(vendor_samples, signers):
    result = tally(vendor_samples / "ECC608-TMNGTLSS-B.json", microchip_signers=signers)
    assert (result.entries, result.accepted, result.rejected) == (10, 0, 10)
    assert result.no_certificates
    assert result.note() == ("signed manifest holds no device certificates: all 10 entries carry none, "
                             "nothing to import")
    assert result.errors[0] == {"position": 1, "reason": "entry 1 (uniqueId 01230cac6606e99401): signed entry "
                                                         "carries no device certificate (publicKeySet absent)"}


def test_microchip_sample_without_its_signer_is_refused_entry_by_entry(vendor_samples, signers):
    result = tally(vendor_samples / "ECC608C-TNGTLSU-B.json", microchip_signers=signers[:4])
    assert result.rejected == 10 and result.rejected_by_kind == {"signer": 10}
    assert result.errors[0]["reason"] == ("entry 1 (uniqueId 0123f2408ea1fcf201): signed by unknown signer kid "
                                          "'TCnpnzYB8M3CO776ByPJ2yX3KYo' (not one of the trusted Microchip signers)")


def test_espressif_sample_has_7_certificates(vendor_samples):
    result = tally(vendor_samples / "manifest-espressif.csv")
    assert (result.entries, result.accepted, result.rejected) == (7, 7, 0)


@pytest.mark.parametrize("bundle", ["E0E0", "E0E1", "E0E2"])
def test_infineon_sample_has_200_per_bundle(vendor_samples, bundle):
    with (vendor_samples / "manifest-infineon.7z").open("rb") as stream:
        entries = list(parse_manifest("infineon", stream, ParseOptions(infineon_bundle=bundle)))
    assert len(entries) == 200 and all(isinstance(e, Certificate) for e in entries)
    assert len({e.fingerprint for e in entries}) == 200
    assert {e.details["file"].endswith(f"_{bundle}.pem") for e in entries} == {True}
    loaded = [certs.load_certificate(e.certificate_pem.encode()) for e in entries]
    issuers = {c.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in loaded}
    if bundle == "E0E2":
        assert issuers == {"Infineon OPTIGA(TM) Trust M CA 309"}
        assert all(isinstance(c.public_key(), rsa.RSAPublicKey) and c.public_key().key_size == 2048 for c in loaded)
    else:
        assert issuers == {"Infineon OPTIGA(TM) Trust M CA 306"}
        assert all(isinstance(c.public_key(), ec.EllipticCurvePublicKey) for c in loaded)


def test_infineon_chip_ids_are_the_same_across_bundles(vendor_samples):
    names = []
    for bundle in ("E0E0", "E0E2"):
        with (vendor_samples / "manifest-infineon.7z").open("rb") as stream:
            names.append([e.thing_name for e in parse_manifest("infineon", stream, ParseOptions(infineon_bundle=bundle))])
    assert names[0] == names[1]


def test_generated_sample_is_expired_refused_by_default_imported_on_request(vendor_samples):
    refused = tally(vendor_samples / "certificates_test.txt")
    assert (refused.entries, refused.accepted, refused.rejected) == (100, 0, 100)
    assert refused.errors[0] == {"position": 1, "reason": "line 1 (Device-0): certificate expired on 2025-09-13"}
    imported = tally(vendor_samples / "certificates_test.txt", expired="import")
    assert (imported.entries, imported.accepted, imported.rejected) == (100, 100, 0)
