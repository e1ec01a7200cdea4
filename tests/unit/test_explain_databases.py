"""Database errors in a server's answer, explained by class (explain.databases): which database,
the cause, the fix.

The table's messages are the real texts: those marked "collected" were produced on this
machine by the drivers (psycopg2 2.9, PyMySQL 1.2, sqlite3) through SQLAlchemy 2.1 against
the local PostgreSQL and MariaDB servers, exactly as MLflow's store passes them on; the others
(conditions a shared test machine must not be put in: a full disk, a server-wide connection
limit, a read-only server) are the databases' documented texts in the same wrapping.
tests/test_dberrors.py breaks real databases under a real `mlflow server` and runs the real suite.
"""

from __future__ import annotations

import json

import pytest
from mlflow.exceptions import MlflowException, RestException

from mlflowcheck.explain.databases import database_of, database_words, explain_database_error
from mlflowcheck.explain.errors import explain, known_server_error

BG = "\n(Background on this error at: https://sqlalche.me/e/21/e3q8)"
PG_CONNECT = '(psycopg2.OperationalError) connection to server at "127.0.0.1", port 5432 failed: FATAL:  '

# (class, database, the message, the words it must quote, a phrase of the fix)
CASES = [
    # --- cannot connect ---------------------------------------------------------------- collected
    ("unreachable", "PostgreSQL",
     '(psycopg2.OperationalError) connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
     "\tIs the server running on that host and accepting TCP/IP connections?\n" + BG,
     "port 1 failed: Connection refused", "host and port in the server's --backend-store-uri"),
    ("unreachable", "PostgreSQL",
     '(psycopg2.OperationalError) could not translate host name "nosuchhost.invalid" to address: Name or service '
     "not known\n" + BG, "could not translate host name", "host and port"),
    ("unreachable", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 111] "
     'Connection refused)")' + BG, "(2003) Can't connect to MySQL server", "bind-address"),
    ("authentication", "PostgreSQL", PG_CONNECT + 'role "nosuchrole" does not exist\n' + BG,
     'role "nosuchrole" does not exist', "user and password in the server's --backend-store-uri"),
    ("authentication", "PostgreSQL", PG_CONNECT + 'password authentication failed for user "mlflow"\n' + BG,
     'password authentication failed for user "mlflow"', "percent-encode"),
    ("authentication", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1045, \"Access denied for user 'nosuchuser'@'127.0.0.1' (using password: "
     'YES)")' + BG, "(1045) Access denied for user 'nosuchuser'", "user and password in the server's"),
    ("no such database", "PostgreSQL", PG_CONNECT + 'database "nosuchdb_x" does not exist\n' + BG,
     'database "nosuchdb_x" does not exist', "CREATE DATABASE mlflow ENCODING 'UTF8'"),
    ("no such database", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1049, \"Unknown database 'nosuchdb_x'\")" + BG,
     "(1049) Unknown database 'nosuchdb_x'", "CHARACTER SET utf8mb4"),
    ("no such database", "SQLite", "(sqlite3.OperationalError) unable to open database file" + BG,
     "unable to open database file", "four slashes"),
    ("too many connections", "PostgreSQL", PG_CONNECT + 'too many connections for role "mlflow"\n' + BG,
     'too many connections for role "mlflow"', "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"),
    ("too many connections", "PostgreSQL", PG_CONNECT + "sorry, too many clients already\n" + BG,
     "sorry, too many clients already", "max_connections"),
    ("too many connections", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1040, 'Too many connections')" + BG, "(1040) Too many connections",
     "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"),
    ("too many connections", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1226, \"User 'mlflow' has exceeded the 'max_user_connections' resource "
     '(current value: 1)")' + BG, "max_user_connections", "--workers"),
    ("connection lost", "PostgreSQL",
     "(psycopg2.OperationalError) server closed the connection unexpectedly\n\tThis probably means the server "
     "terminated abnormally\n" + BG, "server closed the connection unexpectedly", "NullPool"),
    ("connection lost", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (2013, 'Lost connection to MySQL server during query')" + BG,
     "(2013) Lost connection", "wait_timeout"),
    # --- privileges -------------------------------------------------------------------- collected
    ("privilege", "PostgreSQL",
     "(psycopg2.errors.InsufficientPrivilege) permission denied for table experiments\n\n"
     "[SQL: INSERT INTO experiments (name) VALUES (%(name)s)]\n[parameters: {'name': 'secret-name'}]" + BG,
     "permission denied for table experiments", "GRANT ALL ON ALL TABLES IN SCHEMA public"),
    ("privilege", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1142, \"INSERT command denied to user 'mlflow'@'127.0.0.1' for table "
     '`mlflow`.`experiments`")\n[SQL: INSERT INTO experiments (name) VALUES (%(name)s)]' + BG,
     "(1142) INSERT command denied to user 'mlflow'", "GRANT ALL PRIVILEGES ON <db>.*"),
    ("privilege", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1044, \"Access denied for user 'mlflow'@'%' to database 'test'\")" + BG,
     "(1044) Access denied for user 'mlflow'@'%' to database 'test'", "GRANT ALL PRIVILEGES"),
    # --- text it cannot store ---------------------------------------------------------- collected
    ("character set", "PostgreSQL",
     '(psycopg2.errors.UntranslatableCharacter) character with byte sequence 0xe4 0xb8 0xad in encoding "UTF8" '
     'has no equivalent in encoding "LATIN1"\n\n[SQL: insert into t values (1, \'中文\', null)]' + BG,
     'has no equivalent in encoding "LATIN1"', "ENCODING 'UTF8' TEMPLATE template0"),
    ("character set", "MySQL or MariaDB",
     "(pymysql.err.DataError) (1366, \"Incorrect string value: '\\\\xE4\\\\xB8\\\\xAD\\\\xE6\\\\x96\\\\x87' for "
     "column `mlflow`.`experiments`.`name` at row 1\")\n[SQL: INSERT INTO experiments]" + BG,
     "(1366) Incorrect string value: '\\xE4\\xB8\\xAD", "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
    ("character set", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1267, \"Illegal mix of collations (latin1_swedish_ci,IMPLICIT) and "
     "(utf8mb4_general_ci,COERCIBLE) for operation '='\")" + BG, "(1267) Illegal mix of collations",
     "CONVERT TO CHARACTER SET utf8mb4"),
    ("character set", "",  # psycopg2 on a LATIN1 database encodes on the client side: MLflow's INTERNAL_ERROR
     "INTERNAL_ERROR: 'latin-1' codec can't encode characters in position 0-5: ordinal not in range(256)",
     "'latin-1' codec can't encode", "ENCODING 'UTF8'"),
    ("value too long", "PostgreSQL",
     "(psycopg2.errors.StringDataRightTruncation) value too long for type character varying(250)\n\n[SQL: x]" + BG,
     "value too long for type character varying(250)", "mlflow db upgrade"),
    ("value too long", "MySQL or MariaDB",
     "(pymysql.err.DataError) (1406, \"Data too long for column 'value' at row 1\")\n[SQL: x]" + BG,
     "(1406) Data too long for column 'value'", "mlflow db upgrade"),
    # --- locks and time-outs ----------------------------------------------------------- collected
    ("locked", "SQLite", "(sqlite3.OperationalError) database is locked\n[SQL: insert into t values (8)]" + BG,
     "database is locked", "--workers 1"),
    ("deadlock", "PostgreSQL",
     "(psycopg2.errors.DeadlockDetected) deadlock detected\nDETAIL:  Process 11084 waits for ShareLock on "
     "transaction 741; blocked by process 11085.\nHINT:  See server log for query details.\n\n[SQL: x]" + BG,
     "deadlock detected", "pg_stat_activity"),
    ("deadlock", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1213, 'Deadlock found when trying to get lock; try restarting "
     "transaction')\n[SQL: x]" + BG, "(1213) Deadlock found", "SHOW ENGINE INNODB STATUS"),
    ("lock timeout", "PostgreSQL",
     "(psycopg2.errors.LockNotAvailable) canceling statement due to lock timeout\nLINE 1: select * from t\n"
     "                      ^\n\n[SQL: select * from t]" + BG, "canceling statement due to lock timeout", "pg_locks"),
    ("lock timeout", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1205, 'Lock wait timeout exceeded; try restarting transaction')" + BG,
     "(1205) Lock wait timeout exceeded", "innodb_lock_wait_timeout"),
    ("statement timeout", "PostgreSQL",
     "(psycopg2.errors.QueryCanceled) canceling statement due to statement timeout\n\n[SQL: x]" + BG,
     "canceling statement due to statement timeout", "statement_timeout = '5min'"),
    ("statement timeout", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1969, 'Query execution was interrupted (max_statement_time exceeded)')"
     + BG, "(1969) Query execution was interrupted", "max_statement_time"),
    ("statement timeout", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (3024, 'Query execution was interrupted, maximum statement execution time "
     "exceeded')" + BG, "(3024) Query execution was interrupted", "max_execution_time"),
    # --- disk full (documented texts) -------------------------------------------------------------
    ("disk full", "SQLite", "(sqlite3.OperationalError) database or disk is full\n[SQL: x]" + BG,
     "database or disk is full", "free space on the database's disk"),
    ("disk full", "PostgreSQL",
     '(psycopg2.errors.DiskFull) could not extend file "base/16384/16385": No space left on device\n'
     "HINT:  Check free disk space.\n\n[SQL: x]" + BG, "could not extend file", "free space"),
    ("disk full", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1114, \"The table 'metrics' is full\")\n[SQL: x]" + BG,
     "(1114) The table 'metrics' is full", "free space"),
    # --- read-only --------------------------------------------------------------------- collected
    ("read-only", "SQLite", "(sqlite3.OperationalError) attempt to write a readonly database\n[SQL: x]" + BG,
     "attempt to write a readonly database", "mode=ro"),
    ("read-only", "PostgreSQL",
     "(psycopg2.errors.ReadOnlySqlTransaction) cannot execute INSERT in a read-only transaction\n\n[SQL: x]" + BG,
     "cannot execute INSERT in a read-only transaction", "the primary"),
    ("read-only", "MySQL or MariaDB",
     "(pymysql.err.OperationalError) (1792, 'Cannot execute statement in a READ ONLY transaction')" + BG,
     "(1792) Cannot execute statement in a READ ONLY transaction", "writer endpoint"),
    ("read-only", "MariaDB",  # documented
     "(pymysql.err.OperationalError) (1290, 'The MariaDB server is running with the --read-only option so it "
     "cannot execute this statement')" + BG, "--read-only option", "SET GLOBAL read_only = OFF"),
    # --- schema ------------------------------------------------------------------------ collected
    ("schema", "SQLite", "(sqlite3.OperationalError) no such table: experiment_tags\n[SQL: x]" + BG,
     "no such table: experiment_tags", "mlflow db upgrade"),
    ("schema", "PostgreSQL",
     '(psycopg2.errors.UndefinedColumn) column "storage_location" does not exist\nLINE 1: select '
     "storage_location\n\n[SQL: x]" + BG, 'column "storage_location" does not exist', "mlflow db upgrade"),
    ("schema", "MySQL or MariaDB",
     "(pymysql.err.ProgrammingError) (1146, \"Table 'mlflow.logged_models' doesn't exist\")\n[SQL: x]" + BG,
     "(1146) Table 'mlflow.logged_models' doesn't exist", "mlflow db upgrade"),
    ("schema", "",  # MLflow's own words, at the server's start
     "Detected out-of-date database schema (found version 1b5f0d9ad7c1, but expected 6953534de441). Take a "
     "backup of your database, then run 'mlflow db upgrade <database_uri>'",
     "Detected out-of-date database schema", "same MLflow version"),
    ("schema-ahead", "",  # a 3.1.4 server on a database that 3.17.2's `mlflow db upgrade` migrated
     "alembic.util.exc.CommandError: Can't locate revision identified by '1b5f0d9ad7c1'",
     "Can't locate revision identified by '1b5f0d9ad7c1'", "restore the backup taken before the upgrade"),
    ("corrupt", "SQLite", "(sqlite3.DatabaseError) file is not a database\n[SQL: select * from t]" + BG,
     "file is not a database", ".recover"),
    # --- constraints ------------------------------------------------------------------- collected
    ("constraint", "PostgreSQL",
     '(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "experiments_pkey"\n'
     "DETAIL:  Key (experiment_id)=(3) already exists.\n\n[SQL: x]" + BG,
     'duplicate key value violates unique constraint "experiments_pkey"', "mlflow gc"),
    ("constraint", "MySQL or MariaDB",
     "(pymysql.err.IntegrityError) (1062, \"Duplicate entry '3' for key 'PRIMARY'\")\n[SQL: x]" + BG,
     "(1062) Duplicate entry '3' for key 'PRIMARY'", "mlflow gc"),
    ("constraint", "MySQL or MariaDB",
     "(pymysql.err.IntegrityError) (1452, 'Cannot add or update a child row: a foreign key constraint fails "
     "(`mlflow`.`t`, CONSTRAINT `t_ibfk_1` FOREIGN KEY (`fk`) REFERENCES `u` (`id`))')\n[SQL: x]" + BG,
     "(1452) Cannot add or update a child row", "run again"),
    ("constraint", "SQLite", "(sqlite3.IntegrityError) UNIQUE constraint failed: experiments.name\n[SQL: x]" + BG,
     "UNIQUE constraint failed: experiments.name", "mlflow gc"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "database", "text", "quoted", "fix"), CASES)
def test_a_database_error_is_explained_by_class_database_and_fix(kind, database, text, quoted, fix):
    found = explain_database_error(text)
    assert found is not None, text
    assert (found.kind, found.database) == (kind, database)
    assert f"{database or 'The server'} said: " in found.message
    assert quoted in found.message
    assert fix in found.tip
    # Shortened: the statement, its parameters and SQLAlchemy's link are never quoted.
    for tail in ("[SQL:", "[parameters:", "secret-name", "sqlalche.me", "DETAIL:", "LINE 1"):
        assert tail not in found.message


@pytest.mark.parametrize(
    "text",
    [
        "HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded (Caused by NewConnectionError: "
        "[Errno 111] Connection refused)",
        "[Errno 13] Permission denied: '/srv/mlartifacts/1'",
        "[Errno 28] No space left on device",
        "NoSuchBucket: The specified bucket does not exist",
        "Run 'abc' not found (error 1062 in the client's own words)",
    ],
)
def test_a_message_without_a_database_in_it_is_not_taken_for_a_database_error(text):
    assert explain_database_error(text) is None


def test_a_credential_in_the_database_words_is_never_quoted():
    found = explain_database_error(
        "(psycopg2.OperationalError) could not connect to server: Connection refused "
        "(dsn: postgresql://mlflow:Sup3rSecret@db:5432/mlflow password=Sup3rSecret)"
    )
    assert found is not None
    assert "Sup3rSecret" not in found.message


def test_the_database_table_is_tried_before_the_storage_rows_on_every_path():
    text = "(psycopg2.errors.InsufficientPrivilege) permission denied for table runs\n\n[SQL: INSERT INTO runs]"
    body = '{"error_code": "BAD_REQUEST", "message": ' + json.dumps(text) + "}"
    for failure in (
        known_server_error(text),
        explain(RestException({"error_code": "BAD_REQUEST", "message": text})),
        explain(MlflowException(f"API request to endpoint failed with error code 400 != 200. Response body: '{body}'")),
    ):
        assert "PostgreSQL database refused the account the MLflow server logs in with a privilege" in failure.message
        assert "GRANT ALL ON ALL TABLES" in failure.tip
        assert "artifact store" not in str(failure)
        assert "[SQL:" not in str(failure)


# --- the sentence, whole -----------------------------------------------------------------------


def test_a_database_error_is_one_sentence_naming_the_store_the_cause_and_the_databases_words():
    found = explain_database_error(
        "(sqlite3.OperationalError) database is locked\n[SQL: insert into t values (8)]" + BG
    )
    assert found.message == (
        "The tracking store's SQLite database is locked by another writer: SQLite lets one process write at a "
        "time, and the server waited 20 s. SQLite said: database is locked"
    )
    assert found.tip == (
        "SQLite is for one server process: use --workers 1, no other program writing the file, and the file on a "
        "local disk (never NFS or SMB); for concurrent use, move to PostgreSQL or MySQL."
    )


def test_mlflows_own_schema_message_in_a_log_line_is_quoted_without_the_logs_prefix():
    found = explain_database_error(
        "2026/01/01 10:00:00 ERROR mlflow.cli: Detected out-of-date database schema (found version a, but "
        "expected b). Take a backup"
    )
    assert (found.kind, found.database) == ("schema", "")
    assert found.message == (
        "The tracking store's database does not have the schema this MLflow server expects (a table or column is "
        "missing). The server said: Detected out-of-date database schema (found version a, but expected b). Take "
        "a backup"
    )
    assert found.tip.startswith("run `mlflow db upgrade <backend-store-uri>` with the server's MLflow version")


@pytest.mark.parametrize(
    ("text", "database"),
    [
        ("(sqlite3.DatabaseError) x", "SQLite"),
        ("(psycopg2.errors.Foo) x", "PostgreSQL"),
        ("FATAL:  role", "PostgreSQL"),
        ("(pymysql.err.X) y", "MySQL or MariaDB"),
        ("The MariaDB server", "MariaDB"),
        ('(1045, "x")', "MySQL or MariaDB"),
        ("nothing", None),
    ],
)
def test_the_database_is_known_by_its_driver_or_its_own_words(text, database):
    assert database_of(text) == database


def test_the_databases_words_are_its_first_line_without_wrapping_statement_or_credentials():
    assert database_words("(sqlite3.OperationalError) database is locked\n[SQL: insert]" + BG) == "database is locked"
    assert (
        database_words(
            "(pymysql.err.OperationalError) (1045, \"Access denied for user 'x'@'h' (using password: YES)\")"
        )
        == "(1045) Access denied for user 'x'@'h' (using password: YES)"
    )
    dsn = "(dsn: postgresql://u:Secret@db/m password=Secret)"
    assert database_words(f"BAD_REQUEST: (psycopg2.OperationalError) could not connect {dsn}") == (
        "could not connect (dsn: postgresql://***@db/m password=***"
    )
    assert database_words("x" * 400) == "x" * 300 + "…"
