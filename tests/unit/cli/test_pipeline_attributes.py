"""Device facts from the manifest reach the thing, through the real provider and importer in process."""

from __future__ import annotations

import factories


def test_espressif_cn_becomes_a_thing_attribute(cloud, tmp_path):
    devs = factories.devices(2, prefix="Esp-")
    path = tmp_path / "m.csv"
    path.write_bytes(factories.espressif_manifest(factories.espressif_rows(devs)))
    mid = cloud.run(path)
    assert cloud.audit.get_summary(mid)["imported"] == 2
    thing = cloud.iot.describe_thing(thingName=factories.mac(0))
    assert thing["attributes"]["common_name"] == devs[0].name
    assert thing["attributes"]["thingpress_manifest"] == mid
