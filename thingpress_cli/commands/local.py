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
valid, and an unchanged environment skips its synthesis (:mod:`thingpress_cli.local.deployments`:
each environment's folders, state and outputs, and one ``cdktf deploy``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fcntl
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from stacks.naming import DEFAULT_ENV
from thingpress_cli.core import hints, interrupts
from thingpress_cli.core.errors import CliError, DeploymentError, UsageError
from thingpress_cli.core.streams import print_json, progress_on_stderr, warn
from thingpress_cli.local import deployments, state
from thingpress_cli.local.deployments import say
from thingpress_cli.local.emulator import process as emulator
from thingpress_cli.local.emulator import request_log
from thingpress_cli.local.runner import daemon as runner

PORT_FILE = state.LOCAL_DIR / "port"


#: Seconds between DeprecateThingType and an accepted DeleteThingType on the local emulator (AWS: 300).
THING_TYPE_WAIT = 3.0


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


def preferred_port() -> int:
    try:
        return int(PORT_FILE.read_text().strip())
    except (OSError, ValueError):
        return 0


# --------------------------------------------------------------------------- commands


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
    with interrupts.to_terraform(), concurrent.futures.ThreadPoolExecutor(max_workers=len(env_names)) as pool:
        codes = list(pool.map(lambda name: deployments.deploy(name, current, force_synth=args.synth,
                                                   label="" if len(env_names) == 1 else name), env_names))
    failed = next((code for code in codes if code != 0), 0)
    if failed:
        return failed, current, None, time.monotonic() - began

    pid = None
    if not args.no_runner:
        pid = runner.start_daemon(current.url, verbose=args.verbose)
        say(f"Lambda runner running (pid {pid}); function logs: {state.LOG_DIR.relative_to(deployments.REPO)}/<function>.log")
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
        for known in deployments.known_envs():  # a fresh emulator is empty: no stale state to plan against
            deployments.forget_terraform_state(known)
            if deployments.deployed(known):
                deployments.merge_outputs(known, None)
        with deployments.outputs_lock():
            state.update("deploys", None)
        say(f"emulator started: {current.url} (pid {current.pid})")
    else:
        say(f"emulator already running: {current.url} (pid {current.pid})")
    return current


def cmd_destroy(args: argparse.Namespace) -> int:
    """Teardown, then ``cdktf destroy``: the path ``make destroy`` takes on AWS."""
    from thingpress_cli.core.deployment import Deployment
    from thingpress_cli.core.errors import ServiceError
    from thingpress_cli.engines import rollback_calls, teardown

    began = time.monotonic()
    env_name = args.env
    as_json = getattr(args, "json", False)
    stack = deployments.stack_name(env_name)
    current = emulator.running()
    if current is None:
        raise DeploymentError("the emulator is not running: nothing to destroy "
                              "(`thingpress local down` forgets local state)")
    try:
        deployment = Deployment.load(deployments.OUTPUTS, env_name)
    except DeploymentError as exc:
        raise DeploymentError(f"environment {env_name} is not deployed locally: {exc}") from None
    try:
        report, sweep = teardown.teardown(deployment, apply=True)
    except rollback_calls.Stopped as stop:
        raise ServiceError(stop.message(["thingpress", "local", "destroy", "--env", env_name])) from stop
    # under --json the teardown's report is the document; cdktf destroy's output goes to stderr below
    teardown.print_report(report, sweep, as_json, env_name)
    root = deployments.synth_root(env_name)
    command = deployments.cdktf_command() + ["destroy", stack, "--auto-approve", "--output", str(root),
                                 "--terraform-parallelism", str(deployments.TERRAFORM_PARALLELISM), "--skip-provider-lock"]
    if deployments.synthesized(root, stack):
        command.append("--skip-synth")
    with progress_on_stderr(as_json):
        say(f"destroying {stack} with the cdktf CLI ...")
    with interrupts.to_terraform() as caught, interrupts.running(
            command, cwd=deployments.REPO, env=deployments.deploy_environment(current.url, env_name),
            stdout=sys.stderr if as_json else None) as destroying:
        returncode = destroying.wait()
    if returncode != 0:
        detail = "interrupted: Terraform stopped and saved its state" if caught.count else f"exit {returncode}"
        warn(f"cdktf destroy failed ({detail}); emulator log: {state.LOG_DIR / 'emulator.log'}")
        return returncode
    deployments.merge_outputs(env_name, None)
    deployments.record("deploys", env_name, None)
    deployments.forget_terraform_state(env_name)
    with progress_on_stderr(as_json):
        say(f"destroyed {stack} in {time.monotonic() - began:.1f} s (teardown, then cdktf destroy)")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped_runner = runner.stop_daemon()
    stopped_emulator = emulator.stop()
    for known in deployments.known_envs():
        deployments.forget_terraform_state(known)
    state.update("deploys", None)
    removed = deployments.outputs_are_ours()
    if removed:
        deployments.OUTPUTS.unlink()
    if getattr(args, "json", False):
        print_json({"runner_stopped": bool(stopped_runner), "emulator_stopped": bool(stopped_emulator),
                    "outputs_removed": removed})
        return 0
    say(f"runner {'stopped' if stopped_runner else 'was not running'}; "
        f"emulator {'stopped (its resources are gone)' if stopped_emulator else 'was not running'}; "
        f"local Terraform state removed; {deployments.OUTPUTS.name} {'removed' if removed else 'left as is (not only local stacks)'}")
    return 0


def status() -> dict[str, Any]:
    """What runs, as data."""
    recorded = state.load()
    current = emulator.running()
    runner_pid = (recorded.get("runner") or {}).get("pid")
    deploys = recorded.get("deploys") or {}
    envs = sorted(e for e in deployments.known_envs() if deployments.deployed(e))
    return {
        "emulator": {"running": current is not None, **(current.as_state() if current else {})},
        "runner": {"running": state.pid_alive(runner_pid, runner.RUNNER_MODULE), "pid": runner_pid},
        "deployed": {"outputs": str(deployments.OUTPUTS), "present": deployments.deployed(DEFAULT_ENV),
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
    return bool(info["emulator"]["running"] and info["runner"]["running"] and deployments.deployed(env))


def ensure_up(quotas: str | None = None, env: str | Sequence[str] = DEFAULT_ENV) -> str:
    """Bring the local environment ``env`` (or each of several, deployed at the same time) up unless it
    already runs; return the emulator URL.

    One caller at a time (a file lock): a second one waits and then finds it up."""
    envs = [env] if isinstance(env, str) else list(env)
    state.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    with (state.LOCAL_DIR / "up.lock").open("w") as lock:  # two callers at once: one deploys, one waits
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [name for name in envs if not is_up(name)]
        if missing:
            args = argparse.Namespace(quotas=quotas, synth=False, no_runner=False, verbose=False, env=missing)
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
