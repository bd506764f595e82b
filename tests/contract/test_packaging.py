"""The packaging contract: the very zips the stack deploys import in a Lambda-like
layout, in a clean interpreter, with nothing else on sys.path.

Layout: the function zip unpacked as the task root, the layer zip unpacked under
``opt/`` (so ``opt/python`` holds thingpress and the pinned dependencies, boto3
included: the functions never rely on the runtime's boto3). The child is
``python -I`` whose sys.path is set to exactly [task root, opt/python] plus the
standard library. A missing module fails the test naming the module. Each handler's
cold-import time in this layout is printed; its goal (400 ms) is checked by ``make bench``
(tests/benchmarks/bench_importer_import.py), not here: a timed test measures the neighbours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stacks import packaging
from stacks.naming import FUNCTION_KEYS, handler_module

#: Lambda sets these; the handlers may read settings at import time.
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing", "AWS_LAMBDA_FUNCTION_NAME": "contract",
    "POWERTOOLS_METRICS_NAMESPACE": "thingpress", "POWERTOOLS_SERVICE_NAME": "contract",
    "THINGPRESS_AUDIT_TABLE": "audit", "THINGPRESS_IMPORT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/i",
    "THINGPRESS_MANIFEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/m",
}

CHILD = r"""
import json, sys, time
task, opt = sys.argv[1], sys.argv[2]
sys.path[:] = [task, opt] + [p for p in sys.path if "-packages" not in p and p not in ("", ".")]
before = set(sys.modules)
t0, c0 = time.perf_counter(), time.process_time()
try:
    module = __import__(sys.argv[3])
except ModuleNotFoundError as exc:
    print(json.dumps({"missing": exc.name, "error": str(exc)}))
    raise SystemExit(0)
ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
handler = getattr(module, "lambda_handler", None)
origins = {m: getattr(sys.modules[m], "__file__", None) or "" for m in ("thingpress", "boto3", "botocore")
           if m in sys.modules}
print(json.dumps({"ms": ms, "cpu_ms": cpu_ms, "callable": callable(handler), "origins": origins, "path": sys.path}))
"""




@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("lambda")
    layer = packaging.build_layer("3.11", "x86_64")
    opt = root / "opt"
    with zipfile.ZipFile(layer.path) as zf:
        zf.extractall(opt)
    tasks = {}
    for key in FUNCTION_KEYS:
        art = packaging.build_function(key)
        with zipfile.ZipFile(art.path) as zf:
            zf.extractall(root / "task" / key)
        tasks[key] = (root / "task" / key, art)
    print(f"\nlayer zip {layer.path.name}: {layer.size / 1e6:.1f} MB zipped, "
          f"{sum(f.stat().st_size for f in (opt / 'python').rglob('*') if f.is_file()) / 1e6:.1f} MB unzipped")
    for key, (_, art) in tasks.items():
        print(f"function zip {key}: {art.size} bytes")
    return {"opt": opt / "python", "tasks": tasks}


def run_child(task: Path, opt: Path, module: str) -> dict:
    # -B: Lambda's code folders are read-only, no bytecode is ever written there.
    done = subprocess.run([sys.executable, "-I", "-B", "-c", CHILD, str(task), str(opt), module], capture_output=True,
                          text=True, check=False, timeout=120, cwd=task,
                          env={"PATH": os.environ.get("PATH", ""), **LAMBDA_ENV})
    assert done.returncode == 0, f"{module} failed to import in the Lambda layout:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("key", FUNCTION_KEYS)
def test_handler_imports_from_the_deployed_zips_only(layout, key):
    task, art = layout["tasks"][key]
    opt = layout["opt"]
    # The function zip holds only its own code (and its bytecode).
    module = handler_module(key)
    assert sorted(zipfile.ZipFile(art.path).namelist()) == [
        f"__pycache__/{module}.{sys.implementation.cache_tag}.pyc", f"{module}.py"]
    first = run_child(task, opt, module)
    assert "missing" not in first, f"{module}: module {first['missing']!r} is not in the zips"
    assert first["callable"], f"{module}.lambda_handler is not callable"
    assert first["path"][:2] == [str(task), str(opt)]
    assert not [p for p in first["path"] if "-packages" in p]
    assert first["origins"]["thingpress"].startswith(str(opt))
    assert first["origins"]["boto3"].startswith(str(opt)), "boto3 must come from the layer"
    print(f"\ncold import {module}: {first['ms']:.0f} ms wall, {first['cpu_ms']:.0f} ms CPU")


def test_artifacts_are_reproducible(tmp_path):
    for key in FUNCTION_KEYS:
        a = packaging.build_function(key, tmp_path / "a")
        b = packaging.build_function(key, tmp_path / "b")
        assert a.path.read_bytes() == b.path.read_bytes() and a.sha256_b64 == b.sha256_b64
    layer = packaging.build_layer("3.11", "x86_64")
    again = packaging.build_layer("3.11", "x86_64", tmp_path / "layer")
    assert again.sha256_b64 == layer.sha256_b64 and again.source_hash == layer.source_hash
    with zipfile.ZipFile(again.path) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert not [n for n in names if n.startswith("python/bin/")]
    # The IAM evaluator (npm, AGPL) is a test tool, and the CLI (recorder, iam-check) is no Lambda code.
    assert not [n for n in names if "node_modules" in n or "cloud-copilot" in n or "thingpress_cli" in n]
    # Bytecode only as unchecked-hash pycs beside their sources (no timestamps inside).
    pycs = [n for n in names if n.endswith(".pyc")]
    assert pycs and all(f"/__pycache__/" in n and n.endswith(f".{sys.implementation.cache_tag}.pyc") for n in pycs)
    # each beside its source (the dependencies' come from the bytecode kept with their install, not its folder)
    assert all(f"{n.split('/__pycache__/')[0]}/{n.rsplit('/', 1)[1].split('.')[0]}.py" in names for n in pycs)
    with zipfile.ZipFile(again.path) as zf:
        assert int.from_bytes(zf.read("python/thingpress/__pycache__/__init__."
                                      f"{sys.implementation.cache_tag}.pyc")[4:8], "little") == 0b01
    assert "python/thingpress/__init__.py" in names and "python/boto3/__init__.py" in names


def test_layer_inputs_hash_tracks_runtime_and_architecture():
    base = packaging.inputs_hash("3.11", "x86_64")
    assert base == packaging.inputs_hash("3.11", "x86_64")
    assert base != packaging.inputs_hash("3.12", "x86_64") != packaging.inputs_hash("3.11", "arm64")


def test_layer_requirements_are_pinned():
    reqs = packaging.layer_requirements()
    assert reqs and all("==" in r for r in reqs)
    assert any(r.startswith("boto3==") for r in reqs), "boto3 is bundled in the layer"
