"""The load probe (--load USERS): training jobs logging at once, then zero-loss read-back.

The jobs are Locust users (probes/loadfile.py), run by Locust on this machine (one process
per core) or, with --load-master, by workers on other machines. Each logs for --load-seconds
through MLflow's client as training jobs do: metrics in batches (several keys a step), single
metrics, params, tags, a small artifact now and then and traced calls, and records exactly
what was acknowledged and when each request started and ended. Afterwards every value is read
back through the server and compared (loadstats): nothing may be lost, duplicated or altered,
a dead worker's acknowledged values included.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.loadstats import (
    Figures,
    Loss,
    Sent,
    by_worker,
    compare_points,
    compare_spans,
    compare_values,
    figures,
)
from mlflowcheck.explain.load import explain_errors
from mlflowcheck.probes import traces
from mlflowcheck.probes.tracking import history_points
from mlflowcheck.runtime import loadrun
from mlflowcheck.runtime.mlflow_compat import HISTORY_BULK_RUNS, metric_histories

SETUP = ("runs/create", "experiments/get")  # each user's start, before its clock


def plan(suite) -> loadrun.Plan:
    opts = suite.options
    return loadrun.Plan(
        url=suite.target.url,
        experiment_id=suite.experiment_id,
        users=opts.load_clients,
        seconds=opts.load_seconds,
        traced=traces.has_v3_traces(suite.implementation),
        users_per_second=opts.load_users_per_second,
        processes=loadrun.local_processes(opts.load_clients),
        master=opts.load_master,
        master_bind_host=opts.master_bind_host,
        master_bind_port=opts.master_bind_port,
        expect_workers=opts.expect_workers,
        expect_workers_max_wait=opts.expect_workers_max_wait,
        csv_prefix=opts.load_csv,
        html=opts.load_html,
        workdir=Path(suite.tmp),
    )


def probe(suite, progress=None) -> Figures:
    """Run the users, then read every value back. Returns the figures (loss included)."""
    the_plan = plan(suite)
    ledger = loadrun.run(the_plan, progress)
    sent = [Sent.from_ledger(user) for user in ledger["users"]]
    suite.load_sent = sent
    timed = [r for s in sent for r in s.requests if r[0] not in SETUP] or [r for s in sent for r in s.requests]
    started = min((r[1] for r in timed), default=0.0)
    elapsed = min(max((r[2] for r in timed), default=0.0) - started, the_plan.ramp + the_plan.seconds)
    held = histories(suite.client, sent)
    losses = [read_back_user(suite, s, held) for s in sent]
    total = Loss()
    for loss in losses:
        total.add(loss)
    result = figures(sent, started, elapsed, total)
    result.workers = by_worker(sent, losses)
    return result


def histories(client, sent: list[Sent]) -> dict[tuple[str, str], list]:
    """The users' metric histories as the server has them, (run id, key) -> points: as the
    fingerprint reads them, a request per key and 100 runs (mlflow_compat.metric_histories); what
    that does not give (no bulk endpoint, a history longer than it returns) is read run by run."""
    by_key: dict[str, list[str]] = {}
    for s in sent:
        for key in s.metrics if s.run_id else ():
            by_key.setdefault(key, []).append(s.run_id)
    found: dict[tuple[str, str], list] = {}
    for key, ids in by_key.items():
        for i in range(0, len(ids), HISTORY_BULK_RUNS):
            got = metric_histories(client, ids[i : i + HISTORY_BULK_RUNS], key)
            if got is None:
                return found
            found.update({(run_id, key): [(st, v, ts) for st, ts, v in points] for run_id, points in got.items()})
    return found


def read_back_user(suite, s: Sent, held: dict | None = None) -> Loss:
    """Every metric point, param, tag, artifact and traced span one user had acknowledged, read back
    through the server (its histories from ``held`` where they were read in bulk)."""
    client = suite.client
    total = Loss()
    for trace_id, names in s.traces.items():
        total.add(compare_spans(trace_id, names, spans_of(client, trace_id)))
    if not s.run_id:
        return total
    for key, points in s.metrics.items():
        got = (held or {}).get((s.run_id, key))
        if got is None:
            got = history_points(client, s.run_id, key)
        total.add(compare_points(f"run {s.run_id[:8]} {key}", points, got, complete=s.complete))
    data = client.get_run(s.run_id).data
    total.add(compare_values("param", s.params, data.params))
    total.add(compare_values("tag", s.tags, data.tags))
    if s.artifacts:
        dst = suite.tmp / f"load-{s.run_id}"
        client.download_artifacts(s.run_id, "load", dst_path=str(dst))
        got = {}
        for path in s.artifacts:
            file = dst / path
            got[path] = hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else ""
        total.add(compare_values("artifact", s.artifacts, {k: v for k, v in got.items() if v}))
    return total


def spans_of(client, trace_id: str) -> list[str] | None:
    """The names of a trace's spans as the server has them; None when it does not have the trace."""
    from mlflow.exceptions import MlflowException

    try:
        return [span.name for span in client.get_trace(trace_id).data.spans]
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not fully exported" in str(exc):
            return None
        raise


def check(suite, progress=None) -> None:
    """The load check: run the probe, log its figures to the suite's run, judge them."""
    from mlflow.entities import Metric

    opts = suite.options
    result = probe(suite, progress)
    suite.load = result
    now = int(time.time() * 1000)
    rows = [
        Metric(f"load.{name}", float(row[name]), now + row["second"], row["second"])
        for row in result.per_second
        for name in ("points_per_s", "requests_per_s", "p50_ms", "p95_ms", "errors")
    ]
    for i in range(0, len(rows), 1000):  # log_batch takes at most 1000 metrics
        suite.client.log_batch(suite.run_id, metrics=rows[i : i + 1000])
    summary = summarize(result)
    if result.loss.total:
        per_worker = ""
        if len(result.workers) > 1:
            shares = [f"{name}: {w['lost']} lost, {w['duplicated']} duplicated, {w['altered']} altered"
                      for name, w in result.workers.items()]  # fmt: skip
            per_worker = f" By worker: {'; '.join(shares)}."
        raise CheckFailed(
            f"The server lost data under load: {result.loss.lost} lost, {result.loss.duplicated} duplicated, "
            f"{result.loss.altered} altered, of {result.points:,} points and the params, tags and artifacts sent "
            f"({'; '.join(result.loss.examples[:3])}).{per_worker} {summary}",
            "values acknowledged to a client must be stored exactly once: look at the server's log and at anything "
            "between the client and the server (a proxy that retries or answers for the server).",
        )
    gone = [name for name, w in result.workers.items() if w["gone"]]
    if gone:
        held = sum(result.workers[name]["points"] for name in gone)
        raise CheckFailed(
            f"Load worker {', '.join(gone)} stopped answering its master during the run (killed, out of memory, or "
            f"its machine lost); the {held:,} points and the values it had reported before were read back: none "
            f"lost, duplicated or altered. {summary}",
            "the load asked for did not run to its end: look at that worker's machine (`dmesg` for the OOM killer, "
            "the pod's events), then run again.",
        )
    missing = [f"{flag} {path}" for flag, path in reports(opts) if not Path(path).exists()]
    if missing:
        tip = "check that the folder exists and can be written; Locust's output is in the run's log."
        raise CheckFailed(f"Locust did not write {', '.join(missing)}. {summary}", tip)
    if result.errors:
        kinds = ", ".join(f"{n} {kind}" for kind, n in result.errors.most_common())
        said = f" The server said: {result.messages[0]}" if result.messages else ""
        raise CheckFailed(
            f"{sum(result.errors.values())} of {result.requests + sum(result.errors.values())} requests failed "
            f"under load ({kinds}).{said} {summary}",
            explain_errors(result.errors, result.messages),
        )
    if opts.load_p95_ms is not None and result.p95_ms() > opts.load_p95_ms:
        slowest = max(result.latency_ms.items(), key=lambda kv: kv[1]["p95"])
        raise CheckFailed(
            f"p95 latency {slowest[1]['p95']:.0f} ms ({slowest[0]}) exceeds --load-p95-ms {opts.load_p95_ms:g}. "
            f"{summary}",
            "the server is slower than required under this load: more workers (`mlflow server --workers`), a faster "
            "database, or fewer clients.",
        )
    suite.note("load", summary)


def reports(opts) -> list[tuple[str, str]]:
    """Locust's own reports the user asked for: (option, the file Locust writes)."""
    found = []
    if opts.load_csv:
        found.append(("--load-csv", f"{opts.load_csv}_stats.csv"))
    if opts.load_html:
        found.append(("--load-html", opts.load_html))
    return found


def summarize(result: Figures) -> str:
    latency = ", ".join(
        f"{endpoint} {v['p50']:.0f}/{v['p95']:.0f}/{v['p99']:.0f}" for endpoint, v in result.latency_ms.items()
    )
    errors = sum(result.errors.values())
    traced = f"{result.traces:,} traces ({result.spans:,} spans), " if result.traces else ""
    workers = f" on {len(result.workers)} workers" if len(result.workers) > 1 else ""
    return (
        f"{result.clients} users{workers} × {result.seconds:.0f}s: "
        f"{result.points:,} points ({result.points_per_s:,.0f}/s), "
        f"{traced}"
        f"{result.requests:,} requests ({result.requests_per_s:,.0f}/s), {errors} errors, "
        f"lost {result.loss.lost}, duplicated {result.loss.duplicated}, altered {result.loss.altered}; "
        f"latency p50/p95/p99 ms: {latency}"
    )
