"""The suite's checks, in the order they run: pytest collects the ``check_*`` functions.

The first five walk down the layers of a deployment (URI, network, is it MLflow, versions,
access); after them the seed's run is logged piece by piece, each piece read back through
the server. ``needs`` names the checks that must have passed first; otherwise the check is
reported as skipped with the reason.
"""

from __future__ import annotations

import pytest

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.target import parse_target
from mlflowcheck.explain import posture
from mlflowcheck.explain.deployment import version_skew
from mlflowcheck.net.http import auth_from_env
from mlflowcheck.net.liveness import versions_seen
from mlflowcheck.probes import artifacts, cleanup, load, restart, tracking
from mlflowcheck.probes.layers import access, identify, reach
from mlflowcheck.probes.models import worker_check
from mlflowcheck.probes.security import (
    probe_anonymous_write,
    probe_cross_origin,
    probe_exposure,
    probe_headers,
    probe_host_header,
    probe_traversal,
)
from mlflowcheck.probes.ui import browse, served, start_pages_without_model

needs = pytest.mark.needs


def check_uri(suite):
    suite.target = parse_target(suite.options.tracking_uri)
    suite.note("uri", suite.target.note or suite.target.url)


@needs("uri")
def check_network(suite):
    reach(suite.target)
    suite.note("network", f"{suite.target.host}:{suite.target.port} accepts connections")


@needs("network")
def check_server(suite):
    suite.server_version = identify(suite.target)
    suite.note("server", f"MLflow {suite.server_version}" if suite.server_version else "protected; version after login")


@needs("server")
def check_access(suite):
    access(suite.target)
    suite.note("access", "the REST API answers JSON" + (" (with credentials)" if auth_from_env() else ""))
    if not suite.server_version:
        suite.server_version = identify(suite.target)


@needs("access")
def check_versions(suite):
    suite.note(
        "versions",
        version_skew(suite.client_version, suite.server_version)
        or f"client and server both MLflow {suite.client_version}",
    )
    seen = versions_seen(suite.target)
    suite.topology["server_versions_seen"] = seen
    if len(seen) > 1:
        suite.warn("versions", f"the replicas behind this address run different MLflow versions: {', '.join(seen)}"
                   "\nTip: run one MLflow version on every replica (they share one database schema).")  # fmt: skip
    suite.connect()


# Early: the browser (started with the server) loads the web app while the tracking checks run.
@needs("server")
def check_ui(suite):
    served(suite)


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
    # The run, its params and metrics are logged: the browser checks the experiment's page (the
    # run in its table) while the checks after this one run.
    start_pages_without_model(suite)


@needs("artifact")
def check_big_artifact(suite):
    artifacts.big_artifact(suite)


# Checks that need no model run here, while the model worker finishes its imports.
@needs("metrics")
def check_search(suite):
    tracking.search(suite)


@needs("dataset", "artifact")
def check_model(suite):
    worker_check(suite, "model")


@needs("params")
def check_run(suite):
    tracking.finish_run(suite)


@needs("model")
def check_registry(suite):
    worker_check(suite, "registry")


# Only with --load: after the model checks (their worker would take CPU from the probe), before the
# browser check (so its screenshot of the run's charts shows the probe's figures).
@needs("experiment", "run")
def check_load(suite):
    load.check(suite, suite.progress)


@needs("ui", "run")
def check_browser(suite):
    browse(suite)


@needs("artifact", "run")
def check_final_report(suite):
    artifacts.report(suite, final=True)


# Only with --restart, for a server this suite started: is what it acknowledged durable?
@needs("run")
def check_restart(suite):
    restart.restart_and_read_back(suite)


def verdict(suite, name: str, finding: posture.Finding) -> None:
    """A security finding as the check's outcome: FAIL raises, WARN and PASS note it."""
    if finding.status == "fail":
        raise CheckFailed(finding.message, finding.tip)
    if finding.status == "warn":
        suite.warn(name, finding.message + (f"\nTip: {finding.tip}" if finding.tip else ""))
    else:
        suite.note(name, finding.message)


@needs("server")
def check_exposure(suite):
    suite.exposure = probe_exposure(suite.target)
    verdict(suite, "exposure", posture.exposure(suite.exposure))


@needs("server")
def check_hosts(suite):
    verdict(suite, "hosts", posture.host_protection(probe_host_header(suite.target)))


@needs("server")
def check_cors(suite):
    requires_credentials = suite.exposure is not None and suite.exposure.answer.status in (401, 403)
    verdict(suite, "cors", posture.cross_origin(probe_cross_origin(suite.target), requires_credentials))


@needs("server")
def check_traversal(suite):
    answers = probe_traversal(suite.target, suite.run_id, suite.experiment_id)
    verdict(suite, "traversal", posture.traversal(answers))


@needs("server")
def check_headers(suite):
    verdict(suite, "headers", posture.security_headers(probe_headers(suite.target)))


@needs("access")
def check_advisories(suite):
    verdict(suite, "advisories", posture.known_advisories(suite.server_version))


@needs("exposure", "run")
def check_writes(suite):
    answer = probe_anonymous_write(suite.target, suite.run_id)
    verdict(suite, "writes", posture.anonymous_write(answer, suite.exposure.loopback))


# Only with --cleanup (the plugin deselects it otherwise); no prerequisites: whatever this
# run created before a failure is deleted too.
def check_cleanup(suite):
    cleanup.cleanup(suite)
