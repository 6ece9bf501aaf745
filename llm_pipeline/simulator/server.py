"""The Anthropic-compatible HTTP API: state, request pipeline and routes (aiohttp.web).

Every API request goes through the same steps, in the order the real service applies them:
read the body (413 over the size limit) → authenticate (401) → fault injection (outage,
schedule, probabilities: drop, hang, 429, 500, 529) → parse and validate (400/404) → the rate
limiter (429, Messages only) → answer (cached by fingerprint) → latency → response with a
`request-id` header. The service is single-threaded on its event loop, so its counters and
buckets need no locks.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from llm_pipeline.simulator import answers as answer_faults
from llm_pipeline.simulator.admin import control_routes
from llm_pipeline.simulator.answers import Answer, AnswerCache, generate
from llm_pipeline.simulator.batches import BatchStore
from llm_pipeline.simulator.config import SimulatorConfig
from llm_pipeline.simulator.faults import Decision, FaultInjector
from llm_pipeline.simulator.messages import build_message, build_usage, check_context, fingerprint, validate
from llm_pipeline.simulator.promptcache import CacheUsage, PromptCache
from llm_pipeline.simulator.ratelimit import Booking, RateLimited, RateLimiter
from llm_pipeline.simulator.stats import Stats
from llm_pipeline.simulator.streaming import stream_message
from llm_pipeline.simulator.tokens import estimate_input_tokens, prompt_pieces
from llm_pipeline.simulator.wire import ApiError, error_response, json_response, new_id

__all__ = ["BATCH_MAX_BYTES", "MESSAGES_MAX_BYTES", "SimulatorService", "build_app"]

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


class _Dropped(Exception):
    """The connection was closed on purpose; there is no response to send."""


class SimulatorService:
    """The simulator's live state; `reset` returns it to the configuration it started with."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.initial = config
        self._answers = AnswerCache(config.answer_cache_size)
        self.batches: BatchStore | None = None
        self.reset()

    def reset(self) -> None:
        if self.batches is not None:
            self.batches.close()
        self.config = self.initial
        self.rng = random.Random(self.config.seed)
        self.stats = Stats()
        self.limiter = RateLimiter(lambda model: self.config.limits_for(model))
        self.faults = FaultInjector(self.config.faults, self.rng)
        self.prompt_cache = PromptCache(self.config.prompt_cache_min_tokens)
        self.batches = BatchStore(lambda: self.config, self._batch_answer, self.stats, self.rng)

    def reconfigure(self, config: SimulatorConfig) -> None:
        """Adopt new settings; new limits start with full buckets."""
        limits_changed = (config.limits, config.model_limits) != (
            self.config.limits,
            self.config.model_limits,
        )
        self.config = config
        if limits_changed:
            self.limiter = RateLimiter(lambda model: self.config.limits_for(model))
        self.prompt_cache = PromptCache(config.prompt_cache_min_tokens)

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

    async def _api(
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
                decision = self.faults.on_request()
                if decision.kind is not None:
                    await self._inject(request, decision)
                response = await handler(request, body, request_id, decision)
            except ApiError as err:
                response = error_response(err, request_id)
            except _Dropped:
                status = 0
                return web.Response(status=500)  # never sent: the socket is already closed
            status = response.status
            return response
        finally:
            if billable:
                stats.leave(status)
            if status:
                stats.route(endpoint, status)

    # -- Messages -------------------------------------------------------------------------

    @staticmethod
    def _parse(body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ApiError(400, f"Invalid JSON in request body: {exc}") from exc

    def _prepare(self, params: Any, *, gullible: bool) -> tuple[Any, int, Answer, str]:
        config = self.config
        validate(params, models=config.models, max_output_tokens=config.max_output_tokens)
        input_tokens = estimate_input_tokens(params)
        check_context(input_tokens, config.context_window)
        fp = fingerprint(params)
        answer = self._answers.get((fp, gullible), lambda: generate(params, gullible=gullible))
        return params, input_tokens, answer, fp

    def _with_output_fault(self, answer: Answer, decision: Decision) -> Answer:
        fault = self.faults.output_fault(decision)
        if fault is None:
            return answer
        self.stats.faults[fault] += 1
        return _OUTPUT_FAULTS[fault](answer)

    async def _messages(
        self, request: web.Request, body: bytes, request_id: str, decision: Decision
    ) -> web.StreamResponse:
        params = self._parse(body)
        gullible = self.faults.faults.gullible
        params, input_tokens, answer, fp = self._prepare(params, gullible=gullible)
        model = params["model"]
        stats, limiter = self.stats, self.limiter  # as they were when this request arrived
        booking: Booking | None = None
        headers: dict[str, str] = {}
        if limiter.limited(model):
            try:
                booking, headers = limiter.reserve(model, input_tokens, params["max_tokens"])
            except RateLimited as limited:
                stats.limiter_429 += 1
                raise ApiError(429, limited.message, headers=limited.headers) from None
        answer = self._with_output_fault(answer, decision)
        cache = self.prompt_cache.use(model, prompt_pieces(params), params.get("cache_control"))
        usage = build_usage(input_tokens, answer.output_tokens, cache, tier="standard")
        message = build_message(answer, model, usage)
        latency = self.config.latency
        try:
            if latency.median_s:
                await asyncio.sleep(latency.median_s * math.exp(latency.sigma * self.rng.gauss(0.0, 1.0)))
            if params.get("stream") is True:
                headers["request-id"] = request_id
                response = await stream_message(request, message, headers, latency.per_output_token_s)
            else:
                if latency.per_output_token_s:
                    await asyncio.sleep(latency.per_output_token_s * answer.output_tokens)
                response = json_response(message, request_id, headers=headers)
        finally:
            if booking is not None:
                limiter.settle(booking, answer.output_tokens)
        stats.success(fp, usage)
        return response

    async def _count_tokens(
        self, request: web.Request, body: bytes, request_id: str, decision: Decision
    ) -> web.StreamResponse:
        params = self._parse(body)
        validate(
            params,
            models=self.config.models,
            max_output_tokens=self.config.max_output_tokens,
            count_tokens=True,
        )
        return json_response({"input_tokens": estimate_input_tokens(params)}, request_id)

    def _batch_answer(self, params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        params, input_tokens, answer, _ = self._prepare(params, gullible=self.faults.faults.gullible)
        answer = self._with_output_fault(answer, Decision())
        usage = build_usage(input_tokens, answer.output_tokens, CacheUsage(), tier="batch")
        return build_message(answer, params["model"], usage), usage

    # -- routes ---------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        def api(endpoint: str, handler: Handler, limit: int = MESSAGES_MAX_BYTES) -> Any:
            async def route(request: web.Request) -> web.StreamResponse:
                return await self._api(request, endpoint, handler, limit)

            return route

        batches = _BatchRoutes(self)
        return [
            web.post("/v1/messages", api("messages", self._messages)),
            web.post("/v1/messages/count_tokens", api("count_tokens", self._count_tokens)),
            web.post("/v1/messages/batches", api("batches", batches.create, BATCH_MAX_BYTES)),
            web.get("/v1/messages/batches", api("batches", batches.list)),
            web.get("/v1/messages/batches/{batch_id}", api("batches", batches.retrieve)),
            web.delete("/v1/messages/batches/{batch_id}", api("batches", batches.delete)),
            web.post("/v1/messages/batches/{batch_id}/cancel", api("batches", batches.cancel)),
            web.get("/v1/messages/batches/{batch_id}/results", api("batch_results", batches.results)),
        ]


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


class _BatchRoutes:
    """Thin adapters from HTTP to `BatchStore`."""

    def __init__(self, service: SimulatorService) -> None:
        self._service = service

    @property
    def _store(self) -> BatchStore:
        assert self._service.batches is not None
        return self._service.batches

    async def create(self, request: web.Request, body: bytes, rid: str, _: Decision) -> web.StreamResponse:
        return json_response(self._store.create(SimulatorService._parse(body), _origin(request)), rid)

    async def list(self, request: web.Request, body: bytes, rid: str, _: Decision) -> web.StreamResponse:
        return json_response(self._store.list(request.query, _origin(request)), rid)

    async def retrieve(self, request: web.Request, body: bytes, rid: str, _: Decision) -> web.StreamResponse:
        return json_response(self._store.retrieve(request.match_info["batch_id"], _origin(request)), rid)

    async def cancel(self, request: web.Request, body: bytes, rid: str, _: Decision) -> web.StreamResponse:
        return json_response(self._store.cancel(request.match_info["batch_id"], _origin(request)), rid)

    async def delete(self, request: web.Request, body: bytes, rid: str, _: Decision) -> web.StreamResponse:
        return json_response(self._store.delete(request.match_info["batch_id"]), rid)

    async def results(self, request: web.Request, body: bytes, rid: str, _: Decision) -> web.StreamResponse:
        data = self._store.results(request.match_info["batch_id"])
        return web.Response(body=data, headers={"request-id": rid}, content_type="application/binary")


async def _not_found(request: web.Request) -> web.StreamResponse:
    request_id = new_id("req")
    return error_response(ApiError(404, f"Not found: {request.method} {request.path}"), request_id)


def build_app(service: SimulatorService) -> web.Application:
    app = web.Application(client_max_size=BATCH_MAX_BYTES + 1024 * 1024)
    app.add_routes(service.routes())
    app.add_routes(control_routes(service))
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
