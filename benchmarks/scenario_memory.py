"""Scenario 5: memory of `extracted_entities` on a 10,000- and a 100,000-document partition.

Each day is generated (`sample_data.write_day`, realistic lengths, the ten awkward lines included)
and materialized by the real assets against a zero-latency simulator in its own process: first
`raw_documents` in one child process, then `extracted_entities` in a fresh one, whose peak RSS
(`ru_maxrss`) and wall time are the figures. Bounded memory means the 100,000 figure stays
close to the 10,000 one instead of growing tenfold.

The largest day runs once more with the warehouse on S3 (issue 18): raw input and Parquet in a
bucket of moto's S3 server on 127.0.0.1 (its own process), reached through the AWS variables, so
the step streams its input from the store, reads raw_documents through fsspec and uploads its
partition; its time stands beside the local-disk figure of the same size.
"""

from __future__ import annotations

import json
import os
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
from llm_pipeline_tests.fixtures.s3 import S3Store, run_moto_server

__all__ = ["SIZES", "run_memory"]

SIZES = (10_000, 100_000)
LIMIT_MB = 1_024
_DAY = date(2026, 11, 20)


def _child(
    asset: str, data_dir: str, state: Path, base_url: str, env: dict[str, str] | None
) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "benchmarks.memory_child", "--asset", asset, "--data-dir", data_dir,
        "--partition", _DAY.isoformat(), "--base-url", base_url, "--state", str(state),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{asset} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, base_url: str, s3: S3Store | None = None) -> dict[str, Any]:
    """One day of `n` documents on the local disk, or in `s3`'s bucket when given."""
    with tempfile.TemporaryDirectory() as tmp:
        local, state = Path(tmp) / "data", Path(tmp) / "state"
        raw = local / "raw" / f"{_DAY.isoformat()}.jsonl"
        write_day(raw, _DAY, n)
        data_dir, env = str(local), None
        if s3 is not None:
            s3.upload(raw, "raw", raw.name)
            data_dir, env = s3.url, {**os.environ, **s3.env()}
        _child("raw_documents", data_dir, state, base_url, env)
        run = _child("extracted_entities", data_dir, state, base_url, env)
    statuses = run["statuses"]
    return {
        "warehouse": "local disk" if s3 is None else "S3 (moto, 127.0.0.1)",
        "documents": n,
        "rows": run["rows"],
        "ok": statuses.get("ok", 0),
        "not_ok": run["rows"] - statuses.get("ok", 0),
        "peak_rss_mb": run["peak_rss_mb"],
        "wall_s": run["wall_s"],
        "documents_per_s": round(n / run["wall_s"], 1),
        "partition_mb": run["partition_mb"],
    }


def _on_s3(n: int, base_url: str) -> dict[str, Any]:
    with run_moto_server() as endpoint:
        s3 = S3Store(endpoint=endpoint, bucket="bench-memory")
        s3.create()
        return measure(n, base_url, s3)


def run_memory(sizes: tuple[int, ...] = SIZES) -> ScenarioResult:
    started = time.perf_counter()
    rows = []
    with simulator(SimulatorConfig()) as sim:
        for n in sizes:
            log(f"[5] extracted_entities on a generated {n:,}-document partition")
            rows.append(measure(n, sim.base_url))
            sim.control.reset()  # a fresh answer cache and counters for the next size
        log(f"[5] the same {sizes[-1]:,} documents with the warehouse on S3")
        rows.append(_on_s3(sizes[-1], sim.base_url))
    largest, s3_row = rows[-2], rows[-1]
    for row in rows:
        row["wall_vs_local"] = round(row["wall_s"] / largest["wall_s"], 2) if row is s3_row else None
    growth = round(largest["peak_rss_mb"] / rows[0]["peak_rss_mb"], 2) if len(rows) > 2 else None
    return ScenarioResult(
        key="5",
        title="Memory: extracted_entities on generated partitions",
        config={
            "sizes": list(sizes),
            "s3": f"{sizes[-1]} documents, moto_server (moto[server] from uv.lock) on 127.0.0.1",
            "simulator": "zero latency, no limits, no faults",
            "max_concurrency": 64,
        },
        columns=list(rows[0]),
        rows=rows,
        targets=[
            Target(
                f"peak RSS at {largest['documents']:,} documents (MB)", largest["peak_rss_mb"], "<=", LIMIT_MB
            ),
            Target(
                f"peak RSS at {s3_row['documents']:,} documents, warehouse on S3 (MB)",
                s3_row["peak_rss_mb"],
                "<=",
                LIMIT_MB,
            ),
        ],
        definitions=[
            "peak RSS = ru_maxrss of the process that materialized extracted_entities alone (imports, "
            "Dagster, the call stack and the step; raw_documents ran in another process before it); "
            "wall = seconds of that materialization.",
            f"growth {rows[0]['documents']:,} -> {largest['documents']:,} documents: x{growth} peak RSS "
            "(x10 would mean memory grows with the partition).",
            "S3 row: LLM_PIPELINE_DATA_DIR=s3://bench-memory/pipeline on moto's server in its own "
            "process (its memory is not in the figure); the step streams raw_documents through fsspec, "
            "stages its partition locally and uploads it whole. wall_vs_local = its wall time / the "
            "local-disk wall time of the same size in this run.",
            "partition_mb = size of the extracted_entities Parquet file.",
        ],
        notes=[
            "not_ok rows are the generator's deliberately awkward lines (rejected or flagged), not losses."
        ],
        seconds=time.perf_counter() - started,
    )
