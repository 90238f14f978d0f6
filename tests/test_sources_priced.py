"""Imported sheets, priced end to end: `pricing import` -> `replay` -> the cost view -> `export`.

The importer tests check the rows; these check what the rows *cost* once costlens applies them,
by hand, on the documented-format fixtures in tests/data/sources/: the 200k cliff exactly at
and one above, a tier with its own row and one without (tier fallback), 1-hour vs 5-minute
cache writes, a per-request fee, a ``:free`` id at 0 and an embedding model that was skipped.
Figures are $ per 1M tokens ("/ 1e6" makes dollars).
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

from helpers import DATA, Lines, write_jsonl

L = Lines()
SOURCES = DATA / "sources"


def import_sheet(invoke: Any, source: str, fixture: str, out: Path) -> Path:
    result = invoke("pricing", "import", source, SOURCES / fixture, "--out", out)
    assert result.exit_code == 0, result.stderr
    return out


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def replay_all(invoke: Any, tmp_path: Path, sheet: Path, by_tier: dict[str, list[dict[str, Any]]]) -> dict:
    for tier, lines in by_tier.items():
        path = write_jsonl(tmp_path / f"{tier}.jsonl", lines)
        result = invoke("--pricing", sheet, "replay", path, "--tier", tier)
        assert result.exit_code == 0, result.stderr
    out = tmp_path / "all.csv"
    assert invoke("--pricing", sheet, "export", "--format", "csv", "--out", out).exit_code == 0
    with out.open(encoding="utf-8", newline="") as f:
        return {r["custom_id"]: r for r in csv.DictReader(f)}


def test_litellm_sheet_prices_cliffs_tiers_and_cache_lifetimes(invoke, tmp_path):
    sheet = import_sheet(invoke, "litellm", "litellm.json", tmp_path / "litellm.csv")
    anthropic = {
        "input_tokens": 100, "output_tokens": 200, "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 1500,
        "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000},
    }  # fmt: skip
    rows = replay_all(invoke, tmp_path, sheet, {
        "standard": [
            L.openai("at-cliff", model="gemini-2.5-pro", usage=usage(200_000, 1000)),
            L.openai("above-cliff", model="gemini-2.5-pro", usage=usage(200_001, 1000)),
            L.anthropic("writes", model="claude-sonnet-4-5", usage=anthropic),
            L.openai("free", model="free-chat", usage=usage(5000, 5000)),
            L.openai("embedding", model="text-embedding-3-small", usage=usage(100, 0)),
        ],
        "batch": [
            L.openai("batch-row", model="gpt-4o", usage=usage(1000, 1000)),
            L.openai("batch-above-cliff", model="claude-sonnet-4-5", usage=usage(250_000, 10)),
        ],
        "priority": [L.openai("priority-row", model="gemini-2.5-pro", usage=usage(1000, 1000))],
        "flex": [L.openai("flex-no-row", model="gpt-4o", usage=usage(1000, 1000))],
    })  # fmt: skip
    # At 200,000 prompt tokens the base row: 200000 x 1.25 + 1000 x 10 = 260,000 / 1e6.
    assert rows["at-cliff"]["cost_usd"] == "0.26"
    # One above, every token at the cliff row: 200001 x 2.5 + 1000 x 15 = 515,002.5 / 1e6.
    assert rows["above-cliff"]["cost_usd"] == "0.5150025"
    # 100 x 3 + 1000 x 0.3 + 500 x 3.75 (5-minute) + 1000 x 6 (1-hour) + 200 x 15 = 11,475 / 1e6.
    assert rows["writes"]["cost_usd"] == "0.011475"
    assert (rows["free"]["priced"], rows["free"]["cost_usd"]) == ("true", "0")
    assert (rows["embedding"]["priced"], rows["embedding"]["price_note"]) == (
        "false",
        "unpriced: unknown model",
    )
    # gpt-4o has a batch row: 1000 x 1.25 + 1000 x 5.
    assert (rows["batch-row"]["cost_usd"], rows["batch-row"]["price_tier"]) == ("0.00625", "batch")
    # Above the cliff LiteLLM gives no batch price: unpriced, never the base batch price.
    assert (rows["batch-above-cliff"]["priced"], rows["batch-above-cliff"]["price_note"]) == (
        "false",
        "unpriced: price cell empty",
    )
    # gemini priority row: 1000 x 2.25 + 1000 x 18.
    assert (rows["priority-row"]["cost_usd"], rows["priority-row"]["price_tier"]) == ("0.02025", "priority")
    # No flex row for gpt-4o: the standard price, flagged (1000 x 2.5 + 1000 x 10).
    flex = rows["flex-no-row"]
    assert (flex["cost_usd"], flex["price_tier"]) == ("0.0125", "standard")
    assert flex["price_note"] == "tier fallback: no flex price, priced at standard"


def test_openrouter_sheet_charges_the_request_fee_and_prices_free_ids_at_zero(invoke, tmp_path):
    sheet = import_sheet(invoke, "openrouter", "openrouter.json", tmp_path / "or.csv")
    rows = replay_all(invoke, tmp_path, sheet, {
        "standard": [
            L.openai("sonar", model="perplexity/sonar", usage=usage(1000, 500)),
            L.openai("free", model="meta-llama/llama-3.3-70b-instruct:free", usage=usage(9000, 900)),
            L.openai("r1", model="deepseek/deepseek-r1",
                     usage={**usage(100, 1000), "completion_tokens_details": {"reasoning_tokens": 600}}),
        ],
    })  # fmt: skip
    # 1000 x 1 + 500 x 1 = 1,500 / 1e6 = 0.0015, plus the 0.005 fee.
    assert (rows["sonar"]["request_cost_usd"], rows["sonar"]["cost_usd"]) == ("0.005", "0.0065")
    assert (rows["free"]["priced"], rows["free"]["cost_usd"]) == ("true", "0")
    # 100 x 0.4 + 400 x 2 (output) + 600 x 2.5 (reasoning) = 2,340 / 1e6.
    assert rows["r1"]["cost_usd"] == "0.00234"


def test_models_dev_sheet_prices_its_context_tier(invoke, tmp_path):
    sheet = import_sheet(invoke, "models-dev", "models_dev.json", tmp_path / "md.csv")
    with sheet.open(encoding="utf-8", newline="") as f:
        tiered = [r for r in csv.DictReader(f) if r["min_prompt_tokens"] == "200001"]
    assert tiered, "the fixture has a context tier"
    model = tiered[0]["model"]
    rows = replay_all(invoke, tmp_path, sheet, {
        "standard": [
            L.openai("below", model=model, usage=usage(200_000, 0)),
            L.openai("above", model=model, usage=usage(200_001, 0)),
        ],
    })  # fmt: skip
    # 200001 x the tier's input price; 200000 x the base price (both read from the imported sheet).
    with sheet.open(encoding="utf-8", newline="") as f:
        base = next(r for r in csv.DictReader(f) if r["model"] == model and r["min_prompt_tokens"] == "0")
    assert Decimal(rows["below"]["cost_usd"]) == Decimal(200_000) * Decimal(base["input_per_1m"]) / 1_000_000
    assert (
        Decimal(rows["above"]["cost_usd"])
        == Decimal(200_001) * Decimal(tiered[0]["input_per_1m"]) / 1_000_000
    )
    assert Decimal(tiered[0]["input_per_1m"]) > Decimal(base["input_per_1m"])
