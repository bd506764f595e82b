"""``thingpress inspect`` and ``thingpress generate`` through the real command entry point."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import factories
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from thingpress_cli.commands import inspect as inspect_cmd
from thingpress_cli.main import main


def run_json(capsys, *argv: str) -> dict:
    assert main(["inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_generated_manifest_counts_duplicates_and_refusals(tmp_path, capsys):
    devs = factories.devices(3)
    data = factories.generated_manifest(devs) + factories.generated_manifest(devs[:1]) + b"QUJD\n"
    path = tmp_path / "devices.txt"
    path.write_bytes(data)
    report = run_json(capsys, str(path))
    assert {k: report[k] for k in ("vendor", "entries", "accepted", "duplicates", "rejected")} == {
        "vendor": "generated", "entries": 5, "accepted": 3, "duplicates": 1, "rejected": 1}
    assert report["errors"] == [{"position": 5, "reason": "line 5: base64 does not decode to a PEM certificate"}]
    assert report["duplicate_of"] == [{"position": 4, "first": 1}]


def test_expired_flag(tmp_path, capsys):
    path = tmp_path / "old.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(2, expired=True)))
    assert run_json(capsys, str(path))["rejected"] == 2
    assert run_json(capsys, str(path), "--expired", "import")["accepted"] == 2


def test_vendor_flag_overrides_suffix_and_wrong_format_exits_2(tmp_path, capsys):
    path = tmp_path / "rows.csv"
    path.write_bytes(factories.espressif_manifest(factories.espressif_rows(factories.devices(1))))
    reason = (f"{path}: not a microchip manifest: expected a JSON array of signed entries (flattened JWS), "
              "found 'MAC,cn,cert\\r\\n24A1600' at the start")
    assert main(["inspect", str(path), "--vendor", "microchip"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"thingpress inspect: {reason}\n")
    # under --json the error is the one JSON document, on stdout
    assert main(["inspect", str(path), "--vendor", "microchip", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out) == {"error": {"code": 2, "type": "UsageError", "message": reason}}


def test_empty_file_and_unknown_suffix_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main(["inspect", str(empty)]) == 2
    assert capsys.readouterr().err == (f"thingpress inspect: {empty}: espressif manifest is empty: expected a CSV "
                                       "with header MAC,cn,cert\n")
    other = tmp_path / "x.zip"
    other.write_bytes(b"PK")
    assert main(["inspect", str(other)]) == 2
    assert capsys.readouterr().err.startswith(f"thingpress inspect: {other}: cannot tell the vendor from the file name")


def test_microchip_with_signers_dir(tmp_path, capsys):
    signer = factories.microchip_signer()
    signers = tmp_path / "signers"
    signers.mkdir()
    (signers / "test-signer.crt").write_bytes(signer.certificate.public_bytes(Encoding.PEM))
    path = tmp_path / "m.json"
    entries = [factories.microchip_entry(signer, "0123aa", factories.devices(1)[0]),
               factories.microchip_entry(signer, "0123bb")]
    path.write_bytes(factories.microchip_manifest(entries))
    report = run_json(capsys, str(path), "--signers", str(signers))
    assert (report["entries"], report["accepted"], report["rejected"]) == (2, 1, 1)
    assert report["errors"] == [{"position": 2, "reason": "entry 2 (uniqueId 0123bb): signed entry carries no device "
                                                          "certificate (publicKeySet absent)"}]


def test_infineon_bundle_flag(tmp_path, capsys):
    bundles = factories.all_bundles(2)
    path = tmp_path / "reel.7z"
    path.write_bytes(factories.infineon_reel(bundles))
    report = run_json(capsys, str(path), "--bundle", "E0E2")
    assert report["accepted"] == 2


def test_signers_default_order(tmp_path):
    assert inspect_cmd.signers_dir(tmp_path, {}) == tmp_path
    assert inspect_cmd.signers_dir(None, {inspect_cmd.SIGNERS_SETTING: "/x"}) == Path("/x")


def test_human_output_lists_refusals(tmp_path, capsys):
    path = tmp_path / "m.txt"
    path.write_bytes(factories.generated_manifest(factories.devices(1)) + b"!!\n")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  entries     2\n" in out and "  accepted    1  " in out and "  rejected    1  (malformed 1)\n" in out
    assert "  2: line 2: not standard base64\n" in out


@pytest.mark.samples
@pytest.mark.parametrize(("name", "extra", "expected"), [
    ("ECC608C-TNGTLSU-B.json", [], (10, 10, 0)),
    ("ECC608-TMNGTLSS-B.json", [], (10, 0, 10)),
    ("manifest-espressif.csv", [], (7, 7, 0)),
    ("manifest-infineon.7z", ["--bundle", "E0E1"], (200, 200, 0)),
    ("certificates_test.txt", [], (100, 0, 100)),
    ("certificates_test.txt", ["--expired", "import"], (100, 100, 0)),
])
def test_real_samples(vendor_samples, capsys, name, extra, expected):
    report = run_json(capsys, str(vendor_samples / name), "--signers", str(vendor_samples / "microchip-signers"),
                      *extra)
    assert (report["entries"], report["accepted"], report["rejected"]) == expected
    if name == "ECC608-TMNGTLSS-B.json":
        assert report["no_certificates"] is True
        assert report["note"].startswith("signed manifest holds no device certificates")


def test_generate_command_writes_parseable_manifest_and_keys(tmp_path, capsys):
    out = tmp_path / "gen.txt"
    keys = tmp_path / "keys"
    assert main(["generate", "3", "--out", str(out), "--keys", str(keys), "--days", "2"]) == 0
    lines = out.read_bytes().splitlines()
    assert len(lines) == 3 and base64.b64decode(lines[0]).startswith(b"-----BEGIN CERTIFICATE-----")
    assert sorted(p.name for p in keys.iterdir()) == [
        "Device-0.key.pem", "Device-1.key.pem", "Device-2.key.pem", "intermediate-ca.pem", "root-ca.pem"]
    capsys.readouterr()
    report = run_json(capsys, str(out))
    assert (report["entries"], report["accepted"]) == (3, 3)


def test_generate_without_keys_says_the_key_is_shared(tmp_path, capsys):
    out = tmp_path / "gen.txt"
    assert main(["generate", "2", "--out", str(out), "--expired"]) == 0
    assert "one device key is shared by all certificates" in capsys.readouterr().err
    assert run_json(capsys, str(out))["rejected_by_kind"] == {"expired": 2}


@pytest.mark.samples
def test_microchip_signers_from_the_setting(vendor_samples, capsys, monkeypatch):
    monkeypatch.setenv(inspect_cmd.SIGNERS_SETTING, str(vendor_samples / "microchip-signers"))
    report = run_json(capsys, str(vendor_samples / "ECC608C-TNGTLSU-B.json"))
    assert (report["vendor"], report["accepted"]) == ("microchip", 10)


def test_microchip_without_any_signer_exits_2(tmp_path, capsys):
    empty = tmp_path / "no-signers"
    empty.mkdir()
    signer = factories.microchip_signer()
    path = tmp_path / "m.json"
    path.write_bytes(factories.microchip_manifest([factories.microchip_entry(signer, "0123aa")]))
    assert main(["inspect", str(path), "--signers", str(empty)]) == 2
    assert capsys.readouterr().err == (f"thingpress inspect: {path}: microchip manifest cannot be verified: no trusted "
                                       "Microchip manifest signer certificate is configured\n")
