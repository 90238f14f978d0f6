"""models.dev importer: the golden sheet of a hand-written api.json fixture and its figures.

The fixture covers a context tier (``tiers``), the legacy ``context_over_200k``, both at once
(tiers win), a tier of another type, ``cache_write: 0``, float noise, audio prices, an
embedding model, a model without ``cost``, a free model and one id under two providers.
``UPDATE_GOLDEN=1`` rewrites the expected CSV after an intended change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from costlens.errors import ConfigError
from costlens.money.sources import ImportResult, SheetRow, get_source, render_csv

DATA = Path(__file__).parent / "data" / "sources"
FIXTURE = DATA / "models_dev.json"
EXPECTED = DATA / "models_dev.expected.csv"


def load(providers: tuple[str, ...] = ()) -> ImportResult:
    return get_source("models-dev").load(FIXTURE, providers=providers)


def rows_of(result: ImportResult, model: str) -> dict[str, SheetRow]:
    return {r.min_prompt_tokens: r for r in result.rows if r.model == model}


def test_golden_sheet() -> None:
    data = render_csv(load())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        EXPECTED.write_bytes(data)
    assert data == EXPECTED.read_bytes(), f"if intended, rerun with UPDATE_GOLDEN=1 to rewrite {EXPECTED}"


def test_same_input_same_bytes() -> None:
    assert render_csv(load()) == render_csv(load())


def test_context_tier_is_a_cliff_above_its_size() -> None:
    rows = rows_of(load(), "gpt-5.4")
    assert set(rows) == {"0", "272001"}
    assert (rows["0"].input_per_1m, rows["0"].output_per_1m, rows["0"].cached_input_per_1m) == (
        "2.5",
        "15",
        "0.25",
    )
    top = rows["272001"]
    assert (top.input_per_1m, top.output_per_1m, top.cached_input_per_1m) == ("5", "22.5", "0.5")
    assert top.context_window == "1050000" and top.provider == "openai"


def test_legacy_context_over_200k() -> None:
    rows = rows_of(load(), "claude-sonnet-4-5")
    assert set(rows) == {"0", "200001"}
    assert (rows["200001"].input_per_1m, rows["200001"].cache_write_per_1m) == ("6", "7.5")
    assert rows["0"].cache_write_per_1m == "3.75"


def test_tiers_win_over_legacy_and_missing_fields_carry_over() -> None:
    rows = rows_of(load(), "gemini-2.5-pro")
    assert set(rows) == {"0", "200001"}
    top = rows["200001"]
    assert (top.input_per_1m, top.output_per_1m) == ("2.5", "15")  # not the legacy 99
    assert (top.cached_input_per_1m, top.reasoning_per_1m) == ("0.31", "10")  # not in the tier: level below


def test_zero_cache_write_is_not_free() -> None:
    row = rows_of(load(), "gpt-4o-mini")["0"]
    assert (row.cache_write_per_1m, row.cached_input_per_1m, row.input_per_1m) == ("", "0.075", "0.15")


def test_free_model_and_unknown_context() -> None:
    free = rows_of(load(), "deepseek-r1:free")["0"]
    assert (free.input_per_1m, free.output_per_1m, free.provider) == ("0", "0", "openrouter")
    assert rows_of(load(), "gpt-4o-audio-preview")["0"].context_window == ""  # limit.context 0


def test_counts_and_listing() -> None:
    result = load()
    assert (result.models_imported, result.models_skipped) == (6, 2)
    assert sorted((i.model, i.reason) for i in result.listed_as("skipped")) == [
        ("gpt-oss-preview", "no cost"),
        ("text-embedding-3-small", "not a chat model: output modalities embedding"),
    ]
    assert sorted((i.model, i.reason) for i in result.listed_as("omitted")) == [
        ("gemini-2.5-pro", "price tier of type 'time_of_day' (cost.tiers[1]) is not expressible"),
        ("gpt-4o-audio-preview", "input_audio prices (cost.input_audio) are not metered by costlens"),
        ("gpt-4o-audio-preview", "output_audio prices (cost.output_audio) are not metered by costlens"),
    ]
    (dup,) = result.listed_as("duplicate")
    assert (dup.model, dup.provider, dup.reason) == (
        "gpt-5.4",
        "openrouter",
        "also under openai (kept openai)",
    )
    (rounded,) = result.listed_as("rounded")
    assert rounded.reason.startswith(
        '$.openai.models["gpt-4o-mini"].cost.input: 0.15000000000000002 rounded to 0.15'
    )


def test_providers_narrow_and_order_ties() -> None:
    result = load(("openrouter", "openai"))
    assert rows_of(result, "gpt-5.4")["0"].input_per_1m == "3"  # openrouter's, by the given order
    assert rows_of(result, "gpt-5.4")["0"].source.endswith(" openrouter/gpt-5.4")
    assert not rows_of(load(("anthropic",)), "gpt-5.4")
    with pytest.raises(
        ConfigError, match=r"unknown provider 'azure' for models-dev \(valid: anthropic, google"
    ):
        load(("azure",))
