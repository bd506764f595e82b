"""Suite-wide fixtures: the vendor-samples setting and markers by folder."""

from __future__ import annotations

import gc
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from thingpress_cli.core import samples

REPO = Path(__file__).resolve().parent.parent
SAMPLES_SETTING = samples.SETTING

_MARK_BY_FOLDER = {
    "unit": "unit", "stacks": "stacks", "contract": "contract",
    "integration": "integration", "fault": "fault", "fuzz": "fuzz", "environments": "environments",
}
#: Folders whose tests use the local deployment, in the order they run (after everything else).
DEPLOYMENT_FOLDERS = ("integration", "fault", "environments")
#: ``make test`` runs pytest-xdist workers with ``--dist loadgroup``. Tests that share one thing
#: run on one worker, in order: the local deployment (its runner, kills and visibility timeouts
#: on its functions and queues), the preview environment (tests/environments: pr7 deployed beside
#: local, its preview job, then its destruction), the session's synthesis (tests/stacks:
#: synthesized once) and the built artifacts (tests/contract: the Lambda layout is unpacked once).
#: The two deployments' groups run at the same time on two workers: they mostly wait (on the
#: provider's timers while deploying, on the IoT budget while importing). A quota mode that one
#: group's test sets reaches the other's calls as an account's IoT quotas reach every preview in
#: it, and both pipelines retry what is throttled; injected faults and conflicts (chaos) are no
#: account's weather: chaos waits for the preview group (the ``emulator_to_itself`` fixture).
XDIST_GROUPS = {"integration": "deployment", "fault": "deployment", "environments": "preview",
                "stacks": "synth", "contract": "packaging"}
#: The group of the preview environment's tests.
PREVIEW_GROUP = "preview"


def _folder(item) -> str | None:
    parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
    return parts[0] if len(parts) > 1 else None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = _folder(item)
        if folder in _MARK_BY_FOLDER:
            item.add_marker(getattr(pytest.mark, _MARK_BY_FOLDER[folder]))
        if folder in XDIST_GROUPS:
            item.add_marker(pytest.mark.xdist_group(XDIST_GROUPS[folder]))
    items.sort(key=_xdist_order(items) if hasattr(config, "workerinput") else _serial_order)


def _waits_on_background(item) -> int:
    """1 for the tests that only wait for the answers of checks started in the background right
    after the session's synthesis (tests/stacks/stack_checks.py): they go last, the others run meanwhile."""
    return 1 if "external_checks" in getattr(item, "fixturenames", ()) else 0


def _serial_order(item) -> tuple[int, int]:
    """One process: deployment-free tests first (fast feedback), then the deployment's, in
    DEPLOYMENT_FOLDERS order (the preview scenario last: its concurrent deploy long finished)."""
    folder = _folder(item)
    return DEPLOYMENT_FOLDERS.index(folder) + 1 if folder in DEPLOYMENT_FOLDERS else 0, _waits_on_background(item)


#: The longest test that needs no deployment (in shards: one test per shard): its first shard starts
#: at once on the worker the deployment leaves free, the others go out before the rest.
LONGEST_FREE_TEST = "test_model_exactly_once.py::test_exactly_once_under_faults"


def _shard(item) -> int | None:
    """The shard of the longest free test that ``item`` is, else None."""
    if not item.nodeid.split("[")[0].endswith(LONGEST_FREE_TEST):
        return None
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("shard", 0) if callspec else 0


def _work_unit(item) -> str:
    """The xdist group, else the module: what the order sizes and ranks (``--dist loadgroup``
    sends a group to one worker as a whole, an ungrouped test on its own)."""
    return XDIST_GROUPS.get(_folder(item)) or item.nodeid.split("::")[0]


def _xdist_order(items):
    """Work units go out in collection order (``--no-loadscope-reorder``), one to each worker in
    turn, then more to a worker with two tests or fewer left; the longest chains first:

    * with the deployment's group (``make test``): it goes first, so its deploy starts at once
      on one worker, chaos at its end; the preview
      environment's group second, on another worker; the longest free test first on the next;
      then the smallest unit (a worker holding a long group takes one more unit at the start);
      then the rest;
    * without it (``make test-unit``): the synthesis group first (the provider bindings' import,
      then the checks it starts in the background), the longest free test on the other worker,
      then the rest.

    Of the rest, the longest free test's other shards and the other groups (the packaging
    contract) go before the single tests, so that no long unit is left for the end."""
    sizes = Counter(_work_unit(item) for item in items)
    deployment = "deployment" in sizes
    free = [unit for unit in sizes if unit not in ("deployment", PREVIEW_GROUP)
            and not unit.endswith(LONGEST_FREE_TEST.split("::")[0])]
    smallest = min(free, key=sizes.__getitem__, default=None) if deployment else None

    def key(item) -> tuple[int, ...]:
        folder = _folder(item)
        if folder in DEPLOYMENT_FOLDERS:  # local's group (chaos last: it waits for the preview's), then the preview's
            preview = XDIST_GROUPS[folder] == PREVIEW_GROUP
            last = not preview and _needs_emulator_to_itself(item)
            return 0, int(preview), int(last), DEPLOYMENT_FOLDERS.index(folder)
        unit = _work_unit(item)
        if unit == "synth" and not deployment:
            return 0, _waits_on_background(item)
        shard = _shard(item)
        if shard == 0:
            return 1, 0
        if unit == smallest:
            return 2, 0
        if shard is not None:
            return 3, shard
        return (3 if unit in XDIST_GROUPS.values() else 4), _waits_on_background(item)

    return key


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """What the collection imported (boto3's and moto's service models, cryptography, hypothesis)
    lives until the end: out of the garbage collector's sight (``gc.freeze``), so that each full
    collection during the run does not walk it again (about 0.2 s each, dozens per session)."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """The same after each test module (its module fixtures torn down): what the tests loaded on first use
    and keep (botocore's service models and moto's backends, the emulator's patches, the stacks' constructs)
    is frozen too. Unfrozen, those 100,000-200,000 objects made every full collection take about 0.1 s,
    about a hundred times per worker. Only what is alive between two modules is frozen (after a
    collection): nothing a test drops is kept."""
    try:
        return (yield)
    finally:
        if nextitem is None or nextitem.path != item.path:
            gc.collect()
            gc.freeze()


@pytest.fixture(scope="session")
def vendor_samples() -> Path:
    """The real vendor samples folder. In CI a missing folder is an error, never a skip."""
    path = samples.samples_dir()
    if path is None:
        message = f"vendor samples not found at {samples.configured_dir()} (set {SAMPLES_SETTING})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class ManualClock:
    """A monotonic clock that moves only when a test says so (``advance``): holds expire without sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def transaction_holds():
    """The process's DynamoDB transaction holds (``thingpress_cli.local.emulator.conflicts.HOLDS``, applied to
    in-process moto too), off, on a :class:`ManualClock` (``transaction_holds.clock.advance(s)``). A test
    turns them on with ``transaction_holds.configure({"hold_ms": 25})``; afterwards they are reset (off,
    real clock, nothing held, counts zero), so nothing leaks into the next test."""
    from thingpress_cli.local.emulator.conflicts import HOLDS

    HOLDS.reset(ManualClock())
    yield HOLDS
    HOLDS.reset()


@pytest.fixture
def index_lag():
    """The process's global secondary index lag (``thingpress_cli.local.emulator.index_lag.INDEX_LAG``, applied to
    in-process moto too), off, on a :class:`ManualClock` (``index_lag.clock.advance(s)``). A test turns it
    on with ``index_lag.configure({"lag_ms": 500})``; afterwards it is reset (off, real clock, nothing
    kept), so nothing leaks into the next test."""
    from thingpress_cli.local.emulator.index_lag import INDEX_LAG

    INDEX_LAG.reset(ManualClock())
    yield INDEX_LAG
    INDEX_LAG.reset()


@pytest.fixture
def detach_propagation():
    """The process's detach propagation (``thingpress_cli.local.emulator.iot_detach.PROPAGATION``, applied to in-process
    moto too), off, on a :class:`ManualClock` (``detach_propagation.clock.advance(s)``). A test turns it on with
    ``detach_propagation.configure(seconds)``; afterwards it is reset (off, real clock, nothing propagating)."""
    from thingpress_cli.local.emulator.iot_detach import PROPAGATION

    PROPAGATION.reset(ManualClock())
    yield PROPAGATION
    PROPAGATION.reset()


def _use_project_toolchain() -> None:
    """Synth in-process and terraform/cdktf subprocesses use the project's toolchain:
    Node 22 for jsii (no end-of-life banner) and the offline-mirror CLI config."""
    from thingpress_cli.core.toolchain import tool_env

    os.environ.update(tool_env())


_use_project_toolchain()


@pytest.fixture(scope="session")
def local_environment(request):
    """The deployment under test, read from terraform-outputs.json.

    ``THINGPRESS_ENV`` names it (default ``local``). For ``local`` (unless
    ``THINGPRESS_DEPLOYMENT=remote``: then nothing local is started) the session brings
    the local environment up itself (emulator, real ``cdktf deploy``, runner); when it also
    runs the preview-environment scenario (tests/environments) its environment deploys at
    the same time, in the same ``local up`` (the provider's waits are timers: two deploys cost
    about the time of one). Whichever worker comes first deploys; the other waits on
    ``ensure_up``'s lock and finds both up. If this session started the local cloud, it is
    taken down once every worker is done (``pytest_sessionfinish`` below;
    ``THINGPRESS_KEEP_LOCAL=1`` keeps it). Against any other suffix it only reads that
    deployment's outputs.
    """
    from thingpress_cli.core.deployment import Deployment, treated_as_remote

    from stacks.naming import DEFAULT_ENV

    suffix = os.environ.get("THINGPRESS_ENV", DEFAULT_ENV)
    if suffix == DEFAULT_ENV and not treated_as_remote():
        from deployment_checks import PREVIEW_ENV

        from thingpress_cli.commands import local as local_cmd
        from thingpress_cli.local.runner.schedules import SCHEDULE_SECONDS_SETTING

        # scheduled functions (the watchdog) run every few seconds, not every few minutes
        os.environ.setdefault(SCHEDULE_SECONDS_SETTING, "5")
        envs = [DEFAULT_ENV] + ([PREVIEW_ENV] if _runs_preview(request.session) else [])
        started = not local_cmd.is_up()
        if started:
            _STARTED_MARK.parent.mkdir(parents=True, exist_ok=True)
            _STARTED_MARK.write_text(_session_id(request.config))
        try:
            local_cmd.ensure_up(env=envs)
        except local_cmd.LocalUpError:
            if started:  # no teardown runs after a failed set-up: take down what this session started
                local_cmd.down()
            raise
    return Deployment.load(suffix=suffix)


#: Written by the worker that finds the local cloud down and brings it up: the session's id, so that
#: the session takes it down at its end (every worker done), and only that session.
_STARTED_MARK = REPO / "build" / "local" / "test-session-started"


def _session_id(config) -> str:
    """One id for the whole run: the controller's, handed to each pytest-xdist worker (``pytest_configure_node``)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return workerinput["thingpress_session"]
    if not hasattr(config, "_thingpress_session"):
        config._thingpress_session = uuid.uuid4().hex
    return config._thingpress_session


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist (controller): each worker gets the run's id."""
    node.workerinput["thingpress_session"] = _session_id(node.config)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """The controller (or the only process), after every worker's teardown: down the local cloud this run
    brought up (``local_environment``), unless ``THINGPRESS_KEEP_LOCAL``."""
    if hasattr(session.config, "workerinput"):
        return
    preview_done_mark(session.config).unlink(missing_ok=True)
    if not _STARTED_MARK.exists():
        return
    if _STARTED_MARK.read_text() != _session_id(session.config):
        return
    _STARTED_MARK.unlink()
    if not os.environ.get("THINGPRESS_KEEP_LOCAL"):
        from thingpress_cli.commands import local as local_cmd

        local_cmd.down()


#: the preview environment's scenario: the module whose teardown writes the mark. It is never its worker's
#: last item: pytest-xdist runs a worker's last item only when the whole run ends (it waits for the next
#: item, to know which fixtures to tear down), and chaos waits for this mark on another worker, so the mark
#: would come 1,200 s late; ``test_what_the_preview_leaves.py`` sorts after it in the group and is that item.
PREVIEW_SCENARIO = "test_two_environments.py"


def _runs_preview(session) -> bool:
    """Whether the run has the preview scenario, whose module writes the mark chaos waits for."""
    return any(item.path.name == PREVIEW_SCENARIO for item in session.items)


def preview_done_mark(config) -> Path:
    """Written when the preview environment's group is done (``_preview_done``)."""
    return REPO / "build" / "local" / f"preview-done-{_session_id(config)}"


@pytest.fixture
def preview_done(request) -> tuple[Path, bool]:
    """The mark ``_preview_done`` writes for this run, and whether the run has the scenario that writes it
    (``tests/environments/test_what_the_preview_leaves.py``)."""
    return preview_done_mark(request.config), _runs_preview(request.session)


@pytest.fixture(scope="module", autouse=True)
def _preview_done(request):
    """Once the preview environment's scenario is done (passed or not), the local deployment's tests that
    inject faults into the whole emulator go on (``emulator_to_itself``, waiting on another worker)."""
    yield
    if _folder(request.node) == "environments" and request.node.path.name == PREVIEW_SCENARIO:
        mark = preview_done_mark(request.config)
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text("done\n")


def _needs_emulator_to_itself(item) -> bool:
    return "emulator_to_itself" in getattr(item, "fixturenames", ())


#: How long chaos (``emulator_to_itself``) waits for the preview environment's group.
PREVIEW_WAIT_SECONDS = 1200


@pytest.fixture
def emulator_to_itself(request):
    """For a test that injects faults and conflicts into the whole emulator (chaos): it waits until the
    preview environment's group, running at the same time on another pytest-xdist worker, is done, so
    that nothing it injects reaches the preview's tests. Without that group in the run, or in one
    process (the preview's tests then run last), it does not wait."""
    config = request.config
    workerinput = getattr(config, "workerinput", None)
    # (a worker's --dist is "no"; pytest-xdist keeps "loadgroup" as an option of its own there)
    if (workerinput is None or workerinput.get("workercount", 1) < 2 or not config.getoption("loadgroup", False)
            or not _runs_preview(request.session)):
        return
    mark = preview_done_mark(config)
    deadline = time.monotonic() + PREVIEW_WAIT_SECONDS
    while not mark.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the preview environment's tests (tests/environments) did not finish in "
                        f"{PREVIEW_WAIT_SECONDS} s ({mark} not written)")
        time.sleep(1)


@pytest.fixture(autouse=True)
def _local_only(request):
    """``@pytest.mark.local_only(reason)``: the test needs the local cloud (``local_only_outcome``:
    against a remote deployment it skips with its reason; in a local run a missing prerequisite
    fails in CI, skips otherwise)."""
    marker = request.node.get_closest_marker("local_only")
    if marker is None:
        return
    from deployment_checks import local_only_outcome

    from thingpress_cli.core.deployment import treated_as_remote

    (reason,) = marker.args
    remote = treated_as_remote()
    target = "" if remote else request.getfixturevalue("local_environment").outputs.target
    runner_running = None
    if not remote and target == "local":
        from thingpress_cli.commands import local as local_cmd

        runner_running = local_cmd.status()["runner"]["running"]
    outcome = local_only_outcome(reason, remote=remote, target=target, runner_running=runner_running,
                                 ci=bool(os.environ.get("CI")))
    if outcome is not None:
        action, message = outcome
        (pytest.fail if action == "fail" else pytest.skip)(message)
