"""Everything the call stack needs to know, in one frozen value.

`claude/` never reads the environment: the Dagster resource (or a script, or a test) fills this
in, so one process can run two differently configured stacks side by side and a test never
depends on the developer's shell.

Rate defaults are the legacy Tier-1 Haiku limits (ANTHROPIC_FACTS §2: 50 RPM, 50,000 input and
10,000 output tokens per minute): a floor every paying account clears, so the defaults are slow
but never wrong. Set the account's real limits for real throughput.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["ClaudeSettings"]


@dataclass(frozen=True, slots=True)
class ClaudeSettings:
    """Configuration of one call stack (SDK client, limiter, retry, breaker, ledger)."""

    #: Hidden from repr so settings can be logged without leaking the key.
    api_key: str = field(default="", repr=False)
    #: None means the SDK default (api.anthropic.com); the simulator sets its own URL.
    base_url: str | None = None
    model: str = "claude-haiku-5-5"
    #: Used only while the primary model's breaker is open.
    fallback_model: str | None = None

    #: The account's limits per model: requests, input tokens and output tokens per minute.
    rpm: float = 50.0
    itpm: float = 50_000.0
    otpm: float = 10_000.0
    #: Seconds of each rate the bucket may hold (capacity = rate x burst). Anthropic refills its
    #: buckets continuously up to the per-minute limit but warns that bursts may be enforced at a
    #: finer grain, so the default is half a minute; it must still hold the largest `max_tokens`
    #: (10,000 OTPM x 29 s after the margin = 4,833 output tokens).
    burst_seconds: float = 30.0

    #: Calls in flight per process (the runner's worker count).
    max_concurrency: int = 32
    #: Per-attempt timeout, seconds (the SDK's default is 10 minutes: far too long for a batch).
    timeout_s: float = 120.0

    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0

    #: Counted failures (5xx, 529, timeouts, dropped connections) within the window, with no
    #: success in between, that open the breaker; and how long it then stays open before one
    #: probe is let through.
    breaker_threshold: int = 10
    breaker_window_s: float = 30.0
    breaker_open_s: float = 15.0

    #: Shared state: None = this process only, a directory = SQLite files in it (every process on
    #: the machine), `redis://...` = a Redis server (every machine).
    state: str | None = None
    #: Skip ledger lookups (answers are still written), e.g. after a prompt bug was fixed.
    refresh: bool = False
    #: HTTP client under the SDK; aiohttp measured faster at high concurrency (see transport.py).
    transport: Literal["aiohttp", "httpx"] = "aiohttp"

    @property
    def endpoint(self) -> str:
        """The API host; limiter, breaker and ledger state is kept apart per endpoint."""
        return (urlsplit(self.base_url).hostname if self.base_url else None) or "api.anthropic.com"

    def __post_init__(self) -> None:
        for name in ("rpm", "itpm", "otpm", "burst_seconds", "timeout_s", "backoff_base_s", "backoff_cap_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ClaudeSettings.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_concurrency", "max_attempts", "breaker_threshold"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClaudeSettings.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.transport not in ("aiohttp", "httpx"):
            raise ValueError(f"ClaudeSettings.transport must be 'aiohttp' or 'httpx', got {self.transport!r}")
