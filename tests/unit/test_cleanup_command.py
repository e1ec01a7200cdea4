"""The command --cleanup prints for purging what MLflow's API only moves to the trash (probes.cleanup)."""

from __future__ import annotations

from mlflowcheck.core.options import Options
from mlflowcheck.core.secrets import redact_backend_uri
from mlflowcheck.probes.cleanup import gc_command
from mlflowcheck.runtime.session import Session


def test_gc_command_names_the_runs_experiment_and_hides_the_database_password():
    suite = Session(Options("http://h:1", backend_store_uri=redact_backend_uri("postgresql://u:pw-x@db/m")))
    suite.experiment_id = "7"
    assert gc_command(suite) == "mlflow gc --backend-store-uri postgresql://u:***@db/m --experiment-ids 7"
    suite.tmp.rmdir()


def test_without_an_experiment_the_command_purges_the_run(tmp_path):
    suite = Session(Options("http://h:1", backend_store_uri="sqlite:///my.db"), tmp=tmp_path)
    suite.run_id = "abc123"
    assert gc_command(suite) == "mlflow gc --backend-store-uri sqlite:///my.db --run-ids abc123"


def test_on_a_server_the_suite_did_not_start_the_store_is_left_for_the_user_to_fill_in(tmp_path):
    suite = Session(Options("http://h:1"), tmp=tmp_path)
    suite.experiment_id = "2"
    assert gc_command(suite) == "mlflow gc --backend-store-uri <the server's --backend-store-uri> --experiment-ids 2"
