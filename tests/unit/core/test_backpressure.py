"""Backpressure and the fair share (``thingpress.backpressure``): pure, no AWS."""

from __future__ import annotations

from collections import deque

import pytest

from thingpress import backpressure
from thingpress.backpressure import Backpressure, InFlight, Window, pause_seconds, room_for, window_for
from thingpress.settings import DEFAULT_IOT_TPS, FunctionSettings, SettingsError

ALONE = InFlight(parsing=1, others_outstanding=0)


def summary(outstanding: int = 0, **extra: object) -> dict[str, object]:
    return {"manifest_id": "m", "outstanding": outstanding, **extra}


def test_the_default_window_is_one_minute_of_the_slowest_api():
    window = window_for(backpressure.DEFAULT_WINDOW_MINUTES, DEFAULT_IOT_TPS)
    # RegisterCertificateWithoutCA: 10/s is the slowest default: 1 * 60 * 10.
    assert window == Window(size=600, rate=10.0)
    assert window_for(2, {**DEFAULT_IOT_TPS, "AttachPolicy": 2.5}) == Window(size=300, rate=2.5)
    assert window_for(0.25, {"RegisterCertificateWithoutCA": 10}) == Window(size=150, rate=10)
    assert window_for(0, DEFAULT_IOT_TPS) is None
    assert window_for(0.001, {"RegisterCertificateWithoutCA": 1}) == Window(size=1, rate=1)


def test_the_setting_is_read_from_the_environment_and_refused_when_not_minutes():
    assert FunctionSettings.from_env({"THINGPRESS_AUDIT_TABLE": "t"}).import_window_minutes == 1.0
    env = {"THINGPRESS_AUDIT_TABLE": "t", "THINGPRESS_IMPORT_WINDOW_MINUTES": "0.5"}
    assert FunctionSettings.from_env(env).import_window_minutes == 0.5
    for bad in ("-1", "ten", "nan", "inf"):
        with pytest.raises(SettingsError, match="THINGPRESS_IMPORT_WINDOW_MINUTES must be a number of minutes"):
            FunctionSettings.from_env({**env, "THINGPRESS_IMPORT_WINDOW_MINUTES": bad})


def test_a_manifest_alone_may_fill_the_window_and_no_more():
    window = Window(size=100, rate=10)
    assert room_for(summary(0), window=window, in_flight=ALONE) == 100
    assert room_for(summary(60), window=window, in_flight=ALONE) == 40
    assert room_for(summary(100), window=window, in_flight=ALONE) == 0
    assert room_for(summary(130), window=window, in_flight=ALONE) == 0  # overshoot (a race): never negative
    assert room_for(summary(0), window=None, in_flight=ALONE) is None


def test_less_than_a_stride_free_is_no_room():
    window = Window(size=100, rate=10)  # stride 25 alone
    assert room_for(summary(75), window=window, in_flight=ALONE) == 25
    assert room_for(summary(76), window=window, in_flight=ALONE) == 0


def test_the_window_is_shared_by_the_manifests_being_parsed():
    window = Window(size=100, rate=10)
    three = InFlight(parsing=3, others_outstanding=0)
    assert room_for(summary(0), window=window, in_flight=three) == 33
    assert room_for(summary(25), window=window, in_flight=three) == 8   # share 33, stride 8
    assert room_for(summary(26), window=window, in_flight=three) == 0


def test_the_others_outstanding_caps_the_room_so_the_queue_never_exceeds_the_window():
    window = Window(size=100, rate=10)
    # A big manifest filled the window before this one arrived: this one waits.
    assert room_for(summary(0), window=window, in_flight=InFlight(parsing=2, others_outstanding=100)) == 0
    assert room_for(summary(0), window=window, in_flight=InFlight(parsing=2, others_outstanding=70)) == 30
    assert room_for(summary(0), window=window, in_flight=InFlight(parsing=2, others_outstanding=10)) == 50


def test_every_manifest_gets_at_least_the_floor_share():
    window = Window(size=100, rate=10)
    many = InFlight(parsing=1000, others_outstanding=0)
    assert room_for(summary(0), window=window, in_flight=many) == backpressure.MIN_SHARE
    tiny = Window(size=4, rate=1)
    assert room_for(summary(0), window=tiny, in_flight=many) == 4


def test_in_flight_counts_the_manifests_still_parsing_and_everyone_elses_outstanding():
    rows = [
        {"manifest_id": "m", "state": "PARSING", "outstanding": 40},            # this one: not an "other"
        {"manifest_id": "a", "state": "PARSING", "outstanding": 5},
        {"manifest_id": "b", "state": "RECEIVED", "outstanding": 0},
        {"manifest_id": "c", "state": "QUEUED", "parse_done": True, "outstanding": 7},  # parsed: no share
        {"manifest_id": "d", "state": "PARSING", "parse_done": True, "outstanding": -1},  # never negative
    ]
    assert InFlight.from_rows("m", rows) == InFlight(parsing=3, others_outstanding=12)
    # The index had not seen this manifest yet: it is counted all the same.
    assert InFlight.from_rows("new", rows[1:2]) == InFlight(parsing=2, others_outstanding=5)


def test_the_pause_lasts_until_a_stride_is_free_at_the_importers_rate():
    window = Window(size=100, rate=4)
    # full: a stride (25) must drain at 4/s: 7 s.
    assert pause_seconds(summary(100), window=window, in_flight=ALONE) == 7
    # 10 free of a stride of 25: 15 to go at 4/s -> 4 s (rounded up).
    assert pause_seconds(summary(90), window=window, in_flight=ALONE) == 4
    assert pause_seconds(summary(10**6), window=Window(size=10**6, rate=1), in_flight=ALONE) == 900  # SQS maximum
    assert pause_seconds(summary(10**6), window=Window(size=10**6, rate=1), in_flight=ALONE, longest=60) == 60
    assert pause_seconds(summary(0), window=window, in_flight=ALONE) == 1  # never 0: that is no pause


def test_the_other_manifests_are_read_once_per_invocation():
    calls = []

    def unfinished() -> list[dict[str, object]]:
        calls.append(1)
        return [{"manifest_id": "a", "state": "PARSING", "outstanding": 50}]

    pressure = Backpressure("m", Window(size=100, rate=10), unfinished)
    assert [pressure.room_for(summary(n)) for n in (0, 10, 20)] == [50, 40, 30]
    assert pressure.pause_seconds(summary(50)) == 2
    assert len(calls) == 1
    unlimited = Backpressure("m", None, unfinished)
    assert unlimited.room_for(summary(10**9)) is None and len(calls) == 1


def simulate(window: Window, sizes: dict[str, int], arrivals: dict[str, int], ticks: int) -> tuple[int, dict[str, int]]:
    """Providers (one refill per tick while room) and a FIFO importer at ``window.rate`` per tick.

    Returns the deepest queue seen and the tick each manifest finished.
    """
    queue: deque[str] = deque()
    outstanding = {m: 0 for m in sizes}
    left = dict(sizes)
    done: dict[str, int] = {}
    deepest = 0
    for tick in range(ticks):
        for mid in sizes:
            if tick < arrivals[mid] or not left[mid]:
                continue
            rows = [{"manifest_id": m, "state": "PARSING" if left[m] else "QUEUED", "outstanding": outstanding[m]}
                    for m in sizes if tick >= arrivals[m] and m not in done]
            room = room_for({"outstanding": outstanding[mid]}, window=window, in_flight=InFlight.from_rows(mid, rows))
            assert room is not None
            sent = min(room, left[mid])
            queue.extend([mid] * sent)
            outstanding[mid] += sent
            left[mid] -= sent
            deepest = max(deepest, len(queue))
        for _ in range(int(window.rate)):
            if queue:
                mid = queue.popleft()
                outstanding[mid] -= 1
                if not outstanding[mid] and not left[mid]:
                    done[mid] = tick
    return deepest, done


def test_a_small_manifest_behind_a_large_one_waits_about_one_window_and_the_queue_never_exceeds_it():
    window = Window(size=150, rate=10)
    deepest, done = simulate(window, {"big": 4000, "small": 40}, {"big": 0, "small": 5}, ticks=600)
    assert deepest <= window.size
    assert done["small"] - 5 <= window.size // int(window.rate) + 5   # ~ one window of work, not 4000 / 10
    assert done["big"] >= 400 - 1
    alone_deepest, alone = simulate(window, {"small": 40}, {"small": 0}, ticks=50)
    assert alone["small"] <= 4 and alone_deepest == 40
