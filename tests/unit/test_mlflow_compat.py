"""Canaries for MLflow's private APIs the suite uses (every one is in runtime/mlflow_compat.py).

Each fails when the installed MLflow no longer has what the suite relies on, and names the
mlflowcheck function to update. The client's settings are checked by what they do against
canned answers (pytest-httpserver on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import inspect
import re
import sys
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking.client import MlflowClient
from mlflow.utils import databricks_utils, rest_utils

from mlflowcheck.runtime import mlflow_compat
from mlflowcheck.runtime.mlflow_compat import (
    default_format,
    keep_server_error_bodies,
    recording_model_uploads,
    without_ipython,
)

#: keep_server_error_bodies passes raise_on_status by position, after these six.
RETRIES_PARAMETERS = [
    "method", "url", "max_retries", "backoff_factor", "backoff_jitter", "retry_codes", "raise_on_status"
]  # fmt: skip
LOCKED = "(sqlite3.OperationalError) database is locked"


def update(function: str) -> str:
    return f"MLflow changed a private API: update mlflowcheck.runtime.mlflow_compat.{function}"


@pytest.fixture(autouse=True)
def no_retries(monkeypatch):
    # One request per call: a 500 is answered at once, not after MLflow's minutes of retries.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


@pytest.fixture
def client(canned) -> MlflowClient:
    return MlflowClient(tracking_uri=canned.url_for("").rstrip("/"))


def mlflows_own_retries():
    """MLflow's function, also where keep_server_error_bodies already wrapped it in this process."""
    function = rest_utils._get_http_response_with_retries
    if getattr(function, "keeps_error_bodies", False):
        function = inspect.getclosurevars(function).nonlocals["original"]
    return function


def test_mlflows_request_function_takes_raise_on_status_seventh_as_keep_server_error_bodies_passes_it():
    parameters = list(inspect.signature(mlflows_own_retries()).parameters)
    assert parameters[:7] == RETRIES_PARAMETERS, update("keep_server_error_bodies") + f": now {parameters}"


def test_mlflows_requests_go_through_the_name_keep_server_error_bodies_replaces():
    # The wrapper replaces the name in rest_utils: http_request must look it up there on each call.
    source = inspect.getsource(rest_utils.http_request)
    assert "_get_http_response_with_retries(" in source, update("keep_server_error_bodies")


def test_without_keep_server_error_bodies_the_client_drops_what_a_500_said(canned, client, monkeypatch):
    # The contrast that makes the setting worth having: MLflow's own client loses the server's message.
    monkeypatch.setattr(rest_utils, "_get_http_response_with_retries", mlflows_own_retries())
    canned.expect_request("/api/2.0/mlflow/experiments/get").respond_with_json(
        {"error_code": "INTERNAL_ERROR", "message": LOCKED}, status=500
    )
    with pytest.raises(MlflowException) as info:
        client.get_experiment("1")
    assert "too many 500 error responses" in info.value.message
    assert "database is locked" not in info.value.message


def test_keep_server_error_bodies_makes_the_client_raise_with_what_a_500_said(canned, client, monkeypatch):
    monkeypatch.setattr(rest_utils, "_get_http_response_with_retries", mlflows_own_retries())
    keep_server_error_bodies()
    keep_server_error_bodies()  # once is enough: a second call does not wrap the wrapper
    assert inspect.getclosurevars(rest_utils._get_http_response_with_retries).nonlocals["original"] is (
        mlflows_own_retries()
    )
    canned.expect_request("/api/2.0/mlflow/experiments/get", query_string="experiment_id=1").respond_with_json(
        {"error_code": "INTERNAL_ERROR", "message": LOCKED}, status=500
    )
    with pytest.raises(MlflowException) as info:
        client.get_experiment("1")
    assert LOCKED in info.value.message, update("keep_server_error_bodies") + f": the client said {info.value}"
    assert info.value.error_code == "INTERNAL_ERROR"
    assert len(canned.log) == 1  # MLFLOW_HTTP_REQUEST_MAX_RETRIES=0: one request, no retries


def test_mlflows_default_sklearn_serialization_format_is_skops():
    import mlflow.sklearn

    assert mlflow.sklearn._get_default_serialization_format() == "skops", update("default_format")
    assert default_format() == "skops"


@pytest.mark.filterwarnings("ignore::UserWarning")  # MLflow's type-hint warnings on import
def test_mlflow_warns_of_requirement_mismatches_through_the_names_without_requirement_warnings_replaces():
    import mlflow.pyfunc
    from mlflow.utils import environment

    for where in (mlflow.pyfunc.load_model, environment._process_pip_requirements):
        assert "warn_dependency_requirement_mismatches(" in inspect.getsource(where), (
            update("without_requirement_warnings")
            + f" ({where.__module__}.{where.__name__} no longer warns through that name)"
        )


def test_log_model_artifacts_takes_the_model_id_and_directory_recording_model_uploads_reads():
    parameters = list(inspect.signature(MlflowClient.log_model_artifacts).parameters)
    assert parameters[:3] == ["self", "model_id", "local_dir"], update("recording_model_uploads") + f": {parameters}"


def test_log_model_uploads_the_saved_model_through_mlflow_client_log_model_artifacts():
    from mlflow.models.model import Model

    assert re.search(r"\.log_model_artifacts\(", inspect.getsource(Model.log)), update("recording_model_uploads")


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_recording_model_uploads_hashes_the_directory_mlflow_then_uploads(canned, client, tmp_path):
    canned.expect_request("/api/2.0/mlflow/logged-models/m-1").respond_with_json(
        {
            "model": {
                "info": {
                    "model_id": "m-1", "experiment_id": "0", "name": "model", "status": "READY",
                    "artifact_uri": "mlflow-artifacts:/0/models/m-1/artifacts",
                    "creation_timestamp_ms": 1, "last_updated_timestamp_ms": 1,
                }
            }
        }
    )  # fmt: skip
    upload = "/api/2.0/mlflow-artifacts/artifacts/0/models/m-1/artifacts/MLmodel"
    canned.expect_request(upload, method="PUT").respond_with_json({})
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    original = MlflowClient.log_model_artifacts
    with recording_model_uploads(digests) as recorded:
        client.log_model_artifacts("m-1", str(tmp_path))
    assert MlflowClient.log_model_artifacts is original
    assert recorded == {"m-1": {"MLmodel": hashlib.sha256(b"flavors: {}\n").hexdigest()}}
    uploaded = [r for r, _ in canned.log if r.method == "PUT"]
    assert [r.get_data() for r in uploaded] == [b"flavors: {}\n"]


def test_mlflow_imports_ipython_to_ask_whether_it_runs_in_a_notebook_which_without_ipython_avoids():
    assert "import IPython" in inspect.getsource(databricks_utils._get_dbutils), update("without_ipython") + (
        " (MLflow may no longer import IPython there: then without_ipython is not needed)"
    )


def test_without_ipython_mlflow_takes_the_process_for_no_notebook(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    without_ipython()
    without_ipython()
    assert sum(isinstance(f, mlflow_compat._Absent) and f.package == "IPython" for f in sys.meta_path) == 1
    with pytest.raises(ModuleNotFoundError):
        import IPython  # noqa: F401
    with pytest.raises(databricks_utils._NoDbutilsError):
        databricks_utils._get_dbutils()


def test_without_ipython_leaves_a_process_alone_that_already_imported_ipython(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setitem(sys.modules, "IPython", sys.modules.get("IPython") or type(sys)("IPython"))
    without_ipython()
    assert mlflow_compat._absent_finder("IPython") is None


@pytest.mark.filterwarnings("ignore::UserWarning")  # MLflow's type-hint warnings on import
def test_mlflow_imports_the_databricks_sdk_before_an_evaluation_only_to_warm_it_up():
    from mlflow.genai.evaluation import harness

    source = inspect.getsource(harness._warmup_databricks_sdk)
    why = " (MLflow's evaluation may need the Databricks SDK now: then the suite must let it import it)"
    assert "import databricks.sdk" in source, update("without_databricks_sdk") + why
    assert "except ImportError" in source, update("without_databricks_sdk") + why


def test_without_databricks_sdk_the_sdk_is_absent_inside_and_importable_again_after(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    for name in [n for n in sys.modules if n == "databricks.sdk" or n.startswith("databricks.sdk.")]:
        monkeypatch.delitem(sys.modules, name)
    with mlflow_compat.without_databricks_sdk():
        with pytest.raises(ModuleNotFoundError):
            import databricks.sdk  # noqa: F401
        with mlflow_compat.without_databricks_sdk():  # nested: one finder
            assert sum(isinstance(f, mlflow_compat._Absent) for f in sys.meta_path) == 1
    assert mlflow_compat._absent_finder("databricks.sdk") is None


def test_without_databricks_sdk_leaves_a_process_alone_that_already_imported_it(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setitem(sys.modules, "databricks.sdk", sys.modules.get("databricks.sdk") or type(sys)("databricks.sdk"))
    with mlflow_compat.without_databricks_sdk():
        assert mlflow_compat._absent_finder("databricks.sdk") is None


def test_the_client_wrapper_records_each_refusal_with_its_endpoint_and_status(canned, client, monkeypatch):
    monkeypatch.setattr(rest_utils, "_get_http_response_with_retries", mlflows_own_retries())
    keep_server_error_bodies()
    canned.expect_request("/api/2.0/mlflow/runs/log-inputs", method="POST").respond_with_json(
        {"message": "Not found", "error_code": "ENDPOINT_NOT_FOUND"},
        status=404,
    )
    mark = mlflow_compat.refusal_mark()
    with pytest.raises(MlflowException):
        client.log_inputs("r1", datasets=[])
    refused = mlflow_compat.last_refusal(since=mark)
    assert refused is not None, update("keep_server_error_bodies") + ": the client's requests are no longer seen"
    assert refused.request == "POST /api/2.0/mlflow/runs/log-inputs"
    assert refused.status == 404
    assert refused.headers["content-type"] == "application/json"
    assert "ENDPOINT_NOT_FOUND" in refused.body
    assert mlflow_compat.last_refusal(since=mlflow_compat.refusal_mark()) is None


def test_a_refusal_the_client_got_past_is_cleared_by_the_next_answer(canned, client, monkeypatch):
    monkeypatch.setattr(rest_utils, "_get_http_response_with_retries", mlflows_own_retries())
    keep_server_error_bodies()
    canned.expect_request("/api/2.0/mlflow/experiments/get-by-name").respond_with_json(
        {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no"}, status=404
    )
    canned.expect_request("/api/2.0/mlflow/experiments/get").respond_with_json(
        {"experiment": {"experiment_id": "1", "name": "e", "lifecycle_stage": "active"}}
    )
    mark = mlflow_compat.refusal_mark()
    assert client.get_experiment_by_name("e") is None  # a 404 MLflow handles itself
    assert mlflow_compat.last_refusal(since=mark).status == 404
    client.get_experiment("1")
    assert mlflow_compat.last_refusal(since=mark) is None, "a success clears the refusal before it"


def test_the_rest_stores_get_trace_takes_allow_partial_which_partial_trace_passes():
    from mlflow.store.tracking.rest_store import RestStore

    parameters = inspect.signature(RestStore.get_trace).parameters
    assert "allow_partial" in parameters, update("partial_trace") + f": {list(parameters)}"


def test_partial_trace_asks_the_server_for_the_trace_with_allow_partial(canned, client):
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}
    info = {"trace_id": "tr-1", "trace_location": location, "request_time": "2026-12-03T00:00:00Z", "state": "OK"}
    asked = {"trace_id": "tr-1", "allow_partial": "True"}
    answer = {"trace": {"trace_info": info}}
    canned.expect_request("/api/3.0/mlflow/traces/get", query_string=asked).respond_with_json(answer)
    assert mlflow_compat.partial_trace(client, "tr-1").info.trace_id == "tr-1", update("partial_trace")


def test_many_runs_histories_come_from_the_uis_bulk_endpoint_through_the_clients_own_store(canned, client):
    canned.expect_request(
        mlflow_compat.HISTORY_BULK,
        query_string="run_id=r1&run_id=r2&metric_key=loss&max_results=25000",
    ).respond_with_json({"metrics": [
        {"key": "loss", "value": 0.5, "timestamp": 11, "step": 1, "run_id": "r1"},
        {"key": "loss", "value": 0.9, "timestamp": 10, "step": 0, "run_id": "r1"},
        {"key": "loss", "value": 0.7, "timestamp": 20, "step": 0, "run_id": "r2"},
    ]})  # fmt: skip
    got = mlflow_compat.metric_histories(client, ["r1", "r2"], "loss")
    assert got == {"r1": [[0, 10, 0.9], [1, 11, 0.5]], "r2": [[0, 20, 0.7]]}, update("metric_histories")


def test_a_server_without_the_bulk_endpoint_gets_none_and_a_history_that_may_be_cut_is_left_out(canned, client):
    canned.expect_oneshot_request(mlflow_compat.HISTORY_BULK).respond_with_data("not found", status=404)
    assert mlflow_compat.metric_histories(client, ["r1"], "loss") is None
    full = [{"key": "k", "value": 1.0, "timestamp": i, "step": i, "run_id": "r1"} for i in range(25000)]
    canned.expect_oneshot_request(mlflow_compat.HISTORY_BULK).respond_with_json({"metrics": full})
    assert mlflow_compat.metric_histories(client, ["r1", "r2"], "k") == {"r2": []}
