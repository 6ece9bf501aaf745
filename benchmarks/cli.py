"""`python -m benchmarks` (`make bench`): run the scenarios of issues 8, 15 and 17; print and write results.

    python -m benchmarks                    # all eight at full size (~12 minutes on 2 cores)
    python -m benchmarks -s 1 -s 6          # some of them
    python -m benchmarks --scale 0.1        # every size x0.1 (a quick look; not comparable)
    python -m benchmarks --no-write         # print only

A full run (every scenario, scale 1) writes `benchmarks/results/<date>.json` and `.md` and
replaces `benchmarks/RESULTS.md`; any other run writes `<date>-partial.*` and leaves RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.harness import REPO, ScenarioResult, log, machine
from benchmarks.scenario_baselines import SEQUENTIAL_SAMPLE, run_baselines
from benchmarks.scenario_caching import DOCUMENTS as CACHING_DOCUMENTS
from benchmarks.scenario_caching import run_caching
from benchmarks.scenario_latency import CALLS as LATENCY_CALLS
from benchmarks.scenario_latency import run_latency
from benchmarks.scenario_limits import run_limits
from benchmarks.scenario_memory import SIZES, run_memory
from benchmarks.scenario_overhead import CALLS as OVERHEAD_CALLS
from benchmarks.scenario_overhead import ROUNDS, run_overhead
from benchmarks.scenario_rate import DOCUMENTS, run_rate, run_tokens

__all__ = ["main"]

ALL = ("1", "2", "3", "4", "5", "6", "7", "8")
RESULTS = REPO / "benchmarks" / "results"
LATEST = REPO / "benchmarks" / "RESULTS.md"


def _sized(n: int, scale: float, floor: int) -> int:
    return max(floor, round(n * scale))


def _plan(args: argparse.Namespace) -> dict[str, Callable[[dict[str, ScenarioResult]], ScenarioResult]]:
    s, rounds = args.scale, args.rounds
    documents = _sized(DOCUMENTS, s, 10)
    return {
        "1": lambda done: run_rate(documents),
        "2": lambda done: run_tokens(documents),
        "3": lambda done: run_latency(_sized(LATENCY_CALLS, s, 64)),
        "4": lambda done: run_overhead(_sized(OVERHEAD_CALLS, s, 50), rounds),
        "5": lambda done: run_memory(tuple(_sized(n, s, 100) for n in SIZES)),
        "6": lambda done: run_baselines(
            done["1"].rows[0] if "1" in done else None,
            documents,
            min(SEQUENTIAL_SAMPLE, documents),
            done["2"].rows[0] if "2" in done else None,
        ),
        "7": lambda done: run_limits(documents),
        "8": lambda done: run_caching(_sized(CACHING_DOCUMENTS, s, 20)),
    }


def _selected(values: Sequence[str]) -> list[str]:
    chosen = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = chosen - set(ALL)
    if unknown:
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(ALL)}")
    return [key for key in ALL if key in chosen] if chosen else list(ALL)


def main(argv: Sequence[str] | None = None) -> list[ScenarioResult]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-s", "--scenario", action="append", default=[], help="1-8, repeatable or comma-separated"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (default 1)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"scenario 4 rounds (default {ROUNDS})")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results/<date>.* go")
    parser.add_argument("--no-write", action="store_true", help="print the tables, write nothing")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    keys = _selected(args.scenario)
    plan = _plan(args)
    run: dict[str, Any] = {
        "date": date.today().isoformat(),
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]).strip(),
        "machine": machine(),
        "options": {"scenarios": keys, "scale": args.scale, "rounds": args.rounds},
    }
    started = time.perf_counter()
    done: dict[str, ScenarioResult] = {}
    for key in keys:
        done[key] = plan[key](done)
        log(f"[{key}] done in {done[key].seconds:.0f} s")
    run["seconds"] = round(time.perf_counter() - started, 1)
    run["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results = [done[key] for key in keys]
    print(report.markdown(run, results))
    if not args.no_write:
        full = keys == list(ALL) and args.scale == 1.0
        stem = run["date"] if full else f"{run['date']}-partial"
        paths = report.write(args.out, stem, run, results)
        if full:
            LATEST.write_text(paths[1].read_text(encoding="utf-8"), encoding="utf-8")
            paths = (*paths, LATEST)
        log(
            "wrote "
            + ", ".join(str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in paths)
        )
    met = [t.met for r in results for t in r.targets]
    log(f"targets met: {sum(m is True for m in met)}/{len(met)}")
    return results
