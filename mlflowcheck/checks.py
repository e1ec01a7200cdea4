"""The suite's checks, in the order they run: pytest collects the ``check_*`` functions.

The first five walk down the layers of a deployment (URI, network, is it MLflow, versions,
access); after them the seed's run is logged piece by piece, each piece read back through
the server. ``needs`` names the checks that must have passed first; otherwise the check is
reported as skipped with the reason.
"""

from __future__ import annotations

import pytest

from mlflowcheck import artifacts, cleanup, diagnosis, tracking, ui
from mlflowcheck.model_worker import worker_check

needs = pytest.mark.needs


def check_uri(suite):
    suite.target = diagnosis.parse_target(suite.options.tracking_uri)
    suite.note("uri", suite.target.note or suite.target.url)


@needs("uri")
def check_network(suite):
    diagnosis.check_network(suite.target)
    suite.note("network", f"{suite.target.host}:{suite.target.port} accepts connections")


@needs("network")
def check_server(suite):
    suite.server_version = diagnosis.check_is_mlflow(suite.target)
    suite.note("server", f"MLflow {suite.server_version}" if suite.server_version else "protected; version after login")


@needs("server")
def check_access(suite):
    diagnosis.check_api(suite.target)
    suite.note("access", "the REST API answers JSON" + (" (with credentials)" if diagnosis.auth_from_env() else ""))
    if not suite.server_version:
        suite.server_version = diagnosis.check_is_mlflow(suite.target)


@needs("access")
def check_versions(suite):
    suite.note(
        "versions",
        diagnosis.check_versions(suite.client_version, suite.server_version)
        or f"client and server both MLflow {suite.client_version}",
    )
    suite.connect()


@needs("versions")
def check_experiment(suite):
    tracking.experiment(suite)


@needs("experiment")
def check_params(suite):
    tracking.start_run(suite)
    tracking.params(suite)


@needs("params")
def check_metrics(suite):
    tracking.metrics(suite)


@needs("params")
def check_dataset(suite):
    tracking.dataset(suite)


@needs("params")
def check_artifact(suite):
    artifacts.report(suite)


# Checks that need no model run here, while the model worker finishes its imports.
@needs("metrics")
def check_search(suite):
    tracking.search(suite)


@needs("server")
def check_ui(suite):
    ui.served(suite)


@needs("dataset", "artifact")
def check_model(suite):
    worker_check(suite, "model")


@needs("params")
def check_run(suite):
    tracking.finish_run(suite)


@needs("model")
def check_registry(suite):
    worker_check(suite, "registry")


@needs("ui", "run")
def check_browser(suite):
    ui.browse(suite)


@needs("artifact", "run")
def check_final_report(suite):
    artifacts.report(suite, final=True)


# Only with --cleanup (the plugin deselects it otherwise); no prerequisites: whatever this
# run created before a failure is deleted too.
def check_cleanup(suite):
    cleanup.cleanup(suite)
