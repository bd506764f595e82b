"""The emulator's process: start it, find it, stop it, and change its settings at runtime.

:func:`start` launches ``python -m thingpress_cli.local.emulator`` (:mod:`.server`:
moto with the thingpress patches) detached (its own session, surviving the command
that started it) on 127.0.0.1. The child binds a free port itself and reports it
through a ready file, so there is no race for the port. The state file records its
pid and start time (:mod:`thingpress_cli.local.supervision`), so a reused pid is
never taken for it. Its state (every bucket, queue, table, IoT thing) lives in that process
for the life of the local environment; :func:`stop` ends it, and the state with it.

The quota mode's rates come from ``--quotas`` (a preset or JSON), else from
``THINGPRESS_EMULATOR_QUOTAS``, and can be changed at runtime with
:func:`set_quotas` (``POST /moto-api/thingpress/quotas``). The wait between
deprecating an IoT thing type and deleting it (AWS: 300 s; see
:mod:`.iot_deletion`) comes from ``--thing-type-wait``, else from
``THINGPRESS_EMULATOR_THING_TYPE_WAIT``; :func:`set_settings` changes it at runtime.
How long a transaction holds its DynamoDB items (see :mod:`.conflicts`; default 0,
off) comes from ``THINGPRESS_EMULATOR_TRANSACTION_HOLD_MS``; :func:`set_conflicts`
replaces it and the chaos rate at runtime. How far a global secondary index's reads lag behind
the table (see :mod:`.index_lag`; default 250 ms, as AWS's "fraction of a second") comes from
``THINGPRESS_EMULATOR_INDEX_LAG_MS``; :func:`set_index_lag` replaces it at runtime.
How long a detached principal still counts as attached (see :mod:`.iot_detach`; AWS:
"several seconds", here :data:`.iot_detach.EMULATOR_SECONDS`) comes from
``--detach-propagation``, else from ``THINGPRESS_EMULATOR_DETACH_PROPAGATION``;
:func:`set_settings` changes it at runtime (``detach_propagation``).
Every request is logged with the time it took (:mod:`.request_log`: ``requests.log`` beside
``emulator.log``, and a ``STILL RUNNING`` line for a request unanswered after 10 s).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thingpress_cli.local import state, supervision
from thingpress_cli.local.emulator import conflicts, index_lag, refused_creates, request_log, usage
from thingpress_cli.local.emulator.server import HOST, MODULE

START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Emulator:
    """A running emulator process."""

    pid: int
    host: str
    port: int
    #: when the process started (``psutil``): with the pid, what tells it from a later process given the same pid
    create_time: float | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def as_state(self) -> dict[str, Any]:
        return {"pid": self.pid, "create_time": self.create_time, "host": self.host, "port": self.port, "url": self.url}


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether an emulator with the thingpress extension answers at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/moto-api/thingpress/quotas", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def running(path: Path = state.STATE_FILE) -> Emulator | None:
    """The recorded emulator if its process is alive and answers, else None."""
    recorded = state.load(path).get("emulator") or {}
    emulator = (Emulator(recorded["pid"], recorded["host"], recorded["port"], recorded.get("create_time"))
                if recorded.get("pid") else None)
    if emulator and supervision.alive(emulator.pid, MODULE, emulator.create_time) and healthy(emulator.url):
        return emulator
    return None


def port_free(port: int, host: str = HOST) -> bool:
    """Whether the emulator could bind ``port`` (as its server does: with SO_REUSEADDR, so TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start(quotas: str | None = None, path: Path = state.STATE_FILE, log: Path | None = None, port: int = 0,
          thing_type_wait: float | None = None, detach_propagation: float | None = None) -> Emulator:
    """Start an emulator (detached) and record it in the state file; reuse a running one.

    ``port`` is the preferred port (0: any free port); a busy preferred port falls back to a free one.
    ``thing_type_wait`` (seconds) replaces AWS's 300 s between DeprecateThingType and DeleteThingType;
    ``detach_propagation`` (seconds) the emulator's default time a detached principal still counts as attached.
    """
    current = running(path)
    if current is not None:
        if quotas is not None:
            set_quotas(current.url, quotas)
        if thing_type_wait is not None:
            set_settings(current.url, {"thing_type_deprecation_wait": thing_type_wait})
        if detach_propagation is not None:
            set_settings(current.url, {"detach_propagation": detach_propagation})
        return current
    log = log or path.parent / "logs" / "emulator.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    ready = path.parent / "emulator.ready"
    ready.unlink(missing_ok=True)
    if port and not port_free(port):
        port = 0
    command = [sys.executable, "-m", MODULE, "--ready-file", str(ready), "--port", str(port),
               "--requests-log", str(log.parent / request_log.FILE_NAME)]
    if quotas is not None:
        command += ["--quotas", quotas]
    if thing_type_wait is not None:
        command += ["--thing-type-wait", str(thing_type_wait)]
    if detach_propagation is not None:
        command += ["--detach-propagation", str(detach_propagation)]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.is_file():
        if process.poll() is not None:
            raise SystemExit(f"the emulator exited with status {process.returncode} at start; see {log}")
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the emulator did not start within {START_TIMEOUT:.0f} s; see {log}")
        time.sleep(0.05)
    port = int(json.loads(ready.read_text())["port"])
    ready.unlink(missing_ok=True)
    emulator = Emulator(process.pid, HOST, port, supervision.record(process.pid)["create_time"])
    state.update("emulator", emulator.as_state(), path)
    return emulator


def stop(path: Path = state.STATE_FILE, timeout: float = 10.0) -> bool:
    """Stop the recorded emulator (its state is lost); True if one was running."""
    recorded = state.load(path).get("emulator") or {}
    pid, created = recorded.get("pid"), recorded.get("create_time")
    was_running = supervision.alive(pid, MODULE, created)
    if was_running:
        supervision.terminate(pid, timeout, created)
    state.update("emulator", None, path)
    return was_running


def _post(url: str, path: str, body: str) -> dict[str, Any]:
    """POST JSON to one of the emulator's control endpoints; its refusal becomes a ``ValueError``."""
    request = urllib.request.Request(f"{url}{path}", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as error:
        raise ValueError(json.loads(error.read()).get("message", str(error))) from error


def current_quotas(url: str) -> dict[str, float]:
    """The running emulator's quota rates now in force (``{}``: off)."""
    with urllib.request.urlopen(f"{url}/moto-api/thingpress/quotas", timeout=5) as answer:
        return dict(json.loads(answer.read())["rates"])


def set_quotas(url: str, quotas: str | dict[str, float]) -> dict[str, float]:
    """Replace the running emulator's quota rates (a preset name, JSON text or mapping)."""
    body = quotas if isinstance(quotas, str) and quotas.lstrip().startswith("{") else json.dumps(quotas)
    return dict(_post(url, "/moto-api/thingpress/quotas", body)["rates"])


def set_settings(url: str, settings: dict[str, float]) -> dict[str, float]:
    """Change the running emulator's settings (``POST /moto-api/thingpress/settings``); returns them all."""
    return _post(url, "/moto-api/thingpress/settings", json.dumps(settings))


def set_faults(url: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Replace the running emulator's fault injection (``{}``: off); returns its report (see :mod:`.faults`)."""
    return _post(url, "/moto-api/thingpress/faults", json.dumps(settings))


def set_conflicts(url: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Replace the running emulator's transaction-conflict settings (``{}``: off); returns its report (see :mod:`.conflicts`)."""
    return _post(url, conflicts.CONFLICTS_PATH, json.dumps(settings))


def set_index_lag(url: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Replace the running emulator's index lag (``{}``: off); returns its report (see :mod:`.index_lag`)."""
    return _post(url, index_lag.LAG_PATH, json.dumps(settings))


def conflict_report(url: str) -> dict[str, Any]:
    """The running emulator's transaction-conflict settings and the conflicts it answered so far."""
    with urllib.request.urlopen(f"{url}{conflicts.CONFLICTS_PATH}", timeout=5) as answer:
        return dict(json.loads(answer.read()))


def usage_report(url: str, *, reset: bool = False) -> dict[str, Any]:
    """The running emulator's usage since its last reset (:mod:`.usage`); ``reset``: start counting again."""
    if reset:
        return _post(url, usage.USAGE_PATH, "{}")
    with urllib.request.urlopen(f"{url}{usage.USAGE_PATH}", timeout=5) as answer:
        return dict(json.loads(answer.read()))


def fault_report(url: str) -> dict[str, Any]:
    """The running emulator's fault settings and the counts of faults injected so far."""
    with urllib.request.urlopen(f"{url}/moto-api/thingpress/faults", timeout=5) as answer:
        return dict(json.loads(answer.read()))


def refused_creates_report(url: str) -> list[str]:
    """The functions whose ``CreateFunction`` the running emulator refused as existing, oldest first
    (:mod:`.refused_creates`)."""
    with urllib.request.urlopen(f"{url}{refused_creates.REFUSED_CREATES_PATH}", timeout=5) as answer:
        return [str(name) for name in json.loads(answer.read())["refused"]]
