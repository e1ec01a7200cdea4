"""Models and registry: log the sklearn model, load it back through the server, register it.

The two checks run in the model worker (runtime.worker): ``worker_check`` hands it the job,
``run_job`` is what the worker runs."""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from mlflowcheck.core import seed
from mlflowcheck.core.errors import CheckFailed, Unsupported
from mlflowcheck.core.options import Options
from mlflowcheck.core.state import Created, run_alias
from mlflowcheck.runtime.mlflow_compat import (
    configure_client,
    default_format,
    last_refusal,
    recording_model_uploads,
    refusal_mark,
    without_requirement_warnings,
)
from mlflowcheck.runtime.session import Session, mlflow_client
from mlflowcheck.runtime.worker import ModelJob, WorkerResults

MODEL_FILES = {"MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt"}
DATA_FILE = {"skops": "model.skops", "pickle": "model.pkl", "cloudpickle": "model.pkl"}
REGISTERED_MODEL_META = "registered_model_meta"
REGISTRY_TIP = "the server's model registry failed; look at its log and --registry-store-uri."


def pip_requirements(fmt: str) -> list[str]:
    # Passing requirements explicitly skips MLflow's inference, a slow subprocess (docs/performance.md).
    names = ["mlflow", "scikit-learn", "numpy", "pandas"]
    names += {"skops": ["skops"], "cloudpickle": ["cloudpickle"]}.get(fmt, [])
    return [f"{n}=={importlib.metadata.version(n)}" for n in names]


def logged_model(suite: ModelRun) -> None:
    from mlflow.models import infer_signature

    fmt = suite.options.model_format or default_format()
    features = suite.data[seed.FEATURES]
    suite.model = seed.train_model(suite.data)
    expected = suite.model.predict(features)
    with recording_model_uploads(tree_digests) as saved:
        suite.model_info = mlflow.sklearn.log_model(
            suite.model,
            name=seed.MODEL_NAME,
            signature=infer_signature(features, expected),
            input_example=features.head(5),
            pip_requirements=pip_requirements(fmt),
            serialization_format=fmt,
            run_id=suite.run_id,  # explicit: this runs in the model worker, with no active run
        )
    suite.created.model_file = DATA_FILE[fmt]
    model_id = suite.model_info.model_id
    suite.created.model_id = model_id
    suite.created.saved_model = saved.get(model_id, {})
    if not suite.created.saved_model:
        raise CheckFailed(
            f"MLflow logged the model {model_id} without the suite seeing its files, so there is "
            "nothing to verify a download against; nothing was loaded.",
            "this MLflow client uploads models differently from the one the suite was built on; "
            "use the client version pinned in requirements.txt.",
        )
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
    missing = sorted((MODEL_FILES | {suite.created.model_file}) - files)
    if missing:
        raise CheckFailed(
            f"The logged model {model_id} lacks {', '.join(missing)} on the server (it has "
            f"{', '.join(sorted(files)) or 'nothing'}).",
            "the artifact store lost files: check the server's --artifacts-destination.",
        )
    predictions_match(suite, suite.model_info.model_uri, expected)
    suite.note(
        "model",
        f"{model_id}, {suite.created.model_file} ({fmt}), {len(suite.created.saved_model)} files sha256-verified, "
        f"{seed.ROWS} predictions equal",
    )


def tree_digests(root: Path) -> dict[str, str]:
    """Every file under ``root``: its path relative to root -> sha256."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def digest_differences(got: dict[str, str], want: dict[str, str]) -> list[str]:
    """What differs between a downloaded tree and the saved one, file by file, with hashes."""
    lines = []
    for name in sorted(set(got) | set(want)):
        if name not in got:
            lines.append(f"{name}: missing (saved sha256 {want[name]})")
        elif name not in want:
            lines.append(f"{name}: not saved by the suite (sha256 {got[name]})")
        elif got[name] != want[name]:
            lines.append(f"{name}: sha256 {got[name]}, saved {want[name]}")
    return lines


def download_and_compare(suite: ModelRun, model_uri: str) -> tuple[Path, list[str]]:
    """Download ``model_uri`` into a fresh folder; what differs from the model the suite saved."""
    dst = suite.tmp / f"model-{hashlib.sha256(model_uri.encode()).hexdigest()[:12]}"
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dst)))
    got = tree_digests(local)
    # The client itself writes this file after downloading a registry version (name and
    # version, from the URI); it is not a server's file.
    got.pop(REGISTERED_MODEL_META, None)
    return local, digest_differences(got, suite.created.saved_model)


def verified_download(suite: ModelRun, model_uri: str) -> Path:
    """Download ``model_uri`` and prove every file is the one the suite saved (sha256).

    A model is code: pickle and cloudpickle run whatever the file says when loaded. So the
    suite never loads a model straight from the server; it loads this verified local copy.
    """
    local, differences = download_and_compare(suite, model_uri)
    if differences:
        raise CheckFailed(
            f"The model files downloaded from {model_uri} are not the ones this suite saved, so "
            "nothing was loaded:\n" + "\n".join(differences),
            "something between this client and the artifact store changed the files (a proxy, the "
            "storage, or another writer); a model from an untrusted source must not be loaded.",
        )
    return local


def predictions_match(suite: ModelRun, model_uri: str, expected: np.ndarray) -> None:
    # suppress_warnings: MLflow's warning that this environment differs from the model's
    # requirements; the suite pinned them to this environment itself (pip_requirements).
    loaded = mlflow.pyfunc.load_model(str(verified_download(suite, model_uri)), suppress_warnings=True)
    got = np.asarray(loaded.predict(suite.data[seed.FEATURES]))
    if got.shape != expected.shape or not np.array_equal(got, expected):
        differ = int(np.sum(got != expected)) if got.shape == expected.shape else "all"
        raise CheckFailed(
            f"The model loaded from {model_uri} predicts differently from the trained model "
            f"({differ} of {len(expected)} predictions differ).",
            "the model's files were changed on the way; compare client and server library versions.",
        )


def registry(suite: ModelRun) -> None:
    from mlflow.exceptions import MlflowException

    client = suite.client
    name, alias = suite.options.registered_model, suite.alias
    try:
        client.create_registered_model(name)
        suite.created.registered_model_created = True
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    mv = client.create_model_version(
        name, suite.model_info.model_uri, run_id=suite.run_id, model_id=suite.model_info.model_id
    )
    version = str(mv.version)
    suite.created.registered_version = version
    got = wait_for_version(client, name, version)
    if got.run_id != suite.run_id:
        raise CheckFailed(
            f"Model version {name}/{version} points at run {got.run_id}, not {suite.run_id}.", REGISTRY_TIP
        )
    suite.created.alias = alias
    suite.created.alias_before = alias_version(client, name, alias)
    client.set_registered_model_alias(name, alias, version)
    by_alias = client.get_model_version_by_alias(name, alias)
    if str(by_alias.version) != version:
        raise CheckFailed(
            f"Alias {alias!r} of {name!r} resolves to version {by_alias.version}, not to {version}, "
            "the version this run created and pointed it at.",
            REGISTRY_TIP + " (Another client may have moved the alias: use --alias with a name of your own.)",
        )
    # Load the version this run created, not "whatever the alias says now".
    predictions_match(suite, f"models:/{name}/{version}", suite.model.predict(suite.data[seed.FEATURES]))
    suite.note("registry", f"{name} version {version}, alias @{alias} resolves to it, files verified, same predictions")


def wait_for_version(client, name: str, version: str, deadline: float = 60.0):
    end = time.monotonic() + deadline
    while True:
        got = client.get_model_version(name, version)
        if got.status == "READY":
            return got
        if got.status == "FAILED_REGISTRATION" or time.monotonic() > end:
            raise CheckFailed(f"Model version {name}/{version} has status {got.status}, not READY.", REGISTRY_TIP)
        time.sleep(0.2)


def alias_version(client, name: str, alias: str) -> str | None:
    """The version ``alias`` points at now, or None when the model has no such alias."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


@dataclass
class ModelRun:
    """What the model checks work with in the worker: the job's facts, the MLflow client, and
    the ledger of what they create (handed back to the main process)."""

    options: Options
    client: Any
    experiment_id: str
    run_id: str
    tmp: Path
    data: Any  # the seed's DataFrame
    created: Created = field(default_factory=Created)
    notes: dict[str, str] = field(default_factory=dict)
    model: Any = None  # the trained LogisticRegression
    model_info: Any = None  # what log_model returned

    @property
    def alias(self) -> str:
        return run_alias(self.options, self.run_id)

    def note(self, check: str, text: str) -> None:
        self.notes[check] = text


def run_job(job: ModelJob, send=None) -> WorkerResults:
    """In the worker: the model and registry checks on the main process's run; then, if
    selected, the prompts and evaluation checks (probes.prompts), after ``send`` has handed the
    model's verdicts back (the main process goes on meanwhile)."""
    import pandas as pd

    from mlflowcheck.probes import prompts

    configure_client()
    without_requirement_warnings()
    run = ModelRun(
        Options(**job.options),
        mlflow_client(job.target),
        experiment_id=job.experiment_id,
        run_id=job.run_id,
        tmp=Path(job.tmp),
        data=pd.DataFrame(job.data),
    )
    # log_model files the logged model under the active experiment, not the run's.
    if run.experiment_id:
        mlflow.set_experiment(experiment_id=run.experiment_id)
    results = WorkerResults()
    genai = [("evaluation", prompts.evaluation)] if "evaluation" in job.checks else []
    for name, check in (("model", logged_model), ("registry", registry)):
        if name not in job.checks or not run_one(run, job, results, name, check):
            break  # the registry registers the model
        if send is not None and (genai or name == "model"):  # the main process goes on with each verdict
            send(results)
            results = WorkerResults()
    for name, check in genai:
        run_one(run, job, results, name, check)
    results.created = asdict(run.created)
    return results


def run_one(run: ModelRun, job: ModelJob, results: WorkerResults, name: str, check) -> bool:
    """One of the worker's checks, its verdict put in ``results``: whether it passed."""
    from mlflowcheck.probes.layers import diagnose

    started, mark = time.perf_counter(), refusal_mark()
    try:
        check(run)
    except Exception as exc:
        failure = diagnose(exc, last_refusal(since=mark), job.server)
        status = "unsupported" if isinstance(failure, Unsupported) else "failed"
        results.checks[name] = {"status": status, "message": failure.message, "tip": failure.tip}
        results.checks[name]["endpoint"] = getattr(failure, "endpoint", "")
        if run.options.verbose:
            import traceback

            results.checks[name]["message"] += "\n" + traceback.format_exc()
        return False
    took = time.perf_counter() - started
    results.checks[name] = {"status": "passed", "note": f"{run.notes.get(name, '')} ({took:.2f}s, in parallel)"}
    results.created = asdict(run.created)
    return True


#: The model worker's whole job: its imports are done long before, so this is upload, load, register.
WORKER_DEADLINE = 600.0


def model_job(suite: Session) -> ModelJob:
    return ModelJob(
        options={k: str(v) if isinstance(v, Path) else v for k, v in asdict(suite.options).items()},
        target=suite.target.url,
        experiment_id=suite.experiment_id,
        run_id=suite.run_id,
        tmp=str(suite.tmp),
        data=suite.data.to_dict(orient="list"),
        server=suite.implementation,
        # The worker's checks still to run (not one the main process skipped before it sent the job).
        checks=sorted(c for c in suite.worker_checks if suite.outcome(c) is None),
    )


def start_worker_job(suite: Session) -> None:
    """Hand the model worker its job as soon as the run and its artifacts work (before the model
    check's turn), so that the checks between run in this process meanwhile."""
    if "model" in suite.worker_checks and suite.model_worker is not None and suite.outcome("model") is None:
        suite.model_worker.start(model_job(suite))


def worker_check(suite: Session, name: str) -> None:
    """The verdict of one of the worker's checks, as this process's check."""
    results = suite.model_worker.run(model_job(suite), suite.remaining(WORKER_DEADLINE), name)
    suite.created.take(results.created)
    result = results.checks.get(name)
    if result is None:
        raise CheckFailed(f"The model worker did not run the {name} check.", "see the model check above.")
    if result["status"] == "unsupported":
        raise Unsupported(result["message"], result.get("tip"), endpoint=result.get("endpoint", ""))
    if result["status"] != "passed":
        raise CheckFailed(result["message"], result.get("tip"))
    suite.note(name, result["note"])
