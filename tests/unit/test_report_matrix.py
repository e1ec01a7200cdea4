"""The support matrix: group statuses, what a required group lacks, and its three renderings."""

from __future__ import annotations

import pytest

from mlflowcheck.core.errors import EXIT_FAILED, EXIT_OK
from mlflowcheck.core.observations import Implementation
from mlflowcheck.core.options import Options
from mlflowcheck.core.state import CheckResult, RunState
from mlflowcheck.engine.registry import (
    GROUP_OF,
    GROUPS,
    SEED_GROUPS,
    lenient_groups,
    opt_in_flags,
    required_groups,
)
from mlflowcheck.report import matrix

pytestmark = pytest.mark.unit


@pytest.fixture
def fasttrackml(tmp_path) -> RunState:
    state = RunState(Options("http://h:1"), tmp=tmp_path)
    state.implementation = Implementation(product="FastTrackML", version="0.6.0")
    state.results = [
        CheckResult("server", "passed", 0.1, "FastTrackML 0.6.0"),
        CheckResult("versions", "skipped", 0.0, "not MLflow's own server"),
        CheckResult("experiment", "passed", 0.1, "made"),
        CheckResult("dataset", "unsupported", 0.0, "FastTrackML 0.6.0 does not implement POST runs/log-inputs."),
        CheckResult("artifact", "failed", 0.1, "The run's artifact URI is 'file:///a' | a path\nTip: fix"),
        CheckResult("big_artifact", "skipped", 0.0, "needs 'artifact', which failed"),
        CheckResult("registry", "unsupported", 0.0, "does not implement GET registered-models/get"),
    ]  # fmt: skip
    return state


def build(state, required=SEED_GROUPS):
    return matrix.build(state, GROUP_OF, GROUPS, frozenset(required))


def test_a_group_fails_on_a_failure_else_is_unsupported_else_passes_and_groups_that_did_not_run_are_left_out(
    fasttrackml,
):
    found = build(fasttrackml)
    assert [(g["group"], g["status"]) for g in found["groups"]] == [
        ("server", "PASS"),  # a skipped check beside a passed one: the group passes
        ("tracking", "PASS"),
        ("datasets", "UNSUPPORTED"),
        ("artifacts", "FAIL"),
        ("registry", "UNSUPPORTED"),
    ]
    assert found["server"]["product"] == "FastTrackML"
    assert matrix.group_status([{"status": "SKIPPED"}]) == "SKIPPED"
    assert matrix.group_status([{"status": "WARN"}]) == "PASS"


def test_what_a_required_group_lacks_is_listed_and_an_unrequired_one_is_not(fasttrackml):
    assert matrix.missing(build(fasttrackml)) == ["datasets (dataset)", "registry (registry)"]
    assert matrix.missing(build(fasttrackml, ("tracking", "registry"))) == ["registry (registry)"]


def test_the_exit_code_counts_only_the_required_groups(fasttrackml):
    assert fasttrackml.exit_code(frozenset(SEED_GROUPS), GROUP_OF) == EXIT_FAILED
    assert fasttrackml.exit_code(frozenset({"server", "tracking"}), GROUP_OF) == EXIT_OK
    assert fasttrackml.exit_code(frozenset({"server", "registry"}), GROUP_OF) == EXIT_FAILED  # unsupported
    assert fasttrackml.exit_code() == EXIT_FAILED  # no requirement given: every group counts


def test_a_run_cut_short_or_a_required_check_blocked_by_its_prerequisite_is_no_pass(tmp_path):
    state = RunState(Options("http://h:1"), tmp=tmp_path)
    state.results = [
        CheckResult("artifact", "failed", 0.1, "broken"),
        CheckResult("model", "skipped", 0.0, "needs 'artifact', which failed"),
        CheckResult("registry", "skipped", 0.0, "needs 'model', which was skipped"),
    ]
    assert state.exit_code(frozenset({"registry"}), GROUP_OF) == EXIT_FAILED
    state.results[1:] = [CheckResult("registry", "skipped", 0.0, "needs 'model', which was not selected")]
    assert state.exit_code(frozenset({"registry"}), GROUP_OF) == EXIT_OK  # -k left it out
    state.timed_out = "server_info"
    assert state.exit_code(frozenset({"registry"}), GROUP_OF) == EXIT_FAILED


def test_server_text_in_the_markdown_is_inert():
    assert matrix.markdown_text("a | b <img src=x> [link](http://x) `c`") == (
        "a \\| b &lt;img src=x> \\[link\\](http://x) \\`c\\`"
    )


def test_the_text_shows_each_group_and_the_checks_of_a_group_that_did_not_pass(fasttrackml):
    text = matrix.text(build(fasttrackml))
    assert text.splitlines()[:5] == [
        "Support matrix (FastTrackML 0.6.0; * = required to pass):",
        "  * server      PASS",
        "      versions      SKIPPED      not MLflow's own server",  # what did not run is shown, in any group
        "  * tracking    PASS",
        "  * datasets    UNSUPPORTED",
    ]
    assert "      dataset       UNSUPPORTED  FastTrackML 0.6.0 does not implement POST" in text
    assert "experiment" not in text  # a passing check is the check lines' business
    assert text.endswith("Required but not supported by this server: datasets (dataset); registry (registry).\n")


def test_the_markdown_is_a_table_with_a_row_per_check_and_pipes_escaped(fasttrackml):
    text = matrix.markdown(build(fasttrackml), "MLflow deployment check: http://h:1", "FAIL: 2 passed")
    lines = text.splitlines()
    assert lines[:5] == [
        "## MLflow deployment check: http://h:1",
        "",
        "**FAIL: 2 passed**",
        "",
        "| Group | Required | Check | Status | Details |",
    ]
    assert (
        "| **artifacts** (FAIL) | yes | artifact | FAIL | The run's artifact URI is 'file:///a' \\| a path Tip: fix |"
        in (lines)
    )
    assert "|  |  | big_artifact | SKIPPED | needs 'artifact', which failed |" in lines


def test_each_group_is_a_junit_property(fasttrackml):
    assert matrix.properties(build(fasttrackml)) == {
        "matrix.server": "PASS",
        "matrix.tracking": "PASS",
        "matrix.datasets": "UNSUPPORTED",
        "matrix.artifacts": "FAIL",
        "matrix.registry": "UNSUPPORTED",
    }


def test_the_default_requirement_is_the_seeds_groups_genai_where_supported_and_every_group_an_option_turned_on():
    assert required_groups(Options("http://h:1")) == frozenset({*SEED_GROUPS, "genai"})
    assert lenient_groups(Options("http://h:1")) == {"genai"}
    assert lenient_groups(Options("http://h:1", require=("genai",))) == frozenset()
    assert required_groups(Options("http://h:1", load_clients=2, cleanup=True)) == frozenset(
        {*SEED_GROUPS, "genai", "load", "cleanup"}
    )
    # What an option asked for stays required under --require too.
    assert required_groups(Options("http://h:1", require=("tracking",), load_clients=2)) == {"tracking", "load"}
    assert opt_in_flags("security") == ["--security", "--security-write"]
    assert opt_in_flags("tracking") == []
    assert "info" not in SEED_GROUPS  # what the server says of itself is reported, never required by default


def genai_run(*results: CheckResult) -> RunState:
    suite = RunState(Options("http://h:1"))
    suite.implementation = Implementation("MLflow", "3.1.4")
    suite.results = [CheckResult("params", "passed", 0.1), *results]
    return suite


def test_a_server_without_the_genai_api_passes_by_default_and_fails_when_genai_is_required():
    suite = genai_run(
        CheckResult("trace", "passed", 0.1),
        CheckResult("otlp", "unsupported", 0, "not in this version: the otlp check needs MLflow 3.4 or newer"),
        CheckResult("assessments", "skipped", 0, "needs 'trace', which this server does not support"),
    )
    default = Options("http://h:1")
    assert suite.exit_code(required_groups(default), GROUP_OF, lenient_groups(default)) == EXIT_OK
    strict = Options("http://h:1", require=("genai",))
    assert suite.exit_code(required_groups(strict), GROUP_OF, lenient_groups(strict)) == EXIT_FAILED
    built = matrix.build(suite, GROUP_OF, GROUPS, required_groups(default), lenient_groups(default))
    assert matrix.missing(built) == []
    assert "genai must pass where this server has its API; what it lacks does not fail the run" in matrix.text(built)


def test_lost_traces_fail_the_run_by_default():
    suite = genai_run(CheckResult("trace", "failed", 0.1, "The server holds 2 of the trace's 3 spans"))
    default = Options("http://h:1")
    assert suite.exit_code(required_groups(default), GROUP_OF, lenient_groups(default)) == EXIT_FAILED
