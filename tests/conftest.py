"""Fixtures: real mlflow servers on free ports in temporary directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflowcheck.runtime.server import LocalServer
from tests.databases import BACKENDS, database_or_skip
from tests.support import ADMIN_PASSWORD, start_server

UNIT = Path(__file__).resolve().parent / "unit"


def pytest_collection_modifyitems(items):
    # The two layers by where a test lives, so either can be selected: -m unit, -m integration.
    for item in items:
        item.add_marker("unit" if UNIT in item.path.parents else "integration")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One healthy light server for the whole session (SQLite, proxied artifacts)."""
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory):
    """One basic-auth server for the session: user admin, password support.ADMIN_PASSWORD."""
    srv = start_server(
        tmp_path_factory.mktemp("auth"),
        extra_args=["--app-name", "basic-auth"],
        env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-key"},
    )
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """Start a server of your own (stopped after the test): fresh_server(**LocalServer args)."""
    started: list[LocalServer] = []

    def start(**kwargs) -> LocalServer:
        srv = start_server(tmp_path / f"server{len(started)}", **kwargs)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path):
    """A throwaway database on each backend in turn (SQLite, PostgreSQL, MariaDB)."""
    with database_or_skip(request.param, tmp_path) as db:
        yield db
