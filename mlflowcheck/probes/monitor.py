"""The monitoring probe's cycle (--probe, --serve-probe): one short write and read-back through
the server, within a deadline, and always a cleanup of what it wrote.

Each step writes through MLflow's client, reads back through the server and compares; a step
that fails does not stop the steps that do not need it (a broken artifact store leaves the
tracking steps green, so the alert names the part that broke). Requests are not retried and
each gets the time left: a dead or hung server is a verdict within the deadline, never
MLflow's minutes of retries. What an interrupted cycle left (its run, its registered model,
its traces), the next cycle deletes, by the probe's tag: the footprint stays bounded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from mlflowcheck.core.errors import CheckFailed, Unsupported
from mlflowcheck.core.monitoring import PROBE_CHECKS, PROBE_MODEL_PREFIX, PROBE_TAG, Cycle, Step
from mlflowcheck.core.observations import Implementation
from mlflowcheck.core.target import Target
from mlflowcheck.explain.deployment import implementation
from mlflowcheck.explain.errors import explain
from mlflowcheck.explain.support import answer_of
from mlflowcheck.net.http import http
from mlflowcheck.net.liveness import mlflow_version
from mlflowcheck.probes.cleanup import delete_files, delete_run
from mlflowcheck.probes.traces import has_v3_traces
from mlflowcheck.runtime import mlflow_compat

#: Of the deadline, what is kept for the cleanup (deleting takes a few requests).
CLEANUP_SHARE, CLEANUP_MAX = 0.25, 5.0
#: What an interrupted cycle left is deleted once it is this old (a running cycle's is younger).
LEFTOVER_AGE = 300.0
TEXT = "mlflowcheck probe · 探针 {nonce}\n"
QUESTION = {"question": "探针"}


def configure() -> None:
    """This process's MLflow client, for probing: no retries (a failure is the verdict), traces
    exported before the call returns, no telemetry."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    mlflow_compat.configure_client()
    # "Waiting up to N seconds for model version to finish creation", every cycle: not news.
    logging.getLogger("mlflow.store.model_registry.abstract_store").setLevel(logging.WARNING)


class Cycler:
    """One cycle's steps, their clock and their budget."""

    def __init__(self, target: Target, label: str, timeout: float):
        self.target = target
        self.cycle = Cycle(target=label, started=time.time())
        self.start = time.monotonic()
        self.deadline = self.start + timeout
        self.reserve = min(CLEANUP_MAX, timeout * CLEANUP_SHARE)
        self.created: dict[str, str] = {}  # what to delete: run, model, trace; the experiment's id
        self.found: Implementation | None = None  # which server answers (the server step)

    def left(self, for_cleanup: bool = False) -> float:
        return self.deadline - time.monotonic() - (0 if for_cleanup else self.reserve)

    def step(self, name: str, action: Callable[[], str | None], needs: tuple[str, ...] = ()) -> None:
        """Run one step: ``action`` returns a note (success), None (not supported here) or raises."""
        started = time.monotonic()
        failed_before = [n for n in needs if self.status(n) is not True]
        if failed_before:
            self.record(Step(name, False, 0.0, f"not run: the {failed_before[0]} step did not pass"))
            return
        left = self.left(for_cleanup=name == "cleanup")
        if left < 0.5:
            self.record(Step(name, False, 0.0, f"not run: the cycle's deadline was reached ({self.elapsed():.1f}s)"))
            return
        # MLflow's client reads its request timeout (whole seconds) at every request.
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, int(left)))
        mark = mlflow_compat.refusal_mark()
        try:
            note = action()
        except Exception as exc:  # every failure is this step's verdict, with its cause
            problem = explain(exc, mlflow_compat.last_refusal(mark))
            # Another product that speaks MLflow's API (FastTrackML) may lack a part of it: missing,
            # not broken. On MLflow's own server a missing route is a fault (a proxy, a plugin).
            missing = isinstance(problem, Unsupported) and self.found is not None and not self.found.is_mlflow
            self.record(
                Step(name, None if missing else False, time.monotonic() - started, problem.message, problem.tip or "")
            )
            return
        self.record(Step(name, None if note is None else True, time.monotonic() - started, note or ""))

    def record(self, step: Step) -> None:
        self.cycle.steps.append(step)

    def status(self, name: str) -> bool | None:
        return next((s.ok for s in self.cycle.steps if s.name == name), False)

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def cycle(target: Target, label: str, experiment: str, timeout: float) -> Cycle:
    """One cycle against ``target`` with this process's MLflow credentials (``configure`` first)."""
    import mlflow
    from mlflow import MlflowClient

    # The trace's exporter sends to the process's tracking URI, not to the client's: without
    # this, MLflow 3's default (a SQLite file in the current directory) would get the spans.
    mlflow.set_tracking_uri(target.url)
    c = Cycler(target, label, timeout)
    client = MlflowClient(target.url)
    nonce = uuid.uuid4().hex[:12]
    requests_before = mlflow_compat.refusal_mark()
    c.step("server", lambda: server(c))
    if c.status("server"):
        c.step("experiment", lambda: probe_experiment(c, client, experiment))
        c.step("run", lambda: run(c, client, nonce), needs=("experiment",))
        c.step("param", lambda: param(c, client, nonce), needs=("run",))
        c.step("metric", lambda: metric(c, client), needs=("run",))
        c.step("artifact", lambda: artifact(c, client, nonce), needs=("run",))
        c.step("trace", lambda: trace(c, client, nonce), needs=("experiment",))
        c.step("registry", lambda: registry(c, client, nonce), needs=("run",))
    else:  # nothing answers: every check failed, and says why in one place
        for name in list(PROBE_CHECKS)[1:-1]:
            c.record(Step(name, False, 0.0, "not run: the server did not answer"))
    c.step("cleanup", lambda: cleanup(c, client))
    c.cycle.seconds = round(c.elapsed(), 3)
    c.cycle.requests += mlflow_compat.refusal_mark() - requests_before
    return c.cycle


def server(c: Cycler) -> str:
    try:
        resp = http("GET", f"{c.target.url}/version", timeout=(min(3.0, c.left()), c.left()), deadline=c.left())
    except requests.RequestException as exc:
        raise CheckFailed(
            f"Nothing answers at {c.target.url}: {type(exc).__name__}: {str(exc)[:200]}",
            "is the server running, and reachable from the probe's host?",
        ) from None
    finally:
        c.cycle.requests += 1
    version = mlflow_version(resp)
    if not version:
        raise CheckFailed(
            f"GET {c.target.url}/version answered HTTP {resp.status_code}, not an MLflow version: {resp.text[:120]!r}",
            "is this the tracking server's address (and not a proxy's error page or a sign-in page)?",
        )
    found = c.found = implementation(version, answer_of(resp), None, None)
    c.cycle.version, c.cycle.product = version, found.product
    return f"{found.product} {version}"


def probe_experiment(c: Cycler, client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        found = client.get_experiment(client.create_experiment(name, tags={PROBE_TAG: "experiment"}))
        note = f"created experiment {name!r} ({found.experiment_id})"
    else:
        note = f"experiment {name!r} ({found.experiment_id})"
    if found.lifecycle_stage != "active":
        raise CheckFailed(
            f"The probe's experiment {name!r} ({found.experiment_id}) is deleted.",
            f"restore it (`mlflow experiments restore --experiment-id {found.experiment_id}`) or name another "
            "with --probe-experiment.",
        )
    c.created["experiment_id"] = found.experiment_id
    c.created["own_experiment"] = "yes" if found.tags.get(PROBE_TAG) else ""
    return note


def run(c: Cycler, client, nonce: str) -> str:
    name = f"probe-{nonce}"
    created = client.create_run(c.created["experiment_id"], run_name=name, tags={PROBE_TAG: "run"})
    c.created["run"] = created.info.run_id
    got = client.get_run(created.info.run_id)
    if got.info.run_name != name or got.info.status != "RUNNING":
        raise CheckFailed(
            f"Run {created.info.run_id} read back as {got.info.run_name!r}, {got.info.status}; "
            f"written {name!r}, RUNNING.",
            "the tracking store does not keep what it acknowledged; look at the server's database.",
        )
    return created.info.run_id


def param(c: Cycler, client, nonce: str) -> str:
    client.log_param(c.created["run"], "probe", nonce)
    got = client.get_run(c.created["run"]).data.params.get("probe")
    if got != nonce:
        raise CheckFailed(f"Param 'probe' read back as {got!r}, written {nonce!r}.", "look at the server's database.")
    return "1 param"


def metric(c: Cycler, client) -> str:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    written = [Metric("probe_loss", round(1.0 / (step + 1), 6), now + step, step) for step in range(5)]
    client.log_batch(c.created["run"], metrics=written)
    got = client.get_metric_history(c.created["run"], "probe_loss")
    as_written = sorted((m.step, m.value, m.timestamp) for m in written)
    as_read = sorted((m.step, m.value, m.timestamp) for m in got)
    if as_read != as_written:
        raise CheckFailed(
            f"Metric 'probe_loss' read back as {as_read}, written {as_written}.",
            "the tracking store lost or altered points; look at the server's database.",
        )
    return "5 points"


def artifact(c: Cycler, client, nonce: str) -> str:
    text = TEXT.format(nonce=nonce)
    client.log_text(c.created["run"], text, "probe.txt")
    with tempfile.TemporaryDirectory(prefix="mlflowcheck-probe-") as tmp:
        path = client.download_artifacts(c.created["run"], "probe.txt", tmp)
        got = Path(path).read_bytes()
    if got != text.encode():
        raise CheckFailed(
            f"probe.txt downloaded as {len(got)} bytes that differ from the {len(text.encode())} uploaded.",
            "the artifact store altered the file; look at the server's artifact root.",
        )
    return f"{len(got)} bytes"


def trace(c: Cycler, client, nonce: str) -> str | None:
    if not has_v3_traces(c.found):
        return None  # no v3 trace API: the trace is not part of this server's probe
    with mlflow_compat.recording_refusals() as refusals:
        span = client.start_trace("mlflowcheck-probe", inputs=QUESTION, experiment_id=c.created["experiment_id"])
        c.created["trace"] = span.trace_id
        client.end_trace(span.trace_id, outputs={"answer": nonce})
    try:
        got = client.get_trace(span.trace_id)
    except Exception as exc:
        if refusals:  # the export swallowed its failure; what the server said is the cause
            raise CheckFailed(
                f"The trace {span.trace_id} was not stored: {refusals[0].request} answered HTTP {refusals[0].status}.",
                "run the full suite (without --probe) for the trace check's diagnosis.",
            ) from exc
        raise
    c.created["trace_files"] = (got.info.tags or {}).get("mlflow.artifactLocation", "") if got is not None else ""
    spans = got.data.spans if got is not None else []
    if len(spans) != 1 or spans[0].inputs != QUESTION or spans[0].outputs != {"answer": nonce}:
        raise CheckFailed(
            f"The trace {span.trace_id} read back with {len(spans)} spans, or with other inputs and outputs.",
            "the server lost or altered span data; run the full suite for the trace check's diagnosis.",
        )
    return f"1 span ({span.trace_id})"


def registry(c: Cycler, client, nonce: str) -> str:
    name = f"{PROBE_MODEL_PREFIX}{nonce}"
    client.create_registered_model(name, tags={PROBE_TAG: "model"})
    c.created["model"] = name
    run = client.get_run(c.created["run"])
    version = client.create_model_version(
        name, f"{run.info.artifact_uri}/probe", run_id=run.info.run_id, await_creation_for=max(1, int(c.left()))
    )
    got = client.get_model_version(name, version.version)
    if got.run_id != run.info.run_id or got.source != version.source:
        raise CheckFailed(
            f"Model version {name} {version.version} read back with run {got.run_id}, source {got.source!r}.",
            "the registry does not keep what it acknowledged; look at the server's database.",
        )
    return f"{name} version {version.version}"


def cleanup(c: Cycler, client) -> str:
    """Delete what this cycle created, then what earlier, interrupted cycles left (by the tag)."""
    deleted = []
    problems: list[Exception] = []
    with collecting(problems):
        if "trace" in c.created:
            delete_files(c.created.get("trace_files"))  # a traces.json copy, where the server wrote one
            client.delete_traces(c.created["experiment_id"], trace_ids=[c.created["trace"]])
            deleted.append("trace")
    with collecting(problems):
        if "model" in c.created:
            client.delete_registered_model(c.created["model"])
            deleted.append("registered model")
    with collecting(problems):
        if "run" in c.created:
            delete_run(client, c.created["run"])  # its artifacts, then the run (soft-deleted)
            deleted.append("run and its artifact")
    if problems:
        raise problems[0]
    swept = leftovers(c, client) if "experiment_id" in c.created else 0
    note = f"deleted {', '.join(deleted) or 'nothing'}"
    return note + (f"; and {swept} left by earlier cycles" if swept else "")


@contextlib.contextmanager
def collecting(problems: list[Exception]) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # one failed delete must not keep the others from running
        problems.append(exc)


def leftovers(c: Cycler, client) -> int:
    """What interrupted cycles left, older than LEFTOVER_AGE: runs and models carrying the probe's
    tag, and traces in the probe's own experiment (one it created, by its tag)."""
    cutoff = int((time.time() - LEFTOVER_AGE) * 1000)
    experiment_id = c.created["experiment_id"]
    swept = 0
    old_runs = client.search_runs(
        [experiment_id], f"tags.`{PROBE_TAG}` = 'run' and attributes.start_time < {cutoff}", max_results=50
    )
    for old in old_runs:
        delete_run(client, old.info.run_id)
        swept += 1
    for model in client.search_registered_models(f"name LIKE '{PROBE_MODEL_PREFIX}%'", max_results=50):
        if model.tags.get(PROBE_TAG) and model.creation_timestamp < cutoff:
            client.delete_registered_model(model.name)
            swept += 1
    if c.created.get("own_experiment") and "trace" in c.created:
        old_traces = client.search_traces(
            locations=[experiment_id], filter_string=f"trace.timestamp_ms < {cutoff}", max_results=50
        )
        for trace in old_traces:
            delete_files(trace.info.tags.get("mlflow.artifactLocation"))
        if old_traces:
            client.delete_traces(experiment_id, trace_ids=[t.info.trace_id for t in old_traces])
            swept += len(old_traces)
    return swept
