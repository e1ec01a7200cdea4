"""Live processes and handles: the local server, the model worker, the browser, the session; every
use of MLflow's private APIs."""
