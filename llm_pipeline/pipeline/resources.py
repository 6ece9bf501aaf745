"""ClaudeResource: the only Dagster-aware face of the async call stack.

It resolves settings when a run launches (resource config wins over the environment, which wins over
defaults; ARCHITECTURE §2), starts the embedded simulator when there is no API key, and opens the
call stack inside the step's running event loop (asyncio objects bound to another loop are a known
Dagster pitfall), closing it when the step ends. It holds no retry or limiter logic of its own.

With the simulator the code path is the one a real key takes: the same SDK, client, limiter and
ledger; only the base URL differs. The embedded simulator enforces `SIMULATOR_LIMITS` (or the
configured caps) and sends the API's rate-limit headers, so the client learns its limits there as
it would from the API: nothing about the limits needs configuring.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from llm_pipeline.claude import ClaudeSettings
from llm_pipeline.claude.limits import DEFAULT_BURST_S
from llm_pipeline.claude.state import redact
from llm_pipeline.pipeline.session import StepSession, open_session
from llm_pipeline.settings import (
    SettingError,
    fraction,
    number,
    positive_integer,
    positive_number,
    resolve_spool_dir,
    resolve_state,
    setting,
    word,
)
from llm_pipeline.simulator import Latency, Limits, Simulator, SimulatorConfig

__all__ = ["DEFAULT_MODEL", "SIMULATOR_LIMITS", "ClaudeResource"]

DEFAULT_MODEL = "claude-haiku-5-5"
#: Limits the embedded simulator enforces and reports (Tier-4-like Haiku): the demo is rate-bound,
#: but not slow. Configured caps replace them, so the simulator stands for an account at the caps.
SIMULATOR_LIMITS = {"rpm": 4_000, "itpm": 4_000_000, "otpm": 800_000}
#: The key the client sends to the embedded simulator; it is not a secret and bills nothing.
_SIMULATOR_KEY = "sk-simulator"
_BACKENDS = ("anthropic", "simulator")
#: Settings given as a config field of the same name, else `LLM_PIPELINE_<NAME>`, parsed so;
#: ClaudeSettings has the defaults and validates the values.
_FROM_ENV: Mapping[str, Callable[[str], Any]] = {
    "model": str,
    "fallback_model": str,
    "rpm": positive_number,
    "itpm": positive_number,
    "otpm": positive_number,
    "burst_seconds": positive_number,
    "limit_share": fraction,
    "max_concurrency": positive_integer,
    "mode": word,
    "batch_retry": word,
    "batch_poll_s": number,
    "batch_poll_max_s": number,
    "batch_deadline_s": number,
    "state_timeout_s": number,
    "drain_s": number,
}


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
    rpm: float | None = Field(
        default=None,
        description="Cap on the requests per minute learned from the API's headers (the limit itself when "
        "a server sends none); env LLM_PIPELINE_RPM; default: no cap.",
    )
    itpm: float | None = Field(
        default=None, description="Cap on the learned input tokens per minute; env LLM_PIPELINE_ITPM."
    )
    otpm: float | None = Field(
        default=None, description="Cap on the learned output tokens per minute; env LLM_PIPELINE_OTPM."
    )
    burst_seconds: float | None = Field(
        default=None,
        description="Cap on the learned bucket depth, in seconds of each rate (the burst allowed after a "
        "quiet spell); env LLM_PIPELINE_BURST_SECONDS; default: as learned, 30 without headers.",
    )
    limit_share: float | None = Field(
        default=None,
        description="Fraction (0, 1] of the learned limits this deployment may use; env "
        "LLM_PIPELINE_LIMIT_SHARE; default 1.0.",
    )
    max_concurrency: int | None = Field(
        default=None,
        description="Cap on the calls in flight per process, otherwise sized from the learned limits and "
        "the latency (at most 256); env LLM_PIPELINE_MAX_CONCURRENCY.",
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
    state_timeout_s: float | None = Field(
        default=None,
        description="Longest wait of one state operation (a SQLite file another process keeps locked, a "
        "Redis that does not answer) before the step fails naming the store; env "
        "LLM_PIPELINE_STATE_TIMEOUT_S; default 30.",
    )
    spool_dir: str | None = Field(
        default=None,
        description="Local directory for paid answers the ledger could not take, replayed by the next run; "
        "env LLM_PIPELINE_SPOOL_DIR; default $DAGSTER_HOME/llm_spool, else .llm_state/spool.",
    )
    drain_s: float | None = Field(
        default=None,
        description="Seconds a stopped step (SIGTERM/SIGINT, a UI termination, a systemic error) waits for "
        "its calls in flight to finish and be stored; env LLM_PIPELINE_DRAIN_S; default 30.",
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
            f"rate limits: learned from the API's headers, {_caps_text(settings)}; calls in flight: "
            f"{_concurrency_text(settings)}; state={redact(settings.state or 'memory')} mode={settings.mode}"
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

    def session(
        self, context: dg.AssetExecutionContext, *, step: str, model: str | None = None
    ) -> AbstractAsyncContextManager[StepSession]:
        """The call stack for one step, opened on the step's running loop and closed after it;
        `model` is the step's own model, when it overrides the configured one."""
        return open_session(
            step=step, log=context.log, settings=self.settings, backend=self.backend_name, model=model
        )

    def _resolve(self) -> tuple[str, ClaudeSettings]:
        try:
            return self._resolved()
        except SettingError as exc:
            raise dg.Failure(str(exc)) from None
        except ValueError as exc:
            raise dg.Failure(f"invalid Claude settings: {exc}") from exc

    def _resolved(self) -> tuple[str, ClaudeSettings]:
        api_key = setting(self.api_key, "ANTHROPIC_API_KEY", str, "")
        backend = setting(self.backend, "LLM_PIPELINE_BACKEND", word, "anthropic" if api_key else "simulator")
        if backend not in _BACKENDS:
            raise SettingError(f"LLM_PIPELINE_BACKEND must be one of {_BACKENDS}, got {backend!r}")
        if backend == "anthropic" and not api_key:
            raise SettingError(
                "LLM_PIPELINE_BACKEND=anthropic but ANTHROPIC_API_KEY is not set: export the key, or use "
                "LLM_PIPELINE_BACKEND=simulator to run on the embedded simulator."
            )
        fields: dict[str, Any] = {
            "api_key": api_key,
            "base_url": setting(self.base_url, "ANTHROPIC_BASE_URL", str, None)
            if backend == "anthropic"
            else None,
            "state": resolve_state(self.state),
            "spool_dir": resolve_spool_dir(self.spool_dir),
            "refresh": self.refresh,
        }
        for name, parse in _FROM_ENV.items():
            configured = getattr(self, name)
            if isinstance(configured, int | float):  # config values are checked like the variables
                configured = repr(configured)
            value = setting(configured, f"LLM_PIPELINE_{name.upper()}", parse, None)
            if value is not None:
                fields[name] = value
        if self.timeout_s is not None:
            fields["timeout_s"] = self.timeout_s
        return backend, ClaudeSettings(**fields)

    def _simulator_config(self, settings: ClaudeSettings) -> SimulatorConfig:
        """The embedded simulator stands for an account at `SIMULATOR_LIMITS`, or at the caps when set."""
        median_s = self.simulator_latency_ms / 1000.0
        limits = {name: getattr(settings, name) or default for name, default in SIMULATOR_LIMITS.items()}
        return SimulatorConfig(
            limits=Limits(**limits, burst_seconds=settings.burst_seconds or DEFAULT_BURST_S),
            latency=Latency(median_s=median_s, sigma=0.4 if median_s else 0.0),
        )


def _caps_text(settings: ClaudeSettings) -> str:
    caps = [
        f"{name} <= {value:,.0f}"
        for name, value in (("rpm", settings.rpm), ("itpm", settings.itpm), ("otpm", settings.otpm))
        if value is not None
    ]
    if settings.burst_seconds is not None:
        caps.append(f"burst <= {settings.burst_seconds:g} s")
    text = "capped at " + ", ".join(caps) if caps else "no caps"
    return text + ("" if settings.limit_share == 1.0 else f", share {settings.limit_share:g} of them")


def _concurrency_text(settings: ClaudeSettings) -> str:
    if settings.max_concurrency is not None:
        return f"sized from the limits and latency, at most {settings.max_concurrency} (configured)"
    return f"sized from the limits and latency, at most {settings.in_flight_ceiling}"
