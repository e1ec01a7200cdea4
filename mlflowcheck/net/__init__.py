"""Talking to the server: the bounded HTTP client, TLS as MLflow's client does it, liveness. Below every probe."""
