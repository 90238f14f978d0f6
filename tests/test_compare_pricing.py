"""`--compare-pricing` on summary and report: the same requests priced on other sheets.

Checked three ways: against values worked out by hand below, against separate runs of
``summary --json --pricing OTHER.csv`` (the compared sheet must price exactly as if it were the
only sheet), and against hostile input (malformed sheets, bad NAME=FILE, HTML in names).

The fixed traffic (chat.completion lines, standard tier unless said), USD per 1M tokens:

    model     tokens in/out   main.csv                        other.csv
    cheap-m   1000/500        2/8   -> 0.006                  1/4   -> 0.003
    cheap-m   2000/1000       2/8   -> 0.012                  1/4   -> 0.006
    dear-m    4000/1000       0.5/1.5 -> 0.0035               1/3   -> 0.007
    only-cmp  1000/1000       (no row: unpriced)              3/6   -> 0.009
    mystery   10/10           unpriced                        unpriced
    flexy     1000/1000 flex  flex row 0.25/1 -> 0.00125      standard only 0.4/1.6 -> 0.002 (tier fallback)
    free-m    1000/0          0/0   -> 0 (priced, free)       1/1   -> 0.001

Per model (other - main, over requests priced on both): cheap-m 0.009 - 0.018 = -0.009 (-50%),
dear-m +0.0035 (+100%), flexy +0.00075 (+60%), free-m +0.001 (main is $0: no relative change),
only-cmp and mystery: no difference. Totals: main 0.02275 (5 priced, 2 unpriced), other 0.028
(6 priced, 1 unpriced, 1 tier fallback); compared on both: 5 requests, main 0.02275 vs other
0.019, difference -0.00375, relative -0.00375 / 0.02275 = -15/91.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import Lines, plain_table, write_jsonl
from sheet_cases import EVIL, FLAT_CSV, MAIN_CSV, OTHER_CSV, traffic_lines, usage

from costlens.money.decimal_text import format_decimal
from costlens.money.filters import Filters
from costlens.report.compare import compare_sheets
from costlens.report.summary import summarize
from costlens.session import Settings, load_compare_sheets, open_session, register_compare_sheets


@pytest.fixture
def sheets(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("main", MAIN_CSV), ("other", OTHER_CSV), ("flat", FLAT_CSV)):
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text(text, encoding="utf-8")
    return out


@pytest.fixture
def loaded(invoke, tmp_path: Path, lines: Lines, sheets: dict[str, Path]) -> dict[str, Path]:
    """Run 1 = the fixed traffic; run 2 = one more cheap-m request (1000/1000: main 0.01, other 0.005)."""
    first = write_jsonl(tmp_path / "traffic.jsonl", traffic_lines(lines))
    second = write_jsonl(tmp_path / "more.jsonl", [lines.chat("h", model="cheap-m", usage=usage(1000, 1000))])
    for path in (first, second):
        result = invoke("--pricing", sheets["main"], "replay", path)
        assert result.exit_code == 0, result.stderr
    return sheets


def run_json(invoke, *args: str | Path) -> dict[str, Any]:
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def by_model(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["model"]: row for row in payload["models"]}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- figures ---------------------------------------------------------------------------------


def test_compare_figures_by_hand(invoke, loaded):
    payload = run_json(
        invoke,
        "--pricing",
        loaded["main"],
        "summary",
        "--run",
        "1",
        "--compare-pricing",
        loaded["other"],
        "--json",
    )
    compare = payload["compare"]
    assert compare["base"] == "main" and compare["sheets"] == [str(loaded["other"])]
    rows = by_model(compare)
    assert list(rows) == ["cheap-m", "dear-m", "flexy", "free-m", "mystery", "only-cmp"]  # like summary

    def figures(name: str) -> tuple[Any, ...]:
        row = rows[name] if name != "TOTAL" else compare["total"]
        (sheet,) = row["sheets"]
        diff = sheet["difference"]
        return (
            row["requests"],
            row["base"]["cost_usd"],
            sheet["cost_usd"],
            diff["difference_usd"],
            diff["relative_difference"],
            diff["compared"],
        )

    assert figures("cheap-m") == (2, "0.018", "0.009", "-0.009", "-0.5", 2)
    assert figures("dear-m") == (1, "0.0035", "0.007", "0.0035", "1", 1)
    assert figures("flexy") == (1, "0.00125", "0.002", "0.00075", "0.6", 1)
    assert figures("free-m") == (1, "0", "0.001", "0.001", None, 1)  # main is $0: no relative change
    assert figures("only-cmp") == (1, None, "0.009", None, None, 0)  # unpriced on main, never $0
    assert figures("mystery") == (1, None, None, None, None, 0)
    assert figures("TOTAL") == (7, "0.02275", "0.028", "-0.00375", format_decimal(Decimal(-15) / 91), 5)
    # The total difference is over the 5 requests priced on both: other 0.019 against main 0.02275.
    total_diff = compare["total"]["sheets"][0]["difference"]
    assert (total_diff["base_cost_usd"], total_diff["cost_usd"], total_diff["partial"]) == (
        "0.02275",
        "0.019",
        True,
    )
    assert rows["cheap-m"]["sheets"][0]["difference"]["partial"] is False

    # Coverage per sheet: the total row of each.
    base, (other,) = compare["total"]["base"], compare["total"]["sheets"]
    assert (base["priced"], base["unpriced"], base["tier_fallback"], base["unpriced_tokens"]) == (
        5,
        2,
        0,
        2020,
    )
    assert (other["priced"], other["unpriced"], other["tier_fallback"], other["unpriced_tokens"]) == (
        6,
        1,
        1,
        20,
    )
    assert rows["flexy"]["sheets"][0]["tier_fallback"] == 1 and rows["flexy"]["base"]["tier_fallback"] == 0
    # The summary part is unchanged by the option.
    plain = run_json(invoke, "--pricing", loaded["main"], "summary", "--run", "1", "--json")
    assert {k: v for k, v in payload.items() if k != "compare"} == plain


@pytest.mark.parametrize(
    "filters",
    [
        (),
        ("--run", "2"),
        ("--model", "CHEAP-M", "--model", "only-cmp"),
        ("--since", "2024-03-26", "--until", "2024-03-27"),
    ],
    ids=["all", "run 2", "models", "window"],
)
def test_compare_equals_separate_summaries_on_each_sheet(invoke, loaded, filters):
    """Literally: summary --json --pricing OTHER.csv gives each compared sheet's per-model figures."""
    payload = run_json(
        invoke,
        "--pricing", loaded["main"], "summary", *filters, "--json",
        "--compare-pricing", loaded["other"], "--compare-pricing", f"flat={loaded['flat']}",
    )  # fmt: skip
    compare = payload["compare"]
    assert compare["sheets"] == [str(loaded["other"]), "flat"]
    for index, sheet in ((None, "main"), (0, "other"), (1, "flat")):
        alone = run_json(invoke, "--pricing", loaded[sheet], "summary", *filters, "--json")
        models = by_model(alone)
        assert set(models) == set(by_model(compare)), sheet
        for row in [*compare["models"], compare["total"]]:
            want = alone["total"] if row["model"] == "TOTAL" else models[row["model"]]
            got = row["base"] if index is None else row["sheets"][index]
            assert got["cost_usd"] == want["cost_usd"], (sheet, row["model"])
            assert (got["priced"], got["unpriced"], got["tier_fallback"]) == (
                want["priced"],
                want["unpriced"],
                want["tier_fallback"],
            )
            assert row["requests"] == want["requests"]
            # Where every request is priced on both sides, the difference is simply the cost difference.
            if index is not None and got["unpriced"] == 0 and row["base"]["unpriced"] == 0:
                diff = Decimal(got["cost_usd"]) - Decimal(row["base"]["cost_usd"])
                assert row["sheets"][index]["difference"]["difference_usd"] == format_decimal(diff)


def test_library_comparison_equals_summarize(tmp_path: Path, loaded, db_path: Path):
    settings = Settings(db_path=db_path, pricing_path=loaded["main"])
    compared = load_compare_sheets(settings, [f"other={loaded['other']}"])
    with open_session(settings) as session:
        pairs = register_compare_sheets(session, compared)
        assert pairs == [("other", "_cmp1")]
        filters = Filters(run_ids=(1,))
        result = compare_sheets(session.conn, filters, pairs)
        summary = summarize(session.conn, filters)
    assert [r.model for r in result.rows] == [m.model for m in summary.models]
    assert [r.base.cost_usd for r in result.rows] == [m.cost_usd for m in summary.models]
    assert result.total.base.cost_usd == summary.total.cost_usd == Decimal("0.02275")
    assert result.total.differences[0].relative_difference == Decimal(-15) / Decimal(91)
    assert isinstance(result.total.differences[0].difference_usd, Decimal)


def test_compare_sheet_ignores_the_main_tables_fallback_sheets(invoke, loaded):
    """A compared sheet is priced alone: a fallback of the main table never fills its gaps."""
    payload = run_json(
        invoke,
        "--pricing", loaded["main"], "--fallback-pricing", loaded["flat"],
        "summary", "--run", "1", "--json", "--compare-pricing", loaded["other"],
    )  # fmt: skip
    rows = by_model(payload["compare"])
    # mystery: main prices it through the fallback sheet (10 x 1 + 10 x 1 per 1M); other.csv does not know it.
    assert rows["mystery"]["base"]["cost_usd"] == "0.00002"
    assert rows["mystery"]["base"]["priced_by_fallback_sheet"] == 1
    assert rows["mystery"]["sheets"][0]["cost_usd"] is None


def test_summary_text_shows_a_second_table_in_plain_text(invoke, loaded):
    result = invoke(
        "--pricing", loaded["main"], "summary", "--run", "1", "--compare-pricing", f"alt={loaded['other']}"
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out  # not a terminal: no colour codes
    assert "Cost by model" in out and "Cost on other sheets" in out
    second = out[out.index("Cost on other sheets") :]
    cells = plain_table(out, "Cost on other sheets")
    assert cells["cheap-m"] == ["2", "$0.018", "$0.009", "-$0.009", "-50.0%"]
    assert cells["free-m"] == ["1", "$0", "$0.001", "+$0.001", "-"]
    assert cells["only-cmp"] == ["1", "unpriced", "$0.009", "-", "-"]
    assert cells["TOTAL"] == ["7", "$0.02275", "$0.028", "-$0.00375*", "-16.5%"]
    assert (
        "Price coverage: main: 5 of 7 priced, 2 unpriced; alt: 6 of 7 priced, 1 unpriced, 1 at standard"
        in second
    )
    assert "* Differences are over the requests priced on both sheets only (alt 5 of 7)" in second


def test_without_the_option_summary_output_is_unchanged(invoke, loaded):
    result = invoke("--pricing", loaded["main"], "summary")
    assert result.exit_code == 0 and "Cost on other sheets" not in result.stdout
    assert "compare" not in run_json(invoke, "--pricing", loaded["main"], "summary", "--json")


# --- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["summary", "report"])
def test_malformed_compare_sheet_fails_with_its_place_and_touches_nothing(
    invoke, user_error, loaded, tmp_path, db_path, command
):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,input_per_1m,output_per_1m\ncheap-m,1.00,$4\n", encoding="utf-8")
    before = sha(db_path)
    out = tmp_path / "r.html"
    extra = ["--out", str(out)] if command == "report" else []
    result = invoke(
        "--pricing",
        loaded["main"],
        command,
        *extra,
        "--compare-pricing",
        f"ok={loaded['other']}",
        "--compare-pricing",
        bad,
    )
    user_error(result, 2, f"{bad}:2:3:", "without '$'")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == "" and not out.exists()
    assert sha(db_path) == before


def test_malformed_compare_sheet_does_not_create_the_database(invoke, user_error, tmp_path, db_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,input_per_1m,outptu_per_1m\n", encoding="utf-8")
    user_error(invoke("summary", "--compare-pricing", bad), 2, f"{bad}:1:3:", "unknown column")
    missing = tmp_path / "missing.csv"
    user_error(invoke("summary", "--compare-pricing", missing), 2, str(missing), "cannot read")
    assert not db_path.exists()


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (["=x.csv"], "empty NAME"),
        ([" =x.csv"], "empty NAME"),
        (["a="], "empty FILE"),
        (["a=x.csv", "a=y.csv"], "'a' given twice"),
        (["x.csv", "x.csv"], "'x.csv' given twice"),
        (["main=x.csv"], "'main' names the price table in force"),
    ],
)
def test_bad_sheet_names_are_usage_errors(invoke, user_error, tmp_path, db_path, sheets, values, fragment):
    for name in ("x.csv", "y.csv"):
        (tmp_path / name).write_text(OTHER_CSV, encoding="utf-8")
    for command in ("summary", "report"):
        args = [arg for value in values for arg in ("--compare-pricing", value)]
        result = invoke(command, *args)
        user_error(result, 2, fragment)
        assert len(result.stderr.strip().splitlines()) == 1
    assert not db_path.exists()


# --- report ----------------------------------------------------------------------------------

REPORT_ENV = {"COSTLENS_REPORT_TIME": "2025-06-01T12:00:00Z"}


def section(page: str) -> str:
    start = page.index('<section id="price-sheets"')
    return page[start : page.index("</section>", start)]


def test_report_section_appears_only_with_the_option(invoke, loaded, tmp_path):
    plain_out, with_out = tmp_path / "plain.html", tmp_path / "with.html"
    common = ["--pricing", loaded["main"], "report", "--plotly", "cdn", "--run", "1"]
    assert invoke(*common, "--out", plain_out, env=REPORT_ENV).exit_code == 0
    assert (
        invoke(
            *common, "--out", with_out, "--compare-pricing", f"alt={loaded['other']}", env=REPORT_ENV
        ).exit_code
        == 0
    )
    plain_page, page = plain_out.read_text(encoding="utf-8"), with_out.read_text(encoding="utf-8")
    assert "price-sheets" not in plain_page and "Price sheets side by side" not in plain_page
    assert '<a href="#price-sheets">' in page
    sec = section(page)
    assert "Price sheets side by side" in sec
    assert (
        '<tr data-key="cheap-m"><td class="model">cheap-m</td><td class="num" data-v="2">2</td>'
        '<td class="num" data-v="0.018" title="$0.018">$0.018</td><td class="num" data-v="0.009" title="$0.009">$0.009</td>'
        '<td class="num" data-v="-0.009" title="$-0.009">-$0.009</td><td class="num" data-v="-0.5" title="-0.5">-50.0%</td></tr>'
    ) in sec
    total = sec[sec.index("<tfoot>") :]
    assert 'data-v="0.02275"' in total and 'data-v="0.028"' in total and 'data-v="-0.00375"' in total
    assert f'data-v="{format_decimal(Decimal(-15) / 91)}"' in total and "-$0.00375*" in total
    assert "main 5 of 7 priced, 2 unpriced; alt 6 of 7 priced, 1 unpriced, 1 at standard" in sec
    # One section more than without the option, and the rest of the page as it was.
    assert page.count("<section") == plain_page.count("<section") + 1
    without = page.replace("\n" + sec + "</section>\n", "").replace(
        '<li><a href="#price-sheets">Price sheets</a></li>', ""
    )
    assert without == plain_page


def test_report_json_carries_the_comparison_only_with_the_option(invoke, loaded, tmp_path):
    common = ["--pricing", loaded["main"], "report", "--format", "json", "--out", "-", "--run", "1"]
    plain = json.loads(invoke(*common, env=REPORT_ENV).stdout)
    assert "sheet_comparison" not in plain
    payload = json.loads(
        invoke(*common, "--compare-pricing", f"alt={loaded['other']}", env=REPORT_ENV).stdout
    )
    sc = payload["sheet_comparison"]
    assert sc["base"] == "main" and sc["sheets"] == ["alt"]
    assert sc["total"]["base"]["cost_usd"] == plain["headline"]["total"]["cost_usd"] == "0.02275"
    assert sc["total"]["sheets"][0]["cost_usd"] == "0.028"
    assert sc["total"]["differences"][0]["difference_usd"] == "-0.00375"
    assert {k: v for k, v in payload.items() if k != "sheet_comparison"} == plain


def test_report_escapes_model_and_sheet_names_and_is_deterministic(invoke, loaded, tmp_path, lines):
    evil = write_jsonl(tmp_path / "evil.jsonl", [lines.chat("z", model=EVIL, usage=usage(5, 5))])
    assert invoke("--pricing", loaded["main"], "replay", evil).exit_code == 0
    name = "<b>alt</b>"
    pages = []
    for n in (1, 2):
        out = tmp_path / f"r{n}.html"
        result = invoke(
            "--pricing", loaded["main"], "report", "--plotly", "cdn", "--out", out,
            "--compare-pricing", f"{name}={loaded['other']}", env=REPORT_ENV,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        pages.append(out.read_text(encoding="utf-8"))
    assert pages[0] == pages[1]
    sec = section(pages[0])
    assert EVIL not in pages[0] and name not in pages[0]
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;amp;" in sec
    assert "&lt;b&gt;alt&lt;/b&gt;" in sec
    assert not re.search(r"<(img|b)\b", sec)


def test_summary_text_prints_names_as_text_not_markup(invoke, loaded, tmp_path, lines):
    odd = write_jsonl(tmp_path / "odd.jsonl", [lines.chat("m", model="[red]m[/red]", usage=usage(5, 5))])
    assert invoke("--pricing", loaded["main"], "replay", odd).exit_code == 0
    result = invoke(
        "--pricing",
        loaded["main"],
        "summary",
        "--run",
        "3",
        "--compare-pricing",
        f"[b]n[/b]={loaded['other']}",
    )
    assert result.exit_code == 0, result.stderr
    first, second = result.stdout.split("Cost on other sheets")
    assert "[red]m[/red]" in first and "[red]m[/red]" in second and "[b]n[/b]" in second
