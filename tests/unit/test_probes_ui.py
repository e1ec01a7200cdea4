"""The ui check's reading of the web app's script: a part of it, and its whole size."""

from __future__ import annotations

from mlflowcheck.net.http import http
from mlflowcheck.probes.ui import SCRIPT_PART, script_size


def test_a_partial_answer_gives_the_whole_scripts_size_from_its_content_range(httpserver_ipv4):
    part = b"x" * SCRIPT_PART
    httpserver_ipv4.expect_request("/main.js", headers={"Range": f"bytes=0-{SCRIPT_PART - 1}"}).respond_with_data(
        part, status=206, headers={"Content-Range": f"bytes 0-{SCRIPT_PART - 1}/4443475"}
    )
    resp = http("GET", httpserver_ipv4.url_for("/main.js"), headers={"Range": f"bytes=0-{SCRIPT_PART - 1}"})
    assert (resp.status_code, len(resp.content), script_size(resp)) == (206, SCRIPT_PART, 4443475)


def test_a_server_that_ignores_the_range_sends_all_of_it_and_that_is_its_size(httpserver_ipv4):
    httpserver_ipv4.expect_request("/main.js").respond_with_data(b"y" * 200_000)
    resp = http("GET", httpserver_ipv4.url_for("/main.js"), headers={"Range": f"bytes=0-{SCRIPT_PART - 1}"})
    assert (resp.status_code, script_size(resp)) == (200, 200_000)


def test_a_content_range_of_unknown_length_counts_what_came(httpserver_ipv4):
    httpserver_ipv4.expect_request("/main.js").respond_with_data(
        b"z" * 5000, status=206, headers={"Content-Range": "bytes 0-4999/*"}
    )
    assert script_size(http("GET", httpserver_ipv4.url_for("/main.js"))) == 5000
