"""One attempt of a call: the breaker, the limiter and its learner around one HTTP exchange.

    warm-up → breaker.check → learner.load → limiter.reserve → breaker.admit → SDK with a timeout →
    ledger.keep → learner.observe (the rate-limit headers) → limiter.settle → breaker.record

A request that carries a cached prefix (`prompt_cache.py`) first waits for its turn in the
prefix's warm-up: the first attempt with a new prefix goes alone and writes it, the others go once
its answer has arrived and read it. It then books its input at what will count: in full until a
response has shown the prefix read from the cache, without the prefix after that.

The answer is kept in the ledger before anything else happens to it, so a crash after the
exchange cannot cost a second payment. An attempt that fails tells the learner, the limiter and
the breaker how it ended, then raises its typed error for the retry policy (`retry.py`) to judge;
one the drain finds on the wire finishes and keeps its answer (`drain.py`). Every use of the
shared state is wrapped in `map_state_errors`, so a failed store is a systemic `StateStoreError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import anthropic
from anthropic import AsyncAPIResponse
from anthropic.types import Message

from llm_pipeline.claude.breaker import PROBE_LEASE_S, Breaker, Pass
from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.drain import Drain, InFlight
from llm_pipeline.claude.errors import Aborted, CircuitOpen, LLMError, RateLimited, StateStoreError
from llm_pipeline.claude.ledger import Ledger
from llm_pipeline.claude.limit_learning import LimitLearner
from llm_pipeline.claude.limiter import Reservation
from llm_pipeline.claude.outcome import Tally
from llm_pipeline.claude.pacing import Pacing
from llm_pipeline.claude.prompt_cache import CachePrefix, PrefixWarmth, WarmUp, cache_prefix
from llm_pipeline.claude.sdk_errors import map_sdk_errors
from llm_pipeline.claude.settings import ClaudeSettings
from llm_pipeline.claude.state.base import BreakerStore
from llm_pipeline.claude.state_errors import map_state_errors
from llm_pipeline.claude.transport import rate_limit_headers, read_message
from llm_pipeline.claude.types import Request

__all__ = ["Attempt"]


class Attempt:
    """Makes one attempt of a request (`await attempt(request, key, estimate, tally, wait)`)."""

    def __init__(
        self,
        settings: ClaudeSettings,
        *,
        sdk: anthropic.AsyncAnthropic,
        breakers: BreakerStore,
        location: str,
        ledger: Ledger,
        pacing: Pacing,
        drain: Drain,
        in_flight: InFlight,
        clock: Clock,
        on_event: Callable[[object], None] | None = None,
    ) -> None:
        self._settings, self._sdk, self._store, self._location = settings, sdk, breakers, location
        self._ledger, self._pacing, self._drain, self._in_flight = ledger, pacing, drain, in_flight
        self._clock, self._on_event = clock, on_event
        self._breakers: dict[str, Breaker] = {}
        #: What this client's responses showed of each cached prefix, and each prefix's warm-up.
        self._warmth = PrefixWarmth()
        self._warm_up = WarmUp()

    def breaker(self, model: str) -> Breaker:
        """Each model has its own breaker, as it has its own limits."""
        if model not in self._breakers:
            s = self._settings
            self._breakers[model] = Breaker(
                model,
                self._store,
                threshold=s.breaker_threshold,
                window_s=s.breaker_window_s,
                open_s=s.breaker_open_s,
                probe_ttl_s=PROBE_LEASE_S,
                on_event=self._on_event,
                namespace=s.endpoint,
                clock=self._clock,
            )
        return self._breakers[model]

    async def __call__(self, request: Request, key: str, estimate: int, tally: Tally, wait: bool) -> Message:
        if self._drain.requested:
            raise Aborted(f"the run is stopping ({self._drain.reason}); this request was not sent")
        prefix = cache_prefix(request.params)
        if prefix is None:
            return await self._once(request, key, estimate, tally, wait, None, False)
        began = self._clock.now()
        writes = await self._warm_up.admit(prefix)
        tally.limiter_wait_s += self._clock.now() - began
        try:
            return await self._once(request, key, estimate, tally, wait, prefix, writes)
        finally:
            if writes:  # failed or cancelled: the next caller writes (a no-op once opened)
                self._warm_up.abandoned(prefix)

    async def _once(
        self,
        request: Request,
        key: str,
        estimate: int,
        tally: Tally,
        wait: bool,
        prefix: CachePrefix | None,
        writes: bool,
    ) -> Message:
        learner, breaker = self._pacing.learner(request.model), self.breaker(request.model)
        limiter = learner.limiter
        booked = self._warmth.booking(prefix, estimate)
        with map_state_errors(self._location):
            checked = await breaker.check(wait=wait)
            await learner.load()
            reservation = await limiter.reserve(booked, request.max_tokens)
            tally.booked_input_tokens = booked
            tally.limiter_wait_s += reservation.waited_s
            try:
                granted = await breaker.admit(None if reservation.queued else checked, wait=wait)
            except CircuitOpen:
                await limiter.release(reservation)
                raise
        tally.attempts += 1
        task = asyncio.current_task()
        self._in_flight.sending(task, True)  # from here a drain lets the call finish
        keeper = breaker.keep_probe(granted, self._location)
        try:
            message, body, raw, started = await self._send(
                request, learner, breaker, reservation, granted, tally
            )
            if writes and prefix is not None:  # the entry is readable once this response has started
                self._warm_up.opened(prefix)
            # First: a crash from here on cannot cost a second payment.
            await self._ledger.keep(request, message, entry_key=key, message_json=body)
        finally:
            if keeper is not None:
                keeper.cancel()
            self._in_flight.sending(task, False)
        usage = message.usage
        self._warmth.observe(prefix, usage)
        with map_state_errors(self._location):
            # Learn first: a first contact's settlement then books in the learned units, not the defaults.
            headers = rate_limit_headers(raw.http_response.headers)
            await learner.observe(headers, sent_at=started, reservation=reservation)
            await limiter.settle(
                reservation,
                usage.input_tokens + (usage.cache_creation_input_tokens or 0),
                usage.output_tokens,
            )
            await breaker.record(granted, None)
        return message

    async def _send(
        self,
        request: Request,
        learner: LimitLearner,
        breaker: Breaker,
        reservation: Reservation,
        granted: Pass,
        tally: Tally,
    ) -> tuple[Message, str, AsyncAPIResponse[Message], float]:
        """The HTTP exchange of one attempt (and when it started); on failure the learner, limiter
        and breaker hear how it ended."""
        timeout_s = self._settings.timeout_s
        started = self._clock.now()
        try:
            with map_sdk_errors(self._clock.wall, timeout_s=timeout_s, model=request.model):
                async with asyncio.timeout(timeout_s):
                    raw = await self._sdk.messages.with_raw_response.create(
                        **request.params, timeout=timeout_s
                    )
                    message, body = await read_message(raw)
        except LLMError as exc:
            tally.latency_s, tally.request_id = self._clock.now() - started, exc.request_id
            tally.rate_limited += isinstance(exc, RateLimited)
            with map_state_errors(self._location):
                if isinstance(exc, RateLimited) and exc.reports_limits:
                    # The server's rate limiter says which buckets are empty: that is the news to
                    # act on, and the booking stays (giving it back refills what the server calls empty).
                    await learner.observe(exc.limits, sent_at=started, reservation=reservation, status=429)
                elif exc.status_code is not None:
                    if exc.status_code >= 400:
                        await learner.limiter.release(reservation)  # turned away: nothing was counted
                    await learner.observe({}, sent_at=started, status=exc.status_code)
                else:  # no answer: the booking stays, until an answer shows it was never counted
                    learner.limiter.unanswered(reservation)
                await breaker.record(granted, exc)
            if self._drain.requested:  # no retry: the run is stopping
                raise Aborted(f"the run is stopping ({self._drain.reason}); last attempt: {exc}") from exc
            raise
        except asyncio.CancelledError:
            with contextlib.suppress(StateStoreError), map_state_errors(self._location):
                await breaker.release(granted)
            raise
        tally.latency_s, tally.request_id = self._clock.now() - started, message._request_id
        return message, body, raw, started
