"""Scenarios 1 and 2: throughput at the account's rate limit, through faults.

2,000 extraction requests (~1,500-character documents, `max_tokens` 200) against a simulator
limited to 3,000 RPM with a 5 s burst, answering after a lognormal 0.5 s (sigma 0.5), with 2%
injected 429 (retry-after 1 s), 2% 500, 1% 529 and 0.5% dropped connections. Scenario 2 adds an
input-token limit of 1,500,000 ITPM, which then binds (~734 input tokens per request, ~34
requests/s) well below the 50 requests/s.

The client is configured with the account's limits (the simulator's), 64 calls in flight and
its default state (a SQLite directory). Injected faults are turned away before the simulator's
rate limiter (docs/simulator.md), so the requests its limiter admitted are exactly its
successes, and the tokens it admitted exactly the billed input tokens.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from benchmarks.documents import MODEL, extraction_requests
from benchmarks.drive import StackRun, run_stack
from benchmarks.harness import ScenarioResult, Target, log, simulator
from llm_pipeline.claude import ClaudeSettings
from llm_pipeline.simulator import Faults, Latency, Limits, SimulatorConfig

__all__ = [
    "DOCUMENTS",
    "RPM",
    "rate_config",
    "run_rate",
    "run_tokens",
    "stack_settings",
    "throughput_vs_limit",
]

DOCUMENTS = 2_000
RPM = 3_000
ITPM = 1_500_000
BURST_S = 5.0
LATENCY = Latency(median_s=0.5, sigma=0.5)
FAULTS = Faults(p429=0.02, retry_after_s=1.0, p500=0.02, p529=0.01, p_drop=0.005)
CONCURRENCY = 64
#: Client token limits where the simulator sets none: far above what 50 requests/s need.
_OPEN_ITPM, _OPEN_OTPM = 10_000_000, 2_000_000

THROUGHPUT_DEFINITION = (
    "throughput / limit = A / (B + r x (T - L)): A = what the simulator's rate limiter admitted "
    "({unit}; injected faults never reach it), r = the limit per second, B = r x burst (the bucket it "
    "starts with, so the initial burst counts as allowed, not as speed), T = seconds from the first "
    "request sent to the last answer, L = the median service time (the last answer necessarily "
    "arrives that long after its admission). 1.0 = the limit used in full, every second."
)
LIMITER_429_DEFINITION = (
    "limiter 429s = 429s from the simulator's rate limiter (not the injected ones) / all attempts."
)


def rate_config(*, tokens: bool) -> SimulatorConfig:
    limits = Limits(rpm=RPM, itpm=ITPM if tokens else None, burst_seconds=BURST_S)
    return SimulatorConfig(limits=limits, latency=LATENCY, faults=FAULTS, seed=8)


def stack_settings(base_url: str, state: str, *, tokens: bool) -> ClaudeSettings:
    return ClaudeSettings(
        api_key="sk-sim-bench",
        base_url=base_url,
        model=MODEL,
        rpm=RPM,
        itpm=ITPM if tokens else _OPEN_ITPM,
        otpm=_OPEN_OTPM,
        burst_seconds=BURST_S,
        max_concurrency=CONCURRENCY,
        state=state,
    )


def throughput_vs_limit(server: dict[str, Any], wall_s: float, *, tokens: bool, scale: float = 1.0) -> float:
    """THROUGHPUT_DEFINITION over the simulator's `stats()`, shared so our row and the baselines' compare.

    `scale` stands a sample (the sequential baseline) in for the whole run, so both what was
    admitted and the wall time grow by it.
    """
    rate, wall = (ITPM if tokens else RPM) / 60.0, wall_s * scale
    admitted = server["input_tokens"] if tokens else server["successes"]
    return admitted * scale / (rate * BURST_S + rate * max(wall - LATENCY.median_s, 1e-9))


def stack_row(run: StackRun, server: dict[str, Any], label: str, *, tokens: bool) -> dict[str, Any]:
    return {
        "client": label,
        "documents": run.documents,
        "lost": run.lost,
        "wall_s": round(run.wall_s, 1),
        "documents_per_s": round(run.documents / run.wall_s, 1),
        "throughput_vs_limit": round(throughput_vs_limit(server, run.wall_s, tokens=tokens), 3),
        "attempts": server["attempts"],
        "limiter_429": server["limiter_429"],
        "limiter_429_share": round(server["limiter_429"] / max(1, server["attempts"]), 4),
        "injected_429": server["injected_429"],
        "duplicate_paid_calls": server["duplicate_successes"],
        "shared_pauses": run.shared_pauses,
        "retries": sum(run.retries.values()),
    }


def measure(n: int, *, tokens: bool) -> tuple[StackRun, dict[str, Any]]:
    """One run of our stack on a fresh simulator with the scenario's settings."""
    requests = extraction_requests(n)
    with simulator(rate_config(tokens=tokens)) as sim, tempfile.TemporaryDirectory() as state:
        run = run_stack(stack_settings(sim.base_url, state, tokens=tokens), requests)
        return run, sim.control.stats()


def _result(key: str, title: str, n: int, *, tokens: bool) -> ScenarioResult:
    started = time.perf_counter()
    log(f"[{key}] {title}: {n} documents")
    run, server = measure(n, tokens=tokens)
    row = stack_row(run, server, "llm_pipeline (SQLite state)", tokens=tokens)
    unit = "input tokens" if tokens else "requests"
    floor = 0.90 if tokens else 0.95
    result = ScenarioResult(
        key=key,
        title=title,
        config={
            "documents": n,
            "document_chars": 1_500,
            "max_tokens": 200,
            "simulator_limits": {"rpm": RPM, "itpm": ITPM if tokens else None, "burst_seconds": BURST_S},
            "latency": {"median_s": LATENCY.median_s, "sigma": LATENCY.sigma},
            "faults": {
                "p429": FAULTS.p429,
                "retry_after_s": FAULTS.retry_after_s,
                "p500": FAULTS.p500,
                "p529": FAULTS.p529,
                "p_drop": FAULTS.p_drop,
            },
            "client": {
                "max_concurrency": CONCURRENCY,
                "state": "sqlite directory",
                "rpm": RPM,
                "itpm": ITPM if tokens else _OPEN_ITPM,
                "burst_seconds": BURST_S,
            },
        },
        columns=list(row),
        rows=[row],
        targets=[
            Target(f"throughput / {unit} limit", row["throughput_vs_limit"], ">=", floor),
            Target("documents lost", row["lost"], "==", 0),
            Target("duplicate paid calls", row["duplicate_paid_calls"], "==", 0),
            Target("limiter 429s / attempts", row["limiter_429_share"], "<=", 0.01),
        ],
        definitions=[
            THROUGHPUT_DEFINITION.format(unit=unit),
            LIMITER_429_DEFINITION,
            "shared pauses = 429s that paused every caller (the rest were waited out by their own caller).",
        ],
        notes=[f"errors: {dict(run.errors)}"] if run.errors else [],
    )
    result.seconds = time.perf_counter() - started
    return result


def run_rate(n: int = DOCUMENTS) -> ScenarioResult:
    """Scenario 1: requests per minute bind."""
    return _result("1", "Rate-bound: 3,000 RPM, 5 s burst, faults", n, tokens=False)


def run_tokens(n: int = DOCUMENTS) -> ScenarioResult:
    """Scenario 2: input tokens per minute bind."""
    return _result("2", "Token-bound: 1,500,000 ITPM binds, faults", n, tokens=True)
