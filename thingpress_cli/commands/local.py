"""``thingpress local up | down | destroy | status | run | quotas``: the local cloud.

``up [--env NAME]`` starts the emulator (or reuses the running one), deploys the
``local`` target of environment ``NAME`` (default ``local``) with the real cdktf
CLI (``cdktf deploy thingpress-<NAME> --auto-approve``: real ``terraform apply``
through the offline provider mirror), starts the runner and says what to do next.
It is idempotent: a second ``up`` finds everything running and applies no change.
Several environments live side by side on the one emulator (one account, one
region), as preview stacks share an AWS account: each has its own synthesized
stack (``cdktf.out.<NAME>/``), Terraform state (``build/state/thingpress-<NAME>.tfstate``)
and entry ``thingpress-<NAME>`` in ``terraform-outputs.json``; the one runner
serves every deployed function (it follows the emulator's event source mappings).

``destroy --env NAME`` takes one environment away the way ``make destroy`` does
on AWS: ``thingpress teardown`` (undo its imports, empty its policy, thing type
and group), then ``cdktf destroy``. Other environments are untouched.

``down`` stops the runner and the emulator and deletes the local Terraform state
instead of running ``cdktf destroy``: every resource lives only in the emulator's
memory, so stopping it *is* the teardown, and a destroy would spend minutes
(SQS deletions wait too) removing what is about to vanish anyway. The state must
go with it, or the next ``up`` would plan against resources that no longer exist.
``terraform-outputs.json`` is removed only if it holds local stacks' outputs only.

The emulator refuses IoT deletions as AWS does (:mod:`.iot_deletion`), but ``up``
starts it with a :data:`THING_TYPE_WAIT` of a few seconds instead of AWS's five
minutes between deprecating a thing type and deleting it, so a local destroy of
the stack (Terraform deprecates, then retries the delete) takes seconds.
A detached principal still counts as attached for a few seconds, as on AWS
(:mod:`.iot_detach`, ``THINGPRESS_EMULATOR_DETACH_PROPAGATION``), so a local
rollback or teardown meets the refusals an AWS one does.

Speed: the emulator keeps its port across ``down``/``up`` (recorded in
``build/local/port``) so the synthesized stack, which names the endpoint, stays
valid; synthesis is skipped when the inputs that shape it have not changed since
the last successful deploy of that environment (``--synth`` forces it). Each
environment synthesizes into its own folder, so ``make synth`` (``cdktf.out/``)
or another environment's ``up`` never leaves ``up`` deploying a stack that is not there.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stacks.naming import DEFAULT_ENV
from thingpress_cli.core import hints, toolchain
from thingpress_cli.core.errors import CliError, DeploymentError, UsageError
from thingpress_cli.core.streams import print_json, progress_on_stderr, warn
from thingpress_cli.local import deploy_log, recorder, state
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.emulator import request_log
from thingpress_cli.local.runner import daemon as runner

REPO = toolchain.REPO
STACK = f"thingpress-{DEFAULT_ENV}"
OUTPUTS = REPO / "terraform-outputs.json"
PORT_FILE = state.LOCAL_DIR / "port"


def stack_name(env: str) -> str:
    return f"thingpress-{env}"


def synth_root(env: str) -> Path:
    """The environment's own cdktf output folder (at the repository root: the stack's local
    backend path, ``../../../build/state/``, is relative to ``<root>/stacks/<stack>/``)."""
    return REPO / f"cdktf.out.{env}"


def tf_state(env: str) -> Path:
    return REPO / "build" / "state" / f"{stack_name(env)}.tfstate"


def deploy_log_path(env: str) -> Path:
    """The full output of the environment's last ``cdktf deploy`` (the terminal shows a compact progress line)."""
    return state.LOG_DIR / ("deploy.log" if env == DEFAULT_ENV else f"deploy-{env}.log")


def env_outputs(env: str) -> Path:
    """Where ``cdktf deploy`` writes this environment's outputs (merged into ``terraform-outputs.json``)."""
    return state.LOCAL_DIR / f"outputs-{env}.json"
#: What shapes the synthesized stack: when none of it changed, synthesis is skipped.
SYNTH_INPUTS = ("main.py", "cdktf.json", "stacks", "lambdas", "shared/thingpress", "shared/pyproject.toml")
#: Seconds between DeprecateThingType and an accepted DeleteThingType on the local emulator (AWS: 300).
THING_TYPE_WAIT = 3.0
#: Terraform creates independent resources concurrently; SQS queues each wait ~25 s in the provider.
TERRAFORM_PARALLELISM = 32


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help="the local cloud: emulator, deploy, Lambda runner",
                                   description="The local cloud: an AWS emulator, the stack deployed on it with "
                                               "the real cdktf CLI, and a runner for its Lambda functions.")
    sub = parser.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start the emulator, deploy the local stack, start the runner",
                        description="Start the emulator (or reuse the running one), deploy each environment's "
                                    "stack with cdktf deploy, start the Lambda runner; a second up changes nothing.")
    up.add_argument("--quotas", default=None, help="IoT quota mode: default | raised | off | JSON rates (default: off)")
    up.add_argument("--synth", action="store_true", help="synthesize even if the inputs did not change")
    up.add_argument("--no-runner", action="store_true", help="do not start the Lambda runner")
    up.add_argument("--verbose", action="store_true", help="runner errors and tracebacks also to its output")
    up.add_argument("--env", action="append", help=f"environment suffix (default {DEFAULT_ENV}); several "
                    "live side by side on the one emulator, and several --env deploy at the same time")
    up.add_argument("--json", action="store_true",
                    help="progress on stderr, then one JSON document: the endpoint, environments, runner")
    up.set_defaults(func=cmd_up)
    destroy_cmd = sub.add_parser("destroy", help="teardown, then cdktf destroy of one environment (as make destroy)",
                                 description="Undo the environment's imports (thingpress teardown --yes), then "
                                             "cdktf destroy its stack; other environments are untouched.")
    destroy_cmd.add_argument("--env", required=True, help="environment suffix, e.g. pr7")
    destroy_cmd.add_argument("--json", action="store_true",
                             help="progress on stderr, then one JSON document: the teardown's report")
    destroy_cmd.set_defaults(func=cmd_destroy)
    down = sub.add_parser("down", help="stop the runner and the emulator, forget the local deployment",
                          description="Stop the runner and the emulator (every local resource goes with it) and "
                                      "delete the local Terraform state.")
    down.add_argument("--json", action="store_true", help="print what was stopped as one JSON document")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="what runs", description="What runs: the emulator, the runner, "
                            "the deployed environments; exit status 1 unless all of it runs.")
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")
    status.set_defaults(func=cmd_status)
    # no --json: it runs until Ctrl-C, printing the runner's log lines
    run = sub.add_parser("run", help="run the Lambda runner in the foreground (verbose)",
                         description="Run the Lambda runner in the foreground, verbose, until Ctrl-C "
                                     "(stops the background one first).")
    run.set_defaults(func=cmd_run)
    quotas = sub.add_parser("quotas", help="switch the running emulator's IoT quota mode",
                            description="Switch the running emulator's IoT quota mode (API rates it enforces).")
    quotas.add_argument("rates", help="default | raised | off | JSON rates, e.g. '{\"AttachPolicy\": 15}'")
    quotas.add_argument("--json", action="store_true", help="print the rates now in force as one JSON document")
    quotas.set_defaults(func=cmd_quotas)


# --------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


#: Settings of the local cloud itself (the runner's schedule, the emulator's waits): they never reach
#: the stack, so a change to them must not cost a synthesis.
LOCAL_ONLY_PREFIXES = ("THINGPRESS_LOCAL_", "THINGPRESS_EMULATOR_")


def synth_fingerprint(endpoint: str, environ: dict[str, str] | None = None) -> str:
    """Hash of everything that shapes the synthesized local stack."""
    digest = hashlib.sha256()
    env = os.environ if environ is None else environ
    for key in sorted(k for k in env if k.startswith("THINGPRESS_") and not k.startswith(LOCAL_ONLY_PREFIXES)):
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


def deploy_environment(endpoint: str, env_name: str = DEFAULT_ENV) -> dict[str, str]:
    env = toolchain.environment()
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(key, None)
    env.update(state.client_environment(endpoint))
    env.update({
        "THINGPRESS_TARGET": "local", "THINGPRESS_ENV": env_name, "THINGPRESS_ENDPOINT": endpoint,
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


def _read_outputs(path: Path | None = None) -> dict[str, Any]:
    path = path or OUTPUTS
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_local_stack(values: Any) -> bool:
    return isinstance(values, dict) and values.get("target") == "local"


def outputs_are_ours(path: Path | None = None) -> bool:
    """Whether ``terraform-outputs.json`` holds only local stacks' outputs (and at least one)."""
    path = path or OUTPUTS
    data = _read_outputs(path)
    return bool(data) and all(_is_local_stack(v) for v in data.values())


def deployed(env: str = DEFAULT_ENV, path: Path | None = None) -> bool:
    """Whether ``terraform-outputs.json`` holds the local stack of ``env``."""
    path = path or OUTPUTS
    return _is_local_stack(_read_outputs(path).get(stack_name(env)))


@contextlib.contextmanager
def _outputs_lock() -> Iterator[None]:
    """Two ``up``/``destroy`` runs may finish at once: one read-modify-write of the outputs file at a time."""
    state.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    with (state.LOCAL_DIR / "outputs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def merge_outputs(env: str, values: dict[str, Any] | None, path: Path | None = None) -> None:
    """Put (or with None, remove) stack ``thingpress-<env>`` in the nested outputs file, keeping the others."""
    path = path or OUTPUTS
    with _outputs_lock():
        data = _read_outputs(path)
        if values is None:
            data.pop(stack_name(env), None)
        else:
            data[stack_name(env)] = values
        if data:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            tmp.replace(path)
        else:
            path.unlink(missing_ok=True)


def forget_terraform_state(env: str = DEFAULT_ENV) -> None:
    for suffix in ("", ".backup", ".lock.info"):
        Path(f"{tf_state(env)}{suffix}").unlink(missing_ok=True)


def synthesized(root: Path, stack: str) -> bool:
    """Whether ``root`` holds ``stack`` as cdktf will look it up (its manifest lists it)."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return stack in (manifest.get("stacks") or {}) and (root / "stacks" / stack / "cdk.tf.json").is_file()


def known_envs() -> set[str]:
    """Every environment a local ``up`` deployed (recorded), and ``local``."""
    return {DEFAULT_ENV, *(state.load().get("deploys") or {})}


def preferred_port() -> int:
    try:
        return int(PORT_FILE.read_text().strip())
    except (OSError, ValueError):
        return 0


# --------------------------------------------------------------------------- commands


def _record(section: str, env: str, value: dict[str, Any] | None) -> None:
    with _outputs_lock():
        current = dict(state.load().get(section) or {})
        if value is None:
            current.pop(env, None)
        else:
            current[env] = value
        state.update(section, current or None)


def cmd_up(args: argparse.Namespace) -> int:
    """Start (or reuse) the emulator, deploy every ``--env`` given at the same time, start the runner.

    Environments deploy concurrently: each is its own ``cdktf deploy`` with its own
    folder, state and log, and the provider's waits are timers, so two cost about
    the time of one.
    """
    as_json = getattr(args, "json", False)
    with progress_on_stderr(as_json):
        code, current, pid, seconds = _up(args)
    if code == 0 and as_json:
        print_json({"endpoint": current.url, "environments": list(dict.fromkeys(_env_names(args))),
                    "runner_pid": pid, "seconds": round(seconds, 1)})
    return code


def _up(args: argparse.Namespace) -> tuple[int, emulator.Emulator, int | None, float]:
    """``cmd_up`` but its JSON document: the exit status, the emulator, the runner's pid, the seconds taken."""
    began = time.monotonic()
    env_names = list(dict.fromkeys(_env_names(args)))
    current = _start_emulator(args.quotas)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(env_names)) as pool:
        codes = list(pool.map(lambda name: _deploy(name, current, force_synth=args.synth,
                                                   label="" if len(env_names) == 1 else name), env_names))
    failed = next((code for code in codes if code != 0), 0)
    if failed:
        return failed, current, None, time.monotonic() - began

    pid = None
    if not args.no_runner:
        pid = runner.start_daemon(current.url, verbose=args.verbose)
        say(f"Lambda runner running (pid {pid}); function logs: {state.LOG_DIR.relative_to(REPO)}/<function>.log")
    seconds = time.monotonic() - began
    say(f"local cloud up in {seconds:.1f} s\n")
    named = [e for e in env_names if e != DEFAULT_ENV]
    env_flag = f" --env {named[0]}" if named else ""
    tp = hints.thingpress()
    say("Next:")
    say(f"  {tp} plan path/to/manifest{env_flag}             what an upload would do here, and how long")
    say(f"  {tp} upload path/to/manifest --wait{env_flag}    import a manifest (vendor from the file name, or --vendor)")
    say(f"  {tp} status{env_flag}                            manifests and their outcomes")
    if hints.available("aws"):
        say(f"  aws --endpoint-url {current.url} iot list-things   inspect with the AWS CLI (any credentials)")
    say(f"  {tp} local status | down | destroy{env_flag}   what runs | stop everything | remove this environment")
    return 0, current, pid, seconds


def _env_names(args: argparse.Namespace) -> list[str]:
    given = getattr(args, "env", None) or [DEFAULT_ENV]
    return [given] if isinstance(given, str) else list(given)


def _start_emulator(quotas: str | None) -> emulator.Emulator:
    """Start the emulator or reuse the running one; a fresh emulator forgets every local deployment."""
    reused = emulator.running()
    current = emulator.start(quotas=quotas, port=preferred_port(), thing_type_wait=THING_TYPE_WAIT)
    PORT_FILE.parent.mkdir(parents=True, exist_ok=True)
    PORT_FILE.write_text(f"{current.port}\n")
    if reused is None:
        for known in known_envs():  # a fresh emulator is empty: no stale state to plan against
            forget_terraform_state(known)
            if deployed(known):
                merge_outputs(known, None)
        with _outputs_lock():
            state.update("deploys", None)
        say(f"emulator started: {current.url} (pid {current.pid})")
    else:
        say(f"emulator already running: {current.url} (pid {current.pid})")
    return current


def _deploy(env_name: str, current: emulator.Emulator, *, force_synth: bool, label: str = "") -> int:
    """``cdktf deploy`` of one environment onto the running emulator; records its outputs and synth."""
    stack = stack_name(env_name)
    fingerprint = synth_fingerprint(current.url, {**os.environ, "THINGPRESS_ENV": env_name})
    recorded = (state.load().get("synths") or {}).get(env_name) or {}
    root = synth_root(env_name)
    skip_synth = not force_synth and recorded.get("fingerprint") == fingerprint and synthesized(root, stack)
    outputs_file = env_outputs(env_name)
    outputs_file.parent.mkdir(parents=True, exist_ok=True)
    command = cdktf_command() + ["deploy", stack, "--auto-approve", "--output", str(root),
                                 "--outputs-file", str(outputs_file),
                                 "--terraform-parallelism", str(TERRAFORM_PARALLELISM), "--skip-provider-lock"]
    if skip_synth:
        command.append("--skip-synth")
    say(f"deploying {stack} with the cdktf CLI{' (synthesis skipped: inputs unchanged)' if skip_synth else ''} ...")
    toolchain.warm_plugin_cache()  # concurrent `terraform init`s must not both fill an empty cache
    deploy_began = time.monotonic()
    log_path = deploy_log_path(env_name)
    returncode = deploy_log.run(command, cwd=REPO, env=deploy_environment(current.url, env_name), log_path=log_path,
                                label=label)
    deploy_seconds = time.monotonic() - deploy_began
    if returncode != 0:
        _record("deploys", env_name, None)
        _record("synths", env_name, None)
        warn(f"cdktf deploy of {stack} failed (exit {returncode}) after {deploy_seconds:.0f} s (log: {log_path}); "
            f"the emulator keeps running at {current.url} (emulator log: {state.LOG_DIR / 'emulator.log'})")
        return returncode
    # Recorded calls belong to the stack just deployed: make iam-check evaluates them against it.
    for calls in (state.LOCAL_DIR / recorder.CALLS_DIR_NAME).glob(f"{stack}-*.jsonl"):
        calls.unlink(missing_ok=True)
    merge_outputs(env_name, _read_outputs(outputs_file).get(stack))
    _record("deploys", env_name, {"seconds": round(deploy_seconds, 1), "outputs": str(OUTPUTS), "stack": stack,
                                  "synthesized": not skip_synth})
    # Kept across `down`: the synthesized stack stays valid while its inputs and the port do not change.
    _record("synths", env_name, {"fingerprint": fingerprint, "endpoint": current.url})
    say(f"deployed {stack} in {deploy_seconds:.1f} s (cdktf deploy{'' if skip_synth else ', synthesis included'}); "
        f"outputs: {OUTPUTS.relative_to(REPO)}")
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    """Teardown, then ``cdktf destroy``: the path ``make destroy`` takes on AWS."""
    from thingpress_cli.core.deployment import Deployment
    from thingpress_cli.core.errors import ServiceError
    from thingpress_cli.engines import rollback, teardown

    began = time.monotonic()
    env_name = args.env
    as_json = getattr(args, "json", False)
    stack = stack_name(env_name)
    current = emulator.running()
    if current is None:
        raise DeploymentError("the emulator is not running: nothing to destroy "
                              "(`thingpress local down` forgets local state)")
    try:
        deployment = Deployment.load(OUTPUTS, env_name)
    except DeploymentError as exc:
        raise DeploymentError(f"environment {env_name} is not deployed locally: {exc}") from None
    try:
        report, sweep = teardown.teardown(deployment, apply=True)
    except rollback.Stopped as stop:
        raise ServiceError(stop.message(["thingpress", "local", "destroy", "--env", env_name])) from stop
    # under --json the teardown's report is the document; cdktf destroy's output goes to stderr below
    teardown.print_report(report, sweep, as_json, env_name)
    root = synth_root(env_name)
    command = cdktf_command() + ["destroy", stack, "--auto-approve", "--output", str(root),
                                 "--terraform-parallelism", str(TERRAFORM_PARALLELISM), "--skip-provider-lock"]
    if synthesized(root, stack):
        command.append("--skip-synth")
    with progress_on_stderr(as_json):
        say(f"destroying {stack} with the cdktf CLI ...")
    result = subprocess.run(command, cwd=REPO, env=deploy_environment(current.url, env_name), check=False,
                            stdout=sys.stderr if as_json else None)
    if result.returncode != 0:
        warn(f"cdktf destroy failed (exit {result.returncode}); emulator log: {state.LOG_DIR / 'emulator.log'}")
        return result.returncode
    merge_outputs(env_name, None)
    _record("deploys", env_name, None)
    forget_terraform_state(env_name)
    with progress_on_stderr(as_json):
        say(f"destroyed {stack} in {time.monotonic() - began:.1f} s (teardown, then cdktf destroy)")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped_runner = runner.stop_daemon()
    stopped_emulator = emulator.stop()
    for known in known_envs():
        forget_terraform_state(known)
    state.update("deploys", None)
    removed = outputs_are_ours()
    if removed:
        OUTPUTS.unlink()
    if getattr(args, "json", False):
        print_json({"runner_stopped": bool(stopped_runner), "emulator_stopped": bool(stopped_emulator),
                    "outputs_removed": removed})
        return 0
    say(f"runner {'stopped' if stopped_runner else 'was not running'}; "
        f"emulator {'stopped (its resources are gone)' if stopped_emulator else 'was not running'}; "
        f"local Terraform state removed; {OUTPUTS.name} {'removed' if removed else 'left as is (not only local stacks)'}")
    return 0


def status() -> dict[str, Any]:
    """What runs, as data."""
    recorded = state.load()
    current = emulator.running()
    runner_pid = (recorded.get("runner") or {}).get("pid")
    deploys = recorded.get("deploys") or {}
    envs = sorted(e for e in known_envs() if deployed(e))
    return {
        "emulator": {"running": current is not None, **(current.as_state() if current else {})},
        "runner": {"running": state.pid_alive(runner_pid, runner.RUNNER_MODULE), "pid": runner_pid},
        "deployed": {"outputs": str(OUTPUTS), "present": deployed(DEFAULT_ENV),
                     "seconds": (deploys.get(DEFAULT_ENV) or {}).get("seconds"), "environments": envs},
        "logs": str(state.LOG_DIR),
        "requests_log": str(state.LOG_DIR / request_log.FILE_NAME),
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
        say(f"envs     : {', '.join(dep['environments']) or 'none'}")
        say(f"logs     : {info['logs']} (every emulator request with its time: {info['requests_log']})")
    everything = info["emulator"]["running"] and info["runner"]["running"] and info["deployed"]["present"]
    return 0 if everything else 1


def cmd_run(args: argparse.Namespace) -> int:
    endpoint = state.endpoint()
    if not endpoint or emulator.running() is None:
        raise DeploymentError("the emulator is not running: `thingpress local up` first")
    runner.stop_daemon()  # one runner at a time, or both would poll the same queues
    say(f"running the Lambda runner in the foreground against {endpoint} (Ctrl-C to stop)")
    return runner.main(["--endpoint", endpoint, "--verbose"])


def cmd_quotas(args: argparse.Namespace) -> int:
    current = emulator.running()
    if current is None:
        raise DeploymentError("the emulator is not running: `thingpress local up` first")
    try:
        rates = emulator.set_quotas(current.url, args.rates)
    except ValueError as error:
        raise UsageError(f"quotas refused: {error}") from None
    if getattr(args, "json", False):
        print_json({"rates": rates or None})
        return 0
    say(f"IoT quotas now: {json.dumps(rates) if rates else 'off'}")
    return 0



# --------------------------------------------------------------------------- programmatic API
# Used by `thingpress demo`, the integration/fault-test session fixture and the benchmarks.


class LocalUpError(RuntimeError):
    """`local up` failed; the message says where to look."""


def is_up(env: str = DEFAULT_ENV) -> bool:
    """Emulator, runner and the environment's local stack outputs are all there."""
    info = status()
    return bool(info["emulator"]["running"] and info["runner"]["running"] and deployed(env))


def ensure_up(quotas: str | None = None, env: str = DEFAULT_ENV) -> str:
    """Bring the local environment ``env`` up unless it already runs; return the emulator URL.

    One caller at a time (a file lock): a second one waits and then finds it up."""
    state.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    with (state.LOCAL_DIR / "up.lock").open("w") as lock:  # two callers at once: one deploys, one waits
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_up(env):
            args = argparse.Namespace(quotas=quotas, synth=False, no_runner=False, verbose=False, env=[env])
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


def destroy(env: str) -> None:
    """Teardown and ``cdktf destroy`` of one local environment."""
    try:
        code = cmd_destroy(argparse.Namespace(env=env))
    except CliError as error:
        raise LocalUpError(f"thingpress local destroy --env {env}: {error}") from error
    if code != 0:
        raise LocalUpError(f"thingpress local destroy --env {env} failed (exit {code}); logs in {state.LOG_DIR}")
