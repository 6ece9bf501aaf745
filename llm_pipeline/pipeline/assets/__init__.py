"""One module per built-in asset; what every pipeline asset is declared with lives here, once.

Dagster splits a backfill wherever the partitions or backfill policies of a chain differ, so every
asset (the four built-in ones and any step added in YAML) takes these from one place rather than
copies that could drift apart.
"""

from collections.abc import Mapping
from typing import Any

from llm_pipeline.pipeline.partitions import ANTHROPIC_POOL, daily_backfill_policy, daily_partitions

__all__ = ["LLM_STEP_ASSET", "PIPELINE_ASSET", "PIPELINE_GROUP"]

#: The group of every pipeline asset; the `daily_pipeline` job (and so the schedule) selects it.
PIPELINE_GROUP = "llm_pipeline"

#: Keyword arguments of `@dg.asset` shared by every pipeline asset.
PIPELINE_ASSET: Mapping[str, Any] = {
    "partitions_def": daily_partitions,
    "backfill_policy": daily_backfill_policy,
    "group_name": PIPELINE_GROUP,
}

#: ... and by every step that calls Claude: the API's concurrency pool.
LLM_STEP_ASSET: Mapping[str, Any] = {
    **PIPELINE_ASSET,
    "pool": ANTHROPIC_POOL,
    "kinds": frozenset({"anthropic", "parquet"}),
}
