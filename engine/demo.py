"""`python -m engine.demo`: run `jobs/demo.yaml` against servers started here.

Starts an FTP server (pyftpdlib) serving a generated tree and an SMTP sink (aiosmtpd)
on free loopback ports, in this process, then runs the demo jobs with the normal
`xfer run` machinery, live progress included. Results land in `demo-output/` beside
`jobs/`. Needs the `demo` extra: `pip install -e '.[demo]'`. No root, no system
packages."""

from __future__ import annotations

import argparse
import os
import random
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_demo_tree(root: Path, files_per_dir: int = 20) -> None:
    """A small software-release-like tree: sources, docs, and release tarballs.

    Made once: a second demo run finds it unchanged and mirrors nothing."""
    if root.is_dir():
        return
    rng = random.Random(42)
    for folder in ("src", "src/engine", "docs", "releases", "tmp"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for index in range(files_per_dir):
        (root / "src" / f"module{index}.py").write_text(f"# module {index}\nVALUE = {index}\n" * (index + 1))
        (root / "src/engine" / f"part{index}.py").write_text(f"def part_{index}():\n    return {index}\n")
        (root / "docs" / f"chapter{index}.txt").write_text(f"Chapter {index}\n" + "lorem ipsum " * 200)
    for version in ("1.2.0", "1.9.3", "1.10.0"):
        (root / "releases" / f"tool-{version}.tar.gz").write_bytes(rng.randbytes(256 * 1024))
    (root / "tmp" / "scratch.tmp").write_text("not mirrored: excluded by the demo job\n")


@contextmanager
def ftp_server(root: Path) -> Iterator[int]:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_user(DEMO_USER, DEMO_PASSWORD, str(root), perm="elradfmwMT")
    handler = type("DemoFTPHandler", (FTPHandler,), {"authorizer": authorizer, "banner": "xfer demo FTP"})
    handler.log_prefix = ""
    port = _free_port()
    server = FTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.close_all()


@contextmanager
def smtp_sink() -> Iterator[tuple[int, list[int]]]:
    """An aiosmtpd sink that only counts what it accepts."""
    from aiosmtpd.controller import Controller

    accepted = [0]

    class Counter:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            accepted[0] += 1
            return "250 OK"

    port = _free_port()
    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, accepted
    finally:
        controller.stop()


def main(argv: list[str] | None = None) -> int:
    import logging

    from xfer.cli import main as xfer_main

    parser = argparse.ArgumentParser(prog="python -m engine.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="jobs/demo.yaml", help="the demo job file (default: %(default)s)")
    parser.add_argument("xfer_args", nargs="*", help="extra arguments for `xfer run` (e.g. --json)")
    args = parser.parse_args(argv)
    job_file = Path(args.jobs).resolve()
    output = job_file.parent.parent / "demo-output"
    source = output / "ftp-server-root"
    from pyftpdlib.log import config_logging

    config_logging(level=logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    make_demo_tree(source)
    with ftp_server(source) as ftp_port, smtp_sink() as (smtp_port, accepted):
        os.environ.update(
            XFER_DEMO_FTP=f"ftp://{DEMO_USER}@127.0.0.1:{ftp_port}",
            XFER_DEMO_FTP_PASSWORD=DEMO_PASSWORD,
            XFER_DEMO_SMTP=f"smtp://127.0.0.1:{smtp_port}",
            XFER_DEMO_OUTPUT=str(output),
        )
        print(f"demo servers: FTP on 127.0.0.1:{ftp_port}, SMTP sink on 127.0.0.1:{smtp_port}", file=sys.stderr)
        code = xfer_main(["run", str(job_file), "--report", str(output / "report.json"), *args.xfer_args])
        print(f"SMTP sink accepted {accepted[0]} messages", file=sys.stderr)
    print(f"results in {output} (report: {output / 'report.json'})", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
