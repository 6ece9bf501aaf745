"""The daily job over the whole chain, and the nightly schedule that runs it for yesterday."""

from __future__ import annotations

import dagster as dg

from llm_pipeline.pipeline.assets import PIPELINE_GROUP
from llm_pipeline.pipeline.partitions import NIGHTLY_HOUR_UTC

__all__ = ["daily_pipeline", "nightly_schedule"]

# Partitioning is inferred from the selected assets (Dagster 1.13 deprecates passing it again).
daily_pipeline = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.groups(PIPELINE_GROUP),
    description="One day of documents end to end: validate, extract entities, classify, report, with checks.",
)

nightly_schedule = dg.build_schedule_from_partitioned_job(
    daily_pipeline,
    hour_of_day=NIGHTLY_HOUR_UTC,
    minute_of_hour=0,
    name="nightly_daily_pipeline",
    description="At 02:00 UTC, materialize yesterday's partition (the last complete day).",
)
