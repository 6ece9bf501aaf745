"""Everything the call stack needs to know, in one frozen value.

`claude/` never reads the environment: the Dagster resource (or a script, or a test) fills this
in, so one process can run two differently configured stacks side by side and a test never
depends on the developer's shell.

Batch settings (`mode="batch"`, see `batches.py` and docs/batch-mode.md): polls start `batch_poll_s`
apart and back off by x1.5 to `batch_poll_max_s`; a batch not ended `batch_deadline_s` after the step
started waiting fails the step (the batch stays recorded and a later run resumes it); errored and
expired requests go back in a new batch (`batch_retry="batch"`, up to `batch_retry_rounds` times) or
are left to the ordinary real-time flow (`"realtime"`). Splitting follows the API's limits
(ANTHROPIC_FACTS §3: 100,000 requests or 256 MB per batch), with a margin on the size.

Rate limits are learned from the API's `anthropic-ratelimit-*` headers (`limit_learning.py`);
`rpm`, `itpm`, `otpm` and `burst_seconds`, when set, cap what is learned (the only limits when a
server sends no headers; without either, the conservative defaults of `limits.py` apply), and
`limit_share` is the fraction of the learned limits this deployment may use. `max_concurrency`,
when set, caps the in-flight bound the client sizes from the limits and the latency (`in_flight.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from llm_pipeline.claude.in_flight import AUTO_MAX_IN_FLIGHT
from llm_pipeline.claude.limits import Caps

__all__ = ["ClaudeSettings"]

#: The Message Batches API's own limits per batch (ANTHROPIC_FACTS §3).
_API_BATCH_MAX_REQUESTS = 100_000
_API_BATCH_MAX_BYTES = 256 * 1024 * 1024
_CHOICES = {
    "transport": ("aiohttp", "httpx"),
    "mode": ("realtime", "batch"),
    "batch_retry": ("realtime", "batch"),
}


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

    #: Caps on the learned limits per model: requests, input tokens and output tokens per minute
    #: (None: no cap). A server that sends no rate-limit headers is paced at these, else at defaults.
    rpm: float | None = None
    itpm: float | None = None
    otpm: float | None = None
    #: Cap on the learned bucket depth, in seconds of each rate (None: as learned; 30 s without headers).
    burst_seconds: float | None = None
    #: Fraction of the learned limits this deployment may use (the rest is left to other applications).
    limit_share: float = 1.0

    #: Cap on the calls in flight per process (None: sized from the limits and latency, at most 256).
    max_concurrency: int | None = None
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
    #: Hidden from repr: a `redis://:password@host` URL carries a credential (see `state.redact`).
    state: str | None = field(default=None, repr=False)
    #: Skip ledger lookups (answers are still written), e.g. after a prompt bug was fixed.
    refresh: bool = False
    #: HTTP client under the SDK; aiohttp measured faster at high concurrency (see transport.py).
    transport: Literal["aiohttp", "httpx"] = "aiohttp"

    #: "realtime": every request is a Messages call. "batch": a step first prefetches its answers
    #: through the Message Batches API (half price, answers within 24 h) into the ledger.
    mode: Literal["realtime", "batch"] = "realtime"
    #: Seconds before the first poll of a batch's status; each later wait is x1.5, up to the max.
    batch_poll_s: float = 30.0
    batch_poll_max_s: float = 300.0
    #: Seconds a step waits for its batches before failing with their ids (they are resumed later).
    #: Batches end within 24 h (unfinished requests expire), so waiting longer never helps.
    batch_deadline_s: float = 86_400.0
    #: Errored (retryable) and expired requests: a new small batch, or the real-time flow.
    batch_retry: Literal["realtime", "batch"] = "realtime"
    #: How many retry batches at most; what is still unanswered then goes the real-time way.
    batch_retry_rounds: int = 2
    #: Per-batch limits: the API's 100,000 requests, and 256 MB with a margin for the JSON envelope.
    batch_max_requests: int = 100_000
    batch_max_bytes: int = 250_000_000

    #: Longest wait of one shared-state operation: a SQLite file another process keeps locked, or
    #: a Redis that does not answer (stopped, unreachable). Past it the step fails naming the store.
    state_timeout_s: float = 30.0
    #: A local directory for paid answers the ledger could not take (`spool.py`); the next run
    #: replays them before calling. None: no spool (such an answer is lost if the store stays down).
    spool_dir: str | None = None
    #: Seconds a stopped run (a signal, a systemic error) waits for its calls in flight (`drain.py`).
    drain_s: float = 30.0

    @property
    def caps(self) -> Caps:
        return Caps((self.rpm, self.itpm, self.otpm), self.burst_seconds, self.limit_share)

    @property
    def in_flight_ceiling(self) -> int:
        """The most calls in flight per process: the configured cap, else the automatic bound's."""
        return self.max_concurrency if self.max_concurrency is not None else AUTO_MAX_IN_FLIGHT

    @property
    def endpoint(self) -> str:
        """The API host; limiter, breaker and ledger state is kept apart per endpoint."""
        return (urlsplit(self.base_url).hostname if self.base_url else None) or "api.anthropic.com"

    def __post_init__(self) -> None:
        for name in ("rpm", "itpm", "otpm", "burst_seconds"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"ClaudeSettings.{name} must be > 0 (or None), got {value!r}")
        if not 0 < self.limit_share <= 1:
            raise ValueError(f"ClaudeSettings.limit_share must be in (0, 1], got {self.limit_share!r}")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError(f"ClaudeSettings.max_concurrency must be >= 1, got {self.max_concurrency!r}")
        for name in (
            "timeout_s",
            "backoff_base_s",
            "backoff_cap_s",
            "batch_poll_s",
            "batch_poll_max_s",
            "batch_deadline_s",
            "state_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"ClaudeSettings.{name} must be > 0, got {getattr(self, name)!r}")
        for name in (
            "max_attempts",
            "breaker_threshold",
            "batch_max_requests",
            "batch_max_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"ClaudeSettings.{name} must be >= 1, got {getattr(self, name)!r}")
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"ClaudeSettings.{name} must be one of {choices}, got {value!r}")
        if self.drain_s < 0:
            raise ValueError(f"ClaudeSettings.drain_s must be >= 0, got {self.drain_s}")
        if self.batch_retry_rounds < 0:
            raise ValueError(f"ClaudeSettings.batch_retry_rounds must be >= 0, got {self.batch_retry_rounds}")
        if self.batch_max_requests > _API_BATCH_MAX_REQUESTS or self.batch_max_bytes > _API_BATCH_MAX_BYTES:
            raise ValueError(
                f"ClaudeSettings.batch_max_requests/batch_max_bytes exceed the API's limits "
                f"({_API_BATCH_MAX_REQUESTS} requests, {_API_BATCH_MAX_BYTES} bytes per batch)"
            )
