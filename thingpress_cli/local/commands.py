"""``thingpress local up | down | status | run | quotas``: the local cloud.

``up`` starts the emulator (or reuses the running one), deploys the ``local``
target with the real cdktf CLI (``cdktf deploy thingpress-local --auto-approve
--outputs-file terraform-outputs.json``: real ``terraform apply`` through the
offline provider mirror), starts the runner and says what to do next. It is
idempotent: a second ``up`` finds everything running and applies no change.

``down`` stops the runner and the emulator and deletes the local Terraform state
instead of running ``cdktf destroy``: every resource lives only in the emulator's
memory, so stopping it *is* the teardown, and a destroy would spend minutes
(SQS deletions wait too) removing what is about to vanish anyway. The state must
go with it, or the next ``up`` would plan against resources that no longer exist.
``terraform-outputs.json`` is removed only if it holds the local stack's outputs.

The emulator refuses IoT deletions as AWS does (:mod:`.iot_deletion`), but ``up``
starts it with a :data:`THING_TYPE_WAIT` of a few seconds instead of AWS's five
minutes between deprecating a thing type and deleting it, so a local destroy of
the stack (Terraform deprecates, then retries the delete) takes seconds.

Speed: the emulator keeps its port across ``down``/``up`` (recorded in
``build/local/port``) so the synthesized stack, which names the endpoint, stays
valid; synthesis is skipped when the inputs that shape it have not changed since
the last successful deploy (``--synth`` forces it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from thingpress_cli import hints, toolchain
from thingpress_cli.local import deploy_log, emulator, recorder, runner, state

REPO = toolchain.REPO
STACK = "thingpress-local"
OUTPUTS = REPO / "terraform-outputs.json"
#: the full output of the last ``cdktf deploy`` (the terminal shows a compact progress line).
DEPLOY_LOG = state.LOG_DIR / "deploy.log"
SYNTH_DIR = REPO / "cdktf.out" / "stacks" / STACK
TF_STATE = REPO / "build" / "state" / f"{STACK}.tfstate"
PORT_FILE = state.LOCAL_DIR / "port"
#: What shapes the synthesized stack: when none of it changed, synthesis is skipped.
SYNTH_INPUTS = ("main.py", "cdktf.json", "stacks", "lambdas", "shared/thingpress", "shared/pyproject.toml")
#: Seconds between DeprecateThingType and an accepted DeleteThingType on the local emulator (AWS: 300).
THING_TYPE_WAIT = 3.0
#: Terraform creates independent resources concurrently; SQS queues each wait ~25 s in the provider.
TERRAFORM_PARALLELISM = 32


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help="the local cloud: emulator, deploy, Lambda runner",
                                   description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start the emulator, deploy the local stack, start the runner")
    up.add_argument("--quotas", default=None, help="IoT quota mode: default | raised | off | JSON rates (default: off)")
    up.add_argument("--synth", action="store_true", help="synthesize even if the inputs did not change")
    up.add_argument("--no-runner", action="store_true", help="do not start the Lambda runner")
    up.add_argument("--verbose", action="store_true", help="runner errors and tracebacks also to its output")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the runner and the emulator, forget the local deployment")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="what runs")
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")
    status.set_defaults(func=cmd_status)
    run = sub.add_parser("run", help="run the Lambda runner in the foreground (verbose)")
    run.set_defaults(func=cmd_run)
    quotas = sub.add_parser("quotas", help="switch the running emulator's IoT quota mode")
    quotas.add_argument("rates", help="default | raised | off | JSON rates, e.g. '{\"AttachPolicy\": 15}'")
    quotas.set_defaults(func=cmd_quotas)


# --------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def synth_fingerprint(endpoint: str, environ: dict[str, str] | None = None) -> str:
    """Hash of everything that shapes the synthesized local stack."""
    digest = hashlib.sha256()
    env = os.environ if environ is None else environ
    for key in sorted(k for k in env if k.startswith("THINGPRESS_")):
        digest.update(f"{key}={env[key]}\n".encode())
    digest.update(f"endpoint={endpoint}\n".encode())
    for name in SYNTH_INPUTS:
        root = REPO / name
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or ".egg-info" in str(path) or path.suffix == ".pyc":
                continue
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def deploy_environment(endpoint: str) -> dict[str, str]:
    env = toolchain.environment()
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(key, None)
    env.update(state.client_environment(endpoint))
    env.update({
        "THINGPRESS_TARGET": "local", "THINGPRESS_ENV": "local", "THINGPRESS_ENDPOINT": endpoint,
        "CI": "1", "TF_IN_AUTOMATION": "1", "FORCE_COLOR": "0", "CDKTF_DISABLE_TELEMETRY": "true",
        "PIPENV_VERBOSITY": "-1",
        # cdktf's version check runs `pipenv run pip show cdktf` (then `pip show`) before every
        # deploy: seconds of pipenv start-up for a notice; the versions are pinned anyway.
        "DISABLE_VERSION_CHECK": "true",
    })
    return env


def cdktf_command() -> list[str]:
    local = toolchain.NODE_BIN / "cdktf"
    return [str(local)] if local.is_file() else ["npx", "--no-install", "cdktf"]


def outputs_are_ours(path: Path = OUTPUTS) -> bool:
    """Whether ``terraform-outputs.json`` holds only the local stack's outputs."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and set(data) == {STACK}


def forget_terraform_state() -> None:
    for suffix in ("", ".backup", ".lock.info"):
        Path(f"{TF_STATE}{suffix}").unlink(missing_ok=True)


def preferred_port() -> int:
    try:
        return int(PORT_FILE.read_text().strip())
    except (OSError, ValueError):
        return 0


# --------------------------------------------------------------------------- commands


def cmd_up(args: argparse.Namespace) -> int:
    began = time.monotonic()
    reused = emulator.running()
    current = emulator.start(quotas=args.quotas, port=preferred_port(), thing_type_wait=THING_TYPE_WAIT)
    PORT_FILE.parent.mkdir(parents=True, exist_ok=True)
    PORT_FILE.write_text(f"{current.port}\n")
    if reused is None:
        forget_terraform_state()  # a fresh emulator is empty: no stale state to plan against
        say(f"emulator started: {current.url} (pid {current.pid})")
    else:
        say(f"emulator already running: {current.url} (pid {current.pid})")

    fingerprint = synth_fingerprint(current.url)
    recorded = state.load().get("synth") or {}
    skip_synth = (not args.synth and recorded.get("fingerprint") == fingerprint
                  and (SYNTH_DIR / "cdk.tf.json").is_file())
    command = cdktf_command() + ["deploy", STACK, "--auto-approve", "--outputs-file", str(OUTPUTS),
                                 "--terraform-parallelism", str(TERRAFORM_PARALLELISM), "--skip-provider-lock"]
    if skip_synth:
        command.append("--skip-synth")
    say(f"deploying {STACK} with the cdktf CLI{' (synthesis skipped: inputs unchanged)' if skip_synth else ''} ...")
    deploy_began = time.monotonic()
    returncode = deploy_log.run(command, cwd=REPO, env=deploy_environment(current.url), log_path=DEPLOY_LOG)
    deploy_seconds = time.monotonic() - deploy_began
    if returncode != 0:
        state.update("deploy", None)
        state.update("synth", None)
        say(f"cdktf deploy failed (exit {returncode}) after {deploy_seconds:.0f} s; "
            f"the emulator keeps running at {current.url} (emulator log: {state.LOG_DIR / 'emulator.log'})")
        return returncode
    # Recorded calls belong to the stack just deployed: make iam-check evaluates them against it.
    shutil.rmtree(state.LOCAL_DIR / recorder.CALLS_DIR_NAME, ignore_errors=True)
    state.update("deploy", {"seconds": round(deploy_seconds, 1), "outputs": str(OUTPUTS), "stack": STACK,
                            "synthesized": not skip_synth})
    # Kept across `down`: the synthesized stack stays valid while its inputs and the port do not change.
    state.update("synth", {"fingerprint": fingerprint, "endpoint": current.url})
    say(f"deployed in {deploy_seconds:.1f} s (cdktf deploy{'' if skip_synth else ', synthesis included'}); "
        f"outputs: {OUTPUTS.relative_to(REPO)}")

    if not args.no_runner:
        pid = runner.start_daemon(current.url, verbose=args.verbose)
        say(f"Lambda runner running (pid {pid}); function logs: {state.LOG_DIR.relative_to(REPO)}/<function>.log")
    say(f"local cloud up in {time.monotonic() - began:.1f} s\n")
    tp = hints.thingpress()
    say("Next:")
    say(f"  {tp} plan path/to/manifest             what an upload would do here, and how long")
    say(f"  {tp} upload path/to/manifest --wait    import a manifest (vendor from the file name, or --vendor)")
    say(f"  {tp} status                            manifests and their outcomes")
    if hints.available("aws"):
        say(f"  aws --endpoint-url {current.url} iot list-things   inspect with the AWS CLI (any credentials)")
    say(f"  {tp} local status | down               what runs | stop everything")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped_runner = runner.stop_daemon()
    stopped_emulator = emulator.stop()
    forget_terraform_state()
    state.update("deploy", None)
    removed = outputs_are_ours()
    if removed:
        OUTPUTS.unlink()
    say(f"runner {'stopped' if stopped_runner else 'was not running'}; "
        f"emulator {'stopped (its resources are gone)' if stopped_emulator else 'was not running'}; "
        f"local Terraform state removed; {OUTPUTS.name} {'removed' if removed else 'left as is (not the local stack)'}")
    return 0


def status() -> dict[str, Any]:
    """What runs, as data."""
    recorded = state.load()
    current = emulator.running()
    runner_pid = (recorded.get("runner") or {}).get("pid")
    deploy = recorded.get("deploy") or {}
    return {
        "emulator": {"running": current is not None, **(current.as_state() if current else {})},
        "runner": {"running": state.pid_alive(runner_pid, runner.RUNNER_MODULE), "pid": runner_pid},
        "deployed": {"outputs": str(OUTPUTS), "present": outputs_are_ours(), "seconds": deploy.get("seconds")},
        "logs": str(state.LOG_DIR),
    }


def cmd_status(args: argparse.Namespace) -> int:
    info = status()
    if args.json:
        say(json.dumps(info))
    else:
        emu, run, dep = info["emulator"], info["runner"], info["deployed"]
        say(f"emulator : {'running at ' + emu['url'] + ' (pid ' + str(emu['pid']) + ')' if emu['running'] else 'not running'}")
        say(f"runner   : {'running (pid ' + str(run['pid']) + ')' if run['running'] else 'not running'}")
        say(f"deployed : {'yes, outputs in ' + dep['outputs'] if dep['present'] else 'no local stack outputs'}"
            + (f" (deploy took {dep['seconds']} s)" if dep["present"] and dep["seconds"] else ""))
        say(f"logs     : {info['logs']}")
    everything = info["emulator"]["running"] and info["runner"]["running"] and info["deployed"]["present"]
    return 0 if everything else 1


def cmd_run(args: argparse.Namespace) -> int:
    endpoint = state.endpoint()
    if not endpoint or emulator.running() is None:
        say("the emulator is not running: `thingpress local up` first")
        return 1
    runner.stop_daemon()  # one runner at a time, or both would poll the same queues
    say(f"running the Lambda runner in the foreground against {endpoint} (Ctrl-C to stop)")
    return runner.main(["--endpoint", endpoint, "--verbose"])


def cmd_quotas(args: argparse.Namespace) -> int:
    current = emulator.running()
    if current is None:
        say("the emulator is not running: `thingpress local up` first")
        return 1
    try:
        rates = emulator.set_quotas(current.url, args.rates)
    except ValueError as error:
        say(f"quotas refused: {error}")
        return 2
    say(f"IoT quotas now: {json.dumps(rates) if rates else 'off'}")
    return 0



# --------------------------------------------------------------------------- programmatic API
# Used by `thingpress demo`, the integration/fault-test session fixture and the benchmarks.


class LocalUpError(RuntimeError):
    """`local up` failed; the message says where to look."""


def is_up() -> bool:
    """Emulator, runner and the local stack's outputs are all there."""
    info = status()
    return bool(info["emulator"]["running"] and info["runner"]["running"] and info["deployed"]["present"])


def ensure_up(quotas: str | None = None) -> str:
    """Bring the local environment up unless it already runs; return the emulator URL."""
    if not is_up():
        args = argparse.Namespace(quotas=quotas, synth=False, no_runner=False, verbose=False)
        code = cmd_up(args)
        if code != 0:
            raise LocalUpError(f"thingpress local up failed (exit {code}); logs in {state.LOG_DIR}")
    url = state.endpoint()
    if not url:
        raise LocalUpError("the local environment reports no emulator endpoint")
    return url


def down() -> None:
    """Stop the runner and the emulator and forget the local deployment."""
    cmd_down(argparse.Namespace())
