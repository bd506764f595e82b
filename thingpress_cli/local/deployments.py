"""The local environments' deployments: where each keeps its synthesized stack, Terraform state,
deploy log and outputs; when its synthesis can be skipped; one ``cdktf deploy`` onto the emulator.

Used by ``thingpress local`` (:mod:`thingpress_cli.commands.local`, the commands) and read by
whatever needs a local environment's outputs (``terraform-outputs.json``).

Speed: synthesis is skipped when the inputs that shape the stack (:data:`SYNTH_INPUTS`, the
``THINGPRESS_`` settings but the local cloud's own, the endpoint) have not changed since the last
successful deploy of that environment (``--synth`` forces it). Each environment synthesizes into
its own folder (``cdktf.out.<env>/``), so ``make synth`` (``cdktf.out/``) or another environment's
``up`` never leaves ``up`` deploying a stack that is not there; its state is
``build/state/thingpress-<env>.tfstate`` and its outputs are merged, under a lock, into the one
``terraform-outputs.json`` beside the other environments'.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stacks.naming import DEFAULT_ENV, FUNCTION_KEYS, Names
from thingpress_cli.core import interrupts, toolchain
from thingpress_cli.core.streams import warn
from thingpress_cli.local import deploy_log, lost_creates, recorder, state
from thingpress_cli.local.emulator import process as emulator

REPO = toolchain.REPO
OUTPUTS = REPO / "terraform-outputs.json"


def stack_name(env: str) -> str:
    """The environment's stack (the naming module's word for it)."""
    return Names(env, state.REGION).stack


def stack_functions(env: str) -> list[str]:
    """The Lambda functions the environment's stack creates."""
    names = Names(env, state.REGION)
    return [names.function(key) for key in FUNCTION_KEYS]


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
#: Terraform creates independent resources concurrently; SQS queues each wait ~25 s in the provider.
TERRAFORM_PARALLELISM = 32


def say(message: str) -> None:
    """A progress line on stdout, at once (the ``local`` commands' progress; ``--json`` moves it to stderr)."""
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


def read_outputs(path: Path | None = None) -> dict[str, Any]:
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
    data = read_outputs(path)
    return bool(data) and all(_is_local_stack(v) for v in data.values())


def deployed(env: str = DEFAULT_ENV, path: Path | None = None) -> bool:
    """Whether ``terraform-outputs.json`` holds the local stack of ``env``."""
    path = path or OUTPUTS
    return _is_local_stack(read_outputs(path).get(stack_name(env)))


@contextlib.contextmanager
def outputs_lock() -> Iterator[None]:
    """Two ``up``/``destroy`` runs may finish at once: one read-modify-write of the outputs file at a time."""
    state.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    with (state.LOCAL_DIR / "outputs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def merge_outputs(env: str, values: dict[str, Any] | None, path: Path | None = None) -> None:
    """Put (or with None, remove) stack ``thingpress-<env>`` in the nested outputs file, keeping the others."""
    path = path or OUTPUTS
    with outputs_lock():
        data = read_outputs(path)
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


def record(section: str, env: str, value: dict[str, Any] | None) -> None:
    with outputs_lock():
        current = dict(state.load().get(section) or {})
        if value is None:
            current.pop(env, None)
        else:
            current[env] = value
        state.update(section, current or None)


def deploy(env_name: str, current: emulator.Emulator, *, force_synth: bool, label: str = "") -> int:
    """``cdktf deploy`` of one environment onto the running emulator; records its outputs and synth."""
    stack = stack_name(env_name)
    if tf_state(env_name).is_file() and tf_state(env_name).stat().st_size == 0:
        # Terraform writes its local state in place: killed while writing (a second Ctrl-C, a kill), it leaves
        # an empty file, and a deploy would then plan every resource again over those the emulator holds.
        warn(f"cdktf deploy of {stack} not started: {tf_state(env_name).relative_to(REPO)} is empty (a deploy was "
             "killed while Terraform wrote it), so Terraform no longer knows what the emulator holds; "
             "`thingpress local down` then `thingpress local up` deploys afresh on a new emulator")
        return 1
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

    functions = stack_functions(env_name)

    def said(problem: str) -> None:
        warn(f"cdktf deploy of {stack}: {problem}")

    def run() -> int:
        with lost_creates.Watch(current.url, functions, said):
            return deploy_log.run(command, cwd=REPO, env=deploy_environment(current.url, env_name), log_path=log_path,
                                  label=label)

    returncode = run()
    failed = log_path.read_text(errors="replace") \
        if returncode and log_path.exists() and not interrupts.received() else ""
    lost = lost_creates.lost_functions(failed)
    mappings = lost_creates.lost_mappings(failed, functions)
    if lost or mappings:  # the emulator created them, Terraform never got the answer (lost_creates)
        kept = lost_creates.keep_failed_log(log_path)
        created = [*lost, *(f"event source mapping {uuid}" for uuid in mappings)]
        warn(f"cdktf deploy of {stack}: the emulator created {', '.join(created)} but Terraform never got the "
             f"answer (it sent the call again and was refused as existing; log: {kept}); not in Terraform's state, "
             "so deleted from the emulator: deploying again")
        lost_creates.forget(current.url, lost)
        lost_creates.forget_mappings(current.url, mappings)
        returncode = run()
    deploy_seconds = time.monotonic() - deploy_began
    if returncode != 0:
        record("deploys", env_name, None)
        record("synths", env_name, None)
        if interrupts.received():
            warn(f"cdktf deploy of {stack} interrupted after {deploy_seconds:.0f} s: Terraform stopped and saved its "
                 f"state ({tf_state(env_name).relative_to(REPO)}); `thingpress local up` goes on from there "
                 f"(log: {log_path})")
            return returncode
        warn(f"cdktf deploy of {stack} failed (exit {returncode}) after {deploy_seconds:.0f} s (log: {log_path}); "
            f"the emulator keeps running at {current.url} (emulator log: {state.LOG_DIR / 'emulator.log'})")
        return returncode
    # Recorded calls belong to the stack just deployed: make iam-check evaluates them against it.
    for calls in (state.LOCAL_DIR / recorder.CALLS_DIR_NAME).glob(f"{stack}-*.jsonl"):
        calls.unlink(missing_ok=True)
    merge_outputs(env_name, read_outputs(outputs_file).get(stack))
    record("deploys", env_name, {"seconds": round(deploy_seconds, 1), "outputs": str(OUTPUTS), "stack": stack,
                                  "synthesized": not skip_synth})
    # Kept across `down`: the synthesized stack stays valid while its inputs and the port do not change.
    record("synths", env_name, {"fingerprint": fingerprint, "endpoint": current.url})
    say(f"deployed {stack} in {deploy_seconds:.1f} s (cdktf deploy{'' if skip_synth else ', synthesis included'}); "
        f"outputs: {OUTPUTS.relative_to(REPO)}")
    return 0
