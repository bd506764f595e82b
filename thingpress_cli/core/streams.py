"""Where a command's output goes: results on stdout; progress, hints and errors on stderr.

Under ``--json`` stdout holds the one JSON document and nothing else: a command that
reports progress as it goes (``local up``, ``demo``) runs that part inside
:func:`progress_on_stderr`, then prints its document with :func:`print_json`.
Errors never reach stdout but as the JSON error document (``core.errors``).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def progress_on_stderr(as_json: bool) -> Iterator[None]:
    """Under ``--json``, what the block prints to ``sys.stdout`` goes to stderr (stdout keeps the document)."""
    if not as_json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def print_json(data: Any) -> None:
    """The command's one JSON document, on stdout."""
    sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    """A line for the operator that is not a result (an error that does not end the command, a hint)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
