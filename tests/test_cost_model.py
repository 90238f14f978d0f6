"""The cost model's newer parts, end to end through replay and the real cost view.

1-hour cache writes (their own usage bucket and price), a per-request fee, match rows
(patterns) and fallback sheets, and ``pricing which``. Every expected figure is worked out by
hand in the comment next to it ($ per 1M tokens, so "/ 1e6" makes dollars); comparisons are
exact ``==`` on decimal strings.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import Lines, write_jsonl

from costlens.money.pricing import PRICE_COLUMNS

L = Lines()


def sheet(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=PRICE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else str(v) for k, v in row.items()})
    return path


def export_rows(invoke: Any, db_args: list[str], tmp_path: Path) -> dict[str, dict[str, str]]:
    out = tmp_path / "out.csv"
    result = invoke(*db_args, "export", "--format", "csv", "--out", out)
    assert result.exit_code == 0, result.stderr
    with out.open(encoding="utf-8", newline="") as f:
        return {row["custom_id"]: row for row in csv.DictReader(f)}


def anthropic_usage(inp: int, out: int, *, read: int = 0, w5: int | None = None, w1h: int | None = None,
                    total_write: int | None = None) -> dict[str, Any]:  # fmt: skip
    usage: dict[str, Any] = {"input_tokens": inp, "output_tokens": out, "cache_read_input_tokens": read}
    split: dict[str, int] = {}
    if w5 is not None:
        split["ephemeral_5m_input_tokens"] = w5
    if w1h is not None:
        split["ephemeral_1h_input_tokens"] = w1h
    if split:
        usage["cache_creation"] = split
    if total_write is not None:
        usage["cache_creation_input_tokens"] = total_write
    elif split:
        usage["cache_creation_input_tokens"] = sum(split.values())
    return usage


# --- 1-hour cache writes ----------------------------------------------------------------------


@pytest.fixture
def claude_sheet(tmp_path: Path) -> Path:
    return sheet(tmp_path / "claude.csv", [
        {"model": "claude-x", "input_per_1m": "3", "output_per_1m": "15", "cached_input_per_1m": "0.3",
         "cache_write_per_1m": "3.75", "cache_write_1h_per_1m": "6"},
        {"model": "claude-no-1h", "input_per_1m": "3", "output_per_1m": "15", "cached_input_per_1m": "0.3",
         "cache_write_per_1m": "3.75"},
    ])  # fmt: skip


def test_one_hour_cache_writes_are_billed_once_at_their_own_price(invoke, tmp_path, claude_sheet):
    path = write_jsonl(tmp_path / "a.jsonl", [
        L.anthropic("split", model="claude-x", usage=anthropic_usage(100, 200, read=1000, w5=500, w1h=1000)),
        L.anthropic("only-1h", model="claude-x", usage=anthropic_usage(10, 20, w1h=400, total_write=400)),
        L.anthropic("no-1h-price", model="claude-no-1h", usage=anthropic_usage(100, 200, read=1000, w5=500, w1h=1000)),
    ])  # fmt: skip
    db = ["--pricing", str(claude_sheet)]
    assert invoke(*db, "replay", path, "--tier", "standard").exit_code == 0
    rows = export_rows(invoke, db, tmp_path)
    split = rows["split"]
    assert (split["input_tokens"], split["cache_write_tokens"], split["cache_write_1h_tokens"]) == (
        "2600",  # 100 uncached + 1000 read + 1500 written
        "1500",
        "1000",
    )
    # (100 x 3 + 1000 x 0.3 + 500 x 3.75 + 1000 x 6) / 1e6 = (300 + 300 + 1875 + 6000) / 1e6
    assert split["input_cost_usd"] == "0.008475"
    assert split["cost_usd"] == "0.011475"  # + 200 x 15 / 1e6
    assert split["price_note"] == ""
    # 10 x 3 + 400 x 6 = 2430
    assert rows["only-1h"]["input_cost_usd"] == "0.00243"
    # No 1-hour price: the 1-hour writes fall back to the cache-write price, and the note says so:
    # 100 x 3 + 1000 x 0.3 + 1500 x 3.75 = 6225
    no_1h = rows["no-1h-price"]
    assert no_1h["input_cost_usd"] == "0.006225"
    assert no_1h["price_note"] == "1-hour cache writes at the cache-write price (no 1-hour price)"


def test_cache_write_split_that_does_not_add_up_is_rejected_with_its_line(invoke, tmp_path, claude_sheet):
    path = write_jsonl(tmp_path / "a.jsonl", [
        L.anthropic("good", model="claude-x", usage=anthropic_usage(1, 1, w5=1, w1h=1)),
        L.anthropic("bad-sum", model="claude-x", usage=anthropic_usage(1, 1, w5=10, w1h=20, total_write=25)),
        L.anthropic("bad-1h", model="claude-x", usage=anthropic_usage(1, 1, w1h=30, total_write=25)),
    ])  # fmt: skip
    result = invoke("--pricing", str(claude_sheet), "replay", path, "--json")
    assert result.exit_code == 1
    run = json.loads(result.stdout)["runs"][0]
    assert (run["lines_read"], run["stored"], run["rejected"]) == (3, 1, 2)
    reasons = {r["line"]: r["reason"] for r in run["rejects"]}
    assert reasons[2] == (
        "usage: cache_creation (5m 10 + 1h 20) does not add up to cache_creation_input_tokens (25)"
    )
    assert (
        reasons[3]
        == "usage: cache_creation.ephemeral_1h_input_tokens (30) > cache_creation_input_tokens (25)"
    )


# --- per-request fee --------------------------------------------------------------------------


def test_a_per_request_fee_is_charged_once_per_successful_request(invoke, tmp_path):
    prices = sheet(tmp_path / "fee.csv", [
        {"model": "fee-model", "input_per_1m": "1", "output_per_1m": "2", "per_request_usd": "0.002"},
    ])  # fmt: skip
    failed = L.openai("failed", status_code=500, model="fee-model", usage={"prompt_tokens": 10,
                      "completion_tokens": 0, "total_tokens": 10})  # fmt: skip
    path = write_jsonl(tmp_path / "f.jsonl", [
        L.openai("ok", model="fee-model", usage={"prompt_tokens": 1000, "completion_tokens": 500,
                                                 "total_tokens": 1500}),
        failed,
    ])  # fmt: skip
    db = ["--pricing", str(prices)]
    assert invoke(*db, "replay", path, "--tier", "standard").exit_code == 1  # one failed request
    rows = export_rows(invoke, db, tmp_path)
    # 1000 x 1 / 1e6 + 500 x 2 / 1e6 + 0.002 = 0.001 + 0.001 + 0.002
    assert (rows["ok"]["request_cost_usd"], rows["ok"]["cost_usd"]) == ("0.002", "0.004")
    # A failed request that reported usage pays its tokens, not the fee: 10 x 1 / 1e6.
    assert (rows["failed"]["request_cost_usd"], rows["failed"]["cost_usd"]) == ("0", "0.00001")
    summary = json.loads(invoke(*db, "summary", "--json").stdout)
    assert summary["total"]["cost_usd"] == "0.00401"


# --- match rows and fallback sheets -----------------------------------------------------------


@pytest.fixture
def pattern_sheet(tmp_path: Path) -> Path:
    return sheet(tmp_path / "patterns.csv", [
        {"model": "claude-sonnet-4-0", "input_per_1m": "3", "output_per_1m": "15"},
        {"model": "claude-sonnet-4-0", "match": "prefix:claude-sonnet-4-2025"},
        {"model": "claude-sonnet-4-0", "match": "exact:claude-sonnet-4"},
        {"model": "claude-sonnet-4-5", "input_per_1m": "4", "output_per_1m": "20"},
        {"model": "claude-sonnet-4-5", "match": "prefix:claude-sonnet-4-5"},
        {"model": "gpt-4.1-mini", "input_per_1m": "0.4", "output_per_1m": "1.6"},
        {"model": "gpt-4.1-mini", "match": r"regex:^gpt-4\.1-mini-\d{4}-\d{2}-\d{2}$"},
        {"model": "any-mini", "input_per_1m": "9", "output_per_1m": "9"},
        {"model": "any-mini", "match": "contains:o4-mini"},
        {"model": "tail", "input_per_1m": "7", "output_per_1m": "7"},
        {"model": "tail", "match": "suffix:-tail"},
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("model_id", "priced_model", "price_match"),
    [
        ("claude-sonnet-4-20250514", "claude-sonnet-4-0", "pattern prefix:claude-sonnet-4-2025"),
        ("claude-sonnet-4", "claude-sonnet-4-0", "alias exact:claude-sonnet-4"),
        ("CLAUDE-SONNET-4-0", "claude-sonnet-4-0", "exact"),
        # The longer prefix is the more specific one, whatever the file order.
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "pattern prefix:claude-sonnet-4-5"),
        # A prefix beats a regex, which beats nothing; contains comes after prefix and suffix.
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini", r"pattern regex:^gpt-4\.1-mini-\d{4}-\d{2}-\d{2}$"),
        ("gpt-4o-mini-tail", "tail", "pattern suffix:-tail"),
        ("openai-o4-mini-high", "any-mini", "pattern contains:o4-mini"),
        (
            "anthropic/claude-sonnet-4-20250514",
            "claude-sonnet-4-0",
            "prefix stripped, pattern prefix:claude-sonnet-4-2025",
        ),
    ],
)
def test_match_rows_resolve_most_specific_first(invoke, tmp_path, pattern_sheet, model_id, priced_model,
                                                price_match):  # fmt: skip
    result = invoke("--pricing", str(pattern_sheet), "pricing", "which", model_id, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    got = json.loads(result.stdout)
    assert (got["priced_model"], got["rule"]) == (priced_model, price_match)


def test_fallback_sheet_prices_only_what_the_main_sheet_does_not_know(invoke, tmp_path, pattern_sheet):
    main = sheet(tmp_path / "main.csv", [
        {"model": "gpt-4o", "input_per_1m": "1.25", "output_per_1m": "5"},
    ])  # fmt: skip
    # The fallback also prices gpt-4o (dearer): the main sheet's row must win.
    fallback = sheet(tmp_path / "list.csv", [
        {"model": "gpt-4o", "input_per_1m": "2.5", "output_per_1m": "10"},
        {"model": "claude-sonnet-4-0", "input_per_1m": "3", "output_per_1m": "15"},
        {"model": "claude-sonnet-4-0", "match": "prefix:claude-sonnet-4-2025"},
    ])  # fmt: skip
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
    path = write_jsonl(tmp_path / "n.jsonl", [
        L.openai("a", model="gpt-4o-2024-08-06", usage=usage),
        L.openai("b", model="claude-sonnet-4-20250514", usage=usage),
        L.openai("c", model="mystery-model", usage=usage),
    ])  # fmt: skip
    with_fb = ["--pricing", str(main), "--fallback-pricing", str(fallback)]
    assert invoke(*with_fb, "replay", path, "--tier", "standard").exit_code == 0
    rows = export_rows(invoke, with_fb, tmp_path)
    # gpt-4o-2024-08-06 -> shipped alias gpt-4o -> main sheet: 1000 x 1.25 + 100 x 5 = 1750
    assert (rows["a"]["cost_usd"], rows["a"]["price_sheet"], rows["a"]["price_note"]) == (
        "0.00175",
        "main",
        "",
    )
    # claude via the fallback's pattern: 1000 x 3 + 100 x 15 = 4500, flagged.
    assert rows["b"]["cost_usd"] == "0.0045"
    assert rows["b"]["price_sheet"] == str(fallback)
    assert rows["b"]["price_note"] == f"fallback sheet {fallback}"
    assert (rows["c"]["cost_usd"], rows["c"]["priced"], rows["c"]["price_note"]) == (
        "", "false", "unpriced: unknown model",
    )  # fmt: skip
    total = json.loads(invoke(*with_fb, "summary", "--json").stdout)["total"]
    assert (total["priced"], total["priced_by_fallback_sheet"], total["unpriced"]) == (2, 1, 1)
    assert total["cost_usd"] == "0.00625"
    text = invoke(*with_fb, "summary").stdout
    assert "Price coverage: 1 of 3 requests priced by the main sheet, 1 by a fallback sheet" in text
    # Without the fallback the same requests are unpriced, never $0.
    alone = json.loads(invoke("--pricing", str(main), "summary", "--json").stdout)["total"]
    assert (alone["priced"], alone["unpriced"], alone["cost_usd"]) == (1, 2, "0.00175")


# --- pricing which ----------------------------------------------------------------------------


def test_pricing_which_names_every_outcome(invoke, tmp_path, pattern_sheet):
    dated = sheet(tmp_path / "dated.csv", [
        {"model": "old-model", "input_per_1m": "1", "output_per_1m": "1", "effective_to": "2025-01-01"},
        {"model": "long", "input_per_1m": "1", "output_per_1m": "2"},
        {"model": "long", "input_per_1m": "2", "output_per_1m": "4", "min_prompt_tokens": "200001"},
        {"model": "long", "input_per_1m": "0.5", "output_per_1m": "1", "service_tier": "batch"},
    ])  # fmt: skip
    fb = sheet(tmp_path / "fb.csv", [{"model": "fb-only", "input_per_1m": "1", "output_per_1m": "1"}])
    g = ["--pricing", str(dated), "--extra-pricing", str(pattern_sheet), "--fallback-pricing", str(fb)]

    def which(*args: str) -> dict[str, Any]:
        result = invoke(*g, "pricing", "which", *args, "--json")
        assert result.exit_code in (0, 1), result.stderr
        return json.loads(result.stdout)

    assert which("long")["outcome"] == "exact"
    assert which("claude-sonnet-4")["outcome"] == "alias"
    assert which("claude-sonnet-4-20250514")["outcome"] == "pattern"
    assert which("openrouter/long")["outcome"] == "prefix"
    assert which("gpt-4o-2024-08-06")["outcome"] == "unpriced"  # the shipped alias points at a model not here
    got = which("fb-only")
    assert (got["outcome"], got["sheet"]) == ("fallback", str(fb))
    unknown = which("nobody-knows-me")
    assert unknown["outcome"] == "unpriced" and "no sheet knows" in unknown["reason"]
    expired = which("old-model", "--at", "2025-06-01")
    assert expired["outcome"] == "unpriced"
    assert "no price row in force at 2025-06-01 00:00:00" in expired["reason"]
    assert which("old-model", "--at", "2024-06-01")["outcome"] == "exact"
    # The long-context cliff: a prompt of 200,001 tokens is above 200,000.
    assert which("long", "--prompt-tokens", "200000")["row"]["min_prompt_tokens"] == 0
    assert which("long", "--prompt-tokens", "200001")["row"]["min_prompt_tokens"] == 200001
    batch = which("long", "--tier", "batch")
    assert (batch["price_tier"], batch["row"]["input_per_1m"]) == ("batch", "0.5")
    flex = which("long", "--tier", "flex")
    assert flex["price_tier"] == "standard" and "tier fallback" in flex["reason"]
    text = invoke(*g, "pricing", "which", "nobody-knows-me")
    assert text.exit_code == 1 and "unpriced" in text.stdout


# --- hostile match rows -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        (
            [{"model": "m", "input_per_1m": "1", "output_per_1m": "1"}, {"model": "m", "match": "starts:m-"}],
            ":3:2: bad match 'starts:m-': expected KIND:TEXT",
        ),
        (
            [{"model": "m", "input_per_1m": "1", "output_per_1m": "1"}, {"model": "m", "match": "prefix:"}],
            ":3:2: bad match 'prefix:': empty pattern",
        ),
        (
            [
                {"model": "m", "input_per_1m": "1", "output_per_1m": "1"},
                {"model": "m", "match": "regex:^m(?=x)"},
            ],
            "lookaround and backreferences are not supported",
        ),
        (
            [{"model": "m", "input_per_1m": "1", "output_per_1m": "1"}, {"model": "m", "match": "regex:m(["}],
            "bad regex 'm(['",
        ),
        (
            [
                {"model": "m", "input_per_1m": "1", "output_per_1m": "1"},
                {"model": "m", "match": "prefix:m-", "input_per_1m": "2"},
            ],
            ":3:5: a match row only says which ids 'm' prices; input_per_1m must be empty",
        ),
        (
            [{"model": "m", "match": "prefix:m-"}],
            ":2:2: match row for 'm', which has no price row in this file",
        ),
        (
            [
                {"model": "m", "input_per_1m": "1", "output_per_1m": "1"},
                {"model": "n", "input_per_1m": "1", "output_per_1m": "1"},
                {"model": "m", "match": "prefix:x"},
                {"model": "n", "match": "prefix:X"},
            ],
            ":5:2: match 'prefix:x' points to 'm' on line 4 and to 'n'",
        ),
        (
            [{"model": "m", "input_per_1m": "1", "output_per_1m": "1", "per_request_usd": "-1"}],
            "negative price '-1' for per_request_usd",
        ),
        (
            [{"model": "m", "input_per_1m": "1", "output_per_1m": "1", "cache_write_1h_per_1m": "nan"}],
            "prices must be finite",
        ),
    ],
)
def test_bad_match_and_fee_cells_are_rejected_with_their_place(invoke, user_error, tmp_path, rows, fragment):
    path = sheet(tmp_path / "bad.csv", rows)
    result = invoke("pricing", "check", path)
    user_error(result, 2, str(path), fragment)


def test_report_coverage_line_counts_fallback_requests_apart(invoke, tmp_path):
    main = sheet(tmp_path / "main.csv", [{"model": "gpt-4o", "input_per_1m": "1.25", "output_per_1m": "5"}])
    fallback = sheet(
        tmp_path / "list.csv", [{"model": "other-model", "input_per_1m": "1", "output_per_1m": "1"}]
    )
    usage = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    path = write_jsonl(tmp_path / "r.jsonl", [
        L.openai("a", model="gpt-4o", usage=usage),
        L.openai("b", model="other-model", usage=usage),
    ])  # fmt: skip
    g = ["--pricing", str(main), "--fallback-pricing", str(fallback)]
    assert invoke(*g, "replay", path, "--tier", "standard").exit_code == 0
    out = tmp_path / "r.html"
    assert invoke(*g, "report", "--out", out).exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert f"2 of 2 requests priced (1 of them by a fallback sheet: {fallback})" in html
    data = json.loads(invoke(*g, "report", "--format", "json", "--out", "-").stdout)
    coverage = data["headline"]["coverage"]
    assert (coverage["priced_by_fallback_sheet"], coverage["fallback_sheets"]) == (1, [str(fallback)])
