"""The single Dagster entry point: `dagster dev`, `dagster asset materialize -m llm_pipeline.definitions`.

Nothing here reads the environment: resources resolve their settings when a run launches.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from llm_pipeline.pipeline.assets.classifications import classifications, classifications_checks
from llm_pipeline.pipeline.assets.documents import raw_documents
from llm_pipeline.pipeline.assets.entities import entities_checks, extracted_entities
from llm_pipeline.pipeline.assets.report import corpus_report
from llm_pipeline.pipeline.checks import llm_table_checks
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import ParquetIOManager
from llm_pipeline.pipeline.jobs import daily_pipeline, nightly_schedule
from llm_pipeline.pipeline.resources import ClaudeResource

#: raw documents → extracted entities → classifications → corpus report.
pipeline_assets: list[dg.AssetsDefinition] = [
    raw_documents,
    extracted_entities,
    classifications,
    corpus_report,
]

#: Each LLM table's checks (every_document_once, error_rate, and what its step adds).
_CHECKS: dict[str, list[dg.AssetChecksDefinition]] = {
    "extracted_entities": entities_checks,
    "classifications": classifications_checks,
    "corpus_report": llm_table_checks("corpus_report"),
}


def build_checks(assets: Iterable[dg.AssetsDefinition | dg.AssetSpec]) -> list[dg.AssetChecksDefinition]:
    """The checks of the built-in LLM tables among `assets` (a test may materialize a part of the chain)."""
    keys: set[dg.AssetKey] = set()
    for asset in assets:
        keys.update(asset.keys if isinstance(asset, dg.AssetsDefinition) else {asset.key})
    return [check for table, checks in _CHECKS.items() if dg.AssetKey(table) in keys for check in checks]


defs = dg.Definitions(
    assets=pipeline_assets,
    # The steps form one chain and each fans out on its own event loop: separate step processes
    # would add seconds of start-up per step on 2 cores and buy no parallelism (ARCHITECTURE §3).
    executor=dg.in_process_executor,
    asset_checks=build_checks(pipeline_assets),
    jobs=[daily_pipeline],
    schedules=[nightly_schedule],
    resources={
        "io_manager": ParquetIOManager(),
        "pipeline_config": PipelineConfig(),
        "claude": ClaudeResource(),
    },
)
