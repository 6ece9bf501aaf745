"""Scenario 6: the usual approaches, on the same simulator settings as scenario 1, in the same run.

Each baseline gets a simulator reset to scenario 1's configuration (3,000 RPM, 5 s burst, 0.5 s
lognormal latency, 2% 429, 2% 500, 1% 529, 0.5% dropped connections) and the same 2,000 documents:

    sequential        one call after another, the SDK's own retries; run on a sample and
                      extrapolated to every document (labelled so)
    gather            asyncio.gather + a semaphore of 64, no retries
    service           semaphore + token bucket + tenacity backoff + circuit breaker, as commonly written

Our row is scenario 1's run (same settings, same documents), not a second run of the stack.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from benchmarks.baselines import gather, sequential, service
from benchmarks.documents import extraction_requests
from benchmarks.harness import ScenarioResult, log, simulator
from benchmarks.scenario_rate import (
    BURST_S,
    DOCUMENTS,
    RPM,
    THROUGHPUT_DEFINITION,
    rate_config,
    throughput_vs_limit,
)
from llm_pipeline.claude import Request
from llm_pipeline.simulator import SimulatorProcess

__all__ = ["SEQUENTIAL_SAMPLE", "run_baselines"]

#: Sequential calls take ~0.6 s each: a sample keeps the run short; its time is scaled up.
SEQUENTIAL_SAMPLE = 40

COLUMNS = [
    "client",
    "documents",
    "wall_s",
    "documents_per_s",
    "lost",
    "throughput_vs_limit",
    "attempts",
    "limiter_429",
    "injected_429",
    "duplicate_paid_calls",
]


def _row(
    label: str,
    ran: int,
    answered: int,
    wall_s: float,
    server: dict[str, Any],
    *,
    scale: float = 1.0,
    tokens: bool = False,
) -> dict:
    """One baseline's figures; `scale` projects a sample of `ran` documents to `ran * scale`."""
    wall = wall_s * scale
    return {
        "client": label,
        "documents": round(ran * scale),
        "wall_s": round(wall, 1),
        "documents_per_s": round(ran / wall_s, 2),
        "lost": round((ran - answered) * scale),
        "throughput_vs_limit": round(throughput_vs_limit(server, wall_s, tokens=tokens, scale=scale), 3),
        "attempts": round(server["attempts"] * scale),
        "limiter_429": round(server["limiter_429"] * scale),
        "injected_429": round(server["injected_429"] * scale),
        "duplicate_paid_calls": round(server["duplicate_successes"] * scale),
    }


def _timed(sim: SimulatorProcess, run: Callable[[], int]) -> tuple[int, float, dict[str, Any]]:
    sim.control.reset()
    started = time.perf_counter()
    answered = run()
    wall = time.perf_counter() - started
    return answered, wall, sim.control.stats()


def run_baselines(
    ours: dict[str, Any] | None,
    n: int = DOCUMENTS,
    sample: int = SEQUENTIAL_SAMPLE,
    ours_tokens: dict[str, Any] | None = None,
) -> ScenarioResult:
    """`ours` is scenario 1's row (run here first when scenario 1 was not selected); with
    scenario 2's row as `ours_tokens`, the service baseline also runs on scenario 2's settings."""
    started = time.perf_counter()
    if ours is None:
        from benchmarks.scenario_rate import run_rate

        ours = run_rate(n).rows[0]
    requests: list[Request] = extraction_requests(n)
    sample = min(sample, n)
    rows = [{key: ours.get(key) for key in COLUMNS} | {"client": "llm_pipeline (scenario 1)"}]
    with simulator(rate_config(tokens=False)) as sim:
        url = sim.base_url
        log(f"[6] baseline: sequential, {sample} of {n} documents (extrapolated)")
        answered, wall, server = _timed(sim, lambda: sequential.run(url, requests[:sample]))
        label = "sequential, SDK retries" + (
            f" ({sample} docs, x{n / sample:g} extrapolated)" if sample < n else ""
        )
        rows.append(_row(label, sample, answered, wall, server, scale=n / sample))
        log(f"[6] baseline: asyncio.gather + semaphore, no retries, {n} documents")
        answered, wall, server = _timed(sim, lambda: asyncio.run(gather.run(url, requests)))
        rows.append(_row(f"gather + semaphore({gather.CONCURRENCY}), no retries", n, answered, wall, server))
        log(f"[6] baseline: semaphore + token bucket + backoff + breaker, {n} documents")
        answered, wall, server = _timed(
            sim, lambda: asyncio.run(service.run(url, requests, rpm=RPM, burst_s=BURST_S))
        )
        rows.append(_row("semaphore + token bucket + tenacity + breaker", n, answered, wall, server))
    if ours_tokens is not None:
        rows.append({key: ours_tokens.get(key) for key in COLUMNS} | {"client": "llm_pipeline (scenario 2)"})
        with simulator(rate_config(tokens=True)) as sim:
            log(f"[6] reference: the service baseline on scenario 2's settings, {n} documents")
            answered, wall, server = _timed(
                sim, lambda: asyncio.run(service.run(sim.base_url, requests, rpm=RPM, burst_s=BURST_S))
            )
        label = "semaphore + token bucket + tenacity + breaker (scenario 2's settings)"
        rows.append(_row(label, n, answered, wall, server, tokens=True))
    return ScenarioResult(
        key="6",
        title="Baselines on scenario 1's settings",
        config={"documents": n, "sequential_sample": sample, "simulator": "as scenario 1"},
        columns=COLUMNS,
        rows=rows,
        definitions=[
            THROUGHPUT_DEFINITION.format(unit="requests"),
            f"sequential: wall time, attempts, 429s and lost documents of {sample} documents, multiplied by "
            f"{n / sample:g}; a projection, not a measurement of {n:,} calls."
            if sample < n
            else "sequential: every document, measured.",
            "lost = documents without an answer at the end; duplicate paid calls = answers the simulator "
            "gave more than once for the same request.",
        ],
        notes=[
            "The service baseline's token bucket gets the same rate and burst as our client; it has no "
            "ledger, no token limits and no shared cool-down.",
            *(
                [
                    "The last two rows are for reference, on scenario 2's settings (1,500,000 ITPM binds); "
                    "their throughput is against the input-token limit."
                ]
                if ours_tokens is not None
                else []
            ),
        ],
        seconds=time.perf_counter() - started,
    )
