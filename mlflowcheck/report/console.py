"""The console: the check lines, the live progress line, the verdict, and errors on stderr.

Everything the suite shows or writes (report.files too) goes through ``printable`` here,
so two rules hold in one place: text that came
from the server is shown with control characters escaped (a server cannot write terminal
escape sequences), and no secret this process holds is ever written (secrets.scrub).
"""

from __future__ import annotations

import re
import sys
import time
from typing import TextIO

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.monitoring import Cycle
from mlflowcheck.core.secrets import scrub
from mlflowcheck.core.state import CheckResult, RunState

MARK = {"passed": "PASS", "failed": "FAIL", "unsupported": "MISS", "skipped": "SKIP"}


VERDICT = {0: "PASS", 1: "FAIL", 2: "ERROR (the suite could not run)"}


#: C0 and C1 controls (but newline and tab), and the invisible characters that reorder or hide
#: text on a terminal (bidi overrides, zero-width characters, line and paragraph separators).
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print: control characters escaped (ESC as \\x1b), secrets masked."""
    return CONTROL.sub(lambda m: _escape(m.group()), scrub(str(text)))


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def check_line(r: CheckResult) -> str:
    """One check's lines: mark, name, time and what it saw; the rest of the message indented."""
    first, *rest = (r.message or "").splitlines() or [""]
    duration = f"{r.duration:5.2f}s" if r.status in ("passed", "failed") else "      "
    mark = "WARN" if r.warning else MARK[r.status]
    lines = [f"  {mark}  {r.name:<13}{duration}  {first}".rstrip()]
    lines += [f"{'':24}{line}" for line in rest]
    return "\n".join(lines) + "\n"


def progress_line(check: str, text: str) -> str:
    """The live status line of a long check (the load probe), overwritten in place."""
    return f"  ....  {check:<13}        {printable(text)}"[:160]


def whose_server(suite: RunState) -> str:
    """Whose server the verdict is about: a PASS on a server the suite started proves the
    local set-up, not the server the user meant to test."""
    if suite.options.server_started_by_suite:
        return ", on a server this suite started itself (nothing was listening), not one you run"
    if suite.implementation is not None and suite.implementation.version:
        return f", on {suite.implementation.name} at this address"
    return ", on the server at this address" if suite.target is not None else ""


def verdict_line(suite: RunState, code: int) -> str:
    c = suite.counts()
    expired = f" ({suite.expiry})" if suite.timed_out else ""
    warned = f" ({c['warned']} with warnings)" if c["warned"] else ""
    lacking = f", {c['unsupported']} unsupported" if c["unsupported"] else ""
    return (
        f"Verdict: {VERDICT[code]}: {c['passed']} passed{warned}, {c['failed']} failed{lacking}, "
        f"{c['skipped']} skipped in {time.time() - suite.started:.1f}s{expired}{whose_server(suite)}\n"
    )


def timeline_lines(suite: RunState) -> str:
    """Where the seconds went (--verbose): each phase's start and end since the process started."""
    phases = suite.timeline.relative()
    if not phases:
        return ""
    total = max(p["end"] for p in phases) or 1.0
    return "\n".join(["Timeline (seconds since the process started):", *timeline_table(phases, total)]) + "\n"


def timeline_table(phases: list[dict], total: float) -> list[str]:
    """A line per phase: start, end, and a bar on 50 columns (``total`` seconds), so that phases
    that overlap show it. Also the benchmark's median timeline."""
    lines = []
    for p in phases:
        first, last = int(p["start"] / total * 49), int(p["end"] / total * 49)
        bar = " " * first + "#" * (last - first + 1)
        lines.append(f"  {p['start']:6.2f} {p['end']:6.2f}  {bar:<50}  {p['phase']}")
    return lines


def summary(suite: RunState, code: int, out: TextIO, matrix: str = "") -> None:
    """After the checks: the timeline (--verbose), the support matrix (rendered by report.matrix),
    the verdict and the run's addresses."""
    if suite.options.verbose:
        out.write(printable(timeline_lines(suite)))
    out.write(matrix)
    out.write(printable(verdict_line(suite, code)))
    gone = " (moved to the trash by --cleanup)" if suite.cleanup_report else ""
    if suite.experiment_url:
        out.write(printable(f"Experiment: {suite.experiment_url}{gone}\n"))
    if suite.run_url:
        out.write(printable(f"Run:        {suite.run_url}{gone}\n"))
    out.flush()


def error(problem: CheckFailed) -> None:
    """An error that stops the run: on stderr (results go to stdout), with its Tip."""
    sys.stdout.flush()
    sys.stderr.write(printable(f"error: {problem}\n"))
    sys.stderr.flush()


def cycle_text(cycle: Cycle) -> str:
    """A probe cycle (--probe): a line per check, then the verdict."""
    lines = []
    for step in cycle.steps:
        mark = "MISS" if step.ok is None else "PASS" if step.ok else "FAIL"
        note = step.message if step.ok is not None or step.message else "not in this server (not part of its probe)"
        lines.append(f"  {mark}  {step.name:<11}{step.seconds:5.2f}s  {note}".rstrip())
        if step.ok is False and step.tip:
            lines.append(f"{'':24}Tip: {step.tip}")
    failed = cycle.first_failure()
    verdict = "PASS" if cycle.ok else f"FAIL ({failed.name})" if failed else "FAIL"
    lines.append(f"Probe of {cycle.target}: {verdict} in {cycle.seconds:.2f}s, {cycle.requests} requests")
    return printable("\n".join(lines) + "\n")
