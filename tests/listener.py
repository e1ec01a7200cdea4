"""A real listener that records every byte sent to it: the canary for credentials that must
never reach it (a probe of the tracking host over the other scheme)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path


class RecordingListener:
    """Plain HTTP (or TLS with ``certfile``) on a free port: answers GET /version with an MLflow
    version, like a server of the other scheme would, and keeps the raw bytes of every request."""

    def __init__(self, certfile: Path | None = None, keyfile: Path | None = None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tls = None
        if certfile is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(certfile, keyfile)
        self.received: list[bytes] = []
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
            if not data[:1].isalpha():
                pass
            elif data.startswith(b"GET ") and b" /version" in data.split(b"\r\n", 1)[0]:
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\n3.17.2")
            else:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        self.received.append(data)

    def requests_seen(self) -> str:
        """Everything received, as text (TLS handshakes that failed show as their raw bytes)."""
        return "\n".join(r.decode("latin-1") for r in self.received)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()

    def __enter__(self) -> RecordingListener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
