"""Running the pipeline's call stack over a list of requests.

`run_stack` is exactly what an asset does (`open_client` + `Runner.map`, the runner following the
client's in-flight bound), timed from the first request to the last answer; `meanwhile`, when
given, runs beside it (a limit change mid-run). The scenarios read the other side from the
simulator's own counters (`SimulatorControl.stats()`), which are the ground truth: what was
attempted, admitted, rate-limited, and paid for twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from benchmarks.documents import MODEL
from llm_pipeline.claude import ClaudeSettings, Request, Runner, open_client
from llm_pipeline.claude.retry import RetryEvent

__all__ = ["StackRun", "run_stack", "unlimited_settings"]


@dataclass
class StackRun:
    wall_s: float
    documents: int
    ok: int
    #: Retries by error type, and how many 429s paused every caller (a shared cool-down).
    retries: Counter[str]
    shared_pauses: int
    errors: Counter[str]
    #: `time.perf_counter()` when the first request was sent.
    started: float = 0.0

    @property
    def lost(self) -> int:
        return self.documents - self.ok


async def _run(
    settings: ClaudeSettings, requests: Sequence[Request], meanwhile: Callable[[], Awaitable[None]] | None
) -> StackRun:
    retries: Counter[str] = Counter()
    pauses: set[float] = set()
    errors: Counter[str] = Counter()

    def on_event(event: object) -> None:
        if isinstance(event, RetryEvent):
            retries[event.error_type] += 1
            if event.cool_down_until is not None:
                pauses.add(round(event.cool_down_until, 1))

    ok = 0
    async with open_client(settings, on_event=on_event) as client:
        runner = Runner(client.max_in_flight, in_flight=client.in_flight)
        started = time.perf_counter()
        beside = asyncio.create_task(meanwhile()) if meanwhile is not None else None
        async for result in runner.map(client.call, requests, ordered=False):
            ok += result.ok
            if not result.ok:
                errors[result.record.error_type or "?"] += 1
        wall = time.perf_counter() - started
        if beside is not None:
            beside.cancel()
    return StackRun(wall, len(requests), ok, retries, len(pauses), errors, started)


def run_stack(
    settings: ClaudeSettings,
    requests: Sequence[Request],
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> StackRun:
    """The stack over `requests` as a step runs it (at most `settings.max_concurrency` in flight, when
    set), on a fresh event loop."""
    return asyncio.run(_run(settings, requests, meanwhile))


def unlimited_settings(base_url: str, max_concurrency: int, state: str | None) -> ClaudeSettings:
    """Client limits far above anything a run reaches, so only the in-flight cap and the server bind."""
    return ClaudeSettings(
        api_key="sk-sim-bench",
        base_url=base_url,
        model=MODEL,
        rpm=1e9,
        itpm=1e12,
        otpm=1e12,
        burst_seconds=60.0,
        max_concurrency=max_concurrency,
        state=state,
    )
