"""The command-line side of distributed runs: `xfer worker`, and the coordinator
that `xfer run --broker/--workers` uses in place of a local run."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xfer.api import JobSet
    from xfer.distributed.coordinator import Coordinator


@contextlib.contextmanager
def coordinator_for(jobs: JobSet, only: set[str] | None, args: argparse.Namespace) -> Iterator[Coordinator]:
    """The run's coordinator; with `--workers N`, also the private broker (unless
    `--broker` names one) and the N local workers, for the run's lifetime."""
    from xfer.distributed.coordinator import Coordinator
    from xfer.distributed.local import local_workers, private_redis
    from xfer.distributed.sealing import Sealer, key_from_environment, new_key

    options: dict[str, Any] = {"dry_run": args.dry_run, "force": args.force, "max_connections": args.max_connections}
    files = list(jobs.files)
    with contextlib.ExitStack() as stack:
        broker = args.broker or stack.enter_context(private_redis())
        key = key_from_environment() if args.broker else new_key()
        coordinator = Coordinator(broker, Sealer(key), files, only, options, workers=args.workers)
        if args.workers:
            processes = stack.enter_context(local_workers(args.workers, broker, key, args.loop,
                                                          owns_broker=not args.broker))
            coordinator.workers_alive = lambda: any(process.poll() is None for process in processes)
        yield coordinator


def cmd_worker(args: argparse.Namespace) -> int:
    if args.new_key:
        from xfer.distributed.sealing import KEY_VARIABLE, new_key

        print(f"{KEY_VARIABLE}={new_key()}")
        return 0
    if not args.broker:
        raise SystemExit("xfer worker: --broker URL is required")
    from xfer.cli import loop_factory
    from xfer.distributed.worker import main

    return main(args.broker, loop_factory(args.loop))


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--broker", metavar="URL",
                     help="run on the workers of this Redis (redis://, rediss://, unix://); needs XFER_BROKER_KEY")
    run.add_argument("--workers", type=int, metavar="N",
                     help="run on N local worker processes (a private redis-server unless --broker is given)")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    worker = commands.add_parser("worker", help="take units of distributed runs from a Redis broker and run them")
    worker.add_argument("--broker", metavar="URL", help="redis://[:PASSWORD@]HOST:PORT/DB, rediss://…, unix://PATH")
    worker.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    worker.add_argument("--new-key", action="store_true", help="print a new XFER_BROKER_KEY and exit")
    worker.set_defaults(handler=cmd_worker)
