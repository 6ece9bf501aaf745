"""The single Dagster entry point: `dg dev`, `dagster dev`, `dagster asset materialize -m <this module>`.

The built-in chain (raw_documents → extracted_entities → classifications → corpus_report) with its
checks, job, schedule and resources, merged with the steps added as YAML under `llm_pipeline/defs/`
(`pipeline/component.py`). A YAML step whose upstream asset or columns do not exist, or whose name
is taken, stops the load here with a message naming its file and field (`dg check defs` and the
web UI's code-location error both show it). Nothing here reads the environment: resources
resolve their settings when a run launches.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

import llm_pipeline.defs
from llm_pipeline.pipeline.assets.classifications import classifications, classifications_checks
from llm_pipeline.pipeline.assets.documents import raw_documents
from llm_pipeline.pipeline.assets.entities import entities_checks, extracted_entities
from llm_pipeline.pipeline.assets.report import corpus_report
from llm_pipeline.pipeline.checks import llm_table_checks
from llm_pipeline.pipeline.component import LLMStepComponent, check_steps
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import ParquetIOManager
from llm_pipeline.pipeline.jobs import daily_pipeline, nightly_schedule
from llm_pipeline.pipeline.resources import ClaudeResource
from llm_pipeline.warehouse.tables import SCHEMAS

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


def _built_in() -> dg.Definitions:
    """The four built-in assets, their checks, the daily job, the nightly schedule, the resources."""
    return dg.Definitions(
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


def _yaml_steps() -> dg.Definitions:
    """The steps of `llm_pipeline/defs/`, checked against the built-in tables and each other."""
    tree = dg.ComponentTree.from_module(
        defs_module=llm_pipeline.defs, project_root=Path(llm_pipeline.defs.__file__).resolve().parents[2]
    )
    with warnings.catch_warnings():
        # Loading a defs folder is "preview" in 1.13 (Dagster's own `dg` projects rely on it).
        warnings.simplefilter("ignore", dg.PreviewWarning)
        steps = tree.build_defs()
    check_steps(tree.get_all_components(LLMStepComponent), {name: s.names for name, s in SCHEMAS.items()})
    return steps


#: Exactly one Definitions at module scope (what Dagster loads).
defs = dg.Definitions.merge(_built_in(), _yaml_steps())
