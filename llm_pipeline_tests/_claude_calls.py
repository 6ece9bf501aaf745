"""Shared helpers for the call-stack tests that run against the simulator (not a test module).

Also runnable as a worker process (`python -m llm_pipeline_tests._claude_calls ...`): the
multi-process tests start several of these against one simulator and one shared state, each
printing a JSON summary of its records on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from llm_pipeline.claude import CallRecord, ClaudeSettings, Request, Runner, open_client

MODEL = "claude-haiku-5-5"
FALLBACK = "claude-sonnet-5-5"
FAST_RETRY = {"backoff_base_s": 0.02, "backoff_cap_s": 0.2, "max_attempts": 8}


def request(
    i: int, *, chars: int = 80, max_tokens: int = 64, model: str = MODEL, prefix: str = "doc"
) -> Request:
    """A distinct, realistic-looking extraction request; `chars` sets its input size."""
    filler = f"Report {i} from Acme Corp in Paris said Dr. Ada Lovelace met the Python team. "
    text = (filler * (chars // len(filler) + 1))[:chars]
    return Request(
        key=f"{prefix}-{i}",
        params={
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": f'<document id="{prefix}-{i}">{text}</document>'}],
        },
    )


async def until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll `predicate` (e.g. the simulator's counters) until it holds; fail after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def wire_full(sim: Any) -> bool:
    """Some answers paid, and 8 requests on the wire right now: the moment to pull a plug."""
    stats = sim.control.stats()
    return stats["successes"] >= 8 and stats["in_flight"] == 8


def settings(base_url: str, **overrides: Any) -> ClaudeSettings:
    """Generous limits and fast retries unless a test says otherwise."""
    values: dict[str, Any] = {
        "api_key": "sk-sim-test",
        "base_url": base_url,
        "rpm": 1e6,
        "itpm": 1e9,
        "otpm": 1e9,
        "burst_seconds": 5.0,
        **FAST_RETRY,
    }
    values.update(overrides)
    return ClaudeSettings(**values)


async def _work(args: argparse.Namespace) -> dict[str, Any]:
    records: list[CallRecord] = []
    config = settings(
        args.base_url,
        rpm=args.rpm,
        itpm=args.itpm,
        burst_seconds=args.burst,
        state=args.state,
        max_concurrency=32,
    )
    requests = [request(i, chars=args.chars, prefix=args.prefix) for i in range(args.count)]
    async with open_client(config, on_record=records.append) as client:
        results = await Runner(config.max_concurrency).run(client.call, requests, ordered=False)
    return {
        "ok": sum(r.ok for r in results),
        "errors": [r.record.error for r in results if not r.ok][:5],
        "rate_limited": sum(r.rate_limited for r in records),
        "attempts": sum(r.attempts for r in records),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rpm", type=float, default=1e6)
    parser.add_argument("--itpm", type=float, default=1e9)
    parser.add_argument("--burst", type=float, default=5.0)
    parser.add_argument("--chars", type=int, default=80)
    print(json.dumps(asyncio.run(_work(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
