"""The line reader: whole lines, exact line numbers, the file's sha256, whatever the chunk size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from helpers import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from costlens.errors import InputError
from costlens.ingest.jsonl import FileDigest, read_line_chunks


def read_all(
    path: Path, chunk_bytes: int
) -> tuple[list[tuple[int, str]], list[tuple[int, str]], FileDigest, int]:
    digest = FileDigest()
    lines: list[tuple[int, str]] = []
    bad: list[tuple[int, str]] = []
    chunks = 0
    for chunk in read_line_chunks(path, digest, chunk_bytes=chunk_bytes):
        chunks += 1
        lines += zip(
            chunk.table.column("line_no").to_pylist(), chunk.table.column("line").to_pylist(), strict=True
        )
        bad += chunk.bad_utf8
    return lines, bad, digest, chunks


def test_empty_file_has_no_lines_and_the_empty_sha256(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    lines, bad, digest, chunks = read_all(path, 64)
    assert (lines, bad, chunks, digest.lines, digest.bytes) == ([], [], 0, 0, 0)
    assert digest.sha256 == hashlib.sha256(b"").hexdigest()


def test_byte_order_mark_is_not_part_of_line_one_but_is_hashed(tmp_path):
    data = b'\xef\xbb\xbf{"a": 1}\n{"b": 2}\n'
    path = tmp_path / "bom.jsonl"
    path.write_bytes(data)
    lines, _, digest, _ = read_all(path, 1 << 20)
    assert lines == [(1, '{"a": 1}\n'), (2, '{"b": 2}\n')]
    assert digest.sha256 == hashlib.sha256(data).hexdigest()


def test_a_line_longer_than_a_chunk_is_read_whole(tmp_path):
    long_line = '{"x": "' + "y" * 5000 + '"}'
    path = tmp_path / "long.jsonl"
    path.write_text(f'{{"a": 1}}\n{long_line}\n{{"b": 2}}', encoding="utf-8")
    lines, _, digest, chunks = read_all(path, 100)
    assert lines == [
        (1, '{"a": 1}\n'),
        (2, long_line + "\n"),
        (3, '{"b": 2}\n'),
    ]  # last line gets its newline
    assert chunks == 3
    assert digest.lines == 3
    assert digest.bytes == path.stat().st_size


def test_invalid_utf8_is_reported_by_line_and_the_other_lines_kept(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a": 1}\r\n{"b": "\xff"}\n{"c": 3}\n')
    lines, bad, _, _ = read_all(path, 1 << 20)
    # (a chunk holding a bad line is decoded line by line, without the newline)
    assert [(n, line.rstrip("\n")) for n, line in lines] == [(1, '{"a": 1}\r'), (3, '{"c": 3}')]
    assert bad == [(2, "not valid UTF-8 (byte 8 of the line)")]


@pytest.mark.parametrize("bad_utf8_too", [False, True])
def test_a_line_over_the_size_limit_is_rejected_with_its_length(tmp_path, monkeypatch, bad_utf8_too):
    """No parser sees it (a 50 MB line would cost many times its size to parse); it is hashed and counted."""
    monkeypatch.setenv("COSTLENS_MAX_LINE_BYTES", "64")
    path = tmp_path / "big.jsonl"
    big = '{"x": "' + "y" * 100 + '"}'
    path.write_bytes(
        b'{"a": 1}\n' + big.encode() + b"\n" + (b'{"b": "\xff"}\n' if bad_utf8_too else b"") + b'{"c": 3}\n'
    )
    lines, bad, digest, _ = read_all(path, 1 << 20)
    assert [n for n, _ in lines] == [1, 4 if bad_utf8_too else 3]
    assert bad[0] == (2, "line is 109 bytes, over the 64-byte limit per line (COSTLENS_MAX_LINE_BYTES)")
    assert digest.lines == (4 if bad_utf8_too else 3) and digest.bytes == path.stat().st_size


def test_a_bad_line_size_limit_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTLENS_MAX_LINE_BYTES", "lots")
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n', encoding="utf-8")
    with pytest.raises(InputError, match="COSTLENS_MAX_LINE_BYTES='lots'"):
        read_all(path, 1 << 20)


def test_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        list(read_line_chunks(tmp_path / "nope.jsonl", FileDigest()))


@settings(max_examples=examples(60))
@given(
    lines=st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\ufeff"), max_size=40),
        max_size=30,
    ),
    final_newline=st.booleans(),
    chunk_bytes=st.integers(min_value=1, max_value=300),
)
def test_any_file_comes_back_line_for_line(tmp_path_factory, lines, final_newline, chunk_bytes):
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    data = text.encode("utf-8")
    path = tmp_path_factory.mktemp("any") / "f.jsonl"
    path.write_bytes(data)
    got, bad, digest, _ = read_all(path, chunk_bytes)
    # Every line comes back with a newline, the last one too (JSON allows the whitespace).
    expected = [line + "\n" for line in text.split("\n")]
    if text.endswith("\n") or not text:
        expected = expected[:-1]
    assert bad == []
    assert [n for n, _ in got] == list(range(1, len(expected) + 1))
    assert [line for _, line in got] == expected
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert (digest.lines, digest.bytes) == (len(expected), len(data))
