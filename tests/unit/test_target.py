"""The tracking URI, parsed (core.target): every shape a user types gets a Target or one fatal
message with a Tip; the user info never reaches either."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.secrets import Credentials, split_credentials
from mlflowcheck.core.target import DEFAULT_TRACKING_URI, Target, parse_target, resolve_tracking_uri

ADDRESS_TIP = "use an address like http://127.0.0.1:3111."
UNPARSABLE_TIP = "use an address like http://127.0.0.1:3111 (a port is 1-65535; an IPv6 host is written [::1])."
NOT_A_SERVER_TIP = (
    "pass the server's address, e.g. --tracking-uri http://127.0.0.1:3111; a database or directory URI "
    "belongs to the server's --backend-store-uri."
)


def refusal(uri: str) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        parse_target(uri)
    assert info.value.fatal, "a bad tracking URI means the suite cannot run: exit code 2"
    return info.value


# --- addresses that parse --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "url", "host", "port"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000", "127.0.0.1", 5000),
        ("https://mlflow.example", "https://mlflow.example", "mlflow.example", 443),
        ("http://mlflow.example", "http://mlflow.example", "mlflow.example", 80),
        ("  http://h:5000/  ", "http://h:5000", "h", 5000),
        ("http://h:5000/mlflow/", "http://h:5000/mlflow", "h", 5000),
        ("HTTP://H.Example:5000", "http://h.example:5000", "h.example", 5000),
        ("http://[::1]:5000", "http://[::1]:5000", "::1", 5000),
        ("http://[fe80::1%25eth0]:5000", "http://[fe80::1%25eth0]:5000", "fe80::1%25eth0", 5000),
    ],
)
def test_a_server_address_is_reduced_to_scheme_host_port_and_prefix(uri, url, host, port):
    target = parse_target(uri)
    assert (target.url, target.host, target.port, target.note) == (url, host, port, "")
    assert target.credentials is None


def test_ui_address_and_ipv6_are_parsed_to_the_servers_root():
    target = parse_target("http://[::1]:5000/#/experiments/3")
    assert (target.url, target.host, target.port) == ("http://[::1]:5000", "::1", 5000)
    assert target.note == "UI address given; testing the server at http://[::1]:5000"


@pytest.mark.parametrize(
    ("uri", "note"),
    [
        ("http://h:5000/?x=1", "UI address given; testing the server at http://h:5000"),
        ("http://h:5000/mlflow/#/experiments/1", "UI address given; testing the server at http://h:5000/mlflow"),
    ],
)
def test_a_query_or_a_fragment_is_dropped_with_a_note_naming_the_server_tested(uri, note):
    target = parse_target(uri)
    assert target.note == note
    assert target.url == note.rsplit(" ", 1)[1]


def test_credentials_in_the_uri_end_up_on_the_target_and_never_in_its_messages():
    target = parse_target("https://bob:s3cr@t@mlflow.example:8443/prefix/")
    assert target.url == "https://mlflow.example:8443/prefix"
    assert target.credentials == Credentials("bob", "s3cr@t")
    with pytest.raises(CheckFailed) as info:
        parse_target("ftp://bob:s3cr@t@host:1")
    assert "s3cr" not in str(info.value)


def test_credentials_repr_never_shows_the_password():
    assert "SECRET" not in repr(Credentials("alice", "SECRET"))
    assert "SECRET" not in repr(parse_target("http://alice:SECRET@h:1"))


def test_two_targets_at_the_same_address_are_equal_whatever_credentials_they_carry():
    # The credentials are not part of the address: comparing targets compares servers.
    assert parse_target("http://a:1@h:1") == parse_target("http://b:2@h:1") == parse_target("http://h:1")


def test_the_ui_link_is_the_servers_root_or_a_fragment_of_it():
    target = Target(url="http://h:1/mlflow", host="h", port=1)
    assert target.ui_link() == "http://h:1/mlflow/"
    assert target.ui_link("/experiments/2") == "http://h:1/mlflow/#/experiments/2"


def test_the_tracking_uri_is_the_option_else_the_environment_else_the_default(monkeypatch):
    assert resolve_tracking_uri(None) == DEFAULT_TRACKING_URI == "http://127.0.0.1:3111"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:1")
    assert resolve_tracking_uri(None) == "http://from-env:1"
    assert resolve_tracking_uri("") == "http://from-env:1"
    assert resolve_tracking_uri("http://given:2") == "http://given:2"


# --- addresses that do not ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "phrase"),
    [
        ("127.0.0.1:5000", "did you mean http://127.0.0.1:5000"),
        ("localhost:5000/mlflow", "did you mean http://localhost:5000/mlflow"),
        ("http://[::1", "cannot be parsed"),
        ("http://127.0.0.1:99999", "cannot be parsed"),
        ("http://127.0.0.1:0", "port 0"),
        ("sqlite:///my.db", "--backend-store-uri"),
        ("ftp://h:1", "reached over http or https"),
        ("http://h:1/api/2.0/mlflow", "API path"),
        ("http://", "no valid host"),
    ],
)
def test_bad_tracking_uris_get_a_fatal_message_with_a_tip(uri, phrase):
    with pytest.raises(CheckFailed) as info:
        parse_target(uri)
    assert info.value.fatal
    assert info.value.tip
    assert phrase in str(info.value)


@pytest.mark.parametrize("uri", ["127.0.0.1:5000", "[::1]:5000", "localhost:5000/mlflow"])
def test_an_address_without_a_scheme_is_answered_with_the_http_address_meant(uri):
    failure = refusal(uri)
    assert failure.message == f"The tracking URI {uri!r} has no scheme."
    assert (
        failure.tip == f"did you mean http://{uri} ? Pass --tracking-uri http://{uri} (or https:// for a TLS server)."
    )


@pytest.mark.parametrize("uri", ["http://[::1", "http://127.0.0.1:99999", "http://[zz]:1", "http://h:x", "http://h:-1"])
def test_a_uri_python_cannot_split_names_the_reason_and_the_shape_of_a_good_one(uri):
    failure = refusal(uri)
    # The reason after the colon is urllib's own words (they vary with the Python version).
    assert failure.message.startswith(f"The tracking URI {uri!r} cannot be parsed: ")
    assert failure.message.endswith(".")
    assert failure.tip == UNPARSABLE_TIP


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("sqlite:///my.db", "sqlite:///my.db"),
        ("postgresql://u:pw-canary@db/m", "postgresql://db/m"),
        ("mysql+pymysql://db/m", "mysql+pymysql://db/m"),
        ("file:///tmp/mlruns", "file:///tmp/mlruns"),
        ("", ""),
    ],
)
def test_a_store_uri_given_as_the_tracking_uri_is_sent_to_the_backend_store_option(uri, shown):
    failure = refusal(uri)
    assert failure.message == (
        f"{shown!r} is not the address of a tracking server: this suite tests a running `mlflow server` over HTTP."
    )
    assert failure.tip == NOT_A_SERVER_TIP


@pytest.mark.parametrize("scheme", ["ftp", "ws"])
def test_a_scheme_other_than_http_or_https_is_named(scheme):
    failure = refusal(f"{scheme}://h:1")
    assert failure.message == (
        f"The tracking URI '{scheme}://h:1' has the scheme {scheme!r}; an MLflow server is reached over http or https."
    )
    assert failure.tip == ADDRESS_TIP


@pytest.mark.parametrize("uri", ["http://", "http://ex ample:1"])
def test_a_uri_without_a_usable_host_says_so(uri):
    failure = refusal(uri)
    assert failure.message == f"The tracking URI {uri!r} has no valid host."
    assert failure.tip == ADDRESS_TIP


def test_port_0_is_refused_with_the_range_of_ports():
    failure = refusal("http://127.0.0.1:0")
    assert failure.message == "The tracking URI 'http://127.0.0.1:0' has port 0."
    assert failure.tip == "use the port the server listens on (1-65535)."


def test_white_space_in_the_path_is_refused():
    failure = refusal("http://h:1/a b")
    assert failure.message == "The tracking URI 'http://h:1/a b' has white space in its path."
    assert failure.tip == "use the server's root address, e.g. http://127.0.0.1:3111."


@pytest.mark.parametrize(
    ("uri", "path", "root"),
    [
        ("http://h:1/api/2.0/mlflow", "/api/2.0/mlflow", "http://h:1"),
        ("http://h:1/ajax-api/2.0/mlflow/runs", "/ajax-api/2.0/mlflow/runs", "http://h:1"),
        ("http://h:1/health", "/health", "http://h:1"),
        ("https://h/version", "/version", "https://h"),
        ("http://[::1]:5/mlflow/api/2.0/x", "/mlflow/api/2.0/x", "http://[::1]:5"),
    ],
)
def test_an_api_path_is_refused_with_the_servers_root_to_use_instead(uri, path, root):
    failure = refusal(uri)
    assert failure.message == f"The tracking URI {uri!r} points at an API path ({path}), not at the server's root."
    assert failure.tip == f"use {root} as the tracking URI."


# --- any string at all -------------------------------------------------------------------------

ARBITRARY = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80)
URLISH = st.builds(
    lambda scheme, user, host, port, rest: f"{scheme}{user}{host}{port}{rest}",
    st.sampled_from(["", "http://", "https://", "HTTP://", "ftp://", "sqlite:///", "://"]),
    st.sampled_from(["", "u@", "u:p@", "u:p@ss/x@", ":@"]),
    st.sampled_from(["127.0.0.1", "[::1]", "[::1", "localhost", "", "ex ample", "[zz]", "h\u202e"]),
    st.sampled_from(["", ":", ":0", ":5000", ":99999", ":-1", ":x"]),
    ARBITRARY,
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(ARBITRARY, URLISH))
def test_any_string_is_a_target_or_a_fatal_message_never_an_exception(uri):
    try:
        target = parse_target(uri)
    except CheckFailed as exc:
        failure = exc
    else:
        failure = None
    if failure is not None:
        assert failure.fatal
        assert failure.tip
        return
    assert target.url.startswith(("http://", "https://"))
    assert 0 < target.port < 65536
    assert "@" not in target.url.split("://", 1)[1].split("/", 1)[0]  # no user info left


@settings(max_examples=300, deadline=None)
@given(st.one_of(ARBITRARY, URLISH), st.text(max_size=20, alphabet="abcXYZ019@/:?#%"))
def test_a_password_in_any_uri_never_survives_parsing(rest, tail):
    password = f"Pw{tail}"
    assume("#/" not in password)  # documented: a UI fragment ends the user info
    assume("@" not in rest.split("#/")[0] and "Pw" not in rest)
    shown, creds = split_credentials(f"http://user:{password}@127.0.0.1:5000/{rest}")
    assert creds is not None
    assert "Pw" not in shown
