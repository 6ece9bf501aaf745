"""Which rate limits a model is paced at, and where each one came from.

The API says what the account may do on every response (`rate_headers.py`); the configuration says
what this deployment may take of it. Per rate (requests, input tokens, output tokens per minute):

    learned:         min(cap, share x learned)        source "headers", or "configured cap" when it binds
    learned, but the server sent no limit for this rate:  the cap, else not limited
    nothing learned: the cap, else the conservative default (legacy Tier 1 Haiku, a floor every
                     paying account clears: 50 RPM, 50,000 ITPM, 10,000 OTPM; ANTHROPIC_FACTS §2)

The bucket depth (burst, seconds of each rate) follows the same rule, without the share: it is
measured in seconds of the rate in effect, so a shared rate's bucket shrinks with it. The learned
depth is a lower bound read from `-remaining` (what a bucket holds after a quiet spell is its
size): `burst_from_remaining` below. Token `-remaining` values rounded to thousands (the API's,
ANTHROPIC_FACTS §2) are read as the least they can stand for.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_pipeline.claude.rate_headers import Triple
from llm_pipeline.claude.state.base import LearnedLimits

__all__ = [
    "DEFAULT_BURST_S",
    "DEFAULT_RATES",
    "MIN_BURST_S",
    "BadRateLimitHeader",
    "Caps",
    "LimitsChanged",
    "LimitsInEffect",
    "NoRateLimitHeaders",
    "burst_from_remaining",
    "in_effect",
    "rounding_slack",
]

DEFAULT_RATES = (50.0, 50_000.0, 10_000.0)
#: Without headers: half a minute, enough for the largest `max_tokens` at the default OTPM.
DEFAULT_BURST_S = 30.0
#: The finest grain Anthropic warns of ("60 RPM may be enforced as 1 request per second").
MIN_BURST_S = 1.0
_ROUNDED_TO = 1_000.0
_SHORT = ("rpm", "itpm", "otpm")


def rounding_slack(rate: int, value: float) -> float:
    """How far a reported `remaining` may lie below the truth: half a thousand for a token count
    that looks rounded to thousands (an exact multiple), else nothing."""
    return _ROUNDED_TO / 2 if rate > 0 and value % _ROUNDED_TO == 0 else 0.0


def burst_from_remaining(limits: Sequence[float | None], remaining: Sequence[float | None]) -> float | None:
    """The least bucket depth (seconds of its rate) that what remains shows, over the rates that
    say something; None when none does (a rounded token count of 0 could be anything below 500)."""
    depths = []
    for rate, (limit, left) in enumerate(zip(limits, remaining, strict=True)):
        if limit is None or left is None:
            continue
        units = left - rounding_slack(rate, left)
        if units > 0 or rate == 0:
            depths.append(units * 60.0 / limit)
    return min(depths) if depths else None


@dataclass(frozen=True, slots=True)
class Caps:
    """What the configuration says: per-minute caps (None = unset), burst cap, and the share."""

    rates: Triple = (None, None, None)
    burst_s: float | None = None
    share: float = 1.0


@dataclass(frozen=True, slots=True)
class LimitsInEffect:
    """One model's pace at one endpoint: per-minute rates (None = not limited), burst, sources."""

    model: str
    endpoint: str
    rates: Triple
    burst_s: float
    #: Per rate, then for the burst: "headers", "configured cap", "default" or "not limited".
    sources: tuple[str, str, str]
    burst_source: str
    share: float = 1.0
    learned: LearnedLimits | None = None

    def describe(self) -> str:
        parts = [
            f"{short} {'not limited' if rate is None else f'{rate:,.0f}'}"
            + ("" if source == "not limited" else f" ({source})")
            for short, rate, source in zip(_SHORT, self.rates, self.sources, strict=True)
        ]
        parts.append(f"burst {self.burst_s:.1f} s ({self.burst_source})")
        if self.share != 1.0:
            parts.append(f"share {self.share:g} of the learned limits")
        if self.learned is not None:
            parts.append(f"learned at {_iso(self.learned.changed_at)}, seen at {_iso(self.learned.seen_at)}")
        return ", ".join(parts)

    def as_metadata(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            short: {"value": rate, "source": source}
            for short, rate, source in zip(_SHORT, self.rates, self.sources, strict=True)
        }
        values["burst_s"] = {"value": round(self.burst_s, 2), "source": self.burst_source}
        values["share"] = self.share
        values["learned_at"] = _iso(self.learned.changed_at) if self.learned else None
        return values


def _iso(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def in_effect(model: str, endpoint: str, learned: LearnedLimits | None, caps: Caps) -> LimitsInEffect:
    """The module docstring's rule, for one model at one endpoint."""
    rates: list[float | None] = []
    sources: list[str] = []
    for rate, cap in enumerate(caps.rates):
        if learned is None:
            rates.append(DEFAULT_RATES[rate] if cap is None else cap)
            sources.append("default" if cap is None else "configured cap")
            continue
        value = (learned.rpm, learned.itpm, learned.otpm)[rate]
        shared = None if value is None else value * caps.share
        if shared is None or (cap is not None and cap < shared):
            rates.append(cap)
            sources.append("not limited" if cap is None else "configured cap")
        else:
            rates.append(shared)
            sources.append("headers")
    depth = learned.burst_s if learned is not None else None
    if depth is not None and (caps.burst_s is None or depth <= caps.burst_s):
        burst, burst_source = depth, "headers"
    elif caps.burst_s is not None:
        burst, burst_source = caps.burst_s, "configured cap"
    else:
        burst, burst_source = DEFAULT_BURST_S, "default"
    return LimitsInEffect(
        model,
        endpoint,
        tuple(rates),
        burst,
        tuple(sources),
        burst_source,
        caps.share,
        learned,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class LimitsChanged:
    """The limits a model is paced at, when first known to this process and whenever they change."""

    limits: LimitsInEffect
    #: "start" (from the shared state, the configuration or the defaults) or "headers".
    reason: str

    def __str__(self) -> str:
        limits = self.limits
        head = f"rate limits for {limits.model} at {limits.endpoint}"
        if self.reason != "start":
            return f"{head} (from the API's headers): {limits.describe()}"
        if limits.learned is not None:
            return f"{head} (from the shared state): {limits.describe()}"
        return (
            f"{head}: nothing learned yet, so the first request goes alone and its answer's headers set "
            f"them (until then: {limits.describe()})"
        )


@dataclass(frozen=True, slots=True)
class NoRateLimitHeaders:
    """A successful response carried no rate-limit headers and nothing was learned before."""

    limits: LimitsInEffect

    def __str__(self) -> str:
        limits = self.limits
        return (
            f"{limits.endpoint} sent no anthropic-ratelimit-* headers for {limits.model} (a gateway or "
            f"proxy that strips them?): pacing at {limits.describe()}. Set LLM_PIPELINE_RPM, "
            "LLM_PIPELINE_ITPM and LLM_PIPELINE_OTPM (and LLM_PIPELINE_BURST_SECONDS) to the account's "
            "limits, or these conservative defaults stay in force."
        )


@dataclass(frozen=True, slots=True)
class BadRateLimitHeader:
    """A rate-limit header whose value cannot be a limit; it was ignored (reported once per run)."""

    model: str
    endpoint: str
    header: str
    value: str

    def __str__(self) -> str:
        return (
            f"ignored {self.header}: {self.value!r} from {self.endpoint} for {self.model} "
            "(not a usable number; the limits in effect are unchanged)"
        )
