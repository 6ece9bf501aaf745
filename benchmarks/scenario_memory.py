"""Scenario 5: memory of `extracted_entities` on a 10,000- and a 100,000-document partition.

Each day is generated (`sample_data.write_day`, realistic lengths, the ten awkward lines included)
and materialized by the real assets against a zero-latency simulator in its own process: first
`raw_documents` in one child process, then `extracted_entities` in a fresh one, whose peak RSS
(`ru_maxrss`) and wall time are the figures. Bounded memory means the 100,000 figure stays
close to the 10,000 one instead of growing tenfold.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, ScenarioResult, Target, log, simulator
from llm_pipeline.simulator import SimulatorConfig
from llm_pipeline.tools.sample_data import write_day

__all__ = ["SIZES", "run_memory"]

SIZES = (10_000, 100_000)
LIMIT_MB = 1_024
_DAY = date(2026, 11, 20)


def _child(asset: str, data_dir: Path, state: Path, base_url: str) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "benchmarks.memory_child", "--asset", asset, "--data-dir", str(data_dir),
        "--partition", _DAY.isoformat(), "--base-url", base_url, "--state", str(state),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{asset} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, base_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, state = Path(tmp) / "data", Path(tmp) / "state"
        write_day(data_dir / "raw" / f"{_DAY.isoformat()}.jsonl", _DAY, n)
        _child("raw_documents", data_dir, state, base_url)
        run = _child("extracted_entities", data_dir, state, base_url)
    statuses = run["statuses"]
    return {
        "documents": n,
        "rows": run["rows"],
        "ok": statuses.get("ok", 0),
        "not_ok": run["rows"] - statuses.get("ok", 0),
        "peak_rss_mb": run["peak_rss_mb"],
        "wall_s": run["wall_s"],
        "documents_per_s": round(n / run["wall_s"], 1),
    }


def run_memory(sizes: tuple[int, ...] = SIZES) -> ScenarioResult:
    started = time.perf_counter()
    rows = []
    with simulator(SimulatorConfig()) as sim:
        for n in sizes:
            log(f"[5] extracted_entities on a generated {n:,}-document partition")
            rows.append(measure(n, sim.base_url))
            sim.control.reset()  # a fresh answer cache and counters for the next size
    largest = rows[-1]
    growth = round(largest["peak_rss_mb"] / rows[0]["peak_rss_mb"], 2) if len(rows) > 1 else None
    return ScenarioResult(
        key="5",
        title="Memory: extracted_entities on generated partitions",
        config={
            "sizes": list(sizes),
            "simulator": "zero latency, no limits, no faults",
            "max_concurrency": 64,
        },
        columns=list(rows[0]),
        rows=rows,
        targets=[
            Target(
                f"peak RSS at {largest['documents']:,} documents (MB)", largest["peak_rss_mb"], "<=", LIMIT_MB
            )
        ],
        definitions=[
            "peak RSS = ru_maxrss of the process that materialized extracted_entities alone (imports, "
            "Dagster, the call stack and the step; raw_documents ran in another process before it); "
            "wall = seconds of that materialization.",
            f"growth {rows[0]['documents']:,} -> {largest['documents']:,} documents: x{growth} peak RSS "
            "(x10 would mean memory grows with the partition).",
        ],
        notes=[
            "not_ok rows are the generator's deliberately awkward lines (rejected or flagged), not losses."
        ],
        seconds=time.perf_counter() - started,
    )
