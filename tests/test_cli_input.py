"""Any input gets an answer: arbitrary strings as the tracking URI end in a parsed target or a
clear exit-2 message from the real command line, never a traceback or a hang."""

from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlflowcheck.diagnosis import DEFAULT_TRACKING_URI
from mlflowcheck.secrets import split_credentials
from tests.support import ENTRY

# argv cannot carry NUL or lone surrogates; everything else is fair game.
ARGUMENT = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60)
URLISH = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["", "http://", "https://", "mlflow://", "sqlite:///"]),
    st.sampled_from(["", "u:p@ss/w@", "\x1b[2J@"]),
    st.sampled_from(["127.0.0.1", "[::1", "[::1]", "localhost", "exa mple", ""]),
    ARGUMENT,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uri=st.one_of(URLISH, ARGUMENT))
def test_any_tracking_uri_gets_a_parsed_target_or_an_exit_2_message(uri, tmp_path):
    # Only the uri check runs, so no address is ever contacted; the seed's own address would
    # start a server.
    assume(split_credentials(uri.strip())[0].rstrip("/") != DEFAULT_TRACKING_URI)
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, str(ENTRY), f"--tracking-uri={uri}", "-k", "uri", "--no-ui", "--json", str(report)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    assert proc.returncode in (0, 2), output
    [check] = json.loads(report.read_text(encoding="utf-8"))["checks"]
    if proc.returncode == 0:
        assert check["status"] == "passed"
    else:
        assert check["status"] == "failed"
        assert "Tip: " in check["message"]
    assert "\x1b" not in output
