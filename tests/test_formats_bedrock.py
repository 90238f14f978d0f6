"""AWS Bedrock batch output (FORMATS.md §7): every body kind, error records, and the job manifest.

One job per directory under tests/data/formats/bedrock/, as Bedrock writes them. Prices from
tests/data/formats/prices.csv, batch rows: claude-3-5-haiku-20241022 input $0.40, cache read
$0.04, 5-minute write $0.50, 1-hour write $0.80, output $2.00; llama-3.3-70b-instruct $0.36 /
$0.36; amazon.titan-text-express-v1 $0.10 / $0.30 per 1M tokens.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA

from costlens.errors import InputError
from costlens.ingest.replay import ReplayOptions, replay_files
from costlens.session import Settings, open_session

JOBS = DATA / "formats" / "bedrock"
CLAUDE = JOBS / "claude" / "input.jsonl.out"
CONVERSE = JOBS / "converse" / "input.jsonl.out"
LLAMA = JOBS / "llama" / "input.jsonl.out"
TITAN = JOBS / "titan" / "input.jsonl.out"
PRICES = DATA / "formats" / "prices.csv"
COLUMNS = """c.custom_id, c.status, c.error_type, c.error_message, c.response_id, c.model, c.finish_reasons,
             r.usage_format, c.prompt_tokens, c.completion_tokens, c.total_tokens, c.cached_tokens,
             c.cache_write_tokens, c.cache_write_1h_tokens, c.service_tier, c.cost_usd"""


@pytest.fixture
def priced(db_path):
    with open_session(Settings(db_path=db_path, pricing_path=PRICES)) as s:
        yield s


def replayed(session, path: Path, **options: Any) -> list[tuple[Any, ...]]:
    outcome = replay_files(session.conn, ReplayOptions(files=[path], **options))
    run_id = outcome.results[0].run_id
    cursor = session.conn.execute(
        f"SELECT {COLUMNS} FROM request_costs c JOIN results r USING (run_id, request_id) "
        "WHERE c.run_id = ? ORDER BY c.line_no",
        [run_id],
    )
    return cursor.fetchall()


def test_bedrock_anthropic_bodies_with_the_cache_split_and_an_error_record(priced):
    assert replayed(priced, CLAUDE) == [
        # input excludes the cache: 100 + 1500 written + 2000 read = 3600 in. Cost: 100 x 0.40
        # + 2000 x 0.04 + 500 x 0.50 (5-minute) + 1000 x 0.80 (1-hour) + 50 x 2.00 = 1270 / 1e6.
        ("CALL0000001", "ok", None, None, "msg_bdrk_01", "claude-3-5-haiku-20241022", ["end_turn"], "anthropic",
         3600, 50, 3650, 2000, 1500, 1000, "batch", Decimal("0.00127")),
        # 20 x 0.40 + 256 x 2.00 = 520 / 1e6.
        ("CALL0000002", "ok", None, None, "msg_bdrk_02", "claude-3-5-haiku-20241022", ["max_tokens"], "anthropic",
         20, 256, 276, None, None, None, "batch", Decimal("0.00052")),
        # An error record is a failed request; it names no model (none was requested either).
        ("CALL0000003", "error", "400", "Malformed input request: #: extraneous key [foo] is not permitted",
         None, "(unknown model)", None, None, None, None, None, None, None, None, "batch", Decimal("0")),
    ]  # fmt: skip


def test_bedrock_converse_one_hour_cache_writes(priced):
    # No model in a Converse body: the requested one (--model) prices it. inputTokens excludes the
    # cache (11 + 45 + 1000 + 1046 = totalTokens 2102): 11 x 0.40 + 1000 x 0.04 + 46 x 0.50
    # + 1000 x 0.80 + 45 x 2.00 = 957.4 / 1e6.
    assert replayed(priced, CONVERSE, model="claude-3-5-haiku-20241022") == [
        ("CONV0000001", "ok", None, None, None, "claude-3-5-haiku-20241022", ["end_turn"], "converse",
         2057, 45, 2102, 1000, 1046, 1000, "batch", Decimal("0.0009574")),
    ]  # fmt: skip


def test_bedrock_llama_and_titan_counts(priced):
    # (12 + 3) x 0.36 = 5.4 / 1e6.
    assert replayed(priced, LLAMA, model="llama-3.3-70b-instruct") == [
        ("LLAM0000001", "ok", None, None, None, "llama-3.3-70b-instruct", ["stop"], "llama",
         12, 3, 15, None, None, None, "batch", Decimal("0.0000054")),
    ]  # fmt: skip
    # 5 x 0.10 + 20 x 0.30 = 6.5 / 1e6.
    assert replayed(priced, TITAN, model="amazon.titan-text-express-v1") == [
        ("TITN0000001", "ok", None, None, None, "amazon.titan-text-express-v1", ["FINISH"], "titan",
         5, 20, 25, None, None, None, "batch", Decimal("0.0000065")),
    ]  # fmt: skip
    raw = priced.conn.execute("SELECT raw_usage FROM results ORDER BY run_id").fetchall()
    assert [json.loads(r[0]) for r in raw] == [
        {"prompt_token_count": 12, "generation_token_count": 3},
        {"inputTextTokenCount": 5, "results": [{"tokenCount": 20}]},
    ]


def test_completion_text_of_each_body_kind(priced):
    for path, model in ((CLAUDE, None), (CONVERSE, "m"), (LLAMA, "m"), (TITAN, "m")):
        replay_files(priced.conn, ReplayOptions(files=[path], model=model, store_content=True))
    got = priced.conn.execute("SELECT completion FROM result_details ORDER BY run_id, request_id").fetchall()
    assert [json.loads(c) for (c,) in got] == [
        ["The report says..."],
        ["Short."],
        ["Hello! How can I help?"],
        [" Paris."],
        ["Autumn moonlight..."],
    ]


def record(**changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "recordId": "R1",
        "modelInput": {"inputText": "hi"},
        "modelOutput": {"inputTextTokenCount": 5, "results": [{"tokenCount": 2, "outputText": "yo"}]},
    }
    line.update(changes)
    return {k: v for k, v in line.items() if v is not None}


def converse(**usage: Any) -> dict[str, Any]:
    return record(
        modelOutput={"stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 2, **usage}}
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (record(recordId=None), "missing recordId"),
        (record(recordId=["x"]), "recordId must be a string"),
        (record(modelOutput=None), "neither modelOutput nor error"),
        (record(modelOutput={"inputTextTokenCount": -5, "results": [{"tokenCount": 2}]}),
         "modelOutput.inputTextTokenCount is negative (-5)"),
        (record(modelOutput={"inputTextTokenCount": 5, "results": [{"tokenCount": 2.5}]}),
         "modelOutput.results[].tokenCount is not a non-negative integer (2.5)"),
        (record(modelOutput={"inputTextTokenCount": 5}), "modelOutput lacks inputTextTokenCount or results[].tokenCount"),
        (record(modelOutput={"prompt_token_count": 5}), "modelOutput lacks prompt_token_count or generation_token_count"),
        (converse(inputTokens=None), "usage lacks inputTokens or outputTokens"),
        (converse(cacheWriteInputTokens=10, cacheDetails=[{"ttl": "1h", "inputTokens": 20}]),
         "usage: cacheDetails 1h (20) > cacheWriteInputTokens (10)"),
        (converse(cacheWriteInputTokens=10, cacheDetails=[{"ttl": "5m", "inputTokens": 4}, {"ttl": "1h", "inputTokens": 5}]),
         "usage: cacheDetails (5m 4 + 1h 5) does not add up to cacheWriteInputTokens (10)"),
        (converse(cacheWriteInputTokens=10, cacheDetails=[{"ttl": "2h", "inputTokens": 10}]),
         'usage.cacheDetails[].ttl is not "5m" or "1h" (2h); '
         "usage: cacheDetails (5m 0 + 1h 0) does not add up to cacheWriteInputTokens (10)"),
        (record(modelOutput={"usage": {"input_tokens": 3, "output_tokens": 1, "cache_creation_input_tokens": 5,
                                       "cache_creation": {"ephemeral_5m_input_tokens": 1, "ephemeral_1h_input_tokens": 6}}}),
         "usage: cache_creation.ephemeral_1h_input_tokens (6) > cache_creation_input_tokens (5)"),
    ],
    ids=["no-id", "id-list", "no-output", "negative", "fraction", "titan-lacks", "llama-lacks", "converse-lacks",
         "1h-over-writes", "split-sum", "ttl", "anthropic-split"],
)  # fmt: skip
def test_each_bedrock_reject_names_its_line_and_field(jsonl, replay, query, line, reason):
    path = jsonl("b.jsonl.out", [record(recordId="before"), line, record(recordId="after")])
    result = replay(path)
    assert [(r.file, r.line_no, r.reason) for r in result.rejects] == [(str(path), 2, reason)]
    assert (result.lines_read, result.stored, result.rejected) == (3, 2, 1)
    assert query("SELECT custom_id FROM requests ORDER BY line_no") == [
        {"custom_id": "before"},
        {"custom_id": "after"},
    ]


def test_converse_details_without_the_total_give_the_total(jsonl, replay, query):
    line = converse(cacheDetails=[{"ttl": "5m", "inputTokens": 4}, {"ttl": "1h", "inputTokens": 6}])
    replay(jsonl("b.jsonl.out", [line]))
    assert query("SELECT prompt_tokens, cache_write_tokens, cache_write_1h_tokens FROM results") == [
        {"prompt_tokens": 11, "cache_write_tokens": 10, "cache_write_1h_tokens": 6}
    ]


# --- the job manifest ---------------------------------------------------------------------------


def test_an_agreeing_manifest_next_to_the_file_is_silent(invoke):
    result = invoke("--pricing", PRICES, "--fail-on", "rejects", "replay", CLAUDE)
    assert result.exit_code == 0, result.stderr
    assert "manifest" not in result.stderr
    data = json.loads(invoke("--pricing", PRICES, "replay", CLAUDE, "--force", "--json").stdout)
    (manifest,) = data["manifests"]
    assert manifest == {
        "file": str(JOBS / "claude" / "manifest.json.out"),
        "runs": [2],
        "agrees": True,
        "figures": {
            "totalRecordCount": {"expected": 3, "replayed": 3},
            "processedRecordCount": {"expected": 3, "replayed": 3},
            "successRecordCount": {"expected": 2, "replayed": 2},
            "errorRecordCount": {"expected": 1, "replayed": 1},
            "inputTokenCount": {"expected": 3620, "replayed": 3620},
            "outputTokenCount": {"expected": 306, "replayed": 306},
        },
        "error": None,
    }


def test_a_disagreeing_manifest_is_reported_but_does_not_fail_the_replay(invoke):
    result = invoke("--pricing", PRICES, "replay", CONVERSE, "--model", "claude-3-5-haiku-20241022")
    # Everything is stored and every request succeeded: exit 0, whatever the manifest says.
    assert result.exit_code == 0, result.stderr
    manifest = JOBS / "converse" / "manifest.json.out"
    assert result.stderr.splitlines() == [
        f"warning: manifest {manifest} disagrees with the replay: totalRecordCount 2 expected, 1 replayed; "
        "processedRecordCount 2 expected, 1 replayed; successRecordCount 2 expected, 1 replayed; "
        "inputTokenCount 11 expected, 2057 replayed"
    ]
    data = json.loads(
        invoke("--pricing", PRICES, "replay", CONVERSE, "--model", "m", "--force", "--json").stdout
    )
    (check,) = data["manifests"]
    assert check["agrees"] is False
    assert check["figures"]["inputTokenCount"] == {"expected": 11, "replayed": 2057}
    assert check["figures"]["outputTokenCount"] == {"expected": 45, "replayed": 45}


def test_manifest_option_checks_every_file_given(invoke, tmp_path):
    manifest = tmp_path / "job-manifest.json"
    manifest.write_text(json.dumps({"totalRecordCount": 4, "successRecordCount": 3, "errorRecordCount": 1}))
    result = invoke("replay", CLAUDE, LLAMA, "--manifest", manifest, "--json")
    (check,) = json.loads(result.stdout)["manifests"]
    assert (check["file"], check["runs"], check["agrees"]) == (str(manifest), [1, 2], True)
    assert result.stderr == ""


def test_manifest_of_two_files_in_one_job_directory(tmp_path, invoke):
    job = tmp_path / "job"
    job.mkdir()
    lines = CLAUDE.read_text().splitlines()
    (job / "a.jsonl.out").write_text(lines[0] + "\n")
    (job / "b.jsonl.out").write_text("\n".join(lines[1:]) + "\n")
    (job / "manifest.json.out").write_text((JOBS / "claude" / "manifest.json.out").read_text())
    data = json.loads(invoke("replay", job / "a.jsonl.out", job / "b.jsonl.out", "--json").stdout)
    (check,) = data["manifests"]
    assert (check["runs"], check["agrees"]) == ([1, 2], True)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{oops", "the manifest is not JSON"),
        ("[1]", "the manifest is not a JSON object"),
        ('{"totalRecordCount": -1}', "totalRecordCount is not a non-negative integer (-1)"),
        ('{"totalRecordCount": "3"}', 'totalRecordCount is not a non-negative integer ("3")'),
        ('{"jobId": "x"}', "the manifest has none of totalRecordCount"),
    ],
)
def test_an_unusable_manifest_option_is_an_input_error_before_anything_is_stored(
    tmp_path, session, text, reason
):
    manifest = tmp_path / "m.json"
    manifest.write_text(text)
    with pytest.raises(InputError) as info:
        replay_files(session.conn, ReplayOptions(files=[CLAUDE], manifest=manifest))
    assert info.value.file == str(manifest)
    assert info.value.reason.startswith(reason)
    assert session.conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_an_unusable_manifest_found_next_to_the_file_is_a_warning(tmp_path, invoke):
    (tmp_path / "x.jsonl.out").write_text(CLAUDE.read_text())
    (tmp_path / "manifest.json.out").write_text("{oops")
    result = invoke("--fail-on", "none", "replay", tmp_path / "x.jsonl.out")
    assert result.exit_code == 0
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"warning: manifest {tmp_path / 'manifest.json.out'} not checked: the manifest is not JSON"
    )


def test_no_manifest_is_looked_for_next_to_other_formats(tmp_path, invoke, lines):
    (tmp_path / "out.jsonl").write_text(json.dumps(lines.openai("a")) + "\n")
    (tmp_path / "manifest.json.out").write_text("{oops")
    result = invoke("replay", tmp_path / "out.jsonl", "--json")
    assert json.loads(result.stdout)["manifests"] == []
    assert result.stderr == ""
