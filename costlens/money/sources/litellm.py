"""Import a saved LiteLLM ``model_prices_and_context_window.json`` into a costlens price sheet.

The file is read as data (LiteLLM itself is never imported): one object per model id with
USD prices **per token** as JSON numbers, read as ``Decimal`` from their text and moved to
per 1M tokens exactly. Float noise in the file (``1.6150000000000001e-06``) is rounded to 9
places and listed. Only ``mode == "chat"`` entries are imported; ``sample_spec`` is skipped
silently; an entry without ``mode`` is skipped ("no mode"), other modes are skipped as
non-chat.

**Fields.** ``input_cost_per_token`` -> input, ``output_cost_per_token`` -> output,
``cache_read_input_token_cost`` -> cached input, ``cache_creation_input_token_cost`` -> cache
write (5-minute / unspecified), ``cache_creation_input_token_cost_above_1hr`` -> 1-hour cache
write, ``output_cost_per_reasoning_token`` -> reasoning. Each may carry
``_above_<N>k_tokens`` (a cliff: from ``N * 1000 + 1`` prompt tokens every field of the row
is at that level; a field with no price at a level keeps the price of the level below) and
a tier suffix ``_batches`` / ``_flex`` / ``_priority`` (either order). ``litellm_provider`` is the
provider, ``max_input_tokens`` the context window.

**Tiers** are where LiteLLM's own calculator silently falls back to the standard price when
a tier key is missing. Here a tier row exists only when the entry gives at least one price
for that tier — a model without ``_priority`` keys gets no priority row, so costlens flags
the tier fallback instead of pricing priority traffic at standard. A tier row carries only
the prices the tier gives: a missing input or output price is an empty (unpriced) cell, and
missing cache/reasoning prices are empty, i.e. billed at the tier's own input/output price,
never at a standard price. A tier price holds up to the next standard cliff the tier does
not itself price; above it the cell is empty rather than a guess.

**Not metered.** Any other ``*cost*`` field with a non-zero value (audio tokens, images,
seconds, characters, ``search_context_cost_per_query``, ...) is listed as omitted; the
model keeps its token prices.

**Strict values.** Prices must be JSON numbers (a numeric *string* is an error: LiteLLM's
schema says number, and guessing would hide a broken file), finite, >= 0 and below
1,000,000 per 1M tokens; ``null`` means absent. Every error names the JSON path.
Keys equal but for case are one model id in the sheet: the first in file order is kept
(with ``--provider``, the first in the given provider order) and the rest listed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from costlens.errors import ConfigError
from costlens.money.sources.base import (
    SERVICE_TIERS,
    ImportResult,
    Listed,
    ServiceTier,
    SheetRow,
    expect_object,
    json_path,
    load_json,
    model_id,
    narrow_providers,
    optional_count,
    optional_number,
    per_token_to_per_1m,
    pick_owners,
    value_error,
)

__all__ = ["LitellmImporter", "parse_price_key"]

_BASE_FIELDS: Final[Mapping[str, str]] = {
    "input_cost_per_token": "input_per_1m",
    "output_cost_per_token": "output_per_1m",
    "cache_read_input_token_cost": "cached_input_per_1m",
    "cache_creation_input_token_cost": "cache_write_per_1m",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h_per_1m",
    "output_cost_per_reasoning_token": "reasoning_per_1m",
}
_FIELDS: Final = tuple(dict.fromkeys(_BASE_FIELDS.values()))
_TIERS: Final[Mapping[str, ServiceTier]] = {"batches": "batch", "flex": "flex", "priority": "priority"}
# Longest base first, so ..._cost_above_1hr is not read as ..._cost + a stray suffix. A cliff has at
# most 15 digits (N * 1000 + 1 must fit the sheet's BIGINT); a longer one is a key costlens does not
# meter, listed as omitted.
_KEY: Final = re.compile(
    "^(?P<base>"
    + "|".join(re.escape(b) for b in sorted(_BASE_FIELDS, key=len, reverse=True))
    + r")(?:_above_(?P<k1>\d{1,15})k_tokens)?(?:_(?P<tier>batches|flex|priority))?(?:_above_(?P<k2>\d{1,15})k_tokens)?$"
)


def parse_price_key(key: str) -> tuple[str, int, ServiceTier] | None:
    """``output_cost_per_token_above_200k_tokens_priority`` -> (output_per_1m, 200001, priority).

    Returns (sheet column, min_prompt_tokens, tier), or None for a key that is not one of
    the token prices costlens meters. The tier suffix may come before or after the cliff.
    """
    found = _KEY.match(key)
    if found is None or (found["k1"] and found["k2"]):
        return None
    thousands = found["k1"] or found["k2"]
    level = int(thousands) * 1000 + 1 if thousands else 0
    tier: ServiceTier = _TIERS[found["tier"]] if found["tier"] else "standard"
    return _BASE_FIELDS[found["base"]], level, tier


@dataclass(frozen=True, slots=True)
class _Entry:
    position: int
    key: str
    provider: str
    value: Mapping[str, Any]


class LitellmImporter:
    """``pricing import litellm FILE``: a saved model_prices_and_context_window.json."""

    name = "litellm"
    needs_file = True

    def load(self, file: Path | None, *, providers: Sequence[str] = ()) -> ImportResult:
        if file is None:
            raise ConfigError("litellm needs the saved model_prices_and_context_window.json FILE")
        name = str(file)
        data, digest = load_json(file)
        label = f"litellm sha256:{digest}"
        top = expect_object(data, "$", name, "a JSON object of model ids")
        entries: list[_Entry] = []
        for position, (key, value) in enumerate(top.items()):
            if key == "sample_spec":
                continue
            path = json_path(key)
            model_id(key, path, name)
            obj = expect_object(value, path, name)
            provider = obj.get("litellm_provider")
            if provider is not None and not isinstance(provider, str):
                raise value_error(json_path(key, "litellm_provider"), "expected a string", name)
            entries.append(_Entry(position, key, provider or "", obj))
        wanted = narrow_providers(providers, {e.provider for e in entries if e.provider}, source="litellm")
        kept, listed = pick_owners(
            entries, model_of=lambda e: e.key, provider_of=lambda e: e.provider, providers=wanted
        )
        rows: list[SheetRow] = []
        imported = skipped = 0
        for entry in kept:
            mode = entry.value.get("mode")
            if mode is None:
                skipped += 1
                listed.append(Listed(entry.key, entry.provider, "no mode", "skipped"))
                continue
            if not isinstance(mode, str):
                raise value_error(json_path(entry.key, "mode"), "expected a string", name)
            if mode != "chat":
                skipped += 1
                listed.append(Listed(entry.key, entry.provider, f"mode {mode!r} is not chat", "skipped"))
                continue
            model_rows = _rows(entry, label, name, listed)
            if model_rows:
                imported += 1
                rows.extend(model_rows)
            else:
                skipped += 1
                listed.append(Listed(entry.key, entry.provider, "no token prices", "skipped"))
        return ImportResult(
            source=label,
            rows=tuple(rows),
            listed=tuple(listed),
            models_imported=imported,
            models_skipped=skipped,
        )


def _rows(entry: _Entry, label: str, file: str, listed: list[Listed]) -> list[SheetRow]:
    model, provider, obj = entry.key, entry.provider, entry.value
    prices: dict[tuple[str, int, ServiceTier], str] = {}
    for key in obj:
        parsed = parse_price_key(key)
        path = json_path(model, key)
        if parsed is None:
            if "cost" in key and _nonzero(obj[key]):
                listed.append(Listed(model, provider, f"{key} is not metered by costlens", "omitted"))
            continue
        value = optional_number(obj, key, path, file)
        if value is None:
            continue
        prices[parsed] = per_token_to_per_1m(
            value, path=path, file=file, model=model, provider=provider, listed=listed
        )
    if not prices:
        return []
    context = optional_count(obj, "max_input_tokens", json_path(model, "max_input_tokens"), file)
    levels = sorted({0} | {level for _, level, _ in prices})
    rows: list[SheetRow] = []
    for tier in SERVICE_TIERS:
        if not any(t == tier for _, _, t in prices):
            continue
        for level in levels:
            cells = {column: _cell(prices, column, level, tier) for column in _FIELDS}
            rows.append(
                SheetRow(
                    model=model,
                    provider=provider,
                    context_window=str(context) if context else "",
                    **cells,
                    service_tier=tier,
                    min_prompt_tokens=str(level),
                    currency="USD",
                    source=f"{label} {model}",
                )
            )
    return rows


def _cell(
    prices: Mapping[tuple[str, int, ServiceTier], str], column: str, level: int, tier: ServiceTier
) -> str:
    """The price of ``column`` at ``level`` in ``tier`` (rules in the module docstring)."""
    own = [t for (c, t, tr) in prices if c == column and tr == tier and t <= level]
    if not own:
        return ""
    best = max(own)
    if tier != "standard":
        standard = [t for (c, t, tr) in prices if c == column and tr == "standard" and t <= level]
        if standard and max(standard) > best:
            return ""
    return prices[(column, best, tier)]


def _nonzero(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, Decimal):
        return value != 0
    if isinstance(value, dict):
        return any(_nonzero(v) for v in value.values())
    if isinstance(value, list):
        return any(_nonzero(v) for v in value)
    return True
