"""Commands named in hints are commands that exist on this machine.

``thingpress`` itself is named as the operator can type it: ``thingpress`` when
the one on ``PATH`` is this installation, else the path of this virtualenv's
script relative to the current directory. ``aws`` and ``make`` hints appear
only when that program is on ``PATH`` and runs (a pyenv shim without a backing
install does not count).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path


@cache
def thingpress() -> str:
    """How to call this installation's ``thingpress`` from the current directory."""
    own = Path(sys.executable).parent / "thingpress"
    on_path = shutil.which("thingpress")
    if on_path and own.is_file() and Path(on_path).resolve() == own.resolve():
        return "thingpress"
    if own.is_file():
        try:
            return os.path.relpath(own)
        except ValueError:
            return str(own)
    return f"{Path(sys.executable).name} -m thingpress_cli.main"


@cache
def available(program: str) -> bool:
    """Whether ``program`` is on PATH and answers ``--version``."""
    path = shutil.which(program)
    if path is None:
        return False
    try:
        return subprocess.run([path, "--version"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
