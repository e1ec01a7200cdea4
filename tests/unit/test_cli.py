"""The command line (cli): the options and their defaults, the values they accept, and the
output paths checked before anything runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from mlflowcheck import __version__
from mlflowcheck.arguments import positive_float, positive_int, size_argument, version_text
from mlflowcheck.cli import DEFAULT_TIMEOUT, build_parser, main
from mlflowcheck.preflight import file_unwritable, folder_unwritable, output_paths_problem, read_only_problem

#: A folder even root cannot write into (the kernel refuses; os.access would say yes).
UNWRITABLE = Path("/sys")
needs_unwritable = pytest.mark.skipif(not UNWRITABLE.is_dir(), reason="needs Linux's /sys")


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def refused(capsys, *argv: str) -> str:
    """What the parser says on stderr as it exits with 2."""
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2
    return capsys.readouterr().err


# --- the options ---------------------------------------------------------------------------------


def test_without_options_every_default_is_the_documented_one():
    assert vars(parse()) == {
        "tracking_uri": None,
        "start_server": False,
        "server_dir": None,
        "backend_store_uri": "sqlite:///my.db",
        "keep_serving": False,
        "model_format": None,
        "registered_model": "mlflow-local-test-model",
        "alias": None,
        "cleanup": False,
        "upload_size": 4 * 2**20,
        "restart": False,
        "load": None,
        "load_seconds": 20.0,
        "load_p95_ms": None,
        "load_users_per_second": None,
        "load_csv": None,
        "load_html": None,
        "load_master": False,
        "master_bind_host": "*",
        "master_bind_port": 5557,
        "expect_workers": 1,
        "expect_workers_max_wait": 120.0,
        "load_worker": False,
        "master_host": "127.0.0.1",
        "master_port": 5557,
        "security": False,
        "security_write": False,
        "ui": None,
        "screenshots": None,
        "timeout": None,  # main() makes it 900 s for the suite, 20 s for a probe cycle
        "select": None,
        "junitxml": None,
        "json": None,
        "summary_md": None,
        "require": None,
        "verbose": False,
        "fingerprint": None,
        "compare": None,
        "scope": None,
        "experiments": None,
        "artifacts": None,
        "match_by": "id",
        "probe": False,
        "prom_textfile": None,
        "serve_probe": None,
        "probe_config": None,
        "probe_experiment": "mlflowcheck-probe",
    }


def test_every_option_given_is_parsed_to_its_type():
    args = parse(
        "--tracking-uri", "http://h:1", "--start-server", "--server-dir", "srv", "--backend-store-uri",
        "postgresql://db/m", "--keep-serving", "--model-format", "pickle", "--registered-model", "m", "--alias",
        "champion", "--cleanup", "--upload-size", "512K", "--restart", "--load", "4", "--load-seconds", "2.5",
        "--load-p95-ms", "300", "--security", "--security-write", "--no-ui", "--screenshots", "shots",
        "--timeout", "60", "-k", "network or access", "--junitxml", "j.xml", "--json", "r.json", "-v",
        "--fingerprint", "after.jsonl", "--compare", "before.jsonl", "--scope", "all", "--experiment", "e1",
        "--experiment", "e2", "--artifacts", "all", "--match-by", "name", "--load-users-per-second", "8",
        "--load-csv", "reports/load", "--load-html", "load.html", "--load-master", "--master-bind-host", "10.0.0.5",
        "--master-bind-port", "6000", "--expect-workers", "3", "--expect-workers-max-wait", "30", "--load-worker",
        "--master-host", "m.example", "--master-port", "6001",
    )  # fmt: skip
    assert vars(args) == {
        "tracking_uri": "http://h:1",
        "start_server": True,
        "server_dir": Path("srv"),
        "backend_store_uri": "postgresql://db/m",
        "keep_serving": True,
        "model_format": "pickle",
        "registered_model": "m",
        "alias": "champion",
        "cleanup": True,
        "upload_size": 512 * 1024,
        "restart": True,
        "load": 4,
        "load_seconds": 2.5,
        "load_p95_ms": 300.0,
        "load_users_per_second": 8.0,
        "load_csv": "reports/load",
        "load_html": "load.html",
        "load_master": True,
        "master_bind_host": "10.0.0.5",
        "master_bind_port": 6000,
        "expect_workers": 3,
        "expect_workers_max_wait": 30.0,
        "load_worker": True,
        "master_host": "m.example",
        "master_port": 6001,
        "security": True,
        "security_write": True,
        "ui": False,
        "screenshots": Path("shots"),
        "timeout": 60.0,
        "select": "network or access",
        "junitxml": "j.xml",
        "json": "r.json",
        "summary_md": None,
        "require": None,
        "verbose": True,
        "fingerprint": "after.jsonl",
        "compare": "before.jsonl",
        "scope": "all",
        "experiments": ["e1", "e2"],
        "artifacts": "all",
        "match_by": "name",
        "probe": False,
        "prom_textfile": None,
        "serve_probe": None,
        "probe_config": None,
        "probe_experiment": "mlflowcheck-probe",
    }
    assert parse("--ui").ui is True


def test_a_bad_value_exits_2_naming_the_option_with_the_help_tip(capsys):
    err = refused(capsys, "--load", "0")
    assert "test_mlflow_local.py: error: argument --load: expected a positive whole number, got '0'\n" in err
    assert err.endswith("Tip: run `test_mlflow_local.py --help` for the options.\n")
    assert err.startswith("usage: test_mlflow_local.py")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--timeout", "soon"], "argument --timeout: expected a positive number of seconds, got 'soon'"),
        (["--load-seconds", "0"], "argument --load-seconds: expected a positive number of seconds, got '0'"),
        (["--upload-size", "big"], "argument --upload-size: expected a size like 4M, 512K or 1500000, got 'big'"),
        (["--model-format", "onnx"], "argument --model-format: invalid choice: 'onnx'"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_each_bad_value_is_named_in_the_error(capsys, argv, said):
    assert said in refused(capsys, *argv)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--load-master"], "--load-master: say how many users the workers run, e.g. --load 32 --load-master"),
        (["--load-worker", "--load", "4"], "--load-worker runs users for a master; give --load on the master"),
    ],
)
def test_distributed_load_options_that_contradict_each_other_exit_2_with_the_fix(capsys, argv, said):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert said in err
    assert err.endswith("Tip: run `test_mlflow_local.py --help` for the options.\n")


def test_the_program_name_is_the_one_the_user_typed(capsys):
    with pytest.raises(SystemExit):
        build_parser("mlflowcheck").parse_args(["--load", "x"])
    assert capsys.readouterr().err.endswith("Tip: run `mlflowcheck --help` for the options.\n")


def test_the_help_ends_with_the_exit_codes_and_the_checks_one_per_line():
    text = build_parser().format_help()
    assert (
        "Exit codes: 0 every required check passed, 1 a required check failed or is unsupported by the server, "
        "2 the suite could not run."
    ) in text
    assert "Checks, in the order they run (-k selects by name; docs/checks.md):" in text
    assert "\n  load          [--load] concurrent users (Locust) lose" in text


def test_the_version_names_the_suite_mlflow_and_python():
    import platform

    import mlflow

    assert version_text("mlflowcheck") == (
        f"mlflowcheck {__version__} (MLflow client {mlflow.__version__}, Python {platform.python_version()})"
    )


# --- the values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("16", 16), (" 3 ", 3)])
def test_a_positive_whole_number_is_accepted(text, value):
    assert positive_int(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "x", ""])
def test_anything_else_is_not_a_positive_whole_number(text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        positive_int(text)
    assert str(info.value) == f"expected a positive whole number, got {text!r}"


@pytest.mark.parametrize(("text", "value"), [("1", 1.0), ("0.25", 0.25), ("1e3", 1000.0)])
def test_a_positive_number_of_seconds_is_accepted(text, value):
    assert positive_float(text) == value


@pytest.mark.parametrize("text", ["0", "-0.5", "x", ""])
def test_anything_else_is_not_a_positive_number_of_seconds(text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        positive_float(text)
    assert str(info.value) == f"expected a positive number of seconds, got {text!r}"


def test_not_a_number_is_not_a_positive_number_of_seconds():
    with pytest.raises(argparse.ArgumentTypeError):
        positive_float("nan")


def test_a_size_argument_is_a_size_or_the_sizes_message():
    assert size_argument("4M") == 4 * 2**20
    with pytest.raises(argparse.ArgumentTypeError) as info:
        size_argument("4X")
    assert str(info.value) == "expected a size like 4M, 512K or 1500000, got '4X'"


# --- output paths --------------------------------------------------------------------------------


def test_a_new_file_in_an_existing_folder_is_writable_and_is_not_left_behind(tmp_path):
    path = tmp_path / "result.json"
    assert file_unwritable(path) == ""
    assert not path.exists()


def test_an_existing_file_is_writable_and_left_as_it_was(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("earlier run")
    assert file_unwritable(path) == ""
    assert path.read_text() == "earlier run"


def test_a_file_path_that_is_a_folder_or_under_a_missing_or_non_folder_is_named(tmp_path):
    (tmp_path / "plain").write_text("x")
    assert file_unwritable(tmp_path) == "this is a folder, not a file"
    assert file_unwritable(tmp_path / "typo" / "r.json") == f"no such folder: {tmp_path / 'typo'}"
    assert file_unwritable(tmp_path / "plain" / "r.json") == f"{tmp_path / 'plain'} is not a folder"


@needs_unwritable
def test_a_file_the_kernel_refuses_is_named_with_the_systems_reason():
    assert file_unwritable(UNWRITABLE / "result.json") == "cannot be written (Permission denied)"


def test_a_folder_may_exist_or_be_new_in_an_existing_folder(tmp_path):
    assert folder_unwritable(tmp_path) == ""
    assert folder_unwritable(tmp_path / "new") == ""
    assert not (tmp_path / "new").exists(), "checking makes nothing"
    assert os.listdir(tmp_path) == [], "and leaves nothing behind"


def test_a_folder_path_that_is_a_file_or_under_a_missing_folder_is_named(tmp_path):
    (tmp_path / "plain").write_text("x")
    assert folder_unwritable(tmp_path / "plain") == "this is a file, not a folder"
    assert folder_unwritable(tmp_path / "a" / "b") == f"no such folder: {tmp_path / 'a'}"


@needs_unwritable
def test_a_folder_the_kernel_refuses_names_the_folder_that_cannot_be_written():
    assert folder_unwritable(UNWRITABLE) == "/sys cannot be written (Permission denied)"
    assert folder_unwritable(UNWRITABLE / "shots") == "/sys cannot be written (Permission denied)"


def test_good_output_paths_are_no_problem(tmp_path):
    args = parse(
        "--json", str(tmp_path / "r.json"), "--junitxml", str(tmp_path / "j.xml"), "--screenshots",
        str(tmp_path / "shots"), "--server-dir", str(tmp_path / "srv"),
    )  # fmt: skip
    assert output_paths_problem(args) is None
    assert output_paths_problem(parse()) is None


@pytest.mark.parametrize(("option", "example"), [("--json", "result.json"), ("--junitxml", "junit.xml")])
def test_an_output_file_that_cannot_be_written_is_a_fatal_problem_with_an_example(tmp_path, option, example):
    path = tmp_path / "typo" / "out"
    failure = output_paths_problem(parse(option, str(path)))
    assert failure.fatal
    assert failure.message == f"{option} {path}: no such folder: {tmp_path / 'typo'}."
    assert failure.tip == (
        f"give {option} a file in a folder that exists and that you can write, e.g. {option} {example}"
    )


@pytest.mark.parametrize("option", ["--screenshots", "--server-dir"])
def test_an_output_folder_that_cannot_be_made_is_a_fatal_problem(tmp_path, option):
    path = tmp_path / "typo" / "out"
    failure = output_paths_problem(parse(option, str(path)))
    assert failure.fatal
    assert failure.message == f"{option} {path}: no such folder: {tmp_path / 'typo'}."
    assert failure.tip == f"give {option} a folder you can write (a new one is made, inside a folder that exists)."


def test_the_files_are_checked_before_the_folders(tmp_path):
    args = parse("--screenshots", str(tmp_path / "x" / "y"), "--json", str(tmp_path / "z" / "r.json"))
    assert output_paths_problem(args).message.startswith("--json ")


def test_require_of_a_group_that_runs_only_with_its_option_is_refused(capsys):
    from mlflowcheck.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--require", "tracking,security"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--require security: that group runs only with --security or --security-write" in err
    assert "Tip: run `test_mlflow_local.py --help` for the options." in err


# --- read-only runs -----------------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--cleanup"], ["--restart"], ["--load", "2"], ["--security-write"]])
def test_fingerprint_and_compare_refuse_an_option_that_writes_to_the_server(option, tmp_path):
    failure = read_only_problem(parse("--fingerprint", str(tmp_path / "f.jsonl"), *option))
    assert failure.fatal
    assert failure.message == f"--fingerprint and --compare only read, and {option[0]} writes to the server."
    assert failure.tip == "run them separately: the fingerprint first, then the suite with the other options."


def test_the_scope_options_without_fingerprint_or_compare_are_refused():
    failure = read_only_problem(parse("--scope", "all"))
    assert failure.message == "--scope, --experiment, --artifacts and --match-by go with --fingerprint or --compare."
    assert failure.tip == "add --fingerprint FILE (before a change) or --compare FILE (after it)."
    assert read_only_problem(parse()) is None


def test_compare_of_a_file_that_is_no_whole_manifest_is_refused_before_the_run_with_the_cause(tmp_path):
    cut = tmp_path / "cut.jsonl"
    cut.write_text('{"kind": "manifest", "schema": 1}\n{"kind": "run", "id": "r1"}\n')
    failure = read_only_problem(parse("--compare", str(cut)))
    assert failure.fatal
    assert failure.message == (
        f"{cut} is not a fingerprint this suite can compare: it ends before its trailer "
        "(the fingerprint was cut short)."
    )
    assert failure.tip.startswith("give --compare the file an earlier --fingerprint wrote")
    missing = read_only_problem(parse("--compare", str(tmp_path / "none.jsonl")))
    assert missing.message.endswith("is not a fingerprint this suite can compare: No such file or directory.")


# --- the monitoring probe -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--prom-textfile", "p.prom"], "--prom-textfile belongs to --probe"),
        (["--probe-config", "p.toml"], "--probe-config belongs to --serve-probe"),
        (["--probe", "--serve-probe", "127.0.0.1:9115"], "give one of them"),
        (["--serve-probe", "127.0.0.1:9115", "--prom-textfile", "p.prom"], "--serve-probe answers the metrics"),
        (["--probe", "--probe-config", "p.toml"], "--probe probes --tracking-uri"),
    ],
)
def test_a_monitoring_option_out_of_place_is_refused_with_the_option_it_belongs_to(capsys, argv, said):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert said in err
    assert "Tip: run `test_mlflow_local.py --help`" in err


def test_a_probe_textfile_in_a_missing_folder_is_refused_before_the_cycle(capsys, tmp_path):
    assert main(["--probe", "--prom-textfile", str(tmp_path / "no" / "p.prom")]) == 2
    err = capsys.readouterr().err
    assert "--prom-textfile" in err
    assert "mlflow_probe.prom" in err


def test_the_timeout_is_900_s_for_the_suite_and_20_s_for_a_probe_cycle():
    assert DEFAULT_TIMEOUT == 900.0
    assert "a probe cycle: 20s" in " ".join(build_parser().format_help().split())
