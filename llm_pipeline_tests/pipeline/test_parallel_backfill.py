"""Issue 6: one rate limit for the whole deployment, however many processes a backfill starts.

How the parallel processes are launched: as a deployment launches them, on one machine. A temporary
DAGSTER_HOME holds the repository's own `.dagster_home/dagster.yaml` (queued runs, backfill tag
limit, `anthropic_api` pool); the code runs in its own code server (`dagster api grpc`, as the Helm
chart's user-code deployment); a real asset backfill of four days is submitted the way the web UI
submits it (the `launchPartitionBackfill` GraphQL mutation, through `dagster_graphql`); and a
real `dagster-daemon` makes one run per day (the shared backfill policy) and has each started as its
own OS process. Chosen over N concurrent `dagster asset materialize` commands because it also
proves that the instance settings and the backfill policy let a backfill's days run side by side.
Details in `llm_pipeline_tests/fixtures/backfill.py`.

All processes call one simulator in its own process, whose request limit equals the one the runs
are configured with (and whose bucket is the size of theirs). With shared state (SQLite files:
every process on the machine; Redis: every machine) the simulator's own limiter refuses under 1%
of the attempts, and the successes over the busy period reach at least 85% of the limit, even
without the bucket's head start. A backfill of the same days at the same limit with
`LLM_PIPELINE_STATE=memory` (each process believes it owns the whole limit; fewer documents and a
smaller bucket, as a storm needs no steady state) meets a storm of 429s: the contrast that shows
the tests can fail.

The Redis run is the several-machines configuration in full: its raw input and Parquet partitions
live on S3 (moto's server, `LLM_PIPELINE_DATA_DIR=s3://bucket/prefix`), so no process shares a disk
with another (issue 18).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from llm_pipeline.definitions import defs
from llm_pipeline.warehouse.files import PartitionTable
from llm_pipeline_tests.fixtures.backfill import BackfillOutcome, BackfillScenario, run_backfill
from llm_pipeline_tests.fixtures.s3 import S3Store

pytestmark = pytest.mark.slow

DAYS = tuple(date(2026, 11, 20) + timedelta(days=offset) for offset in range(4))
#: Two calls per document plus a report per day: ~1,200 calls, about half of them beyond the
#: bucket's head start (30 s of the limit), so the steady rate decides the outcome (~30 s busy).
#: Faster (2,400 RPM, a 10 s bucket) the steps' start-up gaps weigh more than the limiter does.
DOCS_PER_DAY = 150
RPM = 1200
BURST_S = 30.0
MAX_LIMITER_429_SHARE = 0.01
MIN_RATE_SHARE = 0.85
#: The contrast needs no steady state: four processes, each spending a 5 s bucket (100 requests)
#: it believes is its own, overrun the server's at once; ~480 calls in all.
STORM_DOCS_PER_DAY = 60
STORM_BURST_S = 5.0


def _scenario(
    state: str, data_dir: str | None = None, *, docs_per_day: int = DOCS_PER_DAY, burst_s: float = BURST_S
) -> BackfillScenario:
    keys = tuple(
        tuple(key.path) for key in defs.resolve_job_def("daily_pipeline").asset_layer.selected_asset_keys
    )
    return BackfillScenario(
        state=state,
        days=DAYS,
        docs_per_day=docs_per_day,
        rpm=RPM,
        burst_s=burst_s,
        asset_keys=keys,
        data_dir=data_dir,
    )


def _assert_backfill_completed_in_parallel(outcome: BackfillOutcome) -> None:
    summary = outcome.summary()
    assert sorted(run.partition for run in outcome.runs) == [day.isoformat() for day in DAYS], summary
    assert {run.status for run in outcome.runs} == {"SUCCESS"}, summary
    # Each day ran in its own process and the processes overlapped, so they competed for the limit.
    # Usually all four start within a second and overlap throughout; on a loaded machine the queue
    # may start them seconds apart, and a day that had the bucket's head start to itself can end
    # before the last one starts. `summary["run_windows"]` shows when each ran.
    assert outcome.max_parallel_runs >= 2, summary
    docs = outcome.scenario.docs_per_day
    for day in DAYS:
        table = PartitionTable(outcome.warehouse / "classifications" / f"{day.isoformat()}.parquet")
        assert table.num_rows == docs, summary
    assert outcome.stats["successes"] >= len(DAYS) * 2 * docs, summary
    assert outcome.stats["duplicate_successes"] == 0, summary


def _assert_within_one_shared_limit(outcome: BackfillOutcome) -> None:
    summary = outcome.summary()
    assert outcome.limiter_429_share < MAX_LIMITER_429_SHARE, summary
    assert outcome.rate_share >= MIN_RATE_SHARE, summary
    assert outcome.steady_rate_share >= MIN_RATE_SHARE, summary


@pytest.mark.serial
def test_parallel_backfill_shares_one_limit_through_sqlite(tmp_path: Path) -> None:
    outcome = run_backfill(tmp_path, _scenario(str(tmp_path / "llm_state")))
    print(outcome.summary())
    _assert_backfill_completed_in_parallel(outcome)
    _assert_within_one_shared_limit(outcome)


@pytest.mark.serial
@pytest.mark.redis
def test_parallel_backfill_shares_one_limit_through_redis_with_the_warehouse_on_s3(
    tmp_path: Path, redis_url: str, s3: S3Store
) -> None:
    """The several-machines configuration: state in Redis, raw input and Parquet on S3 (issue 18)."""
    outcome = run_backfill(tmp_path, _scenario(redis_url, data_dir=s3.url))
    assert str(outcome.warehouse) == f"{s3.url}/warehouse"
    print(outcome.summary())
    _assert_backfill_completed_in_parallel(outcome)
    _assert_within_one_shared_limit(outcome)


def test_without_sharing_the_same_backfill_meets_a_storm_of_429s(tmp_path: Path) -> None:
    """The contrast: each process its own in-memory limiter, each spending the whole limit (a storm
    that no load on the machine prevents, so this one runs beside other tests). The same days and
    limit, with fewer documents a day and a smaller bucket (`STORM_DOCS_PER_DAY`, `STORM_BURST_S`)."""
    outcome = run_backfill(
        tmp_path, _scenario("memory", docs_per_day=STORM_DOCS_PER_DAY, burst_s=STORM_BURST_S)
    )
    print(outcome.summary())
    _assert_backfill_completed_in_parallel(outcome)
    assert outcome.limiter_429_share > 2 * MAX_LIMITER_429_SHARE, outcome.summary()
