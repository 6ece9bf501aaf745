"""The aiohttp application: which URL goes to which handler.

API routes all run through `SimulatorService.serve` (auth, faults, counters); the control routes
under `/_sim/` (admin.py) do not; anything else is a 404 in the API's error envelope.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from llm_pipeline.simulator.admin import control_routes
from llm_pipeline.simulator.batches import BatchStore
from llm_pipeline.simulator.faults import Decision
from llm_pipeline.simulator.server import BATCH_MAX_BYTES, MESSAGES_MAX_BYTES, Handler, SimulatorService
from llm_pipeline.simulator.wire import ApiError, error_response, json_response, new_id

__all__ = ["build_app"]


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _json_body(body: bytes) -> Any:
    return SimulatorService.parse(body)


class _BatchRoutes:
    """Thin adapters from HTTP to the service's `BatchStore`."""

    def __init__(self, service: SimulatorService) -> None:
        self._service = service

    @property
    def _store(self) -> BatchStore:
        return self._service.batches

    async def create(self, request: web.Request, body: bytes, rid: str, _: Decision) -> web.StreamResponse:
        return json_response(self._store.create(_json_body(body), _origin(request)), rid)

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


def _api_routes(service: SimulatorService) -> list[web.RouteDef]:
    def api(endpoint: str, handler: Handler, limit: int = MESSAGES_MAX_BYTES) -> Any:
        async def route(request: web.Request) -> web.StreamResponse:
            return await service.serve(request, endpoint, handler, limit)

        return route

    batches = _BatchRoutes(service)
    return [
        web.post("/v1/messages", api("messages", service.create_message)),
        web.post("/v1/messages/count_tokens", api("count_tokens", service.count_tokens)),
        web.post("/v1/messages/batches", api("batches", batches.create, BATCH_MAX_BYTES)),
        web.get("/v1/messages/batches", api("batches", batches.list)),
        web.get("/v1/messages/batches/{batch_id}", api("batches", batches.retrieve)),
        web.delete("/v1/messages/batches/{batch_id}", api("batches", batches.delete)),
        web.post("/v1/messages/batches/{batch_id}/cancel", api("batches", batches.cancel)),
        web.get("/v1/messages/batches/{batch_id}/results", api("batch_results", batches.results)),
    ]


async def _not_found(request: web.Request) -> web.StreamResponse:
    return error_response(ApiError(404, f"Not found: {request.method} {request.path}"), new_id("req"))


def build_app(service: SimulatorService) -> web.Application:
    app = web.Application(client_max_size=BATCH_MAX_BYTES + 1024 * 1024)
    app.add_routes(_api_routes(service))
    app.add_routes(control_routes(service))
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
