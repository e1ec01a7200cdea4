"""--restart: durability. After logging, stop the server this suite started (SIGTERM, the way a
supervisor does), start it again on the same stores, and read everything back through the new
process: every item logged and acknowledged before the restart must be there, exactly."""

from __future__ import annotations

import time

from mlflowcheck.core.compare import compare_manifests
from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.manifest import records
from mlflowcheck.explain import compare as explain
from mlflowcheck.probes.continuity import header, summary
from mlflowcheck.probes.fingerprint import Scope, fingerprint
from mlflowcheck.runtime.session import Session

DURABILITY_TIP = (
    "the server lost data it had acknowledged when it restarted: its stores are not durable (an "
    "in-memory or temporary database, artifacts on a tmpfs or in the container's own filesystem, "
    "writes not committed); put --backend-store-uri and --artifacts-destination on durable storage."
)


def restart_and_read_back(suite: Session) -> None:
    """Everything in the run's experiment (the seed's run, the evaluation's, the load's runs and
    traces, the logged model and its registry version), every file hashed, is fingerprinted
    (probes.fingerprint) before the restart and again after it, and compared (core.compare): the
    same reader and comparer as --fingerprint and --compare. What the run logged was read back
    against what it sent by the checks before this one."""
    server = suite.local_server
    if server is None:
        raise CheckFailed(
            "--restart restarts a server this suite started, and it started none.",
            "run with --start-server (or at the default address with nothing listening).",
            fatal=True,
        )
    scope = Scope("experiments", (suite.experiment_name,), "all", suite.options.registered_model)
    before, after = suite.tmp / "restart-before.jsonl", suite.tmp / "restart-after.jsonl"
    fingerprint(suite.client, before, scope, header(suite))
    began = time.monotonic()
    server.stop()  # SIGTERM to its process group, then a deadline: a supervisor's restart
    server.start(deadline=suite.remaining(90.0), append_log=True)
    down = time.monotonic() - began
    fingerprint(suite.client, after, scope, header(suite))
    comparison = compare_manifests(before, after)
    if comparison.lost_or_altered:
        _, text, _ = explain.verdict(comparison, {"created": "before the restart"}, {})
        raise CheckFailed(f"After a restart of the server (SIGTERM, back in {down:.1f}s): {text}", DURABILITY_TIP)
    suite.note(
        "restart",
        f"restarted the server (SIGTERM, answering again in {down:.1f}s); read back through the new process: "
        f"{held(before)}: all equal",
    )


def held(path) -> str:
    """What a manifest holds, as the note says it: each kind's count, with points and spans."""
    counts: dict[str, int] = {}
    points = spans = 0
    for _, record in records(path):
        counts[record["kind"]] = counts.get(record["kind"], 0) + 1
        points += len(record.get("points", ()))
        spans += record.get("spans", 0) if record["kind"] == "trace" else 0
    return summary(counts, {
        "metric": f"{counts.get('metric', 0):,} metric histories ({points:,} points)",
        "trace": f"{counts.get('trace', 0):,} traces ({spans:,} spans)",
    })  # fmt: skip
