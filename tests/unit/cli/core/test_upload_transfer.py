"""``upload`` through boto3's managed transfer: one PUT below the threshold, multipart above it,
and the manifest id from the version the upload itself created (never a later one of the key)."""

from __future__ import annotations

from boto3.s3.transfer import TransferConfig

from thingpress.audit.keys import manifest_id
from thingpress_cli.core import deployment as deployment_module

MIB = 1024 * 1024


def test_a_single_put_and_a_multipart_upload_name_their_own_version(cloud, tmp_path, monkeypatch):
    # moto takes parts of 5 MiB and more (as S3): 5 MiB parts, multipart from 5 MiB
    monkeypatch.setattr(deployment_module, "TRANSFER",
                        TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2))
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_bytes(b"x" * 1000)
    large.write_bytes(b"y" * (5 * MIB + 1))
    for path, parts in ((small, None), (large, 2)):
        uploaded = cloud.deployment.upload(path)
        head = cloud.s3.head_object(Bucket=uploaded.bucket, Key=uploaded.key)
        assert uploaded.version_id == head["VersionId"] and head["ContentLength"] == path.stat().st_size
        assert head["ETag"].strip('"').endswith(f"-{parts}") if parts else "-" not in head["ETag"]
        assert uploaded.manifest_id == manifest_id("generated", uploaded.bucket, uploaded.key, uploaded.version_id)
        # a later upload of the same key is another version: this upload still names its own
        again = cloud.deployment.upload(path)
        assert again.version_id != uploaded.version_id and again.manifest_id != uploaded.manifest_id
