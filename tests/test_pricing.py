"""The price table: shipped figures, every rejection with its place, layering, and DuckDB round-trip."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costlens.errors import PricingError
from costlens.money.pricing import (
    PRICE_COLUMNS,
    REQUIRED_COLUMNS,
    SERVICE_TIERS,
    PriceRow,
    PriceTable,
    alias_warnings,
    default_aliases_path,
    default_pricing_path,
    load_price_table,
    price_rows_for_display,
    read_alias_file,
    read_price_file,
    register_prices,
)

REPO = Path(__file__).resolve().parent.parent

# Figures from the seed page chat-completions-api.txt ("Popular Models for Chat" and "Popular Models").
SEED = {
    "gpt-4o": ("1.25", "5.00", "OpenAI", 128000),
    "gpt-4o-mini": ("0.075", "0.30", "OpenAI", 128000),
    "gpt-4.1": ("1.00", "4.00", "OpenAI", 1000000),
    "claude-3-5-sonnet-20241022": ("1.50", "7.50", "Anthropic", 200000),
    "claude-3-5-haiku-20241022": ("0.40", "2.00", "Anthropic", None),
    "gemini-2.5-flash-preview-05-20": ("0.075", "0.30", "Google", None),
    "deepseek-chat": ("0.007", "0.014", "DeepSeek", 64000),
    "llama-3.3-70b-instruct": ("0.05", "0.16", "Meta", 131000),
    "gemini-2.0-flash": ("0.05", "0.20", "Google", 1000000),
}

# Columns 1..10 of the small files written by the rejection tests.
HEADER = (
    "model,provider,input_per_1m,output_per_1m,context_window,"
    "min_prompt_tokens,service_tier,effective_from,effective_to,currency"
)
GOOD = "gpt-4o,OpenAI,1.25,5.00,128000,0,standard,,,USD"


def write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def row(**cells: str) -> str:
    """GOOD with some cells replaced, by HEADER column name."""
    names = HEADER.split(",")
    values = dict(zip(names, GOOD.split(","), strict=True))
    values.update(cells)
    return ",".join(values[name] for name in names)


def one_row(tmp_path: Path, **cells: str) -> PriceRow:
    rows, _ = read_price_file(write(tmp_path, f"{HEADER}\n{row(**cells)}\n"))
    assert len(rows) == 1
    return rows[0]


def rejects(path: Path, *, line: int, column: int | None, reason: str) -> PricingError:
    with pytest.raises(PricingError) as info:
        read_price_file(path)
    err = info.value
    assert (err.file, err.line, err.column) == (str(path), line, column)
    assert reason in err.reason
    return err


# --- The shipped tables -------------------------------------------------------------------


def test_default_paths_are_the_repo_data_files() -> None:
    assert default_pricing_path() == REPO / "data" / "pricing.csv"
    assert default_aliases_path() == REPO / "data" / "model_aliases.csv"


def test_shipped_csv_header_is_exactly_price_columns() -> None:
    first_line = default_pricing_path().read_text(encoding="utf-8").splitlines()[0]
    assert tuple(first_line.split(",")) == PRICE_COLUMNS
    assert set(REQUIRED_COLUMNS) <= set(PRICE_COLUMNS)
    assert SERVICE_TIERS == ("standard", "batch", "flex", "priority")


def test_shipped_prices_are_the_seed_figures() -> None:
    rows, source = read_price_file(default_pricing_path())
    assert source.rows == 9
    assert len(source.sha256) == 64
    by_model = {r.model: r for r in rows}
    assert sorted(by_model) == sorted(SEED)
    for model, (input_price, output_price, provider, context) in SEED.items():
        r = by_model[model]
        assert r.input_per_1m == Decimal(input_price), model
        assert r.output_per_1m == Decimal(output_price), model
        assert isinstance(r.input_per_1m, Decimal)
        assert r.provider == provider, model
        assert r.context_window == context, model
        assert (r.cached_input_per_1m, r.cache_write_per_1m, r.reasoning_per_1m) == (None, None, None)
        assert (r.service_tier, r.min_prompt_tokens, r.currency) == ("standard", 0, "USD")
        assert (r.effective_from, r.effective_to) == (None, None)
        assert r.source is not None and r.source.startswith("seed: chat-completions-api.txt")
    assert by_model["deepseek-chat"].input_per_1m == Decimal("0.007")
    assert "inferred" in (by_model["gemini-2.0-flash"].source or "")


def test_shipped_aliases_all_point_at_priced_models() -> None:
    table = load_price_table([default_pricing_path()], [default_aliases_path()])
    aliases = dict(table.aliases)
    assert aliases["gpt-4o-2024-08-06"] == "gpt-4o"
    assert aliases["gpt-4o-mini-2024-07-18"] == "gpt-4o-mini"
    assert aliases["claude-3-5-sonnet-latest"] == "claude-3-5-sonnet-20241022"
    assert aliases["gemini-2.0-flash-001"] == "gemini-2.0-flash"
    priced = {r.model for r in table.rows}
    assert {model for _, model in table.aliases} <= priced
    assert not any(alias in priced for alias in aliases)
    assert all(alias == alias.lower() and "/" not in alias for alias in aliases)
    assert alias_warnings(table) == []
    assert [s.path for s in table.sources] == [str(default_pricing_path()), str(default_aliases_path())]


# --- Accepted cells -----------------------------------------------------------------------


def test_empty_price_cell_is_none_and_zero_is_free(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model,input_per_1m,output_per_1m,cached_input_per_1m,reasoning_per_1m\nm,0,0.50,,0.000\n",
    )
    (r,), _ = read_price_file(path)
    assert r.input_per_1m == Decimal("0") and r.input_per_1m is not None
    assert r.cached_input_per_1m is None
    assert r.reasoning_per_1m == Decimal("0")
    assert r.cache_write_per_1m is None  # column absent = not priced
    shown = price_rows_for_display(PriceTable(rows=(r,), aliases=(), sources=()))[0]
    assert (shown["input_per_1m"], shown["cached_input_per_1m"], shown["output_per_1m"]) == ("0", "", "0.5")


def test_defaults_for_absent_or_empty_cells(tmp_path: Path) -> None:
    r = one_row(tmp_path, provider="", context_window="", min_prompt_tokens="", service_tier="", currency="")
    assert (r.provider, r.context_window, r.min_prompt_tokens) == (None, None, 0)
    assert (r.service_tier, r.currency, r.source) == ("standard", "USD", None)
    assert (r.file, r.line) == (str(tmp_path / "prices.csv"), 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-3", Decimal("0.001")),
        ("1E+2", Decimal("100")),
        (".5", Decimal("0.5")),
        ("0.123000000000", Decimal("0.123")),  # trailing zeros are not decimal places
        ("0.000000001", Decimal("0.000000001")),
        ("999999.123456789", Decimal("999999.123456789")),
    ],
)
def test_plain_and_exponent_decimals_are_exact(tmp_path: Path, text: str, expected: Decimal) -> None:
    assert one_row(tmp_path, input_per_1m=text).input_per_1m == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01", datetime(2025, 1, 1)),
        ("2025-01-01T12:30:00", datetime(2025, 1, 1, 12, 30)),
        ("2025-01-01T12:30:00Z", datetime(2025, 1, 1, 12, 30)),
        ("2025-01-01T02:00:00+02:00", datetime(2025, 1, 1, 0, 0)),
        ("2025-01-01T00:00:00-05:00", datetime(2025, 1, 1, 5, 0)),
    ],
)
def test_dates_become_naive_utc(tmp_path: Path, text: str, expected: datetime) -> None:
    r = one_row(tmp_path, effective_from=text)
    assert r.effective_from == expected
    assert r.effective_from.tzinfo is None


def test_bom_crlf_blank_lines_and_case_insensitive_header(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfModel,Input_Per_1M,output_per_1m\r\n\r\ngpt-4o,1.25,5\r\n,,\r\nm2,1,2\r\n")
    rows, source = read_price_file(path)
    assert [(r.model, r.line) for r in rows] == [("gpt-4o", 3), ("m2", 5)]
    assert source.rows == 2


def test_quoted_multiline_record_keeps_physical_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, 'model,input_per_1m,output_per_1m,source\nm1,1,2,"two\nlines"\nm2,1,$2,\n')
    rejects(path, line=4, column=3, reason="bad number '$2'")


# --- Rejections, each at its line and column ----------------------------------------------


@pytest.mark.parametrize(
    ("cells", "column", "reason"),
    [
        ({"model": ""}, 1, "empty model"),
        (
            {"input_per_1m": "$1.25"},
            3,
            "bad number '$1.25' for input_per_1m: write plain decimals without '$', e.g. 1.25",
        ),
        ({"input_per_1m": "nan"}, 3, "bad number 'nan' for input_per_1m: prices must be finite"),
        ({"output_per_1m": "inf"}, 4, "bad number 'inf' for output_per_1m: prices must be finite"),
        ({"output_per_1m": "-Infinity"}, 4, "prices must be finite"),
        ({"input_per_1m": "abc"}, 3, "bad number 'abc' for input_per_1m"),
        ({"input_per_1m": "1_000"}, 3, "bad number '1_000'"),
        ({"input_per_1m": '"1,25"'}, 3, "bad number '1,25'"),
        ({"input_per_1m": "1.2.3"}, 3, "bad number '1.2.3'"),
        ({"output_per_1m": "0.0000000001"}, 4, "has 10 decimal places; at most 9"),
        ({"output_per_1m": "1e-10"}, 4, "has 10 decimal places"),
        ({"input_per_1m": "1000000"}, 3, "too large"),
        ({"input_per_1m": "-0.5"}, 3, "negative price '-0.5' for input_per_1m"),
        ({"context_window": "128K"}, 5, "bad integer '128K' for context_window"),
        ({"context_window": "0"}, 5, "bad integer '0' for context_window: expected a whole number >= 1"),
        ({"context_window": "1.5"}, 5, "bad integer '1.5'"),
        (
            {"min_prompt_tokens": "-5"},
            6,
            "bad integer '-5' for min_prompt_tokens: expected a whole number >= 0",
        ),
        ({"service_tier": "fast"}, 7, "unknown service_tier 'fast' (valid: standard, batch, flex, priority)"),
        ({"effective_from": "2025-13-01"}, 8, "bad date '2025-13-01' for effective_from"),
        ({"effective_from": "01/02/2025"}, 8, "bad date '01/02/2025'"),
        ({"effective_to": "2025-01-01 00:00"}, 9, "bad date '2025-01-01 00:00' for effective_to"),
        (
            {"effective_from": "2025-02-01", "effective_to": "2025-01-01"},
            9,
            "effective_from '2025-02-01' is not before effective_to '2025-01-01'",
        ),
        ({"effective_from": "2025-01-01", "effective_to": "2025-01-01T00:00:00Z"}, 9, "is not before"),
        ({"currency": "EUR"}, 10, "unsupported currency 'EUR': only USD is supported"),
    ],
)
def test_bad_cell_is_rejected_at_its_line_and_column(
    tmp_path: Path, cells: dict[str, str], column: int, reason: str
) -> None:
    # Two good rows and a blank line first, so the bad record is on physical line 5.
    text = f"{HEADER}\n{row(model='a')}\n\n{row(model='b')}\n{row(**cells)}\n"
    rejects(write(tmp_path, text), line=5, column=column, reason=reason)


def test_unknown_column_is_rejected_in_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "model,input_per_1m,output_per_1m,imput_per_1m\nm,1,2,3\n")
    err = rejects(path, line=1, column=4, reason="unknown column 'imput_per_1m'")
    assert str(err).startswith(f"{path}:1:4: unknown column")


def test_header_row_is_required(tmp_path: Path) -> None:
    rejects(write(tmp_path, "gpt-4o,1.25,5.00\n"), line=1, column=1, reason="unknown column 'gpt-4o'")
    rejects(write(tmp_path, "\n\n"), line=1, column=None, reason="empty file")


def test_duplicate_column_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "model,input_per_1m,output_per_1m,input_per_1m\n")
    rejects(path, line=1, column=4, reason="duplicate column 'input_per_1m' (also column 2)")


def test_missing_required_column_has_no_column_number(tmp_path: Path) -> None:
    path = write(tmp_path, "model,input_per_1m,provider\nm,1,x\n")
    rejects(path, line=1, column=None, reason="missing required column 'output_per_1m'")
    path = write(tmp_path, "provider\nx\n")
    rejects(
        path, line=1, column=None, reason="missing required columns 'model', 'input_per_1m', 'output_per_1m'"
    )


def test_wrong_number_of_fields(tmp_path: Path) -> None:
    too_many = write(tmp_path, f"{HEADER}\n{GOOD},extra\n")
    rejects(too_many, line=2, column=11, reason="wrong number of fields: expected 10, got 11")
    too_few = write(tmp_path, f"{HEADER}\n{GOOD}\ngpt-4o-mini,OpenAI,1\n")
    rejects(too_few, line=3, column=4, reason="wrong number of fields: expected 10, got 3")


def test_malformed_csv_and_bad_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, 'model,input_per_1m,output_per_1m\nm,"1"x,2\n')
    rejects(path, line=2, column=None, reason="malformed CSV")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"model,input_per_1m,output_per_1m\nm\xe9,1,2\n")
    rejects(latin, line=2, column=None, reason="not UTF-8")
    with pytest.raises(PricingError, match="cannot read file"):
        read_price_file(tmp_path / "missing.csv")


# --- Effective-date overlaps --------------------------------------------------------------


def dated(model: str, start: str, end: str, tier: str = "standard", min_tokens: str = "0") -> str:
    return row(
        model=model, effective_from=start, effective_to=end, service_tier=tier, min_prompt_tokens=min_tokens
    )


def test_overlap_names_both_lines_and_is_reported_at_the_later(tmp_path: Path) -> None:
    text = "\n".join(
        [
            HEADER,
            row(model="deepseek-chat"),
            dated("gpt-4o", "", "2025-02-01"),
            row(model="gpt-4o-mini"),
            "",
            "",
            dated("gpt-4o", "2025-01-15", "2025-03-01"),
            dated("gpt-4o", "2025-03-01", ""),
        ]
    )
    rejects(
        write(tmp_path, text + "\n"),
        line=7,
        column=8,
        reason="overlapping effective dates for gpt-4o/standard/min_prompt_tokens=0: lines 3 and 7",
    )


def test_duplicate_unbounded_rows_overlap_case_insensitively(tmp_path: Path) -> None:
    text = f"{HEADER}\n{row(model='gpt-4o')}\n{row(model='GPT-4o')}\n"
    rejects(write(tmp_path, text), line=3, column=8, reason="lines 2 and 3")


def test_adjacent_ranges_and_other_keys_do_not_overlap(tmp_path: Path) -> None:
    text = "\n".join(
        [
            HEADER,
            dated("gpt-4o", "", "2025-01-01"),
            dated("gpt-4o", "2025-01-01", "2025-02-01T00:00:00Z"),
            dated("gpt-4o", "2025-02-01", ""),
            dated("gpt-4o", "", "", tier="batch"),
            dated("gpt-4o", "", "", min_tokens="200000"),
        ]
    )
    rows, _ = read_price_file(write(tmp_path, text + "\n"))
    assert len(rows) == 5


# --- Aliases ------------------------------------------------------------------------------


def alias_rejects(path: Path, *, line: int, column: int | None, reason: str) -> None:
    with pytest.raises(PricingError) as info:
        read_alias_file(path)
    assert (info.value.file, info.value.line, info.value.column) == (str(path), line, column)
    assert reason in info.value.reason


def test_alias_file_errors(tmp_path: Path) -> None:
    alias_rejects(
        write(tmp_path, "alias\nx\n", "a.csv"), line=1, column=None, reason="missing required column 'model'"
    )
    alias_rejects(
        write(tmp_path, "alias,model,note\n", "a.csv"), line=1, column=3, reason="unknown column 'note'"
    )
    alias_rejects(write(tmp_path, "alias,model\n,gpt-4o\n", "a.csv"), line=2, column=1, reason="empty alias")
    alias_rejects(write(tmp_path, "alias,model\nx,\n", "a.csv"), line=2, column=2, reason="empty model")
    alias_rejects(
        write(tmp_path, "alias,model\nGPT-4o,gpt-4o\n", "a.csv"), line=2, column=2, reason="maps to itself"
    )
    alias_rejects(
        write(tmp_path, "alias,model\nx,a,b\n", "a.csv"), line=2, column=3, reason="wrong number of fields"
    )
    alias_rejects(
        write(tmp_path, "alias,model\nlatest,gpt-4o\nother,gpt-4.1\nLATEST,gpt-4o-mini\n", "a.csv"),
        line=4,
        column=2,
        reason="alias 'LATEST' maps to 'gpt-4o' on line 2 and to 'gpt-4o-mini' on line 4",
    )


def test_repeated_alias_to_same_model_is_kept_once(tmp_path: Path) -> None:
    pairs, source = read_alias_file(write(tmp_path, "alias,model\nx,gpt-4o\nX,GPT-4o\ny,gpt-4o\n", "a.csv"))
    assert pairs == [("x", "gpt-4o"), ("y", "gpt-4o")]
    assert source.rows == 2


def test_alias_warnings_name_unpriced_targets(tmp_path: Path) -> None:
    prices = write(tmp_path, "model,input_per_1m,output_per_1m\ngpt-4o,1,2\n")
    aliases = write(tmp_path, "alias,model\nsnap,GPT-4o\nghost,no-such-model\n", "a.csv")
    table = load_price_table([prices], [aliases])
    assert alias_warnings(table) == ["alias 'ghost' points to 'no-such-model', which has no price row"]


# --- Layering -----------------------------------------------------------------------------


def test_later_file_replaces_every_row_of_a_model_and_keeps_others(tmp_path: Path) -> None:
    base = write(
        tmp_path,
        "\n".join(
            [
                "model,input_per_1m,output_per_1m,effective_from,effective_to",
                "gpt-4o,2.50,10,,2025-01-01",
                "gpt-4o,1.25,5,2025-01-01,",
                "deepseek-chat,0.007,0.014,,",
            ]
        )
        + "\n",
        "base.csv",
    )
    override = write(
        tmp_path,
        "model,input_per_1m,output_per_1m,service_tier\nGPT-4O,2,8,standard\nGPT-4O,1,4,batch\nnew-model,3,6,\n",
        "override.csv",
    )
    aliases_a = write(tmp_path, "alias,model\nsnap,gpt-4o\nkeep,deepseek-chat\n", "a1.csv")
    aliases_b = write(tmp_path, "alias,model\nSNAP,new-model\n", "a2.csv")
    table = load_price_table([base, override], [aliases_a, aliases_b])

    got = [(r.model, r.service_tier, r.input_per_1m, r.file, r.line) for r in table.rows]
    assert got == [
        ("deepseek-chat", "standard", Decimal("0.007"), str(base), 4),
        ("GPT-4O", "standard", Decimal("2"), str(override), 2),
        ("GPT-4O", "batch", Decimal("1"), str(override), 3),
        ("new-model", "standard", Decimal("3"), str(override), 4),
    ]
    assert table.aliases == (("keep", "deepseek-chat"), ("SNAP", "new-model"))
    assert [(s.path, s.rows) for s in table.sources] == [
        (str(base), 3),
        (str(override), 3),
        (str(aliases_a), 2),
        (str(aliases_b), 1),
    ]


def test_merged_rows_sort_deterministically(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\n".join(
            [
                "model,input_per_1m,output_per_1m,service_tier,min_prompt_tokens,effective_from,effective_to",
                "b,1,1,standard,0,2025-01-01,",
                "b,1,1,standard,0,,2025-01-01",
                "b,1,1,standard,200000,,",
                "b,1,1,batch,0,,",
                "A,1,1,priority,0,,",
            ]
        )
        + "\n",
    )
    table = load_price_table([path], [])
    assert [r.line for r in table.rows] == [6, 3, 2, 4, 5]
    assert load_price_table([path], []) == table


def test_no_files_gives_an_empty_table() -> None:
    assert load_price_table([], []) == PriceTable(rows=(), aliases=(), sources=())


# --- DuckDB and display -------------------------------------------------------------------


def test_register_prices_round_trips_exact_decimals() -> None:
    table = load_price_table([default_pricing_path()], [default_aliases_path()])
    conn = duckdb.connect()
    register_prices(conn, table)
    register_prices(conn, table)  # idempotent: CREATE OR REPLACE

    schema = conn.execute('SELECT column_name, column_type, "null" FROM (DESCRIBE prices)').fetchall()
    assert schema == [
        ("price_id", "INTEGER", "NO"),
        ("sheet", "INTEGER", "NO"),
        ("model", "VARCHAR", "NO"),
        ("model_key", "VARCHAR", "NO"),
        ("provider", "VARCHAR", "YES"),
        ("context_window", "BIGINT", "YES"),
        ("input_per_1m", "DECIMAL(38,9)", "YES"),
        ("output_per_1m", "DECIMAL(38,9)", "YES"),
        ("cached_input_per_1m", "DECIMAL(38,9)", "YES"),
        ("cache_write_per_1m", "DECIMAL(38,9)", "YES"),
        ("cache_write_1h_per_1m", "DECIMAL(38,9)", "YES"),
        ("reasoning_per_1m", "DECIMAL(38,9)", "YES"),
        ("per_request_usd", "DECIMAL(38,9)", "YES"),
        ("service_tier", "VARCHAR", "NO"),
        ("min_prompt_tokens", "BIGINT", "NO"),
        ("effective_from", "TIMESTAMP", "YES"),
        ("effective_to", "TIMESTAMP", "YES"),
        ("currency", "VARCHAR", "NO"),
        ("source", "VARCHAR", "YES"),
        ("price_file", "VARCHAR", "NO"),
        ("price_line", "INTEGER", "NO"),
    ]
    got = conn.execute(
        "SELECT input_per_1m, output_per_1m, typeof(input_per_1m), cached_input_per_1m, price_line "
        "FROM prices WHERE model = 'deepseek-chat'"
    ).fetchall()
    assert got == [(Decimal("0.007000000"), Decimal("0.014000000"), "DECIMAL(38,9)", None, 8)]
    ids = conn.execute("SELECT price_id, model FROM prices ORDER BY price_id").fetchall()
    assert ids == [(i, r.model) for i, r in enumerate(table.rows, start=1)]
    # Exact arithmetic in SQL: 1,000 deepseek input tokens cost 0.000007 USD. Multiply by 0.000001:
    # DuckDB's `/` on DECIMAL returns DOUBLE.
    cost = conn.execute(
        "SELECT input_per_1m * 1000 * 0.000001, typeof(input_per_1m * 1000 * 0.000001) "
        "FROM prices WHERE model = 'deepseek-chat'"
    )
    assert cost.fetchone() == (Decimal("0.000007000000000"), "DECIMAL(38,15)")
    aliases = conn.execute("SELECT alias, model FROM model_aliases ORDER BY alias").fetchall()
    assert aliases == sorted(table.aliases)
    assert conn.execute("SELECT count(*) FROM prices").fetchone() == (9,)


def test_register_prices_keeps_extremes_and_timestamps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model,input_per_1m,output_per_1m,effective_from,effective_to\n"
        "big,999999.123456789,0.000000001,2025-01-01T12:00:00+01:00,2026-01-01\n",
    )
    conn = duckdb.connect()
    register_prices(conn, load_price_table([path], []))
    got = conn.execute(
        "SELECT input_per_1m, output_per_1m, effective_from, effective_to FROM prices"
    ).fetchall()
    assert got == [
        (
            Decimal("999999.123456789"),
            Decimal("0.000000001"),
            datetime(2025, 1, 1, 11, 0),
            datetime(2026, 1, 1),
        )
    ]


def test_price_rows_for_display(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model,input_per_1m,output_per_1m,effective_from,effective_to,context_window\n"
        "m,1E+2,5.00,2025-01-01,2025-06-01T12:30:00Z,128000\n",
    )
    (shown,) = price_rows_for_display(load_price_table([path], []))
    assert list(shown) == [*PRICE_COLUMNS, "file", "line", "sheet"]
    assert (shown["match"], shown["sheet"]) == ("", "main")
    assert shown["input_per_1m"] == "100"
    assert shown["output_per_1m"] == "5"
    assert shown["effective_from"] == "2025-01-01"
    assert shown["effective_to"] == "2025-06-01T12:30:00"
    assert (shown["context_window"], shown["provider"], shown["service_tier"]) == ("128000", "", "standard")
    assert (shown["file"], shown["line"]) == (str(path), "2")


@given(
    st.decimals(
        min_value=Decimal(0),
        max_value=Decimal("999999.999999999"),
        places=9,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_any_nine_place_price_parses_exactly_and_displays_plainly(
    tmp_path_factory: pytest.TempPathFactory, value: Decimal
) -> None:
    path = tmp_path_factory.mktemp("h") / "p.csv"
    path.write_text(f"model,input_per_1m,output_per_1m\nm,{value},{value}\n", encoding="utf-8")
    (r,), _ = read_price_file(path)
    assert r.input_per_1m == value
    shown = price_rows_for_display(PriceTable(rows=(r,), aliases=(), sources=()))[0]["input_per_1m"]
    assert "E" not in shown.upper()
    assert Decimal(shown) == value
