"""``thingpress rollback`` / ``teardown`` stopped by an AWS error they do not retry: a message, exit 4 (an AWS error), a resume.

The error is IAM's refusal of the second ``DeleteCertificate`` (injected on the command's IoT
client, as botocore raises it for a 403). The command must name where it stopped and what it had
done, print the command that resumes, exit 4 without a traceback, and that command must
then finish the job.
"""

from __future__ import annotations

import shlex

import factories
import pytest
from botocore.exceptions import ClientError
from cli_cloud import SUFFIX

from thingpress.audit.states import IMPORTED, ROLLED_BACK
from thingpress_cli.core.deployment import Deployment
from thingpress_cli.main import main

DENIED = "User: arn:aws:iam::123456789012:user/operator is not authorized to perform: iot:DeleteCertificate"


@pytest.fixture
def denied_second_delete(monkeypatch: pytest.MonkeyPatch):
    """The commands' IoT clients: the second DeleteCertificate of the test answers AccessDeniedException."""
    calls: list[str] = []
    client = Deployment.client

    def refuse(**_kwargs) -> None:
        calls.append("DeleteCertificate")
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": DENIED},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, "DeleteCertificate")

    def refusing_client(self: Deployment, service: str):
        made = client(self, service)
        if service == "iot":
            made.meta.events.register("before-call.iot.DeleteCertificate", refuse)
        return made

    monkeypatch.setattr(Deployment, "client", refusing_client)
    return calls


@pytest.fixture
def imported(cloud, tmp_path, capsys):
    """Three devices imported; returns (manifest id, certificate rows in the order a rollback takes them)."""
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(3, prefix="Stop-")))
    mid = cloud.run(path)
    capsys.readouterr()
    return mid, [r for r in cloud.audit.entries(mid) if r["sk"].startswith("C#")]


def certificates(cloud) -> list[str]:
    return sorted(c["certificateId"] for c in cloud.iot.list_certificates()["certificates"])


def things(cloud) -> list[str]:
    return sorted(t["thingName"] for t in cloud.iot.list_things()["things"])


def resume_command(err: str) -> list[str]:
    """The last line the command printed, as argv for ``main`` (without the ``thingpress``)."""
    argv = shlex.split(err.rstrip("\n").splitlines()[-1])
    assert argv[0] == "thingpress"
    return argv[1:]


def test_rollback_stops_with_what_was_done_and_resumes(cloud, imported, denied_second_delete, capsys):
    mid, rows = imported
    first, second = rows[0], rows[1]

    assert main(["rollback", mid, "--delete", "--yes"]) == 4

    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"thingpress rollback: stopped at certificate {second['fingerprint']} (thing {second['thing_name']}) of "
        f"manifest {mid}: DeleteCertificate refused: AccessDeniedException: {DENIED}\n"
        "done before the stop: certificates_deactivated 3, certificates_deleted 1, policies_detached 3, "
        "principals_detached 3, rows 1, things_deleted 1; manifests finished: 0 of 1\n"
        "every step reads the state before it changes it, so the same command resumes where this one stopped:\n"
        f"  thingpress rollback {mid} --delete --yes --env {SUFFIX}\n")
    assert "Traceback" not in err
    assert first["fingerprint"] not in certificates(cloud) and second["fingerprint"] in certificates(cloud)
    assert things(cloud) == sorted(r["thing_name"] for r in rows[1:])
    assert [r["status"] for r in cloud.audit.entries(mid) if r["sk"].startswith("C#")] == [
        ROLLED_BACK, IMPORTED, IMPORTED]

    assert main(resume_command(err)) == 0  # the third DeleteCertificate onwards: allowed
    assert certificates(cloud) == [] and things(cloud) == []
    assert {r["status"] for r in cloud.audit.entries(mid)} == {ROLLED_BACK}


def test_teardown_stops_with_what_was_done_and_resumes(cloud, imported, denied_second_delete, capsys):
    mid, rows = imported
    second = rows[1]

    assert main(["teardown", "--yes"]) == 4

    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"thingpress teardown: stopped at certificate {second['fingerprint']} (thing {second['thing_name']}) of "
        f"manifest {mid}: DeleteCertificate refused: AccessDeniedException: {DENIED}\n"
        "done before the stop: certificates_deactivated 3, certificates_deleted 1, policies_detached 3, "
        "principals_detached 3, rows 1, things_deleted 1; manifests finished: 0 of 1\n"
        "every step reads the state before it changes it, so the same command resumes where this one stopped:\n"
        f"  thingpress teardown --yes --env {SUFFIX}\n")
    assert len(certificates(cloud)) == 2 and len(things(cloud)) == 2

    assert main(resume_command(err)) == 0
    assert certificates(cloud) == [] and things(cloud) == []
