"""Distributed runs: one job set across many worker processes and machines, on Redis.

`xfer run FILE --broker redis://…` (or `--workers N`, which starts a private
redis-server and N local workers) is the *coordinator*: it validates the files, splits
the jobs into units (`units.py`), seals each unit (`sealing.py`: passwords never sit in
Redis in clear) and enqueues it on a taskiq stream queue (`broker.py`). `xfer worker`
processes take units and run each with the ordinary scheduler; every worker's open
connections hold leases on their host in Redis (`gate.py`), so a host's limit holds
across all of them. Workers send their events back in batches (`eventlink.py`); the
coordinator merges the units of a job (`merge.py`) into the same events a local run
emits, so the live display, the report and the exit code are a local run's.

Delivery is at least once: a unit whose worker died runs again elsewhere once its
claim lapses, and every unit is idempotent (mirrors rename `.part` files and compare
size and mtime; mail.fetch keeps a ledger; news scans keep high-water marks). The
report counts only the last attempt of a unit and names units that ran more than once.

State (`.xfer/state.db` beside the job file, or `defaults.state`) is opened by the
worker that runs a unit, at the path the coordinator resolved: for one machine that
is the same file; across machines the job file's folder (or `defaults.state`) must be
on storage every worker sees at the same path, as the destinations must be."""
