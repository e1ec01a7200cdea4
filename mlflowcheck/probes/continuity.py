"""--fingerprint and --compare as checks: the manifest's header from what the layer checks
found, the scope from the options, and the comparison's verdict (explain/compare.py)."""

from __future__ import annotations

import importlib.metadata
import tempfile
import time
from pathlib import Path

from mlflowcheck.core.compare import compare_manifests
from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.manifest import read_header
from mlflowcheck.explain import compare as explain
from mlflowcheck.probes.fingerprint import Scope, fingerprint
from mlflowcheck.runtime.session import Session


def scope_of(options, saved: dict | None = None) -> Scope:
    """The scope the options ask for; what they leave open, as ``saved`` (the earlier
    fingerprint's) had it, else the defaults."""
    saved = saved or {}
    mode = "experiments" if options.experiments else options.scope or saved.get("mode", "suite")
    experiments = tuple(options.experiments or (saved.get("experiments", ()) if mode == "experiments" else ()))
    artifacts = options.artifacts or saved.get("artifacts", "sample")
    return Scope(mode, experiments, artifacts, saved.get("registered_model", options.registered_model))


def header(suite: Session) -> dict:
    from mlflowcheck import __version__

    found = suite.implementation
    info = (found.server_info if found else None) or {}
    now = time.time()
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "created_ms": int(now * 1000),
        "tool": f"mlflowcheck {__version__}",
        "client_version": importlib.metadata.version("mlflow"),
        "server": {
            "url": suite.target.url,
            "version": suite.server_version,
            "product": found.product if found else "",
            "store": info.get("store_type"),
        },
    }


def record(suite: Session, path: Path, scope: Scope) -> dict:
    """Fingerprint the server into ``path``: the manifest's header, with the trailer's figures."""
    made = header(suite)
    progress = suite.progress or (lambda text: None)
    trailer = fingerprint(suite.client, path, scope, made, progress)
    return {**made, "end": trailer}


def summary(counts: dict, detail: dict[str, str] | None = None) -> str:
    """Each kind's count ("23 experiments, 44 runs, ..."); ``detail``: a kind's own text instead."""
    shown = [(detail or {}).get(kind) or f"{n:,} {kind.replace('_', ' ')}s" for kind, n in counts.items() if n]
    return ", ".join(shown) or "nothing (the scope is empty)"


def check_fingerprint(suite: Session) -> None:
    path = Path(suite.options.fingerprint)
    if suite.options.compare:
        suite.note("fingerprint", f"{path}: written by the compare check")
        return
    made = record(suite, path, scope_of(suite.options))
    end = made["end"]
    missing = f"; the server has no API for {', '.join(end['unsupported'])}" if end["unsupported"] else ""
    took = f"in {end['seconds']:.1f}s, {end['requests']} requests"
    suite.note("fingerprint", f"{path}: {summary(end['counts'])} {took}{missing}")


def check_compare(suite: Session) -> None:
    before_path = Path(suite.options.compare)
    before = read_header(before_path)
    options = suite.options
    scope = scope_of(options, before.get("scope"))
    with tempfile.TemporaryDirectory(prefix="mlflowcheck-compare-") as tmp:
        # With --fingerprint, the new manifest is kept there.
        after_path = Path(options.fingerprint) if options.fingerprint else Path(tmp) / "after.jsonl"
        verdict_of(suite, before_path, before, after_path, record(suite, after_path, scope))


def verdict_of(suite: Session, before_path: Path, before: dict, after_path: Path, after: dict) -> None:
    comparison = compare_manifests(before_path, after_path, suite.options.match_by)
    suite.comparison = comparison.as_dict()
    ok, text, tip = explain.verdict(comparison, before, after)
    if not ok:
        raise CheckFailed(text, tip)
    suite.note("compare", text)
