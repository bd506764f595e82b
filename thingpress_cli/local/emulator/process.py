"""The local AWS emulator: moto server plus :mod:`.moto_ext`, in its own process.

:func:`start` launches ``python -m thingpress_cli.local.emulator`` detached (its
own session, surviving the command that started it) on 127.0.0.1. The child binds
a free port itself and reports it through a ready file, so there is no race for
the port. Its state (every bucket, queue, table, IoT thing) lives in that process
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

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thingpress_cli.local import conflicts, index_lag, iot_detach, request_log, state
from thingpress_cli.local.iot_deletion import THING_TYPE_WAIT_SETTING, DeletionRules
from thingpress_cli.local.quota import QUOTAS_SETTING, Quotas
from thingpress_cli.local.request_log import RequestLog

MODULE = "thingpress_cli.local.emulator"
HOST = "127.0.0.1"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Emulator:
    """A running emulator process."""

    pid: int
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def as_state(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "port": self.port, "url": self.url}


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
    emulator = Emulator(recorded["pid"], recorded["host"], recorded["port"]) if recorded.get("pid") else None
    if emulator and state.pid_alive(emulator.pid, MODULE) and healthy(emulator.url):
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
    emulator = Emulator(process.pid, HOST, port)
    state.update("emulator", emulator.as_state(), path)
    return emulator


def stop(path: Path = state.STATE_FILE, timeout: float = 10.0) -> bool:
    """Stop the recorded emulator (its state is lost); True if one was running."""
    recorded = state.load(path).get("emulator") or {}
    pid = recorded.get("pid")
    was_running = state.pid_alive(pid, MODULE)
    if was_running:
        terminate(pid, timeout)
    state.update("emulator", None, path)
    return was_running


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM ``pid``, then SIGKILL after ``timeout`` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not state.pid_alive(pid):
            return
        try:  # reap it if it is our child
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _post(url: str, path: str, body: str) -> dict[str, Any]:
    """POST JSON to one of the emulator's control endpoints; its refusal becomes a ``ValueError``."""
    request = urllib.request.Request(f"{url}{path}", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as error:
        raise ValueError(json.loads(error.read()).get("message", str(error))) from error


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


def fault_report(url: str) -> dict[str, Any]:
    """The running emulator's fault settings and the counts of faults injected so far."""
    with urllib.request.urlopen(f"{url}/moto-api/thingpress/faults", timeout=5) as answer:
        return dict(json.loads(answer.read()))


#: Server threads. Long polls (the runner's ReceiveMessage waits) each hold one while they wait.
SERVER_THREADS = 64


def serve(host: str, port: int, quotas: str | None, ready_file: Path | None,
          thing_type_wait: float | None = None, detach_propagation: float | None = None,
          requests_log: Path | None = None) -> None:
    """Serve moto with the extension until SIGTERM (runs in the emulator process).

    The HTTP server is waitress, not moto's werkzeug development server: werkzeug
    closes the connection after every response, so each SDK call paid a new TCP
    connection on both sides and a new server thread. waitress keeps HTTP/1.1
    connections alive, as AWS endpoints do, and serves them from a thread pool.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress.server import create_server

    from thingpress_cli.local.moto_ext import install

    rates = Quotas()
    rates.configure(quotas if quotas is not None else os.environ.get(QUOTAS_SETTING))
    rules = DeletionRules(thing_type_wait) if thing_type_wait is not None else DeletionRules.from_environment()
    conflicts.HOLDS.configure(conflicts.from_environment())
    index_lag.INDEX_LAG.configure(index_lag.from_environment())
    propagation = iot_detach.from_environment() if detach_propagation is None else detach_propagation
    iot_detach.PROPAGATION.configure(propagation)
    app = install(DomainDispatcherApplication(create_backend_app), rates, rules)
    # Every request with its time (request_log.py): waitress's own logger stays quiet.
    logged = RequestLog(app, requests_log or state.LOG_DIR / request_log.FILE_NAME)
    logged.watch()
    logging.getLogger("waitress").setLevel(logging.ERROR)
    server = create_server(logged, host=host, port=port, threads=SERVER_THREADS, ident="thingpress-emulator",
                           connection_limit=1000, channel_timeout=300)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    bound = int(server.effective_port)  # type: ignore[union-attr]
    sys.stdout.write(f"thingpress emulator on http://{host}:{bound} (quotas: {rates.rates or 'off'}; "
                     f"thing type deprecation wait: {rules.deprecation_wait:g} s; "
                     f"transaction hold: {conflicts.HOLDS.settings['hold_ms']:g} ms; "
                     f"index lag: {index_lag.INDEX_LAG.settings['lag_ms']:g} ms; "
                     f"detach propagation: {iot_detach.PROPAGATION.seconds:g} s)\n")
    sys.stdout.flush()
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": bound, "pid": os.getpid()}))
        tmp.replace(ready_file)
    server.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="Run the thingpress emulator.")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--quotas", default=None, help=f"preset or JSON rates (default: ${QUOTAS_SETTING})")
    parser.add_argument("--ready-file", type=Path, default=None, help="written with the bound port once serving")
    parser.add_argument("--thing-type-wait", type=float, default=None,
                        help=f"seconds between DeprecateThingType and DeleteThingType (default: ${THING_TYPE_WAIT_SETTING}, else 300 as AWS)")
    parser.add_argument("--detach-propagation", type=float, default=None,
                        help=f"seconds a detached principal still counts as attached (default: ${iot_detach.SETTING}, "
                             f"else {iot_detach.EMULATOR_SECONDS:g}; AWS: several seconds)")
    parser.add_argument("--requests-log", type=Path, default=None,
                        help=f"every request with its time (default: {state.LOG_DIR / request_log.FILE_NAME})")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.quotas, args.ready_file, args.thing_type_wait, args.detach_propagation,
          args.requests_log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
