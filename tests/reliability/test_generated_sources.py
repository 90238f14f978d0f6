"""Hypothesis-generated hostile input for the `reconcile` export readers and the `pricing import` sources.

test_hostile_input.py holds a corpus of known-bad shapes for both families; here hypothesis takes a
valid document of each kind (the samples in tests/data/reconcile and tests/data/sources) and mutates
it: a value at a random JSON path (or a CSV cell) replaced by a wrong type, a numeric string, a
negative, fractional, huge (> 2^63) or out-of-range number, a NaN/Infinity token, null, a list or an
object; a key deleted or an unknown one added; a count or an amount set to a random valid value;
and the file's bytes truncated, given a BOM, CRLF line ends or non-UTF-8 bytes. Every case runs the
real command line in-process (CliRunner) and must hold:

* exit 0 (or reconcile's 5: differences, all stored) or 2 (an input error); never 4 (an internal
  error) and never a traceback;
* an error is exactly one ``costlens: error:`` line naming the file and where (a JSON path, a line,
  or a reason about the whole file), and nothing is stored (the reconciliation count is unchanged)
  or written (no sheet, no temporary file);
* an accepted export stores, per figure, what the document says (an independent sum over its
  results), one reconciliation more, and no model name the document does not hold; an accepted
  price source writes a sheet costlens itself reads back, and a price or context window set to a
  valid value lands in its cell.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import genai_prices.data
import pytest
from click.testing import CliRunner, Result
from genai_prices import types as genai_types
from helpers import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from costlens.cli import cli
from costlens.errors import CostlensError
from costlens.money.pricing import load_price_table

DATA = Path(__file__).resolve().parents[1] / "data"
BIGINT_MAX = 2**63 - 1
_EXACT = Context(prec=200, rounding=ROUND_HALF_EVEN)

# --- the cases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (``NaN``, ``1e400``, ``-0``): json.dumps cannot write them."""

    token: str


Path_ = tuple[str | int, ...]


def number(value: Any) -> Decimal:
    return Decimal(value.token if isinstance(value, Raw) else value)


def whole(value: Any) -> str:
    return str(int(number(value)))


RAW_TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "1e99999", "1E-99999", "1e999999999999999999",
    "1e-9999999999999999999999", "-0", "0.0", "1e308", "123456789012345678901234567890.123456789", "1E+30",
    "18446744073709551621", "9223372036854775808", "0.1e5000", "5e-324", "1.5e-05",
]  # fmt: skip
TEXTS = [
    "", " ", "NaN", "Infinity", "-1", "2.5", "1e30", "1e400", "12,3", "$5", "0x10", "1_000", "5 ", " 7",
    "18446744073709551621", "2025-08-01T00:00:00Z", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+01:00",
    "9999-12-31T12:00:00", "first of August", "usd", "EUR", "failure", "batch", "\u202egpt", "=cmd|x",
    "gpt-4o\r\n", " gpt-4o ", "a,b", 'quo"te', "\x00", "\ufffdx",
]  # fmt: skip
OUT_OF_RANGE = st.sampled_from(
    ["1e999999999999999999", "1e-9999999999999999999999", "1E+1000000000000000000000", "0.1e5000", "1e-5000",
     "-1e400", "NaN", "-Infinity", "1e30", "9223372036854775808", "18446744073709551621"]
).map(Raw)  # fmt: skip
NOT_TEXT = st.one_of(
    st.integers(), st.booleans(), st.lists(st.integers(), min_size=1, max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
)  # fmt: skip
NUMERIC = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 + 5, -1, 0, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(RAW_TOKENS).map(Raw),
    st.sampled_from(TEXTS),
    st.integers(min_value=-5, max_value=2**64).map(str),
    st.text(max_size=12),
)
HOSTILE = st.recursive(
    SCALAR,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
UNKNOWN_KEYS = st.sampled_from(
    ["extra", "object", "model", "amount", "data", "results", "", "🙂", "a" * 300,
     "input_cost_per_token_above_" + "9" * 30 + "k_tokens", "output_cost_per_token_above_" + "7" * 5000 + "k_tokens",
     "input_cost_per_token_above_0k_tokens_priority", "cache_creation_input_token_cost_above_1hr_flex"]
) | st.text(max_size=10)  # fmt: skip
# Keys that look like a model id but are not one costlens can key a sheet by.
ID_LIKE = st.sampled_from(
    ["", " ", " gpt-4o ", "gpt-4o\r\n", "\tgpt-4o", "GPT-4O", "gpt-4o-mini", "openai/gpt-4o"]
)
# Times as a reader meets them: ISO 8601 text near the ends of the calendar, in several offsets.
TIMES = st.one_of(
    st.datetimes(
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14))])
    ).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+01:00", "9999-12-31T00:00:00Z",
                     "9999-12-31T12:00:00", "0001-01-01T00:00:00Z", "2025-08-01", "2025-08-01T00:00:00"]),
)  # fmt: skip


@dataclass(frozen=True)
class Op:
    """One structural change: ``set`` a value, ``del``ete it, ``add`` an unknown key, ``rename`` a key,
    or set a ``valid`` value at a known path (a count, an amount, a price, a context window)."""

    kind: str
    path: Path_
    value: Any = None
    key: str = ""


TEXT_OPS = st.one_of(
    st.just(("bom", 0, b"")),
    st.just(("crlf", 0, b"")),
    st.tuples(st.just("truncate"), st.floats(min_value=0, max_value=1), st.just(b"")),
    st.tuples(
        st.just("insert"),
        st.floats(min_value=0, max_value=1),
        st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\x80", b"\x00", b"\xef\xbb\xbf"]),
    ),
)
# Mostly none: a truncated or non-UTF-8 file is an error before any value is looked at.
TEXT_CHANGES = st.integers(0, 9).flatmap(
    lambda n: st.just([]) if n < 7 else st.lists(TEXT_OPS, min_size=1, max_size=2)
)
MEANING_KEPT = {"bom", "crlf"}


def walk(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, (*path, i))


def get(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def apply(doc: Any, op: Op) -> Any:
    """``doc`` with ``op`` applied (the paths were drawn from the seed, so a path an earlier op
    removed is skipped)."""
    if not op.path and op.kind in ("set", "valid"):
        return op.value
    try:
        parent = get(doc, op.path[:-1]) if op.path else doc
        last = op.path[-1] if op.path else None
        if op.kind in ("set", "valid"):
            parent[last] = op.value
        elif op.kind == "del":
            del parent[last]
        elif op.kind == "add":
            target = get(doc, op.path)
            if isinstance(target, dict):
                target[op.key] = op.value
        elif op.kind == "update":  # several keys of one object at once (a bucket's start and end)
            get(doc, op.path).update(op.value)
        elif op.kind == "rename" and isinstance(parent, dict) and last in parent:
            items = [(op.key if k == last else k, v) for k, v in parent.items()]
            parent.clear()
            parent.update(items)
    except (KeyError, IndexError, TypeError):
        pass
    return doc


def dumps(doc: Any) -> str:
    """JSON text with Raw tokens and Decimals written verbatim."""
    raws: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, Raw | Decimal):
            raws.append(value.token if isinstance(value, Raw) else str(value))
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(doc), indent=1, ensure_ascii=False)
    return re.sub(r'"@@RAW(\d+)@@"', lambda m: raws[int(m.group(1))], text)


def text_change(data: bytes, ops: list[tuple[str, float, bytes]]) -> bytes:
    for kind, at, extra in ops:
        if kind == "bom":
            data = b"\xef\xbb\xbf" + data
        elif kind == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif kind == "truncate":
            data = data[: int(len(data) * at)]
        else:
            cut = int(len(data) * at)
            data = data[:cut] + extra + data[cut:]
    return data


def load_seed(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal, parse_int=Decimal)


def json_ops(seed: Any, focus: Callable[[], st.SearchStrategy[Op]] | None) -> st.SearchStrategy[list[Op]]:
    """Up to three changes: anywhere in ``seed``, or (weighted) the ``focus`` ops of its kind."""
    paths = [p for p, _ in walk(seed)]
    inner = [p for p in paths if p]
    objects = [p for p, v in walk(seed) if isinstance(v, dict)]
    keyed = [p for p in inner if isinstance(p[-1], str)]
    # Fields a reader takes as text or time (model, tier, currency, start...): a wrong type there
    # must be refused, not stored as its repr.
    texts = [p for p, v in walk(seed) if p and isinstance(v, str | type(None)) and isinstance(p[-1], str)]
    # Numbers, and numbers in strings (OpenRouter's prices): out-of-range and non-finite ones there.
    numbers = [
        p
        for p, v in walk(seed)
        if p and (isinstance(v, Decimal) or (isinstance(v, str) and NUMERIC.fullmatch(v)))
    ]
    op = st.one_of(
        st.builds(Op, st.just("set"), st.sampled_from(inner), HOSTILE),
        st.builds(Op, st.just("set"), st.sampled_from(texts), HOSTILE | TIMES),
        st.builds(
            Op, st.just("set"), st.sampled_from(numbers), OUT_OF_RANGE | OUT_OF_RANGE.map(lambda r: r.token)
        ),
        st.builds(Op, st.just("del"), st.sampled_from(inner)),
        st.builds(Op, st.just("add"), st.sampled_from(objects), HOSTILE, UNKNOWN_KEYS),
        st.builds(Op, st.just("rename"), st.sampled_from(keyed), st.none(), UNKNOWN_KEYS | ID_LIKE),
        *([focus() for _ in range(3)] if focus else []),  # weighted: mostly values whose figures are checked
    )
    # Mostly one change, so that what it does is not hidden by another change's error.
    return st.sampled_from([1, 1, 1, 1, 1, 1, 2, 2, 2, 3]).flatmap(
        lambda n: st.lists(op, min_size=n, max_size=n)
    )


@dataclass
class Case:
    data: bytes
    ops: list[Op]
    text_ops: list[tuple[str, float, bytes]]
    suffix: str = ".json"

    @property
    def only_valid(self) -> Op | None:
        """The one op of a case that only sets a valid value (the file's meaning otherwise kept)."""
        if (
            len(self.ops) == 1
            and self.ops[0].kind == "valid"
            and {t[0] for t in self.text_ops} <= MEANING_KEPT
        ):
            return self.ops[0]
        return None


def json_cases(seed_path: Path, focus: Callable[[], st.SearchStrategy[Op]] | None) -> st.SearchStrategy[Case]:
    seed = load_seed(seed_path)

    @st.composite
    def build(draw: st.DrawFn) -> Case:
        ops = draw(json_ops(seed, focus))
        doc = load_seed(seed_path)
        for op in ops:
            doc = apply(doc, op)
        text_ops = draw(TEXT_CHANGES)
        return Case(text_change(dumps(doc).encode("utf-8", "surrogatepass"), text_ops), ops, text_ops)

    return build()


# --- the focus of each kind: valid values at known paths (their figures are checked) ------------------

COUNTS = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=BIGINT_MAX),
    st.just(BIGINT_MAX),  # the largest a BIGINT holds: a count, but no tier size (its row starts above)
    st.sampled_from([BIGINT_MAX - 1, BIGINT_MAX + 1]),
    st.integers(min_value=BIGINT_MAX + 1, max_value=2**66),  # must be refused: above a BIGINT
)
# A count in the JSON text: as above, or a whole number written with an exponent (refused when huge).
JSON_COUNTS = COUNTS.map(Decimal) | st.sampled_from(["1e3", "1e30", "1e5000", "1e999999999999999999"]).map(
    Raw
)
# Long but below the cap: more digits than a default decimal context keeps (28).
LONG_MONEY = st.builds(
    lambda whole, places: f"{whole}.{places}",
    st.integers(min_value=10**13, max_value=10**16),
    st.text(alphabet="0123456789", min_size=14, max_size=22),
)
MONEY_TEXT = (
    st.builds(
        lambda sign, whole, places: f"{sign}{whole}" + (f".{places}" if places else ""),
        st.sampled_from(["", "", "", "-"]),
        st.integers(min_value=0, max_value=10**17).map(str) | st.sampled_from(["0", "1", "10" + "0" * 25]),
        st.text(alphabet="0123456789", max_size=22),
    )
    | LONG_MONEY
)
PRICE_TEXT = st.builds(
    lambda whole, places: f"{whole}" + (f".{places}" if places else ""),
    st.integers(min_value=0, max_value=999),
    st.text(alphabet="0123456789", max_size=14),
)


def valid_at(paths: list[Path_], values: st.SearchStrategy[Any]) -> Callable[[], st.SearchStrategy[Op]]:
    return lambda: st.builds(Op, st.just("valid"), st.sampled_from(paths), values)


def _results(*idx: int, keys: tuple[str, ...]) -> list[Path_]:
    return [("data", 0, "results", i, *k.split(".")) for i in idx for k in keys]


def wrong_at(paths: list[Path_], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Op]:
    return st.builds(Op, st.just("set"), st.sampled_from(paths), values)


EPOCH = datetime(1970, 1, 1)
# A bucket window: a start on a day (the ends of the calendar among them) and a width (a day, an
# hour, a second, none, negative, one that crosses midnight).
WINDOWS = st.tuples(
    st.sampled_from([date(9999, 12, 31), date(1970, 1, 1), date(1, 1, 1), date(2025, 8, 1)]) | st.dates(),
    st.sampled_from([0, 0, 0, 3600, 86399]),
    st.sampled_from([86400, 86400, 3600, 1, 0, -1, 90000]),
)


def _window(day: date, offset: int, width: int) -> tuple[datetime, datetime | None]:
    start = datetime.combine(day, datetime.min.time()) + timedelta(seconds=offset)
    try:
        return start, start + timedelta(seconds=width)
    except OverflowError:
        return start, None


def unix_window(bucket: int) -> st.SearchStrategy[Op]:
    def op(window: tuple[date, int, int]) -> Op:
        start, end = _window(*window)
        seconds = [int((t - EPOCH).total_seconds()) if t else 253402300800 for t in (start, end)]
        return Op(
            "update", ("data", bucket), {"start_time": Decimal(seconds[0]), "end_time": Decimal(seconds[1])}
        )

    return WINDOWS.map(op)


def iso_window(bucket: int) -> st.SearchStrategy[Op]:
    def op(window: tuple[date, int, int], zone: str) -> Op:
        start, end = _window(*window)
        text = [t.isoformat() + zone if t else "10000-01-01T00:00:00Z" for t in (start, end)]
        return Op("update", ("data", bucket), {"starting_at": text[0], "ending_at": text[1]})

    return st.builds(op, WINDOWS, st.sampled_from(["Z", "Z", "+00:00", "-05:00", "+14:00"]))


AMOUNTS_OUT_OF_RANGE = OUT_OF_RANGE | OUT_OF_RANGE.map(lambda r: r.token)

RECONCILE_KINDS: dict[str, tuple[str, Callable[[], st.SearchStrategy[Op]]]] = {
    "openai-usage": (
        "openai_usage_page.json",
        lambda: st.one_of(
            valid_at(
                _results(
                    0, 1, keys=("input_tokens", "output_tokens", "input_cached_tokens", "num_model_requests")
                ),
                JSON_COUNTS,
            )(),
            unix_window(0),
        ),
    ),
    "openai-costs": (
        "openai_costs_page.json",
        lambda: st.one_of(
            valid_at(_results(0, 1, 2, 3, keys=("amount.value",)), MONEY_TEXT | MONEY_TEXT.map(Raw))(),
            wrong_at(_results(0, 3, keys=("amount.value",)), AMOUNTS_OUT_OF_RANGE),
            unix_window(0),
        ),
    ),
    "anthropic-usage": (
        "anthropic_usage_page.json",
        lambda: st.one_of(
            valid_at(
                _results(
                    0,
                    keys=(
                        "uncached_input_tokens",
                        "cache_read_input_tokens",
                        "output_tokens",
                        "cache_creation.ephemeral_1h_input_tokens",
                        "cache_creation.ephemeral_5m_input_tokens",
                    ),
                ),
                JSON_COUNTS,
            )(),
            iso_window(0),
        ),
    ),
    # (cents, moved two places: long amounts weighted, a rounded move would change their last places)
    "anthropic-cost": (
        "anthropic_cost_page.json",
        lambda: st.one_of(
            valid_at(_results(0, 1, keys=("amount",)), MONEY_TEXT | LONG_MONEY | LONG_MONEY)(),
            wrong_at(_results(0, 1, keys=("amount",)), OUT_OF_RANGE.map(lambda r: r.token)),
            iso_window(0),
        ),
    ),
    "litellm-spend": (
        "litellm_spend.json",
        lambda: st.one_of(
            valid_at([(0, "prompt_tokens"), (0, "completion_tokens")], JSON_COUNTS)(),
            valid_at([(0, "spend")], MONEY_TEXT | MONEY_TEXT.map(Raw))(),
            wrong_at([(0, "spend")], AMOUNTS_OUT_OF_RANGE),
            wrong_at([(0, "startTime")], TIMES),
            # a model, model group or status that is no string: refused, not stored as its repr
            st.builds(
                Op,
                st.just("set"),
                st.sampled_from([(0, "model"), (0, "model_group"), (0, "status")]),
                NOT_TEXT,
            ),
        ),
    ),
}

# --- the LiteLLM spend log as CSV ------------------------------------------------------------------

CSV_SEED = (DATA / "reconcile" / "litellm_spend.csv").read_text(encoding="utf-8")
CSV_TEXTS = st.one_of(
    st.sampled_from(TEXTS),
    TIMES,
    st.integers(min_value=-5, max_value=2**66).map(str),
    MONEY_TEXT,
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


@st.composite
def csv_cases(draw: st.DrawFn) -> Case:
    rows = list(csv.reader(io.StringIO(CSV_SEED, newline="")))
    header, body = rows[0], rows[1:]
    ops: list[Op] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "valid", "del", "add", "cells"]))
        column = draw(st.integers(0, len(header) - 1))
        row = draw(st.integers(0, len(body) - 1))
        if kind == "set":
            body[row][column] = draw(CSV_TEXTS)
        elif kind == "valid":
            name = draw(st.sampled_from(["prompt_tokens", "completion_tokens", "spend"]))
            column = header.index(name)
            body[row][column] = str(draw(COUNTS if name != "spend" else MONEY_TEXT))
        elif kind == "del":
            for cells in (header, *body):
                if column < len(cells):
                    del cells[column]
        elif kind == "add":
            header.append(draw(UNKNOWN_KEYS))
            for cells in body:
                cells.append(draw(CSV_TEXTS))
        else:  # a row with a cell more or less than the header
            if draw(st.booleans()):
                body[row].append(draw(CSV_TEXTS))
            elif body[row]:
                body[row].pop()
        ops.append(Op(kind, ("csv", row, column)))
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows([header, *body])
    text_ops = draw(TEXT_CHANGES)
    return Case(
        text_change(buffer.getvalue().encode("utf-8", "surrogatepass"), text_ops), ops, text_ops, ".csv"
    )


# --- the command line ------------------------------------------------------------------------------


def invoke(*args: str | Path) -> Result:
    argv = [str(a) for a in args]
    with mock.patch.object(sys, "argv", ["costlens", *argv]):
        return CliRunner().invoke(cli, argv, prog_name="costlens", catch_exceptions=False)


def assert_outcome(result: Result, path: Path, allowed: set[int]) -> bool:
    """True when accepted; on an error, one clear line that names the file and where."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code in allowed | {2}, (result.exit_code, result.stdout[-500:], result.stderr)
    if result.exit_code in allowed:
        return True
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("costlens: error: "), result.stderr
    assert "internal error" not in lines[0], lines[0]
    message = lines[0].removeprefix("costlens: error: ")
    assert str(path) in message, message
    where = message.split(str(path), 1)[1]
    assert (
        re.match(r":\d+(:\d+)?: ", where)  # a line (and column)
        or "$" in where  # a JSON path
        or "cannot tell which export this is" in where  # reasons about the whole file
        or "nested too deeply" in where
    ), message
    return False


# --- reconcile ---------------------------------------------------------------------------------------

FAILED = {"failure", "failed", "error"}


def round15(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -15:
        return value.quantize(Decimal(1).scaleb(-15), context=_EXACT)
    return value


def money(value: Any) -> Decimal:
    return Decimal(value.strip()) if isinstance(value, str) else Decimal(value)


def expected_figures(kind: str, data: bytes, suffix: str) -> tuple[dict[str, Decimal], set[str]]:
    """What an accepted export says, per figure (summed exactly over its results), and the strings
    it holds (every stored model name must be one of them)."""
    with localcontext(_EXACT):  # the default context would round sums to 28 digits
        return _expected_figures(kind, data, suffix)


def _expected_figures(kind: str, data: bytes, suffix: str) -> tuple[dict[str, Decimal], set[str]]:
    sums: Counter[str] = Counter()
    if suffix == ".csv":
        rows = [r for r in csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")) if any(
            (v or "").strip() for v in r.values())]  # fmt: skip
        texts = {v for r in rows for v in r.values() if isinstance(v, str)}
        docs: Any = rows
    else:
        doc = json.loads(data.decode("utf-8-sig"), parse_float=Decimal, parse_int=Decimal)
        texts = {v for _, v in walk(doc) if isinstance(v, str)}
        docs = doc["data"] if isinstance(doc, dict) else doc
    if kind == "litellm-spend":
        for row in docs:
            status = (str(row.get("status") or "").strip() or "success").lower()
            sums["requests"] += 0 if status in FAILED else 1
            sums["input_tokens"] += Decimal(str(row["prompt_tokens"]).strip())
            sums["output_tokens"] += Decimal(str(row["completion_tokens"]).strip())
            sums["cost_usd"] += round15(money(row["spend"]))
    else:
        for bucket in docs:
            for r in bucket["results"]:
                if kind == "openai-usage":
                    sums["requests"] += r["num_model_requests"]
                    sums["input_tokens"] += r["input_tokens"]
                    sums["cached_tokens"] += r.get("input_cached_tokens") or 0
                    sums["output_tokens"] += r["output_tokens"]
                elif kind == "anthropic-usage":
                    creation = r.get("cache_creation") or {}
                    writes = sum(
                        creation.get(k) or 0
                        for k in ("ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens")
                    )
                    read = r.get("cache_read_input_tokens") or 0
                    sums["input_tokens"] += r["uncached_input_tokens"] + writes + read
                    sums["cached_tokens"] += read
                    sums["cache_write_tokens"] += writes
                    sums["output_tokens"] += r["output_tokens"]
                elif kind == "openai-costs":
                    sums["cost_usd"] += round15(money(r["amount"]["value"]))
                else:  # anthropic-cost: cents, moved two places exactly
                    sums["cost_usd"] += round15(Decimal(r["amount"].strip()).scaleb(-2, context=_EXACT))
    heads = {t.partition(",")[0].strip() for t in texts} | {t.strip() for t in texts}
    return dict(sums), {t.lower() for t in heads | texts}


def stored(db: Path) -> tuple[int, dict[str, Decimal], set[str]]:
    """Reconciliations stored, and the provider's figures and model names of the newest."""
    if not db.exists():
        return 0, {}, set()
    with duckdb.connect(str(db), read_only=True) as conn:
        tables = {t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "reconciliations" not in tables:
            return 0, {}, set()
        ((count, newest),) = conn.execute(
            "SELECT count(*), max(reconciliation_id) FROM reconciliations"
        ).fetchall()
        figures = dict(
            conn.execute(
                "SELECT measure, coalesce(sum(provider_value), 0) FROM reconciliation_cells "
                "WHERE reconciliation_id = ? GROUP BY measure",
                [newest],
            ).fetchall()
        )
        models = {
            m.lower()
            for (m,) in conn.execute(
                "SELECT DISTINCT model FROM reconciliation_cells WHERE reconciliation_id = ? AND provider_value IS NOT NULL",
                [newest],
            ).fetchall()
            if m not in (None, "", "(no model)", "(all models)")
        }
    return int(count), figures, models


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    checked: Counter[str] = field(default_factory=Counter)  # accepted with a valid value set, and found

    def line(self, kinds: list[str]) -> str:
        return ", ".join(
            f"{k} {self.cases[k]} ({self.accepted[k]} accepted, {self.checked[k]} with one value set and found)"
            for k in kinds
            if self.cases[k]
        )


RECONCILE_TALLY = Tally()
RECONCILE_PARAMS = [*RECONCILE_KINDS, "litellm-spend.csv"]


@pytest.mark.parametrize("kind", RECONCILE_PARAMS)
def test_generated_exports(kind, tmp_path, figure):
    db = tmp_path / "state" / "costlens.duckdb"
    reader = kind.removesuffix(".csv")
    if kind.endswith(".csv"):
        cases = csv_cases()
    else:
        name, focus = RECONCILE_KINDS[kind]
        cases = json_cases(DATA / "reconcile" / name, focus)

    @settings(max_examples=examples(30))
    @given(case=cases)
    def check(case: Case) -> None:
        RECONCILE_TALLY.cases[kind] += 1
        path = tmp_path / f"export{case.suffix}"
        path.write_bytes(case.data)
        before, _, _ = stored(db)
        result = invoke("--db", db, "reconcile", path, "--json")
        accepted = assert_outcome(result, path, {0, 5})
        after, figures, models = stored(db)
        if not accepted:
            assert after == before, "an export that was refused stored a reconciliation"
            return
        RECONCILE_TALLY.accepted[kind] += 1
        assert after == before + 1
        assert json.loads(result.stdout)["inputs"][0]["kind"] == reader
        want, texts = expected_figures(reader, case.data, case.suffix)
        assert {m: figures.get(m, Decimal(0)) for m in want} == want, (figures, want)
        assert models <= texts, f"stored model names the export does not hold: {models - texts}"
        if case.only_valid is not None:
            RECONCILE_TALLY.checked[kind] += 1

    check()
    if kind == RECONCILE_PARAMS[-1]:
        figure(
            "hostile input, generated: provider exports for `reconcile` (OpenAI usage and costs pages, "
            "Anthropic usage and cost report pages, LiteLLM spend log as JSON and CSV), each a valid sample "
            "mutated by hypothesis (wrong types, numeric strings, negative, fractional, > 2^63 and "
            "out-of-range numbers, NaN/Infinity tokens, null, lists, objects, keys deleted or added, counts "
            "and amounts set, truncation, BOM, CRLF, non-UTF-8 bytes)",
            cases=sum(RECONCILE_TALLY.cases.values()),
            held=f"{RECONCILE_TALLY.line(RECONCILE_PARAMS)}: exit 0/5 or 2, never 4 nor a traceback; each "
            "error one line naming the file and JSON path or line, nothing stored; each accepted export "
            "stored once with every figure equal to the sum of its results and no model it does not name",
        )


# --- pricing import ------------------------------------------------------------------------------------

PRICE_SEEDS = {
    "litellm": "litellm.json",
    "openrouter": "openrouter.json",
    "models-dev": "models_dev.json",
    "genai-prices": "genai_providers.json",
}
# A valid value at a known path, and the sheet cell it must land in: (model, column, value -> cell).
PRICE_TARGETS: dict[str, list[tuple[Path_, st.SearchStrategy[Any], str, str, Callable[[Any], str]]]] = {
    "litellm": [
        (("gpt-4o", "input_cost_per_token"), PRICE_TEXT.map(Raw), "gpt-4o", "input_per_1m",
         lambda v: Decimal(v.token).scaleb(6, context=_EXACT)),
        (("gpt-4o", "max_input_tokens"), JSON_COUNTS, "gpt-4o", "context_window", whole),
    ],
    "openrouter": [
        (("data", 0, "pricing", "prompt"), PRICE_TEXT, "openai/gpt-4o", "input_per_1m",
         lambda v: Decimal(v).scaleb(6, context=_EXACT)),
        (("data", 0, "context_length"), JSON_COUNTS, "openai/gpt-4o", "context_window", whole),
    ],
    "models-dev": [
        (("openai", "models", "gpt-4o-mini", "cost", "output"), PRICE_TEXT.map(Raw), "gpt-4o-mini",
         "output_per_1m", lambda v: Decimal(v.token)),
        (("openai", "models", "gpt-4o-mini", "limit", "context"), JSON_COUNTS, "gpt-4o-mini",
         "context_window", whole),
        (("openai", "models", "gpt-5.4", "cost", "tiers", 0, "tier", "size"), JSON_COUNTS, "gpt-5.4",
         "min_prompt_tokens", lambda v: str(int(number(v)) + 1)),
    ],
    "genai-prices": [
        ((0, "models", 0, "prices", "input_mtok"), PRICE_TEXT.map(Raw), "acme-chat", "input_per_1m",
         lambda v: Decimal(v.token)),
    ],
}  # fmt: skip


# Ids a sheet cannot key a model by (empty, spaces around: the sheet reader strips its cells, so
# " gpt-4o" would become another model's id), and LiteLLM cliffs too high for a sheet's BIGINT.
PADDED_IDS = st.sampled_from(
    ["", " ", "\t", " gpt-4o", "gpt-4o ", "gpt-4o\r\n", " openai/gpt-4o", "openai/gpt-4o "]
)
CLIFF_KEYS = st.integers(min_value=16, max_value=5000).map(
    lambda digits: "input_cost_per_token_above_" + "9" * digits + "k_tokens"
)
PRICE_FOCUS: dict[str, list[st.SearchStrategy[Op]]] = {
    "litellm": [
        st.builds(Op, st.just("rename"), st.sampled_from([("o4-mini",), ("gpt-4o-mini",)]), st.none(), PADDED_IDS),
        st.builds(Op, st.just("add"), st.just(("gpt-4o",)), st.just(Raw("5e-06")), CLIFF_KEYS),
    ],
    "openrouter": [st.builds(Op, st.just("set"), st.sampled_from([("data", 1, "id"), ("data", 3, "id")]), PADDED_IDS)],
    "models-dev": [
        st.builds(Op, st.just("rename"), st.just(("openai", "models", "gpt-4o-mini")), st.none(), PADDED_IDS)
    ],
    "genai-prices": [st.builds(Op, st.just("set"), st.just((0, "models", 1, "id")), PADDED_IDS)],
}  # fmt: skip


def cell_text(value: Any) -> Decimal | str:
    if isinstance(value, Decimal):
        return value.quantize(Decimal(1).scaleb(-9), context=_EXACT).normalize(_EXACT)
    return str(value)


PRICE_TALLY = Tally()
REFUSED_BY_GENAI: Counter[str] = Counter()


@pytest.mark.parametrize("source", list(PRICE_SEEDS))
def test_generated_price_databases(source, tmp_path, figure):
    seed_path = DATA / "sources" / PRICE_SEEDS[source]
    targets = PRICE_TARGETS[source]

    def focus() -> st.SearchStrategy[Op]:
        return st.one_of(
            st.sampled_from(range(len(targets))).flatmap(
                lambda n: st.builds(Op, st.just("valid"), st.just(targets[n][0]), targets[n][1])
            ),
            *PRICE_FOCUS[source],
        )

    out = tmp_path / "sheet.csv"

    @settings(max_examples=examples(60))
    @given(case=json_cases(seed_path, focus))
    def check(case: Case) -> None:
        PRICE_TALLY.cases[source] += 1
        for leftover in tmp_path.iterdir():
            if leftover.name.startswith(("sheet", ".sheet")):
                leftover.unlink()
        path = tmp_path / "source.json"
        path.write_bytes(case.data)
        if source == "genai-prices":  # no FILE: the bundled data, here the mutated fixture
            try:
                providers = genai_types._providers_from_raw(json.loads(case.data.decode("utf-8-sig")))
            except Exception:  # refused by genai-prices' own parser: not costlens's input
                REFUSED_BY_GENAI[source] += 1
                return
            with mock.patch.object(genai_prices.data, "providers", providers):
                result = invoke("pricing", "import", source, "--out", out)
            assert "Traceback" not in result.stdout + result.stderr, result.stderr
            assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
            accepted = result.exit_code == 0
            if not accepted:  # no file to name: the package's data
                (line,) = result.stderr.strip().splitlines()
                assert line.startswith("costlens: error: ") and "internal error" not in line, line
        else:
            result = invoke("pricing", "import", source, path, "--out", out)
            accepted = assert_outcome(result, path, {0})
        left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".sheet"))
        assert not left, f"temporary files left behind: {left}"
        if not accepted:
            assert not out.exists(), "a source that was refused wrote a sheet"
            return
        PRICE_TALLY.accepted[source] += 1
        assert out.exists()
        try:  # what an import writes, costlens reads
            load_price_table([out], [])
        except CostlensError as e:
            pytest.fail(f"the imported sheet does not load: {e}")
        rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
        op = case.only_valid
        if op is None:
            return
        (target,) = [t for t in targets if t[0] == op.path]
        _, _, model, column, cell_of = target
        wanted = cell_of(op.value)
        mine = [r for r in rows if r["model"] == model and r["service_tier"] == "standard" and not r["match"]
                and r["min_prompt_tokens"] == "0" and not r["effective_from"]]  # fmt: skip
        if column == "min_prompt_tokens":  # a context tier: its row starts above the size
            assert any(r["model"] == model and r[column] == wanted for r in rows), (wanted, rows)
            PRICE_TALLY.checked[source] += 1
            return
        if column == "context_window" and number(op.value) == 0:
            assert all(r[column] == "" for r in mine), mine  # 0 = unknown
        elif column == "context_window":
            assert mine and all(r[column] == wanted for r in mine), (wanted, mine)
        else:
            assert mine and all(
                r[column] and cell_text(Decimal(r[column])) == cell_text(wanted) for r in mine
            ), (
                wanted,
                mine,
            )
        PRICE_TALLY.checked[source] += 1

    check()
    if source == list(PRICE_SEEDS)[-1]:
        figure(
            "hostile input, generated: price databases for `pricing import` (LiteLLM, OpenRouter, models.dev "
            "files; genai-prices data through its own parser), each a valid sample mutated by hypothesis "
            "(wrong types, numeric strings, negative, fractional, > 2^63 and out-of-range numbers, "
            "NaN/Infinity tokens, null, lists, objects, keys deleted or added, prices and context windows set, "
            "truncation, BOM, CRLF, non-UTF-8 bytes)",
            cases=sum(PRICE_TALLY.cases.values()),
            held=f"{PRICE_TALLY.line(list(PRICE_SEEDS))}; {sum(REFUSED_BY_GENAI.values())} genai cases refused by "
            "genai-prices' parser: exit 0 or 2, never 4 nor a traceback; each error one line naming the file "
            "and JSON path or line, no sheet and no temporary file written; each accepted source wrote a "
            "sheet costlens reads back, a price or context window set to a valid value in its cell",
        )
