"""ClaudeResource: the only Dagster-aware face of the async call stack.

It resolves settings when a run launches (resource config wins over the environment, which wins over
defaults; ARCHITECTURE §2), starts the embedded simulator when there is no API key, and opens the
call stack inside the step's running event loop (asyncio objects bound to another loop are a known
Dagster pitfall), closing it when the step ends. It holds no retry or limiter logic of its own.

With the simulator the code path is the one a real key takes: the same SDK, client, limiter and
ledger; only the base URL differs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from llm_pipeline.claude import ClaudeSettings, open_client
from llm_pipeline.pipeline.session import StepSession
from llm_pipeline.settings import resolve_state
from llm_pipeline.simulator import Latency, Limits, Simulator, SimulatorConfig

__all__ = ["DEFAULT_MODEL", "SIMULATOR_LIMITS", "ClaudeResource"]

DEFAULT_MODEL = "claude-haiku-5-5"
#: Limits of the embedded simulator (Tier-4-like Haiku): the demo is rate-bound, but not slow.
SIMULATOR_LIMITS = {"rpm": 4_000, "itpm": 4_000_000, "otpm": 800_000}
#: The key the client sends to the embedded simulator; it is not a secret and bills nothing.
_SIMULATOR_KEY = "sk-simulator"
_BACKENDS = ("anthropic", "simulator")


class ClaudeResource(dg.ConfigurableResource):
    """Claude for the pipeline's assets; every field falls back to its env var, then a default."""

    api_key: str | None = Field(
        default=None,
        description="Anthropic API key. Leave unset and export ANTHROPIC_API_KEY (or use dg.EnvVar) "
        "so the key never appears in run config.",
    )
    base_url: str | None = Field(default=None, description="API base URL; env ANTHROPIC_BASE_URL.")
    backend: str | None = Field(
        default=None,
        description="'anthropic' or 'simulator'; env LLM_PIPELINE_BACKEND; default anthropic when a key "
        "is set, else the embedded simulator.",
    )
    model: str | None = Field(default=None, description=f"env LLM_PIPELINE_MODEL; default {DEFAULT_MODEL}.")
    fallback_model: str | None = Field(
        default=None, description="Used while the primary's breaker is open; env LLM_PIPELINE_FALLBACK_MODEL."
    )
    rpm: int | None = Field(default=None, description="Requests per minute; env LLM_PIPELINE_RPM.")
    itpm: int | None = Field(default=None, description="Input tokens per minute; env LLM_PIPELINE_ITPM.")
    otpm: int | None = Field(default=None, description="Output tokens per minute; env LLM_PIPELINE_OTPM.")
    burst_seconds: float | None = Field(
        default=None,
        description="Seconds of each rate the limiter's buckets hold (the burst allowed after a quiet "
        "spell); env LLM_PIPELINE_BURST_SECONDS; default 30.",
    )
    max_concurrency: int | None = Field(
        default=None, description="Calls in flight per process; env LLM_PIPELINE_MAX_CONCURRENCY; default 32."
    )
    state: str | None = Field(
        default=None,
        description="Shared limiter/breaker/ledger state: a directory (SQLite), redis://..., or 'memory'; "
        "env LLM_PIPELINE_STATE; default $DAGSTER_HOME or .llm_state.",
    )
    refresh: bool = Field(
        default=False, description="Skip ledger lookups this run (answers are still stored)."
    )
    timeout_s: float | None = Field(default=None, description="Per-attempt timeout in seconds.")
    mode: str | None = Field(
        default=None,
        description="'realtime' (Messages calls) or 'batch' (prefetch through the Message Batches API at "
        "half price, answers within 24 h); env LLM_PIPELINE_MODE; default realtime. See docs/batch-mode.md.",
    )
    batch_poll_s: float | None = Field(
        default=None,
        description="First wait between batch status polls (x1.5 after each); env "
        "LLM_PIPELINE_BATCH_POLL_S; default 30.",
    )
    batch_poll_max_s: float | None = Field(
        default=None,
        description="Longest wait between polls; env LLM_PIPELINE_BATCH_POLL_MAX_S; default 300.",
    )
    batch_deadline_s: float | None = Field(
        default=None,
        description="Fail the step (naming the batch ids, which a later run resumes) if its batches have not "
        "ended after this many seconds; env LLM_PIPELINE_BATCH_DEADLINE_S; default 86400.",
    )
    batch_retry: str | None = Field(
        default=None,
        description="Errored and expired batch requests: 'realtime' (ordinary calls) or 'batch' (a new small "
        "batch, up to 2 rounds); env LLM_PIPELINE_BATCH_RETRY; default realtime.",
    )
    simulator_latency_ms: float = Field(
        default=150.0, description="Median answer latency of the embedded simulator (0 = instant)."
    )

    _settings: ClaudeSettings | None = PrivateAttr(default=None)
    _backend: str | None = PrivateAttr(default=None)
    _simulator: Simulator | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        backend, settings = self._resolve()
        if backend == "simulator":
            self._simulator = Simulator(self._simulator_config(settings)).start()
            settings = replace(settings, base_url=self._simulator.base_url, api_key=_SIMULATOR_KEY)
            context.log.warning(
                "LLM_PIPELINE_BACKEND=simulator: no ANTHROPIC_API_KEY is set, so every answer comes from "
                f"the embedded Anthropic simulator at {self._simulator.base_url} and nothing is billed. "
                "Set ANTHROPIC_API_KEY to call the real API."
            )
        self._backend, self._settings = backend, settings
        context.log.info(
            f"Claude backend={backend} model={settings.model} fallback={settings.fallback_model} "
            f"limits rpm={settings.rpm:g} itpm={settings.itpm:g} otpm={settings.otpm:g} "
            f"concurrency={settings.max_concurrency} state={settings.state or 'memory'} mode={settings.mode}"
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._simulator is not None:
            self._simulator.stop()
            self._simulator = None

    @property
    def settings(self) -> ClaudeSettings:
        if self._settings is None:
            raise dg.DagsterInvariantViolationError("ClaudeResource is used outside a run (not set up)")
        return self._settings

    @property
    def backend_name(self) -> str:
        return self._backend or "unknown"

    @asynccontextmanager
    async def session(self, context: dg.AssetExecutionContext, *, step: str) -> AsyncIterator[StepSession]:
        """The call stack for one step, opened on the step's running loop and closed after it."""
        settings = self.settings
        session = StepSession(step=step, log=context.log, settings=settings, backend=self.backend_name)
        async with open_client(settings, on_record=session.on_record, on_event=session.on_event) as client:
            session.attach(client)
            yield session

    def _resolve(self) -> tuple[str, ClaudeSettings]:
        env = os.environ
        api_key = self.api_key or env.get("ANTHROPIC_API_KEY") or ""
        backend = (self.backend or env.get("LLM_PIPELINE_BACKEND") or "").strip().lower()
        backend = backend or ("anthropic" if api_key else "simulator")
        if backend not in _BACKENDS:
            raise dg.Failure(f"LLM_PIPELINE_BACKEND must be one of {_BACKENDS}, got {backend!r}")
        if backend == "anthropic" and not api_key:
            raise dg.Failure(
                "LLM_PIPELINE_BACKEND=anthropic but ANTHROPIC_API_KEY is not set: export the key, or use "
                "LLM_PIPELINE_BACKEND=simulator to run on the embedded simulator."
            )
        limits = SIMULATOR_LIMITS if backend == "simulator" else {}
        fields: dict[str, Any] = {
            "api_key": api_key,
            "base_url": (self.base_url or env.get("ANTHROPIC_BASE_URL")) if backend == "anthropic" else None,
            "model": self.model or env.get("LLM_PIPELINE_MODEL") or DEFAULT_MODEL,
            "fallback_model": self.fallback_model or env.get("LLM_PIPELINE_FALLBACK_MODEL") or None,
            "state": resolve_state(self.state),
            "refresh": self.refresh,
        }
        for name in ("rpm", "itpm", "otpm", "max_concurrency"):
            resolved = self._configured(name, int)
            if resolved is None:
                resolved = limits.get(name)
            if resolved is not None:
                fields[name] = resolved
        burst = self._configured("burst_seconds", float)
        if burst is not None:
            fields["burst_seconds"] = burst
        if self.timeout_s is not None:
            fields["timeout_s"] = self.timeout_s
        fields.update(self._batch_fields())
        try:
            return backend, ClaudeSettings(**fields)
        except ValueError as exc:
            raise dg.Failure(f"invalid Claude settings: {exc}") from exc

    def _batch_fields(self) -> dict[str, Any]:
        """Batch-mode settings given in config or env; ClaudeSettings validates them and has the defaults."""
        fields: dict[str, Any] = {}
        for name in ("mode", "batch_retry"):
            value = getattr(self, name) or os.environ.get(f"LLM_PIPELINE_{name.upper()}")
            if value and value.strip():
                fields[name] = value.strip().lower()
        for name in ("batch_poll_s", "batch_poll_max_s", "batch_deadline_s"):
            resolved = self._configured(name, float)
            if resolved is not None:
                fields[name] = resolved
        return fields

    def _configured(self, name: str, kind: type[int] | type[float]) -> int | float | None:
        """This resource's `name` when set in config, else `LLM_PIPELINE_<NAME>`, else None."""
        value = getattr(self, name)
        return value if value is not None else _env_number(f"LLM_PIPELINE_{name.upper()}", kind)

    def _simulator_config(self, settings: ClaudeSettings) -> SimulatorConfig:
        """The embedded simulator enforces the limits the client is configured with, as the API would."""
        median_s = self.simulator_latency_ms / 1000.0
        return SimulatorConfig(
            limits=Limits(
                rpm=settings.rpm, itpm=settings.itpm, otpm=settings.otpm, burst_seconds=settings.burst_seconds
            ),
            latency=Latency(median_s=median_s, sigma=0.4 if median_s else 0.0),
        )


def _env_number(name: str, kind: type[int] | type[float]) -> int | float | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return kind(raw)
    except ValueError:
        raise dg.Failure(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from None
