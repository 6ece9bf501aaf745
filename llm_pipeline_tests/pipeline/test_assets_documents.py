"""raw_documents materialized in-process: exact Parquet path, one row per line, reasons, metadata."""

import json
import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from llm_pipeline.pipeline.assets.documents import raw_documents
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import ParquetIOManager
from llm_pipeline.warehouse.tables import RAW_DOCUMENTS

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-11-20"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir named by LLM_PIPELINE_DATA_DIR, as a real run would see it."""
    (tmp_path / "raw").mkdir()
    monkeypatch.setenv("LLM_PIPELINE_DATA_DIR", str(tmp_path))
    return tmp_path


def _materialize(config: PipelineConfig | None = None, partition: str = DAY) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_documents],
        partition_key=partition,
        resources={"io_manager": ParquetIOManager(), "pipeline_config": config or PipelineConfig()},
    )


def _output(data_dir: Path, partition: str = DAY) -> list[dict[str, object]]:
    table = pq.read_table(data_dir / "warehouse" / "raw_documents" / f"{partition}.parquet")
    assert table.schema == RAW_DOCUMENTS
    return table.to_pylist()


def test_a_sample_day_becomes_one_row_per_line_with_reasons(data_dir: Path) -> None:
    source = REPO / "data" / "raw" / f"{DAY}.jsonl"
    shutil.copy(source, data_dir / "raw" / f"{DAY}.jsonl")
    result = _materialize()

    rows = _output(data_dir)
    lines = source.read_bytes().splitlines()
    assert len(rows) == len(lines) == 320
    assert [r["line_no"] for r in rows] == list(range(1, 321))
    assert len({r["doc_id"] for r in rows}) == 320
    rejected = [r for r in rows if r["status"] == "rejected"]
    assert len(rejected) == 7
    assert all(str(r["error"]).startswith(f"line {r['line_no']}: ") for r in rejected)
    assert sum("truncated" in r["flags"] for r in rows) == 1
    assert sum("invalid_utf8" in r["flags"] for r in rows) == 1
    assert sum("invalid_unicode" in r["flags"] for r in rows) == 2, "repaired lone surrogates (issue 14)"
    assert "\ufffd" in next(
        r["doc_id"] for r in rows if "invalid_unicode" in r["flags"] and r["doc_id"] != r["source_id"]
    )
    assert all(len(str(r["text"])) <= 20_000 for r in rows if r["text"] is not None)
    assert {"source", "author", "lang", "published_at"} <= set(json.loads(str(rows[0]["metadata"])))

    metadata = result.asset_materializations_for_node("raw_documents")[0].metadata
    assert metadata["row_count"] == dg.IntMetadataValue(320)
    assert metadata["ok"] == dg.IntMetadataValue(313)
    assert metadata["rejected"] == dg.IntMetadataValue(7)
    assert metadata["reasons"].value == {
        "duplicate_id": 1,
        "empty_text": 2,
        "invalid_id": 1,
        "invalid_text": 1,
        "missing_id": 1,
        "not_json": 1,
    }
    assert metadata["flags"].value == {
        "invalid_unicode": 2,
        "invalid_utf8": 1,
        "metadata_truncated": 1,
        "truncated": 1,
    }
    assert metadata["path"] == dg.MetadataValue.path(
        str(data_dir / "warehouse" / "raw_documents" / f"{DAY}.parquet")
    )
    preview = metadata["preview"].value
    assert preview.startswith("| line_no | doc_id | status |")
    assert "rejected" in preview


def test_a_missing_input_file_fails_naming_the_path(data_dir: Path) -> None:
    with pytest.raises(dg.Failure) as info:
        _materialize(partition="2026-11-23")
    assert str(data_dir / "raw" / "2026-11-23.jsonl") in (info.value.description or "")
    assert not (data_dir / "warehouse").exists()


def test_an_entirely_bad_file_gives_a_partition_of_rejected_rows(data_dir: Path) -> None:
    (data_dir / "raw" / f"{DAY}.jsonl").write_bytes(
        b'not json\n{"id": 1}\n\xff\xfe\n[]\n{"id": "a", "text": " "}\n'
    )
    result = _materialize()
    rows = _output(data_dir)
    assert [r["status"] for r in rows] == ["rejected"] * 5
    assert [r["doc_id"] for r in rows] == ["line-1", "line-2", "line-3", "line-4", "a"]
    assert result.asset_materializations_for_node("raw_documents")[0].metadata["ok"] == dg.IntMetadataValue(0)


def test_an_empty_file_gives_an_empty_table_with_the_right_columns(data_dir: Path) -> None:
    (data_dir / "raw" / f"{DAY}.jsonl").write_bytes(b"")
    _materialize()
    assert _output(data_dir) == []


def test_max_doc_chars_from_config_truncates_and_flags(data_dir: Path) -> None:
    (data_dir / "raw" / f"{DAY}.jsonl").write_text(
        '{"id": "a", "text": "0123456789abc"}\n{"id": "b", "text": "short"}\n'
    )
    _materialize(PipelineConfig(max_doc_chars=10))
    rows = _output(data_dir)
    assert [(r["text"], r["char_count"], r["flags"]) for r in rows] == [
        ("0123456789", 13, ["truncated"]),
        ("short", 5, []),
    ]


def test_rematerializing_replaces_the_partition(data_dir: Path) -> None:
    raw = data_dir / "raw" / f"{DAY}.jsonl"
    raw.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n')
    _materialize()
    raw.write_text('{"id": "c", "text": "z"}\n')
    _materialize()
    assert [r["doc_id"] for r in _output(data_dir)] == ["c"]
    assert sorted(p.name for p in (data_dir / "warehouse" / "raw_documents").iterdir()) == [f"{DAY}.parquet"]
