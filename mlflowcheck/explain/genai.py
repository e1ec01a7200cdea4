"""GenAI answers turned into causes and Tips: a trace read back against the one written, where
its spans landed, what lost them; the OpenTelemetry route; the exporter settings of this process.

Pure: the probes (probes/traces.py, probes/prompts.py) hand in what they wrote and what the
server gave back, as plain data."""

from __future__ import annotations

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.observations import Answer, Implementation
from mlflowcheck.explain.support import said

SPANS_IN_DATABASE = "TRACKING_STORE"  # the trace tag mlflow.trace.spansLocation (MLflow 3.6+)
OTLP_PATH = "/v1/traces"
TRACE_TIP = "look in the server's log for the trace's requests (POST /v1/traces, POST /api/3.0/mlflow/traces)."

#: OpenTelemetry variables that send this process's spans elsewhere than the MLflow server
#: (MLflow adds an OTLP exporter when an endpoint is set, and then, unless dual export is on,
#: the spans go only there: https://mlflow.org/docs/latest/genai/tracing/opentelemetry/export/).
EXPORTER_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} B"


def short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({size(len(text.encode()))})"


def span_differences(written: list[dict], got: list[dict]) -> list[str]:
    """What differs between the spans written and those read back, span by span (matched by
    name, which is unique in the suite's trace): missing, extra, and each field that differs."""
    have = {s["name"]: s for s in got}
    lines = []
    for want in written:
        span = have.pop(want["name"], None)
        if span is None:
            lines.append(f"span {want['name']}: missing")
            continue
        for key, value in want.items():
            if span.get(key) != value:
                lines.append(f"span {want['name']}: {key} read back {short(span.get(key))}, wrote {short(value)}")
    lines += [f"span {name}: not written by the suite" for name in have]
    return lines


def where_spans_are(tags: dict[str, str]) -> str:
    """Where the server keeps a trace's spans, from the trace's tags."""
    if tags.get("mlflow.trace.spansLocation") == SPANS_IN_DATABASE:
        return "spans in the tracking database (POST /v1/traces)"
    location = tags.get("mlflow.artifactLocation", "the artifact store")
    return f"spans in traces.json in the artifact store ({location})"


def refused_part(refusals: list[Answer]) -> str:
    """The requests of the trace's export that the server (or a proxy) refused, in words."""
    return "; ".join(f"{answer.request} answered {said(answer)}" for answer in refusals)


def refusal_tip(refusals: list[Answer], server: Implementation | None) -> str:
    """The fix for the first refused request of a trace's export."""
    proxy = (server.proxy if server else None) or "the proxy"
    for answer in refusals:
        if answer.status == 413:
            return (
                f"{proxy} in front of MLflow refused a body this large (413): raise its body limit above the "
                "largest span (nginx: `client_max_body_size 64m;` in the server or location that passes "
                f"{OTLP_PATH} and /api/), or keep spans smaller."
            )
        if answer.status in (404, 405) and OTLP_PATH in answer.request:
            return otlp_route_tip(server)
        if answer.status in (401, 403):
            return "the auth layer refused the trace's export: let this client's account write traces."
    return TRACE_TIP


def otlp_route_tip(server: Implementation | None) -> str:
    proxy = (server.proxy if server else None) or "a proxy in front of MLflow"
    return (
        f"{OTLP_PATH} is outside /api/: {proxy} must pass it on to MLflow too (nginx: a `location {OTLP_PATH}` "
        "with the same proxy_pass as /api/); with --static-prefix, MLflow 3.4–3.15 serve it without the prefix."
    )


def spans_fell_back(refusals: list[Answer], server: Implementation | None) -> str:
    """The warning for spans the server refused on /v1/traces that MLflow's client then wrote to
    traces.json in the artifact store: this client's traces survive, OpenTelemetry clients' do not."""
    return (
        f"{refused_part(refusals)}: MLflow's client fell back to writing the spans to traces.json in the "
        "artifact store, so its traces are whole, but OpenTelemetry exporters (collectors, other languages) "
        f"that send to {OTLP_PATH} lose theirs.\nTip: {refusal_tip(refusals, server)}"
    )


def trace_lost(trace_id: str, refusals: list[Answer], server: Implementation | None = None) -> CheckFailed:
    """The trace is on the server neither by its id nor by a search."""
    cause = f" {refused_part(refusals)}." if refusals else " No request of its export was refused."
    return CheckFailed(
        f"The trace {trace_id} never reached the server: it is not found by its id nor by search_traces.{cause} "
        "MLflow's client only logs such failures: the traced code ran on as if nothing happened.",
        refusal_tip(refusals, server),
    )


def trace_partial(
    trace_id: str,
    written: list[dict],
    got: list[dict],
    recorded: int | None,
    refusals: list[Answer],
    server: Implementation | None = None,
) -> CheckFailed:
    """The trace's metadata is on the server, but not all of its spans."""
    names = {s["name"] for s in got}
    missing = [s for s in written if s["name"] not in names]
    what = ", ".join(f"{s['name']} ({size(s.get('bytes', 0))})" for s in missing)
    says = f" (its metadata says {recorded})" if recorded is not None else ""
    held = "none" if not got else f"{len(got)}"
    cause = f" {refused_part(refusals)}." if refusals else ""
    return CheckFailed(
        f"The server holds {held} of the trace's {len(written)} spans{says}: missing {what}.{cause} "
        f"The trace {trace_id} looks complete in its metadata, and MLflow's get_trace says it is "
        "'not fully exported yet' from now on.",
        refusal_tip(refusals, server),
    )


def trace_hidden(trace_id: str, by: str) -> CheckFailed:
    return CheckFailed(
        f"The trace {trace_id} reads back by its id, but search_traces {by} does not find it: "
        "the UI and any code that searches for traces will not see it.",
        "search_traces leaves out traces whose span data cannot be read: look in the server's log for "
        "POST /api/3.0/mlflow/traces/search.",
    )


def v2_fallback(client_id: str, server_id: str, server: Implementation | None) -> str:
    """The warning for a server without the v3 trace API: the trace is stored under another id."""
    version = f"MLflow {server.version}" if server and server.version else "This server"
    return (
        f"{version} has no v3 trace API, so the client fell back to the v2 API: the trace is stored as "
        f"{server_id}, not under the id the client returned ({client_id}); code that keeps that id "
        "(mlflow.get_last_active_trace_id, assessments on it) finds nothing. Found by search_traces."
        "\nTip: upgrade the server to MLflow 3.3 or newer (after a backup: `mlflow db upgrade`)."
    )


def otlp_refused(answer: Answer | None, error: str, server: Implementation | None) -> CheckFailed:
    """The OpenTelemetry exporter's POST /v1/traces failed: by its answer, why."""
    if answer is None:
        return CheckFailed(
            f"The OpenTelemetry exporter's POST {OTLP_PATH} got no answer: {error}.",
            "the server or a proxy dropped the connection; look in the server's log.",
        )
    what = f"POST {OTLP_PATH} (OpenTelemetry's exporter) answered {said(answer)}."
    if answer.status in (404, 405):
        return CheckFailed(f"{what} MLflow's route for OpenTelemetry spans is not reached.", otlp_route_tip(server))
    if answer.status == 401:
        return CheckFailed(
            f"{what} The auth layer wants credentials on the OpenTelemetry route too.",
            "an OpenTelemetry exporter must send the same Authorization header as MLflow's client "
            "(OTEL_EXPORTER_OTLP_HEADERS=Authorization=...).",
        )
    if answer.status == 403:
        return CheckFailed(f"{what} The account may not write traces here.", "grant it edit on the experiment.")
    if answer.status == 422 or (answer.status == 400 and "experiment" in answer.body.lower()):
        return CheckFailed(
            f"{what} MLflow needs the experiment in the x-mlflow-experiment-id header.",
            "set the header on the exporter (OTEL_EXPORTER_OTLP_TRACES_HEADERS=x-mlflow-experiment-id=<id>); "
            "a proxy must pass it on.",
        )
    if answer.status == 501:
        return CheckFailed(
            f"{what} The server's tracking store cannot hold spans (a file store).",
            "run the server on a database (--backend-store-uri sqlite:///mlflow.db, PostgreSQL or MySQL).",
        )
    if answer.status == 413:
        return CheckFailed(f"{what}", refusal_tip([answer], server))
    return CheckFailed(what, TRACE_TIP)


def exporter_elsewhere(environ: dict[str, str]) -> str | None:
    """A note when this process's environment sends MLflow's traces to another OpenTelemetry
    endpoint: then the user's traces may never reach the server (the suite exports its own
    trace to the server all the same)."""
    for name in EXPORTER_VARIABLES:
        if environ.get(name):
            dual = environ.get("MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT", "").lower() in ("true", "1")
            where = "to it and to the MLflow server" if dual else "there and not to the MLflow server"
            return (
                f"{name} is set in this environment: MLflow's client sends traces {where} "
                "(MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT=true sends both)"
            )
    return None
