"""The pieces every step is built from: reading upstream partitions, row tallies with a preview, and
failing fast on systemic errors (the LLM step machine, corpus_report and raw_documents use them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from llm_pipeline.claude.errors import AuthError, CircuitOpen, LLMError, ModelNotFound, StateStoreError
from llm_pipeline.pipeline.metadata import markdown_table
from llm_pipeline.warehouse.files import PartitionTable

__all__ = ["RowTally", "aligned_rows", "arrow_rows", "fail_on_systemic", "sorted_table", "table_rows"]

_BATCH_ROWS = 1_000


class RowTally:
    """Counts rows by status and keeps the first few of each status for the markdown preview."""

    def __init__(self, columns: Sequence[str], *, per_status: int = 3) -> None:
        self.statuses: Counter[str] = Counter()
        self._columns = tuple(columns)
        self._per_status = per_status
        self._shown: list[Mapping[str, Any]] = []

    def add(self, row: Mapping[str, Any]) -> None:
        status = row["status"]
        if self.statuses[status] < self._per_status:
            self._shown.append(row)
        self.statuses[status] += 1

    def preview(self) -> dg.MetadataValue:
        return dg.MetadataValue.md(markdown_table(self._shown, self._columns))


@contextmanager
def fail_on_systemic(step: str) -> Iterator[None]:
    """Turn an error every document would meet into a step failure a person can act on.

    Used outside the staging writer, so the partial file is already discarded: no Parquet that looks
    like a finished partition is left behind.
    """
    try:
        yield
    except LLMError as error:
        if not error.systemic:
            raise
        raise dg.Failure(description=_advice(step, error), metadata={"error": str(error)}) from error


def _advice(step: str, error: LLMError) -> str:
    if isinstance(error, AuthError):
        return (
            f"{step} stopped: the API rejected the credentials ({error}). Check ANTHROPIC_API_KEY "
            "(and ANTHROPIC_BASE_URL); nothing was written for this partition, re-run it once fixed."
        )
    if isinstance(error, CircuitOpen):
        return (
            f"{step} stopped: the circuit breaker for {error.model or 'the model'} is open after repeated "
            f"upstream failures (last: {error.last_error or 'unknown'}). Set LLM_PIPELINE_FALLBACK_MODEL "
            "to keep going on another model, or re-run later; answers already received are in the "
            "ledger and will not be paid for again."
        )
    if isinstance(error, ModelNotFound):
        return (
            f"{step} stopped: the API does not know the model {error.model!r} (wrong or retired). Set "
            "LLM_PIPELINE_MODEL to a current model, or LLM_PIPELINE_FALLBACK_MODEL to have another answer; "
            "nothing was written for this partition."
        )
    if isinstance(error, StateStoreError):
        kept = (
            f" Answers already paid for are kept in {error.spooled} and go into the ledger before the "
            "next run calls anything."
            if error.spooled
            else ""
        )
        return (
            f"{step} stopped: the shared state at {error.store or 'LLM_PIPELINE_STATE'} failed: "
            f"{error.message}.{kept} Fix the store (see the README, 'Failure modes'), then re-run the "
            "partition."
        )
    return f"{step} stopped: {error}"


def aligned_rows(
    primary: PartitionTable,
    primary_columns: Sequence[str],
    others: Sequence[tuple[PartitionTable, Mapping[str, str]]],
) -> Iterator[dict[str, Any]]:
    """Rows of `primary` in `doc_id` order, each with the columns of `others` for the same `doc_id`.

    Tables are written in completion order, which differs between runs; reading in `doc_id` order
    makes what a step derives from them (the report's request above all) the same on every run, so
    the ledger recognises a re-run and it is not paid for twice. Each of `others` maps a column of
    that table to its name in the result (None where it has no such document). Rows are matched
    by index (`index_in` + `take`) rather than a hash join, which Arrow refuses for list-typed
    columns; both sides stay in Arrow's compact memory and rows are materialised a batch at a time.
    """
    left = sorted_table(primary, primary_columns)
    for other, columns in others:
        right = other.read(["doc_id", *columns])
        matched = right.take(pc.index_in(left["doc_id"], value_set=right["doc_id"]))
        for column, name in columns.items():
            left = left.append_column(name, matched[column])
    yield from arrow_rows(left)


def sorted_table(table: PartitionTable, columns: Sequence[str]) -> pa.Table:
    """`columns` of a stored partition in `doc_id` order, the order every re-run reads it in."""
    return table.read(columns).sort_by("doc_id")


def arrow_rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    """Rows of an in-memory table, materialised a batch at a time."""
    for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
        yield from batch.to_pylist()


def table_rows(table: PartitionTable, columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Rows of a stored partition, read a batch at a time: the producer side of a step."""
    for batch in table.iter_batches(columns=list(columns)):
        yield from batch
