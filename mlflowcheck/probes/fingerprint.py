"""--fingerprint: what a server holds, read through its REST API (MLflow's client) and never
written to, within a scope: the suite's own experiments (by the seed's name), every experiment
the account can read, or the experiments named. Each object goes to the manifest as it is read
(core.manifest); a metric's whole history, an artifact's size and sha256 (all of them, a sample,
or none), a trace's span count and a hash of its spans.

The suite's own experiments are found by the seed's prefix, and with them the registered model
and the prompts the suite writes."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from mlflowcheck.core import seed
from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.manifest import SAMPLE_FILES, SAMPLE_MAX_BYTES, ManifestWriter
from mlflowcheck.runtime.mlflow_compat import HISTORY_BULK_RUNS, metric_histories, refusal_mark

PAGE = 1000
READERS = 4  # runs read at once (their metric histories and artifact listings)


@dataclass(frozen=True)
class Scope:
    mode: str = "suite"  # "suite" | "all" | "experiments"
    experiments: tuple[str, ...] = ()
    artifacts: str = "sample"  # "sample" | "all" | "none"
    registered_model: str = "mlflow-local-test-model"


def fingerprint(client, path: Path, scope: Scope, header: dict, progress: Callable[[str], None] | None = None) -> dict:
    """Write the manifest of what the server holds in ``scope`` to ``path``; its trailer."""
    started, answers = time.monotonic(), refusal_mark()  # refusal_mark counts every answer MLflow's client gets
    writer = ManifestWriter(path, {**header, "scope": asdict(scope), "sample": [SAMPLE_FILES, SAMPLE_MAX_BYTES]})
    reader = Reader(client, scope, writer, progress or (lambda text: None))
    try:
        reader.read()
    except BaseException:
        writer.abandon()
        raise
    finally:
        shutil.rmtree(reader.tmp, ignore_errors=True)
    trailer = {
        "seconds": round(time.monotonic() - started, 3),
        "requests": refusal_mark() - answers,
        "unsupported": sorted(reader.unsupported),
    }
    writer.close(trailer)
    return {**trailer, "counts": dict(writer.counts)}


class Reader:
    def __init__(self, client, scope: Scope, writer: ManifestWriter, progress: Callable[[str], None]):
        self.client, self.scope, self.writer, self.progress = client, scope, writer, progress
        self.run_names: dict[str, str] = {}  # run id -> the run's names (core.manifest: owner_name)
        self.unsupported: set[str] = set()  # kinds the server has no API for
        self.bulk = True  # metric histories a hundred runs a request, while the server answers that
        self.tmp = Path(tempfile.mkdtemp(prefix="mlflowcheck-fingerprint-"))

    def read(self) -> None:
        experiments = list(self.experiments())
        for experiment in experiments:
            self.writer.add(experiment_record(experiment))
        for experiment in experiments:
            self.runs(experiment)
        self.optional("logged_model", lambda: self.logged_models(experiments))
        self.registry(experiments)
        for experiment in experiments:
            self.optional("trace", lambda e=experiment: self.traces(e))
        self.optional("prompt", self.prompts)

    def optional(self, kind: str, read: Callable[[], None]) -> None:
        """A kind the server may not have (a 404 from an older MLflow, another product): noted, not fatal."""
        from mlflow.exceptions import MlflowException

        try:
            read()
        except MlflowException as exc:
            if exc.error_code not in ("ENDPOINT_NOT_FOUND", "NOT_IMPLEMENTED", "FEATURE_DISABLED") and (
                "404" not in str(exc) and "not found" not in str(exc).lower()
            ):
                raise
            self.unsupported.add(kind)

    def experiments(self) -> Iterator:
        from mlflow.entities import ViewType

        if self.scope.mode == "experiments":
            for name in self.scope.experiments:
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise CheckFailed(
                        f"No experiment named {name!r} on this server.",
                        "give --experiment a name the server has (the UI lists them), or leave it out for the "
                        "suite's own.",
                    )
                yield found
            return
        query = f"name LIKE '{seed.EXPERIMENT_PREFIX}%'" if self.scope.mode == "suite" else None
        yield from pages(lambda token: self.client.search_experiments(
            view_type=ViewType.ALL, filter_string=query, max_results=PAGE, page_token=token))  # fmt: skip

    def runs(self, experiment) -> None:
        from mlflow.entities import ViewType

        found = pages(lambda token: self.client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL,
                                                             max_results=PAGE, page_token=token))  # fmt: skip
        seen: Counter = Counter()
        with ThreadPoolExecutor(READERS) as pool:
            batch: list = []
            for run in found:
                batch.append(run)
                if len(batch) == READERS * 8:
                    self.write_runs(pool, experiment, batch, seen)
                    batch = []
            self.write_runs(pool, experiment, batch, seen)

    def write_runs(self, pool, experiment, runs: list, seen: Counter) -> None:
        """Read a batch of runs' histories and files at once; write them in the runs' order."""
        for run in runs:
            self.run_names[run.info.run_id] = run_match(experiment.name, run, seen)
        histories = self.histories(pool, runs)
        for records in pool.map(lambda r: self.run_records(experiment, r, histories), runs):
            for record in records:
                self.writer.add(record)
        self.progress(f"fingerprint: {len(self.run_names)} runs read")

    def histories(self, pool, runs: list) -> dict[tuple[str, str], list[list]]:
        """The batch's metric histories, (run id, key) -> points, a request per key and 100 runs
        (mlflow_compat.metric_histories); what that does not give, run_records reads one by one."""
        if not self.bulk:
            return {}
        by_key: dict[str, list[str]] = {}
        for run in runs:
            for key in run.data.metrics:
                by_key.setdefault(key, []).append(run.info.run_id)
        asks = [(key, ids[i : i + HISTORY_BULK_RUNS]) for key, ids in by_key.items()
                for i in range(0, len(ids), HISTORY_BULK_RUNS)]  # fmt: skip
        found: dict[tuple[str, str], list[list]] = {}
        answers = pool.map(lambda a: metric_histories(self.client, a[1], a[0]), asks)
        for (key, _), got in zip(asks, answers, strict=True):
            if got is None:
                self.bulk = False  # the server has no bulk endpoint: one request per history from now on
                return {}
            found.update({(run_id, key): points for run_id, points in got.items()})
        return found

    def run_records(self, experiment, run, histories: dict) -> list[dict]:
        info, data = run.info, run.data
        owner = self.run_names[info.run_id]
        records = [{
            "kind": "run", "id": info.run_id, "owner_name": owner, "experiment_id": info.experiment_id,
            "name": info.run_name, "status": info.status, "start_time": info.start_time, "end_time": info.end_time,
            "lifecycle": info.lifecycle_stage, "artifact_uri": info.artifact_uri, "params": dict(data.params),
            "tags": dict(data.tags), "inputs": sorted(
                [d.dataset.name, d.dataset.digest, sorted((t.key, t.value) for t in d.tags)]
                for d in (run.inputs.dataset_inputs if run.inputs else [])),
        }]  # fmt: skip
        for key in sorted(data.metrics):
            points = histories.get((info.run_id, key))
            if points is None:
                points = sorted(
                    [m.step, m.timestamp, m.value] for m in self.client.get_metric_history(info.run_id, key)
                )
            records.append({"kind": "metric", "owner": info.run_id, "owner_name": owner, "key": key, "points": points})
        if self.scope.artifacts != "none":
            files = self.listing(lambda p: self.client.list_artifacts(info.run_id, p))
            records += self.file_records(f"run:{info.run_id}", owner, files, info.artifact_uri)
        return records

    def listing(self, list_dir: Callable[[str | None], list]) -> list[tuple[str, int | None]]:
        found, todo = [], [None]
        while todo:
            for entry in list_dir(todo.pop()):
                if entry.is_dir:
                    todo.append(entry.path)
                else:
                    found.append((entry.path, entry.file_size))
        return sorted(found)

    def file_records(self, owner: str, owner_name: str, files: list, root: str) -> list[dict]:
        records = []
        for i, (path, size) in enumerate(files):
            hashed = self.scope.artifacts == "all" or (i < SAMPLE_FILES and (size or 0) <= SAMPLE_MAX_BYTES)
            records.append({"kind": "artifact", "owner": owner, "owner_name": owner_name, "root": root, "path": path,
                            "size": size, "sha256": self.sha256(f"{root}/{path}") if hashed else None})  # fmt: skip
        return records

    def sha256(self, uri: str) -> str | None:
        """The file's sha256 through the server (or the store the client reaches); None when it
        cannot be read: a file listed but gone is a difference, not an error."""
        import mlflow

        dst = Path(tempfile.mkdtemp(dir=self.tmp))
        try:
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
            digest = hashlib.sha256()
            with open(got, "rb") as f:
                for block in iter(lambda: f.read(2**20), b""):
                    digest.update(block)
            return digest.hexdigest()
        except Exception:
            return None
        finally:
            shutil.rmtree(dst, ignore_errors=True)

    def logged_models(self, experiments: list) -> None:
        ids = [e.experiment_id for e in experiments]
        if not ids:
            return
        for model in pages(lambda token: self.client.search_logged_models(experiment_ids=ids, max_results=100,
                                                                          page_token=token)):  # fmt: skip
            owner = self.run_names.get(model.source_run_id or "", model.experiment_id)
            self.writer.add({
                "kind": "logged_model", "id": model.model_id, "owner_name": owner, "name": model.name,
                "run_id": model.source_run_id, "experiment_id": model.experiment_id, "status": str(model.status),
                "params": dict(model.params or {}), "tags": dict(model.tags or {}),
                "artifact_uri": model.artifact_location,
            })  # fmt: skip
            if self.scope.artifacts != "none":
                files = self.listing(lambda p, m=model: self.client.list_logged_model_artifacts(m.model_id, p))
                for record in self.file_records(f"model:{model.model_id}", f"{owner}/{model.name}", files,
                                                model.artifact_location):  # fmt: skip
                    self.writer.add(record)

    def registry(self, experiments: list) -> None:
        if self.scope.mode == "suite":
            names = [self.scope.registered_model]
        else:
            names = [
                m.name for m in pages(lambda t: self.client.search_registered_models(max_results=PAGE, page_token=t))
            ]
        for name in names:
            versions = list(pages(lambda t, n=name: self.client.search_model_versions(f"name = '{n}'", page_token=t)))
            if self.scope.mode == "experiments":  # the versions of the runs in scope
                versions = [v for v in versions if v.run_id in self.run_names]
            if not versions and self.scope.mode != "all":
                continue
            model = self.client.get_registered_model(name)
            aliases = getattr(model, "aliases", {}) or {}
            self.writer.add({"kind": "registered_model", "name": name, "tags": dict(model.tags or {}),
                             "description": model.description or "", "aliases": dict(aliases)})  # fmt: skip
            for v in sorted(versions, key=lambda v: int(v.version)):
                self.writer.add({
                    "kind": "model_version", "name": name, "version": str(v.version), "run_id": v.run_id,
                    "source": v.source, "status": str(v.status), "tags": dict(v.tags or {}),
                })  # fmt: skip

    def traces(self, experiment) -> None:
        from mlflowcheck.probes.traces import all_facts

        for trace in pages(lambda token: self.client.search_traces(locations=[experiment.experiment_id],
                                                                    include_spans=True, max_results=100,
                                                                    page_token=token)):  # fmt: skip
            info = trace.info
            spans = all_facts(trace.data.spans) if trace.data else []
            content = hashlib.sha256(json.dumps(spans, sort_keys=True, ensure_ascii=False, default=str).encode())
            self.writer.add({
                "kind": "trace", "id": info.trace_id, "owner_name": experiment.name,
                "name": info.tags.get("mlflow.traceName", ""), "request_time": info.request_time,
                "state": str(getattr(info.state, "value", info.state)),
                "run_id": info.trace_metadata.get("mlflow.sourceRun"), "spans": len(spans),
                "content": content.hexdigest(), "assessments": sorted(
                    [a.name, json.dumps(a.feedback.value if a.feedback else a.expectation.value, ensure_ascii=False,
                                        default=str)] for a in (info.assessments or [])),
            })  # fmt: skip

    def prompts(self) -> None:
        query = f"name LIKE '{seed.PROMPT_PREFIX}-%'" if self.scope.mode == "suite" else None
        if self.scope.mode == "experiments":
            return  # prompts belong to no experiment
        for prompt in pages(lambda token: self.client.search_prompts(filter_string=query, page_token=token)):
            versions = list(pages(lambda t, p=prompt: self.client.search_prompt_versions(p.name, page_token=t)))
            self.writer.add({
                "kind": "prompt", "name": prompt.name, "tags": {k: v for k, v in (prompt.tags or {}).items()},
                "versions": {str(v.version): hashlib.sha256(str(v.template).encode()).hexdigest() for v in versions},
                "aliases": {a: str(v.version) for v in versions for a in (getattr(v, "aliases", None) or [])},
            })  # fmt: skip


def run_match(experiment: str, run, seen: Counter) -> str:
    """A run's names, as --match-by name pairs runs across servers: its experiment, its name, its
    params (a copy keeps all three, not the ids or the times) and, among runs alike in those, its
    place in the server's order (newest first)."""
    params = hashlib.sha256(json.dumps(dict(run.data.params), sort_keys=True).encode()).hexdigest()[:12]
    alike = (run.info.run_name, params)
    seen[alike] += 1
    return f"{experiment}/{run.info.run_name}/{params}/{seen[alike]}"


def experiment_record(experiment) -> dict:
    return {
        "kind": "experiment",
        "id": experiment.experiment_id,
        "name": experiment.name,
        "lifecycle": experiment.lifecycle_stage,
        "artifact_uri": experiment.artifact_location,
        "tags": dict(experiment.tags or {}),
        "creation_time": getattr(experiment, "creation_time", None),
    }


def pages(search: Callable[[str | None], list]) -> Iterator:
    """Every item of a paginated MLflow search, a page at a time."""
    token = None
    while True:
        page = search(token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return
