"""``thingpress completion bash|zsh``: a static script (shtab) that completes every command and option."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from thingpress_cli.main import COMMANDS, main


def script(capsys, shell: str) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def complete(path, words: list[str]) -> list[str]:
    """What bash's TAB offers after ``words`` (the last one being completed), with the script loaded.

    PATH holds no thingpress and no Python: the script completes on its own."""
    line = " ".join(words)
    program = (f"source {path}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
               f"COMP_POINT={len(line)}; _shtab_thingpress; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    done = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin"})
    return sorted(done.stdout.split())


def test_bash_completes_commands_options_and_files(capsys, tmp_path):
    path = tmp_path / "thingpress.bash"
    path.write_text(script(capsys, "bash"))
    (tmp_path / "m.txt").write_text("")
    assert complete(path, ["thingpress", ""]) == sorted(COMMANDS)
    assert complete(path, ["thingpress", "re"]) == ["reconcile", "redrive", "report"]
    assert complete(path, ["thingpress", "upload", "--w"]) == ["--wait"]
    assert complete(path, ["thingpress", "local", "q"]) == ["quotas"]
    assert complete(path, ["thingpress", "completion", ""]) == ["bash", "zsh"]
    assert complete(path, ["thingpress", "plan", f"{tmp_path}/m."]) == [f"{tmp_path}/m.txt"]


def test_zsh_script_names_every_command(capsys):
    text = script(capsys, "zsh")
    assert text.startswith("#compdef thingpress")
    assert all(f"\n    {command}:'" in text for command in COMMANDS)
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", "-c", text], check=True)  # parses


def test_json_carries_the_script(capsys):
    assert main(["completion", "bash", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out)["shell"] == "bash"
    assert "_shtab_thingpress" in json.loads(out)["script"]


def test_an_unknown_shell_is_a_usage_error(capsys):
    assert main(["completion", "fish"]) == 2
    assert "invalid choice: 'fish'" in capsys.readouterr().err


@pytest.mark.parametrize("call", ["", "main(['completion', '--help'])"])
def test_the_completion_command_imports_no_boto3(call):
    """Its module, and its parser, import neither boto3 nor shtab: only printing the script builds every parser."""
    program = ("import sys\nfrom thingpress_cli.main import main\nimport thingpress_cli.commands.completion\n"
               f"try:\n    {call or 'pass'}\nexcept SystemExit:\n    pass\n"
               "print(sorted(m for m in ('boto3', 'botocore', 'shtab') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
