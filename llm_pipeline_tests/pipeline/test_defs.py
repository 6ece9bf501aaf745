"""The Definitions load, and every job, schedule and check resolves (also once LLM assets join)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.definitions.freshness import CronFreshnessPolicy

from llm_pipeline.definitions import build_checks, defs
from llm_pipeline.pipeline.assets import PIPELINE_GROUP
from llm_pipeline.pipeline.partitions import ANTHROPIC_POOL, daily_backfill_policy, daily_partitions


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
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == {
        "raw_documents",
        "extracted_entities",
        "classifications",
        "corpus_report",
    }


def test_the_nightly_schedule_runs_at_two_for_yesterdays_partition() -> None:
    schedule = defs.resolve_schedule_def("nightly_daily_pipeline")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.description
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 21, 2, 0, tzinfo=UTC))
    (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-11-20"


def test_lineage_is_documents_entities_classifications_report() -> None:
    graph = defs.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {key.to_user_string() for key in graph.get(dg.AssetKey(name)).parent_keys}

    assert parents("raw_documents") == set()
    assert parents("extracted_entities") == {"raw_documents"}
    assert parents("classifications") == {"extracted_entities", "raw_documents"}
    assert parents("corpus_report") == {"classifications", "extracted_entities"}


def test_every_asset_shares_the_partitions_and_backfill_policy_and_llm_steps_share_a_pool() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def == daily_partitions, key
        assert node.backfill_policy == daily_backfill_policy, key
        assert node.group_name == PIPELINE_GROUP, key
    pools = {key.to_user_string(): graph.get(key).pools for key in graph.get_all_asset_keys()}
    assert pools == {
        "raw_documents": set(),
        "extracted_entities": {ANTHROPIC_POOL},
        "classifications": {ANTHROPIC_POOL},
        "corpus_report": {ANTHROPIC_POOL},
    }
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert len(checks) == 7
    assert ("classifications", "labels_in_taxonomy") in checks


def test_the_report_is_expected_by_its_deadline_each_morning() -> None:
    """A cron freshness policy: materialized between the nightly start (02:00 UTC) and 08:00 UTC."""
    graph = defs.resolve_asset_graph()
    policies = {key.to_user_string(): graph.get(key).freshness_policy for key in graph.get_all_asset_keys()}
    report = policies.pop("corpus_report")
    assert isinstance(report, CronFreshnessPolicy)
    assert report.deadline_cron == "0 8 * * *"
    assert report.timezone == "UTC"
    nightly = defs.resolve_schedule_def("nightly_daily_pipeline")
    # The window opens when the schedule fires: a materialization by the nightly run counts.
    assert report.lower_bound_delta == timedelta(hours=8 - int(nightly.cron_schedule.split()[1]))
    assert "08:00 UTC" in (graph.get(dg.AssetKey("corpus_report")).description or "")
    assert set(policies.values()) == {None}
