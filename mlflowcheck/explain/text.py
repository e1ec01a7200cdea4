"""The server's own words out of an answer: its JSON message, an HTML page's text, a short quote."""

from __future__ import annotations

import json
import re

import requests
import requests.adapters


def describe_response(resp: requests.Response) -> str:
    ctype = resp.headers.get("content-type", "no content type").split(";")[0]
    server = resp.headers.get("server")
    body = " ".join(resp.text.split())[:120]
    bits = [f"HTTP {resp.status_code}", ctype]
    if server:
        bits.append(f"server header {server!r}")
    return f"{', '.join(bits)}: {body!r}"


def server_message(resp: requests.Response) -> str:
    """The server's own error text: MLflow's JSON message, else a hint about an HTML page."""
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])
    text = html_text(resp.text)
    if "html" in resp.headers.get("content-type", "") and (not text or "<html" in resp.text.lower()):
        page = f": {first_lines(text, 200)}" if text else ""
        return f"HTTP {resp.status_code} with an HTML error page{page} (look in the server's log)"
    return f"HTTP {resp.status_code}: {first_lines(text, 400)}" if text else describe_response(resp)


def html_text(markup: str) -> str:
    """The words of an HTML page (or of plain text), on one line."""
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def first_lines(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).strip().splitlines()[:3])
    return line[:limit] + ("…" if len(line) > limit else "")


def server_text(text: str) -> str:
    """The server's message inside an MLflow client error, without the client's wrapping."""
    match = re.search(r"Response body: '(.*)'", text, re.DOTALL)
    body = match.group(1) if match else text
    try:
        payload = json.loads(body)
        if isinstance(payload, dict) and payload.get("message"):
            return str(payload["message"])
    except ValueError:
        pass
    return body
