"""What the call stack costs on top of the bare SDK, at zero latency with 200 calls in flight.

The simulator runs in its own process (`Simulator.spawn`, zero latency, no limits, no faults); this
process drives it with 200 concurrent calls, each scenario on fresh distinct requests:

    sdk-aiohttp / sdk-httpx      bare `AsyncAnthropic.messages.create` on each HTTP transport
    stack-aiohttp / stack-httpx  `Runner(200).map(client.call, ...)`: ledger lookup, limiter,
                                 breaker, retry wrapper, SDK, settle/observe, ledger write, record
    stack-aiohttp-sqlite         the same with the limiter/breaker/ledger in SQLite files

    python benchmarks/claude_overhead.py                 # prints one line per scenario + JSON
    python benchmarks/claude_overhead.py --requests 2000 --concurrency 200

Not a test: nothing asserts the figures (a noisy 2-core machine). The last line is JSON.
Measured 2026-11-25 on the 2-core dev machine, load average ~2.5 from other jobs, 5,000 calls:
sdk-aiohttp 1,119 / 1,123, stack-aiohttp 798 / 811, sdk-httpx 650 / 539, stack-httpx 432 / 371,
stack-aiohttp-sqlite 446 / 574 calls/s (two runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anthropic
import httpx2
from anthropic import DefaultAioHttpClient, DefaultAsyncHttpxClient

from llm_pipeline.claude import ClaudeSettings, Request, Runner, open_client
from llm_pipeline.simulator import Simulator, SimulatorConfig

MODEL = "claude-haiku-5-5"


def _request(prefix: str, i: int) -> Request:
    text = (
        f"Acme Robotics opened a plant in Lyon; report {prefix}-{i} says Jane Doe leads the Model {i} team."
    )
    return Request(
        key=f"{prefix}-{i}",
        params={
            "model": MODEL,
            "max_tokens": 128,
            "messages": [{"role": "user", "content": f'<document id="{prefix}-{i}">{text}</document>'}],
        },
    )


async def _drive(call: Callable[[Request], Awaitable[Any]], prefix: str, n: int, concurrency: int) -> float:
    requests = [_request(prefix, i) for i in range(n)]
    started = time.perf_counter()
    ok = 0
    async for result in Runner(concurrency).map(call, requests, ordered=False):
        ok += getattr(result, "ok", True)
    elapsed = time.perf_counter() - started
    if ok != n:
        raise RuntimeError(f"{prefix}: only {ok}/{n} calls succeeded")
    return n / elapsed


async def _bare_sdk(base_url: str, transport: str, n: int, concurrency: int, warmup: int) -> float:
    limits = httpx2.Limits(max_connections=2 * concurrency, max_keepalive_connections=2 * concurrency)
    http = (DefaultAioHttpClient if transport == "aiohttp" else DefaultAsyncHttpxClient)(limits=limits)
    sdk = anthropic.AsyncAnthropic(api_key="sk-sim-bench", base_url=base_url, max_retries=0, http_client=http)
    try:

        async def call(request: Request) -> Any:
            return await sdk.messages.create(**request.params)

        await _drive(call, f"warm-sdk-{transport}", warmup, concurrency)
        return await _drive(call, f"sdk-{transport}", n, concurrency)
    finally:
        await sdk.close()


async def _stack(
    base_url: str, transport: str, state: str | None, n: int, concurrency: int, warmup: int
) -> float:
    settings = ClaudeSettings(
        api_key="sk-sim-bench",
        base_url=base_url,
        rpm=1e9,
        itpm=1e12,
        otpm=1e12,
        burst_seconds=60,
        max_concurrency=concurrency,
        transport=transport,
        state=state,
    )
    async with open_client(settings) as client:
        tag = f"{transport}-{'sqlite' if state else 'memory'}"
        await _drive(client.call, f"warm-stack-{tag}", warmup, concurrency)
        return await _drive(client.call, f"stack-{tag}", n, concurrency)


async def _measure(base_url: str, args: argparse.Namespace) -> dict[str, float]:
    n, c, w = args.requests, args.concurrency, args.warmup
    figures: dict[str, float] = {}
    for transport in ("aiohttp", "httpx"):
        figures[f"sdk-{transport}"] = await _bare_sdk(base_url, transport, n, c, w)
        figures[f"stack-{transport}"] = await _stack(base_url, transport, None, n, c, w)
    with tempfile.TemporaryDirectory() as state:
        figures["stack-aiohttp-sqlite"] = await _stack(base_url, "aiohttp", state, n, c, w)
    return {name: round(rate, 1) for name, rate in figures.items()}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3_000, help="measured calls per scenario")
    parser.add_argument("--warmup", type=int, default=400, help="calls before measuring, per scenario")
    parser.add_argument("--concurrency", type=int, default=200, help="calls in flight")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with Simulator.spawn(SimulatorConfig()) as sim:
        figures = asyncio.run(_measure(sim.base_url, args))
    for name, rate in figures.items():
        print(f"{name:>22}: {rate:8,.0f} calls/s")
    summary = {"calls_per_s": figures, "requests": args.requests, "concurrency": args.concurrency}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
