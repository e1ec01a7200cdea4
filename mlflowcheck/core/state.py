"""The run's data: what the suite found out, what it created and logged, and the verdicts.

Plain data only: no live handle (a process, a thread, a client) is kept here; those are the
session's (runtime.session). The model worker's results, the reports and --cleanup work from
this alone."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlflowcheck.core.errors import EXIT_FAILED, EXIT_NO_RUN, EXIT_OK
from mlflowcheck.core.loadstats import Figures, Sent
from mlflowcheck.core.observations import Exposure, Implementation
from mlflowcheck.core.options import Options
from mlflowcheck.core.target import Target
from mlflowcheck.core.timeline import Timeline


@dataclass
class Created:
    """The ledger of what the model and GenAI checks created on the server (the logged model,
    the registry version, the alias; the app's logged model, the prompt, the evaluation dataset
    and run), for the checks after them and for --cleanup; the model worker hands back its part
    with its verdicts (runtime.worker.WorkerResults)."""

    model_id: str | None = None
    model_file: str = ""
    registered_version: str | None = None
    registered_model_created: bool = False  # the registered model did not exist before this run
    alias: str | None = None
    alias_before: str | None = None  # the version the alias pointed at before this run, if any
    saved_model: dict[str, str] = field(default_factory=dict)  # the model as the suite saved it: file -> sha256
    app_model_id: str | None = None  # the app's logged model the trace is linked to (set_active_model)
    prompt: str | None = None  # the prompt this run registered (every version is this run's)
    dataset_id: str | None = None  # the evaluation dataset this run created
    evaluation_run_id: str | None = None  # the run mlflow.genai.evaluate created

    def take(self, worker: dict) -> None:
        """What the worker's ledger (as a dict) has recorded; what this process recorded itself
        (the prompt) stays."""
        defaults = Created()
        for name, value in worker.items():
            if value != getattr(defaults, name):
                setattr(self, name, value)


@dataclass
class CheckResult:
    name: str
    status: str  # "passed" | "failed" | "unsupported" (the server lacks the API) | "skipped"
    duration: float
    message: str = ""
    fatal: bool = False
    warning: bool = False  # passed, with a warning (WARN)


@dataclass
class RunState:
    """Everything one run of the suite knows, as data. The checks write it; the verdict, the
    reports and --cleanup read it."""

    options: Options
    target: Target | None = None
    client_version: str = ""
    server_version: str = ""
    implementation: Implementation | None = None  # which server answers (the server check)
    experiment_id: str | None = None
    experiment_name: str | None = None
    run_id: str | None = None
    artifact_uri: str | None = None
    created: Created = field(default_factory=Created)  # what the model checks created
    trace_id: str | None = None  # the seed's trace, by the id the server keeps it under
    trace_ids: list[str] = field(default_factory=list)  # every trace this process wrote, for --cleanup
    load_sent: list[Sent] = field(default_factory=list)  # what the load probe's clients had acknowledged
    load: Figures | None = None  # the load probe's figures
    exposure: Exposure | None = None  # what the exposure probe saw, for the probes after it
    topology: dict[str, object] = field(default_factory=dict)  # what the suite found out about the deployment
    screenshots: list[str] = field(default_factory=list)  # files the browser check saved
    cleanup_report: list[str] | None = None  # what --cleanup did, line by line
    comparison: dict | None = None  # --compare's counts per kind and first differences
    results: list[CheckResult] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    warnings: set[str] = field(default_factory=set)  # checks that passed with a warning
    timed_out: str | None = None  # the check that was running when --timeout expired
    last_answered: str | None = None  # the last check that passed (the server answered then)
    server_down: str | None = None  # why the checks after a dead server are skipped
    timeline: Timeline = field(default_factory=Timeline)  # where the run's seconds went
    started: float = field(default_factory=time.time)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlflowcheck-")))

    @property
    def alias(self) -> str:
        """The registry alias this run sets: --alias, else one of its own (no race with
        other runs of the suite: each verifies the alias it set)."""
        return run_alias(self.options, self.run_id)

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
        if self.implementation is not None and self.implementation.ui_path != "/":
            return f"{self.target.url}{self.implementation.ui_path}#{path}"
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
        counts = {"passed": 0, "failed": 0, "unsupported": 0, "skipped": 0, "warned": 0}
        for result in self.results:
            counts[result.status] += 1
            counts["warned"] += result.warning
        return counts

    def exit_code(
        self,
        required: frozenset[str] | None = None,
        group_of: dict[str, str] | None = None,
        lenient: frozenset[str] = frozenset(),
    ) -> int:
        """0 every required check passed; 1 a check of a required group failed or is unsupported;
        2 the suite could not run. ``required``: the groups that must pass (None: every group),
        ``group_of``: each check's group (the registry's); ``lenient``: required groups whose
        checks the server does not support (and those they block) do not fail the run."""
        if any(r.fatal for r in self.results):
            return EXIT_NO_RUN
        if self.timed_out or self.server_down:
            return EXIT_FAILED  # the run was cut short: what did not run is not a pass
        group_of = group_of or {}
        for r in self.results:
            if required is not None and group_of.get(r.name) not in required:
                continue
            missing = r.status == "unsupported" or "this server does not support" in r.message
            if missing and group_of.get(r.name) in lenient:
                continue
            if r.status in ("failed", "unsupported") or blocked(r):
                return EXIT_FAILED
        return EXIT_OK


def blocked(result: CheckResult) -> bool:
    """Skipped because a prerequisite failed or is unsupported (not deselected, not turned off):
    in a required group, that is no pass."""
    return (
        result.status == "skipped"
        and result.message.startswith("needs '")
        and "which was not selected" not in result.message
    )


def run_alias(options: Options, run_id: str | None) -> str:
    """--alias, else the run's own alias: no race with other runs of the suite, each verifies the alias it set."""
    return options.alias or f"check-{(run_id or 'none')[:12]}"
