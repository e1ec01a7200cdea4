"""Real listeners on free local ports: one that records every byte sent to it (the canary for
credentials that must never reach it), one that accepts and never answers or drips."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path


class Listener:
    """A TCP server on a free local port that hands each connection to ``handle`` in a thread."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StuckServer(Listener):
    """Accepts, then sends nothing (``drip=False``) or one byte a second."""

    def __init__(self, drip: bool):
        self.drip = drip
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n" + b"3" * 100000
        with conn, contextlib.suppress(OSError):  # the client hangs up when its deadline passes
            for byte in answer:
                if self.stop.wait(1.0):
                    return
                if self.drip:
                    conn.sendall(bytes([byte]))


class RecordingListener(Listener):
    """Plain HTTP (or TLS with ``certfile``): answers GET /version with an MLflow version, like a
    server of the other scheme would, and keeps the raw bytes of every request. With
    ``challenge``, every other request gets a basic-auth challenge (401, WWW-Authenticate), as a
    site that wants a browser's stored password asks for it."""

    def __init__(self, certfile: Path | None = None, keyfile: Path | None = None, challenge: bool = False):
        self.challenge = challenge
        self.tls = None
        if certfile is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(certfile, keyfile)
        self.received: list[bytes] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        with contextlib.suppress(OSError), contextlib.ExitStack() as stack:
            stack.callback(conn.close)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
                stack.callback(conn.close)
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
                if not data[:1].isalpha():  # not HTTP (a TLS handshake): refused at once, as web servers do
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    break
            request_line = data.split(b"\r\n", 1)[0]
            if data[:1].isalpha() and request_line.startswith(b"GET /version "):
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\n3.17.2")
            elif data[:1].isalpha() and self.challenge:
                conn.sendall(b'HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic realm="other"\r\n'
                             b"content-length: 0\r\nconnection: close\r\n\r\n")  # fmt: skip
            elif data[:1].isalpha():
                conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        self.received.append(data)

    def requests_seen(self) -> str:
        """Everything received, as text (TLS handshakes that failed show as their raw bytes)."""
        return "\n".join(r.decode("latin-1") for r in self.received)
