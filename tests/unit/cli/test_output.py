"""Compact deploy progress (``local.deploy_log``), hints naming existing commands, the demo table."""

from __future__ import annotations

import io
import sys

from rich.console import Console

from thingpress_cli.commands import demo
from thingpress_cli.core import hints
from thingpress_cli.local import deploy_log

TERRAFORM = """thingpress-local  Initializing the backend...
thingpress-local  Plan: 3 to add, 1 to change, 0 to destroy.
thingpress-local  aws_sqs_queue.a: Creating...
thingpress-local  aws_sqs_queue.a: Creation complete after 1s [id=a]
thingpress-local  aws_sqs_queue.b: Creation complete after 2s [id=b]
thingpress-local  aws_iam_role.r: Modifications complete after 0s [id=r]
thingpress-local  aws_kms_key.k: Still creating... [10s elapsed]
"""


def test_progress_counts_resources_from_the_plan_and_the_completions():
    log = io.StringIO()
    seen = []
    progress = deploy_log.follow(io.StringIO(TERRAFORM), log, lambda p: seen.append((p.done, p.total)))
    assert (progress.done, progress.total) == (3, 4)
    assert seen[0] == (0, None) and seen[1] == (0, 4) and seen[-1] == (3, 4)
    assert log.getvalue() == TERRAFORM
    assert progress.text(75) == "deploy: 3/4 resources, 1:15 elapsed"


def test_run_keeps_the_full_log_and_prints_one_line(tmp_path):
    script = "import sys; sys.stdout.write(" + repr(TERRAFORM) + ")"
    out = io.StringIO()
    ticks = iter(range(0, 1000, 4))
    log_path = tmp_path / "logs" / "deploy.log"
    code = deploy_log.run([sys.executable, "-c", script], cwd=tmp_path, env={}, log_path=log_path, out=out,
                          clock=lambda: float(next(ticks)))
    assert code == 0 and log_path.read_text() == TERRAFORM
    # not a terminal: a plain line every 10 s of the (fake) clock, then the summary with the log's place
    lines = out.getvalue().splitlines()
    assert lines[-1] == f"deploy: 3/4 resources, 0:32 elapsed (done); full log: {log_path}"
    assert lines[:2] == ["deploy: 0/4 resources, 0:12 elapsed", "deploy: 3/4 resources, 0:24 elapsed"]


def test_a_failed_deploy_shows_the_tail_of_the_log(tmp_path):
    out = io.StringIO()
    script = "import sys; print('Plan: 1 to add, 0 to change, 0 to destroy.'); print('Error: boom'); sys.exit(3)"
    code = deploy_log.run([sys.executable, "-c", script], cwd=tmp_path, env={}, log_path=tmp_path / "d.log", out=out)
    assert code == 3
    assert "(failed, exit 3); full log: " in out.getvalue() and "  | Error: boom\n" in out.getvalue()


def test_hints_name_only_programs_that_run(tmp_path, monkeypatch):
    hints.available.cache_clear()
    shim = tmp_path / "aws"
    shim.write_text("#!/bin/sh\necho 'pyenv: aws: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert hints.available("aws") is False  # on PATH but does not run (a shim without an install)
    assert hints.available("no-such-program") is False
    (tmp_path / "ok").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "ok").chmod(0o755)
    assert hints.available("ok") is True
    hints.available.cache_clear()


def test_thingpress_hint_is_this_installation(monkeypatch, tmp_path):
    hints.thingpress.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    name = hints.thingpress()
    assert name.endswith("thingpress") and name != "thingpress"  # not on PATH: the script's path
    hints.thingpress.cache_clear()


def test_demo_results_fit_80_columns(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(Console, "__init__", _at_width(Console.__init__, out))
    demo.print_results([("microchip: ECC608-TMNGTLSS-B.json (signed, no certificates)",
                         {"state": "COMPLETE", "entries": 10, "rejected": 10,
                          "manifest_id": "generated-3f1c9a2b77aa01",
                          "note": "signed manifest holds no device certificates: all 10 entries carry none"}),
                        ("fresh generated (50)", {"state": "COMPLETE", "entries": 50, "imported": 50})])
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    last = next(i for i, line in enumerate(lines) if line.split()[:3] == ["fresh", "generated", "(50)"])
    # the note did not fit: cut in the table, then in full under it (wrapped to 80 columns), after the short id
    assert lines[last - 1].endswith("…")
    assert " ".join(" ".join(lines[last + 1:]).split()) == ("generated-3f1c9a2b: signed manifest holds no device certificates: "
                                          "all 10 entries carry none")


def _at_width(init, out):
    def patched(self, *args, **kwargs):
        kwargs.update(file=out, width=80)
        init(self, *args, **kwargs)
    return patched
