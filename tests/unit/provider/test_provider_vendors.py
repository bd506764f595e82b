"""Each vendor through the provider runtime: Microchip signers from S3, Infineon bundle, Espressif rows."""

from __future__ import annotations

import hashlib
import importlib
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus
from typing import Any

import factories as f
import pytest
from aws_fixtures import FakeContext, create_bucket, drain_queue, put_and_event
from events import sqs_event
from cryptography.hazmat.primitives.serialization import Encoding

from thingpress import messages
from thingpress.audit.keys import manifest_id
from thingpress.audit.states import COMPLETE, QUEUED, REFUSED
from thingpress.settings import SettingsError


def imports(aws: Any) -> list[messages.ImportMessage]:
    return sorted((messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)),
                  key=lambda m: m.position)


def mid_of(vendor: str, event: dict[str, Any]) -> str:
    rec = event["Records"][0]["s3"]
    return manifest_id(vendor, rec["bucket"]["name"], unquote_plus(rec["object"]["key"]),
                             rec["object"]["versionId"])


class CountingS3:
    """Counts get_object calls on a real (moto) S3 client."""

    def __init__(self, real: Any):
        self.real = real
        self.gets: list[str] = []

    def get_object(self, **kwargs: Any) -> Any:
        self.gets.append(kwargs["Key"])
        return self.real.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def signer(aws: Any) -> f.MicrochipSigner:
    """A test Microchip manifest signer, stored (PEM) under s3://signers/microchip/."""
    signer = f.microchip_signer()
    create_bucket(aws.s3, "signers")
    aws.s3.put_object(Bucket="signers", Key="microchip/test-signer.crt", Body=signer.certificate.public_bytes(Encoding.PEM))
    aws.s3.put_object(Bucket="signers", Key="microchip/README.md", Body=b"not a certificate, ignored")
    return signer


def test_microchip_verifies_with_signers_loaded_once_from_s3(aws, signer):
    devs = f.devices(4)
    entries = [f.microchip_entry(signer, f.microchip_unique_id(i), d) for i, d in enumerate(devs)]
    tampered = dict(entries[2])
    tampered["signature"] = tampered["signature"][:-4] + "AAAA"
    entries[2] = tampered
    counting = CountingS3(aws.s3)
    provider = aws.provider("microchip", microchip_signers="s3://signers/microchip/")
    provider._s3 = counting
    first = put_and_event(aws.s3, aws.bucket, "microchip/tngtls.json", f.microchip_manifest(entries))
    second = put_and_event(aws.s3, aws.bucket, "microchip/tngtls-2.json", f.microchip_manifest_for(f.devices(2, start=50), signer))

    assert provider.handle(sqs_event(first, second), FakeContext()) == {"batchItemFailures": []}

    assert counting.gets.count("microchip/test-signer.crt") == 1  # once per cold start
    sent = imports(aws)
    mid = mid_of("microchip", first)
    mine = [m for m in sent if m.manifest_id == mid]
    assert [(m.position, m.thing_name) for m in mine] == [(1, f.microchip_unique_id(0)), (2, f.microchip_unique_id(1)),
                                                         (4, f.microchip_unique_id(3))]
    assert [m.fingerprint for m in mine] == [f.fingerprint(devs[i]) for i in (0, 1, 3)]
    [row] = aws.audit.entries(mid)
    assert row["sk"] == "R#000000003"
    assert row["reason"] == (f"entry 3 (uniqueId {f.microchip_unique_id(2)}): signature does not verify "
                             f"against signer kid '{signer.kid}'")
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["rejected"]) == (4, 3, 1)
    assert aws.audit.get_summary(mid_of("microchip", second))["queued"] == 2


def test_a_signed_manifest_without_certificates_is_reported_as_such(aws, signer):
    entries = [f.microchip_entry(signer, f.microchip_unique_id(i), None) for i in range(3)]
    event = put_and_event(aws.s3, aws.bucket, "microchip/tmngtls.json", f.microchip_manifest(entries))

    aws.provider("microchip", microchip_signers="s3://signers/microchip/").handle(sqs_event(event), FakeContext())

    summary = aws.audit.get_summary(mid_of("microchip", event))
    assert summary["state"] == COMPLETE
    assert (summary["entries"], summary["queued"], summary["rejected"]) == (3, 0, 3)
    assert summary["note"] == ("signed manifest holds no device certificates: all 3 entries carry none, "
                               "nothing to import")
    assert imports(aws) == []


def test_microchip_without_signers_configured_fails_and_is_retried(aws):
    event = put_and_event(aws.s3, aws.bucket, "microchip/x.json", b"[]")
    response = aws.provider("microchip").handle(sqs_event(event), FakeContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


def test_microchip_signers_location_without_certificates_is_a_settings_error(aws):
    create_bucket(aws.s3, "signers")
    provider = aws.provider("microchip", microchip_signers="s3://signers/none/")
    with pytest.raises(SettingsError, match=r"no Microchip signer certificates \(.crt/.pem/.cer\) under s3://signers/none/"):
        provider.options()


def test_infineon_imports_the_configured_bundle_named_by_chip_id(aws):
    bundles = f.all_bundles(5)
    event = put_and_event(aws.s3, aws.bucket, "infineon/reel.7z", f.infineon_reel(bundles))

    aws.provider("infineon", infineon_bundle="E0E1").handle(sqs_event(event), FakeContext())

    sent = imports(aws)
    assert [m.thing_name for m in sent] == f.infineon_chip_ids(5)
    assert [m.fingerprint for m in sent] == [f.fingerprint(d) for d in bundles["E0E1"]]
    summary = aws.audit.get_summary(mid_of("infineon", event))
    assert (summary["entries"], summary["queued"], summary["state"]) == (5, 5, QUEUED)


def test_a_truncated_infineon_reel_is_refused_as_a_whole(aws):
    reel = f.infineon_reel(f.all_bundles(3))
    event = put_and_event(aws.s3, aws.bucket, "infineon/reel.7z", reel[: len(reel) // 2])

    assert aws.provider("infineon").handle(sqs_event(event), FakeContext()) == {"batchItemFailures": []}

    summary = aws.audit.get_summary(mid_of("infineon", event))
    assert summary["state"] == REFUSED
    version = event["Records"][0]["s3"]["object"]["versionId"]
    assert re.fullmatch(re.escape(f"s3://manifests/infineon/reel.7z (version {version}): infineon manifest is not "
                                  "a readable 7z archive: Bad7zFile: next header size ") + r"\d+" +
                        re.escape(" exceeds the archive size (corrupt or truncated?)"), summary["reason"])
    assert imports(aws) == []


def test_espressif_bad_rows_refused_one_by_one(aws):
    rows = f.espressif_rows(f.devices(3))
    rows.insert(1, ("ZZ", "x", "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n"))
    body = f.espressif_manifest(rows)
    event = put_and_event(aws.s3, aws.bucket, "espressif/batch.csv", body)

    aws.provider("espressif").handle(sqs_event(event), FakeContext())

    assert [(m.position, m.thing_name) for m in imports(aws)] == [(1, f.mac(0)), (3, f.mac(1)), (4, f.mac(2))]
    mid = mid_of("espressif", event)
    [row] = aws.audit.entries(mid)
    assert row["reason"] == "row 2 (MAC ZZ): 'ZZ' is not a MAC address (12 hex digits, optionally separated by ':' or '-')"
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["rejected"]) == (4, 3, 1)
    assert summary["sha256"] == hashlib.sha256(body).hexdigest()


def test_expired_certificates_follow_the_setting(aws):
    body = f.generated_manifest(f.devices(2, expired=True))
    rejected = put_and_event(aws.s3, aws.bucket, "generated/old.txt", body)
    aws.provider("generated").handle(sqs_event(rejected), FakeContext())
    assert imports(aws) == []
    rows = aws.audit.entries(mid_of("generated", rejected))
    assert [r["sk"] for r in rows] == ["R#000000001", "R#000000002"]
    assert all("expired" in r["reason"] for r in rows)

    imported = put_and_event(aws.s3, aws.bucket, "generated/old-again.txt", body)
    aws.provider("generated", expired_certificates="import").handle(sqs_event(imported), FakeContext())
    assert [m.thing_name for m in imports(aws)] == ["Device-0", "Device-1"]


def test_validity_is_judged_at_the_manifest_start_on_every_run(aws):
    """Issue 21, defect 2: a run after a certificate's notAfter (a continuation, a replay) judged it at
    "now" and refused what an earlier run of the same manifest had sent and imported; the counters then
    exceeded the entries and the manifest never completed. Received two days ago, while the
    certificates (expired yesterday) were still valid: both are sent, today too."""
    body = f.generated_manifest(f.devices(2, expired=True))
    event = put_and_event(aws.s3, aws.bucket, "generated/received-earlier.txt", body)
    obj = event["Records"][0]["s3"]["object"]
    mid = mid_of("generated", event)
    aws.audit.start_manifest(mid, vendor="generated", bucket=aws.bucket, key="generated/received-earlier.txt",
                             version=obj["versionId"], etag=obj["eTag"], size=obj["size"],
                             now=datetime.now(UTC) - timedelta(days=2))

    aws.provider("generated").handle(sqs_event(event), FakeContext())

    assert [m.thing_name for m in imports(aws)] == ["Device-0", "Device-1"]
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["rejected"]) == (2, 2, 0)


# -- the four handler modules -------------------------------------------------------


@pytest.mark.parametrize("vendor", ["microchip", "infineon", "espressif", "generated"])
def test_handler_modules_import_without_aws_and_fix_their_vendor(vendor, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    module = importlib.import_module(f"{vendor}_handler")
    assert module.provider.vendor == vendor
    assert module.provider._s3 is None and module.provider._sqs is None and module.provider._audit is None
    assert callable(module.lambda_handler)


def test_the_generated_handler_end_to_end_from_the_environment(aws, monkeypatch):
    from thingpress import settings

    monkeypatch.setenv(settings.AUDIT_TABLE, aws.audit.table)
    monkeypatch.setenv(settings.IMPORT_QUEUE_URL, aws.import_queue)
    monkeypatch.setenv(settings.MANIFEST_QUEUE_URL, aws.manifest_queue)
    monkeypatch.setenv(settings.VENDOR, "generated")
    module = importlib.reload(importlib.import_module("generated_handler"))
    event = put_and_event(aws.s3, aws.bucket, "generated/demo.txt", f.generated_manifest(f.devices(3)))

    assert module.lambda_handler(sqs_event(event), FakeContext()) == {"batchItemFailures": []}

    assert [m.thing_name for m in imports(aws)] == ["Device-0", "Device-1", "Device-2"]


def test_a_handler_deployed_with_another_vendor_setting_refuses_to_run(aws, monkeypatch):
    from thingpress import settings

    monkeypatch.setenv(settings.AUDIT_TABLE, aws.audit.table)
    monkeypatch.setenv(settings.VENDOR, "espressif")
    module = importlib.reload(importlib.import_module("generated_handler"))
    event = put_and_event(aws.s3, aws.bucket, "generated/demo.txt", f.generated_manifest(f.devices(1)))
    with pytest.raises(SettingsError, match="THINGPRESS_VENDOR is 'espressif' but this is the 'generated' provider"):
        module.provider.settings  # noqa: B018
    assert module.lambda_handler(sqs_event(event), FakeContext()) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert aws.dynamodb.scan(TableName=aws.audit.table)["Count"] == 0


def test_a_full_tmp_while_spooling_an_infineon_reel_is_a_refusal_with_the_reason(aws, monkeypatch):
    import errno
    import io
    from types import SimpleNamespace

    from thingpress.vendors import infineon

    class FullDisk(io.BytesIO):
        """A spool on a /tmp with no space left (what Lambda's ephemeral storage answers when full)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__()

        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    event = put_and_event(aws.s3, aws.bucket, "infineon/reel.7z", f.infineon_reel(f.all_bundles(3)))
    monkeypatch.setattr(infineon, "tempfile", SimpleNamespace(SpooledTemporaryFile=FullDisk))

    assert aws.provider("infineon").handle(sqs_event(event), FakeContext()) == {"batchItemFailures": []}  # no retry

    summary = aws.audit.get_summary(mid_of("infineon", event))
    assert summary["state"] == REFUSED
    assert summary["reason"].endswith(": no space left in the function's /tmp (its ephemeral storage) while "
                                      "spooling the manifest: give the function more ephemeral storage or lower "
                                      "the archive limits")
    assert imports(aws) == []
