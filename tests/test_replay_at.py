"""`replay --at WHEN` dates lines that carry no time; the report counts the undated ones and says so."""

from __future__ import annotations

import csv
import json

from helpers import Lines, write_jsonl

L = Lines()


def test_replay_at_dates_and_prices_lines_without_a_time(invoke, tmp_path):
    prices = tmp_path / "p.csv"
    prices.write_text(
        "model,input_per_1m,output_per_1m,effective_from,effective_to\n"
        "claude-x,1,2,2025-01-01,2025-06-01\n"
        "claude-x,3,4,2025-06-01,\n",
        encoding="utf-8",
    )
    path = write_jsonl(tmp_path / "a.jsonl", [L.anthropic("a-1", model="claude-x")])  # no time of its own
    g = ["--pricing", str(prices)]
    assert invoke(*g, "replay", path, "--tier", "standard", "--at", "2025-03-04T05:06:07Z").exit_code == 0
    out = tmp_path / "e.csv"
    assert invoke(*g, "export", "--format", "csv", "--out", out).exit_code == 0
    (row,) = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert row["priced_at"].startswith("2025-03-04 05:06:07") and row["created_at"] == ""
    # Priced by the row in force then: 11 x 1 + 36 x 2 = 83 / 1e6.
    assert row["cost_usd"] == "0.000083"
    data = json.loads(invoke(*g, "report", "--format", "json", "--out", "-").stdout)
    assert data["headline"]["undated"] == 1
    html = tmp_path / "r.html"
    assert invoke(*g, "report", "--out", html).exit_code == 0
    assert "1 request carries no time of their own: dated at the replay (or replay --at)" in html.read_text()


def test_without_at_undated_lines_are_dated_at_the_replay_and_lines_with_a_time_keep_it(invoke, tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        L.anthropic("undated"),
        L.openai("dated"),  # created 2024-03-26 17:44:14 UTC
    ])  # fmt: skip
    assert invoke("replay", path, "--at", "2020-01-01").exit_code == 0
    out = tmp_path / "e.jsonl"
    assert invoke("export", "--format", "jsonl", "--out", out).exit_code == 0
    rows = {r["custom_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["dated"]["priced_at"].startswith("2024-03-26")  # its own time wins over --at
    assert rows["undated"]["priced_at"].startswith("2020-01-01")
    data = json.loads(invoke("report", "--format", "json", "--out", "-").stdout)
    assert data["headline"]["undated"] == 1


def test_replay_at_must_be_a_date(invoke, user_error, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [L.anthropic("a-1")])
    user_error(invoke("replay", path, "--at", "yesterday"), 2, "--at: 'yesterday' is not an ISO date")
