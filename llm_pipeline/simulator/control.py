"""A small synchronous client for the `/_sim/*` control endpoints.

It speaks HTTP (urllib, no proxies), so it drives an in-process simulator and a spawned or CLI
one alike, and sync and async tests can both call it: the simulator never runs on the caller's
event loop.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from llm_pipeline.simulator.config import Faults, Latency, Limits, to_dict

__all__ = ["ControlError", "SimulatorControl"]

_UNSET: Any = object()


class ControlError(RuntimeError):
    """A control call failed (bad value, or the simulator is not reachable)."""


class SimulatorControl:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=self._timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ControlError(f"{method} {path} -> {exc.code}: {detail}") from exc
        except OSError as exc:
            raise ControlError(f"{method} {path}: simulator at {self.base_url} unreachable: {exc}") from exc

    def health(self) -> bool:
        try:
            return bool(self._call("GET", "/_sim/health").get("ok"))
        except ControlError:
            return False

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.health():
            if time.monotonic() > deadline:
                raise ControlError(f"simulator at {self.base_url} not ready after {timeout_s} s")
            time.sleep(0.05)

    def stats(self, *, times: bool = False) -> dict[str, Any]:
        """The counters; `times=True` adds `success_times` and `limiter_429_times` (seconds since
        start or reset)."""
        return self._call("GET", "/_sim/stats" + ("?times=1" if times else ""))

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/_sim/config")

    def set_faults(self, faults: Faults | None = None, **fields: Any) -> dict[str, Any]:
        """Replace every fault switch: `set_faults(p429=0.1)` also turns off all the others.

        `schedule` takes `ScheduledFault`s (or their dicts); the schedule counts requests
        from this call on.
        """
        if faults is not None and fields:
            raise TypeError("pass either a Faults object or fields, not both")
        if "schedule" in fields:
            # Like `Faults`, take any iterable; `to_dict` only walks lists and tuples.
            fields["schedule"] = list(fields["schedule"])
        return self._call("PUT", "/_sim/faults", to_dict(faults if faults is not None else fields))

    def clear_faults(self) -> dict[str, Any]:
        return self.set_faults(Faults())

    def configure(
        self,
        *,
        limits: Limits | None = None,
        latency: Latency | None = None,
        model_limits: dict[str, Limits] | None = None,
        api_key: str | None = _UNSET,
        **settings: Any,
    ) -> dict[str, Any]:
        """Change only the given settings (see `admin.CONFIGURABLE`); returns the live config."""
        changes: dict[str, Any] = dict(settings)
        if limits is not None:
            changes["limits"] = limits
        if latency is not None:
            changes["latency"] = latency
        if model_limits is not None:
            changes["model_limits"] = model_limits
        if api_key is not _UNSET:
            changes["api_key"] = api_key
        return self._call("PUT", "/_sim/config", to_dict(changes))

    def reset(self) -> None:
        self._call("POST", "/_sim/reset")

    def evict_prompt_cache(self) -> dict[str, Any]:
        """Forget every cached prompt prefix, as the API may before an entry's TTL ends."""
        return self._call("POST", "/_sim/prompt_cache/evict")

    def __repr__(self) -> str:
        return f"SimulatorControl({self.base_url!r})"
