"""How a ``thingpress`` command ends: its exit statuses, the errors that end it, and the one handler.

Every command returns its status (0, or 1 for a finding) or raises; :func:`report`
(called once, by :func:`thingpress_cli.main.main`) turns what was raised into the
status of :data:`EXIT_STATUSES` and one message: a line on stderr, or under
``--json`` one JSON document on stdout (``{"error": {"code", "type", "message"}}``)
and nothing else. No AWS error prints a traceback; ``--debug`` adds it (on stderr).
"""

from __future__ import annotations

import json
import sys
import traceback

from thingpress.errors import ThingpressError

OK, FINDING, USAGE, CONFIGURATION, SERVICE, INTERRUPTED = 0, 1, 2, 3, 4, 130
#: the exit statuses, as ``thingpress --help`` lists them.
EXIT_STATUSES = (
    (OK, "ok"),
    (FINDING, "a finding: drift, refused entries, a manifest not complete"),
    (USAGE, "usage: a bad option, an unknown manifest id, an unreadable file"),
    (CONFIGURATION, "configuration: no outputs file, an unknown environment, bad settings"),
    (SERVICE, "AWS error: the service refused, failed or did not answer"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)


class CliError(ThingpressError):
    """An error that ends a command: its message is what the operator reads; ``status`` its exit status."""

    status = CONFIGURATION


class UsageError(CliError):
    """A bad option or argument (``usage``: the command's usage line, when argparse found it)."""

    status = USAGE

    def __init__(self, message: str, usage: str = ""):
        super().__init__(message)
        self.usage = usage


class DeploymentError(CliError):
    """Something about the deployment the operator must fix: names what is missing or wrong."""


class NotFinished(CliError):
    """A wait ended before what it waited for finished (a finding, not a failure of the command)."""

    status = FINDING


class ServiceError(CliError):
    """An AWS error, with what the operator needs around it (e.g. what was done and the command that resumes)."""

    status = SERVICE


def _aws_error_types() -> tuple[type[BaseException], ...]:
    # botocore is imported only by commands that talk to AWS: when it was never imported, no AWS
    # error can have been raised, and `thingpress inspect` does not pay for importing it here.
    # boto3's own errors are AWS errors too: a managed upload's S3UploadFailedError wraps the ClientError.
    found: tuple[type[BaseException], ...] = ()
    if (botocore := sys.modules.get("botocore.exceptions")) is not None:
        found += (botocore.BotoCoreError, botocore.ClientError)
    if (boto3 := sys.modules.get("boto3.exceptions")) is not None:
        found += (boto3.Boto3Error,)
    return found


def status_of(error: BaseException) -> int | None:
    """The exit status for ``error``, or None when it is a bug (it then ends with its traceback)."""
    if isinstance(error, CliError):
        return error.status
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(error, _aws_error_types()):
        return SERVICE
    return None


def report(error: BaseException, *, command: str | None, as_json: bool, debug: bool) -> int:
    """Print ``error`` as the operator reads it and return its exit status (re-raises a bug)."""
    status = status_of(error)
    if status is None:
        raise error
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    message = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
    if as_json:
        sys.stdout.write(json.dumps({"error": {"code": status, "type": type(error).__name__, "message": message}})
                         + "\n")
    else:
        usage = getattr(error, "usage", "")
        sys.stderr.write(usage + f"thingpress{' ' + command if command else ''}: {message}\n")
    return status
