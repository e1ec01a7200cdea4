"""The deadlines and size limits of every request the suite makes itself."""

#: The first contact has a short deadline and no retries: MLflow's own client retries a
#: dead port for minutes before it gives up.
CONNECT_TIMEOUT = 3.0
#: Longer than MLflow's SQLite store waits for a lock (busy_timeout 20 s) before it answers
#: "database is locked": the suite waits to hear the server's own reason, not a bare time-out.
READ_TIMEOUT = 25.0
#: A whole answer to one of the suite's own requests (probes, the UI's files), and its size.
RESPONSE_DEADLINE = 30.0
MAX_RESPONSE_BYTES = 64 * 2**20
