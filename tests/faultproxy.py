"""A real HTTP reverse proxy in front of a real mlflow server that breaks chosen requests.

A misbehaving proxy or load balancer in front of the tracking server is a deployment fault
users really meet; here it lets a test break one feature (say, metric writes) while the
rest of the server keeps working, to prove the suite names exactly that feature.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import requests

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass
class Fault:
    """Break requests whose method matches and whose path (and body) match the patterns."""

    method: str
    path: str  # regex searched in the request path
    # "drop": answer 200 {} unforwarded; "status:N"; "corrupt"; "replace:TEXT"; "delay:SECONDS";
    # "serve-dir:ROOT": answer with the file at ROOT joined with the path's first group, decoded,
    # the way a misconfigured proxy serves a directory by path (no check that it stays inside);
    # "redirect:URL": answer 302 to URL, as a proxy sending the browser to a sign-in page does
    action: str
    body: str = ""  # regex searched in the request body, if given
    payload: bytes | None = None  # with "status:N" or "replace:": the bytes to answer (JSON)
    times: int | None = None  # break only the first N matching requests (None: all)

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        matched = (
            method == self.method
            and re.search(self.path, path) is not None
            and (not self.body or re.search(self.body, body.decode("utf-8", "replace")) is not None)
        )
        if matched and self.times is not None:
            self.times -= 1
        return matched


class FaultProxy:
    def __init__(self, upstream: str, faults: list[Fault]):
        self.upstream = upstream.rstrip("/")
        self.faults = faults
        self.hits: list[str] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers of every request
        self.closing = threading.Event()  # ends "delay" faults early when the proxy stops
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _any(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.requests.append((self.command, self.path, dict(self.headers.items())))
                fault = next((f for f in proxy.faults if f.matches(self.command, self.path, body)), None)
                if fault is not None:
                    proxy.hits.append(f"{self.command} {self.path} -> {fault.action}")
                if fault is not None and fault.action == "drop":
                    return self._send(200, {"content-type": "application/json"}, b"{}")
                if fault is not None and fault.action.startswith("redirect:"):
                    return self._send(302, {"location": fault.action.split(":", 1)[1]}, b"")
                if fault is not None and fault.action.startswith("serve-dir:"):
                    relative = unquote(re.search(fault.path, self.path).group(1))
                    try:
                        content = Path(fault.action.split(":", 1)[1], relative).read_bytes()
                    except OSError:
                        return self._send(404, {"content-type": "text/plain"}, b"not found")
                    return self._send(200, {"content-type": "application/octet-stream"}, content)
                if fault is not None and fault.action.startswith("delay:"):
                    proxy.closing.wait(float(fault.action.split(":", 1)[1]))
                if fault is not None and fault.action.startswith("status:"):
                    code = int(fault.action.split(":", 1)[1])
                    if fault.payload is not None:
                        return self._send(code, {"content-type": "application/json"}, fault.payload)
                    return self._send(code, {"content-type": "text/html"}, b"<html><body>proxy error</body></html>")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                resp = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=60,
                )
                content = resp.content
                if fault is not None and fault.action == "corrupt":
                    content = bytes(b ^ 0x5A for b in content)
                elif fault is not None and fault.action.startswith("replace:"):
                    content = fault.payload if fault.payload is not None else fault.action.split(":", 1)[1].encode()
                out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
                return self._send(resp.status_code, out_headers, content)

            def _send(self, code: int, headers: dict, content: bytes):
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        return Handler
