"""The simulator's own rate limits: three continuously refilled token buckets per model.

Anthropic limits requests, input tokens and output tokens per minute separately, with buckets
that refill continuously rather than resetting each minute. Each bucket here holds

    capacity = rate / 60 * burst_seconds      and refills at   rate / 60 per second,

starting full. A request must fit all three at once (1 request, its input-token estimate,
`max_tokens` of output) or it books nothing and gets a 429 whose `retry-after` is

    max over the short buckets of ceil((needed - level) / refill_per_second), at least 1 s.

Output is booked at `max_tokens` up front and the unused part refunded when the answer is done
(`settle`), which is the conservative reading of Anthropic's docs (ANTHROPIC_FACTS §2).

Consequence the tests rely on: over any window of `w` seconds at most
`capacity + rate / 60 * w` requests succeed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from llm_pipeline.simulator.config import Limits

__all__ = ["Booking", "Bucket", "RateLimited", "RateLimiter", "public_headers", "rfc3339"]

_PREFIX = "anthropic-ratelimit-"
_TOKEN_REMAINING = tuple(f"{_PREFIX}{kind}tokens-remaining" for kind in ("input-", "output-", ""))


def rfc3339(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


class Bucket:
    """A bucket of `capacity` units refilled continuously at `per_second` units per second."""

    __slots__ = ("capacity", "level", "per_minute", "per_second", "stamp")

    def __init__(self, per_minute: float, burst_seconds: float, now: float) -> None:
        self.per_minute = per_minute
        self.per_second = per_minute / 60.0
        self.capacity = self.per_second * burst_seconds
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_second)
            self.stamp = now

    def wait_s(self, amount: float) -> float:
        """Seconds until `amount` fits (the time to refill completely if it never fits)."""
        if amount > self.capacity:
            return self.capacity / self.per_second
        return max(0.0, (amount - self.level) / self.per_second)

    def full_in_s(self) -> float:
        return (self.capacity - self.level) / self.per_second

    def __repr__(self) -> str:
        return f"<Bucket {self.level:.1f}/{self.capacity:.1f} +{self.per_second:.3f}/s>"


@dataclass(slots=True)
class Booking:
    """What a successful `reserve` took, so `settle` can refund the unused output."""

    model: str
    input_tokens: int
    output_tokens: int


class RateLimited(Exception):
    """The request does not fit; carries the 429's retry-after, message and headers."""

    def __init__(self, message: str, retry_after_s: int, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        self.headers = headers


class _ModelBuckets:
    __slots__ = ("input", "output", "requests")

    def __init__(self, limits: Limits, now: float) -> None:
        burst = limits.burst_seconds
        self.requests = Bucket(limits.rpm, burst, now) if limits.rpm else None
        self.input = Bucket(limits.itpm, burst, now) if limits.itpm else None
        self.output = Bucket(limits.otpm, burst, now) if limits.otpm else None


_UNITS = {"requests": "requests", "input": "input tokens", "output": "output tokens"}


class RateLimiter:
    """Books requests against per-model buckets; see the module docstring for the math."""

    def __init__(
        self,
        limits_for: Callable[[str], Limits],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._limits_for = limits_for
        self._clock = clock
        self._wall = wall
        self._models: dict[str, _ModelBuckets] = {}

    def _buckets(self, model: str, now: float) -> _ModelBuckets:
        buckets = self._models.get(model)
        if buckets is None:
            buckets = self._models[model] = _ModelBuckets(self._limits_for(model), now)
        return buckets

    def limited(self, model: str) -> bool:
        limits = self._limits_for(model)
        return bool(limits.rpm or limits.itpm or limits.otpm)

    def reserve(self, model: str, input_tokens: int, max_tokens: int) -> tuple[Booking, dict[str, str]]:
        """Book one request or raise `RateLimited`; returns the booking and the rate-limit headers."""
        now = self._clock()
        buckets = self._buckets(model, now)
        wanted = (("requests", buckets.requests, 1), ("input", buckets.input, input_tokens))
        wanted += (("output", buckets.output, max_tokens),)
        worst_name, worst_wait = "", 0.0
        for name, bucket, amount in wanted:
            if bucket is None:
                continue
            bucket.refill(now)
            wait = bucket.wait_s(amount)
            if wait > worst_wait:
                worst_name, worst_wait = name, wait
        if worst_wait > 0:
            bucket = getattr(buckets, worst_name)
            retry_after = max(1, math.ceil(worst_wait - 1e-9))
            headers = self._headers(buckets)
            headers["retry-after"] = str(retry_after)
            message = (
                f"This request would exceed the rate limit for your organization of "
                f"{bucket.per_minute:g} {_UNITS[worst_name]} per minute for {model}. "
                f"For details, refer to: https://docs.claude.com/en/api/rate-limits."
            )
            raise RateLimited(message, retry_after, headers)
        for _, bucket, amount in wanted:
            if bucket is not None:
                bucket.level -= amount
        return Booking(model, input_tokens, max_tokens), self._headers(buckets)

    def settle(self, booking: Booking, output_tokens: int) -> None:
        """Give back the booked output the answer did not use."""
        buckets = self._models.get(booking.model)
        if buckets is None or buckets.output is None:
            return
        unused = max(0, booking.output_tokens - output_tokens)
        buckets.output.refill(self._clock())
        buckets.output.level = min(buckets.output.capacity, buckets.output.level + unused)

    def _headers(self, buckets: _ModelBuckets) -> dict[str, str]:
        wall = self._wall()
        headers: dict[str, str] = {}
        present = [(n, getattr(buckets, n)) for n in ("requests", "input", "output")]
        present = [(n, b) for n, b in present if b is not None]
        for name, bucket in present:
            prefix = "anthropic-ratelimit-" + ("requests" if name == "requests" else f"{name}-tokens")
            headers[prefix + "-limit"] = str(int(bucket.per_minute))
            headers[prefix + "-remaining"] = str(max(0, int(bucket.level)))
            headers[prefix + "-reset"] = rfc3339(wall + bucket.full_in_s())
        tokens = [b for n, b in present if n != "requests"]
        if tokens:
            headers["anthropic-ratelimit-tokens-limit"] = str(int(sum(b.per_minute for b in tokens)))
            headers["anthropic-ratelimit-tokens-remaining"] = str(max(0, int(sum(b.level for b in tokens))))
            headers["anthropic-ratelimit-tokens-reset"] = rfc3339(wall + max(b.full_in_s() for b in tokens))
        return headers

    def __repr__(self) -> str:
        parts = [f"{m}: req={b.requests} in={b.input} out={b.output}" for m, b in self._models.items()]
        return f"<RateLimiter {'; '.join(parts) or 'idle'}>"


def public_headers(headers: dict[str, str], *, send: bool, round_tokens: bool) -> dict[str, str]:
    """The headers as the client sees them: all of them, none of the rate-limit ones (`send` False:
    a gateway strips them; `retry-after` stays), or with token remainders rounded to the nearest
    thousand (`round_tokens`, as the API sends them)."""
    if not send:
        return {name: value for name, value in headers.items() if not name.startswith(_PREFIX)}
    if round_tokens:
        for name in _TOKEN_REMAINING:
            if name in headers:
                headers[name] = str(int(int(headers[name]) / 1000 + 0.5) * 1000)
    return headers
