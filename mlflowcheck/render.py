"""Rendering results: the check lines, the verdict, the JSON report and the JUnit properties.

Everything the suite shows goes through here, so two rules hold in one place: text that came
from the server is shown with control characters escaped (a server cannot write terminal
escape sequences), and no secret this process holds is ever written (secrets.scrub).
"""

from __future__ import annotations

import json
import re
import time
from typing import TextIO

from mlflowcheck.secrets import scrub
from mlflowcheck.suite import CheckResult, Suite

#: Version of the --json document's layout; bumped when a field changes meaning or goes away.
JSON_SCHEMA_VERSION = 2
MARK = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}
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
    duration = f"{r.duration:5.2f}s" if r.status != "skipped" else "      "
    mark = "WARN" if r.warning else MARK[r.status]
    lines = [f"  {mark}  {r.name:<13}{duration}  {first}".rstrip()]
    lines += [f"{'':24}{line}" for line in rest]
    return "\n".join(lines) + "\n"


def progress_line(check: str, text: str) -> str:
    """The live status line of a long check (the load probe), overwritten in place."""
    return f"  ....  {check:<13}        {printable(text)}"[:160]


def whose_server(suite: Suite) -> str:
    """Whose server the verdict is about: a PASS on a server the suite started proves the
    local set-up, not the server the user meant to test."""
    if suite.options.server_started_by_suite:
        return ", on a server this suite started itself (nothing was listening), not one you run"
    return ", on the server at this address" if suite.target is not None else ""


def verdict_line(suite: Suite, code: int) -> str:
    c = suite.counts()
    expired = f" ({suite.expiry})" if suite.timed_out else ""
    warned = f" ({c['warned']} with warnings)" if c["warned"] else ""
    return (
        f"Verdict: {VERDICT[code]}: {c['passed']} passed{warned}, {c['failed']} failed, {c['skipped']} skipped "
        f"in {time.time() - suite.started:.1f}s{expired}{whose_server(suite)}\n"
    )


def timeline_lines(suite: Suite) -> str:
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


def summary(suite: Suite, code: int, out: TextIO) -> None:
    if suite.options.verbose:
        out.write(printable(timeline_lines(suite)))
    out.write(printable(verdict_line(suite, code)))
    gone = " (moved to the trash by --cleanup)" if suite.cleanup_report else ""
    if suite.experiment_url:
        out.write(printable(f"Experiment: {suite.experiment_url}{gone}\n"))
    if suite.run_url:
        out.write(printable(f"Run:        {suite.run_url}{gone}\n"))
    out.flush()


def properties(suite: Suite) -> dict[str, str]:
    """Facts about the run as a whole: the JUnit XML's <properties>, and fields of the JSON."""
    return {
        "tracking_uri": suite.target.url if suite.target else suite.options.tracking_uri,
        "server_started_by_suite": str(suite.options.server_started_by_suite).lower(),
        "client_version": suite.client_version,
        "server_version": suite.server_version,
        "experiment_id": suite.experiment_id or "",
        "run_id": suite.run_id or "",
        "warnings": ",".join(r.name for r in suite.results if r.warning),
        **load_properties(suite),
    }


def load_properties(suite: Suite) -> dict[str, str]:
    if suite.load is None:
        return {}
    figures = suite.load.as_dict()
    flat = {f"load.{k}": str(v) for k, v in figures.items() if not isinstance(v, dict)}
    for endpoint, stats in figures["latency_ms"].items():
        for name in ("p50", "p95", "p99"):
            flat[f"load.latency_ms.{endpoint}.{name}"] = str(stats[name])
    flat["load.errors"] = ", ".join(f"{kind}: {n}" for kind, n in figures["errors"].items()) or "0"
    return flat


def json_document(suite: Suite, code: int) -> dict:
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "verdict": {0: "pass", 1: "fail", 2: "error"}[code],
        "exit_code": code,
        "tracking_uri": properties(suite)["tracking_uri"],
        "server_started_by_suite": suite.options.server_started_by_suite,
        "client_version": suite.client_version,
        "server_version": suite.server_version,
        "experiment_id": suite.experiment_id,
        "experiment_name": suite.experiment_name,
        "run_id": suite.run_id,
        "experiment_url": suite.experiment_url,
        "run_url": suite.run_url,
        "duration": round(time.time() - suite.started, 3),
        "screenshots": suite.screenshots,
        "topology": suite.topology,
        "load": None if suite.load is None else {**suite.load.as_dict(), "per_second": suite.load.per_second},
        "cleanup": suite.cleanup_report,
        "timeline": suite.timeline.relative(),
        "checks": [
            {
                "name": r.name,
                "status": "warn" if r.warning else r.status,
                "duration": round(r.duration, 4),
                "message": r.message,
            }
            for r in suite.results
        ],
    }


def json_text(suite: Suite, code: int) -> str:
    """The --json document, as written (secrets scrubbed)."""
    return scrub(json.dumps(json_document(suite, code), ensure_ascii=False, indent=2) + "\n")
