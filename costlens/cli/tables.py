"""The one table renderer of the text output (summary, its compare table, runs, estimate,
pricing show, replay's summary), and the sentences printed around the tables.

Why it exists: rich's own fitting shrinks every column evenly and cuts cells with an ellipsis, so
on a 100-column terminal ``$0.3456`` became ``$0.3…`` and ``gpt-4o-mini`` looked like ``gpt-4o``;
and off a terminal the same box-drawn table was padded to 200 columns in cron logs. Here a
command declares its columns (a priority and whether a cell may ever be broken) and the layout
follows where stdout goes:

- ``terminal``: a rich table ruled under the header, no vertical lines, two spaces between
  columns. A *whole* cell (money, counts, ids, run names) is never broken: its column is at least
  as wide as its widest cell and its longest header word. To fit the width, headers wrap at
  spaces first, then the other cells (paths, timestamps) wrap; when even that does not fit, the
  columns of the highest priority number go, rightmost first, and one line says which and that
  ``--json`` (or a wider terminal) has them. Priority-0 columns always stay; only when they alone
  are wider than the terminal do their cells fold onto more lines (never an ellipsis).
- ``plain`` (stdout not a terminal, or ``TERM=dumb``): for logs. A title line, one header line and
  one line per row, columns two spaces apart and only as wide as their widest cell, no box
  drawing, no trailing spaces, nothing left out and no wrapping; an empty cell shows ``-``.

``COSTLENS_LAYOUT=terminal|plain`` forces a layout (``auto``, the default, decides as above); with
``terminal`` the width is the terminal's, or ``COLUMNS``.

Every cell, header, title and sentence is data to rich, never markup (``[red]`` in a model id
prints as is), and non-printable characters (ANSI escapes, newlines, bidi controls) are shown
escaped, ``\\x1b`` style, so a hostile id cannot restyle or reorder the terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Literal

import click
from rich.box import Box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from costlens.errors import ConfigError
from costlens.inert import escape_controls

Layout = Literal["terminal", "plain"]
Align = Literal["left", "right"]

LAYOUT_ENV = "COSTLENS_LAYOUT"
GAP = 2  # characters between two columns, in both layouts
WRAP_MIN = 12  # a column whose cells may wrap is never made narrower than this (or its widest cell)

# A rule under the header and above a section's end (the TOTAL row); spaces everywhere else.
# With show_edge=False and padding (0, 1, 0, 0) each gap between columns is exactly GAP wide.
RULES = Box("    \n    \n ── \n    \n ── \n ── \n    \n    \n")


def stdout_layout() -> Layout:
    """The layout for stdout: COSTLENS_LAYOUT if set, else terminal on a TTY unless TERM is dumb."""
    value = os.environ.get(LAYOUT_ENV, "").strip().lower() or "auto"
    if value in ("terminal", "plain"):
        return value  # type: ignore[return-value]
    if value != "auto":
        raise ConfigError(f"{LAYOUT_ENV}={value!r}: expected auto, terminal or plain")
    isatty = getattr(sys.stdout, "isatty", None)
    if not (isatty and isatty()):
        return "plain"
    if os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return "plain"
    return "terminal"


@dataclass(frozen=True)
class Column:
    """One column: its header, alignment, priority (0 = never left out; on a narrow terminal the
    highest number goes first) and whether its cells are whole (never broken inside: money,
    counts, ids) or may wrap (paths, timestamps, free text)."""

    header: str
    _: KW_ONLY
    align: Align = "right"
    priority: int = 0
    whole: bool = True


@dataclass
class Table:
    """Rows of display strings under declared columns; ``print_table`` lays them out."""

    title: str
    columns: Sequence[Column]
    rows: list[list[str]] = field(default_factory=list)
    section_ends: set[int] = field(default_factory=set)

    def add_row(self, *cells: str, end_section: bool = False) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([escape_controls(c) for c in cells])
        if end_section:
            self.section_ends.add(len(self.rows) - 1)

    def print(self) -> None:
        print_table(self)


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def fit_columns(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> tuple[list[int], list[int]]:
    """Which columns to keep (indices, in order) and their content widths, for ``width`` columns.

    Minimum width: a whole column's widest cell, a wrapping column's widest cell up to WRAP_MIN,
    and at least its longest header word (headers wrap at spaces only). Columns go by priority
    (highest number, then rightmost) until the minimums fit; any that would fit again come back.
    The room left goes to the columns furthest from their natural width (widest cell or header).
    """
    headers = [escape_controls(c.header) for c in columns]
    cells_max = [max((cell_len(r[i]) for r in rows), default=0) for i in range(len(columns))]
    natural = [max(cell_len(h), m, 1) for h, m in zip(headers, cells_max, strict=True)]
    minimum = []
    for col, header, widest in zip(columns, headers, cells_max, strict=True):
        cell_min = widest if col.whole else min(widest, WRAP_MIN)
        minimum.append(max(cell_min, _longest_word(header), 1))

    def need(kept: Sequence[int]) -> int:
        return sum(minimum[k] for k in kept) + GAP * (len(kept) - 1)

    kept = list(range(len(columns)))
    dropped: list[int] = []
    while need(kept) > width:
        droppable = [k for k in kept if columns[k].priority > 0]
        if not droppable:
            break
        gone = max(droppable, key=lambda k: (columns[k].priority, k))
        kept.remove(gone)
        dropped.append(gone)
    for k in reversed(dropped):  # most important first: one dropped early may fit once a wide one went
        if need(sorted([*kept, k])) <= width:
            kept = sorted([*kept, k])

    widths = {k: minimum[k] for k in kept}
    room = width - need(kept)
    if sum(natural[k] for k in kept) + GAP * (len(kept) - 1) <= width:
        widths = {k: natural[k] for k in kept}
    elif room > 0:
        for _ in range(room):
            k = max(kept, key=lambda k: natural[k] - widths[k])
            if natural[k] <= widths[k]:
                break
            widths[k] += 1
    while room < 0:  # only priority-0 columns are left and they alone are too wide: fold the widest
        k = max(kept, key=lambda k: widths[k])
        if widths[k] <= 1:
            break
        widths[k] -= 1
        room += 1
    return kept, [widths[k] for k in kept]


def _terminal_console() -> Console:
    forced = os.environ.get(LAYOUT_ENV, "").strip().lower() == "terminal"
    return Console(highlight=False, soft_wrap=False, force_terminal=True if forced else None)


def print_table(table: Table) -> None:
    if stdout_layout() == "plain":
        _print_plain(table)
    else:
        _print_terminal(table)


def print_line(text: str) -> None:
    """A sentence next to a table: inert text; wrapped at spaces on a terminal, one line when plain."""
    if stdout_layout() == "plain":
        click.echo(escape_controls(text))
    else:
        _terminal_console().print(Text(escape_controls(text)))


def say(text: str, *, err: bool = False) -> None:
    """One line of a message (a rejected line, a warning) on stdout or stderr: inert, escaped, unwrapped.
    Messages quote data from files and servers (model ids, JSON values), so they are never markup and
    never carry a control character as such."""
    click.echo(escape_controls(text), err=err)


def _print_plain(table: Table) -> None:
    headers = [escape_controls(c.header) for c in table.columns]
    rows = [[cell or "-" for cell in row] for row in table.rows]
    widths = [max(cell_len(c) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = [escape_controls(table.title)]
    for cells in (headers, *rows):
        parts = [
            c + " " * (w - cell_len(c)) if col.align == "left" else " " * (w - cell_len(c)) + c
            for c, w, col in zip(cells, widths, table.columns, strict=True)
        ]
        lines.append((" " * GAP).join(parts).rstrip())
    click.echo("\n".join(lines))


def _print_terminal(table: Table) -> None:
    console = _terminal_console()
    kept, widths = fit_columns(table.columns, table.rows, console.width)
    out = RichTable(
        box=RULES,
        show_edge=False,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        collapse_padding=False,
        highlight=False,
    )
    for k, width in zip(kept, widths, strict=True):
        col = table.columns[k]
        out.add_column(
            Text(escape_controls(col.header)), justify=col.align, width=width, overflow="fold", no_wrap=False
        )
    for i, row in enumerate(table.rows):
        out.add_row(*(Text(row[k]) for k in kept), end_section=i in table.section_ends)
    console.print(Text(escape_controls(table.title), style="table.title"))
    console.print(out)
    left_out = [escape_controls(c.header) for k, c in enumerate(table.columns) if k not in kept]
    if left_out:
        console.print(
            Text(
                f"Columns left out to fit {console.width} columns: {', '.join(left_out)} "
                "(--json or a wider terminal shows them)."
            )
        )
