"""GenAI traces: a traced call of the seed's app, and feedback on the trace, each written and
read back through the server with a fresh client (the OpenTelemetry span: probes/otlp.py).

MLflow's client never raises from a trace's export (it logs and goes on), so each write here is
judged by what the server gives back: every span's name, parent, inputs, outputs, attributes,
status, events and times, the span count the trace's metadata records, and whether a search
finds it. The explanations are explain/genai.py's."""

from __future__ import annotations

import contextlib
import json
import os

import mlflow

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.explain import genai
from mlflowcheck.explain.support import is_unsupported, older_than, unsupported
from mlflowcheck.runtime.mlflow_compat import last_refusal, partial_trace, recording_refusals, refusal_mark
from mlflowcheck.runtime.session import Session

APP, RETRIEVER, TOOL = "本地测试应用", "检索", "失败的工具"
QUESTION = "本地测试的问题：模型的准确率是多少？"
ANSWER = "答案：准确率见运行的指标。"
ERROR = "故意的错误：本地测试工具失败"
#: A few MB, as real LLM outputs and retrieved documents are: above nginx's default body limit (1 MB).
SPAN_BYTES = 2 * 2**20
#: The first MLflow server with the v3 trace API; older ones store a trace under an id of their own.
V3_TRACES = "3.3"
TRACE_TIP = genai.TRACE_TIP


def span_facts(span, names: dict[str, str]) -> dict:
    """What the suite compares of a span, written (a live span) or read back."""
    code = span.status.status_code
    return {
        "name": span.name,
        "parent": names.get(span.parent_id),
        "type": span.span_type,
        "inputs": span.inputs,
        "outputs": span.outputs,
        "attributes": {k: v for k, v in span.attributes.items() if not k.startswith("mlflow.")},
        "status": (getattr(code, "value", str(code)), span.status.description),
        "events": [
            (e.name, e.attributes.get("exception.type"), e.attributes.get("exception.message")) for e in span.events
        ],
        "start_ns": span.start_time_ns,
        "end_ns": span.end_time_ns,
    }


def all_facts(spans) -> list[dict]:
    names = {s.span_id: s.name for s in spans}
    return [span_facts(s, names) for s in spans]


def write_trace(document: str) -> tuple[str, list]:
    """The seed's app, traced: a root span (decorator), a retriever with a large output
    (start_span), and a tool that raises (ERROR status, exception event). Its id and live spans."""
    captured: list = []

    @mlflow.trace(name=TOOL, span_type="TOOL")
    def tool(question: str) -> str:
        captured.append(mlflow.get_current_active_span())
        raise ValueError(ERROR)

    @mlflow.trace(name=APP, span_type="CHAIN", attributes={"应用版本": "本地测试-1"})
    def app(question: str) -> str:
        captured.append(mlflow.get_current_active_span())
        with mlflow.start_span(name=RETRIEVER, span_type="RETRIEVER") as span:
            captured.append(span)
            span.set_inputs({"查询": question})
            span.set_outputs({"文档": [document]})
            span.set_attribute("文档数", 1)
        with contextlib.suppress(ValueError):
            tool(question)
        return ANSWER

    app(QUESTION)
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()  # a no-op unless the user turned async export on
    return trace_id, captured


def trace(suite: Session) -> None:
    warnings = []
    elsewhere = genai.exporter_elsewhere(dict(os.environ))
    if elsewhere:  # the suite's own trace goes to the server: that is what is checked
        for name in genai.EXPORTER_VARIABLES:
            os.environ.pop(name, None)
        warnings.append(f"{elsewhere}.\nTip: unset it, or set MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT=true.")
    model_id = app_model(suite)
    document = "检索到的文档内容。" * (SPAN_BYTES // len("检索到的文档内容。".encode()))
    try:
        with recording_refusals() as refusals, no_retries():
            client_id, live = write_trace(document)
    finally:
        if model_id:
            with contextlib.suppress(Exception):
                mlflow.clear_active_model()
    written = all_facts(live)
    sizes = {f["name"]: len(json.dumps(f["outputs"], ensure_ascii=False).encode()) for f in written}
    suite.trace_ids.append(client_id)  # for --cleanup, before anything can fail
    got, trace_id, fallback = read_trace(suite, client_id, written, sizes, refusals)
    suite.trace_id = trace_id
    if trace_id not in suite.trace_ids:
        suite.trace_ids.append(trace_id)
    compare(suite, got, written, sizes, refusals)
    found_by = searched(suite, trace_id)
    links = links_of(suite, got.info, model_id)
    text = (
        f"{trace_id}: {len(written)} spans read back equal (one of {genai.size(max(sizes.values()))}, one ERROR "
        f"with its exception); found by {found_by}; {links}; {genai.where_spans_are(got.info.tags)}"
    )
    warnings += [fallback] if fallback else []
    otlp_refused = [a for a in refusals if genai.OTLP_PATH in a.request]
    if otlp_refused and got.info.tags.get("mlflow.trace.spansLocation") != genai.SPANS_IN_DATABASE:
        warnings.append(genai.spans_fell_back(otlp_refused, suite.implementation))
    if warnings:
        suite.warn("trace", "\n".join([text, *warnings]))
    else:
        suite.note("trace", text)


def app_model(suite: Session) -> str | None:
    """The app's version, as GenAI apps track theirs: a logged model of the app's own in the run's
    experiment, made active (``set_active_model``) so that the trace made meanwhile is linked to it.
    Not the seed's scikit-learn model: the trace needs no model check and runs while the model
    worker still imports (docs/performance.md). Made without files (``create_external_model`` would
    upload an MLmodel file): a trace needs nothing of the artifact store, whose check is ``artifact``.
    None on a server without the logged-model API (MLflow 2.x)."""
    from mlflow.entities import LoggedModelStatus
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_IS_EXTERNAL

    client, mark = suite.client, refusal_mark()
    try:
        model = client.create_logged_model(
            experiment_id=suite.experiment_id,
            name=f"{APP}-{suite.run_id}",
            source_run_id=suite.run_id,
            tags={MLFLOW_MODEL_IS_EXTERNAL: "true"},
        )
    except MlflowException:
        refused = last_refusal(since=mark)
        if refused is not None and is_unsupported(refused):
            return None
        raise
    suite.created.app_model_id = model.model_id  # for --cleanup, before anything can fail
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    mlflow.set_active_model(model_id=model.model_id)
    return model.model_id


@contextlib.contextmanager
def no_retries():
    """The export's requests are not retried: the client never raises from them, so each retry of
    a dead server's request (one per span, and the trace's metadata) would only delay the
    verdict; what a retry would have saved, the read-back judges."""
    before = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = before


def fresh_client(suite: Session):
    """A client that shares nothing with the one that wrote (no cached trace can answer)."""
    return mlflow.MlflowClient(tracking_uri=suite.target.url)


def read_trace(suite: Session, client_id: str, written, sizes, refusals):
    """The trace as the server has it: by the client's id, or (servers without the v3 trace API)
    by a search. Raises with the cause when it is lost or partial."""
    from mlflow.exceptions import MlflowException

    client = fresh_client(suite)
    found = suite.implementation
    if before_v3_traces(found):
        # Asked by its id, such a server answers 500 (retried) for an id it never gave out.
        hits = [t for t in own_traces(suite, include_spans=True) if t.info.tags.get("mlflow.traceName") == APP]
        if not hits:
            raise lost(client_id, refusals, found)
        got = next((t for t in hits if t.info.trace_id == client_id), hits[0])
        if got.info.trace_id == client_id:
            return got, client_id, None
        return got, got.info.trace_id, genai.v2_fallback(client_id, got.info.trace_id, found)
    try:
        return client.get_trace(client_id), client_id, None
    except MlflowException as exc:
        if "not fully exported" in str(exc):
            held = partial_trace(client, client_id)
            raise genai.trace_partial(
                client_id,
                [{**f, "bytes": sizes[f["name"]]} for f in written],
                all_facts(held.data.spans),
                recorded_spans(held.info),
                refusals,
                found,
            ) from None
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise lost(client_id, refusals, found) from None
        raise


def before_v3_traces(found) -> bool:
    """MLflow's own server older than the v3 trace API: it keeps a trace under an id of its own,
    so the trace is found by a search, not by the id the client holds."""
    return found is not None and found.is_mlflow and older_than(found.version, V3_TRACES)


def has_v3_traces(found) -> bool:
    """MLflow's own server with the v3 trace API: a trace is read back by the id the client holds
    (the load probe's traced calls, the monitoring probe's trace)."""
    return found is not None and found.is_mlflow and not before_v3_traces(found)


def lost(trace_id: str, refusals, found) -> Exception:
    """A trace the server does not have: unsupported where another product lacks the trace API."""
    missing = next((a for a in refusals if is_unsupported(a)), None)
    if missing is not None and not (found and found.is_mlflow):
        return unsupported(missing, found)
    return genai.trace_lost(trace_id, refusals, found)


def own_traces(suite: Session, include_spans: bool = False) -> list:
    """The traces of the seed's run, by a search (the v2 API of old servers has no other way)."""
    return fresh_client(suite).search_traces(
        locations=[suite.experiment_id], run_id=suite.run_id, include_spans=include_spans, max_results=50
    )


def recorded_spans(info) -> int | None:
    """The span count the trace's metadata records (its size stats), if it has them."""
    try:
        return int(json.loads(info.trace_metadata["mlflow.trace.sizeStats"])["num_spans"])
    except (KeyError, ValueError, TypeError):
        return None


def compare(suite: Session, got, written: list[dict], sizes: dict, refusals) -> None:
    facts = all_facts(got.data.spans)
    if len(facts) < len(written):
        raise genai.trace_partial(
            got.info.trace_id,
            [{**f, "bytes": sizes[f["name"]]} for f in written],
            facts,
            recorded_spans(got.info),
            refusals,
            suite.implementation,
        )
    differences = genai.span_differences(written, facts)
    if differences:
        raise CheckFailed(
            "The trace read back differs from the one written:\n" + "\n".join(differences[:8]),
            "the server stored the spans altered; look in its log and at its database's character set.",
        )
    recorded = recorded_spans(got.info)
    if recorded is not None and recorded != len(written):
        raise CheckFailed(
            f"The trace's metadata records {recorded} spans; {len(written)} were written and read back.", TRACE_TIP
        )
    if str(getattr(got.info.state, "value", got.info.state)) != "OK":
        raise CheckFailed(f"The trace's state is {got.info.state}, not OK (its root span ended OK).", TRACE_TIP)


def searched(suite: Session, trace_id: str) -> str:
    """How a search finds the trace (by the run, by its name); raises when one does not."""
    if trace_id not in {t.info.trace_id for t in own_traces(suite)}:
        raise genai.trace_hidden(trace_id, f"for the run {suite.run_id}")
    by_name = fresh_client(suite).search_traces(
        locations=[suite.experiment_id], filter_string=f"trace.name = '{APP}'", include_spans=False, max_results=50
    )
    if trace_id not in {t.info.trace_id for t in by_name}:
        raise genai.trace_hidden(trace_id, f"by its name {APP}")
    return "its run and its name"


def links_of(suite: Session, info, model_id: str | None) -> str:
    metadata = info.trace_metadata
    if metadata.get("mlflow.sourceRun") != suite.run_id:
        raise CheckFailed(
            f"The trace is linked to run {metadata.get('mlflow.sourceRun')!r}, not to the run it ran in "
            f"({suite.run_id}).",
            TRACE_TIP,
        )
    if not model_id:
        return "linked to the run (the server has no logged-model API to link an app's version to)"
    if metadata.get("mlflow.modelId") != model_id:
        raise CheckFailed(
            f"The trace is linked to the model {metadata.get('mlflow.modelId')!r}, not to the active one ({model_id}).",
            TRACE_TIP,
        )
    return f"linked to the run and to the app's logged model {model_id}"


def assessments(suite: Session) -> None:
    """Feedback and an expectation on the seed's trace, read back exactly from the trace."""
    from mlflow.entities import AssessmentSource

    trace_id = suite.trace_id
    feedback = mlflow.log_feedback(
        trace_id=trace_id,
        name="正确性",
        value=True,
        rationale="答案与期望一致",
        source=AssessmentSource(source_type="CODE", source_id="mlflowcheck"),
    )
    expectation = mlflow.log_expectation(
        trace_id=trace_id,
        name="期望答案",
        value=ANSWER,
        source=AssessmentSource(source_type="HUMAN", source_id="mlflowcheck"),
    )
    wrote = {a.assessment_id: assessment_facts(a) for a in (feedback, expectation)}
    # The trace's metadata, as a search gives it, holds its assessments: no need to download its
    # spans (2 MiB) again.
    info = next((t.info for t in own_traces(suite) if t.info.trace_id == trace_id), None)
    if info is None:
        raise genai.trace_hidden(trace_id, f"for the run {suite.run_id}")
    got = {a.assessment_id: assessment_facts(a) for a in info.assessments}
    for assessment_id, want in wrote.items():
        if got.get(assessment_id) != want:
            raise CheckFailed(
                f"Assessment {want[0]} ({assessment_id}) read back {got.get(assessment_id)!r}, wrote {want!r}.",
                "the server lost or altered an assessment; look in its log.",
            )
    suite.note("assessments", f"feedback 正确性 and expectation 期望答案 read back from trace {trace_id}")


def assessment_facts(assessment) -> tuple:
    value = assessment.feedback.value if assessment.feedback is not None else assessment.expectation.value
    source = assessment.source
    return (assessment.name, value, assessment.rationale, str(source.source_type), source.source_id)
