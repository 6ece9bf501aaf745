"""Asset checks: a pure verdict function per check, and thin partitioned `@asset_check` wrappers.

Every LLM table gets two (`llm_table_checks`):

- `every_document_once` (blocking): its `doc_id`s are exactly raw_documents' `doc_id`s, each once.
  A lost or doubled row stops downstream assets.
- `error_rate`: errors / attempted documents (ok + error; rejected and skipped were never
  attempted) is at most `max_error_rate`.

A step may add `AllowedValues` checks: every value of a column is one of a set (fixed, or read
from the pipeline settings when the check runs), and every ok row has one. classifications'
`labels_in_taxonomy` is one; a step added in YAML gets one per output column whose schema is an
`enum`.

A partitioned check must share its asset's partitions, so checks are built for an asset key, not
from the asset object, and Dagster matches them up in `Definitions`. (Dagster 1.13 calls
partitioned checks a preview feature; its warning is silenced here, where we opt in on purpose.)

No `from __future__ import annotations`: Dagster reads the annotations below as real types.
"""

import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from llm_pipeline.pipeline.config import PipelineConfig, PipelineSettings
from llm_pipeline.pipeline.partitions import daily_partitions
from llm_pipeline.warehouse.files import PartitionTable

__all__ = [
    "AllowedValues",
    "allowed_values_verdict",
    "coverage_verdict",
    "error_rate_verdict",
    "llm_table_checks",
]

_SAMPLE = 20


def coverage_verdict(expected_ids: Iterable[str], actual_ids: Iterable[str]) -> dg.AssetCheckResult:
    """Passes when `actual_ids` holds every expected id exactly once and nothing else."""
    expected = set(expected_ids)
    counts = Counter(actual_ids)
    missing = sorted(expected - counts.keys())
    extra = sorted(counts.keys() - expected)
    duplicated = sorted(doc_id for doc_id, n in counts.items() if n > 1)
    return dg.AssetCheckResult(
        passed=not (missing or extra or duplicated),
        metadata={
            "expected_documents": len(expected),
            "rows": sum(counts.values()),
            "missing": len(missing),
            "extra": len(extra),
            "duplicated": len(duplicated),
            "missing_sample": missing[:_SAMPLE],
            "extra_sample": extra[:_SAMPLE],
            "duplicated_sample": duplicated[:_SAMPLE],
        },
    )


def error_rate_verdict(statuses: Iterable[str], max_error_rate: float) -> dg.AssetCheckResult:
    """Passes when errors / attempted documents is at most `max_error_rate` (0 when none attempted)."""
    counts = Counter(statuses)
    attempted = counts["ok"] + counts["error"]
    rate = counts["error"] / attempted if attempted else 0.0
    return dg.AssetCheckResult(
        passed=rate <= max_error_rate,
        metadata={
            "error_rate": round(rate, 6),
            "max_error_rate": max_error_rate,
            "errors": counts["error"],
            "attempted": attempted,
            "rejected": counts["rejected"],
            "skipped": counts["skipped"],
        },
    )


def allowed_values_verdict(rows: Iterable[tuple[str, Any]], allowed: Sequence[Any]) -> dg.AssetCheckResult:
    """Passes when every (status, value) has a value from `allowed` or none, and ok rows have one."""
    permitted = set(allowed)
    outside: Counter[str] = Counter()
    checked = missing_on_ok = 0
    for status, value in rows:
        if value is not None:
            checked += 1
            if value not in permitted:
                outside[str(value)] += 1
        elif status == "ok":
            missing_on_ok += 1
    return dg.AssetCheckResult(
        passed=not outside and not missing_on_ok,
        metadata={
            "values_checked": checked,
            "outside_allowed": sum(outside.values()),
            "ok_rows_without_value": missing_on_ok,
            "unknown_values": dict(outside.most_common(_SAMPLE)),
            "allowed": list(allowed),
        },
    )


@dataclass(frozen=True)
class AllowedValues:
    """A check that `column` only holds `values` (a fixed list, or taken from the settings at run time)."""

    name: str
    column: str
    values: Sequence[Any] | Callable[[PipelineSettings], Sequence[Any]]
    description: str = ""

    def allowed(self, settings: PipelineSettings) -> Sequence[Any]:
        return self.values(settings) if callable(self.values) else self.values


def _coverage_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(table),
        name="every_document_once",
        partitions_def=daily_partitions,
        blocking=True,
        additional_ins={"raw_documents": dg.AssetIn("raw_documents")},
    )
    def every_document_once(checked: PartitionTable, raw_documents: PartitionTable) -> dg.AssetCheckResult:
        """Every raw document has exactly one row here: none missing, none extra, none twice."""
        return coverage_verdict(raw_documents.iter_column("doc_id"), checked.iter_column("doc_id"))

    return every_document_once


def _error_rate_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey(table), name="error_rate", partitions_def=daily_partitions)
    def error_rate(checked: PartitionTable, pipeline_config: PipelineConfig) -> dg.AssetCheckResult:
        """Errors among attempted documents stay at or below max_error_rate."""
        return error_rate_verdict(checked.iter_column("status"), pipeline_config.settings().max_error_rate)

    return error_rate


def _allowed_values_check(table: str, spec: AllowedValues) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(table),
        name=spec.name,
        partitions_def=daily_partitions,
        description=spec.description or f"Every {spec.column} is an allowed value; no ok row lacks one.",
    )
    def allowed_values(checked: PartitionTable, pipeline_config: PipelineConfig) -> dg.AssetCheckResult:
        rows = (
            (row["status"], row[spec.column])
            for batch in checked.iter_batches(batch_size=10_000, columns=["status", spec.column])
            for row in batch
        )
        return allowed_values_verdict(rows, spec.allowed(pipeline_config.settings()))

    return allowed_values


def llm_table_checks(table: str, allowed: Sequence[AllowedValues] = ()) -> list[dg.AssetChecksDefinition]:
    """The checks of one LLM table (see the module docstring)."""
    with warnings.catch_warnings():
        # Partitioned checks are "preview" in 1.13, and required here (ARCHITECTURE §3): say it once.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            _coverage_check(table),
            _error_rate_check(table),
            *(_allowed_values_check(table, spec) for spec in allowed),
        ]
