"""Record every AWS API call a local Lambda worker makes, for ``make iam-check``.

The runner sets :data:`CALLS_ENV` in a worker's environment to
``build/local/calls/<function>.jsonl``; :mod:`.bootstrap` then loads this file (by
path: the worker runs with ``-S -P``) and calls :func:`install` before it imports
the handler. :func:`install` appends one handler to botocore's
``BUILTIN_HANDLERS``, the list every botocore session registers when it is
created, so every client the function makes (boto3's default session or its own)
reports its calls. The function's code and the layer know nothing of it.

One JSON line per call, with the input parameters as botocore's own
``before-parameter-build`` handlers leave them, written when the request is about
to be sent (``before-call``)::

    {"service": "sqs", "operation": "SendMessageBatch", "region": "us-east-1", "params": {...}}

``params`` are the operation's input parameters with long strings (message
bodies, certificate PEMs) cut to :data:`KEEP_CHARS`: the resource identifiers and
the values IAM conditions read are short. :mod:`thingpress_cli.iamcheck` maps the
lines to IAM actions and resources.

This module imports only the standard library at import time; botocore comes from
the function's layer when :func:`install` runs.
"""

import importlib.util
import json
import os
import threading

#: The worker environment variable naming the JSONL file; unset: nothing recorded.
CALLS_ENV = "THINGPRESS_CALLS_FILE"
#: The runner's own environment: ``0`` turns recording off (benchmarks). A setting of the local cloud
#: (``THINGPRESS_LOCAL_``): it never reaches the stack, so it costs no synthesis.
SWITCH_ENV = "THINGPRESS_LOCAL_RECORD_CALLS"
KEEP_CHARS = 160
CALLS_DIR_NAME = "calls"


def calls_file(log_dir, function_name):
    """``<log dir>/../calls/<function>.jsonl``: next to the runner's ``logs/``."""
    return os.path.join(os.path.dirname(os.fspath(log_dir)), CALLS_DIR_NAME, f"{function_name}.jsonl")


def enabled(environ=os.environ):
    return environ.get(SWITCH_ENV, "1") != "0"


def trimmed(value):
    """``value`` with every string longer than :data:`KEEP_CHARS` cut (bytes: their length only)."""
    if isinstance(value, dict):
        return {k: trimmed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [trimmed(v) for v in value]
    if isinstance(value, str) and len(value) > KEEP_CHARS:
        return value[:KEEP_CHARS]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class Recorder:
    """A botocore ``before-call`` handler appending one line per call to ``path``.

    The file stays open, line-buffered (each line is written whole when the call is made, so a worker
    killed at its timeout loses none), and is opened again when it is gone (``local up`` clears the
    folder). Opening, closing and a folder check on every call took about a tenth of the local
    runner's CPU in a pipeline run (py-spy); this is one ``fstat`` and one ``write``.
    """

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._file = None

    def __call__(self, model, params, request_signer=None, context=None, **_):
        line = {"service": model.service_model.signing_name or model.service_model.endpoint_prefix,
                "operation": model.name, "region": getattr(request_signer, "region_name", None),
                "params": trimmed((context or {}).get("thingpress_params") or {})}
        encoded = json.dumps(line, sort_keys=True, default=str) + "\n"
        with self._lock:
            self._sink().write(encoded)

    def _sink(self):
        """The open file, opened (again) when it is not open or no longer in the folder."""
        if self._file is None or os.fstat(self._file.fileno()).st_nlink == 0:
            if self._file is not None:
                self._file.close()
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 -- kept open
        return self._file


def _keep_input(params, context, **_):
    """``before-parameter-build``: the operation's input, kept for the ``before-call`` line."""
    context["thingpress_params"] = dict(params)


def install(path):
    """Make every botocore session created from now on record its calls to ``path``.

    A function without botocore on its path makes no AWS call: nothing to install.
    """
    if importlib.util.find_spec("botocore") is None:
        return None
    from botocore import handlers  # the layer's botocore, importable only inside the worker

    recorder = Recorder(path)
    handlers.BUILTIN_HANDLERS.append(("before-parameter-build", _keep_input, handlers.REGISTER_LAST))
    # First among the most specific: a handler that answers the call itself (a Stubber) stops the chain.
    handlers.BUILTIN_HANDLERS.append(("before-call.*.*", recorder, handlers.REGISTER_FIRST))
    return recorder
