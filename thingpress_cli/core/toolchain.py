"""The environment every terraform / cdktf call of this project runs in.

* **Offline provider mirror.** When a Terraform provider mirror directory is
  configured (``THINGPRESS_PROVIDER_MIRROR``) or detected in a standard place, the
  project writes its own Terraform CLI configuration to ``build/terraformrc`` (an
  ignored folder) and points ``TF_CLI_CONFIG_FILE`` at it. The user's home is never
  touched. With no mirror (an ordinary machine with internet), ``TF_CLI_CONFIG_FILE``
  is left as the user has it and the public registry is used as usual.
* **Node for jsii.** The pinned Node 22 from ``node_modules`` (package.json) goes
  first on ``PATH``, so jsii never runs on an end-of-life Node.

``python -m thingpress_cli.core.toolchain`` prints the environment as shell ``export``
lines; the Makefile evaluates it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
CLI_CONFIG = BUILD / "terraformrc"
#: Providers installed once from the mirror and linked into each working directory
#: (without it every `terraform init` copies the ~700 MB AWS provider binary).
PLUGIN_CACHE = BUILD / "terraform-plugin-cache"
MIRROR_SETTING = "THINGPRESS_PROVIDER_MIRROR"
#: Where offline mirrors are commonly installed; the first that holds providers wins.
MIRROR_CANDIDATES = (
    Path("/opt/tf-plugins"),
    Path("/usr/share/terraform/plugins"),
    Path("/usr/local/share/terraform/plugins"),
)
NODE_BIN = REPO / "node_modules" / ".bin"


def find_mirror(environ: Mapping[str, str] | None = None) -> Path | None:
    """The provider mirror directory to use, or None for the public registry."""
    env = os.environ if environ is None else environ
    configured = env.get(MIRROR_SETTING, "")
    if configured:
        path = Path(configured)
        if not (path / "registry.terraform.io").is_dir():
            raise SystemExit(f"{MIRROR_SETTING}={configured} holds no registry.terraform.io/ provider tree")
        return path
    for candidate in MIRROR_CANDIDATES:
        if (candidate / "registry.terraform.io").is_dir():
            return candidate
    return None


def cli_config_text(mirror: Path) -> str:
    """A Terraform CLI config that installs every provider from ``mirror`` only."""
    return (
        "# Written by thingpress (thingpress_cli/core/toolchain.py); do not edit.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/*/*"]\n'
        "  }\n"
        "}\n"
        f'plugin_cache_dir = "{PLUGIN_CACHE}"\n'
        "disable_checkpoint = true\n"
    )


def write_cli_config(mirror: Path) -> Path:
    text = cli_config_text(mirror)
    PLUGIN_CACHE.mkdir(parents=True, exist_ok=True)
    if not CLI_CONFIG.is_file() or CLI_CONFIG.read_text() != text:
        CLI_CONFIG.parent.mkdir(parents=True, exist_ok=True)
        CLI_CONFIG.write_text(text)
    return CLI_CONFIG


def tool_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to set (on top of the current environment) for terraform and cdktf."""
    env = dict(os.environ if environ is None else environ)
    extra: dict[str, str] = {
        "CHECKPOINT_DISABLE": "1",
        # cdktf: no telemetry prompts, no crash-report prompts, plain output in CI.
        "CDKTF_DISABLE_PLUGIN_CACHE_ENV": "1",
    }
    mirror = find_mirror(env)
    if mirror is not None:
        extra["TF_CLI_CONFIG_FILE"] = str(write_cli_config(mirror))
    if NODE_BIN.is_dir() and not env.get("PATH", "").startswith(f"{NODE_BIN}{os.pathsep}"):
        extra["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    if (NODE_BIN / "node").exists():
        # jsii (the Python side of cdktf) starts `node` itself: make it this one.
        extra["JSII_NODE"] = str(NODE_BIN / "node")
    return extra


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The full environment for a subprocess running terraform or cdktf."""
    env = dict(os.environ if environ is None else environ)
    env.update(tool_env(env))
    return env


def mirrored_providers(mirror: Path) -> dict[str, str]:
    """``{"namespace/name": version}`` for every provider the mirror holds (highest version of each)."""
    found: dict[str, str] = {}
    for version_dir in sorted((mirror / "registry.terraform.io").glob("*/*/*")):
        if version_dir.is_dir():
            found[f"{version_dir.parent.parent.name}/{version_dir.parent.name}"] = version_dir.name
    return found


def warm_plugin_cache(environ: Mapping[str, str] | None = None) -> None:
    """Put the mirror's providers in the plugin cache once, under a lock.

    Terraform's plugin cache is not safe for concurrent installs: two ``terraform
    init`` (two environments deploying at once, or a deploy beside the stacks tests)
    finding it empty would both write the same entries. One locked ``init`` of a
    config that requires every mirrored provider fills it first; after that every
    ``init`` only links from it. Without a mirror (the public registry) nothing is done.
    """
    env = environment(environ)
    mirror = find_mirror(env)
    if mirror is None:
        return
    providers = mirrored_providers(mirror)
    missing = {k: v for k, v in providers.items()
               if not (PLUGIN_CACHE / "registry.terraform.io" / k / v).is_dir()}
    if not missing:
        return
    PLUGIN_CACHE.mkdir(parents=True, exist_ok=True)
    with (BUILD / "terraform-plugin-cache.lock").open("w") as lock, contextlib.ExitStack() as stack:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all((PLUGIN_CACHE / "registry.terraform.io" / k / v).is_dir() for k, v in missing.items()):
            return  # another process filled it while this one waited
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tf-warm-")))
        required = {key.split("/")[1]: {"source": key, "version": version} for key, version in providers.items()}
        (work / "main.tf.json").write_text(json.dumps({"terraform": {"required_providers": required}}))
        done = subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-no-color"], cwd=work,
                              env=env, capture_output=True, text=True, check=False, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"terraform init to fill the plugin cache {PLUGIN_CACHE} failed:\n"
                               f"{done.stdout}{done.stderr}")


def main() -> int:
    for key, value in sorted(tool_env().items()):
        sys.stdout.write(f"export {key}={shlex.quote(value)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
