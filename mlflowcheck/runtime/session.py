"""The session: the run's state plus the live handles its checks use (the MLflow client, the
model worker, the browser, the server this suite started). Made by the engine, handed to every
check; the handles are stopped by the engine at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlflowcheck.core.state import RunState
from mlflowcheck.runtime.browser import BrowserSession
from mlflowcheck.runtime.server import LocalServer
from mlflowcheck.runtime.worker import ModelWorker


@dataclass
class Session(RunState):
    client: Any = None  # mlflow.MlflowClient, made once the server is known to be MLflow
    data: Any = None  # the seed's DataFrame
    model_worker: ModelWorker | None = None  # the model checks' parallel process
    browser: BrowserSession | None = None  # Chromium for the browser check, started early
    local_server: LocalServer | None = None  # the server this suite started (for --restart)
    progress: Callable[[str], None] | None = None  # a live status line for long checks (a terminal only)
    worker_checks: frozenset[str] = frozenset()  # the model worker's checks selected for this run

    def connect(self) -> None:
        """Make the MLflow client, now that the target is known to be an MLflow server."""
        self.client = mlflow_client(self.target.url)


def mlflow_client(url: str):
    """This process's MLflow client for the server at ``url``, tracking and registry (the
    fluent API too: log_model and set_experiment go through it)."""
    import mlflow

    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    return mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
