"""Markdown previews: hostile or multi-line cells cannot break the table."""

from __future__ import annotations

from typing import Any

import pytest

from llm_pipeline.claude.metrics import ModelUsage
from llm_pipeline.pipeline.metadata import USAGE_FIELDS, markdown_table, usage_metadata


def test_a_table_with_header_and_rows() -> None:
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    assert markdown_table(rows, ["a", "b"]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2 |  |"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("a | b", "a \\| b"),
        ("line one\nline two\t end", "line one line two end"),
        (["invalid_utf8", "truncated"], "invalid_utf8, truncated"),
        ("x" * 40, "x" * 29 + "…"),
        ("東京 🚀", "東京 🚀"),
    ],
)
def test_cells_are_escaped_flattened_and_cut(value: Any, cell: str) -> None:
    assert markdown_table([{"c": value}], ["c"], max_chars=30).splitlines()[2] == f"| {cell} |"


def test_no_rows() -> None:
    assert markdown_table([], ["a"]) == "(no rows)"


def test_usage_metadata_uses_dagster_anthropic_keys_in_total_and_per_model() -> None:
    usage = usage_metadata(
        {
            "claude-haiku-5-5": ModelUsage(3, 30, 12, 5, 40),
            "claude-sonnet-5-5": ModelUsage(1, 7, 2, 0, 0),
        }
    )
    assert {key: usage[f"anthropic.{key}"] for key in USAGE_FIELDS} == {
        "calls": 4,
        "input_tokens": 37,
        "output_tokens": 14,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 40,
    }
    assert usage["anthropic.claude-haiku-5-5.cache_read_input_tokens"] == 40
    assert usage["anthropic.claude-sonnet-5-5.calls"] == 1
    assert len(usage) == 5 * 3
    assert usage_metadata({}) == {f"anthropic.{key}": 0 for key in USAGE_FIELDS}
