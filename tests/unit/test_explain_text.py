"""The server's own words out of an answer (explain.text): MLflow's JSON message, an HTML page's
words, a short quote."""

from __future__ import annotations

import pytest

from mlflowcheck.explain.text import describe_response, first_lines, html_text, server_message, server_text


def test_an_answer_is_described_by_status_type_server_and_the_start_of_its_body(answer):
    resp = answer(200, "hello   world\n" + "x" * 200, ctype="text/plain; charset=utf-8", server="nginx")
    assert describe_response(resp) == f"HTTP 200, text/plain, server header 'nginx': 'hello world {'x' * 108}'"


def test_an_answer_without_type_or_body_is_described_as_such(answer):
    assert describe_response(answer(204, "", ctype=None)) == "HTTP 204, no content type: ''"


def test_mlflows_json_error_is_its_message(answer):
    resp = answer(400, '{"error_code": "X", "message": "bad param"}', ctype="application/json")
    assert server_message(resp) == "bad param"


@pytest.mark.parametrize("body", ['{"error_code": "X"}', "[1, 2]", '{"message": ""}'])
def test_json_without_a_message_is_quoted_with_its_status(answer, body):
    assert server_message(answer(400, body, ctype="application/json")) == f"HTTP 400: {body}"


def test_an_html_page_is_named_as_one_with_its_words(answer):
    resp = answer(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
    assert server_message(resp) == "HTTP 502 with an HTML error page: 502 Bad Gateway (look in the server's log)"


def test_an_empty_html_answer_is_an_html_error_page_without_words(answer):
    assert server_message(answer(500, "")) == "HTTP 500 with an HTML error page (look in the server's log)"


def test_plain_text_is_quoted_on_one_line(answer):
    assert server_message(answer(500, "Internal error\nline2", ctype="text/plain")) == "HTTP 500: Internal error line2"
    # Declared HTML but no markup: the words are the message.
    assert server_message(answer(500, "plain words")) == "HTTP 500: plain words"


def test_an_empty_plain_answer_is_described(answer):
    assert server_message(answer(500, "", ctype="text/plain")) == "HTTP 500, text/plain: ''"


def test_a_long_plain_answer_is_cut_at_400_characters(answer):
    said = server_message(answer(500, "y" * 1000, ctype="text/plain"))
    assert said == "HTTP 500: " + "y" * 400 + "…"


def test_html_text_is_the_pages_words_on_one_line():
    assert html_text("<p>a <b>b</b></p>\n\n c") == "a b c"
    assert html_text("no markup") == "no markup"


def test_first_lines_joins_the_first_three_lines_and_cuts_at_the_limit():
    assert first_lines("  one\ntwo\nthree\nfour  ") == "one two three"
    assert first_lines("abcdef", 3) == "abc…"
    assert first_lines("abc", 3) == "abc"
    assert first_lines(123) == "123"


@pytest.mark.parametrize(
    ("text", "inner"),
    [
        (
            'API request failed with error code 500 != 200. Response body: \'{"error_code": "X", "message": "inner"}\'',
            "inner",
        ),
        ("failed with error code 502 != 200. Response body: 'not json'", "not json"),
        ('{"message": "direct"}', "direct"),
        ('{"message": ""}', '{"message": ""}'),
        ("just text", "just text"),
    ],
)
def test_the_servers_message_is_taken_out_of_the_clients_wrapping(text, inner):
    assert server_text(text) == inner


def test_a_multi_line_response_body_is_taken_whole():
    assert server_text("Response body: 'line one\nline two'") == "line one\nline two"
