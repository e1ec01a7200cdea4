"""--fingerprint and --compare against real servers: nothing written by either; an unchanged
server equal; a metric point changed in the database named; a second writer's objects listed
as new; a SQLite backup restored with its artifacts equal, without them the missing artifact
store named in one line; the seed's MLflow 3.1.4 upgraded with `mlflow db upgrade` equal."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import database_or_skip
from tests.support import run_suite, start_server
from tests.test_diagnosis import OLD_SERVERS, old_python


def sqlite_digest(path: Path) -> str:
    """The whole database's content (its SQL dump), to prove a run wrote nothing."""
    with sqlite3.connect(path) as con:
        return hashlib.sha256("\n".join(con.iterdump()).encode()).hexdigest()


def files_of(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file())


def manifest(path: Path) -> tuple[dict, list[dict], dict]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return lines[0], lines[1:-1], lines[-1]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A light server of this module's own holding the seed's run (the suite's default run)."""
    tmp = tmp_path_factory.mktemp("fingerprint")
    srv = start_server(tmp / "server")
    result = run_suite(tmp, "--tracking-uri", srv.url)
    result.assert_all_passed()
    yield srv, result.report["experiment_name"]
    srv.stop()


def db_of(srv) -> Path:
    """The server's SQLite file (a relative URI is relative to the server's directory)."""
    path = Path(srv.backend_store_uri.removeprefix("sqlite:///"))
    return path if path.is_absolute() else srv.workdir / path


def artifacts_of(srv) -> Path:
    return srv.workdir / srv.artifacts_destination


def test_a_fingerprint_and_a_compare_write_nothing_and_find_an_unchanged_server_equal(seeded, tmp_path):
    srv, _ = seeded
    before_db, before_files = sqlite_digest(db_of(srv)), files_of(artifacts_of(srv))
    path = tmp_path / "before.jsonl"
    made = run_suite(tmp_path, "--tracking-uri", srv.url, "--fingerprint", str(path))
    assert made.code == 0, made.output
    assert [c["name"] for c in made.report["checks"]] == [
        "uri", "network", "server", "access", "versions", "server_info", "fingerprint",
    ]  # fmt: skip
    header, records, trailer = manifest(path)
    assert (header["kind"], header["schema"], header["scope"]["mode"]) == ("manifest", 1, "suite")
    assert header["server"]["version"] == "3.17.2"
    counts = trailer["counts"]
    assert counts["experiment"] == 1
    assert counts["run"] == 2  # the seed's run and mlflow.genai.evaluate's
    assert counts["logged_model"] == 2  # the seed's model and the trace's app
    assert counts["model_version"] == counts["prompt"] == 1
    assert counts["trace"] == 4  # the seed's, the OpenTelemetry span's, one per evaluated row
    histories = {r["key"]: r["points"] for r in records if r["kind"] == "metric" and r["key"] in ("accuracy", "loss")}
    assert [len(points) for points in histories.values()] == [5, 5]
    hashed = [r for r in records if r["kind"] == "artifact" and r["path"] == "reports/test_report.txt"]
    assert len(hashed) == 1
    assert len(hashed[0]["sha256"]) == 64
    assert f"{path}: 1 experiments, 2 runs" in made.check("fingerprint")["message"]

    again = run_suite(tmp_path, "--tracking-uri", srv.url, "--compare", str(path))
    assert again.code == 0, again.output
    kinds = again.report["compare"]["kinds"]
    assert all(c["equal"] == c["compared"] and c["missing"] == c["altered"] == c["extra"] == 0 for c in kinds.values())
    assert sum(c["equal"] for c in kinds.values()) == sum(counts.values())
    assert f"{sum(counts.values())} objects equal, nothing lost or altered (matched by id)" in again.output
    # Read only: the database and the artifact store are as they were.
    assert sqlite_digest(db_of(srv)) == before_db
    assert files_of(artifacts_of(srv)) == before_files


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_metric_point_changed_in_the_database_is_named_by_run_metric_and_step(backend, fresh_server, tmp_path):
    with database_or_skip(backend, tmp_path) as db:
        srv = fresh_server(backend_store_uri=db.uri)
        assert run_suite(tmp_path, "--tracking-uri", srv.url, "-k", TRACKING).code == 0
        path = tmp_path / "before.jsonl"
        assert run_suite(tmp_path, "--tracking-uri", srv.url, "--fingerprint", str(path)).code == 0
        ((run_id, value),) = db.query("SELECT run_uuid, value FROM metrics WHERE key = 'loss' AND step = 3")
        db.query("UPDATE metrics SET value = %s WHERE run_uuid = %s AND key = 'loss' AND step = 3", value + 1, run_id)
        result = run_suite(tmp_path, "--tracking-uri", srv.url, "--compare", str(path))
        srv.stop()
    assert result.code == 1, result.output
    message = result.check("compare")["message"]
    assert ": 0 objects missing, 1 altered, 0 new (matched by id):" in message
    said = f"run {run_id[:8]}… metric loss: 5 points before, 5 after, step 3 was {value!r}, now {value + 1!r}"
    assert said in message
    assert result.report["compare"]["kinds"]["metric"]["altered"] == 1


def test_a_second_writer_between_two_fingerprints_is_named_and_its_objects_listed_as_new(seeded, tmp_path):
    srv, _ = seeded
    path = tmp_path / "before.jsonl"
    assert run_suite(tmp_path, "--tracking-uri", srv.url, "--fingerprint", str(path)).code == 0
    # Another writer: a new experiment, a run, two metric histories.
    writer = run_suite(tmp_path, "--tracking-uri", srv.url, "-k", TRACKING)
    assert writer.code == 0, writer.output
    result = run_suite(tmp_path, "--tracking-uri", srv.url, "--compare", str(path))
    assert result.code == 0, result.output  # nothing lost or altered: new objects are listed, not failed
    kinds = result.report["compare"]["kinds"]
    assert (kinds["experiment"]["extra"], kinds["run"]["extra"], kinds["metric"]["extra"]) == (1, 1, 2)
    message = result.check("compare")["message"]
    assert "nothing lost or altered, 4 new (matched by id)" in message
    assert "4 objects were created after the first fingerprint: something still writes to this server." in message


def backup(srv, to: Path, with_artifacts: bool) -> tuple[str, str]:
    """SQLite's online backup of the server's database (and a copy of its artifacts) into ``to``:
    the backend store URI and artifacts destination of a server on the restored copy."""
    to.mkdir()
    with sqlite3.connect(db_of(srv)) as src, sqlite3.connect(to / "my.db") as dst:
        src.backup(dst)
    if with_artifacts:
        shutil.copytree(artifacts_of(srv), to / "mlartifacts")
    else:
        (to / "mlartifacts").mkdir()
    return f"sqlite:///{to / 'my.db'}", str(to / "mlartifacts")


def test_a_sqlite_backup_restored_with_its_artifacts_is_equal_and_without_them_the_missing_store_is_named(
    seeded, fresh_server, tmp_path
):
    srv, _ = seeded
    path = tmp_path / "before.jsonl"
    assert run_suite(tmp_path, "--tracking-uri", srv.url, "--fingerprint", str(path)).code == 0
    uri, artifacts = backup(srv, tmp_path / "restored", with_artifacts=True)
    restored = fresh_server(backend_store_uri=uri, artifacts_destination=artifacts)
    result = run_suite(tmp_path, "--tracking-uri", restored.url, "--compare", str(path))
    assert result.code == 0, result.output
    assert "nothing lost or altered (matched by id)" in result.output

    uri, artifacts = backup(srv, tmp_path / "database-only", with_artifacts=False)
    half = fresh_server(backend_store_uri=uri, artifacts_destination=artifacts)
    result = run_suite(tmp_path, "--tracking-uri", half.url, "--compare", str(path))
    assert result.code == 1, result.output
    message = result.check("compare")["message"]
    runs = result.report["compare"]["kinds"]["run"]
    assert runs["equal"] == runs["compared"]
    assert (
        "but all artifact files are gone or unreadable: the database was restored or migrated without its "
        "artifact store (the missing files' URIs begin mlflow-artifacts:/"
    ) in message
    # One line for the cause, however many files; the first few spelled out.
    assert message.count("restored or migrated without its artifact store") == 1
    assert 1 <= message.count(" file ") <= 5
    assert "Tip: restore the artifact store from the same backup as the database" in message


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_seeds_3_1_4_upgraded_with_mlflow_db_upgrade_to_3_17_2_compares_equal(backend, fresh_server, tmp_path):
    with database_or_skip(backend, tmp_path) as db:
        old = fresh_server(python=old_python("3.1.4"), backend_store_uri=db.uri)
        assert run_suite(tmp_path, "--tracking-uri", old.url).code == 0
        path = tmp_path / "before.jsonl"
        made = run_suite(tmp_path, "--tracking-uri", old.url, "--fingerprint", str(path))
        assert made.code == 0, made.output
        counts = manifest(path)[2]["counts"]
        assert counts["run"] == counts["trace"] == counts["prompt"] == 1
        assert counts["logged_model"] == 2  # the seed's model and the trace's app
        old.stop()
        # MLflow's runbook: stop the server, back up, upgrade the schema, start the new version.
        upgrade = subprocess.run(
            [sys.executable, "-m", "mlflow", "db", "upgrade", db.uri],
            cwd=old.workdir, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stderr
        new = fresh_server(backend_store_uri=db.uri, artifacts_destination=str(artifacts_of(old)))
        result = run_suite(tmp_path, "--tracking-uri", new.url, "--compare", str(path))
        new.stop()
    assert result.code == 0, result.output
    assert result.report["server_version"] == "3.17.2"
    assert f"{sum(counts.values())} objects equal, nothing lost or altered (matched by id)" in result.output


TRACKING = "uri or network or server or access or experiment or params or metrics or run"
TRACKING_AND_PROMPTS = (
    "uri or network or server or access or experiment or params or metrics or dataset or artifact or search "
    "or trace or assessments or prompts or run or final_report"
)


def on_file_store(tmp_path: Path, name: str, *suite_args: str):
    """A 3.17 server on a file store (./mlruns, allowed by MLFLOW_ALLOW_FILE_STORE) with the
    suite's run, fingerprinted, stopped and migrated by `mlflow migrate-filestore`: the
    manifest, the migration's outcome, and a server on the migrated database."""
    home = tmp_path / name
    old = start_server(home, backend_store_uri=str(home / "mlruns"), env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    try:
        run_suite(tmp_path, "--tracking-uri", old.url, *suite_args)
        path = tmp_path / f"{name}.jsonl"
        assert run_suite(tmp_path, "--tracking-uri", old.url, "--fingerprint", str(path)).code == 0
    finally:
        old.stop()
    migrated = subprocess.run(
        [sys.executable, "-m", "mlflow", "migrate-filestore", "--source", str(home), "--target",
         f"sqlite:///{home / 'migrated.db'}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return path, migrated, start_server(home, backend_store_uri=f"sqlite:///{home / 'migrated.db'}")


def test_migrate_filestore_of_runs_without_a_model_keeps_everything_but_the_prompt_alias_and_the_compare_says_so(
    tmp_path,
):
    path, migrated, new = on_file_store(tmp_path, "tracking", "-k", TRACKING_AND_PROMPTS)
    try:
        assert migrated.returncode == 0, migrated.stderr
        result = run_suite(tmp_path, "--tracking-uri", new.url, "--compare", str(path))
    finally:
        new.stop()
    assert result.code == 1, result.output
    kinds = result.report["compare"]["kinds"]
    assert {k: (c["compared"], c["equal"]) for k, c in kinds.items()} == {
        "experiment": (1, 1), "run": (1, 1), "metric": (2, 2), "artifact": (2, 2), "trace": (1, 1), "prompt": (1, 0),
        "logged_model": (1, 1),  # the trace's app
    }  # fmt: skip
    message = result.check("compare")["message"]
    assert "The server's store changed from FileStore to SqlStore." in message
    assert ": aliases (mlflowcheck missing)" in message  # MLflow 3.17.2's migrate-filestore drops prompt aliases
    assert "Tip: what is listed did not survive the move to the new store" in message


def test_migrate_filestore_of_a_run_with_a_logged_model_fails_and_the_compare_finds_nothing_moved(tmp_path):
    # MLflow 3's log_model logs the run's step-0 metrics again for the model; the file store keeps
    # both lines, and migrate-filestore's INSERT then breaks the metrics table's primary key.
    path, migrated, new = on_file_store(tmp_path, "seed")
    try:
        assert migrated.returncode != 0
        assert "UNIQUE constraint failed: metrics.key" in migrated.stderr
        result = run_suite(tmp_path, "--tracking-uri", new.url, "--compare", str(path))
    finally:
        new.stop()
    assert result.code == 1, result.output
    message = result.check("compare")["message"]
    compared = sum(c["compared"] for c in result.report["compare"]["kinds"].values())
    assert (
        f"The server holds none of the {compared} objects fingerprinted: this is another, or an empty, store" in message
    )
    assert "Tip: start the server on the database the data is in (--backend-store-uri)" in message
    assert message.count(": missing") <= 8  # the first few, and the counts


EXPORT_IMPORT = OLD_SERVERS / "export-import-1.2.0" / "bin"


def test_a_copy_by_mlflow_export_import_matched_by_name_says_what_it_carried_and_what_it_left_behind(
    seeded, fresh_server, tmp_path
):
    if not (EXPORT_IMPORT / "export-experiment").exists():
        message = f"no mlflow-export-import at {EXPORT_IMPORT} (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    srv, experiment = seeded
    path = tmp_path / "source.jsonl"
    made = run_suite(tmp_path, "--tracking-uri", srv.url, "--experiment", experiment, "--fingerprint", str(path))
    assert made.code == 0, made.output
    copy = fresh_server()
    for command, uri, where in (("export-experiment", srv.url, "--output-dir"), ("import-experiment", copy.url,
                                                                                 "--input-dir")):  # fmt: skip
        name = "--experiment" if command == "export-experiment" else "--experiment-name"
        done = subprocess.run(
            [str(EXPORT_IMPORT / command), name, experiment, where, str(tmp_path / "exported")],
            env={**os.environ, "MLFLOW_TRACKING_URI": uri}, cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    result = run_suite(tmp_path, "--tracking-uri", copy.url, "--compare", str(path), "--match-by", "name")
    assert result.code == 1, result.output
    kinds = result.report["compare"]["kinds"]
    assert all(c["compared"] == c["equal"] + c["missing"] + c["altered"] for c in kinds.values()), kinds
    # Carried: the experiment, every run (paired by name and params), every metric history, the runs' files.
    assert (kinds["experiment"]["equal"], kinds["run"]["missing"], kinds["run"]["extra"]) == (1, 0, 0)
    assert kinds["metric"]["equal"] == kinds["metric"]["compared"] >= 3
    # Left behind: the runs' dataset inputs, the logged model and its files, the registry, the traces.
    assert kinds["run"]["altered"] >= 1
    assert kinds["logged_model"]["missing"] == 2  # the seed's model and the trace's app
    assert kinds["trace"]["missing"] == kinds["trace"]["compared"] >= 1
    message = result.check("compare")["message"]
    assert "(matched by name)" in message
    assert "inputs [[" in message
    assert "before, [] after" in message
    assert "Tip: the copy left out what is listed" in message


def postgres_dsn(uri: str) -> str:
    """The libpq address of a SQLAlchemy PostgreSQL URI (pg_dump and pg_restore take that)."""
    return uri.replace("postgresql+psycopg2://", "postgresql://", 1)


def test_a_postgresql_dump_restored_with_the_artifacts_is_equal_and_without_them_the_store_is_named(
    fresh_server, tmp_path
):
    with database_or_skip("postgresql", tmp_path) as source, database_or_skip("postgresql", tmp_path) as target:
        srv = fresh_server(backend_store_uri=source.uri)
        assert run_suite(tmp_path, "--tracking-uri", srv.url).code == 0
        path = tmp_path / "before.jsonl"
        assert run_suite(tmp_path, "--tracking-uri", srv.url, "--fingerprint", str(path)).code == 0
        srv.stop()
        dump = tmp_path / "mlflow.dump"
        for command in (
            ["pg_dump", "-Fc", "-f", str(dump), postgres_dsn(source.uri)],
            ["pg_restore", "--no-owner", "-d", postgres_dsn(target.uri), str(dump)],
        ):
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
        copied = tmp_path / "restored-artifacts"
        shutil.copytree(artifacts_of(srv), copied)
        restored = fresh_server(backend_store_uri=target.uri, artifacts_destination=str(copied))
        result = run_suite(tmp_path, "--tracking-uri", restored.url, "--compare", str(path))
        restored.stop()
        (tmp_path / "no-artifacts").mkdir()  # the same restore, without the artifact store
        half = fresh_server(backend_store_uri=target.uri, artifacts_destination=str(tmp_path / "no-artifacts"))
        without = run_suite(tmp_path, "--tracking-uri", half.url, "--compare", str(path))
        half.stop()
    assert result.code == 0, result.output
    assert "nothing lost or altered (matched by id)" in result.output
    assert result.report["compare"]["kinds"]["metric"]["equal"] >= 3
    assert without.code == 1, without.output
    assert "the database was restored or migrated without its artifact store" in without.check("compare")["message"]
