"""The pytest plugin that turns pytest into the suite's engine.

pytest gives selection (-k), JUnit XML and exception capture; this plugin supplies the
shared ``suite`` fixture, skips a check whose prerequisites did not pass, turns exceptions
into messages with a cause and a tip (never a traceback), and prints one line per check.
"""

from __future__ import annotations

import contextlib
import io
import signal
from typing import TextIO

import pytest

from mlflowcheck.core.errors import CheckFailed, Unsupported
from mlflowcheck.core.state import CheckResult
from mlflowcheck.engine.handles import start_chromium, start_model_worker
from mlflowcheck.engine.registry import (
    BY_NAME,
    GROUP_OF,
    GROUPS,
    IN_WORKER,
    READ_ONLY,
    lenient_groups,
    order,
    required_groups,
)
from mlflowcheck.explain.errors import known_server_error
from mlflowcheck.explain.support import is_unsupported, not_in_version, older_than, unsupported
from mlflowcheck.net.limits import RESPONSE_DEADLINE
from mlflowcheck.net.liveness import connection_lost, server_fate
from mlflowcheck.probes.identity import ask
from mlflowcheck.probes.layers import diagnose
from mlflowcheck.probes.ui import start_pages_with_model
from mlflowcheck.report import matrix
from mlflowcheck.report.console import check_line, printable, progress_line
from mlflowcheck.report.files import properties
from mlflowcheck.runtime.mlflow_compat import last_refusal, refusal_mark
from mlflowcheck.runtime.server import log_errors, log_size, tail
from mlflowcheck.runtime.session import Session


def support_matrix(suite: Session) -> dict:
    """The run's support matrix (report.matrix), with the registry's groups and --require's."""
    options = suite.options
    return matrix.build(suite, GROUP_OF, GROUPS, required_groups(options), lenient_groups(options))


def check_name(item_or_report) -> str:
    name = item_or_report.nodeid.rsplit("::", 1)[-1]
    return name.removeprefix("check_")


#: Why a prerequisite did not pass, for the skip's reason.
NOT_PASSED = {None: "was not selected", "failed": "failed", "unsupported": "this server does not support"}


class SuiteTimeout(BaseException):
    """--timeout expired during a check. A BaseException, so that no library code's
    ``except Exception`` swallows it on the way out of the check."""


class SuitePlugin:
    def __init__(self, suite: Session, out: TextIO):
        self.suite = suite
        self.out = out
        if out.isatty():  # a live status line where someone watches; logs get the result lines only
            suite.progress = self.progress
        self.current: str | None = None  # the check running now
        self.log_offset = 0
        self.refusals = 0  # refusal_mark() when the current check began
        self.unsupported: set[str] = set()  # checks the server lacks (reported as skipped to pytest)

    def pytest_sessionstart(self, session):
        if self.suite.options.timeout is not None:
            signal.signal(signal.SIGALRM, self.on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.suite.remaining(float("inf")))

    def on_alarm(self, signum, frame):
        self.suite.timed_out = self.current or "between checks"
        if self.current is not None:
            raise SuiteTimeout()

    def timeout_failure(self) -> CheckFailed:
        return CheckFailed(
            f"The --timeout of {self.suite.options.timeout:g}s expired during this check.",
            "the server is slow or hung at this step: look at its log, or allow more time with --timeout.",
        )

    @pytest.fixture(scope="session", name="suite")
    def suite_fixture(self, record_testsuite_property) -> Session:
        yield self.suite
        # After the last check: facts about the run as a whole, and the support matrix's groups,
        # as JUnit <properties>.
        for name, value in {**properties(self.suite), **matrix.properties(support_matrix(self.suite))}.items():
            record_testsuite_property(name, printable(value))

    def pytest_collection_modifyitems(self, config, items):
        # The run's order is the registry's; a check asked for by no option is left out.
        items.sort(key=lambda item: order(check_name(item)))
        off = [i for i in items if not self.wanted(check_name(i))]
        if off:
            config.hook.pytest_deselected(items=off)
            items[:] = [i for i in items if i not in off]

    def wanted(self, name: str) -> bool:
        check = BY_NAME.get(name)
        if self.suite.options.read_only and name not in READ_ONLY:
            return False  # --fingerprint, --compare: nothing that writes
        return check is None or not check.opt_in or bool(getattr(self.suite.options, check.option))

    def pytest_collection_finish(self, session):
        # With -k the model checks and the browser check may not be selected: start the worker
        # and Chromium only if they are (without -k the command line started both before pytest,
        # to overlap their start with the server's and the first checks).
        selected = {check_name(i) for i in session.items}
        self.suite.worker_checks = frozenset(IN_WORKER & selected)
        if IN_WORKER & selected and self.suite.model_worker is None:
            self.suite.model_worker = start_model_worker(self.suite)
        if "browser" in selected and self.suite.browser is None:
            self.suite.browser = start_chromium(self.suite)

    def pytest_runtest_setup(self, item):
        self.current = check_name(item)
        self.log_offset = log_size(self.suite.options.server_log)
        self.refusals = refusal_mark()
        if self.suite.timed_out:
            pytest.skip(self.suite.expiry)
        if self.suite.server_down:  # at once: no check waits on a dead address
            pytest.skip(self.suite.server_down)
        # The browser opens the run's pages as soon as the model worker's verdicts allow.
        start_pages_with_model(self.suite)
        check = BY_NAME.get(check_name(item))
        found = self.suite.implementation
        if check and check.since and found is not None and found.is_mlflow and older_than(found.version, check.since):
            self.unsupported.add(check.name)  # not asked: the server's MLflow predates the API
            pytest.skip(printable(str(not_in_version(check.name, check.since, found))))
        for dep in check.needs if check else ():
            status = self.suite.outcome(dep)
            if status != "passed":
                self.probe_api(check)
                pytest.skip(f"needs '{dep}', which {NOT_PASSED.get(status, 'was skipped')}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception):
            timed_out = self.suite.timed_out == check_name(item)
            refused = last_refusal(since=self.refusals)
            failure = (
                self.timeout_failure()
                if timed_out
                else diagnose(call.excinfo.value, refused, self.suite.implementation)
            )
            if isinstance(failure, Unsupported):
                return self.as_unsupported(item, report, failure)
            report.fatal = failure.fatal
            text = str(failure)
            said = log_errors(self.suite.options.server_log, since=self.log_offset)
            if said and not failure.fatal:
                # The server's own words may name a cause its HTTP answer did not.
                failure = (None if timed_out else known_server_error(said, quote=False)) or failure
                text = f"{failure}\nThe server's log ({self.suite.options.server_log}) says:\n{said}"
            # Only after the server answered once: before that, "nothing listens" is the network check's.
            reached = self.suite.last_answered is not None and not failure.fatal
            if call.when == "call" and reached and not timed_out and connection_lost(call.excinfo.value, text):
                text = self.after_connection_lost(check_name(item), text)
            if self.suite.options.verbose:
                text += "\n" + str(report.longrepr)
            report.longrepr = printable(text)  # JUnit XML carries it as it is here
        return report

    def probe_api(self, check) -> None:
        """A check that cannot run: does the server have its API at all? If its probe says the
        endpoint is missing, the check is unsupported (named), not merely skipped."""
        # Only a server that answered the API: a silent or refusing one would only cost time.
        if check.probe is None or self.suite.outcome("access") != "passed" or self.suite.server_down:
            return
        if self.suite.timed_out or self.suite.remaining(float("inf")) < 2 * RESPONSE_DEADLINE:
            return
        answer = ask(self.suite.target, check.probe)
        if answer is not None and is_unsupported(answer):
            self.unsupported.add(check.name)
            pytest.skip(printable(str(unsupported(answer, self.suite.implementation))))

    def as_unsupported(self, item, report, failure: Unsupported):
        """The server lacks the API: to pytest (and JUnit) a skip with the reason; to the suite,
        its own status."""
        self.unsupported.add(check_name(item))
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, printable(f"Unsupported: {failure}"))
        report.fatal = False
        return report

    def after_connection_lost(self, name: str, text: str) -> str:
        """A request failed at the connection after earlier checks reached the server: ask the
        address again, and say whether the server is down or came back (restarted)."""
        fate = server_fate(self.suite.target)
        if fate == "up":
            return text  # it never stopped answering: not a death (an overloaded server, say)
        before = f" (it answered during '{self.suite.last_answered}')"  # set: only called after it answered
        log = tail(self.suite.options.server_log, 8)
        said = f"\nThe last lines of its log ({self.suite.options.server_log}):\n{log}" if log else ""
        if fate == "back":
            return (
                f"The server stopped answering during '{name}'{before} and answers again now: it was restarted "
                f"(by a supervisor?). The checks after this one read back what was logged before the restart.\n"
                f"{text}{said}"
            )
        self.suite.server_down = f"the server stopped answering during '{name}' and does not answer now"
        return (
            f"The server stopped answering during '{name}'{before}: it crashed, was stopped or was restarted, "
            f"and it does not answer now.\nTip: look at the server process and its log; a supervisor should "
            f"restart it. What failed: {text.splitlines()[0]}{said}"
        )

    def pytest_runtest_logreport(self, report):
        # One line per check: its call, or the setup that skipped (or broke) it.
        if report.when == "call" or report.outcome != "passed":
            self.record(report)

    def record(self, report) -> None:
        name = check_name(report)
        if report.skipped:
            message = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            message = message.removeprefix("Skipped: ").removeprefix("Unsupported: ")
        elif report.failed:
            message = str(report.longrepr)
        else:
            message = self.suite.notes.get(name, "")
        message = printable(message)
        if self.suite.progress is not None:
            self.out.write("\r\033[K")  # clear the live status line before the result line
        if report.passed and name not in ("uri", "network"):
            self.suite.last_answered = name
        status = "unsupported" if name in self.unsupported else report.outcome
        if not report.skipped or status == "unsupported":
            self.suite.timeline.add(f"check {name}", report.start, report.stop)
        result = CheckResult(name, status, report.duration, message, getattr(report, "fatal", False))
        result.warning = report.passed and name in self.suite.warnings
        self.suite.results.append(result)
        self.out.write(check_line(result))
        self.out.flush()

    def progress(self, text: str) -> None:
        self.out.write("\r" + progress_line(self.current or "", text))
        self.out.flush()

    def pytest_collectreport(self, report):
        if report.failed:  # a broken checks module: say so instead of running nothing
            self.out.write(printable(f"The suite's checks could not be loaded:\n{report.longrepr}\n"))

    def pytest_runtest_logfinish(self, nodeid, location):
        self.current = None

    def pytest_sessionfinish(self, session):
        if self.suite.options.timeout is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
        # A run left RUNNING by a failed check is marked FAILED, so the UI tells the truth (unless
        # the server is gone: then the client's retries would only delay the verdict).
        if self.suite.server_down:
            return
        with contextlib.suppress(Exception):
            import mlflow

            if mlflow.active_run() is not None:
                with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints "View run ..."
                    mlflow.end_run(status="FAILED")
