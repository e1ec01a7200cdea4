"""The whole suite on the tracking stores users run: SQLite, PostgreSQL and MariaDB.

Each database test gets a throwaway database, dropped afterwards. A database server that is
not reachable skips its test with the reason, except in CI (CI=true), where it fails: CI can
never go green by skipping a backend.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mlflowcheck.server import free_port
from tests.support import run_suite

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


def unavailable(what: str, exc: Exception):
    message = f"{what} is not reachable: {exc}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI must test every backend)", pytrace=False)
    pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[tuple[str, callable]]:
    import psycopg2

    name = f"mlflowcheck_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg2.connect(connect_timeout=5, **PG)
    except psycopg2.OperationalError as exc:
        unavailable("PostgreSQL at 127.0.0.1:5432", exc)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")

    def query(sql, *params):
        with psycopg2.connect(connect_timeout=5, **{**PG, "dbname": name}) as con, con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    try:
        yield f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{name}", query
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def mariadb_database() -> Iterator[tuple[str, callable]]:
    import pymysql

    name = f"mlflowcheck_{uuid.uuid4().hex[:12]}"
    try:
        admin = pymysql.connect(connect_timeout=5, autocommit=True, **MARIADB)
    except pymysql.err.OperationalError as exc:
        unavailable("MariaDB at 127.0.0.1:3306", exc)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def query(sql, *params):
        con = pymysql.connect(connect_timeout=5, charset="utf8mb4", **{**MARIADB, "database": name})
        try:
            with con.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params)
                return [tuple(row) for row in cur.fetchall()]
        finally:
            con.close()

    try:
        yield f"mysql+pymysql://{MARIADB['user']}@{MARIADB['host']}:{MARIADB['port']}/{name}?charset=utf8mb4", query
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@contextmanager
def sqlite_database(directory) -> Iterator[tuple[str, callable]]:
    path = directory / "my.db"

    def query(sql, *params):
        with sqlite3.connect(path) as con:
            return con.execute(sql.replace("%s", "?"), params).fetchall()

    yield f"sqlite:///{path}", query


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_whole_suite_passes_on_backend_and_unicode_round_trips(backend, tmp_path):
    database = {
        "sqlite": lambda: sqlite_database(tmp_path),
        "postgresql": postgres_database,
        "mariadb": mariadb_database,
    }[backend]
    with database() as (uri, query):
        result = run_suite(
            tmp_path, "--start-server", "--tracking-uri", f"http://127.0.0.1:{free_port()}",
            "--server-dir", str(tmp_path / "server"), "--backend-store-uri", uri,
        )  # fmt: skip
        result.assert_all_passed()
        report = result.report
        # Read the database itself: the Chinese names are stored exactly, not mangled.
        assert query("select name from experiments where experiment_id = %s", int(report["experiment_id"])) == [
            (report["experiment_name"],)
        ]
        assert report["experiment_name"].startswith("本地测试实验_")
        assert query("select name, status from runs where run_uuid = %s", report["run_id"]) == [
            ("本地测试运行", "FINISHED")
        ]
        assert query("select value from input_tags where name = %s", "mlflow.data.context") == [("训练数据",)]


def test_missing_driver_is_named_with_the_install_command(tmp_path):
    result = run_suite(
        tmp_path, "--start-server", "--tracking-uri", f"http://127.0.0.1:{free_port()}",
        "--server-dir", str(tmp_path), "--backend-store-uri", "mysql://root@127.0.0.1:3306/test",
    )  # fmt: skip
    assert result.code == 2
    assert "needs the Python driver 'MySQLdb'" in result.output
    assert (
        "Tip: pip install mysqlclient, or use the installed driver: mysql+pymysql://root@127.0.0.1:3306/test"
        in result.output
    )
