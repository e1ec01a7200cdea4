"""The monitoring probe's pure logic: the targets file, the metrics as Prometheus reads them,
the textfile's last success, the console lines, the exporter's address, and the server step
against canned answers (the real cycle is tested against real servers: tests/test_monitoring.py)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.monitoring import PROBE_CHECKS, Cycle, Step, read_targets
from mlflowcheck.core.secrets import Credentials
from mlflowcheck.core.target import parse_target
from mlflowcheck.engine.monitor import unfinished
from mlflowcheck.engine.probe_service import listen_address
from mlflowcheck.probes.monitor import Cycler, server
from mlflowcheck.report.console import cycle_text
from mlflowcheck.report.prometheus import exposition, previous_last_success, write_textfile


def a_cycle(*failed: str, unsupported: tuple[str, ...] = ()) -> Cycle:
    steps = [
        Step(name, None if name in unsupported else name not in failed, 0.1, "why" if name in failed else "ok", "do")
        for name in PROBE_CHECKS
    ]
    return Cycle("prod", started=1_000.0, seconds=1.5, steps=steps, version="3.17.2", product="MLflow", requests=30)


def samples(text: bytes) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_the_cycles_verdict_is_its_own_sample_without_a_check_label_beside_each_checks():
    got = samples(exposition(a_cycle("artifact"), last_success=900.0))
    assert got[("mlflowcheck_probe_success", (("target", "prod"),))] == 0.0
    assert got[("mlflowcheck_probe_success", (("check", "artifact"), ("target", "prod")))] == 0.0
    assert got[("mlflowcheck_probe_success", (("check", "metric"), ("target", "prod")))] == 1.0
    assert got[("mlflowcheck_probe_duration_seconds", (("target", "prod"),))] == 1.5
    assert got[("mlflowcheck_probe_last_success_timestamp_seconds", (("target", "prod"),))] == 900.0
    assert got[("mlflowcheck_probe_requests", (("target", "prod"),))] == 30
    info = (("product", "MLflow"), ("target", "prod"), ("version", "3.17.2"))
    assert got[("mlflowcheck_server_info", info)] == 1.0


def test_a_step_the_server_does_not_have_is_neither_a_success_nor_a_failure():
    cycle = a_cycle(unsupported=("trace",))
    assert cycle.ok
    got = samples(exposition(cycle, last_success=None))
    assert not [k for k in got if ("check", "trace") in k[1]]
    assert not [k for k in got if k[0].startswith("mlflowcheck_probe_last_success")]  # none known: absent


def test_the_textfile_carries_the_last_success_over_a_failed_run(tmp_path):
    path = tmp_path / "mlflow_probe.prom"
    write_textfile(path, a_cycle())
    assert previous_last_success(path, "prod") == 1_001.5  # the passing cycle's end
    write_textfile(path, a_cycle("server"))
    assert previous_last_success(path, "prod") == 1_001.5
    assert previous_last_success(path, "another target") is None
    assert [p.name for p in tmp_path.iterdir()] == ["mlflow_probe.prom"]  # no temporary file left


def test_a_textfile_that_is_not_prometheus_text_starts_afresh(tmp_path):
    path = tmp_path / "mlflow_probe.prom"
    path.write_text("{ not metrics")
    assert previous_last_success(path, "prod") is None


def test_the_targets_file_takes_credentials_from_the_variables_it_names(tmp_path, monkeypatch):
    monkeypatch.setenv("PROD_USER", "alice")
    monkeypatch.setenv("PROD_PASSWORD", "s3cret")
    monkeypatch.setenv("STAGING_TOKEN", "tok-123")
    config = tmp_path / "probe.toml"
    config.write_text(
        '[targets.prod]\nurl = "https://mlflow.example.com/"\nusername_env = "PROD_USER"\n'
        'password_env = "PROD_PASSWORD"\n[targets.staging]\nurl = "http://10.0.0.5:5000"\n'
        'token_env = "STAGING_TOKEN"\nexperiment = "probe-b"\n'
    )
    prod, staging = read_targets(config)
    assert (prod.name, prod.url, prod.credentials) == (
        "prod",
        "https://mlflow.example.com",
        Credentials("alice", "s3cret"),
    )
    assert "s3cret" not in repr(prod)
    assert prod.environment()["MLFLOW_TRACKING_PASSWORD"] == "s3cret"
    assert staging.environment() == {"MLFLOW_TRACKING_URI": "http://10.0.0.5:5000", "MLFLOW_TRACKING_TOKEN": "tok-123"}
    assert staging.experiment == "probe-b"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[targets.a]\n", "[targets.a] has no url"),
        ('[targets.a]\nurl = "http://u:pw@host:5000"\n', "[targets.a]'s url holds credentials"),
        (
            '[targets.a]\nurl = "http://h:1"\npassword_env = "UNSET_VARIABLE_X"\n',
            "names UNSET_VARIABLE_X, which is not",
        ),
        ('[targets.a]\nurl = "http://h:1"\nusername = "bob"\n', "a username or a password without the other"),
        ("targets = 3\n", "has no [targets.NAME] table"),
        ("[targets.a\n", "is not valid TOML"),
    ],
)
def test_a_bad_targets_file_says_what_is_wrong_and_where_its_format_is(tmp_path, text, said):
    config = tmp_path / "probe.toml"
    config.write_text(text)
    with pytest.raises(CheckFailed) as info:
        read_targets(config)
    assert said in info.value.message
    assert "docs/monitoring.md" in info.value.tip
    assert "pw" not in info.value.message


def test_the_console_shows_each_step_its_tip_and_the_verdict():
    text = cycle_text(a_cycle("artifact", unsupported=("trace",)))
    assert "  FAIL  artifact    0.10s  why\n" + " " * 24 + "Tip: do\n" in text
    assert "  MISS  trace" in text
    assert text.endswith("Probe of prod: FAIL (artifact) in 1.50s, 30 requests\n")


def test_a_cycle_that_did_not_finish_fails_every_step_and_says_a_request_hung():
    cycle = unfinished("prod", 1_000.0, 20.0)
    assert not cycle.ok
    assert [s.name for s in cycle.steps] == list(PROBE_CHECKS)
    assert "did not finish within its deadline (20s)" in cycle.steps[0].message
    assert Cycle.from_dict(cycle.as_dict()) == cycle


@pytest.mark.parametrize(
    ("text", "address"),
    [("127.0.0.1:9115", ("127.0.0.1", 9115)), ("[::1]:9115", ("::1", 9115)), (":9115", ("", 9115))],
)
def test_the_exporter_listens_at_host_and_port(text, address):
    assert listen_address(text) == address


@pytest.mark.parametrize("text", ["9115", "host:", "host:99999", "host:port"])
def test_an_exporter_address_that_is_not_host_and_port_is_refused_with_an_example(text):
    with pytest.raises(CheckFailed) as info:
        listen_address(text)
    assert "127.0.0.1:9115" in info.value.tip


def test_a_sign_in_page_instead_of_the_version_fails_the_server_step(httpserver):
    httpserver.expect_request("/version").respond_with_data("<html>Sign in</html>", content_type="text/html")
    cycler = Cycler(parse_target(httpserver.url_for("/").rstrip("/")), "prod", timeout=5.0)
    with pytest.raises(CheckFailed) as info:
        server(cycler)
    assert "not an MLflow version" in info.value.message
    assert "sign-in page" in info.value.tip


def test_the_server_step_names_the_product_and_version(httpserver):
    httpserver.expect_request("/version").respond_with_data("3.17.2")
    cycler = Cycler(parse_target(httpserver.url_for("/").rstrip("/")), "prod", timeout=5.0)
    assert server(cycler) == "MLflow 3.17.2"
    assert (cycler.cycle.version, cycler.cycle.product, cycler.cycle.requests) == ("3.17.2", "MLflow", 1)
