"""The nightly schedule, evaluated by the webserver for a given tick (the UI's "Test schedule" dry run)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llm_pipeline_tests.e2e.conftest import Webserver
from llm_pipeline_tests.e2e.graphql import REPOSITORY_SELECTOR, expect_type

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCHEDULE_DRY_RUN = """
mutation ScheduleDryRun($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick {
      timestamp
      evaluationResult {
        runRequests { runKey jobName tags { key value } assetSelection { path } }
        skipReason
        error { message stack }
      }
    }
    ... on PythonError { message stack }
    ... on ScheduleNotFoundError { message }
  }
}
"""


@pytest.mark.parametrize(
    ("tick", "partition"),
    [
        (datetime(2026, 11, 23, 2, 0, tzinfo=UTC), "2026-11-22"),
        (datetime(2026, 12, 1, 2, 0, tzinfo=UTC), "2026-11-30"),  # across a month boundary
        (datetime(2027, 1, 1, 2, 0, tzinfo=UTC), "2026-12-31"),  # across a year boundary
    ],
)
def test_the_nightly_tick_requests_yesterdays_partition(
    webserver: Webserver, tick: datetime, partition: str
) -> None:
    selector = {**REPOSITORY_SELECTOR, "scheduleName": "nightly_daily_pipeline"}
    variables = {"selector": selector, "timestamp": tick.timestamp()}
    answer = webserver.graphql.execute(SCHEDULE_DRY_RUN, variables)
    result = expect_type(answer["scheduleDryRun"], "DryRunInstigationTick")["evaluationResult"]
    assert result["error"] is None
    assert result["skipReason"] is None
    (request,) = result["runRequests"]
    tags = {tag["key"]: tag["value"] for tag in request["tags"]}
    assert tags["dagster/partition"] == partition
    assert request["jobName"] in (None, "daily_pipeline")
