"""The reports the user asks for: the JSON document and the JUnit properties, and writing them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.secrets import scrub
from mlflowcheck.core.state import RunState

#: Version of the --json document's layout; bumped when a field changes meaning or goes away.
JSON_SCHEMA_VERSION = 3


def properties(suite: RunState) -> dict[str, str]:
    """Facts about the run as a whole: the JUnit XML's <properties>, and fields of the JSON."""
    return {
        "tracking_uri": suite.target.url if suite.target else suite.options.tracking_uri,
        "server_started_by_suite": str(suite.options.server_started_by_suite).lower(),
        "client_version": suite.client_version,
        "server_version": suite.server_version,
        "server_product": suite.implementation.product if suite.implementation else "",
        "server_auth": suite.implementation.auth if suite.implementation else "",
        "experiment_id": suite.experiment_id or "",
        "run_id": suite.run_id or "",
        "warnings": ",".join(r.name for r in suite.results if r.warning),
        **load_properties(suite),
        **compare_properties(suite),
    }


def compare_properties(suite: RunState) -> dict[str, str]:
    if suite.comparison is None:
        return {}
    flat = {"compare.match_by": suite.comparison["match_by"]}
    for kind, counts in suite.comparison["kinds"].items():
        for name, n in counts.items():
            flat[f"compare.{kind}.{name}"] = str(n)
    return flat


def load_properties(suite: RunState) -> dict[str, str]:
    if suite.load is None:
        return {}
    figures = suite.load.as_dict()
    flat = {f"load.{k}": str(v) for k, v in figures.items() if not isinstance(v, dict)}
    for endpoint, stats in figures["latency_ms"].items():
        for name in ("p50", "p95", "p99"):
            flat[f"load.latency_ms.{endpoint}.{name}"] = str(stats[name])
    flat["load.errors"] = ", ".join(f"{kind}: {n}" for kind, n in figures["errors"].items()) or "0"
    return flat


def json_document(suite: RunState, code: int, matrix: dict | None = None) -> dict:
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "verdict": {0: "pass", 1: "fail", 2: "error"}[code],
        "exit_code": code,
        "tracking_uri": properties(suite)["tracking_uri"],
        "server_started_by_suite": suite.options.server_started_by_suite,
        "client_version": suite.client_version,
        "server_version": suite.server_version,
        "server": suite.implementation.as_dict() if suite.implementation else None,
        "matrix": matrix,
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
        "compare": suite.comparison,
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


def json_text(suite: RunState, code: int, matrix: dict | None = None) -> str:
    """The --json document, as written (secrets scrubbed)."""
    return scrub(json.dumps(json_document(suite, code, matrix), ensure_ascii=False, indent=2) + "\n")


def write_report(path: Path, text: str, what: str) -> CheckFailed | None:
    """Write a report the user asked for; a failure (a full disk) is an error that names the file."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        return CheckFailed(
            f"The {what} could not be written to {path}: {exc.strerror or exc}; the results above are not in it.",
            "free space on that disk or give another path, then run again.",
            fatal=True,
        )
    return None
