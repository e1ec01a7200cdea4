"""Where a run's seconds go (core.timeline): phases on the wall clock, shown from the process's start."""

from __future__ import annotations

import time

import pytest

from mlflowcheck.core.timeline import Phase, Timeline, process_start


def test_the_timeline_starts_when_the_process_started_and_orders_phases_by_start():
    # This process started before the test ran, and not long before (pytest's start-up).
    assert time.time() - 600 < process_start() < time.time()
    timeline = Timeline(zero=100.0)
    timeline.add("check b", 103.0, 104.5)
    timeline.add("server starts", 100.5, 103.0)
    with timeline.phase("check c"):
        pass
    rows = timeline.relative()
    assert [r["phase"] for r in rows][:2] == ["server starts", "check b"]
    assert rows[0] == {"phase": "server starts", "start": 0.5, "end": 3.0}
    assert rows[-1]["phase"] == "check c"
    assert rows[-1]["end"] >= rows[-1]["start"]


def test_a_new_timeline_counts_from_the_process_start():
    before = process_start()
    assert abs(Timeline().zero - before) < 1.0


def test_a_phase_without_an_end_ends_now():
    timeline = Timeline(zero=0.0)
    start = time.time() - 2
    timeline.add("imports", start)
    (phase,) = timeline.phases
    assert phase.start == start
    assert time.time() - 1 < phase.end <= time.time()


def test_a_phase_that_raises_is_recorded_all_the_same_and_the_error_goes_on():
    timeline = Timeline(zero=0.0)
    with pytest.raises(ZeroDivisionError), timeline.phase("check model"):
        1 / 0  # noqa: B018
    assert [p.name for p in timeline.phases] == ["check model"]
    assert timeline.phases[0].end >= timeline.phases[0].start


def test_relative_times_are_rounded_to_the_millisecond():
    timeline = Timeline(zero=1000.0, phases=[Phase("a", 1000.12345, 1001.98765)])
    assert timeline.relative() == [{"phase": "a", "start": 0.123, "end": 1.988}]


def test_an_empty_timeline_has_no_rows():
    assert Timeline(zero=0.0).relative() == []
