"""explain/genai.py: a trace read back against the one written, and what lost it."""

from __future__ import annotations

from mlflowcheck.core.observations import Answer, Implementation
from mlflowcheck.explain import genai

NGINX = Implementation("MLflow", "3.17.2", proxy="nginx/1.26.3")


def span(name, parent=None, outputs=None, **extra):
    return {"name": name, "parent": parent, "outputs": outputs, "status": ("OK", ""), **extra}


def test_spans_that_match_have_no_differences():
    written = [span("本地测试应用"), span("检索", "本地测试应用", {"文档": ["x"]})]
    assert genai.span_differences(written, list(reversed(written))) == []


def test_a_missing_an_altered_and_an_extra_span_are_each_named():
    written = [span("本地测试应用"), span("检索", "本地测试应用", {"文档": ["x" * 500]}), span("失败的工具")]
    got = [span("本地测试应用"), span("检索", "本地测试应用", {"文档": ["y"]}), span("别的")]
    lines = genai.span_differences(written, got)
    assert lines[0].startswith("span 检索: outputs read back {'文档': ['y']}, wrote {'文档': ['xxxx")
    assert "… (" in lines[0]  # a large value is cut, with its size
    assert lines[1:] == ["span 失败的工具: missing", "span 别的: not written by the suite"]


def test_where_the_spans_are_comes_from_the_traces_tags():
    assert genai.where_spans_are({"mlflow.trace.spansLocation": "TRACKING_STORE"}) == (
        "spans in the tracking database (POST /v1/traces)"
    )
    assert genai.where_spans_are({"mlflow.artifactLocation": "mlflow-artifacts:/1/traces/t/artifacts"}) == (
        "spans in traces.json in the artifact store (mlflow-artifacts:/1/traces/t/artifacts)"
    )


def test_a_span_a_proxy_refused_as_too_large_is_named_with_the_body_limit_fix():
    refused = [Answer("POST /v1/traces", 413, {"server": "nginx/1.26.3"}, "<html>413 Request Entity Too Large</html>")]
    written = [span("本地测试应用", bytes=300), span("检索", bytes=2 * 2**20), span("失败的工具", bytes=200)]
    failure = genai.trace_partial("tr-1", written, [span("本地测试应用"), span("失败的工具")], 3, refused, NGINX)
    want = "The server holds 2 of the trace's 3 spans (its metadata says 3): missing 检索 (2.0 MiB)."
    assert failure.message.startswith(want)
    assert "POST /v1/traces answered HTTP 413" in failure.message
    assert "not fully exported yet" in failure.message
    assert failure.tip.startswith("nginx/1.26.3 in front of MLflow refused a body this large (413)")
    assert "client_max_body_size" in failure.tip


def test_a_trace_that_never_arrived_names_the_refusal_or_says_there_was_none():
    refused = Answer("POST /api/3.0/mlflow/traces", 403, {}, '{"error_code": "PERMISSION_DENIED"}')
    lost = genai.trace_lost("tr-1", [refused])
    assert "never reached the server" in lost.message
    assert "POST /api/3.0/mlflow/traces answered HTTP 403" in lost.message
    assert "account write traces" in lost.tip
    assert "No request of its export was refused." in genai.trace_lost("tr-1", []).message


def test_the_otlp_routes_refusals_are_told_apart():
    def said(status, body="", headers=None):
        return genai.otlp_refused(Answer("POST /v1/traces", status, headers or {}, body), "", NGINX)

    assert "outside /api/: nginx/1.26.3 must pass it on" in said(404, "<html>404</html>").tip
    assert "OTEL_EXPORTER_OTLP_HEADERS=Authorization" in said(401).tip
    assert "x-mlflow-experiment-id" in said(422, '{"detail": "missing header"}').tip
    assert "file store" in said(501).message
    assert "client_max_body_size" in said(413).tip
    assert "got no answer" in genai.otlp_refused(None, "Connection refused", NGINX).message


def test_an_exporter_endpoint_in_the_environment_is_noted():
    assert genai.exporter_elsewhere({}) is None
    note = genai.exporter_elsewhere({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert note.startswith("OTEL_EXPORTER_OTLP_ENDPOINT is set in this environment")
    assert "there and not to the MLflow server" in note
    dual = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c", "MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT": "true"}
    assert "to it and to the MLflow server" in genai.exporter_elsewhere(dual)


def test_the_v2_fallback_warning_names_both_ids_and_the_upgrade():
    text = genai.v2_fallback("tr-client", "abc123", Implementation("MLflow", "3.1.4"))
    assert text.startswith("MLflow 3.1.4 has no v3 trace API")
    assert "stored as abc123, not under the id the client returned (tr-client)" in text
    assert "Tip: upgrade the server to MLflow 3.3 or newer" in text
