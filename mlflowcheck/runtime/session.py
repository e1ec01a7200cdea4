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

    def connect(self) -> None:
        """Make the MLflow client, now that the target is known to be an MLflow server."""
        import mlflow

        mlflow.set_tracking_uri(self.target.url)
        mlflow.set_registry_uri(self.target.url)
        self.client = mlflow.MlflowClient(tracking_uri=self.target.url, registry_uri=self.target.url)
