"""The whole suite on the tracking stores users run: SQLite, PostgreSQL and MariaDB.

Each test gets a throwaway database, dropped afterwards. A database server that is not
reachable skips its test with the reason, except in CI (CI=true), where it fails: CI can
never go green by skipping a backend.
"""

from __future__ import annotations

from mlflowcheck.runtime.server import free_port
from tests.support import run_suite


def test_whole_suite_passes_on_backend_and_unicode_round_trips(database, tmp_path):
    result = run_suite(
        tmp_path, "--start-server", "--tracking-uri", f"http://127.0.0.1:{free_port()}",
        "--server-dir", str(tmp_path / "server"), "--backend-store-uri", database.uri,
    )  # fmt: skip
    result.assert_all_passed()
    report = result.report
    # Read the database itself: the Chinese names are stored exactly, not mangled.
    experiment = database.query("select name from experiments where experiment_id = %s", int(report["experiment_id"]))
    assert experiment == [(report["experiment_name"],)]
    assert report["experiment_name"].startswith("本地测试实验_")
    run = database.query("select name, status from runs where run_uuid = %s", report["run_id"])
    assert run == [("本地测试运行", "FINISHED")]
    assert database.query("select value from input_tags where name = %s", "mlflow.data.context") == [("训练数据",)]


def test_missing_driver_is_named_with_the_install_command(tmp_path):
    result = run_suite(
        tmp_path, "--start-server", "--tracking-uri", f"http://127.0.0.1:{free_port()}",
        "--server-dir", str(tmp_path), "--backend-store-uri", "mysql://root@127.0.0.1:3306/test",
    )  # fmt: skip
    assert result.code == 2
    assert "needs the Python driver 'MySQLdb'" in result.output
    expected = "Tip: pip install mysqlclient, or use the installed driver: mysql+pymysql://root@127.0.0.1:3306/test"
    assert expected in result.output
