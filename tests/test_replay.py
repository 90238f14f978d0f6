"""Replaying recorded output files: format detection, error shapes, usage normalisation,
every reject reason at its exact line, chunking, idempotence and the --requests join."""

from __future__ import annotations

import hashlib
import json
import tempfile
from datetime import datetime
from pathlib import Path

import pytest
from helpers import DATA, Lines, examples, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from costlens.errors import AlreadyReplayedError, InputError
from costlens.ingest.jsonl import FileDigest, read_line_chunks
from costlens.ingest.replay import ReplayOptions, replay_files
from costlens.session import Settings, open_session

FORMATS = DATA / "formats.jsonl"
BATCH_INPUT = DATA / "batch_input.jsonl"
CREATED_AT = datetime(2024, 3, 26, 17, 44, 14)
UNRECOGNISED = (
    "unrecognised line: expected an Anthropic batch result, a Vertex AI batch prediction row, "
    "a Gemini batch line, a Bedrock batch record, an OpenAI/vLLM batch output line or a chat.completion object"
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def minified(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def counts(query) -> dict[str, int]:
    return {
        table: query(f"SELECT count(*) AS n FROM {table}")[0]["n"]
        for table in ("runs", "requests", "results", "rejects")
    }


# --- formats and error shapes ------------------------------------------------------------------


def test_every_format_is_detected_and_counted(replay, query):
    result = replay(FORMATS, store_content=True)

    assert dict(result.formats) == {
        "anthropic_batch": 4,
        "chat_completion": 2,
        "openai_batch": 3,
        "vllm_batch": 2,
    }
    assert (result.lines_read, result.stored, result.rejected, result.failed) == (11, 11, 0, 6)
    assert result.rejects == ()
    assert result.sha256 == hashlib.sha256(FORMATS.read_bytes()).hexdigest()
    rows = query(
        """SELECT q.custom_id, r.source_format, r.source_line_no, r.response_id, r.provider_request_id,
                  r.response_model, r.finish_reasons, d.completion, r.created_at
           FROM requests q JOIN results r USING (run_id, request_id)
           LEFT JOIN result_details d USING (run_id, request_id) ORDER BY r.source_line_no"""
    )
    assert [tuple(r.values()) for r in rows] == [
        ("request-2", "openai_batch", 1, "chatcmpl-9758Iw", "req_c187b3", "gpt-4o-mini", ["stop"],
         '["2 + 2 equals 4."]', CREATED_AT),
        ("request-3", "openai_batch", 2, None, None, None, None, None, None),
        ("request-4", "openai_batch", 3, None, "req_400", None, None, None, None),
        ("v-1", "vllm_batch", 4, "cmpl-1", "vllm-batch-7a1e", "meta-llama/llama-3.3-70b-instruct",
         ["length"], '["Hello"]', datetime(2024, 3, 26, 17, 45)),
        ("v-2", "vllm_batch", 5, None, "vllm-batch-0b2c", None, None, None, None),
        ("a-1", "anthropic_batch", 6, "msg_01", None, "claude-3-5-haiku-20241022", ["end_turn"], '["ok"]', None),
        ("a-2", "anthropic_batch", 7, None, None, None, None, None, None),
        ("a-3", "anthropic_batch", 8, None, None, None, None, None, None),
        ("a-4", "anthropic_batch", 9, None, None, None, None, None, None),
        ("cc-1", "chat_completion", 10, "chatcmpl-C1", None, "deepseek-chat", ["stop"], '["Hi"]',
         datetime(2025, 10, 27, 11, 31, 14)),
        # No custom_id on a chat.completion: its line number stands in.
        ("11", "chat_completion", 11, "chatcmpl-C2", None, "gpt-4o-2024-08-06", ["stop"], '["Yo"]',
         datetime(2025, 10, 27, 11, 31, 15)),
    ]  # fmt: skip
    run = query("SELECT status, source_sha256, lines_read, lines_stored, lines_rejected FROM runs")
    assert run == [
        {
            "status": "completed",
            "source_sha256": result.sha256,
            "lines_read": 11,
            "lines_stored": 11,
            "lines_rejected": 0,
        }
    ]


def test_status_and_error_of_each_shape_in_formats_md(replay, query):
    replay(FORMATS)
    rows = query(
        """SELECT q.custom_id, r.status, r.http_status, r.error_type, r.error_message, r.usage_source
           FROM requests q JOIN results r USING (run_id, request_id) ORDER BY r.source_line_no"""
    )
    assert [tuple(r.values()) for r in rows] == [
        ("request-2", "ok", 200, None, None, "reported"),
        ("request-3", "error", None, "batch_expired",
         "This request could not be executed before the completion window expired.", "none"),
        ("request-4", "error", 400, "invalid_request_error", "Invalid 'messages': empty array.", "none"),
        ("v-1", "ok", 200, None, None, "reported"),
        # vLLM: body null, `error` a plain string.
        ("v-2", "error", 400, "http_400", "This model's maximum context length is 8192 tokens.", "none"),
        ("a-1", "ok", None, None, None, "reported"),
        ("a-2", "error", None, "invalid_request_error", "max_tokens: Field required", "none"),
        ("a-3", "error", None, "expired", None, "none"),
        ("a-4", "error", None, "canceled", None, "none"),
        ("cc-1", "ok", None, None, None, "reported"),
        ("11", "ok", None, None, None, "reported"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            {"id": "batch_req_9", "custom_id": "h", "error": None,
             "response": {"status_code": 500, "request_id": "r", "body": None}},
            ("openai_batch", "error", 500, "http_500", None),
            id="openai-5xx-without-body",
        ),
        pytest.param(
            {"id": "vllm-9", "custom_id": "h", "response": {"status_code": 400, "request_id": "r", "body": None},
             "error": {"message": "too long", "type": "BadRequestError", "code": 400}},
            ("vllm_batch", "error", 400, "BadRequestError", "too long"),
            id="vllm-error-object",
        ),
        pytest.param(
            {"id": "batch_req_9", "custom_id": "h", "response": None, "error": {"code": 42, "message": "m"}},
            ("openai_batch", "error", None, "42", "m"),
            id="openai-numeric-error-code",
        ),
    ],
)  # fmt: skip
def test_more_error_shapes(jsonl, replay, query, line, expected):
    replay(jsonl("out.jsonl", [line]))
    row = query("SELECT source_format, status, http_status, error_type, error_message FROM results")
    assert tuple(row[0].values()) == expected


# --- usage -------------------------------------------------------------------------------------


def test_openai_usage_is_stored_as_reported(replay, query):
    """prompt includes cached and completion includes reasoning: kept so; the cost view subtracts."""
    replay(FORMATS)
    row = query(
        """SELECT prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens,
                  reasoning_tokens, usage_format, raw_usage FROM results WHERE source_line_no = 11"""
    )[0]
    assert tuple(row.values())[:7] == (1124, 215, 1339, 1024, None, 192, "openai")
    # Unknown fields stay in the raw usage.
    raw = json.loads(row["raw_usage"])
    assert raw["completion_tokens_details"]["accepted_prediction_tokens"] == 0
    assert raw["prompt_tokens_details"]["audio_tokens"] == 0


def test_openai_total_tokens_defaults_to_prompt_plus_completion(jsonl, lines, replay, query):
    replay(jsonl("out.jsonl", [lines.chat("c", usage={"prompt_tokens": 7, "completion_tokens": 5})]))
    assert query("SELECT total_tokens, cached_tokens, reasoning_tokens FROM results") == [
        {"total_tokens": 12, "cached_tokens": None, "reasoning_tokens": None}
    ]


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {"input_tokens": 100, "output_tokens": 200,
             "cache_creation_input_tokens": 500, "cache_read_input_tokens": 1000},
            (1600, 200, 1800, 1000, 500, None),
        ),
        ({"input_tokens": 11, "output_tokens": 36}, (11, 36, 47, None, None, None)),
        ({"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 0}, (5, 1, 6, 0, None, None)),
    ],
)  # fmt: skip
def test_anthropic_usage_is_normalised(jsonl, lines, replay, query, usage, expected):
    """input_tokens excludes the cache: prompt = input + cache_creation + cache_read."""
    replay(jsonl("out.jsonl", [lines.anthropic("a", usage=usage)]))
    row = query(
        """SELECT prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens,
                  reasoning_tokens, usage_format, raw_usage FROM results"""
    )[0]
    assert tuple(row.values())[:6] == expected
    assert row["usage_format"] == "anthropic"
    assert json.loads(row["raw_usage"]) == usage


# --- rejects -----------------------------------------------------------------------------------


def _openai_with(lines, **changes):
    line = lines.openai("bad")
    body = line["response"]["body"]
    for key, value in changes.items():
        if key == "usage":
            body["usage"] = value
        elif key.startswith("usage."):
            body["usage"][key.removeprefix("usage.")] = value
        elif key == "custom_id":
            line["custom_id"] = value
        elif key == "status_code":
            line["response"]["status_code"] = value
        else:
            body[key] = value
    return line


REJECTS = [
    ("not-json", lambda L: '{"a": 1,,}',
     "invalid JSON: Expecting property name enclosed in double quotes (column 9)"),
    ("truncated-json", lambda L: '{"custom_id": "x"', "invalid JSON: Expecting ',' delimiter (column 18)"),
    ("array", lambda L: "[1, 2]", "not a JSON object (got an array)"),
    ("string", lambda L: '"text"', "not a JSON object (got a string)"),
    ("number", lambda L: "42", "not a JSON object (got a number)"),
    ("null", lambda L: "null", "not a JSON object (got null)"),
    ("boolean", lambda L: "true", "not a JSON object (got a boolean)"),
    ("unrecognised", lambda L: {"foo": 1}, UNRECOGNISED),
    ("missing-custom-id", lambda L: {"result": {"type": "expired"}}, "missing custom_id"),
    ("custom-id-bool", lambda L: _openai_with(L, custom_id=True), "custom_id must be a string"),
    ("custom-id-float", lambda L: _openai_with(L, custom_id=1.5), "custom_id must be a string"),
    ("custom-id-object", lambda L: _openai_with(L, custom_id={"a": 1}), "custom_id must be a string"),
    ("negative", lambda L: _openai_with(L, **{"usage.prompt_tokens": -1}), "usage.prompt_tokens is negative (-1)"),
    ("two-negatives", lambda L: _openai_with(L, **{"usage.prompt_tokens": -1, "usage.completion_tokens": -2}),
     "usage.prompt_tokens is negative (-1); usage.completion_tokens is negative (-2)"),
    ("negative-total", lambda L: _openai_with(L, **{"usage.total_tokens": -5}), "usage.total_tokens is negative (-5)"),
    ("float-count", lambda L: _openai_with(L, **{"usage.completion_tokens": 1.5}),
     "usage.completion_tokens is not a non-negative integer (1.5)"),
    ("string-count", lambda L: _openai_with(L, **{"usage.prompt_tokens": "12"}),
     'usage.prompt_tokens is not a non-negative integer ("12")'),
    ("cached-over-prompt", lambda L: _openai_with(L, **{"usage.prompt_tokens_details": {"cached_tokens": 30}}),
     "usage: cached_tokens (30) > prompt_tokens (24)"),
    ("reasoning-over-completion",
     lambda L: _openai_with(L, **{"usage.completion_tokens_details": {"reasoning_tokens": 16}}),
     "usage: reasoning_tokens (16) > completion_tokens (15)"),
    ("openai-usage-lacks", lambda L: _openai_with(L, usage={"prompt_tokens": 3}),
     "usage lacks prompt_tokens or completion_tokens"),
    ("empty-usage", lambda L: _openai_with(L, usage={}), "usage lacks prompt_tokens or completion_tokens"),
    ("anthropic-usage-lacks", lambda L: L.anthropic("bad", usage={"input_tokens": 3}),
     "usage lacks input_tokens or output_tokens"),
    ("anthropic-negative-cache", lambda L: L.anthropic(
        "bad", usage={"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": -1}),
     "usage.cache_read_input_tokens is negative (-1)"),
    ("usage-not-object", lambda L: _openai_with(L, usage=[1]), "usage is not an object"),
    ("created-text", lambda L: _openai_with(L, created="yesterday"), 'created is not a Unix timestamp ("yesterday")'),
    ("created-float", lambda L: _openai_with(L, created=1.5), "created is not a Unix timestamp (1.5)"),
    ("status-code-text", lambda L: _openai_with(L, status_code="two hundred"),
     "response.status_code is not an HTTP status"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "reason"), [r[1:] for r in REJECTS], ids=[r[0] for r in REJECTS])
def test_each_reject_reason_at_its_line_and_neighbours_still_land(jsonl, lines, replay, query, make, reason):
    bad = make(lines)
    path = jsonl("out.jsonl", [lines.openai("before"), "", bad, lines.anthropic("after")])

    result = replay(path)

    assert [(r.line_no, r.reason) for r in result.rejects] == [(3, reason)]
    assert (result.lines_read, result.stored, result.rejected) == (3, 2, 1)
    assert result.lines_read == result.stored + result.rejected
    assert query("SELECT custom_id, line_no FROM requests ORDER BY line_no") == [
        {"custom_id": "before", "line_no": 1},
        {"custom_id": "after", "line_no": 4},
    ]
    assert query("SELECT request_id FROM results ORDER BY request_id") == [
        {"request_id": 1},
        {"request_id": 4},
    ]
    raw = bad if isinstance(bad, str) else json.dumps(bad)
    assert query("SELECT run_id, file, line_no, reason, raw FROM rejects") == [
        {"run_id": result.run_id, "file": str(path), "line_no": 3, "reason": reason, "raw": raw}
    ]
    assert query("SELECT lines_read, lines_stored, lines_rejected FROM runs") == [
        {"lines_read": 3, "lines_stored": 2, "lines_rejected": 1}
    ]


def test_integer_custom_id_is_taken_as_its_text(jsonl, lines, replay, query):
    """cl_str renders a JSON integer; only other non-strings are rejected (see the reject table)."""
    result = replay(jsonl("out.jsonl", [lines.openai(7)]))
    assert result.rejects == ()
    assert query("SELECT custom_id FROM requests") == [{"custom_id": "7"}]


@pytest.mark.parametrize("chunk_bytes", [64, 1 << 20], ids=["many-chunks", "one-chunk"])
def test_duplicate_custom_id_names_the_first_line_in_any_chunk(jsonl, lines, replay, query, chunk_bytes):
    records = [lines.chat(f"c{i}", usage={"prompt_tokens": i, "completion_tokens": 1}) for i in range(8)]
    records += [lines.chat("c1"), lines.chat("c6"), lines.chat("c1")]
    path = jsonl("out.jsonl", records)
    chunks = list(read_line_chunks(path, FileDigest(), chunk_bytes=chunk_bytes))
    assert (len(chunks) >= 11) if chunk_bytes == 64 else (len(chunks) == 1)

    result = replay(path, chunk_bytes=chunk_bytes, store_content=True)

    assert [(r.line_no, r.reason) for r in result.rejects] == [
        (9, "duplicate custom_id 'c1' (first at line 2)"),
        (10, "duplicate custom_id 'c6' (first at line 7)"),
        (11, "duplicate custom_id 'c1' (first at line 2)"),
    ]
    assert (result.lines_read, result.stored, result.rejected) == (11, 8, 3)
    # The first occurrence is the one kept.
    kept = query(
        "SELECT r.prompt_tokens FROM requests q JOIN results r USING (run_id, request_id) WHERE q.custom_id = 'c1'"
    )
    assert kept == [{"prompt_tokens": 1}]
    # The repeats' completion text goes with them.
    stored = "SELECT request_id FROM {} ORDER BY request_id"
    assert query(stored.format("result_details")) == query(stored.format("results"))
    assert len(query(stored.format("result_details"))) == 8


def test_chat_completion_line_number_id_collides_with_explicit_id(jsonl, lines, replay):
    result = replay(jsonl("out.jsonl", [lines.openai("2"), lines.chat()]))
    assert [(r.line_no, r.reason) for r in result.rejects] == [
        (2, "duplicate custom_id '2' (first at line 1)")
    ]


@pytest.mark.parametrize("chunk_bytes", [64, 1 << 20])
def test_invalid_utf8_line_is_rejected_and_the_rest_decoded(jsonl, lines, replay, query, chunk_bytes):
    path = jsonl(
        "out.jsonl",
        [lines.chat("é-1", content="café"), b'{"custom_id": "\xff"}', lines.chat("é-2", content="naïve")],
    )
    result = replay(path, chunk_bytes=chunk_bytes, store_content=True)
    assert [(r.line_no, r.reason, r.raw) for r in result.rejects] == [
        (2, "not valid UTF-8 (byte 16 of the line)", None)
    ]
    completions = query(
        "SELECT q.custom_id, d.completion FROM requests q JOIN result_details d USING (run_id, request_id) "
        "ORDER BY q.line_no"
    )
    assert completions == [
        {"custom_id": "é-1", "completion": '["café"]'},
        {"custom_id": "é-2", "completion": '["naïve"]'},
    ]
    assert query("SELECT line_no, raw FROM rejects") == [{"line_no": 2, "raw": None}]


@pytest.mark.parametrize("chunk_bytes", [64, 1 << 20])
def test_blank_lines_and_crlf_endings(jsonl, lines, replay, query, chunk_bytes):
    records = ["", lines.openai("x"), "   ", "\t", "{oops", "", lines.anthropic("y"), ""]
    path = jsonl("out.jsonl", records, newline="\r\n")
    result = replay(path, chunk_bytes=chunk_bytes)
    # Blank lines count for numbering, but are neither stored nor rejected.
    assert (result.lines_read, result.stored, result.rejected) == (3, 2, 1)
    assert [(r.line_no, r.reason, r.raw) for r in result.rejects] == [
        (5, "invalid JSON: Expecting property name enclosed in double quotes (column 2)", "{oops")
    ]
    assert query("SELECT custom_id, line_no FROM requests ORDER BY line_no") == [
        {"custom_id": "x", "line_no": 2},
        {"custom_id": "y", "line_no": 7},
    ]


@pytest.mark.parametrize("chunk_bytes", [64, 1 << 20])
def test_last_line_without_newline_is_read(jsonl, lines, replay, query, chunk_bytes):
    path = jsonl("out.jsonl", [lines.openai("a"), lines.openai("b")], trailing_newline=False)
    result = replay(path, chunk_bytes=chunk_bytes)
    assert (result.lines_read, result.stored, result.rejected) == (2, 2, 0)
    assert query("SELECT custom_id FROM requests ORDER BY line_no") == [
        {"custom_id": "a"},
        {"custom_id": "b"},
    ]
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_last_line_without_newline_is_rejected_at_its_number(jsonl, lines, replay):
    path = jsonl("out.jsonl", [lines.openai("a"), "", "[]"], trailing_newline=False)
    result = replay(path, chunk_bytes=64)
    assert [(r.line_no, r.reason, r.raw) for r in result.rejects] == [
        (3, "not a JSON object (got an array)", "[]")
    ]


# Model-based: whatever the mix of line kinds, read = stored + rejected and every line lands where it should.
LINE_KINDS = (
    "openai", "chat_no_id", "anthropic", "gemini", "vertex", "bedrock", "blank", "bad_json", "array", "negative",
    "duplicate",
)  # fmt: skip


@pytest.fixture(scope="module")
def memory_session():
    """One in-memory store for all examples (each example is its own run, forced)."""
    with open_session(Settings(db_path=Path(":memory:"))) as session:
        yield session


@settings(max_examples=examples(20))
@given(
    kinds=st.lists(st.sampled_from(LINE_KINDS), min_size=1, max_size=20),
    crlf=st.booleans(),
    chunk_bytes=st.sampled_from([2000, 1 << 20]),
)
def test_read_is_stored_plus_rejected_for_any_mix(memory_session, kinds, crlf, chunk_bytes):
    build = Lines()
    records: list[object] = []
    good: set[int] = set()
    bad: set[int] = set()
    for n, kind in enumerate(kinds, start=1):
        if kind == "openai":
            records.append(build.openai(f"id-{n}"))
        elif kind == "chat_no_id":
            records.append(build.chat())
        elif kind == "anthropic":
            records.append(build.anthropic(f"id-{n}"))
        elif kind == "gemini":
            records.append({"key": f"id-{n}", "response": {"usageMetadata": {"promptTokenCount": n}}})
        elif kind == "vertex":  # its custom_id is its line number
            records.append({"status": "", "processed_time": "2025-01-01T00:00:00Z", "response": {}})
        elif kind == "bedrock":
            records.append(
                {"recordId": f"id-{n}", "modelOutput": {"prompt_token_count": n, "generation_token_count": 1}}
            )
        elif kind == "blank":
            records.append("")
        elif kind == "bad_json":
            records.append("{nope")
        elif kind == "array":
            records.append("[]")
        elif kind == "negative":
            records.append(build.openai(f"id-{n}", usage={"prompt_tokens": -1, "completion_tokens": 1}))
        elif kind == "duplicate":
            records.append(build.openai("dup"))
        if kind == "duplicate":
            # The first "dup" line is kept, every later one is a duplicate.
            (bad if "duplicate" in kinds[: n - 1] else good).add(n)
        elif kind in ("openai", "chat_no_id", "anthropic", "gemini", "vertex", "bedrock"):
            good.add(n)
        elif kind != "blank":
            bad.add(n)

    conn = memory_session.conn
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "mix.jsonl", records, newline="\r\n" if crlf else "\n")
        options = ReplayOptions(files=[path], chunk_bytes=chunk_bytes, force=True)
        (result,) = replay_files(conn, options).results
    run = [result.run_id]
    stored = {n for (n,) in conn.execute("SELECT request_id FROM results WHERE run_id = ?", run).fetchall()}
    rejected = {n for (n,) in conn.execute("SELECT line_no FROM rejects WHERE run_id = ?", run).fetchall()}

    assert result.lines_read == result.stored + result.rejected == len(good) + len(bad)
    assert stored == good
    assert rejected == bad == {r.line_no for r in result.rejects}


# --- idempotence -------------------------------------------------------------------------------


def test_same_file_twice_is_refused_and_stores_nothing(tmp_path, replay, query):
    first = replay(FORMATS)
    before = counts(query)
    assert before == {"runs": 1, "requests": 11, "results": 11, "rejects": 0}

    with pytest.raises(AlreadyReplayedError, match=r"already replayed into this database as run 1 .*--force"):
        replay(FORMATS)
    assert counts(query) == before

    # Same bytes under another name: same sha256, same refusal.
    copy = tmp_path / "renamed.jsonl"
    copy.write_bytes(FORMATS.read_bytes())
    with pytest.raises(AlreadyReplayedError):
        replay(copy)
    assert counts(query) == before

    again = replay(FORMATS, force=True)
    assert again.run_id != first.run_id
    assert (again.stored, again.sha256) == (first.stored, first.sha256)
    assert counts(query) == {"runs": 2, "requests": 22, "results": 22, "rejects": 0}
    assert query("SELECT count(DISTINCT run_id) AS n FROM results") == [{"n": 2}]


def test_refused_replay_keeps_no_rejects_either(jsonl, lines, replay, query):
    path = jsonl("out.jsonl", [lines.openai("a"), "{bad"])
    replay(path)
    with pytest.raises(AlreadyReplayedError):
        replay(path)
    assert counts(query) == {"runs": 1, "requests": 1, "results": 1, "rejects": 1}


def test_nonexistent_file_is_an_input_error_and_nothing_is_stored(tmp_path, replay, query):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError) as info:
        replay(missing)
    assert info.value.file == str(missing)
    assert str(info.value) == f"{missing}: no such file"
    assert counts(query) == {"runs": 0, "requests": 0, "results": 0, "rejects": 0}


# --- the --requests join and content storage --------------------------------------------------


def test_requests_file_parameters_are_joined_on_custom_id(session, query):
    outcome = replay_files(
        session.conn, ReplayOptions(files=[FORMATS], requests_file=BATCH_INPUT, store_content=True)
    )

    assert outcome.requests is not None
    assert (outcome.requests.lines_read, outcome.requests.accepted) == (4, 3)
    assert [(r.line_no, r.reason) for r in outcome.requests.rejects] == [
        (3, "temperature must be a number from 0 to 2 (got 3)")
    ]
    run_id = outcome.results[0].run_id
    # Rejects of the requests file are kept under the (first) run, naming their own file.
    assert query("SELECT run_id, file, line_no FROM rejects") == [
        {"run_id": run_id, "file": str(BATCH_INPUT), "line_no": 3}
    ]
    assert query("SELECT requests_file, requests_sha256 FROM runs") == [
        {
            "requests_file": str(BATCH_INPUT),
            "requests_sha256": hashlib.sha256(BATCH_INPUT.read_bytes()).hexdigest(),
        }
    ]

    rows = {
        r["custom_id"]: r
        for r in query(
            "SELECT * EXCLUDE (run_id) FROM requests LEFT JOIN request_params USING (run_id, request_id) "
            "WHERE custom_id IN ('request-2', 'request-3', 'request-4', 'v-1', 'a-1')"
        )
    }
    messages_2 = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert rows["request-2"] == {
        "request_id": 1,
        "custom_id": "request-2",
        "line_no": 1,  # the requests file's line
        "requested_model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 64,
        "stream": None,
        "top_p": None,
        "frequency_penalty": None,
        "presence_penalty": None,
        "stop": minified(["\n\n", "END"]),
        "n": 1,
        "user": "team-a",
        "extra_params": '{"seed":42,"response_format":{"type":"text"}}',
        "msg_count": 2,
        "msg_system": 1,
        "msg_user": 1,
        "msg_assistant": 0,
        "msg_tool": 0,
        "msg_developer": 0,
        "messages_sha256": sha256(minified(messages_2)),
        "messages": minified(messages_2),
    }
    r3 = rows["request-3"]
    assert (r3["request_id"], r3["line_no"], r3["top_p"], r3["frequency_penalty"], r3["presence_penalty"]) == (
        2, 2, 0.9, 0.5, -0.5,
    )  # fmt: skip
    assert (r3["stream"], r3["extra_params"], r3["temperature"]) == (False, None, None)
    assert (r3["msg_count"], r3["msg_system"], r3["msg_developer"], r3["msg_user"], r3["msg_assistant"]) == (
        4, 0, 1, 2, 1,
    )  # fmt: skip
    assert rows["v-1"]["stop"] == '"STOP"'
    assert rows["v-1"]["requested_model"] == "llama-3.3-70b-instruct"
    # Rejected in the requests file, or absent from it: the result is still stored, without parameters.
    for cid, line in (("request-4", 3), ("a-1", 6)):
        assert rows[cid]["requested_model"] is None
        assert rows[cid]["messages_sha256"] is None
        assert rows[cid]["line_no"] == line


COMPLETION_2 = '["2 + 2 equals 4."]'
MESSAGES_2 = minified(
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ]
)


def _request_2(session, query, store_content):
    replay_files(
        session.conn, ReplayOptions(files=[FORMATS], requests_file=BATCH_INPUT, store_content=store_content)
    )
    return query(
        """SELECT p.messages, p.messages_sha256, d.completion, d.completion_sha256
           FROM requests q JOIN results r USING (run_id, request_id)
           LEFT JOIN result_details d USING (run_id, request_id)
           JOIN request_params p USING (run_id, request_id) WHERE q.custom_id = 'request-2'"""
    )[0]


@pytest.mark.parametrize("store_content", [True, False])
def test_store_content_keeps_or_drops_text(session, query, store_content):
    row = _request_2(session, query, store_content)
    assert (row["messages"], row["messages_sha256"], row["completion"]) == (
        MESSAGES_2 if store_content else None,
        sha256(MESSAGES_2),
        COMPLETION_2 if store_content else None,
    )
    if not store_content:
        assert query("SELECT count(*) AS n FROM result_details WHERE completion IS NOT NULL") == [{"n": 0}]
        assert query("SELECT count(*) AS n FROM request_params WHERE messages IS NOT NULL") == [{"n": 0}]


@pytest.mark.parametrize("store_content", [True, False])
def test_completion_sha256_is_stored_with_the_content(session, query, store_content):
    """Replay copies completion text and its sha256 only on request: the source file keeps them."""
    row = _request_2(session, query, store_content)
    assert row["completion_sha256"] == (sha256(COMPLETION_2) if store_content else None)
    with_hash = query(
        "SELECT count(*) AS n FROM results JOIN result_details d USING (run_id, request_id) "
        "WHERE d.completion_sha256 IS NOT NULL AND status = 'ok'"
    )
    ok = query("SELECT count(*) AS n FROM results WHERE status = 'ok'")
    assert with_hash == (ok if store_content else [{"n": 0}])


def test_replay_does_not_store_content_by_default(replay, query):
    replay(FORMATS)
    assert query(
        "SELECT count(*) AS n FROM result_details WHERE completion IS NOT NULL OR completion_sha256 IS NOT NULL"
    ) == [{"n": 0}]


# --- service tier ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body_tier", "mode", "expected"),
    [
        ("openai", None, "auto", "batch"),
        ("vllm", None, "auto", "batch"),
        ("anthropic", None, "auto", "batch"),
        ("openai", "flex", "auto", "batch"),  # a batch format is billed as batch whatever the body says
        ("chat", None, "auto", "standard"),
        ("chat", "default", "auto", "standard"),
        ("chat", "flex", "auto", "flex"),
        ("chat", "priority", "auto", "priority"),
        ("chat", "flex", "standard", "standard"),
        ("openai", None, "priority", "priority"),
        ("anthropic", None, "flex", "flex"),
    ],
)
def test_service_tier(jsonl, lines, replay, query, kind, body_tier, mode, expected):
    extra = {} if body_tier is None else {"service_tier": body_tier}
    line = {
        "openai": lambda: lines.openai("t", **extra),
        "vllm": lambda: lines.vllm("t", **extra),
        "anthropic": lambda: lines.anthropic("t"),
        "chat": lambda: lines.chat("t", **extra),
    }[kind]()
    replay(jsonl("out.jsonl", [line]), tier=mode)
    assert query("SELECT service_tier FROM results") == [{"service_tier": expected}]
    assert query("SELECT tier_mode FROM runs") == [{"tier_mode": mode}]


# --- size --------------------------------------------------------------------------------------


def test_twenty_thousand_lines_in_many_chunks(jsonl, replay, query):
    """Chunk boundaries fall mid-line; a duplicate and a bad line sit in late chunks.

    128 KiB chunks (~25 of them) rather than 4 KiB: each chunk costs DuckDB ~0.1 s to plan and
    run the staging statement, so 4 KiB chunks (~800) would take well over a minute.
    """
    n = 20_000

    def line(i: int, custom_id: str) -> str:
        return json.dumps(
            {"custom_id": custom_id, "object": "chat.completion", "created": 1711475054, "model": "deepseek-chat",
             "choices": [], "usage": {"prompt_tokens": i, "completion_tokens": i % 7}},
            separators=(",", ":"),
        )  # fmt: skip

    records = [line(i, f"id-{i}") for i in range(n)]
    records[12_345] = "{broken"
    records[19_998] = line(19_998, "id-3")  # duplicate of line 4, thousands of lines later
    path = jsonl("big.jsonl", records)
    chunk_bytes = 1 << 17
    chunks = list(read_line_chunks(path, FileDigest(), chunk_bytes=chunk_bytes))
    assert len(chunks) >= 20
    assert sum(c.table.num_rows for c in chunks) == n

    result = replay(path, chunk_bytes=chunk_bytes)

    assert (result.lines_read, result.stored, result.rejected, result.failed) == (n, n - 2, 2, 0)
    assert [(r.line_no, r.reason) for r in result.rejects] == [
        (12_346, "invalid JSON: Expecting property name enclosed in double quotes (column 2)"),
        (19_999, "duplicate custom_id 'id-3' (first at line 4)"),
    ]
    kept = [i for i in range(n) if i not in (12_345, 19_998)]
    assert query(
        """SELECT count(*) AS rows, count(DISTINCT q.custom_id) AS ids, sum(r.prompt_tokens) AS prompt,
                  sum(r.completion_tokens) AS completion, min(r.request_id) AS first, max(r.request_id) AS last
           FROM requests q JOIN results r USING (run_id, request_id)"""
    ) == [
        {
            "rows": n - 2,
            "ids": n - 2,
            "prompt": sum(kept),
            "completion": sum(i % 7 for i in kept),
            "first": 1,
            "last": n,
        }
    ]
    assert query("SELECT count(*) AS n FROM requests WHERE line_no <> request_id") == [{"n": 0}]
    # Every line carries the same `created`, which is also the instant it is priced at.
    assert query("SELECT DISTINCT priced_at FROM results") == [{"priced_at": CREATED_AT}]
