"""The SDK client the call stack talks through, on the HTTP transport that holds up under load.

Measured on the 2-core dev machine (2026-11-25, other jobs running) against the zero-latency
simulator in a separate process, 200 calls in flight, `benchmarks/claude_overhead.py`:

    bare SDK, aiohttp ~1,120 calls/s     full stack, aiohttp ~800/s (memory state), ~450-660/s (SQLite)
    bare SDK, httpx   ~540-650 calls/s   full stack, httpx   ~370-430/s

so aiohttp (`DefaultAioHttpClient`) is the default and httpx stays selectable. Either way the
client is far faster than any account's rate limit; the SDK itself is most of the cost.

The SDK's own retries are off (`max_retries=0`): every attempt must pass our limiter, breaker and
metrics. The connection pool is sized above `max_concurrency`, so the pool never becomes a
hidden second queue in front of the limiter. The API key is passed explicitly, so the SDK never
falls back to reading credentials from the environment or a profile on disk.
"""

from __future__ import annotations

import anthropic
import httpx2
from anthropic import DefaultAioHttpClient, DefaultAsyncHttpxClient

from llm_pipeline.claude.settings import ClaudeSettings

__all__ = ["CONNECT_TIMEOUT_S", "build_sdk_client"]

CONNECT_TIMEOUT_S = 10.0


def build_sdk_client(settings: ClaudeSettings) -> anthropic.AsyncAnthropic:
    """A fresh `AsyncAnthropic` for this event loop; the caller closes it (`await client.close()`)."""
    connections = max(64, 2 * settings.max_concurrency)
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx2.Timeout(settings.timeout_s, connect=min(CONNECT_TIMEOUT_S, settings.timeout_s))
    http_client_cls = DefaultAioHttpClient if settings.transport == "aiohttp" else DefaultAsyncHttpxClient
    return anthropic.AsyncAnthropic(
        api_key=settings.api_key or "unset",
        base_url=settings.base_url,
        max_retries=0,
        timeout=timeout,
        http_client=http_client_cls(limits=limits, timeout=timeout),
    )
