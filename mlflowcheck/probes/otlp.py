"""The OpenTelemetry route: a span made with OpenTelemetry's SDK and sent by its own OTLP/HTTP
exporter to <tracking URI>/v1/traces (not MLflow's client, which falls back to the artifact
store when the route fails), read back as an MLflow trace."""

from __future__ import annotations

import requests

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.secrets import credentials_allowed
from mlflowcheck.explain import genai
from mlflowcheck.explain.support import answer_of, is_unsupported, unsupported
from mlflowcheck.net.http import auth_from_env, tls_from_env
from mlflowcheck.net.limits import RESPONSE_DEADLINE
from mlflowcheck.probes.traces import TRACE_TIP, fresh_client
from mlflowcheck.runtime.session import Session

OTLP_SPAN = "本地测试的OpenTelemetry跨度"


class _Refused(requests.RequestException):
    """An answer the exporter would retry for a minute (5xx, 408): the check takes it as it is."""


class _NoConnection(requests.RequestException):
    """No connection (the exporter would retry that until its timeout): the check takes it as it is."""


class ExporterSession(requests.Session):
    """The OpenTelemetry exporter's requests: the user's TLS settings and (to the tracking URI's
    origin only) credentials, every answer kept, no retries: a dead server gets its verdict at
    once, not after the exporter's 30 s of retries."""

    def __init__(self):
        super().__init__()
        self.answers: list = []
        self.errors: list[str] = []

    def request(self, method, url, *args, **kwargs):
        kwargs.update(tls_from_env())
        if credentials_allowed(url):
            auth = auth_from_env()
            kwargs["auth"] = auth.get("auth")
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **auth.get("headers", {})}
        try:
            resp = super().request(method, url, *args, **kwargs)
        except requests.ConnectionError as exc:
            self.errors.append(str(exc))
            raise _NoConnection(str(exc)) from exc
        self.answers.append(answer_of(resp))
        if resp.status_code == 408 or resp.status_code >= 500:
            raise _Refused(f"HTTP {resp.status_code}")
        return resp


def check(suite: Session) -> None:
    """A span sent by OpenTelemetry's own OTLP/HTTP exporter to <tracking URI>/v1/traces, read back."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    finished = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "mlflowcheck"}))
    provider.add_span_processor(SimpleSpanProcessor(finished))
    with provider.get_tracer("mlflowcheck").start_as_current_span(OTLP_SPAN) as span:
        span.set_attribute("检查", "otlp")
    provider.shutdown()
    spans = finished.get_finished_spans()
    session = ExporterSession()
    exporter = OTLPSpanExporter(
        endpoint=f"{suite.target.url}{genai.OTLP_PATH}",
        headers={"x-mlflow-experiment-id": suite.experiment_id},
        timeout=RESPONSE_DEADLINE,
        session=session,
    )
    error = ""
    try:
        result = exporter.export(spans)
    except requests.RequestException as exc:  # 1.33 raises what 1.45 returns as a failure
        result, error = None, str(exc)
    finally:
        exporter.shutdown()
    answer = session.answers[-1] if session.answers else None
    if answer is None or answer.status >= 400 or result is None or result.name != "SUCCESS":
        found = suite.implementation
        if answer is not None and is_unsupported(answer) and not (found and found.is_mlflow):
            raise unsupported(answer, found)
        said = error or (session.errors[-1] if session.errors else "the export failed")
        raise genai.otlp_refused(answer, said, found)
    trace_id = f"tr-{spans[0].context.trace_id:032x}"
    suite.trace_ids.append(trace_id)
    got = fresh_client(suite).get_trace(trace_id)
    names = [s.name for s in got.data.spans]
    if names != [OTLP_SPAN] or got.data.spans[0].attributes.get("检查") != "otlp":
        raise CheckFailed(f"The OpenTelemetry trace {trace_id} read back with spans {names}, not [{OTLP_SPAN!r}].",
                          TRACE_TIP)  # fmt: skip
    if got.info.experiment_id != suite.experiment_id:
        raise CheckFailed(
            f"The OpenTelemetry trace landed in experiment {got.info.experiment_id}, not {suite.experiment_id} "
            "(the x-mlflow-experiment-id header).",
            "a proxy must pass the x-mlflow-experiment-id header on.",
        )
    suite.note("otlp", f"{trace_id}: OpenTelemetry's exporter → POST {genai.OTLP_PATH}, span and attribute read back")
