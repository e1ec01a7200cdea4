"""The load probe's errors by kind, and what they mean."""

from __future__ import annotations

from collections import Counter


def error_kind(exc: BaseException) -> str:
    """An error as a kind to count: the HTTP status, MLflow's error code, or the connection's fate."""
    from mlflowcheck.explain.errors import status_in

    text = str(getattr(exc, "message", exc))
    code = getattr(exc, "error_code", None)
    status = status_in(text)
    if "database is locked" in text:
        return "database is locked"
    if "reset by peer" in text or "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection reset"
    if "Connection refused" in text or "Failed to establish" in text:
        return "connection refused"
    if status:
        return f"HTTP {status}"
    if code and code != "INTERNAL_ERROR":
        return code
    return type(exc).__name__


def explain_errors(errors: Counter, messages: list[str]) -> str:
    """What the load probe's errors mean and what to do, from their kinds and words."""
    said = " ".join(messages)
    if "database is locked" in errors or "database is locked" in said:
        return (
            "SQLite lets one process write at a time: concurrent clients (or another process holding the database) "
            "wait for its lock and then fail. Move the tracking store to PostgreSQL or MySQL for a team, or run "
            "fewer concurrent writers."
        )
    if "QueuePool limit" in said or "too many connections" in said.lower() or "remaining connection slots" in said:
        return (
            "the server ran out of database connections: raise its pool (MLFLOW_SQLALCHEMYSTORE_POOL_SIZE and "
            "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW) within the database's max_connections, or run fewer workers."
        )
    if errors.get("HTTP 429"):
        return "a proxy or gateway in front of the server rate-limits clients (HTTP 429): raise its limit for MLflow."
    if errors.get("HTTP 502") or errors.get("HTTP 504"):
        return (
            "the reverse proxy in front of the server could not get answers in time (502/504): raise its "
            "proxy_read_timeout and look at the server's load."
        )
    if errors.get("connection reset") or errors.get("connection refused"):
        return (
            "the server dropped or refused connections under load: it ran out of workers or connections; "
            "raise `mlflow server --workers` (and the uvicorn/gunicorn backlog), or look at its log."
        )
    return "look at the server's log for the failed requests."
