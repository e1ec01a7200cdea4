"""The suite against a healthy server: every check passes and the data really is there."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import xml.etree.ElementTree as ET

import pytest

from mlflowcheck.core import seed
from tests.support import ALL_CHECKS, run_suite


@pytest.fixture(scope="module")
def passing(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("passing")
    junit = tmp / "junit.xml"
    result = run_suite(tmp, "--tracking-uri", server.url, "--junitxml", str(junit))
    return result, junit, server


def db_rows(server, sql: str, *params):
    with sqlite3.connect(server.workdir / "my.db") as con:
        return con.execute(sql, params).fetchall()


def test_suite_exits_zero_with_every_check_passed(passing):
    result, _, _ = passing
    result.assert_all_passed()
    assert result.report["verdict"] == "pass"


def test_output_has_one_line_per_check_a_verdict_and_ui_addresses(passing):
    result, _, server = passing
    lines = result.output.splitlines()
    for name, status in result.statuses().items():
        assert any(line.split()[:2] == [status[:4].upper(), name] for line in lines), name
    assert re.search(r"^  SKIP  browser +--no-ui$", result.output, re.MULTILINE)
    assert f"Verdict: PASS: {len(ALL_CHECKS) - 1} passed, 0 failed, 1 skipped" in result.output
    assert ", on MLflow 3.17.2 at this address" in result.output
    assert result.report["server_started_by_suite"] is False
    assert result.report["schema_version"] == 3
    exp, run = result.report["experiment_id"], result.report["run_id"]
    # Addresses that open in the UI's "Model training" view, not the GenAI one.
    assert f"Experiment: {server.url}/#/experiments/{exp}?workflowType=machine_learning" in result.output
    assert f"Run:        {server.url}/#/experiments/{exp}/runs/{run}?workflowType=machine_learning" in result.output


def test_junit_xml_lists_every_check_as_a_passed_testcase(passing):
    _, junit, _ = passing
    cases = ET.parse(junit).getroot().iter("testcase")
    names = {c.get("name").removeprefix("check_"): c for c in cases}
    assert sorted(names) == sorted(ALL_CHECKS)
    outcomes = {name: [child.tag for child in case] for name, case in names.items()}
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert properties["server_started_by_suite"] == "false"
    assert properties["server_version"] == "3.17.2"
    assert outcomes == {**dict.fromkeys(ALL_CHECKS, []), "browser": ["skipped"]}


def test_experiment_run_params_and_metrics_are_in_the_servers_database(passing):
    result, _, server = passing
    run_id = result.report["run_id"]
    [(exp_name, stage, location)] = db_rows(
        server,
        "select name, lifecycle_stage, artifact_location from experiments where experiment_id = ?",
        result.report["experiment_id"],
    )
    assert exp_name == result.report["experiment_name"]
    assert exp_name.startswith("本地测试实验_")
    assert (stage, location.split(":")[0]) == ("active", "mlflow-artifacts")
    kind = db_rows(
        server,
        "select value from experiment_tags where experiment_id = ? and key = 'mlflow.experimentKind'",
        result.report["experiment_id"],
    )
    assert kind == [("custom_model_development",)]
    assert db_rows(server, "select name, status from runs where run_uuid = ?", run_id) == [("本地测试运行", "FINISHED")]
    params = dict(db_rows(server, "select key, value from params where run_uuid = ?", run_id))
    assert params == {"learning_rate": "0.01", "batch_size": "32", "epochs": "10", "model_type": "local_test"}
    steps = db_rows(server, "select key, step from metrics where run_uuid = ? order by key, step", run_id)
    assert steps == [(k, s) for k in ("accuracy", "loss") for s in range(5)]


def test_dataset_with_its_context_is_in_the_servers_database(passing):
    result, _, server = passing
    rows = db_rows(
        server,
        "select d.name, d.dataset_source_type, t.value from inputs i"
        " join datasets d on d.dataset_uuid = i.source_id join input_tags t on t.input_uuid = i.input_uuid"
        " where i.destination_id = ? and t.name = 'mlflow.data.context'",
        result.report["run_id"],
    )
    assert rows == [(seed.DATASET_NAME, "code", "训练数据")]


def test_report_and_model_files_are_in_the_servers_artifact_directory(passing):
    result, _, server = passing
    exp, run = result.report["experiment_id"], result.report["run_id"]
    report = server.workdir / "mlartifacts" / exp / run / "artifacts" / "reports" / "test_report.txt"
    text = report.read_text(encoding="utf-8")
    assert run in text
    assert result.report["experiment_name"] in text
    assert "PASS" in text
    assert "final_report" not in text.split("results of the checks")[0]
    digest = hashlib.sha256(report.read_bytes()).hexdigest()
    assert digest[:12] in result.check("final_report")["message"]
    # The seed's model (the trace's app model, a logged model too, has no files).
    model_id = result.check("model")["message"].split(",")[0]
    model_dir = server.workdir / "mlartifacts" / exp / "models" / model_id / "artifacts"
    names = {p.name for p in model_dir.iterdir()}
    assert {"MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt", "model.skops"} <= names


def test_each_run_adds_a_version_to_the_registered_model(passing, tmp_path):
    _, _, server = passing
    versions_before = db_rows(
        server, "select max(version) from model_versions where name = ?", "mlflow-local-test-model"
    )
    again = run_suite(tmp_path, "--tracking-uri", server.url, "-k", "not ui", "--model-format", "pickle")
    assert again.code == 0, again.output
    [(latest,)] = db_rows(server, "select max(version) from model_versions where name = ?", "mlflow-local-test-model")
    assert latest == versions_before[0][0] + 1
    # Each run points an alias of its own at its version: no run moves another's.
    alias = f"check-{again.report['run_id'][:12]}"
    assert db_rows(
        server,
        "select version from registered_model_aliases where name = ? and alias = ?",
        "mlflow-local-test-model",
        alias,
    ) == [(latest,)]
    assert "model.pkl (pickle)" in again.check("model")["message"]
