"""Input validation: JSONL bytes in, one `raw_documents` row per line out, never a crash.

Lines are read as bytes one at a time, so a 100,000-line file is never one string. Each line becomes
exactly one row: `ok` (sent on to the model, possibly with `flags`) or `rejected` (with `error`
naming the line and the reason, and `reason` a stable code for the histogram).

- invalid UTF-8 is decoded with U+FFFD replacement and flagged `invalid_utf8`; the document goes on.
- text longer than `max_chars` is cut to `max_chars` and flagged `truncated`; `char_count` keeps the
  original length, so the cut is visible in the table, never silent.
- keys other than `id` and `text` are kept as a JSON object string in `metadata`.
- `doc_id` is unique in the table: a valid id is claimed by its first line (first wins, later lines
  are rejected as duplicates); lines without a usable id get the synthetic `line-<n>`, with the
  original value, if any, in `source_id`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llm_pipeline.warehouse.store import Location, open_binary

__all__ = ["DEFAULT_MAX_CHARS", "ParsedDocument", "parse_lines", "read_documents"]

DEFAULT_MAX_CHARS = 20_000
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """One input line after validation; `as_row()` is its `raw_documents` row."""

    doc_id: str
    line_no: int
    status: str
    source_id: str | None = None
    text: str | None = None
    char_count: int | None = None
    error: str | None = None
    #: Stable code of the rejection (`not_json`, `duplicate_id`, ...) for the reasons histogram.
    reason: str | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)
    metadata: str = "{}"

    def as_row(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source_id": self.source_id,
            "line_no": self.line_no,
            "text": self.text,
            "char_count": self.char_count,
            "status": self.status,
            "error": self.error,
            "flags": list(self.flags),
            "metadata": self.metadata,
        }


def read_documents(path: Location, *, max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[ParsedDocument]:
    """Stream the validated documents of one JSONL file, local or on a store (bytes, line by line)."""
    with open_binary(path) as lines:
        yield from parse_lines(lines, max_chars=max_chars)


def parse_lines(lines: Iterable[bytes], *, max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[ParsedDocument]:
    """Validate JSONL lines (bytes, newline optional); one `ParsedDocument` per line, in order."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    claimed: dict[str, int] = {}
    for line_no, raw in enumerate(lines, start=1):
        doc = _parse_line(line_no, raw, claimed, max_chars)
        claimed[doc.doc_id] = line_no
        yield doc


def _parse_line(line_no: int, raw: bytes, claimed: dict[str, int], max_chars: int) -> ParsedDocument:
    flags: list[str] = []
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        decoded = raw.decode("utf-8", errors="replace")
        flags.append("invalid_utf8")
    if line_no == 1:
        decoded = decoded.removeprefix(_BOM)
    where = f"line {line_no}"

    def reject(reason: str, message: str, **known: Any) -> ParsedDocument:
        doc_id = known.pop("doc_id", None) or _synthetic_id(line_no, claimed)
        return ParsedDocument(
            doc_id=doc_id,
            line_no=line_no,
            status="rejected",
            error=f"{where}: {message}",
            reason=reason,
            flags=tuple(flags),
            **known,
        )

    if not decoded.strip():
        return reject("empty_line", "empty line")
    try:
        obj = json.loads(decoded)
    except json.JSONDecodeError as exc:
        return reject("not_json", f"not valid JSON ({exc.msg} at column {exc.colno})")
    except (ValueError, RecursionError) as exc:  # e.g. a 5,000-digit number, nesting 100,000 deep
        return reject("not_json", f"JSON the parser refuses ({type(exc).__name__}: {str(exc)[:80]})")
    if not isinstance(obj, dict):
        return reject("not_object", f"expected a JSON object, got {_json_type(obj)}")

    extras = {k: v for k, v in obj.items() if k not in ("id", "text")}
    metadata = json.dumps(extras, ensure_ascii=False, sort_keys=True)
    raw_text = obj.get("text")
    text = raw_text[:max_chars] if isinstance(raw_text, str) else None
    known: dict[str, Any] = {
        "metadata": metadata,
        "text": text,
        "char_count": len(raw_text) if isinstance(raw_text, str) else None,
    }
    if isinstance(raw_text, str) and len(raw_text) > max_chars:
        flags.append("truncated")

    raw_id = obj.get("id")
    if "id" not in obj:
        return reject("missing_id", "missing 'id'", **known)
    if not isinstance(raw_id, str):
        return reject(
            "invalid_id", f"'id' must be a string, got {_json_type(raw_id)}", source_id=_dump(raw_id), **known
        )
    known["source_id"] = raw_id
    if not raw_id.strip():
        return reject("invalid_id", "'id' is empty", **known)
    if raw_id in claimed:
        first = claimed[raw_id]
        return reject("duplicate_id", f"duplicate id {raw_id!r} (first used by line {first})", **known)

    if "text" not in obj:
        return reject("missing_text", "missing 'text'", doc_id=raw_id, **known)
    if not isinstance(raw_text, str):
        return reject(
            "invalid_text", f"'text' must be a string, got {_json_type(raw_text)}", doc_id=raw_id, **known
        )
    if not raw_text.strip():
        return reject("empty_text", "'text' is empty or whitespace only", doc_id=raw_id, **known)

    return ParsedDocument(doc_id=raw_id, line_no=line_no, status="ok", flags=tuple(flags), **known)


def _synthetic_id(line_no: int, claimed: dict[str, int]) -> str:
    """`line-<n>`, or `line-<n>-2`, ... in the unlikely case a real document already uses that id."""
    candidate, suffix = f"line-{line_no}", 1
    while candidate in claimed:
        suffix += 1
        candidate = f"line-{line_no}-{suffix}"
    return candidate


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
