"""The Anthropic-compatible API's state and request pipeline (routes: app.py).

Every API request goes through the same steps, in the order the real service applies them:
read the body (413 over the size limit) → authenticate (401) → fault injection (outage,
schedule, probabilities: drop, hang, 429, 500, 529) → parse and validate (400/404) → the rate
limiter (429, Messages only; cache reads do not count toward input tokens, except on the models
in `itpm_counts_cache_reads`) → answer (cached by fingerprint) → latency → the prompt cache's
writes become readable (the response has started) → response with a `request-id` header. The
service is single-threaded on its event loop, so its counters and buckets need no locks.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from aiohttp import web

from llm_pipeline.simulator import answers as answer_faults
from llm_pipeline.simulator.answers import Answer, AnswerCache, generate
from llm_pipeline.simulator.batches import BatchStore
from llm_pipeline.simulator.bodies import bad_body
from llm_pipeline.simulator.config import SimulatorConfig
from llm_pipeline.simulator.faults import BODY_KINDS, Decision, FaultInjector
from llm_pipeline.simulator.messages import build_message, build_usage, check_context, fingerprint, validate
from llm_pipeline.simulator.promptcache import PromptCache
from llm_pipeline.simulator.ratelimit import Booking, RateLimited, RateLimiter, public_headers
from llm_pipeline.simulator.stats import Stats
from llm_pipeline.simulator.streaming import stream_message
from llm_pipeline.simulator.tokens import PromptPiece, estimate_input_tokens, prompt_pieces
from llm_pipeline.simulator.wire import ApiError, error_response, json_response, new_id

__all__ = ["BATCH_MAX_BYTES", "MESSAGES_MAX_BYTES", "Handler", "SimulatorService"]

MESSAGES_MAX_BYTES = 32 * 1024 * 1024
BATCH_MAX_BYTES = 256 * 1024 * 1024
_OUTPUT_FAULTS: dict[str, Callable[[Answer], Answer]] = {
    "malformed": answer_faults.malformed,
    "bad_json": answer_faults.bad_json,
    "refusal": answer_faults.refusal,
}
_STATUS_FAULTS = {
    "429": (429, "Number of requests has exceeded your rate limit (simulated fault)."),
    "500": (500, "Internal server error (simulated fault)."),
    "529": (529, "Overloaded (simulated fault)."),
    "outage500": (500, "Internal server error (simulated outage)."),
    "outage529": (529, "Overloaded (simulated outage)."),
}

Handler = Callable[[web.Request, bytes, str, Decision], Awaitable[web.StreamResponse]]


class _Prepared(NamedTuple):
    """A validated Messages request and everything derived from it."""

    params: Mapping[str, Any]
    pieces: list[PromptPiece]
    input_tokens: int
    answer: Answer
    fingerprint: str


class _Dropped(Exception):
    """The connection was closed on purpose; there is no response to send."""


class SimulatorService:
    """The simulator's live state; `reset` returns it to the configuration it started with."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.initial = config
        self._answers = AnswerCache(config.answer_cache_size)
        self._start()

    def _start(self) -> None:
        self.config = self.initial
        self.rng = random.Random(self.config.seed)
        self.stats = Stats()
        self.limiter = RateLimiter(lambda model: self.config.limits_for(model))
        self.faults = FaultInjector(self.config.faults, self.rng)
        self.prompt_cache = PromptCache(lambda model: self.config.prompt_cache_min_for(model))
        self.batches = BatchStore(lambda: self.config, self._batch_answer, self.stats, self.rng)

    def reset(self) -> None:
        self.batches.close()
        self._start()

    def reconfigure(self, config: SimulatorConfig) -> None:
        """Adopt new settings; changed limits start with full buckets."""
        old, self.config = self.config, config
        if (config.limits, config.model_limits) != (old.limits, old.model_limits):
            self.limiter = RateLimiter(lambda model: self.config.limits_for(model))

    # -- the pipeline shared by every API route --------------------------------------------

    async def _read(self, request: web.Request, limit: int) -> bytes:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise ApiError(413, "Request exceeds the maximum allowed number of bytes.") from exc
        if len(body) > limit:
            raise ApiError(413, "Request exceeds the maximum allowed number of bytes.")
        return body

    def _authenticate(self, request: web.Request) -> None:
        expected = self.config.api_key
        if expected is None:
            return
        key = request.headers.get("x-api-key")
        if key is None:
            auth = request.headers.get("authorization", "")
            key = auth[7:] if auth[:7].lower() == "bearer " else None
        if key != expected:
            raise ApiError(401, "invalid x-api-key")

    async def _inject(self, request: web.Request, decision: Decision) -> None:
        kind = decision.kind
        assert kind is not None
        self.stats.faults[kind] += 1
        if kind == "drop":
            if request.transport is not None:
                request.transport.close()
            raise _Dropped
        if kind == "hang":
            hang_s = self.faults.faults.hang_s
            await asyncio.sleep(hang_s)
            raise ApiError(504, f"The simulator held this request for {hang_s:g} s (hang fault).")
        status, message = _STATUS_FAULTS[kind]
        headers = {"retry-after": str(math.ceil(decision.retry_after_s))} if status == 429 else None
        raise ApiError(status, message, headers=headers)

    async def serve(
        self, request: web.Request, endpoint: str, handler: Handler, limit: int = MESSAGES_MAX_BYTES
    ) -> web.StreamResponse:
        request_id = new_id("req")
        billable = endpoint == "messages"
        status = 499  # unchanged if the client goes away (the handler is cancelled) first
        stats = self.stats  # a reset meanwhile must not unbalance the new counters
        if billable:
            stats.enter()
        try:
            try:
                body = await self._read(request, limit)
                self._authenticate(request)
                decision = self.faults.on_request(self._model_of(body))
                if decision.kind is not None:
                    await self._inject(request, decision)
                response = await handler(request, body, request_id, decision)
            except ApiError as err:
                response = error_response(err, request_id)
            except _Dropped:
                status = 0
                return web.Response(status=500)  # never sent: the socket is already closed
            except ConnectionError:
                return web.Response(status=499)  # the client left mid-stream; nothing to send to
            status = response.status
            return response
        finally:
            if billable:
                stats.leave(status)
            if status:
                stats.route(endpoint, status)

    def _model_of(self, body: bytes) -> str | None:
        """The request's model, parsed only when faults are confined to some models (hot path)."""
        if not self.faults.faults.models:
            return None
        try:
            params = json.loads(body)
        except ValueError:
            return None
        return params.get("model") if isinstance(params, dict) else None

    # -- Messages -------------------------------------------------------------------------

    @staticmethod
    def parse(body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ApiError(400, f"Invalid JSON in request body: {exc}") from exc

    def _prepare(self, params: Any, *, gullible: bool) -> _Prepared:
        config = self.config
        validate(params, models=config.models, max_output_tokens=config.max_output_tokens)
        pieces = prompt_pieces(params)
        input_tokens = estimate_input_tokens(params, pieces)
        check_context(input_tokens, config.context_window)
        fp = fingerprint(params)
        answer = self._answers.get((fp, gullible), lambda: generate(params, gullible=gullible))
        return _Prepared(params, pieces, input_tokens, answer, fp)

    def _with_output_fault(self, answer: Answer, decision: Decision) -> tuple[Answer, str | None]:
        """The answer with its output fault applied, and the body fault to send it with, if any."""
        fault = self.faults.output_fault(decision)
        if fault is None:
            return answer, None
        self.stats.faults[fault] += 1
        if fault in BODY_KINDS:
            return answer, fault
        return _OUTPUT_FAULTS[fault](answer), None

    async def create_message(
        self, request: web.Request, body: bytes, request_id: str, decision: Decision
    ) -> web.StreamResponse:
        prepared = self._prepare(self.parse(body), gullible=self.faults.faults.gullible)
        params, input_tokens, answer = prepared.params, prepared.input_tokens, prepared.answer
        model = params["model"]
        stats, limiter, cache = self.stats, self.limiter, self.prompt_cache  # as when this request arrived
        lookup = cache.lookup(model, prepared.pieces, params.get("cache_control"))
        booking: Booking | None = None
        headers: dict[str, str] = {}
        if limiter.limited(model):
            counted = input_tokens
            if model not in self.config.itpm_counts_cache_reads:
                counted -= lookup.usage.read
            shown = {
                "send": self.config.rate_limit_headers,
                "round_tokens": self.config.round_token_remaining,
            }
            try:
                booking, headers = limiter.reserve(model, counted, params["max_tokens"])
            except RateLimited as limited:
                stats.refused()
                raise ApiError(
                    429, limited.message, headers=public_headers(limited.headers, **shown)
                ) from None
            headers = public_headers(headers, **shown)
        cache.begin(lookup)
        answer, body_fault = self._with_output_fault(answer, decision)
        usage = build_usage(input_tokens, answer.output_tokens, lookup.usage, tier="standard")
        message = build_message(answer, model, usage)
        latency = self.config.latency
        try:
            if latency.median_s:
                await asyncio.sleep(latency.median_s * math.exp(latency.sigma * self.rng.gauss(0.0, 1.0)))
            cache.publish(lookup)  # the response starts: from now on its prefix can be read
            if params.get("stream") is True:
                headers["request-id"] = request_id
                response = await stream_message(request, message, headers, latency.per_output_token_s)
            else:
                if latency.per_output_token_s:
                    await asyncio.sleep(latency.per_output_token_s * answer.output_tokens)
                if body_fault is not None:
                    response = bad_body(body_fault, message, request_id, headers)
                else:
                    response = json_response(message, request_id, headers=headers)
        except (asyncio.CancelledError, ConnectionError):
            # The client went away with the answer under way: the real API bills what it generated.
            stats.abandon(prepared.fingerprint, usage, billed=self.config.bill_abandoned)
            raise
        finally:
            if booking is not None:
                limiter.settle(booking, answer.output_tokens)
        stats.success(prepared.fingerprint, usage)
        return response

    async def count_tokens(
        self, request: web.Request, body: bytes, request_id: str, decision: Decision
    ) -> web.StreamResponse:
        params = self.parse(body)
        validate(
            params,
            models=self.config.models,
            max_output_tokens=self.config.max_output_tokens,
            count_tokens=True,
        )
        return json_response({"input_tokens": estimate_input_tokens(params)}, request_id)

    def _batch_answer(self, params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        prepared = self._prepare(params, gullible=self.faults.faults.gullible)
        answer, _ = self._with_output_fault(prepared.answer, Decision())  # no body: a batch result is JSONL
        lookup = self.prompt_cache.lookup(params["model"], prepared.pieces, params.get("cache_control"))
        self.prompt_cache.begin(lookup)
        self.prompt_cache.publish(lookup)  # batch items are answered one after another
        usage = build_usage(prepared.input_tokens, answer.output_tokens, lookup.usage, tier="batch")
        return build_message(answer, params["model"], usage), usage
