"""Credentials and redaction (core.secrets): what is taken out of a URI, what is masked, and
where credentials may be sent."""

from __future__ import annotations

import os

import pytest

from mlflowcheck.core import secrets
from mlflowcheck.core.secrets import (
    Credentials,
    credentials_allowed,
    env_credentials,
    mask_query,
    origin,
    redact_backend_uri,
    scrub,
    secret_values,
    split_credentials,
    use_credentials,
)

# --- credentials in the tracking URI ---------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "shown", "user", "password"),
    [
        ("http://alice:SECRET@host:5000", "http://host:5000", "alice", "SECRET"),
        ("http://alice:p@ss@host:5000/mlflow", "http://host:5000/mlflow", "alice", "p@ss"),
        ("http://alice:pa/ss@host:5000", "http://host:5000", "alice", "pa/ss"),
        ("http://alice:a?b#c:d@host:5000", "http://host:5000", "alice", "a?b#c:d"),
        ("http://alice:p%40ss%2F@host", "http://host", "alice", "p@ss/"),
        ("https://token@host/#/experiments/1", "https://host/#/experiments/1", "token", ""),
        ("alice:secret@127.0.0.1:5000", "127.0.0.1:5000", "alice", "secret"),
    ],
)
def test_user_info_is_taken_out_of_the_uri_as_credentials(uri, shown, user, password):
    clean, creds = split_credentials(uri)
    assert clean == shown
    assert creds == Credentials(user, password)


def test_uri_without_user_info_is_unchanged_and_has_no_credentials():
    assert split_credentials("http://127.0.0.1:3111/#/experiments/1") == ("http://127.0.0.1:3111/#/experiments/1", None)


@pytest.mark.parametrize(
    ("uri", "shown", "creds"),
    [
        ("http://a@b@h/x", "http://h/x", Credentials("a@b", "")),
        ("user@host", "host", Credentials("user", "")),
        ("http://%61lice:p%3Ass@h", "http://h", Credentials("alice", "p:ss")),
        # An @ in a UI fragment is the page's, not user info: the user info ends before "#/".
        ("http://alice:pw@h/#/a@b", "http://h/#/a@b", Credentials("alice", "pw")),
        # Query values are masked in the same pass.
        ("http://u:p@h/?password=p", "http://h/?password=***", Credentials("u", "p")),
        ("http://h/?token=abc&x=1", "http://h/?token=***&x=1", None),
    ],
)
def test_user_info_runs_to_the_last_at_sign_before_a_ui_fragment(uri, shown, creds):
    assert split_credentials(uri) == (shown, creds)


def test_any_garbage_gets_an_answer_and_none_of_its_user_info_is_shown():
    # Not a scheme ("1http"), so the user info starts at the beginning: all of it goes.
    shown, creds = split_credentials("1http://u:p@h")
    assert shown == "h"
    assert creds == Credentials("1http", "//u:p")


# --- secret query values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("h/?password=SECRET", "h/?password=***"),
        ("h/?a=1&access_token=SECRET#x", "h/?a=1&access_token=***#x"),
        ("h/?X-Amz-Signature=SECRET&b=2", "h/?X-Amz-Signature=***&b=2"),
        ("h/?a=1", "h/?a=1"),
    ],
)
def test_secret_query_values_are_masked(text, masked):
    assert mask_query(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("h?x=1&Session=abc", "h?x=1&Session=***"),
        ("h?A=1&a=2&Authorization=zz", "h?A=1&a=2&Authorization=***"),
        ("h?apikey=1&credential=2&sig=3", "h?apikey=***&credential=***&sig=***"),
        ("h?password=", "h?password=***"),  # even an empty one: it says a password is expected there
        ("h?q=a+b&token=t", "h?q=a+b&token=***"),
        # Only the query: a "?token=" inside the fragment is the page's state, left alone.
        ("h?apikey=1#frag?token=2", "h?apikey=***#frag?token=2"),
        ("no query at all", "no query at all"),
    ],
)
def test_every_key_that_names_a_secret_is_masked_whatever_its_case(text, masked):
    assert mask_query(text) == masked


# --- backend-store URIs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql+psycopg2://mlflow:p@ss/w0rd@db:5432/mlflow", "postgresql+psycopg2://mlflow:***@db:5432/mlflow"),
        (
            "mysql+pymysql://root:SECRET@127.0.0.1/m?charset=utf8mb4",
            "mysql+pymysql://root:***@127.0.0.1/m?charset=utf8mb4",
        ),
        ("mysql+pymysql://root@h/m?password=SECRET", "mysql+pymysql://root@h/m?password=***"),
        ("sqlite:///my.db", "sqlite:///my.db"),
    ],
)
def test_backend_store_uris_are_shown_by_sqlalchemy_with_the_password_hidden(uri, shown):
    assert redact_backend_uri(uri) == shown


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://mlflow@db/m", "postgresql://mlflow@db/m"),
        ("postgresql://mlflow:@db/m", "postgresql://mlflow@db/m"),  # an empty password is no password
        ("mysql://u:p%40x@h/m", "mysql://u:***@h/m"),
        # SQLAlchemy orders the query; the secret one is masked wherever it lands.
        (
            "postgresql://u:pw@db/m?sslpassword=kk&sslmode=require",
            "postgresql://u:***@db/m?sslmode=require&sslpassword=***",
        ),
        ("file:///x", "file:///x"),
        ("/srv/my.db", "/srv/my.db"),  # not a database URL: shown as it is
        ("not a url", "not a url"),
    ],
)
def test_a_backend_uri_keeps_everything_but_its_secrets(uri, shown):
    assert redact_backend_uri(uri) == shown


# --- scrubbing what the suite writes -----------------------------------------------------------


def test_scrub_masks_every_secret_the_process_holds(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-canary-1")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-canary-2")
    assert scrub("a pw-canary-1 b tok-canary-2") == "a *** b ***"


def test_a_secret_shorter_than_four_characters_is_not_scrubbed_out_of_every_word(monkeypatch):
    # A three-letter password would turn every "the" of a message into ***.
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "the")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "toke")
    assert secret_values() == ["toke"]
    assert scrub("the toke") == "the ***"


def test_the_user_name_is_not_a_secret(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice-the-user")
    assert secret_values() == []
    assert scrub("as alice-the-user") == "as alice-the-user"


# --- what the client sends, and where ----------------------------------------------------------


def test_the_client_sends_basic_auth_when_user_and_password_are_set_else_the_token(monkeypatch):
    assert env_credentials() is None
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-1234")
    assert env_credentials() == "tok-1234"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    assert env_credentials() == "tok-1234", "a user name without a password is not basic auth"
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-1234")
    assert env_credentials() == Credentials("alice", "pw-1234")


@pytest.mark.parametrize(
    ("url", "seen"),
    [
        ("http://h", "http://h:80"),
        ("https://h", "https://h:443"),
        ("http://h:80", "http://h:80"),
        ("HTTP://H:8080/x", "http://h:8080"),
        ("http://[::1]:5/", "http://[::1]:5"),
        ("http://u:p@h:1/x", "http://h:1"),
        ("ftp://h", None),
        ("http://", None),
        ("http://h:99999", None),
        ("h:1", None),
    ],
)
def test_the_origin_is_scheme_host_and_port_with_the_default_port_written_out(url, seen):
    assert origin(url) == seen


def test_credentials_go_only_to_the_exact_origin_of_the_tracking_uri(monkeypatch):
    assert not credentials_allowed("http://h:5000/api"), "before any tracking URI is known, nowhere"
    use_credentials(Credentials("alice", "pw-9999"), "http://alice:pw-9999@h:5000/mlflow")
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "pw-9999"
    assert credentials_allowed("http://h:5000/api/2.0/mlflow/experiments/search")
    assert credentials_allowed("http://H:5000/other")
    assert not credentials_allowed("https://h:5000/api"), "the other scheme: not in clear text"
    assert not credentials_allowed("http://h:5001/api")
    assert not credentials_allowed("http://h/api")
    assert not credentials_allowed("http://attacker.invalid:5000/")


def test_credentials_from_the_uri_win_over_those_in_the_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "old")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "old-password")
    use_credentials(Credentials("new", "new-password"), "https://h")
    assert env_credentials() == Credentials("new", "new-password")


def test_a_uri_without_credentials_leaves_the_environments_credentials_bound_to_its_origin(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "env-user")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-password")
    use_credentials(None, "https://h")
    assert env_credentials() == Credentials("env-user", "env-password")
    assert secrets._credential_origin == "https://h:443"
    assert credentials_allowed("https://h:443/x")
    assert not credentials_allowed("http://h/x")
