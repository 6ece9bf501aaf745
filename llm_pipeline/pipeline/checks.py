"""Asset checks: a pure verdict function per check, and thin partitioned `@asset_check` wrappers.

- `every_document_once` (blocking) on each LLM table: its `doc_id`s are exactly raw_documents'
  `doc_id`s, each once. A lost or doubled row stops downstream assets.
- `error_rate` on each LLM table: errors / attempted documents (ok + error; rejected and skipped
  were never attempted) is at most `max_error_rate`.
- `labels_in_taxonomy` on classifications: every label present is one of the taxonomy's, and every
  ok row has one.

A partitioned check must share its asset's partitions, so a check cannot be defined before its asset
(Dagster would treat the unknown key as an unpartitioned external asset and reject the definitions).
`build_checks(assets)` therefore builds the checks for the LLM tables among `assets`: definitions.py
passes its asset list, and adding an LLM asset there adds its checks. (Dagster 1.13 calls
partitioned checks a preview feature; its warning is silenced here, where we opt in on purpose.)

No `from __future__ import annotations`: Dagster reads the annotations below as real types.
"""

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence

import dagster as dg

from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.partitions import daily_partitions
from llm_pipeline.warehouse.files import PartitionTable

__all__ = [
    "LLM_TABLES",
    "build_checks",
    "coverage_verdict",
    "error_rate_verdict",
    "taxonomy_verdict",
]

#: The tables that must hold one row per input document.
LLM_TABLES = ("extracted_entities", "classifications", "corpus_report")
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


def taxonomy_verdict(rows: Iterable[tuple[str, str | None]], taxonomy: Sequence[str]) -> dg.AssetCheckResult:
    """Passes when every (status, label) has a label from `taxonomy` or none, and ok rows have one."""
    allowed = set(taxonomy)
    outside: Counter[str] = Counter()
    checked = unlabelled_ok = 0
    for status, label in rows:
        if label is not None:
            checked += 1
            if label not in allowed:
                outside[label] += 1
        elif status == "ok":
            unlabelled_ok += 1
    return dg.AssetCheckResult(
        passed=not outside and not unlabelled_ok,
        metadata={
            "labels_checked": checked,
            "outside_taxonomy": sum(outside.values()),
            "unlabelled_ok_rows": unlabelled_ok,
            "unknown_labels": dict(outside.most_common(_SAMPLE)),
            "taxonomy": list(taxonomy),
        },
    )


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


def _taxonomy_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey("classifications"), partitions_def=daily_partitions)
    def labels_in_taxonomy(checked: PartitionTable, pipeline_config: PipelineConfig) -> dg.AssetCheckResult:
        """Every label is one of the configured taxonomy's; no ok row lacks one."""
        rows = (
            (row["status"], row["label"])
            for batch in checked.iter_batches(batch_size=10_000, columns=["status", "label"])
            for row in batch
        )
        return taxonomy_verdict(rows, pipeline_config.settings().taxonomy)

    return labels_in_taxonomy


def build_checks(assets: Iterable[dg.AssetsDefinition | dg.AssetSpec]) -> list[dg.AssetChecksDefinition]:
    """The checks for whichever LLM tables are among `assets` (see the module docstring)."""
    keys: set[dg.AssetKey] = set()
    for asset in assets:
        keys.update(asset.keys if isinstance(asset, dg.AssetsDefinition) else {asset.key})
    checks: list[dg.AssetChecksDefinition] = []
    with warnings.catch_warnings():
        # Partitioned checks are "preview" in 1.13, and required here (ARCHITECTURE §3): say it once.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        for table in LLM_TABLES:
            if dg.AssetKey(table) in keys:
                checks += [_coverage_check(table), _error_rate_check(table)]
        if dg.AssetKey("classifications") in keys:
            checks.append(_taxonomy_check())
    return checks
