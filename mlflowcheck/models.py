"""Models and registry: log the sklearn model, load it back through the server, register it."""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

import mlflow
import numpy as np

from mlflowcheck import seed
from mlflowcheck.diagnosis import CheckFailed
from mlflowcheck.suite import Options, Suite

MODEL_FILES = {"MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt"}
DATA_FILE = {"skops": "model.skops", "pickle": "model.pkl", "cloudpickle": "model.pkl"}
REGISTRY_TIP = "the server's model registry failed; look at its log and --registry-store-uri."


def default_format() -> str:
    from mlflow.sklearn import _get_default_serialization_format

    return _get_default_serialization_format()


def pip_requirements(fmt: str) -> list[str]:
    # Passing requirements explicitly skips MLflow's inference, a subprocess that costs ~4 s.
    names = ["mlflow", "scikit-learn", "numpy", "pandas"]
    names += {"skops": ["skops"], "cloudpickle": ["cloudpickle"]}.get(fmt, [])
    return [f"{n}=={importlib.metadata.version(n)}" for n in names]


def logged_model(suite: Suite) -> None:
    from mlflow.models import infer_signature

    fmt = suite.options.model_format or default_format()
    features = suite.data[seed.FEATURES]
    suite.model = seed.train_model(suite.data)
    expected = suite.model.predict(features)
    suite.model_info = mlflow.sklearn.log_model(
        suite.model,
        name=seed.MODEL_NAME,
        signature=infer_signature(features, expected),
        input_example=features.head(5),
        pip_requirements=pip_requirements(fmt),
        serialization_format=fmt,
        run_id=suite.run_id,  # explicit: this may run in the model worker, with no active run
    )
    suite.model_file = DATA_FILE[fmt]
    model_id = suite.model_info.model_id
    got = suite.client.get_logged_model(model_id)
    if str(got.status) != "READY":
        raise CheckFailed(f"The logged model {model_id} has status {got.status}, not READY.", REGISTRY_TIP)
    if (got.source_run_id, got.experiment_id) != (suite.run_id, suite.experiment_id):
        raise CheckFailed(
            f"The logged model belongs to run {got.source_run_id} in experiment {got.experiment_id}, "
            f"not to run {suite.run_id} in experiment {suite.experiment_id}.",
            REGISTRY_TIP,
        )
    files = {f.path for f in suite.client.list_logged_model_artifacts(model_id)}
    missing = sorted((MODEL_FILES | {suite.model_file}) - files)
    if missing:
        raise CheckFailed(
            f"The logged model {model_id} lacks {', '.join(missing)} on the server (it has "
            f"{', '.join(sorted(files)) or 'nothing'}).",
            "the artifact store lost files: check the server's --artifacts-destination.",
        )
    predictions_match(suite, suite.model_info.model_uri, expected)
    suite.note("model", f"{model_id}, {suite.model_file} ({fmt}), {seed.ROWS} predictions equal")


def predictions_match(suite: Suite, model_uri: str, expected: np.ndarray) -> None:
    dst = suite.tmp / f"model-{abs(hash(model_uri))}"
    dst.mkdir(parents=True, exist_ok=True)
    loaded = mlflow.pyfunc.load_model(model_uri, dst_path=str(dst))
    got = np.asarray(loaded.predict(suite.data[seed.FEATURES]))
    if got.shape != expected.shape or not np.array_equal(got, expected):
        differ = int(np.sum(got != expected)) if got.shape == expected.shape else "all"
        raise CheckFailed(
            f"The model loaded from {model_uri} predicts differently from the trained model "
            f"({differ} of {len(expected)} predictions differ).",
            "the model's files were changed on the way; compare client and server library versions.",
        )


def registry(suite: Suite) -> None:
    from mlflow.exceptions import MlflowException

    client = suite.client
    name, alias = suite.options.registered_model, suite.options.alias
    try:
        before = {int(v.version) for v in client.search_model_versions(f"name = '{name}'")}
    except MlflowException:
        before = set()
    mv = mlflow.register_model(suite.model_info.model_uri, name, await_registration_for=60)
    version = int(mv.version)
    if version in before or (before and version <= max(before)):
        raise CheckFailed(f"Registering gave version {version}, which existed before ({sorted(before)}).", REGISTRY_TIP)
    got = client.get_model_version(name, str(version))
    if got.status != "READY":
        raise CheckFailed(f"Model version {name}/{version} has status {got.status}, not READY.", REGISTRY_TIP)
    if got.run_id != suite.run_id:
        raise CheckFailed(
            f"Model version {name}/{version} points at run {got.run_id}, not {suite.run_id}.", REGISTRY_TIP
        )
    client.set_registered_model_alias(name, alias, str(version))
    by_alias = client.get_model_version_by_alias(name, alias)
    if int(by_alias.version) != version:
        raise CheckFailed(
            f"Alias {alias!r} of {name!r} resolves to version {by_alias.version}, not {version}.", REGISTRY_TIP
        )
    predictions_match(suite, f"models:/{name}@{alias}", suite.model.predict(suite.data[seed.FEATURES]))
    suite.registered_version = str(version)
    suite.note("registry", f"{name} version {version}, alias @{alias}, predictions equal")


def run_worker_job(job: dict) -> dict:
    """In the worker: the model and registry checks on the main process's run."""
    import pandas as pd

    from mlflowcheck.diagnosis import explain, parse_target

    suite = Suite(
        Options(**job["options"]),
        target=parse_target(job["target"]),
        client_version=job["client_version"],
        server_version=job["server_version"],
        experiment_id=job["experiment_id"],
        run_id=job["run_id"],
        tmp=Path(job["tmp"]),
    )
    suite.data = pd.DataFrame(job["data"])
    suite.connect()
    # log_model files the logged model under the active experiment, not the run's.
    mlflow.set_experiment(experiment_id=suite.experiment_id)
    results: dict = {}
    for name, check in (("model", logged_model), ("registry", registry)):
        started = time.perf_counter()
        try:
            check(suite)
        except Exception as exc:
            failure = explain(exc)
            results[name] = {"status": "failed", "message": failure.message, "tip": failure.tip}
            if suite.options.verbose:
                import traceback

                results[name]["message"] += "\n" + traceback.format_exc()
            break
        else:
            took = time.perf_counter() - started
            results[name] = {"status": "passed", "note": f"{suite.notes.get(name, '')} ({took:.2f}s, in parallel)"}
    results["model_file"] = suite.model_file
    results["registered_version"] = suite.registered_version
    return results
