"""Security and wiring properties of the synthesized stack (aws target, suffix dev)."""

from __future__ import annotations

import json

import pytest
from thingpress import settings
from thingpress.audit.keys import INDEX_BY_STATE, INDEX_BY_THING, TTL_ATTRIBUTE
from tfjson import as_list, by_ref, find_by, policies, redrive_of, ref, resources

from stacks import defaults, outputs, packaging
from stacks.naming import FUNCTION_KEYS, VENDORS, WATCHDOG, handler_module, provider_key, vendor_prefix


@pytest.mark.parametrize("target", ["aws", "local"])
def test_stack_outputs_equal_the_contract(synth, target):
    doc = synth.json[target]
    assert list(doc["output"]) == sorted(outputs.contract_keys(target))
    # cdktf --outputs-file keys = construct ids (from this metadata); static ids make them equal.
    assert doc["//"]["outputs"][synth.configs[target].stack_name] == {k: k for k in outputs.contract_keys(target)}
    assert doc["output"][outputs.PROJECT_KEY]["value"] == "thingpress"


def test_no_wildcard_allow_actions_anywhere(aws_json):
    seen = 0
    for where, doc in policies(aws_json):
        for st in doc["Statement"]:
            seen += 1
            actions = as_list(st["Action"])
            if st["Effect"] == "Allow":
                assert not [a for a in actions if "*" in a], f"{where} {st['Sid']}: wildcard action"
            else:  # a deny must cover every action of the service
                assert st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert seen >= 30


def test_star_resources_only_where_no_resource_level_permission(aws_json):
    for where, doc in policies(aws_json):
        for st in doc["Statement"]:
            if st["Effect"] == "Allow" and "*" in as_list(st.get("Resource", [])):
                if where.startswith("aws_kms_key."):
                    continue  # in a key policy "*" is the key itself
                assert st["Sid"].endswith("NoResourceLevelPermissions"), f"{where} {st['Sid']}: '*' resource"
                assert set(as_list(st["Action"])) <= {"iot:RegisterCertificateWithoutCA", "xray:PutTraceSegments",
                                                      "xray:PutTelemetryRecords"}


def test_kms_key_rotates_and_lets_regional_logs_use_it(aws_json):
    (_, key), = resources(aws_json, "aws_kms_key").items()
    assert key["enable_key_rotation"] is True
    logs = [s for s in json.loads(key["policy"])["Statement"]
            if s.get("Principal") == {"Service": "logs.us-east-1.amazonaws.com"}]
    assert len(logs) == 1
    arn = logs[0]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert arn.endswith(":log-group:/aws/lambda/thingpress-dev-*") and ":logs:us-east-1:" in arn
    for group in resources(aws_json, "aws_cloudwatch_log_group").values():
        assert group["kms_key_id"].startswith("${aws_kms_key.") and group["retention_in_days"] == 365


def _of_bucket(doc, rtype, bucket_id):
    (body,) = [b for b in resources(doc, rtype).values() if b["bucket"] == bucket_id]
    return body


@pytest.mark.parametrize("purpose", ["manifests", "artifacts"])
def test_bucket_is_private_versioned_encrypted_tls_only(aws_json, purpose):
    name, bucket = find_by(aws_json, "aws_s3_bucket", "bucket",
                           f"thingpress-dev-{purpose}-${{data.aws_caller_identity.account.account_id}}-us-east-1")
    bucket_id = ref("aws_s3_bucket", name, "id")
    pab = _of_bucket(aws_json, "aws_s3_bucket_public_access_block", bucket_id)
    assert all(pab[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                         "restrict_public_buckets"))
    assert _of_bucket(aws_json, "aws_s3_bucket_ownership_controls", bucket_id)["rule"]["object_ownership"] == (
        "BucketOwnerEnforced")
    pol = _of_bucket(aws_json, "aws_s3_bucket_policy", bucket_id)
    (st,) = json.loads(pol["policy"])["Statement"]
    assert st["Effect"] == "Deny" and st["Principal"] == "*" and st["Action"] == "s3:*"
    assert st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert st["Resource"] == [ref("aws_s3_bucket", name, "arn"), ref("aws_s3_bucket", name, "arn") + "/*"]
    assert _of_bucket(aws_json, "aws_s3_bucket_versioning", bucket_id)["versioning_configuration"]["status"] == (
        "Enabled")
    enc = _of_bucket(aws_json, "aws_s3_bucket_server_side_encryption_configuration", bucket_id)
    assert enc["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    assert enc["rule"][0]["apply_server_side_encryption_by_default"]["kms_master_key_id"].startswith("${aws_kms_key.")
    life = _of_bucket(aws_json, "aws_s3_bucket_lifecycle_configuration", bucket_id)
    assert life["rule"][0]["noncurrent_version_expiration"][0]["noncurrent_days"] == defaults.NONCURRENT_VERSION_DAYS
    # The code bucket holds only what the repository rebuilds: it goes with the stack.
    assert bucket["force_destroy"] is (purpose == "artifacts")


def test_function_code_comes_from_the_artifacts_bucket_encrypted_after_its_rules(aws_json):
    """S3 code (not ``filename``, whose provider-wide lock serialises every function create)."""
    bucket_name, _ = find_by(aws_json, "aws_s3_bucket", "bucket",
                             "thingpress-dev-artifacts-${data.aws_caller_identity.account.account_id}-us-east-1")
    bucket_id = ref("aws_s3_bucket", bucket_name, "id")
    functions = resources(aws_json, "aws_lambda_function").values()
    assert len(functions) == len(FUNCTION_KEYS)
    for fn in functions:
        assert "filename" not in fn
        _, code = by_ref(aws_json, fn["s3_key"])
        assert by_ref(aws_json, fn["s3_bucket"])[1] is code and code["bucket"] == bucket_id
        assert code["server_side_encryption"] == "aws:kms" and code["kms_key_id"].startswith("${aws_kms_key.")
        # Written after the TLS-only policy and the default encryption are in place.
        policy = next(n for n, b in resources(aws_json, "aws_s3_bucket_policy").items() if b["bucket"] == bucket_id)
        assert f"aws_s3_bucket_policy.{policy}" in code["depends_on"]


def test_no_function_may_read_the_artifacts_bucket(aws_json):
    """Only the deployer (through CreateFunction/UpdateFunctionCode) reads the code objects."""
    name, _ = find_by(aws_json, "aws_s3_bucket", "bucket",
                      "thingpress-dev-artifacts-${data.aws_caller_identity.account.account_id}-us-east-1")
    for where, doc in policies(aws_json):
        if where.startswith("aws_iam_role_policy."):
            for st in doc["Statement"]:
                assert not any(f"aws_s3_bucket.{name}." in r for r in as_list(st["Resource"])), where


def test_notifications_route_each_vendor_prefix_to_its_queue(aws_json):
    (_, notif), = resources(aws_json, "aws_s3_bucket_notification").items()
    routes = {q["filter_prefix"]: by_ref(aws_json, q["queue_arn"])[1]["name"] for q in notif["queue"]}
    assert routes == {vendor_prefix(v): f"thingpress-dev-{v}-manifests" for v in VENDORS}
    assert all("filter_suffix" not in q and q["events"] == ["s3:ObjectCreated:*"] for q in notif["queue"])


def test_every_queue_is_encrypted_with_a_dlq_and_tls_only(aws_json):
    queues = resources(aws_json, "aws_sqs_queue")
    # one pair per consumer (the vendors' manifest queues, the import queue, the results writer's, the
    # lifecycle function's), and the completion queue
    assert len(queues) == 2 * (len(VENDORS) + 3) + 1
    assert not any("redrive_policy" in q for q in queues.values())  # aws_sqs_queue_redrive_policy (queues.py)
    main = {n: q for n, q in queues.items() if redrive_of(aws_json, q["name"])}
    assert len(main) == len(VENDORS) + 3
    for q in queues.values():
        assert q["kms_master_key_id"].startswith("${aws_kms_key.")
    for q in main.values():
        dlq = by_ref(aws_json, redrive_of(aws_json, q["name"])["deadLetterTargetArn"])[1]
        assert dlq["name"] == q["name"] + "-dlq"
    assert not resources(aws_json, "aws_sqs_queue_policy")  # inline: one SQS write per queue
    for q in queues.values():
        sts = json.loads(q["policy"])["Statement"]
        assert sts[-1]["Sid"] == "DenyInsecureTransport"
        own_arn = "arn:${data.aws_partition.partition.partition}:sqs:us-east-1:${data.aws_caller_identity.account.account_id}:" + q["name"]
        assert all(st["Resource"] == own_arn for st in sts), (q["name"], sts)
        for st in sts[:-1]:
            # only the completion rule may send to the completion queue, only the results rule to the results queue
            if q["name"] in ("thingpress-dev-manifest-completed", "thingpress-dev-results"):
                rule = ("arn:${data.aws_partition.partition.partition}:events:us-east-1:"
                        "${data.aws_caller_identity.account.account_id}:rule/thingpress-dev-events/" + q["name"])
                assert st["Principal"] == {"Service": "events.amazonaws.com"} and st["Action"] == "sqs:SendMessage"
                assert st["Condition"] == {"ArnEquals": {"aws:SourceArn": rule}}
                continue
            assert st["Principal"] == {"Service": "s3.amazonaws.com"} and st["Action"] == "sqs:SendMessage"
            assert set(st["Condition"]) == {"ArnEquals", "StringEquals"}


def test_completion_events_go_to_the_deployments_bus_only(aws_json):
    """The bus is KMS-encrypted; its rule matches the completion event; each function that can complete
    a manifest may put exactly that event (source and detail-type) on exactly that bus."""
    (_, bus), = resources(aws_json, "aws_cloudwatch_event_bus").items()
    assert bus["name"] == "thingpress-dev-events" and bus["kms_key_identifier"].startswith("${aws_kms_key.")
    rule = next(r for r in resources(aws_json, "aws_cloudwatch_event_rule").values()
                if r["name"] == "thingpress-dev-manifest-completed")
    assert json.loads(rule["event_pattern"]) == {"source": ["thingpress"], "detail-type": ["Manifest Completed"]}
    bus_arn = ("arn:${data.aws_partition.partition.partition}:events:us-east-1:"
               "${data.aws_caller_identity.account.account_id}:event-bus/thingpress-dev-events")
    puts = {}
    for name, policy in resources(aws_json, "aws_iam_role_policy").items():
        for st in json.loads(policy["policy"])["Statement"]:
            if "events:PutEvents" in st["Action"]:
                puts[name] = st
    # importer, every provider, the watchdog: not the results writer or the lifecycle function, which complete
    # no manifest
    assert set(puts) == {n for n in resources(aws_json, "aws_iam_role_policy")
                         if not n.startswith(("results_", "lifecycle_"))}
    assert len(puts) == len(FUNCTION_KEYS) - 2
    for st in puts.values():
        assert st["Action"] == "events:PutEvents" and st["Resource"] == bus_arn
        assert st["Condition"] == {
            "ForAllValues:StringEquals": {"events:source": "thingpress", "events:detail-type": "Manifest Completed"},
            "Null": {"events:source": "false", "events:detail-type": "false"}}


def test_the_bus_key_statements_have_the_documented_event_bus_shape(aws_json):
    """EventBridge user guide, "AWS KMS key policy for event bus": kms:DescribeKey with no condition,
    kms:GenerateDataKey and kms:Decrypt conditioned on the bus (encryption context and aws:SourceArn)."""
    from stacks.constructs.kms import EVENT_BUS_KEY_POLICY_PAGE

    (_, key), = resources(aws_json, "aws_kms_key").items()
    statements = {st["Sid"]: st for st in json.loads(key["policy"])["Statement"]}
    bus_arn = ("arn:${data.aws_partition.partition.partition}:events:us-east-1:"
               "${data.aws_caller_identity.account.account_id}:event-bus/thingpress-dev-events")
    events = {"Service": "events.amazonaws.com"}
    describe = [st for st in statements.values() if "kms:DescribeKey" in as_list(st["Action"])
                and st["Principal"] == events]
    assert [(st["Action"], st["Resource"], st.get("Condition")) for st in describe] == [("kms:DescribeKey", "*", None)]
    assert statements["EventBridgeEncryptsThisDeploymentsBus"] == {
        "Sid": "EventBridgeEncryptsThisDeploymentsBus", "Effect": "Allow", "Principal": events,
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:aws:events:event-bus:arn": bus_arn,
                                       "aws:SourceArn": bus_arn}}}
    assert EVENT_BUS_KEY_POLICY_PAGE.startswith("https://docs.aws.amazon.com/eventbridge/")


def test_every_mapping_reports_batch_item_failures_and_visibility_covers_the_timeout(aws_json):
    mappings = resources(aws_json, "aws_lambda_event_source_mapping")
    assert len(mappings) == len(FUNCTION_KEYS) - 1  # every function but the scheduled watchdog
    for m in mappings.values():
        assert m["function_response_types"] == ["ReportBatchItemFailures"]
        _, fn = by_ref(aws_json, m["function_name"])
        _, queue = by_ref(aws_json, m["event_source_arn"])
        assert queue["visibility_timeout_seconds"] >= fn["timeout"]
        assert queue["visibility_timeout_seconds"] == defaults.VISIBILITY_FACTOR * fn["timeout"]
        # The mapping caps fan-out; a reservation is opt-in (a new account cannot reserve any).
        assert m["scaling_config"]["maximum_concurrency"] >= defaults.MIN_ESM_CONCURRENCY
        assert "reserved_concurrent_executions" not in fn


def test_queue_visibility_below_consumer_timeout_is_refused(synth):
    from stacks.constructs.queues import QueuePair, QueueProps

    with pytest.raises(ValueError, match="visibility timeout 30s is below its consumer's timeout 60s"):
        QueuePair(synth.stacks["aws"], "too-short", props=QueueProps(
            name="q", dlq_name="q-dlq", arn_prefix="arn:aws:sqs:us-east-1:123456789012", kms_key_arn="k", consumer_timeout=60, max_receive_count=3,
            visibility_timeout=30))


def test_importer_settings_match_its_queue_and_mapping(aws_json):
    _, fn = find_by(aws_json, "aws_lambda_function", "function_name", "thingpress-dev-importer")
    env = fn["environment"]["variables"]
    (_, mapping), = [(n, m) for n, m in resources(aws_json, "aws_lambda_event_source_mapping").items()
                     if by_ref(aws_json, m["function_name"])[1] is fn]
    _, queue = by_ref(aws_json, mapping["event_source_arn"])
    assert int(env[settings.MAX_RECEIVE_COUNT]) == redrive_of(aws_json, queue["name"])["maxReceiveCount"]
    assert int(env[settings.IMPORT_CONCURRENCY]) == mapping["scaling_config"]["maximum_concurrency"]
    assert mapping["batch_size"] == defaults.import_batch_size(settings.DEFAULT_IOT_TPS, 2)
    assert json.loads(env[settings.IOT_TPS]) == settings.DEFAULT_IOT_TPS
    assert env[settings.CERTIFICATE_STATUS] == "ACTIVE"


def test_providers_get_the_import_window_and_the_importers_own_budget(aws_json):
    """Backpressure sizes the window from the importer's budget: every provider must see the same budget."""
    _, importer = find_by(aws_json, "aws_lambda_function", "function_name", "thingpress-dev-importer")
    budget = importer["environment"]["variables"][settings.IOT_TPS]
    providers = [f for f in resources(aws_json, "aws_lambda_function").values()
                 if settings.VENDOR in (f.get("environment") or {}).get("variables", {})]
    assert len(providers) == 4
    (table_id, _), = resources(aws_json, "aws_dynamodb_table").items()
    index_arn = f"{ref('aws_dynamodb_table', table_id, 'arn')}/index/{INDEX_BY_STATE}"
    for fn in providers:
        env = fn["environment"]["variables"]
        assert (env[settings.IOT_TPS], env[settings.IMPORT_WINDOW_MINUTES]) == (budget, "1")
        # ... and may count the manifests in flight (the by_state index, nothing else of it).
        role = by_ref(aws_json, fn["role"])[1]
        doc = next(json.loads(p["policy"]) for p in resources(aws_json, "aws_iam_role_policy").values()
                   if by_ref(aws_json, p["role"])[1] is role)
        grants = {s["Sid"]: (as_list(s["Action"]), as_list(s["Resource"])) for s in doc["Statement"]}
        assert grants["CountManifestsInFlight"] == (["dynamodb:Query"], [index_arn])


def test_function_environments_use_settings_names_and_stack_references(aws_json):
    from stacks import guards

    for fn in resources(aws_json, "aws_lambda_function").values():
        env = fn["environment"]["variables"]
        assert set(env) <= guards.ALLOWED_KEYS
        for key in set(env) & guards.RESOURCE_KEYS:
            assert "${aws_" in env[key], f"{fn['function_name']} {key}={env[key]!r} is typed by hand"
        assert fn["tracing_config"]["mode"] == "Active"
        assert fn["kms_key_arn"].startswith("${aws_kms_key.")
        assert fn["layers"] == ["${aws_lambda_layer_version.layer_layer_B5FA5D46.arn}"] or len(fn["layers"]) == 1


def test_handlers_and_code_hashes_match_packaging(aws_json):
    handlers = {f"thingpress-dev-{k.replace('_', '-')}": k for k in FUNCTION_KEYS}
    for fn in resources(aws_json, "aws_lambda_function").values():
        key = handlers[fn["function_name"]]
        assert fn["handler"] == f"{handler_module(key)}.lambda_handler"
        assert fn["source_code_hash"] == packaging.build_function(key).sha256_b64
        _, code = by_ref(aws_json, fn["s3_key"])
        assert code["source"].startswith("assets/") and code["source"].endswith(f"/{key}.zip")
        assert code["source_hash"] == fn["source_code_hash"]
        assert code["key"].startswith(f"functions/{key}/") and code["key"].endswith(".zip")
    (_, layer), = resources(aws_json, "aws_lambda_layer_version").items()
    assert layer["source_code_hash"] == packaging.inputs_hash("3.11", "x86_64")
    assert layer["compatible_runtimes"] == ["python3.11"] and layer["compatible_architectures"] == ["x86_64"]


def test_provider_reads_only_its_prefix(aws_json):
    for vendor in VENDORS:
        _, role = find_by(aws_json, "aws_iam_role", "name", f"thingpress-dev-provider-{vendor}-role")
        doc = next(json.loads(p["policy"]) for p in resources(aws_json, "aws_iam_role_policy").values()
                   if by_ref(aws_json, p["role"])[1] is role)
        (read,) = [s for s in doc["Statement"] if s["Sid"] == "ReadOwnManifests"]
        assert as_list(read["Action"]) == ["s3:GetObjectVersion"]  # the event names the version
        assert [r.split("}", 1)[1] for r in as_list(read["Resource"])] == [f"/{vendor_prefix(vendor)}*"]
        signers = [s for s in doc["Statement"] if s["Sid"] == "ReadTrustedSigners"]
        if vendor == "microchip":
            (signer,) = signers
            assert as_list(signer["Action"]) == ["s3:GetObject"]
            assert signer["Resource"].split("}", 1)[1] == "/trust/microchip-signers/*"
        else:
            assert not signers


def test_audit_table_matches_the_audit_module(aws_json):
    (_, table), = resources(aws_json, "aws_dynamodb_table").items()
    assert (table["hash_key"], table["range_key"], table["billing_mode"]) == ("pk", "sk", "PAY_PER_REQUEST")
    assert {g["name"]: (g["hash_key"], g["range_key"]) for g in table["global_secondary_index"]} == {
        INDEX_BY_THING: ("thing_name", "updated_at"), INDEX_BY_STATE: ("state", "updated_at")}
    assert table["ttl"] == {"attribute_name": TTL_ATTRIBUTE, "enabled": True}
    assert table["point_in_time_recovery"]["enabled"] is True
    assert table["server_side_encryption"]["enabled"] is True
    assert table["deletion_protection_enabled"] is True


def test_device_policy_is_scoped_to_the_thing(aws_json):
    (_, pol), = resources(aws_json, "aws_iot_policy").items()
    sts = {s["Sid"]: s for s in json.loads(pol["policy"])["Statement"]}
    assert sts["ConnectAsOwnThing"]["Resource"].endswith(":client/$${iot:Connection.Thing.ThingName}")
    assert sts["PublishAndReceiveOwnTopics"]["Resource"].endswith(":topic/thingpress/$${iot:Connection.Thing.ThingName}/*")


def test_alarms_cover_every_dlq_function_and_import_age(aws_json):
    alarms = resources(aws_json, "aws_cloudwatch_metric_alarm").values()
    (topic_name, _), = resources(aws_json, "aws_sns_topic").items()
    assert all(a["alarm_actions"] == [ref("aws_sns_topic", topic_name, "arn")] for a in alarms)
    dlqs = {by_ref(aws_json, a["dimensions"]["QueueName"])[1]["name"] for a in alarms
            if a["metric_name"] == "ApproximateNumberOfMessagesVisible"}
    assert dlqs == {q["name"] for q in resources(aws_json, "aws_sqs_queue").values() if q["name"].endswith("-dlq")}
    for metric in ("Errors", "Throttles"):
        assert len([a for a in alarms if a["metric_name"] == metric]) == len(FUNCTION_KEYS)
    assert [a["alarm_name"] for a in alarms if a["metric_name"] == "ApproximateAgeOfOldestMessage"] == [
        "thingpress-dev-import-queue-age"]


def test_backends_and_local_provider(synth):
    aws, local = synth.json["aws"], synth.json["local"]
    assert aws["terraform"]["backend"] == {"s3": {"bucket": "example-terraform-state", "encrypt": True,
                                                  "key": "thingpress/dev/terraform.tfstate", "region": "us-east-1",
                                                  "use_lockfile": True}}
    assert local["terraform"]["backend"] == {"local": {"path": "../../../build/state/thingpress-local.tfstate"}}
    (prov,) = local["provider"]["aws"]
    assert prov["skip_credentials_validation"] and prov["skip_requesting_account_id"] and prov["s3_use_path_style"]
    assert set(prov["endpoints"][0].values()) == {"http://127.0.0.1:5000"}
    assert local["output"][outputs.ENDPOINT_URL]["value"] == "http://127.0.0.1:5000"
    assert "endpoints" not in aws["provider"]["aws"][0]


def test_signers_are_uploaded_under_the_trust_prefix(aws_json):
    objs = resources(aws_json, "aws_s3_object").values()
    assert [o["key"] for o in objs if not o["key"].startswith("functions/")] == ["trust/microchip-signers/test-signer.crt"]
    _, fn = find_by(aws_json, "aws_lambda_function", "function_name", f"thingpress-dev-{provider_key('microchip').replace('_', '-')}")
    assert fn["environment"]["variables"][settings.MICROCHIP_SIGNERS].startswith("s3://${aws_s3_bucket.")


def test_watchdog_runs_on_its_schedule_with_its_own_least_privilege_role(aws_json):
    from thingpress import watchdog

    name = f"thingpress-dev-{WATCHDOG}"
    fn_id, fn = find_by(aws_json, "aws_lambda_function", "function_name", name)
    fn_arn = ref("aws_lambda_function", fn_id, "arn")
    # nothing reserved (a new account cannot reserve any): overlapping sweeps are safe, each idempotent
    assert "reserved_concurrent_executions" not in fn and fn["timeout"] == defaults.WATCHDOG_TIMEOUT_SECONDS
    # the schedule: rule -> target -> this function, allowed by a permission scoped to that rule
    rule_id, rule = find_by(aws_json, "aws_cloudwatch_event_rule", "name", name)
    assert rule["schedule_expression"] == defaults.WATCHDOG_SCHEDULE and "event_bus_name" not in rule
    target, = [t for t in resources(aws_json, "aws_cloudwatch_event_target").values()
              if t["rule"] == ref("aws_cloudwatch_event_rule", rule_id, "name")]
    assert target["rule"] == ref("aws_cloudwatch_event_rule", rule_id, "name") and target["arn"] == fn_arn
    (_, permission), = resources(aws_json, "aws_lambda_permission").items()
    assert permission["principal"] == "events.amazonaws.com" and permission["action"] == "lambda:InvokeFunction"
    assert permission["source_arn"] == ref("aws_cloudwatch_event_rule", rule_id, "arn")
    assert permission["function_name"] == ref("aws_lambda_function", fn_id, "function_name")
    # settings: twice the provider timeout; every manifest queue by vendor; the import queue and its DLQ
    env = fn["environment"]["variables"]
    assert int(env[settings.STALL_AFTER_SECONDS]) == 2 * defaults.PROVIDER_TIMEOUT_SECONDS
    urls = json.loads(env[settings.MANIFEST_QUEUE_URLS])
    assert {v: by_ref(aws_json, u)[1]["name"] for v, u in urls.items()} == {
        v: f"thingpress-dev-{v}-manifests" for v in VENDORS}
    assert by_ref(aws_json, env[settings.IMPORT_QUEUE_URL])[1]["name"] == "thingpress-dev-import"
    assert by_ref(aws_json, env[settings.IMPORT_DLQ_URL])[1]["name"] == "thingpress-dev-import-dlq"
    # its role: exactly these statements, every resource scoped
    _, role = find_by(aws_json, "aws_iam_role", "name", f"{name}-role")
    assert fn["role"] == ref("aws_iam_role", find_by(aws_json, "aws_iam_role", "name", f"{name}-role")[0], "arn")
    doc = next(json.loads(p["policy"]) for p in resources(aws_json, "aws_iam_role_policy").values()
               if by_ref(aws_json, p["role"])[1] is role)
    grants = {s["Sid"]: (sorted(as_list(s["Action"])), as_list(s["Resource"])) for s in doc["Statement"]}
    (table_id, _), = resources(aws_json, "aws_dynamodb_table").items()
    table_arn = ref("aws_dynamodb_table", table_id, "arn")
    assert grants["FindIdleManifests"] == (["dynamodb:Query"], [f"{table_arn}/index/{INDEX_BY_STATE}"])
    assert grants["ReadAndMarkManifests"] == (
        ["dynamodb:ConditionCheckItem", "dynamodb:Query", "dynamodb:UpdateItem"], [table_arn])
    assert grants["SendContinuations"][0] == ["sqs:SendMessage"]
    assert {by_ref(aws_json, r)[1]["name"] for r in grants["SendContinuations"][1]} == {
        f"thingpress-dev-{v}-manifests" for v in VENDORS}
    assert grants["CountImportMessages"][0] == ["sqs:GetQueueAttributes"]
    assert {by_ref(aws_json, r)[1]["name"] for r in grants["CountImportMessages"][1]} == {
        "thingpress-dev-import", "thingpress-dev-import-dlq"}
    assert set(grants) == {"WriteOwnLogs", "XRayTracesNoResourceLevelPermissions", "UseDeploymentKey",
                           "FindIdleManifests", "ReadAndMarkManifests", "SendContinuations", "CountImportMessages",
                           "PutCompletionEventIfLastToFinish"}
    # its log group is KMS-encrypted like the others
    _, group = find_by(aws_json, "aws_cloudwatch_log_group", "name", f"/aws/lambda/{name}")
    assert group["kms_key_id"].startswith("${aws_kms_key.")
    # the alarm on the metric the function puts, to the alarm topic
    (topic_name, _), = resources(aws_json, "aws_sns_topic").items()
    (stalled,) = [a for a in resources(aws_json, "aws_cloudwatch_metric_alarm").values()
                  if a["metric_name"] == watchdog.STALLED_METRIC]
    assert (stalled["alarm_name"], stalled["namespace"], stalled["dimensions"]) == (
        "thingpress-dev-manifests-stalled", "thingpress", {"service": watchdog.METRICS_SERVICE})
    assert env["POWERTOOLS_SERVICE_NAME"] == watchdog.METRICS_SERVICE
    assert (stalled["statistic"], stalled["threshold"], stalled["comparison_operator"]) == (
        "Sum", 0, "GreaterThanThreshold")
    assert stalled["alarm_actions"] == [ref("aws_sns_topic", topic_name, "arn")]


def test_queues_do_not_wait_for_their_dlq_and_triggers_wait_for_the_redrive(aws_json):
    """The redrive policy is its own resource (stacks/constructs/queues.py): a queue and its DLQ are
    created together, and no event source mapping consumes a queue before its redrive policy is set."""
    redrives = resources(aws_json, "aws_sqs_queue_redrive_policy")
    # the manifest queues, the import queue, the results queue, the lifecycle queue
    assert len(redrives) == len(VENDORS) + 3
    for name, redrive in redrives.items():
        queue_name, queue = by_ref(aws_json, redrive["queue_url"])
        assert "${aws_sqs_queue." not in json.dumps(queue) and "depends_on" not in queue
        (mapping,) = [m for m in resources(aws_json, "aws_lambda_event_source_mapping").values()
                      if m["event_source_arn"] == ref("aws_sqs_queue", queue_name, "arn")]
        assert f"aws_sqs_queue_redrive_policy.{name}" in mapping["depends_on"]
