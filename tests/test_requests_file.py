"""Reading and validating a requests file (OpenAI Batch input, {custom_id, body}, bare bodies)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import duckdb
import pytest

from costlens.ingest.requests_file import ALLOWED_ROLES, stage_request_file

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]


def batch_line(custom_id: str = "r-1", **body: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
    b.update(body)
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": b}


def without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


@pytest.fixture
def conn():
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.fixture
def stage(conn, jsonl):
    """``stage(records, **kwargs)`` → (RequestFile, accepted rows of cl_req_input as dicts by custom_id)."""

    def run(records, **kwargs):
        path = jsonl("requests.jsonl", records)
        result = stage_request_file(conn, path, **kwargs)
        cursor = conn.execute("SELECT * FROM cl_req_input ORDER BY line_no")
        names = [d[0] for d in cursor.description]
        rows = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
        assert result.lines_read == result.accepted + len(result.rejects)
        assert result.accepted == len(rows)
        return result, rows

    return run


def test_every_line_shape_is_accepted(stage):
    result, rows = stage(
        [
            batch_line("openai"),
            {"custom_id": "azure", "method": "POST", "url": "/chat/completions",
             "body": {"model": "my-deployment", "messages": MESSAGES}},
            {"custom_id": "together", "body": {"model": "llama-3.3-70b-instruct", "messages": MESSAGES}},
            {"model": "deepseek-chat", "messages": MESSAGES},
            {"custom_id": "lowercase-post", "method": "post", "url": "/v1/chat/completions",
             "body": {"model": "m", "messages": MESSAGES}},
        ]
    )  # fmt: skip
    assert result.rejects == ()
    assert (result.lines_read, result.accepted) == (5, 5)
    assert [(cid, r["line_no"], r["model"]) for cid, r in rows.items()] == [
        ("openai", 1, "gpt-4o-mini"),
        ("azure", 2, "my-deployment"),
        ("together", 3, "llama-3.3-70b-instruct"),
        ("4", 4, "deepseek-chat"),  # a bare body: custom_id is its line number
        ("lowercase-post", 5, "m"),
    ]


INVALID = [
    ("no-model", {"custom_id": "bad", "body": {"messages": MESSAGES}},
     "model is required (in the body or with --model)"),
    ("empty-model", batch_line("bad", model=""), "model is required (in the body or with --model)"),
    ("model-not-string", batch_line("bad", model=5), "model must be a string"),
    ("no-messages", {"custom_id": "bad", "body": {"model": "m"}}, "messages is required"),
    ("messages-not-array", batch_line("bad", messages="hi"), "messages must be an array"),
    ("messages-empty", batch_line("bad", messages=[]), "messages must not be empty"),
    ("role-unknown", batch_line("bad", messages=[*MESSAGES, {"role": "bot", "content": "x"}]),
     "messages[2].role must be one of system, user, assistant, tool, developer"),
    ("role-missing", batch_line("bad", messages=[{"content": "x"}, *MESSAGES]),
     "messages[0].role must be one of system, user, assistant, tool, developer"),
    ("role-not-string", batch_line("bad", messages=[MESSAGES[0], {"role": 1, "content": "x"}]),
     "messages[1].role must be one of system, user, assistant, tool, developer"),
    ("role-wrong-case", batch_line("bad", messages=[{"role": "User", "content": "x"}]),
     "messages[0].role must be one of system, user, assistant, tool, developer"),
    ("temperature-high", batch_line("bad", temperature=2.5), "temperature must be a number from 0 to 2 (got 2.5)"),
    ("temperature-negative", batch_line("bad", temperature=-0.1),
     "temperature must be a number from 0 to 2 (got -0.1)"),
    ("temperature-string", batch_line("bad", temperature="1"),
     'temperature must be a number from 0 to 2 (got "1")'),
    ("top-p-high", batch_line("bad", top_p=1.1), "top_p must be a number from 0 to 1 (got 1.1)"),
    ("top-p-negative", batch_line("bad", top_p=-1), "top_p must be a number from 0 to 1 (got -1)"),
    ("frequency-penalty-low", batch_line("bad", frequency_penalty=-2.1),
     "frequency_penalty must be a number from -2 to 2 (got -2.1)"),
    ("presence-penalty-high", batch_line("bad", presence_penalty=3),
     "presence_penalty must be a number from -2 to 2 (got 3)"),
    ("presence-penalty-bool", batch_line("bad", presence_penalty=True),
     "presence_penalty must be a number from -2 to 2 (got true)"),
    ("stop-five", batch_line("bad", stop=["a", "b", "c", "d", "e"]),
     "stop must be a string or an array of at most 4 strings"),
    ("stop-number-item", batch_line("bad", stop=["a", 1]), "stop must be a string or an array of at most 4 strings"),
    ("stop-number", batch_line("bad", stop=7), "stop must be a string or an array of at most 4 strings"),
    ("n-zero", batch_line("bad", n=0), "n must be an integer >= 1 (got 0)"),
    ("n-negative", batch_line("bad", n=-1), "n must be an integer >= 1 (got -1)"),
    ("n-float", batch_line("bad", n=1.5), "n must be an integer >= 1 (got 1.5)"),
    ("n-float-whole", batch_line("bad", n=2.0), "n must be an integer >= 1 (got 2.0)"),
    ("max-tokens-zero", batch_line("bad", max_tokens=0), "max_tokens must be an integer >= 1 (got 0)"),
    ("max-tokens-string", batch_line("bad", max_tokens="10"), 'max_tokens must be an integer >= 1 (got "10")'),
    ("stream-string", batch_line("bad", stream="yes"), "stream must be true or false"),
    ("stream-number", batch_line("bad", stream=1), "stream must be true or false"),
    ("user-number", batch_line("bad", user=5), "user must be a string"),
    ("url-embeddings", {**batch_line("bad"), "url": "/v1/embeddings"},
     "url /v1/embeddings is not a chat completions endpoint"),
    ("url-legacy-completions", {**batch_line("bad"), "url": "/v1/completions"},
     "url /v1/completions is not a chat completions endpoint"),
    ("method-get", {**batch_line("bad"), "method": "GET"}, "method must be POST"),
    ("custom-id-bool", {**batch_line("bad"), "custom_id": True}, "custom_id must be a string"),
    ("body-not-object", {"custom_id": "bad", "body": 5}, "body is not a JSON object"),
    ("no-body", {"custom_id": "bad", "url": "/v1/chat/completions"},
     "expected a batch input line (custom_id, body) or a chat request body (model, messages)"),
    ("two-reasons", batch_line("bad", temperature=9, n=0),
     "temperature must be a number from 0 to 2 (got 9); n must be an integer >= 1 (got 0)"),
    ("invalid-json", '{"custom_id": "bad",', "invalid JSON: Expecting property name enclosed in double quotes (column 21)"),
    ("not-an-object", '["bad"]', "not a JSON object (got an array)"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "reason"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_each_rule_rejects_its_line_and_the_others_still_load(stage, line, reason):
    result, rows = stage([batch_line("before"), "", line, batch_line("after")])
    assert [(r.line_no, r.reason) for r in result.rejects] == [(3, reason)]
    assert (result.lines_read, result.accepted) == (3, 2)
    assert list(rows) == ["before", "after"]
    assert result.rejects[0].raw == (line if isinstance(line, str) else json.dumps(line))


@pytest.mark.parametrize("role", ALLOWED_ROLES)
def test_each_allowed_role_is_accepted_and_counted(stage, role):
    messages = [
        {"role": role, "content": "a"},
        {"role": "user", "content": "b"},
        {"role": role, "content": "c"},
    ]
    result, rows = stage([batch_line("r", messages=messages)])
    assert result.rejects == ()
    counts = {f"msg_{r}": rows["r"][f"msg_{r}"] for r in ALLOWED_ROLES}
    expected = {f"msg_{r}": 0 for r in ALLOWED_ROLES}
    expected["msg_user"] = 1
    expected[f"msg_{role}"] += 2
    assert counts == expected
    assert rows["r"]["msg_count"] == 3


def test_allowed_roles_are_exactly_the_five():
    assert set(ALLOWED_ROLES) == {"system", "user", "assistant", "tool", "developer"}


def test_boundary_values_are_accepted_and_parsed(stage):
    result, rows = stage(
        [
            batch_line("low", temperature=0, top_p=0, frequency_penalty=-2, presence_penalty=-2, n=1,
                       max_tokens=1, stream=False, stop=[], user=""),
            batch_line("high", temperature=2, top_p=1, frequency_penalty=2, presence_penalty=2, n=128,
                       max_tokens=100000, stream=True, stop=["a", "b", "c", "d"], user="team-a"),
            batch_line("string-stop", stop="END", temperature=0.7),
            batch_line("nulls", temperature=None, stop=None, n=None),
        ]
    )  # fmt: skip
    assert result.rejects == ()
    pick = ("temperature", "top_p", "frequency_penalty", "presence_penalty", "n", "max_tokens", "stream", "stop",
            "user")  # fmt: skip
    assert {cid: tuple(r[k] for k in pick) for cid, r in rows.items()} == {
        "low": (0.0, 0.0, -2.0, -2.0, 1, 1, False, "[]", ""),
        "high": (2.0, 1.0, 2.0, 2.0, 128, 100000, True, '["a","b","c","d"]', "team-a"),
        "string-stop": (0.7, None, None, None, None, None, None, '"END"', None),
        "nulls": (None, None, None, None, None, None, None, None, None),
    }


def test_unknown_parameters_pass_through_as_extra_params(stage):
    result, rows = stage(
        [
            batch_line("extra", temperature=0.5, seed=7, response_format={"type": "json_object"},
                       tools=[{"type": "function", "function": {"name": "f"}}], stream_options={"include_usage": True}),
            batch_line("plain", temperature=0.5, max_tokens=10),
            {"model": "m", "messages": MESSAGES, "logprobs": True},
        ]
    )  # fmt: skip
    assert result.rejects == ()
    assert json.loads(rows["extra"]["extra_params"]) == {
        "seed": 7,
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "stream_options": {"include_usage": True},
    }
    assert rows["plain"]["extra_params"] is None
    assert json.loads(rows["3"]["extra_params"]) == {"logprobs": True}


def test_duplicates_are_rejected_naming_the_first_line(stage):
    result, rows = stage(
        [
            batch_line("a"),
            batch_line("b"),
            batch_line("a", temperature=1),
            {"model": "m", "messages": MESSAGES},  # bare body on line 4: custom_id "4"
            batch_line("4"),
            batch_line("b"),
        ]
    )
    assert [(r.line_no, r.reason) for r in result.rejects] == [
        (3, "duplicate custom_id 'a' (first at line 1)"),
        (5, "duplicate custom_id '4' (first at line 4)"),
        (6, "duplicate custom_id 'b' (first at line 2)"),
    ]
    assert list(rows) == ["a", "b", "4"]
    assert rows["a"]["temperature"] is None  # the first one is kept


def test_a_rejected_line_does_not_claim_its_custom_id(stage):
    result, rows = stage([batch_line("a", temperature=5), batch_line("a", temperature=1)])
    assert [(r.line_no, r.reason) for r in result.rejects] == [
        (1, "temperature must be a number from 0 to 2 (got 5)")
    ]
    assert rows["a"]["temperature"] == 1.0


def test_default_model_fills_only_a_missing_model(stage):
    result, rows = stage(
        [
            {"custom_id": "no-model", "body": {"messages": MESSAGES}},
            batch_line("own-model", model="gpt-4.1"),
            {"messages": MESSAGES},  # messages alone is a bare body too
        ],
        default_model="deepseek-chat",
    )
    assert result.rejects == ()
    assert {cid: r["model"] for cid, r in rows.items()} == {
        "no-model": "deepseek-chat",
        "own-model": "gpt-4.1",
        "3": "deepseek-chat",
    }


def test_without_default_model_a_missing_model_is_rejected(stage):
    result, _ = stage([{"messages": MESSAGES}])
    assert [(r.line_no, r.reason) for r in result.rejects] == [
        (1, "model is required (in the body or with --model)")
    ]


@pytest.mark.parametrize("store_content", [True, False])
def test_messages_hash_is_kept_whether_or_not_content_is(stage, store_content):
    result, rows = stage([batch_line("r")], store_content=store_content)
    text = json.dumps(MESSAGES, separators=(",", ":"))
    assert rows["r"]["messages_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert rows["r"]["messages"] == (text if store_content else None)
    assert (rows["r"]["msg_count"], rows["r"]["msg_system"], rows["r"]["msg_user"]) == (2, 1, 1)


def test_counts_and_hash_of_the_file(stage, tmp_path):
    result, _ = stage(
        [batch_line("a"), "", "   ", b'{"custom_id": "\xfe"}', batch_line("b", n=0), batch_line("c")]
    )
    path = tmp_path / "requests.jsonl"
    assert result.path == str(path)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # Blank lines are not read; an undecodable one is read and rejected.
    assert (result.lines_read, result.accepted) == (4, 2)
    assert [(r.file, r.line_no, r.reason) for r in result.rejects] == [
        (str(path), 4, "not valid UTF-8 (byte 16 of the line)"),
        (str(path), 5, "n must be an integer >= 1 (got 0)"),
    ]


def test_missing_requests_file_is_an_input_error(conn, tmp_path):
    from costlens.errors import InputError

    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError) as info:
        stage_request_file(conn, missing)
    assert info.value.file == str(missing)
    assert "cannot read" in str(info.value)


def test_staging_again_replaces_the_previous_file(stage):
    stage([batch_line("first")])
    _, rows = stage([batch_line("second")])
    assert list(rows) == ["second"]


def test_body_keeps_everything_for_sending(stage, conn):
    stage([without(batch_line("r", seed=1), "method")])
    (body,) = conn.execute("SELECT body FROM cl_req_input").fetchone()
    assert json.loads(body) == {"model": "gpt-4o-mini", "messages": MESSAGES, "seed": 1}
