"""The ``cloud`` fixture: every test starts from the deployment as created, whatever the previous test left.

The deployment is created once per process and each test gets a fresh copy of
moto's state (``aws_fixtures.prepared_aws``) and the kept clients as created. The
first test below runs a manifest through the provider and the importer and
leaves more behind (messages, a deleted policy, a changed function, an extra
role, client hooks); the second one (pytest runs a module's tests in order)
finds none of it.
"""

from __future__ import annotations

import factories
import pytest
from aws_fixtures import MotoState, leave_failing_hooks, prepared_state
from cli_cloud import IMPORTER, POLICY, THING_GROUP, Cloud

from thingpress import settings as env

#: In order, on one worker under pytest-xdist (ungrouped tests go out one by one).
pytestmark = pytest.mark.xdist_group("fixture-isolation-cli")


def _queues(cloud: Cloud) -> list[str]:
    out = cloud.deployment.outputs
    vendors = out.vendors.values()
    results_queue = out.results_dlq_url.removesuffix("-dlq")
    return [out.import_queue_url, out.import_dlq_url, out.lifecycle_queue_url, out.lifecycle_dlq_url, results_queue,
            out.results_dlq_url] + [
        url for vendor in vendors for url in (vendor.manifest_queue_url, vendor.manifest_dlq_url)]


def test_a_test_leaves_an_import_messages_and_changed_resources_behind(cloud: Cloud, tmp_path) -> None:
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(2, prefix="Isolation-")))
    mid = cloud.run(path)
    assert cloud.audit.get_summary(mid)["imported"] == 2
    out = cloud.deployment.outputs
    cloud.sqs.send_message(QueueUrl=out.import_dlq_url, MessageBody="{}")
    cloud.sqs.send_message(QueueUrl=out.vendors["espressif"].manifest_queue_url, MessageBody="{}")
    certificate = cloud.iot.list_certificates()["certificates"][0]["certificateArn"]
    cloud.iot.detach_policy(policyName=POLICY, target=certificate)
    cloud.deployment.client("lambda").update_function_configuration(
        FunctionName=IMPORTER, Environment={"Variables": {"LEFT": "behind"}})
    cloud.deployment.client("iam").create_role(RoleName="left-behind", AssumeRolePolicyDocument="{}")
    leave_failing_hooks(iot=cloud.iot, sqs=cloud.sqs, s3=cloud.s3, dynamodb=cloud.dynamodb)
    cloud.s3.left_behind = True

    with pytest.raises(AssertionError, match="earlier test"):
        cloud.iot.list_things()


def test_the_next_test_finds_the_deployment_as_created(cloud: Cloud) -> None:
    assert not hasattr(cloud.s3, "left_behind")
    out = cloud.deployment.outputs
    assert sorted(cloud.sqs.list_queues()["QueueUrls"]) == sorted(_queues(cloud))
    assert [cloud.deployment.queue_depth(url) for url in _queues(cloud)] == [0] * len(_queues(cloud))
    assert "Versions" not in cloud.s3.list_object_versions(Bucket=out.bucket_name)
    assert cloud.dynamodb.scan(TableName=out.audit_table_name)["Items"] == []
    assert cloud.iot.list_certificates()["certificates"] == []
    assert cloud.iot.list_things()["things"] == []
    assert [p["policyName"] for p in cloud.iot.list_policies()["policies"]] == [POLICY]
    assert cloud.iot.list_things_in_thing_group(thingGroupName=THING_GROUP)["things"] == []
    function = cloud.deployment.client("lambda").get_function_configuration(FunctionName=IMPORTER)
    assert function["Environment"]["Variables"][env.AUDIT_TABLE] == out.audit_table_name
    assert cloud.deployment.importer_settings() == cloud.settings
    roles = cloud.deployment.client("iam").list_roles()["Roles"]
    assert [role["RoleName"] for role in roles] == ["importer"]


def test_each_test_gets_a_copy_that_shares_nothing_with_the_kept_state(cloud: Cloud) -> None:
    live = MotoState.live()
    assert {bd.service_name for bd in live.backend_dicts()} >= {"s3", "sqs", "dynamodb", "iot", "iam", "lambda"}
    assert live.shared_with(prepared_state("cli")) == []
