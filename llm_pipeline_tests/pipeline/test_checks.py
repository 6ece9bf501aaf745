"""Checks: the pure verdicts as tables, and the partitioned wrappers inside real runs.

No `from __future__ import annotations`: the hand-made stand-in assets below are read by Dagster.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from llm_pipeline.definitions import build_checks
from llm_pipeline.pipeline.assets.documents import raw_documents
from llm_pipeline.pipeline.checks import allowed_values_verdict, coverage_verdict, error_rate_verdict
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import ParquetIOManager, PartitionTable
from llm_pipeline.pipeline.partitions import daily_backfill_policy, daily_partitions
from llm_pipeline.warehouse.tables import SCHEMAS, make_row

DAY = "2026-11-20"


@pytest.mark.parametrize(
    ("expected", "actual", "passed", "counts"),
    [
        (["a", "b", "c"], ["c", "a", "b"], True, (0, 0, 0)),
        ([], [], True, (0, 0, 0)),
        (["a", "b", "c"], ["a", "b"], False, (1, 0, 0)),
        (["a", "b"], ["a", "b", "z"], False, (0, 1, 0)),
        (["a", "b"], ["a", "b", "b"], False, (0, 0, 1)),
        (["a", "b", "c"], ["a", "a", "x"], False, (2, 1, 1)),
    ],
)
def test_coverage_verdict(
    expected: list[str], actual: list[str], passed: bool, counts: tuple[int, int, int]
) -> None:
    result = coverage_verdict(expected, actual)
    assert result.passed is passed
    metadata = result.metadata
    assert (metadata["missing"].value, metadata["extra"].value, metadata["duplicated"].value) == counts
    assert (metadata["expected_documents"].value, metadata["rows"].value) == (len(set(expected)), len(actual))


def test_coverage_verdict_names_the_ids_capped_to_a_sample() -> None:
    result = coverage_verdict([f"d{i:03d}" for i in range(100)], ["d000", "d000", "ghost"])
    assert result.metadata["missing"].value == 99
    assert result.metadata["missing_sample"].value == [f"d{i:03d}" for i in range(1, 21)]
    assert result.metadata["extra_sample"].value == ["ghost"]
    assert result.metadata["duplicated_sample"].value == ["d000"]


@pytest.mark.parametrize(
    ("statuses", "max_rate", "passed", "rate"),
    [
        (["ok"] * 95 + ["error"] * 5, 0.05, True, 0.05),
        (["ok"] * 94 + ["error"] * 6, 0.05, False, 0.06),
        (["ok"] * 10 + ["error"] + ["rejected"] * 50 + ["skipped"] * 50, 0.1, True, 1 / 11),
        (["rejected", "skipped"], 0.0, True, 0.0),
        ([], 0.0, True, 0.0),
        (["error"], 0.0, False, 1.0),
        (["ok"], 0.0, True, 0.0),
    ],
)
def test_error_rate_verdict_counts_only_attempted_documents(
    statuses: list[str], max_rate: float, passed: bool, rate: float
) -> None:
    result = error_rate_verdict(statuses, max_rate)
    assert result.passed is passed
    assert result.metadata["error_rate"].value == pytest.approx(rate, abs=1e-6)
    assert result.metadata["max_error_rate"].value == max_rate


TAXONOMY = ("technical", "business", "research", "other")


@pytest.mark.parametrize(
    ("rows", "passed", "outside", "unlabelled"),
    [
        ([("ok", "technical"), ("ok", "other")], True, 0, 0),
        ([("ok", "technical"), ("error", None), ("rejected", None), ("skipped", None)], True, 0, 0),
        ([("ok", "hacked"), ("ok", "business")], False, 1, 0),
        ([("error", "hacked")], False, 1, 0),  # no injected label anywhere in the table
        ([("ok", None)], False, 0, 1),
        ([("ok", "Technical")], False, 1, 0),  # labels are exact
    ],
)
def test_allowed_values_verdict(
    rows: list[tuple[str, str | None]], passed: bool, outside: int, unlabelled: int
) -> None:
    result = allowed_values_verdict(rows, TAXONOMY)
    assert result.passed is passed
    assert (result.metadata["outside_allowed"].value, result.metadata["ok_rows_without_value"].value) == (
        outside,
        unlabelled,
    )
    assert result.metadata["allowed"].value == list(TAXONOMY)


# --- the wrappers, in real partitioned runs ------------------------------------------------------

RowsFn = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _stand_in(name: str, upstream: str, rows_fn: RowsFn) -> dg.AssetsDefinition:
    """A hand-made LLM table: rows derived from its upstream partition by `rows_fn`."""

    @dg.asset(
        name=name,
        partitions_def=daily_partitions,
        backfill_policy=daily_backfill_policy,
        ins={"upstream": dg.AssetIn(upstream)},
    )
    def stand_in(upstream: PartitionTable) -> pd.DataFrame:
        rows = [row for batch in upstream.iter_batches(columns=["doc_id", "status"]) for row in batch]
        return pd.DataFrame(
            [make_row(SCHEMAS[name], **values) for values in rows_fn(rows)], columns=SCHEMAS[name].names
        )

    return stand_in


def _same(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"doc_id": r["doc_id"], "status": r["status"]} for r in rows]


def _labelled(label: str) -> RowsFn:
    return lambda rows: [{**r, "label": label if r["status"] == "ok" else None} for r in _same(rows)]


def _report(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "included": r["status"] == "ok"} for r in _same(rows)]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = [f'{{"id": "d{i}", "text": "document {i}"}}' for i in range(6)] + ["not json"]
    (raw / f"{DAY}.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("LLM_PIPELINE_DATA_DIR", str(tmp_path))
    return tmp_path


def _run(
    assets: list[dg.AssetsDefinition], config: PipelineConfig | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_documents, *assets, *build_checks(assets)],
        partition_key=DAY,
        resources={"io_manager": ParquetIOManager(), "pipeline_config": config or PipelineConfig()},
        raise_on_error=False,
    )


def _verdicts(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def test_build_checks_targets_only_the_llm_tables_present() -> None:
    entities = _stand_in("extracted_entities", "raw_documents", _same)
    assert build_checks([raw_documents]) == []
    names = {
        (key.asset_key.to_user_string(), key.name) for c in build_checks([entities]) for key in c.check_keys
    }
    assert names == {("extracted_entities", "every_document_once"), ("extracted_entities", "error_rate")}
    spec = dg.AssetSpec("classifications", partitions_def=daily_partitions)
    assert {key.name for c in build_checks([spec]) for key in c.check_keys} == {
        "every_document_once",
        "error_rate",
        "labels_in_taxonomy",
    }


def test_a_complete_chain_passes_every_check(data_dir: Path) -> None:
    result = _run(
        [
            _stand_in("extracted_entities", "raw_documents", _same),
            _stand_in("classifications", "extracted_entities", _labelled("business")),
            _stand_in("corpus_report", "classifications", _report),
        ]
    )
    assert result.success
    verdicts = _verdicts(result)
    assert len(verdicts) == 7
    assert all(v.passed for v in verdicts.values())
    coverage = verdicts[("corpus_report", "every_document_once")].metadata
    assert (coverage["expected_documents"].value, coverage["rows"].value) == (7, 7)
    assert verdicts[("classifications", "error_rate")].metadata["rejected"].value == 1


def test_a_lost_row_fails_the_blocking_check_and_stops_downstream(data_dir: Path) -> None:
    def lose_one_double_one(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = _same(rows)[1:]
        return [*kept, kept[0]]

    result = _run(
        [
            _stand_in("extracted_entities", "raw_documents", lose_one_double_one),
            _stand_in("classifications", "extracted_entities", _labelled("business")),
        ]
    )
    coverage = _verdicts(result)[("extracted_entities", "every_document_once")]
    assert not coverage.passed
    assert coverage.metadata["missing_sample"].value == ["d0"]
    assert coverage.metadata["duplicated_sample"].value == ["d1"]
    assert not result.success
    assert not result.asset_materializations_for_node("classifications")  # blocked


def test_error_rate_and_taxonomy_checks_fail_with_their_numbers(data_dir: Path) -> None:
    def mostly_errors(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = _same(rows)
        for row in out[:2]:
            row["status"] = "error"
        return out

    result = _run(
        [
            _stand_in("extracted_entities", "raw_documents", mostly_errors),
            _stand_in("classifications", "raw_documents", _labelled("hacked")),
        ],
        PipelineConfig(max_error_rate=0.25),
    )
    verdicts = _verdicts(result)
    rate = verdicts[("extracted_entities", "error_rate")]
    assert not rate.passed
    assert (rate.metadata["errors"].value, rate.metadata["attempted"].value) == (2, 6)
    assert rate.metadata["max_error_rate"].value == 0.25
    labels = verdicts[("classifications", "labels_in_taxonomy")]
    assert not labels.passed
    assert labels.metadata["unknown_values"].value == {"hacked": 6}
    assert verdicts[("classifications", "every_document_once")].passed
