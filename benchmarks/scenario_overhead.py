"""Scenario 4: what the call stack costs on top of the bare SDK, at zero latency, 200 in flight.

One simulator in its own process (no latency, limits or faults) serves every variant; this
process drives 200 concurrent calls through each, in interleaved rounds (A B C D E, A B C D E,
...) so a change in machine load hits every variant alike, and reports each variant's median:

    bare SDK, httpx2     `AsyncAnthropic.messages.create` on the SDK's default HTTP client
    bare SDK, aiohttp    the same on the SDK's `DefaultAioHttpClient`
    llm_pipeline, ...    `Runner(200).map(client.call, ...)` through the whole stack (ledger
                         lookup and write, limiter, breaker, retry wrapper, SDK, settle/observe,
                         record), with its state in SQLite (the default), memory or Redis

Both bare SDK clients get the stack's connection pool size (2 x 200), so neither is held back
by a small pool. Every call is a distinct request (the ledger never answers from storage).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
from anthropic import DefaultAioHttpClient, DefaultAsyncHttpxClient

from benchmarks.documents import short_requests
from benchmarks.drive import unlimited_settings
from benchmarks.harness import ScenarioResult, Target, log, redis_server, simulator
from llm_pipeline.claude import Request, Runner, open_client
from llm_pipeline.simulator import SimulatorConfig

__all__ = ["CALLS", "ROUNDS", "run_overhead"]

IN_FLIGHT = 200
CALLS = 2_000
ROUNDS = 3
WARMUP = 300
HEADLINE = "llm_pipeline, SQLite state (default)"

Call = Callable[[Request], Awaitable[Any]]


async def _drive(call: Call, requests: list[Request]) -> tuple[float, float]:
    """(calls/s, client CPU ms per call) for `requests` with 200 in flight."""
    cpu, started = time.process_time(), time.perf_counter()
    ok = 0
    async for result in Runner(IN_FLIGHT).map(call, requests, ordered=False):
        ok += getattr(result, "ok", True)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if ok != len(requests):
        raise RuntimeError(f"only {ok}/{len(requests)} calls succeeded")
    return len(requests) / wall, 1000.0 * cpu / len(requests)


@contextlib.asynccontextmanager
async def _bare(base_url: str, transport: str) -> AsyncIterator[Call]:
    limits = httpx2.Limits(max_connections=2 * IN_FLIGHT, max_keepalive_connections=2 * IN_FLIGHT)
    http = (DefaultAioHttpClient if transport == "aiohttp" else DefaultAsyncHttpxClient)(limits=limits)
    sdk = anthropic.AsyncAnthropic(api_key="sk-sim-bench", base_url=base_url, max_retries=0, http_client=http)
    try:

        async def call(request: Request) -> Any:
            return await sdk.messages.create(**request.params)

        yield call
    finally:
        await sdk.close()


@contextlib.asynccontextmanager
async def _stack(base_url: str, state: str | None) -> AsyncIterator[Call]:
    async with open_client(unlimited_settings(base_url, IN_FLIGHT, state)) as client:
        yield client.call


async def _measure(
    base_url: str, variants: dict[str, str | None], n: int, rounds: int, warmup: int
) -> dict[str, list]:
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    async with contextlib.AsyncExitStack() as stack:
        calls: dict[str, Call] = {}
        for name, spec in variants.items():
            if spec in ("httpx", "aiohttp"):
                calls[name] = await stack.enter_async_context(_bare(base_url, spec))
            else:
                calls[name] = await stack.enter_async_context(_stack(base_url, spec or None))
            await _drive(calls[name], short_requests(f"warm-{len(calls)}", warmup))
        for r in range(rounds):
            for i, (name, call) in enumerate(calls.items()):
                figures[name].append(await _drive(call, short_requests(f"r{r}-v{i}", n)))
            log(
                f"[4] round {r + 1}/{rounds}: "
                + ", ".join(f"{k} {v[-1][0]:.0f}/s" for k, v in figures.items())
            )
    return figures


def run_overhead(n: int = CALLS, rounds: int = ROUNDS, warmup: int = WARMUP) -> ScenarioResult:
    started = time.perf_counter()
    log(f"[4] client overhead: {rounds} rounds x {n} calls per variant, {IN_FLIGHT} in flight, zero latency")
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_url:
        variants: dict[str, str | None] = {
            "bare SDK, httpx2 (SDK default)": "httpx",
            "bare SDK, aiohttp": "aiohttp",
            HEADLINE: str(Path(tmp) / "state"),
            "llm_pipeline, memory state": "",
        }
        if redis_url is not None:
            variants["llm_pipeline, Redis state"] = redis_url
        with simulator(SimulatorConfig()) as sim:
            figures = asyncio.run(_measure(sim.base_url, variants, n, rounds, warmup))
    rows = []
    for name, runs in figures.items():
        rows.append(
            {
                "variant": name,
                "calls_per_s": round(statistics.median(r for r, _ in runs), 0),
                "cpu_ms_per_call": round(statistics.median(c for _, c in runs), 3),
                "calls_per_s_each_round": [round(r) for r, _ in runs],
            }
        )
    by_name = {row["variant"]: row for row in rows}
    bare = [row for row in rows if row["variant"].startswith("bare")]
    best_rate = max(row["calls_per_s"] for row in bare)
    best_cpu = min(row["cpu_ms_per_call"] for row in bare)
    for row in rows:
        row["vs_best_bare_calls_per_s"] = round(row["calls_per_s"] / best_rate, 3)
        row["vs_best_bare_cpu"] = round(best_cpu / row["cpu_ms_per_call"], 3)
    headline = by_name[HEADLINE]
    notes = [] if redis_url is not None else ["Redis state not measured: redis-server is not installed."]
    return ScenarioResult(
        key="4",
        title="Client overhead: zero latency, 200 in flight",
        config={
            "calls_per_variant_per_round": n,
            "rounds": rounds,
            "warmup_calls": warmup,
            "in_flight": IN_FLIGHT,
        },
        columns=[
            "variant",
            "calls_per_s",
            "cpu_ms_per_call",
            "vs_best_bare_calls_per_s",
            "vs_best_bare_cpu",
            "calls_per_s_each_round",
        ],
        rows=rows,
        targets=[
            Target(
                "full stack (SQLite) calls/s / best bare SDK calls/s",
                headline["vs_best_bare_calls_per_s"],
                ">=",
                0.8,
            ),
            Target("full stack (SQLite) calls/s", headline["calls_per_s"], ">=", 1_000),
        ],
        definitions=[
            "calls/s = calls / wall seconds of one round; CPU ms/call = this process's CPU time (user "
            "+ system; the simulator runs in another process) / calls; each figure is the median of the "
            "rounds.",
            "vs best bare (calls/s) = variant calls/s / the faster bare SDK's calls/s; vs best bare (CPU) "
            "= the cheaper bare SDK's CPU ms per call / the variant's (less sensitive to other load on "
            "the machine).",
        ],
        notes=notes,
        seconds=time.perf_counter() - started,
    )
