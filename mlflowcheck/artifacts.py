"""The artifact store layer: the text report, uploaded through the server and read back."""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

from mlflowcheck import seed
from mlflowcheck.diagnosis import CheckFailed, http, server_message
from mlflowcheck.suite import Suite

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


def render_report(suite: Suite, final: bool = False) -> str:
    lines = [
        "MLflow deployment check report",
        f"timestamp: {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        f"tracking URI: {suite.target.url}",
        f"experiment: {suite.experiment_name} (id {suite.experiment_id})",
        f"run: {seed.RUN_NAME} (id {suite.run_id})",
        f"MLflow client: {suite.client_version}",
        f"MLflow server: {suite.server_version or 'unknown'}",
        f"python: {platform.python_version()}",
        f"model format: {suite.model_file or 'not logged yet'}",
        "",
        "results of the checks" + ("" if final else " so far (the final report replaces this file)") + ":",
    ]
    for r in suite.results:
        first = r.message.splitlines()[0] if r.message else ""
        lines.append(f"  {r.status.upper():7} {r.name:12} {r.duration:6.2f}s {first}".rstrip())
    return "\n".join(lines) + "\n"


def upload_and_verify(suite: Suite, text: str) -> str:
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
    dst = suite.tmp / f"download-{time.monotonic_ns()}"
    dst.mkdir(parents=True)
    got_path = Path(client.download_artifacts(suite.run_id, seed.REPORT_PATH, dst_path=str(dst)))
    got = hashlib.sha256(got_path.read_bytes()).hexdigest()
    if got != want:
        raise CheckFailed(
            f"{seed.REPORT_PATH} came back different: sha256 {got[:12]}…, uploaded {want[:12]}….",
            LOST_TIP,
        )
    return want


def check_route(suite: Suite) -> str:
    """Where the run's artifacts go. Fails when they go to the client's own disk.

    With --no-serve-artifacts and a local --default-artifact-root, the run's artifact URI is
    a plain path: each client writes to its own disk, which on one machine looks like success
    and on a team loses everything. Ask the server what its artifact proxy says.
    """
    uri = suite.artifact_uri or ""
    if uri.startswith(PROXY_SCHEME):
        return "through the server's artifact proxy"
    if uri.startswith(REMOTE_STORES):
        return f"directly to {uri.split('/')[0]}//… with the client's own credentials (not proxied)"
    resp = http("GET", f"{suite.target.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": suite.experiment_id})
    said = server_message(resp) if resp.status_code != 200 else "it answers, but the run does not use it"
    raise CheckFailed(
        f"The run's artifact URI is {uri!r}, a path on the client: artifacts would be written to "
        "this machine's disk, not to the server, and other clients could not read them. The "
        f"server's artifact proxy says: {said}",
        NOT_PROXIED_TIP,
    )


def report(suite: Suite, final: bool = False) -> None:
    route = check_route(suite)
    digest = upload_and_verify(suite, render_report(suite, final=final))
    suite.note("final_report" if final else "artifact", f"{seed.REPORT_PATH} sha256 {digest[:12]}… read back; {route}")
