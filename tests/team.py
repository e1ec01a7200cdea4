"""The deployment a team runs, stood up on this machine for the tests: an S3-compatible object
store (moto's server mode, a real HTTP server), `mlflow server` replicas on one database with
artifacts in a bucket, and nginx in front, round-robin, under a path prefix.

Everything listens on 127.0.0.1 on free ports, keeps its files in a temporary directory, and
is stopped by process group (nginx, the replicas) or shut down (the object store).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from mlflowcheck.runtime.server import LocalServer, free_port
from tests.support import start_server

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
NGINX = "/usr/sbin/nginx"


class ObjectStore:
    """moto's S3 in server mode on a free port: the object store the replicas write to."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ObjectStore:
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def server_env(self, **overrides: str) -> dict[str, str]:
        """What a replica needs to reach the bucket: in the server's environment only."""
        return {"MLFLOW_S3_ENDPOINT_URL": self.url, **AWS, **overrides}


@dataclass
class Nginx:
    """nginx as the reverse proxy: round-robin over ``upstreams`` at ``prefix`` (or the root)."""

    workdir: Path
    upstreams: list[str]  # host:port of each replica
    prefix: str = "/mlflow"  # the location nginx serves MLflow at; the replicas use the same --static-prefix
    extra: str = ""  # more directives inside the location (client_max_body_size, proxy_read_timeout, ...)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    def config(self) -> str:
        servers = "".join(f"    server {u};\n" for u in self.upstreams)
        location = self.prefix + "/" if self.prefix else "/"
        return f"""\
user root;
worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  log_format upstreams '$request_method $uri $status $upstream_addr';
  access_log {self.workdir}/access.log upstreams;
  client_body_temp_path {self.workdir}/body;
  proxy_temp_path {self.workdir}/proxy;
  fastcgi_temp_path {self.workdir}/fastcgi;
  uwsgi_temp_path {self.workdir}/uwsgi;
  scgi_temp_path {self.workdir}/scgi;
  upstream mlflow {{
{servers}  }}
  server {{
    listen 127.0.0.1:{self.port};
    location {location} {{
      proxy_pass http://mlflow;
      proxy_set_header Host $http_host;
      proxy_http_version 1.1;
{self.extra}
    }}
  }}
}}
"""

    def start(self) -> Nginx:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        log = open(self.workdir / "nginx.out", "wb")  # noqa: SIM115 - nginx writes to it until it stops
        self.process = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(self.workdir), "-g", "daemon off;"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.workdir / 'nginx.out').read_text()}")
            with contextlib.suppress(requests.RequestException):
                requests.get(f"http://127.0.0.1:{self.port}/", timeout=2)
                return self
            time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer on port {self.port} within 20s")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self.process = None

    def upstreams_reached(self) -> set[str]:
        """The replicas (host:port) that answered at least one request, from the access log."""
        reached = set()
        for line in self.access_log.read_text().splitlines():
            reached.update(re.findall(r"127\.0\.0\.1:\d+", line.split(" ", 3)[-1]))
        return reached

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def replicas(workdir: Path, count: int, **kwargs) -> Iterator[list[LocalServer]]:
    """``count`` light mlflow servers with the same arguments, started one after another (the
    first creates the database schema; starting both at once would race on the migrations)."""
    started: list[LocalServer] = []
    try:
        for i in range(count):
            started.append(start_server(workdir / f"replica{i}", **kwargs))
        yield started
    finally:
        for srv in started:
            srv.stop()


def hostport(srv: LocalServer) -> str:
    return f"{srv.host}:{srv.port}"
