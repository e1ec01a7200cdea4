"""Database errors in a server's answer: which database, what went wrong, what to do.

MLflow's SQLAlchemy store passes the database's own error on to the client
(mlflow/store/db/utils.py, ``make_managed_session``): an ``OperationalError`` becomes
TEMPORARILY_UNAVAILABLE (HTTP 503), any other SQLAlchemy error BAD_REQUEST (HTTP 400), and the
message is SQLAlchemy's whole text, e.g.::

    (pymysql.err.DataError) (1366, "Incorrect string value: '\xe6\x9c\xac...' for column ...")
    [SQL: INSERT INTO experiments (name, ...) VALUES (%(name)s, ...)]
    [parameters: {'name': '本地测试实验_1764630000', ...}]
    (Background on this error at: https://sqlalche.me/e/20/9h9h)

This module recognises those texts (SQLite through sqlite3, PostgreSQL through psycopg2,
MySQL and MariaDB through PyMySQL) by class, and quotes the database's own words without the
statement and its parameters, which can hold user data. Pure: no network, no MLflow import.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from mlflowcheck.explain.database_rows import DATABASE_MARKERS, MYSQL, ROWS, Row


@functools.cache
def _compiled() -> tuple[tuple[Row, re.Pattern], ...]:
    # On first use, not at import: the suite's start-up time counts every import.
    return tuple((row, re.compile(row.pattern, re.IGNORECASE | re.DOTALL)) for row in ROWS)


class DatabaseError(NamedTuple):
    """A recognised database error: its class, the database, the sentence and the fix."""

    kind: str
    database: str
    message: str
    tip: str


def database_of(text: str) -> str | None:
    """The database whose driver or words an error carries, or None."""
    for name, marker in DATABASE_MARKERS:
        if re.search(marker, text):
            if name == MYSQL:
                return "MariaDB" if re.search(r"\bMariaDB\b", text) else MYSQL
            return name
    return None


def explain_database_error(text: str) -> DatabaseError | None:
    """The class, cause and fix of a database error in a server's message, or None."""
    driver = re.search(_DRIVER_NAME, text)
    for row, pattern in _compiled():
        match = pattern.search(database_words(text) if driver else text)
        if match is None:
            continue
        # No driver's words to start from: quote the line that matched.
        words = database_words(text if driver else _line_at(text, match.start()))
        database = database_of(text)
        if database is None:
            database = row.database
        elif row.database is not None and not _same(database, row.database):
            continue  # one database's words in another's message: not this row
        if database is None and not _driver_free(row):
            continue  # a generic phrase with no database in sight (a client's own "Connection refused")
        where = f"{database} database" if database else "database"
        said = f" {database or 'The server'} said: {words}" if words else ""
        return DatabaseError(row.kind, database or "", f"The tracking store's {where} {row.cause}.{said}", row.tip)
    return None


def _line_at(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    line = text[start : end if end >= 0 else None]
    return re.sub(r"^[\d/:. -]+(?:ERROR|WARNING|CRITICAL)\s+[\w.]+:\s*", "", line.strip())  # a log line's prefix


def _same(found: str, row_database: str) -> bool:
    return found == row_database or (row_database == MYSQL and found == "MariaDB")


def _driver_free(row: Row) -> bool:
    # Texts only MLflow's own store writes: recognised without a driver's name.
    return row.kind in ("schema", "schema-ahead") or "codec can't encode" in row.pattern


#: SQLAlchemy's wrapping around the driver's words (patterns: compiled on first use, by re's cache).
_DRIVER_NAME = r"\((?:sqlite3|psycopg2?|pymysql|MySQLdb|mysql\.connector|mariadb)[.\w]*\)"


_DRIVER = r"^\s*\((?:sqlite3|psycopg2?|pymysql|MySQLdb|mysql\.connector|mariadb)[.\w]*\)\s*"


_TAILS = r"(?s)\s*(?:\[SQL: |\[parameters: |\(Background on this error at: |LINE \d+: |DETAIL: |HINT: ).*"


_PYMYSQL = r"(?s)^\((\d{4}), (['\"])(.*)\2\)$"


_URI_USERINFO = r"(\b[a-z][\w+.-]*://)[^/@\s]+@"


_PASSWORD = r"(?i)(password\s*=\s*)\S+"


def database_words(text: str, limit: int = 300) -> str:
    """The database's own words in a server message, shortened: the first line of the driver's
    error, without SQLAlchemy's wrapping, the statement, its parameters or any credential."""
    text = str(text)
    start = re.search(_DRIVER_NAME, text)
    if start:
        text = text[start.start() :]
    text = re.sub(_TAILS, "", re.sub(_DRIVER, "", text.strip().replace("\\n", "\n")))
    line = " ".join(next((line for line in text.splitlines() if line.strip()), "").split())
    mysql = re.match(_PYMYSQL, line)
    if mysql:
        line = f"({mysql.group(1)}) {mysql.group(3)}".replace("\\\\", "\\")
    line = re.sub(r"^[A-Z_]{5,}: ", "", line).replace("FATAL: ", "")  # MLflow's error code, PostgreSQL's level
    line = re.sub(_PASSWORD, r"\1***", re.sub(_URI_USERINFO, r"\1***@", line))
    return line[:limit] + ("…" if len(line) > limit else "")
