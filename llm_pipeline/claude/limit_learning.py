"""Learning one model's rate limits from the API's headers, and keeping its limiter tuned to them.

Every response, and every 429 from the API's rate limiter, carries `anthropic-ratelimit-*-limit`
and `-remaining` (`rate_headers.py`). A `LimitLearner` (one per model and endpoint) reads them:

- limits: the reported per-minute rates become the model's learned limits, up or down, the moment
  they differ from what is known. A response to a request sent before the latest change was
  adopted cannot undo it (it may be older news still in flight). The limits in effect are then
  `limits.in_effect` of the learned ones, the caps and the share; the limiter is retuned to them.
- the bucket's depth: a lower bound from `-remaining` (`limits.burst_from_remaining`; an answer's
  requests-remaining plus its own request, which it was counted after), raised
  whenever a response shows a fuller bucket than assumed (after a quiet spell it shows all of it).
  A 429 from the server's limiter shows it was smaller than assumed: the refused booking left
  our schedule `b` seconds from full in the rate the server called empty, so the depth becomes
  at most `b` (never below `limits.MIN_BURST_S`).
- `-remaining` below what our schedule assumes catches the limiter down (`Limiter.catch_down`);
  a success's `-remaining` above it, less what was booked since, gives back what requests that got
  no answer had booked (`Limiter.catch_up`), in the rates paced at exactly the limit the server
  reports (no cap, a share of 1).
- nothing learned and a successful response without any rate-limit header: a gateway strips
  them; the configured caps or the conservative defaults stay, said once, loudly (an event).

What is learned goes to the shared state (`LearnedStore`) with when it was seen: every process of
the deployment, and the next run, start from it. A process that has learned nothing yet is at
"first contact" (`known` is False): the client sizes its fan-out to one call until it knows, or
until the server has answered at all without saying (an error status without headers: an outage
must reach the breaker through a fan-out, not one call's retries; the defaults pace meanwhile).

Which 429s pause everyone (`shares_429`): one that carried rate-limit headers (the server's own
limiter answered), or any 429 while no response in the last `ROOM_FRESH_S` reported room in every
bucket. A header-less 429 while the server keeps reporting room is not about the account's
buckets, so its own caller waits it out (retry.py). With 2% such 429s at 50 requests/s, pausing
everyone for each one's 1 s `retry-after` held throughput to ~40% of the limit (benchmarks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace

from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.errors import RateLimited
from llm_pipeline.claude.limiter import Limiter, Reservation
from llm_pipeline.claude.limits import (
    MIN_BURST_S,
    BadRateLimitHeader,
    Caps,
    LimitsChanged,
    LimitsInEffect,
    NoRateLimitHeaders,
    burst_from_remaining,
    in_effect,
    rounding_slack,
)
from llm_pipeline.claude.rate_headers import RateHeaders, read_rate_headers
from llm_pipeline.claude.state.base import LearnedLimits, LearnedStore

__all__ = ["ROOM_FRESH_S", "LimitLearner"]

#: How recent a response reporting room in every bucket must be to rule out a header-less 429.
ROOM_FRESH_S = 1.0
#: When nothing changes, `seen_at` is refreshed in the shared state at most this often.
SEEN_EVERY_S = 60.0
#: Learned or default limits are per minute: no request heavier than a whole minute's worth is
#: ever served, but anything lighter may be (the learned bucket is only a lower bound).
_HEAVIEST_S = 60.0
#: "Not limited" as a rate the limiter can pace at (per minute): far beyond any account.
_UNLIMITED = 1e12


class LimitLearner:
    """Learns one model's limits at one endpoint and retunes its `Limiter` (see the module docstring)."""

    __slots__ = (
        "_answered",
        "_caps",
        "_changed_at",
        "_clock",
        "_effect",
        "_empty_at",
        "_learned",
        "_limiter",
        "_loaded",
        "_name",
        "_no_headers",
        "_on_event",
        "_reported",
        "_room_at",
        "_store",
        "_written_at",
        "endpoint",
        "model",
    )

    def __init__(
        self,
        limiter: Limiter,
        store: LearnedStore,
        *,
        model: str,
        endpoint: str,
        caps: Caps,
        clock: Clock,
        on_event: Callable[[object], None] | None = None,
    ) -> None:
        self.model, self.endpoint = model, endpoint
        self._name = f"{endpoint}/{model}"
        self._limiter, self._store, self._caps, self._clock = limiter, store, caps, clock
        self._on_event = on_event
        self._learned: LearnedLimits | None = None
        self._loaded = self._no_headers = self._answered = False
        #: This process's clock when it last adopted new limits, and last wrote the shared record.
        self._changed_at = self._written_at = -math.inf
        self._room_at: float | None = None
        self._empty_at: float | None = None
        self._reported: set[str] = set()
        self._effect = in_effect(model, endpoint, None, caps)
        self._tune()

    @property
    def known(self) -> bool:
        """Past first contact: limits were learned (now or earlier), or the server answered without."""
        return self._learned is not None or self._no_headers or self._answered

    @property
    def limits(self) -> LimitsInEffect:
        return self._effect

    @property
    def limiter(self) -> Limiter:
        """The limiter this learner tunes."""
        return self._limiter

    def _emit(self, event: object) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _tune(self) -> None:
        rates = tuple(_UNLIMITED if rate is None else rate for rate in self._effect.rates)
        self._limiter.retune(rates, self._effect.burst_s, heaviest_s=_HEAVIEST_S)

    def _adopt(self, learned: LearnedLimits | None, reason: str) -> None:
        self._learned = learned
        self._effect = in_effect(self.model, self.endpoint, learned, self._caps)
        self._tune()
        self._emit(LimitsChanged(self._effect, reason))

    async def load(self) -> None:
        """Start from what the shared state knows; every attempt awaits this. While at first contact
        it asks again: a probe booked in the made-up default units would convert the shared row that
        processes which have learned are pacing by (`gcra.retune`), so whatever another process has
        learned meanwhile is adopted first."""
        if self._loaded and self.known:
            return
        record = await self._store.get(self._name)
        if not self._loaded or record is not None:
            self._loaded = True
            self._adopt(record, "start")

    async def observe(
        self,
        headers: Mapping[str, str],
        *,
        sent_at: float | None = None,
        reservation: Reservation | None = None,
        status: int = 200,
    ) -> None:
        """Learn from one response's headers: a success (200), a 429 from the server's rate limiter
        (with `reservation`, the refused booking), or any other error status the server answered."""
        refused = status == 429
        report = read_rate_headers(headers)
        for header, value in report.bad:
            if header not in self._reported:
                self._reported.add(header)
                self._emit(BadRateLimitHeader(self.model, self.endpoint, header, value))
        now = self._clock.now()
        if report.reports_remaining:
            empty = any(left is not None and left <= 0 for left in report.remaining)
            self._room_at = None if empty else now
            if empty:
                self._empty_at = now
        if report.reports_limits:
            learned = self._learn(report, now, sent_at, reservation, refused)
            if learned is not None:
                await self._store.put(learned)
                self._written_at = now
                self._adopt(learned, "headers")
            elif self._learned is not None and now - self._written_at >= SEEN_EVERY_S:
                self._learned = replace(self._learned, seen_at=self._clock.wall())
                await self._store.put(self._learned)
                self._written_at = now
        elif status == 200 and self._learned is None and not self._no_headers:
            self._no_headers = True
            self._emit(NoRateLimitHeaders(self._effect))
        self._answered = True
        if report.reports_remaining:
            await self._limiter.catch_down(report.remaining)
            if not refused and reservation is not None and sent_at is not None:
                await self._limiter.catch_up(reservation, self._at_the_limit(report), now - sent_at)

    def _learn(
        self,
        report: RateHeaders,
        now: float,
        sent_at: float | None,
        reservation: Reservation | None,
        refused: bool,
    ) -> LearnedLimits | None:
        """The new learned record when these headers change it, else None."""
        old = self._learned
        rates = report.limits
        moved = old is None or (old.rpm, old.itpm, old.otpm) != rates
        if moved and old is not None and sent_at is not None and sent_at < self._changed_at:
            return None  # sent before the latest change was adopted: older news
        burst = None if old is None else old.burst_s
        if not refused:
            # An answer's `remaining` is counted after its own request: the bucket held that too.
            left, *tokens = report.remaining
            seen = burst_from_remaining(rates, (None if left is None else left + 1, *tokens))
            if seen is not None and (burst is None or max(seen, MIN_BURST_S) > burst):
                burst = max(seen, MIN_BURST_S)
        elif not moved and reservation is not None and reservation.backlogs:
            emptied = [
                backlog
                for rate, (left, backlog) in enumerate(
                    zip(report.remaining, reservation.backlogs, strict=True)
                )
                if left is not None and left <= rounding_slack(rate, left)
            ]
            if emptied and (burst is None or min(emptied) < burst):
                burst = max(min(emptied), MIN_BURST_S)
        if not moved and old is not None and burst == old.burst_s:
            return None
        if moved:
            self._changed_at = now
        wall = self._clock.wall()  # the shared record's times are read by people and other machines
        changed_at = wall if moved or old is None else old.changed_at
        return LearnedLimits(self._name, *rates, burst, wall, changed_at)

    def _at_the_limit(self, report: RateHeaders) -> tuple[float | None, ...]:
        """`report.remaining` for the rates paced at exactly the limit the server reports, else None."""
        effect = self._effect
        return tuple(
            left
            if effect.share == 1.0 and source == "headers" and rate is not None and rate == limit
            else None
            for left, rate, limit, source in zip(
                report.remaining, effect.rates, report.limits, effect.sources, strict=True
            )
        )

    def shares_429(self, error: RateLimited) -> bool:
        """Should this 429 pause everyone on this model's limiter (see the module docstring)?"""
        if error.reports_limits or self._room_at is None:
            return True
        return self._clock.now() - self._room_at > ROOM_FRESH_S

    async def cool_down(self, until: float) -> None:
        """The shared pause after a 429; the buckets count as empty when a response just said so."""
        now = self._clock.now()
        empty = self._empty_at is not None and now - self._empty_at <= ROOM_FRESH_S
        await self._limiter.cool_down(until, empty=empty)

    def __repr__(self) -> str:
        state = "known" if self.known else "first contact"
        return f"<LimitLearner {self._name!r} {state}: {self._effect.describe()}>"
