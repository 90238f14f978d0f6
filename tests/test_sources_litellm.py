"""LiteLLM importer: the golden sheet of a hand-written fixture, and the figures behind it.

The fixture (tests/data/sources/litellm.json) is written from the documented format, not
copied: a 200k cliff with 1-hour and 5-minute cache writes, batch/flex/priority suffixes
(some partial), float noise, a case-only duplicate id, non-chat modes, an entry without a
mode and a free model. ``UPDATE_GOLDEN=1`` rewrites the expected CSV after an intended change.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from costlens.errors import ConfigError
from costlens.money.sources import ImportResult, SheetRow, get_source, render_csv
from costlens.money.sources.litellm import parse_price_key

DATA = Path(__file__).parent / "data" / "sources"
FIXTURE = DATA / "litellm.json"
EXPECTED = DATA / "litellm.expected.csv"


def load(providers: tuple[str, ...] = ()) -> ImportResult:
    return get_source("litellm").load(FIXTURE, providers=providers)


def rows_of(result: ImportResult, model: str) -> dict[tuple[str, str], SheetRow]:
    return {(r.service_tier, r.min_prompt_tokens): r for r in result.rows if r.model == model}


def test_golden_sheet() -> None:
    data = render_csv(load())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        EXPECTED.write_bytes(data)
    assert data == EXPECTED.read_bytes(), f"if intended, rerun with UPDATE_GOLDEN=1 to rewrite {EXPECTED}"


def test_same_input_same_bytes() -> None:
    assert render_csv(load()) == render_csv(load())


def test_source_cells_carry_the_file_hash_and_key() -> None:
    digest = hashlib.sha256(FIXTURE.read_bytes()).hexdigest()
    result = load()
    assert result.source == f"litellm sha256:{digest}"
    assert {r.source for r in result.rows if r.model == "gpt-4o"} == {f"litellm sha256:{digest} gpt-4o"}


def test_cliff_rows_hold_every_field_at_200001() -> None:
    rows = rows_of(load(), "claude-sonnet-4-5")
    base, cliff = rows[("standard", "0")], rows[("standard", "200001")]
    # 3e-06/token = $3/1M; the 5-minute write 3.75e-06 and the 1-hour write 6e-06 stay apart
    assert (base.input_per_1m, base.output_per_1m, base.cached_input_per_1m) == ("3", "15", "0.3")
    assert (base.cache_write_per_1m, base.cache_write_1h_per_1m) == ("3.75", "6")
    assert (cliff.input_per_1m, cliff.output_per_1m, cliff.cached_input_per_1m) == ("6", "22.5", "0.6")
    assert (cliff.cache_write_per_1m, cliff.cache_write_1h_per_1m) == ("7.5", "12")
    assert base.context_window == cliff.context_window == "200000"


def test_a_field_without_an_above_price_keeps_its_base_price() -> None:
    rows = rows_of(load(), "gemini-2.5-pro")
    assert rows[("standard", "200001")].input_per_1m == "2.5"
    assert rows[("standard", "200001")].cached_input_per_1m == "0.125"  # no cache_read ..._above_200k_tokens


def test_tier_rows_only_for_tiers_the_entry_prices() -> None:
    result = load()
    gpt4o = rows_of(result, "gpt-4o")
    assert set(gpt4o) == {("standard", "0"), ("batch", "0")}  # no flex/priority keys: no row, no fallback
    assert (gpt4o[("batch", "0")].input_per_1m, gpt4o[("batch", "0")].output_per_1m) == ("1.25", "5")
    assert gpt4o[("batch", "0")].cached_input_per_1m == ""  # not given for batch: never the standard 1.25
    o4 = rows_of(result, "o4-mini")
    assert set(o4) == {("standard", "0"), ("flex", "0"), ("priority", "0")}
    assert (o4[("priority", "0")].input_per_1m, o4[("priority", "0")].output_per_1m) == ("2", "8")
    assert o4[("priority", "0")].cached_input_per_1m == "0.5"
    assert (o4[("flex", "0")].input_per_1m, o4[("flex", "0")].output_per_1m) == (
        "0.55",
        "",
    )  # unpriced output
    assert o4[("standard", "0")].reasoning_per_1m == "4.4"


def test_a_tier_price_stops_at_a_standard_cliff_it_does_not_give() -> None:
    rows = rows_of(load(), "gemini-2.5-pro")
    assert (rows[("priority", "0")].input_per_1m, rows[("priority", "0")].output_per_1m) == ("2.25", "18")
    above = rows[("priority", "200001")]
    assert (above.input_per_1m, above.output_per_1m) == ("", "")
    batch = rows_of(load(), "claude-sonnet-4-5")[("batch", "200001")]
    assert (batch.input_per_1m, batch.output_per_1m, batch.cache_write_per_1m) == ("", "", "")


def test_free_model_is_zero_not_unpriced() -> None:
    row = rows_of(load(), "free-chat")[("standard", "0")]
    assert (row.input_per_1m, row.output_per_1m) == ("0", "0")


def test_counts_and_listing() -> None:
    result = load()
    assert (result.models_imported, result.models_skipped) == (7, 4)
    by_kind = {
        kind: sorted((i.model, i.reason) for i in result.listed_as(kind)) for kind in ("skipped", "omitted")
    }
    assert by_kind["skipped"] == [
        ("chat-without-prices", "no token prices"),
        ("dall-e-3", "mode 'image_generation' is not chat"),
        ("mystery-model", "no mode"),
        ("text-embedding-3-small", "mode 'embedding' is not chat"),
    ]
    assert by_kind["omitted"] == [
        ("gpt-4o", "search_context_cost_per_query is not metered by costlens"),
        ("gpt-4o-audio-preview", "input_cost_per_audio_token is not metered by costlens"),
        ("gpt-4o-audio-preview", "output_cost_per_audio_token is not metered by costlens"),
    ]  # gemini's input_cost_per_audio_token is 0: nothing lost, nothing listed
    (dup,) = result.listed_as("duplicate")
    assert (dup.model, dup.provider, dup.reason) == ("GPT-4O", "azure", "also under openai (kept openai)")
    (rounded,) = result.listed_as("rounded")
    assert rounded.model == "gpt-4o-mini"
    assert rounded.reason.startswith(
        '$["gpt-4o-mini"].input_cost_per_token: 1.5000000000000002E-7 rounded to 0.15'
    )
    assert rows_of(result, "gpt-4o-mini")[("standard", "0")].input_per_1m == "0.15"
    assert "sample_spec" not in {r.model for r in result.rows} | {i.model for i in result.listed}


def test_providers_narrow_and_order_ties() -> None:
    only = load(("anthropic",))
    assert {r.model for r in only.rows} == {"claude-sonnet-4-5"}
    assert (only.models_imported, only.models_skipped) == (1, 0)
    azure_first = load(("azure", "openai"))
    assert rows_of(azure_first, "GPT-4O")[("standard", "0")].input_per_1m == "5"
    assert not rows_of(azure_first, "gpt-4o")
    with pytest.raises(
        ConfigError, match=r"unknown provider 'openia' for litellm \(valid: anthropic, azure, openai"
    ):
        load(("openia",))


@pytest.mark.parametrize(
    ("key", "parsed"),
    [
        ("input_cost_per_token", ("input_per_1m", 0, "standard")),
        ("output_cost_per_token_batches", ("output_per_1m", 0, "batch")),
        ("cache_read_input_token_cost_flex", ("cached_input_per_1m", 0, "flex")),
        ("cache_creation_input_token_cost", ("cache_write_per_1m", 0, "standard")),
        ("cache_creation_input_token_cost_above_1hr", ("cache_write_1h_per_1m", 0, "standard")),
        (
            "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
            ("cache_write_1h_per_1m", 200001, "standard"),
        ),
        ("input_cost_per_token_above_128k_tokens", ("input_per_1m", 128001, "standard")),
        ("input_cost_per_token_above_200k_tokens_priority", ("input_per_1m", 200001, "priority")),
        ("input_cost_per_token_priority_above_200k_tokens", ("input_per_1m", 200001, "priority")),
        ("output_cost_per_reasoning_token", ("reasoning_per_1m", 0, "standard")),
        ("input_cost_per_audio_token", None),
        ("input_cost_per_token_cache_hit", None),
        ("input_cost_per_token_above_200k_tokens_above_128k_tokens", None),
        ("input_cost_per_token_fast", None),
    ],
)
def test_parse_price_key(key: str, parsed: tuple[str, int, str] | None) -> None:
    assert parse_price_key(key) == parsed


def test_other_thresholds_and_levels_union(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(
        '{"m": {"mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,'
        ' "input_cost_per_token_above_128k_tokens": 2e-06, "output_cost_per_token_above_256k_tokens": 4e-06}}',
        encoding="utf-8",
    )
    rows = rows_of(get_source("litellm").load(path), "m")
    cells = {level: (r.input_per_1m, r.output_per_1m) for (_, level), r in rows.items()}
    assert cells == {"0": ("1", "2"), "128001": ("2", "2"), "256001": ("2", "4")}
