"""--cleanup: delete exactly what this run created on the server, and nothing else.

What the run created is recorded as it is created (the experiment and run ids and the traces on
the suite; the logged model, the registry version and the alias's previous target, the prompt,
the evaluation dataset and run in ``created``); only those are deleted. Without --cleanup nothing is deleted: the
results stay on the server to browse.
"""

from __future__ import annotations

import contextlib
import io

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.probes.layers import diagnose
from mlflowcheck.runtime.mlflow_compat import last_refusal, refusal_mark
from mlflowcheck.runtime.session import Session

GC_TIP = (
    "MLflow's REST API only moves runs and experiments to the trash (lifecycle 'deleted'); "
    "purge them on the server host with: {command}"
)


def gc_command(suite: Session) -> str:
    """The `mlflow gc` command that purges this run's soft-deleted experiment and run."""
    store = suite.options.backend_store_uri or "<the server's --backend-store-uri>"
    ids = f" --experiment-ids {suite.experiment_id}" if suite.experiment_id else f" --run-ids {suite.run_id}"
    return f"mlflow gc --backend-store-uri {store}{ids}"


def cleanup(suite: Session) -> None:
    """Delete what this run created: registry alias and version, logged model, run,
    experiment, their artifacts. Fails listing what could not be deleted."""
    done: list[str] = []
    failed: list[str] = []

    def step(what: str, action) -> None:
        mark = refusal_mark()
        try:
            result = action()
        except Exception as exc:  # one failure must not stop the rest of the cleanup
            failure = diagnose(exc, last_refusal(since=mark), suite.implementation)
            failed.append(f"{what}: {failure.message}" + (f" (Tip: {failure.tip})" if failure.tip else ""))
        else:
            done.append(result or what)

    client = suite.client
    created = suite.created
    name = suite.options.registered_model
    if client is None:
        suite.cleanup_report = ["nothing to delete: the suite never reached the server"]
        suite.note("cleanup", suite.cleanup_report[0])
        return
    end_active_run()
    if created.alias:
        step(f"alias @{created.alias}", lambda: restore_alias(suite))
    if created.registered_version:
        version = created.registered_version
        step(f"deleted version {version} of {name}", lambda: client.delete_model_version(name, version))
    if created.registered_model_created:
        step(f"registered model {name}", lambda: delete_registered_model_if_empty(suite))
    if created.model_id:
        model_id = created.model_id
        step(
            f"deleted the logged model's files ({model_id})",
            lambda: delete_files(client.get_logged_model(model_id).artifact_location),
        )
        step(f"deleted logged model {model_id}", lambda: client.delete_logged_model(model_id))
    if created.app_model_id:
        app_id = created.app_model_id
        step(f"deleted the app's logged model {app_id}", lambda: client.delete_logged_model(app_id))
    trace_ids = suite.trace_ids + [t for sent in suite.load_sent for t in sent.traces]  # the load's traced calls
    if trace_ids and suite.experiment_id:
        step("traces", lambda: delete_traces(suite, trace_ids))
    if created.evaluation_run_id:
        run_id = created.evaluation_run_id
        step(f"deleted evaluation run {run_id}, its traces and artifacts", lambda: delete_evaluation(suite, run_id))
    if created.dataset_id:
        step(f"deleted evaluation dataset {created.dataset_id}", lambda: delete_dataset(created.dataset_id))
    if created.prompt:
        step(f"deleted prompt {created.prompt} and its versions", lambda: delete_prompt(client, created.prompt))
    for sent in suite.load_sent:  # the load probe's runs are this run's too
        if sent.run_id:
            step(f"deleted load run {sent.run_id} and its artifacts", lambda r=sent.run_id: delete_run(client, r))
    if suite.run_id:
        step("deleted the run's artifacts", lambda: delete_files(suite.artifact_uri))
        step(f"deleted run {suite.run_id} (to the trash)", lambda: client.delete_run(suite.run_id))
    if suite.experiment_id:
        step(
            f"deleted experiment {suite.experiment_id} (to the trash)",
            lambda: client.delete_experiment(suite.experiment_id),
        )
    suite.cleanup_report = done + [f"FAILED {line}" for line in failed]
    if failed:
        raise CheckFailed(
            "--cleanup could not delete everything this run created:\n" + "\n".join(failed),
            "delete the rest by hand in the MLflow UI; nothing else on the server was touched.",
        )
    soft = [GC_TIP.format(command=gc_command(suite))] if suite.run_id or suite.experiment_id else []
    suite.note(
        "cleanup", "\n".join([f"deleted what this run created ({len(done)} steps), and nothing else:", *done, *soft])
    )


def restore_alias(suite: Session) -> str:
    """Point the alias back where it was before this run, or remove it if it did not exist.
    If someone else moved it since, leave it alone: it is theirs now."""
    from mlflowcheck.probes.models import alias_version

    client, created, name = suite.client, suite.created, suite.options.registered_model
    now = alias_version(client, name, created.alias)
    if now != created.registered_version:
        return f"left alias @{created.alias} alone: it points at version {now}, not this run's"
    if created.alias_before is None:
        client.delete_registered_model_alias(name, created.alias)
        return f"removed alias @{created.alias} (it did not exist before this run)"
    client.set_registered_model_alias(name, created.alias, created.alias_before)
    return f"alias @{created.alias} points at version {created.alias_before} again, as before this run"


def delete_registered_model_if_empty(suite: Session) -> str:
    """This run created the registered model: delete it, unless another client has added a
    version to it since (then it is theirs too)."""
    client, name = suite.client, suite.options.registered_model
    others = client.search_model_versions(f"name = '{name}'")
    if others:
        return f"kept registered model {name}: it has {len(others)} version(s) of other runs now"
    client.delete_registered_model(name)
    return f"deleted registered model {name} (this run created it)"


def delete_files(artifact_uri: str | None) -> None:
    """Delete the artifacts under ``artifact_uri`` (the run's or the logged model's root)."""
    if not artifact_uri:
        return
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    get_artifact_repository(artifact_uri).delete_artifacts()


def delete_run(client, run_id: str) -> None:
    delete_files(client.get_run(run_id).info.artifact_uri)
    client.delete_run(run_id)


def end_active_run() -> None:
    """A run a failed check left open is ended before it is deleted."""
    import mlflow

    if mlflow.active_run() is not None:
        with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints "View run ..."
            mlflow.end_run(status="FAILED")


def delete_traces(suite: Session, trace_ids: list[str]) -> str | None:
    """Delete traces this run wrote, their artifact files first (traces.json, attachments). An id
    the server does not know (a v2 server keeps its own ids) is left out."""
    wanted = set(trace_ids)
    count = delete_trace_infos(suite, [info for info in experiment_traces(suite) if info.trace_id in wanted])
    return f"deleted {count} trace(s) and their traces.json files" if count else None


def experiment_traces(suite: Session, run_id: str | None = None):
    """The traces in this run's experiment (of one run), as TraceInfos, page by page."""
    token = None
    while True:
        page = suite.client.search_traces(
            locations=[suite.experiment_id], run_id=run_id, include_spans=False, max_results=500, page_token=token
        )
        yield from (t.info for t in page)
        token = page.token
        if not token:
            return


def delete_trace_infos(suite: Session, infos: list) -> int:
    for info in infos:
        delete_files(info.tags.get("mlflow.artifactLocation"))
    ids = [info.trace_id for info in infos]
    for i in range(0, len(ids), 100):  # a hundred at a time, in bounded requests
        suite.client.delete_traces(suite.experiment_id, trace_ids=ids[i : i + 100])
    return len(ids)


def delete_evaluation(suite: Session, run_id: str) -> None:
    """The run mlflow.genai.evaluate created, with the traces of its rows."""
    delete_trace_infos(suite, list(experiment_traces(suite, run_id)))
    delete_run(suite.client, run_id)


def delete_dataset(dataset_id: str) -> None:
    from mlflow.genai.datasets import delete_dataset as delete

    delete(dataset_id=dataset_id)


def delete_prompt(client, name: str) -> None:
    """The prompt this run registered under its own name: every version is this run's."""
    for version in client.search_prompt_versions(name):
        client.delete_prompt_version(name, str(version.version))
    client.delete_prompt(name)
