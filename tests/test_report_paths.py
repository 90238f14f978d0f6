"""The report is forwarded: it names the DB and price files by file name and sha256, full paths only on request."""

from __future__ import annotations

import json

from helpers import Lines, write_jsonl

L = Lines()


def test_report_names_files_without_their_directories_unless_asked(invoke, tmp_path):
    secret_dir = tmp_path / "home" / "alice" / "private-project"
    secret_dir.mkdir(parents=True)
    prices = secret_dir / "negotiated.csv"
    prices.write_text("model,input_per_1m,output_per_1m\ngpt-4o-mini,1,2\n", encoding="utf-8")
    db = secret_dir / "nightly.duckdb"
    g = ["--db", str(db), "--pricing", str(prices)]
    path = write_jsonl(tmp_path / "r.jsonl", [L.openai("a")])
    assert invoke(*g, "replay", path, "--tier", "standard").exit_code == 0

    page = json.loads(invoke(*g, "report", "--format", "json", "--out", "-").stdout)
    text = json.dumps(page)
    assert str(secret_dir) not in text and "alice" not in text
    method = page["method"]
    assert method["db_path"] == "nightly.duckdb"
    assert {s["path"] for s in method["price_sources"]} >= {"negotiated.csv", "model_aliases.csv"}
    assert all(len(s["sha256"]) == 64 for s in method["price_sources"])
    assert {r["file"] for r in method["price_rows"]} == {"negotiated.csv"}
    html = tmp_path / "r.html"
    assert invoke(*g, "report", "--out", html).exit_code == 0
    assert str(secret_dir) not in html.read_text(encoding="utf-8")

    full = json.loads(invoke(*g, "report", "--format", "json", "--out", "-", "--full-paths").stdout)
    assert full["method"]["db_path"] == str(db)
    assert str(prices) in {s["path"] for s in full["method"]["price_sources"]}
