"""The local environment's state file, ``build/local/state.json``.

It records what ``thingpress local up`` started, so that later commands (and the
integration tests) find the emulator endpoint and can stop what runs:

.. code-block:: json

    {"emulator": {"pid": 123, "create_time": 1796534400.12, "host": "127.0.0.1", "port": 45678,
                  "url": "http://127.0.0.1:45678"},
     "runner": {"pid": 124, "create_time": 1796534401.5, "endpoint": "http://127.0.0.1:45678"},
     "deploy": {"seconds": 41.2, "outputs": "/work/main/terraform-outputs.json"}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from thingpress_cli.core.toolchain import BUILD
from thingpress_cli.local import supervision

LOCAL_DIR = BUILD / "local"
STATE_FILE = LOCAL_DIR / "state.json"
LOG_DIR = LOCAL_DIR / "logs"
#: Where each runner worker holds a file (its pid) while it is in an invocation (:mod:`.bootstrap`).
BUSY_DIR = LOCAL_DIR / "busy"
#: Region and account of the emulator (moto's default account).
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
#: Credentials every client of the emulator uses (moto accepts any).
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def load(path: Path | None = None) -> dict[str, Any]:
    """The recorded state, or an empty dict when nothing was started."""
    path = path or STATE_FILE
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def save(state: dict[str, Any], path: Path | None = None) -> None:
    path = path or STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def update(section: str, value: dict[str, Any] | None, path: Path | None = None) -> dict[str, Any]:
    """Set (or with None, drop) one section of the state; returns the new state."""
    path = path or STATE_FILE
    state = load(path)
    if value is None:
        state.pop(section, None)
    else:
        state[section] = value
    save(state, path)
    return state


def endpoint(path: Path | None = None) -> str | None:
    """The running emulator's URL as recorded, or None."""
    path = path or STATE_FILE
    return load(path).get("emulator", {}).get("url")


def pid_alive(pid: int | None, marker: str | None = None) -> bool:
    """Whether process ``pid`` runs (and, if given, its command line contains ``marker``): ``thingpress local status``.

    The emulator and the runner check their recorded start time too (:func:`.supervision.alive`).
    """
    return supervision.alive(pid, marker)


def client_environment(url: str) -> dict[str, str]:
    """Variables pointing boto3 (and the AWS CLI) at the emulator."""
    return {"AWS_ENDPOINT_URL": url, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, **FAKE_CREDENTIALS}
