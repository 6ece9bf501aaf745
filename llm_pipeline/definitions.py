"""The single Dagster entry point: `dagster dev`, `dagster asset materialize -m llm_pipeline.definitions`.

Nothing here reads the environment: resources resolve their settings when a run launches.
"""

from __future__ import annotations

import dagster as dg

from llm_pipeline.pipeline.assets.classifications import classifications
from llm_pipeline.pipeline.assets.documents import raw_documents
from llm_pipeline.pipeline.assets.entities import extracted_entities
from llm_pipeline.pipeline.assets.report import corpus_report
from llm_pipeline.pipeline.checks import build_checks
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import ParquetIOManager
from llm_pipeline.pipeline.jobs import daily_pipeline, nightly_schedule
from llm_pipeline.pipeline.resources import ClaudeResource

#: raw documents → extracted entities → classifications → corpus report; build_checks() adds the
#: checks of every LLM table in this list.
pipeline_assets: list[dg.AssetsDefinition] = [
    raw_documents,
    extracted_entities,
    classifications,
    corpus_report,
]

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
