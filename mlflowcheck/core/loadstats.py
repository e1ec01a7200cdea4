"""The load probe's arithmetic (pure): what was lost, duplicated or altered; latency
percentiles per endpoint; figures per second; and what the errors mean."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from mlflowcheck.core.compare import history_difference

Point = tuple[int, float, int]  # (step, value, timestamp) of one metric point


@dataclass
class Sent:
    """What one load user sent and had acknowledged, and how each request went."""

    run_id: str = ""
    worker: str = ""  # the Locust worker (host:pid) the user ran in
    complete: bool = True  # False: its worker died, and the ledger holds what it had reported by then
    metrics: dict[str, list[Point]] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # path -> sha256
    traces: dict[str, list[str]] = field(default_factory=dict)  # trace id -> its spans' names, in order
    requests: list[tuple[str, float, float, int]] = field(default_factory=list)  # (endpoint, start, end, points)
    errors: list[tuple[str, str, float]] = field(default_factory=list)  # (endpoint, kind, when)
    error_messages: list[str] = field(default_factory=list)  # a few of the errors' texts, for the explanation

    @classmethod
    def from_ledger(cls, user: dict) -> Sent:
        """One user's record in the ledger the loadfile's master writes (lists, as JSON has them)."""
        sent = cls(run_id=user["run_id"], worker=user["worker"], complete=user["complete"])
        for key, step, value, ts in user["metrics"]:
            sent.metrics.setdefault(key, []).append((step, value, ts))
        sent.params, sent.tags = dict(user["params"]), dict(user["tags"])
        sent.artifacts = dict(user["artifacts"])
        sent.traces = {trace_id: names for trace_id, names in user["traces"]}
        sent.requests = [tuple(r) for r in user["requests"]]
        sent.errors = [tuple(e) for e in user["errors"]]
        sent.error_messages = list(user["messages"])
        return sent

    @property
    def points(self) -> int:
        return sum(len(v) for v in self.metrics.values())

    @property
    def spans(self) -> int:
        return sum(len(v) for v in self.traces.values())


@dataclass
class Loss:
    lost: int = 0
    duplicated: int = 0
    altered: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, other: Loss) -> None:
        self.lost += other.lost
        self.duplicated += other.duplicated
        self.altered += other.altered
        self.examples += other.examples[: max(0, 5 - len(self.examples))]

    @property
    def total(self) -> int:
        return self.lost + self.duplicated + self.altered


def compare_points(key: str, sent: list[Point], got: list[Point], complete: bool = True) -> Loss:
    """Points read back against points sent, by core.compare's history comparison: a point is
    lost (not there), duplicated (there twice, or there and never sent) or altered (there with
    another value). Not ``complete`` (the sender died before it reported all it had
    acknowledged): a point read back that was never reported is not counted; every reported one
    must still be there exactly once."""
    diff = history_difference([(s, t, v) for s, v, t in sent], [(s, t, v) for s, v, t in got], complete)
    loss = Loss(lost=len(diff.lost), duplicated=len(diff.duplicated) + len(diff.new), altered=len(diff.altered))
    for step, ts, value in sorted(set(diff.duplicated)):
        loss.examples.append(f"{key} step {step} stored {Counter(got)[(step, value, ts)]} times")
    for step, _, was, now in diff.altered:
        loss.examples.append(f"{key} step {step}: sent {was!r}, read back {now!r}")
    for step, _, value in diff.new:
        loss.examples.append(f"{key} step {step}: {value!r} read back, never sent")
    for step, _, value in diff.lost:
        loss.examples.append(f"{key} step {step} ({value!r}) lost")
    return loss


def compare_values(what: str, sent: dict[str, str], got: dict[str, str]) -> Loss:
    loss = Loss()
    for key, value in sent.items():
        if key not in got:
            loss.lost += 1
            loss.examples.append(f"{what} {key!r} lost")
        elif got[key] != value:
            loss.altered += 1
            loss.examples.append(f"{what} {key!r}: sent {value!r}, read back {got[key]!r}")
    return loss


def compare_spans(trace_id: str, sent: list[str], got: list[str] | None) -> Loss:
    """A trace's spans read back (None: the trace is not there) against the spans sent, by name:
    a span is lost (not there) or duplicated (there more often than sent)."""
    loss = Loss()
    if got is None:
        loss.lost = len(sent)
        loss.examples.append(f"trace {trace_id} lost ({len(sent)} spans)")
        return loss
    have, want = Counter(got), Counter(sent)
    loss.lost, loss.duplicated = sum((want - have).values()), sum((have - want).values())
    if loss.total:
        loss.examples.append(f"trace {trace_id}: {len(sent)} spans sent, {len(got)} read back")
    return loss


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Figures:
    seconds: float
    clients: int
    points: int
    requests: int
    errors: Counter
    latency_ms: dict[str, dict[str, float]]  # endpoint -> p50/p95/p99 (and count)
    per_second: list[dict[str, float]]  # second -> points_per_s, requests, p50_ms, p95_ms, errors
    loss: Loss
    messages: list[str] = field(default_factory=list)  # a few of the errors' own words
    traces: int = 0
    spans: int = 0
    workers: dict[str, dict] = field(default_factory=dict)  # host:pid -> users, points, requests, errors, loss, gone

    @property
    def points_per_s(self) -> float:
        return self.points / self.seconds if self.seconds else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p95_ms(self) -> float:
        return max((v["p95"] for v in self.latency_ms.values()), default=0.0)

    def as_dict(self) -> dict:
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 2),
            "points": self.points,
            "requests": self.requests,
            "traces": self.traces,
            "spans": self.spans,
            "points_per_s": round(self.points_per_s, 1),
            "requests_per_s": round(self.requests_per_s, 1),
            "latency_ms": self.latency_ms,
            "errors": dict(self.errors),
            "lost": self.loss.lost,
            "duplicated": self.loss.duplicated,
            "altered": self.loss.altered,
            "workers": self.workers,
        }


def by_worker(sent: list[Sent], losses: list[Loss]) -> dict[str, dict]:
    """Each worker's share: its users, points, requests, errors and what of its data was lost."""
    rows: dict[str, dict] = {}
    for s, loss in zip(sent, losses, strict=True):
        row = rows.setdefault(s.worker, {"users": 0, "points": 0, "requests": 0, "errors": 0, "lost": 0,
                                         "duplicated": 0, "altered": 0, "gone": False})  # fmt: skip
        row["users"] += 1
        row["points"] += s.points
        row["requests"] += len(s.requests)
        row["errors"] += len(s.errors)
        row["lost"], row["duplicated"] = row["lost"] + loss.lost, row["duplicated"] + loss.duplicated
        row["altered"] += loss.altered
        row["gone"] = row["gone"] or not s.complete
    return dict(sorted(rows.items()))


def figures(sent: list[Sent], started: float, seconds: float, loss: Loss) -> Figures:
    by_endpoint: dict[str, list[float]] = {}
    for s in sent:
        for endpoint, start, end, _ in s.requests:
            by_endpoint.setdefault(endpoint, []).append((end - start) * 1000)
    latency = {
        endpoint: {
            "count": len(values),
            "p50": round(percentile(values, 50), 1),
            "p95": round(percentile(values, 95), 1),
            "p99": round(percentile(values, 99), 1),
        }
        for endpoint, values in sorted(by_endpoint.items())
    }
    errors = Counter(kind for s in sent for _, kind, _ in s.errors)
    per_second: dict[int, dict] = {}
    for s in sent:
        for _, start, end, points in s.requests:
            if end < started:  # the runs' creation, before the clock started
                continue
            bucket = per_second.setdefault(int(end - started), {"latencies": [], "points": 0, "errors": 0})
            bucket["latencies"].append((end - start) * 1000)
            bucket["points"] += points
        for _, _, when in s.errors:
            if when < started:  # as for the requests: before the clock started
                continue
            per_second.setdefault(int(when - started), {"latencies": [], "points": 0.0, "errors": 0})["errors"] += 1
    rows = [
        {
            "second": second,
            "points_per_s": round(b["points"], 1),
            "requests_per_s": len(b["latencies"]),
            "p50_ms": round(percentile(b["latencies"], 50), 1),
            "p95_ms": round(percentile(b["latencies"], 95), 1),
            "errors": b["errors"],
        }
        for second, b in sorted(per_second.items())
        if second < max(1, int(seconds))  # whole seconds only: the last partial one would chart a false drop
    ]
    return Figures(
        seconds=seconds,
        clients=len(sent),
        points=sum(s.points for s in sent),
        requests=sum(len(s.requests) for s in sent),
        errors=errors,
        latency_ms=latency,
        per_second=rows,
        loss=loss,
        messages=[m for s in sent for m in s.error_messages][:5],
        traces=sum(len(s.traces) for s in sent),
        spans=sum(s.spans for s in sent),
    )
