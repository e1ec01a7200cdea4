"""Helpers for the tests: run the suite as a user runs it (a subprocess of test_mlflow_local.py),
and start real mlflow servers on free ports in temporary directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlflowcheck.engine.registry import BY_NAME, DEFAULT
from mlflowcheck.explain.support import older_than
from mlflowcheck.runtime.server import LocalServer, ServerStartError

ROOT = Path(__file__).resolve().parents[1]
#: The admin password of the session's basic-auth server (conftest.auth_server): also the
#: canary of the secret-leak tests, with the characters that break naive redaction.
ADMIN_PASSWORD = f"Cn4ry@pw/{uuid.uuid4().hex[:10]}"
ENTRY = ROOT / "test_mlflow_local.py"
#: The checks a run without opt-in options runs, in order: the registry's.
ALL_CHECKS = list(DEFAULT)


@dataclass
class SuiteRun:
    code: int
    output: str
    report: dict | None
    seconds: float
    args: tuple[str, ...] = ()

    def check(self, name: str) -> dict:
        return next(c for c in self.report["checks"] if c["name"] == name)

    def statuses(self) -> dict[str, str]:
        return {c["name"]: c["status"] for c in self.report["checks"]}

    def assert_all_passed(self) -> None:
        """Every check passed; the browser check may only be skipped where it was turned off."""
        assert self.code == 0, self.output
        expected = dict.fromkeys(ALL_CHECKS, "passed")
        if "--no-ui" in self.args:
            expected["browser"] = "skipped"
        if "--load" in self.args:  # opt-in: it runs where it is asked for
            expected["load"] = "passed"
        version = self.report["server_version"]
        for name in ("server_info", "otlp"):
            if older_than(version, BY_NAME[name].since):
                expected[name] = "unsupported"  # "not in this version": the seed's 3.1.4 server
        if older_than(version, "3.2"):
            # The seed's 3.1.4 answers 404 for assessments and evaluation datasets (MISS).
            expected["assessments"] = expected["evaluation"] = "unsupported"
        if older_than(version, "3.3"):
            expected["trace"] = "warn"  # no v3 trace API: stored under another id, found by search
        assert self.statuses() == expected, self.output


def run_suite(
    tmp_path: Path,
    *args: str,
    env: dict | None = None,
    timeout: float = 300,
    ui: bool = False,
    python: str | Path = sys.executable,
) -> SuiteRun:
    """Run the suite as a user would; return exit code, output and the --json report.

    The browser check costs seconds and has tests of its own: off unless ``ui``. ``python``
    runs this checkout's suite with another environment's packages (the floors venv).
    """
    if not ui:
        args = (*args, "--no-ui")
    elif "--screenshots" not in args:  # by default they go beside test_mlflow_local.py: this checkout
        args = (*args, "--screenshots", str(tmp_path / "screenshots"))
    report = tmp_path / f"report-{time.monotonic_ns()}.json"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    full_env.update(env or {})
    started = time.monotonic()
    proc = subprocess.run(
        [str(python), str(ENTRY), "--json", str(report), *args],
        cwd=tmp_path, env=full_env, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=timeout,
    )  # fmt: skip
    seconds = time.monotonic() - started
    doc = json.loads(report.read_text(encoding="utf-8")) if report.exists() else None
    return SuiteRun(proc.returncode, proc.stdout + proc.stderr, doc, seconds, tuple(args))


def start_server(workdir: Path, **kwargs) -> LocalServer:
    server = LocalServer(workdir=workdir, **kwargs)
    try:
        return server.start()
    except ServerStartError as exc:
        pytest.fail(f"could not start the test's mlflow server: {exc}", pytrace=False)


def processes_started_under(tmp: Path) -> list[str]:
    """The command lines of the live processes whose environment has TMPDIR=``tmp``: a suite
    run with that TMPDIR, and everything it started (its server, model worker, Playwright's
    driver, Chromium), inherit it."""
    marker = f"TMPDIR={tmp}".encode() + b"\0"
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker not in (proc / "environ").read_bytes() + b"\0":
                    continue
                if (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue  # exited, not yet reaped by its parent
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return found
