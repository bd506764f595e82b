"""One parse of an ARN (thingpress.arns): the parts, and the resource's type, name and qualifier."""

from __future__ import annotations

import pytest

from thingpress.arns import Arn


@pytest.mark.parametrize(("text", "kind", "name", "qualifier"), [
    ("arn:aws:lambda:us-east-1:123456789012:function:thingpress-importer", "function", "thingpress-importer", None),
    ("arn:aws:lambda:us-east-1:123456789012:function:f:live", "function", "f", "live"),
    ("arn:aws:lambda:us-east-1:123456789012:layer:thingpress-shared:7", "layer", "thingpress-shared", "7"),
    ("arn:aws:sqs:us-east-1:123456789012:thingpress-imports", "", "thingpress-imports", None),
    ("arn:aws:iot:us-east-1:123456789012:cert/abc123", "cert", "abc123", None),
    ("arn:aws:events:us-east-1:123456789012:rule/watchdog", "rule", "watchdog", None),
])
def test_the_resource_is_read_as_aws_writes_it(text, kind, name, qualifier):
    arn = Arn.parse(text)
    assert (arn.partition, arn.region, arn.account) == ("aws", "us-east-1", "123456789012")
    assert (arn.resource_type, arn.resource_name, arn.qualifier) == (kind, name, qualifier)


def test_the_other_partitions_and_an_empty_region_parse():
    arn = Arn.parse("arn:aws-cn:s3:::bucket")
    assert (arn.partition, arn.service, arn.region, arn.account, arn.resource) == ("aws-cn", "s3", "", "", "bucket")


@pytest.mark.parametrize("text", ["", "thingpress-imports", "arn:aws:sqs:us-east-1:123", "urn:aws:sqs:r:a:q"])
def test_what_is_not_an_arn_is_refused(text):
    with pytest.raises(ValueError, match="not an ARN"):
        Arn.parse(text)
