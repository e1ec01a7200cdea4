"""The reports the user asks for (report.files): the --json document field by field, the JUnit
properties, secrets scrubbed, and a report that cannot be written."""

from __future__ import annotations

import json
import time

import pytest

from mlflowcheck.core.loadstats import Loss, Sent, figures
from mlflowcheck.core.options import Options
from mlflowcheck.core.state import CheckResult, RunState
from mlflowcheck.core.target import parse_target
from mlflowcheck.core.timeline import Timeline
from mlflowcheck.report.files import JSON_SCHEMA_VERSION, json_document, json_text, properties, write_report


@pytest.fixture
def state(tmp_path) -> RunState:
    """A run that did a little of everything."""
    suite = RunState(
        # The engine gives Options the URI without its user info (engine.run).
        Options("http://h:1/ml", server_started_by_suite=True),
        target=parse_target("http://h:1/ml"),
        client_version="3.17.2",
        server_version="3.16.0",
        experiment_id="4",
        experiment_name="本地测试实验_1",
        run_id="r1",
        topology={"artifacts": "proxied"},
        screenshots=["reports/screenshots/run.png"],
        cleanup_report=["run r1 deleted"],
        timeline=Timeline(zero=100.0),
        started=time.time() - 2.5,
        tmp=tmp_path,
    )
    suite.timeline.add("check network", 100.5, 101.0)
    suite.results = [
        CheckResult("network", "passed", 0.123456, "reached h:1"),
        CheckResult("security", "passed", 1.0, "missing: x", warning=True),
        CheckResult("model", "failed", 2.0, "The model differs.\nTip: look"),
    ]
    return suite


def with_load(suite: RunState) -> RunState:
    sent = Sent(
        metrics={"m": [(0, 1.0, 1)] * 4},
        requests=[("runs/log-batch", 10.0, 10.25, 4), ("runs/log-metric", 10.5, 10.625, 1)],
        errors=[("runs/log-batch", "HTTP 503", 10.75)],
    )
    suite.load = figures([sent], 10.0, 1.0, Loss(lost=1))
    return suite


def test_the_json_document_has_every_field_of_schema_3(state):
    document = json_document(state, 1)
    duration = document.pop("duration")
    assert 2.5 <= duration < 5.0
    assert document == {
        "schema_version": 3,
        "verdict": "fail",
        "exit_code": 1,
        "tracking_uri": "http://h:1/ml",
        "server_started_by_suite": True,
        "client_version": "3.17.2",
        "server_version": "3.16.0",
        "server": None,
        "matrix": None,
        "experiment_id": "4",
        "experiment_name": "本地测试实验_1",
        "run_id": "r1",
        "experiment_url": "http://h:1/ml/#/experiments/4?workflowType=machine_learning",
        "run_url": "http://h:1/ml/#/experiments/4/runs/r1?workflowType=machine_learning",
        "screenshots": ["reports/screenshots/run.png"],
        "topology": {"artifacts": "proxied"},
        "load": None,
        "cleanup": ["run r1 deleted"],
        "compare": None,
        "timeline": [{"phase": "check network", "start": 0.5, "end": 1.0}],
        "checks": [
            {"name": "network", "status": "passed", "duration": 0.1235, "message": "reached h:1"},
            {"name": "security", "status": "warn", "duration": 1.0, "message": "missing: x"},
            {"name": "model", "status": "failed", "duration": 2.0, "message": "The model differs.\nTip: look"},
        ],
    }
    assert JSON_SCHEMA_VERSION == 3


@pytest.mark.parametrize(("code", "verdict"), [(0, "pass"), (1, "fail"), (2, "error")])
def test_the_verdict_word_follows_the_exit_code(state, code, verdict):
    document = json_document(state, code)
    assert (document["verdict"], document["exit_code"]) == (verdict, code)


def test_a_run_that_stopped_before_parsing_the_uri_reports_the_uri_given(tmp_path):
    state = RunState(Options("not a uri"), tmp=tmp_path)
    document = json_document(state, 2)
    assert document["tracking_uri"] == "not a uri"
    assert (document["experiment_url"], document["run_url"], document["checks"]) == (None, None, [])


def test_the_load_figures_are_in_the_document_with_their_seconds(state):
    document = json_document(with_load(state), 0)
    assert document["load"] == {
        "clients": 1,
        "seconds": 1.0,
        "points": 4,
        "requests": 2,
        "traces": 0,
        "spans": 0,
        "points_per_s": 4.0,
        "requests_per_s": 2.0,
        "latency_ms": {
            "runs/log-batch": {"count": 1, "p50": 250.0, "p95": 250.0, "p99": 250.0},
            "runs/log-metric": {"count": 1, "p50": 125.0, "p95": 125.0, "p99": 125.0},
        },
        "errors": {"HTTP 503": 1},
        "lost": 1,
        "duplicated": 0,
        "altered": 0,
        "workers": {},  # one local run: no Locust workers of its own to name
        "per_second": [
            {"second": 0, "points_per_s": 5, "requests_per_s": 2, "p50_ms": 125.0, "p95_ms": 250.0, "errors": 1}
        ],
    }


def test_the_json_text_is_the_document_readable_with_chinese_unescaped(state):
    text = json_text(state, 1)
    assert text.endswith("}\n")
    assert '"experiment_name": "本地测试实验_1"' in text
    assert text.startswith('{\n  "schema_version": 3,')
    parsed = json.loads(text)
    parsed.pop("duration")
    expected = json_document(state, 1)
    expected.pop("duration")
    assert parsed == expected


def test_the_json_text_never_holds_a_secret_of_the_process(state, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-canary-json")
    state.results.append(CheckResult("access", "failed", 0.1, "the server quoted pw-canary-json back"))
    state.topology["note"] = "token pw-canary-json"
    text = json_text(state, 1)
    assert "pw-canary-json" not in text
    assert '"message": "the server quoted *** back"' in text
    assert '"note": "token ***"' in text


def test_the_junit_properties_are_the_runs_facts_as_text(state):
    assert properties(state) == {
        "tracking_uri": "http://h:1/ml",
        "server_started_by_suite": "true",
        "client_version": "3.17.2",
        "server_version": "3.16.0",
        "server_product": "",
        "server_auth": "",
        "experiment_id": "4",
        "run_id": "r1",
        "warnings": "security",
    }


def test_the_junit_properties_flatten_the_load_figures(state):
    props = properties(with_load(state))
    load = {k: v for k, v in props.items() if k.startswith("load.")}
    assert load == {
        "load.clients": "1",
        "load.seconds": "1.0",
        "load.points": "4",
        "load.requests": "2",
        "load.traces": "0",
        "load.spans": "0",
        "load.points_per_s": "4.0",
        "load.requests_per_s": "2.0",
        "load.lost": "1",
        "load.duplicated": "0",
        "load.altered": "0",
        "load.latency_ms.runs/log-batch.p50": "250.0",
        "load.latency_ms.runs/log-batch.p95": "250.0",
        "load.latency_ms.runs/log-batch.p99": "250.0",
        "load.latency_ms.runs/log-metric.p50": "125.0",
        "load.latency_ms.runs/log-metric.p95": "125.0",
        "load.latency_ms.runs/log-metric.p99": "125.0",
        "load.errors": "HTTP 503: 1",
    }


def test_a_load_run_without_errors_says_0_errors(state):
    state.load = figures([Sent(requests=[("runs/log-batch", 10.0, 10.5, 1)])], 10.0, 1.0, Loss())
    assert properties(state)["load.errors"] == "0"


def test_a_report_is_written_as_utf8(tmp_path):
    path = tmp_path / "result.json"
    assert write_report(path, "本地 ✓\n", "JSON report") is None
    assert path.read_bytes() == "本地 ✓\n".encode()


def test_a_report_that_cannot_be_written_is_a_fatal_error_naming_the_file(tmp_path):
    path = tmp_path / "no-such-folder" / "result.json"
    failure = write_report(path, "{}", "JSON report")
    assert failure.fatal
    assert failure.message == (
        f"The JSON report could not be written to {path}: No such file or directory; the results above are not in it."
    )
    assert failure.tip == "free space on that disk or give another path, then run again."


def test_the_comparison_is_in_the_document_and_flattened_into_the_junit_properties(state):
    state.comparison = {
        "match_by": "id",
        "kinds": {"run": {"compared": 2, "equal": 1, "missing": 1, "altered": 0, "extra": 0}},
        "examples": {"run": ["run r1 (train): missing"]},
    }
    assert json_document(state, 1)["compare"] == state.comparison
    flat = {k: v for k, v in properties(state).items() if k.startswith("compare.")}
    assert flat == {
        "compare.match_by": "id",
        "compare.run.compared": "2",
        "compare.run.equal": "1",
        "compare.run.missing": "1",
        "compare.run.altered": "0",
        "compare.run.extra": "0",
    }
