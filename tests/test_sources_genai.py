"""genai-prices importer: the sheet must bill exactly what genai-prices' calc_price bills.

Two inputs: a hand-written fixture in genai-prices' own data format
(tests/data/sources/genai_providers.json, parsed by the package's parser) whose golden sheet
and hand-computed cells cover every translation rule — dated prices (sorted and not),
cliffs at different thresholds, each cache-write key combination, tier variants, a
time-of-day window, an ``and`` rule, duplicates — and the data bundled with the installed
package, which is imported whole and checked against ``calc_price`` by the pure-Python
reference (tests/sources_reference.py) at every start date, every cliff and every tier.
``UPDATE_GOLDEN=1`` rewrites the expected CSV after an intended change.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices  # noqa: E402  (a runtime dependency: a missing package must fail, not skip)
import pytest
import sources_reference as ref
from genai_prices import Usage  # noqa: E402
from genai_prices import types as gt  # noqa: E402
from genai_prices.data import providers as BUNDLED  # noqa: E402
from genai_prices.data_snapshot import DataSnapshot  # noqa: E402
from genai_prices.data_units import unit_data  # noqa: E402
from genai_prices.decompose import compute_leaf_values  # noqa: E402
from genai_prices.units import UnitRegistry  # noqa: E402

from costlens.errors import ConfigError
from costlens.money.sources import ImportResult, SheetRow, get_source, render_csv
from costlens.money.sources.genai_prices import (
    _PRICE_CELLS,
    _cells,
    and_to_regex,
    convert,
    match_cells,
    re2_problem,
)
from costlens.money.sources.writer import row_order

DATA = Path(__file__).parent / "data" / "sources"
FIXTURE = DATA / "genai_providers.json"
EXPECTED = DATA / "genai.expected.csv"
VERSION = genai_prices.__version__
IS_0_2_3 = VERSION == "0.2.3"
CONTEXTS: dict[str, dict[str, str] | None] = {
    "standard": None,
    "batch": {"processing": "batch"},
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
}
# The match-order disagreements left in 0.2.3 (see test_match_order_agreement).
MAX_ORDER_DISAGREEMENTS = 45


def fixture_providers() -> list[Any]:
    # genai-prices' own parser for its data format (what its auto-updater uses on data.json)
    return gt._providers_from_raw(json.loads(FIXTURE.read_text(encoding="utf-8")))


def resolver(providers: list[Any]) -> Any:
    snapshot = DataSnapshot(providers=providers, from_auto_update=False)

    def resolve(ref_: str) -> tuple[str, str] | None:
        try:
            provider, model = snapshot.find_provider_model(ref_, None, None, None)
        except LookupError:
            return None
        return provider.id, model.id

    return resolve


def load_fixture(providers: Sequence[str] = ()) -> ImportResult:
    data = fixture_providers()
    return convert(data, version="test", resolve=resolver(data), providers=providers)


@pytest.fixture(scope="module")
def fixture_result() -> ImportResult:
    return load_fixture()


@pytest.fixture(scope="module")
def bundled() -> ImportResult:
    return get_source("genai-prices").load(None)


def price_rows(result: ImportResult, model: str) -> list[SheetRow]:
    return sorted((r for r in result.rows if r.model == model and not r.match), key=row_order)


def match_rows(result: ImportResult, model: str) -> set[str]:
    return {r.match for r in result.rows if r.model == model and r.match}


def cells(row: SheetRow, *names: str) -> tuple[str, ...]:
    return tuple(getattr(row, name) for name in names)


# --- the fixture: golden sheet and hand-computed cells ------------------------------------


def test_golden_sheet(fixture_result: ImportResult) -> None:
    data = render_csv(fixture_result)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        EXPECTED.write_bytes(data)
    assert data == EXPECTED.read_bytes(), f"if intended, rerun with UPDATE_GOLDEN=1 to rewrite {EXPECTED}"


def test_fixture_counts_and_listing(fixture_result: ImportResult) -> None:
    result = fixture_result
    assert (result.models_imported, result.models_skipped) == (10, 4)
    assert sorted((i.model, i.reason) for i in result.listed_as("skipped")) == [
        (
            "acme-1h",
            "genai-prices cannot price it: Missing ancestor price for cache_write_1h_tokens: cache_write_tokens",
        ),
        (
            "acme-5m",
            "genai-prices cannot price it: Missing ancestor price for cache_write_5m_tokens: cache_write_tokens",
        ),
        ("acme-embed", "not a chat model: no output token price (prices: input_mtok)"),
        ("acme-offpeak", "time-of-day price windows (TimeOfDateConstraint) cannot be expressed"),
    ]
    assert sorted((i.model, i.reason) for i in result.listed_as("omitted")) == [
        ("acme-and", "image token prices (input_image_mtok) are not metered by costlens"),
        (
            "acme-batch",
            "price variant when={'service_tier': 'fast'} is not expressible "
            "(costlens service tiers: standard, batch, flex, priority)",
        ),
        ("acme-chat", "web search fees (web_searches_kcount) are not metered by costlens"),
        (
            "acme-lookahead",
            "match rule and(starts_with 'acme-la', regex '^(?!.*-tts)') cannot be expressed without lookaround; "
            "only the model's own id and its other rules match it here",
        ),
        (
            "other-chat",
            "match prefix:acme-chat-2025 not written: genai-prices resolves 'acme-chat-2025' to "
            "acme/acme-chat, also imported",
        ),
    ]
    (dup,) = result.listed_as("duplicate")
    assert (dup.model, dup.provider, dup.reason) == ("acme-chat", "other", "also under acme (kept acme)")
    (rounded,) = result.listed_as("rounded")
    assert (rounded.model, rounded.reason) == (
        "other-chat",
        "input_mtok: 0.1234567895 rounded to 0.12345679 (at most 9 decimal places)",  # half-even: 9 is odd
    )


def test_plain_model_cells_and_rules(fixture_result: ImportResult) -> None:
    (row,) = price_rows(fixture_result, "acme-chat")
    assert cells(row, "provider", "context_window", "service_tier", "min_prompt_tokens", "currency") == (
        "acme",
        "200000",
        "standard",
        "0",
        "USD",
    )
    assert cells(row, "input_per_1m", "output_per_1m", "cached_input_per_1m") == ("1", "2", "0.1")
    assert cells(row, "cache_write_per_1m", "cache_write_1h_per_1m", "per_request_usd") == (
        "1.25",
        "2",
        "0.005",
    )
    assert row.source == "genai-prices test acme/acme-chat"
    # equals acme-chat is the id itself; Acme-Chat-Latest is lower-cased
    assert match_rows(fixture_result, "acme-chat") == {"prefix:acme-chat-2025", "exact:acme-chat-latest"}
    assert match_rows(fixture_result, "other-chat") == {"suffix:-other"}  # the prefix went to acme-chat
    assert price_rows(fixture_result, "acme-chat")[0].input_per_1m == "1"  # acme's, not other's 9


def test_start_dates_give_half_open_intervals(fixture_result: ImportResult) -> None:
    dated = price_rows(fixture_result, "acme-dated")
    assert [cells(r, "effective_from", "effective_to", "input_per_1m", "output_per_1m") for r in dated] == [
        ("", "2025-03-01", "1", "2"),
        ("2025-03-01", "2025-09-01", "0.8", "1.6"),
        ("2025-09-01", "", "0.5", "1"),
    ]
    # tried last to first: the 2025-01-01 entry is last, so it wins every day from then on and the
    # 2025-06-01 entry never applies except before 2025-01-01, when none is active and the first is used
    unsorted = price_rows(fixture_result, "acme-unsorted")
    assert [cells(r, "effective_from", "effective_to", "input_per_1m") for r in unsorted] == [
        ("", "2025-01-01", "3"),
        ("2025-01-01", "", "2"),
    ]


def test_cliffs_hold_every_field_at_each_threshold(fixture_result: ImportResult) -> None:
    rows = price_rows(fixture_result, "acme-long")
    # input: 2, above 200000 -> 4; output: 8, above 128000 -> 12, above 200000 -> 16; cache read flat
    assert [
        cells(r, "min_prompt_tokens", "input_per_1m", "output_per_1m", "cached_input_per_1m") for r in rows
    ] == [
        ("0", "2", "8", "0.2"),
        ("128001", "2", "12", "0.2"),
        ("200001", "4", "16", "0.2"),
    ]


@pytest.mark.parametrize(
    ("model", "write", "write_1h"),
    [
        ("acme-chat", "1.25", "2"),  # generic + 1h: as they are
        ("acme-5m-generic", "1.25", "1.5"),  # 5m + generic: the generic price is left for 1-hour writes
        ("acme-all-writes", "1.25", "2"),  # all three: the generic price's leaf is empty
    ],
)
def test_cache_write_key_combinations(
    fixture_result: ImportResult, model: str, write: str, write_1h: str
) -> None:
    (row,) = price_rows(fixture_result, model)
    assert cells(row, "cache_write_per_1m", "cache_write_1h_per_1m") == (write, write_1h)


WRITE_KEYS = ("cache_write_mtok", "cache_write_5m_mtok", "cache_write_1h_mtok")


@pytest.mark.parametrize(
    "keys", [combo for n in range(len(WRITE_KEYS) + 1) for combo in itertools.combinations(WRITE_KEYS, n)]
)
def test_cells_reproduce_genai_leaf_decomposition(keys: tuple[str, ...]) -> None:
    """For every cache-write key combination — also those genai's validation refuses today — the
    cells make costlens's rule bill what genai's leaf decomposition (decompose.py) bills."""
    registry = UnitRegistry(unit_data)
    prices = {"input_mtok": Decimal(1), "output_mtok": Decimal(5), "cache_read_mtok": Decimal("0.1")}
    prices |= {
        key: value
        for key, value in zip(WRITE_KEYS, (Decimal("1.5"), Decimal("1.25"), Decimal(2)), strict=True)
        if key in keys
    }
    row = SheetRow(model="m", **dict(zip(_PRICE_CELLS, _cells(gt, prices, 0, "m", "p", []), strict=True)))
    units = {registry.unit_for_price_key(key).usage_key: registry.unit_for_price_key(key) for key in prices}
    rng = random.Random(1234)
    for _ in range(200):
        usage = _usage(rng, rng.randint(0, 10_000))
        leaves = compute_leaf_values(set(units), _genai_usage(usage), units)
        theirs = sum(
            (Decimal(leaves[usage_key]) * prices[unit.price_key] for usage_key, unit in units.items()),
            Decimal(0),
        ) / Decimal(1_000_000)
        assert ref.bill(row, usage) == theirs, (keys, usage, row)


def test_tier_variants(fixture_result: ImportResult) -> None:
    rows = price_rows(fixture_result, "acme-batch")
    assert [
        cells(r, "service_tier", "effective_from", "input_per_1m", "output_per_1m", "cached_input_per_1m")
        for r in rows
    ] == [
        ("standard", "", "2", "8", "0.2"),
        ("batch", "2025-05-01", "1", "4", "0.2"),  # only once the variant starts; cache read from standard
        ("flex", "", "1.5", "8", "0.2"),  # a partial override: output stays standard, as in genai
    ]


def test_and_rule_and_reasoning(fixture_result: ImportResult) -> None:
    assert match_rows(fixture_result, "acme-and") == {"regex:^(?:acme-x.*x-mini|acme-x-mini)$"}
    (row,) = price_rows(fixture_result, "acme-and")
    assert cells(row, "input_per_1m", "output_per_1m", "reasoning_per_1m") == ("0.3", "1.2", "3")


def test_providers_narrow_and_order_ties() -> None:
    other_first = load_fixture(("other", "acme"))
    assert price_rows(other_first, "acme-chat")[0].input_per_1m == "9"
    (dup,) = other_first.listed_as("duplicate")
    assert (dup.provider, dup.reason) == ("acme", "also under other (kept other)")
    only_other = load_fixture(("other",))
    assert {r.model for r in only_other.rows} == {"acme-chat", "other-chat"}
    with pytest.raises(ConfigError, match=r"unknown provider 'acne' for genai-prices \(valid: acme, other\)"):
        load_fixture(("acne",))


def test_genai_prices_takes_no_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="takes no FILE"):
        get_source("genai-prices").load(tmp_path / "x.json")


# --- match rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regex", "problem"),
    [
        (r"^gpt-5\.4-\d{4}-\d{2}-\d{2}$", None),
        (r"^(typesafe/)?jev-1\.13(-\d{8})?$", None),
        (r"^composer-2\.5\[fast=false\]$", None),
        (r"[(?!]x", None),  # inside a class these are literals
        (r"^(?!.*-[tT][tT][sS](?:$|-))", "lookaround"),
        (r"(?<=a)b", "lookaround"),
        (r"(a)\1", "a backreference"),
        (r"(?P<x>a)(?P=x)", "a backreference"),
        (r"(?>ab)", "an atomic group"),
        (r"a++", "a possessive quantifier"),
        (r"a\Z", "\\Z"),
    ],
)
def test_re2_problem(regex: str, problem: str | None) -> None:
    assert re2_problem(regex) == problem


def test_match_cells_flattens_or_and_drops_the_own_id() -> None:
    clause = gt.ClauseOr(
        or_=[
            gt.ClauseEquals(equals="Model-A"),
            gt.ClauseOr(or_=[gt.ClauseStartsWith(starts_with="Model-A-"), gt.ClauseContains(contains="a@b")]),
            gt.ClauseEndsWith(ends_with="-A"),
            gt.ClauseRegex(regex=r"^model-a-\d+$"),
            gt.ClauseEquals(equals="model-a-latest"),
        ]
    )
    assert match_cells(clause, "model-a") == [
        "prefix:model-a-",
        "contains:a@b",
        "suffix:-a",
        r"regex:^model-a-\d+$",
        "exact:model-a-latest",
    ]


def _and(**parts: list[str]) -> Any:
    classes = {
        "equals": gt.ClauseEquals,
        "starts_with": gt.ClauseStartsWith,
        "ends_with": gt.ClauseEndsWith,
        "contains": gt.ClauseContains,
    }
    return gt.ClauseAnd(
        and_=[classes[kind](**{kind: text}) for kind, texts in parts.items() for text in texts]
    )


def _strings(alphabet: str, longest: int) -> Iterator[str]:
    for n in range(longest + 1):
        for letters in itertools.product(alphabet, repeat=n):
            yield "".join(letters)


def _cell_matches(cell: str, text: str) -> bool:
    kind, _, value = cell.partition(":")
    return {
        "exact": lambda: text == value,
        "prefix": lambda: text.startswith(value),
        "suffix": lambda: text.endswith(value),
        "contains": lambda: value in text,
        "regex": lambda: re.search(value, text) is not None,
    }[kind]()


def test_and_to_regex_is_exact_including_overlaps() -> None:
    """Brute force: for random ``and`` rules over a tiny alphabet, the cells match exactly the same strings."""
    rng = random.Random(1234)
    probes = list(_strings("ab.", 7))
    tried = inexpressible = 0
    for _ in range(400):
        parts: dict[str, list[str]] = {}
        for kind in ("starts_with", "ends_with", "contains", "equals"):
            if rng.random() < (0.1 if kind == "equals" else 0.6):
                parts[kind] = ["".join(rng.choice("ab.") for _ in range(rng.randint(1, 3)))]
        if not parts:
            continue
        clause = _and(**parts)
        got = and_to_regex(clause)
        if got is None:
            inexpressible += 1
            continue
        tried += 1
        for probe in probes:
            assert clause.is_match(probe) == any(_cell_matches(c, probe) for c in got), (parts, got, probe)
    assert tried > 250 and inexpressible > 0  # prefix + suffix + contains is refused, and only that


def test_and_to_regex_escapes_and_refuses_lookaround() -> None:
    assert and_to_regex(_and(starts_with=["gpt-4.1"], ends_with=["-mini"])) == [
        r"regex:^(?:gpt-4\.1.*-mini)$"
    ]
    assert and_to_regex(_and(starts_with=["a"], equals=["abc"])) == ["exact:abc"]
    assert and_to_regex(_and(starts_with=["x"], equals=["abc"])) == []  # matches nothing
    assert and_to_regex(_and(starts_with=["ab", "abc"])) == ["prefix:abc"]
    lookahead = gt.ClauseAnd(and_=[gt.ClauseStartsWith(starts_with="a"), gt.ClauseRegex(regex="^(?!.*b)")])
    assert and_to_regex(lookahead) is None


# --- the bundled data ---------------------------------------------------------------------


def _skip_kind(reason: str) -> str:
    for start, kind in (
        ("not a chat model", "not a chat model"),
        ("no input_mtok", "no input/output price"),
        ("no output_mtok", "no input/output price"),
        ("time-of-day", "time-of-day prices"),
        ("genai-prices cannot price", "genai-prices cannot price it"),
    ):
        if reason.startswith(start):
            return kind
    if reason.startswith("match rule") and "lookaround" in reason:
        return "match rule needs lookaround"
    return reason


def test_bundled_import_counts(bundled: ImportResult) -> None:
    imported = {(r.provider, r.model) for r in bundled.rows if not r.match}
    price_omissions = Counter(
        (i.provider, i.model) for i in bundled.listed_as("omitted") if not i.reason.startswith("match ")
    )
    skipped = Counter(_skip_kind(i.reason) for i in bundled.listed_as("skipped"))
    summary = (
        f"genai-prices {VERSION}: {bundled.models_imported} imported "
        f"({len(imported - set(price_omissions))} without loss, {len(set(price_omissions))} with omitted prices), "
        f"{bundled.models_skipped} skipped {dict(skipped)}, {len(bundled.listed_as('duplicate'))} duplicates, "
        f"{len(bundled.listed_as('rounded'))} rounded values, {len(bundled.rows)} rows"
    )
    print(summary)
    assert len(imported) == bundled.models_imported
    assert bundled.models_imported + bundled.models_skipped + len(bundled.listed_as("duplicate")) == sum(
        len(p.models) for p in BUNDLED
    )
    # pyproject pins genai-prices==0.2.3 (the sheet is data: a new release is a reviewed change).
    assert IS_0_2_3, f"exact counts are for genai-prices 0.2.3, not {VERSION}: update them with the pin"
    assert (bundled.models_imported, bundled.models_skipped, len(bundled.listed_as("duplicate"))) == (
        1563,
        278,
        489,
    )
    assert skipped == {"not a chat model": 273, "time-of-day prices": 5}
    assert (
        len(set(price_omissions)) == 125
    )  # 122 for unmetered prices and variants, 3 for lookahead match rules
    assert len(bundled.listed_as("rounded")) == 21


def test_bundled_is_deterministic(bundled: ImportResult) -> None:
    again = get_source("genai-prices").load(None)
    assert render_csv(again) == render_csv(bundled)
    assert bundled.source == f"genai-prices {VERSION}"


def _bundled_model(provider_id: str, model_id: str) -> tuple[Any, Any]:
    provider = next(p for p in BUNDLED if p.id == provider_id)
    return provider, next(m for m in provider.models if m.id == model_id)


def test_claude_sonnet_4_0_is_what_genai_prices_says(bundled: ImportResult) -> None:
    _, model = _bundled_model("anthropic", "claude-sonnet-4-0")
    prices = model.prices
    (row,) = price_rows(bundled, "claude-sonnet-4-0")
    assert row.provider == "anthropic"
    assert Decimal(row.input_per_1m) == prices.input_mtok == Decimal("3")
    assert Decimal(row.output_per_1m) == prices.output_mtok == Decimal("15")
    assert Decimal(row.cached_input_per_1m) == prices.cache_read_mtok == Decimal("0.3")
    assert Decimal(row.cache_write_per_1m) == prices.cache_write_mtok == Decimal("3.75")
    assert Decimal(row.cache_write_1h_per_1m) == prices.cache_write_1h_mtok == Decimal("6")
    assert (row.reasoning_per_1m, row.per_request_usd, row.context_window) == ("", "", "200000")
    assert match_rows(bundled, "claude-sonnet-4-0") == {
        "prefix:claude-sonnet-4-2025",
        "prefix:claude-sonnet-4-0",
        "prefix:claude-sonnet-4@",
        "prefix:claude-4-sonnet",
    }
    # its `equals: claude-sonnet-4` is another imported model's own id, so costlens would never use it
    notes = [i.reason for i in bundled.listed if i.model == "claude-sonnet-4-0" and i.provider == "anthropic"]
    assert "match exact:claude-sonnet-4 not written: 'claude-sonnet-4' is itself an imported model" in notes
    assert "web search fees (web_searches_kcount) are not metered by costlens" in notes


def test_bundled_tiered_model_with_batch_variant(bundled: ImportResult) -> None:
    rows = [r for r in price_rows(bundled, "claude-sonnet-4-5") if r.provider == "anthropic"]
    table = [
        cells(
            r,
            "service_tier",
            "min_prompt_tokens",
            "effective_from",
            "input_per_1m",
            "output_per_1m",
            "cache_write_1h_per_1m",
        )
        for r in rows
    ]
    _, model = _bundled_model("anthropic", "claude-sonnet-4-5")
    (batch,) = model.price_variants
    start = batch.constraint.start_date.isoformat()
    assert table == [
        ("standard", "0", "", "3", "15", "6"),
        ("standard", "200001", "", "6", "22.5", "12"),
        ("batch", "0", start, "1.5", "7.5", "3"),
        ("batch", "200001", start, "3", "11.25", "6"),
    ]
    dup = [i for i in bundled.listed_as("duplicate") if i.model == "claude-sonnet-4-5"]
    assert {i.provider for i in dup} == {"google"} and dup[
        0
    ].reason == "also under anthropic (kept anthropic)"


def test_bundled_start_dates_match_get_prices(bundled: ImportResult) -> None:
    """Every dated standard row holds the prices genai's get_prices gives just inside its interval."""
    checked = 0
    for row in bundled.rows:
        if row.match or row.service_tier != "standard" or row.min_prompt_tokens != "0":
            continue
        if not (row.effective_from or row.effective_to):
            continue
        _, model = _bundled_model(row.provider, row.model)
        if row.effective_from:
            inside = datetime.fromisoformat(row.effective_from).replace(tzinfo=UTC)
        else:
            inside = datetime.fromisoformat(row.effective_to).replace(tzinfo=UTC) - timedelta(seconds=1)
        prices = model.get_prices(inside)
        for cell, key in (("input_per_1m", "input_mtok"), ("output_per_1m", "output_mtok")):
            value = getattr(prices, key)
            base = value.base if isinstance(value, gt.TieredPrices) else value
            assert Decimal(getattr(row, cell)) == base.quantize(Decimal("1e-9")), (row, key, base)
        checked += 1
    assert checked > 100


def test_duplicates_follow_genai_prices_choice(bundled: ImportResult) -> None:
    snapshot = DataSnapshot(providers=BUNDLED, from_auto_update=False)
    kept = {r.model.lower(): r.provider for r in bundled.rows if not r.match}
    agreed = differ = 0
    for item in bundled.listed_as("duplicate"):
        key = item.model.lower()
        if key not in kept:
            continue
        try:
            picked, _ = snapshot.find_provider_model(key, None, None, None)
        except LookupError:
            continue
        if any(m.id.lower() == key for m in picked.models):
            assert kept[key] == picked.id, item
            agreed += 1
        else:
            differ += 1
    assert agreed > 50


def test_bundled_providers_narrowing(bundled: ImportResult) -> None:
    narrowed = get_source("genai-prices").load(None, providers=("google", "anthropic"))
    assert {r.provider for r in narrowed.rows} == {"google", "anthropic"}
    assert {r.provider for r in price_rows(narrowed, "claude-sonnet-4-5")} == {"google"}
    with pytest.raises(
        ConfigError, match=r"unknown provider 'antropic' for genai-prices \(valid: anthropic, arcee"
    ):
        get_source("genai-prices").load(None, providers=("antropic",))


def _clause_texts(model: Any) -> Iterator[str]:
    def walk(clause: Any) -> Iterator[Any]:
        for attr in ("or_", "and_"):
            nested = getattr(clause, attr, None)
            if nested is not None:
                for part in nested:
                    yield from walk(part)
                return
        yield clause

    for leaf in walk(model.match):
        for kind in ("equals", "starts_with"):
            if hasattr(leaf, kind):
                yield getattr(leaf, kind).lower()


def test_match_order_agreement(bundled: ImportResult) -> None:
    """For every equals/starts_with text of every kept model, genai and costlens's order pick the same model.

    The disagreements left are of two kinds: the text is itself the id of another imported
    model (costlens resolves ids first, genai routes by provider ``model_match`` first), which
    only dropping that model could avoid; or genai reaches the model through a rule costlens
    cannot express (listed as omitted), so costlens leaves the text unpriced.
    """
    snapshot = DataSnapshot(providers=BUNDLED, from_auto_update=False)
    rows = sorted(bundled.rows, key=row_order)
    kept = {(r.provider, r.model) for r in rows if not r.match}
    ids = {model.lower() for _, model in kept}
    texts = sorted({t for p in BUNDLED for m in p.models if (p.id, m.id) in kept for t in _clause_texts(m)})
    agree, unresolved, disagree = 0, 0, []
    for text in texts:
        try:
            _, genai_model = snapshot.find_provider_model(text, None, None, None)
        except LookupError:
            unresolved += 1
            continue
        ours = ref.resolve(rows, text)
        if ours is not None and ours.lower() == genai_model.id.lower():
            agree += 1
        else:
            disagree.append((text, genai_model.id, ours))
    resolvable = len(texts) - unresolved
    print(
        f"match order: {agree} of {resolvable} resolvable texts agree ({len(texts)} texts, {unresolved} "
        "that genai resolves only with a provider)"
    )
    assert len(disagree) <= MAX_ORDER_DISAGREEMENTS, "\n".join(map(str, disagree))
    assert agree + len(disagree) == resolvable and agree > 0.9 * resolvable
    own_id = [d for d in disagree if d[2] is not None and d[2].lower() in ids and d[0] == d[2].lower()]
    dropped_rule = {
        x.model for x in bundled.listed if x.kind == "omitted" and x.reason.startswith("match rule")
    }
    unexpressed = [d for d in disagree if d[2] is None and d[1] in dropped_rule]
    assert sorted(own_id + unexpressed) == sorted(disagree), "\n".join(
        map(str, set(disagree) - set(own_id) - set(unexpressed))
    )


# --- the oracle: cost == calc_price -------------------------------------------------------


def _instants(rows: Sequence[SheetRow]) -> list[datetime]:
    dates = sorted({datetime.fromisoformat(t) for r in rows for t in (r.effective_from, r.effective_to) if t})
    around = [
        d + offset for d in dates for offset in (timedelta(seconds=-1), timedelta(0), timedelta(hours=12))
    ]
    return [datetime(2020, 1, 1), *around, datetime(2035, 1, 1)]


def _usage(rng: random.Random, prompt: int) -> ref.Usage:
    prompt = max(prompt, 0)
    cache_read = rng.randint(0, prompt)
    cache_write = rng.randint(0, prompt - cache_read)
    output = rng.randint(0, 60_000)
    return ref.Usage(
        prompt=prompt,
        cache_read=cache_read,
        cache_write=cache_write,
        cache_write_1h=rng.randint(0, cache_write),
        output=output,
        reasoning=rng.randint(0, output),
    )


def _genai_usage(usage: ref.Usage) -> Any:
    return Usage(
        input_tokens=usage.prompt,  # includes cache reads and writes
        cache_read_tokens=usage.cache_read,
        cache_write_tokens=usage.cache_write,  # all writes
        cache_write_5m_tokens=usage.cache_write - usage.cache_write_1h,  # read only where 5m is priced
        cache_write_1h_tokens=usage.cache_write_1h,
        output_tokens=usage.output,
        output_reasoning_tokens=usage.reasoning,  # read only where reasoning is priced
    )


def _genai_cost(provider: Any, model: Any, usage: ref.Usage, tier: str, at: datetime) -> Decimal:
    calc = model.calc_price(
        _genai_usage(usage),
        provider,
        genai_request_timestamp=at.replace(tzinfo=UTC),
        price_context=CONTEXTS[tier],
    )
    return Decimal(calc.total_price)


def run_oracle(data: list[Any], result: ImportResult, random_usages: int) -> tuple[int, list[str]]:
    """Price every imported model on its boundary grid plus ``random_usages`` spread over all models."""
    rng = random.Random(1234)
    by_provider = {p.id: p for p in data}
    grouped: dict[tuple[str, str], list[SheetRow]] = {}
    for row in result.rows:
        if not row.match:
            grouped.setdefault((row.provider, row.model), []).append(row)
    rounded = {(i.provider, i.model) for i in result.listed_as("rounded")}
    per_model = math.ceil(random_usages / max(len(grouped), 1))
    checked, failures = 0, []
    for (provider_id, model_id), rows in sorted(grouped.items()):
        provider = by_provider[provider_id]
        model = next(m for m in provider.models if m.id == model_id)
        instants = _instants(rows)
        levels = sorted({int(r.min_prompt_tokens) for r in rows} - {0})
        cliff_points = [
            level + d for level in levels for d in (-2, -1, 0, 1)
        ]  # N-1, N, N+1, N+2 for "above N"
        cases = [
            (at, tier, p)
            for at in instants
            for tier in CONTEXTS
            for p in [*cliff_points, rng.randint(0, 4000)]
        ]
        cases += [
            (rng.choice(instants), rng.choice(list(CONTEXTS)), rng.randint(0, 1_500_000))
            for _ in range(per_model)
        ]
        for at, tier, prompt in cases:
            usage = _usage(rng, prompt)
            ours = ref.cost_of(rows, model_id, usage, tier=tier, at=at)
            theirs = _genai_cost(provider, model, usage, tier, at)
            # a rounded price differs by at most half a unit of the 9th place per 1M tokens (or request)
            slack = (
                Decimal(usage.prompt + usage.output + 1) * Decimal("5e-16")
                if (provider_id, model_id) in rounded
                else 0
            )
            checked += 1
            if ours is None or abs(ours - theirs) > Decimal("1e-12") + slack:
                failures.append(
                    f"{provider_id}/{model_id} {tier} {at} {usage}: costlens {ours} != genai {theirs}"
                )
    return checked, failures


def test_oracle_on_the_fixture(fixture_result: ImportResult) -> None:
    checked, failures = run_oracle(fixture_providers(), fixture_result, random_usages=2000)
    assert checked > 2000
    assert not failures, "\n".join(failures[:20])


def test_oracle_on_every_bundled_model(bundled: ImportResult) -> None:
    """2,000 random usages spread over all models, plus every model's boundary grid.

    ``GENAI_ORACLE_USAGES=3120000`` gives 2,000 per model (about 5 minutes); the variable has
    no ``COSTLENS_`` prefix because conftest clears those.
    """
    usages = int(os.environ.get("GENAI_ORACLE_USAGES", "2000"))
    checked, failures = run_oracle(list(BUNDLED), bundled, random_usages=usages)
    print(f"oracle: {checked} usages over {bundled.models_imported} models agree with calc_price")
    assert checked > 10_000
    assert not failures, f"{len(failures)} of {checked} differ:\n" + "\n".join(failures[:20])


def test_oracle_catches_a_wrong_cell(fixture_result: ImportResult) -> None:
    """The oracle is not vacuous: one wrong cache-write cell is found."""
    rows = tuple(
        SheetRow(**{**{f: getattr(r, f) for f in r.__dataclass_fields__}, "cache_write_1h_per_1m": ""})
        if r.model == "acme-5m-generic" and not r.match
        else r
        for r in fixture_result.rows
    )
    broken = ImportResult(
        source="x", rows=rows, listed=fixture_result.listed, models_imported=9, models_skipped=5
    )
    _, failures = run_oracle(fixture_providers(), broken, random_usages=0)
    assert failures and all(f.startswith("acme/acme-5m-generic ") for f in failures)
