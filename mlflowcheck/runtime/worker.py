"""The model checks' parallel process, and its wire format.

Importing scikit-learn, skops and MLflow costs seconds of CPU, and it is the run's longest
chain against a running server. The suite starts this process early (``ModelWorker``; see
``start_method`` for fork or spawn); it pays for those imports on the machine's other core
while the main process checks the tracking store. When the run exists, the model probe hands
it a ``ModelJob``; the worker runs the job's entry (a function named by the engine, so this
layer knows nothing of the checks) and hands back ``WorkerResults``, a batch at a time. It is a
``multiprocessing`` process that talks over a pipe.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.observations import Implementation
from mlflowcheck.core.timeline import Timeline, process_start
from mlflowcheck.runtime.server import tail
from mlflowcheck.runtime.tuning import imports_without_gc

READY = "imported"  # what the worker says once its imports are done


@dataclass
class ModelJob:
    """What the worker needs to run the model checks on the main process's run (pickled)."""

    options: dict  # core.options.Options as a dict
    target: str  # the tracking URI, without credentials (those are in the environment)
    experiment_id: str
    run_id: str
    tmp: str
    data: dict[str, list]  # the seed's DataFrame, by column
    server: Implementation | None = None  # which server answers (for the messages: product, auth layer)
    checks: list[str] = field(default_factory=list)  # the worker's checks selected for this run


@dataclass
class WorkerResults:
    """What the worker hands back: each check's verdict, the ledger of what it created, its timeline."""

    checks: dict[str, dict] = field(default_factory=dict)  # check -> status, note or message, tip, endpoint
    created: dict = field(default_factory=dict)  # core.state.Created as a dict
    phases: list[tuple[str, float, float]] = field(default_factory=list)  # (name, start, end), time.time()
    final: bool = False  # the job's last message (earlier ones hand back the checks done so far)


def start_method() -> str:
    """Fork where that is safe: on Linux, in a process with one thread, which is how the suite
    starts (before its imports; forking skips the interpreter's start and the entry script's
    imports). Spawn otherwise: once a thread runs (the browser's,
    or the native pools of numpy and pyarrow), a forked child could inherit a lock held by
    it; and on macOS forking is unsafe altogether."""
    try:
        single = sys.platform == "linux" and len(os.listdir("/proc/self/task")) == 1
    except OSError:
        single = False
    return "fork" if single else "spawn"


class ModelWorker:
    """``entry``: "module:function", the job's code, imported in the worker with its other
    imports and called with the ModelJob; it returns WorkerResults."""

    def __init__(self, log_path: Path, timeline: Timeline, entry: str, model_format: str | None = None):
        self.timeline = timeline
        self.log_path = log_path
        context = multiprocessing.get_context(start_method())
        self.conn, child_conn = context.Pipe()
        forked = context.get_start_method() == "fork"
        self.proc = context.Process(
            target=serve,
            args=(child_conn, self.conn if forked else None, str(log_path), entry, model_format),
            name="mlflowcheck-model-worker",
            daemon=True,
        )
        self.proc.start()
        child_conn.close()  # ours is the other end; the child's recv sees EOF if we die
        self.results: WorkerResults | None = None

    def start(self, job: ModelJob) -> None:
        """Hand the worker its job, unless it has one: it starts at once, and ``run`` waits for it."""
        if self.results is not None:
            return
        self.results = WorkerResults()
        try:
            self.conn.send(job)
        except (EOFError, OSError):
            self.ended_without_result()

    def run(self, job: ModelJob, deadline: float, check: str) -> WorkerResults:
        """Hand the worker its job (unless ``start`` did) and wait, at most ``deadline`` seconds, until its
        results have ``check``'s verdict (or its last message came). The worker hands back each
        batch of checks as it finishes them: the model's verdict comes before the prompts'."""
        self.start(job)
        end = time.monotonic() + deadline
        while check not in self.results.checks and not self.results.final:
            try:
                got = self.receive(max(0.0, end - time.monotonic()))
            except (EOFError, OSError):
                self.ended_without_result()
            if got is None:
                self.stop()
                raise CheckFailed(
                    f"The model worker's checks took longer than {deadline:.0f}s.",
                    "the server is very slow to store or serve model files; look at its log.",
                )
            self.take(got)
        return self.results

    def take(self, got: dict) -> None:
        batch = WorkerResults(**got)
        self.results.checks.update(batch.checks)
        self.results.created = batch.created  # the worker's one ledger, as it is now
        self.results.final = batch.final
        for name, start, end_ in batch.phases:
            self.timeline.add(f"model worker: {name}", start, end_)

    def verdicts(self) -> dict[str, dict]:
        """The verdicts the worker has handed back so far, without waiting (none before its job)."""
        if self.results is None:
            return {}
        with contextlib.suppress(EOFError, OSError):
            while not self.results.final and (got := self.receive(0)) is not None:
                self.take(got)
        return self.results.checks

    def ended_without_result(self):
        self.proc.join(timeout=5)
        said = tail(self.log_path, 8)
        raise CheckFailed(
            f"The model worker process ended (code {self.proc.exitcode}) without a result:\n{said}",
            "run again with --verbose; if it repeats, this is a bug in the suite.",
        ) from None

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


def serve(conn, parent_conn, log_path: str, entry: str, model_format: str | None) -> None:
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
    # loaded module (skops.io._utils.whichmodule), which costs less before MLflow's many
    # modules are loaded (docs/performance.md).
    with imports_without_gc():
        import sklearn.linear_model  # noqa: F401

        if model_format in (None, "skops"):  # MLflow's default format is skops
            with contextlib.suppress(ImportError):
                import skops.io  # noqa: F401
        import mlflow.pyfunc  # noqa: F401
        import mlflow.sklearn  # noqa: F401
        from mlflow.models import infer_signature  # noqa: F401

        module, function = entry.split(":")
        jobs = importlib.import_module(module)
        run_job = getattr(jobs, function)

    imported = time.time()
    conn.send(READY)
    try:
        job = conn.recv()
    except EOFError:  # the main process needed no model checks, or ended
        os._exit(0)
    job_start = time.time()
    results = run_job(job, lambda batch: conn.send(asdict(batch)))
    results.phases = [("imports", started, imported), ("model, registry, evaluation", job_start, time.time())]
    results.final = True
    conn.send(asdict(results))
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: MLflow's exit handlers (telemetry, async queues) take
    # seconds and there is nothing left to save.
    os._exit(0)
