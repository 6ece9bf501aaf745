"""The Definitions load, and every job, schedule and check resolves (also once LLM assets join)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from llm_pipeline.assets import PIPELINE_GROUP
from llm_pipeline.assets.documents import raw_documents
from llm_pipeline.checks import build_checks
from llm_pipeline.definitions import defs
from llm_pipeline.jobs import daily_pipeline, nightly_schedule
from llm_pipeline.partitions import daily_partitions


def test_defs_load_and_every_job_schedule_and_check_resolves() -> None:
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    for job in repository.get_all_jobs():
        assert defs.resolve_job_def(job.name) is not None
    assert {s.name for s in repository.schedule_defs} == {"nightly_daily_pipeline"}
    assert defs.resolve_asset_graph().asset_check_keys == {
        key for check in build_checks(defs.assets or []) for key in check.check_keys
    }


def test_the_job_covers_the_pipeline_group_on_daily_partitions() -> None:
    job = defs.resolve_job_def("daily_pipeline")
    assert job.partitions_def == daily_partitions
    assert job.description
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == {"raw_documents"}


def test_the_nightly_schedule_runs_at_two_for_yesterdays_partition() -> None:
    schedule = defs.resolve_schedule_def("nightly_daily_pipeline")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.description
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 21, 2, 0, tzinfo=UTC))
    (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-11-20"


def _stand_in(name: str, upstream: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, deps=[upstream], partitions_def=daily_partitions, group_name=PIPELINE_GROUP)
    def stand_in() -> None:
        """Never run: only its place in the graph matters here."""

    return stand_in


def test_llm_assets_added_later_join_the_job_and_get_their_checks() -> None:
    """What the lead does in definitions.py: add the LLM assets to the list; checks and job follow."""
    later = [
        _stand_in(name, upstream)
        for name, upstream in (
            ("extracted_entities", "raw_documents"),
            ("classifications", "extracted_entities"),
            ("corpus_report", "classifications"),
        )
    ]
    assets = [raw_documents, *later]
    extended = dg.Definitions(
        assets=assets,
        asset_checks=build_checks(assets),
        jobs=[daily_pipeline],
        schedules=[nightly_schedule],
        resources=defs.resources,
    )
    dg.Definitions.validate_loadable(extended)
    job = extended.resolve_job_def("daily_pipeline")
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == {
        "raw_documents",
        "extracted_entities",
        "classifications",
        "corpus_report",
    }
    checks = {(k.asset_key.to_user_string(), k.name) for k in extended.resolve_asset_graph().asset_check_keys}
    assert len(checks) == 7
    assert ("classifications", "labels_in_taxonomy") in checks
