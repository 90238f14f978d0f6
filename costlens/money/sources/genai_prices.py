"""Import the price data bundled with the ``genai-prices`` package into a costlens price sheet.

Only the bundled data is read (``genai_prices.data.providers``), through a private snapshot:
never the package's network updater, and never a snapshot someone else installed. The goal
is that costlens, applying its own billing rule to the rows written here, charges exactly
what ``ModelInfo.calc_price`` charges; ``tests/test_sources_genai.py`` checks that for every
imported model at every start date, every cliff and every service tier, plus random usages.
What makes the translation non-trivial:

**Billing rule.** costlens bills uncached input = prompt - cache reads - cache writes at
``input_per_1m``; reads at ``cached_input_per_1m`` (else input); 5-minute writes
(= writes - 1-hour writes) at ``cache_write_per_1m`` (else input); 1-hour writes at
``cache_write_1h_per_1m`` (else ``cache_write_per_1m``, else input); output minus reasoning
at ``output_per_1m``; reasoning at ``reasoning_per_1m`` (else output); plus
``per_request_usd`` per request. genai-prices instead splits usage into "leaves"
(``decompose.compute_leaf_values``): each priced unit pays for its count minus the counts
of its priced descendants, and unpriced descendants fall into their nearest priced ancestor.
The two agree key by key (input_mtok, output_mtok, cache_read_mtok, output_reasoning_mtok,
requests_kcount/1000) except for cache-write key combinations, where explicit cells make
costlens's rule give genai's bill (G = cache_write_mtok, F = cache_write_5m_mtok,
H = cache_write_1h_mtok):

* G alone: all writes at G -> ``cache_write_per_1m`` = G.
* G and H: 5-minute writes are G's leaf (writes - H) -> G and H as they are.
* G and F (no H): 5-minute writes at F, the remaining writes (the 1-hour ones) at G ->
  ``cache_write_per_1m`` = F and ``cache_write_1h_per_1m`` = G (left empty when F == G).
* G, F and H: G's leaf is empty (writes = 5m + 1h) -> F and H.
* F or H without G: genai's own ``calc_price`` refuses the price set ("Missing ancestor price
  for cache_write_1h_tokens: cache_write_tokens"), so such a model is skipped — as is any
  price set genai refuses. Were it accepted, the leaves would say: H alone -> 5-minute writes
  stay in the input leaf (an empty ``cache_write_per_1m`` already says so); F alone -> 1-hour
  writes stay in the input leaf, so ``cache_write_1h_per_1m`` = the input price, written
  explicitly. ``_cells`` writes that, and a test checks every combination against genai's
  ``decompose.compute_leaf_values``.

Usage must report the 5-minute count to genai for F to apply — it is ``writes - 1h`` here.
genai's bundled data itself carries float noise (``0.0833333333333333`` per 1M, 21 values in
0.2.3): those are rounded to 9 places and listed, and differ from ``calc_price`` by at most
5e-16 USD per token.

**Dated prices.** ``prices`` may be a list of conditional prices with start dates, "tried
last to first; the last active wins; if none is active, the first is used" (an entry
without a constraint is always active). Over the sorted start dates (of prices and of
supported variants) every interval gets the entry that wins there; equal neighbours are
merged, so rows carry ``effective_from``/``effective_to`` = the UTC dates genai compares with
(``request_timestamp.date() >= start_date``); the first interval is unbounded below.
A time-of-day window (``TimeOfDateConstraint``) anywhere skips the model.

**Cliffs.** A ``TieredPrices`` value switches *every* token of a price key to the tier price
once total input (cache included) exceeds ``start``; costlens's cliff rows do the same with
``min_prompt_tokens = start + 1``. A model gets one row per distinct threshold of any of its
prices (all tiers, all intervals), each holding every field at that level, so all rows of a
model have the same levels whatever the date.

**Service tiers.** ``price_variants`` whose ``when`` is exactly ``{"processing": "batch"}``,
``{"service_tier": "flex"}`` or ``{"service_tier": "priority"}`` become batch/flex/priority rows:
the standard price in force, overridden key by key by the first active variant of that tier
that prices the key (genai resolves variants first to last per key, each active only from
its own start date). Tier rows exist only for intervals where a variant of the tier is
active; before that costlens falls back to the standard row, which is genai's price too.
``{"service_tier": "default"}`` without prices changes nothing; any other ``when`` (fast,
speed, route, search_type, ...) is listed as omitted.

**Keys costlens does not meter** (web/storage searches, audio/image/video tokens, audio
hours, document pages, characters, messages, citations): the model keeps its token prices
and each key is listed as omitted; genai bills those units only when usage reports them.
A model without input_mtok and output_mtok in every price entry is skipped as non-chat.

**Which provider owns an id.** The same id appears under several providers (273 ids in
0.2.3). Without ``--provider`` the kept entry is the provider genai itself picks for that id
(``find_provider_model(id, None, None, None)``), when that provider has the id, else the first
provider in genai's order; with ``--provider`` ties go by the order given. Others are listed
as duplicates. Only a provider's own models are imported (``fallback_model_providers`` are a
lookup rule, not prices: azure and google reuse other providers' models that way).

**Match rules** become ``match`` rows: ``equals`` -> ``exact:``, ``starts_with`` -> ``prefix:``,
``ends_with`` -> ``suffix:``, ``contains`` -> ``contains:`` (texts lower-cased, as genai compares
lower-cased), ``regex`` -> ``regex:`` verbatim (genai searches it in the lower-cased id, as
costlens does; it must be RE2-compatible — no lookaround, backreferences, atomic groups or
possessive quantifiers). An ``or`` becomes one row per clause; an ``and`` of
equals/starts_with/ends_with/contains clauses becomes one exact ``regex`` row (prefix+suffix
-> ``^A(?:.*B|overlaps)$``, prefix or suffix + contains likewise); any other ``and`` (the three
Gemini rules with a negative lookahead against ``-tts``) skips the model. An ``exact:`` row
equal to the model's own id, or to another imported model's id (costlens resolves ids first),
is not written. When two kept models claim the same rule, the one genai resolves the rule's
text to keeps it (else the first) and the other is listed.

**Resolution order.** genai resolves an id by the first provider whose ``model_match`` matches,
then the first model in that provider's list whose rule matches. costlens resolves exact id,
then ``exact:`` rows, then the longest prefix, suffix, contains, then regex. The two disagree
when genai's list puts a shorter prefix (or a contains) before a longer or exact rule of
another model, and when an id genai would route to another provider by ``model_match`` is
claimed here by a rule. ``test_match_order_agreement`` measures it over every ``equals`` and
``starts_with`` text of every kept model (2,199 texts in 0.2.3): genai resolves 682 of them
without a provider (the rest only with ``provider_id``), and for 638 of those costlens's order
picks the same model. All 44 others are texts that are themselves the id of another imported
model (``claude-3.5-sonnet`` is an openrouter id, but genai routes it to anthropic's
``claude-3-5-sonnet`` by anthropic's ``model_match``): costlens resolves ids first, and only
dropping that model would agree. Rules were taken out where that helped: an ``exact:``,
``prefix:``, ``suffix:`` or ``contains:`` rule whose own text genai resolves to *another*
imported model is not written (AWS's ``prefix:claude-haiku-4-5-20251001`` would otherwise win
over anthropic's shorter prefix for ids genai sends to anthropic).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from costlens.errors import ConfigError
from costlens.money.pricing import PRICE_FIELDS
from costlens.money.sources.base import (
    SERVICE_TIERS,
    ImportResult,
    Listed,
    ServiceTier,
    SheetRow,
    narrow_providers,
    pick_owners,
    price_cell,
)

__all__ = [
    "GenaiPricesImporter",
    "Resolver",
    "and_to_regex",
    "convert",
    "match_cells",
    "re2_problem",
]

Resolver = Callable[[str], tuple[str, str] | None]
"""``resolve(model_ref)`` -> (provider id, model id) genai-prices picks with no provider, or None."""

_METERED: Final = frozenset(
    {
        "input_mtok",
        "output_mtok",
        "cache_read_mtok",
        "cache_write_mtok",
        "cache_write_5m_mtok",
        "cache_write_1h_mtok",
        "output_reasoning_mtok",
        "requests_kcount",
    }
)
_TIER_OF_WHEN: Final[Mapping[tuple[tuple[str, str], ...], ServiceTier]] = {
    (("processing", "batch"),): "batch",
    (("service_tier", "flex"),): "flex",
    (("service_tier", "priority"),): "priority",
}
_OMITTED_NAMES: Final[Mapping[str, str]] = {
    "web_searches_kcount": "web search fees",
    "storage_searches_kcount": "file/storage search fees",
    "social_searches_kcount": "social search fees",
    "code_executions_kcount": "code execution fees",
    "rerank_searches_kcount": "rerank search fees",
    "input_mchars": "per-character prices",
    "input_text_messages_kcount": "per-message prices",
    "input_document_kpages": "document page prices",
    "input_annotated_document_kpages": "annotated document page prices",
}
_PRICE_CELLS: Final = PRICE_FIELDS


class GenaiPricesImporter:
    """``pricing import genai-prices``: the bundled data of the installed genai-prices."""

    name = "genai-prices"
    needs_file = False

    def load(self, file: Path | None, *, providers: Sequence[str] = ()) -> ImportResult:
        if file is not None:
            raise ConfigError("genai-prices reads the data bundled with the package; it takes no FILE")
        try:
            import genai_prices
            from genai_prices.data import providers as bundled
            from genai_prices.data_snapshot import DataSnapshot
        except ImportError as e:  # a dev dependency of costlens, not a runtime one
            raise ConfigError("genai-prices is not installed (pip install genai-prices)") from e
        # Our own snapshot of the bundled data: get_snapshot() would return one installed by
        # the package's auto-updater (network data) if anything in the process set it.
        snapshot = DataSnapshot(providers=bundled, from_auto_update=False)

        def resolve(model_ref: str) -> tuple[str, str] | None:
            try:
                provider, model = snapshot.find_provider_model(model_ref, None, None, None)
            except LookupError:
                return None
            return str(provider.id), str(model.id)

        return convert(bundled, version=str(genai_prices.__version__), resolve=resolve, providers=providers)


class _Skip(Exception):
    """The model cannot be expressed in the sheet; ``args[0]`` says why."""


@dataclass(frozen=True, slots=True)
class _Entry:
    """One price entry of a model: active from ``start``, or ``always`` (no constraint)."""

    start: date | None
    always: bool
    prices: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Variant:
    tier: ServiceTier
    start: date | None
    prices: Mapping[str, Any]


@dataclass
class _Converted:
    provider: str
    model: str
    price_rows: list[SheetRow]
    match: list[str]
    listed: list[Listed]


def convert(
    data: Sequence[Any],
    *,
    version: str,
    resolve: Resolver | None = None,
    providers: Sequence[str] = (),
) -> ImportResult:
    """Convert genai-prices ``Provider`` objects (``genai_prices.data.providers``) into sheet rows."""
    from genai_prices import types as gt

    label = f"genai-prices {version}"
    wanted = narrow_providers(providers, [str(p.id) for p in data], source="genai-prices")
    entries = [(p, m) for p in data for m in p.models]
    kept, listed = pick_owners(
        entries,
        model_of=lambda e: str(e[1].id),
        provider_of=lambda e: str(e[0].id),
        providers=wanted,
        preferred=(lambda ref: r[0] if (r := resolve(ref)) else None) if resolve else None,
    )
    converted: list[_Converted] = []
    skipped = 0
    for provider, model in kept:
        try:
            converted.append(_convert_model(gt, provider, model, label))
        except _Skip as e:
            skipped += 1
            listed.append(Listed(str(model.id), str(provider.id), str(e.args[0]), "skipped"))
    rows = _settle_match_rows(converted, resolve, label, listed)
    for item in converted:
        listed.extend(item.listed)
        rows.extend(item.price_rows)
    return ImportResult(
        source=label,
        rows=tuple(rows),
        listed=tuple(sorted(listed, key=lambda i: (i.model.lower(), i.provider, i.kind, i.reason))),
        models_imported=len(converted),
        models_skipped=skipped,
    )


# --- One model ----------------------------------------------------------------------------


def _price_dict(model_price: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(model_price).items() if not k.startswith("_") and v is not None}


def _convert_model(gt: Any, provider: Any, model: Any, label: str) -> _Converted:
    provider_id, model_id = str(provider.id), str(model.id)
    if not model_id.strip() or model_id != model_id.strip():  # the sheet reader strips its cells
        raise _Skip(f"model id {model_id!r} is empty or has spaces around it: a price sheet cannot key it")
    listed: list[Listed] = []
    raw_entries = (
        model.prices if isinstance(model.prices, list) else [gt.ConditionalPrice(prices=model.prices)]
    )
    raw_variants = list(model.price_variants or ())
    constraints = [c.constraint for c in raw_entries] + [v.constraint for v in raw_variants]
    if any(isinstance(c, gt.TimeOfDateConstraint) for c in constraints):
        raise _Skip("time-of-day price windows (TimeOfDateConstraint) cannot be expressed")
    if not raw_entries:
        raise _Skip("no prices")
    entries = [
        _Entry(
            c.constraint.start_date if c.constraint is not None else None,
            c.constraint is None,
            _price_dict(c.prices),
        )
        for c in raw_entries
    ]
    if not any("output_mtok" in e.prices for e in entries):
        keys = sorted({k for e in entries for k in e.prices})
        raise _Skip(f"not a chat model: no output token price (prices: {', '.join(keys) or 'none'})")
    for entry in entries:
        missing = [k for k in ("input_mtok", "output_mtok") if k not in entry.prices]
        if missing:
            since = f"from {entry.start}" if entry.start else "in its first price entry"
            raise _Skip(f"no {' or '.join(missing)} price {since}")
    dropped: list[str] = []
    match = match_cells(model.match, model_id, dropped)
    for rule in dropped:
        # The prices are exact; only some of the ids the rule names cannot be recognised. Pricing
        # the model under its exact id (and its other rules) beats leaving it unpriced everywhere.
        listed.append(
            Listed(
                model_id,
                provider_id,
                f"match rule {rule} cannot be expressed without lookaround; only the model's own id "
                "and its other rules match it here",
                "omitted",
            )
        )
    variants: list[_Variant] = []
    for variant in raw_variants:
        when = tuple(sorted(variant.when.items()))
        prices = _price_dict(variant.prices)
        tier = _TIER_OF_WHEN.get(when)
        if tier is not None:
            start = variant.constraint.start_date if variant.constraint is not None else None
            variants.append(_Variant(tier, start, prices))
        elif when == (("service_tier", "default"),) and not prices:
            continue
        else:
            listed.append(
                Listed(
                    model_id,
                    provider_id,
                    f"price variant when={dict(when)} is not expressible "
                    f"(costlens service tiers: {', '.join(SERVICE_TIERS)})",
                    "omitted",
                )
            )
    all_keys = {k for e in entries for k in e.prices} | {k for v in variants for k in v.prices}
    for key in sorted(all_keys - _METERED):
        listed.append(Listed(model_id, provider_id, _omitted_reason(key), "omitted"))

    starts = sorted({e.start for e in entries if e.start} | {v.start for v in variants if v.start})
    bounds: list[date | None] = [None, *starts]
    ends: list[date | None] = [*starts, None]
    resolved: dict[ServiceTier, list[dict[str, Any] | None]] = {}
    for tier in SERVICE_TIERS:
        tier_variants = [v for v in variants if v.tier == tier]
        if tier != "standard" and not tier_variants:
            continue
        resolved[tier] = [_resolve(entries, tier_variants, tier, start) for start in bounds]
    for price_set in (p for per_interval in resolved.values() for p in per_interval):
        if price_set is not None:
            _check_genai_accepts(gt, price_set)
    levels = sorted(
        {0}
        | {
            t.start + 1
            for per_interval in resolved.values()
            for prices in per_interval
            if prices is not None
            for key, value in prices.items()
            if key in _METERED and isinstance(value, gt.TieredPrices)
            for t in value.tiers
        }
    )
    context = (
        str(model.context_window)
        if isinstance(model.context_window, int) and model.context_window >= 1
        else ""
    )
    source = f"{label} {provider_id}/{model_id}"
    rounded: list[Listed] = []
    rows: list[SheetRow] = []
    for tier, per_interval in resolved.items():
        for level in levels:
            cells = [
                None if prices is None else _cells(gt, prices, level, model_id, provider_id, rounded)
                for prices in per_interval
            ]
            i = 0
            while i < len(cells):
                current = cells[i]
                j = i
                while j + 1 < len(cells) and cells[j + 1] == current:
                    j += 1
                if current is not None:
                    start, end = bounds[i], ends[j]
                    rows.append(
                        SheetRow(
                            model=model_id,
                            provider=provider_id,
                            context_window=context,
                            **dict(zip(_PRICE_CELLS, current, strict=True)),
                            service_tier=tier,
                            min_prompt_tokens=str(level),
                            effective_from=start.isoformat() if start else "",
                            effective_to=end.isoformat() if end else "",
                            currency="USD",
                            source=source,
                        )
                    )
                i = j + 1
    listed.extend(dict.fromkeys(rounded))  # one note per rounded value, not per row
    return _Converted(provider_id, model_id, rows, match, listed)


def _resolve(
    entries: Sequence[_Entry], variants: Sequence[_Variant], tier: ServiceTier, start: date | None
) -> dict[str, Any] | None:
    """The prices genai applies from ``start`` on (None = before every start date) in ``tier``."""
    standard = entries[0].prices
    for entry in reversed(entries):  # "the last active wins; if none is active, the first"
        if entry.always or (start is not None and entry.start is not None and start >= entry.start):
            standard = entry.prices
            break
    if tier == "standard":
        return dict(standard)
    active = [v for v in variants if v.start is None or (start is not None and start >= v.start)]
    if not active:
        return None
    prices = dict(standard)
    overrides: dict[str, Any] = {}
    for variant in active:  # first to last, independently per key
        for key, value in variant.prices.items():
            overrides.setdefault(key, value)
    prices.update(overrides)
    return prices


def _check_genai_accepts(gt: Any, prices: Mapping[str, Any]) -> None:
    """Skip price sets genai's own calc_price refuses (e.g. a 1-hour write price without a generic one).

    genai validates every price set it applies ("Missing ancestor price for
    cache_write_1h_tokens: cache_write_tokens"); a sheet row for such a set would price what
    genai cannot, so there is nothing to agree with.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown keys: genai warns and ignores them, as we list them
        try:
            gt.ModelPrice(**prices).calc_price(gt.Usage())
        except ValueError as e:
            raise _Skip(f"genai-prices cannot price it: {e}") from e


def _at(gt: Any, value: Any, level: int) -> Decimal:
    """A price at prompt size ``level``: genai applies the highest tier whose start < tokens."""
    if isinstance(value, gt.TieredPrices):
        price = value.base
        for tier in sorted(value.tiers, key=lambda t: t.start, reverse=True):
            if level > tier.start:
                price = tier.price
                break
        return Decimal(price)
    return Decimal(value)


def _cells(
    gt: Any, prices: Mapping[str, Any], level: int, model: str, provider: str, listed: list[Listed]
) -> tuple[str, ...]:
    """The seven price cells for ``prices`` at ``level`` (see the module docstring for writes)."""
    v = {k: _at(gt, value, level) for k, value in prices.items() if k in _METERED}
    generic = v.get("cache_write_mtok")
    five = v.get("cache_write_5m_mtok")
    hour = v.get("cache_write_1h_mtok")
    if five is not None:
        write: Decimal | None = five
        if hour is not None:
            write_1h: Decimal | None = hour
        elif generic is not None:
            write_1h = generic if generic != five else None
        else:
            write_1h = v["input_mtok"]  # 1-hour writes stay in genai's input leaf
    else:
        write, write_1h = generic, hour
    by_cell: dict[str, tuple[str, Decimal | None, int]] = {
        "input_per_1m": ("input_mtok", v.get("input_mtok"), 0),
        "output_per_1m": ("output_mtok", v.get("output_mtok"), 0),
        "cached_input_per_1m": ("cache_read_mtok", v.get("cache_read_mtok"), 0),
        "cache_write_per_1m": ("cache_write_5m_mtok" if five is not None else "cache_write_mtok", write, 0),
        "cache_write_1h_per_1m": ("cache_write_1h_mtok", write_1h, 0),
        "reasoning_per_1m": ("output_reasoning_mtok", v.get("output_reasoning_mtok"), 0),
        "per_request_usd": ("requests_kcount", v.get("requests_kcount"), -3),
    }
    out: list[str] = []
    for cell in _PRICE_CELLS:
        key, value, shift = by_cell[cell]
        if value is None:
            out.append("")
        else:
            out.append(
                price_cell(
                    value, shift=shift, path=key, file=None, model=model, provider=provider, listed=listed
                )
            )
    return tuple(out)


def _omitted_reason(key: str) -> str:
    name = _OMITTED_NAMES.get(key)
    if name is None:
        kind = next((m for m in ("audio", "image", "video", "citation", "text", "tool") if m in key), None)
        if key.endswith("_hours") or key.endswith("_seconds"):
            name = "audio duration prices"
        elif kind is not None and key.endswith("_mtok"):
            name = f"{kind} token prices"
        else:
            name = "prices"
    return f"{name} ({key}) are not metered by costlens"


# --- Match rules --------------------------------------------------------------------------

_RE_SPECIAL: Final = frozenset("\\.^$*+?()[]{}|")


def _escape(text: str) -> str:
    """Escape for both Python ``re`` and RE2 (only the metacharacters: RE2 rejects ``\\ ``)."""
    return "".join("\\" + c if c in _RE_SPECIAL else c for c in text)


def re2_problem(regex: str) -> str | None:
    """Why ``regex`` would not run the same in RE2 (lookaround, backreference...), or None."""
    try:
        re.compile(regex)
    except re.error as e:
        return f"invalid regex: {e}"
    i, in_class = 0, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            following = regex[i + 1 : i + 2]
            if not in_class and following.isdigit():
                return "a backreference"
            if following in ("Z", "G"):
                return f"\\{following}"
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            i += 1
            continue
        if c == "[":
            i += 1
            if regex[i : i + 1] == "^":
                i += 1
            if regex[i : i + 1] == "]":
                i += 1
            in_class = True
            continue
        if c == "(" and regex[i + 1 : i + 2] == "?":
            rest = regex[i + 2 :]
            if rest.startswith(("=", "!", "<=", "<!")):
                return "lookaround"
            if rest.startswith("P="):
                return "a backreference"
            if rest.startswith(">"):
                return "an atomic group"
            if rest.startswith("("):
                return "a conditional group"
        if c in "*+?}" and regex[i + 1 : i + 2] == "+":
            return "a possessive quantifier"
        i += 1
    return None


def _leaves(clause: Any, kind: str) -> list[Any]:
    """Flatten nested ``or`` (kind="or_") or ``and`` (kind="and_") clauses."""
    nested = getattr(clause, kind, None)
    if nested is None:
        return [clause]
    return [leaf for part in nested for leaf in _leaves(part, kind)]


def _describe(clause: Any) -> str:
    if hasattr(clause, "or_"):
        return "or(" + ", ".join(_describe(c) for c in clause.or_) + ")"
    if hasattr(clause, "and_"):
        return "and(" + ", ".join(_describe(c) for c in clause.and_) + ")"
    ((key, value),) = vars(clause).items()
    return f"{key} {value!r}"


def match_cells(clause: Any, model_id: str, dropped: list[str] | None = None) -> list[str]:
    """The ``match`` cells for a genai match rule.

    A clause costlens cannot express (an ``and`` or regex that needs lookaround) is left out and
    described in ``dropped`` when given; without ``dropped`` it raises ``_Skip``.
    """
    own = model_id.lower()
    cells: list[str] = []

    def drop(description: str) -> None:
        if dropped is None:
            raise _Skip(f"match rule {description} cannot be expressed without lookaround")
        dropped.append(description)

    for leaf in _leaves(clause, "or_"):
        if hasattr(leaf, "and_"):
            cell = and_to_regex(leaf)
            if cell is None:
                drop(_describe(leaf))
                continue
            cells.extend(cell)
            continue
        ((key, value),) = vars(leaf).items()
        if key == "regex":
            problem = re2_problem(value)
            if problem is not None:
                drop(f"regex {value!r} (uses {problem})")
                continue
            cells.append(f"regex:{value}")
            continue
        text = str(value).lower()
        if not text:
            raise _Skip(f"match rule {key} '' would match every id")
        kind = {"equals": "exact", "starts_with": "prefix", "ends_with": "suffix", "contains": "contains"}[
            key
        ]
        cells.append(f"{kind}:{text}")
    return [c for c in dict.fromkeys(cells) if c != f"exact:{own}"]


def and_to_regex(clause: Any) -> list[str] | None:
    """An ``and`` of equals/starts_with/ends_with/contains clauses as match cells, exactly.

    Returns [] when the clauses can match nothing, None when they cannot be expressed
    without lookaround (a regex or an ``or`` inside, or several independent contains).
    """
    parts = _leaves(clause, "and_")
    texts: dict[str, list[str]] = {"equals": [], "starts_with": [], "ends_with": [], "contains": []}
    for part in parts:
        if hasattr(part, "or_") or hasattr(part, "regex"):
            return None
        ((key, value),) = vars(part).items()
        texts[key].append(str(value).lower())
    if texts["equals"]:
        exact = texts["equals"][0]
        ok = (
            all(e == exact for e in texts["equals"])
            and all(exact.startswith(a) for a in texts["starts_with"])
            and all(exact.endswith(b) for b in texts["ends_with"])
            and all(c in exact for c in texts["contains"])
        )
        return [f"exact:{exact}"] if ok else []
    prefix = max(texts["starts_with"], key=len, default="")
    suffix = max(texts["ends_with"], key=len, default="")
    if not all(prefix.startswith(a) for a in texts["starts_with"]):
        return []
    if not all(suffix.endswith(b) for b in texts["ends_with"]):
        return []
    contains = [c for c in dict.fromkeys(texts["contains"]) if c not in prefix and c not in suffix]
    if not prefix and not suffix:
        if len(contains) == 1:
            return [f"contains:{contains[0]}"]
        return None
    if len(contains) > 1 or (contains and prefix and suffix):
        return None
    if contains:
        (c,) = contains
        if prefix:
            tails = [c[k:] for k in range(1, len(c)) if prefix.endswith(c[:k])]
            alternatives = [".*" + _escape(c), *(_escape(t) for t in tails)]
            return ["regex:^" + _escape(prefix) + "(?:" + "|".join(alternatives) + ")"]
        heads = [c[:-k] for k in range(1, len(c)) if suffix.startswith(c[-k:])]
        alternatives = [_escape(c) + ".*", *(_escape(h) for h in heads)]
        return ["regex:(?:" + "|".join(alternatives) + ")" + _escape(suffix) + "$"]
    if prefix and suffix:
        overlaps = [
            prefix + suffix[k:]
            for k in range(1, min(len(prefix), len(suffix)) + 1)
            if prefix.endswith(suffix[:k])
        ]
        alternatives = [_escape(prefix) + ".*" + _escape(suffix), *(_escape(o) for o in overlaps)]
        return ["regex:^(?:" + "|".join(alternatives) + ")$"]
    return [f"prefix:{prefix}"] if prefix else [f"suffix:{suffix}"]


def _settle_match_rows(
    converted: Sequence[_Converted], resolve: Resolver | None, label: str, listed: list[Listed]
) -> list[SheetRow]:
    """Match rows of every kept model, with the rules that would mis-route ids taken out.

    * ``exact:`` of another imported model's id: costlens resolves ids before rules, so the
      row could never apply.
    * A rule whose text genai resolves (without a provider) to another imported model.
    * The same rule for two models: the model genai resolves the rule's text to keeps it
      (for a regex, the model genai finds by its own id; else the first in genai's order).
    """
    ids = {c.model.lower(): c for c in converted}
    claims: dict[str, list[_Converted]] = {}
    for item in converted:
        for cell in item.match:
            kind, _, text = cell.partition(":")
            other = ids.get(text)
            if kind == "exact" and other is not None and other is not item:
                listed.append(
                    Listed(
                        item.model,
                        item.provider,
                        f"match {cell} not written: {other.model!r} is itself an imported model",
                        "omitted",
                    )
                )
                continue
            picked = resolve(text) if resolve is not None and kind != "regex" else None
            elsewhere = ids.get(picked[1].lower()) if picked is not None else None
            if elsewhere is not None and elsewhere is not item:
                reason = (
                    f"match {cell} not written: genai-prices resolves {text!r} to "
                    f"{elsewhere.provider}/{elsewhere.model}, also imported"
                )
                listed.append(Listed(item.model, item.provider, reason, "omitted"))
                continue
            claims.setdefault(cell, []).append(item)
    rows: list[SheetRow] = []
    for cell, owners in claims.items():
        owner = owners[0]
        if len(owners) > 1:
            kind, _, text = cell.partition(":")
            if resolve is None:
                owner = owners[0]
            elif kind != "regex":
                picked = resolve(text)
                owner = next((o for o in owners if (o.provider, o.model) == picked), owners[0])
            else:  # no text to ask genai about: prefer the model genai finds by its own id
                owner = next((o for o in owners if resolve(o.model) == (o.provider, o.model)), owners[0])
            for other in owners:
                if other is not owner:
                    listed.append(
                        Listed(
                            other.model,
                            other.provider,
                            f"match {cell} not written: also a rule of {owner.provider}/{owner.model}, "
                            "which keeps it",
                            "omitted",
                        )
                    )
        rows.append(
            SheetRow(
                model=owner.model,
                match=cell,
                provider=owner.provider,
                source=f"{label} {owner.provider}/{owner.model}",
            )
        )
    return rows
