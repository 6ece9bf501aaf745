"""Input validation: one row per line, a reason per rejection, nothing lost or silently changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_pipeline.warehouse.documents import (
    MAX_METADATA_CHARS,
    MAX_METADATA_VALUE_CHARS,
    ParsedDocument,
    parse_lines,
    read_documents,
)


def _line(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def _one(raw: bytes, max_chars: int = 100) -> ParsedDocument:
    (doc,) = parse_lines([raw], max_chars=max_chars)
    return doc


@pytest.mark.parametrize(
    ("raw", "reason", "error_part"),
    [
        (b"{not json\n", "not_json", "line 1: not valid JSON"),
        (b'{"id": "a", "text": "x"\n', "not_json", "at column"),
        (
            b'{"id": "a", "text": "x", "n": ' + b"9" * 5000 + b"}",
            "not_json",
            "JSON the parser refuses (ValueError",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "not_json", "JSON the parser refuses (RecursionError"),
        (b"\n", "empty_line", "line 1: empty line"),
        (b"   \t\n", "empty_line", "empty line"),
        (b'["id", "text"]\n', "not_object", "expected a JSON object, got array"),
        (b'"just a string"\n', "not_object", "got string"),
        (_line({"text": "hello"}), "missing_id", "missing 'id'"),
        (_line({"id": 42, "text": "hello"}), "invalid_id", "'id' must be a string, got number"),
        (_line({"id": None, "text": "hello"}), "invalid_id", "got null"),
        (_line({"id": "  ", "text": "hello"}), "invalid_id", "'id' is empty"),
        (_line({"id": "a"}), "missing_text", "missing 'text'"),
        (_line({"id": "a", "text": ["x"]}), "invalid_text", "'text' must be a string, got array"),
        (_line({"id": "a", "text": 3.5}), "invalid_text", "got number"),
        (_line({"id": "a", "text": ""}), "empty_text", "empty or whitespace only"),
        (_line({"id": "a", "text": " \n\t "}), "empty_text", "empty or whitespace only"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason(raw: bytes, reason: str, error_part: str) -> None:
    doc = _one(raw)
    assert doc.status == "rejected"
    assert doc.reason == reason
    assert doc.error is not None
    assert doc.error.startswith("line 1: ")
    assert error_part in doc.error


@pytest.mark.parametrize(
    ("raw", "doc_id", "source_id"),
    [
        (b"{not json\n", "line-1", None),
        (_line({"text": "hello"}), "line-1", None),
        (_line({"id": 42, "text": "hello"}), "line-1", "42"),
        (_line({"id": {"x": 1}, "text": "hello"}), "line-1", '{"x": 1}'),
        # A valid id is kept even when the text is bad: it is still unique.
        (_line({"id": "keep-me", "text": ""}), "keep-me", "keep-me"),
    ],
)
def test_rejected_rows_get_a_unique_doc_id_and_keep_the_original(
    raw: bytes, doc_id: str, source_id: str | None
) -> None:
    doc = _one(raw)
    assert (doc.doc_id, doc.source_id) == (doc_id, source_id)


def test_a_good_line_keeps_its_id_text_and_extra_keys_as_metadata() -> None:
    raw = _line({"id": "d1", "text": "Zoë met 東京 🚀 שלום", "source": "wire", "lang": "en", "n": 3})
    doc = _one(raw)
    assert doc.as_row() == {
        "doc_id": "d1",
        "source_id": "d1",
        "line_no": 1,
        "text": "Zoë met 東京 🚀 שלום",
        "char_count": 17,
        "status": "ok",
        "error": None,
        "flags": [],
        "metadata": '{"lang": "en", "n": 3, "source": "wire"}',
    }


def test_duplicate_ids_first_wins_later_ones_rejected_with_synthetic_ids() -> None:
    lines = [
        _line({"id": "a", "text": "first"}),
        _line({"id": "b", "text": "b"}),
        _line({"id": "a", "text": "2nd"}),
    ]
    docs = list(parse_lines(lines))
    assert [(d.doc_id, d.status) for d in docs] == [("a", "ok"), ("b", "ok"), ("line-3", "rejected")]
    assert docs[2].source_id == "a"
    assert docs[2].reason == "duplicate_id"
    assert docs[2].error == "line 3: duplicate id 'a' (first used by line 1)"


def test_a_rejected_line_with_a_valid_id_claims_it() -> None:
    docs = list(parse_lines([_line({"id": "a", "text": ""}), _line({"id": "a", "text": "now fine"})]))
    assert [(d.doc_id, d.reason) for d in docs] == [("a", "empty_text"), ("line-2", "duplicate_id")]


def test_synthetic_ids_never_collide_with_real_ids() -> None:
    lines = [
        _line({"id": "line-2", "text": "a real id that looks synthetic"}),
        b"oops\n",
        _line({"text": "x"}),
    ]
    docs = list(parse_lines(lines))
    ids = [d.doc_id for d in docs]
    assert ids == ["line-2", "line-2-2", "line-3"]
    assert len(set(ids)) == len(ids)


def test_a_real_id_equal_to_an_earlier_synthetic_id_is_a_duplicate() -> None:
    docs = list(parse_lines([b"oops\n", _line({"id": "line-1", "text": "x"})]))
    assert [d.doc_id for d in docs] == ["line-1", "line-2"]
    assert docs[1].reason == "duplicate_id"


def test_invalid_utf8_is_replaced_flagged_and_still_processed() -> None:
    raw = b'{"id": "u", "text": "caf\xe9 cr\xff\xfeme"}\n'
    doc = _one(raw)
    assert doc.status == "ok"
    assert doc.flags == ("invalid_utf8",)
    assert doc.text == "caf\ufffd cr\ufffd\ufffdme"


def test_invalid_utf8_on_a_rejected_line_is_flagged_too() -> None:
    doc = _one(b"\xff\xfe not json\n")
    assert (doc.status, doc.reason, doc.flags) == ("rejected", "not_json", ("invalid_utf8",))


@pytest.mark.parametrize(
    ("length", "max_chars", "flags", "stored"),
    [(10, 10, (), 10), (11, 10, ("truncated",), 10), (5000, 100, ("truncated",), 100), (1, 1, (), 1)],
)
def test_long_text_is_truncated_and_flagged_never_silently(
    length: int, max_chars: int, flags: tuple[str, ...], stored: int
) -> None:
    doc = _one(_line({"id": "long", "text": "é" * length}), max_chars=max_chars)
    assert doc.status == "ok"
    assert doc.flags == flags
    assert len(doc.text or "") == stored
    assert doc.char_count == length  # the original length: the cut shows in the table


def test_truncated_and_invalid_utf8_flags_combine() -> None:
    doc = _one(b'{"id": "x", "text": "\xff' + b"a" * 50 + b'"}', max_chars=10)
    assert doc.flags == ("invalid_utf8", "truncated")


def test_a_byte_order_mark_on_the_first_line_is_ignored() -> None:
    assert _one(b"\xef\xbb\xbf" + _line({"id": "bom", "text": "x"})).status == "ok"


@pytest.mark.parametrize("max_chars", [0, -5])
def test_max_chars_must_be_positive(max_chars: int) -> None:
    with pytest.raises(ValueError, match="max_chars"):
        list(parse_lines([], max_chars=max_chars))


def test_every_line_gives_exactly_one_row_in_order_with_line_numbers() -> None:
    lines = [_line({"id": str(i), "text": f"doc {i}"}) for i in range(5)] + [b"bad\n", b"\n"]
    docs = list(parse_lines(lines))
    assert [d.line_no for d in docs] == [1, 2, 3, 4, 5, 6, 7]
    assert [d.status for d in docs] == ["ok"] * 5 + ["rejected"] * 2


def test_read_documents_streams_a_file_read_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    path.write_bytes(_line({"id": "a", "text": "x"}) + b"\xff\n" + _line({"id": "b", "text": "y"}))
    docs = list(read_documents(path, max_chars=50))
    assert [(d.doc_id, d.status) for d in docs] == [("a", "ok"), ("line-2", "rejected"), ("b", "ok")]


def test_an_empty_file_gives_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert list(read_documents(path)) == []


@pytest.mark.parametrize(
    ("raw", "doc_id", "source_id", "text", "metadata"),
    [
        (b'{"id": "s", "text": "a\\ud800b"}', "s", "s", "a\ufffdb", {}),  # the issue's line
        (b'{"id": "x\\udc00y", "text": "ok"}', "x\ufffdy", '"x\\udc00y"', "ok", {}),
        (b'{"id": "m", "text": "ok", "k\\ud800": ["v\\udfff", {"n": "\\ud801"}]}', "m", "m", "ok",
         {"k\ufffd": ["v\ufffd", {"n": "\ufffd"}]}),
    ],
)  # fmt: skip
def test_lone_surrogates_are_repaired_and_flagged_so_the_row_can_be_written(
    raw: bytes, doc_id: str, source_id: str, text: str, metadata: dict
) -> None:
    """Regression (issue 14): `{"id":"s","text":"a\\ud800b"}` is valid JSON, passed as ok, and the
    partition then failed to write ("UnicodeEncodeError: ... surrogates not allowed"): a day lost."""
    doc = _one(raw)
    assert (doc.status, doc.doc_id, doc.source_id, doc.text) == ("ok", doc_id, source_id, text)
    assert doc.flags == ("invalid_unicode",)
    assert json.loads(doc.metadata) == metadata
    for value in doc.as_row().values():
        if isinstance(value, str):
            value.encode("utf-8")  # every column can be written


def test_a_valid_surrogate_pair_is_an_ordinary_character_not_a_repair() -> None:
    doc = _one(b'{"id": "e", "text": "smile \\ud83d\\ude00"}')
    assert (doc.text, doc.flags) == ("smile \U0001f600", ())


def test_metadata_values_and_the_whole_metadata_are_size_capped_and_flagged() -> None:
    doc = _one(_line({"id": "a", "text": "t", "blob": "x" * 50_000, "nested": list(range(5_000))}))
    assert doc.status == "ok"
    assert doc.flags == ("metadata_truncated",)
    metadata = json.loads(doc.metadata)
    assert len(metadata["blob"]) == MAX_METADATA_VALUE_CHARS
    assert metadata["blob"].endswith("…")
    assert isinstance(metadata["nested"], str), "an oversized structure is kept as its cut JSON text"
    many = _one(_line({"id": "b", "text": "t", **{f"key{i:03d}": "v" * 900 for i in range(40)}}))
    assert many.flags == ("metadata_truncated",)
    assert len(many.metadata) <= MAX_METADATA_CHARS
    assert 0 < len(json.loads(many.metadata)) < 40, "keys past the total cap are dropped"
    small = _one(_line({"id": "c", "text": "t", "source": "wire"}))
    assert (small.flags, json.loads(small.metadata)) == ((), {"source": "wire"})
