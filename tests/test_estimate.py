"""``costlens estimate``: figures against hand computation on round prices, unbounded output,
history from past runs, every priced model by default, and nothing written to the database."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import reference_prompt_tokens

from costlens.money.estimate import estimate_file
from costlens.session import Settings, open_session

PER_1M = Decimal("0.000001")
SHORT = [{"role": "user", "content": "What is 2+2?"}]
LONG = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three rivers in Europe."},
]


def line(custom_id: str, messages: list[dict[str, str]], **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "body": {"model": "whatever", "messages": messages, **body}}


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    """alpha: $2 in / $8 out per 1M; beta: $1 / $4; gamma has no price; 'a' is an alias of alpha."""
    path = tmp_path / "prices.csv"
    path.write_text("model,input_per_1m,output_per_1m\nalpha,2,8\nbeta,1,4\ngamma,,\n", encoding="utf-8")
    return path


@pytest.fixture
def open_priced(prices: Path, db_path: Path, tmp_path: Path):
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("alias,model\na,alpha\n", encoding="utf-8")
    return lambda: open_session(Settings(db_path=db_path, pricing_path=prices, extra_aliases=(aliases,)))


def count(messages: list[dict[str, str]]) -> int:
    """Prompt tokens by the cookbook recipe on tiktoken; costlens counts unknown models on o200k_base."""
    return reference_prompt_tokens(messages, "o200k_base")


def test_input_and_worst_case_are_priced_exactly(open_priced, jsonl):
    path = jsonl("reqs.jsonl", [line("1", SHORT, max_tokens=10), line("2", LONG, max_tokens=20, n=2), "oops"])
    with open_priced() as s:
        result = estimate_file(s.conn, path, ["alpha", "a", "gamma"])
    prompt = count(SHORT) + count(LONG)
    alpha, alias, gamma = result.models
    assert (alpha.requests, alpha.input_tokens, alpha.max_output_tokens) == (2, prompt, 10 + 40)
    assert alpha.input_cost_usd == prompt * 2 * PER_1M
    assert alpha.worst_output_cost_usd == 50 * 8 * PER_1M
    assert alpha.worst_total_usd == prompt * 2 * PER_1M + 50 * 8 * PER_1M
    assert (alpha.bounded_requests, alpha.unbounded_requests, alpha.history_requests) == (2, 0, 0)
    assert alpha.expected_output_tokens is None and alpha.expected_total_usd is None
    # An alias resolves exactly as the cost view resolves it.
    assert (alias.priced_model, alias.worst_total_usd) == ("alpha", alpha.worst_total_usd)
    assert (gamma.priced, gamma.input_cost_usd, gamma.worst_total_usd) == (False, None, None)
    assert [(r.line_no, r.reason) for r in result.requests.rejects] == [
        (3, "invalid JSON: Expecting value (column 1)")
    ]


def test_without_max_tokens_and_history_the_output_is_unbounded_and_input_is_still_priced(open_priced, jsonl):
    path = jsonl("reqs.jsonl", [line("1", SHORT, max_tokens=10), line("2", SHORT)])
    with open_priced() as s:
        (beta,) = estimate_file(s.conn, path, ["beta"]).models
    assert (beta.bounded_requests, beta.unbounded_requests) == (1, 1)
    assert beta.input_cost_usd == 2 * count(SHORT) * PER_1M
    assert beta.worst_output_cost_usd is None and beta.worst_total_usd is None
    assert beta.as_json()["worst_case_total_usd"] is None and beta.as_json()["input_cost_usd"] is not None


def test_history_of_the_same_model_gives_the_expected_cost_and_bounds_open_requests(
    open_priced, jsonl, lines
):
    from costlens.ingest.replay import ReplayOptions, replay_files

    past = jsonl(
        "past.jsonl",
        [
            lines.chat("p1", model="alpha", usage={"prompt_tokens": 50, "completion_tokens": 30}),
            lines.chat("p2", model="ALPHA", usage={"prompt_tokens": 50, "completion_tokens": 41}),
            lines.chat("p3", model="beta", usage={"prompt_tokens": 50, "completion_tokens": 999}),
        ],
    )
    path = jsonl("reqs.jsonl", [line("1", SHORT, max_tokens=100, n=2), line("2", SHORT)])
    with open_priced() as s:
        replay_files(s.conn, ReplayOptions(files=[past]))
        (alpha,) = estimate_file(s.conn, path, ["alpha"]).models
    # Past alpha requests: (30 + 41) / 2 = 35.5 completion tokens per choice.
    assert (alpha.history_requests, alpha.history_bounded_requests, alpha.unbounded_requests) == (2, 1, 0)
    assert alpha.expected_output_tokens == 71 + 36  # n=2 -> 71; n=1 -> 35.5 rounded half up
    assert alpha.max_output_tokens == 200 + 36  # max_tokens x n, and the expectation for the open one
    assert alpha.expected_output_cost_usd == 107 * 8 * PER_1M
    assert alpha.expected_total_usd == alpha.input_cost_usd + 107 * 8 * PER_1M
    assert alpha.worst_total_usd == alpha.input_cost_usd + 236 * 8 * PER_1M


def test_no_model_means_every_priced_model_and_nothing_is_stored(open_priced, jsonl):
    path = jsonl("reqs.jsonl", [{"custom_id": "x", "body": {"messages": SHORT, "max_tokens": 5}}])
    with open_priced() as s:
        result = estimate_file(s.conn, path)
        assert s.conn.execute(
            "SELECT (SELECT count(*) FROM requests) + (SELECT count(*) FROM results)"
        ).fetchall() == [(0,)]
    assert [m.model for m in result.models] == ["alpha", "beta"]  # gamma has no price
    assert result.requests.rejects == ()  # a line without a model is fine here


def test_cli_table_and_json(invoke, prices, jsonl):
    path = jsonl("reqs.jsonl", [line("1", SHORT, max_tokens=10), line("2", SHORT)])
    result = invoke("--pricing", prices, "estimate", path, "--model", "alpha", "--json")
    assert result.exit_code == 0, result.stderr
    (alpha,) = json.loads(result.stdout)["models"]
    assert alpha["input_cost_usd"] == str(2 * count(SHORT) * 2 * PER_1M).rstrip("0")
    assert alpha["worst_case_total_usd"] is None and alpha["unbounded_requests"] == 1
    text = invoke("--pricing", prices, "estimate", path)
    assert text.exit_code == 0
    assert "unbounded" in text.stdout and "alpha: 1 requests have no max_tokens" in " ".join(
        text.stdout.split()
    )
    assert invoke("--pricing", prices, "estimate", jsonl("bad.jsonl", ["x"])).exit_code == 1
