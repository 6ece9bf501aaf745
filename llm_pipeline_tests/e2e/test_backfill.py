"""A backfill of the sample days, launched through GraphQL as the UI's button does and run by the daemon."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq
import pytest

from llm_pipeline_tests.e2e.conftest import ASSETS, DOCS_PER_DAY, PARTITIONS, E2EInstance, Webserver
from llm_pipeline_tests.e2e.graphql import METADATA_FIELDS, asset_key, expect_type, metadata

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LLM_ASSETS = ASSETS[1:]

MATERIALIZATIONS = f"""
query Materializations($assetKeys: [AssetKeyInput!], $partitions: [String!]) {{
  assetNodes(assetKeys: $assetKeys) {{
    assetKey {{ path }}
    partitionStats {{ numMaterialized numFailed numMaterializing }}
    latestMaterializationByPartition(partitions: $partitions) {{
      partition
      runId
      tags {{ key value }}
      metadataEntries {{ {METADATA_FIELDS} }}
    }}
    assetChecksOrError {{
      __typename
      ... on AssetChecks {{ checks {{ name blocking }} }}
    }}
  }}
}}
"""

CHECK_EXECUTIONS = f"""
query CheckExecutions($assetKey: AssetKeyInput!, $checkName: String!, $partition: String) {{
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, partition: $partition, limit: 5) {{
    runId
    status
    partition
    evaluation {{ success partition metadataEntries {{ {METADATA_FIELDS} }} }}
  }}
}}
"""


@pytest.fixture(scope="module")
def asset_nodes(webserver: Webserver, completed_backfill: dict[str, Any]) -> dict[str, dict[str, Any]]:
    variables = {"assetKeys": [asset_key(name) for name in ASSETS], "partitions": PARTITIONS}
    nodes = webserver.graphql.execute(MATERIALIZATIONS, variables)["assetNodes"]
    return {node["assetKey"]["path"][-1]: node for node in nodes}


def test_the_backfill_succeeds_with_one_run_per_day(completed_backfill: dict[str, Any]) -> None:
    assert completed_backfill["status"] == "COMPLETED_SUCCESS", completed_backfill["error"]
    assert completed_backfill["isAssetBackfill"]
    assert sorted(completed_backfill["partitionNames"]) == PARTITIONS
    assert {key["path"][-1] for key in completed_backfill["assetSelection"]} == set(ASSETS)
    runs = completed_backfill["runs"]
    # One backfill policy for the chain (partitions.py): each day's four steps share one run.
    assert len(runs) == len(PARTITIONS)
    assert {run["status"] for run in runs} == {"SUCCESS"}
    days = []
    for run in runs:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assert tags["dagster/backfill"] == completed_backfill["id"]
        # A single day, not a range: only then do the partitioned checks record their day.
        assert "dagster/asset_partition_range_start" not in tags, tags
        days.append(tags["dagster/partition"])
    assert sorted(days) == PARTITIONS


def test_every_partition_of_every_asset_is_materialized_by_the_backfill(
    asset_nodes: dict[str, dict[str, Any]], completed_backfill: dict[str, Any]
) -> None:
    backfill_runs = {run["runId"] for run in completed_backfill["runs"]}
    for name in ASSETS:
        node = asset_nodes[name]
        assert node["partitionStats"]["numMaterialized"] == len(PARTITIONS), name
        assert node["partitionStats"]["numFailed"] == 0, name
        materializations = node["latestMaterializationByPartition"]
        assert [m["partition"] for m in materializations] == PARTITIONS, name
        assert {m["runId"] for m in materializations} <= backfill_runs, name


def test_every_table_has_one_row_per_document(e2e_instance: E2EInstance, completed_backfill: dict) -> None:
    for name in ASSETS:
        for day in PARTITIONS:
            path = e2e_instance.data_dir / "warehouse" / name / f"{day}.parquet"
            assert pq.read_metadata(path).num_rows == DOCS_PER_DAY, path


def test_raw_documents_metadata_accounts_for_every_line(asset_nodes: dict[str, dict[str, Any]]) -> None:
    for materialization in asset_nodes["raw_documents"]["latestMaterializationByPartition"]:
        values = metadata(materialization["metadataEntries"])
        assert values["ok"] + values["rejected"] == DOCS_PER_DAY, values
        assert values["preview"].startswith("|"), values["preview"][:200]


#: The checks of each LLM table (checks.py); raw_documents has none.
EXPECTED_CHECKS = {
    "extracted_entities": {"every_document_once", "error_rate"},
    "classifications": {"every_document_once", "error_rate", "labels_in_taxonomy"},
    "corpus_report": {"every_document_once", "error_rate"},
}


def test_every_check_ran_and_passed_for_every_partition(
    webserver: Webserver, asset_nodes: dict[str, dict[str, Any]], completed_backfill: dict[str, Any]
) -> None:
    backfill_runs = {run["runId"] for run in completed_backfill["runs"]}
    for name, checks in EXPECTED_CHECKS.items():
        listed = expect_type(asset_nodes[name]["assetChecksOrError"], "AssetChecks")["checks"]
        assert {check["name"] for check in listed} == checks, name
        for check in sorted(checks):
            for day in PARTITIONS:
                variables = {"assetKey": asset_key(name), "checkName": check, "partition": day}
                executions = webserver.graphql.execute(CHECK_EXECUTIONS, variables)["assetCheckExecutions"]
                assert executions, f"no execution of {name}.{check} for {day}"
                latest = executions[0]
                assert latest["runId"] in backfill_runs, (name, check, day)
                assert latest["status"] == "SUCCEEDED", (name, check, day, latest)
                assert latest["evaluation"]["success"], (name, check, day, latest["evaluation"])
                assert latest["evaluation"]["partition"] == day


def test_llm_materializations_report_tokens_cost_and_latency(asset_nodes: dict[str, dict[str, Any]]) -> None:
    for name in LLM_ASSETS:
        for materialization in asset_nodes[name]["latestMaterializationByPartition"]:
            values = metadata(materialization["metadataEntries"])
            where = (name, materialization["partition"])
            assert values["input_tokens"] > 0, where
            assert values["output_tokens"] > 0, where
            assert values["cost_usd"] > 0, where
            assert 0 < values["latency_p50_ms"] <= values["latency_p95_ms"], where
            assert values["documents"] == DOCS_PER_DAY, where
            statuses = ("ok", "error", "rejected", "skipped")
            assert sum(values[f"documents_{status}"] for status in statuses) == DOCS_PER_DAY, where
