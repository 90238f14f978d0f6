"""The replay fast path gives exactly what the full staging query gives.

``ChunkStager`` sends plain OpenAI/vLLM success lines through a narrower
parse and leaves every other line to the full query, which states the rules.
Here both run over the same lines — hand-made edge cases and seeded random
mutations of a real-looking line — and must produce the same staged rows,
the same rejects with the same reasons, and the same split of lines.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from costlens.ingest.jsonl import FileDigest, read_line_chunks
from costlens.ingest.replay import ChunkStager, Staged, fast_filled_sql
from costlens.store.macros import install_macros

LEFT_OVER = "(left to the full query)"
StagedRows = tuple[list[dict[str, Any]], list[tuple[int, str, str]]]


def batch_line(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"vllm-{i}" if rng.random() < 0.2 else f"batch_req_{i}",
        "custom_id": f"request-{i}",
        "response": {
            "status_code": 200,
            "request_id": f"req_{i}",
            "body": {
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "created": 1730000000 + i,
                "model": rng.choice(["gpt-4o-2024-08-06", "gpt-4o-mini", "Qwen/Qwen2-7B"]),
                "choices": [
                    {
                        "index": k,
                        "message": {"role": "assistant", "content": f'answer {i}.{k} \u00e9\u2603 "q"'},
                        "logprobs": None,
                        "finish_reason": rng.choice(["stop", "length", "tool_calls"]),
                    }
                    for k in range(rng.choice([1, 1, 2]))
                ],
                "usage": {
                    "prompt_tokens": 600 + i,
                    "completion_tokens": 50 + i % 97,
                    "total_tokens": 650 + i + i % 97,
                    "prompt_tokens_details": {"cached_tokens": (i * 7) % 600, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": i % 50, "audio_tokens": 0},
                },
                "service_tier": rng.choice(["default", "flex", None]),
                "system_fingerprint": "fp_1",
            },
        },
        "error": None,
    }


# Values a JSON leaf can take that a cost tool must tell apart.
ODD_VALUES: list[Any] = [0, 5, -1, 1.5, 12.0, "12", 1e3, True, False, None, [], {}, 10**19, -0.0, "x"]
MISSING = object()

PATHS = [
    ("custom_id",),
    ("id",),
    ("error",),
    ("object",),
    ("result",),
    ("response",),
    ("response", "status_code"),
    ("response", "request_id"),
    ("response", "body"),
    ("response", "body", "error"),
    ("response", "body", "model"),
    ("response", "body", "created"),
    ("response", "body", "choices"),
    ("response", "body", "usage"),
    ("response", "body", "usage", "prompt_tokens"),
    ("response", "body", "usage", "completion_tokens"),
    ("response", "body", "usage", "total_tokens"),
    ("response", "body", "usage", "prompt_tokens_details"),
    ("response", "body", "usage", "prompt_tokens_details", "cached_tokens"),
    ("response", "body", "usage", "completion_tokens_details", "reasoning_tokens"),
    ("response", "body", "usage", "input_tokens"),
    ("response", "body", "usage", "output_tokens"),
    ("response", "body", "usage", "cache_read_input_tokens"),
    ("response", "body", "usage", "cache_creation_input_tokens"),
]
EXTRA_VALUES: dict[tuple[str, ...], list[Any]] = {
    ("error",): [{"code": "batch_expired", "message": "expired"}, "boom"],
    ("object",): ["chat.completion", "list"],
    ("result",): [{"type": "succeeded"}, {"type": None}],
    ("response", "status_code"): [201, 299, 300, 500, "200", 200.0, 2e2],
    ("response", "body", "error"): [{"message": "late error", "type": "server_error"}],
    ("response", "body", "created"): [99999999999, 1000000000000, "1730000000", 1.73e9],
    ("response", "body", "choices"): [[{"finish_reason": 3}], [{}], "none"],
    ("response", "body", "usage", "prompt_tokens"): [10**18 - 1, 10**18],
    ("response", "body", "usage", "total_tokens"): [10**18 - 1],
}


def mutate(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = copy.deepcopy(record)
    for _ in range(rng.choice([1, 1, 2, 3])):
        path = rng.choice(PATHS)
        value = rng.choice([*ODD_VALUES, *EXTRA_VALUES.get(path, []), MISSING])
        value = value if value is MISSING else copy.deepcopy(value)  # the lists are shared
        node: Any = out
        for key in path[:-1]:
            if not isinstance(node, dict):
                break
            node = node.setdefault(key, {})
        else:
            if isinstance(node, dict):
                if value is MISSING:
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = value
    return out


def hand_made(rng: random.Random) -> list[str]:
    base = batch_line(1, rng)
    usage = base["response"]["body"]["usage"]
    lines = [
        json.dumps(base),
        json.dumps(base, separators=(",", ":")),
        json.dumps(base, indent=None) + "  \r",
    ]
    over = copy.deepcopy(base)
    over["response"]["body"]["usage"]["prompt_tokens_details"]["cached_tokens"] = usage["prompt_tokens"] + 1
    lines.append(json.dumps(over))
    over = copy.deepcopy(base)
    over["response"]["body"]["usage"]["completion_tokens_details"]["reasoning_tokens"] = 10**6
    lines.append(json.dumps(over))
    # Every token count holding each value a typed parse could round, coerce or drop.
    counts = [
        ("prompt_tokens",),
        ("completion_tokens",),
        ("total_tokens",),
        ("prompt_tokens_details", "cached_tokens"),
        ("completion_tokens_details", "reasoning_tokens"),
        ("input_tokens",),
    ]
    for path in counts:
        for value in [{}, {"n": 1}, [], [1], False, True, None, "7", 7.0, 7e0, -0.0, -7, 10**19, 2**63]:
            odd = copy.deepcopy(base)
            node = odd["response"]["body"]["usage"]
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            lines.append(json.dumps(odd))
    lines += [
        "",
        "   ",
        "{not json",
        "[1, 2]",
        "42",
        "null",
        '{"custom_id": "only"}',
        json.dumps(base).replace('"request-1"', '"r\\u00e9-\\"1\\""'),
        json.dumps({**base, "custom_id": "dup"}),
        json.dumps({**base, "custom_id": "dup"}),
    ]
    return lines


def lines_for(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    made = hand_made(rng)
    out: list[str] = []
    for i in range(n):
        record = batch_line(i, rng)
        out.append(json.dumps(mutate(record, rng) if rng.random() < 0.3 else record))
        if i % 10 == 0 and made:  # spread out, so every chunk is mostly plain lines
            out.append(made.pop(0))
    return out + made


def stage_all(path: Path, *, fast: bool, store_content: bool, tier: str, chunk_bytes: int) -> StagedRows:
    conn = duckdb.connect()
    install_macros(conn)
    stager = ChunkStager(conn, tier=tier, store_content=store_content, fast=fast, pool_rows=40)
    tables: list[pa.Table] = []
    bad: list[tuple[int, str, str]] = []

    def keep(staged: list[Staged]) -> None:
        nonlocal bad
        for table, rejected, from_fast_path in staged:
            assert fast or not from_fast_path
            if from_fast_path:  # the columns the fast path leaves to the insert, as it fills them in
                filled = fast_filled_sql(from_fast_path, store_content=store_content)
                conn.register("cl_stage", table)
                table = conn.sql(filled, params={"tier": tier}).to_arrow_table()
                conn.unregister("cl_stage")
            tables.append(table)
            bad += rejected

    for chunk in read_line_chunks(path, FileDigest(), chunk_bytes=chunk_bytes):
        keep(stager.stage(chunk.table))
        if fast:
            assert stager.fast, "the fast path switched itself off on mostly plain lines"
    keep(stager.finish())
    conn.close()
    # A row the fast path did not take carries a reason (so no loader stores
    # it) and is staged again, by the full query, among the pooled lines.
    rows = [row for table in tables for row in table.to_pylist() if row["reason"] != LEFT_OVER]
    return sorted(rows, key=lambda r: r["line_no"]), sorted(bad)


@pytest.mark.parametrize(
    ("seed", "store_content", "tier"),
    [(1, False, "auto"), (2, True, "auto"), (3, False, "standard"), (4, True, "flex")],
)
def test_fast_path_stages_exactly_what_the_full_query_stages(tmp_path, seed, store_content, tier):
    path = tmp_path / "out.jsonl"
    path.write_text("\n".join(lines_for(seed, 1500)) + "\n", encoding="utf-8")
    kwargs = {"store_content": store_content, "tier": tier, "chunk_bytes": 64 << 10}

    fast_rows, fast_bad = stage_all(path, fast=True, **kwargs)
    full_rows, full_bad = stage_all(path, fast=False, **kwargs)

    assert fast_bad == full_bad
    assert len(fast_rows) == len(full_rows)
    for fast_row, full_row in zip(fast_rows, full_rows, strict=True):
        assert fast_row == full_row
    # The comparison means something: both outcomes are well represented.
    ok = sum(1 for r in full_rows if r["reason"] is None and r["status"] == "ok")
    assert ok > 1000
    assert len(full_bad) > 50
    assert {r["fmt"] for r in full_rows} >= {"openai_batch", "vllm_batch"}


def test_fast_path_takes_plain_lines_and_leaves_the_rest(tmp_path):
    rng = random.Random(9)
    plain = [json.dumps(batch_line(i, rng)) for i in range(300)]
    odd = copy.deepcopy(batch_line(300, rng))
    odd["response"]["body"]["usage"]["prompt_tokens"] = 1.5
    path = tmp_path / "out.jsonl"
    path.write_text("\n".join([*plain, json.dumps(odd), "{oops"]) + "\n", encoding="utf-8")

    conn = duckdb.connect()
    install_macros(conn)
    stager = ChunkStager(conn, tier="auto", store_content=False, pool_rows=10_000)
    (chunk,) = read_line_chunks(path, FileDigest())
    ((staged, rejected, fast),) = stager.stage(chunk.table)
    assert rejected == [] and fast
    reasons = staged.column("reason").to_pylist()
    assert reasons.count(None) == 300  # the plain lines, staged at once
    assert reasons[300:] == [LEFT_OVER, LEFT_OVER]  # the other two wait for the full query
    assert stager.fast
    (rest,) = stager.finish()
    table, bad, fast = rest
    assert not fast
    assert sorted(table.column("line_no").to_pylist()) == [301, 302]
    assert [(n, reason) for n, reason, _ in bad] == [
        (301, "usage.prompt_tokens is not a non-negative integer (1.5)"),
        (302, "invalid JSON"),
    ]


def test_fast_path_steps_aside_for_other_formats(tmp_path):
    anthropic = {
        "custom_id": "a-1",
        "result": {
            "type": "succeeded",
            "message": {
                "id": "msg_1",
                "model": "claude-3-5-sonnet-latest",
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 10, "output_tokens": 5},
            },
        },
    }
    path = tmp_path / "anthropic.jsonl"
    path.write_text("\n".join(json.dumps({**anthropic, "custom_id": f"a-{i}"}) for i in range(50)) + "\n")
    conn = duckdb.connect()
    install_macros(conn)
    stager = ChunkStager(conn, tier="auto", store_content=False, pool_rows=10)
    (chunk,) = read_line_chunks(path, FileDigest())
    staged = stager.stage(chunk.table)
    assert not stager.fast  # not tried again on this file
    assert [(s.table.num_rows, s.fast) for s in staged] == [(50, None)]
    assert set(staged[0].table.column("fmt").to_pylist()) == {"anthropic_batch"}


def test_replay_in_many_chunks_stores_what_one_chunk_stores(tmp_path):
    """Two parsing workers, each pooling its own left-overs, land the same rows and rejects as one chunk."""
    from costlens.ingest.replay import ReplayOptions, replay_files
    from costlens.session import Settings, open_session

    path = tmp_path / "out.jsonl"
    path.write_text("\n".join(lines_for(5, 1500)) + "\n", encoding="utf-8")

    def replayed(
        chunk_bytes: int,
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], tuple[int, int, int]]:
        with open_session(Settings(db_path=tmp_path / f"{chunk_bytes}.duckdb")) as s:
            (result,) = replay_files(s.conn, ReplayOptions(files=[path], chunk_bytes=chunk_bytes)).results
            # Everything but the replay's own time.
            rows = s.conn.execute(
                "SELECT * EXCLUDE (run_id, priced_at), priced_at = created_at FROM results ORDER BY request_id"
            ).fetchall()
            rejects = s.conn.execute("SELECT line_no, reason, raw FROM rejects ORDER BY line_no").fetchall()
            assert s.conn.execute("SELECT current_setting('threads')").fetchone()[0] > 1  # restored
        return rows, rejects, (result.lines_read, result.stored, result.rejected)

    many = replayed(16 << 10)
    one = replayed(1 << 30)
    assert many[2] == one[2]
    assert many[2][0] == many[2][1] + many[2][2] and many[2][2] > 50
    assert many[1] == one[1]
    assert many[0] == one[0]


def test_a_failing_insert_keeps_its_reason_and_restores_duckdb_threads(tmp_path, monkeypatch):
    """The load runs DuckDB at one thread per statement; an error on the way out must not hide the cause."""
    import costlens.ingest.replay as replay
    from costlens.errors import StoreError
    from costlens.ingest.replay import ReplayOptions, replay_files
    from costlens.session import Settings, open_session

    path = tmp_path / "out.jsonl"
    path.write_text("\n".join(lines_for(6, 300)) + "\n", encoding="utf-8")
    select = "SELECT $run_id, line_no, line_no, fmt, service_tier, status,"
    assert select in replay._INSERT_RESULTS
    bad = replay._INSERT_RESULTS.replace(select, select.replace("status,", "'bogus',"))  # breaks a CHECK
    monkeypatch.setattr(replay, "_INSERT_RESULTS", bad)
    with open_session(Settings(db_path=tmp_path / "x.duckdb")) as s:
        before = s.conn.execute("SELECT current_setting('threads')").fetchone()[0]
        with pytest.raises(StoreError, match="CHECK constraint"):
            replay_files(s.conn, ReplayOptions(files=[path], chunk_bytes=16 << 10))
        assert s.conn.execute("SELECT current_setting('threads')").fetchone()[0] == before
        assert s.conn.execute("SELECT count(*) FROM results").fetchone()[0] == 0
