"""The price table: read, validate and layer price CSVs, then hand them to DuckDB.

Prices live in plain CSV files (``data/pricing.csv`` ships with costlens; users layer their own
on top) because people edit them by hand and review them in diffs. That makes this module the
guard between a hand-edited file and every cost figure costlens prints, so it is strict:

* **Money is exact.** Every price is a ``Decimal`` parsed from the cell text, never a float, and
  reaches DuckDB as ``DECIMAL(38,9)``. An empty cell is ``None`` ("not priced", costs become
  NULL); ``0`` is ``Decimal('0')`` ("free"). The two never mix.
* **Errors have a place.** Every rejection is a ``PricingError`` naming the file, the physical
  line and the 1-based column, so a typo in row 40 of a spreadsheet export is one jump away.
  Unknown header names are errors too (``imput_per_1m`` must not silently price nothing).
* **Numbers are plain decimals.** ``1.25`` or ``0.007``; ``$1.25`` is rejected with a hint,
  ``nan``/``inf`` and digit separators are rejected, and an exponent (``1e-3``) is accepted
  because it is still an exact, finite decimal. At most 9 significant decimal places (trailing
  zeros do not count) and below 1,000,000, so costs can never overflow ``DECIMAL(38,15)``
  without rounding.
* **Time is half-open.** A row applies on ``[effective_from, effective_to)`` in naive UTC; an
  empty bound is unbounded. Two rows for the same (model, service_tier, min_prompt_tokens) may
  not overlap, so at any instant at most one row prices a request.
* **Layers replace whole models.** A later file that names a model replaces *every* row of
  that model (case-insensitive), so a model's price history always comes from one file and an
  override can never half-merge with the shipped rows.

The core never prints and never imports Click; ``costlens pricing show/check`` render what
:func:`price_rows_for_display` and :func:`alias_warnings` return.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Context, Decimal
from pathlib import Path
from typing import Final, Literal

import duckdb
import pyarrow as pa

from costlens.errors import PricingError, StoreError

__all__ = [
    "ALIAS_COLUMNS",
    "PRICE_COLUMNS",
    "REQUIRED_COLUMNS",
    "SERVICE_TIERS",
    "PriceRow",
    "PriceSource",
    "PriceTable",
    "ServiceTier",
    "MATCH_KINDS",
    "MAX_PLACES",
    "PRICE_FIELDS",
    "PRICE_LIMIT",
    "MatchKind",
    "MatchRow",
    "PriceFile",
    "alias_warnings",
    "default_aliases_path",
    "default_pricing_path",
    "load_price_table",
    "parse_price_sheet",
    "price_rows_for_display",
    "read_alias_file",
    "read_price_file",
    "read_price_sheet",
    "register_prices",
]

ServiceTier = Literal["standard", "batch", "flex", "priority"]

PRICE_COLUMNS: Final = (
    "model",
    "match",
    "provider",
    "context_window",
    "input_per_1m",
    "output_per_1m",
    "cached_input_per_1m",
    "cache_write_per_1m",
    "cache_write_1h_per_1m",
    "reasoning_per_1m",
    "per_request_usd",
    "service_tier",
    "min_prompt_tokens",
    "effective_from",
    "effective_to",
    "currency",
    "source",
)
REQUIRED_COLUMNS: Final = ("model", "input_per_1m", "output_per_1m")
SERVICE_TIERS: Final[tuple[ServiceTier, ...]] = ("standard", "batch", "flex", "priority")
ALIAS_COLUMNS: Final = ("alias", "model")

_TIER_BY_NAME: Final[dict[str, ServiceTier]] = {tier: tier for tier in SERVICE_TIERS}
_CURRENCIES: Final = ("USD",)
MAX_PLACES: Final = 9
# Far above any real price, and low enough that tokens (BIGINT, < 1e19) x price
# never overflows the cost arithmetic (DECIMAL(38,9) then DECIMAL(38,15)).
PRICE_LIMIT: Final = Decimal(10) ** 6
_BIGINT_MAX: Final = 2**63 - 1
_QUANTUM: Final = Decimal(1).scaleb(-MAX_PLACES)
_DEC38: Final = Context(prec=38)
# Deliberately narrower than Decimal(): no nan/inf, no "1_000", no surrounding text.
_DECIMAL_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE: Final = frozenset({"nan", "snan", "inf", "infinity"})
_INT_RE: Final = re.compile(r"\d+")
_DATE_RE: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    re.IGNORECASE,
)
PRICE_FIELDS: Final = (
    "input_per_1m",
    "output_per_1m",
    "cached_input_per_1m",
    "cache_write_per_1m",
    "cache_write_1h_per_1m",
    "reasoning_per_1m",
    "per_request_usd",
)
MATCH_KINDS: Final = ("exact", "prefix", "suffix", "contains", "regex")
MatchKind = Literal["exact", "prefix", "suffix", "contains", "regex"]
# RE2 (DuckDB's regex engine) has no lookaround and no backreferences; Python's re has both.
_NOT_RE2: Final = re.compile(r"\(\?(?:=|!|<=|<!|P=)|(?<!\\)\\[1-9]")
# Cells a match row may carry besides model and match.
_MATCH_ROW_CELLS: Final = frozenset({"model", "match", "provider", "source", "currency"})


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceRow:
    """One validated row of a price file. Prices are USD per 1M tokens; ``None`` = not priced."""

    model: str
    provider: str | None = None
    context_window: int | None = None
    input_per_1m: Decimal | None
    output_per_1m: Decimal | None
    cached_input_per_1m: Decimal | None = None
    cache_write_per_1m: Decimal | None = None
    cache_write_1h_per_1m: Decimal | None = None
    reasoning_per_1m: Decimal | None = None
    per_request_usd: Decimal | None = None
    service_tier: ServiceTier = "standard"
    min_prompt_tokens: int = 0
    effective_from: datetime | None = None
    effective_to: datetime | None = None
    currency: str = "USD"
    source: str | None = None
    file: str
    line: int
    sheet: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchRow:
    """A pattern row: ids matching ``kind:pattern`` are priced by ``model``'s rows of the same sheet.

    ``pattern`` is lower-cased for every kind but ``regex`` (a regex is matched, as written,
    against the lower-cased id: lower-casing it could turn ``\\D`` into ``\\d``).
    """

    model: str
    kind: MatchKind
    pattern: str
    provider: str | None = None
    source: str | None = None
    file: str
    line: int
    sheet: int = 0

    @property
    def rule(self) -> str:
        return f"{self.kind}:{self.pattern}"


@dataclass(frozen=True)
class PriceSource:
    """A file the table was built from, so a report can say which prices it used.

    ``kind`` is ``price`` (a price sheet, ``sheet`` its number: 0 = main, 1.. = fallbacks) or
    ``alias`` (an alias file, shared by every sheet).
    """

    path: str
    sha256: str
    rows: int
    kind: Literal["price", "alias"] = "price"
    sheet: int = 0


@dataclass(frozen=True)
class PriceTable:
    """The merged, validated price rows, match rows and model aliases, in deterministic order.

    ``sheets`` names each sheet by number: 0 is the main sheet (the shipped one or
    ``--pricing``, with ``--extra-pricing`` layers); 1.. are ``--fallback-pricing`` sheets in
    the order given, consulted only for models the sheets before them do not know.
    """

    rows: tuple[PriceRow, ...]
    aliases: tuple[tuple[str, str], ...]
    sources: tuple[PriceSource, ...]
    matches: tuple[MatchRow, ...] = ()
    sheets: tuple[str, ...] = ("main",)


def _shipped_file(name: str) -> Path:
    package_dir = Path(__file__).resolve().parent.parent
    in_repo = package_dir.parent / "data" / name
    if in_repo.is_file():
        return in_repo
    packaged = package_dir / "data" / name
    return packaged if packaged.is_file() else in_repo


def default_pricing_path() -> Path:
    """The shipped price table (repo ``data/``, else a copy packaged in ``costlens/data/``)."""
    return _shipped_file("pricing.csv")


def default_aliases_path() -> Path:
    """The shipped alias table (repo ``data/``, else a copy packaged in ``costlens/data/``)."""
    return _shipped_file("model_aliases.csv")


# --- CSV plumbing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    cells: list[str]


def _read_records(path: Path) -> tuple[list[_Record], str]:
    """Non-blank CSV records with the physical line each starts on, plus the file's sha256."""
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PricingError(f"cannot read file: {e.strerror or e}", file=file) from e
    return _parse_records(data, file=file)


def _parse_records(data: bytes, *, file: str) -> tuple[list[_Record], str]:
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise PricingError("not UTF-8 text", file=file, line=line) from e
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[_Record] = []
    start = 1
    try:
        for cells in reader:
            # A record may span lines (quoted newlines); it starts right after the previous one.
            if any(cell.strip() for cell in cells):
                records.append(_Record(start, [cell.strip() for cell in cells]))
            start = reader.line_num + 1
    except csv.Error as e:
        raise PricingError(f"malformed CSV: {e}", file=file, line=max(reader.line_num, 1)) from e
    return records, digest


def _read_header(
    records: list[_Record], *, file: str, allowed: Sequence[str], required: Sequence[str]
) -> dict[str, int]:
    """Map each header name to its 0-based index, rejecting unknown, duplicate and missing names."""
    if not records:
        raise PricingError(
            f"empty file: expected a header row ({','.join(required)}, ...)", file=file, line=1
        )
    header = records[0]
    index: dict[str, int] = {}
    for i, raw in enumerate(header.cells):
        name = raw.lower()
        if name not in allowed:
            raise PricingError(
                f"unknown column {raw!r} (valid columns: {', '.join(allowed)})",
                file=file,
                line=header.line,
                column=i + 1,
            )
        if name in index:
            raise PricingError(
                f"duplicate column {raw!r} (also column {index[name] + 1})",
                file=file,
                line=header.line,
                column=i + 1,
            )
        index[name] = i
    missing = [name for name in required if name not in index]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        names = ", ".join(repr(name) for name in missing)
        raise PricingError(f"missing required {noun} {names}", file=file, line=header.line)
    return index


class _Cells:
    """One data record addressed by column name, raising errors at the right line and column."""

    def __init__(self, record: _Record, index: dict[str, int], file: str) -> None:
        self.record = record
        self.index = index
        self.file = file
        width = len(index)
        got = len(record.cells)
        if got != width:
            raise PricingError(
                f"wrong number of fields: expected {width}, got {got}",
                file=file,
                line=record.line,
                column=min(got, width) + 1,
            )

    def get(self, name: str) -> str:
        i = self.index.get(name)
        return "" if i is None else self.record.cells[i]

    def fail(self, name: str, reason: str) -> PricingError:
        i = self.index.get(name)
        return PricingError(
            reason, file=self.file, line=self.record.line, column=None if i is None else i + 1
        )


# --- Cell parsers -------------------------------------------------------------------------


def _parse_price(cells: _Cells, name: str) -> Decimal | None:
    text = cells.get(name)
    if not text:
        return None
    if _DECIMAL_RE.fullmatch(text) is None:
        bare = text.replace("$", "").strip()
        if "$" in text and _DECIMAL_RE.fullmatch(bare):
            raise cells.fail(
                name, f"bad number {text!r} for {name}: write plain decimals without '$', e.g. {bare}"
            )
        if text.lower().lstrip("+-") in _NON_FINITE:
            raise cells.fail(name, f"bad number {text!r} for {name}: prices must be finite")
        raise cells.fail(name, f"bad number {text!r} for {name}: expected a plain decimal such as 1.25")
    value = Decimal(text)
    if value < 0:
        raise cells.fail(name, f"negative price {text!r} for {name}")
    if value == 0:
        return Decimal(0)
    if value >= PRICE_LIMIT:
        unit = "USD per request" if name == "per_request_usd" else "USD per 1M tokens"
        raise cells.fail(name, f"price {text!r} for {name} is too large (must be below 1000000 {unit})")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite by the regex above
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    places = max(0, -(exponent + trailing_zeros))
    if places > MAX_PLACES:
        raise cells.fail(
            name, f"price {text!r} for {name} has {places} decimal places; at most {MAX_PLACES} are kept"
        )
    return value


def _parse_int(cells: _Cells, name: str, *, default: int | None, minimum: int) -> int | None:
    text = cells.get(name)
    if not text:
        return default
    if _INT_RE.fullmatch(text) is None or not minimum <= int(text) <= _BIGINT_MAX:
        raise cells.fail(name, f"bad integer {text!r} for {name}: expected a whole number >= {minimum}")
    return int(text)


def _parse_date(cells: _Cells, name: str) -> datetime | None:
    text = cells.get(name)
    if not text:
        return None
    value: datetime | None = None
    if _DATE_RE.fullmatch(text):
        try:
            value = datetime.fromisoformat(text.upper())
        except ValueError:
            value = None
    if value is None:
        raise cells.fail(
            name,
            f"bad date {text!r} for {name}: expected 2025-01-01 or 2025-01-01T00:00:00 (optional Z/offset)",
        )
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _parse_tier(cells: _Cells) -> ServiceTier:
    text = cells.get("service_tier")
    if not text:
        return "standard"
    tier = _TIER_BY_NAME.get(text.lower())
    if tier is None:
        raise cells.fail("service_tier", f"unknown service_tier {text!r} (valid: {', '.join(SERVICE_TIERS)})")
    return tier


def _parse_currency(cells: _Cells) -> str:
    text = cells.get("currency")
    if not text:
        return "USD"
    if text.upper() not in _CURRENCIES:
        raise cells.fail(
            "currency", f"unsupported currency {text!r}: only {', '.join(_CURRENCIES)} is supported"
        )
    return text.upper()


def _parse_match(cells: _Cells) -> tuple[MatchKind, str]:
    text = cells.get("match")
    kind_text, sep, pattern = text.partition(":")
    kind = kind_text.strip().lower()
    if not sep or kind not in MATCH_KINDS:
        raise cells.fail(
            "match", f"bad match {text!r}: expected KIND:TEXT with KIND one of {', '.join(MATCH_KINDS)}"
        )
    if not pattern:
        raise cells.fail("match", f"bad match {text!r}: empty pattern")
    if kind != "regex":
        return kind, pattern.lower()  # type: ignore[return-value]
    if _NOT_RE2.search(pattern):
        raise cells.fail(
            "match", f"bad regex {pattern!r}: lookaround and backreferences are not supported (RE2 syntax)"
        )
    try:
        re.compile(pattern)
    except re.error as e:
        raise cells.fail("match", f"bad regex {pattern!r}: {e}") from e
    return "regex", pattern


def _parse_match_row(cells: _Cells, model: str) -> MatchRow:
    stray = [name for name in cells.index if name not in _MATCH_ROW_CELLS and cells.get(name)]
    if stray:
        raise cells.fail(
            stray[0],
            f"a match row only says which ids {model!r} prices; {stray[0]} must be empty "
            "(put prices on the model's own rows)",
        )
    _parse_currency(cells)
    kind, pattern = _parse_match(cells)
    return MatchRow(
        model=model,
        kind=kind,
        pattern=pattern,
        provider=cells.get("provider") or None,
        source=cells.get("source") or None,
        file=cells.file,
        line=cells.record.line,
    )


def _parse_price_row(cells: _Cells) -> PriceRow | MatchRow:
    model = cells.get("model")
    if not model:
        raise cells.fail("model", "empty model")
    if cells.get("match"):
        return _parse_match_row(cells, model)
    prices = {name: _parse_price(cells, name) for name in PRICE_FIELDS}
    effective_from = _parse_date(cells, "effective_from")
    effective_to = _parse_date(cells, "effective_to")
    if effective_from is not None and effective_to is not None and effective_from >= effective_to:
        raise cells.fail(
            "effective_to",
            f"effective_from {cells.get('effective_from')!r} is not before "
            f"effective_to {cells.get('effective_to')!r}",
        )
    min_prompt_tokens = _parse_int(cells, "min_prompt_tokens", default=0, minimum=0)
    assert min_prompt_tokens is not None
    return PriceRow(
        model=model,
        provider=cells.get("provider") or None,
        context_window=_parse_int(cells, "context_window", default=None, minimum=1),
        input_per_1m=prices["input_per_1m"],
        output_per_1m=prices["output_per_1m"],
        cached_input_per_1m=prices["cached_input_per_1m"],
        cache_write_per_1m=prices["cache_write_per_1m"],
        cache_write_1h_per_1m=prices["cache_write_1h_per_1m"],
        reasoning_per_1m=prices["reasoning_per_1m"],
        per_request_usd=prices["per_request_usd"],
        service_tier=_parse_tier(cells),
        min_prompt_tokens=min_prompt_tokens,
        effective_from=effective_from,
        effective_to=effective_to,
        currency=_parse_currency(cells),
        source=cells.get("source") or None,
        file=cells.file,
        line=cells.record.line,
    )


# --- Files --------------------------------------------------------------------------------


def _overlaps(a: PriceRow, b: PriceRow) -> bool:
    """Whether two [from, to) intervals intersect; None is unbounded on that side."""
    a_starts_before_b_ends = (
        a.effective_from is None or b.effective_to is None or a.effective_from < b.effective_to
    )
    b_starts_before_a_ends = (
        b.effective_from is None or a.effective_to is None or b.effective_from < a.effective_to
    )
    return a_starts_before_b_ends and b_starts_before_a_ends


def _check_overlaps(rows: Sequence[PriceRow], *, column: int | None) -> None:
    """Reject two rows of one (model, tier, min_prompt_tokens) whose intervals overlap, at the later one."""
    seen: dict[tuple[str, str, int], list[PriceRow]] = {}
    for row in rows:
        key = (row.model.lower(), row.service_tier, row.min_prompt_tokens)
        for earlier in seen.get(key, []):
            if _overlaps(earlier, row):
                if earlier.file == row.file:
                    where = f"lines {earlier.line} and {row.line}"
                else:
                    where = f"{earlier.file}:{earlier.line} and {row.file}:{row.line}"
                raise PricingError(
                    f"overlapping effective dates for {row.model}/{row.service_tier}/"
                    f"min_prompt_tokens={row.min_prompt_tokens}: {where}",
                    file=row.file,
                    line=row.line,
                    column=column,
                )
        seen.setdefault(key, []).append(row)


@dataclass(frozen=True)
class PriceFile:
    """One parsed price sheet file: its price rows and match rows in file order."""

    rows: list[PriceRow]
    matches: list[MatchRow]
    source: PriceSource


def read_price_file(path: Path) -> tuple[list[PriceRow], PriceSource]:
    """Parse and validate one price CSV; rows come back in file order."""
    parsed = read_price_sheet(Path(path))
    return parsed.rows, parsed.source


def read_price_sheet(path: Path) -> PriceFile:
    """Parse and validate one price CSV, match rows included."""
    records, digest = _read_records(path)
    return _price_file(records, digest, file=str(path))


def parse_price_sheet(data: bytes, *, label: str) -> PriceFile:
    """Parse a price sheet held in memory (e.g. imported on the fly); ``label`` names it in errors."""
    records, digest = _parse_records(data, file=label)
    return _price_file(records, digest, file=label)


def _price_file(records: list[_Record], digest: str, *, file: str) -> PriceFile:
    index = _read_header(records, file=file, allowed=PRICE_COLUMNS, required=REQUIRED_COLUMNS)
    rows: list[PriceRow] = []
    matches: list[MatchRow] = []
    for record in records[1:]:
        parsed = _parse_price_row(_Cells(record, index, file))
        (matches if isinstance(parsed, MatchRow) else rows).append(parsed)  # type: ignore[arg-type]
    date_column = index.get("effective_from", index.get("effective_to"))
    _check_overlaps(rows, column=None if date_column is None else date_column + 1)
    priced = {row.model.lower() for row in rows}
    match_column = index["match"] + 1 if "match" in index else None
    seen: dict[tuple[str, str], MatchRow] = {}
    for m in matches:
        if m.model.lower() not in priced:
            raise PricingError(
                f"match row for {m.model!r}, which has no price row in this file",
                file=file,
                line=m.line,
                column=match_column,
            )
        earlier = seen.get((m.kind, m.pattern))
        if earlier is not None and earlier.model.lower() != m.model.lower():
            raise PricingError(
                f"match {m.rule!r} points to {earlier.model!r} on line {earlier.line} and to {m.model!r}",
                file=file,
                line=m.line,
                column=match_column,
            )
        seen[(m.kind, m.pattern)] = m
    return PriceFile(rows, matches, PriceSource(path=file, sha256=digest, rows=len(rows) + len(matches)))


def read_alias_file(path: Path) -> tuple[list[tuple[str, str]], PriceSource]:
    """Parse and validate one ``alias,model`` CSV; pairs come back in file order, repeats dropped."""
    file = str(path)
    records, digest = _read_records(path)
    index = _read_header(records, file=file, allowed=ALIAS_COLUMNS, required=ALIAS_COLUMNS)
    pairs: list[tuple[str, str]] = []
    first_seen: dict[str, tuple[str, int]] = {}
    for record in records[1:]:
        cells = _Cells(record, index, file)
        alias, model = cells.get("alias"), cells.get("model")
        if not alias:
            raise cells.fail("alias", "empty alias")
        if not model:
            raise cells.fail("model", "empty model")
        if alias.lower() == model.lower():
            raise cells.fail("model", f"alias {alias!r} maps to itself")
        previous = first_seen.get(alias.lower())
        if previous is not None:
            previous_model, previous_line = previous
            if previous_model.lower() != model.lower():
                raise cells.fail(
                    "model",
                    f"alias {alias!r} maps to {previous_model!r} on line {previous_line} "
                    f"and to {model!r} on line {record.line}",
                )
            continue
        first_seen[alias.lower()] = (model, record.line)
        pairs.append((alias, model))
    return pairs, PriceSource(path=file, sha256=digest, rows=len(pairs), kind="alias")


def _row_order(row: PriceRow) -> tuple[int, str, int, int, bool, datetime, str, int]:
    start = row.effective_from
    return (
        row.sheet,
        row.model.lower(),
        SERVICE_TIERS.index(row.service_tier),
        row.min_prompt_tokens,
        start is not None,
        start or datetime.min,
        row.file,
        row.line,
    )


def _match_order(m: MatchRow) -> tuple[int, int, int]:
    """Most specific first: by kind (exact, prefix, suffix, contains, regex), longest pattern first.

    The sort is stable over the rows in load order, so among equally specific rows the first
    in the sheet wins (regex rows keep their file order).
    """
    regex = m.kind == "regex"
    return (m.sheet, MATCH_KINDS.index(m.kind), 0 if regex else -len(m.pattern))


SheetSpec = Sequence[Path] | PriceFile
"""A sheet to load: price files layered in order, or one already parsed sheet."""


def _layer(files: Sequence[PriceFile], sheet: int) -> tuple[list[PriceRow], list[MatchRow]]:
    """A later file replaces every row (and match row) of each model it names.

    Match rows come back in load order (file by file, line by line), which breaks ties in
    :func:`_match_order`.
    """
    owner: dict[str, int] = {}
    for i, parsed in enumerate(files):
        for row in parsed.rows:
            owner[row.model.lower()] = i
    rows = [
        replace(row, sheet=sheet)
        for i, parsed in enumerate(files)
        for row in parsed.rows
        if owner[row.model.lower()] == i
    ]
    matches = [
        replace(m, sheet=sheet)
        for i, parsed in enumerate(files)
        for m in parsed.matches
        if owner[m.model.lower()] == i
    ]
    _check_overlaps(rows, column=None)
    return rows, matches


def load_price_table(
    price_paths: SheetSpec,
    alias_paths: Sequence[Path],
    *,
    fallbacks: Sequence[tuple[str, SheetSpec]] = (),
) -> PriceTable:
    """Layer price and alias files into the main sheet, then add each fallback sheet in order.

    ``fallbacks`` are ``(name, files-or-parsed-sheet)`` pairs: sheet 1, 2, ... They never mix
    with the main sheet; the cost view consults one only for a model no earlier sheet knows.
    """
    sources: list[PriceSource] = []
    rows: list[PriceRow] = []
    matches: list[MatchRow] = []
    names = ["main"]
    specs: list[tuple[str, SheetSpec]] = [("main", price_paths), *fallbacks]
    for sheet, (name, spec) in enumerate(specs):
        files = [spec] if isinstance(spec, PriceFile) else [read_price_sheet(Path(path)) for path in spec]
        sources.extend(replace(f.source, sheet=sheet) for f in files)
        sheet_rows, sheet_matches = _layer(files, sheet)
        rows.extend(sheet_rows)
        matches.extend(sheet_matches)
        if sheet:
            names.append(name)
    aliases: dict[str, tuple[str, str]] = {}
    for path in alias_paths:
        pairs, source = read_alias_file(Path(path))
        sources.append(source)
        for alias, model in pairs:
            aliases[alias.lower()] = (alias, model)
    return PriceTable(
        rows=tuple(sorted(rows, key=_row_order)),
        aliases=tuple(aliases[key] for key in sorted(aliases)),
        sources=tuple(sources),
        matches=tuple(sorted(matches, key=_match_order)),
        sheets=tuple(names),
    )


def alias_warnings(table: PriceTable) -> list[str]:
    """Aliases that point at a model with no price row (worth a warning, not an error)."""
    priced = {row.model.lower() for row in table.rows}
    return [
        f"alias {alias!r} points to {model!r}, which has no price row"
        for alias, model in table.aliases
        if model.lower() not in priced
    ]


# --- DuckDB -------------------------------------------------------------------------------

_PRICES_DDL: Final = """
CREATE OR REPLACE TEMP TABLE prices (price_id INTEGER NOT NULL, sheet INTEGER NOT NULL, model VARCHAR NOT NULL,
  model_key VARCHAR NOT NULL, provider VARCHAR, context_window BIGINT, input_per_1m DECIMAL(38,9),
  output_per_1m DECIMAL(38,9), cached_input_per_1m DECIMAL(38,9), cache_write_per_1m DECIMAL(38,9),
  cache_write_1h_per_1m DECIMAL(38,9), reasoning_per_1m DECIMAL(38,9), per_request_usd DECIMAL(38,9),
  service_tier VARCHAR NOT NULL, min_prompt_tokens BIGINT NOT NULL, effective_from TIMESTAMP,
  effective_to TIMESTAMP, currency VARCHAR NOT NULL, source VARCHAR, price_file VARCHAR NOT NULL,
  price_line INTEGER NOT NULL)
"""
_ALIASES_DDL: Final = (
    "CREATE OR REPLACE TEMP TABLE model_aliases (alias VARCHAR NOT NULL, model VARCHAR NOT NULL)"
)
# rank orders the match rows of one sheet, most specific first (see _match_order).
_MATCHES_DDL: Final = """
CREATE OR REPLACE TEMP TABLE model_matches (rank INTEGER NOT NULL, sheet INTEGER NOT NULL,
  model_key VARCHAR NOT NULL, kind VARCHAR NOT NULL, pattern VARCHAR NOT NULL, price_file VARCHAR NOT NULL,
  price_line INTEGER NOT NULL)
"""
_SHEETS_DDL: Final = (
    "CREATE OR REPLACE TEMP TABLE price_sheets (sheet INTEGER NOT NULL, name VARCHAR NOT NULL)"
)
_VIEWS: Final = {
    "prices": "__costlens_prices_arrow",
    "model_aliases": "__costlens_aliases_arrow",
    "model_matches": "__costlens_matches_arrow",
    "price_sheets": "__costlens_sheets_arrow",
}


def _exact(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_QUANTUM, context=_DEC38)


def _prices_arrow(table: PriceTable) -> pa.Table:
    rows = table.rows
    money = pa.decimal128(38, 9)
    columns = {
        "price_id": pa.array(range(1, len(rows) + 1), pa.int32()),
        "sheet": pa.array([r.sheet for r in rows], pa.int32()),
        "model": pa.array([r.model for r in rows], pa.string()),
        "model_key": pa.array([r.model.lower() for r in rows], pa.string()),
        "provider": pa.array([r.provider for r in rows], pa.string()),
        "context_window": pa.array([r.context_window for r in rows], pa.int64()),
        **{name: pa.array([_exact(getattr(r, name)) for r in rows], money) for name in PRICE_FIELDS},
        "service_tier": pa.array([r.service_tier for r in rows], pa.string()),
        "min_prompt_tokens": pa.array([r.min_prompt_tokens for r in rows], pa.int64()),
        "effective_from": pa.array([r.effective_from for r in rows], pa.timestamp("us")),
        "effective_to": pa.array([r.effective_to for r in rows], pa.timestamp("us")),
        "currency": pa.array([r.currency for r in rows], pa.string()),
        "source": pa.array([r.source for r in rows], pa.string()),
        "price_file": pa.array([r.file for r in rows], pa.string()),
        "price_line": pa.array([r.line for r in rows], pa.int32()),
    }
    return pa.table(columns)


def _matches_arrow(table: PriceTable) -> pa.Table:
    ms = table.matches
    return pa.table(
        {
            "rank": pa.array(range(1, len(ms) + 1), pa.int32()),
            "sheet": pa.array([m.sheet for m in ms], pa.int32()),
            "model_key": pa.array([m.model.lower() for m in ms], pa.string()),
            "kind": pa.array([m.kind for m in ms], pa.string()),
            "pattern": pa.array([m.pattern for m in ms], pa.string()),
            "price_file": pa.array([m.file for m in ms], pa.string()),
            "price_line": pa.array([m.line for m in ms], pa.int32()),
        }
    )


def register_prices(conn: duckdb.DuckDBPyConnection, table: PriceTable, suffix: str = "") -> None:
    """(Re)create the TEMP tables ``prices``, ``model_aliases``, ``model_matches`` and
    ``price_sheets`` in ``conn`` from ``table`` (each name followed by ``suffix``, for a sheet
    priced side by side with the main one).

    ``price_id`` is the 1-based position in ``table.rows``. Decimals travel as Arrow
    ``decimal128(38,9)``, so no price ever passes through a float.
    """
    arrow = {
        "prices": _prices_arrow(table),
        "model_aliases": pa.table(
            {
                "alias": pa.array([alias for alias, _ in table.aliases], pa.string()),
                "model": pa.array([model for _, model in table.aliases], pa.string()),
            }
        ),
        "model_matches": _matches_arrow(table),
        "price_sheets": pa.table(
            {
                "sheet": pa.array(range(len(table.sheets)), pa.int32()),
                "name": pa.array(list(table.sheets), pa.string()),
            }
        ),
    }
    try:
        for name, ddl in zip(_VIEWS, (_PRICES_DDL, _ALIASES_DDL, _MATCHES_DDL, _SHEETS_DDL), strict=True):
            conn.execute(ddl.replace(f"TEMP TABLE {name} (", f"TEMP TABLE {name}{suffix} ("))
        for name, view in _VIEWS.items():
            conn.register(view, arrow[name])
        try:
            for name, view in _VIEWS.items():
                conn.execute(f"INSERT INTO {name}{suffix} BY NAME SELECT * FROM {view}")
        finally:
            for view in _VIEWS.values():
                conn.unregister(view)
    except duckdb.Error as e:
        raise StoreError(f"cannot register the price table in DuckDB: {e}") from e


# --- Display ------------------------------------------------------------------------------


def _plain_decimal(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _display(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return _plain_decimal(value)
    if isinstance(value, datetime):
        at_midnight = value.time() == datetime.min.time()
        return value.date().isoformat() if at_midnight else value.isoformat()
    return str(value)


def price_rows_for_display(table: PriceTable) -> list[dict[str, str]]:
    """Rows as strings (PRICE_COLUMNS, then ``sheet``, ``file`` and ``line``) for ``costlens pricing show``.

    Price rows first, then match rows (``match`` = ``KIND:PATTERN``, prices empty). Decimals
    are plain (no exponent, trailing zeros trimmed), empty cells are "", and midnight dates
    print as ``2025-01-01`` (otherwise ISO ``2025-01-01T12:00:00``).
    """
    names = (*PRICE_COLUMNS, "file", "line")
    out = [
        {name: "" if name == "match" else _display(getattr(row, name)) for name in names}
        | {"sheet": table.sheets[row.sheet]}
        for row in table.rows
    ]
    for m in table.matches:
        cells = dict.fromkeys(names, "")
        cells.update(
            model=m.model,
            match=m.rule,
            provider=m.provider or "",
            source=m.source or "",
            file=m.file,
            line=str(m.line),
        )
        out.append(cells | {"sheet": table.sheets[m.sheet]})
    return out
