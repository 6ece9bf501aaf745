"""The one partitioning every asset shares: a day of documents, `raw/YYYY-MM-DD.jsonl`."""

from __future__ import annotations

import dagster as dg

__all__ = ["daily_partitions"]

daily_partitions = dg.DailyPartitionsDefinition(start_date="2026-11-01")
