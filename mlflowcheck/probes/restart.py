"""--restart: durability. After logging, stop the server this suite started (SIGTERM, the way a
supervisor does), start it again on the same stores, and read everything back through the new
process: every item logged and acknowledged before the restart must be there, exactly."""

from __future__ import annotations

import time

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.loadstats import Loss, compare_points, compare_values
from mlflowcheck.explain.genai import span_differences
from mlflowcheck.probes import load, traces
from mlflowcheck.probes.artifacts import downloaded_sha256
from mlflowcheck.probes.models import download_and_compare
from mlflowcheck.probes.tracking import history_points
from mlflowcheck.runtime.session import Session

DURABILITY_TIP = (
    "the server lost data it had acknowledged when it restarted: its stores are not durable (an "
    "in-memory or temporary database, artifacts on a tmpfs or in the container's own filesystem, "
    "writes not committed); put --backend-store-uri and --artifacts-destination on durable storage."
)


def restart_and_read_back(suite: Session) -> None:
    server = suite.local_server
    if server is None:
        raise CheckFailed(
            "--restart restarts a server this suite started, and it started none.",
            "run with --start-server (or at the default address with nothing listening).",
            fatal=True,
        )
    began = time.monotonic()
    server.stop()  # SIGTERM to its process group, then a deadline: a supervisor's restart
    server.start(deadline=suite.remaining(90.0), append_log=True)
    down = time.monotonic() - began
    loss = Loss()
    items = 0
    client = suite.client

    experiment = client.get_experiment(suite.experiment_id)
    loss.add(compare_values("experiment", {"name": suite.experiment_name}, {"name": experiment.name}))
    run = client.get_run(suite.run_id)
    loss.add(compare_values("param", suite.logged.params, run.data.params))
    items += 1 + len(suite.logged.params)
    for key, points in suite.logged.metrics.items():
        loss.add(compare_points(key, points, history_points(client, suite.run_id, key)))
        items += len(points)
    if suite.logged.dataset_digest:
        digests = [i.dataset.digest for i in run.inputs.dataset_inputs]
        loss.add(compare_values("dataset", {"digest": suite.logged.dataset_digest}, {"digest": ",".join(digests)}))
        items += 1
    for path, want in suite.logged.artifacts.items():
        try:
            loss.add(compare_values("artifact", {path: want}, {path: downloaded_sha256(suite, path)}))
        except Exception as exc:  # a missing file is a loss to report, with the rest
            loss.add(compare_values("artifact", {path: want}, {}))
            loss.examples.append(f"{path}: {str(exc)[:120]}")
        items += 1
    created = suite.created
    if created.model_id and created.saved_model:
        _, differences = download_and_compare(suite, f"models:/{created.model_id}")
        loss.altered += len(differences)
        loss.examples += differences[:3]
        items += len(created.saved_model)
    if created.registered_version:
        version = client.get_model_version(suite.options.registered_model, created.registered_version)
        loss.add(compare_values("model version", {"status": "READY"}, {"status": version.status}))
        items += 1
    spans = suite.logged.trace_spans
    if spans:
        try:
            differences = span_differences(spans, traces.spans_again(suite))
        except Exception as exc:  # a trace gone is a loss to report, with the rest
            differences = [f"span {s['name']}: missing" for s in spans]
            loss.examples.append(f"trace {suite.trace_id}: {str(exc)[:120]}")
        missing = sum(d.endswith(": missing") for d in differences)
        loss.lost += missing
        loss.altered += len(differences) - missing
        loss.examples += [f"trace {suite.trace_id} {d}" for d in differences[:3]]
        items += len(spans)
    load_points = 0
    if suite.load_sent:
        loss.add(load.read_back_load(suite, suite.load_sent))
        load_points = sum(s.points for s in suite.load_sent)
        items += load_points + sum(s.spans for s in suite.load_sent)
    if loss.total:
        raise CheckFailed(
            f"After a restart of the server (SIGTERM, back in {down:.1f}s), {loss.lost} lost, {loss.duplicated} "
            f"duplicated and {loss.altered} altered of {items:,} items it had acknowledged "
            f"({'; '.join(loss.examples[:4])}).",
            DURABILITY_TIP,
        )
    parts = [
        f"{len(suite.logged.params)} params",
        f"{sum(len(p) for p in suite.logged.metrics.values())} metric points",
        f"{len(suite.logged.artifacts)} artifacts",
    ]
    if spans:
        parts.append(f"the trace's {len(spans)} spans")
    if created.saved_model:
        parts.append(f"{len(created.saved_model)} model files")
    if created.registered_version:
        parts.append(f"{suite.options.registered_model} version {created.registered_version}")
    if load_points:
        parts.append(f"{load_points:,} load points")
    load_spans = sum(s.spans for s in suite.load_sent)
    if load_spans:
        parts.append(f"{load_spans:,} spans of the load's traces")
    suite.note(
        "restart",
        f"restarted the server (SIGTERM, answering again in {down:.1f}s); read back through the new process: "
        f"{', '.join(parts)}: all equal",
    )
