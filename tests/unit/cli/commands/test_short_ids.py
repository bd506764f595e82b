"""Every command that names a manifest takes the short id ``status`` prints (a unique prefix of the id)."""

from __future__ import annotations

import json

import factories

from thingpress.audit.states import ROLLED_BACK
from thingpress_cli.core.progress import short_id
from thingpress_cli.main import main


def test_rollback_takes_the_short_id_status_prints(cloud, tmp_path, capsys):
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(2, prefix="Short-")))
    mid = cloud.run(path)
    capsys.readouterr()  # the functions' logs
    assert main(["status", "--json"]) == 0
    (shown,) = [view["short"] for view in json.loads(capsys.readouterr().out)]
    assert shown == short_id(mid) and shown != mid
    for argv in (["status", shown], ["report", shown], ["reconcile", shown]):
        assert main(argv) == 0, argv
    capsys.readouterr()
    assert main(["rollback", shown, "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["manifests"] == [mid]
    assert {r["status"] for r in cloud.audit.entries(mid) if r["sk"].startswith("C#")} == {ROLLED_BACK}
