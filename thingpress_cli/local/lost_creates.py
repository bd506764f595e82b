"""A function the emulator created whose answer Terraform never got: found in the deploy log, removed.

Seen on this machine (issue 22, finding 11; again on 2026-12-07 in ``build/local/logs/requests.log``):
in the first wave of ``CreateFunction`` calls of a deploy, the emulator answered one function's call
201 in 3 ms, and about 0.1 s later the same call came again and was answered 409 (the function
existed): the AWS SDK in Terraform's provider had sent it again, so it never got the first answer.
The provider retries a ``ResourceConflictException`` for five minutes ("Still creating..."), then
fails: ``Error: creating Lambda Function (<name>): ... ResourceConflictException: Function already
exist: <name>``. Every other function of that wave got its answer; the emulator logged no error.

On AWS a lost answer to ``CreateFunction`` would end the same way. Packet captures of ``thingpress local
up`` (2026-12-08) showed how it is lost here: the emulator sent the answer whole, and the provider closed the
connection after the answer's head, before reading its body, then sent the call again (why the Go client
closes is not known). The emulator now sends head and body in one send (:mod:`.emulator.waitress_one_send`),
and the captures since showed no loss; the recoveries stay. What ``thingpress local
up`` does about it, at the first refusal: while a deploy runs, :class:`Watch` asks the emulator
every second which ``CreateFunction`` calls it refused as existing (:mod:`.emulator.refused_creates`).
A function of the deploying stack that was refused is not in Terraform's state (its create has not
returned), so it is deleted from the emulator, with a warning naming it, and the provider's next
retry (within 10 s) creates it again: the deploy goes on, some seconds late instead of five minutes.
Each function is deleted once per deploy: after the deletion the provider's next call creates it, and
a refusal seen late (sent before the deletion) must not delete the function Terraform now holds.
Should a deploy still fail this way, the function is deleted and the deploy runs once more
(:func:`lost_functions`), with a warning naming it; the failed deploy's log is kept beside the new one.

The same loss met ``CreateEventSourceMapping`` (a packet capture of ``local up``, 2026-12-08: the 201 arrived,
the client closed the connection before reading it, and the SDK sent the call again). Lambda refuses a second
mapping of one queue to one function, naming the first (:mod:`.emulator.awslambda`), and the provider does not
retry that: the deploy fails at once. The mapping named is not in Terraform's state either, so it is deleted
and the deploy runs once more (:func:`lost_mappings`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from thingpress_cli.local import state
from thingpress_cli.local.emulator import process as emulator

#: the provider's last word on such a create (the name ends the line: Lambda function names are
#: letters, digits, ``-`` and ``_``).
LOST_CREATE = re.compile(r"ResourceConflictException: Function already exist: ([A-Za-z0-9_-]+)")


#: the provider's last word on a second mapping of one queue to one function, the first's answer lost: Lambda
#: names the mapping that exists (``emulator.awslambda.duplicate_mapping_message``). The provider does not retry it.
LOST_MAPPING = re.compile(r'ResourceConflictException: An event source mapping with SQS arn \(" \S+ "\) and '
                          r'function \(" ([A-Za-z0-9_-]+) "\) already exists\. Please update or delete the existing '
                          r"mapping with UUID ([0-9a-f-]{36})")


def lost_functions(log_text: str) -> list[str]:
    """The functions a deploy log says were created but refused as existing, each once, in order."""
    return list(dict.fromkeys(LOST_CREATE.findall(log_text)))


def lost_mappings(log_text: str, functions: Iterable[str]) -> list[str]:
    """The event source mappings (UUIDs) of ``functions`` that a deploy log says exist though Terraform's
    create of them was refused, each once, in order."""
    wanted = set(functions)
    return list(dict.fromkeys(uuid for name, uuid in LOST_MAPPING.findall(log_text) if name in wanted))


def keep_failed_log(log_path: Path) -> Path:
    """Move the failed deploy's log aside (``<name>.lost-answer.log``) before the deploy runs again."""
    kept = log_path.with_suffix(".lost-answer.log")
    log_path.replace(kept)
    return kept


def _lambda(url: str) -> Any:
    return boto3.client("lambda", endpoint_url=url, region_name=state.REGION,
                        aws_access_key_id=state.FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=state.FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def _delete_each(url: str, keys: list[str], delete: Callable[[Any, str], Any]) -> None:
    """``delete(client, key)`` for each key on the emulator at ``url``; one already gone is no error."""
    client = _lambda(url)
    for key in keys:
        try:
            delete(client, key)
        except client.exceptions.ResourceNotFoundException:
            continue


def forget(url: str, names: list[str]) -> None:
    """Delete the functions ``names`` from the emulator at ``url`` (Terraform's state does not hold them)."""
    _delete_each(url, names, lambda client, name: client.delete_function(FunctionName=name))


def forget_mappings(url: str, uuids: list[str]) -> None:
    """Delete the event source mappings ``uuids`` from the emulator at ``url`` (Terraform's state does not hold them)."""
    _delete_each(url, uuids, lambda client, uuid: client.delete_event_source_mapping(UUID=uuid))


class Watch:
    """While a deploy runs (``with Watch(...)``): the stack's functions the emulator refused to create
    as existing are deleted at once, each once, and ``warn`` says which (see the module)."""

    #: how often the emulator is asked (the provider retries a refusal after 0.5, 1, 2, 4, 8 s, then every 10 s)
    INTERVAL = 1.0

    def __init__(self, url: str, functions: Iterable[str], warn: Callable[[str], None],
                 interval: float = INTERVAL) -> None:
        self.url, self.functions, self.warn, self.interval = url, frozenset(functions), warn, interval
        self.deleted: list[str] = []
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lost-creates", daemon=True)

    def __enter__(self) -> Watch:
        if self.begin():
            self._thread.start()
        return self

    def begin(self) -> bool:
        """Take the refusals so far as not this deploy's (a function refused then may be in Terraform's state
        now); False, with a warning, when the emulator does not say."""
        try:
            self._seen = len(emulator.refused_creates_report(self.url))
        except OSError as error:
            self.warn(f"lost creates not watched: the emulator did not say which creates it refused ({error})")
            return False
        return True

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except (OSError, BotoCoreError, ClientError) as error:  # the emulator busy or gone: the deploy says so too
                self.warn(f"lost creates: the emulator did not answer ({error}); asking again in {self.interval:g} s")

    def check(self) -> list[str]:
        """Delete the stack's functions refused since the last check (each once); the names deleted."""
        refused = emulator.refused_creates_report(self.url)
        fresh, self._seen = refused[self._seen:], len(refused)
        lost = [name for name in dict.fromkeys(fresh) if name in self.functions and name not in self.deleted]
        if lost:
            forget(self.url, lost)
            self.deleted.extend(lost)
            self.warn(f"the emulator created {', '.join(lost)}, but Terraform sent the CreateFunction again (its "
                      "answer was lost) and was refused as existing; deleted from the emulator, so that the "
                      "provider's next retry creates it")
        return lost
