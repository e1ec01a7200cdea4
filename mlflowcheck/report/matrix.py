"""The support matrix: every feature group, and each of its checks, PASS, FAIL, UNSUPPORTED or
SKIPPED (with why), as text, as the --json document's ``matrix``, as JUnit properties and as
Markdown (--summary-md). Built from the run's results and the registry's groups, which the
engine hands in (this layer does not know the registry)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mlflowcheck.core.state import RunState
from mlflowcheck.explain.text import first_lines
from mlflowcheck.report.console import printable

STATUS = {"passed": "PASS", "failed": "FAIL", "unsupported": "UNSUPPORTED", "skipped": "SKIPPED"}


def build(
    suite: RunState,
    group_of: Mapping[str, str],
    groups: Iterable[str],
    required: frozenset[str],
    lenient: frozenset[str] = frozenset(),
) -> dict:
    """The matrix as data: the groups in the registry's order, each with its status, whether it
    must pass (``required``; ``lenient``: only where the server has its API) and its checks; a
    group with no check in this run (an opt-in group not asked for, or deselected by -k) is left out."""
    rows: dict[str, list[dict]] = {}
    for result in suite.results:
        status = "WARN" if result.warning and result.status == "passed" else STATUS[result.status]
        rows.setdefault(group_of.get(result.name, "other"), []).append(
            {"check": result.name, "status": status, "detail": first_lines(result.message, 300)}
        )
    matrix = []
    for group in [*groups, "other"]:
        checks = rows.get(group)
        if checks:
            matrix.append(
                {
                    "group": group,
                    "status": group_status(checks),
                    "required": group in required,
                    "where_supported": group in lenient,
                    "checks": checks,
                }
            )
    return {
        "server": suite.implementation.as_dict() if suite.implementation else None,
        "required": sorted(required),
        "groups": matrix,
    }


def group_status(checks: list[dict]) -> str:
    """FAIL if a check failed; else UNSUPPORTED if one is missing; else PASS if one passed; else SKIPPED."""
    seen = {c["status"] for c in checks}
    for status in ("FAIL", "UNSUPPORTED"):
        if status in seen:
            return status
    return "PASS" if seen & {"PASS", "WARN"} else "SKIPPED"


def missing(matrix: dict) -> list[str]:
    """What the required groups lack: "models (model)", a group with the checks the server does
    not support (whatever else in the group failed)."""
    found = []
    for group in matrix["groups"]:
        names = ", ".join(c["check"] for c in group["checks"] if c["status"] == "UNSUPPORTED")
        if group["required"] and not group.get("where_supported") and names:
            found.append(f"{group['group']} ({names})")
    return found


def server_name(matrix: dict) -> str:
    server = matrix.get("server") or {}
    return f"{server.get('product', '')} {server.get('version', '')}".strip() or "the server"


def text(matrix: dict) -> str:
    """The matrix on the console: a line per group, and under it each check that did not pass."""
    lines = [f"Support matrix ({server_name(matrix)}; * = required to pass):"]
    for group in matrix["groups"]:
        mark = "*" if group["required"] else " "
        lines.append(f"  {mark} {group['group']:<11} {group['status']}")
        for check in group["checks"]:
            if check["status"] not in ("PASS", "WARN"):
                lines.append(f"      {check['check']:<13} {check['status']:<12} {first_lines(check['detail'], 110)}")
    gaps = missing(matrix)
    if gaps:
        lines.append(f"Required but not supported by this server: {'; '.join(gaps)}.")
    for group in matrix["groups"]:
        if group.get("where_supported") and group["status"] == "UNSUPPORTED":
            lines.append(
                f"{group['group']} must pass where this server has its API; what it lacks does not fail the run "
                f"(--require {group['group']} makes it)."
            )
    return printable("\n".join(lines) + "\n")


def properties(matrix: dict) -> dict[str, str]:
    """A JUnit property per group: ``matrix.tracking`` = PASS."""
    return {f"matrix.{g['group']}": g["status"] for g in matrix["groups"]}


def markdown_text(text: str) -> str:
    """Server text in a table cell, inert: no cell break, no HTML, no link or image."""
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), ("[", "\\["), ("]", "\\]"), ("`", "\\`")):
        text = text.replace(char, escaped)
    return text


def markdown(matrix: dict, title: str, verdict: str) -> str:
    """The matrix as Markdown, for a CI job summary ($GITHUB_STEP_SUMMARY)."""
    server = matrix.get("server") or {}
    lines = [f"## {title}", "", f"**{verdict}**"]
    if server.get("auth") or server.get("proxy"):
        lines[-1] += " (" + ", ".join(f"{k}: {server[k]}" for k in ("auth", "proxy") if server.get(k)) + ")"
    lines += ["", "| Group | Required | Check | Status | Details |", "|---|---|---|---|---|"]
    for group in matrix["groups"]:
        required = "yes" if group["required"] else "no"
        for i, check in enumerate(group["checks"]):
            first = (f"**{group['group']}** ({group['status']})", required) if i == 0 else ("", "")
            detail = markdown_text(check["detail"])
            lines.append(f"| {first[0]} | {first[1]} | {check['check']} | {check['status']} | {detail} |")
    return printable("\n".join(lines) + "\n")
