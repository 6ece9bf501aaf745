"""The definitions as the web UI shows them, through its GraphQL API: lineage, partitions, job, schedule."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from llm_pipeline_tests.e2e.conftest import ASSETS, Webserver
from llm_pipeline_tests.e2e.graphql import REPOSITORY_SELECTOR, expect_type

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIDE_INPUTS = {("raw_documents", "classifications"), ("extracted_entities", "corpus_report")}

ASSET_NODES = """
query AssetNodes {
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    dependedByKeys { path }
    isPartitioned
    partitionDefinition { type name fmt description }
    partitionKeysByDimension { partitionKeys }
    jobNames
    repository { name location { name } }
    description
    internalFreshnessPolicy {
      __typename
      ... on CronFreshnessPolicy { deadlineCron lowerBoundDeltaSeconds timezone }
    }
  }
}
"""

REPOSITORY = """
query Repository($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      jobs { name isAssetJob description }
      schedules {
        name
        cronSchedule
        executionTimezone
        pipelineName
        description
        scheduleState { status }
      }
    }
    ... on PythonError { message }
    ... on RepositoryNotFoundError { message }
  }
}
"""


def _nodes(webserver: Webserver) -> dict[str, dict]:
    nodes = webserver.graphql.execute(ASSET_NODES)["assetNodes"]
    return {"/".join(node["assetKey"]["path"]): node for node in nodes}


def test_the_asset_graph_is_the_documented_chain(webserver: Webserver) -> None:
    nodes = _nodes(webserver)
    assert set(ASSETS) <= nodes.keys()
    upstream_edges = {
        ("/".join(dep["path"]), name) for name in ASSETS for dep in nodes[name]["dependencyKeys"]
    }
    downstream_edges = {
        (name, "/".join(dep["path"])) for name in ASSETS for dep in nodes[name]["dependedByKeys"]
    }
    # The chain, and two inputs beside it: classifications quotes a snippet of the raw text, and the
    # report reads the extracted topics and entities again.
    expected = set(itertools.pairwise(ASSETS)) | SIDE_INPUTS
    assert upstream_edges == expected
    assert downstream_edges == expected
    for name in ASSETS:
        assert nodes[name]["groupName"] == "llm_pipeline"
        assert nodes[name]["repository"]["location"]["name"] == "llm_pipeline"


def test_every_asset_has_the_same_daily_partitions(webserver: Webserver) -> None:
    nodes = _nodes(webserver)
    for name in ASSETS:
        node = nodes[name]
        assert node["isPartitioned"], name
        assert node["partitionDefinition"]["type"] == "TIME_WINDOW", name
        assert node["partitionDefinition"]["fmt"] == "%Y-%m-%d", name
        (dimension,) = node["partitionKeysByDimension"]
        keys = dimension["partitionKeys"]
        assert keys[0] == "2026-11-01", name
        days = [date.fromisoformat(key) for key in keys]
        assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days)), name
        assert node["partitionKeysByDimension"] == nodes[ASSETS[0]]["partitionKeysByDimension"]


def test_the_daily_job_covers_every_asset_and_the_schedule_runs_it_nightly(webserver: Webserver) -> None:
    nodes = _nodes(webserver)
    for name in ASSETS:
        assert "daily_pipeline" in nodes[name]["jobNames"], name

    answer = webserver.graphql.execute(REPOSITORY, {"selector": REPOSITORY_SELECTOR})
    repository = expect_type(answer["repositoryOrError"], "Repository")
    jobs = {job["name"]: job for job in repository["jobs"]}
    assert jobs["daily_pipeline"]["isAssetJob"]
    assert jobs["daily_pipeline"]["description"]
    (schedule,) = [s for s in repository["schedules"] if s["name"] == "nightly_daily_pipeline"]
    assert schedule["cronSchedule"] == "0 2 * * *"
    assert schedule["pipelineName"] == "daily_pipeline"
    assert schedule["executionTimezone"] in (None, "UTC")
    assert schedule["description"]
    # Off until a user turns it on (README: the Automation page, with the daemon running).
    assert schedule["scheduleState"]["status"] == "STOPPED"


def test_the_report_carries_its_freshness_policy_and_why(webserver: Webserver) -> None:
    """What the asset page's freshness panel shows: expected by 08:00 UTC, since the 02:00 run."""
    nodes = _nodes(webserver)
    policy = nodes["corpus_report"]["internalFreshnessPolicy"]
    assert policy == {
        "__typename": "CronFreshnessPolicy",
        "deadlineCron": "0 8 * * *",
        "lowerBoundDeltaSeconds": 6 * 3600,
        "timezone": "UTC",
    }
    assert "08:00 UTC" in nodes["corpus_report"]["description"]
    assert all(nodes[name]["internalFreshnessPolicy"] is None for name in ASSETS[:-1])
