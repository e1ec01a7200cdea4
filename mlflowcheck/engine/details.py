"""Each check's full description, for docs/checks.md (python -m mlflowcheck.docs): what it does
and what a PASS proves, in Markdown. Keyed by the registry's names (engine/registry.py, which
keeps the one-line summary); tests/unit/test_docs.py fails when a name is not a registered check."""

DETAIL = {
    "uri": (
        "the tracking URI is an http(s) server address (a UI address with `/#/...` is accepted; a database "
        "URI or an API path is refused with a hint)"
    ),
    "network": ("something accepts connections, within 3 s, without MLflow's minutes of retries"),
    "server": (
        "what answers speaks MLflow's API: `GET /version` returns a version string (a `/health` 200 proves "
        "little); which server it is (MLflow's own, or another product such as FastTrackML, by its `Server` "
        "header and `server-info`), the auth layer (MLflow's basic-auth, mlflow-oidc-auth) and the proxy in "
        "front"
    ),
    "access": ("a real API call answers JSON; 401/403 are explained (credentials, host protection)"),
    "versions": (
        "client and server major versions match (a 2.x server is a failure with the fix; minor skew is a "
        "note); skipped for a server that is not MLflow's own (its version is not MLflow's). A mismatch skips "
        "nothing: the checks whose API the server lacks are reported as unsupported"
    ),
    "experiment": (
        "experiment `本地测试实验_<unix time>` created (if another client has that name, the server refuses and the "
        "suite takes `_2`, `_3`, …: never a shared experiment), read back by id and by name (exact unicode), "
        "active, tagged to open in the UI's classic training view"
    ),
    "params": ("run `本地测试运行` started; learning_rate, batch_size, epochs, model_type read back equal"),
    "metrics": ("full history of `accuracy` and `loss`, 5 steps each: step, value and timestamp equal"),
    "dataset": (
        'the 100-row DataFrame logged with `mlflow.data.from_pandas(..., targets="target")`: name, digest, '
        "source (a code source naming 本地生成的测试数据), 3-column schema, 100-row profile, "
        "context tag 训练数据, targets"
    ),
    "artifact": (
        "the run's artifacts go through the server's artifact proxy (`mlflow-artifacts:`) or to an object "
        "store, never to a path on the client's disk; `reports/test_report.txt` uploaded, listed by the "
        "server with its size, downloaded, sha256 equal"
    ),
    "big_artifact": (
        "one artifact of `--upload-size` (default 4 MiB, above nginx's default 1 MB body limit, which the "
        "seed's few-KB files never meet) uploaded, downloaded, sha256 equal; when a proxy refuses it (413), "
        "the largest size that goes through is found and named"
    ),
    "search": ("`search_runs` finds the run by a param and a metric filter; the experiment is found by name"),
    "model": (
        "a `LogisticRegression` trained on the dataset, logged with signature and input example: status "
        "READY, belongs to the run and its experiment, MLmodel, conda.yaml, python_env.yaml, requirements.txt "
        "and the model file (model.skops, or model.pkl with `--model-format pickle`) all on the server; "
        "downloaded through the server, every file's sha256 equal to what the suite saved, then loaded from "
        "that verified copy: its 100 predictions equal the in-memory model's"
    ),
    "trace": (
        "the seed's app traced inside the run, linked to an app's logged model of its own "
        "(`set_active_model`): a root span (`@mlflow.trace`), a retriever span (`start_span`) with a 2 MiB "
        "output (above nginx's default body limit), a tool span that raises (ERROR, exception event), "
        "Chinese inputs, outputs and attributes. "
        "Read back with a fresh client: every span's name, parent, type, inputs, outputs, attributes, status, "
        "events and times equal; the span count equal to the trace's own record; state OK; found by "
        "`search_traces` by run and by name; linked to the run and the app's model; where the spans landed "
        "(database or `traces.json`). Lost spans, a partial trace, a trace that search hides are FAIL with "
        "the refused request named; a server without the v3 trace API (before 3.3) is a WARN: the trace is "
        "stored under another id, found by search"
    ),
    "otlp": (
        "a span made with the OpenTelemetry SDK and sent by `opentelemetry-exporter-otlp-proto-http` to "
        "`<tracking URI>/v1/traces` with the `x-mlflow-experiment-id` header, read back as `tr-<trace id>` in "
        "the experiment; a refusal is explained (the route not passed on by a proxy: it is outside `/api/`; "
        "401; 422 without the header; 501 on a file store)"
    ),
    "assessments": (
        "`log_feedback` (a CODE source, a rationale) and `log_expectation` (a HUMAN source) on the seed's "
        "trace; name, value, rationale and source read back from the trace"
    ),
    "run": ("run ended: name, status FINISHED, start ≤ end times"),
    "registry": (
        "the model registered (each run adds a version to `mlflow-local-test-model`), version READY and "
        "pointing at the run, the run's alias (`@check-<run id>`, or `--alias`) resolves to exactly that "
        'version, and that version (not "whatever the alias says now") is downloaded, verified file by file '
        "and loaded: same predictions"
    ),
    "load": (
        "concurrent client processes log as training jobs do, then every acknowledged value is read back: "
        "nothing lost, duplicated or altered, no errors; throughput and latency (see "
        "[load-and-durability.md](load-and-durability.md))"
    ),
    "browser": (
        "headless Chromium opens the experiment page (the run listed), the run page (name, a param value, "
        "both metrics, the dataset and its context, the logged model READY, the registered model and "
        "version), the metric charts and the artifacts tab (the report listed and previewed); screenshots "
        "saved, the run page's logged to the run (see [ui.md](ui.md))"
    ),
    "prompts": (
        "a prompt (`mlflow.genai.register_prompt`) with a long Chinese template, a second version, an alias "
        "on the first; loaded by version and by alias (`prompts:/name@alias`): templates equal, the alias "
        "resolves to its version"
    ),
    "evaluation": (
        "an evaluation dataset with 2 records (Chinese inputs and expectations) read back; "
        "`mlflow.genai.evaluate` on it with a deterministic `@scorer` (no LLM): the evaluation run's metric "
        "and each row's feedback on its trace read back through the server"
    ),
    "final_report": ("the report, now with every check's result, uploaded again and read back"),
    "restart": (
        "only with `--restart`, for a server the suite started: SIGTERM, start again on the same stores, read "
        "everything back through the new process"
    ),
    "cleanup": (
        "what this run created is deleted, and nothing else (see [shared-servers.md](shared-servers.md#--cleanup))"
    ),
}
