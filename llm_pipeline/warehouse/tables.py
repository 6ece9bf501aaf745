"""The Parquet schema of every asset, and the row builders that keep "one row per document" true.

Every table downstream of `raw_documents` has exactly one row per input `doc_id` (ARCHITECTURE §2):
a document that was rejected, skipped or failed still gets a row, with `status` and `error` saying
why. `make_row` fills every column the caller did not set with its neutral default, so a code path
that forgets a column cannot drop or shift a row; `carried_row` is the row of a document an earlier
step did not pass on (rejected stays rejected, failed upstream becomes skipped, the reason kept).

The LLM tables share the call columns (`LLM_FIELDS`). `llm_columns` turns the `CallRecord`s of one
document (the first call and, when the answer had to be repaired, the repair call) into those columns:
tokens, cost, latency and attempts add up over the calls, so the row says what the document cost.
`input_tokens` are the uncached input tokens (the API's `input_tokens`); `cache_read_tokens` and
`cache_write_tokens` are the prompt-cache reads and writes beside them, so the prompt's size is the
sum of the three, and `cost_usd` prices each kind at its own rate (`claude/pricing.py`).

corpus_report: one call per partition, one row per document
-----------------------------------------------------------
The report is a single call, yet the table keeps one row per document so the accounting check holds.
`allocate_report_call` spreads that call over the *included* rows (documents counted in the report):

- `input_tokens`, `output_tokens`, `cache_read_tokens` and `cache_write_tokens` are split as evenly
  as integers allow (largest remainder: the first `total % n` rows get one more), so each column
  sums to the call's total exactly;
- `cost_usd` is split the same way in whole nano-dollars (1e-9 USD), so its sum equals the call's
  cost to the nano-dollar (float addition may differ in the last ulp); None stays None (unpriced);
- the descriptive columns (`model`, `latency_ms`, `attempts`, `cached`, `fallback`, `rate_limited`,
  `repaired`, `request_id`) describe the one call and are repeated on every included row: do not sum
  them. Rows not included carry zero tokens and cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from llm_pipeline.claude.metrics import CallRecord

__all__ = [
    "CLASSIFICATIONS",
    "CORPUS_REPORT",
    "EXTRACTED_ENTITIES",
    "LLM_FIELDS",
    "RAW_DOCUMENTS",
    "SCHEMAS",
    "STANDARD_COLUMNS",
    "STATUSES",
    "allocate_int",
    "allocate_report_call",
    "carried_row",
    "llm_columns",
    "llm_table",
    "make_row",
    "own_fields",
    "schema_for",
]

#: ok: answered and valid · error: tried and failed · rejected: bad input · skipped: upstream not ok.
STATUSES: tuple[str, ...] = ("ok", "error", "rejected", "skipped")

RAW_DOCUMENTS = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string()),
        pa.field("line_no", pa.int64(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("char_count", pa.int64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("flags", pa.list_(pa.string())),
        pa.field("metadata", pa.string()),
    ]
)

LLM_FIELDS: tuple[pa.Field, ...] = (
    pa.field("model", pa.string()),
    pa.field("input_tokens", pa.int64()),
    pa.field("output_tokens", pa.int64()),
    pa.field("cache_read_tokens", pa.int64()),
    pa.field("cache_write_tokens", pa.int64()),
    pa.field("cost_usd", pa.float64()),
    pa.field("latency_ms", pa.float64()),
    pa.field("attempts", pa.int64()),
    pa.field("cached", pa.bool_()),
    pa.field("fallback", pa.bool_()),
    pa.field("rate_limited", pa.int64()),
    pa.field("repaired", pa.bool_()),
    pa.field("request_id", pa.string()),
)

_ROW_HEAD = (
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("error", pa.string()),
)

_ENTITY = pa.struct([pa.field("name", pa.string()), pa.field("type", pa.string())])

#: Columns of every LLM table besides a step's own output columns (which may not reuse the names).
STANDARD_COLUMNS: frozenset[str] = frozenset(f.name for f in (*_ROW_HEAD, *LLM_FIELDS))


def llm_table(output_fields: Sequence[pa.Field]) -> pa.Schema:
    """An LLM table: doc_id, status, error, then the step's own columns, then the call columns."""
    names = [f.name for f in output_fields]
    clash = sorted(set(names) & STANDARD_COLUMNS)
    if clash:
        raise ValueError(
            f"output columns {clash} collide with the standard columns {sorted(STANDARD_COLUMNS)}"
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"output columns {twice} are listed more than once")
    return pa.schema([*_ROW_HEAD, *output_fields, *LLM_FIELDS])


def own_fields(schema: pa.Schema) -> tuple[pa.Field, ...]:
    """An LLM table's own output columns (everything but the standard ones), in table order."""
    return tuple(f for f in schema if f.name not in STANDARD_COLUMNS)


EXTRACTED_ENTITIES = llm_table(
    [pa.field("topics", pa.list_(pa.string())), pa.field("entities", pa.list_(_ENTITY))]
)

CLASSIFICATIONS = llm_table(
    [
        pa.field("label", pa.string()),
        pa.field("confidence", pa.float64()),
        pa.field("rationale", pa.string()),
    ]
)

CORPUS_REPORT = llm_table(
    [
        pa.field("label", pa.string()),
        pa.field("included", pa.bool_(), nullable=False),
        pa.field("headline", pa.string()),
        pa.field("summary", pa.string()),
    ]
)

#: Asset name → schema; the IO manager writes DataFrames with these.
SCHEMAS: Mapping[str, pa.Schema] = {
    "raw_documents": RAW_DOCUMENTS,
    "extracted_entities": EXTRACTED_ENTITIES,
    "classifications": CLASSIFICATIONS,
    "corpus_report": CORPUS_REPORT,
}

#: Values a column takes when a row builder does not set it: "nothing happened, nothing was paid".
_DEFAULTS: Mapping[str, Any] = {
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "cost_usd": 0.0,
    "latency_ms": 0.0,
    "attempts": 0,
    "cached": False,
    "fallback": False,
    "rate_limited": 0,
    "repaired": False,
    "included": False,
}


def schema_for(asset_name: str) -> pa.Schema | None:
    """The schema of a pipeline asset, or None for a table this module does not know."""
    return SCHEMAS.get(asset_name)


def make_row(schema: pa.Schema, **values: Any) -> dict[str, Any]:
    """A complete row for `schema`: the given values, every other column at its neutral default.

    Unknown column names raise, so a typo cannot silently produce a row with a null column.
    """
    unknown = set(values) - set(schema.names)
    if unknown:
        raise KeyError(f"not columns of this table: {sorted(unknown)}")
    row: dict[str, Any] = {}
    for field in schema:
        if field.name in values:
            row[field.name] = values[field.name]
        elif pa.types.is_list(field.type):
            row[field.name] = []
        else:
            row[field.name] = _DEFAULTS.get(field.name)
    return row


def carried_row(schema: pa.Schema, upstream: Mapping[str, Any], *, upstream_name: str) -> dict[str, Any]:
    """The row for a document an earlier step did not hand on as `ok`, so it is not attempted here.

    A rejected document stays `rejected` with its original reason, so the reason is visible in every
    table; a document that failed (`error`) or was `skipped` upstream is `skipped` here, and `error`
    says which step stopped it and why.
    """
    status, error = upstream["status"], upstream.get("error")
    if status == "ok":
        raise ValueError(
            f"document {upstream['doc_id']!r} is ok in {upstream_name}: process it, do not carry it"
        )
    if status == "rejected":
        return make_row(schema, doc_id=upstream["doc_id"], status="rejected", error=error)
    prefix = f"{upstream_name}: " if status == "error" else ""
    return make_row(schema, doc_id=upstream["doc_id"], status="skipped", error=f"{prefix}{error}")


def llm_columns(records: Sequence[CallRecord]) -> dict[str, Any]:
    """The call columns of one document's row from the records of its calls (first, then repairs).

    Sums what adds up (tokens, cost, latency, attempts, 429s); the model and request id are the last
    call's, because that call produced the row's answer; `repaired` means more than one call.
    `cost_usd` is None when any call was unpriced: a partial sum would understate the bill.
    """
    if not records:
        return {}
    costs = [r.cost_usd for r in records]
    last = records[-1]
    return {
        "model": last.model,
        "input_tokens": sum(r.input_tokens for r in records),
        "output_tokens": sum(r.output_tokens for r in records),
        "cache_read_tokens": sum(r.cache_read_input_tokens for r in records),
        "cache_write_tokens": sum(r.cache_creation_input_tokens for r in records),
        "cost_usd": None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 9),
        "latency_ms": float(sum(r.latency_ms for r in records)),
        "attempts": sum(r.attempts for r in records),
        "cached": all(r.cached for r in records),
        "fallback": any(r.fallback for r in records),
        "rate_limited": sum(r.rate_limited for r in records),
        "repaired": len(records) > 1,
        "request_id": last.request_id,
    }


#: Token columns of the report call spread over its rows (each sums to the call's total).
_SUMMED_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def allocate_int(total: int, n: int) -> list[int]:
    """Split `total` into `n` integers that differ by at most one and sum to `total` exactly."""
    if n <= 0:
        raise ValueError(f"cannot allocate over {n} rows")
    base, extra = divmod(total, n)
    return [base + 1 if i < extra else base for i in range(n)]


def allocate_report_call(records: Sequence[CallRecord], n_included: int) -> list[dict[str, Any]]:
    """The call columns for each of `n_included` report rows; see the module docstring for the rule."""
    call = llm_columns(records)
    if not call:
        return [{} for _ in range(n_included)]
    summed = {name: allocate_int(call[name], n_included) for name in _SUMMED_TOKENS}
    cost = call["cost_usd"]
    nanos = allocate_int(round(cost * 1e9), n_included) if cost is not None else [None] * n_included
    return [
        {
            **call,
            **{name: split[i] for name, split in summed.items()},
            "cost_usd": None if nanos[i] is None else nanos[i] / 1e9,
        }
        for i in range(n_included)
    ]
