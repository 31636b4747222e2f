"""`mail inspect --json` draws nothing, so it imports no rich (README: rich only for the table)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parents[1] / "data" / "inspect"


def test_json_listing_imports_no_rich() -> None:
    code = (
        "import sys, argparse\n"
        "from xfer.inspect.cli import register\n"
        "p = argparse.ArgumentParser(); register(p.add_subparsers(dest='c'))\n"
        f"a = p.parse_args(['mail', 'inspect', {str(DATA / 'ham.eml')!r}, '--json'])\n"
        "assert a.handler(a) == 0\n"
        "print(sorted(m for m in sys.modules if m == 'rich' or m.startswith('rich.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
