"""Results on stdout, errors and hints on stderr; ``--json`` on every command, its output one JSON document."""

from __future__ import annotations

import argparse
import json

import pytest

from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.main import build_parser, main


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every command (and ``local`` action) parser, with the words that name it."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from leaf_parsers(child, path + (name,))


def test_every_command_has_json():
    # `local run` runs the runner in the foreground until Ctrl-C: it has no result to print
    missing = [" ".join(path) for path, parser in leaf_parsers(build_parser())
               if "--json" not in parser._option_string_actions and path != ("local", "run")]
    assert missing == []


@pytest.mark.parametrize("argv", [["local", "quotas", "off"], ["local", "run"], ["local", "destroy", "--env", "pr7"]])
def test_local_errors_go_to_stderr(monkeypatch, capsys, argv):
    monkeypatch.setattr(emulator, "running", lambda *a, **k: None)
    monkeypatch.setattr("thingpress_cli.local.state.endpoint", lambda: None)
    assert main(argv) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("thingpress local: the emulator is not running")
    if "--json" not in argv and argv[1] != "run":
        assert main(argv + ["--json"]) == 3
        out, err = capsys.readouterr()
        assert err == "" and json.loads(out)["error"]["code"] == 3


def test_generate_json_and_its_note_on_stderr(tmp_path, capsys):
    out_file = tmp_path / "m.txt"
    assert main(["generate", "2", "--out", str(out_file), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["count"] == 2 and json.loads(out)["file"] == str(out_file)
    assert err.startswith("note: one device key is shared")
    assert main(["generate", "0", "--out", str(out_file), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["message"] == "N must be at least 1"
