"""costlens report: figures, section rules, escaping, determinism and the golden page.

Figures are checked three ways: against ``summarize()`` (what ``costlens summary --json``
prints) for the same Filters, against values worked out by hand in the comments below, and
against a golden HTML snapshot of a small fixed data set (``UPDATE_GOLDEN=1`` rewrites it).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from costlens.errors import ConfigError
from costlens.ingest.replay import ReplayOptions, replay_files
from costlens.money.costs import install_cost_view
from costlens.money.decimal_text import format_decimal
from costlens.money.filters import Filters
from costlens.money.pricing import load_price_table, register_prices
from costlens.report.data import ReportData, build_report_data
from costlens.report.html import (
    money_cents,
    money_sig,
    percent,
    ratio,
    render_html,
    render_json,
    report_time,
    script_json,
    write_report,
)
from costlens.report.summary import summarize
from costlens.session import Session, Settings, open_session
from costlens.store.db import open_store
from costlens.store.macros import install_macros

ROOT = Path(__file__).resolve().parent.parent
# Not `from conftest import DATA`: with tests/real/conftest.py present, "conftest" is ambiguous.
REPORT_DATA = Path(__file__).resolve().parent / "data" / "report"
SAMPLES = ROOT / "data" / "samples"
GOLDEN = REPORT_DATA / "golden.html"
AS_OF = datetime(2025, 6, 1, 12, 0, 0)
GENERATED = datetime(2025, 6, 1, 12, 0, 0)

# Unix times of the fixed data set.
T_0301_1000 = 1740823200  # 2025-03-01 10:00 UTC
T_0302_1000 = 1740909600  # 2025-03-02 10:00 UTC
T_0302_1200 = 1740916800  # 2025-03-02 12:00 UTC
T_0303_0130 = 1740965400  # 2025-03-03 01:30 UTC = 2025-03-02 20:30 in New York


# --- building data sets ----------------------------------------------------------------------


def write_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def completion_body(
    model: str,
    prompt: int,
    completion: int,
    *,
    created: int,
    cached: int = 0,
    reasoning: int = 0,
    finish: str = "stop",
    content: str = "ok",
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    }


def batch_ok(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": f"req_{custom_id}", "body": body},
        "error": None,
    }


def batch_error(custom_id: str, code: str = "batch_expired", message: str = "expired") -> dict[str, Any]:
    return {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": None,
            "error": {"code": code, "message": message}}  # fmt: skip


def batch_input(custom_id: str, model: str, *, user: str | None = None, text: str = "hi") -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if user is not None:
        body["user"] = user
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


@contextmanager
def report_session(db: Path, prices: Path, aliases: Path) -> Iterator[Session]:
    """A session priced by the given files only (the shipped tables can change under the golden test)."""
    table = load_price_table([prices], [aliases])
    with open_store(db) as conn:
        install_macros(conn)
        register_prices(conn, table)
        install_cost_view(conn)
        yield Session(conn, table, Settings(db_path=db, pricing_path=prices))


def replay(session: Session, path: Path, **options: Any) -> int:
    outcome = replay_files(session.conn, ReplayOptions(files=[path], **options))
    return outcome.results[0].run_id


def pin_times(session: Session) -> None:
    """Replay stamps runs and created-less results with the clock; pin them for reproducible pages."""
    session.conn.execute(
        "UPDATE runs SET started_at = TIMESTAMP '2025-03-01 00:00:00' + to_hours(run_id), "
        "finished_at = TIMESTAMP '2025-03-01 00:30:00' + to_hours(run_id)"
    )
    session.conn.execute(
        "UPDATE results SET priced_at = coalesce(created_at, TIMESTAMP '2025-03-01 10:00:00')"
    )


def set_latency(session: Session, run_id: int, by_custom_id: dict[str, tuple[float, float | None]]) -> None:
    for custom_id, (latency, ttft) in by_custom_id.items():
        session.conn.execute(
            "UPDATE result_details SET latency_ms = ?, ttft_ms = ? WHERE run_id = ? AND request_id IN "
            "(SELECT request_id FROM requests WHERE run_id = ? AND custom_id = ?)",
            [latency, ttft, run_id, run_id, custom_id],
        )
        session.conn.execute(  # a result has at most one details row
            "INSERT INTO result_details (run_id, request_id, latency_ms, ttft_ms) "
            "SELECT q.run_id, q.request_id, ?, ? FROM requests q WHERE q.run_id = ? AND q.custom_id = ? "
            "AND NOT EXISTS (SELECT 1 FROM result_details d WHERE d.run_id = q.run_id AND d.request_id = q.request_id)",
            [latency, ttft, run_id, custom_id],
        )


def build_fixed(session: Session, root: Path) -> None:
    """The small fixed data set of the golden test (prices: tests/data/report/prices.csv).

    run 1 "nightly" gpt-4o (alias gpt-4o-2024-08-06), batch -> no batch row -> standard, a tier fallback:
      c-1 1000 in (400 cached) / 200 out: 600x2.50 + 400x1.25 + 200x10 = 4000e-6 = 0.004
      c-2 3000 / 500: 7500 + 5000 = 0.0125;  c-3 500 / 100 (length): 1250 + 1000 = 0.00225
      c-4 expired, no usage: not billed, 0.                               run 1 = 0.01875
    run 2 "nightly" gpt-4o a day later: c-1 1000/300 = 0.0055, c-2 3000/600 = 0.0135,
      c-3 500/100 = 0.00225                                                run 2 = 0.02125 (+13.3%)
    run 3 "mini-trial" gpt-4o-mini at its batch row (0.075 / 0.30, cached at input):
      c-1 1000 (400 cached) / 150 = 0.00012, c-2 3000/450 = 0.00036, c-3 500/50 = 0.0000525
                                                                           run 3 = 0.0005325
    run 4 chat.completion lines, standard tier: mystery-model x2 (unpriced: 300 + 320 tokens),
      gemini-long 2500/100 at its >= 2000-token row (2.00 / 8.00) = 0.0058
    """
    write_lines(root / "nightly-1-input.jsonl", [
        batch_input("c-1", "gpt-4o", user="u-alice", text="one"),
        batch_input("c-2", "gpt-4o", user="u-bob", text="two"),
        batch_input("c-3", "gpt-4o", user="u-alice", text="three"),
        batch_input("c-4", "gpt-4o", user="u-bob", text="four"),
    ])  # fmt: skip
    model = "gpt-4o-2024-08-06"
    write_lines(root / "nightly-1.jsonl", [
        batch_ok("c-1", completion_body(model, 1000, 200, cached=400, created=T_0301_1000, content="Answer one")),
        batch_ok("c-2", completion_body(model, 3000, 500, created=T_0301_1000, content="Answer two")),
        batch_ok("c-3", completion_body(model, 500, 100, created=T_0301_1000, finish="length")),
        batch_error("c-4"),
    ])  # fmt: skip
    write_lines(root / "nightly-2.jsonl", [
        batch_ok("c-1", completion_body(model, 1000, 300, created=T_0302_1000)),
        batch_ok("c-2", completion_body(model, 3000, 600, created=T_0302_1000)),
        batch_ok("c-3", completion_body(model, 500, 100, created=T_0302_1000)),
    ])  # fmt: skip
    write_lines(root / "mini.jsonl", [
        batch_ok("c-1", completion_body("gpt-4o-mini", 1000, 150, cached=400, created=T_0302_1200)),
        batch_ok("c-2", completion_body("gpt-4o-mini", 3000, 450, created=T_0302_1200)),
        batch_ok("c-3", completion_body("gpt-4o-mini", 500, 50, created=T_0302_1200)),
    ])  # fmt: skip
    write_lines(root / "chat.jsonl", [
        completion_body("mystery-model", 200, 100, created=T_0303_0130),
        completion_body("mystery-model", 220, 100, created=T_0303_0130),
        completion_body("gemini-long", 2500, 100, created=T_0303_0130),
    ])  # fmt: skip
    store = {"store_content": True}
    replay(session, Path("nightly-1.jsonl"), requests_file=Path("nightly-1-input.jsonl"), run_name="nightly",
           tags={"team": "support"}, **store)  # fmt: skip
    replay(session, Path("nightly-2.jsonl"), run_name="nightly", tags={"team": "support"}, **store)
    replay(
        session, Path("mini.jsonl"), run_name="mini-trial", tags={"team": "research", "exp": "mini"}, **store
    )
    replay(session, Path("chat.jsonl"), run_name="chat", **store)
    pin_times(session)
    # As if runs 2 and 3 had been sent by costlens (replays carry no timings).
    set_latency(session, 2, {"c-1": (1000.0, None), "c-2": (2000.0, None), "c-3": (3000.0, None)})
    set_latency(session, 3, {"c-1": (400.0, 100.0), "c-2": (500.0, 120.0), "c-3": (600.0, 140.0)})


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _copy_db(template: Path, target_dir: Path, names: tuple[str, ...]) -> None:
    for name in names:
        shutil.copy(template / name, target_dir / name)


@pytest.fixture(scope="session")
def fixed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session (replays take time); each test gets its own copy of the file."""
    root = tmp_path_factory.mktemp("fixed")
    for name in ("prices.csv", "aliases.csv"):
        shutil.copy(REPORT_DATA / name, root / name)
    with (
        _cwd(root),
        report_session(root / "fixed.duckdb", Path("prices.csv"), Path("aliases.csv")) as session,
    ):
        build_fixed(session, root)
    return root


@pytest.fixture
def fixed(tmp_path: Path, fixed_template: Path) -> Iterator[Session]:
    """The fixed data set; cwd is tmp_path (conftest), so stored file names stay relative."""
    _copy_db(fixed_template, tmp_path, ("prices.csv", "aliases.csv", "fixed.duckdb"))
    with report_session(tmp_path / "fixed.duckdb", Path("prices.csv"), Path("aliases.csv")) as session:
        yield session


def build_demo(session: Session) -> None:
    """`make demo`'s data: the shipped samples, three models on the same 120 tickets."""
    for m in ("gpt-4o-mini", "gpt-4o"):
        replay(session, SAMPLES / f"openai_batch_output_{m}.jsonl",
               requests_file=SAMPLES / f"batch_input_{m}.jsonl", run_name=f"nightly-support-{m}",
               tags={"job": "nightly-support"})  # fmt: skip
    replay(session, SAMPLES / "anthropic_batch_results_claude-3-5-haiku.jsonl",
           model="claude-3-5-haiku-20241022", run_name="nightly-support-claude",
           tags={"job": "nightly-support"})  # fmt: skip


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    with open_session(Settings(db_path=root / "demo.duckdb")) as session:
        build_demo(session)
    return root


@pytest.fixture
def demo(tmp_path: Path, demo_template: Path) -> Iterator[Session]:
    """The shipped samples priced by the shipped price table (what `summary` uses by default)."""
    _copy_db(demo_template, tmp_path, ("demo.duckdb",))
    with open_session(Settings(db_path=tmp_path / "demo.duckdb")) as session:
        yield session


def build(session: Session, filters: Filters | None = None, **kwargs: Any) -> ReportData:
    kwargs.setdefault("as_of", AS_OF)
    kwargs.setdefault("db_path", "fixed.duckdb")
    return build_report_data(session.conn, filters, prices=session.prices, **kwargs)


def page(data: ReportData, **kwargs: Any) -> str:
    kwargs.setdefault("generated_at", GENERATED)
    kwargs.setdefault("plotly_mode", "cdn")  # 5 MB less per page; inline mode has its own tests
    return render_html(data, **kwargs)


# --- reading the page ------------------------------------------------------------------------


class _Tables(HTMLParser):
    """Tables by id -> rows of {data-col: cell}; a cell is {"v": data-v, "title":, "text":}."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[dict[str, dict[str, str | None]]]] = {}
        self.keys: dict[str, list[str | None]] = {}
        self._table: str | None = None
        self._cols: list[str] = []
        self._row: list[dict[str, str | None]] | None = None
        self._row_key: str | None = None
        self._cell: dict[str, str | None] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table, self._cols = a["id"], []
            self.tables[self._table], self.keys[self._table] = [], []
        elif self._table is None:
            return
        elif tag == "thead":
            self._in_head = True
        elif tag == "th" and self._in_head:
            self._cols.append(a.get("data-col") or "")
        elif tag == "tr" and not self._in_head:
            self._row, self._row_key = [], a.get("data-key")
        elif tag == "td" and self._row is not None:
            self._cell = {"v": a.get("data-v"), "title": a.get("title"), "text": ""}

    def handle_endtag(self, tag: str) -> None:
        if self._table is None:
            return
        if tag == "thead":
            self._in_head = False
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            cols = (
                self._cols if len(self._cols) == len(self._row) else [str(i) for i in range(len(self._row))]
            )
            self.tables[self._table].append(dict(zip(cols, self._row, strict=True)))
            self.keys[self._table].append(self._row_key)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] = (self._cell["text"] or "") + data


def tables(html_text: str) -> _Tables:
    parser = _Tables()
    parser.feed(html_text)
    return parser


def rows_by_key(html_text: str, table_id: str) -> dict[str, dict[str, dict[str, str | None]]]:
    t = tables(html_text)
    return {key: row for key, row in zip(t.keys[table_id], t.tables[table_id], strict=True) if key}


def section_ids(html_text: str) -> set[str]:
    return set(re.findall(r'<section id="([^"]+)"', html_text))


def dec(value: str | None) -> Decimal | None:
    return None if value in (None, "") else Decimal(value)


# --- numbers against `summary --json` --------------------------------------------------------

SUMMARY_COLUMNS = (
    "requests", "failed", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens",
    "input_cost_usd", "output_cost_usd", "cost_usd", "unpriced", "tier_fallback",
)  # fmt: skip
FILTER_CASES = {
    "everything": Filters(),
    "one run": Filters(run_ids=(2,)),
    "two models": Filters(models=("gpt-4o", "CLAUDE-3-5-HAIKU-20241022")),
    "window": Filters(since=datetime(2026, 11, 25), until=datetime(2026, 11, 26)),
    "tag": Filters(tags={"job": "nightly-support"}, run_ids=(1, 3)),
}


@pytest.mark.parametrize("case", sorted(FILTER_CASES))
def test_cost_by_model_table_matches_summary_json(demo: Session, case: str) -> None:
    filters = FILTER_CASES[case]
    expected = summarize(demo.conn, filters).as_json()
    assert expected["total"]["requests"] > 0, "each case must select something"
    data = build(demo, filters)
    html_text = page(data)
    got = rows_by_key(html_text, "table-models")
    assert list(got) == [m["model"] for m in expected["models"]] + ["TOTAL"]
    for want in [*expected["models"], expected["total"]]:
        row = got[want["model"]]
        for col in SUMMARY_COLUMNS:
            # Same exact decimal strings as --json (the page's data-v holds the unrounded value).
            assert row[col]["v"] == ("" if want[col] is None else str(want[col])), (want["model"], col)
        assert row["cost_per_1k_requests"]["v"] == want["cost_per_1k_requests_usd"]
    # The same figures in the JSON format, and in the headline.
    as_json = json.loads(render_json(data))
    assert as_json["headline"]["total"]["cost_usd"] == expected["total"]["cost_usd"]
    for want, got_json in zip(expected["models"], as_json["models"], strict=True):
        for col in SUMMARY_COLUMNS:
            assert got_json[col] == want[col]
    total = Decimal(expected["total"]["cost_usd"])
    assert f'<div class="v" data-v="{format_decimal(total)}" title="${format_decimal(total)}">' in html_text
    assert money_cents(total) in html_text


def test_demo_headline_and_coverage(demo: Session) -> None:
    data = build(demo)
    html_text = page(data)
    # The samples are batch results and the shipped table has no batch rows: every
    # billed request is a tier fallback, and the banner must say so prominently.
    assert data.headline.coverage.tier_fallback == 356
    assert '<p class="coverage warn" id="coverage" role="note">' in html_text
    assert (
        "360 of 360 requests priced; 0 tokens unpriced; 356 priced at standard for lack of a batch price."
        in html_text
    )
    assert data.headline.total.requests == 360 and data.headline.total.failed == 4
    assert data.headline.success_rate == Decimal(356) / 360
    assert ">98.9%<" in html_text


def test_share_per_token_and_per_request_figures_by_hand(fixed: Session) -> None:
    data = build(fixed)
    by_model = {m.model: m for m in data.models}
    gpt4o = by_model["gpt-4o"]
    assert gpt4o.cost_usd == Decimal("0.04")  # 0.01875 + 0.02125
    assert gpt4o.priced == 7 and gpt4o.tier_fallback == 6  # the expired c-4 is "not billed", not a fallback
    assert gpt4o.cost_per_1k_requests == Decimal("0.04") * 1000 / 7
    # priced tokens: run 1 1200+3500+600 (+0 for c-4) and run 2 1300+3600+600 = 10800
    assert gpt4o.priced_tokens == 10800
    assert gpt4o.cost_per_1m_tokens == Decimal("0.04") * 1_000_000 / 10800
    total = Decimal("0.04") + Decimal("0.0005325") + Decimal("0.0058")
    assert data.headline.total.cost_usd == total
    assert gpt4o.share_of_spend == Decimal("0.04") / total
    assert sum(m.share_of_spend or 0 for m in data.models) == pytest.approx(Decimal(1), abs=Decimal("1e-20"))
    mystery = by_model["mystery-model"]
    assert mystery.cost_usd is None and mystery.share_of_spend is None and mystery.unpriced == 2
    html_text = page(data)
    row = rows_by_key(html_text, "table-models")["gpt-4o"]
    assert row["cost_usd"]["text"] == "$0.04" and row["cost_usd"]["title"] == "$0.04"
    assert row["cost_per_1m_tokens"]["text"] == "$3.7037"  # 3.703703... to 6 significant figures
    assert row["share_of_spend"]["text"] == "86.3%"
    assert rows_by_key(html_text, "table-models")["mystery-model"]["cost_usd"]["text"] == "unpriced"


def test_coverage_banner_counts_unpriced_and_fallback_by_tier(fixed: Session) -> None:
    cov = build(fixed).headline.coverage
    assert (cov.requests, cov.priced, cov.unpriced, cov.unpriced_tokens) == (13, 11, 2, 620)
    assert [(f.tier, f.requests) for f in cov.fallback_by_tier] == [("batch", 6)]
    html_text = page(build(fixed))
    assert (
        "11 of 13 requests priced; 620 tokens unpriced (not included in the total); 6 priced at standard for lack of a batch price."
        in html_text
    )


def test_coverage_is_quiet_when_everything_is_priced_at_its_own_tier(fixed: Session) -> None:
    html_text = page(build(fixed, Filters(run_ids=(3,))))  # gpt-4o-mini at its own batch row
    assert 'class="coverage warn"' not in html_text
    assert "Price coverage: all 3 requests priced, each at its own service tier's price." in html_text
    assert 'data-col="unpriced"' not in html_text.split('id="table-models"')[1].split("</table>")[0]


# --- model comparison ------------------------------------------------------------------------


def test_comparison_figures_by_hand(fixed: Session) -> None:
    c = build(fixed).comparison
    assert c is not None
    assert c.baseline == "gpt-4o" and c.baseline_source == "most requests"  # 7 requests vs 3
    assert c.shared_custom_ids == 3  # c-1..c-3; c-4 ran on gpt-4o only; chat line numbers never join
    (mini,) = c.rows
    assert mini.model == "gpt-4o-mini" and mini.pairs == 3 and mini.priced_pairs == 3
    # Against gpt-4o's latest run (run 2), not run 1.
    assert mini.baseline_cost_usd == Decimal("0.02125")
    assert mini.total_cost_ratio == Decimal("0.0005325") / Decimal("0.02125")
    per_request = [Decimal("0.00012") / Decimal("0.0055"), Decimal("0.00036") / Decimal("0.0135"),
                   Decimal("0.0000525") / Decimal("0.00225")]  # fmt: skip
    assert mini.mean_cost_ratio == pytest.approx(float(sum(per_request) / 3), rel=1e-12)
    assert (mini.output_tokens, mini.baseline_output_tokens) == (650, 1000)
    assert mini.output_ratio == Decimal("0.65")
    assert mini.latency_pairs == 3 and mini.latency_ratio == pytest.approx(500 / 2000)
    assert mini.failure_rate == 0 and mini.baseline_failure_rate == 0
    # Scatter: gpt-4o-mini is cheaper *and* faster, so it alone is on the Pareto front.
    points = {p.model: p for p in c.points}
    assert points["gpt-4o-mini"].pareto and not points["gpt-4o"].pareto
    assert points["gpt-4o"].mean_cost_usd == Decimal("0.02125") / 3
    assert points["gpt-4o"].mean_latency_ms == pytest.approx(2000.0)
    html_text = page(build(fixed))
    assert 'id="chart-comparison"' in html_text and 'id="no-scatter"' not in html_text
    row = rows_by_key(html_text, "table-comparison")["gpt-4o-mini"]
    assert row["output_ratio"]["text"] == "0.65×" and row["latency_ratio"]["text"] == "0.25×"
    assert row["total_cost_ratio"]["text"] == "0.02506×"


def test_comparison_with_explicit_baseline_inverts_the_ratio(fixed: Session) -> None:
    c = build(fixed, baseline="GPT-4O-MINI").comparison
    assert c is not None and c.baseline == "gpt-4o-mini" and c.baseline_source == "--baseline"
    (gpt4o,) = c.rows
    assert gpt4o.total_cost_ratio == Decimal("0.02125") / Decimal("0.0005325")
    assert gpt4o.output_ratio == Decimal(1000) / 650


def test_unknown_baseline_is_a_config_error(fixed: Session) -> None:
    with pytest.raises(ConfigError, match=r"--baseline 'gpt-5'.*models: gpt-4o, gemini-long"):
        build(fixed, baseline="gpt-5")


def test_no_comparison_section_when_no_custom_id_ran_on_two_models(fixed: Session) -> None:
    data = build(fixed, Filters(run_ids=(1, 2, 4)))  # gpt-4o twice on the same ids is not a comparison
    assert data.comparison is None
    html_text = page(data)
    assert "comparison" not in section_ids(html_text)
    assert 'href="#comparison"' not in html_text
    assert "model comparison: no custom_id ran on more than one model in this selection" in html_text


def test_comparison_without_latency_says_so_and_draws_no_scatter(demo: Session) -> None:
    data = build(demo)
    assert data.comparison is not None and not data.comparison.latency_known
    html_text = page(data)
    assert "comparison" in section_ids(html_text)
    assert 'id="no-scatter"' in html_text and 'id="chart-comparison"' not in html_text
    assert "latency was not recorded for these requests" in html_text


def test_differing_message_hashes_are_not_the_same_request(tmp_path: Path, fixed: Session) -> None:
    # Same custom_id, different prompt: not the same request, so nothing to compare.
    write_lines(tmp_path / "a-in.jsonl", [batch_input("x-1", "gpt-4o", text="alpha")])
    write_lines(tmp_path / "b-in.jsonl", [batch_input("x-1", "gpt-4o-mini", text="beta")])
    write_lines(
        tmp_path / "a.jsonl", [batch_ok("x-1", completion_body("gpt-4o", 10, 10, created=T_0301_1000))]
    )
    write_lines(
        tmp_path / "b.jsonl", [batch_ok("x-1", completion_body("gpt-4o-mini", 10, 10, created=T_0301_1000))]
    )
    a = replay(fixed, Path("a.jsonl"), requests_file=Path("a-in.jsonl"))
    b = replay(fixed, Path("b.jsonl"), requests_file=Path("b-in.jsonl"))
    assert build(fixed, Filters(run_ids=(a, b))).comparison is None
    # The same prompt on both sides does pair up.
    write_lines(tmp_path / "c-in.jsonl", [batch_input("x-1", "gpt-4o-mini", text="alpha")])
    c_run = replay(fixed, Path("b.jsonl"), requests_file=Path("c-in.jsonl"), force=True)
    c = build(fixed, Filters(run_ids=(a, c_run))).comparison
    assert c is not None and c.shared_custom_ids == 1 and len(c.rows) == 1


# --- what-if ---------------------------------------------------------------------------------


def test_whatif_prices_observed_volumes_on_every_model_by_hand(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(
        "model,input_per_1m,output_per_1m,cached_input_per_1m,reasoning_per_1m,service_tier,min_prompt_tokens,effective_from,effective_to\n"
        "ran,1.00,2.00,0.50,,standard,0,,\n"
        "ran,0.50,1.00,,,batch,0,,\n"
        "cheap,0.10,0.40,,0.80,standard,0,,\n"
        "long,1.00,2.00,,,standard,0,,\n"
        "long,3.00,6.00,,,standard,1000,,\n"
        "later,1.00,1.00,,,standard,0,2026-01-01,\n"
        "batchonly,1.00,1.00,,,batch,0,,\n",
        encoding="utf-8",
    )
    (tmp_path / "a.csv").write_text("alias,model\n", encoding="utf-8")
    with report_session(tmp_path / "w.duckdb", Path("p.csv"), Path("a.csv")) as s:
        # "ran": 1500 in (300 cached) / 300 out (60 reasoning) and 500 in / 100 out -> ratio 400/2000 = 0.2
        write_lines(tmp_path / "r.jsonl", [
            completion_body("ran", 1500, 300, cached=300, reasoning=60, created=T_0301_1000),
            completion_body("ran", 500, 100, created=T_0301_1000),
        ])  # fmt: skip
        replay(s, Path("r.jsonl"))
        w = build(s).whatif
    assert w is not None
    rows = {r.model: r for r in w.rows}
    assert set(rows) == {"ran", "cheap", "long", "later", "batchonly"}
    ran = rows["ran"]
    # The model that ran: input exact, output = 2000 x 400/2000 = 400 (reasoning share 60/400 -> 60).
    assert (ran.input_tokens, ran.cached_tokens, ran.output_tokens, ran.reasoning_tokens) == (
        2000,
        300,
        400,
        60,
    )
    assert ran.output_basis == "observed ratio" and ran.observed_output_ratio == Decimal("0.2")
    assert ran.input_cost_usd == Decimal("0.00185")  # (1700 x 1.00 + 300 x 0.50) / 1e6, standard row
    assert ran.output_cost_usd == Decimal("0.0008")  # 400 x 2.00 / 1e6 (reasoning at output)
    cheap = rows["cheap"]  # did not run: the same output tokens as observed
    assert (cheap.output_tokens, cheap.reasoning_tokens, cheap.output_basis) == (400, 60, "same output")
    # 2000 x 0.10 (cache at input) + 340 x 0.40 + 60 x 0.80 (reasoning price) = 200 + 136 + 48
    assert cheap.cost_usd == Decimal("0.000384")
    # long: the 1500-token request is priced by the >= 1000 row, the 500-token one by the base row.
    # 1500 x 3 + 300 x 6 + 500 x 1 + 100 x 2 = 4500 + 1800 + 500 + 200 = 7000
    assert rows["long"].cost_usd == Decimal("0.007")
    assert len(rows["long"].price_ids) == 2
    assert rows["later"].cost_usd is None and rows["later"].note == "no standard price row in force"
    assert rows["batchonly"].cost_usd is None
    # Actual ("ran" at its standard row, chat.completion lines):
    # 1200 x 1.00 + 300 x 0.50 + 300 x 2.00 + 500 x 1.00 + 100 x 2.00 = 1200 + 150 + 600 + 500 + 200
    actual = Decimal("0.00265")
    assert w.actual_cost_usd == actual
    assert ran.cost_usd == Decimal("0.00265") and ran.vs_actual == 1
    assert [r.model for r in w.rows][:3] == ["cheap", "ran", "long"]  # cheapest first, unpriced last


def test_whatif_uses_rows_in_force_at_as_of(fixed: Session) -> None:
    # old-model's only row ended in 2021: unpriced for a what-if "now".
    rows = {r.model: r for r in build(fixed).whatif.rows}  # type: ignore[union-attr]
    assert rows["old-model"].cost_usd is None
    rows_2020 = {r.model: r for r in build(fixed, as_of=datetime(2020, 6, 1)).whatif.rows}  # type: ignore[union-attr]
    assert rows_2020["old-model"].cost_usd is not None


# --- over time -------------------------------------------------------------------------------


def test_days_are_cut_in_the_requested_time_zone(fixed: Session) -> None:
    utc = {(r.day.isoformat(), r.model): r for r in build(fixed).daily}
    ny = {(r.day.isoformat(), r.model): r for r in build(fixed, tz="america/new_york").daily}
    # The chat lines were created 2025-03-03 01:30 UTC = 2025-03-02 20:30 in New York.
    assert ("2025-03-03", "gemini-long") in utc and ("2025-03-02", "gemini-long") in ny
    assert utc[("2025-03-03", "gemini-long")].cost_usd == Decimal("0.0058")
    data = build(fixed, tz="america/new_york")
    assert data.tz == "America/New_York"  # canonical spelling
    html_text = page(data)
    assert "days are calendar days in <strong>America/New_York</strong>" in html_text
    assert data.headline.last_at == datetime(2025, 3, 2, 20, 30)


def test_unknown_time_zone_is_a_config_error(fixed: Session) -> None:
    with pytest.raises(ConfigError, match="--tz 'Mars/Olympus'"):
        build(fixed, tz="Mars/Olympus")


def test_run_over_run_change_for_runs_with_the_same_name(fixed: Session) -> None:
    data = build(fixed)
    (change,) = data.run_changes
    assert (change.name, change.run_id, change.previous_run_id) == ("nightly", 2, 1)
    assert change.cost_change == Decimal("0.02125") / Decimal("0.01875") - 1  # +13.3%
    # per priced request: 0.02125/3 against 0.01875/4 (the expired request counts as priced at $0)
    assert change.cost_per_request_change == (Decimal("0.02125") / 3) / (Decimal("0.01875") / 4) - 1
    html_text = page(data)
    row = tables(html_text).tables["table-runs-change"][0]
    assert row["cost_change"]["text"] == "+13.3%" and row["cost_per_request_change"]["text"] == "+51.1%"
    only_one = page(build(fixed, Filters(run_ids=(1, 3))))
    assert 'id="no-run-changes"' in only_one


# --- latency, breakdowns, top requests -------------------------------------------------------


def test_latency_percentiles_and_not_recorded(fixed: Session, demo: Session) -> None:
    rows = {r.model: r for r in build(fixed).latency}
    mini = rows["gpt-4o-mini"]
    assert (mini.latency_n, mini.latency_p50_ms, mini.ttft_n, mini.ttft_p50_ms) == (3, 500.0, 3, 120.0)
    assert mini.latency_p95_ms == pytest.approx(590.0)  # linear interpolation between 500 and 600
    gpt4o = rows["gpt-4o"]
    assert gpt4o.latency_n == 3 and gpt4o.ttft_n == 0 and gpt4o.ttft_p50_ms is None
    html_text = page(build(fixed))
    latency = rows_by_key(html_text, "table-latency")
    assert latency["gpt-4o"]["ttft_p50_ms"]["text"] == "not recorded"
    assert latency["gpt-4o-mini"]["latency_p99_ms"]["text"] == "598 ms"
    replayed = page(build(demo))
    assert 'id="latency-not-recorded"' in replayed and 'id="table-latency"' not in replayed


def test_breakdowns_by_user_tag_finish_reason_and_error(fixed: Session) -> None:
    data = build(fixed)
    users = {(u.user, u.listed): u for u in data.users}
    # u-alice: c-1 (0.004) and c-3 (0.00225) of run 1; u-bob: c-2 (0.0125) and the expired c-4.
    assert users[("u-alice", True)].cost_usd == Decimal("0.00625")
    assert users[("u-bob", True)].requests == 2 and users[("u-bob", True)].failed == 1
    assert users[(None, True)].requests == 9  # no user id on the other runs
    tags = {(t.key, t.value): t for t in data.tags}
    assert tags[("team", "support")].runs == 2 and tags[("team", "support")].cost_usd == Decimal("0.04")
    assert tags[("exp", "mini")].requests == 3
    finish = {(f.model, f.reason): f for f in data.finish_reasons}
    assert finish[("gpt-4o", "length")].choices == 1 and finish[("gpt-4o", "stop")].choices == 5
    assert finish[("gpt-4o", "length")].share_of_model == Decimal(1) / 6
    (error,) = data.failures
    assert (error.error_type, error.model, error.requests) == ("batch_expired", "gpt-4o", 1)
    html_text = page(data)
    assert (
        'id="table-users"' in html_text
        and 'id="table-tags"' in html_text
        and 'id="table-errors"' in html_text
    )


def test_user_list_is_capped_with_an_others_row(tmp_path: Path, fixed: Session) -> None:
    n = 55
    write_lines(
        tmp_path / "u-in.jsonl", [batch_input(f"u{i}", "gpt-4o", user=f"user-{i:02d}") for i in range(n)]
    )
    write_lines(tmp_path / "u.jsonl",
                [batch_ok(f"u{i}", completion_body("gpt-4o", 1000 + i, 10, created=T_0301_1000)) for i in range(n)])  # fmt: skip
    run = replay(fixed, Path("u.jsonl"), requests_file=Path("u-in.jsonl"))
    users = build(fixed, Filters(run_ids=(run,))).users
    listed = [u for u in users if u.listed]
    assert len(listed) == 50 and listed[0].user == "user-54"  # most expensive first
    (others,) = [u for u in users if not u.listed]
    assert others.users == 5 and others.requests == 5
    assert (
        sum((u.cost_usd or Decimal(0)) for u in users)
        == build(fixed, Filters(run_ids=(run,))).headline.total.cost_usd
    )


def test_top_requests_are_the_most_expensive_with_stored_text(fixed: Session) -> None:
    top = build(fixed).top_requests
    assert [(t.custom_id, t.cost_usd) for t in top[:3]] == [
        ("c-2", Decimal("0.0135")), ("c-2", Decimal("0.0125")), ("3", Decimal("0.0058"))
    ]  # fmt: skip
    assert len(top) == 10  # every request that cost something (the expired one cost $0)
    assert top[1].completion == "Answer two" and top[1].user == "u-bob"
    html_text = page(build(fixed))
    assert "Answer two" in html_text


def test_top_requests_show_no_text_when_none_was_stored(demo: Session) -> None:
    data = build(demo)  # the library replays without --store-content
    assert len(data.top_requests) == 20 and all(t.completion is None for t in data.top_requests)
    costs = [t.cost_usd for t in data.top_requests]
    assert costs == sorted(costs, reverse=True)
    assert "Completion text was not stored" in page(data)


def test_empty_selection_renders_a_short_page(fixed: Session) -> None:
    data = build(fixed, Filters(models=("no-such-model",)))
    html_text = page(data)
    assert "No requests match the selection" in html_text
    assert section_ids(html_text) == {"headline", "method"}
    assert json.loads(render_json(data))["headline"]["total"]["requests"] == 0


# --- method footer ---------------------------------------------------------------------------


def test_method_footer_lets_an_auditor_reproduce(fixed: Session) -> None:
    data = build(fixed, Filters(run_ids=(1, 2)))
    html_text = page(data)
    sha = hashlib.sha256((REPORT_DATA / "prices.csv").read_bytes()).hexdigest()
    assert f"sha256 {sha}" in html_text and "prices.csv" in html_text
    assert "fixed.duckdb" in html_text and "runs 1, 2" in html_text
    assert "generated 2025-06-01 12:00:00 UTC" in html_text
    assert "(prompt tokens - cache reads - cache writes) x input price" in html_text
    prices = {(p.model, p.service_tier): p for p in data.method.price_rows}
    assert prices[("gpt-4o", "standard")].requests == 7
    assert prices[("gpt-4o", "standard")].used_for == "costs and what-if"
    assert prices[("gpt-4o", "standard")].line == 2
    assert prices[("gpt-4o-mini", "standard")].used_for == "what-if"


# --- output properties -----------------------------------------------------------------------


def test_same_data_gives_a_byte_identical_page(fixed: Session) -> None:
    first = render_html(build(fixed), generated_at=GENERATED)
    second = render_html(build(fixed), generated_at=GENERATED)
    assert first == second
    assert render_json(build(fixed)) == render_json(build(fixed))
    assert "generated 2025-06-01" not in render_html(build(fixed), generated_at=None, plotly_mode="cdn")


def test_report_time_comes_from_the_environment() -> None:
    assert report_time({"COSTLENS_REPORT_TIME": "2025-06-01T14:00:00+02:00"}) == datetime(2025, 6, 1, 12, 0)
    assert report_time({"COSTLENS_REPORT_TIME": "2025-06-01"}) == datetime(2025, 6, 1)
    assert report_time({}).microsecond == 0
    with pytest.raises(ConfigError, match="COSTLENS_REPORT_TIME"):
        report_time({"COSTLENS_REPORT_TIME": "yesterday"})


def test_plotly_js_is_inlined_exactly_once(fixed: Session) -> None:
    from plotly.offline import get_plotlyjs

    html_text = render_html(build(fixed), plotly_mode="inline", generated_at=GENERATED)
    js = get_plotlyjs()
    assert html_text.count(js) == 1
    assert '<script src="https://cdn.plot.ly' not in html_text
    # Four charts, one plotly.js: the page stays far below the 6 MB budget.
    assert len(html_text.encode()) < len(js.encode()) + 200_000


def test_cdn_mode_references_plotly_with_integrity(fixed: Session) -> None:
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    html_text = page(build(fixed))
    js = get_plotlyjs()
    sri = "sha256-" + base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
    assert (
        f'<script src="https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js" integrity="{sri}" crossorigin="anonymous"></script>'
        in html_text
    )
    assert js[:2000] not in html_text
    assert len(html_text.encode()) < 200_000


def test_fixed_chart_ids_and_chart_presence(fixed: Session, demo: Session) -> None:
    html_text = page(build(fixed))
    charts = json.loads(
        re.search(
            r'<script type="application/json" id="report-charts">(.*?)</script>', html_text, re.S
        ).group(1)
    )  # type: ignore[union-attr]
    assert sorted(charts) == ["chart-comparison", "chart-cost-by-model", "chart-daily", "chart-whatif"]
    for chart_id in charts:
        assert f'<div id="{chart_id}" class="chart"' in html_text
    by_model = charts["chart-cost-by-model"]["data"]
    assert by_model[0]["y"] == ["gpt-4o", "gemini-long", "gpt-4o-mini"]  # priced models, by cost
    assert by_model[0]["x"][0] + by_model[1]["x"][0] == pytest.approx(0.04)


def test_content_security_policy_allows_exactly_the_pages_scripts(fixed: Session) -> None:
    html_text = render_html(build(fixed), plotly_mode="inline", generated_at=GENERATED)
    csp = html.unescape(
        re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html_text).group(1)
    )  # type: ignore[union-attr]
    allowed = set(re.findall(r"'(sha256-[A-Za-z0-9+/=]+)'", csp))
    inline = re.findall(r"<script>(.*?)</script>", html_text, re.S)
    assert len(inline) == 3  # PlotlyConfig, plotly.js, the report's own script
    for body in inline:
        assert "sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() in allowed
    assert len(allowed) == 3 and "'unsafe-inline'" not in csp.split("style-src")[0]


def test_script_json_cannot_close_the_script_or_break_a_line() -> None:
    evil = {"m": "</script><script>alert(1)</script> <!-- & \u2028\u2029 'x' \"y\""}
    text = script_json(evil)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == evil


def test_untrusted_text_is_escaped_everywhere(tmp_path: Path, fixed: Session) -> None:
    run = build_hostile(fixed, tmp_path)
    html_text = render_html(
        build(fixed, Filters(run_ids=(run,))), plotly_mode="inline", generated_at=GENERATED
    )
    for payload in (HOSTILE_MODEL, HOSTILE_USER, HOSTILE_TAG, HOSTILE_COMPLETION, HOSTILE_CUSTOM_ID):
        assert payload not in html_text
    assert "&lt;img src=x onerror=" in html_text
    # Only our own script elements exist: the three inline ones, plus the JSON data block.
    assert html_text.count("<script") == 4
    charts = re.search(r'id="report-charts">(.*?)</script>', html_text, re.S).group(1)  # type: ignore[union-attr]
    assert "<" not in charts and "\u2028" not in charts
    # In chart labels the name is HTML-escaped first (plotly renders a subset of HTML in labels).
    # Escaped as HTML, and its U+2028 (a line separator, not printable) shown as an escape (costlens.inert).
    assert json.loads(charts)["chart-cost-by-model"]["data"][0]["y"] == [
        html.escape(HOSTILE_MODEL.replace("\u2028", "\\u2028"), quote=False)
    ]


HOSTILE_MODEL = "<img src=x onerror=\"document.title='xss-img'\">\u2028"
HOSTILE_USER = "\"><script>document.title='xss-user'</script>"
HOSTILE_TAG = "</script><script>document.body.insertAdjacentHTML('beforeend','<b id=xss-tag>x</b>')</script>"
HOSTILE_COMPLETION = "<svg onload=\"document.title='xss-svg'\"></svg>"
HOSTILE_CUSTOM_ID = "<iframe srcdoc='<script>parent.document.title=1</script>'>"


def build_hostile(session: Session, root: Path) -> int:
    """One run whose model, user, tag, custom_id and completion all try to run a script."""
    write_lines(root / "evil-in.jsonl", [batch_input(HOSTILE_CUSTOM_ID, HOSTILE_MODEL, user=HOSTILE_USER)])
    write_lines(root / "evil.jsonl", [
        batch_ok(HOSTILE_CUSTOM_ID, completion_body(HOSTILE_MODEL, 100, 10, created=T_0301_1000,
                                                    content=HOSTILE_COMPLETION)),
    ])  # fmt: skip
    # Price the hostile model so it reaches the charts too.
    session.conn.execute(
        "INSERT INTO prices BY NAME SELECT 9999 AS price_id, 0 AS sheet, ? AS model, lower(?) AS model_key, "
        "1 AS input_per_1m, 2 AS output_per_1m, 'standard' AS service_tier, 0 AS min_prompt_tokens, "
        "'USD' AS currency, 'prices.csv' AS price_file, 99 AS price_line",
        [HOSTILE_MODEL, HOSTILE_MODEL],
    )
    run = replay(session, Path("evil.jsonl"), requests_file=Path("evil-in.jsonl"), tier="standard",
                 run_name=HOSTILE_TAG, tags={"x": HOSTILE_TAG}, store_content=True)  # fmt: skip
    pin_times(session)
    return run


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "sig6", "cents"),
    [
        ("0.347373750", "$0.347374", "$0.35"),
        ("0.0000123456789", "$0.0000123457", "< $0.01"),
        ("2079.848231800", "$2,079.85", "$2,079.85"),
        ("1234567.891", "$1,234,568", "$1,234,567.89"),
        ("0.5", "$0.5", "$0.50"),
        ("0", "$0", "$0.00"),
        ("0.0049999", "$0.0049999", "< $0.01"),
        ("0.005", "$0.005", "$0.01"),
    ],
)
def test_money_display(value: str, sig6: str, cents: str) -> None:
    assert money_sig(Decimal(value)) == sig6
    assert money_cents(Decimal(value)) == cents


def test_ratio_and_percent_display() -> None:
    assert ratio(Decimal("0.025058823529")) == "0.02506×"
    assert ratio(2.7471322) == "2.747×"
    assert percent(Decimal("0.13333"), signed=True) == "+13.3%"
    assert percent(Decimal("-0.05"), signed=True) == "-5.0%"
    assert money_sig(None) == "unpriced"


def test_json_format_has_exact_money_and_every_section(fixed: Session) -> None:
    payload = json.loads(render_json(build(fixed)))
    assert payload["report"] == "costlens" and payload["format_version"] == 2
    assert payload["headline"]["total"]["cost_usd"] == "0.0463325"
    assert payload["headline"]["coverage"]["complete"] is False
    assert payload["comparison"]["rows"][0]["output_ratio"] == "0.65"
    assert payload["run_changes"][0]["cost_change"] == format_decimal(
        Decimal("0.02125") / Decimal("0.01875") - 1
    )
    assert {
        "whatif",
        "daily",
        "latency",
        "users",
        "tags",
        "finish_reasons",
        "failures",
        "top_requests",
        "method",
    } <= set(payload)
    assert payload["headline"]["runs"][2]["tags"] == {"exp": "mini", "team": "research"}
    assert payload["latency_recorded"] is True
    money = re.findall(r'"[a-z_]*cost_usd": ("[^"]*"|null)', render_json(build(fixed)))
    assert money and all(m == "null" or re.fullmatch(r'"-?\d+(\.\d+)?"', m) for m in money)


def test_write_report_creates_the_directory_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "nested" / "r.html"
    write_report(target, "<p>x</p>\n")
    assert target.read_text(encoding="utf-8") == "<p>x</p>\n"
    assert [p.name for p in target.parent.iterdir()] == ["r.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


# --- golden ----------------------------------------------------------------------------------


def test_golden_html_snapshot(fixed: Session) -> None:
    """The whole page for the fixed data set. After an intended change: UPDATE_GOLDEN=1 pytest ..."""
    html_text = render_html(build(fixed), plotly_mode="cdn", generated_at=GENERATED)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(html_text, encoding="utf-8", newline="\n")
    expected = GOLDEN.read_text(encoding="utf-8")
    if html_text != expected:
        (Path.cwd() / "golden.actual.html").write_text(html_text, encoding="utf-8")
        pytest.fail(f"report HTML differs from {GOLDEN}; if intended, rerun with UPDATE_GOLDEN=1")


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_report_writes_html_and_json(invoke: Callable[..., Any], tmp_path: Path, db_path: Path) -> None:
    with open_session(Settings(db_path=db_path)) as s:
        replay(s, SAMPLES / "openai_batch_output_gpt-4o.jsonl")
    env = {"COSTLENS_REPORT_TIME": "2025-06-01T12:00:00Z"}
    result = invoke("report", "--out", tmp_path / "r.html", "--tz", "Europe/Paris", env=env)
    assert result.exit_code == 0, result.stderr
    html_text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Europe/Paris" in html_text and "generated 2025-06-01 12:00:00 UTC" in html_text
    result = invoke("report", "--format", "json", "--out", tmp_path / "r.json", env=env)
    assert result.exit_code == 0, result.stderr
    with open_session(Settings(db_path=db_path)) as s:
        want = summarize(s.conn).as_json()["total"]["cost_usd"]
    assert json.loads((tmp_path / "r.json").read_text())["headline"]["total"]["cost_usd"] == want
    bad = invoke("report", "--tz", "Nowhere/Else", "--out", tmp_path / "x.html")
    assert bad.exit_code == 2 and "unknown time zone" in bad.stderr
