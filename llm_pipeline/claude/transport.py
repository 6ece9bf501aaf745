"""The SDK client the call stack talks through, on the HTTP transport that holds up under load.

Measured on the 2-core dev machine (2026-11-25) against the zero-latency simulator in a separate
process, 200 calls in flight (`python -m benchmarks -s 4`, the run in benchmarks/RESULTS.md): the
bare SDK made 1,192 calls/s on aiohttp (0.84 ms CPU per call) and 619 on its default httpx2 pool,
so aiohttp (`DefaultAioHttpClient`) is the default and httpx stays selectable. The whole stack on
aiohttp made 1,067 calls/s with SQLite state (0.93 ms) and 1,158 in memory: the SDK itself is
most of the cost of a call.

The SDK's own retries are off (`max_retries=0`): every attempt must pass our limiter, breaker and
metrics. The connection pool is sized above the in-flight ceiling, so the pool never becomes a
hidden second queue in front of the limiter. The API key is passed explicitly, so the SDK never
falls back to reading credentials from the environment or a profile on disk.

`read_message` turns a raw response into a `Message` with pydantic-core's JSON validator (Rust)
instead of the SDK's `parse()`, which walks the decoded JSON in Python (`construct_type`): ~30 us
instead of ~80 us per answer, about 6% of a whole call at zero latency. The body it validated is
also what the ledger stores, so the answer is not serialised a second time. A 200 whose body the
strict validator rejects (JSON cut short, an HTML page from a gateway, a content block type the
pinned SDK does not know) raises the SDK's `APIResponseValidationError`, which `sdk_errors`
turns into a retryable `ServerError`: the SDK's lenient `parse()` would hand back a half-built
object that crashes later, or an answer that fails validation once stored in the ledger.
"""

from __future__ import annotations

import anthropic
import httpx2
import pydantic
from anthropic import AsyncAPIResponse, DefaultAioHttpClient, DefaultAsyncHttpxClient
from anthropic.types import Message

from llm_pipeline.claude.settings import ClaudeSettings

__all__ = ["CONNECT_TIMEOUT_S", "build_sdk_client", "rate_limit_headers", "read_message"]

CONNECT_TIMEOUT_S = 10.0
_RATE_LIMIT_PREFIX = b"anthropic-ratelimit-"


def build_sdk_client(settings: ClaudeSettings) -> anthropic.AsyncAnthropic:
    """A fresh `AsyncAnthropic` for this event loop; the caller closes it (`await client.close()`)."""
    connections = max(64, 2 * settings.in_flight_ceiling)
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


async def read_message(raw: AsyncAPIResponse[Message]) -> tuple[Message, str]:
    """The response's `Message` (with its request id) and its JSON body, or APIResponseValidationError."""
    body = await raw.read()
    try:
        message = Message.model_validate_json(body)
    except pydantic.ValidationError as exc:
        kind = raw.http_response.headers.get("content-type", "no content-type")
        raise anthropic.APIResponseValidationError(
            raw.http_response,
            body[:200].decode("utf-8", "replace"),
            message=f"the body ({kind}, {len(body)} bytes) is not a valid Message: "
            f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}",
        ) from exc
    message._request_id = raw.request_id
    message._workspace_id = raw.workspace_id
    return message, body.decode("utf-8")


def rate_limit_headers(headers: httpx2.Headers) -> dict[str, str]:
    """The `anthropic-ratelimit-*` headers (lower-case names), found in one pass over the raw list:
    every `Headers.get` re-scans and re-normalises all of them, which `observe` paid three times."""
    return {
        key.decode("latin-1").lower(): value.decode("latin-1")
        for key, value in headers.raw
        if key.lower().startswith(_RATE_LIMIT_PREFIX)
    }
