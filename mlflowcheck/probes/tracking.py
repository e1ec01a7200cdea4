"""The tracking store layer: experiment, run, params, metrics, dataset, search.

Each function writes its part of the seed's run through the server and reads it back
through the server, raising CheckFailed on the first difference.
"""

from __future__ import annotations

import json
import time

import mlflow
import numpy as np

from mlflowcheck.core import seed
from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.probes.layers import replicas_disagree
from mlflowcheck.runtime.session import Session

EXPERIMENT_KIND = "mlflow.experimentKind"


STORE_TIP = "the tracking store lost or changed data; look at the server's backend store and its log."


def expect_equal(what: str, got, want, tip: str | None = None) -> None:
    if got != want:
        raise CheckFailed(f"{what}: read back {got!r}, wrote {want!r}.", tip or STORE_TIP)


def experiment(suite: Session) -> None:
    client = suite.client
    suite.experiment_id, name = create_experiment(client, seed.experiment_name())
    suite.experiment_name = name
    got = read_back(suite, lambda: client.get_experiment(suite.experiment_id),
                    f"/api/2.0/mlflow/experiments/get?experiment_id={suite.experiment_id}",
                    f"experiment {suite.experiment_id}")  # fmt: skip
    expect_equal("experiment name", got.name, name)
    expect_equal("experiment lifecycle stage", got.lifecycle_stage, "active")
    expect_equal("experiment kind tag", got.tags.get(EXPERIMENT_KIND), "custom_model_development")
    by_name = client.get_experiment_by_name(name)
    expect_equal("experiment found by its name", getattr(by_name, "experiment_id", None), suite.experiment_id)
    suite.note("experiment", f"{name} (id {suite.experiment_id}), artifacts at {got.artifact_location}")


def read_back(suite: Session, read, path: str, what: str):
    """The first read after a write: a not-found there may mean replicas that do not share a store."""
    from mlflow.exceptions import MlflowException

    try:
        return read()
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise replicas_disagree(suite.target, path, what) or exc from None
        raise


def create_experiment(client, base: str, attempts: int = 100) -> tuple[str, str]:
    """Create an experiment named ``base``, else ``base_2``, ``base_3``, ...: the server
    decides who gets a name (create, and on "already exists" take the next), so suites that
    start in the same second never share an experiment. Returns (id, name)."""
    from mlflow.exceptions import MlflowException

    for attempt in range(1, attempts + 1):
        name = base if attempt == 1 else f"{base}_{attempt}"
        try:
            # Open in the UI's classic view of training runs, not the GenAI one (see Session.ui_url).
            return client.create_experiment(name, tags={EXPERIMENT_KIND: "custom_model_development"}), name
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    raise CheckFailed(f"The experiment names {base!r} to {base}_{attempts} are all taken.", "run again in a second.")


def start_run(suite: Session) -> None:
    mlflow.set_tracking_uri(suite.target.url)
    run = mlflow.start_run(experiment_id=suite.experiment_id, run_name=seed.RUN_NAME)
    suite.run_id = run.info.run_id
    suite.artifact_uri = run.info.artifact_uri


def params(suite: Session) -> None:
    mlflow.log_params(seed.PARAMS)
    got = suite.client.get_run(suite.run_id).data.params
    expect_equal("params", got, {k: str(v) for k, v in seed.PARAMS.items()})
    suite.note("params", f"{len(got)} params read back equal")


def metrics(suite: Session) -> None:
    from mlflow.entities import Metric

    rng = np.random.default_rng()
    history = seed.metric_history(rng)
    now = int(time.time() * 1000)
    written = {key: [Metric(key, value, now + step, step) for step, value in points] for key, points in history.items()}
    # One request for all ten points; the seed's per-point log_metric calls cost ten.
    suite.client.log_batch(suite.run_id, metrics=[m for ms in written.values() for m in ms])
    sent = {key: [(m.step, m.value, m.timestamp) for m in ms] for key, ms in written.items()}
    for key, want in sent.items():
        expect_equal(
            f"metric history of {key!r} (step, value, timestamp)",
            sorted(history_points(suite.client, suite.run_id, key)),
            want,
        )
    suite.note("metrics", f"accuracy and loss, {seed.EPOCHS} steps each")


def history_points(client, run_id: str, key: str) -> list[tuple[int, float, int]]:
    """A metric's full history as the server has it: (step, value, timestamp) per point."""
    return [(m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, key)]


def dataset(suite: Session) -> None:
    from mlflow.data.code_dataset_source import CodeDatasetSource

    rng = np.random.default_rng()
    suite.data = seed.sample_data(rng)
    # A plain string source makes MLflow guess a local file path and warn; this data is
    # generated by code, which is what CodeDatasetSource records.
    source = CodeDatasetSource(tags={"mlflow.source.name": seed.DATASET_SOURCE, "mlflow.source.type": "LOCAL"})
    ds = mlflow.data.from_pandas(suite.data, source=source, targets=seed.TARGET, name=seed.DATASET_NAME)
    # MLflow keeps a pandas dataset's targets only in memory: record them as an input tag.
    mlflow.log_input(ds, context=seed.DATASET_CONTEXT, tags={"targets": seed.TARGET})

    inputs = suite.client.get_run(suite.run_id).inputs.dataset_inputs
    expect_equal("number of dataset inputs", len(inputs), 1)
    got = inputs[0].dataset
    expect_equal("dataset name", got.name, seed.DATASET_NAME)
    expect_equal("dataset digest", got.digest, ds.digest)
    expect_equal("dataset source type", got.source_type, "code")
    expect_equal("dataset source", json.loads(got.source), source.to_dict())
    columns = [c["name"] for c in json.loads(got.schema)["mlflow_colspec"]]
    expect_equal("dataset schema columns", columns, [*seed.FEATURES, seed.TARGET])
    profile = json.loads(got.profile)
    expect_equal("dataset profile rows", profile.get("num_rows"), seed.ROWS)
    tags = {t.key: t.value for t in inputs[0].tags}
    expect_equal("dataset context tag", tags.get("mlflow.data.context"), seed.DATASET_CONTEXT)
    expect_equal("dataset targets tag", tags.get("targets"), seed.TARGET)
    suite.note("dataset", f"{seed.ROWS} rows, digest {got.digest}")


def finish_run(suite: Session) -> None:
    started = int(suite.started * 1000) - 1000
    mlflow.end_run()
    info = suite.client.get_run(suite.run_id).info
    expect_equal("run name", info.run_name, seed.RUN_NAME)
    expect_equal("run status", info.status, "FINISHED")
    expect_equal("run experiment", info.experiment_id, suite.experiment_id)
    now = int(time.time() * 1000) + 1000
    if not (started <= info.start_time <= info.end_time <= now):
        raise CheckFailed(
            f"run times are out of order: start {info.start_time}, end {info.end_time} "
            f"(expected within {started}..{now}).",
            "check the server's clock and its backend store.",
        )
    suite.note("run", f"{info.run_name} ({info.run_id}) FINISHED in {(info.end_time - info.start_time) / 1000:.1f}s")


def search(suite: Session) -> None:
    last_accuracy = suite.client.get_run(suite.run_id).data.metrics["accuracy"]
    query = f"params.model_type = '{seed.PARAMS['model_type']}' and metrics.accuracy >= {last_accuracy!r}"
    found = suite.client.search_runs([suite.experiment_id], filter_string=query, max_results=50)
    ids = [r.info.run_id for r in found]
    if suite.run_id not in ids:
        raise CheckFailed(
            f"search_runs did not find the run with filter {query!r} (found {len(ids)} runs).",
            "the server's search is broken; look at its log and backend store.",
        )
    by_name = suite.client.search_experiments(filter_string=f"name = '{suite.experiment_name}'")
    expect_equal("experiments found by name", [e.experiment_id for e in by_name], [suite.experiment_id])
    suite.note("search", "run found by a param and a metric filter; experiment by name")
