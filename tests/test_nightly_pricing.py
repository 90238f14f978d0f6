"""A realistic nightly file of current model ids, priced as a new user would price it.

Dated snapshots, provider-prefixed gateway ids, OpenAI, Anthropic, Google, Mistral and DeepSeek:
with ``--fallback-pricing genai-prices`` every request is priced and every one the seed sheet
does not know is flagged as priced by the fallback sheet; without it those requests are
unpriced — counted, with no cost — never $0.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from helpers import Lines, write_jsonl

L = Lines()

# id as the provider's response carries it -> priced by the seed sheet (main) or not.
IDS = {
    "gpt-4o-2024-11-20": "main",  # shipped alias -> gpt-4o
    "gpt-4o-mini-2024-07-18": "main",
    "openai/gpt-4o-mini": "main",  # gateway prefix stripped
    "deepseek-chat": "main",
    "meta-llama/llama-3.3-70b-instruct": "main",
    "anthropic/claude-3-5-haiku-20241022": "main",
    "gpt-4.1-mini-2025-04-14": "fallback",
    "gpt-4.1-nano-2025-04-14": "fallback",
    "o3-2025-04-16": "fallback",
    "o4-mini-2025-04-16": "fallback",
    "gpt-5-2025-08-07": "fallback",
    "gpt-5-mini": "fallback",
    "claude-sonnet-4-20250514": "fallback",
    "claude-opus-4-1-20250805": "fallback",
    "claude-3-7-sonnet-20250219": "fallback",
    "claude-haiku-4-5-20251001": "fallback",
    "anthropic/claude-sonnet-4-5-20250929": "fallback",
    "gemini-2.5-pro": "fallback",
    "gemini-2.5-flash": "fallback",
    "google/gemini-2.5-flash-lite": "fallback",
    "mistral-large-latest": "fallback",
    "mistral-small-latest": "fallback",
    "codestral-latest": "fallback",
}
USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}


def nightly(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "nightly.jsonl", [
        L.openai(f"req-{i}", model=model, usage=dict(USAGE)) for i, model in enumerate(IDS)
    ])  # fmt: skip


def exported(invoke, tmp_path: Path, *globals_: str) -> list[dict[str, str]]:
    out = tmp_path / "n.csv"
    assert invoke(*globals_, "export", "--format", "csv", "--out", out).exit_code == 0
    with out.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_the_nightly_file_is_fully_priced_with_genai_prices_as_fallback(invoke, tmp_path):
    g = ["--fallback-pricing", "genai-prices"]
    assert invoke(*g, "replay", nightly(tmp_path)).exit_code == 0
    rows = exported(invoke, tmp_path, *g)
    assert len(rows) == len(IDS)
    unpriced = [r["response_model"] for r in rows if r["priced"] != "true"]
    assert not unpriced, unpriced
    for r in rows:
        expected = IDS[r["response_model"]]
        assert Decimal_pos(r["cost_usd"]), r
        if expected == "main":
            assert r["price_sheet"] == "main" and "fallback sheet" not in r["price_note"], r
        else:
            assert r["price_sheet"].startswith("genai-prices "), r
            assert r["price_note"].startswith("fallback sheet genai-prices "), r
    summary = json.loads(invoke(*g, "summary", "--json").stdout)["total"]
    fallback = sum(1 for v in IDS.values() if v == "fallback")
    assert (summary["requests"], summary["priced"], summary["unpriced"]) == (len(IDS), len(IDS), 0)
    assert summary["priced_by_fallback_sheet"] == fallback
    text = invoke(*g, "summary").stdout
    assert (
        f"{len(IDS) - fallback} of {len(IDS)} requests priced by the main sheet, {fallback} by a fallback"
        in text
    )


def test_without_the_fallback_the_same_requests_are_unpriced_never_zero(invoke, tmp_path):
    assert invoke("replay", nightly(tmp_path)).exit_code == 0
    rows = {r["response_model"]: r for r in exported(invoke, tmp_path)}
    for model, where in IDS.items():
        row = rows[model]
        if where == "main":
            assert row["priced"] == "true" and Decimal_pos(row["cost_usd"])
        else:
            assert (row["priced"], row["cost_usd"], row["price_note"]) == (
                "false",
                "",
                "unpriced: unknown model",
            )
    summary = json.loads(invoke("summary", "--json").stdout)["total"]
    fallback = sum(1 for v in IDS.values() if v == "fallback")
    assert (summary["priced"], summary["unpriced"], summary["priced_by_fallback_sheet"]) == (
        len(IDS) - fallback,
        fallback,
        0,
    )
    assert summary["unpriced_tokens"] == fallback * 1500


def Decimal_pos(text: str) -> bool:  # noqa: N802 - reads as a predicate on a decimal string
    from decimal import Decimal

    return bool(text) and Decimal(text) > 0
