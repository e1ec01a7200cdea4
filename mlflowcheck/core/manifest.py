"""The fingerprint's file (--fingerprint, --compare): what a server held, one JSON object a line.

The first line is the header (``kind: "manifest"``, the schema version, the server, the scope,
how artifacts were read), the last the trailer (``kind: "end"``, the count of each kind, the
requests made); each line between is one object the server holds: an experiment, a run, one
metric's whole history, an artifact, a logged model, a registered model, a model version, a
trace, a prompt. Objects are written as they are read and compared a line at a time, so a
server with 100,000 runs needs neither its fingerprint nor its comparison in memory.

A manifest is written to a temporary file beside its path and renamed when complete: a
fingerprint cut short leaves no file that looks whole. docs/fingerprint.md describes the format.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlflowcheck.core.errors import CheckFailed

SCHEMA = 1
#: With ``--artifacts sample``: per run or logged model, the first files by path, up to this
#: many and this size each, are hashed; every file is listed with its size (the header records both).
SAMPLE_FILES = 10
SAMPLE_MAX_BYTES = 16 * 2**20
KINDS = (
    "experiment",
    "run",
    "metric",
    "artifact",
    "logged_model",
    "registered_model",
    "model_version",
    "trace",
    "prompt",
)
#: Fields that name an object by the server's ids: compared when matching by id, left out when
#: matching by name (a copy to another server, mlflow-export-import, gives new ids).
ID_FIELDS = frozenset(
    {"id", "owner", "root", "experiment_id", "run_id", "model_id", "artifact_uri", "source", "trace_id"}
)
#: Times the server gives an object when it is created: a copy gets its own (mlflow-export-import
#: on MLflow's own server keeps a run's metric timestamps, not its start and end).
SERVER_TIMES = frozenset({"start_time", "end_time", "creation_time"})
#: Tags that tools add when they copy objects (mlflow-export-import), left out when matching by name.
COPY_TAG_PREFIXES = ("mlflow_exim.", "mlflow.exportImport", "mlflow.source.", "mlflow.user")


def key_of(record: dict, match_by: str) -> str:
    """What identifies an object across two fingerprints: its ids, or (``name``) its names. An
    object that belongs to another (a run's metric, a run's or logged model's file) names it by
    ``owner`` (its id) and ``owner_name`` (its names)."""
    kind = record["kind"]
    if match_by == "id":
        parts = {
            "experiment": ["id"],
            "run": ["id"],
            "metric": ["owner", "key"],
            "artifact": ["owner", "path"],
            "logged_model": ["id"],
            "registered_model": ["name"],
            "model_version": ["name", "version"],
            "trace": ["id"],
            "prompt": ["name"],
        }[kind]
    else:
        parts = {
            "experiment": ["name"],
            "run": ["owner_name"],  # its experiment, name, params and rank (probes.fingerprint.run_match)
            "metric": ["owner_name", "key"],
            "artifact": ["owner_name", "path"],
            "logged_model": ["owner_name", "name"],
            "registered_model": ["name"],
            "model_version": ["name", "version"],
            "trace": ["owner_name", "name", "request_time"],
            "prompt": ["name"],
        }[kind]
    return json.dumps([kind, *(record.get(p) for p in parts)], ensure_ascii=False)


def comparable(record: dict, match_by: str) -> dict:
    """The record as compared: without the fields that name the server's ids when matching by name."""
    if match_by == "id":  # owner_name: the owner's names, compared in the owner's own record
        return {k: v for k, v in record.items() if k != "owner_name"}
    kept = {k: v for k, v in record.items() if k not in ID_FIELDS and k not in SERVER_TIMES and k != "owner_name"}
    if isinstance(kept.get("tags"), dict):
        kept["tags"] = {k: v for k, v in kept["tags"].items() if not k.startswith(COPY_TAG_PREFIXES)}
    return kept


def digest(record: dict, match_by: str) -> str:
    text = json.dumps(comparable(record, match_by), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ManifestWriter:
    """Writes a manifest to ``path`` (a temporary file until ``close``); ``add`` one object at a time."""

    path: Path
    header: dict
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.file = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115 (closed by close or abandon)
        self._line({"kind": "manifest", "schema": SCHEMA, **self.header})

    def _line(self, record: dict) -> None:
        self.file.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")

    def add(self, record: dict) -> None:
        self.counts[record["kind"]] += 1
        self._line(record)

    def close(self, trailer: dict) -> None:
        self._line({"kind": "end", "counts": dict(self.counts), **trailer})
        self.file.close()
        os.replace(self.partial, self.path)

    def abandon(self) -> None:
        self.file.close()
        with contextlib.suppress(OSError):
            self.partial.unlink()


def bad_manifest(path: Path, why: str) -> CheckFailed:
    return CheckFailed(
        f"{path} is not a fingerprint this suite can compare: {why}.",
        "give --compare the file an earlier --fingerprint wrote (one JSON object a line, its first line the header).",
    )


def read_header(path: Path) -> dict:
    """The manifest's header; raises with the cause if the file is not a whole manifest."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            last = f.read().rstrip("\n").rsplit("\n", 1)[-1]
    except OSError as exc:
        raise bad_manifest(path, exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise bad_manifest(path, "it is not UTF-8 text") from None
    try:
        header, trailer = json.loads(first), json.loads(last)
    except ValueError:
        raise bad_manifest(path, "its first or last line is not JSON") from None
    if not isinstance(header, dict) or header.get("kind") != "manifest":
        raise bad_manifest(path, "its first line is not a manifest header")
    if not isinstance(header.get("schema"), int) or header["schema"] > SCHEMA:
        raise bad_manifest(path, f"it has schema {header.get('schema')!r}, and this suite reads schema {SCHEMA}")
    if not isinstance(trailer, dict) or trailer.get("kind") != "end":
        raise bad_manifest(path, "it ends before its trailer (the fingerprint was cut short)")
    return {**header, "end": trailer}


def records(path: Path) -> Iterator[tuple[int, dict]]:
    """Each object of the manifest with its line's offset (``record_at`` reads it again)."""
    with open(path, "rb") as f:
        offset = 0
        for line in f:
            record = json.loads(line)
            if record.get("kind") in KINDS:
                yield offset, record
            offset += len(line)


def record_at(path: Path, offset: int) -> dict:
    with open(path, "rb") as f:
        f.seek(offset)
        return json.loads(f.readline())
