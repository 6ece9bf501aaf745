"""Schemas and row builders: every row complete, report usage allocated without losing a token."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from llm_pipeline.claude.metrics import CallRecord
from llm_pipeline.warehouse.tables import (
    CLASSIFICATIONS,
    CORPUS_REPORT,
    EXTRACTED_ENTITIES,
    LLM_FIELDS,
    RAW_DOCUMENTS,
    SCHEMAS,
    allocate_int,
    allocate_report_call,
    carried_row,
    llm_columns,
    make_row,
    schema_for,
)

CONTRACT_COLUMNS = {
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "latency_ms",
    "attempts",
    "cached",
}


@pytest.mark.parametrize("schema", [EXTRACTED_ENTITIES, CLASSIFICATIONS, CORPUS_REPORT])
def test_every_llm_table_has_the_contract_columns(schema: pa.Schema) -> None:
    assert schema.names[:3] == ["doc_id", "status", "error"]
    assert set(schema.names) >= CONTRACT_COLUMNS | {"fallback", "rate_limited", "repaired", "request_id"}
    assert schema.field("cost_usd").nullable


def test_schemas_are_keyed_by_asset_name() -> None:
    assert set(SCHEMAS) == {"raw_documents", "extracted_entities", "classifications", "corpus_report"}
    assert schema_for("raw_documents") is RAW_DOCUMENTS
    assert schema_for("nope") is None


@pytest.mark.parametrize("schema", list(SCHEMAS.values()))
def test_make_row_fills_every_column_and_the_row_fits_the_schema(schema: pa.Schema) -> None:
    row = make_row(schema, doc_id="d1", status="rejected", error="line 3: not valid JSON")
    assert list(row) == schema.names
    table = pa.Table.from_pylist([row], schema=schema)
    assert table.num_rows == 1


def test_make_row_defaults_mean_no_call_was_made() -> None:
    row = make_row(CLASSIFICATIONS, doc_id="d", status="skipped", error="extraction failed")
    assert {name: row[name] for name in (f.name for f in LLM_FIELDS)} == {
        "model": None,
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
        "request_id": None,
    }
    assert (row["label"], row["confidence"]) == (None, None)
    assert make_row(EXTRACTED_ENTITIES, doc_id="d", status="error")["topics"] == []
    assert make_row(CORPUS_REPORT, doc_id="d", status="skipped")["included"] is False


def test_make_row_refuses_unknown_columns() -> None:
    with pytest.raises(KeyError, match="lable"):
        make_row(CLASSIFICATIONS, doc_id="d", status="ok", lable="business")


def _record(**kwargs: Any) -> CallRecord:
    base: dict[str, Any] = {"key": "d", "model": "claude-haiku", "outcome": "ok", "attempts": 1}
    return CallRecord(**{**base, **kwargs})


def test_llm_columns_of_one_call() -> None:
    record = _record(
        input_tokens=120,
        output_tokens=30,
        cache_read_input_tokens=4000,
        cache_creation_input_tokens=0,
        cost_usd=0.00027,
        latency_ms=812.5,
        attempts=3,
        rate_limited=2,
        request_id="req_1",
        fallback=True,
    )
    assert llm_columns([record]) == {
        "model": "claude-haiku",
        "input_tokens": 120,
        "output_tokens": 30,
        "cache_read_tokens": 4000,
        "cache_write_tokens": 0,
        "cost_usd": 0.00027,
        "latency_ms": 812.5,
        "attempts": 3,
        "cached": False,
        "fallback": True,
        "rate_limited": 2,
        "repaired": False,
        "request_id": "req_1",
    }


def test_llm_columns_of_a_repaired_answer_add_up_both_calls() -> None:
    first = _record(
        input_tokens=100,
        output_tokens=10,
        cache_creation_input_tokens=4000,
        cost_usd=0.1,
        latency_ms=10,
        request_id="req_1",
    )
    repair = _record(
        model="claude-fallback",
        cache_read_input_tokens=4000,
        input_tokens=150,
        output_tokens=20,
        cost_usd=0.2,
        latency_ms=5,
        request_id="req_2",
    )
    columns = llm_columns([first, repair])
    assert (columns["input_tokens"], columns["output_tokens"], columns["latency_ms"]) == (250, 30, 15.0)
    assert (columns["cache_write_tokens"], columns["cache_read_tokens"]) == (4000, 4000)
    assert math.isclose(columns["cost_usd"], 0.3)
    assert (columns["model"], columns["request_id"], columns["repaired"]) == (
        "claude-fallback",
        "req_2",
        True,
    )
    assert columns["attempts"] == 2


@pytest.mark.parametrize(
    ("cached", "expected"), [((True, True), True), ((True, False), False), ((False, False), False)]
)
def test_a_row_is_cached_only_when_every_call_was(cached: tuple[bool, bool], expected: bool) -> None:
    assert llm_columns([_record(cached=cached[0]), _record(cached=cached[1])])["cached"] is expected


def test_an_unpriced_call_makes_the_row_cost_unknown_not_zero() -> None:
    assert llm_columns([_record(cost_usd=0.1), _record(cost_usd=None)])["cost_usd"] is None
    assert llm_columns([]) == {}


@pytest.mark.parametrize(
    ("total", "n", "expected"),
    [
        (10, 3, [4, 3, 3]),
        (2, 5, [1, 1, 0, 0, 0]),
        (0, 2, [0, 0]),
        (7, 1, [7]),
        (1_000_005, 7, [142858] * 6 + [142857]),
    ],
)
def test_allocate_int_sums_exactly_and_differs_by_at_most_one(
    total: int, n: int, expected: list[int]
) -> None:
    parts = allocate_int(total, n)
    assert parts == expected
    assert sum(parts) == total


def test_allocate_int_needs_rows() -> None:
    with pytest.raises(ValueError, match="cannot allocate over 0 rows"):
        allocate_int(5, 0)


@pytest.mark.parametrize("n", [1, 3, 7, 313, 100_000])
def test_report_call_allocation_sums_to_the_call_totals(n: int) -> None:
    record = _record(
        input_tokens=4321,
        output_tokens=987,
        cache_read_input_tokens=55,
        cache_creation_input_tokens=66,
        cost_usd=0.012345678,
        latency_ms=2500.0,
        attempts=2,
    )
    rows = allocate_report_call([record], n)
    assert len(rows) == n
    assert sum(r["input_tokens"] for r in rows) == 4321
    assert sum(r["output_tokens"] for r in rows) == 987
    assert sum(r["cache_read_tokens"] for r in rows) == 55
    assert sum(r["cache_write_tokens"] for r in rows) == 66
    assert round(math.fsum(r["cost_usd"] for r in rows), 9) == 0.012345678
    assert {r["latency_ms"] for r in rows} == {2500.0}  # descriptive: repeated, not split
    assert {r["attempts"] for r in rows} == {2}


def test_report_call_allocation_keeps_an_unknown_cost_unknown() -> None:
    rows = allocate_report_call([_record(input_tokens=10, cost_usd=None)], 3)
    assert [r["cost_usd"] for r in rows] == [None, None, None]
    assert allocate_report_call([], 2) == [{}, {}]


@pytest.mark.parametrize(
    ("upstream", "status", "error"),
    [
        (
            {"doc_id": "line-3", "status": "rejected", "error": "line 3: not valid JSON"},
            "rejected",
            "line 3: not valid JSON",
        ),
        (
            {"doc_id": "d1", "status": "error", "error": "BadOutput: refused"},
            "skipped",
            "extracted_entities: BadOutput: refused",
        ),
        (
            {"doc_id": "d2", "status": "skipped", "error": "extracted_entities: Timeout"},
            "skipped",
            "extracted_entities: Timeout",
        ),
    ],
)
def test_carried_rows_keep_the_reason_a_document_was_not_processed(
    upstream: dict[str, Any], status: str, error: str
) -> None:
    row = carried_row(CORPUS_REPORT, upstream, upstream_name="extracted_entities")
    assert (row["doc_id"], row["status"], row["error"]) == (upstream["doc_id"], status, error)
    assert (row["included"], row["input_tokens"], row["cost_usd"]) == (False, 0, 0.0)


def test_an_ok_document_is_never_carried() -> None:
    with pytest.raises(ValueError, match="is ok in raw_documents"):
        carried_row(EXTRACTED_ENTITIES, {"doc_id": "d", "status": "ok"}, upstream_name="raw_documents")
