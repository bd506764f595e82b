"""The guard over moto: the pinned version, and every moto internal a patch changes, with its signature.

Each patch module lists what it replaces or wraps in a ``PATCHED`` tuple of
:class:`Patched` (module, dotted attribute, and the parameter names moto's
function has today); :data:`.patches.PATCHED` gathers them. :func:`check` runs
before any patch is applied (:func:`.patches.apply`: the emulator at start, the
in-process unit fixtures) and at ``make install``
(``python -m thingpress_cli.local.emulator.guard``): moto must be the version the
Pipfile pins, and every patched attribute must exist with the expected parameters,
so an upgrade fails loudly, naming the patch, instead of silently serving stock
behaviour or calling a moto function with the wrong arguments.

The signatures are read with :func:`inspect.signature`, which follows
``functools.wraps``: every wrapper and replacement is wrapped over moto's own
function, so the check answers the same before and after the patches apply.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The Pipfile that pins moto (the version these patches are written for).
PIPFILE = Path(__file__).resolve().parents[3] / "Pipfile"


@dataclass(frozen=True)
class Patched:
    """One moto attribute a patch replaces, wraps or relies on.

    ``params``: the parameter names moto's callable has (``inspect.signature``), or
    None for what is not a function (a dict, a module, a class, a property).
    ``instance``: the attribute is set per instance in the class's ``__init__``
    (``attribute`` then names the class and the instance attribute: ``"Queue.x"``).
    """

    module: str
    attribute: str
    params: tuple[str, ...] | None = None
    instance: bool = False

    @property
    def name(self) -> str:
        if self.instance:
            owner, attribute = self.attribute.rsplit(".", 1)
            return f"{self.module}.{owner}().{attribute}"
        return f"{self.module}.{self.attribute}"


class MotoMismatch(RuntimeError):
    """The installed moto is not the version these patches were written for."""


def pinned_moto_version(pipfile: Path = PIPFILE) -> str:
    """The moto version the Pipfile pins (``moto = {version = "==X", ...}``)."""
    import tomllib

    spec = tomllib.loads(pipfile.read_text())["dev-packages"]["moto"]
    version = spec["version"] if isinstance(spec, dict) else spec
    return str(version).removeprefix("==")


def problem(patched: Patched) -> str | None:
    """What is wrong with one patched attribute in the installed moto, else None."""
    target: Any = importlib.import_module(patched.module)
    parts = patched.attribute.split(".")
    if patched.instance:
        parts, attribute = parts[:-1], parts[-1]
    for part in parts:
        if not hasattr(target, part):
            return f"{patched.name} is missing"
        target = getattr(target, part)
    if patched.instance:
        init = getattr(target, "__init__", None)
        if init is None or not re.search(rf"self\.{attribute}\s*[:=]", inspect.getsource(init)):
            return f"{patched.name} is missing"
        return None
    if patched.params is None:
        return None
    try:
        found = tuple(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return f"{patched.name} is not a function any more"
    if found != patched.params:
        return f"{patched.name} takes ({', '.join(found)}), the patch expects ({', '.join(patched.params)})"
    return None


def require(patched: Iterable[Patched], owner: str) -> None:
    """Fail loudly (``RuntimeError``) unless every attribute ``owner`` patches outside moto is as it expects."""
    for each in patched:
        found = problem(each)
        if found is not None:
            raise RuntimeError(f"{each.module.split('.')[0]} is not what {owner} expects: {found}")


def check(patched: Iterable[Patched] | Mapping[Patched, Iterable[str]], pinned: str | None = None) -> None:
    """Fail loudly unless moto is the pinned version and every patched attribute is as each patch expects.

    ``patched``: the attributes, or (:data:`.patches.PATCHED`) each with the modules that patch it,
    named in the failure.
    """
    import moto

    wanted = pinned or pinned_moto_version()
    if moto.__version__ != wanted:
        raise MotoMismatch(f"moto {moto.__version__} is installed; thingpress_cli/local/emulator is written for "
                           f"moto {wanted} (the Pipfile pin): re-check every patch before changing the pin")
    owners = patched if isinstance(patched, Mapping) else {}
    problems = []
    for each in patched:
        found = problem(each)
        if found is not None:
            by = ", ".join(owners.get(each, ()))
            problems.append(f"{found} (patched by {by})" if by else found)
    if problems:
        raise MotoMismatch(f"moto {moto.__version__} is not what the emulator's patches expect: {'; '.join(problems)}")


def main() -> int:
    """``python -m thingpress_cli.local.emulator.guard``: the install-time check (``make install`` runs it)."""
    import moto

    from thingpress_cli.local.emulator.patches import PATCHED

    check(PATCHED)
    sys.stdout.write(f"moto {moto.__version__} is the pinned version; all {len(PATCHED)} patched attributes exist "
                     "with the expected signatures\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
