"""`llm-pipeline limits`: what the shared state has learned about the API's rate limits.

Per endpoint and model: what the `anthropic-ratelimit-*` headers reported (requests, input and
output tokens per minute, and the buckets' depth), when it was last seen and last changed; beside
it the caps and share this environment configures (`LLM_PIPELINE_RPM/ITPM/OTPM`,
`LLM_PIPELINE_BURST_SECONDS`, `LLM_PIPELINE_LIMIT_SHARE`), and the limits a run started now would
be paced at, each with its source.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import TextIO

from llm_pipeline.claude.clock import SystemClock
from llm_pipeline.claude.limits import Caps, in_effect
from llm_pipeline.claude.state import open_state
from llm_pipeline.claude.state.base import LearnedLimits
from llm_pipeline.settings import SettingError, fraction, positive_number, resolve_state, setting

__all__ = ["configured_caps", "show"]

_RATES = (("rpm", "LLM_PIPELINE_RPM"), ("itpm", "LLM_PIPELINE_ITPM"), ("otpm", "LLM_PIPELINE_OTPM"))


def configured_caps() -> Caps:
    """The caps and share of this environment, read as a run would read them."""
    rates = tuple(setting(None, env, positive_number, None) for _, env in _RATES)
    burst = setting(None, "LLM_PIPELINE_BURST_SECONDS", positive_number, None)
    return Caps(rates, burst, setting(None, "LLM_PIPELINE_LIMIT_SHARE", fraction, 1.0))  # type: ignore[arg-type]


def show(state: str | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        location = resolve_state(state)
        caps = configured_caps()
    except SettingError as exc:
        print(f"llm-pipeline limits: {exc}", file=sys.stderr)
        return 2
    records = asyncio.run(_learned(location))
    print(f"rate limits learned at {location or 'memory (nothing persisted)'}", file=out)
    print(f"  configured here: {_describe_caps(caps)}", file=out)
    if not records:
        print("  nothing learned yet: a run's first request to each model learns its limits", file=out)
        return 0
    for record in records:
        endpoint, _, model = record.name.partition("/")
        effect = in_effect(model, endpoint, record, caps)
        print(f"  {endpoint}  {model}", file=out)
        print(f"    learned    {_describe_learned(record)}", file=out)
        print(f"    seen       {_iso(record.seen_at)} (last changed {_iso(record.changed_at)})", file=out)
        print(f"    in effect  {effect.describe().split(', learned at')[0]}", file=out)
    return 0


async def _learned(location: str | None) -> list[LearnedLimits]:
    backend = open_state(location, SystemClock().now)
    try:
        return await backend.learned.all()
    finally:
        await backend.aclose()


def _describe_caps(caps: Caps) -> str:
    parts = [f"{name} <= {rate:,.0f}" for (name, _), rate in zip(_RATES, caps.rates, strict=True) if rate]
    if caps.burst_s is not None:
        parts.append(f"burst <= {caps.burst_s:g} s")
    text = ", ".join(parts) if parts else "no caps"
    return f"{text}; share {caps.share:g} of the learned limits"


def _describe_learned(record: LearnedLimits) -> str:
    rates = (record.rpm, record.itpm, record.otpm)
    parts = [
        f"{name} {'not limited' if rate is None else f'{rate:,.0f}'}"
        for (name, _), rate in zip(_RATES, rates, strict=True)
    ]
    parts.append("burst -" if record.burst_s is None else f"burst {record.burst_s:.1f} s")
    return "  ".join(parts)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
