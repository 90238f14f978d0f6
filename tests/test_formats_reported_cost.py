"""A usage object's ``cost`` (OpenRouter, FORMATS.md §9) is stored exactly, or the line is rejected.

results.reported_cost_usd is DECIMAL(38,15): the cost is the decimal of the number's JSON text as
the file holds it (never a DOUBLE's), so a cost with more than 15 decimal places (trailing zeros
aside), one too large for the column, a negative one or one that is not a number rejects the line.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from helpers import DATA

from costlens.ingest.replay import ReplayOptions, replay_files
from costlens.session import Settings, open_session

OPENROUTER = DATA / "formats" / "openrouter.jsonl"
PRICES = DATA / "formats" / "prices.csv"


def test_openrouter_usage_cost_is_stored_exactly(db_path):
    with open_session(Settings(db_path=db_path, pricing_path=PRICES)) as s:
        (result,) = replay_files(s.conn, ReplayOptions(files=[OPENROUTER])).results
        assert (result.stored, result.rejected) == (4, 0)
        got = s.conn.execute(
            """SELECT r.source_format, r.reported_cost_usd, r.reported_cost_source, c.reported_cost_usd,
                      c.cost_usd, typeof(r.reported_cost_usd)
               FROM results r JOIN request_costs c USING (run_id, request_id) ORDER BY r.request_id"""
        ).fetchall()
        assert got == [
            # costlens's own figure beside it (gpt-4o-mini: 14 x 0.15 + 5 x 0.60 = 5.1 / 1e6) agrees.
            ("chat_completion", Decimal("0.0000051"), "usage.cost", Decimal("0.0000051"), Decimal("0.0000051"),
             "DECIMAL(38,15)"),
            # 22 significant digits: a DOUBLE would have kept 17 of them.
            ("chat_completion", Decimal("1234567.123456789012345"), "usage.cost", Decimal("1234567.123456789012345"),
             Decimal("0.0000051"), "DECIMAL(38,15)"),
            ("chat_completion", Decimal("0.00000015"), "usage.cost", Decimal("0.00000015"), Decimal("0.0000051"),
             "DECIMAL(38,15)"),
            # Bring-your-own-key: OpenRouter charged nothing (the upstream cost stays in raw_usage).
            ("chat_completion", Decimal("0"), "usage.cost", Decimal("0"), Decimal("0.0000051"), "DECIMAL(38,15)"),
        ]  # fmt: skip
        raw = json.loads(s.conn.execute("SELECT raw_usage FROM results WHERE request_id = 4").fetchone()[0])
        assert (raw["is_byok"], raw["cost_details"]["upstream_inference_cost"]) == (True, 0.000123)


def with_cost(text: str) -> str:
    return (
        '{"id": "gen-1", "object": "chat.completion", "model": "openai/gpt-4o-mini", "created": 1735000000, '
        '"choices": [{"finish_reason": "stop", "message": {"content": "x \\"cost\\": 7"}}], '
        '"usage": {"prompt_tokens": 3, "completion_tokens": 1, "cost": ' + text + "}}"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0.000123456789012345", "usage.cost has more than 15 decimal places (0.000123456789012345)"),
        # Read as a DOUBLE this is 0.1: only the text shows the digits it would lose.
        ("0.1000000000000000000001", "usage.cost has more than 15 decimal places (0.1000000000000000000001)"),
        ("1e-16", "usage.cost has more than 15 decimal places (1e-16)"),
        ("1.5E30", "usage.cost is too large (1.5E30)"),
        ("-0.5", "usage.cost is negative (-0.5)"),
        ('"0.1"', 'usage.cost is not a number ("0.1")'),
        ("true", "usage.cost is not a number (true)"),
        ('{"total": 1}', 'usage.cost is not a number ({"total":1})'),
    ],
    ids=[
        "18-places",
        "beyond-double",
        "exponent-places",
        "too-large",
        "negative",
        "string",
        "boolean",
        "object",
    ],
)
def test_a_cost_that_cannot_be_stored_exactly_rejects_the_line(jsonl, replay, query, lines, text, reason):
    path = jsonl("or.jsonl", [lines.chat("a"), with_cost(text), lines.chat("b")])
    result = replay(path)
    assert [(r.file, r.line_no, r.reason) for r in result.rejects] == [(str(path), 2, reason)]
    assert (result.lines_read, result.stored, result.rejected) == (3, 2, 1)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("0.100000000000000000", Decimal("0.1")),  # trailing zeros lose nothing
        ("0.000000000000001", Decimal("0.000000000000001")),  # 15 places
        ("12e-3", Decimal("0.012")),
        ("5", Decimal("5")),
        ("-0", Decimal("0")),
        ("99999999999999999999999.999999999999999", Decimal("99999999999999999999999.999999999999999")),
        ("null", None),
    ],
)
def test_costs_that_are_stored(jsonl, replay, query, text, stored):
    result = replay(jsonl("or.jsonl", [with_cost(text)]))
    assert result.rejects == ()
    assert query("SELECT reported_cost_usd, reported_cost_source FROM results") == [
        {"reported_cost_usd": stored, "reported_cost_source": None if stored is None else "usage.cost"}
    ]


def test_a_batch_line_with_a_cost_leaves_the_fast_path_and_keeps_it(jsonl, replay, query, lines):
    line = lines.openai("c-1", usage={"prompt_tokens": 3, "completion_tokens": 1, "cost": 0.00002})
    plain = [lines.openai(f"p-{i}") for i in range(5)]
    replay(jsonl("out.jsonl", [*plain, line]))
    assert query("SELECT reported_cost_usd, reported_cost_source FROM results WHERE request_id = 6") == [
        {"reported_cost_usd": Decimal("0.00002"), "reported_cost_source": "usage.cost"}
    ]
    assert query("SELECT count(*) AS n FROM results WHERE reported_cost_usd IS NULL") == [{"n": 5}]
