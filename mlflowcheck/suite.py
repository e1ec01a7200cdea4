"""The state one suite run shares between its checks: options, target, what was logged."""

from __future__ import annotations

import contextlib
import gc
import importlib.abc
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflowcheck.diagnosis import Target
from mlflowcheck.timeline import Timeline

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mlflowcheck.loadstats import Figures, Sent
    from mlflowcheck.model_worker import ModelWorker
    from mlflowcheck.security import Exposure
    from mlflowcheck.server import LocalServer
    from mlflowcheck.ui import BrowserSession


@dataclass
class Options:
    tracking_uri: str
    model_format: str | None = None  # None: MLflow's default (skops on 3.17)
    registered_model: str = "mlflow-local-test-model"
    alias: str | None = None  # None: an alias of this run's own, check-<run id>
    verbose: bool = False
    server_log: Path | None = None  # the log of a server this suite started, for messages
    ui: bool | None = None  # the browser check: True required, False off, None when a browser is found
    screenshots: Path | None = None  # where the browser check saves its screenshots
    timeout: float | None = None  # --timeout: bounds the whole run, in seconds
    server_started_by_suite: bool = False  # the verdict is about a server this suite started
    cleanup: bool = False  # --cleanup: delete what this run created, after the checks
    restart: bool = False  # --restart: restart the server this suite started, then read everything back
    upload_size: int = 4 * 2**20  # --upload-size: the large artifact (above nginx's default 1 MB body limit)
    load_clients: int | None = None  # --load: concurrent client processes of the load probe
    load_seconds: float = 20.0  # --load-seconds
    load_p95_ms: float | None = None  # --load-p95-ms: the p95 latency the load probe must stay under
    security: bool = False  # --security: the read-only security probes
    security_write: bool = False  # --security-write: also the write probes, on this run's own objects
    backend_store_uri: str | None = None  # of a server this suite started, password hidden (for `mlflow gc`)


@dataclass
class Logged:
    """What the checks logged and read back, kept to read it back once more after a restart."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int, float, int]]] = field(default_factory=dict)  # key -> (step, value, ts)
    dataset_digest: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # run artifact path -> sha256


@dataclass
class ModelResults:
    """What the model worker hands back: its two verdicts, and what it created on the server
    (the logged model, the registry version, the alias), for the checks after it and for
    --cleanup."""

    checks: dict[str, dict] = field(default_factory=dict)  # "model"/"registry" -> status, note or message, tip
    model_id: str | None = None
    model_file: str = ""
    registered_version: str | None = None
    registered_model_created: bool = False  # the registered model did not exist before this run
    alias: str | None = None
    alias_before: str | None = None  # the version the alias pointed at before this run, if any
    saved_model: dict[str, str] = field(default_factory=dict)  # the model as the suite saved it: file -> sha256
    phases: list[tuple[str, float, float]] = field(default_factory=list)  # the worker's timeline (time.time())


@dataclass
class CheckResult:
    name: str
    status: str  # "passed" | "failed" | "skipped"
    duration: float
    message: str = ""
    fatal: bool = False
    warning: bool = False  # passed, with a warning (WARN)


@dataclass
class Suite:
    options: Options
    target: Target | None = None
    client_version: str = ""
    server_version: str = ""
    client: Any = None  # mlflow.MlflowClient, made once the server is known to be MLflow
    experiment_id: str | None = None
    experiment_name: str | None = None
    run_id: str | None = None
    artifact_uri: str | None = None
    data: Any = None  # the seed's DataFrame
    model: Any = None  # the trained LogisticRegression
    model_info: Any = None
    model_file: str = ""
    registered_version: str | None = None  # the registry version this run added and verified
    model_worker: ModelWorker | None = None  # the model checks' parallel process
    browser: BrowserSession | None = None  # Chromium for the browser check, started early
    timeline: Timeline = field(default_factory=Timeline)  # where the run's seconds went
    created: ModelResults = field(default_factory=ModelResults)  # what the model checks created
    cleanup_report: list[str] | None = None  # what --cleanup did, line by line
    logged: Logged = field(default_factory=Logged)  # what was logged and read back, for --restart
    load_sent: list[Sent] = field(default_factory=list)  # what the load probe's clients had acknowledged
    local_server: LocalServer | None = None  # the server this suite started (for --restart)
    screenshots: list[str] = field(default_factory=list)  # files the browser check saved
    timed_out: str | None = None  # the check that was running when --timeout expired
    results: list[CheckResult] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    warnings: set[str] = field(default_factory=set)  # checks that passed with a warning
    topology: dict[str, object] = field(default_factory=dict)  # what the suite found out about the deployment
    exposure: Exposure | None = None  # what the exposure probe saw, for the probes after it
    load: Figures | None = None  # the load probe's figures
    last_answered: str | None = None  # the last check that passed (the server answered then)
    server_down: str | None = None  # why the checks after a dead server are skipped
    progress: Callable[[str], None] | None = None  # a live status line for long checks (a terminal only)
    started: float = field(default_factory=time.time)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlflowcheck-")))

    @property
    def alias(self) -> str:
        """The registry alias this run sets: --alias, else one of its own (no race with
        other runs of the suite: each verifies the alias it set)."""
        return self.options.alias or f"check-{(self.run_id or 'none')[:12]}"

    @property
    def expiry(self) -> str:
        """What the verdict and the skipped checks say once --timeout has expired."""
        return f"the --timeout of {self.options.timeout:g}s expired during '{self.timed_out}'"

    def remaining(self, cap: float) -> float:
        """Seconds left under --timeout, at most ``cap``."""
        if self.options.timeout is None:
            return cap
        return max(0.1, min(cap, self.options.timeout - (time.time() - self.started)))

    def note(self, check: str, text: str) -> None:
        """A line shown beside a check's verdict (what it saw, a warning)."""
        if text:
            self.notes[check] = text

    def warn(self, check: str, text: str) -> None:
        """The check passes with a warning: shown as WARN."""
        self.warnings.add(check)
        self.note(check, text)

    def outcome(self, name: str) -> str | None:
        for result in self.results:
            if result.name == name:
                return result.status
        return None

    def ui_url(self, path: str) -> str | None:
        """A UI address that opens in the classic "Model training" view.

        MLflow 3.17's UI chooses between its GenAI and "Model training" views by the
        ``workflowType`` URL parameter, else the browser's last choice (localStorage), else
        GenAI; older 3.x UIs go by the experiment tag ``mlflow.experimentKind``, which the
        suite sets too (tracking.experiment).
        """
        if self.target is None:
            return None
        return self.target.ui_link(f"{path}?workflowType=machine_learning")

    @property
    def experiment_url(self) -> str | None:
        return None if self.experiment_id is None else self.ui_url(f"/experiments/{self.experiment_id}")

    @property
    def run_url(self) -> str | None:
        return self.run_page_url()

    def run_page_url(self, tab: str = "") -> str | None:
        """The run's page in the UI, or one of its tabs ("model-metrics", "artifacts")."""
        if self.experiment_id is None or self.run_id is None:
            return None
        return self.ui_url(f"/experiments/{self.experiment_id}/runs/{self.run_id}" + (f"/{tab}" if tab else ""))

    def counts(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "skipped": 0, "warned": 0}
        for result in self.results:
            counts[result.status] += 1
            counts["warned"] += result.warning
        return counts

    def exit_code(self) -> int:
        """0 every check passed; 1 a check failed; 2 the suite could not run."""
        if any(r.fatal for r in self.results):
            return 2
        if any(r.status == "failed" for r in self.results):
            return 1
        return 0

    def connect(self) -> None:
        """Make the MLflow client, now that the target is known to be an MLflow server."""
        import os

        import mlflow

        without_ipython()

        # The first contact (diagnosis) already proved the server answers; from here a
        # failing request gets two quick retries, not MLflow's default of minutes.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        # Short backoffs: a dead server must get its verdict within seconds (plugin: server_fate).
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
        from mlflowcheck.diagnosis import keep_server_error_bodies

        keep_server_error_bodies()
        mlflow.set_tracking_uri(self.target.url)
        mlflow.set_registry_uri(self.target.url)
        self.client = mlflow.MlflowClient(tracking_uri=self.target.url, registry_uri=self.target.url)


class _NoIPython(importlib.abc.MetaPathFinder):
    """Makes ``import IPython`` fail as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "IPython" or name.startswith("IPython."):
            raise ModuleNotFoundError(f"No module named {name!r} (not in the suite's processes)", name=name)
        return None


def without_ipython() -> None:
    """Run this process's MLflow client as where IPython is not installed.

    On every request MLflow asks whether it runs in a Databricks notebook, and the first time
    it imports IPython for that: 0.4 s where IPython is installed (mlflow.utils.databricks_utils
    ._get_dbutils). The suite's processes are never notebooks, and MLflow runs without IPython.
    Left alone where IPython is already imported (the suite called from a notebook).
    """
    if "IPython" not in sys.modules and not any(isinstance(f, _NoIPython) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoIPython())


@contextlib.contextmanager
def imports_without_gc() -> Iterator[None]:
    """The suite's heavy imports with the cyclic garbage collector paused, their objects frozen.

    Importing scikit-learn, skops and MLflow creates some 400,000 objects the collector tracks,
    and almost no cyclic garbage (about 1,500 objects). While they pile up, the collector's
    full passes over the growing heap ran four times and took 0.2 s of the model worker's
    1.8 s of imports (measured in fresh interpreters; README: Performance). Afterwards
    ``gc.freeze`` moves the imported objects out of later passes, as CPython's documentation
    advises for a heap made once at start-up. A collector that was already off is left off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
