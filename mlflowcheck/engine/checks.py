"""The code of the suite's checks: ``check_<name>`` for each check of the registry
(engine/registry.py), which holds their order, prerequisites and options; pytest collects
these functions and the plugin runs them in the registry's order.

The first five walk down the layers of a deployment (URI, network, is it MLflow, access,
versions); after them the seed's run is logged piece by piece, each piece read back through
the server. Each body is short: the work is the probes' (mlflowcheck/probes).
"""

from __future__ import annotations

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.target import parse_target
from mlflowcheck.explain import posture
from mlflowcheck.explain.deployment import describe_server_info, version_skew
from mlflowcheck.explain.errors import refusal
from mlflowcheck.explain.support import said
from mlflowcheck.net.http import auth_from_env
from mlflowcheck.net.liveness import versions_seen
from mlflowcheck.probes import artifacts, cleanup, continuity, load, otlp, prompts, restart, traces, tracking
from mlflowcheck.probes.identity import SERVER_INFO, identify_implementation, server_info
from mlflowcheck.probes.layers import access, identify, reach
from mlflowcheck.probes.models import start_worker_job, worker_check
from mlflowcheck.probes.security import (
    probe_anonymous_write,
    probe_cross_origin,
    probe_exposure,
    probe_headers,
    probe_host_header,
    probe_traversal,
)
from mlflowcheck.probes.ui import browse, served, start_pages_without_model


def check_uri(suite):
    suite.target = parse_target(suite.options.tracking_uri)
    suite.note("uri", suite.target.note or suite.target.url)


def check_network(suite):
    reach(suite.target)
    suite.note("network", f"{suite.target.host}:{suite.target.port} accepts connections")


def check_server(suite):
    suite.server_version = identify(suite.target)
    suite.implementation = identify_implementation(suite.target, suite.server_version)
    found = suite.implementation
    suite.note("server", found.describe() if found.version else "protected; version after login")


def check_access(suite):
    access(suite.target, suite.implementation)
    suite.note("access", "the REST API answers JSON" + (" (with credentials)" if auth_from_env() else ""))
    if not suite.server_version:
        suite.server_version = identify(suite.target)
        suite.implementation = identify_implementation(suite.target, suite.server_version)
        suite.note("access", f"{suite.notes['access']}; the server is {suite.implementation.describe()}")
    suite.connect()


def check_versions(suite):
    import pytest

    found = suite.implementation
    if found is not None and not found.is_mlflow:
        # Another product's version number says nothing about MLflow's: what it supports is the
        # support matrix's question, check by check.
        pytest.skip(f"{found.name} is not MLflow's own server: its version does not compare with MLflow's")
    seen = versions_seen(suite.target)
    suite.topology["server_versions_seen"] = seen
    suite.note(
        "versions",
        version_skew(suite.client_version, suite.server_version)
        or f"client and server both MLflow {suite.client_version}",
    )
    if len(seen) > 1:
        suite.warn("versions", f"the replicas behind this address run different MLflow versions: {', '.join(seen)}"
                   "\nTip: run one MLflow version on every replica (they share one database schema).")  # fmt: skip


def check_server_info(suite):
    found = suite.implementation
    info, answer = (found.server_info, None) if found and found.server_info else server_info(suite.target)
    if info is None:
        refused = refusal(answer, found) if answer is not None else None
        if refused is not None:
            raise refused
        raise CheckFailed(
            f"GET {SERVER_INFO} answered {said(answer) if answer else 'nothing'}, not the JSON MLflow 3.10+ sends.",
            "look in the server's log for this request.",
        )
    suite.note("server_info", describe_server_info(info))


def check_ui(suite):
    served(suite)


def check_experiment(suite):
    tracking.experiment(suite)


def check_params(suite):
    tracking.start_run(suite)
    tracking.params(suite)


def check_metrics(suite):
    tracking.metrics(suite)


def check_dataset(suite):
    tracking.dataset(suite)


def check_artifact(suite):
    artifacts.report(suite)
    # The run, its params and metrics are logged, its artifacts work: while the checks after this
    # one run, the browser checks the experiment's page (the run in its table) and the model
    # worker logs the model.
    start_pages_without_model(suite)
    start_worker_job(suite)


def check_big_artifact(suite):
    artifacts.big_artifact(suite)


def check_search(suite):
    tracking.search(suite)


def check_otlp(suite):
    otlp.check(suite)


def check_prompts(suite):
    prompts.prompts(suite)


def check_model(suite):
    worker_check(suite, "model")


def check_trace(suite):
    traces.trace(suite)


def check_assessments(suite):
    traces.assessments(suite)


def check_run(suite):
    tracking.finish_run(suite)


def check_registry(suite):
    worker_check(suite, "registry")


def check_load(suite):
    load.check(suite, suite.progress)


def check_browser(suite):
    browse(suite)


def check_evaluation(suite):
    worker_check(suite, "evaluation")


def check_final_report(suite):
    artifacts.report(suite, final=True)


def check_restart(suite):
    restart.restart_and_read_back(suite)


def check_fingerprint(suite):
    continuity.check_fingerprint(suite)


def check_compare(suite):
    continuity.check_compare(suite)


def verdict(suite, name: str, finding: posture.Finding) -> None:
    """A security finding as the check's outcome: FAIL raises, WARN and PASS note it."""
    if finding.status == "fail":
        raise CheckFailed(finding.message, finding.tip)
    if finding.status == "warn":
        suite.warn(name, finding.message + (f"\nTip: {finding.tip}" if finding.tip else ""))
    else:
        suite.note(name, finding.message)


def check_exposure(suite):
    suite.exposure = probe_exposure(suite.target)
    verdict(suite, "exposure", posture.exposure(suite.exposure))


def check_hosts(suite):
    verdict(suite, "hosts", posture.host_protection(probe_host_header(suite.target)))


def check_cors(suite):
    requires_credentials = suite.exposure is not None and suite.exposure.answer.status in (401, 403)
    verdict(suite, "cors", posture.cross_origin(probe_cross_origin(suite.target), requires_credentials))


def check_traversal(suite):
    answers = probe_traversal(suite.target, suite.run_id, suite.experiment_id)
    verdict(suite, "traversal", posture.traversal(answers))


def check_headers(suite):
    verdict(suite, "headers", posture.security_headers(probe_headers(suite.target)))


def check_advisories(suite):
    found = suite.implementation
    if found is not None and not found.is_mlflow:
        import pytest

        pytest.skip(f"MLflow's advisories are about MLflow's own server, and {found.name} is another product")
    verdict(suite, "advisories", posture.known_advisories(suite.server_version))


def check_writes(suite):
    answer = probe_anonymous_write(suite.target, suite.run_id)
    verdict(suite, "writes", posture.anonymous_write(answer, suite.exposure.loopback))


def check_cleanup(suite):
    cleanup.cleanup(suite)
