"""Throwaway databases on the local PostgreSQL and MariaDB servers (and SQLite files), for the
backend tests and the benchmark: created with a unique name, dropped afterwards."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
BACKENDS = ("sqlite", "postgresql", "mariadb")


class DatabaseUnavailable(RuntimeError):
    """The database server is not reachable."""


@dataclass
class Database:
    uri: str  # the SQLAlchemy URI for `mlflow server --backend-store-uri`
    query: Callable[..., list[tuple]]  # query(sql with %s placeholders, *params) -> rows


@contextmanager
def throwaway_database(backend: str, directory: Path, **options) -> Iterator[Database]:
    """``options`` go to the backend's maker (postgres_database's encoding, mariadb_database's charset)."""
    name = f"mlflowcheck_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield sqlite_database(directory / "my.db")
    elif backend == "postgresql":
        with postgres_database(name, **options) as db:
            yield db
    elif backend == "mariadb":
        with mariadb_database(name, **options) as db:
            yield db
    else:
        raise ValueError(f"unknown backend {backend!r}; one of {BACKENDS}")


def sqlite_database(path: Path) -> Database:
    def query(sql, *params):
        with sqlite3.connect(path) as con:
            return con.execute(sql.replace("%s", "?"), params).fetchall()

    return Database(f"sqlite:///{path}", query)


@contextmanager
def postgres_database(name: str, encoding: str = "UTF8") -> Iterator[Database]:
    """``encoding`` other than UTF8 makes the database a user gets with a server-wide default
    of LATIN1 or SQL_ASCII (the C locale keeps any encoding valid)."""
    import psycopg2

    try:
        admin = psycopg2.connect(connect_timeout=5, **PG)
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}") from None
    admin.autocommit = True
    with admin.cursor() as cur:
        locale = "" if encoding == "UTF8" else " LC_COLLATE 'C' LC_CTYPE 'C'"
        cur.execute(f"CREATE DATABASE \"{name}\" ENCODING '{encoding}'{locale} TEMPLATE template0")

    def query(sql, *params):
        with psycopg2.connect(connect_timeout=5, **{**PG, "dbname": name}) as con, con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []  # a GRANT or REVOKE returns no rows

    try:
        yield Database(f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{name}", query)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def postgres_role(db: Database) -> Iterator[str]:
    """A throwaway login role on the throwaway PostgreSQL database ``db``, with no privilege but
    CONNECT (grant more with db.query); yields db.uri with the role as its user. Dropped after,
    with everything it owns."""
    import psycopg2

    role = f"mlflowcheck_{uuid.uuid4().hex[:12]}"
    dbname = db.uri.rsplit("/", 1)[1]
    admin = psycopg2.connect(connect_timeout=5, **PG)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN')
        cur.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO "{role}"')
    try:
        yield db.uri.replace(f"//{PG['user']}@", f"//{role}@", 1)
    finally:
        db.query(f'DROP OWNED BY "{role}"')  # in its database: the tables it made there
        with admin.cursor() as cur:
            cur.execute(f'REVOKE ALL ON DATABASE "{dbname}" FROM "{role}"')
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


@contextmanager
def mariadb_database(name: str, charset: str = "utf8mb4 COLLATE utf8mb4_bin") -> Iterator[Database]:
    """``charset`` other than utf8mb4 makes the database a server with the old default
    (latin1) creates, as users' hand-made ones often are."""
    import pymysql

    try:
        admin = pymysql.connect(connect_timeout=5, autocommit=True, **MARIADB)
    except pymysql.err.OperationalError as exc:
        raise DatabaseUnavailable(f"MariaDB at 127.0.0.1:3306 is not reachable: {exc}") from None
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET {charset}")

    def query(sql, *params):
        con = pymysql.connect(connect_timeout=5, charset="utf8mb4", **{**MARIADB, "database": name})
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return [tuple(row) for row in cur.fetchall()]
        finally:
            con.close()

    try:
        yield Database(
            f"mysql+pymysql://{MARIADB['user']}@{MARIADB['host']}:{MARIADB['port']}/{name}?charset=utf8mb4", query
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@contextmanager
def database_or_skip(backend: str, directory: Path, **options) -> Iterator[Database]:
    """A throwaway database; a database server that is not reachable skips the test, except
    in CI (CI=true), where it fails: CI can never go green by skipping a backend."""
    import os

    import pytest

    try:
        with throwaway_database(backend, directory, **options) as db:
            yield db
    except DatabaseUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI must test every backend)", pytrace=False)
        pytest.skip(str(exc))
