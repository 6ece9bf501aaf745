"""List prices per model, USD per million tokens, from ANTHROPIC_FACTS §1 (gathered 2026-11-24).

    cost = (input x in + cache_write_5m x w5 + cache_write_1h x w1h + cache_read x r + output x out) / 1e6

Batch requests cost 50% of all of it (Batch API: "all batch usage is billed at 50%"). Haiku 5.5 has
a second price band for prompts over 100K tokens (input + cache writes + cache reads), and the
higher band then applies to every token of that request. An unknown model costs `None`, never a
guess: a wrong number in a cost report is worse than an honest blank.

Figures marked "3rd-party" in the comments were not on an Anthropic page we could read; they are
what trackers quoting the live pricing page report. Update the table and its test together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BATCH_DISCOUNT", "PRICES", "ModelPrice", "Price", "cost", "price_for"]

BATCH_DISCOUNT = 0.5
_PER = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    output: float


@dataclass(frozen=True, slots=True)
class ModelPrice:
    base: Price
    #: A dearer band for prompts above `long_prompt_tokens` (Haiku 5.5 only so far).
    long_prompt: Price | None = None
    long_prompt_tokens: int | None = None


_OPUS_4 = ModelPrice(Price(5, 6.25, 10, 0.50, 25))
_SONNET_4 = ModelPrice(Price(3, 3.75, 6, 0.30, 15))
_HAIKU_4_5 = ModelPrice(Price(1, 1.25, 2, 0.10, 5))

PRICES: Mapping[str, ModelPrice] = {
    # Fable 5.2: $8/$40 from MODELS; cache figures 3rd-party (10 / 16 / 0.20).
    "claude-fable-5-2": ModelPrice(Price(8, 10, 16, 0.20, 40)),
    "claude-fable-5-1": ModelPrice(Price(10, 12.50, 20, 0.25, 50)),
    "claude-fable-5": ModelPrice(Price(10, 12.50, 20, 1.00, 50)),
    "claude-opus-5-5": ModelPrice(Price(4, 5, 8, 0.20, 20)),
    "claude-opus-5": ModelPrice(Price(5, 6.25, 10, 0.50, 25)),
    "claude-opus-4-8": _OPUS_4,
    "claude-opus-4-7": _OPUS_4,
    "claude-opus-4-6": _OPUS_4,
    "claude-opus-4-5": _OPUS_4,
    "claude-opus-4-5-20251101": _OPUS_4,
    # Sonnet 5.5 cache read: 0.20 on the Anthropic page read; 3rd-party trackers report 0.10 since 2026-10-07.
    "claude-sonnet-5-5": ModelPrice(Price(2, 2.50, 4, 0.20, 10)),
    "claude-sonnet-5": ModelPrice(Price(2, 2.50, 4, 0.20, 10)),
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5-20250929": _SONNET_4,
    # Haiku 5.5: cache read (both bands) and the long band's 1h write are 3rd-party.
    "claude-haiku-5-5": ModelPrice(
        base=Price(0.10, 0.125, 0.20, 0.01, 0.50),
        long_prompt=Price(0.50, 0.625, 1.00, 0.05, 2.50),
        long_prompt_tokens=100_000,
    ),
    "claude-haiku-4-5-20251001": _HAIKU_4_5,
    "claude-haiku-4-5": _HAIKU_4_5,
}


def price_for(model: str) -> ModelPrice | None:
    return PRICES.get(model)


def _field(usage: Any, name: str) -> Any:
    return usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)


def cost(model: str, usage: Any, *, batch: bool = False) -> float | None:
    """USD for one call's `usage` (an SDK `Usage` or a mapping with the same fields); None if unpriced."""
    pricing = price_for(model)
    if pricing is None:
        return None
    tokens_in = int(_field(usage, "input_tokens") or 0)
    tokens_out = int(_field(usage, "output_tokens") or 0)
    written = int(_field(usage, "cache_creation_input_tokens") or 0)
    read = int(_field(usage, "cache_read_input_tokens") or 0)
    breakdown = _field(usage, "cache_creation")
    written_1h = int(_field(breakdown, "ephemeral_1h_input_tokens") or 0) if breakdown is not None else 0
    written_5m = max(0, written - written_1h)
    prompt = tokens_in + written + read
    long_band = pricing.long_prompt_tokens is not None and prompt > pricing.long_prompt_tokens
    price = pricing.long_prompt if long_band and pricing.long_prompt is not None else pricing.base
    total = (
        tokens_in * price.input
        + written_5m * price.cache_write_5m
        + written_1h * price.cache_write_1h
        + read * price.cache_read
        + tokens_out * price.output
    ) / _PER
    return total * BATCH_DISCOUNT if batch else total
