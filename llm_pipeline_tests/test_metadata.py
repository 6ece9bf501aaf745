"""Markdown previews: hostile or multi-line cells cannot break the table."""

from __future__ import annotations

from typing import Any

import pytest

from llm_pipeline.metadata import markdown_table


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
