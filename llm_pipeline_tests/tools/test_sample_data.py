"""The sample generator: deterministic bytes, realistic variety, one bad line of each kind."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from llm_pipeline.tools.sample_data import DEFAULT_DAYS, INJECTION, generate_day, main, write_day
from llm_pipeline.warehouse.documents import parse_lines

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 20)


def _digest(day: date, n: int, seed: int, bad_lines: bool = True) -> str:
    return hashlib.sha256(b"".join(generate_day(day, n, seed=seed, bad_lines=bad_lines))).hexdigest()


def test_same_arguments_give_the_same_bytes_and_other_seeds_or_days_do_not() -> None:
    assert _digest(DAY, 200, seed=7) == _digest(DAY, 200, seed=7)
    assert _digest(DAY, 200, seed=7) != _digest(DAY, 200, seed=8)
    assert _digest(DAY, 200, seed=7) != _digest(date(2026, 11, 21), 200, seed=7)


@pytest.mark.parametrize("day", DEFAULT_DAYS)
def test_committed_sample_days_are_what_the_generator_writes(day: date, tmp_path: Path) -> None:
    committed = REPO / "data" / "raw" / f"{day.isoformat()}.jsonl"
    main(["--out-dir", str(tmp_path), "--start", DEFAULT_DAYS[0].isoformat()])
    assert (tmp_path / committed.name).read_bytes() == committed.read_bytes()


@pytest.mark.parametrize("day", DEFAULT_DAYS)
def test_sample_days_hold_one_bad_line_of_each_kind_and_300_good_documents(day: date) -> None:
    docs = list(parse_lines((REPO / "data" / "raw" / f"{day.isoformat()}.jsonl").open("rb")))
    ok = [d for d in docs if d.status == "ok"]
    assert len(ok) >= 300
    assert Counter(d.reason for d in docs if d.status == "rejected") == {
        "not_json": 1,
        "missing_id": 1,
        "invalid_id": 1,
        "invalid_text": 1,
        "empty_text": 2,  # one empty, one whitespace only
        "duplicate_id": 1,
    }
    assert Counter(flag for d in ok for flag in d.flags) == {
        "invalid_utf8": 1,
        "truncated": 1,
        "invalid_unicode": 2,  # a lone surrogate in a text (and a metadata value), one in an id
        "metadata_truncated": 1,
    }
    assert sum(INJECTION in (d.text or "") for d in ok) == 1


def test_documents_vary_in_length_topic_script_and_metadata() -> None:
    docs = [d for d in parse_lines(generate_day(DAY, 400, seed=3)) if d.status == "ok"]
    lengths = [d.char_count or 0 for d in docs]
    assert min(lengths) < 200
    assert sum(length > 3000 for length in lengths) >= 10
    corpus = "\n".join(d.text or "" for d in docs)
    for script, pattern in {
        "accents": "[éèüöøñ]",
        "cjk": "[\u4e00-\u9fff\u30a0-\u30ff]",
        "arabic": "[\u0600-\u06ff]",
        "hebrew": "[\u0590-\u05ff]",
        "emoji": "[\U0001f300-\U0001faff]",
    }.items():
        assert re.search(pattern, corpus), script
    metadata = [json.loads(d.metadata) for d in docs]
    assert all({"source", "author", "lang", "published_at"} <= set(m) for m in metadata)
    assert len({m["lang"] for m in metadata}) >= 4
    for word in ("revenue", "outage", "study", "recipe"):  # one marker per topic family
        assert word in corpus


def test_without_bad_lines_every_line_is_a_valid_document() -> None:
    lines = list(generate_day(DAY, 50, seed=1, bad_lines=False))
    assert len(lines) == 50
    docs = list(parse_lines(lines))
    assert all(d.status == "ok" and not d.flags for d in docs)
    assert len({d.doc_id for d in docs}) == 50


@pytest.mark.parametrize(("n", "bad_lines"), [(10, True), (-1, False)])
def test_too_few_lines_is_an_error(n: int, bad_lines: bool) -> None:
    with pytest.raises(ValueError, match="too small"):
        list(generate_day(DAY, n, seed=1, bad_lines=bad_lines))


def test_write_day_creates_the_directory_and_one_line_per_document(tmp_path: Path) -> None:
    path = write_day(tmp_path / "raw" / "2026-12-01.jsonl", date(2026, 12, 1), 25, seed=2)
    assert path.read_bytes().count(b"\n") == 25
