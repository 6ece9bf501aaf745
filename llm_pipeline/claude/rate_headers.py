"""The API's `anthropic-ratelimit-*` headers, read once per response into numbers we can trust.

Per rate (requests, input tokens, output tokens) the API sends `-limit` (per minute), `-remaining`
(what the bucket holds now; for tokens rounded to the nearest thousand) and `-reset` (when it is
full again) on every response and on 429s from its rate limiter (ANTHROPIC_FACTS §2). Only
`-limit` and `-remaining` are used: `-reset` follows from them.

A value that is not a finite number, a negative one, or a limit of 0 is not adopted: it is left
out and listed in `bad`, so the caller can say so once instead of pacing by nonsense.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RATE_NAMES", "RateHeaders", "read_rate_headers"]

RATE_NAMES = ("requests", "input_tokens", "output_tokens")
_PREFIXES = tuple(f"anthropic-ratelimit-{name.replace('_', '-')}" for name in RATE_NAMES)

Triple = tuple[float | None, float | None, float | None]


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """Per rate, the limit (per minute) and what remains; None where the server sent nothing usable."""

    limits: Triple = (None, None, None)
    remaining: Triple = (None, None, None)
    #: (header, value) pairs that were present but unusable.
    bad: tuple[tuple[str, str], ...] = ()

    @property
    def reports_limits(self) -> bool:
        return any(value is not None for value in self.limits)

    @property
    def reports_remaining(self) -> bool:
        return any(value is not None for value in self.remaining)


def _value(
    headers: Mapping[str, str], name: str, bad: list[tuple[str, str]], *, zero_ok: bool
) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bad.append((name, raw))
        return None
    return value


def read_rate_headers(headers: Mapping[str, str]) -> RateHeaders:
    """The usable limits and remainders in `headers` (names lower-case, as `rate_limit_headers` gives)."""
    bad: list[tuple[str, str]] = []
    limits = tuple(_value(headers, f"{p}-limit", bad, zero_ok=False) for p in _PREFIXES)
    remaining = tuple(_value(headers, f"{p}-remaining", bad, zero_ok=True) for p in _PREFIXES)
    return RateHeaders(limits, remaining, tuple(bad))  # type: ignore[arg-type]
