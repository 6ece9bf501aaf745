"""The repository's `.dagster_home/dagster.yaml` loads on the pinned Dagster and its knobs take effect.

The instance is built from that file with its storage in `tmp_path`, so the repository's own
DAGSTER_HOME never gets SQLite files from the tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import PoolGranularity
from dagster._core.instance.ref import InstanceRef
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._utils.tags import TagConcurrencyLimitsCounter

from llm_pipeline.pipeline.partitions import ANTHROPIC_POOL

REPO_HOME = Path(__file__).resolve().parents[2] / ".dagster_home"


def _settings() -> dict:
    return yaml.safe_load((REPO_HOME / "dagster.yaml").read_text())


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    ref = InstanceRef.from_dir(str(tmp_path), config_dir=str(REPO_HOME))
    with dg.DagsterInstance.from_ref(ref) as loaded:
        yield loaded


def test_runs_are_queued_with_a_run_limit_and_a_backfill_tag_limit(instance: dg.DagsterInstance) -> None:
    coordinator = instance.run_coordinator
    assert isinstance(coordinator, QueuedRunCoordinator)
    # A backfill's runs are created and launched in parallel threads, so its days start together.
    assert coordinator.dequeue_use_threads
    assert (coordinator.dequeue_num_workers or 0) >= 2
    assert instance.get_backfill_settings().get("num_submit_workers", 0) >= 2
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    runs = _settings()["concurrency"]["runs"]
    assert queue.max_concurrent_runs == runs["max_concurrent_runs"]
    (backfill_limit,) = [
        limit for limit in queue.tag_concurrency_limits if limit["key"] == "dagster/backfill"
    ]
    assert runs["tag_concurrency_limits"] == queue.tag_concurrency_limits
    assert "value" not in backfill_limit, "the limit must cover every backfill, not one backfill id"
    # Backfills must leave room for the nightly run, and a backfill must be able to run in parallel.
    assert 2 <= backfill_limit["limit"] < queue.max_concurrent_runs


def test_queued_runs_of_one_partition_run_one_at_a_time_and_other_days_go_on(
    instance: dg.DagsterInstance,
) -> None:
    """Issue 14: two runs of the same day would both call for every document; the queue holds the
    second until the first ends (runs off the queue rely on the call stack's claims instead)."""
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    running = dg.DagsterRun(job_name="daily_pipeline", run_id="a", tags={"dagster/partition": "2026-11-20"})
    counter = TagConcurrencyLimitsCounter(queue.tag_concurrency_limits, [running])
    same_day = dg.DagsterRun(job_name="daily_pipeline", run_id="b", tags={"dagster/partition": "2026-11-20"})
    other_day = dg.DagsterRun(job_name="daily_pipeline", run_id="c", tags={"dagster/partition": "2026-11-21"})
    assert counter.is_blocked(same_day)
    assert not counter.is_blocked(other_day)


def test_storage_stays_the_default_sqlite_under_dagster_home(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    assert not {"storage", "run_storage", "event_log_storage", "schedule_storage"} & _settings().keys()
    assert isinstance(instance.run_storage, SqliteRunStorage)
    assert isinstance(instance.event_log_storage, SqliteEventLogStorage)
    assert instance.root_directory == str(tmp_path)


def test_the_anthropic_api_pool_admits_exactly_its_limit(instance: dg.DagsterInstance) -> None:
    """The pool's limit comes from `pools.default_limit` the first time a step asks for a slot."""
    pools = instance.get_concurrency_config().pool_config
    assert pools.pool_granularity == PoolGranularity.OP
    limit = _settings()["concurrency"]["pools"]["default_limit"]
    assert pools.default_pool_limit == limit

    storage = instance.event_log_storage
    assert storage.initialize_concurrency_limit_to_default(ANTHROPIC_POOL)
    assert storage.get_concurrency_info(ANTHROPIC_POOL).slot_count == limit
    claims = [
        storage.claim_concurrency_slot(ANTHROPIC_POOL, f"run-{i}", "extracted_entities")
        for i in range(limit + 1)
    ]
    assert [claim.is_claimed for claim in claims] == [True] * limit + [False]

    storage.free_concurrency_slot_for_step("run-0", "extracted_entities")
    assert storage.claim_concurrency_slot(ANTHROPIC_POOL, f"run-{limit}", "extracted_entities").is_claimed


def test_an_explicit_pool_limit_overrides_the_default(instance: dg.DagsterInstance) -> None:
    """What `dagster instance concurrency set anthropic_api N` does; the yaml's comment promises it."""
    instance.event_log_storage.set_concurrency_slots(ANTHROPIC_POOL, 1)
    (pool,) = [p for p in instance.event_log_storage.get_pool_limits() if p.name == ANTHROPIC_POOL]
    assert (pool.limit, pool.from_default) == (1, False)
    assert instance.event_log_storage.get_concurrency_info(ANTHROPIC_POOL).slot_count == 1
