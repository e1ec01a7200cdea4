"""Every use of MLflow's private APIs, in one place; and the client's process-wide settings.

Each private use has a canary test (tests/unit/test_mlflow_compat.py) that fails when MLflow
changes it. The settings: quick retries, no IPython, error bodies kept."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.metadata
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mlflowcheck.core.observations import Answer
from mlflowcheck.explain.support import answer_of

if TYPE_CHECKING:
    from collections.abc import Iterator


def default_format() -> str:
    from mlflow.sklearn import _get_default_serialization_format

    return _get_default_serialization_format()


#: The UI's endpoint for many runs' histories of one metric (MLflow's own server, 1.x to 3.17).
HISTORY_BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
HISTORY_BULK_RUNS = 100  # the most run ids the server takes in one request
HISTORY_BULK_POINTS = 25000  # the most points it returns per run


def metric_histories(client, run_ids: list[str], key: str) -> dict[str, list[list]] | None:
    """One metric's whole history for up to 100 runs in one request, run id -> [step, timestamp,
    value] sorted: the UI's bulk endpoint, through the client's own credentials and TLS settings
    (its store's host credentials: private to MLflow). None where the server does not have it
    (another product, a proxy that passes only /api/); a run with as many points as the endpoint
    returns at most is left out (its history may be cut: read it with get_metric_history)."""
    from mlflow.utils.rest_utils import http_request

    try:
        creds = client._tracking_client.store.get_host_creds()
        asked = {"run_id": run_ids, "metric_key": key, "max_results": HISTORY_BULK_POINTS}
        resp = http_request(creds, HISTORY_BULK, "GET", max_retries=0, raise_on_status=False, params=asked)
    except AttributeError:  # a client without a REST store
        return None
    if resp.status_code != 200:
        return None
    try:
        points = resp.json().get("metrics", [])
    except ValueError:
        return None
    found: dict[str, list[list]] = {run_id: [] for run_id in run_ids}
    for p in points:
        if p.get("run_id") in found:
            found[p["run_id"]].append([int(p.get("step", 0)), int(p["timestamp"]), float(p["value"])])
    return {run_id: sorted(got) for run_id, got in found.items() if len(got) < HISTORY_BULK_POINTS}


def without_requirement_warnings() -> None:
    """In the model worker: MLflow does not compare a model's requirements with the installed
    packages, a comparison that only warns (``warn_dependency_requirement_mismatches``, when a
    model is logged and when it is loaded, by its input example's check too).

    The suite writes the requirements from the installed versions itself (``pip_requirements``)
    and loads the model in the same environment, so the warning cannot say anything; making it
    maps every installed distribution's files to modules first, half a second of CPU per process
    (docs/performance.md). Private to MLflow: where the names differ, nothing changes."""
    import mlflow.pyfunc
    from mlflow.utils import environment

    def no_warning(model_requirements) -> None:
        return None

    for module in (environment, mlflow.pyfunc):
        if callable(getattr(module, "warn_dependency_requirement_mismatches", None)):
            module.warn_dependency_requirement_mismatches = no_warning


@contextlib.contextmanager
def recording_model_uploads(digests: Callable[[Path], dict[str, str]]) -> Iterator[dict[str, dict[str, str]]]:
    """While active, each model directory MLflow's ``log_model`` uploads is hashed (``digests``)
    just before the upload: model id -> {file: sha256}. That is the model the suite saved itself, and
    the only model it will load (see ``verified_download``)."""
    from mlflow.tracking.client import MlflowClient

    original = MlflowClient.log_model_artifacts
    recorded: dict[str, dict[str, str]] = {}

    def log_model_artifacts(self, model_id, local_dir, *args, **kwargs):
        recorded[model_id] = digests(Path(local_dir))
        return original(self, model_id, local_dir, *args, **kwargs)

    MlflowClient.log_model_artifacts = log_model_artifacts
    try:
        yield recorded
    finally:
        MlflowClient.log_model_artifacts = original


class _Absent(importlib.abc.MetaPathFinder):
    """Makes ``import <package>`` fail as if the package were not installed."""

    def __init__(self, package: str):
        self.package = package

    def find_spec(self, name, path=None, target=None):
        if name == self.package or name.startswith(self.package + "."):
            raise ModuleNotFoundError(f"No module named {name!r} (not in the suite's processes)", name=name)
        return None


def _absent_finder(package: str) -> _Absent | None:
    return next((f for f in sys.meta_path if isinstance(f, _Absent) and f.package == package), None)


def without_ipython() -> None:
    """Run this process's MLflow client as where IPython is not installed.

    On every request MLflow asks whether it runs in a Databricks notebook, and the first time
    it imports IPython for that, slowly where IPython is installed (mlflow.utils.databricks_utils
    ._get_dbutils). The suite's processes are never notebooks, and MLflow runs without IPython.
    Left alone where IPython is already imported (the suite called from a notebook).
    """
    if "IPython" not in sys.modules and _absent_finder("IPython") is None:
        sys.meta_path.insert(0, _Absent("IPython"))


@contextlib.contextmanager
def without_databricks_sdk() -> Iterator[None]:
    """While active, MLflow runs as where the Databricks SDK is not installed.

    ``mlflow.genai.evaluate`` imports ``databricks.sdk`` before it starts its threads, only so
    that none of them imports it later while another holds the import lock (its harness's
    ``_warmup_databricks_sdk``, which passes over an ImportError); nothing else of an
    evaluation against a self-hosted server needs it, and the import costs about a second of
    CPU (docs/performance.md). Left alone where the SDK is already imported, or where MLflow's
    evaluation is not built that way (then it may need the SDK)."""
    try:
        with warnings.catch_warnings():  # its type-hint warnings when first imported
            warnings.simplefilter("ignore")
            from mlflow.genai.evaluation import harness

        warms_up_only = hasattr(harness, "_warmup_databricks_sdk")
    except ImportError:
        warms_up_only = False
    if not warms_up_only or "databricks.sdk" in sys.modules or _absent_finder("databricks.sdk") is not None:
        yield
        return
    finder = _Absent("databricks.sdk")
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)


def keep_server_error_bodies() -> None:
    """Make MLflow's client return 5xx answers after its retries, so we can show their body.

    By default the client raises "too many 500 error responses" and drops what the server
    said (e.g. https://github.com/mlflow/mlflow/issues/15455); with raise_on_status off, the client's
    own response check raises an error that carries the server's message.
    """
    from mlflow.utils import rest_utils

    original = getattr(rest_utils, "_get_http_response_with_retries", None)
    if original is None or getattr(original, "keeps_error_bodies", False):
        return

    def get_with_retries(
        method, url, max_retries, backoff_factor, backoff_jitter, retry_codes, raise_on_status=True, *args, **kwargs
    ):
        try:
            resp = original(
                method, url, max_retries, backoff_factor, backoff_jitter, retry_codes, False, *args, **kwargs
            )
        except BaseException:
            record_answer(None)  # no answer: a refusal before it says nothing about this failure
            raise
        record_answer(resp)
        return resp

    get_with_retries.keeps_error_bodies = True
    rest_utils._get_http_response_with_retries = get_with_retries


#: The last answer the MLflow client got, numbered, if it was a refusal (400 or more): the
#: client's exceptions keep neither the endpoint nor the HTTP status, which tell a missing
#: feature (404 ENDPOINT_NOT_FOUND) and a permission (403, whatever the body) from a failure.
#: A success or a request without an answer clears it: a refusal MLflow handled itself (the
#: server-info it asks before a download) is never blamed for the failure after it.
_last: tuple[int, Answer | None] = (0, None)
_last_lock = threading.Lock()


#: While ``recording_refusals`` is active: every refusal the client met, in order (a trace's
#: export swallows them; the trace check names them).
_recorders: list[list[Answer]] = []


def record_answer(resp) -> None:
    global _last
    try:
        answer = answer_of(resp) if resp is not None and resp.status_code >= 400 else None
    except Exception:  # recording must never break a client call
        answer = None
    with _last_lock:
        _last = (_last[0] + 1, answer)
        if answer is not None:
            for recorded in _recorders:
                recorded.append(answer)


@contextlib.contextmanager
def recording_refusals() -> Iterator[list[Answer]]:
    """Every refusal (HTTP 400 or more) MLflow's client gets while active, in order."""
    recorded: list[Answer] = []
    with _last_lock:
        _recorders.append(recorded)
    try:
        yield recorded
    finally:
        with _last_lock:
            _recorders.remove(recorded)


def partial_trace(client, trace_id: str):
    """The spans the server holds of a trace it calls "not fully exported yet": MLflow's
    client has no public call for a partial trace (the REST store's get_trace allow_partial)."""
    return client._tracing_client.store.get_trace(trace_id, allow_partial=True)


def refusal_mark() -> int:
    """A mark for ``last_refusal``: the number of answers recorded so far."""
    return _last[0]


def last_refusal(since: int = 0) -> Answer | None:
    """The client's last answer, if it came after ``since`` (a ``refusal_mark``) and was a refusal."""
    with _last_lock:
        count, answer = _last
    return answer if count > since else None


def configure_client() -> None:
    """This process's MLflow client, set up once before the checks (and in the model worker).

    The first contact (the layer checks) already proved the server answers; from here a
    failing request gets two quick retries, not MLflow's default of minutes, with short
    backoffs: a dead server must get its verdict within seconds (engine.plugin: server_fate).
    Traces are exported synchronously.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    # A trace is exported when its call returns, not by a queue at exit: its failures belong to
    # the trace check, and a dead server cannot hold the process's exit for minutes.
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    without_ipython()
    keep_server_error_bodies()
