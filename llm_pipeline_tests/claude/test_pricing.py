"""The price table as a table test: per-model rates, cache writes and reads, Haiku 5.5's long-prompt
band, the batch discount, and `None` (never a guess) for unknown models."""

from __future__ import annotations

import pytest
from anthropic.types import Usage

from llm_pipeline.claude.pricing import PRICES, cost

M = 1_000_000


@pytest.mark.parametrize(
    ("model", "usage", "expected"),
    [
        ("claude-haiku-5-5", {"input_tokens": 50_000, "output_tokens": 0}, 50_000 * 0.10 / M),
        ("claude-haiku-5-5", {"input_tokens": 0, "output_tokens": M}, 0.50),
        ("claude-haiku-5-5", {"input_tokens": 1_000, "output_tokens": 200}, 0.0001 + 0.0001),
        # >100K-token prompt: the whole request moves to the higher band, output included
        (
            "claude-haiku-5-5",
            {"input_tokens": 100_001, "output_tokens": 1_000},
            100_001 * 0.5 / M + 1_000 * 2.5 / M,
        ),
        # the band counts cache reads and writes too
        (
            "claude-haiku-5-5",
            {"input_tokens": 10, "cache_read_input_tokens": 100_000, "output_tokens": 0},
            (10 * 0.5 + 100_000 * 0.05) / M,
        ),
        ("claude-haiku-5-5", {"input_tokens": 100_000, "output_tokens": 0}, 0.01),  # exactly 100K: lower band
        ("claude-sonnet-5-5", {"input_tokens": M, "output_tokens": M}, 2 + 10),
        ("claude-opus-5-5", {"input_tokens": M, "output_tokens": M}, 4 + 20),
        ("claude-fable-5-2", {"input_tokens": M, "output_tokens": M}, 8 + 40),
        ("claude-fable-5-1", {"input_tokens": M, "output_tokens": M}, 10 + 50),
        ("claude-opus-4-8", {"input_tokens": M, "output_tokens": M}, 5 + 25),
        ("claude-sonnet-4-5-20250929", {"input_tokens": M, "output_tokens": M}, 3 + 15),
        ("claude-haiku-4-5", {"input_tokens": M, "output_tokens": M}, 1 + 5),
        # cache: 5-minute writes at 1.25x input, reads at the model's read price
        (
            "claude-sonnet-5-5",
            {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": M,
                "cache_read_input_tokens": M,
            },
            2.50 + 0.20,
        ),
        # a 1-hour write, told apart by the usage breakdown
        (
            "claude-opus-5-5",
            {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 2 * M,
                "cache_creation": {"ephemeral_5m_input_tokens": M, "ephemeral_1h_input_tokens": M},
            },
            5 + 8,
        ),
    ],
)
def test_cost_per_model(model: str, usage: dict, expected: float) -> None:
    assert cost(model, usage) == pytest.approx(expected)


def test_batch_is_half_price() -> None:
    usage = {"input_tokens": M, "output_tokens": M}
    assert cost("claude-sonnet-5-5", usage, batch=True) == pytest.approx(6.0)


@pytest.mark.parametrize(
    "model", ["claude-unknown-9", "claude-mythos-5-2", "gpt-4o", "claude-haiku-5-5-20990101"]
)
def test_unknown_model_costs_none_not_a_guess(model: str) -> None:
    assert cost(model, {"input_tokens": 10, "output_tokens": 10}) is None


def test_accepts_the_sdk_usage_object() -> None:
    usage = Usage(input_tokens=2_000, output_tokens=1_000, cache_read_input_tokens=None)
    assert cost("claude-haiku-5-5", usage) == pytest.approx((2_000 * 0.10 + 1_000 * 0.50) / M)


def test_every_price_is_positive_and_writes_cost_more_than_reads() -> None:
    for model, price in PRICES.items():
        for band in filter(None, (price.base, price.long_prompt)):
            assert min(band.input, band.output, band.cache_read) > 0, model
            assert band.cache_write_1h >= band.cache_write_5m > band.input > band.cache_read, model


def test_batch_discount_covers_cache_writes_and_reads() -> None:
    """A batch with a 1-hour prefix: 1h writes at 2x input and reads at the read price, then halved."""
    k = 10_000
    usage = {
        "input_tokens": k,
        "output_tokens": 0,
        "cache_creation_input_tokens": k,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": k},
        "cache_read_input_tokens": k,
    }
    assert cost("claude-haiku-5-5", usage, batch=True) == pytest.approx(k * (0.10 + 0.20 + 0.01) / M / 2)
