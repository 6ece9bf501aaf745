"""Scenario 3: latency-bound. No rate limits, every answer takes 1.0 s, 64 calls in flight.

The best any client can do is 64 calls/s; the figure shows how close the stack (limiter,
breaker, ledger, retries all active, state in SQLite) keeps its 64 slots busy.
"""

from __future__ import annotations

import tempfile
import time

from benchmarks.documents import extraction_requests
from benchmarks.drive import run_stack, unlimited_settings
from benchmarks.harness import ScenarioResult, Target, log, simulator
from llm_pipeline.simulator import Latency, SimulatorConfig

__all__ = ["CALLS", "run_latency"]

IN_FLIGHT = 64
LATENCY_S = 1.0
#: 20 rounds of 64: long enough that the first and last round are a small part of the run.
CALLS = 20 * IN_FLIGHT


def run_latency(n: int = CALLS) -> ScenarioResult:
    started = time.perf_counter()
    log(f"[3] latency-bound: {n} calls, {IN_FLIGHT} in flight, {LATENCY_S} s each")
    requests = extraction_requests(n, seed=3)
    config = SimulatorConfig(latency=Latency(median_s=LATENCY_S, sigma=0.0))
    with simulator(config) as sim, tempfile.TemporaryDirectory() as state:
        run = run_stack(unlimited_settings(sim.base_url, IN_FLIGHT, state), requests)
        server = sim.control.stats()
    best = IN_FLIGHT / LATENCY_S
    rate = run.ok / run.wall_s
    row = {
        "client": "llm_pipeline (SQLite state)",
        "calls": n,
        "lost": run.lost,
        "wall_s": round(run.wall_s, 2),
        "calls_per_s": round(rate, 1),
        "best_possible_per_s": best,
        "ratio": round(rate / best, 3),
        "max_in_flight_seen_by_server": server["max_in_flight"],
    }
    return ScenarioResult(
        key="3",
        title="Latency-bound: no limits, 64 in flight, 1.0 s per answer",
        config={"calls": n, "in_flight": IN_FLIGHT, "latency_s": LATENCY_S, "faults": None, "limits": None},
        columns=list(row),
        rows=[row],
        targets=[Target("calls/s / 64", row["ratio"], ">=", 0.90)],
        definitions=[
            "ratio = (answered calls / T) / (64 / 1.0 s), T = seconds from the first request sent to the "
            "last answer: 1.0 = all 64 slots busy all the time."
        ],
        seconds=time.perf_counter() - started,
    )
