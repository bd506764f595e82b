"""The real vendor samples through the provider runtime (moto), as deployed: counts per sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_fixtures import FakeContext, create_bucket, drain_queue, put_and_event
from events import sqs_event

from thingpress import messages
from thingpress.audit.keys import manifest_id
from thingpress.audit.states import COMPLETE, QUEUED

# sample file, vendor, (entries, queued, rejected), state after parsing
SAMPLES = [
    ("ECC608C-TNGTLSU-B.json", "microchip", (10, 10, 0), QUEUED),
    ("ECC608-TMNGTLSS-B.json", "microchip", (10, 0, 10), COMPLETE),
    ("manifest-espressif.csv", "espressif", (7, 7, 0), QUEUED),
    ("manifest-infineon.7z", "infineon", (200, 200, 0), QUEUED),
    ("certificates_test.txt", "generated", (100, 0, 100), COMPLETE),  # expired: refused by default
]


@pytest.mark.samples
@pytest.mark.parametrize(("name", "vendor", "counts", "state"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_real_sample_through_the_provider(aws: Any, vendor_samples: Path, name: str, vendor: str,
                                          counts: tuple[int, int, int], state: str) -> None:
    create_bucket(aws.s3, "trust")
    for signer in sorted((vendor_samples / "microchip-signers").glob("*.crt")):
        aws.s3.put_object(Bucket="trust", Key=f"trust/microchip-signers/{signer.name}", Body=signer.read_bytes())
    event = put_and_event(aws.s3, aws.bucket, f"incoming/{vendor}/{name}", (vendor_samples / name).read_bytes())
    provider = aws.provider(vendor, microchip_signers="s3://trust/trust/microchip-signers/")

    assert provider.handle(sqs_event(event), FakeContext()) == {"batchItemFailures": []}

    obj = event["Records"][0]["s3"]["object"]
    mid = manifest_id(vendor, aws.bucket, f"incoming/{vendor}/{name}", obj["versionId"])
    summary = aws.audit.get_summary(mid)
    assert (summary["entries"], summary["queued"], summary["rejected"]) == counts
    assert summary["state"] == state and summary["parse_done"] is True
    if name == "ECC608-TMNGTLSS-B.json":
        assert summary["note"] == ("signed manifest holds no device certificates: all 10 entries carry none, "
                                   "nothing to import")
    sent = [messages.decode(m["Body"]) for m in drain_queue(aws.sqs, aws.import_queue)]
    assert len(sent) == counts[1] == len({m.fingerprint for m in sent})
    assert len([r for r in aws.audit.entries(mid) if r["sk"].startswith("R#")]) == counts[2]
