"""Configuration: suffix validation, naming limits, one clear line per setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.config import ConfigError, StackConfig
from stacks.naming import LIMITS, Names, vendor_prefix

BASE = {"THINGPRESS_BACKEND": "local", "THINGPRESS_MICROCHIP_SIGNERS_DIR": "none"}


@pytest.mark.parametrize("suffix", ["dev", "pr1234", "local", "prod2", "a1", "abcdefghijkl"])
def test_good_suffixes(suffix):
    cfg = StackConfig.from_env({**BASE, "THINGPRESS_ENV": suffix})
    assert cfg.stack_name == f"thingpress-{suffix}"


@pytest.mark.parametrize("suffix", ["Dev", "DEV", "a", "1dev", "pr-12", "dev_1", "abcdefghijklm", "dév"])
def test_bad_suffixes_name_the_setting(suffix):
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env({**BASE, "THINGPRESS_ENV": suffix})
    assert len(err.value.errors) == 1
    assert err.value.errors[0].startswith("THINGPRESS_ENV:") and repr(suffix) in err.value.errors[0]


def test_empty_suffix_from_context_is_refused_and_named():
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env({**BASE}, context_env="Bad!")
    assert err.value.errors[0].startswith("cdktf context env:")


def test_env_var_wins_over_context():
    assert StackConfig.from_env({**BASE, "THINGPRESS_ENV": "pr7"}, context_env="dev").suffix == "pr7"
    assert StackConfig.from_env({**BASE}, context_env="qa").suffix == "qa"


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-7", "us-gov-west-1", "eu-central-2"])
def test_longest_names_fit_aws_limits(region):
    names = Names("abcdefghijkl", region)
    assert names.check() == []
    for kind, name in names.all_names():
        assert len(name) <= LIMITS[kind], (kind, name)


def test_names_over_a_limit_are_reported():
    errors = Names("x" * 40, "us-east-1").check()
    assert any("(s3_bucket)" in e and "limit of 63" in e for e in errors)
    assert any("(iam_role)" in e for e in errors)


def test_every_error_is_collected_one_line_each():
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env({
            "THINGPRESS_ENV": "X", "THINGPRESS_REGION": "mars-1", "THINGPRESS_TARGET": "gcp",
            "THINGPRESS_BACKEND": "s3", "THINGPRESS_IOT_TPS": '{"CreateThing": -1}',
            "THINGPRESS_IMPORT_CONCURRENCY": "1", "THINGPRESS_LAMBDA_RUNTIME": "python2.7",
            "THINGPRESS_LOG_RETENTION_DAYS": "2", "THINGPRESS_TAGS": "[]",
            "THINGPRESS_MICROCHIP_SIGNERS_DIR": "/nonexistent/signers",
        })
    named = [e.split(":", 1)[0] for e in err.value.errors]
    assert named == ["THINGPRESS_ENV", "THINGPRESS_REGION", "THINGPRESS_TARGET", "THINGPRESS_STATE_BUCKET",
                     "THINGPRESS_IOT_TPS", "THINGPRESS_IMPORT_CONCURRENCY", "THINGPRESS_TAGS",
                     "THINGPRESS_LAMBDA_RUNTIME", "THINGPRESS_LOG_RETENTION_DAYS", "THINGPRESS_MICROCHIP_SIGNERS_DIR"]
    assert str(err.value).count("\n") == len(named)


def test_the_import_window_is_minutes_within_a_day():
    assert StackConfig.from_env({**BASE}).import_window_minutes == 1
    assert StackConfig.from_env({**BASE, "THINGPRESS_IMPORT_WINDOW_MINUTES": "0.25"}).import_window_minutes == 0.25
    for bad in ("0", "-3", "1441", "soon", "nan"):
        with pytest.raises(ConfigError, match="THINGPRESS_IMPORT_WINDOW_MINUTES: must be a number of minutes, "
                                              "more than 0 and at most 1440"):
            StackConfig.from_env({**BASE, "THINGPRESS_IMPORT_WINDOW_MINUTES": bad})


def test_backend_defaults():
    assert StackConfig.from_env({**BASE}).backend == "local"
    cfg = StackConfig.from_env({"THINGPRESS_STATE_BUCKET": "my-state", "THINGPRESS_MICROCHIP_SIGNERS_DIR": "none"})
    assert (cfg.backend, cfg.state_bucket, cfg.state_region) == ("s3", "my-state", "us-east-1")
    with pytest.raises(ConfigError, match="THINGPRESS_BACKEND: the local target keeps local state"):
        StackConfig.from_env({"THINGPRESS_TARGET": "local", "THINGPRESS_BACKEND": "s3"})


def test_local_target_endpoint():
    cfg = StackConfig.from_env({"THINGPRESS_TARGET": "local", "THINGPRESS_ENV": "local"})
    assert cfg.endpoint == "http://127.0.0.1:5000" and cfg.ephemeral
    with pytest.raises(ConfigError, match="THINGPRESS_ENDPOINT: must be an http"):
        StackConfig.from_env({"THINGPRESS_TARGET": "local", "THINGPRESS_ENDPOINT": "localhost:5000"})
    with pytest.raises(ConfigError, match="THINGPRESS_ENDPOINT: only used with THINGPRESS_TARGET=local"):
        StackConfig.from_env({**BASE, "THINGPRESS_ENDPOINT": "http://x:1"})


def test_policy_document_shapes_the_created_policy_and_names_add_existing_ones(tmp_path):
    doc = tmp_path / "policy.json"
    doc.write_text('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "x"}]}')
    assert '"iot:Connect"' in StackConfig.from_env({**BASE, "THINGPRESS_IOT_POLICY_DOCUMENT": str(doc)}).iot_policy_document
    both = StackConfig.from_env({**BASE, "THINGPRESS_IOT_POLICY_DOCUMENT": str(doc), "THINGPRESS_IOT_POLICY_NAME": "p"})
    assert both.iot_policy_names == ("p",) and '"iot:Connect"' in both.iot_policy_document
    with pytest.raises(ConfigError, match="THINGPRESS_IOT_POLICY_DOCUMENT: must be an IoT policy document"):
        StackConfig.from_env({**BASE, "THINGPRESS_IOT_POLICY_DOCUMENT": "{}"})


def test_import_concurrency_is_derived_from_the_budget():
    assert StackConfig.from_env({**BASE}).import_concurrency == 2
    cfg = StackConfig.from_env({**BASE, "THINGPRESS_IOT_TPS": '{"RegisterCertificateWithoutCA": 50, "AttachPolicy": 60}'})
    assert cfg.import_concurrency == 10


SIGNER_PEM = (Path(__file__).parent / "fixtures" / "signers" / "test-signer.crt").read_bytes()


def signers_dir(tmp_path: Path, **files: bytes) -> dict[str, str]:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {**BASE, "THINGPRESS_MICROCHIP_SIGNERS_DIR": str(tmp_path)}


def test_signers_are_read_and_checked(tmp_path):
    (tmp_path / "a.crt").write_bytes(SIGNER_PEM)
    cfg = StackConfig.from_env({**BASE, "THINGPRESS_MICROCHIP_SIGNERS_DIR": str(tmp_path)})
    assert [s.file_name for s in cfg.signers] == ["a.crt"]
    (tmp_path / "b.txt").write_text("not a certificate")
    with pytest.raises(ConfigError, match="THINGPRESS_MICROCHIP_SIGNERS_DIR: b.txt: holds no PEM certificate"):
        StackConfig.from_env({**BASE, "THINGPRESS_MICROCHIP_SIGNERS_DIR": str(tmp_path)})


def test_a_certificate_under_a_name_the_functions_ignore_is_refused_at_synth(tmp_path):
    """A signer.txt used to pass synth and be uploaded, then be ignored by the provider."""
    env = signers_dir(tmp_path, **{"a.crt": SIGNER_PEM, "signer.txt": SIGNER_PEM})
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env(env)
    assert err.value.errors == [
        "THINGPRESS_MICROCHIP_SIGNERS_DIR: signer.txt: not taken as a Microchip signer certificate file: "
        "the name must end in .crt, .pem or .cer"]


def test_a_signer_file_that_is_not_a_certificate_is_refused_at_synth(tmp_path):
    env = signers_dir(tmp_path, **{"fake.crt": b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"})
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env(env)
    [line] = err.value.errors
    assert line.startswith("THINGPRESS_MICROCHIP_SIGNERS_DIR: fake.crt: certificate cannot be read")


def test_a_signers_folder_without_a_signer_file_is_refused(tmp_path):
    env = signers_dir(tmp_path, **{".gitkeep": b""})
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env(env)
    assert err.value.errors == [f"THINGPRESS_MICROCHIP_SIGNERS_DIR: {tmp_path} holds no certificate files"]


def test_a_der_signer_is_uploaded_pem_encoded(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_pem_x509_certificate(SIGNER_PEM)
    cfg = StackConfig.from_env(signers_dir(tmp_path, **{"signer.cer": cert.public_bytes(Encoding.DER)}))
    assert [(s.file_name, s.pem.encode()) for s in cfg.signers] == [("signer.cer", SIGNER_PEM)]


def test_a_trusted_signer_that_expires_within_90_days_is_a_synth_warning(tmp_path):
    from datetime import UTC, datetime

    env = signers_dir(tmp_path, **{"a.crt": SIGNER_PEM})  # valid until 2035-12-30
    assert StackConfig.from_env(env, now=datetime(2035, 9, 1, tzinfo=UTC)).warnings == ()
    assert StackConfig.from_env(env, now=datetime(2035, 12, 1, tzinfo=UTC)).warnings == (
        "trusted Microchip signer 'thingpress stack test Microchip signer (not trusted anywhere)' expires on "
        "2035-12-30 (in 29 days): add its successor before manifests signed after that arrive",)
    late = StackConfig.from_env(env, now=datetime(2036, 1, 2, tzinfo=UTC))
    assert late.warnings == ("trusted Microchip signer 'thingpress stack test Microchip signer (not trusted "
                             "anywhere)' expired on 2035-12-30: entries it signed after that are refused",)
    assert [s.file_name for s in late.signers] == ["a.crt"]  # a warning: still uploaded, synth goes on


def test_vendor_prefixes():
    assert vendor_prefix("infineon") == "incoming/infineon/"
    with pytest.raises(ValueError, match="unknown vendor"):
        vendor_prefix("acme")


def test_certificate_status_setting():
    assert StackConfig.from_env({**BASE}).certificate_status == "ACTIVE"
    assert StackConfig.from_env({**BASE, "THINGPRESS_CERTIFICATE_STATUS": "INACTIVE"}).certificate_status == "INACTIVE"
    with pytest.raises(ConfigError) as exc:
        StackConfig.from_env({**BASE, "THINGPRESS_CERTIFICATE_STATUS": "REVOKED"})
    assert "THINGPRESS_CERTIFICATE_STATUS: must be one of ACTIVE, INACTIVE, got 'REVOKED'" in str(exc.value)


@pytest.mark.parametrize(("suffix", "prefix"), [("pr7", "pr7-"), ("pr1234", "pr1234-"), ("dev", ""), ("local", ""),
                                                ("prod", "")])
def test_preview_suffixes_get_a_thing_name_prefix_by_default(suffix, prefix):
    assert StackConfig.from_env({**BASE, "THINGPRESS_ENV": suffix}).thing_prefix == prefix


def test_thing_name_prefix_is_configurable_or_off():
    assert StackConfig.from_env({**BASE, "THINGPRESS_ENV": "dev", "THINGPRESS_THING_PREFIX": "qa:"}).thing_prefix == "qa:"
    assert StackConfig.from_env({**BASE, "THINGPRESS_ENV": "pr7", "THINGPRESS_THING_PREFIX": "none"}).thing_prefix == ""


def test_thing_name_prefix_must_leave_room_for_the_longest_vendor_name():
    ok = "p" * 64  # 64 + the longest vendor thing name (a 64-character CN) = 128
    assert StackConfig.from_env({**BASE, "THINGPRESS_THING_PREFIX": ok}).thing_prefix == ok
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env({**BASE, "THINGPRESS_THING_PREFIX": ok + "p"})
    assert err.value.errors == ["THINGPRESS_THING_PREFIX: " + repr(ok + "p") + " is 65 characters: with the longest "
                                "infineon thing name (64) a thing name would be 129 characters, over IoT's 128"]
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env({**BASE, "THINGPRESS_THING_PREFIX": "pr 7/"})
    assert err.value.errors[0].startswith("THINGPRESS_THING_PREFIX: 'pr 7/' may only hold")


def test_thing_name_template_defaults_to_todays_names_and_is_checked_at_synth():
    assert StackConfig.from_env({**BASE}).thing_name_template == "{prefix}{name}"
    good = "{prefix}{vendor}-{serial}"
    assert StackConfig.from_env({**BASE, "THINGPRESS_THING_NAME_TEMPLATE": good}).thing_name_template == good
    for bad, why in (("{prefix}{chip}", "unknown placeholder {chip}"),
                     ("{vendor}#{name}", "'#' cannot be in an IoT thing name"),
                     ("{name}-{fingerprint}", "can give 129-character thing names")):
        with pytest.raises(ConfigError) as err:
            StackConfig.from_env({**BASE, "THINGPRESS_THING_NAME_TEMPLATE": bad})
        assert len(err.value.errors) == 1
        assert err.value.errors[0].startswith(f"THINGPRESS_THING_NAME_TEMPLATE: {bad!r}") and why in err.value.errors[0]
    # the prefix counts: 60 + 1 + 64 fits, 63 + 1 + 64 does not
    assert StackConfig.from_env({**BASE, "THINGPRESS_THING_PREFIX": "p" * 60,
                                 "THINGPRESS_THING_NAME_TEMPLATE": "{prefix}-{name}"})
    with pytest.raises(ConfigError, match="THINGPRESS_THING_NAME_TEMPLATE: '{prefix}-{name}' can give 129-character"):
        StackConfig.from_env({**BASE, "THINGPRESS_THING_PREFIX": "p" * 64,
                              "THINGPRESS_THING_NAME_TEMPLATE": "{prefix}-{name}"})


def test_several_existing_groups_and_policies_each_named_once_and_valid():
    cfg = StackConfig.from_env({**BASE, "THINGPRESS_THING_GROUP": "fleet-a, fleet-b",
                                "THINGPRESS_IOT_POLICY_NAME": "ota,metrics"})
    assert (cfg.thing_groups, cfg.iot_policy_names) == (("fleet-a", "fleet-b"), ("ota", "metrics"))
    assert StackConfig.from_env({**BASE}).thing_groups == ()
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env({**BASE, "THINGPRESS_THING_GROUP": "a,a,b/c,thingpress-local-devices",
                              "THINGPRESS_IOT_POLICY_NAME": "ota,"})
    assert err.value.errors == [
        "THINGPRESS_IOT_POLICY_NAME: '' must be 1-128 characters of [\\w+=,.@-]",
        "THINGPRESS_THING_GROUP: 'b/c' must be 1-128 characters of [a-zA-Z0-9:_-]",
        "THINGPRESS_THING_GROUP: 'thingpress-local-devices' is the one the stack creates (it is always used); "
        "name only existing ones",
        "THINGPRESS_THING_GROUP: a named more than once",
    ]


def test_each_existing_name_is_checked_with_its_own_apis_pattern():
    """IoT policy names are 1-128 of [\\w+=,.@-] (CreatePolicy / AttachPolicy), not the thing-name pattern
    (issue 22, 5): '.', '@', '+' and '=' are valid, ':' is refused by AttachPolicy."""
    valid = "ota.v2,ops@example,fleet+metrics,a=b,x" + "y" * 127
    cfg = StackConfig.from_env({**BASE, "THINGPRESS_IOT_POLICY_NAME": valid})
    assert cfg.iot_policy_names == ("ota.v2", "ops@example", "fleet+metrics", "a=b", "x" + "y" * 127)
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env({**BASE, "THINGPRESS_IOT_POLICY_NAME": "ops:ota,caf\u00e9," + "p" * 129,
                              "THINGPRESS_THING_GROUP": "fleet.a", "THINGPRESS_THING_TYPE": "type@1"})
    assert err.value.errors == [
        "THINGPRESS_THING_TYPE: 'type@1' must be 1-128 characters of [a-zA-Z0-9:_-]",
        "THINGPRESS_IOT_POLICY_NAME: 'ops:ota' must be 1-128 characters of [\\w+=,.@-]",
        "THINGPRESS_IOT_POLICY_NAME: 'caf\u00e9' must be 1-128 characters of [\\w+=,.@-]",  # AWS's \\w is ASCII
        f"THINGPRESS_IOT_POLICY_NAME: {'p' * 129!r} must be 1-128 characters of [\\w+=,.@-]",
        "THINGPRESS_THING_GROUP: 'fleet.a' must be 1-128 characters of [a-zA-Z0-9:_-]",
    ]
    assert StackConfig.from_env({**BASE, "THINGPRESS_THING_TYPE": "ns:device_type-1"}).thing_type == "ns:device_type-1"


def test_a_thing_joins_at_most_ten_groups_the_stacks_own_included():
    """AWS IoT puts a thing in at most 10 thing groups (issue 22, 4): 9 configured groups and the stack's own."""
    nine = ",".join(f"fleet-{i}" for i in range(9))
    assert len(StackConfig.from_env({**BASE, "THINGPRESS_THING_GROUP": nine}).thing_groups) == 9
    with pytest.raises(ConfigError) as err:
        StackConfig.from_env({**BASE, "THINGPRESS_THING_GROUP": nine + ",fleet-9"})
    assert err.value.errors == [
        "THINGPRESS_THING_GROUP: 10 groups and the stack's own make 11, but a thing can be in at most 10 thing "
        "groups: name at most 9"]
