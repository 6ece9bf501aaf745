"""Scenario 7: limits not configured (issue 15).

Scenario 1's workload (2,000 extraction requests against a simulator limited to 3,000 RPM with a
5 s bucket, lognormal 0.5 s latency, 5.5% injected faults, SQLite state) with no limit variable
set: the stack learns the limits and the bucket from the simulator's `anthropic-ratelimit-*`
headers. Four runs, each on a fresh simulator:

- no limit variables, 64 calls in flight at most (scenario 1's `LLM_PIPELINE_MAX_CONCURRENCY`), a
  fresh state: the first request goes alone (first contact), its headers set the limits;
- neither limits nor concurrency set, a fresh state: the in-flight bound is sized from the
  learned rate and the observed latency (Little's law);
- the same on a state an earlier run left (a short run of other documents, after which the
  simulator is reset): the limits are known from the shared state, no first contact;
- neither set, fresh state, and the server's limit halves `HALVE_AT_S` seconds into the run
  (3,000 to 1,500 RPM; the simulator starts its buckets full on a change).

throughput / limit is scenario 1's ratio (admitted / (bucket + rate x (T - L))); for the halving
run, what the server allowed is summed over both limits: B1 + r1 x t + B2 + r2 x (T - t - L),
t = when the change was made, B2 the new (full) bucket.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

from benchmarks.documents import MODEL, extraction_requests
from benchmarks.drive import StackRun, run_stack
from benchmarks.harness import ScenarioResult, Target, log, simulator
from benchmarks.scenario_rate import (
    BURST_S,
    CONCURRENCY,
    LATENCY,
    RPM,
    THROUGHPUT_DEFINITION,
    rate_config,
    stack_row,
)
from llm_pipeline.claude import ClaudeSettings
from llm_pipeline.simulator import Limits, SimulatorProcess

__all__ = ["HALVE_AT_S", "run_limits"]

HALVE_AT_S = 12.0
#: Documents of the earlier run that leaves the learned limits in the state.
WARM_UP = 20
LIMITER_429_DEFINITION = "limiter 429s = 429s from the simulator's rate limiter / all attempts."


def _settings(base_url: str, state: str, max_concurrency: int | None) -> ClaudeSettings:
    """What a user with a key and no limit variables gets (SQLite state, as scenario 1)."""
    return ClaudeSettings(
        api_key="sk-sim-bench", base_url=base_url, model=MODEL, state=state, max_concurrency=max_concurrency
    )


def _allowed(wall_s: float, changed_at: float | None) -> float:
    """Requests the server allowed from the first request sent to the last answer (less one latency)."""
    busy = max(wall_s - LATENCY.median_s, 1e-9)
    rate = RPM / 60.0
    if changed_at is None:
        return rate * BURST_S + rate * busy
    halved = rate / 2
    return rate * BURST_S + rate * changed_at + halved * BURST_S + halved * max(busy - changed_at, 0.0)


def _row(label: str, run: StackRun, server: dict[str, Any], changed_at: float | None) -> dict[str, Any]:
    """Scenario 1's row, with what the server allowed summed over both limits when it changed."""
    row = stack_row(run, server, label, tokens=False)
    row["throughput_vs_limit"] = round(server["successes"] / _allowed(run.wall_s, changed_at), 3)
    row["max_in_flight"] = server["max_in_flight"]
    row["limit_changed_at_s"] = None if changed_at is None else round(changed_at, 1)
    return row


def _measure(
    label: str, n: int, max_concurrency: int | None, *, halve: bool = False, known: bool = False
) -> dict[str, Any]:
    requests = extraction_requests(n)
    with simulator(rate_config(tokens=False)) as sim, tempfile.TemporaryDirectory() as state:
        settings = _settings(sim.base_url, state, max_concurrency)
        if known:  # an earlier run on the same state learned the limits
            run_stack(settings, extraction_requests(WARM_UP, seed=9))
            sim.control.reset()
            time.sleep(1.0)  # its bookings drain, as between two nightly runs
        changed: dict[str, float] = {}
        meanwhile = _halving(sim, changed) if halve else None
        run = run_stack(settings, requests, meanwhile)
        changed_at = changed["at"] - run.started if "at" in changed else None
        row = _row(label, run, sim.control.stats(), changed_at)
    log(f"[7] {label}: {row['throughput_vs_limit']} of the limit, {row['limiter_429']} limiter 429s")
    return row


def _halving(sim: SimulatorProcess, changed: dict[str, float]) -> Any:
    async def halve() -> None:
        await asyncio.sleep(HALVE_AT_S)
        await asyncio.to_thread(sim.control.configure, limits=Limits(rpm=RPM / 2, burst_seconds=BURST_S))
        changed["at"] = time.perf_counter()

    return halve


def run_limits(n: int) -> ScenarioResult:
    """Scenario 7: the limits learned, not configured."""
    started = time.perf_counter()
    log(f"[7] limits not configured: {n} documents x 4 runs")
    rows = [
        _measure(f"no limit variables, at most {CONCURRENCY} in flight, fresh state", n, CONCURRENCY),
        _measure("neither limits nor concurrency set, fresh state", n, None),
        _measure("neither set, limits known from an earlier run", n, None, known=True),
        _measure(f"neither set, fresh state, limit halves after {HALVE_AT_S:g} s", n, None, halve=True),
    ]
    steady = rows[:3]
    result = ScenarioResult(
        key="7",
        title="Limits not configured: learned from the headers (scenario 1's workload)",
        config={
            "documents": n,
            "simulator_limits": {
                "rpm": RPM,
                "burst_seconds": BURST_S,
                "halved_to_after_s": [RPM / 2, HALVE_AT_S],
            },
            "latency": {"median_s": LATENCY.median_s, "sigma": LATENCY.sigma},
            "faults": "as scenario 1",
            "client": {
                "rpm": None,
                "itpm": None,
                "otpm": None,
                "burst_seconds": None,
                "state": "sqlite directory",
            },
        },
        columns=list(rows[0]),
        rows=rows,
        targets=[
            *(
                Target(f"{r['client']}: throughput / limit", r["throughput_vs_limit"], ">=", 0.97)
                for r in steady
            ),
            *(
                Target(f"{r['client']}: limiter 429s / attempts", r["limiter_429_share"], "<=", 0.01)
                for r in rows
            ),
            *(Target(f"{r['client']}: documents lost", r["lost"], "==", 0) for r in rows),
        ],
        definitions=[
            THROUGHPUT_DEFINITION.format(unit="requests"),
            "halving run: what the server allowed is B1 + r1 x t + B2 + r2 x (T - t - L), t = seconds from "
            "the first request to the change, B2 = the halved limit's bucket (the simulator starts it full).",
            LIMITER_429_DEFINITION,
            "max in flight = the most Messages requests the simulator was handling at once.",
        ],
    )
    result.seconds = time.perf_counter() - started
    return result
