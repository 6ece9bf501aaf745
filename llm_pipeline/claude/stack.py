"""Build the whole call stack inside the running event loop, and close all of it afterwards.

Dagster runs an async asset's step on its own event loop; an SDK client, connection pool or Redis
client created on another loop (at import, or when a resource is constructed) fails or hangs
there. So everything is created here, when the `async with` is entered on the loop that will
use it, and closed (SDK HTTP pool, SQLite files, Redis pool) when it exits, errors included.

    async with open_client(settings, on_record=records.append, on_event=log) as client:
        runner = Runner(client.max_in_flight, in_flight=client.in_flight, on_progress=log_progress)
        async for result in runner.map(client.call, requests, ordered=False):
            ...
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from llm_pipeline.claude.client import Client, EventSink
from llm_pipeline.claude.clock import Clock, SystemClock
from llm_pipeline.claude.metrics import RecordSink
from llm_pipeline.claude.retry import RetryPolicy
from llm_pipeline.claude.settings import ClaudeSettings
from llm_pipeline.claude.state import open_state
from llm_pipeline.claude.transport import build_sdk_client

__all__ = ["open_client"]


@asynccontextmanager
async def open_client(
    settings: ClaudeSettings,
    *,
    on_record: RecordSink | None = None,
    on_event: EventSink | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[Client]:
    """A ready `Client` for this loop; `on_record` gets every CallRecord, `on_event` retry/breaker events."""
    clock = clock or SystemClock()
    state = open_state(settings.state, clock.now)
    try:
        sdk = build_sdk_client(settings)
        try:
            retry = RetryPolicy(
                max_attempts=settings.max_attempts,
                base_s=settings.backoff_base_s,
                cap_s=settings.backoff_cap_s,
                rng=rng,
                clock=clock,
                on_event=on_event,
            )
            client = Client(
                settings,
                sdk=sdk,
                state=state,
                clock=clock,
                retry=retry,
                on_record=on_record,
                on_event=on_event,
            )
            try:
                yield client
            finally:
                await client.aclose()
        finally:
            await sdk.close()
    finally:
        await state.aclose()
