"""Input validation: JSONL bytes in, one `raw_documents` row per line out, never a crash.

Lines are read as bytes one at a time, so a 100,000-line file is never one string. Each line becomes
exactly one row: `ok` (sent on to the model, possibly with `flags`) or `rejected` (with `error`
naming the line and the reason, and `reason` a stable code for the histogram).

- invalid UTF-8 is decoded with U+FFFD replacement and flagged `invalid_utf8`; the document goes on.
- a string that is valid JSON but not encodable Unicode (a lone surrogate such as `"a\ud800b"`, in
  the text, the id, a metadata key or value) has each lone surrogate replaced by U+FFFD and is
  flagged `invalid_unicode`; the original id, if it changed, is kept escaped in `source_id`. Left
  as is, it passed validation and then failed the whole partition when the table was written.
- metadata values are capped at `MAX_METADATA_VALUE_CHARS` characters (of their JSON) and the
  metadata at `MAX_METADATA_CHARS`; what is cut is flagged `metadata_truncated`.
- text longer than `max_chars` is cut to `max_chars` and flagged `truncated`; `char_count` keeps the
  original length, so the cut is visible in the table, never silent.
- keys other than `id` and `text` are kept as a JSON object string in `metadata`.
- `doc_id` is unique in the table: a valid id is claimed by its first line (first wins, later lines
  are rejected as duplicates); lines without a usable id get the synthetic `line-<n>`, with the
  original value, if any, in `source_id`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llm_pipeline.warehouse.store import Location, open_binary

__all__ = [
    "DEFAULT_MAX_CHARS",
    "MAX_METADATA_CHARS",
    "MAX_METADATA_VALUE_CHARS",
    "ParsedDocument",
    "parse_lines",
    "read_documents",
]

DEFAULT_MAX_CHARS = 20_000
MAX_METADATA_VALUE_CHARS = 1_000
MAX_METADATA_CHARS = 10_000
_BOM = "\ufeff"
_SURROGATES = re.compile("[\ud800-\udfff]")


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
    original_id = obj.get("id")
    obj, repaired = _repaired(obj)
    if repaired:
        flags.append("invalid_unicode")

    extras = {k: v for k, v in obj.items() if k not in ("id", "text")}
    metadata, capped = _capped_metadata(extras)
    if capped:
        flags.append("metadata_truncated")
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
    known["source_id"] = raw_id if raw_id == original_id else json.dumps(original_id)
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


def _repaired(value: Any) -> tuple[Any, bool]:
    """`value` with every lone surrogate (unencodable in UTF-8) replaced by U+FFFD; and whether any was."""
    if isinstance(value, str):
        if value.isascii():
            return value, False
        fixed = _SURROGATES.sub("\ufffd", value)
        return fixed, fixed != value
    if isinstance(value, dict):
        pairs = [(_repaired(k), _repaired(v)) for k, v in value.items()]
        return {k: v for (k, _), (v, _) in pairs}, any(a or b for (_, a), (_, b) in pairs)
    if isinstance(value, list):
        items = [_repaired(v) for v in value]
        return [v for v, _ in items], any(changed for _, changed in items)
    return value, False


def _capped_metadata(extras: dict[str, Any]) -> tuple[str, bool]:
    """The metadata JSON, each value within its cap and the whole within its own; whether cut."""
    capped = False
    kept: dict[str, Any] = {}
    size = 2
    for key in sorted(extras):
        value = extras[key]
        encoded = json.dumps(value, ensure_ascii=False)
        if len(encoded) > MAX_METADATA_VALUE_CHARS:
            capped = True
            text = value if isinstance(value, str) else encoded
            value = text[: MAX_METADATA_VALUE_CHARS - 1] + "…"
            encoded = json.dumps(value, ensure_ascii=False)
        size += len(json.dumps(key, ensure_ascii=False)) + len(encoded) + 4
        if size > MAX_METADATA_CHARS:
            return json.dumps(kept, ensure_ascii=False, sort_keys=True), True
        kept[key] = value
    return json.dumps(kept, ensure_ascii=False, sort_keys=True), capped


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
