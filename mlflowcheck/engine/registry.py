"""The one list of the suite's checks, in the order they run.

Each check is declared here once: its name, the feature group it belongs to, the checks that
must pass before it, whether it runs only when asked for (and by which option), whether it
runs in the model worker, the oldest MLflow server with the API it uses, and one line on what
it proves. The check's code is ``check_<name>`` in engine/checks.py. The plugin's order and
lists, the tests' list, ``--help``'s list and the docs (docs/checks.md, the README's table:
``python -m mlflowcheck.engine.docs``) all come from here; tests/unit/test_docs.py fails when
they drift.

This module is data only: the command line reads it before any heavy import.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflowcheck.engine.details import DETAIL

#: The feature groups, in the order the docs list them: what each says about a deployment.
GROUPS = {
    "server": "the layers before any data moves: the address, the network, which server answers, access, versions",
    "info": "what the server says about itself (MLflow 3.10+'s `server-info`: store, workspaces, trace archival)",
    "tracking": "the tracking store: experiments, runs, params, metrics, search",
    "datasets": "dataset inputs of a run (`mlflow.log_input`): name, digest, source, schema, profile",
    "artifacts": "the artifact store, through the server",
    "models": "logged models: saved, stored, loaded back with the same predictions",
    "registry": "the model registry: versions and aliases",
    "genai": "MLflow 3's GenAI layer: traces, OpenTelemetry ingestion, assessments, prompts, evaluation",
    "ui": "the web app, and the run as a user sees it in a real browser",
    "load": "many clients at once: nothing lost, duplicated or altered",
    "durability": "what was acknowledged survives a restart of the server, an upgrade, a migration, a restore",
    "security": "the server's security posture, probed read-only",
    "cleanup": "deleting what the run created, and nothing else",
}


@dataclass(frozen=True)
class Check:
    name: str
    group: str
    summary: str  # what a PASS proves, in one line
    needs: tuple[str, ...] = ()  # checks that must have passed first (else: skipped, with the reason)
    option: str | None = None  # opt-in: the Options field that turns it on; None: runs by default
    flag: str | None = None  # the command-line option that sets ``option``, for the docs
    in_worker: bool = False  # runs in the model worker process (runtime.worker)
    since: str | None = None  # the oldest MLflow server version with the API it uses; None: any
    endpoints: tuple[str, ...] = ()  # the REST endpoints it writes or reads, for the support matrix's docs
    #: A read-only GET that tells whether the server has the API at all, asked when a prerequisite
    #: did not pass: the matrix then says UNSUPPORTED (the endpoint missing) rather than SKIPPED.
    probe: str | None = None

    @property
    def opt_in(self) -> bool:
        return self.option is not None

    @property
    def detail(self) -> str:
        """What it does and proves in full, for docs/checks.md (engine/details.py; else the summary)."""
        return DETAIL.get(self.name, "")


SECURITY = {"option": "security", "flag": "--security", "group": "security"}

CHECKS: tuple[Check, ...] = (
    Check(
        "uri",
        "server",
        "the tracking URI is an http(s) server address, not a database URI or an API path",
    ),
    Check(
        "network",
        "server",
        "something accepts connections within 3 s; over https the TLS handshake succeeds with the client's settings",
        needs=("uri",),
    ),
    Check(
        "server",
        "server",
        "what answers speaks MLflow's API: `GET /version` returns a version; which server it is",
        needs=("network",),
    ),
    Check(
        "access",
        "server",
        "a real API call answers JSON; 401/403 are explained",
        needs=("server",),
    ),
    Check(
        "versions",
        "server",
        "client and server major versions match; replicas run one version",
        needs=("access",),
    ),
    Check(
        "server_info",
        "info",
        "the server describes itself at `GET /api/3.0/mlflow/server-info`",
        needs=("access",),
        since="3.10",
        endpoints=("GET /api/3.0/mlflow/server-info",),
    ),
    # Early: the browser (started with the server) loads the web app while the tracking checks run.
    Check("ui", "ui", "the web app is served at the root and its script loads", needs=("server",)),
    Check(
        "experiment",
        "tracking",
        "a new experiment, read back by id and by name",
        needs=("access",),
        endpoints=(
            "experiments/create",
            "experiments/get",
            "experiments/get-by-name",
            "experiments/set-experiment-tag",
        ),
    ),
    Check(
        "params",
        "tracking",
        "the run's 4 params read back equal",
        needs=("experiment",),
        endpoints=("runs/create", "runs/log-batch", "runs/get"),
    ),
    Check(
        "metrics",
        "tracking",
        "2 metric histories, 5 steps each, read back equal",
        needs=("params",),
        endpoints=("runs/log-metric", "metrics/get-history"),
    ),
    Check(
        "dataset",
        "datasets",
        "the 100-row dataset input: name, digest, source, schema, profile, context",
        needs=("params",),
        since="2.4",
        endpoints=("runs/log-inputs", "runs/get"),
    ),
    Check(
        "artifact",
        "artifacts",
        "artifacts go through the server, never to the client's disk; the report read back, sha256 equal",
        needs=("params",),
        endpoints=("mlflow-artifacts/artifacts (PUT, GET)", "artifacts/list"),
    ),
    Check(
        "big_artifact",
        "artifacts",
        "a 4 MiB artifact goes through; if a proxy refuses it, the largest size that does",
        needs=("artifact",),
        endpoints=("mlflow-artifacts/artifacts (PUT, GET)",),
    ),
    # Checks that need no model run here, while the model worker finishes its imports.
    Check(
        "search",
        "tracking",
        "the run is found by a param and a metric filter, the experiment by name",
        needs=("metrics",),
        endpoints=("runs/search", "experiments/search"),
    ),
    # In the seed's run, linked to an app's logged model of its own (not the seed's model): it runs
    # while the model worker imports (against a running server) or logs the model.
    Check(
        "trace",
        "genai",
        "a traced call (nested spans, a 2 MiB span, an error) read back span by span; found by search",
        needs=("params",),
        endpoints=(
            "POST /v1/traces",
            "POST /api/3.0/mlflow/traces",
            "GET /api/3.0/mlflow/traces/get",
            "traces/search",
            "logged-models (create, finalize, get)",
        ),
    ),
    Check(
        "assessments",
        "genai",
        "feedback and an expectation on the trace, read back exactly",
        needs=("trace",),
        endpoints=("POST /api/3.0/mlflow/traces/{id}/assessments",),
    ),
    # Neither needs the run or a model: they fill the time until the model worker's verdict.
    Check(
        "otlp",
        "genai",
        "OpenTelemetry's own exporter sends a span to `/v1/traces`; read back as an MLflow trace",
        needs=("experiment",),
        since="3.4",
        endpoints=("POST /v1/traces",),
    ),
    Check(
        "prompts",
        "genai",
        "a prompt with 2 versions and an alias, loaded by version and by alias, text equal",
        needs=("access",),
        endpoints=("registered-models/create", "model-versions/create", "registered-models/alias"),
    ),
    Check(
        "model",
        "models",
        "the scikit-learn model logged, every file sha256-verified, loaded: same predictions",
        needs=("artifact",),
        in_worker=True,
        since="3.0",
        endpoints=("logged-models (create, get, finalize)", "mlflow-artifacts/artifacts (PUT, GET)"),
        probe="/api/2.0/mlflow/logged-models/m-mlflowcheck-probe",
    ),
    Check(
        "run",
        "tracking",
        "the run ended FINISHED",
        needs=("params",),
        endpoints=("runs/update", "runs/get"),
    ),
    Check(
        "registry",
        "registry",
        "a new model version; the run's alias resolves to it; verified and loaded",
        needs=("model",),
        in_worker=True,
        since="3.0",
        endpoints=("registered-models/create", "model-versions/create", "registered-models/alias"),
        probe="/api/2.0/mlflow/registered-models/get?name=mlflowcheck-probe-no-such-model",
    ),
    # After the model checks (their worker would take CPU from the probe), before the browser
    # check (so its screenshot of the run's charts shows the probe's figures).
    Check(
        "load",
        "load",
        "concurrent users (Locust) lose, duplicate and alter nothing; latency per endpoint",
        needs=("experiment", "run"),
        option="load_clients",
        flag="--load",
    ),
    Check(
        "browser",
        "ui",
        "a real Chromium shows the run on its experiment, run, metrics and artifacts pages",
        needs=("ui", "run"),
    ),
    # In the model worker, while the main process runs the browser check.
    Check(
        "evaluation",
        "genai",
        "an evaluation dataset read back; `mlflow.genai.evaluate` with a code scorer, its results read back",
        needs=("experiment",),
        in_worker=True,
        endpoints=("POST /api/3.0/mlflow/datasets/create", "datasets/{id}/records", "runs/create", "traces"),
    ),
    Check(
        "final_report",
        "artifacts",
        "the report with every result, uploaded again and read back",
        needs=("artifact", "run"),
    ),
    Check(
        "restart",
        "durability",
        "everything acknowledged reads back through the restarted server",
        needs=("run",),
        option="restart",
        flag="--restart",
    ),
    # Read-only: with either option only the layer checks run before them (READ_ONLY).
    Check(
        "fingerprint",
        "durability",
        "what the server holds in the scope (objects, metric histories, file hashes) written to a manifest",
        needs=("access",),
        option="fingerprint",
        flag="--fingerprint",
    ),
    Check(
        "compare",
        "durability",
        "the server fingerprinted again: nothing lost or altered since the manifest; what is new is listed",
        needs=("access",),
        option="compare",
        flag="--compare",
    ),
    Check("exposure", summary="who can reach the API without credentials", needs=("server",), **SECURITY),
    Check("hosts", summary="a foreign Host header is refused (DNS rebinding)", needs=("server",), **SECURITY),
    Check("cors", summary="no foreign origin may read or write", needs=("server",), **SECURITY),
    Check("traversal", summary="path traversal requests are refused", needs=("server",), **SECURITY),
    Check("headers", summary="nosniff and frame protection are set", needs=("server",), **SECURITY),
    Check("advisories", summary="no published advisory affects the server's version", needs=("access",), **SECURITY),
    Check(
        "writes",
        "security",
        "writes without credentials are refused (on this run's own objects)",
        needs=("exposure", "run"),
        option="security_write",
        flag="--security-write",
    ),
    # No prerequisites: whatever this run created before a failure is deleted too.
    Check(
        "cleanup",
        "cleanup",
        "what this run created is deleted, and nothing else",
        option="cleanup",
        flag="--cleanup",
    ),
)

BY_NAME = {check.name: check for check in CHECKS}
#: Each check's feature group.
GROUP_OF = {check.name: check.group for check in CHECKS}
#: The groups the seed's workflow uses: by default each must pass (``--require``).
SEED_GROUPS = ("server", "tracking", "datasets", "artifacts", "models", "registry", "ui")
#: Groups that must pass by default where the server has their API: a server without it (MISS)
#: still exits 0, unless --require names the group.
WHERE_SUPPORTED = ("genai",)
#: The checks of a read-only run (--fingerprint, --compare): the layers, then those two.
READ_ONLY = ("uri", "network", "server", "access", "versions", "server_info", "fingerprint", "compare")
#: The checks that run when no option asks for more.
DEFAULT = tuple(check.name for check in CHECKS if not check.opt_in)
#: The checks that run in the model worker: it is started only when one of them is selected.
IN_WORKER = frozenset(check.name for check in CHECKS if check.in_worker)


def order(name: str) -> int:
    """A check's place in the run (unknown names last)."""
    return next((i for i, check in enumerate(CHECKS) if check.name == name), len(CHECKS))


def required_groups(options) -> frozenset[str]:
    """What must pass for exit 0: --require's groups (else the seed's), and every group an
    option turned on (--load, --restart, --security, --cleanup): what was asked for must pass."""
    asked = {c.group for c in CHECKS if c.opt_in and getattr(options, c.option)}
    default = ("server",) if options.read_only else (*SEED_GROUPS, *WHERE_SUPPORTED)
    return frozenset(options.require if options.require is not None else default) | asked


def lenient_groups(options) -> frozenset[str]:
    """The required groups whose missing API (MISS) does not fail the run: the default's GenAI."""
    return frozenset(WHERE_SUPPORTED) if options.require is None else frozenset()


def opt_in_flags(group: str) -> list[str]:
    """The options that turn a group on, if every one of its checks is opt-in ([] otherwise)."""
    checks = [c for c in CHECKS if c.group == group]
    return sorted({c.flag for c in checks}) if checks and all(c.opt_in for c in checks) else []
