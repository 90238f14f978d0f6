"""Gemini API batch mode (FORMATS.md §7): golden figures, every reject reason, and its fast path.

Prices from tests/data/formats/prices.csv (gemini-2.5-flash, batch: input $0.15, cached $0.0375,
output $1.25 per 1M tokens); costs worked out by hand in the comments.
"""

from __future__ import annotations

import copy
import csv
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from helpers import DATA

from costlens.ingest.formats import gemini_batch
from costlens.ingest.jsonl import FileDigest, read_line_chunks
from costlens.ingest.replay import ChunkStager, ReplayOptions, Staged, fast_filled_sql, replay_files
from costlens.session import Settings, open_session
from costlens.store.macros import install_macros

GEMINI = DATA / "formats" / "gemini_batch.jsonl"
PRICES = DATA / "formats" / "prices.csv"
LEFT_OVER = "(left to the full query)"


@pytest.fixture
def priced(db_path):
    with open_session(Settings(db_path=db_path, pricing_path=PRICES)) as s:
        yield s


def rows(session, sql: str) -> list[dict[str, Any]]:
    cursor = session.conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def test_gemini_golden_buckets_statuses_and_costs(priced):
    (result,) = replay_files(
        priced.conn, ReplayOptions(files=[GEMINI], model="gemini-2.5-flash", store_content=True)
    ).results
    assert (result.lines_read, result.stored, result.rejected, result.failed) == (5, 5, 0, 1)
    assert dict(result.formats) == {"gemini_batch": 5}
    got = rows(
        priced,
        """SELECT c.custom_id, c.status, c.error_type, c.error_message, c.response_id, c.response_model,
                  c.requested_model, c.finish_reasons, r.usage_format, c.prompt_tokens, c.completion_tokens,
                  c.total_tokens, c.cached_tokens, c.reasoning_tokens, c.service_tier, c.created_at, c.cost_usd
           FROM request_costs c JOIN results r USING (run_id, request_id) ORDER BY c.line_no""",
    )
    assert [tuple(r.values()) for r in got] == [
        # Thoughts are output, beside the candidates: 1000 x 0.15 + (200 + 300) x 1.25 = 775 / 1e6.
        ("g-thoughts", "ok", None, None, "resp-g1", "gemini-2.5-flash", "gemini-2.5-flash", ["STOP"], "gemini",
         1000, 500, 1500, None, 300, "batch", None, Decimal("0.000775")),
        # Cached content is part of the prompt: 500 x 0.15 + 1500 x 0.0375 + 100 x 1.25 = 256.25 / 1e6.
        ("g-cached", "ok", None, None, "resp-g2", "gemini-2.5-flash", "gemini-2.5-flash", ["STOP"], "gemini",
         2000, 100, 2100, 1500, None, "batch", None, Decimal("0.00025625")),
        # Tool-use prompt tokens are input: (100 + 50) x 0.15 + 10 x 1.25 = 35 / 1e6.
        ("g-tools", "ok", None, None, "resp-g3", "gemini-2.5-flash", "gemini-2.5-flash", ["STOP"], "gemini",
         150, 10, 160, None, None, "batch", None, Decimal("0.000035")),
        # An error line is a failed request, not billed.
        ("g-error", "error", "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", None, None,
         "gemini-2.5-flash", None, None, None, None, None, None, None, "batch", None, Decimal("0")),
        # No modelVersion: the requested model (--model) prices it; total = prompt + output.
        ("g-no-model", "ok", None, None, None, None, "gemini-2.5-flash", ["MAX_TOKENS"], "gemini",
         10, 5, 15, None, None, "batch", None, Decimal("0.00000775")),
    ]  # fmt: skip
    completions = rows(
        priced, "SELECT request_id, completion FROM result_details WHERE completion IS NOT NULL ORDER BY 1"
    )
    # Thought summaries are not the answer.
    assert completions[0] == {"request_id": 1, "completion": '["Four."]'}
    raw = json.loads(rows(priced, "SELECT raw_usage FROM results WHERE request_id = 2")[0]["raw_usage"])
    assert raw["cacheTokensDetails"] == [{"modality": "TEXT", "tokenCount": 1500}]


def test_gemini_through_the_cli_and_export(invoke, tmp_path):
    g = ["--pricing", str(PRICES)]
    replayed = invoke(*g, "replay", GEMINI, "--model", "gemini-2.5-flash")
    assert replayed.exit_code == 1  # one failed request, under the default --fail-on
    assert "5 lines read, 5 stored, 0 rejected, 1 failed requests (gemini_batch 5)" in replayed.stdout
    out = tmp_path / "e.csv"
    assert invoke(*g, "export", "--format", "csv", "--out", out).exit_code == 0
    exported = {r["custom_id"]: r for r in csv.DictReader(out.open(encoding="utf-8", newline=""))}
    assert {k: exported[k]["cost_usd"] for k in exported} == {
        "g-thoughts": "0.000775",
        "g-cached": "0.00025625",
        "g-tools": "0.000035",
        "g-error": "0",
        "g-no-model": "0.00000775",
    }
    assert {r["source_format"] for r in exported.values()} == {"gemini_batch"}


def good(key: Any = "ok-1", **usage: Any) -> dict[str, Any]:
    meta = {"promptTokenCount": 20, "candidatesTokenCount": 5, **usage}
    return {"key": key, "response": {"modelVersion": "gemini-2.5-flash", "usageMetadata": meta}}


REJECTS = [
    ("negative", good(promptTokenCount=-1), "usageMetadata.promptTokenCount is negative (-1)"),
    ("fraction", good(candidatesTokenCount=1.5), "usageMetadata.candidatesTokenCount is not a non-negative integer (1.5)"),
    ("string-count", good(thoughtsTokenCount="3"), 'usageMetadata.thoughtsTokenCount is not a non-negative integer ("3")'),
    ("cached-over-prompt", good(cachedContentTokenCount=30), "usageMetadata: cachedContentTokenCount (30) > promptTokenCount (20)"),
    ("no-prompt-count", {"key": "k", "response": {"usageMetadata": {"candidatesTokenCount": 5}}},
     "usageMetadata lacks promptTokenCount"),
    ("key-bool", good(key=True), "key must be a string"),
    ("no-key", {"response": {"usageMetadata": {"promptTokenCount": 1}}}, "missing key"),
    ("usage-list", {"key": "k", "response": {"usageMetadata": [1]}}, "usageMetadata is not an object"),
    ("two-reasons", good(promptTokenCount=-1, toolUsePromptTokenCount=-2),
     "usageMetadata.promptTokenCount is negative (-1); usageMetadata.toolUsePromptTokenCount is negative (-2)"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "reason"), [r[1:] for r in REJECTS], ids=[r[0] for r in REJECTS])
def test_each_gemini_reject_names_its_line_and_field(jsonl, replay, query, line, reason):
    path = jsonl("g.jsonl", [good("before"), line, good("after")])
    result = replay(path)
    assert [(r.file, r.line_no, r.reason) for r in result.rejects] == [(str(path), 2, reason)]
    assert (result.lines_read, result.stored, result.rejected) == (3, 2, 1)
    assert query("SELECT custom_id FROM requests ORDER BY line_no") == [
        {"custom_id": "before"},
        {"custom_id": "after"},
    ]
    assert query("SELECT line_no, reason FROM rejects") == [{"line_no": 2, "reason": reason}]


def test_an_integer_key_is_taken_as_its_text(jsonl, replay, query):
    replay(jsonl("g.jsonl", [good(7)]))
    assert query("SELECT custom_id FROM requests") == [{"custom_id": "7"}]


# --- the fast path -----------------------------------------------------------------------------


def gemini_line(i: int, rng: random.Random) -> dict[str, Any]:
    meta: dict[str, Any] = {"promptTokenCount": 500 + i, "candidatesTokenCount": 20 + i % 50}
    if i % 3:
        meta["thoughtsTokenCount"] = i % 40
    if i % 4 == 0:
        meta["cachedContentTokenCount"] = (i * 7) % 500
    if i % 5 == 0:
        meta["toolUsePromptTokenCount"] = i % 11
    if i % 2:
        meta["totalTokenCount"] = sum(v for k, v in meta.items() if k != "cachedContentTokenCount")
    parts = [{"text": f'answer {i} \u00e9 "q"'}]
    if rng.random() < 0.3:
        parts.insert(0, {"text": "thinking...", "thought": True})
    return {
        "key": f"req-{i}",
        "response": {
            "responseId": f"resp-{i}",
            "modelVersion": rng.choice(["gemini-2.5-flash", "gemini-2.5-pro"]),
            "candidates": [
                {
                    "content": {"parts": parts, "role": "model"},
                    "finishReason": rng.choice(["STOP", "MAX_TOKENS"]),
                }
                for _ in range(rng.choice([1, 1, 2]))
            ],
            "usageMetadata": meta,
        },
    }


ODD_VALUES: list[Any] = [0, 5, -1, 1.5, 12.0, "12", True, None, [], {}, 10**19, "x"]
MISSING = object()
PATHS = [
    ("key",),
    ("custom_id",),
    ("error",),
    ("result",),
    ("status",),
    ("processed_time",),
    ("response",),
    ("response", "modelVersion"),
    ("response", "candidates"),
    ("response", "usageMetadata"),
    ("response", "usageMetadata", "promptTokenCount"),
    ("response", "usageMetadata", "candidatesTokenCount"),
    ("response", "usageMetadata", "thoughtsTokenCount"),
    ("response", "usageMetadata", "cachedContentTokenCount"),
    ("response", "usageMetadata", "toolUsePromptTokenCount"),
    ("response", "usageMetadata", "totalTokenCount"),
    ("response", "usageMetadata", "cost"),
]
EXTRA_VALUES: dict[tuple[str, ...], list[Any]] = {
    ("error",): [{"code": 500, "message": "internal", "status": "INTERNAL"}, "boom"],
    ("result",): [{"type": "succeeded"}],
    ("status",): ["", "failed"],
    ("processed_time",): ["2025-01-01T00:00:00Z"],
    ("response", "usageMetadata", "cachedContentTokenCount"): [10**6],
    ("response", "usageMetadata", "cost"): [0.001, "0.1"],
}


def mutate(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = copy.deepcopy(record)
    for _ in range(rng.choice([1, 1, 2])):
        path = rng.choice(PATHS)
        value = rng.choice([*ODD_VALUES, *EXTRA_VALUES.get(path, []), MISSING])
        value = value if value is MISSING else copy.deepcopy(value)
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


def lines_for(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        record = gemini_line(i, rng)
        out.append(json.dumps(mutate(record, rng) if rng.random() < 0.3 else record))
    out[5] = "{not json"
    out[9] = ""
    out[11] = json.dumps(
        {"key": "req-0", "response": {"usageMetadata": {"promptTokenCount": 1}}}
    )  # duplicate
    return out


def stage_all(path: Path, *, fast: bool, store_content: bool, tier: str) -> tuple[list[dict], list, set]:
    conn = duckdb.connect()
    install_macros(conn)
    stager = ChunkStager(conn, tier=tier, store_content=store_content, fast=fast, pool_rows=40)
    tables: list[pa.Table] = []
    bad: list[tuple[int, str, str]] = []
    paths = set()

    def keep(staged: list[Staged]) -> None:
        for table, rejected, from_fast_path in staged:
            if from_fast_path is not None:
                paths.add(id(from_fast_path))
                conn.register("cl_stage", table)
                sql = fast_filled_sql(from_fast_path, store_content=store_content)
                table = conn.sql(sql, params={"tier": tier}).to_arrow_table()
                conn.unregister("cl_stage")
            tables.append(table)
            bad.extend(rejected)

    for chunk in read_line_chunks(path, FileDigest(), chunk_bytes=32 << 10):
        keep(stager.stage(chunk.table))
        if fast:
            assert stager.fast, "the fast path switched itself off on mostly plain lines"
    keep(stager.finish())
    conn.close()
    staged = [row for table in tables for row in table.to_pylist() if row["reason"] != LEFT_OVER]
    return sorted(staged, key=lambda r: r["line_no"]), sorted(bad), paths


@pytest.mark.parametrize(
    ("seed", "store_content", "tier"), [(1, False, "auto"), (2, True, "auto"), (3, True, "flex")]
)
def test_gemini_fast_path_stages_exactly_what_the_full_statement_stages(tmp_path, seed, store_content, tier):
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join(lines_for(seed, 1200)) + "\n", encoding="utf-8")
    kwargs = {"store_content": store_content, "tier": tier}
    fast_rows, fast_bad, paths = stage_all(path, fast=True, **kwargs)
    full_rows, full_bad, _ = stage_all(path, fast=False, **kwargs)
    assert paths == {id(gemini_batch.FAST)}  # the sniff chose Gemini's fast path
    assert fast_bad == full_bad
    assert len(fast_rows) == len(full_rows)
    for fast_row, full_row in zip(fast_rows, full_rows, strict=True):
        assert fast_row == full_row
    ok = sum(1 for r in full_rows if r["reason"] is None and r["status"] == "ok")
    assert ok > 800
    assert len(full_bad) > 30


def test_gemini_fast_path_takes_plain_lines_and_leaves_the_rest(tmp_path):
    rng = random.Random(4)
    plain = [json.dumps(gemini_line(i, rng)) for i in range(200)]
    odd = gemini_line(200, rng)
    odd["response"]["usageMetadata"]["thoughtsTokenCount"] = -3
    error = {"key": "e", "error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join([*plain, json.dumps(odd), json.dumps(error)]) + "\n", encoding="utf-8")
    conn = duckdb.connect()
    install_macros(conn)
    stager = ChunkStager(conn, tier="auto", store_content=False, pool_rows=10_000)
    (chunk,) = read_line_chunks(path, FileDigest())
    ((staged, rejected, fast),) = stager.stage(chunk.table)
    assert fast is gemini_batch.FAST and rejected == []
    reasons = staged.column("reason").to_pylist()
    assert reasons.count(None) == 200
    assert reasons[200:] == [LEFT_OVER, LEFT_OVER]
    ((table, bad, fast),) = stager.finish()
    assert fast is None
    assert [(n, reason) for n, reason, _ in bad] == [
        (201, "usageMetadata.thoughtsTokenCount is negative (-3)")
    ]
    assert table.filter(pa.compute.equal(table.column("line_no"), 202)).column("error_type").to_pylist() == [
        "INVALID_ARGUMENT"
    ]
