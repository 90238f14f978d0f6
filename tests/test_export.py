"""Exports: exact column set and order, money as plain decimals (DECIMAL in Parquet), CSV formula
guarding, filters, and the atomic write."""

from __future__ import annotations

import csv
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers import Lines, write_jsonl

from costlens.cli import cli
from costlens.money.filters import Filters
from costlens.report import export as export_module
from costlens.report.export import EXPORT_COLUMNS, export_rows
from costlens.session import Settings, open_session

COLUMNS = [name for name, _ in EXPORT_COLUMNS]
JAN = 1705276800  # 2024-01-15 00:00:00 UTC
JUN = 1718409600  # 2024-06-15 00:00:00 UTC
FORMULAS = ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "\tTAB", "\rCR"]


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion}


@pytest.fixture(scope="module")
def two_runs_db(tmp_path_factory):
    """Run 1 (January): formula-like ids and users, 1 output token of deepseek-chat, a 1,250 USD row,
    an unpriced model. Run 2 (June): two plain rows. Built once; each test gets a copy."""
    lines = Lines()
    tmp = tmp_path_factory.mktemp("two_runs")
    january = [
        lines.chat('=HYPERLINK("x")', model="deepseek-chat", usage=usage(0, 1), created=JAN),
        lines.chat("+1", model="gpt-4o", usage=usage(1_000_000_000, 0), created=JAN),
        lines.chat("-2", model="gpt-4o-mini", usage=usage(1_000_000, 0), created=JAN),
        lines.chat("@SUM(A1)", model="mystery-model", usage=usage(10, 10), created=JAN),
        lines.chat("\tTAB", model="deepseek-chat", usage=usage(0, 0), created=JAN),
        lines.chat("\rCR", model="deepseek-chat", usage=usage(0, 0), created=JAN),
        lines.chat("plain", model="deepseek-chat", usage=usage(1000, 0), created=JAN),
    ]
    requests = [
        {"custom_id": cid, "body": {"model": "deepseek-chat", "messages": [{"role": "user", "content": "x"}],
                                    "user": user, "stop": ["=1+1"]}}
        for cid, user in [('=HYPERLINK("x")', "=cmd|' /C calc'!A0"), ("+1", "+1"), ("-2", "-2"),
                          ("@SUM(A1)", "@SUM(A1)"), ("plain", "alice")]
    ]  # fmt: skip
    june = [
        lines.chat("june-1", model="deepseek-chat", usage=usage(2, 3), created=JUN),
        lines.chat("june-2", model="deepseek-chat", usage=usage(4, 5), created=JUN + 3600),
    ]
    db = tmp / "template.duckdb"
    env = {"COSTLENS_DB": str(db), "COSTLENS_PRICING": None}
    runner = CliRunner()
    for args in (
        ["replay", str(write_jsonl(tmp / "january.jsonl", january)),
         "--requests", str(write_jsonl(tmp / "requests.jsonl", requests))],
        ["replay", str(write_jsonl(tmp / "june.jsonl", june))],
    ):  # fmt: skip
        result = runner.invoke(cli, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
    return db


@pytest.fixture
def two_runs(two_runs_db, db_path):
    shutil.copyfile(two_runs_db, db_path)


def export(invoke, fmt: str, out: Path, *filters: str) -> str:
    result = invoke("export", "--format", fmt, "--out", out, *filters)
    assert result.exit_code == 0, result.stderr
    return result.stderr


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        assert header == COLUMNS
        return [dict(zip(header, row, strict=True)) for row in reader]


def read_jsonl(path: Path) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        assert list(row) == COLUMNS
    return rows


def read_parquet(path: Path) -> list[dict[str, object]]:
    table = pq.read_table(path)
    assert table.column_names == COLUMNS
    return table.to_pylist()


def test_column_names_are_unique_and_documented_order_is_stable():
    assert len(COLUMNS) == len(set(COLUMNS)) == 51
    assert COLUMNS[:4] == ["run_id", "request_id", "custom_id", "line_no"]
    # The first 44 are the columns as first documented; later additions only ever go at the end.
    # Token counts take the README's vocabulary (input/output), not the wire's (prompt/completion).
    assert COLUMNS[15:18] == ["input_tokens", "output_tokens", "total_tokens"]
    assert not {"prompt_tokens", "completion_tokens", "errors"} & set(COLUMNS)
    assert COLUMNS[42:44] == ["source_format", "source_line_no"]
    assert COLUMNS[44:] == [
        "cache_write_1h_tokens",
        "request_cost_usd",
        "price_sheet",
        "price_match",
        "simulated",
        "reported_cost_usd",
        "reported_cost_source",
    ]


@pytest.mark.usefixtures("two_runs")
def test_csv_money_is_plain_decimal_text_and_formulas_are_guarded(invoke, tmp_path):
    out = tmp_path / "costs.csv"
    assert export(invoke, "csv", out) == f"wrote 9 rows to {out}\n"
    rows = read_csv(out)
    by_id = {r["custom_id"]: r for r in rows}

    assert [r["custom_id"] for r in rows] == ["'" + f for f in FORMULAS[:4]] + [
        "'\tTAB",
        "'\rCR",
        "plain",
        "june-1",
        "june-2",
    ]

    deepseek = by_id['\'=HYPERLINK("x")']
    assert (deepseek["input_cost_usd"], deepseek["output_cost_usd"], deepseek["cost_usd"]) == (
        "0",
        "0.000000014",
        "0.000000014",
    )
    assert by_id["'+1"]["cost_usd"] == "1250"  # trailing zeros trimmed, not integer ones
    assert by_id["'-2"]["cost_usd"] == "0.075"
    assert by_id["plain"]["cost_usd"] == "0.000007"
    assert (by_id["'@SUM(A1)"]["cost_usd"], by_id["'@SUM(A1)"]["priced"]) == ("", "false")
    assert by_id["'@SUM(A1)"]["price_note"] == "unpriced: unknown model"
    for row in rows:
        for name, kind in EXPORT_COLUMNS:
            if kind == "money" and row[name]:
                assert "e" not in row[name].lower() and Decimal(row[name]) >= 0

    # Users come from the requests file; they are guarded too, as is JSON text.
    assert by_id['\'=HYPERLINK("x")']["user"] == "'=cmd|' /C calc'!A0"
    assert [by_id[k]["user"] for k in ("'+1", "'-2", "'@SUM(A1)", "plain", "june-1")] == [
        "'+1", "'-2", "'@SUM(A1)", "alice", "",
    ]  # fmt: skip
    assert by_id["plain"]["stop"] == '["=1+1"]'  # starts with '[': nothing to guard
    # Numbers are never prefixed, even though they could start with '-'.
    assert by_id["'-2"]["input_tokens"] == "1000000"


@pytest.mark.usefixtures("two_runs")
def test_jsonl_money_is_a_string_and_text_is_untouched(invoke, tmp_path):
    out = tmp_path / "costs.jsonl"
    export(invoke, "jsonl", out)
    rows = read_jsonl(out)
    by_id = {r["custom_id"]: r for r in rows}
    assert [r["custom_id"] for r in rows] == [*FORMULAS, "plain", "june-1", "june-2"]
    assert by_id['=HYPERLINK("x")']["cost_usd"] == "0.000000014"
    assert by_id['=HYPERLINK("x")']["input_cost_usd"] == "0"
    assert by_id["+1"]["cost_usd"] == "1250"
    assert by_id["@SUM(A1)"]["cost_usd"] is None
    assert by_id["@SUM(A1)"]["priced"] is False
    assert by_id["-2"]["user"] == "-2"
    assert by_id["june-1"]["finish_reasons"] == ["stop"]
    assert (by_id["june-1"]["input_tokens"], by_id["june-1"]["run_id"]) == (2, 2)


@pytest.mark.usefixtures("two_runs")
def test_parquet_keeps_decimal_money_and_raw_text(invoke, tmp_path):
    out = tmp_path / "costs.parquet"
    export(invoke, "parquet", out)
    schema = pq.read_schema(out)
    for name, kind in EXPORT_COLUMNS:
        if kind == "money":
            assert schema.field(name).type == pa.decimal128(38, 15), name
    rows = read_parquet(out)
    by_id = {r["custom_id"]: r for r in rows}
    assert by_id['=HYPERLINK("x")']["cost_usd"] == Decimal("0.000000014")
    assert by_id["+1"]["cost_usd"] == Decimal(1250)
    assert by_id["@SUM(A1)"]["cost_usd"] is None
    assert by_id["+1"]["user"] == "+1"


@pytest.mark.usefixtures("two_runs")
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ((), 9),
        (("--run", "2"), ["june-1", "june-2"]),
        (("--run", "1", "--run", "2"), 9),
        (("--since", "2024-03-01"), ["june-1", "june-2"]),
        (("--until", "2024-03-01"), 7),
        # since is inclusive, until exclusive
        (("--since", "2024-06-15T00:00:00Z", "--until", "2024-06-15T01:00"), ["june-1"]),
        (("--since", "2024-06-15T02:00+02:00", "--until", "2024-06-15T01:00:01"), ["june-1", "june-2"]),
        (("--until", "2024-01-15"), []),
        (("--run", "1", "--since", "2024-03-01"), []),
        (("--model", "gpt-4o"), ["+1"]),
    ],
)
def test_filters_select_the_right_rows(invoke, tmp_path, filters, expected):
    out = tmp_path / "f.jsonl"
    message = export(invoke, "jsonl", out, *filters)
    ids = [r["custom_id"] for r in read_jsonl(out)] if out.read_text() else []
    if isinstance(expected, int):
        assert len(ids) == expected
    else:
        assert ids == expected
    assert message == f"wrote {len(ids)} rows to {out}\n"


@pytest.mark.usefixtures("two_runs")
def test_an_empty_selection_still_writes_the_header(invoke, tmp_path):
    out = tmp_path / "none.csv"
    export(invoke, "csv", out, "--run", "99")
    assert out.read_text(encoding="utf-8").splitlines() == [",".join(COLUMNS)]


@pytest.mark.usefixtures("two_runs")
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_write_replaces_the_file_and_leaves_no_temp_file(invoke, tmp_path, fmt):
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    out = out_dir / f"costs.{fmt}"
    out.write_text("old contents")
    export(invoke, fmt, out, "--run", "2")
    assert sorted(p.name for p in out_dir.iterdir()) == [out.name]
    reader = {"csv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet}[fmt]
    assert [r["custom_id"] for r in reader(out)] == ["june-1", "june-2"]


@pytest.mark.usefixtures("two_runs")
def test_a_failed_write_keeps_the_old_file_and_no_temp_file(db_path, tmp_path, monkeypatch):
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    out = out_dir / "costs.csv"
    out.write_text("old contents")

    def failing_replace(src, dst):
        assert Path(src).exists() and Path(src).parent == out_dir  # the temp file is written beside
        raise OSError("disk full")

    monkeypatch.setattr(export_module.os, "replace", failing_replace)
    with open_session(Settings(db_path=db_path)) as session, pytest.raises(OSError, match="disk full"):
        export_rows(session.conn, "csv", out, Filters())
    assert out.read_text() == "old contents"
    assert sorted(p.name for p in out_dir.iterdir()) == ["costs.csv"]


def test_export_into_a_missing_directory_is_a_usage_error(invoke, tmp_path, user_error):
    result = invoke("export", "--format", "csv", "--out", tmp_path / "nope" / "x.csv")
    user_error(result, 2, f"--out: directory {tmp_path / 'nope'} does not exist")


@pytest.mark.usefixtures("two_runs")
def test_parquet_json_columns_are_text_and_timestamps_are_utc_instants(invoke, tmp_path):
    """Issue 11: `stop` / `extra_params` came out as binary JSON and timestamps without a time zone."""
    out = tmp_path / "costs.parquet"
    export(invoke, "parquet", out)
    schema = pq.read_schema(out)
    for name, kind in EXPORT_COLUMNS:
        if kind == "json":
            assert schema.field(name).type == pa.string(), name
        if kind == "time":
            assert schema.field(name).type == pa.timestamp("us", tz="UTC"), (name, schema.field(name).type)
    table = pq.read_table(out)
    assert json.loads(next(r["stop"] for r in table.to_pylist() if r["stop"])) == ["=1+1"]
    jsonl = tmp_path / "costs.jsonl"
    export(invoke, "jsonl", jsonl)
    by_id = {r["custom_id"]: r for r in read_jsonl(jsonl)}
    for row in table.to_pylist():
        same = by_id[row["custom_id"]]
        assert row["created_at"] is None or row["created_at"].utcoffset().total_seconds() == 0
        # The same instant as the (naive UTC) JSONL text.
        if row["priced_at"] is not None:
            assert row["priced_at"].strftime("%Y-%m-%d %H:%M:%S") == same["priced_at"][:19].replace("T", " ")
        for name in ("stop", "extra_params"):
            assert row[name] is None or json.loads(row[name]) == (
                same[name] if not isinstance(same[name], str) else json.loads(same[name])
            )
