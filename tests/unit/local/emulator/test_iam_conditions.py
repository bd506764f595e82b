"""IAM's wildcard matching in the emulator (local/iam_conditions.py), against the IAM user guide's rules.

"IAM JSON policy elements: Condition operators"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
StringLike takes "multi-character match wildcards (*) or single-character match wildcards (?)
anywhere in the string", nothing else; ArnLike/ArnEquals: "Each of the six colon-delimited
components of the ARN is checked separately". The cases marked *fnmatch* are where the emulator's
former ``fnmatch`` answered otherwise.
"""

from __future__ import annotations

import fnmatch

import pytest

ACCOUNT = "123456789012"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"


@pytest.mark.parametrize(("conditions", "context", "holds"), [
    # fnmatch: "[ab]" is a character class; for IAM it is four literal characters
    ({"StringLike": {"s3:prefix": "[ab]"}}, {"s3:prefix": "a"}, False),
    ({"StringLike": {"s3:prefix": "[ab]"}}, {"s3:prefix": "[ab]"}, True),
    ({"StringLike": {"s3:prefix": "staging/[!x]*"}}, {"s3:prefix": "staging/a.staged"}, False),
    # fnmatch: "*" ran across the colons of the ARN, into the account and the resource
    ({"ArnLike": {"aws:SourceArn": "arn:aws:sqs:*:1:q"}}, {"aws:SourceArn": "arn:aws:sqs:us-east-1:2:1:q"}, False),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:sqs:*:1:q"}}, {"aws:SourceArn": "arn:aws:sqs:us-east-1:1:q"}, True),
    # fnmatch: a five-component pattern is no ARN; it matched a six-component one
    ({"ArnLike": {"aws:SourceArn": "arn:aws:sqs:*:q"}}, {"aws:SourceArn": QUEUE}, False),
    # ArnEquals and ArnLike "behave identically" (wildcards included); the emulator compared exactly
    ({"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::thingpress-*"}}, {"aws:SourceArn": "arn:aws:s3:::thingpress-x"},
     True),
    ({"ArnNotEquals": {"aws:SourceArn": "arn:aws:s3:::thingpress-*"}}, {"aws:SourceArn": "arn:aws:s3:::thingpress-x"},
     False),
    # the resource component runs to the end, colons included
    ({"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/tp-*"}},
     {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/tp-fn:log-stream:x"},
     True),
    # "?" is exactly one character; "*" may be empty; case-sensitive
    ({"StringLike": {"k": "a?c"}}, {"k": "ac"}, False),
    ({"StringLike": {"k": "t*"}}, {"k": "t"}, True),
    ({"StringLike": {"k": "T*"}}, {"k": "true"}, False),
    # condition key names are not case-sensitive
    ({"StringEquals": {"AWS:SourceAccount": ACCOUNT}}, {"aws:SourceAccount": ACCOUNT}, True),
    # a policy variable is replaced first; ${*} is a literal star; a variable without a value matches nothing
    ({"StringLike": {"k": "${aws:SourceAccount}/*"}}, {"k": f"{ACCOUNT}/x", "aws:SourceAccount": ACCOUNT}, True),
    ({"StringLike": {"k": "a${*}"}}, {"k": "ab"}, False),
    ({"StringLike": {"k": "a${*}"}}, {"k": "a*"}, True),
    ({"StringLike": {"k": "${aws:username}*"}}, {"k": "bob"}, False),
    ({"Null": {"k": "true"}}, {}, True),
    ({"Null": {"k": "false"}}, {}, False),
])
def test_the_emulators_conditions_match_as_iam_does(conditions, context, holds):
    from thingpress_cli.local.emulator.iam_conditions import condition_holds

    assert condition_holds(conditions, context) is holds


def test_fnmatch_answered_the_marked_cases_wrongly():
    """The emulator's former matcher, for the record: what the cases above correct."""
    assert fnmatch.fnmatchcase("a", "[ab]")
    assert fnmatch.fnmatchcase("arn:aws:sqs:us-east-1:2:1:q", "arn:aws:sqs:*:1:q")
    assert fnmatch.fnmatchcase(QUEUE, "arn:aws:sqs:*:q")


def test_the_resource_element_differs_a_star_ending_a_segment_runs_past_colons():
    """"If the * wildcard is the last character of a resource ARN segment, it can expand to match
    beyond the colon boundaries" (the Resource element's page); ArnLike's does not."""
    from thingpress_cli.local.emulator.iam_conditions import arn_like, resource_matches

    assert resource_matches("arn:aws:sqs:*:1:q", "arn:aws:sqs:us-east-1:2:1:q")
    assert not arn_like("arn:aws:sqs:*:1:q", "arn:aws:sqs:us-east-1:2:1:q")
    assert not resource_matches("arn:aws:s3:::a*b", "arn:aws:s3:::a:b")  # inside a segment it stays there
    assert resource_matches("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/staging/m.staged")
    assert not resource_matches("arn:aws:s3:::bucket/[s]*", "arn:aws:s3:::bucket/s1")
    assert resource_matches("*", QUEUE)


def test_actions_match_case_insensitively_with_iam_wildcards_only():
    from thingpress_cli.local.emulator.iam_conditions import action_matches

    assert action_matches("S3:Get*", "s3:GetObject")
    assert action_matches("kms:GenerateDataKey*", "kms:GenerateDataKey")
    assert not action_matches("s3:[G]etObject", "s3:GetObject")
    assert not action_matches("s3:GetObject?", "s3:GetObject")


def test_a_deny_wins_an_allow_needs_its_principal_and_an_account_principal_only_delegates():
    from thingpress_cli.local.emulator.iam_conditions import decision

    allow_events = {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                    "Resource": QUEUE}
    deny_all = {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": QUEUE}
    root = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "s3:ListBucket",
            "Resource": "*"}

    def verdict(statements, principal, action="sqs:SendMessage"):
        return decision([{"Statement": statements}], action=action, resource=QUEUE, context={}, principal=principal)

    events, s3 = {"Service": "events.amazonaws.com"}, {"Service": "s3.amazonaws.com"}
    role = {"AWS": f"arn:aws:iam::{ACCOUNT}:role/r", "account": ACCOUNT}
    assert verdict([allow_events], events) == "Allow"
    assert verdict([allow_events], s3) is None
    assert verdict([allow_events, deny_all], events) == "Deny"
    assert verdict([root], role, "s3:ListBucket") is None  # delegation to the role's own policies
    assert verdict([{**root, "Effect": "Deny"}], role, "s3:ListBucket") == "Deny"
    # an identity policy's statements name no principal
    assert decision([{"Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}}],
                    action="s3:ListBucket", resource="arn:aws:s3:::b", context={}, principal=role) == "Allow"


def test_an_operator_the_emulator_does_not_evaluate_is_refused_loudly():
    from thingpress_cli.local.emulator.iam_conditions import UnsupportedCondition, condition_holds

    with pytest.raises(UnsupportedCondition, match="ForAnyValue:StringLike"):
        condition_holds({"ForAnyValue:StringLike": {"k": "a*"}}, {"k": "ab"})
