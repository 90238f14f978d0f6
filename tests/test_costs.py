"""Golden and property tests for the money: ``request_costs`` (costlens/money/sql/request_costs.sql).

Every expected cost is a ``Decimal`` literal worked out by hand from the seed prices
(/work/shared/seed/chat-completions-api.txt, shipped as data/pricing.csv) or from the small
price file the test writes; the arithmetic is in the comment next to it, in $ per 1M tokens
(so "... / 1e6" turns it into dollars). Comparisons are exact ``==`` on ``Decimal``.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from helpers import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from costlens.ingest.replay import ReplayOptions, replay_files
from costlens.report.summary import summarize
from costlens.session import Session, Settings, open_session

# --- builders -----------------------------------------------------------------------------

PRICE_HEADER = (
    "model",
    "input_per_1m",
    "output_per_1m",
    "cached_input_per_1m",
    "cache_write_per_1m",
    "reasoning_per_1m",
    "service_tier",
    "min_prompt_tokens",
    "effective_from",
    "effective_to",
)

COLUMNS = (
    "custom_id",
    "priced_model",
    "cost_usd",
    "input_cost_usd",
    "output_cost_usd",
    "priced",
    "price_note",
    "price_tier",
    "service_tier",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "uncached_input_tokens",
    "price_effective_from",
    "status",
)

# 2024-03-26 17:44:14 UTC, the `created` of the FORMATS.md example.
CREATED = 1711475054


def price(
    model: str,
    input_per_1m: object,
    output_per_1m: object,
    *,
    cached: object = "",
    write: object = "",
    reasoning: object = "",
    tier: str = "standard",
    min_prompt: int = 0,
    start: str = "",
    end: str = "",
) -> dict[str, str]:
    return {
        "model": model,
        "input_per_1m": str(input_per_1m),
        "output_per_1m": str(output_per_1m),
        "cached_input_per_1m": str(cached),
        "cache_write_per_1m": str(write),
        "reasoning_per_1m": str(reasoning),
        "service_tier": tier,
        "min_prompt_tokens": str(min_prompt),
        "effective_from": start,
        "effective_to": end,
    }


def write_prices(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=PRICE_HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def openai_usage(
    prompt: int, completion: int, *, cached: int | None = None, reasoning: int | None = None
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    if reasoning is not None:
        usage["completion_tokens_details"] = {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return usage


def anthropic_usage(
    input_tokens: int, output_tokens: int, *, cache_write: int | None = None, cache_read: int | None = None
) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if cache_write is not None:
        usage["cache_creation_input_tokens"] = cache_write
    if cache_read is not None:
        usage["cache_read_input_tokens"] = cache_read
    return usage


def completion_body(
    model: str, usage: dict[str, Any] | None, *, created: int = CREATED, choices: int = 1, cid: str = "x"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"chatcmpl-{cid}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": f"answer {i}"}, "finish_reason": "stop"}
            for i in range(choices)
        ],
        "system_fingerprint": None,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chat(
    custom_id: str,
    model: str,
    usage: dict[str, Any] | None,
    *,
    created: int = CREATED,
    choices: int = 1,
) -> dict[str, Any]:
    """A plain chat.completion object (priced at the standard tier under tier=auto)."""
    return {
        "custom_id": custom_id,
        **completion_body(model, usage, created=created, choices=choices, cid=custom_id),
    }


def openai_batch(
    custom_id: str, model: str, usage: dict[str, Any] | None, *, created: int = CREATED
) -> dict[str, Any]:
    """An OpenAI Batch API output line (batch tier under tier=auto)."""
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": f"req_{custom_id}",
            "body": completion_body(model, usage, created=created, cid=custom_id),
        },
        "error": None,
    }


def anthropic(custom_id: str, model: str, usage: dict[str, Any]) -> dict[str, Any]:
    """A succeeded Anthropic Message Batches result (batch tier under tier=auto)."""
    return {
        "custom_id": custom_id,
        "result": {
            "type": "succeeded",
            "message": {
                "id": f"msg_{custom_id}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": "ok"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage,
            },
        },
    }


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


@contextmanager
def replayed(
    workdir: Path,
    lines: Sequence[dict[str, Any]],
    *,
    prices: Path | None = None,
    tier: str = "auto",
) -> Iterator[tuple[Session, dict[str, dict[str, Any]]]]:
    """Replay ``lines`` into a fresh DB under ``workdir``; yield the session and rows by custom_id."""
    workdir.mkdir(parents=True, exist_ok=True)
    jsonl = workdir / "output.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with open_session(Settings(db_path=workdir / "costs.duckdb", pricing_path=prices)) as s:
        outcome = replay_files(s.conn, ReplayOptions(files=[jsonl], tier=tier))  # type: ignore[arg-type]
        result = outcome.results[0]
        assert result.rejected == 0, result.rejects
        assert result.stored == len(lines)
        fetched = s.conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM request_costs ORDER BY request_id"
        ).fetchall()
        rows = {r[0]: dict(zip(COLUMNS, r, strict=True)) for r in fetched}
        assert len(rows) == len(lines)
        yield s, rows


def costs(
    workdir: Path,
    lines: Sequence[dict[str, Any]],
    *,
    prices: Path | None = None,
    tier: str = "auto",
) -> dict[str, dict[str, Any]]:
    with replayed(workdir, lines, prices=prices, tier=tier) as (_, rows):
        return rows


def assert_cost(row: dict[str, Any], total: Decimal, input_cost: Decimal, output_cost: Decimal) -> None:
    assert input_cost + output_cost == total  # the hand arithmetic itself adds up
    assert row["priced"] is True
    assert isinstance(row["cost_usd"], Decimal)
    assert (row["cost_usd"], row["input_cost_usd"], row["output_cost_usd"]) == (
        total,
        input_cost,
        output_cost,
    )


def assert_unpriced(row: dict[str, Any], note: str) -> None:
    assert row["cost_usd"] is None
    assert row["priced"] is False
    assert row["price_note"] is not None
    assert row["price_note"].startswith(note), row["price_note"]


# --- 1. cached tokens (OpenAI) --------------------------------------------------------------


def test_cached_tokens_without_cache_price_bill_each_token_once_at_input(tmp_path: Path) -> None:
    rows = costs(tmp_path, [chat("c", "gpt-4o-mini", openai_usage(1124, 215, cached=1024))])
    row = rows["c"]
    assert row["priced_model"] == "gpt-4o-mini"
    assert (row["prompt_tokens"], row["cached_tokens"], row["uncached_input_tokens"]) == (1124, 1024, 100)
    # shipped gpt-4o-mini: input 0.075, output 0.30, no cached price -> cached at input
    # input  = ((1124-1024)*0.075 + 1024*0.075) / 1e6 = (7.5 + 76.8) / 1e6 = 84.3 / 1e6
    # output = 215*0.30 / 1e6 = 64.5 / 1e6
    assert_cost(row, Decimal("0.0001488"), Decimal("0.0000843"), Decimal("0.0000645"))
    assert row["price_note"] is None


def test_cached_tokens_with_cache_price_billed_at_cache_price_only(tmp_path: Path) -> None:
    prices = write_prices(tmp_path / "prices.csv", [price("gpt-4o-mini", "0.075", "0.30", cached="0.0375")])
    rows = costs(tmp_path, [chat("c", "gpt-4o-mini", openai_usage(1124, 215, cached=1024))], prices=prices)
    # input  = ((1124-1024)*0.075 + 1024*0.0375) / 1e6 = (7.5 + 38.4) / 1e6 = 45.9 / 1e6
    #          (billing cached twice would be 84.3 + 38.4 = 122.7 / 1e6)
    # output = 215*0.30 / 1e6 = 64.5 / 1e6
    assert_cost(rows["c"], Decimal("0.0001104"), Decimal("0.0000459"), Decimal("0.0000645"))


# --- 2. reasoning tokens ------------------------------------------------------------------


def test_reasoning_tokens_without_reasoning_price_billed_once_at_output(tmp_path: Path) -> None:
    rows = costs(tmp_path, [chat("r", "gpt-4o-mini", openai_usage(100, 215, reasoning=192))])
    row = rows["r"]
    assert (row["completion_tokens"], row["reasoning_tokens"]) == (215, 192)
    # input  = 100*0.075 / 1e6 = 7.5 / 1e6
    # output = ((215-192)*0.30 + 192*0.30) / 1e6 = (6.9 + 57.6) / 1e6 = 64.5 / 1e6
    #          (dropping reasoning: 6.9; billing it twice: 122.1)
    assert_cost(row, Decimal("0.000072"), Decimal("0.0000075"), Decimal("0.0000645"))


def test_reasoning_tokens_with_reasoning_price(tmp_path: Path) -> None:
    prices = write_prices(tmp_path / "prices.csv", [price("gpt-4o-mini", "0.075", "0.30", reasoning="1.20")])
    rows = costs(tmp_path, [chat("r", "gpt-4o-mini", openai_usage(100, 215, reasoning=192))], prices=prices)
    # input  = 100*0.075 / 1e6 = 7.5 / 1e6
    # output = ((215-192)*0.30 + 192*1.20) / 1e6 = (6.9 + 230.4) / 1e6 = 237.3 / 1e6
    assert_cost(rows["r"], Decimal("0.0002448"), Decimal("0.0000075"), Decimal("0.0002373"))


def test_cached_and_reasoning_together_formats_md_example(tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path / "prices.csv",
        [price("gpt-4o-mini", "0.075", "0.30", cached="0.0375", reasoning="1.20")],
    )
    usage = openai_usage(1124, 215, cached=1024, reasoning=192)
    rows = costs(tmp_path, [chat("cr", "gpt-4o-mini", usage)], prices=prices)
    # input  = (100*0.075 + 1024*0.0375) / 1e6 = 45.9 / 1e6
    # output = (23*0.30 + 192*1.20) / 1e6 = 237.3 / 1e6
    assert_cost(rows["cr"], Decimal("0.0002832"), Decimal("0.0000459"), Decimal("0.0002373"))


# --- 3. n > 1 -----------------------------------------------------------------------------


def test_n_greater_than_one_billed_once_from_usage(tmp_path: Path) -> None:
    with replayed(tmp_path, [chat("n2", "gpt-4o", openai_usage(20, 30), choices=2)]) as (s, rows):
        # shipped gpt-4o: 1.25 / 5.00
        # input = 20*1.25 / 1e6 = 25 / 1e6; output = 30*5.00 / 1e6 = 150 / 1e6
        assert_cost(rows["n2"], Decimal("0.000175"), Decimal("0.000025"), Decimal("0.00015"))
        total = summarize(s.conn).total
        assert (total.requests, total.cost_usd) == (1, Decimal("0.000175"))


# --- 4. dated and prefixed model ids --------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "priced_model", "expected"),
    [
        # 1000 prompt + 1000 completion tokens: (1000*input + 1000*output) / 1e6
        ("gpt-4o-2024-08-06", "gpt-4o", Decimal("0.00625")),  # 1250 + 5000 = 6250
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini", Decimal("0.000375")),  # 75 + 300 = 375
        ("openai/gpt-4o", "gpt-4o", Decimal("0.00625")),  # 1250 + 5000
        ("anthropic/claude-3-5-haiku-20241022", "claude-3-5-haiku-20241022", Decimal("0.0024")),  # 400 + 2000
        ("meta-llama/llama-3.3-70b-instruct", "llama-3.3-70b-instruct", Decimal("0.00021")),  # 50 + 160
        ("GPT-4o", "gpt-4o", Decimal("0.00625")),  # 1250 + 5000
    ],
)
def test_dated_prefixed_and_cased_ids_resolve(
    tmp_path: Path, model_id: str, priced_model: str, expected: Decimal
) -> None:
    rows = costs(tmp_path, [chat("m", model_id, openai_usage(1000, 1000))])
    row = rows["m"]
    assert row["priced_model"] == priced_model
    assert row["priced"] is True
    assert row["price_note"] is None
    assert row["cost_usd"] == expected


def test_all_id_variants_in_one_file(tmp_path: Path) -> None:
    ids = {
        "a": ("gpt-4o-2024-08-06", "gpt-4o"),
        "b": ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        "c": ("openai/gpt-4o", "gpt-4o"),
        "d": ("anthropic/claude-3-5-haiku-20241022", "claude-3-5-haiku-20241022"),
        "e": ("meta-llama/llama-3.3-70b-instruct", "llama-3.3-70b-instruct"),
        "f": ("GPT-4o", "gpt-4o"),
        "g": ("OpenAI/GPT-4O-MINI-2024-07-18", "gpt-4o-mini"),  # prefix + case + alias at once
    }
    rows = costs(tmp_path, [chat(cid, model, openai_usage(10, 10)) for cid, (model, _) in ids.items()])
    assert {cid: row["priced_model"] for cid, row in rows.items()} == {cid: p for cid, (_, p) in ids.items()}


# --- 5. tiny prices -----------------------------------------------------------------------


def test_tiny_prices_are_not_rounded_away(tmp_path: Path) -> None:
    lines = [
        chat("out1", "deepseek-chat", openai_usage(0, 1)),
        chat("in1", "deepseek-chat", openai_usage(1, 0)),
    ]
    with replayed(tmp_path, lines) as (s, rows):
        # shipped deepseek-chat: 0.007 / 0.014
        # 1 completion token: 1*0.014 / 1e6 = 0.000000014
        assert_cost(rows["out1"], Decimal("0.000000014"), Decimal(0), Decimal("0.000000014"))
        # 1 prompt token: 1*0.007 / 1e6 = 0.000000007
        assert_cost(rows["in1"], Decimal("0.000000007"), Decimal("0.000000007"), Decimal(0))
        assert rows["out1"]["cost_usd"] > 0 and rows["in1"]["cost_usd"] > 0
        assert summarize(s.conn).total.cost_usd == Decimal("0.000000021")


def test_smallest_price_step_times_one_token(tmp_path: Path) -> None:
    prices = write_prices(tmp_path / "prices.csv", [price("nano", "0.000000001", "0.000000003")])
    rows = costs(tmp_path, [chat("t", "nano", openai_usage(1, 1))], prices=prices)
    # (1*0.000000001 + 1*0.000000003) / 1e6 = 4e-15, the last place of DECIMAL(38,15)
    assert_cost(rows["t"], Decimal("0.000000000000004"), Decimal("1E-15"), Decimal("3E-15"))


# --- 6. long-context tier -----------------------------------------------------------------


def test_long_context_row_applies_to_all_buckets(tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path / "prices.csv",
        [
            price("gpt-4.1", "2.00", "8.00", cached="0.50", reasoning="10.00", min_prompt=0),
            price("gpt-4.1", "4.00", "16.00", cached="1.00", reasoning="20.00", min_prompt=200000),
            price("claude-3-5-sonnet-20241022", "3", "15", cached="0.30", write="3.75", min_prompt=0),
            price("claude-3-5-sonnet-20241022", "6", "22.50", cached="0.60", write="7.50", min_prompt=200000),
        ],
    )
    lines = [
        chat("short", "gpt-4.1", openai_usage(199_999, 1000, cached=100_000, reasoning=400)),
        chat("long", "gpt-4.1", openai_usage(200_000, 1000, cached=100_000, reasoning=400)),
        # Anthropic: the threshold is on total input = input + cache write + cache read
        anthropic(
            "a-short",
            "claude-3-5-sonnet-20241022",
            anthropic_usage(1000, 100, cache_write=9000, cache_read=189_999),
        ),
        anthropic(
            "a-long",
            "claude-3-5-sonnet-20241022",
            anthropic_usage(1000, 100, cache_write=9000, cache_read=190_000),
        ),
    ]
    rows = costs(tmp_path, lines, prices=prices, tier="standard")
    # short: input  = (99_999*2.00 + 100_000*0.50) / 1e6 = (199_998 + 50_000) / 1e6 = 249_998 / 1e6
    #        output = (600*8.00 + 400*10.00) / 1e6 = (4_800 + 4_000) / 1e6 = 8_800 / 1e6
    assert_cost(rows["short"], Decimal("0.258798"), Decimal("0.249998"), Decimal("0.0088"))
    # long:  input  = (100_000*4.00 + 100_000*1.00) / 1e6 = 500_000 / 1e6
    #        output = (600*16.00 + 400*20.00) / 1e6 = (9_600 + 8_000) / 1e6 = 17_600 / 1e6
    assert_cost(rows["long"], Decimal("0.5176"), Decimal("0.5"), Decimal("0.0176"))
    # a-short (prompt 199_999): input  = (1000*3 + 9000*3.75 + 189_999*0.30) / 1e6
    #                                 = (3_000 + 33_750 + 56_999.7) / 1e6 = 93_749.7 / 1e6
    #                           output = 100*15 / 1e6 = 1_500 / 1e6
    assert rows["a-short"]["prompt_tokens"] == 199_999
    assert_cost(rows["a-short"], Decimal("0.0952497"), Decimal("0.0937497"), Decimal("0.0015"))
    # a-long (prompt 200_000): input  = (1000*6 + 9000*7.50 + 190_000*0.60) / 1e6
    #                               = (6_000 + 67_500 + 114_000) / 1e6 = 187_500 / 1e6
    #                          output = 100*22.50 / 1e6 = 2_250 / 1e6
    assert rows["a-long"]["prompt_tokens"] == 200_000
    assert_cost(rows["a-long"], Decimal("0.18975"), Decimal("0.1875"), Decimal("0.00225"))


def test_one_run_mixes_fixed_and_per_request_price_choices(tmp_path: Path) -> None:
    """Pairs with one unconditional row are joined, the rest chosen per request: same rules, one query."""
    prices = write_prices(
        tmp_path / "prices.csv",
        [
            # one standard row: every batch request falls back to it
            price("gpt-4o-mini", "0.15", "0.60"),
            # one batch row wins over two standard rows, whatever the prompt length
            price("gpt-4.1", "2.00", "8.00"),
            price("gpt-4.1", "4.00", "16.00", min_prompt=200000),
            price("gpt-4.1", "1.00", "4.00", tier="batch"),
            # a batch row only above a threshold: below it the standard row applies
            price("gpt-4o", "2.50", "10.00"),
            price("gpt-4o", "3.00", "12.00", tier="batch", min_prompt=1000),
        ],
    )
    lines = [
        openai_batch("mini", "gpt-4o-mini", openai_usage(1000, 100)),
        openai_batch("41-short", "gpt-4.1", openai_usage(1000, 100)),
        openai_batch("41-long", "gpt-4.1", openai_usage(300_000, 100)),
        openai_batch("4o-short", "gpt-4o", openai_usage(999, 100)),
        openai_batch("4o-long", "gpt-4o", openai_usage(1000, 100)),
    ]
    rows = costs(tmp_path, lines, prices=prices)
    tiers = {cid: (row["price_tier"], row["price_note"]) for cid, row in rows.items()}
    fallback = "tier fallback: no batch price, priced at standard"
    assert tiers == {
        "mini": ("standard", fallback),
        "41-short": ("batch", None),
        "41-long": ("batch", None),
        "4o-short": ("standard", fallback),
        "4o-long": ("batch", None),
    }
    # mini: (1000*0.15 + 100*0.60) / 1e6 = (150 + 60) / 1e6
    assert_cost(rows["mini"], Decimal("0.00021"), Decimal("0.00015"), Decimal("0.00006"))
    # 41-short: (1000*1.00 + 100*4.00) / 1e6 = (1_000 + 400) / 1e6
    assert_cost(rows["41-short"], Decimal("0.0014"), Decimal("0.001"), Decimal("0.0004"))
    # 41-long: (300_000*1.00 + 100*4.00) / 1e6 = (300_000 + 400) / 1e6
    assert_cost(rows["41-long"], Decimal("0.3004"), Decimal("0.3"), Decimal("0.0004"))
    # 4o-short: (999*2.50 + 100*10.00) / 1e6 = (2_497.5 + 1_000) / 1e6
    assert_cost(rows["4o-short"], Decimal("0.0034975"), Decimal("0.0024975"), Decimal("0.001"))
    # 4o-long: (1000*3.00 + 100*12.00) / 1e6 = (3_000 + 1_200) / 1e6
    assert_cost(rows["4o-long"], Decimal("0.0042"), Decimal("0.003"), Decimal("0.0012"))


# --- 7. effective dates -------------------------------------------------------------------


def test_effective_date_change_and_before_any_row(tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path / "prices.csv",
        [
            price("gpt-4o", "5.00", "15.00", start="2024-01-01", end="2025-01-01"),
            price("gpt-4o", "2.50", "10.00", start="2025-01-01"),
        ],
    )
    usage = openai_usage(1000, 100)
    lines = [
        chat("mid-2024", "gpt-4o", usage, created=epoch("2024-06-01T12:00:00")),
        chat("last-second", "gpt-4o", usage, created=epoch("2024-12-31T23:59:59")),
        chat("boundary", "gpt-4o", usage, created=epoch("2025-01-01T00:00:00")),
        chat("2026", "gpt-4o", usage, created=epoch("2026-03-01T00:00:00")),
        chat("first-second", "gpt-4o", usage, created=epoch("2024-01-01T00:00:00")),
        chat("too-early", "gpt-4o", usage, created=epoch("2023-12-31T23:59:59")),
    ]
    rows = costs(tmp_path, lines, prices=prices)
    # old row: (1000*5.00 + 100*15.00) / 1e6 = (5_000 + 1_500) / 1e6
    for cid in ("mid-2024", "last-second", "first-second"):
        assert_cost(rows[cid], Decimal("0.0065"), Decimal("0.005"), Decimal("0.0015"))
        assert rows[cid]["price_effective_from"] == datetime(2024, 1, 1)
    # new row: (1000*2.50 + 100*10.00) / 1e6 = (2_500 + 1_000) / 1e6
    for cid in ("boundary", "2026"):
        assert_cost(rows[cid], Decimal("0.0035"), Decimal("0.0025"), Decimal("0.001"))
        assert rows[cid]["price_effective_from"] == datetime(2025, 1, 1)
    row = rows["too-early"]
    assert row["priced_model"] == "gpt-4o"
    assert_unpriced(row, "unpriced: no price row in force")
    assert row["price_note"] == "unpriced: no price row in force at 2023-12-31 23:59:59"


# --- 8. batch tier ------------------------------------------------------------------------


def test_batch_line_uses_batch_row(tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path / "prices.csv",
        [
            price("gpt-4o-mini", "0.15", "0.60"),
            price("gpt-4o-mini", "0.075", "0.30", tier="batch"),
        ],
    )
    row = costs(tmp_path, [openai_batch("b", "gpt-4o-mini", openai_usage(1000, 1000))], prices=prices)["b"]
    assert (row["service_tier"], row["price_tier"]) == ("batch", "batch")
    # batch row: (1000*0.075 + 1000*0.30) / 1e6 = (75 + 300) / 1e6
    assert_cost(row, Decimal("0.000375"), Decimal("0.000075"), Decimal("0.0003"))
    assert row["price_note"] is None


def test_batch_line_without_batch_row_falls_back_to_standard(tmp_path: Path) -> None:
    prices = write_prices(tmp_path / "prices.csv", [price("gpt-4o-mini", "0.15", "0.60")])
    row = costs(tmp_path, [openai_batch("b", "gpt-4o-mini", openai_usage(1000, 1000))], prices=prices)["b"]
    assert (row["service_tier"], row["price_tier"]) == ("batch", "standard")
    # standard row: (1000*0.15 + 1000*0.60) / 1e6 = (150 + 600) / 1e6
    assert_cost(row, Decimal("0.00075"), Decimal("0.00015"), Decimal("0.0006"))
    assert row["price_note"].startswith("tier fallback")
    assert row["price_note"] == "tier fallback: no batch price, priced at standard"


def test_tier_standard_forces_standard_row(tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path / "prices.csv",
        [
            price("gpt-4o-mini", "0.15", "0.60"),
            price("gpt-4o-mini", "0.075", "0.30", tier="batch"),
        ],
    )
    lines = [openai_batch("b", "gpt-4o-mini", openai_usage(1000, 1000))]
    row = costs(tmp_path, lines, prices=prices, tier="standard")["b"]
    assert (row["service_tier"], row["price_tier"]) == ("standard", "standard")
    # (1000*0.15 + 1000*0.60) / 1e6
    assert_cost(row, Decimal("0.00075"), Decimal("0.00015"), Decimal("0.0006"))
    assert row["price_note"] is None


def test_batch_tier_on_a_plain_completion_with_explicit_tier(tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path / "prices.csv",
        [
            price("gpt-4o-mini", "0.15", "0.60"),
            price("gpt-4o-mini", "0.075", "0.30", tier="batch"),
        ],
    )
    rows = costs(tmp_path, [chat("c", "gpt-4o-mini", openai_usage(1000, 1000))], prices=prices, tier="batch")
    # (1000*0.075 + 1000*0.30) / 1e6
    assert_cost(rows["c"], Decimal("0.000375"), Decimal("0.000075"), Decimal("0.0003"))
    assert rows["c"]["price_tier"] == "batch"


# --- 9. Anthropic cache buckets -------------------------------------------------------------


def test_anthropic_cache_buckets(tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path / "prices.csv",
        [price("claude-3-5-haiku-20241022", "0.40", "2.00", cached="0.04", write="0.50")],
    )
    usage = anthropic_usage(100, 200, cache_write=500, cache_read=1000)
    row = costs(tmp_path, [anthropic("a-1", "claude-3-5-haiku-20241022", usage)], prices=prices)["a-1"]
    assert row["prompt_tokens"] == 1600  # 100 + 500 + 1000
    assert (row["cached_tokens"], row["cache_write_tokens"], row["uncached_input_tokens"]) == (1000, 500, 100)
    # input  = (100*0.40 + 500*0.50 + 1000*0.04) / 1e6 = (40 + 250 + 40) / 1e6 = 330 / 1e6
    # output = 200*2.00 / 1e6 = 400 / 1e6
    assert_cost(row, Decimal("0.00073"), Decimal("0.00033"), Decimal("0.0004"))
    # an Anthropic batch result is batch tier; this file has only a standard row
    assert row["price_note"].startswith("tier fallback")


def test_anthropic_cache_buckets_without_cache_prices(tmp_path: Path) -> None:
    usage = anthropic_usage(100, 200, cache_write=500, cache_read=1000)
    row = costs(tmp_path, [anthropic("a-1", "claude-3-5-haiku-20241022", usage)])["a-1"]
    # shipped: 0.40 / 2.00, no cache prices -> every input token once at 0.40
    # input  = (100 + 500 + 1000)*0.40 / 1e6 = 640 / 1e6; output = 200*2.00 / 1e6 = 400 / 1e6
    assert_cost(row, Decimal("0.00104"), Decimal("0.00064"), Decimal("0.0004"))


# --- 10. unknown model ----------------------------------------------------------------------


def test_unknown_model_is_unpriced_and_summary_excludes_it(tmp_path: Path) -> None:
    lines = [
        chat("known", "gpt-4o", openai_usage(1000, 100)),
        chat("unknown", "mystery-model-9000", openai_usage(70, 30)),
    ]
    with replayed(tmp_path, lines) as (s, rows):
        row = rows["unknown"]
        assert row["priced_model"] is None
        assert_unpriced(row, "unpriced: unknown model")
        assert row["price_note"] == "unpriced: unknown model"
        assert row["input_cost_usd"] is None and row["output_cost_usd"] is None
        # known: (1000*1.25 + 100*5.00) / 1e6 = (1_250 + 500) / 1e6
        assert_cost(rows["known"], Decimal("0.00175"), Decimal("0.00125"), Decimal("0.0005"))

        summary = summarize(s.conn)
        total = summary.total
        assert total.cost_usd == Decimal("0.00175")
        assert (total.requests, total.priced, total.unpriced) == (2, 1, 1)
        assert total.unpriced_tokens == 100  # 70 + 30
        by_model = {m.model: m for m in summary.models}
        mystery = by_model["mystery-model-9000"]
        assert mystery.cost_usd is None
        assert (mystery.unpriced, mystery.unpriced_tokens) == (1, 100)
        assert by_model["gpt-4o"].cost_usd == Decimal("0.00175")


# --- 11. expired / errored lines ------------------------------------------------------------


def test_errors_without_usage_are_not_billed(tmp_path: Path) -> None:
    lines = [
        {
            "id": "batch_req_1",
            "custom_id": "expired",
            "response": None,
            "error": {
                "code": "batch_expired",
                "message": "This request could not be executed before the completion window expired.",
            },
        },
        {
            "id": "batch_req_2",
            "custom_id": "http400",
            "response": {
                "status_code": 400,
                "request_id": "req_2",
                "body": {
                    "error": {
                        "message": "bad",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": None,
                    }
                },
            },
            "error": None,
        },
        {
            "custom_id": "a-errored",
            "result": {
                "type": "errored",
                "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "..."}},
            },
        },
        {"custom_id": "a-expired", "result": {"type": "expired"}},
        {"custom_id": "a-canceled", "result": {"type": "canceled"}},
        {
            "id": "vllm-1234",
            "custom_id": "vllm-failed",
            "response": {"status_code": 400, "request_id": "vllm-r", "body": None},
            "error": "model not found",
        },
    ]
    with replayed(tmp_path, lines) as (s, rows):
        for cid, row in rows.items():
            assert row["status"] == "error", cid
            assert row["cost_usd"] == Decimal(0), cid
            assert row["cost_usd"] is not None
            assert (row["input_cost_usd"], row["output_cost_usd"]) == (Decimal(0), Decimal(0)), cid
            assert row["priced"] is True, cid
            assert row["price_note"] == "not billed: error without usage", cid
        total = summarize(s.conn).total
        assert (total.requests, total.failed, total.unpriced, total.priced) == (6, 6, 0, 6)
        assert total.cost_usd == Decimal(0)


# --- 12. success without usage ------------------------------------------------------------


def test_success_without_usage_is_unpriced(tmp_path: Path) -> None:
    lines = [
        chat("chat-no-usage", "gpt-4o", None),
        openai_batch("batch-no-usage", "gpt-4o-mini", None),
    ]
    with replayed(tmp_path, lines) as (s, rows):
        for cid, row in rows.items():
            assert row["status"] == "ok", cid
            assert row["priced_model"] is not None, cid
            assert_unpriced(row, "unpriced: no usage reported")
            assert row["price_note"] == "unpriced: no usage reported"
        total = summarize(s.conn).total
        assert (total.unpriced, total.priced, total.cost_usd) == (2, 0, None)


# --- 13. empty price cell vs 0 ----------------------------------------------------------------


def test_empty_price_cell_is_unpriced_and_zero_is_free(tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path / "prices.csv",
        [
            price("gpt-4o", "1.25", ""),  # output not priced
            price("gpt-4o-mini", "", "0.30"),  # input not priced
            price("free-model", "0", "0"),
            price("deepseek-chat", "0.007", "0.014", cached=""),  # empty optional cell -> input price
        ],
    )
    lines = [
        chat("no-output-price", "gpt-4o", openai_usage(1000, 100)),
        chat("no-input-price", "gpt-4o-mini", openai_usage(1000, 100)),
        chat("free", "free-model", openai_usage(1000, 100, cached=500, reasoning=50)),
        chat("deepseek", "deepseek-chat", openai_usage(1000, 100, cached=1000)),
    ]
    with replayed(tmp_path, lines, prices=prices) as (s, rows):
        for cid in ("no-output-price", "no-input-price"):
            assert_unpriced(rows[cid], "unpriced: price cell empty")
            assert rows[cid]["price_note"] == "unpriced: price cell empty"
        free = rows["free"]
        assert free["cost_usd"] == Decimal(0) and free["cost_usd"] is not None
        assert free["priced"] is True
        assert free["price_note"] is None
        # cached at the input price: (1000*0.007 + 100*0.014) / 1e6 = (7 + 1.4) / 1e6
        assert_cost(rows["deepseek"], Decimal("0.0000084"), Decimal("0.000007"), Decimal("0.0000014"))
        total = summarize(s.conn).total
        assert (total.priced, total.unpriced, total.unpriced_tokens) == (2, 2, 2200)
        assert total.cost_usd == Decimal("0.0000084")


# --- 14. scale and sums ---------------------------------------------------------------------


def test_cost_columns_are_decimal_38_15(tmp_path: Path) -> None:
    with replayed(tmp_path, [chat("c", "gpt-4o", openai_usage(1, 1))]) as (s, _):
        types = s.conn.execute(
            "SELECT typeof(cost_usd), typeof(input_cost_usd), typeof(output_cost_usd) FROM request_costs"
        ).fetchone()
        assert types == ("DECIMAL(38,15)",) * 3
        described = {
            name: kind for name, kind, *_ in s.conn.execute("DESCRIBE SELECT * FROM request_costs").fetchall()
        }
        assert described["cost_usd"] == "DECIMAL(38,15)"
        exponent = s.conn.execute("SELECT cost_usd FROM request_costs").fetchone()[0].as_tuple().exponent
        assert exponent <= -12


def test_summary_sums_equal_decimal_sums_of_requests(tmp_path: Path) -> None:
    lines = [
        chat("a", "gpt-4o", openai_usage(1124, 215, cached=1024, reasoning=192)),
        chat("b", "gpt-4o-2024-08-06", openai_usage(7, 3)),
        chat("c", "deepseek-chat", openai_usage(1, 1)),
        chat("d", "deepseek-chat", openai_usage(333_333, 77_777)),
        chat("e", "gpt-4o-mini", openai_usage(13, 17, cached=5)),
        anthropic("f", "claude-3-5-haiku-20241022", anthropic_usage(9, 11, cache_write=3, cache_read=5)),
        chat("g", "no-such-model", openai_usage(10, 10)),
        chat("h", "llama-3.3-70b-instruct", None),
        {"custom_id": "i", "result": {"type": "expired"}},
    ]
    with replayed(tmp_path, lines) as (s, rows):
        summary = summarize(s.conn)
        priced = [r for r in rows.values() if r["priced"]]
        assert len(priced) == 7
        total = summary.total
        assert total.cost_usd == sum((r["cost_usd"] for r in priced), Decimal(0))
        assert total.input_cost_usd == sum((r["input_cost_usd"] for r in priced), Decimal(0))
        assert total.output_cost_usd == sum((r["output_cost_usd"] for r in priced), Decimal(0))
        assert total.cost_usd == total.input_cost_usd + total.output_cost_usd
        # hand check of the grand total (all $/1M, then / 1e6):
        # a gpt-4o:     1124*1.25 + 215*5.00 = 1405 + 1075            = 2480
        # b gpt-4o:     7*1.25 + 3*5.00      = 8.75 + 15              = 23.75
        # c deepseek:   1*0.007 + 1*0.014                              = 0.021
        # d deepseek:   333333*0.007 + 77777*0.014 = 2333.331 + 1088.878 = 3422.209
        # e mini:       13*0.075 + 17*0.30   = 0.975 + 5.1            = 6.075
        # f haiku:      (9+3+5)*0.40 + 11*2.00 = 6.8 + 22             = 28.8
        # g, h unpriced; i not billed (0)
        # total = 2480 + 23.75 + 0.021 + 3422.209 + 6.075 + 28.8 = 5960.855
        assert total.cost_usd == Decimal("0.005960855")
        for model in summary.models:
            mine = [r for r in priced if (r["priced_model"] or "(unknown model)") == model.model]
            if mine:
                assert model.cost_usd == sum((r["cost_usd"] for r in mine), Decimal(0)), model.model
        assert (total.unpriced, total.unpriced_tokens) == (2, 20)


# --- property: SQL == independent Decimal reference -----------------------------------------

MODEL = "prop-model"
MILLION = Decimal(1_000_000)

# Prices: up to 9 decimal places and below 1,000,000 $/1M, as the price-file parser allows.
money = st.builds(
    lambda units, places: min(Decimal(units).scaleb(-places), Decimal("999999.999999999")),
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=9),
)
optional_money = st.none() | money
tokens = st.integers(min_value=0, max_value=2 * 10**9)


@st.composite
def openai_request(draw: st.DrawFn) -> dict[str, Any]:
    prompt = draw(tokens)
    completion = draw(tokens)
    cached = draw(st.none() | st.integers(min_value=0, max_value=prompt))
    reasoning = draw(st.none() | st.integers(min_value=0, max_value=completion))
    return {
        "shape": "openai",
        "prompt": prompt,
        "completion": completion,
        "cached": cached,
        "reasoning": reasoning,
    }


@st.composite
def anthropic_request(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "shape": "anthropic",
        "input": draw(tokens),
        "output": draw(tokens),
        "cache_write": draw(st.none() | tokens),
        "cache_read": draw(st.none() | tokens),
    }


def reference_cost(req: dict[str, Any], p: dict[str, Decimal | None]) -> tuple[Decimal, Decimal]:
    """(input, output) dollars, written from FORMATS.md §3 and the bucket rules, not from the SQL."""
    inp, out = p["input"], p["output"]
    assert inp is not None and out is not None
    cached_price = inp if p["cached"] is None else p["cached"]
    write_price = inp if p["write"] is None else p["write"]
    reasoning_price = out if p["reasoning"] is None else p["reasoning"]
    with localcontext(prec=60):
        if req["shape"] == "openai":
            # prompt INCLUDES cached; completion INCLUDES reasoning
            cached = req["cached"] or 0
            reasoning = req["reasoning"] or 0
            fresh, read, written = req["prompt"] - cached, cached, 0
            visible = req["completion"] - reasoning
        else:
            # input EXCLUDES the cache; output includes thinking, no separate reasoning count
            fresh, read, written = req["input"], req["cache_read"] or 0, req["cache_write"] or 0
            visible, reasoning = req["output"], 0
        input_cost = (fresh * inp + read * cached_price + written * write_price) / MILLION
        output_cost = (visible * out + reasoning * reasoning_price) / MILLION
    return input_cost, output_cost


def request_line(custom_id: str, req: dict[str, Any]) -> dict[str, Any]:
    if req["shape"] == "openai":
        usage = openai_usage(
            req["prompt"], req["completion"], cached=req["cached"], reasoning=req["reasoning"]
        )
        return chat(custom_id, MODEL, usage)
    usage = anthropic_usage(
        req["input"], req["output"], cache_write=req["cache_write"], cache_read=req["cache_read"]
    )
    return anthropic(custom_id, MODEL, usage)


@settings(max_examples=examples(60))
@given(
    requests=st.lists(openai_request() | anthropic_request(), min_size=1, max_size=4),
    prices=st.fixed_dictionaries(
        {
            "input": money,
            "output": money,
            "cached": optional_money,
            "write": optional_money,
            "reasoning": optional_money,
        }
    ),
)
def test_sql_cost_matches_decimal_reference(
    requests: list[dict[str, Any]], prices: dict[str, Decimal | None]
) -> None:
    def cell(value: Decimal | None) -> str:
        return "" if value is None else format(value, "f")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        price_csv = write_prices(
            workdir / "prices.csv",
            [
                price(
                    MODEL,
                    cell(prices["input"]),
                    cell(prices["output"]),
                    cached=cell(prices["cached"]),
                    write=cell(prices["write"]),
                    reasoning=cell(prices["reasoning"]),
                )
            ],
        )
        lines = [request_line(f"r{i}", req) for i, req in enumerate(requests)]
        with replayed(workdir, lines, prices=price_csv) as (s, rows):
            want_total = Decimal(0)
            for i, req in enumerate(requests):
                row = rows[f"r{i}"]
                want_in, want_out = reference_cost(req, prices)
                assert row["priced"] is True
                assert row["input_cost_usd"] == want_in, (req, prices)
                assert row["output_cost_usd"] == want_out, (req, prices)
                with localcontext(prec=60):
                    assert row["cost_usd"] == want_in + want_out, (req, prices)
                    want_total += want_in + want_out
            with localcontext(prec=60):
                assert summarize(s.conn).total.cost_usd == want_total


TIERS = ("standard", "batch", "flex", "priority")


@settings(max_examples=examples(40))
@given(
    threshold=st.integers(min_value=1, max_value=10**6),
    present=st.lists(st.booleans(), min_size=4, max_size=4),
    other_tier=st.sampled_from(TIERS[1:]),
    tier=st.sampled_from(TIERS),
    prompt_fraction=st.fractions(min_value=0, max_value=2),
    completion=st.integers(min_value=0, max_value=10**6),
)
def test_price_row_choice_matches_reference(
    threshold: int,
    present: list[bool],
    other_tier: str,
    tier: str,
    prompt_fraction: Any,
    completion: int,
) -> None:
    """Own tier beats standard; within it the highest min_prompt_tokens <= prompt wins, for all buckets."""
    prompt = int(threshold * prompt_fraction)
    layout = [("standard", 0), ("standard", threshold), (other_tier, 0), (other_tier, threshold)]
    # row k (1-based) costs k $/1M input and 10*k $/1M output, so the cost names the row
    rows = [
        (row_tier, min_prompt, Decimal(k), Decimal(10 * k))
        for k, ((row_tier, min_prompt), keep) in enumerate(zip(layout, present, strict=True), start=1)
        if keep
    ]
    eligible = [r for r in rows if r[0] in (tier, "standard") and r[1] <= prompt]
    chosen = max(eligible, key=lambda r: (r[0] == tier, r[1]), default=None)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        price_csv = write_prices(
            workdir / "prices.csv",
            [price(MODEL, p_in, p_out, tier=t, min_prompt=m) for t, m, p_in, p_out in rows]
            or [price("some-other-model", "1", "1")],
        )
        lines = [chat("r", MODEL, openai_usage(prompt, completion))]
        with replayed(workdir, lines, prices=price_csv, tier=tier) as (_, got):
            row = got["r"]
            assert row["service_tier"] == tier
            if not rows:
                assert_unpriced(row, "unpriced: unknown model")
            elif chosen is None:
                assert_unpriced(row, "unpriced: no price row in force")
            else:
                chosen_tier, _, p_in, p_out = chosen
                assert row["price_tier"] == chosen_tier
                assert row["input_cost_usd"] == prompt * p_in / MILLION
                assert row["output_cost_usd"] == completion * p_out / MILLION
                if chosen_tier == tier:
                    assert row["price_note"] is None
                else:
                    assert row["price_note"] == f"tier fallback: no {tier} price, priced at standard"
