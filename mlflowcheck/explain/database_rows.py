"""The table of database errors: each row a database's own error (by its code or words), the
cause in words a user understands, and the fix. Matched by explain.databases."""

from __future__ import annotations

from typing import NamedTuple

SQLITE, POSTGRESQL, MYSQL = "SQLite", "PostgreSQL", "MySQL or MariaDB"


#: Which database wrote an error: the driver SQLAlchemy names, else words only it uses.
DATABASE_MARKERS = (
    (SQLITE, r"(?i)\(sqlite3\.\w+\)|\bsqlite\b"),
    (POSTGRESQL, r"\(psycopg2?[.\w]*\)|\bpsycopg|\bpostgres|\bFATAL: |\bSQLSTATE\b|\bpg_hba\.conf\b"),
    (MYSQL, r"\((?:pymysql|MySQLdb|mysql\.connector|mariadb)[.\w]*\)|\bMySQL\b|\bMariaDB\b|\(\d{4}, ['\"]"),
)


POOL = (
    "lower what the MLflow server opens: each worker process keeps a pool of MLFLOW_SQLALCHEMYSTORE_POOL_SIZE "
    "(default 5) + MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW (default 10) connections, so workers (--workers) × replicas "
    "× 15 must stay below the limit (MLFLOW_SQLALCHEMYSTORE_POOLCLASS=NullPool opens one per request)"
)


CHARSET_MYSQL = (
    "MLflow needs a database whose tables store 4-byte UTF-8: `ALTER DATABASE <db> CHARACTER SET utf8mb4 COLLATE "
    "utf8mb4_bin;` changes only the default for new tables, so also convert MLflow's tables (`ALTER TABLE <t> "
    "CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;` for each), or create a new utf8mb4 database and run "
    "the server on it; add ?charset=utf8mb4 to the --backend-store-uri"
)


CHARSET_POSTGRESQL = (
    "MLflow needs a UTF8 database (`SHOW server_encoding;` shows this one's): create one with `CREATE DATABASE "
    "<db> ENCODING 'UTF8' TEMPLATE template0;`, move the data over (pg_dump, then psql into the new one) and point "
    "the server's --backend-store-uri at it"
)


UPGRADE = (
    "run `mlflow db upgrade <backend-store-uri>` with the server's MLflow version (back up the database first), "
    "then restart the server; several servers on one database must all run the same MLflow version"
)


def code(*numbers: int) -> str:
    """MySQL/MariaDB error numbers as the drivers write them: PyMySQL and mysqlclient ``(1045, "...")``
    (shown as ``(1045) ...``), MySQL Connector ``1045 (28000): ...``."""
    alternatives = "|".join(map(str, numbers))
    return rf"\((?:{alternatives})\)|\b(?:{alternatives}) \(\w{{5}}\):"


class Row(NamedTuple):
    """One kind of database error: the pattern of the database's words, the cause, the fix.

    ``database`` is the database the pattern alone belongs to (None: any, named from the
    message's driver)."""

    kind: str
    pattern: str
    cause: str
    tip: str
    database: str | None = None


#: The classes of database errors, most specific first.
ROWS = (
    # --- cannot connect ----------------------------------------------------------------------
    Row(
        "authentication",
        r"password authentication failed for user|role \"[^\"]*\" does not exist|no pg_hba\.conf entry|"
        r"(?:Ident|peer) authentication failed",
        "refused the MLflow server's login (wrong user or password, or no access from the server's host)",
        "fix the user and password in the server's --backend-store-uri (postgresql://USER:PASSWORD@HOST:PORT/DB; "
        "percent-encode @ : / % in a password), create the role, or add a pg_hba.conf line for the server's host; "
        "then restart the server.",
        POSTGRESQL,
    ),
    Row(
        "authentication",
        code(1045) + r" ?Access denied for user",
        "refused the MLflow server's login (wrong user or password, or the user may not connect from the "
        "server's host)",
        "fix the user and password in the server's --backend-store-uri (mysql+pymysql://USER:PASSWORD@HOST:PORT/DB; "
        "percent-encode @ : / % in a password), or create the account for the server's host "
        "(`CREATE USER 'mlflow'@'%' IDENTIFIED BY '...'; GRANT ALL ON <db>.* TO 'mlflow'@'%';`); then restart the "
        "server.",
        MYSQL,
    ),
    Row(
        "too many connections",
        r"too many clients already|too many connections for (?:role|database)|remaining connection slots are "
        r"reserved|Too many connections|max_user_connections",
        "has no connection left for the MLflow server (its connection limit is reached)",
        f"raise the database's limit (PostgreSQL: max_connections, or the role's and database's CONNECTION LIMIT; "
        f"MySQL/MariaDB: max_connections, max_user_connections), or {POOL}.",
    ),
    Row(
        "no such database",
        r"database \"[^\"]*\" does not exist|Unknown database '",
        "does not exist: the --backend-store-uri names a database that is not there",
        "create it, e.g. PostgreSQL `CREATE DATABASE mlflow ENCODING 'UTF8' TEMPLATE template0;`, MySQL/MariaDB "
        "`CREATE DATABASE mlflow CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;` (MLflow creates its tables itself), or "
        "fix the database name in the server's --backend-store-uri; then restart the server.",
    ),
    Row(
        "no such database",
        r"unable to open database file",
        "file cannot be opened (its directory does not exist, or the server may not create files there)",
        "give the server's --backend-store-uri a path in an existing directory the server can write "
        "(sqlite:///relative/my.db, sqlite:////absolute/my.db: four slashes), then restart the server.",
        SQLITE,
    ),
    Row(
        "unreachable",
        r"connection to server .{0,80}failed: (?:Connection refused|timeout expired|No route to host)|"
        r"could not connect to server|could not translate host name|Can't connect to (?:MySQL|MariaDB) server|"
        r"Unknown (?:MySQL|MariaDB) server host",
        "server cannot be reached from the MLflow server (not running, or the wrong host or port)",
        "start the database server, or fix the host and port in the server's --backend-store-uri; the database "
        "must listen on an address the MLflow server reaches (PostgreSQL: listen_addresses; MySQL/MariaDB: "
        "bind-address) with no firewall in between.",
    ),
    Row(
        "connection lost",
        r"server closed the connection unexpectedly|terminating connection due to|SSL connection has been closed|"
        r"Lost connection to (?:MySQL|MariaDB) server|(?:MySQL|MariaDB) server has gone away",
        "server dropped the MLflow server's connection (restarted, or closed idle connections)",
        "if the database restarted, run again; if it closes idle connections (wait_timeout, a proxy's or "
        "firewall's idle timeout), keep MLflow's pool below that age or use MLFLOW_SQLALCHEMYSTORE_POOLCLASS="
        "NullPool; the database's log says why it closed.",
    ),
    # --- privileges --------------------------------------------------------------------------
    Row(
        "privilege",
        r"permission denied for (?:table|relation|sequence|schema|database|function)|must be owner of",
        "refused the account the MLflow server logs in with a privilege it needs",
        "grant the server's database user what MLflow needs, e.g. `GRANT ALL ON ALL TABLES IN SCHEMA public TO "
        "mlflow; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO mlflow;` (and ownership of the tables for `mlflow db "
        "upgrade`), or run the server as the database's owner.",
        POSTGRESQL,
    ),
    Row(
        "privilege",
        r"command denied to user|" + code(1044) + r" ?Access denied for user|Access denied; you need",
        "refused the account the MLflow server logs in with a privilege it needs",
        "grant the server's database user what MLflow needs: `GRANT ALL PRIVILEGES ON <db>.* TO 'mlflow'@'%';` "
        "(SELECT, INSERT, UPDATE, DELETE, and CREATE, ALTER, INDEX, DROP, REFERENCES for the migrations), then run "
        "again.",
        MYSQL,
    ),
    # --- read-only ---------------------------------------------------------------------------
    Row(
        "read-only",
        r"readonly database",
        "is read-only: the server cannot write to it",
        "make the database file and its directory writable by the server process, drop mode=ro from the "
        "--backend-store-uri, or move it off a read-only mount; then restart `mlflow server`.",
        SQLITE,
    ),
    Row(
        "read-only",
        r"read-only transaction|cannot execute \w+ during recovery|default_transaction_read_only",
        "is read-only: the server cannot write to it (a standby or read replica, or default_transaction_read_only "
        "is on)",
        "point the server's --backend-store-uri at the primary (the writer), or turn read-only off "
        "(`ALTER DATABASE <db> SET default_transaction_read_only = off;`), then restart `mlflow server`.",
        POSTGRESQL,
    ),
    Row(
        "read-only",
        r"--read-only option|READ ONLY transaction|Running in read-only mode|" + code(1290, 1792, 1836),
        "is read-only: the server cannot write to it (read_only or super_read_only is on, or this is a replica)",
        "point the server's --backend-store-uri at the primary (e.g. a cluster's writer endpoint, not its reader), "
        "or turn read-only off (`SET GLOBAL read_only = OFF;`), then restart `mlflow server`.",
        MYSQL,
    ),
    # --- text it cannot store ----------------------------------------------------------------
    Row(
        "character set",
        r"has no equivalent in encoding|invalid byte sequence for encoding",
        "cannot store the text: its encoding is not UTF8 (names in Chinese, accents or emoji fail)",
        CHARSET_POSTGRESQL + ".",
        POSTGRESQL,
    ),
    Row(
        "character set",
        r"Incorrect string value|Illegal mix of collations|" + code(1366, 1267, 1271, 3988),
        "cannot store the text: the table's character set is not utf8mb4 (names in Chinese, accents or emoji fail)",
        CHARSET_MYSQL + ".",
        MYSQL,
    ),
    Row(
        "character set",
        r"'latin-1' codec can't encode|'ascii' codec can't encode",
        "cannot take the text: the server's connection to it encodes text as latin-1 or ASCII, not UTF-8 (a "
        "PostgreSQL database in LATIN1 or SQL_ASCII, or a MySQL/MariaDB URI with a latin1 charset)",
        f"PostgreSQL: {CHARSET_POSTGRESQL}; MySQL/MariaDB: {CHARSET_MYSQL}.",
    ),
    Row(
        "value too long",
        r"value too long for type|Data too long for column|" + code(1406),
        "refused a value longer than its column allows",
        "if the value is within MLflow's limits (params 6000 characters, tags 8000), the database's schema is older "
        f"than the server: {UPGRADE}; otherwise log a shorter value.",
    ),
    # --- locks and time-outs ------------------------------------------------------------------
    Row(
        "locked",
        r"database is locked|database table is locked",
        "is locked by another writer: SQLite lets one process write at a time, and the server waited 20 s",
        "SQLite is for one server process: use --workers 1, no other program writing the file, and the file on a "
        "local disk (never NFS or SMB); for concurrent use, move to PostgreSQL or MySQL.",
        SQLITE,
    ),
    Row(
        "deadlock",
        r"deadlock detected|Deadlock found|" + code(1213),
        "detected a deadlock between concurrent writes and cancelled one of them",
        "run again (MLflow retries some writes itself); if it recurs, find the transactions that collide (PostgreSQL: "
        "pg_stat_activity and the database's log; MySQL/MariaDB: SHOW ENGINE INNODB STATUS).",
    ),
    Row(
        "lock timeout",
        r"lock timeout|Lock wait timeout exceeded|" + code(1205),
        "gave up waiting for a lock another transaction holds",
        "find and end the long transaction that holds it (PostgreSQL: pg_stat_activity, pg_locks; MySQL/MariaDB: "
        "SHOW PROCESSLIST, information_schema.innodb_trx), or raise lock_timeout / innodb_lock_wait_timeout for "
        "the server's user.",
    ),
    Row(
        "statement timeout",
        r"statement timeout|maximum statement execution time exceeded|max_statement_time exceeded|" + code(3024, 1969),
        "cancelled a statement that ran longer than its time limit",
        "raise the limit for the server's user (PostgreSQL: `ALTER ROLE mlflow SET statement_timeout = '5min';` "
        "MySQL: max_execution_time; MariaDB: max_statement_time), or find why the database is slow (its load, "
        "missing indexes from a schema that needs `mlflow db upgrade`).",
    ),
    # --- disk ----------------------------------------------------------------------------------
    Row(
        "disk full",
        r"database or disk is full|could not extend file|No space left on device|The table .{1,200} is full|"
        r"Disk full|Errcode: 28|" + code(1114, 1021),
        "has no space left: its disk (or tablespace, or quota) is full",
        "free space on the database's disk (or grow its volume, or raise its quota), then run again.",
    ),
    # --- schema --------------------------------------------------------------------------------
    Row(
        "schema-ahead",  # https://github.com/mlflow/mlflow/issues/16517
        r"Can't locate revision identified by",
        "was migrated by a newer MLflow than this server: its schema revision is one this version does not know",
        "run the server with the MLflow version that migrated it (or a newer one); to go back to this version, "
        "restore the backup taken before the upgrade: `mlflow db upgrade` only goes forward.",
    ),
    Row(
        "schema",
        r"Detected out-of-date database schema|Can't locate revision|\balembic\b|no such (?:table|column)|"
        r"relation \"[^\"]*\" does not exist|column \"?[\w.]+\"? does not exist|Table '[^']*' doesn't exist|"
        r"Unknown column|" + code(1146, 1054),
        "does not have the schema this MLflow server expects (a table or column is missing)",
        UPGRADE + ".",
    ),
    Row(
        "corrupt",
        r"file is not a database|database disk image is malformed",
        "file is not a usable SQLite database (corrupt, or another kind of file)",
        "restore it from a backup (or try `sqlite3 my.db .recover | sqlite3 fixed.db`), or point the server at a "
        "new file: MLflow creates a fresh database there.",
        SQLITE,
    ),
    # --- constraints ---------------------------------------------------------------------------
    Row(
        "constraint",
        r"violates (?:unique|foreign key|not-null|check) constraint|duplicate key value|Duplicate entry|"
        r"foreign key constraint fails|cannot be null|(?:UNIQUE|FOREIGN KEY|NOT NULL|CHECK) constraint failed|"
        + code(1062, 1451, 1452, 1048),
        "refused a write that breaks one of its constraints (a duplicate key, or a row that refers to a missing one)",
        "a name may be taken by a deleted experiment or model still in the database (`mlflow gc --backend-store-uri "
        "...` purges deleted ones); a row may have been removed by hand; two clients may have written the same thing "
        "at once (run again); if none fits, the schema may be out of date: `mlflow db upgrade <backend-store-uri>`.",
    ),
)
