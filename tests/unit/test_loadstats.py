"""The load probe's arithmetic (core.loadstats): what was lost, duplicated or altered, the
latency percentiles, and the figures per second."""

from __future__ import annotations

from collections import Counter

import pytest

from mlflowcheck.core.loadstats import (
    Figures,
    Loss,
    Sent,
    by_worker,
    compare_points,
    compare_spans,
    compare_values,
    figures,
    percentile,
)

# --- points read back against points sent ------------------------------------------------------

SENT = [(0, 0.5, 100), (1, 0.75, 101), (2, 0.25, 102)]


def test_points_read_back_as_sent_are_no_loss():
    loss = compare_points("acc", SENT, list(reversed(SENT)))
    assert (loss.lost, loss.duplicated, loss.altered, loss.examples) == (0, 0, 0, [])
    assert loss.total == 0


def test_a_point_not_read_back_is_lost_and_named_with_its_step_and_value():
    loss = compare_points("acc", SENT, SENT[:2])
    assert (loss.lost, loss.duplicated, loss.altered) == (1, 0, 0)
    assert loss.examples == ["acc step 2 (0.25) lost"]


def test_a_point_read_back_twice_is_one_duplicate():
    loss = compare_points("acc", SENT, [*SENT, SENT[1]])
    assert (loss.lost, loss.duplicated, loss.altered) == (0, 1, 0)
    assert loss.examples == ["acc step 1 stored 2 times"]


def test_a_point_with_another_value_at_the_same_step_and_time_is_altered_not_lost():
    loss = compare_points("acc", SENT, [SENT[0], (1, 0.5, 101), SENT[2]])
    assert (loss.lost, loss.duplicated, loss.altered) == (0, 0, 1)
    assert loss.examples == ["acc step 1: sent 0.75, read back 0.5"]


def test_a_point_nobody_sent_is_counted_with_the_duplicates():
    loss = compare_points("acc", SENT, [*SENT, (9, 1.0, 999)])
    assert (loss.lost, loss.duplicated, loss.altered) == (0, 1, 0)
    assert loss.examples == ["acc step 9: 1.0 read back, never sent"]


def test_a_point_sent_twice_and_stored_once_is_one_lost():
    # Two acknowledged requests with the same point: the store must keep both.
    loss = compare_points("acc", [SENT[0], SENT[0]], [SENT[0]])
    assert (loss.lost, loss.duplicated, loss.altered) == (1, 0, 0)
    assert loss.examples == ["acc step 0 (0.5) lost"]


def test_nothing_read_back_is_every_point_lost():
    loss = compare_points("acc", SENT, [])
    assert (loss.lost, loss.total) == (3, 3)
    assert loss.examples == ["acc step 0 (0.5) lost", "acc step 1 (0.75) lost", "acc step 2 (0.25) lost"]


# --- params and tags ---------------------------------------------------------------------------


def test_values_lost_or_changed_are_named_and_extra_ones_ignored():
    loss = compare_values("param", {"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "20", "z": "9"})
    assert (loss.lost, loss.duplicated, loss.altered) == (1, 0, 1)
    assert loss.examples == ["param 'b': sent '2', read back '20'", "param 'c' lost"]


def test_losses_add_up_and_keep_five_examples_at_most():
    total = Loss()
    for key in "abcd":
        total.add(Loss(lost=1, duplicated=2, altered=3, examples=[f"{key}1", f"{key}2"]))
    assert (total.lost, total.duplicated, total.altered, total.total) == (4, 8, 12, 24)
    assert total.examples == ["a1", "a2", "b1", "b2", "c1"]


# --- percentiles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "value"),
    [(0, 1.0), (10, 1.0), (11, 2.0), (50, 5.0), (90, 9.0), (95, 10.0), (99, 10.0), (100, 10.0)],
)
def test_the_percentile_is_the_nearest_rank_of_the_sorted_values(q, value):
    values = [float(v) for v in (7, 3, 10, 1, 5, 9, 2, 8, 4, 6)]
    assert percentile(values, q) == value


def test_the_percentile_of_no_values_is_zero():
    assert percentile([], 95) == 0.0


def test_percentile_leaves_its_input_in_order():
    values = [3.0, 1.0, 2.0]
    assert percentile(values, 50) == 2.0
    assert values == [3.0, 1.0, 2.0]


# --- the figures -------------------------------------------------------------------------------

START = 1000.0


def two_clients() -> list[Sent]:
    first = Sent(
        run_id="r1",
        metrics={"m": [(0, 0.5, 10), (1, 0.75, 11)]},
        requests=[
            ("runs/create", START - 0.5, START - 0.25, 0),  # before the clock: latency yes, per second no
            ("runs/log-batch", START, START + 0.125, 4),
            ("runs/log-metric", START + 0.25, START + 0.5, 1),
            ("runs/log-batch", START + 1.0, START + 1.25, 4),
            ("runs/log-batch", START + 2.5, START + 3.125, 4),  # ends in the last, partial second
        ],
        errors=[("runs/log-batch", "HTTP 503", START + 0.75)],
        error_messages=["first", "second"],
    )
    second = Sent(
        run_id="r2",
        metrics={"m": [(0, 0.25, 10)], "n": [(0, 1.0, 1)]},
        traces={"tr-1": ["call", "retrieve"], "tr-2": ["call", "retrieve"]},
        requests=[("runs/log-metric", START + 1.5, START + 1.625, 1)],
        errors=[("runs/log-metric", "HTTP 503", START + 1.875), ("runs/log-metric", "connection reset", START + 1.9)],
        error_messages=["third", "fourth", "fifth", "sixth"],
    )
    return [first, second]


def test_figures_count_clients_points_requests_and_errors_by_kind():
    made = figures(two_clients(), START, 3.0, Loss(lost=2))
    assert (made.clients, made.points, made.requests, made.seconds) == (2, 4, 6, 3.0)
    assert made.errors == Counter({"HTTP 503": 2, "connection reset": 1})
    assert made.loss == Loss(lost=2)
    assert made.messages == ["first", "second", "third", "fourth", "fifth"], "the first five of the errors' words"


def test_latency_is_per_endpoint_in_milliseconds_with_count_p50_p95_p99():
    made = figures(two_clients(), START, 3.0, Loss())
    assert made.latency_ms == {
        "runs/create": {"count": 1, "p50": 250.0, "p95": 250.0, "p99": 250.0},
        "runs/log-batch": {"count": 3, "p50": 250.0, "p95": 625.0, "p99": 625.0},
        "runs/log-metric": {"count": 2, "p50": 125.0, "p95": 250.0, "p99": 250.0},
    }
    assert list(made.latency_ms) == sorted(made.latency_ms)
    assert made.p95_ms() == 625.0, "the worst endpoint's p95"


def test_each_whole_second_is_one_row_and_the_last_partial_second_none():
    made = figures(two_clients(), START, 3.0, Loss())
    assert made.per_second == [
        {"second": 0, "points_per_s": 5, "requests_per_s": 2, "p50_ms": 125.0, "p95_ms": 250.0, "errors": 1},
        {"second": 1, "points_per_s": 5, "requests_per_s": 2, "p50_ms": 125.0, "p95_ms": 250.0, "errors": 2},
    ]


def test_an_error_before_the_clock_started_is_not_charted_at_a_negative_second():
    client = Sent(errors=[("runs/create", "connection refused", START - 2.5)])
    made = figures([client], START, 3.0, Loss())
    assert made.errors == Counter({"connection refused": 1})
    assert [row["second"] for row in made.per_second] == []


def test_rates_per_second_and_the_json_form_of_the_figures():
    made = figures(two_clients(), START, 3.0, Loss(lost=1, duplicated=2, altered=3))
    assert made.points_per_s == pytest.approx(4 / 3)
    assert made.requests_per_s == 2.0
    assert made.as_dict() == {
        "clients": 2,
        "seconds": 3.0,
        "points": 4,
        "requests": 6,
        "traces": 2,
        "spans": 4,
        "points_per_s": 1.3,
        "requests_per_s": 2.0,
        "latency_ms": made.latency_ms,
        "errors": {"HTTP 503": 2, "connection reset": 1},
        "lost": 1,
        "duplicated": 2,
        "altered": 3,
        "workers": {},
    }


def test_figures_of_no_time_and_no_clients_are_zeros_not_a_division_by_zero():
    made = figures([], START, 0.0, Loss())
    assert (made.points_per_s, made.requests_per_s, made.p95_ms()) == (0.0, 0.0, 0.0)
    assert (made.per_second, made.latency_ms, made.messages) == ([], {}, [])
    assert isinstance(made, Figures)


def test_a_clients_points_are_the_sum_over_its_metrics():
    assert Sent(metrics={"a": [(0, 1.0, 1)] * 3, "b": [(0, 1.0, 1)]}).points == 4
    assert Sent().points == 0


def test_a_traces_spans_are_lost_or_duplicated_by_name_and_a_missing_trace_loses_them_all():
    assert compare_spans("tr-1", ["call", "retrieve"], ["retrieve", "call"]).total == 0
    loss = compare_spans("tr-1", ["call", "retrieve"], ["call", "call"])
    assert (loss.lost, loss.duplicated) == (1, 1)
    assert loss.examples == ["trace tr-1: 2 spans sent, 2 read back"]
    gone = compare_spans("tr-2", ["call", "retrieve"], None)
    assert (gone.lost, gone.examples) == (2, ["trace tr-2 lost (2 spans)"])


# --- a dead worker's ledger, and the figures per worker ---------------------------------------


def test_a_dead_workers_points_are_checked_as_reported_and_the_unreported_rest_is_not_counted():
    reported = [(0, 0.5, 100), (1, 0.25, 101)]
    # After its last message the worker logged step 2: stored, never reported. Not a duplicate.
    stored = [*reported, (2, 0.125, 102)]
    assert compare_points("k", reported, stored, complete=False).total == 0
    assert compare_points("k", reported, stored).duplicated == 1  # a worker that said goodbye: it is
    # What it had reported must still be there exactly once.
    loss = compare_points("k", reported, [(0, 0.5, 100), (0, 0.5, 100)], complete=False)
    assert (loss.lost, loss.duplicated, loss.altered) == (1, 1, 0)


def test_a_user_from_the_masters_ledger_is_the_same_record_the_probe_compares():
    user = {
        "run_id": "r1", "worker": "host:42", "complete": False,
        "metrics": [["loss", 0, 0.5, 100], ["loss", 1, 0.25, 101], ["step_time", 0, 0.1, 100]],
        "params": [["param_0", "0.1"]], "tags": [["tag_0", "0.1"]], "artifacts": [["load/a.txt", "ab"]],
        "traces": [["tr-1", ["call", "retrieve"]]], "requests": [["runs/log-batch", 1.0, 1.1, 5]],
        "errors": [["runs/log-metric", "HTTP 500", 1.2]], "messages": ["boom"],
    }  # fmt: skip
    sent = Sent.from_ledger(user)
    assert sent.metrics == {"loss": [(0, 0.5, 100), (1, 0.25, 101)], "step_time": [(0, 0.1, 100)]}
    assert (sent.params, sent.tags, sent.artifacts) == ({"param_0": "0.1"}, {"tag_0": "0.1"}, {"load/a.txt": "ab"})
    assert sent.traces == {"tr-1": ["call", "retrieve"]}
    assert sent.requests == [("runs/log-batch", 1.0, 1.1, 5)]
    assert (sent.worker, sent.complete, sent.points, sent.error_messages) == ("host:42", False, 3, ["boom"])


def test_each_workers_share_sums_its_users_and_a_dead_one_is_marked_gone():
    a1 = Sent(run_id="1", worker="a:1", metrics={"loss": [(0, 1.0, 1)] * 2}, requests=[("x", 0, 1, 2)])
    a2 = Sent(run_id="2", worker="a:1", metrics={"loss": [(0, 1.0, 1)]})
    b = Sent(run_id="3", worker="b:2", complete=False, errors=[("x", "HTTP 500", 1.0)])
    rows = by_worker([a1, a2, b], [Loss(lost=1), Loss(duplicated=2), Loss(altered=3)])
    assert rows["a:1"] == {"users": 2, "points": 3, "requests": 1, "errors": 0, "lost": 1, "duplicated": 2,
                           "altered": 0, "gone": False}  # fmt: skip
    assert (rows["b:2"]["gone"], rows["b:2"]["errors"], rows["b:2"]["altered"]) == (True, 1, 3)
