"""The Lambda runtime of a runner worker: one warm Python process per concurrent slot.

Run by :mod:`thingpress_cli.local.runner.workers` as a *script* in a clean interpreter::

    env -i PATH=... PYTHONPATH=<task>:<opt>/python <base python3.11> -S -P bootstrap.py

``-S`` keeps site-packages out and ``-P`` keeps this file's folder out, so only the
function's zip, its layers and the standard library are importable, as in Lambda.
This file therefore imports nothing but the standard library.

Protocol (JSON lines): the runner writes ``{"event", "request_id", "deadline_ms"}``
on stdin; the worker answers one line on the *original* stdout
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"errorType",
"errorMessage", "stackTrace"}}`` (the shape Lambda returns). File descriptor 1 is
then pointed at stderr, so whatever the function prints or logs goes to the
function's log file, as it would go to CloudWatch.

With ``THINGPRESS_CALLS_FILE`` set, every AWS call the function makes is recorded
there before the handler is imported (:mod:`.recorder`, loaded by path from this
file's folder; the function's code knows nothing of it).

With ``THINGPRESS_LOCAL_BUSY_DIR`` set, the worker holds a file named after its pid in that
folder while an invocation runs (``busy_marker``): chaos kills only workers that are in an
invocation, and a kill that leaves the file behind is one that ended an invocation.
"""

import importlib
import importlib.util
import json
import os
import sys
import time
import traceback

_HANDLER = os.environ.get("_HANDLER", "")
_TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())


class LambdaContext:
    """The subset of Lambda's context object functions use."""

    def __init__(self, request_id, deadline_ms):
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("THINGPRESS_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _user_frame(frame):
    """Frames of the runtime itself (this file, importlib) are not the function's: Lambda hides them."""
    name = frame.filename
    return name != __file__ and not name.startswith("<frozen importlib") and not name.endswith("importlib/__init__.py")


def error_of(error, error_type=None, message=None):
    """Lambda's error payload for an exception."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _user_frame(f)]
    return {
        "errorType": error_type or type(error).__name__,
        "errorMessage": message if message is not None else str(error),
        "stackTrace": traceback.format_list(frames),
    }


def load_handler():
    """Import the handler like Lambda's Python runtime; returns (handler, init_error)."""
    module_name, _, function_name = _HANDLER.rpartition(".")
    if not module_name:
        return None, {"errorType": "Runtime.MalformedHandlerName",
                      "errorMessage": f"Bad handler '{_HANDLER}': not enough values to unpack (expected 2, got 1)",
                      "stackTrace": []}
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        return None, error_of(error, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}")
    except SyntaxError as error:
        return None, error_of(error, "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}")
    except Exception as error:  # noqa: BLE001 - any init failure is reported, as Lambda does
        return None, error_of(error)
    handler = getattr(module, function_name, None)
    if handler is None:
        return None, {"errorType": "Runtime.HandlerNotFound",
                      "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
                      "stackTrace": []}
    return handler, None


def install_recorder():
    """Record the function's AWS calls when the runner asks for it (``THINGPRESS_CALLS_FILE``)."""
    path = os.environ.pop("THINGPRESS_CALLS_FILE", "")
    if not path:
        return
    spec = importlib.util.spec_from_file_location(
        "thingpress_local_recorder", os.path.join(os.path.dirname(os.path.abspath(__file__)), "recorder.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install(path)


def log_error(request_id, error):
    """What Lambda's runtime prints to the log for a failed invocation."""
    sys.stderr.write(f"[ERROR] {error['errorType']}: {error['errorMessage']}\tRequestId: {request_id}\n")
    if error["stackTrace"]:
        sys.stderr.write("Traceback (most recent call last):\n" + "".join(error["stackTrace"]))
    sys.stderr.write(json.dumps({**error, "requestId": request_id}) + "\n")


def busy_marker():
    """The file this worker holds while an invocation runs, or None (not asked for)."""
    folder = os.environ.pop("THINGPRESS_LOCAL_BUSY_DIR", "")
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, str(os.getpid()))
    if os.path.exists(path):  # left by a killed worker whose pid this one reuses
        os.remove(path)
    return path


def main():
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the function's prints go to the log, not into the protocol
    sys.stdout = os.fdopen(1, "w", encoding="utf-8", buffering=1)
    os.chdir(_TASK_ROOT)
    started = time.monotonic()
    install_recorder()
    busy = busy_marker()
    handler, init_error = load_handler()
    init_ms = (time.monotonic() - started) * 1000
    if init_error is not None:
        log_error("", init_error)
    for line in sys.stdin:
        request = json.loads(line)
        request_id = request["request_id"]
        sys.stderr.write(f"START RequestId: {request_id} Version: $LATEST\n")
        if busy:
            with open(busy, "w") as marker:
                marker.write(request_id)
        began = time.monotonic()
        if init_error is not None:
            answer = {"ok": False, "error": init_error}
        else:
            try:
                result = handler(request["event"], LambdaContext(request_id, request["deadline_ms"]))
                answer = {"ok": True, "result": result}
            except Exception as error:  # noqa: BLE001 - the function's failure is the answer
                answer = {"ok": False, "error": error_of(error)}
            except SystemExit as error:
                answer = {"ok": False, "error": error_of(error, "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: exit status {error.code}")}
            if answer["ok"]:
                try:
                    json.dumps(answer)
                except (TypeError, ValueError) as error:
                    answer = {"ok": False, "error": {"errorType": "Runtime.MarshalError",
                                                     "errorMessage": f"Unable to marshal response: {error}",
                                                     "stackTrace": []}}
        if busy:
            os.remove(busy)
        if not answer["ok"]:
            log_error(request_id, answer["error"])
        duration = (time.monotonic() - began) * 1000
        sys.stderr.write(f"END RequestId: {request_id}\n")
        init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else ""
        sys.stderr.write(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms{init}\n")
        sys.stderr.flush()
        init_ms = None
        encoded = json.dumps({**answer, "duration_ms": duration})
        channel.write(encoded + "\n")
        channel.flush()


if __name__ == "__main__":
    main()
