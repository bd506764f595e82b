"""The emulator's server process: moto behind the thingpress WSGI layer, served by waitress.

Run by :mod:`.process` as ``python -m thingpress_cli.local.emulator`` (``__main__``): it
applies the one patch set (:func:`.wsgi.install`, which checks moto first and fails
loudly naming a patch whose moto internal changed), binds a port, reports it through
the ready file and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from thingpress_cli.local import state
from thingpress_cli.local.emulator import (
    conflicts, index_lag, iot_detach, request_log, waitress_continue, waitress_one_send)
from thingpress_cli.local.emulator.iot_deletion import THING_TYPE_WAIT_SETTING, DeletionRules
from thingpress_cli.local.emulator.quota import QUOTAS_SETTING, Quotas
from thingpress_cli.local.emulator.request_log import RequestLog

#: What ``python -m`` runs (the package's ``__main__``: :func:`main`); the mark of its process.
MODULE = "thingpress_cli.local.emulator"
HOST = "127.0.0.1"

#: waitress's settings: ``threads``, as long polls (the runner's ``ReceiveMessage`` waits) each hold one while
#: they wait; ``channel_timeout``, an idle connection kept 300 s (the clients close theirs sooner).
WAITRESS_SETTINGS = {"threads": 64, "connection_limit": 1000, "channel_timeout": 300}


def log_connection_events(stream: TextIO | None = None) -> None:
    """waitress's own word on a connection goes to the emulator log (stderr) with its time: a client that
    went away while its request was served (INFO), a body longer or shorter than its Content-Length, the
    connection limit (WARNING), an exception (ERROR). Not its task-queue depth notes (``waitress.queue``:
    every busy moment). A deploy's lost answer (``thingpress_cli.local.lost_creates``) left no trace in
    the request log; these say whether the connection failed on the emulator's side."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    waitress = logging.getLogger("waitress")
    waitress.setLevel(logging.INFO)
    waitress.handlers = [handler]
    waitress.propagate = False
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


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

    from thingpress_cli.local.emulator.wsgi import install

    rates = Quotas()
    rates.configure(quotas if quotas is not None else os.environ.get(QUOTAS_SETTING))
    rules = DeletionRules(thing_type_wait) if thing_type_wait is not None else DeletionRules.from_environment()
    conflicts.HOLDS.configure(conflicts.from_environment())
    index_lag.INDEX_LAG.configure(index_lag.from_environment())
    propagation = iot_detach.from_environment() if detach_propagation is None else detach_propagation
    iot_detach.PROPAGATION.configure(propagation)
    app = install(DomainDispatcherApplication(create_backend_app), rates, rules)
    # Every request with its time (request_log.py); waitress's own word on a connection beside it.
    logged = RequestLog(app, requests_log or state.LOG_DIR / request_log.FILE_NAME)
    logged.watch()
    log_connection_events()
    waitress_continue.install()  # an empty PUT with "Expect: 100-continue" is answered at once, as by AWS
    waitress_one_send.install()  # an answer's head and body leave together (lost answers: lost_creates)
    server = create_server(logged, host=host, port=port, ident="thingpress-emulator", **WAITRESS_SETTINGS)
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

