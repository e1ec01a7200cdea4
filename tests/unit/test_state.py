"""The run's data (core.state): the exit code and counts from the verdicts, the time left under
--timeout, the run's alias, the UI addresses, notes and warnings, the ledger of what was created."""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest

from mlflowcheck.core.options import Options
from mlflowcheck.core.state import CheckResult, Created, RunState, run_alias
from mlflowcheck.core.target import parse_target


@pytest.fixture
def state(tmp_path) -> RunState:
    return RunState(Options("http://h:1"), target=parse_target("http://h:1/mlflow"), tmp=tmp_path)


def results(*statuses: str, fatal: bool = False, warning: str = "") -> list[CheckResult]:
    return [
        CheckResult(f"check{i}", status, 0.5, fatal=fatal and status == "failed", warning=f"check{i}" == warning)
        for i, status in enumerate(statuses)
    ]


# --- the verdict ---------------------------------------------------------------------------------


def test_every_check_passed_or_skipped_is_exit_code_0(state):
    assert state.exit_code() == 0, "no check at all is no failure"
    state.results = results("passed", "skipped", "passed")
    assert state.exit_code() == 0


def test_a_failed_check_is_exit_code_1(state):
    state.results = results("passed", "failed", "skipped")
    assert state.exit_code() == 1


def test_a_fatal_failure_is_exit_code_2_even_beside_ordinary_failures(state):
    state.results = [*results("failed"), CheckResult("network", "failed", 0.1, fatal=True)]
    assert state.exit_code() == 2


def test_counts_have_every_status_and_the_warnings_among_the_passes(state):
    assert state.counts() == {"passed": 0, "failed": 0, "unsupported": 0, "skipped": 0, "warned": 0}
    state.results = results("passed", "passed", "failed", "skipped", "skipped", "skipped", warning="check1")
    assert state.counts() == {"passed": 2, "failed": 1, "unsupported": 0, "skipped": 3, "warned": 1}


def test_the_outcome_of_a_check_is_its_status_or_none_before_it_ran(state):
    state.results = [CheckResult("network", "passed", 0.1), CheckResult("access", "failed", 0.2)]
    assert state.outcome("access") == "failed"
    assert state.outcome("network") == "passed"
    assert state.outcome("model") is None


# --- notes and warnings --------------------------------------------------------------------------


def test_a_note_is_kept_beside_its_check_and_an_empty_one_changes_nothing(state):
    state.note("versions", "minor skew: server 3.16.0, client 3.17.2")
    state.note("versions", "")
    assert state.notes == {"versions": "minor skew: server 3.16.0, client 3.17.2"}
    assert state.warnings == set()


def test_a_warning_is_a_note_and_marks_the_check_as_warned(state):
    state.warn("security", "missing: X-Content-Type-Options")
    assert state.notes == {"security": "missing: X-Content-Type-Options"}
    assert state.warnings == {"security"}


# --- time left under --timeout -------------------------------------------------------------------


def test_without_a_timeout_the_time_left_is_the_cap(state):
    assert state.remaining(30.0) == 30.0


def test_with_a_timeout_the_time_left_is_what_is_left_at_most_the_cap(tmp_path):
    state = RunState(Options("http://h:1", timeout=100.0), started=time.time() - 40, tmp=tmp_path)
    assert 59.0 < state.remaining(600.0) <= 60.0
    assert state.remaining(5.0) == 5.0


def test_an_expired_timeout_leaves_a_tenth_of_a_second_never_zero_or_less(tmp_path):
    # A wait of 0 or less would mean "forever" to some APIs, or raise in others.
    state = RunState(Options("http://h:1", timeout=10.0), started=time.time() - 60, tmp=tmp_path)
    assert state.remaining(30.0) == 0.1


def test_the_expiry_names_the_timeout_and_the_check_that_was_running(tmp_path):
    state = RunState(Options("http://h:1", timeout=90.0), tmp=tmp_path)
    state.timed_out = "model"
    assert state.expiry == "the --timeout of 90s expired during 'model'"


# --- the alias -----------------------------------------------------------------------------------


def test_the_runs_alias_is_the_option_else_check_and_the_first_12_characters_of_the_run_id(state):
    assert run_alias(Options("http://h:1"), "0123456789abcdef0123") == "check-0123456789ab"
    assert run_alias(Options("http://h:1"), None) == "check-none"
    assert run_alias(Options("http://h:1", alias="champion"), "0123456789abcdef") == "champion"
    state.run_id = "fedcba9876543210"
    assert state.alias == "check-fedcba987654"


# --- addresses in the UI -------------------------------------------------------------------------


def test_ui_addresses_open_the_model_training_view_under_the_servers_prefix(state):
    assert state.ui_url("/models") == "http://h:1/mlflow/#/models?workflowType=machine_learning"
    assert (state.experiment_url, state.run_url) == (None, None)
    state.experiment_id = "7"
    assert state.experiment_url == "http://h:1/mlflow/#/experiments/7?workflowType=machine_learning"
    assert state.run_url is None, "no run yet"
    state.run_id = "abc"
    assert state.run_url == "http://h:1/mlflow/#/experiments/7/runs/abc?workflowType=machine_learning"
    assert state.run_page_url("artifacts") == (
        "http://h:1/mlflow/#/experiments/7/runs/abc/artifacts?workflowType=machine_learning"
    )


def test_without_a_target_there_is_no_ui_address(tmp_path):
    state = RunState(Options("not parsed"), tmp=tmp_path)
    state.experiment_id, state.run_id = "1", "r"
    assert (state.ui_url("/"), state.experiment_url, state.run_url) == (None, None, None)


def test_the_worker_s_ledger_adds_what_it_created_and_keeps_what_the_main_process_recorded():
    created = Created(prompt="mlflowcheck-prompt-r1-1")
    worker = asdict(Created(model_id="m-1", registered_version="3", registered_model_created=True))
    created.take(worker)
    assert (created.prompt, created.model_id, created.registered_version) == ("mlflowcheck-prompt-r1-1", "m-1", "3")
    assert created.registered_model_created is True
