"""Small helpers that turn rows into materialization metadata people can read in the UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llm_pipeline.claude.metrics import ModelUsage

__all__ = ["USAGE_FIELDS", "markdown_table", "usage_metadata"]

#: The usage keys Dagster's Anthropic integration (dagster-anthropic) writes as `anthropic.<field>`,
#: which Dagster Insights aggregates.
USAGE_FIELDS = (
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def usage_metadata(by_model: Mapping[str, ModelUsage]) -> dict[str, int]:
    """`anthropic.<field>` totals, as dagster-anthropic names them, and `anthropic.<model>.<field>`.

    Only answers that were paid for count (a ledger hit is not a call to the API), so the keys
    measure consumption and agree with Anthropic's usage report for the same run.
    """
    totals = {f"anthropic.{name}": sum(getattr(u, name) for u in by_model.values()) for name in USAGE_FIELDS}
    per_model = {
        f"anthropic.{model}.{name}": getattr(usage, name)
        for model, usage in by_model.items()
        for name in USAGE_FIELDS
    }
    return {**totals, **per_model}


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, max_chars: int = 60) -> str:
    """A markdown table of `columns`; cells are cut to `max_chars`, and `|` and newlines are escaped
    so hostile or multi-line text cannot break the table."""
    if not rows:
        return "(no rows)"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(_cell(row.get(column), max_chars) for column in columns) + " |" for row in rows
    ]
    return "\n".join(lines)


def _cell(value: Any, max_chars: int) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    text = " ".join(str(value).split())
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text.replace("|", "\\|")
