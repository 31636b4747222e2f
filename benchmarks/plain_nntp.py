"""The plain nntplib client bench_nntp.py compares xfer with: what a user would write.

    plain_nntp.py HOST PORT OUT GROUP[,GROUP...] [--step 2000] [--connections N]
        GROUP, then OVER per group (or per STEP articles, as scripts page through big
        groups), one JSON line per article into OUT; with N connections the groups are
        dealt to N threads, each with its own connection, writing OUT.0 ... OUT.N-1.
    plain_nntp.py HOST PORT OUT GROUP --bodies COUNT
        the classic loop: BODY per article, one after another, one connection.
"""

from __future__ import annotations

import argparse
import json
import threading
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib


def scan(host: str, port: int, groups: list[str], out: str, step: int | None) -> None:
    with nntplib.NNTP(host, port) as client, open(out, "w") as sink:
        for group in groups:
            _, _, first, last, _ = client.group(group)
            for low in range(first, last + 1, step or last + 1):
                high = min(last, low + (step or last + 1) - 1)
                _, overviews = client.over((low, high))
                for number, fields in overviews:
                    sink.write(json.dumps({"group": group, "number": number, **fields}) + "\n")


def bodies(host: str, port: int, group: str, count: int, out: str) -> None:
    with nntplib.NNTP(host, port) as client, open(out, "w") as sink:
        client.group(group)
        for number in range(1, count + 1):
            client.body(str(number))
            sink.write(f"{number}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("out")
    parser.add_argument("groups")
    parser.add_argument("--step", type=int)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--bodies", type=int)
    args = parser.parse_args()
    groups = args.groups.split(",")
    if args.bodies:
        bodies(args.host, args.port, groups[0], args.bodies, args.out)
    elif args.connections == 1:
        scan(args.host, args.port, groups, args.out, args.step)
    else:
        threads = [
            threading.Thread(target=scan, args=(args.host, args.port, groups[n::args.connections], f"{args.out}.{n}", args.step))
            for n in range(args.connections)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()
