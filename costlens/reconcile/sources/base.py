"""The one small interface every provider export implements, and the pieces they all share.

An export kind (OpenAI usage or costs pages, Anthropic usage or cost report pages, a LiteLLM
spend log) is a module with one :class:`ExportReader`: ``detect(document)`` says whether a
loaded file looks like that kind, and ``read(document)`` turns it into normalized
:class:`BucketRow` values — one per result of a bucket: the UTC day, the model (or none), the
service tier where the export has it, and the figures it carries (requests, input / cached /
cache-write / output tokens, cost in USD as ``Decimal``). Reading never touches the database:
every file is read and checked before anything is compared or stored, so a malformed export
leaves nothing behind.

What the readers share lives here, so each one only knows its own format:

* **Exact figures.** JSON is read as the price importers' strict loader reads it
  (:func:`costlens.money.sources.base.load_json`): numbers come back as ``Decimal`` from their
  text, duplicate keys and NaN are refused (that loader runs to say where, when there is one). A
  money string is parsed as a decimal from its text.
* **Errors with a place.** Every error names the file and the JSON path of the bad value
  (``$.data[3].results[0].amount.value``), or ``file:line`` for CSV, and the reason.
* **Figures the store holds.** A count is a whole number up to a BIGINT (2^63 - 1); an amount's
  magnitude is below ``MAX_USD`` (USD 10^15, no bill's), so the sum of any export's amounts fits
  the store's DECIMAL(38,15) and a cell cannot overflow; a number whose exponent is beyond
  ±1000 is refused by the loader (``1e999999999999999999`` would cost gigabytes as an integer).
* **UTC days.** A bucket must lie inside one UTC day (``[00:00, 24:00)``, end exclusive); finer
  buckets (1h, 1m) are added up to their day, and every day an export covers must be covered
  whole (so costlens's side of a day is the whole day too).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from costlens.errors import InputError, PricingError
from costlens.money.sources.base import json_path, json_type, load_json

__all__ = [
    "MAX_USD",
    "MEASURES",
    "MONEY_PLACES",
    "ONE_DAY",
    "BucketRow",
    "Document",
    "ExportRead",
    "ExportReader",
    "Measure",
    "Window",
    "as_list",
    "as_object",
    "bad",
    "count_field",
    "day_of_window",
    "first_result",
    "decimal_text",
    "grouping_key",
    "json_path",
    "json_type",
    "load_document",
    "optional_text",
    "parse_instant",
    "results_of",
    "rfc3339_field",
    "unix_time_field",
    "usd",
]

Measure = Literal[
    "requests", "input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "cost_usd"
]
# In display order. Token words as README "Vocabulary": input includes cache reads and writes.
MEASURES: Final[tuple[Measure, ...]] = (
    "requests",
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "cost_usd",
)

# The store keeps money as DECIMAL(38,15); a provider figure with more places (float noise such
# as 0.0012000000000000001) is rounded half-even to 15, far below any tolerance.
MONEY_PLACES: Final = 15
_QUANTUM: Final = Decimal(1).scaleb(-MONEY_PLACES)
_CONTEXT: Final = Context(prec=60, rounding=ROUND_HALF_EVEN)
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# An exponent of 1000 or more somewhere in the bytes (a JSON number has a digit before its "e"): the
# strict loader decides (it refuses numbers beyond the range it reads, with their path); a string
# holding such text only costs the slow path.
_BIG_EXPONENT: Final = re.compile(rb"\d[eE][+-]?0*[1-9]\d{3}")
MAX_USD: Final = Decimal(10) ** 15
ONE_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketRow:
    """One result of one bucket, normalized (None = the export does not carry that figure).

    ``model`` None with ``unattributed`` None: the export is not grouped by model (the row is
    every model's). ``unattributed`` set: a charge the export names no model for (web search,
    a line item without a model id): its description. ``tier``: ``standard``, ``batch``,
    ``flex``, ``priority``, ``non-batch`` (grouped by the batch flag only), or None (not grouped
    by tier). ``input_tokens`` includes cache reads and writes (costlens's vocabulary).
    """

    path: str
    day: date
    model: str | None
    unattributed: str | None = None
    tier: str | None = None
    requests: int | None = None
    input_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A bucket's time window ``[start, end)`` (naive UTC) and where it was read."""

    start: datetime
    end: datetime
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportRead:
    """What one file gave: its rows, bucket windows and the days it covers.

    ``windows`` are the buckets (for the overlap checks and coverage); an export without
    windows (a spend log of single requests) gives the ``days`` it covers instead, and an
    ``identities`` entry per row (request id, where) so a request in two files is found.
    """

    rows: tuple[BucketRow, ...]
    buckets: int
    windows: tuple[Window, ...] = ()
    days: tuple[date, ...] = ()
    identities: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded export file: JSON (numbers as ``Decimal``) or CSV rows with their line numbers."""

    file: str
    sha256: str
    json: Any = None
    csv_header: tuple[str, ...] | None = None
    csv_rows: tuple[tuple[int, dict[str, str]], ...] = field(default_factory=tuple)


class ExportReader(Protocol):
    """One export kind. ``family`` groups a provider's usage and cost exports (the token figures
    of one explain the money of the other); ``measures`` are the figures its rows carry."""

    kind: str
    family: str
    description: str
    measures: tuple[Measure, ...]

    def detect(self, document: Document) -> bool: ...

    def read(self, document: Document) -> ExportRead: ...


# --- loading --------------------------------------------------------------------------------------


def load_document(path: Path) -> Document:
    """Read ``path`` as JSON when it starts with ``{`` or ``[``, else as CSV with a header line.

    Errors raise ``InputError`` naming the file (and line/column, or JSON path).
    """
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read file: {e.strerror or e}", file=file) from e
    digest = hashlib.sha256(raw).hexdigest()
    head = raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        data = _quick_json(raw)
        if data is _ASK_THE_STRICT_LOADER:
            try:  # the price importers' strict loader, which says where the problem is
                data, _ = load_json(path)
            except PricingError as e:  # ... as an input error
                raise InputError(e.reason, file=e.file, line=e.line, column=e.column) from e
        return Document(file, digest, json=data)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError("not UTF-8 text", file=file, line=raw[: e.start].count(b"\n") + 1) from e
    if not text.strip():
        raise InputError("empty file (expected a JSON document or a CSV spend log)", file=file, line=1)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = tuple(h.strip() for h in next(reader))
        rows: list[tuple[int, dict[str, str]]] = []
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise InputError(f"{len(cells)} fields, the header has {len(header)}", file=file, line=line)
            rows.append((line, dict(zip(header, cells, strict=True))))
    except csv.Error as e:
        raise InputError(f"invalid CSV: {e}", file=file, line=reader.line_num) from e
    return Document(file, digest, csv_header=header, csv_rows=tuple(rows))


_ASK_THE_STRICT_LOADER: Final = object()


def _quick_json(raw: bytes) -> Any:
    """The document, parsed as the strict loader would (numbers as ``Decimal`` from their text), in
    one pass; or ``_ASK_THE_STRICT_LOADER`` when it is not valid UTF-8 or JSON, or has a repeated key
    or a NaN/Infinity. A page of a year's buckets holds ~500,000 values: the strict loader's second
    walk over all of them to find the bad one would cost more than reading the page, so it runs only
    when there is something to find."""
    suspicious = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal suspicious
        obj = dict(items)
        if len(obj) != len(items):
            suspicious = True
        return obj

    def constant(_: str) -> None:
        nonlocal suspicious
        suspicious = True

    if _BIG_EXPONENT.search(raw):
        return _ASK_THE_STRICT_LOADER
    try:
        data = json.loads(
            raw.decode("utf-8-sig"),
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=constant,
            object_pairs_hook=pairs,
        )
    except (UnicodeDecodeError, ValueError, RecursionError, ArithmeticError):
        return _ASK_THE_STRICT_LOADER
    return _ASK_THE_STRICT_LOADER if suspicious else data


# --- values ---------------------------------------------------------------------------------------


def bad(path: str, reason: str, file: str, line: int | None = None) -> InputError:
    """The error for a bad value: ``file: $.data[0].start_time: reason`` (``file:line: col: ...``)."""
    return InputError(f"{path}: {reason}" if path else reason, file=file, line=line)


def as_object(value: Any, path: str, file: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise bad(path, f"expected an object, got {json_type(value)}", file)
    return value


def as_list(value: Any, path: str, file: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad(path, f"expected an array, got {json_type(value)}", file)
    return value


MAX_COUNT = 2**63 - 1


def count_field(
    obj: Mapping[str, Any], key: str, path: str, file: str, *, required: bool = True
) -> int | None:
    """A count (tokens, requests): a whole JSON number >= 0. Absent or null: an error when required."""
    value = obj.get(key)
    where = f"{path}.{key}"
    if value is None:
        if required:
            raise bad(where, "missing (expected a whole number >= 0)" if key not in obj else "is null", file)
        return None
    if not isinstance(value, Decimal) or value != value.to_integral_value() or value < 0:
        shown = value if isinstance(value, Decimal) else json_type(value)
        raise bad(where, f"expected a whole number >= 0, got {shown}", file)
    if value > MAX_COUNT:  # the DB's BIGINT; no bill has that many tokens
        raise bad(where, f"is {value}, above the largest count costlens stores ({MAX_COUNT})", file)
    return int(value)


def optional_text(obj: Mapping[str, Any], key: str, path: str, file: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(f"{path}.{key}", f"expected a string or null, got {json_type(value)}", file)
    return value


def decimal_text(text: str, path: str, file: str, line: int | None = None) -> Decimal:
    """A decimal string (``123.45``, ``-0.5``, ``1.5e-05`` as Python writes a float; no NaN, no
    infinity, no thousands separators) as the exact Decimal of its text."""
    if not _DECIMAL_TEXT.fullmatch(text.strip()):
        raise bad(path, f"expected a decimal number, got {text!r}", file, line)
    try:
        return Decimal(text.strip())
    except InvalidOperation as e:  # pragma: no cover - the pattern admits only valid decimals
        raise bad(path, f"expected a decimal number, got {text!r}", file, line) from e


def usd(value: Decimal, path: str, file: str, line: int | None = None) -> Decimal:
    """A USD amount as stored (DECIMAL(38,15)): exact, or rounded half-even beyond 15 places; an
    amount of ``MAX_USD`` or more (either sign) is an error."""
    if not value.is_finite() or value.copy_abs() >= MAX_USD:  # (copy_abs: abs() can overflow)
        raise bad(
            path, f"is {value} USD, beyond the largest amount costlens compares (below 10^15)", file, line
        )
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_PLACES:
        return value.quantize(_QUANTUM, context=_CONTEXT)
    return value


def unix_time_field(obj: Mapping[str, Any], key: str, path: str, file: str) -> datetime:
    """A Unix time in whole seconds (the OpenAI organization APIs' ``start_time``/``end_time``)."""
    value = obj.get(key)
    where = f"{path}.{key}"
    if not isinstance(value, Decimal) or value != value.to_integral_value() or value < 0:
        shown = value if isinstance(value, Decimal) else json_type(value)
        raise bad(where, f"expected a Unix time in seconds, got {shown}", file)
    try:
        return datetime.fromtimestamp(int(value), UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError) as e:
        raise bad(where, f"Unix time {value} is out of range", file) from e


def parse_instant(
    text: str, path: str, file: str, line: int | None = None, *, naive_is_utc: bool
) -> datetime:
    """An ISO 8601 / RFC 3339 time as naive UTC. Without an offset: UTC if ``naive_is_utc``, else an error."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        raise bad(
            path, f"expected an RFC 3339 time such as 2025-08-01T00:00:00Z, got {text!r}", file, line
        ) from e
    if value.tzinfo is None:
        if not naive_is_utc:
            raise bad(path, f"{text!r} has no time zone (expected ...Z or an offset)", file, line)
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError as e:  # 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
        raise bad(
            path, f"{text!r} is out of range (in UTC it is not within the years 1 to 9999)", file, line
        ) from e


def rfc3339_field(obj: Mapping[str, Any], key: str, path: str, file: str) -> datetime:
    """An RFC 3339 string with an offset (the Anthropic Admin API's ``starting_at``/``ending_at``)."""
    value = obj.get(key)
    where = f"{path}.{key}"
    if not isinstance(value, str):
        raise bad(where, f"expected an RFC 3339 time string, got {json_type(value)}", file)
    return parse_instant(value, where, file, naive_is_utc=False)


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of_window(start: datetime, end: datetime, path: str, file: str) -> date:
    """The UTC day a bucket ``[start, end)`` lies in; a bucket that is empty or crosses midnight
    (a 1d bucket that starts at 07:00, say: a report requested in another time zone) is an error."""
    if end <= start:
        raise bad(path, f"bucket ends ({_stamp(end)}) before it starts ({_stamp(start)})", file)
    day = start.date()
    # (end - midnight, not midnight + 1 day: the day after 9999-12-31 is beyond datetime's range)
    if end - datetime.combine(day, datetime.min.time()) > ONE_DAY:
        raise bad(
            path,
            f"bucket {_stamp(start)}..{_stamp(end)} is not within one UTC day "
            "(request the export in UTC, with buckets starting at 00:00 UTC)",
            file,
        )
    return day


def results_of(
    data: Any, file: str, *, start_key: str, end_key: str
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The buckets of a page (``{"data": [...]}``), each with its index; checks the envelope."""
    page = as_object(data, "$", file)
    buckets = as_list(page.get("data"), "$.data", file)
    for i, bucket in enumerate(buckets):
        obj = as_object(bucket, json_path("data", i), file)
        for key in (start_key, end_key):
            if key not in obj:
                raise bad(json_path("data", i), f"bucket without {key!r}", file)
        as_list(obj.get("results"), json_path("data", i, "results"), file)
        yield i, obj


_PLAIN: Final = (str, Decimal, bool, type(None))


def grouping_key(obj: Mapping[str, Any], measures: Collection[str]) -> tuple[tuple[str, Any], ...]:
    """What tells two results of one bucket apart: every field but the figures (model, tier,
    project, line item...). Two results with the same key are the same result twice."""
    return tuple(
        sorted((k, v if isinstance(v, _PLAIN) else repr(v)) for k, v in obj.items() if k not in measures)
    )


def first_result(document: Document, start_key: str) -> dict[str, Any] | None:
    """The first result of the first bucket that has one (detection looks at it alone)."""
    data = document.json
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return None
    for bucket in data["data"]:
        if isinstance(bucket, dict) and start_key in bucket and isinstance(bucket.get("results"), list):
            for result in bucket["results"]:
                if isinstance(result, dict):
                    return result
    return None
