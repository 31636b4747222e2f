"""Redis key names of a distributed run, in one place."""

from __future__ import annotations

WORKERS = "xfer:workers"  # sorted set: worker name -> expiry (epoch seconds)
WORKER_TTL = 15.0


def run_key(run: str) -> str:
    """Exists while the run's coordinator lives (refreshed; expires when it is gone)."""
    return f"xfer:run:{run}"


def stop_key(run: str) -> str:
    """Set to the signal's name when the coordinator was told to stop."""
    return f"xfer:run:{run}:stop"
