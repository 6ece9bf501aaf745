"""A minimal client for the webserver's GraphQL API, and the queries the e2e tests share.

Plain urllib and JSON: the tests talk to the API the way the web UI does (one POST to /graphql per
query), with no client library in between to hide an error.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

#: The code location and repository of workspace.yaml, as the UI addresses them.
LOCATION = "llm_pipeline"
REPOSITORY = "__repository__"
REPOSITORY_SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}

#: The fields of every metadata entry type the pipeline writes, flattened by `metadata()`.
METADATA_FIELDS = """
  label
  ... on IntMetadataEntry { intRepr }
  ... on FloatMetadataEntry { floatValue }
  ... on TextMetadataEntry { text }
  ... on MarkdownMetadataEntry { mdStr }
  ... on PathMetadataEntry { path }
  ... on JsonMetadataEntry { jsonString }
  ... on BoolMetadataEntry { boolValue }
"""


class GraphQLError(AssertionError):
    """The API answered with `errors`, or a union field resolved to an error type."""


class GraphQL:
    """POST queries to `<base_url>/graphql`; `execute` returns `data` or raises `GraphQLError`."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/graphql"

    def execute(self, query: str, variables: dict[str, Any] | None = None, timeout_s: float = 60) -> Any:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.load(response)
        if answer.get("errors"):
            raise GraphQLError(f"GraphQL errors: {json.dumps(answer['errors'], indent=1)[:4000]}")
        return answer["data"]


def expect_type(value: dict[str, Any], typename: str) -> dict[str, Any]:
    """`value` if its `__typename` is `typename`, else a failure that shows the error it carries."""
    if value.get("__typename") != typename:
        raise GraphQLError(f"expected {typename}, got {json.dumps(value, indent=1)[:4000]}")
    return value


def metadata(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Metadata entries (queried with METADATA_FIELDS) as {label: value}, numbers as numbers."""
    values: dict[str, Any] = {}
    for entry in entries:
        if "intRepr" in entry:
            values[entry["label"]] = int(entry["intRepr"])
        elif "jsonString" in entry:
            values[entry["label"]] = json.loads(entry["jsonString"])
        else:
            fields = [v for k, v in entry.items() if k not in ("label", "__typename")]
            values[entry["label"]] = fields[0] if fields else None
    return values


def asset_key(name: str) -> dict[str, list[str]]:
    """An AssetKeyInput for a single-part key."""
    return {"path": [name]}


LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on InvalidSubsetError { message }
  }
}
"""

BACKFILL_STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      isAssetBackfill
      partitionNames
      assetSelection { path }
      error { message stack }
      runs { runId status tags { key value } }
    }
    ... on PythonError { message stack }
    ... on BackfillNotFoundError { message }
  }
}
"""


def backfill_params(assets: list[str], partitions: list[str]) -> dict[str, Any]:
    """The parameters the UI's "Materialize" dialog sends for a partition range of selected assets.

    Copied from the web app (dagster-webserver 1.13, LaunchAssetChoosePartitionsDialog): for assets
    outside a named job it sends tags, the asset selection, the partition names and fromFailure=false,
    with no partition-set selector.
    """
    return {
        "tags": [],
        "assetSelection": [asset_key(name) for name in assets],
        "partitionNames": partitions,
        "fromFailure": False,
    }
