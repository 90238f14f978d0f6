"""`costlens report`: the self-contained HTML cost report (or its figures as JSON)."""

from __future__ import annotations

from pathlib import Path

import click

from costlens.cli.common import State, lake_option, open_reader, selection_options
from costlens.cli.summary import compare_pricing_option
from costlens.money.filters import Filters
from costlens.session import load_compare_sheets, register_compare_sheets


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write; default reports/costlens-report.html (.json with --format json); '-' = stdout.",
)
@selection_options()
@click.option(
    "--tz",
    default="UTC",
    show_default=True,
    metavar="ZONE",
    help="Time zone for days and times on the page (IANA name, e.g. Europe/Paris).",
)
@click.option(
    "--baseline",
    metavar="MODEL",
    help="Model the comparison is made against (default: the one with the most requests).",
)
@click.option(
    "--plotly",
    "plotly_mode",
    type=click.Choice(["inline", "cdn"]),
    default="inline",
    show_default=True,
    help="Embed plotly.js once (the file opens offline) or load it from the plotly CDN (~4.7 MB smaller).",
)
@click.option("--title", default=None, help="Page title (default: costlens report).")
@compare_pricing_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "json"]),
    default="html",
    show_default=True,
    help="The HTML page, or the same aggregates as JSON (money as exact decimal strings).",
)
@click.option(
    "--full-paths",
    is_flag=True,
    help="Name the DB and price files by full path in the Method section (default: file name and sha256).",
)
@lake_option
@click.pass_obj
def report(
    state: State,
    lake_uri: str | None,
    out: Path | None,
    filters: Filters,
    tz: str,
    baseline: str | None,
    plotly_mode: str,
    title: str | None,
    compare: tuple[str, ...],
    fmt: str,
    full_paths: bool,
) -> None:
    """Write one self-contained HTML cost report (or its figures as JSON) for the selected requests.

    Set COSTLENS_REPORT_TIME (ISO datetime) to fix the generation time: the same data then
    gives a byte-identical file. With --compare-pricing the page adds a section "Price sheets
    side by side": the same requests on each named sheet, with the differences."""
    sheets = load_compare_sheets(state.settings, compare)  # validated before the database is opened
    from costlens.report.data import build_report_data
    from costlens.report.html import render_html, render_json, report_time, write_report  # imported on use

    now = report_time()
    with open_reader(state, lake_uri) as session:
        data = build_report_data(
            session.conn,
            filters,
            prices=session.prices,
            as_of=now,
            baseline=baseline,
            tz=tz,
            db_path=lake_uri or str(state.settings.db_path),
            compare=register_compare_sheets(session, sheets),
            full_paths=full_paths,
        )
    if fmt == "json":
        text = render_json(data)
    else:
        text = render_html(data, plotly_mode=plotly_mode, title=title, generated_at=now)  # type: ignore[arg-type]
    if out is not None and str(out) == "-":
        click.echo(text, nl=False)
        return
    path = out or Path(f"reports/costlens-report.{fmt}")
    write_report(path, text)
    click.echo(f"wrote report to {path}", err=True)
