"""A floor judged over several passes: the rounds of the raw JSON files pooled.

One pass's table gives the ratio of the two tools' medians. On this VM the machine's
speed drifts within a pass (round 10: xfer's 5,000-file mirror took 1.25-1.31 s in
the first rounds of a pass and 1.72-2.09 s in the last, and lftp drifted with it), and
the order of tools rotates, so which rounds a tool's median falls on moves that ratio
by more than the margins in question. Every round runs both tools back to back, so
the ratio *within* a round (`round_ratios`) is exposed to the drift of seconds, not of
minutes; the bench scripts give its median for their own pass too (`paired_ratio`).

For each scenario and peer this prints, over every file given (passes of the same code):
the rounds pooled, the median of the per-round ratios with its quartiles, and the
ratio of the pooled medians. A ratio is xfer's time over the peer's (lower is better),
except against smtp-source, where it is xfer's rate over the peer's (higher is better),
as in the tables of RESULTS.md. Reads the format of every bench script (`runs`, or
bench_ftp's `samples`); failed runs and warm-ups are left out.

    python benchmarks/pool_passes.py benchmarks/results-ftp-small-noop-round10*.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

#: The peer each floor names, and whether the figure is a rate (messages/s) rather than a time.
PEERS = {"lftp": False, "lftp-concurrent": False, "mbsync": False, "smtp-source": True}


def round_ratios(runs: Iterable[Any], tool: str, peer: str) -> list[float]:
    """`tool`'s wall time over `peer`'s in each timed round where both succeeded
    (`runs`: anything with tool, round, wall and ok: harness.Run, bench_ftp's samples)."""
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for run in runs:
        if run.round >= 0 and run.ok:
            by_round[run.round][run.tool] = run.wall
    return [walls[tool] / walls[peer] for walls in by_round.values() if tool in walls and peer in walls]


def paired_ratio(runs: Iterable[Any], tool: str, peer: str) -> float | None:
    """The median of `round_ratios`, or None when no round has both."""
    ratios = round_ratios(runs, tool, peer)
    return round(statistics.median(ratios), 3) if ratios else None


def scenarios(document: dict[str, Any]) -> dict[str, list[SimpleNamespace]]:
    """Scenario -> its runs, from either raw format."""
    if "runs" in document:
        found = document["runs"]
    else:
        found = {name: [run for runs in tools.values() for run in runs] for name, tools in document["samples"].items()}
    return {name: [SimpleNamespace(**run) for run in runs] for name, runs in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="raw JSON files of one code version")
    args = parser.parse_args()
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    walls: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in args.files:
        for scenario, runs in scenarios(json.loads(path.read_text())).items():
            tools = {run.tool for run in runs}
            if "xfer" not in tools:
                continue
            for peer in PEERS.keys() & tools:
                ratios[scenario, peer] += round_ratios(runs, "xfer", peer)
                for run in runs:
                    if run.tool in ("xfer", peer) and run.round >= 0 and run.ok:
                        walls[scenario, peer][run.tool].append(run.wall)
    print("| scenario | peer | rounds | per-round ratio, median (quartiles) | ratio of pooled medians |")
    print("|---|---|---|---|---|")
    for (scenario, peer), found in sorted(ratios.items()):
        rate = PEERS[peer]
        paired = [1 / ratio for ratio in found] if rate else found
        low, _, high = statistics.quantiles(paired, n=4) if len(paired) > 1 else (paired[0],) * 3
        xfer, other = (statistics.median(walls[scenario, peer][tool]) for tool in ("xfer", peer))
        medians = other / xfer if rate else xfer / other
        middle = statistics.median(paired)
        print(f"| {scenario} | {peer} | {len(paired)} | {middle:.3f} ({low:.2f}-{high:.2f}) | {medians:.3f} |")


if __name__ == "__main__":
    main()
