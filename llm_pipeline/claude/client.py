"""One logical call: ledger → limiter → breaker → SDK → ledger, in layers readable one at a time.

    call               drain bookkeeping: a call the drain cut short ends as `Aborted`
    _call              ledger lookup (a hit costs nothing), fallback selection, one CallRecord
    _claimed           claim the request (or wait for another run's answer to it), then:
    _call_with_retry   RetryPolicy around attempts; a 429 pauses the shared limiter instead
    Attempt            one attempt (`attempt.py`): breaker, limiter and learner around one exchange

Each model has a `Limiter` (the pace) and a `LimitLearner` (what the API's headers say the pace
should be); `in_flight()` is the fan-out they allow (`pacing.py`).

`prefetch` is batch mode's first half (`batches.py`): it fills the ledger through the Message
Batches API, and `call` then reports each answer it collected as one batch call (`batch=True`, at
the batch price), not as a free ledger hit.

`call` never raises for a per-request failure: the error comes back as a value in `CallResult`
(typed, from `errors.py`). What escapes is a bug, or cancellation. When the primary model's breaker
is open (`CircuitOpen`) and a fallback model is configured, the call goes to the fallback (its
own limiter and breaker) and the record says `model=<fallback>, fallback=True`; so does a model
the API does not know (`ModelNotFound`, a 404), and later calls go to the fallback directly.

Keeping the promises when the world misbehaves: every use of the shared state is wrapped in
`map_state_errors`, so a failed store is a systemic `StateStoreError`; a paid answer whose ledger
write fails is retried and then spooled (`Ledger.keep`); a request is claimed before it is sent
(`claims.py`), so overlapping runs pay once; without a fallback, callers wait for the breaker's
probe instead of failing (`breaker.py`); and a `Drain` (`drain.py`) stops the client starting
anything new while the calls on the wire finish and keep their answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from functools import partial

import anthropic
from anthropic.types import Message

from llm_pipeline.claude.attempt import Attempt
from llm_pipeline.claude.batches import BatchAnswer, BatchPrefetcher, BatchReport
from llm_pipeline.claude.breaker import Breaker
from llm_pipeline.claude.claims import Claims
from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.drain import Drain, InFlight
from llm_pipeline.claude.errors import (
    Aborted,
    CircuitOpen,
    LLMError,
    ModelNotFound,
    StateStoreError,
)
from llm_pipeline.claude.ledger import Ledger, LedgerHit
from llm_pipeline.claude.limit_learning import LimitLearner
from llm_pipeline.claude.limiter import Limiter
from llm_pipeline.claude.metrics import RecordSink
from llm_pipeline.claude.outcome import Tally, cached_result, finished_result
from llm_pipeline.claude.pacing import Pacing
from llm_pipeline.claude.retry import RetryPolicy
from llm_pipeline.claude.settings import ClaudeSettings
from llm_pipeline.claude.spool import Spool
from llm_pipeline.claude.state.base import StateBackend
from llm_pipeline.claude.state_errors import map_state_errors
from llm_pipeline.claude.token_estimate import estimate_input_tokens
from llm_pipeline.claude.types import CallResult, Request

__all__ = ["Client", "EventSink"]

EventSink = Callable[[object], None]


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
        drain: Drain | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.settings = settings
        self._location = state.location
        self.ledger = Ledger(
            state.ledger,
            clock=clock,
            refresh=settings.refresh,
            namespace=settings.endpoint,
            spool=spool,
            location=state.location,
        )
        #: Shared with the runner: stopping the run stops this client starting calls.
        self.drain = drain or Drain(settings.drain_s)
        self._in_flight = InFlight(self.drain)
        self._claims = Claims(state.claims, clock=clock, location=state.location)
        #: Models the API answered 404 for: their calls go straight to the fallback.
        self._missing: set[str] = set()
        self._sdk = sdk
        self._state = state
        self._clock = clock
        self._retry = retry
        self._on_record = on_record
        self._on_event = on_event
        self._pacing = Pacing(settings, state, clock=clock, on_event=on_event)
        self._attempt = Attempt(
            settings,
            sdk=sdk,
            breakers=state.breaker,
            location=state.location,
            ledger=self.ledger,
            pacing=self._pacing,
            drain=self.drain,
            in_flight=self._in_flight,
            clock=clock,
            on_event=on_event,
        )
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
        return self._attempt.breaker(model)

    async def call(self, request: Request) -> CallResult:
        """Answer one request: from the ledger, the primary model, or the fallback."""
        task = self._in_flight.enter()
        try:
            return await self._call(request)
        except asyncio.CancelledError:
            if not self._in_flight.aborted(task):
                raise
            aborted = Aborted(f"the run is stopping ({self.drain.reason}); this request was not sent")
            return self._finish(request, Tally(), self._clock.now(), error=aborted)
        finally:
            self._in_flight.leave(task)

    async def _call(self, request: Request) -> CallResult:
        fallback = self.settings.fallback_model
        alternatives = (fallback,) if fallback and fallback != request.model else ()
        key = self.ledger.entry_key(request)
        fresh = self._batch_answers.pop(key, None) if self._batch_answers else None
        began, tally = self._clock.now(), Tally()
        try:
            with map_state_errors(self._location):
                hit = await self.ledger.get(
                    request, also_models=alternatives, ignore_refresh=fresh is not None, entry_key=key
                )
        except StateStoreError as exc:
            return self._finish(request, tally, began, error=exc)
        if hit is not None:
            return self._cached(request, hit, fresh)
        if not (alternatives and request.model in self._missing):
            try:
                answer = await self._claimed(request, key, tally, wait=not alternatives)
                if isinstance(answer, LedgerHit):
                    return self._cached(request, answer)
                return self._finish(request, tally, began, message=answer)
            except (CircuitOpen, ModelNotFound) as exc:
                if isinstance(exc, ModelNotFound):
                    self._missing.add(request.model)
                if not alternatives:
                    return self._finish(request, tally, began, error=exc)
            except LLMError as exc:
                return self._finish(request, tally, began, error=exc)
        rerouted = request.with_model(alternatives[0])
        try:
            answer = await self._claimed(rerouted, self.ledger.entry_key(rerouted), tally, wait=True)
            if isinstance(answer, LedgerHit):
                return self._cached(request, answer)
            return self._finish(rerouted, tally, began, message=answer, fallback=True)
        except LLMError as exc:
            return self._finish(rerouted, tally, began, error=exc, fallback=True)

    async def _claimed(self, request: Request, key: str, tally: Tally, *, wait: bool) -> Message | LedgerHit:
        """Call for `request` holding its claim; or, when another caller holds it, its stored answer."""
        since, refresh = self._clock.wall(), self.ledger.refresh or key in self.ledger.invalid

        async def answered() -> LedgerHit | None:
            hit = await self.ledger.get(request, ignore_refresh=True, entry_key=key)
            fresh = hit is not None and (not refresh or hit.created_at >= since)
            return hit if fresh else None

        call = partial(self._call_with_retry, request, key, tally, wait)
        return await self._claims.exclusively(key, call, answered, answered_too=refresh)

    def _call_with_retry(self, request: Request, key: str, tally: Tally, wait: bool) -> Awaitable[Message]:
        # A plain function handing back the retry coroutine, and a `partial` rather than a lambda:
        # both live for the whole call, and at 200 calls in flight every object held across the
        # HTTP exchange feeds the garbage collector (a closure over five names is seven objects).
        learner = self.learner_for(request.model)
        attempt = partial(self._attempt, request, key, estimate_input_tokens(request.params), tally, wait)
        return self._retry.call(
            attempt,
            key=request.key,
            model=request.model,
            cool_down=learner.cool_down,
            shared=learner.shares_429,
        )

    def _cached(self, request: Request, hit: LedgerHit, batch: BatchAnswer | None = None) -> CallResult:
        return self._emit(cached_result(request, hit, batch))

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
        tally: Tally,
        began: float,
        *,
        message: Message | None = None,
        error: LLMError | None = None,
        fallback: bool = False,
    ) -> CallResult:
        elapsed_s = self._clock.now() - began
        if tally.attempts:
            self._pacing.record(elapsed_s - tally.limiter_wait_s, message.usage if message else None)
        return self._emit(
            finished_result(request, tally, elapsed_s, message=message, error=error, fallback=fallback)
        )

    def _emit(self, result: CallResult) -> CallResult:
        if self._on_record is not None:
            self._on_record(result.record)
        return result

    async def aclose(self) -> None:
        """Hand the limiters' held give-backs to the shared state, give back any claims still held."""
        await self._claims.aclose()
        with contextlib.suppress(StateStoreError), map_state_errors(self._location):
            await self._pacing.flush()

    def __repr__(self) -> str:
        return (
            f"<Client model={self.settings.model!r} fallback={self.settings.fallback_model!r} "
            f"state={self._state.kind} limiters={list(self._pacing.limiters)}>"
        )
