"""Prove an MLflow tracking deployment works end to end, and say what is wrong when not.

Modules, one per layer of a deployment:
  server      the server process (start, probe, stop a local ``mlflow server``)
  diagnosis   the layers before any data moves: URI, network, is it MLflow, versions, access
  tracking    the tracking store: experiment, run, params, metrics, dataset, search
  artifacts   the artifact store: the report, uploaded and read back
  models      logged model and model registry
  ui          the web app
and the engine: ``checks`` (the checks, in order), ``plugin`` (pytest as the runner),
``suite`` (shared state), ``seed`` (what the seed's run logs), ``cli`` (the command line).
"""

__version__ = "0.2.0"
