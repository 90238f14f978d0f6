"""Render :class:`costlens.report.data.ReportData` as one self-contained HTML page, or as JSON.

The HTML report is meant to be mailed, archived and printed, and opened by people who did not
produce it, so:

* **Self-contained.** One file: inline CSS, a small inline script (sortable tables, chart set-up)
  and plotly.js embedded once (``plotly_mode="inline"``, the default, opens offline) or loaded
  from the plotly CDN with a subresource-integrity hash (``"cdn"``, ~4.7 MB smaller).
* **Untrusted text stays text.** Model names, user ids, tags, error messages and completions
  come from API responses and request files. Jinja autoescapes every value; chart data travels
  as JSON in a ``type="application/json"`` block with ``<``, ``>``, ``&``, U+2028 and U+2029
  escaped; and strings given to plotly are HTML-escaped first, because plotly interprets a
  subset of HTML in labels. A Content-Security-Policy that allows only the page's own scripts
  (by sha256) is a second line of defence: an injected script or ``onerror`` would not run.
* **Deterministic.** Rows arrive fully ordered, chart divs have fixed ids, and the generation
  time is a parameter (``COSTLENS_REPORT_TIME`` in the CLI), so the same data gives a
  byte-identical file and golden tests are possible.
* **Exact where it matters.** Money is shown to the cent in the headline and to 6 significant
  figures in tables, each with its exact value in a ``title`` attribute (and ``data-v`` for
  sorting); ``render_json`` writes every amount as an exact decimal string.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

import jinja2
from markupsafe import Markup

from costlens.errors import ConfigError, CostlensError
from costlens.inert import escape_controls
from costlens.money.decimal_text import format_decimal
from costlens.money.filters import parse_when
from costlens.report.data import Coverage, ReportData

__all__ = [
    "DEFAULT_TITLE",
    "REPORT_TIME_ENV",
    "PlotlyMode",
    "ReportFormat",
    "money_cents",
    "money_sig",
    "percent",
    "ratio",
    "render_html",
    "render_json",
    "report_time",
    "script_json",
    "write_report",
]

PlotlyMode = Literal["inline", "cdn"]
ReportFormat = Literal["html", "json"]

DEFAULT_TITLE: Final = "costlens report"
REPORT_TIME_ENV: Final = "COSTLENS_REPORT_TIME"
# 2: one vocabulary (README "Vocabulary"): failed (was errors), failure_rate (was error_rate),
# priced_by_fallback_sheet (was sheet_fallback), failures (was errors); headline.simulated added.
JSON_FORMAT_VERSION: Final = 2

# Fixed ids: the same data must give the same file.
CHART_IDS: Final = {
    "cost_by_model": "chart-cost-by-model",
    "comparison": "chart-comparison",
    "whatif": "chart-whatif",
    "daily": "chart-daily",
}
_COLORWAY: Final = (
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2",
    "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac",
)  # fmt: skip
_PLOTLY_CONFIG_JS: Final = "window.PlotlyConfig = {MathJaxConfig: 'local'};"
_SCRIPT_ESCAPES: Final = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


# --- time -------------------------------------------------------------------------------------


def report_time(env: Mapping[str, str] | None = None) -> datetime:
    """The report's "now" (naive UTC, whole seconds): ``COSTLENS_REPORT_TIME`` if set, else the clock.

    Fixing it makes the page reproducible: it is printed as the generation time and picks the
    price rows "in force now" for the what-if section.
    """
    text = (os.environ if env is None else env).get(REPORT_TIME_ENV, "").strip()
    if not text:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    return parse_when(text, option=REPORT_TIME_ENV)


# --- display formats (exact values stay in title / data-v attributes) ------------------------


def _sig(value: Decimal, digits: int) -> Decimal:
    """``value`` rounded half-up to ``digits`` significant figures, but never into the integer part."""
    exponent = min(value.adjusted() - (digits - 1), 0)
    return value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP)


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def money_cents(value: Decimal | None) -> str:
    """Headline money: to the cent; a non-zero amount under half a cent says so."""
    if value is None:
        return "unpriced"
    cents = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if cents == 0 and value != 0:
        return "< $0.01"
    return "$" + format(cents, ",f")


def money_sig(value: Decimal | None) -> str:
    """Table money: 6 significant figures (whole dollars at least), trailing zeros trimmed."""
    if value is None:
        return "unpriced"
    if value == 0:
        return "$0"
    return "$" + _trim(format(_sig(value, 6), ",f"))


def exact(value: Decimal | float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format_decimal(value)
    return repr(value) if isinstance(value, float) else str(value)


def tokens(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def percent(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "–"
    text = format((value * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP), "f")
    if signed and value > 0:
        text = "+" + text
    return text + "%"


def ratio(value: Decimal | float | None) -> str:
    if value is None:
        return "–"
    number = value if isinstance(value, Decimal) else Decimal(repr(value))
    if number == 0:
        return "0×"
    return _trim(format(_sig(number, 4), ",f")) + "×"


def millis(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if abs(value) >= 10 else f"{value:,.1f} ms"


def when(value: datetime | date | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def when_exact(value: datetime | date | None) -> str:
    if value is None:
        return ""
    return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()


# --- script-safe JSON and charts ------------------------------------------------------------


def script_json(value: Any) -> str:
    """JSON that is inert inside ``<script>``: no ``</script>``, ``<!--``, ``&`` entity or JS line break."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).translate(
        _SCRIPT_ESCAPES
    )


def _charts_json(charts: Mapping[str, Any]) -> str:
    """One chart per line, so a golden-file diff points at the chart that changed."""
    items = ",\n".join(f"{script_json(key)}:{script_json(fig)}" for key, fig in charts.items())
    return "{\n" + items + "\n}" if items else "{}"


def _label(text: str | None, missing: str = "(not set)") -> str:
    """A string for plotly: it renders a subset of HTML in labels, so escape it to stay text."""
    return html.escape(missing if text is None else text, quote=False)


def _usd(value: Decimal | None) -> float | None:
    """Chart coordinates only; the tables carry the exact amounts."""
    return None if value is None else float(value)


def _layout(height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 10, "r": 20, "t": 10, "b": 40},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "colorway": list(_COLORWAY),
        "hoverlabel": {"namelength": -1},
        "legend": {"orientation": "h", "y": -0.15},
    }
    layout.update(extra)
    return layout


def _chart_cost_by_model(data: ReportData) -> dict[str, Any] | None:
    priced = [m for m in data.models if m.cost_usd is not None]
    if not priced:
        return None
    names = [_label(m.model) for m in priced]
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "name": part,
            "y": names,
            "x": [_usd(getattr(m, f"{part}_cost_usd")) for m in priced],
            "hovertemplate": "%{y}<br>" + part + " cost $%{x:,.6g}<extra></extra>",
        }
        for part in ("input", "output")
    ]
    layout = _layout(
        80 + 32 * len(priced),
        barmode="stack",
        xaxis={
            "title": {"text": "cost (USD)"},
            "tickprefix": "$",
            "gridcolor": "#e6e6e6",
            "rangemode": "tozero",
        },
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "traceorder": "normal"},
        margin={"l": 10, "r": 20, "t": 30, "b": 40},
    )
    return {"data": traces, "layout": layout}


def _chart_comparison(data: ReportData) -> dict[str, Any] | None:
    comparison = data.comparison
    if comparison is None or not comparison.latency_known:
        return None
    points = [p for p in comparison.points if p.mean_cost_usd is not None and p.mean_latency_ms is not None]
    if not points:
        return None
    front = sorted((p for p in points if p.pareto), key=lambda p: (p.mean_latency_ms or 0.0, p.model))
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers+text",
            "name": "model (mean over shared requests)",
            "x": [p.mean_latency_ms for p in points],
            "y": [_usd(p.mean_cost_usd) for p in points],
            "text": [_label(p.model) for p in points],
            "textposition": "top center",
            "cliponaxis": False,
            "marker": {"size": 11, "symbol": ["diamond" if p.pareto else "circle" for p in points]},
            "hovertemplate": "%{text}<br>mean latency %{x:,.0f} ms<br>mean cost $%{y:,.6g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Pareto front (no model is both cheaper and faster)",
            "x": [p.mean_latency_ms for p in front],
            "y": [_usd(p.mean_cost_usd) for p in front],
            "line": {"dash": "dot", "color": "#e45756"},
            "hoverinfo": "skip",
        },
    ]
    layout = _layout(
        380,
        xaxis={"title": {"text": "mean latency (ms)"}, "gridcolor": "#e6e6e6", "rangemode": "tozero"},
        yaxis={"title": {"text": "mean cost per request (USD)"}, "tickprefix": "$", "gridcolor": "#e6e6e6",
               "rangemode": "tozero", "automargin": True},
        margin={"l": 10, "r": 20, "t": 36, "b": 50},
        legend={"orientation": "h", "y": -0.25},
    )  # fmt: skip
    return {"data": traces, "layout": layout}


def _chart_whatif(data: ReportData) -> dict[str, Any] | None:
    if data.whatif is None:
        return None
    rows = [r for r in data.whatif.rows if r.cost_usd is not None]
    if not rows:
        return None
    trace = {
        "type": "bar",
        "orientation": "h",
        "name": "estimated cost",
        "y": [_label(r.model) for r in rows],
        "x": [_usd(r.cost_usd) for r in rows],
        "marker": {"color": ["#4c78a8" if r.ran_here else "#9ecae9" for r in rows]},
        "hovertemplate": "%{y}<br>estimated $%{x:,.6g}<extra></extra>",
    }
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    actual = data.whatif.actual_cost_usd
    if actual is not None:
        shapes.append(
            {"type": "line", "x0": float(actual), "x1": float(actual), "yref": "paper", "y0": 0, "y1": 1,
             "line": {"color": "#e45756", "dash": "dash", "width": 2}}
        )  # fmt: skip
        annotations.append(
            {"x": float(actual), "y": 1, "yref": "paper", "yanchor": "bottom", "showarrow": False,
             "text": "actual " + html.escape(money_cents(actual)), "font": {"color": "#e45756"}}
        )  # fmt: skip
    layout = _layout(
        90 + 28 * len(rows),
        xaxis={"title": {"text": "estimated cost (USD, standard tier)"}, "tickprefix": "$",
               "gridcolor": "#e6e6e6", "rangemode": "tozero"},
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        shapes=shapes,
        annotations=annotations,
        showlegend=False,
        margin={"l": 10, "r": 20, "t": 30, "b": 40},
    )  # fmt: skip
    return {"data": [trace], "layout": layout}


def _chart_daily(data: ReportData) -> dict[str, Any] | None:
    if not any(r.cost_usd is not None for r in data.daily):
        return None
    days = sorted({r.day for r in data.daily})
    # A model with no priced day would be an empty trace; the table lists it as unpriced.
    models = sorted({r.model for r in data.daily if r.cost_usd is not None})
    by_key = {(r.day, r.model): r for r in data.daily}
    traces = []
    for model in models:
        ys: list[float | None] = []
        for day in days:
            row = by_key.get((day, model))
            ys.append(None if row is None else _usd(row.cost_usd))
        traces.append(
            {
                "type": "bar",
                "name": _label(model),
                "x": [d.isoformat() for d in days],
                "y": ys,
                "hovertemplate": "%{x}<br>%{fullData.name} $%{y:,.6g}<extra></extra>",
            }
        )
    layout = _layout(
        360,
        barmode="stack",
        xaxis={"type": "date", "title": {"text": f"day ({html.escape(data.tz)})"}},
        yaxis={
            "title": {"text": "cost (USD)"},
            "tickprefix": "$",
            "gridcolor": "#e6e6e6",
            "automargin": True,
        },
        legend={"orientation": "h", "y": -0.3},
        margin={"l": 10, "r": 20, "t": 10, "b": 60},
    )
    return {"data": traces, "layout": layout}


def _charts(data: ReportData) -> dict[str, dict[str, Any]]:
    built = {
        "cost_by_model": _chart_cost_by_model(data),
        "comparison": _chart_comparison(data),
        "whatif": _chart_whatif(data),
        "daily": _chart_daily(data),
    }
    return {CHART_IDS[name]: fig for name, fig in built.items() if fig is not None}


# --- HTML -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("costlens.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        money_cents=money_cents,
        money_sig=money_sig,
        exact=exact,
        tokens=tokens,
        percent=percent,
        ratio=ratio,
        millis=millis,
        when=when,
        when_exact=when_exact,
    )
    return env


@lru_cache(maxsize=1)
def _plotly_js() -> tuple[str, str]:
    """plotly.js source and its version (imported lazily: the JSON format does not need it)."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    source: str = get_plotlyjs()
    if "</script" in source.lower():  # it would end our <script> early; never true of a release
        raise CostlensError("the bundled plotly.js cannot be inlined (it contains '</script')")
    return source, str(get_plotlyjs_version())


def _sri(text: str) -> str:
    """``sha256-<base64>``: a subresource-integrity value, and (quoted) a CSP script source."""
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


@lru_cache(maxsize=1)
def _app_js() -> str:
    # Inlined verbatim; its sha256 goes into the page's Content-Security-Policy.
    return resources.files("costlens.report").joinpath("templates/report.js").read_text(encoding="utf-8")


def render_html(
    data: ReportData,
    *,
    plotly_mode: PlotlyMode = "inline",
    title: str | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The report page. ``generated_at`` (naive UTC) is printed in the footer; None leaves it out."""
    if plotly_mode not in ("inline", "cdn"):
        raise ConfigError(f"plotly mode {plotly_mode!r}: expected 'inline' or 'cdn'")
    # Every text from the data, on the page and in the charts, with control and bidi characters shown
    # as escapes (costlens.inert): autoescaping stops markup, not an RLO that reorders a model id.
    data = _inert(data)
    title = None if title is None else escape_controls(title)
    charts = _charts(data)
    app_js = _app_js()
    scripts = [_PLOTLY_CONFIG_JS, app_js]
    plotly_inline: str | None = None
    plotly_src: str | None = None
    plotly_sri: str | None = None
    if charts:
        source, version = _plotly_js()
        if plotly_mode == "inline":
            plotly_inline = source
            scripts.append(source)
        else:
            plotly_src = f"https://cdn.plot.ly/plotly-{version}.min.js"
            plotly_sri = _sri(source)
    script_src = " ".join(f"'{_sri(s)}'" for s in scripts)
    if plotly_src:
        script_src += " https://cdn.plot.ly"
    csp = (
        f"default-src 'none'; script-src {script_src}; style-src 'unsafe-inline'; "
        "img-src data:; font-src data:; base-uri 'none'; form-action 'none'"
    )
    page = (
        _environment()
        .get_template("report.html.j2")
        .render(
            d=data,
            title=title or DEFAULT_TITLE,
            generated_at=generated_at,
            charts=charts,
            chart_ids=CHART_IDS,
            charts_json=Markup(_charts_json(charts)),
            csp=csp,
            plotly_config_js=Markup(_PLOTLY_CONFIG_JS),
            plotly_inline=None if plotly_inline is None else Markup(plotly_inline),
            plotly_src=plotly_src,
            plotly_sri=plotly_sri,
            app_js=Markup(app_js),
        )
    )
    return page


# --- JSON -------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Coverage):  # a property, worth having in the JSON too
            out["complete"] = value.complete
        return out
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _inert(value: Any) -> Any:
    """``value`` with every string in it (through dataclasses, tuples, lists, dicts) made inert."""
    if isinstance(value, str):
        return escape_controls(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _inert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(_inert(v) for v in value)
    if isinstance(value, list):
        return [_inert(v) for v in value]
    if isinstance(value, dict):
        return {_inert(k): _inert(v) for k, v in value.items()}
    return value


def render_json(data: ReportData) -> str:
    """The same aggregates as the page; money as exact decimal strings, times as ISO text."""
    payload = {"report": "costlens", "format_version": JSON_FORMAT_VERSION, **_plain(data)}
    payload["headline"]["runs"] = [{**run, "tags": dict(run["tags"])} for run in payload["headline"]["runs"]]
    payload["latency_recorded"] = data.latency_recorded
    if data.sheet_comparison is None:  # only with --compare-pricing: without it the format is unchanged
        del payload["sheet_comparison"]
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --- output -----------------------------------------------------------------------------------


def write_report(path: Path, text: str) -> None:
    """Write atomically (temp file + rename), creating the directory: a reader never sees half a report."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
            # mkstemp makes the file private (0600); a report is an ordinary file (0666 & ~umask).
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise ConfigError(f"cannot write report {path}: {e.strerror or e}") from e
