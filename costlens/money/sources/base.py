"""The one small interface every price source implements, and the pieces they all share.

A price source (genai-prices, LiteLLM, OpenRouter, models.dev) is a module with one
:class:`Importer`: ``load(file, providers=...)`` reads the source and returns an
:class:`ImportResult` — the rows of costlens's own price sheet as text cells
(:class:`SheetRow`), plus everything that could not be carried over (:class:`Listed`).
Loading never writes: the caller renders and writes only after a load succeeded, so a
malformed source can never leave a half-written sheet behind.

What the sources share lives here, so each importer only knows its own format:

* **Exact money.** Source prices are read from the JSON *text* as ``Decimal``
  (``parse_float=Decimal``) and moved to "per 1M tokens" by shifting the exponent, never
  through a float. A sheet keeps at most 9 decimal places; a value with more (float noise
  such as ``1.6150000000000001e-06`` per token) is rounded half-even and the rounding is
  *listed*, so nothing changes silently.
* **Errors with a place.** The strict JSON loader rejects duplicate keys, NaN/Infinity
  (which :mod:`json` accepts by default) and numbers written with an exponent beyond ±1000
  (``1e999999999999999999`` is a valid Decimal whose integer would take gigabytes, and
  ``1e-9999999999999999999999`` is not one at all), reports syntax errors with line and column,
  and every value error names the JSON path of the bad value (``$.data[3].pricing.prompt``).
  A count (context window, tier size) must fit the sheet's BIGINT.
* **One model id, one owner.** Sheets are keyed by the lower-cased model id, so when a source
  lists the same id more than once (several providers), one entry is kept and the others are
  listed as duplicates (:func:`pick_owners`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar

from costlens.errors import ConfigError, PricingError
from costlens.money.pricing import (
    MAX_PLACES,
    PRICE_COLUMNS,
    PRICE_LIMIT,
    SERVICE_TIERS,
    ServiceTier,
)

__all__ = [
    "COLUMNS",
    "json_type",
    "MAX_COUNT",
    "MAX_EXPONENT",
    "MAX_PLACES",
    "PRICE_LIMIT",
    "SERVICE_TIERS",
    "ImportResult",
    "Importer",
    "Listed",
    "ListedKind",
    "ServiceTier",
    "SheetRow",
    "expect_object",
    "format_decimal",
    "json_path",
    "load_json",
    "model_id",
    "narrow_providers",
    "optional_count",
    "optional_number",
    "per_token_to_per_1m",
    "pick_owners",
    "price_cell",
    "value_error",
]

ListedKind = Literal["skipped", "omitted", "rounded", "duplicate"]

# The sheet format is the price sheet reader's: one definition of its columns, tiers and bounds.
COLUMNS: Final = PRICE_COLUMNS

_QUANTUM: Final = Decimal(1).scaleb(-MAX_PLACES)
# Enough digits that quantizing any value below PRICE_LIMIT to 9 places is exact but for the
# rounding itself (6 integer digits + 9 places, with room to spare).
_ROUNDING: Final = Context(prec=40, rounding=ROUND_HALF_EVEN)
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The largest count a sheet holds (its context_window and min_prompt_tokens are BIGINT).
MAX_COUNT: Final = 2**63 - 1
MAX_EXPONENT: Final = 1000
_EXPONENT: Final = re.compile(r"[eE][+-]?0*(\d+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class SheetRow:
    """The cells of one output CSV row, as text (``""`` = empty cell), named as the columns."""

    model: str
    match: str = ""
    provider: str = ""
    context_window: str = ""
    input_per_1m: str = ""
    output_per_1m: str = ""
    cached_input_per_1m: str = ""
    cache_write_per_1m: str = ""
    cache_write_1h_per_1m: str = ""
    reasoning_per_1m: str = ""
    per_request_usd: str = ""
    service_tier: str = ""
    min_prompt_tokens: str = ""
    effective_from: str = ""
    effective_to: str = ""
    currency: str = ""
    source: str = ""

    def cells(self) -> tuple[str, ...]:
        """The cells in :data:`COLUMNS` order."""
        return tuple(getattr(self, name) for name in COLUMNS)


assert tuple(f.name for f in fields(SheetRow)) == COLUMNS


@dataclass(frozen=True, slots=True)
class Listed:
    """Something the import did not carry over unchanged, and why."""

    model: str
    provider: str
    reason: str
    kind: ListedKind


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    """What one load produced: the sheet rows and the list of what was skipped or changed.

    ``source`` is the label every row's ``source`` cell starts with (``genai-prices 0.2.3``,
    ``litellm sha256:...``). ``models_imported`` counts models with at least one price row;
    ``models_skipped`` counts models that were read but not imported (non-chat, inexpressible).
    Duplicates are neither: they are listed with ``kind="duplicate"``.
    """

    source: str
    rows: tuple[SheetRow, ...]
    listed: tuple[Listed, ...]
    models_imported: int
    models_skipped: int

    def listed_as(self, kind: ListedKind) -> tuple[Listed, ...]:
        return tuple(item for item in self.listed if item.kind == kind)


class Importer(Protocol):
    """One price source. ``needs_file``: whether ``load`` takes the saved source file."""

    name: str
    needs_file: bool

    def load(self, file: Path | None, *, providers: Sequence[str] = ()) -> ImportResult: ...


# --- Decimals -----------------------------------------------------------------------------


def format_decimal(value: Decimal) -> str:
    """Plain decimal text: no exponent, trailing zeros trimmed, ``0`` for zero."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _shift(value: Decimal, places: int) -> Decimal:
    """``value * 10**places`` exactly (``scaleb`` without any context rounding)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # callers pass finite values only
    return Decimal((sign, digits, exponent + places))


def price_cell(
    value: Decimal,
    *,
    shift: int,
    path: str,
    file: str | None,
    model: str,
    provider: str,
    listed: list[Listed],
) -> str:
    """``value * 10**shift`` as a sheet cell: checked, rounded to 9 places, formatted.

    ``shift`` is 6 for a per-token price (-> per 1M), 0 for one already per 1M or per
    request, -3 for one per 1,000 requests. ``value`` must be finite and >= 0 and the
    result below 1,000,000; otherwise this raises ``PricingError("{path}: ...")``.
    A result with more than 9 decimal places is rounded half-even and a ``Listed`` with
    ``kind="rounded"`` is appended — only when the value actually changed.
    """
    if not value.is_finite():
        raise value_error(path, f"{value} is not a finite number", file)
    if value < 0:
        raise value_error(path, f"negative price {format_decimal(value)}", file)
    scaled = _shift(value, shift)
    exponent = scaled.as_tuple().exponent
    assert isinstance(exponent, int)
    rounded = (
        scaled.quantize(_QUANTUM, context=_ROUNDING)
        if scaled < PRICE_LIMIT and exponent < -MAX_PLACES
        else scaled
    )
    if rounded >= PRICE_LIMIT:
        unit = " per 1M tokens" if shift == 6 else ""
        raise value_error(path, f"price {value} is too large (must be below 1000000{unit})", file)
    if rounded != scaled:
        listed.append(
            Listed(
                model,
                provider,
                f"{path}: {value} rounded to {format_decimal(rounded)} (at most {MAX_PLACES} decimal places)",
                "rounded",
            )
        )
    return format_decimal(rounded)


def per_token_to_per_1m(
    value: Decimal, *, path: str, file: str | None, model: str, provider: str, listed: list[Listed]
) -> str:
    """A per-token price (``Decimal`` read from the JSON text) as a per-1M cell, exactly."""
    return price_cell(value, shift=6, path=path, file=file, model=model, provider=provider, listed=listed)


# --- JSON ---------------------------------------------------------------------------------


def json_path(*parts: str | int) -> str:
    """``json_path("data", 3, "pricing", "prompt")`` -> ``$.data[3].pricing.prompt``.

    Keys that are not identifiers are quoted: ``$["gpt-4o"].mode``.
    """
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.fullmatch(part):
            out.append(f".{part}")
        else:
            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)


def value_error(path: str, reason: str, file: str | None) -> PricingError:
    return PricingError(f"{path}: {reason}", file=file)


class _Object(dict[str, Any]):
    """A JSON object that remembers its first repeated key (the loader reports it with a path)."""

    __slots__ = ("duplicate",)

    def __init__(self) -> None:
        super().__init__()
        self.duplicate: str | None = None


@dataclass(frozen=True, slots=True)
class _NonFinite:
    """Stands in for NaN/Infinity until the loader can name where it was."""

    text: str


@dataclass(frozen=True, slots=True)
class _OutOfRange:
    """Stands in for a number with an exponent beyond ±MAX_EXPONENT, until the loader names where."""

    text: str


def _number(text: str) -> Decimal | _OutOfRange:
    exponent = _EXPONENT.search(text)
    if exponent is not None and (len(exponent[1]) > 4 or int(exponent[1]) > MAX_EXPONENT):
        return _OutOfRange(text)
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the exponent check admits only valid decimals
        return _OutOfRange(text)


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    for key, value in pairs:
        if key in obj and obj.duplicate is None:
            obj.duplicate = key
        obj.setdefault(key, value)
    return obj


def _walk(data: Any) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every value with its path, in document order, without recursion."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))


def load_json(path: Path) -> tuple[Any, str]:
    """Read a JSON file strictly; returns ``(data, sha256 hex of the bytes)``.

    Numbers come back as ``Decimal`` (exactly their text), objects as dicts. Syntax errors
    raise ``PricingError(reason, file, line, column)``; a repeated object key or a
    NaN/Infinity raises ``PricingError("{json path}: ...")``. An empty file is an error.
    """
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PricingError(f"cannot read file: {e.strerror or e}", file=file) from e
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise PricingError("not UTF-8 text", file=file, line=line) from e
    if not text.strip():
        raise PricingError("$: empty file (expected a JSON document)", file=file, line=1)
    try:
        data = json.loads(
            text,
            parse_float=_number,
            parse_int=Decimal,
            parse_constant=_NonFinite,
            object_pairs_hook=_object_from_pairs,
        )
    except json.JSONDecodeError as e:
        raise PricingError(f"invalid JSON: {e.msg}", file=file, line=e.lineno, column=e.colno) from e
    except RecursionError as e:
        raise PricingError("invalid JSON: nested too deeply", file=file) from e
    for where, value in _walk(data):
        if isinstance(value, _Object) and value.duplicate is not None:
            key = value.duplicate
            raise value_error(json_path(*where, key), f"duplicate key {key!r}", file)
        if isinstance(value, _NonFinite):
            raise value_error(
                json_path(*where), f"{value.text} is not allowed (numbers must be finite)", file
            )
        if isinstance(value, _OutOfRange):
            shown = value.text if len(value.text) <= 40 else value.text[:20] + "..." + value.text[-12:]
            raise value_error(
                json_path(*where), f"{shown} is out of range (an exponent beyond ±{MAX_EXPONENT})", file
            )
    return data, digest


# --- Providers and duplicates -------------------------------------------------------------


def narrow_providers(requested: Sequence[str], available: Iterable[str], *, source: str) -> tuple[str, ...]:
    """Validate ``--provider`` names against what the source has; keeps the given order."""
    known = set(available)
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ConfigError(
            f"unknown provider {', '.join(repr(n) for n in unknown)} for {source} "
            f"(valid: {', '.join(sorted(known))})"
        )
    return tuple(dict.fromkeys(requested))


T = TypeVar("T")


def pick_owners(
    entries: Iterable[T],
    *,
    model_of: Callable[[T], str],
    provider_of: Callable[[T], str],
    providers: Sequence[str] = (),
    preferred: Callable[[str], str | None] | None = None,
) -> tuple[list[T], list[Listed]]:
    """Keep one entry per lower-cased model id; list the others as duplicates.

    ``entries`` come in the source's order. Without ``providers`` the kept entry is the one
    whose provider ``preferred(model_id)`` names (when it has the id), else the first; with
    ``providers`` only those providers' entries take part and ties go by that order. The kept
    entries come back in source order.
    """
    rank = {name: i for i, name in enumerate(providers)}
    groups: dict[str, list[tuple[int, T]]] = {}
    for position, entry in enumerate(entries):
        if providers and provider_of(entry) not in rank:
            continue
        groups.setdefault(model_of(entry).lower(), []).append((position, entry))
    kept: list[tuple[int, T]] = []
    listed: list[Listed] = []
    for key, group in groups.items():
        if providers:
            winner = min(group, key=lambda item: (rank[provider_of(item[1])], item[0]))
        else:
            wanted = preferred(key) if preferred is not None else None
            winner = next((item for item in group if provider_of(item[1]) == wanted), group[0])
        kept.append(winner)
        owner = provider_of(winner[1])
        for item in group:
            if item is not winner:
                listed.append(
                    Listed(
                        model_of(item[1]),
                        provider_of(item[1]),
                        f"also under {owner} (kept {owner})",
                        "duplicate",
                    )
                )
    kept.sort(key=lambda item: item[0])
    return [entry for _, entry in kept], listed


def model_id(text: str, path: str, file: str | None) -> str:
    """A model id as a sheet keys it: the sheet reader strips its cells, so an id that is empty or
    has spaces around it would become another id (or none) there; such an id is an error."""
    if not text.strip() or text != text.strip():
        raise value_error(path, f"model id {text!r} is empty or has spaces around it", file)
    return text


def expect_object(value: Any, path: str, file: str | None, what: str = "an object") -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise value_error(path, f"expected {what}, got {json_type(value)}", file)
    return value


def optional_number(obj: Mapping[str, Any], key: str, path: str, file: str | None) -> Decimal | None:
    """``obj[key]`` as a JSON number (``null``/absent -> None); anything else is an error."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, Decimal):
        raise value_error(path, f"expected a number, got {json_type(value)}", file)
    return value


def optional_count(obj: Mapping[str, Any], key: str, path: str, file: str | None) -> int | None:
    """A token count such as a context window: a whole number from 0 to ``MAX_COUNT``
    (``null``/absent -> None)."""
    value = optional_number(obj, key, path, file)
    if value is None:
        return None
    if value != value.to_integral_value() or value < 0:
        raise value_error(path, f"expected a whole number >= 0, got {value}", file)
    if value > MAX_COUNT:  # checked before int(): 1e1000 is a 1,001-digit integer
        raise value_error(
            path, f"is {value}, above the largest count a price sheet holds ({MAX_COUNT})", file
        )
    return int(value)


def json_type(value: Any) -> str:
    """How an error names a JSON value's type ("a string", "an array", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
