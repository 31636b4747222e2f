"""A floor judged over several passes: the rounds of the raw JSON files pooled.

One pass's table gives the ratio of the two tools' medians. On this VM the machine's
speed drifts within a pass (round 10: xfer's 5,000-file mirror took 1.25-1.31 s in
the first rounds of a pass and 1.72-2.09 s in the last, and lftp drifted with it), and
the order of tools rotates, so which rounds a tool's median falls on moves that ratio
by more than the margins in question. Every round runs both tools back to back, so
the ratio *within* a round is exposed to the drift of seconds, not of minutes.

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
from pathlib import Path
from typing import Any

#: The peer each floor names, and whether the figure is a rate (messages/s) rather than a time.
PEERS = {"lftp": False, "lftp-concurrent": False, "mbsync": False, "smtp-source": True}


def scenarios(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Scenario -> its runs, from either raw format."""
    if "runs" in document:
        return document["runs"]
    return {name: [run for runs in tools.values() for run in runs] for name, tools in document["samples"].items()}


def rounds(runs: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Each timed round's wall times by tool (warm-ups and failed runs left out)."""
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for run in runs:
        if run.get("round", 0) >= 0 and run.get("ok", True):
            by_round[run["round"]][run["tool"]] = run["wall"]
    return list(by_round.values())


def pool(paths: list[Path]) -> dict[tuple[str, str], list[dict[str, float]]]:
    """(scenario, peer) -> the rounds of every file that has both xfer and that peer."""
    pooled: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for path in paths:
        for scenario, runs in scenarios(json.loads(path.read_text())).items():
            for walls in rounds(runs):
                for peer in PEERS.keys() & walls.keys():
                    if "xfer" in walls:
                        pooled[scenario, peer].append({"xfer": walls["xfer"], peer: walls[peer]})
    return pooled


def ratio(xfer: float, peer: float, rate: bool) -> float:
    return peer / xfer if rate else xfer / peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="raw JSON files of one code version")
    args = parser.parse_args()
    print("| scenario | peer | rounds | paired ratio, median (quartiles) | ratio of pooled medians |")
    print("|---|---|---|---|---|")
    for (scenario, peer), pairs in sorted(pool(args.files).items()):
        rate = PEERS[peer]
        paired = [ratio(pair["xfer"], pair[peer], rate) for pair in pairs]
        low, _, high = statistics.quantiles(paired, n=4) if len(paired) > 1 else (paired[0],) * 3
        medians = ratio(statistics.median(p["xfer"] for p in pairs), statistics.median(p[peer] for p in pairs), rate)
        middle = statistics.median(paired)
        print(f"| {scenario} | {peer} | {len(pairs)} | {middle:.3f} ({low:.2f}-{high:.2f}) | {medians:.3f} |")


if __name__ == "__main__":
    main()
