"""Build the whole call stack inside the running event loop, and close all of it afterwards.

Dagster runs an async asset's step on its own event loop; an SDK client, connection pool or Redis
client created on another loop (at import, or when a resource is constructed) fails or hangs
there. So everything is created here, when the `async with` is entered on the loop that will
use it, and closed (SDK HTTP pool, SQLite files, Redis pool) when it exits, errors included.

    async with open_client(settings, on_record=records.append, on_event=log) as client:
        runner = Runner(client.max_in_flight, in_flight=client.in_flight, on_progress=log_progress)
        async for result in runner.map(client.call, requests, ordered=False, drain=client.drain):
            ...

Before the client is handed out, the state store has answered (`verify`: a Redis ping, and its
marker compared with the one this machine saw last, `spool.py`), and answers spooled by an earlier
run that could not write them are in the ledger. Either failing raises `StateStoreError`, naming
the store with its password redacted, before any call is made.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from llm_pipeline.claude.client import Client, EventSink
from llm_pipeline.claude.clock import Clock, SystemClock
from llm_pipeline.claude.drain import Drain
from llm_pipeline.claude.metrics import RecordSink
from llm_pipeline.claude.retry import RetryPolicy
from llm_pipeline.claude.settings import ClaudeSettings
from llm_pipeline.claude.spool import Spool
from llm_pipeline.claude.state import StateBackend, open_state, redact
from llm_pipeline.claude.state_errors import map_state_errors
from llm_pipeline.claude.transport import build_sdk_client

__all__ = ["SpoolReplayed", "open_client", "open_verified_state"]


@dataclass(frozen=True, slots=True)
class SpoolReplayed:
    """Answers an earlier run could not store, put into the ledger before this run called."""

    answers: int
    directory: str

    def __str__(self) -> str:
        return f"replayed {self.answers} spooled answer(s) from {self.directory} into the ledger"


async def open_verified_state(
    settings: ClaudeSettings, clock: Clock, *, on_event: EventSink | None = None
) -> tuple[StateBackend, Spool | None]:
    """The state backend, checked and caught up (see the module docstring); the caller closes it."""
    spec = settings.state
    location = redact(spec) if spec else "memory"
    secret = urlsplit(spec).password if spec and "://" in spec else None
    with map_state_errors(location, secret):
        state = open_state(spec, clock.now, timeout_s=settings.state_timeout_s)
    try:
        spool = Spool(settings.spool_dir, state.location, state.kind) if settings.spool_dir else None
        with map_state_errors(location, secret):
            await state.verify()
            if spool is not None:
                spool.check_marker(state.marker)
                replayed = await spool.replay(state.ledger)
                if replayed and on_event is not None:
                    on_event(SpoolReplayed(replayed, str(spool.directory)))
    except BaseException:
        await state.aclose()
        raise
    return state, spool


@asynccontextmanager
async def open_client(
    settings: ClaudeSettings,
    *,
    on_record: RecordSink | None = None,
    on_event: EventSink | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    drain: Drain | None = None,
) -> AsyncIterator[Client]:
    """A ready `Client` for this loop; `on_record` gets every CallRecord, `on_event` retry/breaker
    events; `drain` is the stop request it shares with the runner (one is made if not given)."""
    clock = clock or SystemClock()
    state, spool = await open_verified_state(settings, clock, on_event=on_event)
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
                drain=drain,
                spool=spool,
            )
            try:
                yield client
            finally:
                await client.aclose()
        finally:
            await sdk.close()
    finally:
        with map_state_errors(state.location):
            await state.aclose()
