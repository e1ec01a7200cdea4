"""The pure functions, tested directly: URI parsing, credentials and redaction, escaping of
server text, the explanation of errors, model digests, the cleanup's gc command."""

from __future__ import annotations

import os
import time

import pytest
import requests
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.options import Options
from mlflowcheck.core.secrets import Credentials, mask_query, redact_backend_uri, scrub, split_credentials
from mlflowcheck.core.target import parse_target
from mlflowcheck.explain.deployment import reverse_proxy
from mlflowcheck.explain.errors import explain
from mlflowcheck.probes.cleanup import gc_command
from mlflowcheck.probes.models import digest_differences
from mlflowcheck.report import console as render
from mlflowcheck.runtime.session import Session

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


def test_credentials_repr_never_shows_the_password():
    assert "SECRET" not in repr(Credentials("alice", "SECRET"))
    assert "SECRET" not in repr(parse_target("http://alice:SECRET@h:1"))


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


def test_scrub_masks_every_secret_the_process_holds(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-canary-1")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-canary-2")
    assert scrub("a pw-canary-1 b tok-canary-2") == "a *** b ***"


# --- parsing the tracking URI ----------------------------------------------------------------


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


def test_ui_address_and_ipv6_are_parsed_to_the_servers_root():
    target = parse_target("http://[::1]:5000/#/experiments/3")
    assert (target.url, target.host, target.port) == ("http://[::1]:5000", "::1", 5000)
    assert target.note == "UI address given; testing the server at http://[::1]:5000"


def test_credentials_in_the_uri_end_up_on_the_target_and_never_in_its_messages():
    target = parse_target("https://bob:s3cr@t@mlflow.example:8443/prefix/")
    assert target.url == "https://mlflow.example:8443/prefix"
    assert target.credentials == Credentials("bob", "s3cr@t")
    with pytest.raises(CheckFailed) as info:
        parse_target("ftp://bob:s3cr@t@host:1")
    assert "s3cr" not in str(info.value)


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


# --- text from the server --------------------------------------------------------------------


def test_terminal_escape_sequences_from_a_server_are_escaped():
    evil = "boom\x1b[2J\x1b]0;pwned\x07\r\u202egnp.exe\x9b"
    shown = render.printable(evil)
    assert shown == "boom\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\u202egnp.exe\\x9b"
    assert render.CONTROL.search(shown) is None


def test_newlines_and_chinese_text_are_kept():
    assert render.printable("本地测试实验_1\nTip: x") == "本地测试实验_1\nTip: x"


# --- explanations ----------------------------------------------------------------------------


def test_permission_denied_is_explained_as_a_permission_not_as_storage(monkeypatch):
    from mlflow.exceptions import RestException

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "irrelevant-pw")
    failure = explain(RestException({"error_code": "PERMISSION_DENIED", "message": "Permission denied"}))
    assert "does not allow the account 'bob'" in failure.message
    assert "HTTP 403" in failure.message
    assert "create_registered_model_permission" in failure.tip
    assert "artifact store" not in str(failure)


def test_server_errors_that_name_a_storage_cause_are_still_explained_as_storage():
    from mlflow.exceptions import MlflowException

    failure = explain(MlflowException("[Errno 13] Permission denied: '/srv/mlartifacts/1'"))
    assert "cannot write to its artifact store" in failure.message


# --- models and cleanup ----------------------------------------------------------------------


def test_digest_differences_name_every_file_with_both_hashes():
    saved = {"MLmodel": "a" * 64, "model.pkl": "b" * 64, "conda.yaml": "c" * 64}
    got = {"MLmodel": "a" * 64, "model.pkl": "d" * 64, "extra.py": "e" * 64}
    assert digest_differences(got, saved) == [
        f"conda.yaml: missing (saved sha256 {'c' * 64})",
        f"extra.py: not saved by the suite (sha256 {'e' * 64})",
        f"model.pkl: sha256 {'d' * 64}, saved {'b' * 64}",
    ]
    assert digest_differences(saved, saved) == []


def test_gc_command_names_the_runs_experiment_and_hides_the_database_password():
    suite = Session(Options("http://h:1", backend_store_uri=redact_backend_uri("postgresql://u:pw-x@db/m")))
    suite.experiment_id = "7"
    assert gc_command(suite) == "mlflow gc --backend-store-uri postgresql://u:***@db/m --experiment-ids 7"
    suite.tmp.rmdir()


# --- the timeline and the helpers' process management ----------------------------------------


def test_the_timeline_starts_when_the_process_started_and_orders_phases_by_start():
    from mlflowcheck.core.timeline import Timeline, process_start

    # This process started before the test ran, and not long before (pytest's start-up).
    assert time.time() - 600 < process_start() < time.time()
    timeline = Timeline(zero=100.0)
    timeline.add("check b", 103.0, 104.5)
    timeline.add("server starts", 100.5, 103.0)
    with timeline.phase("check c"):
        pass
    rows = timeline.relative()
    assert [r["phase"] for r in rows][:2] == ["server starts", "check b"]
    assert rows[0] == {"phase": "server starts", "start": 0.5, "end": 3.0}
    assert rows[-1]["phase"] == "check c"
    assert rows[-1]["end"] >= rows[-1]["start"]


def test_timeline_lines_draw_overlapping_phases_as_overlapping_bars():
    from mlflowcheck.core.timeline import Timeline

    suite = Session(Options("http://h:1"), timeline=Timeline(zero=0.0))
    suite.timeline.add("model worker: imports", 0.0, 5.0)
    suite.timeline.add("server starts", 0.0, 10.0)
    suite.timeline.add("check model", 5.0, 10.0)
    text = render.timeline_lines(suite)
    lines = text.splitlines()
    assert lines[0] == "Timeline (seconds since the process started):"
    bars = {line[69:]: line[17:67] for line in lines[1:]}  # name: bar
    assert bars["server starts"] == "#" * 50
    assert bars["model worker: imports"].rstrip() == "#" * 25  # the first half
    assert bars["check model"].startswith(" " * 24 + "#")  # the second half, overlapping by a column
    assert "  0.00  10.00" in text
    suite.tmp.rmdir()


def test_group_members_are_the_processes_of_one_process_group(tmp_path):
    import signal
    import subprocess
    import sys

    from mlflowcheck.runtime.server import group_members

    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time;"
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
                               "time.sleep(60)"], start_new_session=True)  # fmt: skip
    try:
        for _ in range(100):
            members = group_members(leader.pid)
            if len(members) == 2:
                break
            time.sleep(0.05)
        assert leader.pid in members
        assert len(members) == 2
        assert os.getpid() not in members
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
    assert group_members(leader.pid) == set()


def run_python(code: str) -> str:
    """``code`` in a fresh interpreter (this one runs pytest's threads and has MLflow's state)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_model_worker_is_forked_only_while_the_process_has_a_single_thread():
    out = run_python(
        "import threading, time\n"
        "from mlflowcheck.model_worker import start_method\n"
        "before = start_method()\n"
        "threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
        "print(before, start_method())\n"
    )
    assert out == "fork spawn"


def test_imports_run_without_the_garbage_collector_and_their_objects_are_frozen_after():
    out = run_python(
        "import gc\n"
        "from mlflowcheck.suite import imports_without_gc\n"
        "with imports_without_gc():\n"
        "    during = gc.isenabled()\n"
        "    import json.decoder, email.parser\n"
        "print(during, gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "gc.disable()\n"
        "with imports_without_gc():\n"
        "    pass\n"
        "print(gc.isenabled())\n"
    )
    assert out.splitlines() == ["False True True", "False"]  # a collector that was off stays off


def test_the_package_map_made_by_the_main_process_is_the_one_mlflow_uses_in_the_worker():
    # The handoff writes MLflow's private cache (models.map_installed_packages); this fails if a
    # new MLflow keeps that map elsewhere, where the suite would silently fall back to making it.
    out = run_python(
        "from mlflowcheck import models\n"
        "from mlflow.utils import requirements_utils as r\n"
        "made = models.installed_packages()\n"
        "assert made['sklearn'] == ['scikit-learn'] and 'mlflow' in made, made\n"
        "r._MODULES_TO_PACKAGES = r._PACKAGES_TO_MODULES = None  # as in a fresh worker\n"
        "models.map_installed_packages({'made_by_main': ['made-by-main']})\n"
        "print(r._MODULES_TO_PACKAGES, r._PACKAGES_TO_MODULES)\n"
    )
    assert out == "{'made_by_main': ['made-by-main']} {'made-by-main': 'made_by_main'}"


def answer(status: int, body: str, server: str = "", ctype: str = "text/html") -> requests.Response:
    resp = requests.Response()
    resp.status_code, resp._content = status, body.encode()
    resp.headers.update({"content-type": ctype, **({"server": server} if server else {})})
    return resp


@pytest.mark.parametrize(
    ("resp", "proxy"),
    [
        (
            answer(404, "<html><center><h1>404 Not Found</h1></center><hr><center>nginx/1.22.1</center>", "nginx"),
            "nginx",
        ),
        (answer(404, "<address>Apache/2.4.62 (Debian) Server at 127.0.0.1 Port 80</address>"), "Apache"),
        (answer(404, "404 page not found\n", ctype="text/plain"), "Traefik"),
        (answer(503, "no healthy upstream", "envoy", "text/plain"), "Envoy"),
        (answer(404, "", "Caddy"), "Caddy"),
        # A page of the app behind the proxy, relayed with the proxy's Server header: not the proxy's own.
        (answer(404, "<html><body><h1>Grafana</h1><p>Page not found</p></body></html>", "nginx"), ""),
        (answer(404, '{"detail": "Not Found"}', "uvicorn", "application/json"), ""),
    ],
)
def test_a_reverse_proxys_own_page_is_told_from_the_app_behind_it(resp, proxy):
    assert reverse_proxy(resp) == proxy
