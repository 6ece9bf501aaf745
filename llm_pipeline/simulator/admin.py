"""The control endpoints under `/_sim/`: read the ground truth, flip switches, start over.

They bypass auth and fault injection, so a test can always reach them. Bodies are the JSON
forms of the config dataclasses (`config.to_dict`), which `SimulatorControl` sends.

    GET  /_sim/health           {"ok": true}
    GET  /_sim/stats[?times=1]  the counters (see stats.py); times=1 adds every success time
    GET  /_sim/config           the live configuration (faults included; never the api key)
    PUT  /_sim/faults           replace ALL fault switches (fields left out are off / default)
    PUT  /_sim/config           change only the given settings (see `CONFIGURABLE`)
    POST /_sim/reset            counters, faults, limits, latency, batches, RNG back to the start
    POST /_sim/prompt_cache/evict   forget every cached prompt prefix (an eviction before the TTL)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from llm_pipeline.simulator.config import (
    faults_from_dict,
    latency_from_dict,
    limits_from_dict,
    model_limits_from_dict,
    to_dict,
)
from llm_pipeline.simulator.wire import ApiError, error_response, json_response, new_id

if TYPE_CHECKING:
    from llm_pipeline.simulator.server import SimulatorService

__all__ = ["CONFIGURABLE", "REDACTED", "control_routes"]

#: Settings `PUT /_sim/config` may change at run time (host, port, seed and cache size may not).
CONFIGURABLE: dict[str, Callable[[Any], Any]] = {
    "limits": limits_from_dict,
    "model_limits": lambda value: model_limits_from_dict(dict(value)),
    "latency": latency_from_dict,
    "api_key": lambda value: None if value is None else str(value),
    "context_window": int,
    "max_output_tokens": int,
    "models": lambda value: tuple(str(m) for m in value),
    "batch_processing_s": float,
    "batch_expiry_s": float,
    "batch_p_errored": float,
    "batch_p_expired": float,
    "prompt_cache_min_tokens": int,
    "model_prompt_cache_min_tokens": lambda value: {str(m): int(n) for m, n in dict(value).items()},
    "itpm_counts_cache_reads": lambda value: tuple(str(m) for m in value),
    "bill_abandoned": bool,
    "rate_limit_headers": bool,
    "round_token_remaining": bool,
}
#: What `GET /_sim/config` shows instead of a configured key: the control routes need no auth, so
#: anyone who can reach the port could otherwise read the key a spawned server was given.
REDACTED = "<redacted>"


def _live_config(service: SimulatorService) -> dict[str, Any]:
    live = to_dict(service.config.replace(faults=service.faults.faults))
    if live["api_key"] is not None:
        live["api_key"] = REDACTED
    return live


def control_routes(service: SimulatorService) -> list[web.RouteDef]:
    def guarded(handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        async def route(request: web.Request) -> web.StreamResponse:
            request_id = new_id("req")
            try:
                return json_response(await handler(request), request_id)
            except (ValueError, TypeError, KeyError) as exc:
                return error_response(ApiError(400, f"{type(exc).__name__}: {exc}"), request_id)

        return route

    async def body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data

    async def health(request: web.Request) -> Any:
        return {"ok": True}

    async def stats(request: web.Request) -> Any:
        include_times = request.query.get("times", "0").lower() in ("1", "true", "yes")
        return service.stats.snapshot(include_times=include_times)

    async def config(request: web.Request) -> Any:
        return _live_config(service)

    async def set_faults(request: web.Request) -> Any:
        faults = faults_from_dict(await body(request))
        service.faults.install(faults)
        return to_dict(faults)

    async def set_config(request: web.Request) -> Any:
        changes = await body(request)
        unknown = set(changes) - set(CONFIGURABLE)
        if unknown:
            raise ValueError(f"not configurable at run time: {sorted(unknown)}")
        values = {name: CONFIGURABLE[name](value) for name, value in changes.items()}
        service.reconfigure(service.config.replace(**values))
        return _live_config(service)

    async def reset(request: web.Request) -> Any:
        service.reset()
        return {"ok": True}

    async def evict_prompt_cache(request: web.Request) -> Any:
        return {"evicted": service.prompt_cache.evict_all()}

    return [
        web.get("/_sim/health", guarded(health)),
        web.get("/_sim/stats", guarded(stats)),
        web.get("/_sim/config", guarded(config)),
        web.put("/_sim/faults", guarded(set_faults)),
        web.put("/_sim/config", guarded(set_config)),
        web.post("/_sim/reset", guarded(reset)),
        web.post("/_sim/prompt_cache/evict", guarded(evict_prompt_cache)),
    ]
