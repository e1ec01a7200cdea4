"""The load probe (--load CLIENTS): training jobs logging at once, then zero-loss read-back.

CLIENTS worker processes (processes, so the probe is not bound by one client's GIL) each
create a run in the suite's experiment and log, for --load-seconds, through MLflow's client
as training jobs do: metrics in batches (several keys a step), single metrics, params, tags,
and a small artifact now and then. Each records exactly what was acknowledged and when each
request started and ended. Afterwards every value is read back through the server and
compared (loadstats): nothing may be lost, duplicated or altered.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
import random
import time

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.loadstats import Figures, Loss, Sent, compare_points, compare_spans, compare_values, figures
from mlflowcheck.explain.load import error_kind, explain_errors
from mlflowcheck.probes import traces
from mlflowcheck.probes.tracking import history_points

BATCH_KEYS = ("loss", "accuracy", "learning_rate", "grad_norm", "throughput")


READY_DEADLINE = 120.0  # the workers' imports, on a busy machine


MAX_CONSECUTIVE_ERRORS = 20  # a worker stops hammering a server that keeps failing


TRACE_EVERY = 20  # steps between a worker's traced calls (on a server with the v3 trace API)


def worker_main(
    index: int, url: str, experiment_id: str, seconds: float, go, ready, results, counters, traced: bool = False
) -> None:
    """One training job: log for ``seconds`` once ``go`` is set; put what was sent on ``results``.
    With ``traced``, it is also an application whose calls are traced now and then."""
    import os

    # No client retries: the probe counts every failed request, and a retried write could hide a
    # duplicate; a dead server stops the workers at once instead of after minutes of backoff.
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    # A trace is exported before its call returns, so the read-back knows what the server was sent.
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    import mlflow
    from mlflow.entities import Metric

    from mlflowcheck.runtime.mlflow_compat import keep_server_error_bodies

    keep_server_error_bodies()
    client = mlflow.MlflowClient(tracking_uri=url)
    sent = Sent()
    rng = random.Random(index)

    def call(endpoint: str, action, points: int = 0) -> bool:
        start = time.time()
        try:
            action()
        except Exception as exc:  # recorded and counted, never raised: the probe reports them
            sent.errors.append((endpoint, error_kind(exc), time.time()))
            if len(sent.error_messages) < 5:
                sent.error_messages.append(str(getattr(exc, "message", exc))[:500])
            counters[2 * index + 1] += 1
            return False
        sent.requests.append((endpoint, start, time.time(), points))
        return True

    run_holder = {}
    if not call(
        "runs/create", lambda: run_holder.update(run=client.create_run(experiment_id, run_name=f"load-{index}"))
    ):
        results.put((index, sent))
        ready.put(index)
        return
    sent.run_id = run_holder["run"].info.run_id
    if traced:
        mlflow.set_tracking_uri(url)
        traced = call("experiments/get", lambda: mlflow.set_experiment(experiment_id=experiment_id))
    ready.put(index)
    go.wait(READY_DEADLINE)
    end = time.time() + seconds
    step = 0
    failures = 0
    while time.time() < end and failures < MAX_CONSECUTIVE_ERRORS:
        ts = int(time.time() * 1000)
        batch = [Metric(key, rng.random(), ts, step) for key in BATCH_KEYS]
        ok = call("runs/log-batch", lambda b=batch: client.log_batch(sent.run_id, metrics=b), len(batch))
        if ok:
            for m in batch:
                sent.metrics.setdefault(m.key, []).append((m.step, m.value, m.timestamp))
            counters[2 * index] += len(batch)
        value = rng.random()
        if call(
            "runs/log-metric",
            lambda v=value, t=ts, n=step: client.log_metric(sent.run_id, "step_time", v, timestamp=t, step=n),
            1,
        ):
            sent.metrics.setdefault("step_time", []).append((step, value, ts))
            counters[2 * index] += 1
        else:
            ok = False
        if step % 10 == 0:
            key, val = f"param_{step // 10}", f"{rng.random():.6f}"
            if call("runs/log-parameter", lambda k=key, v=val: client.log_param(sent.run_id, k, v)):
                sent.params[key] = val
            tag = f"tag_{step // 10}"
            if call("runs/set-tag", lambda k=tag, v=val: client.set_tag(sent.run_id, k, v)):
                sent.tags[tag] = val
        if step % 40 == 0:
            text = f"load worker {index}, step {step}, {rng.random()}\n"
            path = f"load/artifact-{step // 40}.txt"
            if call("artifacts/upload", lambda t=text, p=path: client.log_text(sent.run_id, t, p)):
                sent.artifacts[path] = hashlib.sha256(text.encode()).hexdigest()
        if traced and step % TRACE_EVERY == TRACE_EVERY // 2:
            holder = {}
            if call("traces (export)", lambda n=step, h=holder: h.update(trace=traced_call(index, n))):
                trace_id, names = holder["trace"]
                sent.traces[trace_id] = names
        failures = 0 if ok else failures + 1
        step += 1
    call("runs/update", lambda: client.set_terminated(sent.run_id))
    results.put((index, sent))


def traced_call(index: int, step: int) -> tuple[str, list[str]]:
    """A traced call of an application (two spans): its trace id and spans' names. The export's
    failures are not raised (MLflow logs them): the read-back finds them."""
    import mlflow

    name = f"load-{index}-call-{step}"

    @mlflow.trace(name=name, span_type="CHAIN")
    def answer(question: str) -> str:
        with mlflow.start_span(name="retrieve", span_type="RETRIEVER") as span:
            span.set_outputs({"documents": [question] * 4})
        return question

    answer(f"step {step}")
    return mlflow.get_last_active_trace_id(), [name, "retrieve"]


def traces_supported(suite) -> bool:
    """Whether the server is MLflow's with the v3 trace API the read-back asks by id."""
    found = suite.implementation
    return found is not None and found.is_mlflow and not traces.before_v3_traces(found)


def probe(suite, clients: int, seconds: float, progress=None) -> Figures:
    """Run the workers, then read every value back. Returns the figures (loss included)."""
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no state of this process's MLflow
    go, ready, results = ctx.Event(), ctx.Queue(), ctx.Queue()
    counters = ctx.Array("q", 2 * clients, lock=False)
    traced = traces_supported(suite)
    procs = [
        ctx.Process(
            target=worker_main,
            args=(i, suite.target.url, suite.experiment_id, seconds, go, ready, results, counters, traced),
            daemon=True,
        )
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    sent: dict[int, Sent] = {}
    try:
        deadline = time.monotonic() + READY_DEADLINE
        for _ in procs:
            ready.get(timeout=max(0.1, deadline - time.monotonic()))
        started = time.time()
        go.set()
        end = time.monotonic() + seconds + 60  # the last requests may wait on a slow server
        while len(sent) < clients and time.monotonic() < end:
            try:
                index, got = results.get(timeout=0.5)
                sent[index] = got
            except queue.Empty:
                pass
            if progress is not None:
                elapsed = min(seconds, time.time() - started)
                points = sum(counters[2 * i] for i in range(clients))
                errors = sum(counters[2 * i + 1] for i in range(clients))
                progress(f"load: {elapsed:4.1f}s of {seconds:g}s, {points:,} points, {errors} errors")
        elapsed = time.time() - started
    except queue.Empty:
        raise CheckFailed(
            f"The load workers did not start within {READY_DEADLINE:.0f}s (MLflow imports on a busy machine?).",
            "run again with fewer --load clients.",
        ) from None
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    if len(sent) < clients:
        raise CheckFailed(
            f"{clients - len(sent)} of {clients} load workers did not finish within {seconds + 60:.0f}s.",
            "the server stopped answering under load; look at its log.",
        )
    suite.load_sent = list(sent.values())
    loss = read_back_load(suite, suite.load_sent)
    return figures(suite.load_sent, started, min(elapsed, seconds), loss)


def read_back_load(suite, sent: list[Sent]) -> Loss:
    """Every acknowledged metric point, param, tag, artifact and traced span, read back through the server."""
    client = suite.client
    total = Loss()
    for s in sent:
        for trace_id, names in s.traces.items():
            total.add(compare_spans(trace_id, names, spans_of(client, trace_id)))
        if not s.run_id:
            continue
        for key, points in s.metrics.items():
            got = history_points(client, s.run_id, key)
            total.add(compare_points(f"run {s.run_id[:8]} {key}", points, got))
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
    result = probe(suite, opts.load_clients, opts.load_seconds, progress)
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
        raise CheckFailed(
            f"The server lost data under load: {result.loss.lost} lost, {result.loss.duplicated} duplicated, "
            f"{result.loss.altered} altered, of {result.points:,} points and the params, tags and artifacts sent "
            f"({'; '.join(result.loss.examples[:3])}). {summary}",
            "values acknowledged to a client must be stored exactly once: look at the server's log and at anything "
            "between the client and the server (a proxy that retries or answers for the server).",
        )
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


def summarize(result: Figures) -> str:
    latency = ", ".join(
        f"{endpoint} {v['p50']:.0f}/{v['p95']:.0f}/{v['p99']:.0f}" for endpoint, v in result.latency_ms.items()
    )
    errors = sum(result.errors.values())
    traced = f"{result.traces:,} traces ({result.spans:,} spans), " if result.traces else ""
    return (
        f"{result.clients} clients × {result.seconds:.0f}s: {result.points:,} points ({result.points_per_s:,.0f}/s), "
        f"{traced}"
        f"{result.requests:,} requests ({result.requests_per_s:,.0f}/s), {errors} errors, "
        f"lost {result.loss.lost}, duplicated {result.loss.duplicated}, altered {result.loss.altered}; "
        f"latency p50/p95/p99 ms: {latency}"
    )
