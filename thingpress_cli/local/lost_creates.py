"""A function the emulator created whose answer Terraform never got: found in the deploy log, removed.

Seen on this machine (issue 22, finding 11; again on 2026-12-07 in ``build/local/logs/requests.log``):
in the first wave of ``CreateFunction`` calls of a deploy, the emulator answered one function's call
201 in 3 ms, and about 0.1 s later the same call came again and was answered 409 (the function
existed): the AWS SDK in Terraform's provider had sent it again, so it never got the first answer.
The provider retries a ``ResourceConflictException`` for five minutes ("Still creating..."), then
fails: ``Error: creating Lambda Function (<name>): ... ResourceConflictException: Function already
exist: <name>``. Every other function of that wave got its answer; the emulator logged no error.

On AWS a lost answer to ``CreateFunction`` would end the same way. Here it is the local cloud's
transport that lost it, not the stack; why is not known (not waitress's idle timeout: it keeps a
connection 300 s, and the deploy had used its connections a moment before). What ``thingpress local
up`` does about it: the function is not in Terraform's state (its create failed), so it is deleted
from the emulator and the deploy runs once more, with a warning naming it; the failed deploy's log is
kept beside the new one.
"""

from __future__ import annotations

import re
from pathlib import Path

import boto3

from thingpress_cli.local import state

#: the provider's last word on such a create (the name ends the line: Lambda function names are
#: letters, digits, ``-`` and ``_``).
LOST_CREATE = re.compile(r"ResourceConflictException: Function already exist: ([A-Za-z0-9_-]+)")


def lost_functions(log_text: str) -> list[str]:
    """The functions a deploy log says were created but refused as existing, each once, in order."""
    return list(dict.fromkeys(LOST_CREATE.findall(log_text)))


def keep_failed_log(log_path: Path) -> Path:
    """Move the failed deploy's log aside (``<name>.lost-answer.log``) before the deploy runs again."""
    kept = log_path.with_suffix(".lost-answer.log")
    log_path.replace(kept)
    return kept


def forget(url: str, names: list[str]) -> None:
    """Delete ``names`` from the emulator at ``url`` (Terraform's state does not hold them)."""
    client = boto3.client("lambda", endpoint_url=url, region_name=state.REGION,
                          aws_access_key_id=state.FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=state.FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    for name in names:
        try:
            client.delete_function(FunctionName=name)
        except client.exceptions.ResourceNotFoundException:
            continue
