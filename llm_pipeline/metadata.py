"""Small helpers that turn rows into materialization metadata people can read in the UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["markdown_table"]


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
