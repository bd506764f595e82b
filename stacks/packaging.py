"""Reproducible Lambda artifacts: one zip per function folder and the layer zip.

Pure Python (no cdktf), used by the stack, the packaging contract test and the
local runner, so every one of them deploys or imports the very same bytes.

* **Function zips** hold only the function's own folder (``lambdas/<key>/``): the
  thin handler module. Everything else comes from the layer.
* **The layer zip** holds ``python/thingpress`` (from ``shared/thingpress``) and the
  third-party dependencies pinned in ``shared/pyproject.toml``, installed for the
  Lambda platform: ``pip install --platform manylinux2014_<arch> --only-binary=:all:
  --python-version <runtime> --implementation cp --target ... --no-compile``.
  **boto3 is bundled in the layer**: the functions never rely on the runtime's
  boto3 (its version moves under us and lags the pinned one).
* **Bytecode included** (``__pycache__/*.cpython-311.pyc``, unchecked-hash, so no
  timestamps) when the build interpreter is the runtime's version: Lambda's code
  folders are read-only, and compiling every module on each cold start triples
  the import time. Stray local ``__pycache__`` folders are never picked up.
* **Reproducible**: entries sorted, every timestamp 1980-01-01 00:00, permissions
  0644 (directories are implied, not stored), no ``__pycache__``/``*.pyc``; the
  pip-installed ``bin/`` scripts (their shebang names the build machine's Python)
  and the install-time ``RECORD``/``INSTALLER``/``REQUESTED``/``direct_url.json``
  files are left out. Same inputs -> same bytes -> same hash.
* **Cached**: the installed dependencies live in ``build/layer-deps/<key>/`` where
  the key hashes (pinned deps, Python version, architecture); the layer zip is
  ``build/assets/layer-<inputs hash>.zip`` and is rebuilt only when its inputs
  change, so a repeat synth costs nothing.

The layer's ``source_code_hash`` in the stack is ``inputs_hash`` (deps pins,
runtime, architecture, and the bytes of every shared source file), not the zip's
hash: a snapshot then never depends on wheel bytes from the index, and any change
to the code or the pins still changes it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stacks import defaults
from stacks.naming import FUNCTION_KEYS

REPO = Path(__file__).resolve().parent.parent
LAMBDAS = REPO / "lambdas"
SHARED = REPO / "shared"
BUILD = REPO / "build"
ASSETS = BUILD / "assets"
DEPS_CACHE = BUILD / "layer-deps"
LAYER_PACKAGE = "thingpress"

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", "tests"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
_SKIP_NAMES = {".DS_Store"}
#: install-time metadata that differs between machines and is not needed at run time.
_SKIP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
#: the folder, inside an installed dependencies folder, of their bytecode (``dependency_bytecode``).
_BYTECODE_PREFIX = ".bytecode-"


class PackagingError(RuntimeError):
    """An artifact cannot be built; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Artifact:
    path: Path
    #: base64 SHA-256 of the zip (what Lambda reports as CodeSha256).
    sha256_b64: str
    size: int
    #: the hash used as the Terraform source_code_hash / asset hash.
    source_hash: str


def _hash_b64(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name in _SKIP_NAMES or name.endswith(_SKIP_SUFFIXES):
                continue
            yield Path(dirpath) / name


def _layer_dep_files(root: Path) -> Iterator[Path]:
    for path in _walk(root):
        rel = path.relative_to(root)
        if rel.parts[0] == "bin" or rel.parts[0].startswith(_BYTECODE_PREFIX):
            continue
        if len(rel.parts) == 2 and rel.parts[0].endswith(".dist-info") and rel.parts[1] in _SKIP_DIST_INFO:
            continue
        yield path


def write_zip(entries: Iterable[tuple[str, Path | bytes]], dest: Path) -> None:
    """Write ``(arcname, file or bytes)`` entries as a reproducible zip (atomically)."""
    items = sorted(entries, key=lambda e: e[0])
    names = [a for a, _ in items]
    if len(set(names)) != len(names):
        raise PackagingError(f"{dest.name}: duplicate entries in archive")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for arcname, path in items:
                info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3
                info.external_attr = (0o100644 << 16)
                data = path if isinstance(path, bytes) else path.read_bytes()
                zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: Compiles in a clean interpreter (-I -S): marshal output depends on what else the
#: process holds (reference flags of interned objects), so compiling inside a busy
#: process (pytest, cdktf) would not give the same bytes twice.
_COMPILE_CHILD = r"""
import importlib.util, json, marshal, sys
jobs = json.load(sys.stdin)
for source_path, arcname, out_path in jobs:
    with open(source_path, "rb") as f:
        source = f.read()
    try:
        code = compile(source, arcname, "exec", dont_inherit=True)
    except SyntaxError:
        continue  # e.g. a dependency's Python-2-only example: pip would not compile it either
    data = importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little") + importlib.util.source_hash(source) + marshal.dumps(code)
    with open(out_path, "wb") as f:
        f.write(data)
"""


def with_bytecode(entries: list[tuple[str, Path]], python_version: str) -> list[tuple[str, Path | bytes]]:
    """Add ``__pycache__/*.pyc`` (unchecked-hash: no timestamps) for every ``.py`` entry.

    Lambda's /opt and /var/task are read-only, so without shipped bytecode every
    cold start compiles every imported module (about 3x the import time). Bytecode
    is only valid for the interpreter version that wrote it: it is added when the
    build runs the runtime's Python version, and left out otherwise.
    """
    out: list[tuple[str, Path | bytes]] = list(entries)
    if python_version != _running():
        return out
    tag = sys.implementation.cache_tag
    with tempfile.TemporaryDirectory(prefix="pyc-") as tmp:
        jobs = []
        for i, (arcname, path) in enumerate(sorted(entries)):
            if arcname.endswith(".py"):
                head, _, name = arcname.rpartition("/")
                pyc = f"{head}/__pycache__/{name[:-3]}.{tag}.pyc" if head else f"__pycache__/{name[:-3]}.{tag}.pyc"
                jobs.append((str(path), arcname, str(Path(tmp) / f"{i}.pyc"), pyc))
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _COMPILE_CHILD], text=True, capture_output=True,
                              input=json.dumps([j[:3] for j in jobs]), check=False)
        if done.returncode != 0:
            raise PackagingError(f"compiling bytecode failed:\n{done.stderr[-2000:]}")
        for _, _, compiled, pyc in jobs:
            if Path(compiled).is_file():
                out.append((pyc, Path(compiled).read_bytes()))
    return out


def function_dir(key: str) -> Path:
    if key not in FUNCTION_KEYS:
        raise PackagingError(f"unknown function {key!r}; known: {', '.join(FUNCTION_KEYS)}")
    return LAMBDAS / key


def function_entries(key: str) -> list[tuple[str, Path]]:
    folder = function_dir(key)
    entries = [(p.relative_to(folder).as_posix(), p) for p in _walk(folder) if p.is_file()]
    if not any(a.endswith(".py") for a, _ in entries):
        raise PackagingError(f"function {key}: {folder.relative_to(REPO)} holds no Python module")
    return entries


def build_function(key: str, out_dir: Path = ASSETS, python_version: str = "3.11") -> Artifact:
    """Zip ``lambdas/<key>/`` (its own code only, with bytecode) to ``<out_dir>/<key>.zip``."""
    dest = out_dir / f"{key}.zip"
    entries = function_entries(key)
    h = hashlib.sha256(f"{python_version}:{sys.implementation.cache_tag}".encode())
    for arcname, path in sorted(entries):
        h.update(arcname.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    stamp = dest.with_suffix(".inputs")
    # Rebuilt only when its sources change (bytecode compilation is a subprocess).
    if not dest.is_file() or not stamp.is_file() or stamp.read_text() != h.hexdigest():
        write_zip(with_bytecode(entries, python_version), dest)
        stamp.write_text(h.hexdigest())
    digest = _hash_b64(dest)
    return Artifact(dest, digest, dest.stat().st_size, digest)


def layer_requirements(pyproject: Path = SHARED / "pyproject.toml") -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    unpinned = [d for d in deps if "==" not in d]
    if unpinned:
        raise PackagingError(f"{pyproject.relative_to(REPO)}: layer dependencies must be pinned with ==: "
                             + ", ".join(unpinned))
    return sorted(deps)


def _running() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def deps_key(requirements: list[str], python_version: str, architecture: str) -> str:
    text = "\n".join([*requirements, python_version, architecture, defaults.PIP_PLATFORMS[architecture]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shared_entries() -> list[tuple[str, Path]]:
    root = SHARED / LAYER_PACKAGE
    return [(f"python/{p.relative_to(SHARED).as_posix()}", p) for p in _walk(root)]


def inputs_hash(python_version: str, architecture: str) -> str:
    """Hash of everything the layer is built from (not of the wheels' bytes)."""
    h = hashlib.sha256()
    h.update(deps_key(layer_requirements(), python_version, architecture).encode())
    # Whether the zip carries bytecode (and for which interpreter) is an input too.
    h.update((f"bytecode:{sys.implementation.cache_tag}" if python_version == _running() else "source").encode())
    for arcname, path in sorted(shared_entries()):
        h.update(arcname.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return base64.b64encode(h.digest()).decode()


def install_deps(python_version: str, architecture: str) -> Path:
    """Install the pinned layer dependencies for Lambda into the cache; return the folder."""
    requirements = layer_requirements()
    target = DEPS_CACHE / deps_key(requirements, python_version, architecture)
    if (target / ".complete").is_file():
        return target
    DEPS_CACHE.mkdir(parents=True, exist_ok=True)
    # One installer at a time (two synths at once: two environments deploying, a deploy beside the
    # stacks tests): a second one would replace the folder while the first is zipping from it.
    with (DEPS_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").is_file():
            return target
        return _install_deps(requirements, target, python_version, architecture)


def _install_deps(requirements: list[str], target: Path, python_version: str, architecture: str) -> Path:
    tmp = Path(tempfile.mkdtemp(dir=DEPS_CACHE, prefix=".install-"))
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
           "--platform", defaults.PIP_PLATFORMS[architecture], "--only-binary=:all:",
           "--python-version", python_version, "--implementation", "cp",
           "--target", str(tmp), "--no-compile", *requirements]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        detail = "\n".join(line for line in done.stderr.splitlines() if "is ignored" not in line)[-2000:]
        raise PackagingError(f"layer dependencies for Python {python_version}/{architecture} "
                             f"could not be installed:\n{detail}")
    (tmp / ".complete").write_text(" ".join(requirements) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def dependency_entries(deps: Path) -> list[tuple[str, Path]]:
    """The layer's entries of an installed dependencies folder (``install_deps``)."""
    entries = [(f"python/{p.relative_to(deps).as_posix()}", p) for p in _layer_dep_files(deps)
               if p.name != ".complete"]
    clash = [a for a, _ in entries if a.startswith(f"python/{LAYER_PACKAGE}/")]
    if clash:
        raise PackagingError(f"a layer dependency installs files under python/{LAYER_PACKAGE}/")
    return entries


def dependency_bytecode(deps: Path, python_version: str) -> list[tuple[str, Path]]:
    """The bytecode ``with_bytecode`` adds for the dependencies in ``deps``, compiled once and kept there.

    An installed folder never changes (``install_deps``: one per pinned set, replaced whole), so its
    bytecode is compiled with it, not again at every layer build: that compile was about three quarters
    of rebuilding the layer (botocore's thousands of modules) each time ``shared/`` changed. The
    layer's own package is compiled at every build. Empty when the build cannot write bytecode for
    ``python_version`` (``with_bytecode``)."""
    if python_version != _running():
        return []
    folder = deps / f"{_BYTECODE_PREFIX}{importlib.util.MAGIC_NUMBER.hex()}"
    if not (folder / ".complete").is_file():
        with (DEPS_CACHE / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (folder / ".complete").is_file():
                entries = dependency_entries(deps)
                tmp = Path(tempfile.mkdtemp(dir=deps, prefix=f"{_BYTECODE_PREFIX}tmp-"))
                for arcname, data in with_bytecode(entries, python_version)[len(entries):]:
                    (tmp / arcname).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / arcname).write_bytes(data)  # type: ignore[arg-type]
                (tmp / ".complete").write_text("")
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(tmp, folder)
    return [(p.relative_to(folder).as_posix(), p) for p in sorted(folder.rglob("*.pyc"))]


def layer_entries(python_version: str, architecture: str) -> list[tuple[str, Path | bytes]]:
    """Every entry of the layer zip: the dependencies and ``shared/thingpress``, each with its bytecode."""
    deps = install_deps(python_version, architecture)
    return [*dependency_entries(deps), *dependency_bytecode(deps, python_version),
            *with_bytecode(shared_entries(), python_version)]


def build_layer(python_version: str = "3.11", architecture: str = defaults.DEFAULT_ARCHITECTURE,
                out_dir: Path = ASSETS) -> Artifact:
    """The layer zip for a runtime's Python version and architecture (cached by inputs hash)."""
    if architecture not in defaults.PIP_PLATFORMS:
        raise PackagingError(f"unknown architecture {architecture!r}")
    source = inputs_hash(python_version, architecture)
    tag = hashlib.sha256(source.encode()).hexdigest()[:16]
    dest = out_dir / f"layer-py{python_version}-{architecture}-{tag}.zip"
    digest_file = dest.with_suffix(".sha256")
    if not dest.is_file() or not digest_file.is_file():
        for stale in out_dir.glob(f"layer-py{python_version}-{architecture}-*"):
            stale.unlink(missing_ok=True)
        write_zip(layer_entries(python_version, architecture), dest)
        # Hashing a 30 MB zip on every synth is wasted time: keep its digest beside it.
        digest_file.write_text(_hash_b64(dest))
    return Artifact(dest, digest_file.read_text().strip(), dest.stat().st_size, source)


def main() -> int:
    """``python -m stacks.packaging [python_version] [architecture]``: build and list every artifact."""
    version = sys.argv[1] if len(sys.argv) > 1 else "3.11"
    arch = sys.argv[2] if len(sys.argv) > 2 else defaults.DEFAULT_ARCHITECTURE
    for key in FUNCTION_KEYS:
        art = build_function(key)
        print(f"{art.path.relative_to(REPO)}  {art.size:>10} bytes  {art.sha256_b64}")
    art = build_layer(version, arch)
    print(f"{art.path.relative_to(REPO)}  {art.size:>10} bytes  {art.sha256_b64}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
