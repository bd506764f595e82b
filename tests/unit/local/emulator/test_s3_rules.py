"""A missing object is 403 to a caller without s3:ListBucket (local/s3_rules.py), on the emulator.

AWS (HeadObject / GetObject API reference, "Permissions"): "If you have the s3:ListBucket
permission on the bucket, Amazon S3 returns an HTTP status code 404 Not Found error. If you don't
have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 Forbidden error."
The caller is a role whose temporary credentials come from the emulator's STS, as the local
runner gives each function its execution role's.
"""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from thingpress_cli.local.state import REGION


@pytest.fixture
def bucket(aws) -> str:
    name = f"rules-{uuid.uuid4().hex[:10]}"
    aws("s3").create_bucket(Bucket=name)
    aws("s3").put_object(Bucket=name, Key="staging/there.staged", Body=b"x")
    return name


@pytest.fixture
def as_role(aws, emulator_url):
    """An S3 client signed with the temporary credentials of a new role holding ``statements``."""

    def make(*statements: dict) -> tuple[str, object]:
        iam = aws("iam")
        name = f"rules-role-{uuid.uuid4().hex[:8]}"
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": list(statements)}))
        creds = aws("sts").assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
        return arn, boto3.client("s3", endpoint_url=emulator_url, region_name=REGION,
                                 aws_access_key_id=creds["AccessKeyId"],
                                 aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])

    return make


def read(bucket: str, s3, key: str) -> tuple[int, str]:
    """(HTTP status, error code) of GetObject and HeadObject on ``key``: both must agree."""
    answers = []
    for call in (s3.get_object, s3.head_object):
        try:
            call(Bucket=bucket, Key=key)
            answers.append((200, ""))
        except ClientError as error:
            answers.append((error.response["ResponseMetadata"]["HTTPStatusCode"], error.response["Error"]["Code"]))
    (get_status, get_code), (head_status, _) = answers
    assert get_status == head_status, answers
    return get_status, get_code


def get_objects(bucket: str) -> dict:
    return {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}


def test_without_list_bucket_a_missing_object_is_403_and_a_present_one_is_read(bucket, as_role):
    _, s3 = as_role(get_objects(bucket))
    assert read(bucket, s3, "staging/gone.staged") == (403, "AccessDenied")
    assert read(bucket, s3, "staging/there.staged") == (200, "")


def test_with_list_bucket_a_missing_object_is_404(bucket, as_role):
    _, s3 = as_role(get_objects(bucket), {"Effect": "Allow", "Action": "s3:ListBucket",
                                          "Resource": f"arn:aws:s3:::{bucket}"})
    assert read(bucket, s3, "staging/gone.staged") == (404, "NoSuchKey")


def test_list_bucket_limited_by_an_s3_prefix_condition_does_not_earn_the_404(bucket, as_role):
    """The check carries no s3:prefix (the stricter reading, see s3_rules.py)."""
    _, s3 = as_role(get_objects(bucket), {"Effect": "Allow", "Action": "s3:ListBucket",
                                          "Resource": f"arn:aws:s3:::{bucket}",
                                          "Condition": {"StringLike": {"s3:prefix": "staging/*"}}})
    assert read(bucket, s3, "staging/gone.staged") == (403, "AccessDenied")


def test_a_bucket_policy_deny_of_list_bucket_wins_over_the_roles_grant(aws, bucket, as_role):
    role, s3 = as_role(get_objects(bucket), {"Effect": "Allow", "Action": "s3:ListBucket",
                                             "Resource": f"arn:aws:s3:::{bucket}"})
    aws("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": role}, "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}]}))
    assert read(bucket, s3, "staging/gone.staged") == (403, "AccessDenied")


def test_the_accounts_administrator_gets_moto_s_404(aws, bucket):
    """Every caller that is no role of the emulator's STS (CLI, tests: ``testing``) may list."""
    assert read(bucket, aws("s3"), "staging/gone.staged") == (404, "NoSuchKey")
