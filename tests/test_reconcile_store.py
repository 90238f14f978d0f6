"""Each reconciliation is stored (migration 8) and the latest one can be read back for the report."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
from test_reconcile import MINI, mini_costs, openai_page, three_days, usage_result, write_json  # noqa: F401

from costlens.money.filters import Filters
from costlens.reconcile import latest_reconciliation, read_exports, reconcile, reconciliation_summary
from costlens.session import Settings, open_session

ROOT = Path(__file__).resolve().parent.parent


def stored(db_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_the_reconciliation_its_inputs_and_cells_are_stored(invoke, three_days, tmp_path, db_path):  # noqa: F811
    three_days(skip_days=(1,))
    usage = write_json(tmp_path / "usage.json", openai_page({d: [usage_result(MINI, 2)] for d in range(3)}))
    costs = write_json(tmp_path / "costs.json", openai_page({d: mini_costs() for d in range(3)}))
    result = invoke("reconcile", usage, costs, "--json")
    assert result.exit_code == 5
    data = json.loads(result.stdout)
    (
        (
            rid,
            kinds,
            tolerance,
            selection,
            command_line,
            version,
            pricing,
            status,
            start,
            end,
            cells,
            differing,
        ),
    ) = stored(
        db_path,
        "SELECT reconciliation_id, kinds, tolerance, selection, command_line, costlens_version, pricing_sha256, "
        "status, period_start, period_end, cells, cells_differing FROM reconciliations",
    )
    assert (rid, kinds, tolerance, status) == (1, "openai-usage,openai-costs", "0.01", "differences")
    assert json.loads(selection) == data["selection"]
    assert command_line == f"costlens reconcile {usage} {costs} --json"
    assert version == "0.1.0"
    assert pricing == hashlib.sha256((ROOT / "data" / "pricing.csv").read_bytes()).hexdigest()
    assert (start, end, cells, differing) == (date(2025, 8, 1), date(2025, 8, 3), 15, 4)
    assert stored(db_path, "SELECT * FROM reconciliation_inputs ORDER BY file_no") == [
        (1, 1, "usage.json", hashlib.sha256(usage.read_bytes()).hexdigest(), "openai-usage", True, 3, 3,
         date(2025, 8, 1), date(2025, 8, 3)),
        (1, 2, "costs.json", hashlib.sha256(costs.read_bytes()).hexdigest(), "openai-costs", True, 3, 6,
         date(2025, 8, 1), date(2025, 8, 3)),
    ]  # fmt: skip
    rows = stored(
        db_path,
        "SELECT day, source, model, tier, measure, provider_value, costlens_value, difference, verdict, cause "
        "FROM reconciliation_cells WHERE verdict <> 'ok' ORDER BY day, source DESC, measure",
    )
    assert rows == [
        (date(2025, 8, 2), "openai-usage", MINI, None, "input_tokens", Decimal(4_000_000), None, Decimal(-4_000_000),
         "missing in costlens", "traffic costlens never saw"),
        (date(2025, 8, 2), "openai-usage", MINI, None, "output_tokens", Decimal(800_000), None, Decimal(-800_000),
         "missing in costlens", "traffic costlens never saw"),
        (date(2025, 8, 2), "openai-usage", MINI, None, "requests", Decimal(2), None, Decimal(-2),
         "missing in costlens", "traffic costlens never saw"),
        (date(2025, 8, 2), "openai-costs", MINI, None, "cost_usd", Decimal("0.54"), None, Decimal("-0.54"),
         "missing in costlens", "traffic costlens never saw"),
    ]  # fmt: skip
    (count,) = stored(db_path, "SELECT count(*) FROM reconciliation_cells WHERE reconciliation_id = 1")
    assert count == (len(data["cells"]),)
    # Exact money: the stored figures are DECIMAL(38,15).
    (types,) = stored(
        db_path,
        "SELECT typeof(provider_value), typeof(difference) FROM reconciliation_cells LIMIT 1",
    )
    assert types == ("DECIMAL(38,15)", "DECIMAL(38,15)")
    # A second reconciliation gets the next id; the first stays as it was.
    assert invoke("reconcile", usage, costs).exit_code == 5
    assert stored(
        db_path, "SELECT reconciliation_id, count(*) FROM reconciliation_cells GROUP BY ALL ORDER BY 1"
    ) == [
        (1, 15),
        (2, 15),
    ]


def test_latest_reconciliation_for_the_report(invoke, three_days, tmp_path, db_path):  # noqa: F811
    three_days(skip_days=(1,))
    usage = write_json(tmp_path / "usage.json", openai_page({d: [usage_result(MINI, 2)] for d in range(3)}))
    costs = write_json(tmp_path / "costs.json", openai_page({d: mini_costs() for d in range(3)}))
    assert invoke("reconcile", usage, costs).exit_code == 5
    assert invoke("reconcile", usage, costs, "--model", MINI, "--tolerance", "1").exit_code == 5
    with open_session(Settings(db_path=db_path)) as session:
        conn = session.conn
        latest = latest_reconciliation(conn)
        assert latest is not None and latest.reconciliation_id == 2 and latest.tolerance == "1"
        same = latest_reconciliation(conn, Filters())
        assert same is not None and same.reconciliation_id == 1  # the one over the report's own selection
        assert latest_reconciliation(conn, Filters(models=(MINI,))).reconciliation_id == 2  # type: ignore[union-attr]
        august = Filters(since=datetime(2025, 8, 1), until=datetime(2025, 9, 1))
        assert latest_reconciliation(conn, august).reconciliation_id == 1  # type: ignore[union-attr]
        assert latest_reconciliation(conn, Filters(since=datetime(2025, 8, 4))) is None
        assert latest_reconciliation(conn, Filters(until=datetime(2025, 8, 1))) is None
        assert latest_reconciliation(conn, Filters(tags={"job": "x"})) is None
    summary = same
    assert summary.status == "differences" and summary.kinds == ("openai-usage", "openai-costs")
    assert summary.period == (date(2025, 8, 1), date(2025, 8, 3))
    assert summary.cells == 15
    assert summary.verdicts == {"ok": 11, "differs": 0, "missing in costlens": 4, "missing at provider": 0}
    assert [(f.file, f.kind, f.buckets) for f in summary.inputs] == [
        ("usage.json", "openai-usage", 3),
        ("costs.json", "openai-costs", 3),
    ]
    money = next(t for t in summary.totals if t.measure == "cost_usd")
    assert (money.source, money.provider, money.costlens, money.difference) == (
        "openai-costs",
        Decimal("1.62"),
        Decimal("1.08"),
        Decimal("-0.54"),
    )
    # Differences: money first, largest first.
    first = summary.differences[0]
    assert (first.day, first.measure, first.difference, first.cause) == (
        date(2025, 8, 2),
        "cost_usd",
        Decimal("-0.54"),
        "traffic costlens never saw",
    )
    assert len(summary.differences) == 4
    payload = summary.as_json()
    assert [(t["source"], t["measure"]) for t in payload["totals"]] == [
        ("openai-usage", "requests"),
        ("openai-usage", "input_tokens"),
        ("openai-usage", "cached_tokens"),
        ("openai-usage", "output_tokens"),
        ("openai-costs", "cost_usd"),
    ]
    assert payload["totals"][-1]["provider"] == "1.62" and payload["differences"][0]["difference"] == "-0.54"


def test_the_library_call_without_storing(three_days, tmp_path, db_path):  # noqa: F811
    three_days()
    usage = write_json(tmp_path / "usage.json", openai_page({d: [usage_result(MINI, 2)] for d in range(3)}))
    exports = read_exports([usage])
    with open_session(Settings(db_path=db_path)) as session:
        result = reconcile(session, exports, store=False)
        assert result.reconciliation_id is None and result.status == "ok"
        assert session.conn.execute("SELECT count(*) FROM reconciliations").fetchall() == [(0,)]
        # The comparison's TEMP tables are gone.
        temp = session.conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name LIKE '_recon%'"
        ).fetchall()
        assert temp == [(0,)]
        stored_one = reconcile(session, exports)
        assert reconciliation_summary(session.conn, stored_one.reconciliation_id or 0).status == "ok"
