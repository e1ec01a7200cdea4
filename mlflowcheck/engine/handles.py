"""Starting the run's live helpers: the model worker and Chromium, each wired to its probe's code."""

from __future__ import annotations

from mlflowcheck.runtime.browser import BrowserSession, start_browser
from mlflowcheck.runtime.session import Session
from mlflowcheck.runtime.worker import ModelWorker

#: The function the model worker runs with its job (imported in the worker, by name).
MODEL_JOB = "mlflowcheck.probes.models:run_job"


def start_model_worker(suite: Session) -> ModelWorker:
    return ModelWorker(suite.tmp / "model-worker.log", suite.timeline, MODEL_JOB, suite.options.model_format)


def start_chromium(suite: Session) -> BrowserSession | None:
    from mlflowcheck.probes.ui import UserPages

    return start_browser(suite, UserPages)
