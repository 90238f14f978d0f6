"""`costlens reconcile`: provider exports against replayed traffic, with planted differences.

Each test replays JSONL result lines into the test DB (costlens's side), writes provider export
pages as the APIs return them (the provider's side), and checks every figure of the cells it
planted a difference in — the provider's figure, costlens's, the difference, the verdict and the
cause — hand-computed from data/pricing.csv:

- gpt-4o-mini (via its alias gpt-4o-mini-2024-07-18): $0.075 input, $0.30 output per 1M tokens.
  A request of 2,000,000 input and 400,000 output tokens costs 0.15 + 0.12 = $0.27.
- gpt-4o (alias gpt-4o-2024-08-06): $1.25 / $5.00; no batch row, so a batch request of the same
  size is priced at standard: 2.50 + 2.00 = $4.50 (OpenAI bills it at half: $2.25).
- claude-3-5-haiku-20241022: $0.40 / $2.00, no cache prices (cache reads and writes at input).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import Lines

L = Lines()
AUG1 = date(2025, 8, 1)
MINI = "gpt-4o-mini-2024-07-18"
GPT4O = "gpt-4o-2024-08-06"
HAIKU = "claude-3-5-haiku-20241022"
BIG = {"prompt_tokens": 2_000_000, "completion_tokens": 400_000, "total_tokens": 2_400_000}


def unix(day: int, hour: int = 0) -> int:
    """Unix seconds of 2025-08-01 + ``day`` days, at ``hour`` UTC."""
    return int((datetime(2025, 8, 1, hour, tzinfo=UTC) + timedelta(days=day)).timestamp())


def iso(day: int) -> str:
    return (AUG1 + timedelta(days=day)).isoformat() + "T00:00:00Z"


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


# --- costlens's side ------------------------------------------------------------------------------


def chat(
    custom_id: str, day: int, *, model: str = MINI, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A chat.completion line (tier standard) created at 10:00 UTC on ``day``."""
    return L.chat(custom_id, model=model, created=unix(day, 10), usage=dict(usage or BIG))


def batch(custom_id: str, day: int, *, model: str = GPT4O) -> dict[str, Any]:
    """An OpenAI Batch output line (tier batch), its body created at 11:00 UTC on ``day``."""
    return L.openai(custom_id, model=model, created=unix(day, 11), usage=dict(BIG))


# --- the provider's side --------------------------------------------------------------------------


def usage_result(model: str | None, requests: int, *, input_tokens: int = 2_000_000, output_tokens: int = 400_000,
                 cached: int = 0, batch_flag: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """One result of an OpenAI Usage API bucket, for ``requests`` requests of the standard size."""
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": input_tokens * requests,
        "output_tokens": output_tokens * requests,
        "input_cached_tokens": cached * requests,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "num_model_requests": requests,
        "project_id": None,
        "user_id": None,
        "api_key_id": None,
        "model": model,
        "batch": batch_flag,
        "service_tier": None,
    }


def openai_page(buckets: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """A page of 1d buckets (day offset -> results), as the OpenAI organization APIs return it."""
    return {
        "object": "page",
        "data": [
            {"object": "bucket", "start_time": unix(day), "end_time": unix(day + 1), "results": results}
            for day, results in sorted(buckets.items())
        ],
        "has_more": False,
        "next_page": None,
    }


def cost_result(line_item: str | None, value: Any, currency: str = "usd") -> dict[str, Any]:
    return {
        "object": "organization.costs.result",
        "amount": {"value": value, "currency": currency},
        "line_item": line_item,
        "project_id": None,
    }


def mini_costs(input_usd: str = "0.15", output_usd: str = "0.12", requests: int = 2) -> list[dict[str, Any]]:
    """gpt-4o-mini's cost results of one day, per line item (values as strings: the API may send either)."""
    return [
        cost_result(f"{MINI}, input", str(Decimal(input_usd) * requests)),
        cost_result(f"{MINI}, output", str(Decimal(output_usd) * requests)),
    ]


def anthropic_page(buckets: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "data": [
            {"starting_at": iso(day), "ending_at": iso(day + 1), "results": results}
            for day, results in sorted(buckets.items())
        ],
        "has_more": False,
        "next_page": None,
    }


def anthropic_usage(tier: str, *, uncached: int, read: int, write_5m: int, output: int) -> dict[str, Any]:
    return {
        "uncached_input_tokens": uncached,
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": write_5m},
        "cache_read_input_tokens": read,
        "output_tokens": output,
        "server_tool_use": {"web_search_requests": 0},
        "model": HAIKU,
        "service_tier": tier,
        "context_window": "0-200k",
        "workspace_id": None,
        "api_key_id": None,
    }


def anthropic_cost(tier: str, token_type: str, cents: str) -> dict[str, Any]:
    return {
        "amount": cents,
        "currency": "USD",
        "cost_type": "tokens",
        "description": f"Claude Haiku 3.5 {token_type}",
        "model": HAIKU,
        "service_tier": tier,
        "token_type": token_type,
        "context_window": "0-200k",
        "workspace_id": None,
    }


# Anthropic usage of one request: 1,000,000 uncached input, 200,000 cache reads, 300,000 5-minute
# cache writes, 100,000 output. costlens stores input = 1,500,000 (cache included); with no cache
# prices every input token is billed at $0.40/1M: 0.60, output 100,000 x $2.00/1M = 0.20 -> $0.80.
HAIKU_USAGE = {
    "input_tokens": 1_000_000,
    "output_tokens": 100_000,
    "cache_read_input_tokens": 200_000,
    "cache_creation_input_tokens": 300_000,
}


def haiku_day(
    tier: str, requests: int, cents_per_request: Decimal
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The usage result and the cost results (in cents, per token type) of one day of haiku traffic."""
    usage = anthropic_usage(
        tier, uncached=1_000_000 * requests, read=200_000 * requests, write_5m=300_000 * requests,
        output=100_000 * requests,
    )  # fmt: skip
    # At the list price: uncached 40 cents, reads 8, writes 12, output 20 per request = 80 cents.
    share = cents_per_request / 80
    costs = [
        anthropic_cost(tier, kind, str(cents * requests * share))
        for kind, cents in (
            ("uncached_input_tokens", 40),
            ("cache_read_input_tokens", 8),
            ("cache_creation.ephemeral_5m_input_tokens", 12),
            ("output_tokens", 20),
        )
    ]
    return usage, costs


# --- running it -----------------------------------------------------------------------------------


def reconcile_json(invoke: Any, *args: Any) -> tuple[int, dict[str, Any]]:
    result = invoke(*args, "--json")
    assert result.exit_code in (0, 5), (result.exit_code, result.stdout, result.stderr)
    return result.exit_code, json.loads(result.stdout)


def cells_by(data: dict[str, Any]) -> dict[tuple[str, str, str | None, str | None, str], dict[str, Any]]:
    """(day, source, model, tier, measure) -> cell."""
    return {(c["day"], c["source"], c["model"], c["tier"], c["measure"]): c for c in data["cells"]}


def not_ok(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (c["day"], c["source"], c["model"], c["measure"], c["provider"], c["costlens"], c["difference"], c["verdict"],
         c["cause"])
        for c in data["cells"] if c["verdict"] != "ok"
    ]  # fmt: skip


@pytest.fixture
def three_days(jsonl, invoke):
    """costlens: 2 gpt-4o-mini requests a day on Aug 1-3 (standard tier, chat.completion lines)."""

    def replay(skip_days: tuple[int, ...] = (), **usage: Any) -> None:
        lines = [
            chat(f"m{d}-{i}", d, usage={**BIG, **usage})
            for d in range(3)
            if d not in skip_days
            for i in range(2)
        ]
        path = jsonl("traffic.jsonl", lines)
        assert invoke("replay", path).exit_code == 0

    return replay


def test_a_clean_month_reconciles_to_zero_difference_and_exits_0(invoke, jsonl, tmp_path):
    """August 2025: 2 gpt-4o-mini requests a day (standard) and 1 gpt-4o batch request a day, with a
    sheet that has gpt-4o's batch row at half price: every cell of both exports agrees exactly."""
    lines = [chat(f"m{d}-{i}", d) for d in range(31) for i in range(2)]
    assert invoke("replay", jsonl("chat.jsonl", lines)).exit_code == 0
    assert invoke("replay", jsonl("batch.jsonl", [batch(f"b{d}", d) for d in range(31)])).exit_code == 0
    sheet = tmp_path / "batch-prices.csv"
    sheet.write_text(
        "model,input_per_1m,output_per_1m,service_tier\ngpt-4o,1.25,5.00,standard\ngpt-4o,0.625,2.50,batch\n"
    )

    def usage_day() -> list[dict[str, Any]]:
        return [usage_result(MINI, 2, batch_flag=False), usage_result(GPT4O, 1, batch_flag=True)]

    def costs_day() -> list[dict[str, Any]]:
        # gpt-4o batch: 2,000,000 x $0.625/1M = 1.25 input, 400,000 x $2.50/1M = 1.00 output.
        return [*mini_costs(), cost_result(f"{GPT4O}, input", 1.25), cost_result(f"{GPT4O}, output", "1.00")]

    # Two usage pages (the API pages by 31 days at most; here by half-month) and one costs page.
    first = write_json(tmp_path / "usage-1.json", openai_page({d: usage_day() for d in range(15)}))
    second = write_json(tmp_path / "usage-2.json", openai_page({d: usage_day() for d in range(15, 31)}))
    costs = write_json(tmp_path / "costs.json", openai_page({d: costs_day() for d in range(31)}))

    code, data = reconcile_json(invoke, "--extra-pricing", sheet, "reconcile", first, second, costs)
    assert code == 0 and data["status"] == "ok"
    assert not_ok(data) == []
    # 31 days x (2 models x 4 usage figures + 2 models x cost).
    assert data["verdicts"] == {
        "ok": 31 * 10,
        "differs": 0,
        "missing in costlens": 0,
        "missing at provider": 0,
    }
    totals = {(t["source"], t["measure"]): t for t in data["totals"]}
    assert (
        totals["openai-usage", "requests"]["provider"] == totals["openai-usage", "requests"]["costlens"] == 93
    )
    assert totals["openai-usage", "input_tokens"]["costlens"] == 93 * 2_000_000
    # Money: 62 x $0.27 + 31 x $2.25 = 16.74 + 69.75.
    assert totals["openai-costs", "cost_usd"] == {
        "source": "openai-costs", "measure": "cost_usd", "provider": "86.49", "costlens": "86.49", "difference": "0",
        "cells": 62, "verdicts": {"ok": 62, "differs": 0, "missing in costlens": 0, "missing at provider": 0},
    }  # fmt: skip
    cell = cells_by(data)["2025-08-31", "openai-usage", GPT4O, "batch", "requests"]
    assert (cell["provider"], cell["costlens"], cell["difference"], cell["cause"]) == (1, 1, 0, None)
    assert data["period"] == {"first_day": "2025-08-01", "last_day": "2025-08-31"}
    assert [(i["file"], i["kind"], i["detected"], i["buckets"]) for i in data["inputs"]] == [
        ("usage-1.json", "openai-usage", True, 15),
        ("usage-2.json", "openai-usage", True, 16),
        ("costs.json", "openai-costs", True, 31),
    ]
    text = invoke("--extra-pricing", sheet, "reconcile", first, second, costs)
    assert text.exit_code == 0
    assert (
        "Read usage-1.json as openai-usage (detected): 15 buckets, 30 results, 2025-08-01..2025-08-15."
        in text.stdout
    )
    assert "all 310 cells agree within the tolerance." in text.stdout


def test_a_day_of_traffic_costlens_never_saw(invoke, three_days, tmp_path):
    three_days(skip_days=(1,))  # costlens logged nothing on Aug 2; the provider billed 2 requests
    usage = write_json(tmp_path / "usage.json", openai_page({d: [usage_result(MINI, 2)] for d in range(3)}))
    costs = write_json(tmp_path / "costs.json", openai_page({d: mini_costs() for d in range(3)}))
    code, data = reconcile_json(invoke, "reconcile", usage, costs)
    assert code == 5 and data["status"] == "differences"
    never = "traffic costlens never saw"
    assert not_ok(data) == [
        ("2025-08-02", "openai-usage", MINI, "requests", 2, None, -2, "missing in costlens", never),
        (
            "2025-08-02",
            "openai-usage",
            MINI,
            "input_tokens",
            4_000_000,
            None,
            -4_000_000,
            "missing in costlens",
            never,
        ),
        (
            "2025-08-02",
            "openai-usage",
            MINI,
            "output_tokens",
            800_000,
            None,
            -800_000,
            "missing in costlens",
            never,
        ),
        ("2025-08-02", "openai-costs", MINI, "cost_usd", "0.54", None, "-0.54", "missing in costlens", never),
    ]
    cell = cells_by(data)["2025-08-02", "openai-costs", MINI, None, "cost_usd"]
    assert cell["evidence"] == "costlens logged no request for this on this day"
    # The days on either side agree: the missing day is not a shift across midnight.
    assert cells_by(data)["2025-08-01", "openai-costs", MINI, None, "cost_usd"]["verdict"] == "ok"
    totals = {(t["source"], t["measure"]): t for t in data["totals"]}
    assert (
        totals["openai-costs", "cost_usd"]["provider"],
        totals["openai-costs", "cost_usd"]["costlens"],
    ) == (
        "1.62",
        "1.08",
    )


def test_a_price_sheet_difference_tokens_agree_money_does_not(invoke, three_days, tmp_path):
    three_days()
    usage = write_json(tmp_path / "usage.json", openai_page({d: [usage_result(MINI, 2)] for d in range(3)}))
    # The provider bills input at $0.09/1M (0.18 per request), costlens's sheet says $0.075 (0.15).
    costs = write_json(
        tmp_path / "costs.json", openai_page({d: mini_costs(input_usd="0.18") for d in range(3)})
    )
    code, data = reconcile_json(invoke, "reconcile", usage, costs)
    assert code == 5
    assert not_ok(data) == [
        (
            f"2025-08-0{d + 1}",
            "openai-costs",
            MINI,
            "cost_usd",
            "0.6",
            "0.54",
            "-0.06",
            "differs",
            "price sheet differs",
        )
        for d in range(3)
    ]
    cell = cells_by(data)["2025-08-01", "openai-costs", MINI, None, "cost_usd"]
    assert cell["evidence"] == "tokens agree; costlens is 0.9x the provider's figure"


def test_unreported_cached_tokens(invoke, three_days, tmp_path):
    """costlens's usage carries no cached-token figure; the provider counts 1,500,000 of each request's
    2,000,000 input tokens as cache reads and bills them at $0.0375/1M: 500,000 x 0.075 + 1,500,000 x
    0.0375 + 400,000 x 0.30 = 0.0375 + 0.05625 + 0.12 = $0.21375 a request, $0.4275 a day."""
    three_days()
    usage = write_json(
        tmp_path / "usage.json", openai_page({d: [usage_result(MINI, 2, cached=1_500_000)] for d in range(3)})
    )
    costs = write_json(
        tmp_path / "costs.json",
        openai_page({
            d: [cost_result(f"{MINI}, input", "0.075"), cost_result(f"{MINI}, cached input", "0.1125"),
                cost_result(f"{MINI}, output", "0.24")]
            for d in range(3)
        }),
    )  # fmt: skip
    code, data = reconcile_json(invoke, "reconcile", usage, costs)
    assert code == 5
    cache = "cache not reported"
    expected = []
    for d in range(3):
        day = f"2025-08-0{d + 1}"
        expected += [
            (day, "openai-usage", MINI, "cached_tokens", 3_000_000, 0, -3_000_000, "differs", cache),
            (day, "openai-costs", MINI, "cost_usd", "0.4275", "0.54", "0.1125", "differs", cache),
        ]
    assert not_ok(data) == expected
    cell = cells_by(data)["2025-08-01", "openai-usage", MINI, None, "cached_tokens"]
    assert cell["evidence"] == "2 of costlens's requests here report no cached tokens in their usage"
    # Input tokens include the cache on both sides: they agree.
    assert cells_by(data)["2025-08-01", "openai-usage", MINI, None, "input_tokens"]["verdict"] == "ok"


def test_anthropic_cost_report_amounts_are_cents(invoke, jsonl, tmp_path):
    """Two haiku requests on Aug 1 ($0.80 each, see HAIKU_USAGE). The cost report says 80 + 16 + 24 +
    40 = 160 cents: $1.60, not $160."""
    lines = [L.anthropic(f"a{i}", usage=dict(HAIKU_USAGE), model=HAIKU) for i in range(2)]
    path = jsonl("haiku.jsonl", lines)
    assert invoke("replay", path, "--tier", "standard", "--at", "2025-08-01T09:30:00Z").exit_code == 0
    usage_row, cost_rows = haiku_day("standard", 2, Decimal(80))
    assert [r["amount"] for r in cost_rows] == ["80", "16", "24", "40"]
    usage = write_json(tmp_path / "anthropic-usage.json", anthropic_page({0: [usage_row]}))
    costs = write_json(tmp_path / "anthropic-cost.json", anthropic_page({0: cost_rows}))
    code, data = reconcile_json(invoke, "reconcile", usage, costs)
    assert code == 0, not_ok(data)
    cells = cells_by(data)
    cost = cells["2025-08-01", "anthropic-cost", HAIKU, "standard", "cost_usd"]
    assert (cost["provider"], cost["costlens"], cost["difference"], cost["verdict"]) == (
        "1.6",
        "1.6",
        "0",
        "ok",
    )
    # Input = uncached + cache writes + cache reads, as costlens counts it.
    assert cells["2025-08-01", "anthropic-usage", HAIKU, "standard", "input_tokens"]["provider"] == 3_000_000
    assert cells["2025-08-01", "anthropic-usage", HAIKU, "standard", "cached_tokens"]["costlens"] == 400_000
    assert (
        cells["2025-08-01", "anthropic-usage", HAIKU, "standard", "cache_write_tokens"]["costlens"] == 600_000
    )
    assert [i["kind"] for i in data["inputs"]] == ["anthropic-usage", "anthropic-cost"]


def test_fractional_cents_are_exact(invoke, jsonl, tmp_path):
    """A cost of "12.345" cents is $0.12345 exactly: costlens's $1.60 differs by $1.47655, to the digit."""
    lines = [L.anthropic(f"a{i}", usage=dict(HAIKU_USAGE), model=HAIKU) for i in range(2)]
    assert (
        invoke("replay", jsonl("h.jsonl", lines), "--tier", "standard", "--at", "2025-08-01").exit_code == 0
    )
    costs = write_json(
        tmp_path / "c.json", anthropic_page({0: [anthropic_cost("standard", "output_tokens", "12.345")]})
    )
    code, data = reconcile_json(invoke, "reconcile", costs)
    assert code == 5
    assert not_ok(data) == [
        (
            "2025-08-01",
            "anthropic-cost",
            HAIKU,
            "cost_usd",
            "0.12345",
            "1.6",
            "1.47655",
            "differs",
            "unexplained",
        )
    ]


def test_openai_costs_amount_may_be_a_string_or_a_number(invoke, three_days, tmp_path):
    three_days()
    page = openai_page({
        0: [cost_result(f"{MINI}, input", "0.30"), cost_result(f"{MINI}, output", 0.24)],
        1: [cost_result(f"{MINI}, input", 0.3), cost_result(f"{MINI}, output", "0.240000000000000")],
        2: [cost_result(f"{MINI}, input", "0.3"), cost_result(f"{MINI}, output", "0.25")],
    })  # fmt: skip
    costs = write_json(tmp_path / "costs.json", page)
    code, data = reconcile_json(invoke, "reconcile", costs, "--tolerance", "0")
    assert code == 5
    cells = cells_by(data)
    assert [
        cells[f"2025-08-0{d}", "openai-costs", MINI, None, "cost_usd"]["provider"] for d in (1, 2, 3)
    ] == [
        "0.54",
        "0.54",
        "0.55",
    ]
    assert not_ok(data) == [
        ("2025-08-03", "openai-costs", MINI, "cost_usd", "0.55", "0.54", "-0.01", "differs", "unexplained")
    ]


def test_a_batch_discount_costlens_never_applied(invoke, jsonl, tmp_path):
    """Anthropic batch traffic: the sheet has no batch price, so costlens prices the two requests at
    standard ($1.60); the cost report (tier batch) bills them at half ($0.80)."""
    lines = [L.anthropic(f"a{i}", usage=dict(HAIKU_USAGE), model=HAIKU) for i in range(2)]
    assert invoke("replay", jsonl("haiku.jsonl", lines), "--at", "2025-08-01T09:30:00Z").exit_code == 0
    usage_row, cost_rows = haiku_day("batch", 2, Decimal(40))
    usage = write_json(tmp_path / "u.json", anthropic_page({0: [usage_row]}))
    costs = write_json(tmp_path / "c.json", anthropic_page({0: cost_rows}))
    code, data = reconcile_json(invoke, "reconcile", usage, costs)
    assert code == 5
    assert not_ok(data) == [
        (
            "2025-08-01",
            "anthropic-cost",
            HAIKU,
            "cost_usd",
            "0.8",
            "1.6",
            "0.8",
            "differs",
            "batch discount never applied",
        )
    ]
    cell = cells_by(data)["2025-08-01", "anthropic-cost", HAIKU, "batch", "cost_usd"]
    assert cell["evidence"] == (
        "costlens is 2x the provider's cost of batch traffic: 2 requests priced at standard for lack of a batch price"
    )


def test_a_batch_discount_on_an_export_without_tiers(invoke, jsonl, tmp_path):
    """OpenAI Costs has no tier: a cell is batch when all of costlens's requests in it are. One gpt-4o
    batch request at standard = $4.50; OpenAI billed $2.25."""
    assert invoke("replay", jsonl("b.jsonl", [batch("b0", 0)])).exit_code == 0
    costs = write_json(
        tmp_path / "c.json",
        openai_page({0: [cost_result(f"{GPT4O}, input", "1.25"), cost_result(f"{GPT4O}, output", "1.00")]}),
    )
    code, data = reconcile_json(invoke, "reconcile", costs)
    assert code == 5
    assert not_ok(data) == [
        (
            "2025-08-01",
            "openai-costs",
            GPT4O,
            "cost_usd",
            "2.25",
            "4.5",
            "2.25",
            "differs",
            "batch discount never applied",
        )
    ]


def test_traffic_dated_on_the_wrong_day_is_a_window_or_time_zone(invoke, jsonl, tmp_path):
    """Anthropic batch results carry no time: replayed with --at the day after, costlens has the
    traffic on Aug 2 while the provider billed it on Aug 1 (and shows nothing on Aug 2)."""
    lines = [L.anthropic(f"a{i}", usage=dict(HAIKU_USAGE), model=HAIKU) for i in range(2)]
    assert (
        invoke(
            "replay", jsonl("h.jsonl", lines), "--tier", "standard", "--at", "2025-08-02T01:00:00Z"
        ).exit_code
        == 0
    )
    usage_row, cost_rows = haiku_day("standard", 2, Decimal(80))
    costs = write_json(tmp_path / "c.json", anthropic_page({0: cost_rows, 1: []}))
    code, data = reconcile_json(invoke, "reconcile", costs)
    assert code == 5
    zone = "window or time zone"
    assert not_ok(data) == [
        ("2025-08-01", "anthropic-cost", HAIKU, "cost_usd", "1.6", None, "-1.6", "missing in costlens", zone),
        ("2025-08-02", "anthropic-cost", HAIKU, "cost_usd", None, "1.6", "1.6", "missing at provider", zone),
    ]
    cells = cells_by(data)
    assert cells["2025-08-01", "anthropic-cost", HAIKU, "standard", "cost_usd"]["evidence"] == (
        "the opposite difference on 2025-08-02: traffic dated on the other side of midnight (UTC)"
    )
    assert cells["2025-08-02", "anthropic-cost", HAIKU, "standard", "cost_usd"]["evidence"].endswith(
        "2 of costlens's requests here carry no time of their own and are dated at the replay "
        "(replay --at WHEN dates them)"
    )


def test_a_day_present_in_costlens_only(invoke, three_days, tmp_path):
    """The export covers Aug 1-3 but shows nothing for gpt-4o-mini on Aug 3 (an empty bucket)."""
    three_days()
    usage = write_json(
        tmp_path / "u.json", openai_page({0: [usage_result(MINI, 2)], 1: [usage_result(MINI, 2)], 2: []})
    )
    code, data = reconcile_json(invoke, "reconcile", usage)
    assert code == 5
    zone = "window or time zone"
    assert not_ok(data) == [
        ("2025-08-03", "openai-usage", MINI, "requests", None, 2, 2, "missing at provider", zone),
        (
            "2025-08-03",
            "openai-usage",
            MINI,
            "input_tokens",
            None,
            4_000_000,
            4_000_000,
            "missing at provider",
            zone,
        ),
        (
            "2025-08-03",
            "openai-usage",
            MINI,
            "output_tokens",
            None,
            800_000,
            800_000,
            "missing at provider",
            zone,
        ),
    ]
    assert cells_by(data)["2025-08-03", "openai-usage", MINI, None, "requests"]["evidence"] == (
        "the export shows nothing for this day"
    )


def test_tolerance_decides_exit_5_or_0(invoke, three_days, tmp_path):
    """The price-sheet difference of the test above: -$0.06 on $0.60 a day (10%)."""
    three_days()
    usage = write_json(tmp_path / "u.json", openai_page({d: [usage_result(MINI, 2)] for d in range(3)}))
    costs = write_json(tmp_path / "c.json", openai_page({d: mini_costs(input_usd="0.18") for d in range(3)}))
    for tolerance, code in (("0.05", 5), ("$0.06", 0), ("0.10", 0), ("5%", 5), ("10%", 0)):
        result = invoke("reconcile", usage, costs, "--tolerance", tolerance)
        assert result.exit_code == code, (tolerance, result.stdout, result.stderr)
    assert (
        "(tolerance: $0.06 per cell on money; counts exactly)"
        in invoke("reconcile", usage, costs, "--tolerance", "$0.06").stdout
    )
    # Default $0.01: differs.
    assert invoke("reconcile", usage, costs).exit_code == 5


def test_counts_agree_exactly_under_a_usd_tolerance_and_by_the_percentage_under_one(
    invoke, three_days, tmp_path
):
    three_days()
    # The provider counts one input token more each day (of 4,000,000).
    usage = write_json(
        tmp_path / "u.json",
        openai_page({d: [usage_result(MINI, 2, input_tokens=2_000_000)] for d in range(3)}),
    )
    page = json.loads(usage.read_text())
    for bucket in page["data"]:
        bucket["results"][0]["input_tokens"] += 1
    write_json(usage, page)
    code, data = reconcile_json(invoke, "reconcile", usage, "--tolerance", "100")
    assert code == 5
    assert {(c[3], c[6], c[8]) for c in not_ok(data)} == {("input_tokens", -1, "token counts differ")}
    code, data = reconcile_json(invoke, "reconcile", usage, "--tolerance", "0.001%")  # 40 tokens of 4,000,001
    assert code == 0 and not_ok(data) == []


def test_bad_tolerance_is_a_usage_error(invoke, three_days, tmp_path, user_error):
    usage = write_json(tmp_path / "u.json", openai_page({0: [usage_result(MINI, 2)]}))
    user_error(
        invoke("reconcile", usage, "--tolerance", "a cent"), 2, "--tolerance 'a cent': expected an amount"
    )
    user_error(invoke("reconcile", usage, "--tolerance", "-1"), 2, "--tolerance '-1'")


def test_json_shape(invoke, three_days, tmp_path):
    three_days(skip_days=(1,))
    usage = write_json(tmp_path / "u.json", openai_page({d: [usage_result(MINI, 2)] for d in range(3)}))
    costs = write_json(tmp_path / "c.json", openai_page({d: mini_costs() for d in range(3)}))
    code, data = reconcile_json(invoke, "reconcile", usage, costs)
    assert code == 5
    assert list(data) == [
        "reconciliation_id", "created_at", "status", "tolerance", "selection", "period", "inputs", "verdicts",
        "totals", "not_compared", "simulated_runs_left_out", "cells",
    ]  # fmt: skip
    assert data["reconciliation_id"] == 1 and data["tolerance"] == "0.01"
    assert data["selection"] == {
        "run_ids": [], "run_uuids": [], "exclude_run_ids": [], "since": None, "until": None, "models": [], "tags": {},
        "include_simulated": False,
    }  # fmt: skip
    cell = data["cells"][0]
    assert list(cell) == [
        "day", "source", "model", "tier", "measure", "provider", "costlens", "difference", "verdict", "cause",
        "evidence",
    ]  # fmt: skip
    money = [c for c in data["cells"] if c["measure"] == "cost_usd"]
    counts = [c for c in data["cells"] if c["measure"] != "cost_usd"]
    assert all(isinstance(c["provider"], str) and isinstance(c["difference"], str) for c in money)
    assert all(isinstance(c["provider"], int) and isinstance(c["difference"], int) for c in counts)
    assert data["inputs"][0] == {
        "file": "u.json", "sha256": data["inputs"][0]["sha256"], "kind": "openai-usage", "detected": True,
        "buckets": 3, "results": 3, "first_day": "2025-08-01", "last_day": "2025-08-03",
    }  # fmt: skip
    # Ordered by day, then export kind (registry order), model, tier, figure.
    assert [(c["day"], c["source"], c["measure"]) for c in data["cells"][:5]] == [
        ("2025-08-01", "openai-usage", "requests"),
        ("2025-08-01", "openai-usage", "input_tokens"),
        ("2025-08-01", "openai-usage", "cached_tokens"),
        ("2025-08-01", "openai-usage", "output_tokens"),
        ("2025-08-01", "openai-costs", "cost_usd"),
    ]


def test_text_output_rows_and_totals(invoke, three_days, tmp_path):
    three_days(skip_days=(1,))
    usage = write_json(tmp_path / "u.json", openai_page({d: [usage_result(MINI, 2)] for d in range(3)}))
    costs = write_json(tmp_path / "c.json", openai_page({d: mini_costs() for d in range(3)}))
    result = invoke("reconcile", usage, costs, "--only-differences")
    assert result.exit_code == 5
    lines = result.stdout.splitlines()
    row = next(line for line in lines if line.startswith("2025-08-02  openai-costs"))
    assert re.split(r"\s{2,}", row)[0:3] == ["2025-08-02", "openai-costs", MINI]
    assert (
        "$0.54" in row
        and "-$0.54" in row
        and "missing in costlens" in row
        and "traffic costlens never saw" in row
    )
    assert not any(line.startswith("2025-08-01") for line in lines)  # only the differing cells
    total = next(line for line in lines if line.startswith("openai-costs  cost"))
    assert total.split() == ["openai-costs", "cost", "$1.62", "$1.08", "-$0.54", "3", "2", "0", "1", "0"]
    assert lines[-1] == (
        "Reconciliation 1: 4 of 15 cells beyond the tolerance (0 differs, 4 missing in costlens, 0 missing at provider)."
    )


def test_requests_of_models_no_export_names_are_not_compared(invoke, jsonl, tmp_path):
    lines = [chat("m0", 0), L.anthropic("a0", usage=dict(HAIKU_USAGE), model=HAIKU)]
    assert invoke("replay", jsonl("t.jsonl", lines), "--at", "2025-08-01T05:00:00Z").exit_code == 0
    usage = write_json(tmp_path / "u.json", openai_page({0: [usage_result(MINI, 1)]}))
    code, data = reconcile_json(invoke, "reconcile", usage)
    assert code == 0 and not_ok(data) == []
    assert data["not_compared"] == [
        {"reason": "unnamed", "model": HAIKU, "requests": 1, "cost_usd": "0.8", "first_day": "2025-08-01",
         "last_day": "2025-08-01"},
    ]  # fmt: skip
    text = invoke("reconcile", usage).stdout
    assert (
        "Not compared: 1 selected requests of models no export names (another provider's traffic, or billed "
        f"elsewhere), $0.8: {HAIKU} (1)."
    ) in text


def test_traffic_on_days_no_export_covers_is_not_compared(invoke, three_days, tmp_path):
    three_days()
    usage = write_json(tmp_path / "u.json", openai_page({0: [usage_result(MINI, 2)]}))  # Aug 1 only
    code, data = reconcile_json(invoke, "reconcile", usage)
    assert code == 0
    assert data["not_compared"] == [
        {"reason": "outside", "model": MINI, "requests": 4, "cost_usd": "1.08", "first_day": "2025-08-02",
         "last_day": "2025-08-03"},
    ]  # fmt: skip
    # --since/--until narrow costlens's side like every reader's selection.
    code, data = reconcile_json(invoke, "reconcile", usage, "--until", "2025-08-02")
    assert code == 0 and data["not_compared"] == []
    assert data["selection"]["until"] == "2025-08-02T00:00:00"


def test_model_alignment_prefers_the_most_specific_id(invoke, jsonl, tmp_path):
    """The export names both gpt-4o and gpt-4o-2024-08-06: a request that ran as the dated id goes to
    it, one that ran as gpt-4o to gpt-4o (costlens prices both as gpt-4o)."""
    lines = [
        chat("dated", 0, model=GPT4O),
        chat("plain", 0, model="gpt-4o"),
        chat("plain2", 0, model="gpt-4o"),
    ]
    assert invoke("replay", jsonl("t.jsonl", lines)).exit_code == 0
    usage = write_json(
        tmp_path / "u.json", openai_page({0: [usage_result(GPT4O, 1), usage_result("gpt-4o", 2)]})
    )
    code, data = reconcile_json(invoke, "reconcile", usage)
    assert code == 0, not_ok(data)
    cells = cells_by(data)
    assert cells["2025-08-01", "openai-usage", GPT4O, None, "requests"]["costlens"] == 1
    assert cells["2025-08-01", "openai-usage", "gpt-4o", None, "requests"]["costlens"] == 2


def test_a_provider_prefix_is_stripped_to_align(invoke, jsonl, tmp_path):
    """A self-hosted gateway answered with openai/gpt-4o-mini; LiteLLM's spend log names gpt-4o-mini."""
    lines = [chat(f"r{i}", 0, model="openai/gpt-4o-mini") for i in range(2)]
    assert invoke("replay", jsonl("t.jsonl", lines)).exit_code == 0
    log = tmp_path / "spend.csv"
    log.write_text(
        "request_id,spend,prompt_tokens,completion_tokens,total_tokens,model,model_group,custom_llm_provider,"
        "api_base,user,end_user,startTime,endTime,metadata,cache_hit,status\n"
        + "".join(
            f"call-{i},0.27,2000000,400000,2400000,gpt-4o-mini,mini,openai,https://api.openai.com,,,"
            f"2025-08-01 10:00:0{i}.123,2025-08-01 10:00:05,{{}},False,success\n"
            for i in range(2)
        ),
        encoding="utf-8",
    )
    code, data = reconcile_json(invoke, "reconcile", log)
    assert code == 0, not_ok(data)
    assert data["inputs"][0]["kind"] == "litellm-spend" and data["inputs"][0]["buckets"] == 2
    cells = cells_by(data)
    assert cells["2025-08-01", "litellm-spend", "gpt-4o-mini", None, "cost_usd"]["costlens"] == "0.54"
    assert cells["2025-08-01", "litellm-spend", "gpt-4o-mini", None, "requests"]["provider"] == 2


def test_an_export_not_grouped_by_model_compares_every_request(invoke, jsonl, tmp_path):
    lines = [chat("m0", 0), chat("o0", 0, model=GPT4O)]
    assert invoke("replay", jsonl("t.jsonl", lines)).exit_code == 0
    # Not grouped by line item: one result a day, every model's cost: 0.27 + 4.50.
    costs = write_json(tmp_path / "c.json", openai_page({0: [cost_result(None, "4.77")]}))
    code, data = reconcile_json(invoke, "reconcile", costs)
    assert code == 0
    (cell,) = data["cells"]
    assert (cell["model"], cell["provider"], cell["costlens"], cell["verdict"]) == (
        None,
        "4.77",
        "4.77",
        "ok",
    )
    assert "(all models)" in invoke("reconcile", costs).stdout


def test_a_charge_without_a_model_is_named_as_such(invoke, three_days, tmp_path):
    three_days()
    costs = write_json(
        tmp_path / "c.json",
        openai_page({d: [*mini_costs(), cost_result("web search tool calls", "0.5")] for d in range(3)}),
    )
    code, data = reconcile_json(invoke, "reconcile", costs)
    assert code == 5
    assert not_ok(data) == [
        (f"2025-08-0{d + 1}", "openai-costs", "(no model)", "cost_usd", "0.5", None, "-0.5", "missing in costlens",
         "charge without a model")
        for d in range(3)
    ]  # fmt: skip
    cell = cells_by(data)["2025-08-01", "openai-costs", "(no model)", None, "cost_usd"]
    assert cell["evidence"] == "the export names no model for this charge: line item 'web search tool calls'"


def test_source_option_reads_every_file_as_that_kind(invoke, three_days, tmp_path):
    three_days()
    usage = write_json(tmp_path / "u.json", openai_page({0: [usage_result(MINI, 2)]}))
    code, data = reconcile_json(invoke, "reconcile", usage, "--source", "openai-usage")
    assert code == 0 and data["inputs"][0]["detected"] is False
    assert (
        "Read u.json as openai-usage (--source)"
        in invoke("reconcile", usage, "--source", "openai-usage").stdout
    )


def test_reconcile_over_a_lake_gives_the_cells_of_the_db_and_stores_nothing(invoke, three_days, tmp_path):
    """--lake: the same cells, verdicts and totals as over the DB the runs were published from; the
    reconciliation is not stored (the lake holds runs only), and the output says so."""
    three_days(skip_days=(1,))
    three_days()  # a second run: the lake's runs come from two publishes' worth of rows
    lake = tmp_path / "lake"
    assert invoke("publish", "--lake", lake).exit_code == 0
    usage = write_json(tmp_path / "u.json", openai_page({d: [usage_result(MINI, 4)] for d in range(3)}))
    costs = write_json(tmp_path / "c.json", openai_page({d: mini_costs(input_usd="0.18") for d in range(3)}))
    for args in ((), ("--since", "2025-08-02"), ("--model", MINI, "--tolerance", "5%")):
        db_code, db = reconcile_json(invoke, "reconcile", usage, costs, *args)
        lake_code, over_lake = reconcile_json(invoke, "reconcile", usage, costs, *args, "--lake", lake)
        assert (lake_code, db_code) == (5, 5)
        assert over_lake["reconciliation_id"] is None and isinstance(db["reconciliation_id"], int)
        for key in ("status", "tolerance", "selection", "period", "inputs", "verdicts", "totals", "cells"):
            assert over_lake[key] == db[key], key
        assert not_ok(over_lake)  # the cells compared hold differences, so equality says something
    text = invoke("reconcile", usage, costs, "--lake", lake)
    assert text.exit_code == 5
    assert text.stdout.splitlines()[-1].startswith("Reconciliation (not stored): ")
    # The DB holds the three DB reconciliations above, none of the lake's.
    assert reconcile_json(invoke, "reconcile", usage, costs)[1]["reconciliation_id"] == 4
