"""The model checks' parallel process.

Importing scikit-learn, skops and MLflow costs seconds of CPU, and it is the run's longest
chain against a running server. The suite starts this process early (``ModelWorker``; see
``start_method`` for fork or spawn); it pays for those imports on the machine's other core
while the main process checks the tracking store. When the run exists, ``worker_check``
hands it the job: it logs, loads and registers the model (``models.logged_model`` and
``models.registry``) and hands back ``ModelResults`` with both verdicts. It is a
``multiprocessing`` process that talks over a pipe.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from mlflowcheck.diagnosis import CheckFailed
from mlflowcheck.server import tail
from mlflowcheck.suite import ModelResults, imports_without_gc
from mlflowcheck.timeline import Timeline, process_start

WORKER_DEADLINE = 600.0
READY = "imported"  # what the worker says once its imports are done


def start_method() -> str:
    """Fork where that is safe: on Linux, in a process with one thread, which is how the suite
    starts (before its imports; forking skips the interpreter's start and the entry script's
    imports, a few tenths of a second). Spawn otherwise: once a thread runs (the browser's,
    or the native pools of numpy and pyarrow), a forked child could inherit a lock held by
    it; and on macOS forking is unsafe altogether."""
    try:
        single = sys.platform == "linux" and len(os.listdir("/proc/self/task")) == 1
    except OSError:
        single = False
    return "fork" if single else "spawn"


class ModelWorker:
    def __init__(self, log_path: Path, timeline: Timeline, model_format: str | None = None):
        self.timeline = timeline
        self.log_path = log_path
        context = multiprocessing.get_context(start_method())
        self.conn, child_conn = context.Pipe()
        forked = context.get_start_method() == "fork"
        self.proc = context.Process(
            target=serve,
            args=(child_conn, self.conn if forked else None, str(log_path), model_format),
            name="mlflowcheck-model-worker",
            daemon=True,
        )
        self.proc.start()
        child_conn.close()  # ours is the other end; the child's recv sees EOF if we die
        self.results: ModelResults | None = None

    @classmethod
    def for_suite(cls, suite) -> ModelWorker:
        return cls(suite.tmp / "model-worker.log", suite.timeline, suite.options.model_format)

    def job(self, suite) -> dict:
        return {
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(suite.options).items()},
            "target": suite.target.url,
            "client_version": suite.client_version,
            "server_version": suite.server_version,
            "experiment_id": suite.experiment_id,
            "run_id": suite.run_id,
            "tmp": str(suite.tmp),
            "data": suite.data.to_dict(orient="list"),
            "packages": self.packages_unless_ready(),
        }

    def packages_unless_ready(self) -> dict[str, list[str]] | None:
        """MLflow's map of the installed packages, made here while the worker still imports
        (``models.installed_packages``); None when the worker is ready: it made the map itself
        while it waited."""
        ready = False
        with contextlib.suppress(EOFError, OSError):
            ready = self.conn.poll(0) and self.conn.recv() == READY
        if ready:
            return None
        from mlflowcheck.models import installed_packages

        with self.timeline.phase("installed packages mapped for the model worker"):
            return installed_packages()

    def run(self, suite) -> ModelResults:
        """Hand the worker its job (once) and wait for its results."""
        deadline = suite.remaining(WORKER_DEADLINE)
        if self.results is None:
            try:
                self.conn.send(self.job(suite))
                got = self.receive(deadline)
            except (EOFError, OSError):
                self.proc.join(timeout=5)
                said = tail(self.log_path, 8)
                raise CheckFailed(
                    f"The model worker process ended (code {self.proc.exitcode}) without a result:\n{said}",
                    "run again with --verbose; if it repeats, this is a bug in the suite.",
                ) from None
            if got is None:
                self.stop()
                raise CheckFailed(
                    f"Logging and loading the model took longer than {deadline:.0f}s.",
                    "the server is very slow to store or serve model files; look at its log.",
                )
            self.results = ModelResults(**got)
            for name, start, end in self.results.phases:
                self.timeline.add(f"model worker: {name}", start, end)
        return self.results

    def receive(self, timeout: float) -> dict | None:
        """The worker's results, or None after ``timeout`` seconds (its READY is passed over)."""
        end = time.monotonic() + timeout
        while self.conn.poll(max(0.0, end - time.monotonic())):
            got = self.conn.recv()
            if got != READY:
                return got
        return None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=10)


def worker_check(suite, name: str) -> None:
    """The verdict of one of the worker's checks, as this process's check."""
    results = suite.model_worker.run(suite)
    suite.created = results
    suite.model_file = results.model_file
    result = results.checks.get(name)
    if result is None:
        raise CheckFailed(f"The model worker did not run the {name} check.", "see the model check above.")
    if result["status"] != "passed":
        raise CheckFailed(result["message"], result.get("tip"))
    if name == "registry":
        suite.registered_version = results.registered_version
    suite.note(name, result["note"])


def serve(conn, parent_conn, log_path: str, model_format: str | None) -> None:
    """The worker process: import, wait for the job, run it, hand back the results, exit."""
    started = process_start()
    if parent_conn is not None:  # forked: the parent's end of the pipe came along
        parent_conn.close()
    # The main process handles Ctrl+C, SIGTERM and SIGHUP and stops this process itself; a
    # forked child must not run the handlers it inherited.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    # Whatever MLflow and the libraries print goes to the worker's log, not the suite's output.
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    # First the imports: this is the work that overlaps with the main process. skops before
    # MLflow: to build its list of trusted types it looks for each of scipy's ufuncs in every
    # loaded module (skops.io._utils.whichmodule), which costs less before MLflow's 1,800
    # modules are loaded (benchmarks/bench_suite.py: about half a second in all).
    with imports_without_gc():
        import sklearn.linear_model  # noqa: F401

        if model_format in (None, "skops"):  # MLflow's default format is skops
            with contextlib.suppress(ImportError):
                import skops.io  # noqa: F401
        import mlflow.pyfunc  # noqa: F401
        import mlflow.sklearn  # noqa: F401
        from mlflow.models import infer_signature  # noqa: F401

        from mlflowcheck import models

    imported = time.time()
    conn.send(READY)
    if not conn.poll(0):  # no job yet: make MLflow's map of the installed packages meanwhile
        models.map_installed_packages()
    try:
        job = conn.recv()
    except EOFError:  # the main process needed no model checks, or ended
        os._exit(0)
    job_start = time.time()
    results = models.run_worker_job(job)
    results.phases = [("imports", started, imported), ("model and registry", job_start, time.time())]
    conn.send(asdict(results))
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: MLflow's exit handlers (telemetry, async queues) take
    # seconds and there is nothing left to save.
    os._exit(0)
