"""Replay's memory stays bounded by a few chunks, whatever the file's size.

One file is one transaction, so anything a chunk leaves behind in it lives until COMMIT: a 5M-line
replay once peaked at 3 GB because every staged chunk's Arrow table stayed alive (it was reached
through ``conn.register``, a temporary view whose drop is undone only at the transaction's end).
These tests measure what is still held of earlier chunks (staged tables' bytes, read chunks) while
later ones are handed over, and check the connection's own buffer pool is capped; none is timed.
"""

from __future__ import annotations

import gc
import re
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from costlens.ingest import replay as replay_module
from costlens.ingest.jsonl import FileDigest, read_line_chunks
from costlens.ingest.replay import ReplayOptions, replay_files

# A staged chunk still referenced by the loop that inserts it while the next one is handed over.
STAGED_ALIVE = 1
LINES = 200
CHUNK_BYTES = 4096


class Alive:
    """Weak references to what a generator yields; how many of the earlier ones are still alive."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[Any]] = []
        self.most = 0

    def track(self, obj: Any) -> None:
        gc.collect()
        self.most = max(self.most, sum(ref() is not None for ref in self.refs))
        self.refs.append(weakref.ref(obj))


class Held:
    """Staged tables copied into a memory pool of their own: its bytes are what is still held of them.

    The bytes, not weak references to the tables: DuckDB keeps a registered table's buffers, not its
    Python object.
    """

    def __init__(self) -> None:
        self.pool = pa.proxy_memory_pool(pa.default_memory_pool())
        self.chunks = 0
        self.largest = 0
        self.most_held = 0  # bytes of earlier chunks still held when the next one is handed over

    def copy(self, table: pa.Table) -> pa.Table:
        gc.collect()
        self.most_held = max(self.most_held, self.pool.bytes_allocated())
        before = self.pool.bytes_allocated()
        copied = pc.take(table, pa.array(range(table.num_rows)), memory_pool=self.pool)
        self.largest = max(self.largest, self.pool.bytes_allocated() - before)
        self.chunks += 1
        return copied


def _batch_lines(n: int, lines: Any) -> list[dict[str, Any]]:
    records = [lines.openai(f"r-{i}", usage={"prompt_tokens": i, "completion_tokens": 1}) for i in range(n)]
    records[7] = lines.anthropic("a-7")  # a line the fast path leaves to the full statement
    records[11] = b"not json"  # and a reject
    return records


@pytest.fixture
def big_file(jsonl, lines) -> Path:
    path = jsonl("out.jsonl", _batch_lines(LINES, lines))
    assert len(list(read_line_chunks(path, FileDigest(), chunk_bytes=CHUNK_BYTES))) >= 20
    return path


@pytest.fixture
def requests_file(jsonl) -> Path:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    return jsonl(
        "input.jsonl",
        [
            {"custom_id": f"r-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
            for i in range(LINES)
        ],
    )


@pytest.mark.parametrize("joined", [False, True], ids=["plain", "requests-and-content"])
def test_chunks_are_freed_as_they_are_inserted(session, query, monkeypatch, big_file, requests_file, joined):
    staged, read = Held(), Alive()
    stage_chunks, read_chunks = replay_module._staged_chunks, replay_module.read_line_chunks

    def tracked_staged(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for chunk in stage_chunks(*args, **kwargs):
            if chunk.table is not None:
                chunk.table = staged.copy(chunk.table)
            yield chunk

    def tracked_read(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for chunk in read_chunks(*args, **kwargs):
            read.track(chunk.table)
            yield chunk

    monkeypatch.setattr(replay_module, "_staged_chunks", tracked_staged)
    monkeypatch.setattr(replay_module, "read_line_chunks", tracked_read)
    options = ReplayOptions(
        files=[big_file],
        chunk_bytes=CHUNK_BYTES,
        requests_file=requests_file if joined else None,
        store_content=joined,
    )
    (result,) = replay_files(session.conn, options).results

    assert staged.chunks >= 20 and len(read.refs) >= 20
    # Only the chunk just inserted is still held when the next one comes; not every earlier one.
    assert 0 < staged.most_held <= STAGED_ALIVE * staged.largest
    # Read ahead: each worker's chunk, plus those waiting for their turn to be inserted.
    assert read.most <= replay_module._WORKERS + replay_module._READ_AHEAD
    # Nothing lost on the way: every line stored or rejected, with its reason.
    assert (result.lines_read, result.stored, result.rejected) == (LINES, LINES - 1, 1)
    assert [(r.line_no, r.reason) for r in result.rejects] == [
        (12, "invalid JSON: Expecting value (column 1)")
    ]
    assert query(
        "SELECT source_format, count(*) AS n, sum(prompt_tokens) AS p FROM results GROUP BY 1 ORDER BY 1"
    ) == [
        {"source_format": "anthropic_batch", "n": 1, "p": 11},
        {"source_format": "openai_batch", "n": LINES - 2, "p": sum(range(LINES)) - 7 - 11},
    ]
    if joined:
        assert query("SELECT count(*) AS n FROM request_params") == [{"n": LINES - 2}]
        assert query("SELECT count(*) AS n FROM result_details") == [{"n": LINES - 1}]


_UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def _bytes(setting: str) -> float:
    match = re.fullmatch(r"([\d.]+) ?([KMGT]i?B)", setting.strip())
    assert match, setting
    return float(match.group(1)) * _UNITS[match.group(2)]


def test_the_store_caps_duckdb_memory_so_a_replay_spills_instead(session):
    # DuckDB's own default is 80% of RAM: a big replay would never spill to disk.
    limit = session.conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert _bytes(limit) <= 2**30
