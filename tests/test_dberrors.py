"""Misconfigured databases under a real `mlflow server`, and the real suite's verdict on them.

The explanation table itself (explain.databases, every class of error by its real text) is
tested directly in tests/unit/test_explain_databases.py; these break real databases.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from mlflowcheck.runtime.server import free_port
from tests.databases import database_or_skip, postgres_role
from tests.support import run_suite
from tests.test_broken_deployments import assert_fails


def test_a_sqlite_store_missing_a_table_fails_the_access_check_with_mlflow_db_upgrade(fresh_server, tmp_path):
    # A schema behind the server's: a table MLflow reads is gone (what a database from another
    # MLflow version, or a half-applied migration, looks like). The first API call fails.
    srv = fresh_server()
    import sqlite3

    with sqlite3.connect(srv.workdir / "my.db") as con:
        con.execute("DROP TABLE experiment_tags")
    result = run_suite(tmp_path, "--tracking-uri", srv.url, "-k", "uri or network or server or access")
    assert_fails(result, "access", "SQLite database does not have the schema", "no such table: experiment_tags")
    assert "mlflow db upgrade" in result.check("access")["message"]
    assert "[SQL:" not in result.check("access")["message"]


def test_a_mariadb_database_in_latin1_fails_on_the_seeds_chinese_names_with_the_utf8mb4_fix(fresh_server, tmp_path):
    # The classic MLflow-on-MySQL failure: a database created with the server's old default
    # character set cannot store the seed's 本地测试实验 names (MariaDB error 1366).
    with database_or_skip("mariadb", tmp_path, charset="latin1") as db:
        srv = fresh_server(backend_store_uri=db.uri)
        result = run_suite(
            tmp_path, "--tracking-uri", srv.url, "-k", "uri or network or server or access or versions or experiment"
        )
        srv.stop()  # before the database is dropped under it
    assert_fails(result, "experiment", "MySQL or MariaDB database cannot store the text", "(1366) Incorrect string")
    assert "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" in result.check("experiment")["message"]


def test_a_postgresql_role_without_rights_on_its_database_is_named_when_the_server_cannot_start(tmp_path):
    # A role that may log in but not create MLflow's tables (since PostgreSQL 15 only the database's
    # owner may create in its public schema): the suite's own server dies at its migrations.
    with database_or_skip("postgresql", tmp_path) as db, postgres_role(db) as uri:
        result = run_suite(
            tmp_path, "--start-server", "--tracking-uri", f"http://127.0.0.1:{free_port()}",
            "--server-dir", str(tmp_path / "server"), "--backend-store-uri", uri,
        )  # fmt: skip
    assert result.code == 2, result.output
    assert "The local mlflow server did not start: The tracking store's PostgreSQL database refused" in result.output
    assert "PostgreSQL said: permission denied for schema public" in result.output
    assert "Tip: grant the server's database user what MLflow needs" in result.output


def test_a_postgresql_privilege_revoked_under_a_running_server_fails_the_experiment_check(fresh_server, tmp_path):
    # The server's role made MLflow's tables, then lost INSERT on one (a DBA tightening grants,
    # a restore that dropped them): reads still work, the first write fails.
    with database_or_skip("postgresql", tmp_path) as db, postgres_role(db) as uri:
        role = make_url(uri).username
        db.query(f'GRANT ALL ON SCHEMA public TO "{role}"')
        srv = fresh_server(backend_store_uri=uri)
        db.query(f'REVOKE INSERT ON experiments FROM "{role}"')
        result = run_suite(
            tmp_path, "--tracking-uri", srv.url, "-k", "uri or network or server or access or versions or experiment"
        )
        srv.stop()  # before the role and the database are dropped under it
    assert_fails(
        result, "experiment", "PostgreSQL database refused the account", "permission denied for table experiments"
    )
    assert "GRANT ALL ON ALL TABLES IN SCHEMA public" in result.check("experiment")["message"]
