"""Prompt caching through the real chain (issue 17): each step writes its shared prefix once and reads
it after, the rows carry cache reads and writes priced at their own rates, and the metadata shows
the hit ratio and what the cache saved."""

from __future__ import annotations

import pandas as pd
import pytest

from llm_pipeline.claude.pricing import PRICES
from llm_pipeline.definitions import pipeline_assets
from llm_pipeline_tests.fixtures.pipeline import PipelineHarness, metadata_of

STEPS = ("extracted_entities", "classifications")
THROUGH_CLASSIFICATIONS = pipeline_assets[:3]
HAIKU = PRICES["claude-haiku-5-5"].base


def billed(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[(rows.attempts > 0) & ~rows.cached]


def test_each_step_writes_its_prefix_once_then_reads_it(pipeline: PipelineHarness) -> None:
    result = pipeline.materialize(assets=THROUGH_CLASSIFICATIONS)
    assert result.success
    for step in STEPS:
        rows = billed(pipeline.table(step))
        writers = rows[rows.cache_write_tokens > 0]
        assert len(writers) == 1, step
        prefix = int(writers.cache_write_tokens.iloc[0])
        assert prefix >= 4096, step  # the default model's minimum: the prefix is cacheable
        readers = rows.drop(writers.index)
        assert len(readers) >= 300
        # every other call (repairs included) read the whole prefix and wrote nothing
        assert (readers.cache_read_tokens == prefix * (1 + readers.repaired)).all(), step
        assert (readers.cache_write_tokens == 0).all(), step
    stats = pipeline.simulator.control.stats()
    assert (stats["cache_writes"], stats["cache_reads"]) == (2, stats["successes"] - 2)


def test_costs_for_each_kind_of_token_match_the_price_table(pipeline: PipelineHarness) -> None:
    pipeline.materialize(assets=THROUGH_CLASSIFICATIONS)
    for step in STEPS:
        rows = billed(pipeline.table(step))
        expected = (
            rows.input_tokens * HAIKU.input
            + rows.cache_write_tokens * HAIKU.cache_write_5m
            + rows.cache_read_tokens * HAIKU.cache_read
            + rows.output_tokens * HAIKU.output
        ) / 1e6
        assert rows.cost_usd.to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-6, abs=1e-9), step


def test_metadata_shows_the_hit_ratio_the_tokens_read_and_the_saving(pipeline: PipelineHarness) -> None:
    result = pipeline.materialize(assets=THROUGH_CLASSIFICATIONS)
    for step in STEPS:
        meta, rows = metadata_of(result, step), billed(pipeline.table(step))
        calls = meta["anthropic.calls"]
        assert meta["cache_hit_ratio"] == pytest.approx((calls - 1) / calls, abs=1e-4)
        assert (
            meta["cache_read_tokens"]
            == rows.cache_read_tokens.sum()
            == meta["anthropic.cache_read_input_tokens"]
        )
        assert meta["cache_write_tokens"] == rows.cache_write_tokens.sum()
        uncached = (
            (rows.input_tokens + rows.cache_write_tokens + rows.cache_read_tokens) * HAIKU.input
            + rows.output_tokens * HAIKU.output
        ).sum() / 1e6
        assert meta["cache_saved_usd"] == pytest.approx(uncached - rows.cost_usd.sum(), abs=2e-6)
        assert meta["cache_saved_usd"] > 0.5 * meta["cost_usd"]  # the prefix dominates every prompt
    again = pipeline.materialize(assets=THROUGH_CLASSIFICATIONS)  # all from the ledger: nothing billed
    for step in STEPS:
        meta = metadata_of(again, step)
        assert (meta["cache_hit_ratio"], meta["cache_read_tokens"], meta["cache_saved_usd"]) == (None, 0, 0)
