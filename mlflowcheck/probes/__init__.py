"""Asking the server, one module per layer of a deployment; what an answer means is explain's."""
