"""The artifact store layer: the text report, uploaded through the server and read back."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

from mlflowcheck.core import seed
from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.explain.text import server_message
from mlflowcheck.net.http import http
from mlflowcheck.runtime.session import Session

PROXY_SCHEME = "mlflow-artifacts:"


#: Artifact URIs a client writes to directly (with its own credentials), by design.
REMOTE_STORES = ("s3:", "gs:", "wasbs:", "abfss:", "hdfs:", "sftp:", "ftp:", "oss:", "dbfs:", "http:", "https:")


NOT_PROXIED_TIP = (
    "start the server with artifact proxying: `mlflow server --serve-artifacts --artifacts-destination "
    "<a directory or bucket on the server side>`, without --no-serve-artifacts and without a "
    "--default-artifact-root that is a local path. Experiments created before the fix keep their "
    "old artifact location: use new ones."
)


LOST_TIP = (
    "the server's artifact store lost the file: check that --artifacts-destination is "
    "writable by the server process and has free space, and look at the server's log."
)


def render_report(suite: Session, final: bool = False) -> str:
    lines = [
        "MLflow deployment check report",
        f"timestamp: {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        f"tracking URI: {suite.target.url}",
        f"experiment: {suite.experiment_name} (id {suite.experiment_id})",
        f"run: {seed.RUN_NAME} (id {suite.run_id})",
        f"MLflow client: {suite.client_version}",
        f"MLflow server: {suite.server_version or 'unknown'}",
        f"python: {platform.python_version()}",
        f"model format: {suite.created.model_file or 'not logged yet'}",
        f"topology: {json.dumps(suite.topology, ensure_ascii=False)}",
        "",
        "results of the checks" + ("" if final else " so far (the final report replaces this file)") + ":",
    ]
    for r in suite.results:
        first = r.message.splitlines()[0] if r.message else ""
        lines.append(f"  {r.status.upper():7} {r.name:12} {r.duration:6.2f}s {first}".rstrip())
    return "\n".join(lines) + "\n"


def upload_and_verify(suite: Session, text: str) -> str:
    """Upload ``text`` as reports/test_report.txt, list it and download it; compare sha256."""
    local_dir = suite.tmp / "upload" / "reports"
    local_dir.mkdir(parents=True, exist_ok=True)
    local = local_dir / Path(seed.REPORT_PATH).name
    local.write_text(text, encoding="utf-8")
    data = local.read_bytes()
    want = hashlib.sha256(data).hexdigest()
    client = suite.client
    client.log_artifact(suite.run_id, str(local), artifact_path=str(Path(seed.REPORT_PATH).parent))

    listed = {f.path: f for f in client.list_artifacts(suite.run_id, str(Path(seed.REPORT_PATH).parent))}
    if seed.REPORT_PATH not in listed:
        raise CheckFailed(
            f"{seed.REPORT_PATH} was uploaded without error but the server does not list it "
            f"(it lists {sorted(listed) or 'nothing'}).",
            LOST_TIP,
        )
    if listed[seed.REPORT_PATH].file_size != len(data):
        raise CheckFailed(
            f"The server lists {seed.REPORT_PATH} with {listed[seed.REPORT_PATH].file_size} bytes; "
            f"{len(data)} were uploaded.",
            LOST_TIP,
        )
    got = downloaded_sha256(suite, seed.REPORT_PATH)
    if got != want:
        raise CheckFailed(
            f"{seed.REPORT_PATH} came back different: sha256 {got[:12]}…, uploaded {want[:12]}….",
            LOST_TIP,
        )
    return want


def downloaded_sha256(suite: Session, path: str) -> str:
    """Download one of the run's artifacts through the server into a fresh folder; its sha256."""
    dst = suite.tmp / f"download-{time.monotonic_ns()}"
    dst.mkdir(parents=True)
    got = Path(suite.client.download_artifacts(suite.run_id, path, dst_path=str(dst)))
    return hashlib.sha256(got.read_bytes()).hexdigest()


def check_route(suite: Session) -> str:
    """Where the run's artifacts go. Fails when they go to the client's own disk.

    With --no-serve-artifacts and a local --default-artifact-root, the run's artifact URI is
    a plain path: each client writes to its own disk, which on one machine looks like success
    and on a team loses everything. Ask the server what its artifact proxy says.
    """
    uri = suite.artifact_uri or ""
    if uri.startswith(PROXY_SCHEME):
        return "through the server's artifact proxy"
    if uri.startswith("s3:") and not client_has_aws_credentials():
        raise CheckFailed(
            f"The server does not proxy artifacts: the run's artifact URI is {uri!r}, so this client must write to "
            "the bucket itself, with its own credentials, and it has none (no AWS_ACCESS_KEY_ID, AWS_PROFILE, "
            "web identity or ~/.aws/credentials).",
            "decide which of the two designs the team has. Proxied (the usual one for teams): `mlflow server "
            "--artifacts-destination s3://BUCKET/PATH` without --no-serve-artifacts, and only the server holds "
            "bucket credentials. Direct: keep --default-artifact-root s3://… and give every client credentials "
            "for the bucket (and MLFLOW_S3_ENDPOINT_URL for a store that is not AWS). This server is set up "
            "for direct access.",
        )
    if uri.startswith(REMOTE_STORES):
        return (
            f"directly to {uri.split('/')[0]}//… with the client's own credentials (the direct design: "
            "the server does not proxy artifacts)"
        )
    resp = http("GET", f"{suite.target.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": suite.experiment_id})
    said = server_message(resp) if resp.status_code != 200 else "it answers, but the run does not use it"
    found = suite.implementation
    tip = NOT_PROXIED_TIP
    if found is not None and not found.is_mlflow:
        tip = (
            f"{found.product} gives runs its --default-artifact-root as they are, and a local path there is a path "
            "on each client's disk: point it at an object store that the server and every client reach "
            "(s3://bucket/prefix, with the clients' credentials), or use MLflow's own server with --serve-artifacts."
        )
    raise CheckFailed(
        f"The run's artifact URI is {uri!r}, a path on the client: artifacts would be written to "
        "this machine's disk, not to the server, and other clients could not read them. The "
        f"server's artifact proxy says: {said}",
        tip,
    )


def client_has_aws_credentials() -> bool:
    """Whether boto3 would find credentials here, judged without asking the network (boto3's
    own chain ends at the instance metadata service)."""
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return True
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return True
    home = Path.home() / ".aws"
    files = [env.get("AWS_SHARED_CREDENTIALS_FILE"), env.get("AWS_CONFIG_FILE"), home / "credentials", home / "config"]
    return any(f and Path(f).is_file() for f in files)


def report(suite: Session, final: bool = False) -> None:
    route = check_route(suite)
    suite.topology["artifact_route"] = route
    suite.topology["artifact_uri_scheme"] = (suite.artifact_uri or "").split(":", 1)[0]
    digest = upload_and_verify(suite, render_report(suite, final=final))
    suite.note("final_report" if final else "artifact", f"{seed.REPORT_PATH} sha256 {digest[:12]}… read back; {route}")


BIG_PATH = "reports/large-artifact.bin"


def big_artifact(suite: Session) -> None:
    """Upload one artifact of --upload-size bytes (default above nginx's 1 MB body limit, below
    which the seed's few-KB files always pass), list it, download it, compare sha256. When a
    proxy refuses it (413), find the largest size that does go through."""
    size = suite.options.upload_size
    failure = try_upload(suite, size)
    if failure is None:
        suite.note("big_artifact", f"{BIG_PATH}, {human_size(size)}, uploaded and read back, sha256 equal")
        return
    if failure.status != 413:
        raise failure.error
    largest = largest_upload(suite, size)
    went = f"the largest that went through was {human_size(largest)}" if largest else "nothing of 64 KiB went through"
    raise CheckFailed(
        f"{failure.by} refused a {human_size(size)} upload with HTTP 413 (request body too large); {went}. "
        f"Models are often hundreds of MB.",
        "raise the proxy's request body limit for MLflow (nginx: `client_max_body_size 0;` or e.g. `5g;` in the "
        "server or location block; Kubernetes ingress-nginx: the nginx.ingress.kubernetes.io/proxy-body-size "
        "annotation), or test a smaller size with --upload-size.",
    )


class UploadFailure:
    def __init__(self, error: CheckFailed, status: int | None, by: str):
        self.error, self.status, self.by = error, status, by


def try_upload(suite: Session, size: int) -> UploadFailure | None:
    from mlflowcheck.explain.errors import answered_by, status_in
    from mlflowcheck.probes.layers import diagnose

    local = suite.tmp / "big" / Path(BIG_PATH).name
    local.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    local.write_bytes(data)
    try:
        suite.client.log_artifact(suite.run_id, str(local), artifact_path=str(Path(BIG_PATH).parent))
    except Exception as exc:
        text = str(getattr(exc, "message", exc))
        return UploadFailure(diagnose(exc), status_in(text), answered_by(text))
    want = hashlib.sha256(data).hexdigest()
    got = downloaded_sha256(suite, BIG_PATH)
    if got != want:
        raise CheckFailed(
            f"{BIG_PATH} ({human_size(size)}) came back different: sha256 {got[:12]}…, uploaded {want[:12]}….", LOST_TIP
        )
    return None


def largest_upload(suite: Session, refused: int, floor: int = 64 * 1024) -> int:
    """The largest size that uploads, within 1/8 of itself: halve until one goes through, then
    bisect between it and the smallest refused size."""
    ok, bad = 0, refused
    size = refused // 2
    while size >= floor and try_upload(suite, size) is not None:
        bad, size = size, size // 2
    if size < floor:
        return 0
    ok = size
    while bad - ok > max(ok // 8, floor):
        middle = (ok + bad) // 2
        if try_upload(suite, middle) is None:
            ok = middle
        else:
            bad = middle
    return ok


def human_size(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}".replace(".0 ", " ")
    return f"{size} B"


def parse_size(text: str) -> int:
    """'4M', '512K', '1G', '1500000' -> bytes (K, M, G are powers of 1024)."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = {"K": 2**10, "M": 2**20, "G": 2**30}.get(value[-1:], 1)
    number = float(value[:-1] if factor > 1 else value)
    if not 1 <= number * factor < float("inf"):  # nan, inf and less than one byte too
        raise ValueError(text)
    return int(number * factor)
