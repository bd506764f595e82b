"""The deployed code, as the runner runs it: zips downloaded once per ``CodeSha256``, unpacked in Lambda's layout.

The function zip and its layer zips are downloaded from the emulator (``GetFunction``
``Code.Location``, ``GetLayerVersion`` ``Content.Location``), cached by ``CodeSha256``
under ``build/local/code/`` and unpacked in Lambda's layout: the task root, and
``opt/`` with the layers merged in order (``opt/python`` on the path).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import urllib.request
import zipfile
from pathlib import Path

from thingpress_cli.local import state
from thingpress_cli.local.runner.model import FunctionSpec

CODE_DIR = state.LOCAL_DIR / "code"


class CodeCache:
    """Deployed zips, downloaded once per ``CodeSha256`` and unpacked in Lambda's layout."""

    def __init__(self, root: Path = CODE_DIR) -> None:
        self.root = root
        self._lock = threading.Lock()

    def _unpack(self, kind: str, sha: str, location: str) -> Path:
        key = hashlib.sha256(sha.encode()).hexdigest()[:24]
        target = self.root / kind / key
        if target.is_dir():
            return target
        with urllib.request.urlopen(location, timeout=60) as answer:
            data = answer.read()
        partial = target.with_name(f"{key}.{os.getpid()}.{threading.get_ident()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        zip_path = partial / ".zip"
        zip_path.write_bytes(data)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(partial)
        zip_path.unlink()
        try:
            partial.rename(target)
        except OSError:  # another worker won the race: same content
            shutil.rmtree(partial, ignore_errors=True)
        return target

    def layout(self, spec: FunctionSpec) -> tuple[Path, Path]:
        """(task root, opt) for ``spec``: ``opt`` holds its layers merged in order."""
        with self._lock:
            task_root = self._unpack("functions", spec.code_sha, spec.code_location)
            layer_key = hashlib.sha256("|".join(layer.sha for layer in spec.layers).encode()).hexdigest()[:24]
            opt = self.root / "opt" / layer_key
            if not opt.is_dir():
                partial = opt.with_name(f"{layer_key}.partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir(parents=True)
                for layer in spec.layers:
                    shutil.copytree(self._unpack("layers", layer.sha, layer.location), partial, dirs_exist_ok=True)
                partial.rename(opt)
            return task_root, opt
