"""thingpress deactivate and activate on the deployment: the commands submit a job to the lifecycle queue, the
lifecycle function (the local runner runs it on its SQS mapping as Lambda would) works it through the
throttle, and the commands watch it to the end. IoT, the audit rows and the job's results file are read back.

The certificates are imported as the deployment imports them (``ACTIVE`` by default: no configuration is
changed, so this runs against any deployment): three are set ``INACTIVE``, two of those activated again
with a factory attribute, one revoked for good.
"""

from __future__ import annotations

import json
import uuid

from thingpress.audit.states import COMPLETE
from thingpress.lifecycle.jobs import ACTIVATED, DEACTIVATED, REVOKED
from thingpress_cli.core.certificates import write_manifest
from thingpress_cli.main import main

from deployment_checks import upload_and_wait, wait_until

#: seconds the commands may wait for their job (the queue's poll, the function's run).
JOB_TIMEOUT = "300"
#: seconds a row may take to show in an index (AWS: "within a fraction of a second"; the local cloud: 250 ms).
INDEX_WAIT_SECONDS = 10


def _run(capsys, *argv: str) -> dict:
    code = main([*argv, "--yes", "--timeout", JOB_TIMEOUT, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    return out


def test_deactivate_activate_and_revoke_on_the_deployment(deployment, tmp_path, capsys):
    run = uuid.uuid4().hex[:8]
    manifest = tmp_path / f"lifecycle-{run}.txt"
    write_manifest(manifest, count=4, prefix=f"Lc-{run}-")
    row = upload_and_wait(deployment, manifest)
    assert row["state"] == COMPLETE and row["imported"] == 4, row
    table = deployment.audit_table()
    rows = sorted((r for r in table.entries(row["manifest_id"]) if r["sk"].startswith("C#")),
                  key=lambda r: r["position"])
    things = [r["thing_name"] for r in rows]
    certs = {r["thing_name"]: r["certificate_id"] for r in rows}
    iot = deployment.client("iot")

    def status(thing: str) -> str:
        return iot.describe_certificate(certificateId=certs[thing])["certificateDescription"]["status"]

    off = tmp_path / "off.txt"
    off.write_text("\n".join(things[:3]) + "\n")  # thing names
    out = _run(capsys, "deactivate", "--file", str(off), "--status", "INACTIVE", "--reason", "held at test")
    assert out["counts"][DEACTIVATED] == 3 and not out["problems"], out
    assert [status(t) for t in things] == ["INACTIVE"] * 3 + ["ACTIVE"]

    passed = tmp_path / "passed.txt"
    passed.write_text("\n".join(certs[t] for t in things[:2]) + "\n")  # certificate ids
    facts = tmp_path / "facts.csv"
    facts.write_text("certificate_id,station\n" + "".join(f"{certs[t]},ST-{i}\n" for i, t in enumerate(things[:2])))
    out = _run(capsys, "activate", "--file", str(passed), "--attributes", str(facts))
    assert out["counts"][ACTIVATED] == 2 and not out["problems"], out
    assert [status(t) for t in things] == ["ACTIVE", "ACTIVE", "INACTIVE", "ACTIVE"]
    assert iot.describe_thing(thingName=things[1])["attributes"]["station"] == "ST-1"

    failed = tmp_path / "failed.txt"
    failed.write_text(things[2] + "\n")
    out = _run(capsys, "deactivate", "--file", str(failed), "--status", "REVOKED", "--reason", "failed test")
    assert out["counts"][REVOKED] == 1, out
    assert status(things[2]) == "REVOKED"

    def history() -> list[dict]:
        rows = table.rows_for_thing(things[2])
        return rows if any(r["status"] == REVOKED for r in rows) else []

    # The rows for a thing come from the by_thing index, which is eventually consistent ("Changes to the table
    # data are propagated to the global secondary indexes within a fraction of a second", developer guide,
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes; the local cloud's
    # index lag): the revocation's row shows there a moment after the job wrote it, not at once.
    rows = wait_until(history, INDEX_WAIT_SECONDS, "the revocation's row in the by_thing index")
    assert sorted(r["status"] for r in rows) == sorted(["IMPORTED", DEACTIVATED, REVOKED])
    revoked = next(r for r in rows if r["status"] == REVOKED)
    assert revoked["reason"] == "failed test" and revoked["previous_status"] == "INACTIVE"
