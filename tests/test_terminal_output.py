"""Text output never cuts a money figure or an id (issue: terminal output, point 1).

A database with long model ids (two that differ only by a suffix, one with rich markup, one with
an ANSI escape), costs with many digits and run names that differ only at the end is rendered
through the CLI on a terminal of 80, 100 and 120 columns (``COSTLENS_LAYOUT=terminal`` +
``COLUMNS``) and piped (CliRunner's stdout is not a terminal). Every money figure, model id and
run name of ``--json`` must appear whole in each; columns may be left out on a narrow terminal,
but then a line says which; piped output is plain: no box drawing, no padding.
"""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import Lines, write_jsonl

from costlens.cli.common import money
from costlens.cli.tables import Column, Table, escape_controls, fit_columns, stdout_layout

MARKUP_ID = "acme/[bold]markup[/]-model"
ANSI_ID = "evil-\x1b[31mred"
HAIKU = "anthropic/claude-3-5-haiku-20241022"
IDS = ("gpt-4o", "gpt-4o-mini", HAIKU, MARKUP_ID, ANSI_ID)
RUN_NAMES = (
    "nightly-regression-eval-of-the-support-bot-2024-10-01-first",
    "nightly-regression-eval-of-the-support-bot-2024-10-01-second",
)
# Prices with many digits, so costs do too: $2,469.15, $2,469,148.14 per 1K, $0.000000123456789.
PRICES = f"""model,input_per_1m,output_per_1m
gpt-4o,2.5,10
gpt-4o-mini,0.15,0.6
{HAIKU},0.8,4
"{MARKUP_ID}",1.234567,9.87654321
"{ANSI_ID}",0.123456789,0
"""
BOX = re.compile("[\u2500-\u257f]")  # box drawing
SGR = re.compile("\x1b\\[[0-9;]*m")  # the terminal layout's own bold/italic


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@pytest.fixture
def db(invoke, tmp_path: Path, lines: Lines) -> list[str | Path]:
    """Two runs; the global options that price them."""
    sheet = tmp_path / "prices.csv"
    sheet.write_text(PRICES, encoding="utf-8")
    first = write_jsonl(
        tmp_path / "first.jsonl",
        [
            lines.chat("1", model="gpt-4o", usage=usage(987_654_321, 1_234)),
            lines.chat("2", model="gpt-4o-mini", usage=usage(123, 45)),
            lines.chat("3", model=HAIKU, usage=usage(1_000, 3_333)),
        ],
    )
    second = write_jsonl(
        tmp_path / "second.jsonl",
        [
            lines.chat("4", model=MARKUP_ID, usage=usage(7, 11)),
            lines.chat("5", model=ANSI_ID, usage=usage(1, 0)),
            lines.chat("6", model="gpt-4o-mini", usage=usage(3, 1)),
        ],
    )
    options: list[str | Path] = ["--pricing", sheet]
    for path, name in zip((first, second), RUN_NAMES, strict=True):
        result = invoke(*options, "replay", path, "--run-name", name)
        assert result.exit_code == 0, result.stderr
    return options


def terminal(width: int) -> dict[str, str | None]:
    return {"COSTLENS_LAYOUT": "terminal", "COLUMNS": str(width), "TERM": "xterm-256color"}


PIPED: dict[str, str | None] = {"COSTLENS_LAYOUT": None, "COLUMNS": "80", "TERM": "xterm-256color"}
LAYOUTS = [pytest.param(terminal(w), id=f"terminal-{w}") for w in (80, 100, 120)] + [
    pytest.param(PIPED, id="piped")
]


def text_of(invoke, *args: str | Path, env: dict[str, str | None]) -> str:
    result = invoke(*args, env=env)
    assert result.exit_code == 0, result.stderr
    return SGR.sub("", result.stdout)


def shown(model_id: str) -> str:
    """A model id as the text output shows it: control characters escaped visibly."""
    return escape_controls(model_id)


def check_common(out: str, env: dict[str, str | None]) -> None:
    assert "…" not in out and "..." not in out  # nothing is cut with an ellipsis
    assert "\x1b" not in out  # the only escapes were the layout's own styles, stripped above
    lines = out.splitlines()
    if env.get("COSTLENS_LAYOUT") == "terminal":
        width = int(env["COLUMNS"] or 0)
        assert max(len(line) for line in lines) <= width, out
    else:
        assert not BOX.search(out), out
        assert all(line == line.rstrip() for line in lines), out  # no padding


@pytest.mark.parametrize("env", LAYOUTS)
def test_summary_shows_every_figure_and_model_id_whole(invoke, db, env):
    payload = json.loads(text_of(invoke, *db, "summary", "--json", env={}))
    rows = [*payload["models"], payload["total"]]
    assert {r["model"] for r in payload["models"]} == set(IDS)
    out = text_of(invoke, *db, "summary", env=env)
    check_common(out, env)
    # Each model's row holds its id and its cost, whole, on its first line.
    lines = out.splitlines()
    for row in rows:
        cost = money(Decimal(row["cost_usd"]))
        starts = [line for line in lines if line.startswith(shown(row["model"]) + " ")]
        assert len(starts) == 1, (row["model"], out)  # gpt-4o is not mistaken for gpt-4o-mini
        assert re.search(rf"(^|\s){re.escape(cost)}(\s|$)", starts[0]), (cost, starts[0])
    # Every figure that is shown is one of the database's, whole (no "$0.3" of "$0.34").
    figures = {money(Decimal(r[k])) for r in rows for k in ("cost_usd", "cost_per_1k_requests_usd")}
    assert set(re.findall(r"\$[0-9][0-9,.]*", out)) <= figures
    assert {"$2,469.15", "$0.000000123456789", "$2,469,148.14"} <= figures  # the data has such figures
    # Markup and ANSI in ids are shown as text.
    assert MARKUP_ID in out and "evil-\\x1b[31mred" in out
    if env.get("COSTLENS_LAYOUT") != "terminal":
        assert set(re.findall(r"\$[0-9][0-9,.]*", out)) == figures  # piped: every column is there
        assert "left out" not in out


@pytest.mark.parametrize("env", LAYOUTS)
def test_runs_shows_every_name_and_cost_whole(invoke, db, env):
    payload = json.loads(text_of(invoke, *db, "runs", "--json", env={}))
    assert [r["name"] for r in payload] == list(reversed(RUN_NAMES))
    out = text_of(invoke, *db, "runs", env=env)
    check_common(out, env)
    for run in payload:
        (line,) = [line for line in out.splitlines() if re.match(rf"\s*{run['run_id']} ", line)]
        assert run["name"] in line and money(Decimal(run["cost_usd"])) in line, (run, out)


def test_a_narrow_terminal_leaves_out_columns_and_says_which(invoke, db):
    out = text_of(invoke, *db, "summary", env=terminal(80))
    lines = out.splitlines()
    (start,) = [i for i, line in enumerate(lines) if "left out" in line]
    end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(")."))
    note = " ".join(line.strip() for line in lines[start : end + 1])  # one sentence, wrapped at 80
    assert note.startswith("Columns left out to fit 80 columns: ") and "--json" in note
    left_out = note.split(": ", 1)[1].split(" (", 1)[0].split(", ")
    assert "cost" not in left_out and "model" not in left_out
    rule = next(i for i, line in enumerate(lines) if line.startswith("─"))
    header_words = " ".join(lines[1:rule]).split()  # a header may wrap onto several lines
    assert left_out and all(name.split()[0] not in header_words for name in left_out)
    wide = text_of(invoke, *db, "summary", env=terminal(250))
    assert "left out" not in wide and "tier" in wide and "reasoning" in wide


def test_piped_summary_is_one_header_and_one_line_per_model(invoke, db):
    out = text_of(invoke, *db, "summary", env=PIPED)
    lines = out.splitlines()
    assert lines[0] == "Cost by model"
    header = re.split(r"\s{2,}", lines[1])
    assert header == [
        "model", "requests", "failed", "input tok", "cached tok", "output tok", "reasoning tok",
        "cost", "per 1K req", "priced", "unpriced", "tier fallback",
    ]  # fmt: skip
    table = lines[1 : 2 + len(IDS) + 1]
    assert table[-1].startswith("TOTAL ") and len(lines) == 1 + len(table)  # all priced: no coverage line
    assert len({len(line) for line in table}) == 1  # right-aligned last column: no padding after it
    cells = {re.split(r"\s{2,}", line)[0]: re.split(r"\s{2,}", line) for line in table[1:]}
    assert cells["gpt-4o"][1:3] == ["1", "0"] and cells["gpt-4o"][7] == "$2,469.15"
    assert cells["TOTAL"][1] == "6"
    # Only as wide as the widest cell of each column, two spaces apart.
    widths = [max(len(c) for c in column) for column in zip(header, *cells.values(), strict=True)]
    assert len(lines[1]) == sum(widths) + 2 * (len(widths) - 1)


def test_a_cell_that_may_wrap_wraps_rather_than_its_column_being_left_out(invoke, db):
    payload = json.loads(text_of(invoke, *db, "runs", "--json", env={}))
    out = text_of(invoke, *db, "runs", env=terminal(120))
    header = " ".join(out.splitlines()[1:3])  # a header may wrap onto a second line
    assert "started" in header and "(UTC)" in header and "name" in header
    lines = out.splitlines()
    for run in payload:  # "2024-10-01 17:44:14" at 120 columns: the date, then the time below it
        date, time = run["started_at"].split()
        (i,) = [i for i, line in enumerate(lines) if run["name"] + " " in line]
        assert date in lines[i] and time not in lines[i] and lines[i + 1].strip() == time


def test_json_is_the_same_on_a_terminal_and_piped(invoke, db):
    for command in (("summary", "--json"), ("runs", "--json"), ("pricing", "show", "--json")):
        piped = invoke(*db, *command, env=PIPED)
        assert piped.stdout == invoke(*db, *command, env=terminal(80)).stdout
        json.loads(piped.stdout)


def test_the_other_tables_keep_ids_and_figures_whole_at_80_columns(invoke, db):
    prices = json.loads(text_of(invoke, *db, "pricing", "show", "--json", env={}))["prices"]
    out = text_of(invoke, *db, "pricing", "show", env=terminal(80))
    check_common(out, terminal(80))
    for row in prices:
        (line,) = [line for line in out.splitlines() if line.startswith(shown(row["model"]) + " ")]
        assert row["input_per_1m"] in line.split() and row["output_per_1m"] in line.split()
    compare = ("summary", "--compare-pricing", f"same={db[1]}")
    payload = json.loads(text_of(invoke, *db, *compare, "--json", env={}))["compare"]
    for env in (terminal(80), PIPED):
        out = text_of(invoke, *db, *compare, env=env)
        check_common(out, env)
        second = out[out.index("Cost on other sheets") :].splitlines()
        for row in [*payload["models"], payload["total"]]:
            (line,) = [line for line in second if line.startswith(shown(row["model"]) + " ")]
            assert money(Decimal(row["base"]["cost_usd"])) in line.split(), line


class _Tty:
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("tty", "term", "forced", "layout"),
    [
        (True, "xterm-256color", None, "terminal"),
        (True, "dumb", None, "plain"),  # Emacs shell, CI log viewers: no box drawing
        (False, "xterm-256color", None, "plain"),  # piped, cron
        (True, "xterm-256color", "plain", "plain"),
        (False, "dumb", "terminal", "terminal"),
        (False, "xterm", "auto", "plain"),
    ],
)
def test_the_layout_follows_stdout_term_and_costlens_layout(monkeypatch, tty, term, forced, layout):
    if tty:
        monkeypatch.setattr(sys, "stdout", _Tty())
    monkeypatch.setenv("TERM", term)
    if forced is not None:
        monkeypatch.setenv("COSTLENS_LAYOUT", forced)
    assert stdout_layout() == layout


def test_a_bad_layout_value_is_a_usage_error(invoke, db, user_error):
    user_error(invoke(*db, "runs", env={"COSTLENS_LAYOUT": "fancy"}), 2, "COSTLENS_LAYOUT")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("tab\there", "tab\\there"),
        ("new\nline", "new\\nline"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("naïve-模型", "naïve-模型"),
        ("[red]x[/red]", "[red]x[/red]"),
    ],
)
def test_control_characters_are_escaped_visibly(raw, escaped):
    assert escape_controls(raw) == escaped


def test_fitting_drops_the_lowest_priority_column_last_first_and_never_a_priority_zero():
    columns = [
        Column("model", align="left"),
        Column("a", priority=2),
        Column("b", priority=1),
        Column("c", priority=2),
        Column("cost"),
    ]
    rows = [["x" * 30, "1" * 10, "2" * 10, "3" * 10, "$1.00"]]
    assert fit_columns(columns, rows, 73) == ([0, 1, 2, 3, 4], [30, 10, 10, 10, 5])
    assert fit_columns(columns, rows, 61) == ([0, 1, 2, 4], [30, 10, 10, 5])  # c went: rightmost of 2
    assert fit_columns(columns, rows, 60)[0] == [0, 2, 4]
    kept, widths = fit_columns(columns, rows, 20)  # even model + cost do not fit: they stay, folded
    assert kept == [0, 4] and sum(widths) + 2 <= 20


def test_a_column_dropped_early_comes_back_when_a_wider_one_made_room():
    columns = [
        Column("model", align="left"),
        Column("x", priority=3),
        Column("y", priority=2),
        Column("cost"),
    ]
    rows = [["m" * 30, "1", "2" * 20, "$1.00"]]
    assert fit_columns(columns, rows, 45)[0] == [0, 1, 3]


def test_headers_wrap_before_a_column_is_dropped():
    columns = [Column("model", align="left"), Column("reasoning tok", priority=1), Column("cost")]
    rows = [["gpt-4o-mini", "1", "$0.01"]]
    assert fit_columns(columns, rows, 11 + 9 + 5 + 4) == ([0, 1, 2], [11, 9, 5])  # "reasoning" / "tok"


def test_plain_table_renders_cells_as_given(capsys, monkeypatch):
    monkeypatch.delenv("COSTLENS_LAYOUT", raising=False)
    table = Table("T", [Column("name", align="left"), Column("n")])
    table.add_row("[bold]x[/]", "1,000")
    table.add_row("", "2")
    table.add_row("a\x1b[2Jb", "3")
    table.print()
    assert capsys.readouterr().out == (
        "T\nname            n\n[bold]x[/]  1,000\n-               2\na\\x1b[2Jb       3\n"
    )
