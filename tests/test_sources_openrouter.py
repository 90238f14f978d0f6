"""OpenRouter importer: the golden sheet of a hand-written /api/v1/models fixture and its figures.

The fixture covers what the format's numbers mean: decimal strings per token, ``"0"`` cache
and reasoning prices that are "not priced separately", ``:free`` ids at 0, ``-1`` routers,
a per-request fee, web-search/image fees that costlens does not meter, float noise, and an
embedding model. ``UPDATE_GOLDEN=1`` rewrites the expected CSV after an intended change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from costlens.errors import ConfigError
from costlens.money.sources import ImportResult, SheetRow, get_source, render_csv

DATA = Path(__file__).parent / "data" / "sources"
FIXTURE = DATA / "openrouter.json"
EXPECTED = DATA / "openrouter.expected.csv"


def load(providers: tuple[str, ...] = ()) -> ImportResult:
    return get_source("openrouter").load(FIXTURE, providers=providers)


def row(result: ImportResult, model: str) -> SheetRow:
    (found,) = [r for r in result.rows if r.model == model]
    return found


def test_golden_sheet() -> None:
    data = render_csv(load())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        EXPECTED.write_bytes(data)
    assert data == EXPECTED.read_bytes(), f"if intended, rerun with UPDATE_GOLDEN=1 to rewrite {EXPECTED}"


def test_same_input_same_bytes() -> None:
    assert render_csv(load()) == render_csv(load())


def test_per_token_strings_become_per_1m() -> None:
    gpt = row(load(), "openai/gpt-4o")
    # "0.0000025" x 1e6 = 2.5; "0.00000125" cache read = 1.25
    assert (gpt.input_per_1m, gpt.output_per_1m, gpt.cached_input_per_1m) == ("2.5", "10", "1.25")
    assert (gpt.provider, gpt.context_window, gpt.service_tier, gpt.min_prompt_tokens) == (
        "openai",
        "128000",
        "standard",
        "0",
    )


def test_zero_cache_and_reasoning_mean_not_priced_separately() -> None:
    gpt = row(load(), "openai/gpt-4o")
    assert (gpt.cache_write_per_1m, gpt.reasoning_per_1m, gpt.per_request_usd) == ("", "", "")
    r1 = row(load(), "deepseek/deepseek-r1")
    assert (r1.reasoning_per_1m, r1.cached_input_per_1m) == ("2.5", "")
    claude = row(load(), "anthropic/claude-sonnet-4.5")
    assert (claude.cached_input_per_1m, claude.cache_write_per_1m) == ("0.3", "3.75")


def test_free_ids_are_zero() -> None:
    free = row(load(), "meta-llama/llama-3.3-70b-instruct:free")
    assert (free.input_per_1m, free.output_per_1m) == ("0", "0")


def test_request_fee_is_per_request_not_per_token() -> None:
    assert row(load(), "perplexity/sonar").per_request_usd == "0.005"


def test_counts_and_listing() -> None:
    result = load()
    assert (result.models_imported, result.models_skipped) == (6, 2)
    assert sorted((i.model, i.reason) for i in result.listed_as("skipped")) == [
        ("openai/text-embedding-3-small", "not a chat model: output modalities embeddings"),
        ("openrouter/auto", "router/auto model: price -1 (depends on the model it routes to)"),
    ]
    assert sorted((i.model, i.reason) for i in result.listed_as("omitted")) == [
        ("anthropic/claude-sonnet-4.5", "image input prices (image) are not metered by costlens"),
        ("anthropic/claude-sonnet-4.5", "web search fees (web_search) are not metered by costlens"),
        ("mistralai/mistral-small", "prices (audio) are not metered by costlens"),
        ("openai/gpt-4o", "image input prices (image) are not metered by costlens"),
        ("perplexity/sonar", "web search fees (web_search) are not metered by costlens"),
    ]
    (rounded,) = result.listed_as("rounded")
    assert rounded.reason.startswith("$.data[6].pricing.prompt: 1.6150000000000001E-7 rounded to 0.1615")
    assert row(result, "mistralai/mistral-small").input_per_1m == "0.1615"
    assert row(result, "mistralai/mistral-small").context_window == ""  # null context_length
    assert result.listed_as("duplicate") == ()


def test_providers_are_the_id_prefix() -> None:
    only = load(("anthropic", "perplexity"))
    assert sorted(r.model for r in only.rows) == ["anthropic/claude-sonnet-4.5", "perplexity/sonar"]
    with pytest.raises(
        ConfigError, match=r"unknown provider 'x-ai' for openrouter \(valid: anthropic, deepseek"
    ):
        load(("x-ai",))
