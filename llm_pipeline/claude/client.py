"""One logical call: ledger → limiter → breaker → SDK → ledger, in layers readable one at a time.

    call               ledger lookup (a hit costs nothing), fallback selection, one CallRecord
    _call_with_retry   RetryPolicy around attempts; a 429 pauses the shared limiter instead
    _call_once         breaker.check → limiter.reserve → breaker.admit → SDK with a timeout →
                       ledger.put → usage + headers → limiter.settle, learner.observe → breaker.record

Each model has a `Limiter` (the pace) and a `LimitLearner` (what the API's headers say the pace
should be); `in_flight()` is the fan-out they allow (`pacing.py`).

`prefetch` is batch mode's first half (`batches.py`): it fills the ledger through the Message
Batches API, and `call` then reports each answer it collected as one batch call (`batch=True`, at
the batch price), not as a free ledger hit.

`call` never raises for a per-request failure: the error comes back as a value in `CallResult`
(typed, from `errors.py`). What escapes is a bug, or cancellation. When the primary model's breaker
is open (`CircuitOpen`) and a fallback model is configured, the call goes to the fallback (its
own limiter and breaker) and the record says `model=<fallback>, fallback=True`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial

import anthropic
from anthropic.types import Message

from llm_pipeline.claude.batches import BatchAnswer, BatchPrefetcher, BatchReport
from llm_pipeline.claude.breaker import Breaker
from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.errors import CircuitOpen, LLMError, RateLimited
from llm_pipeline.claude.ledger import Ledger, LedgerHit
from llm_pipeline.claude.limit_learning import LimitLearner
from llm_pipeline.claude.limiter import Limiter
from llm_pipeline.claude.metrics import CallRecord, RecordSink
from llm_pipeline.claude.pacing import Pacing
from llm_pipeline.claude.pricing import cost
from llm_pipeline.claude.retry import RetryPolicy
from llm_pipeline.claude.sdk_errors import map_sdk_errors
from llm_pipeline.claude.settings import ClaudeSettings
from llm_pipeline.claude.state.base import StateBackend
from llm_pipeline.claude.token_estimate import estimate_input_tokens
from llm_pipeline.claude.transport import rate_limit_headers, read_message
from llm_pipeline.claude.types import CallResult, Request

__all__ = ["Client", "EventSink"]

EventSink = Callable[[object], None]
#: Extra seconds a probe slot stays claimed beyond the call timeout, covering the limiter wait.
_PROBE_GRACE_S = 30.0


@dataclass(slots=True)
class _Tally:
    """What one logical call went through, across attempts (becomes the CallRecord)."""

    attempts: int = 0
    rate_limited: int = 0
    latency_s: float = 0.0
    request_id: str | None = None
    #: Seconds spent waiting for the limiter (not holding a call in flight).
    limiter_wait_s: float = 0.0


class Client:
    """Sends `Request`s; build it with `open_client`, which also closes what it opened."""

    def __init__(
        self,
        settings: ClaudeSettings,
        *,
        sdk: anthropic.AsyncAnthropic,
        state: StateBackend,
        clock: Clock,
        retry: RetryPolicy,
        on_record: RecordSink | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = Ledger(state.ledger, clock=clock, refresh=settings.refresh, namespace=settings.endpoint)
        self._sdk = sdk
        self._state = state
        self._clock = clock
        self._retry = retry
        self._on_record = on_record
        self._on_event = on_event
        self._pacing = Pacing(settings, state, clock=clock, on_event=on_event)
        self._breakers: dict[str, Breaker] = {}
        #: Ledger keys of answers this client's batches collected and no call has reported yet.
        self._batch_answers: dict[str, BatchAnswer] = {}

    def limiter_for(self, model: str) -> Limiter:
        """Each model has its own limits (ANTHROPIC_FACTS §2), so its own limiter."""
        return self._pacing.limiter(model)

    def learner_for(self, model: str) -> LimitLearner:
        """What tunes `limiter_for(model)` to the limits the API's headers report."""
        return self._pacing.learner(model)

    @property
    def max_in_flight(self) -> int:
        """The most calls this client will want in flight at once (size a `Runner` with it)."""
        return self._pacing.max_in_flight

    def in_flight(self) -> int:
        """How many calls to have in flight now (`Runner(..., in_flight=client.in_flight)`)."""
        return self._pacing.in_flight()

    def breaker_for(self, model: str) -> Breaker:
        if model not in self._breakers:
            s = self.settings
            self._breakers[model] = Breaker(
                model,
                self._state.breaker,
                threshold=s.breaker_threshold,
                window_s=s.breaker_window_s,
                open_s=s.breaker_open_s,
                probe_ttl_s=s.timeout_s + _PROBE_GRACE_S,
                on_event=self._on_event,
                namespace=s.endpoint,
            )
        return self._breakers[model]

    async def call(self, request: Request) -> CallResult:
        """Answer one request: from the ledger, the primary model, or the fallback."""
        fallback = self.settings.fallback_model
        alternatives = (fallback,) if fallback and fallback != request.model else ()
        key = self.ledger.entry_key(request)
        fresh = self._batch_answers.pop(key, None) if self._batch_answers else None
        hit = await self.ledger.get(
            request, also_models=alternatives, ignore_refresh=fresh is not None, entry_key=key
        )
        if hit is not None:
            return self._cached(request, hit, fresh)
        began, tally = self._clock.now(), _Tally()
        try:
            message = await self._call_with_retry(request, key, tally)
            return self._finish(request, tally, began, message=message)
        except CircuitOpen as exc:
            if not alternatives:
                return self._finish(request, tally, began, error=exc)
        except LLMError as exc:
            return self._finish(request, tally, began, error=exc)
        rerouted = request.with_model(alternatives[0])
        try:
            message = await self._call_with_retry(rerouted, self.ledger.entry_key(rerouted), tally)
            return self._finish(rerouted, tally, began, message=message, fallback=True)
        except LLMError as exc:
            return self._finish(rerouted, tally, began, error=exc, fallback=True)

    def _call_with_retry(self, request: Request, key: str, tally: _Tally) -> Awaitable[Message]:
        # A plain function handing back the retry coroutine, and a `partial` rather than a lambda:
        # both live for the whole call, and at 200 calls in flight every object held across the
        # HTTP exchange feeds the garbage collector (a closure over five names is seven objects).
        learner = self.learner_for(request.model)
        attempt = partial(self._call_once, request, key, estimate_input_tokens(request.params), tally)
        return self._retry.call(
            attempt,
            key=request.key,
            model=request.model,
            cool_down=learner.cool_down,
            shared=learner.shares_429,
        )

    async def _call_once(self, request: Request, key: str, estimate: int, tally: _Tally) -> Message:
        limiter, breaker = self.limiter_for(request.model), self.breaker_for(request.model)
        learner = self.learner_for(request.model)
        checked = await breaker.check()
        await learner.load()
        reservation = await limiter.reserve(estimate, request.max_tokens)
        tally.limiter_wait_s += reservation.waited_s
        try:
            granted = await breaker.admit(None if reservation.queued else checked)
        except CircuitOpen:
            await limiter.release(reservation)
            raise
        tally.attempts += 1
        timeout_s = self.settings.timeout_s
        started = self._clock.now()
        try:
            with map_sdk_errors(self._clock.now, timeout_s=timeout_s):
                async with asyncio.timeout(timeout_s):
                    raw = await self._sdk.messages.with_raw_response.create(
                        **request.params, timeout=timeout_s
                    )
                    message, body = await read_message(raw)
        except LLMError as exc:
            tally.latency_s, tally.request_id = self._clock.now() - started, exc.request_id
            tally.rate_limited += isinstance(exc, RateLimited)
            if isinstance(exc, RateLimited) and exc.reports_limits:
                # The server's rate limiter says which buckets are empty: that is the news to act on,
                # and the booking stays (giving it back would refill what the server calls empty).
                await learner.observe(exc.limits, sent_at=started, reservation=reservation, status=429)
            elif exc.status_code is not None:  # turned away for another reason: nothing was counted
                await limiter.release(reservation)
                await learner.observe({}, sent_at=started, status=exc.status_code)
            await breaker.record(granted, exc)
            raise
        except asyncio.CancelledError:
            await breaker.release(granted)
            raise
        tally.latency_s, tally.request_id = self._clock.now() - started, message._request_id
        # First: a crash from here on cannot cost a second payment.
        await self.ledger.put(request, message, entry_key=key, message_json=body)
        # Learn first: a first contact's settlement then books in the learned units, not the defaults.
        await learner.observe(rate_limit_headers(raw.http_response.headers), sent_at=started)
        usage = message.usage
        await limiter.settle(
            reservation, usage.input_tokens + (usage.cache_creation_input_tokens or 0), usage.output_tokens
        )
        await breaker.record(granted, None)
        return message

    def _cached(self, request: Request, hit: LedgerHit, batch: BatchAnswer | None = None) -> CallResult:
        """A ledger hit costs nothing, unless this run's batch put it there: then it is that batch call."""
        answered = request.with_model(hit.model) if hit.model != request.model else request
        usage = hit.message.usage
        record = CallRecord(
            key=request.key,
            model=hit.model,
            outcome="ok",
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=0.0,
            cached=True,
            fallback=hit.model != request.model,
            stop_reason=hit.message.stop_reason,
        )
        if batch is not None:
            record = replace(
                record,
                cached=False,
                batch=True,
                cost_usd=cost(hit.model, usage, batch=True),
                attempts=1,
                latency_ms=batch.latency_ms,
                request_id=batch.batch_id,
                cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
                cache_read_input_tokens=usage.cache_read_input_tokens or 0,
            )
        self._emit(record)
        return CallResult(answered, record, message=hit.message)

    async def prefetch(self, requests: Callable[[], Iterable[Request]]) -> BatchReport:
        """Answer `requests()` through the Message Batches API into the ledger (see `batches.py`).

        A factory rather than an iterable: retry rounds pass over the requests again instead of
        holding a partition in memory. Answers collected here are reported by the next `call` for
        the same request as a batch call; anything not answered is then called in real time.
        """
        fallback = self.settings.fallback_model
        prefetcher = BatchPrefetcher(
            self.settings,
            sdk=self._sdk,
            store=self._state.batches,
            ledger=self.ledger,
            retry=self._retry,
            clock=self._clock,
            on_answer=self._batch_answers.__setitem__,
            on_event=self._on_event,
            also_models=[fallback] if fallback else [],
        )
        return await prefetcher.run(requests)

    def _finish(
        self,
        request: Request,
        tally: _Tally,
        began: float,
        *,
        message: Message | None = None,
        error: LLMError | None = None,
        fallback: bool = False,
    ) -> CallResult:
        latency_ms = tally.latency_s * 1000.0
        elapsed_s = self._clock.now() - began
        wait_ms = max(0.0, elapsed_s * 1000.0 - latency_ms)
        if tally.attempts:
            self._pacing.record(elapsed_s - tally.limiter_wait_s, message.usage if message else None)
        common = {
            "key": request.key,
            "model": request.model,
            "latency_ms": latency_ms,
            "wait_ms": wait_ms,
            "attempts": tally.attempts,
            "rate_limited": tally.rate_limited,
            "fallback": fallback,
            "request_id": tally.request_id,
        }
        if message is not None:
            usage = message.usage
            record = CallRecord(
                outcome="ok",
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
                cache_read_input_tokens=usage.cache_read_input_tokens or 0,
                cost_usd=cost(request.model, usage),
                stop_reason=message.stop_reason,
                **common,
            )
        else:
            assert error is not None
            record = CallRecord(outcome="error", error_type=type(error).__name__, error=str(error), **common)
        self._emit(record)
        return CallResult(request, record, message=message, error=error)

    def _emit(self, record: CallRecord) -> None:
        if self._on_record is not None:
            self._on_record(record)

    async def aclose(self) -> None:
        """Hand the limiters' held give-backs to the shared state (`open_client` calls this)."""
        await self._pacing.flush()

    def __repr__(self) -> str:
        return (
            f"<Client model={self.settings.model!r} fallback={self.settings.fallback_model!r} "
            f"state={self._state.kind} limiters={list(self._pacing.limiters)}>"
        )
