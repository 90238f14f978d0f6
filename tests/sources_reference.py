"""A pure-Python statement of how costlens bills a request from price-sheet rows — tests only.

The importers are checked against this reference, not against the DuckDB cost view, so
that an importer can be proven right (cost == genai_prices.calc_price) independently of the
SQL. It states the rule once, in the words of the sheet format:

* resolution: exact model id, then ``exact:`` rows, then the longest ``prefix:``, the longest
  ``suffix:``, the longest ``contains:``, then the first ``regex:`` (all on the lower-cased id);
* row choice: rows of the model and service tier (falling back to ``standard`` when the tier
  has no row at that instant) whose ``[effective_from, effective_to)`` holds the instant, and
  of those the one with the highest ``min_prompt_tokens`` <= the prompt (cache included);
* billing: uncached input = prompt - cache reads - cache writes at input; reads at cached
  input (else input); 5-minute writes (= writes - 1-hour writes) at cache write (else input);
  1-hour writes at the 1-hour price (else cache write, else input); output minus reasoning
  at output; reasoning at the reasoning price (else output); plus the per-request fee.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costlens.money.sources.base import SheetRow

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Usage:
    prompt: int  # includes cache reads and writes
    cache_read: int = 0
    cache_write: int = 0  # all writes, 5-minute and 1-hour
    cache_write_1h: int = 0
    output: int = 0  # includes reasoning
    reasoning: int = 0


def _when(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def rows_for(rows: Iterable[SheetRow], model: str, tier: str, at: datetime) -> list[SheetRow]:
    """The price rows of ``model`` in force at ``at`` for ``tier`` (else standard)."""
    mine = [r for r in rows if not r.match and r.model.lower() == model.lower()]

    def active(row: SheetRow) -> bool:
        start, end = _when(row.effective_from), _when(row.effective_to)
        return (start is None or start <= at) and (end is None or at < end)

    in_tier = [r for r in mine if r.service_tier == tier and active(r)]
    if not in_tier:
        in_tier = [r for r in mine if r.service_tier == "standard" and active(r)]
    return in_tier


def pick_row(rows: Sequence[SheetRow], prompt: int) -> SheetRow | None:
    eligible = [r for r in rows if int(r.min_prompt_tokens or 0) <= prompt]
    if not eligible:
        return None
    top = max(int(r.min_prompt_tokens or 0) for r in eligible)
    (row,) = [r for r in eligible if int(r.min_prompt_tokens or 0) == top]
    return row


def _price(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def bill(row: SheetRow, usage: Usage) -> Decimal | None:
    """The cost of ``usage`` under one row; None when a needed price is unpriced."""
    inp, out = _price(row.input_per_1m), _price(row.output_per_1m)
    if inp is None or out is None:
        return None
    cached = _price(row.cached_input_per_1m)
    write = _price(row.cache_write_per_1m)
    write_1h = _price(row.cache_write_1h_per_1m)
    reasoning = _price(row.reasoning_per_1m)
    request = _price(row.per_request_usd) or Decimal(0)
    read_price = cached if cached is not None else inp
    write_price = write if write is not None else inp
    write_1h_price = write_1h if write_1h is not None else write_price
    reasoning_price = reasoning if reasoning is not None else out
    uncached = usage.prompt - usage.cache_read - usage.cache_write
    five = usage.cache_write - usage.cache_write_1h
    tokens = (
        uncached * inp
        + usage.cache_read * read_price
        + five * write_price
        + usage.cache_write_1h * write_1h_price
        + (usage.output - usage.reasoning) * out
        + usage.reasoning * reasoning_price
    )
    return tokens / MILLION + request


def cost_of(rows: Iterable[SheetRow], model: str, usage: Usage, *, tier: str, at: datetime) -> Decimal | None:
    row = pick_row(rows_for(rows, model, tier, at), usage.prompt)
    return None if row is None else bill(row, usage)


def resolve(rows: Sequence[SheetRow], model_ref: str) -> str | None:
    """The model costlens prices ``model_ref`` as, by the sheet's resolution order."""
    ref = model_ref.lower()
    ids = {r.model.lower(): r.model for r in rows if not r.match}
    if ref in ids:
        return ids[ref]
    rules: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        if r.match:
            kind, _, text = r.match.partition(":")
            rules.setdefault(kind, []).append((text, r.model))
    for text, model in rules.get("exact", []):
        if text == ref:
            return model
    tests = {
        "prefix": ref.startswith,
        "suffix": ref.endswith,
        "contains": ref.__contains__,
    }
    for kind, test in tests.items():
        hits = [(text, model) for text, model in rules.get(kind, []) if test(text)]
        if hits:
            return max(hits, key=lambda h: len(h[0]))[1]
    for text, model in rules.get("regex", []):
        if re.search(text, ref):
            return model
    return None
