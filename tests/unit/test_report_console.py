"""What the suite prints (report.console): the check lines, the verdict, the timeline, and the
two rules of everything shown: server text cannot drive the terminal, and no secret is written."""

from __future__ import annotations

import io
import re
import time

import pytest

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.options import Options
from mlflowcheck.core.state import CheckResult, RunState
from mlflowcheck.core.target import parse_target
from mlflowcheck.core.timeline import Timeline
from mlflowcheck.report import console as render


@pytest.fixture
def state(tmp_path) -> RunState:
    return RunState(Options("http://h:1"), target=parse_target("http://h:1"), tmp=tmp_path)


# --- text from the server --------------------------------------------------------------------


def test_terminal_escape_sequences_from_a_server_are_escaped():
    evil = "boom\x1b[2J\x1b]0;pwned\x07\r\u202egnp.exe\x9b"
    shown = render.printable(evil)
    assert shown == "boom\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\u202egnp.exe\\x9b"
    assert render.CONTROL.search(shown) is None


def test_newlines_and_chinese_text_are_kept():
    assert render.printable("本地测试实验_1\nTip: x") == "本地测试实验_1\nTip: x"


@pytest.mark.parametrize(
    ("char", "shown"),
    [("\x00", "\\x00"), ("\x7f", "\\x7f"), ("\u200b", "\\u200b"), ("\u2028", "\\u2028"), ("\u2066", "\\u2066")],
)
def test_nul_delete_zero_width_and_bidi_characters_are_escaped(char, shown):
    assert render.printable(f"a{char}b") == f"a{shown}b"


def test_tabs_are_kept():
    assert render.printable("a\tb") == "a\tb"


def test_printed_text_never_holds_a_secret_of_the_process(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-canary-77")
    assert render.printable("auth failed for pw-canary-77\x1b") == "auth failed for ***\\x1b"


# --- one line per check ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            CheckResult("network", "passed", 0.123, "reached 127.0.0.1:5000"),
            "  PASS  network       0.12s  reached 127.0.0.1:5000\n",
        ),
        (CheckResult("model", "skipped", 0.0, "needs access"), "  SKIP  model                needs access\n"),
        (
            CheckResult("security", "passed", 2.0, "missing: x", warning=True),
            "  WARN  security      2.00s  missing: x\n",
        ),
        (CheckResult("ui", "passed", 12.345), "  PASS  ui           12.35s\n"),
    ],
)
def test_a_check_line_has_the_mark_the_name_the_time_and_what_it_saw(result, line):
    assert render.check_line(result) == line


def test_the_rest_of_a_message_is_indented_under_its_first_line():
    result = CheckResult("access", "failed", 1.5, "The server refused.\nTip: do x")
    assert render.check_line(result) == (
        "  FAIL  access        1.50s  The server refused.\n                        Tip: do x\n"
    )


def test_the_progress_line_is_escaped_and_cut_to_160_characters():
    line = render.progress_line("load", "load: 1.0s of 20s\x1b[2J" + "x" * 200)
    assert line.startswith("  ....  load                 load: 1.0s of 20s\\x1b[2Jxxx")
    assert len(line) == 160


# --- the verdict -----------------------------------------------------------------------------


def verdict_parts(line: str) -> tuple[str, str]:
    """The verdict line without its duration, and the duration."""
    match = re.fullmatch(r"(Verdict: .*) in (\d+\.\d)s(.*)\n", line)
    assert match, line
    return f"{match.group(1)} in Ns{match.group(3)}", match.group(2)


def test_the_verdict_counts_the_checks_and_says_whose_server_it_is_about(state):
    state.results = [
        CheckResult("a", "passed", 1), CheckResult("b", "passed", 1, warning=True),
        CheckResult("c", "failed", 1), CheckResult("d", "skipped", 0),
    ]  # fmt: skip
    state.started = time.time() - 12.0
    line, seconds = verdict_parts(render.verdict_line(state, 1))
    assert line == (
        "Verdict: FAIL: 2 passed (1 with warnings), 1 failed, 1 skipped in Ns, on the server at this address"
    )
    assert 12.0 <= float(seconds) < 14.0


def test_a_pass_on_a_server_the_suite_started_says_it_is_not_yours(tmp_path):
    state = RunState(Options("http://h:1", server_started_by_suite=True), tmp=tmp_path)
    line, _ = verdict_parts(render.verdict_line(state, 0))
    assert line == (
        "Verdict: PASS: 0 passed, 0 failed, 0 skipped in Ns, on a server this suite started itself (nothing was "
        "listening), not one you run"
    )


def test_a_run_that_could_not_start_has_the_error_verdict_and_no_server(tmp_path):
    state = RunState(Options("garbage"), tmp=tmp_path)
    line, _ = verdict_parts(render.verdict_line(state, 2))
    assert line == "Verdict: ERROR (the suite could not run): 0 passed, 0 failed, 0 skipped in Ns"


def test_an_expired_timeout_is_named_in_the_verdict(tmp_path):
    state = RunState(Options("http://h:1", timeout=60.0), target=parse_target("http://h:1"), tmp=tmp_path)
    state.timed_out = "load"
    line, _ = verdict_parts(render.verdict_line(state, 1))
    assert line == (
        "Verdict: FAIL: 0 passed, 0 failed, 0 skipped in Ns (the --timeout of 60s expired during 'load'), on the "
        "server at this address"
    )


# --- the timeline ----------------------------------------------------------------------------


def test_timeline_lines_draw_overlapping_phases_as_overlapping_bars(tmp_path):
    suite = RunState(Options("http://h:1"), timeline=Timeline(zero=0.0), tmp=tmp_path)
    suite.timeline.add("model worker: imports", 0.0, 5.0)
    suite.timeline.add("server starts", 0.0, 10.0)
    suite.timeline.add("check model", 5.0, 10.0)
    text = render.timeline_lines(suite)
    lines = text.splitlines()
    assert lines[0] == "Timeline (seconds since the process started):"
    bars = {line[69:]: line[17:67] for line in lines[1:]}  # name: bar
    assert bars["server starts"] == "#" * 50
    assert bars["model worker: imports"].rstrip() == "#" * 25  # the first half
    assert bars["check model"].startswith(" " * 24 + "#")  # the second half, overlapping by a column
    assert "  0.00  10.00" in text


def test_a_timeline_row_is_start_end_a_bar_of_50_columns_and_the_phase():
    rows = render.timeline_table(
        [{"phase": "a", "start": 0.0, "end": 1.0}, {"phase": "b", "start": 0.5, "end": 2.0}], 2.0
    )
    assert rows == [
        "    0.00   1.00  " + "#" * 25 + " " * 25 + "  a",
        "    0.50   2.00  " + " " * 12 + "#" * 38 + "  b",
    ]


def test_no_phases_is_no_timeline(state):
    state.timeline = Timeline(zero=0.0)
    assert render.timeline_lines(state) == ""


# --- the summary and errors ------------------------------------------------------------------


def test_the_summary_is_the_verdict_and_the_experiments_and_runs_addresses(state):
    state.experiment_id, state.run_id = "3", "abc"
    out = io.StringIO()
    render.summary(state, 0, out)
    verdict, experiment, run = out.getvalue().splitlines()
    assert verdict.startswith("Verdict: PASS: 0 passed, 0 failed, 0 skipped in ")
    assert experiment == "Experiment: http://h:1/#/experiments/3?workflowType=machine_learning"
    assert run == "Run:        http://h:1/#/experiments/3/runs/abc?workflowType=machine_learning"


def test_after_cleanup_the_summary_says_the_addresses_are_in_the_trash(state):
    state.experiment_id, state.run_id = "3", "abc"
    state.cleanup_report = ["deleted run abc"]
    out = io.StringIO()
    render.summary(state, 0, out)
    lines = out.getvalue().splitlines()
    assert lines[1].endswith("?workflowType=machine_learning (moved to the trash by --cleanup)")
    assert lines[2].endswith("?workflowType=machine_learning (moved to the trash by --cleanup)")


def test_a_verbose_summary_starts_with_the_timeline_and_a_quiet_one_has_none(tmp_path):
    timeline = Timeline(zero=0.0)
    timeline.add("server starts", 0.0, 1.0)
    quiet = RunState(Options("http://h:1"), timeline=timeline, tmp=tmp_path)
    out = io.StringIO()
    render.summary(quiet, 0, out)
    assert "Timeline" not in out.getvalue()
    verbose = RunState(Options("http://h:1", verbose=True), timeline=timeline, tmp=tmp_path)
    out = io.StringIO()
    render.summary(verbose, 0, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Timeline (seconds since the process started):"
    assert lines[1].endswith("  server starts")
    assert lines[2].startswith("Verdict: PASS")


def test_an_error_that_stops_the_run_goes_to_stderr_with_its_tip_and_no_secret(capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-canary-88")
    render.error(CheckFailed("refused with tok-canary-88\x1b[31m", "set the token"))
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: refused with ***\\x1b[31m\nTip: set the token\n"
