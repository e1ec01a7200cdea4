"""Which server answers, and what it supports: the support matrix on real servers of four kinds
(FastTrackML 0.6.0, a reimplementation in Go; the seed's MLflow 3.1.4; an MLflow 2.x; MLflow's
own 3.17.2), with --require, --summary-md and the JUnit properties."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from mlflowcheck.runtime.server import LocalServer
from tests.support import run_suite
from tests.test_diagnosis import OLD_SERVERS, old_python

FASTTRACKML = OLD_SERVERS / "fasttrackml-0.6.0" / "bin" / "fml"


@dataclass
class FastTrackMLServer(LocalServer):
    """FastTrackML's `fml server`, started and stopped like an mlflow server (own process group)."""

    def command(self) -> list[str]:
        return [
            str(FASTTRACKML), "server",
            "--listen-address", f"{self.host}:{self.port}",
            "--database-uri", f"sqlite://{self.workdir / 'fasttrackml.db'}",
            "--default-artifact-root", str(self.workdir / "artifacts"),
        ]  # fmt: skip


@pytest.fixture(scope="module")
def fasttrackml(tmp_path_factory):
    if not FASTTRACKML.exists():
        message = f"no FastTrackML at {FASTTRACKML} (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    srv = FastTrackMLServer(workdir=tmp_path_factory.mktemp("fasttrackml"))
    try:
        srv.start(deadline=30)
    except Exception as exc:
        pytest.fail(f"FastTrackML did not start: {exc}", pytrace=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def on_fasttrackml(fasttrackml, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("on-fasttrackml")
    junit, summary = tmp / "junit.xml", tmp / "summary.md"
    result = run_suite(tmp, "--tracking-uri", fasttrackml.url, "--junitxml", str(junit), "--summary-md", str(summary))
    return result, junit, summary


def groups(result) -> dict[str, str]:
    return {g["group"]: g["status"] for g in result.report["matrix"]["groups"]}


def test_fasttrackml_is_named_as_itself_and_gets_no_mlflow_version_advice(on_fasttrackml):
    result, _, _ = on_fasttrackml
    assert result.report["server"]["product"] == "FastTrackML"
    assert result.report["server"]["version"] == "0.6.0"
    assert result.report["server"]["mlflow"] is False
    assert "PASS  server" in result.output
    assert "FastTrackML 0.6.0, not MLflow's own server" in result.output
    # MLflow 0.6.0 is from 2018, and pip does nothing to a Go binary: neither is ever advised.
    assert result.check("versions")["status"] == "skipped"
    assert "pip install" not in result.output
    assert "mlflow==0.6.0" not in result.output
    assert "pin the client" not in result.output
    assert "Traceback" not in result.output
    assert "on FastTrackML 0.6.0 at this address" in result.output


def test_fasttrackml_gets_its_support_matrix_with_what_it_lacks_named_by_endpoint(on_fasttrackml):
    result, _, _ = on_fasttrackml
    assert groups(result) == {
        "server": "PASS",
        "info": "UNSUPPORTED",  # no server-info
        "tracking": "PASS",  # experiments, runs, params, metrics, search: a version check skips none of them
        "datasets": "UNSUPPORTED",  # runs/log-inputs is a 404
        "artifacts": "FAIL",  # a local --default-artifact-root: the client's own disk
        "models": "UNSUPPORTED",
        "registry": "UNSUPPORTED",
        "genai": "UNSUPPORTED",  # no traces, prompts or evaluation datasets
        "ui": "PASS",  # its copy of MLflow's classic UI at /mlflow/
    }
    statuses = result.statuses()
    assert statuses["browser"] == "skipped"  # the browser pages are MLflow's own web app's
    dataset = result.check("dataset")["message"]
    assert "FastTrackML 0.6.0 does not implement POST /api/2.0/mlflow/runs/log-inputs" in dataset
    assert "ENDPOINT_NOT_FOUND" in dataset
    assert "look in the server's log" not in dataset
    assert "FastTrackML 0.6.0 does not implement GET /api/2.0/mlflow/logged-models/" in result.check("model")["message"]
    registry = result.check("registry")["message"]
    assert "does not implement GET /api/2.0/mlflow/registered-models/get" in registry
    # The local artifact root is named with FastTrackML's fix, not mlflow server's flags.
    artifact = result.check("artifact")["message"]
    assert "a path on the client" in artifact
    assert "FastTrackML gives runs its --default-artifact-root" in artifact
    assert "--artifacts-only" not in result.output
    assert "  MISS  dataset" in result.output
    assert "Required but not supported by this server: datasets (dataset); models (model); registry (registry)." in (
        result.output
    )
    assert result.code == 1
    assert result.report["matrix"]["required"] == sorted(
        ["server", "tracking", "datasets", "artifacts", "models", "registry", "genai", "ui"]
    )
    # GenAI is required where the server has it: what FastTrackML lacks of it is named, not failed.
    assert "genai must pass where this server has its API; what it lacks does not fail the run" in result.output
    assert "FastTrackML 0.6.0 does not implement POST /v1/traces" in result.check("otlp")["message"]


def test_the_matrix_is_written_as_markdown_and_as_junit_properties(on_fasttrackml):
    _, junit, summary = on_fasttrackml
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## MLflow deployment check: http://127.0.0.1:")
    assert (
        "| **datasets** (UNSUPPORTED) | yes | dataset | UNSUPPORTED | FastTrackML 0.6.0 does not implement POST" in text
    )
    assert "| **tracking** (PASS) | yes | experiment | PASS |" in text
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert properties["matrix.tracking"] == "PASS"
    assert properties["matrix.registry"] == "UNSUPPORTED"
    assert properties["matrix.artifacts"] == "FAIL"


def test_require_decides_the_exit_code_from_the_groups_named(fasttrackml, tmp_path):
    works = run_suite(tmp_path, "--tracking-uri", fasttrackml.url, "--require", "server,tracking,ui")
    assert works.code == 0, works.output
    assert "Verdict: PASS" in works.output
    assert {g["group"]: g["required"] for g in works.report["matrix"]["groups"]}["registry"] is False
    lacks = run_suite(tmp_path, "--tracking-uri", fasttrackml.url, "--require", "tracking,registry")
    assert lacks.code == 1, lacks.output
    assert "Required but not supported by this server: registry (registry)." in lacks.output


def test_an_unknown_group_in_require_is_refused_with_the_groups_listed(tmp_path):
    result = run_suite(tmp_path, "--require", "tracking,regsitry")
    assert result.code == 2
    assert "unknown feature group 'regsitry'; the groups: server, info, tracking, datasets" in result.output
    assert "Tip: run `test_mlflow_local.py --help`" in result.output


def test_the_seed_era_3_1_4_server_lacks_only_what_came_later(fresh_server, tmp_path):
    srv = fresh_server(python=old_python("3.1.4"))
    result = run_suite(tmp_path, "--tracking-uri", srv.url, "--summary-md", str(tmp_path / "s.md"))
    assert result.code == 0, result.output  # what it lacks is in no required group
    assert result.report["server"]["product"] == "MLflow"
    assert result.report["server"]["version"] == "3.1.4"
    assert groups(result)["info"] == groups(result)["genai"] == "UNSUPPORTED"
    assert {g: s for g, s in groups(result).items() if g not in ("info", "genai")} == dict.fromkeys(
        ["server", "tracking", "datasets", "artifacts", "models", "registry", "ui"], "PASS"
    )
    # GenAI on 3.1.4: the client falls back to the v2 trace API, which keeps the trace under an id
    # of the server's own; found by search, read back whole, a WARN. Prompts are registered models.
    statuses = result.statuses()
    assert (statuses["trace"], statuses["prompts"]) == ("warn", "passed"), result.output
    assert "WARN  trace" in result.output
    trace = result.check("trace")["message"]
    assert "3 spans read back equal" in trace
    assert "spans in traces.json in the artifact store" in trace
    assert "MLflow 3.1.4 has no v3 trace API, so the client fell back to the v2 API" in result.output
    assert "not in this version: the otlp check needs MLflow 3.4 or newer" in result.check("otlp")["message"]
    for name, endpoint in (("assessments", "/assessments"), ("evaluation", "POST /api/3.0/mlflow/datasets/create")):
        assert statuses[name] == "unsupported"
        assert "MLflow 3.1.4 does not implement" in result.check(name)["message"]
        assert endpoint in result.check(name)["message"]
    assert result.check("server_info")["message"] == (
        "not in this version: the server_info check needs MLflow 3.10 or newer, the server runs MLflow 3.1.4.\n"
        "Tip: upgrade the server to MLflow 3.10 or newer to have it."
    )
    assert "| **info** (UNSUPPORTED) | no | server_info | UNSUPPORTED | not in this version" in (
        (tmp_path / "s.md").read_text(encoding="utf-8")
    )


def test_an_mlflow_2_server_fails_versions_and_still_tracks(fresh_server, tmp_path):
    srv = fresh_server(python=old_python("2.22.5"))
    result = run_suite(tmp_path, "--tracking-uri", srv.url)
    assert result.code == 1
    assert "upgrade the server to MLflow 3.x, 3.1.4 or newer" in result.check("versions")["message"]
    assert "pin" not in result.check("versions")["message"]
    statuses = result.statuses()
    # A version mismatch skips nothing by itself: what a 2.x server has, passes.
    assert [statuses[c] for c in ("experiment", "params", "metrics", "search", "run")] == ["passed"] * 5
    assert statuses["model"] == statuses["registry"] == "unsupported"
    assert "not in this version: the model check needs MLflow 3.0 or newer" in result.check("model")["message"]
    # GenAI on 2.x: the v2 trace API (a WARN, found by search), prompts as registered models, the rest missing.
    assert (statuses["trace"], statuses["prompts"]) == ("warn", "passed"), result.output
    assert "MLflow 2.22.5 has no v3 trace API, so the client fell back to the v2 API" in result.output
    assert [statuses[c] for c in ("otlp", "assessments", "evaluation")] == ["unsupported"] * 3


def test_mlflows_own_server_passes_every_group_and_describes_itself(server, tmp_path):
    result = run_suite(tmp_path, "--tracking-uri", server.url)
    result.assert_all_passed()
    assert set(groups(result).values()) == {"PASS"}
    assert result.report["server"]["server_info"]["store_type"] == "SqlStore"
    assert result.check("server_info")["message"].startswith("store SqlStore; workspaces off;")
    assert "Support matrix (MLflow 3.17.2; * = required to pass):" in result.output
