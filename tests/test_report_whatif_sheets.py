"""What-if with several price sheets: the main sheet's models plus the fallback models that ran, each
ratio with the number of requests it rests on, and the newer buckets (1-hour writes, request fees)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

from helpers import Lines, write_jsonl

from costlens.money.pricing import PRICE_COLUMNS

L = Lines()


def sheet(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=PRICE_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


def test_whatif_lists_main_models_and_fallback_models_that_ran(invoke, tmp_path):
    main = sheet(tmp_path / "main.csv", [
        {"model": "a", "input_per_1m": "1", "output_per_1m": "2"},
        {"model": "b", "input_per_1m": "2", "output_per_1m": "4", "per_request_usd": "0.01"},
    ])  # fmt: skip
    fallback = sheet(tmp_path / "fb.csv", [
        {"model": "a", "input_per_1m": "100", "output_per_1m": "100"},  # hidden by the main sheet's a
        {"model": "ran-on-fb", "input_per_1m": "3", "output_per_1m": "6", "cache_write_per_1m": "4",
         "cache_write_1h_per_1m": "8"},
        {"model": "never-ran", "input_per_1m": "9", "output_per_1m": "9"},
    ])  # fmt: skip
    g = ["--pricing", str(main), "--fallback-pricing", str(fallback)]
    anthropic = {"input_tokens": 100, "output_tokens": 50, "cache_creation_input_tokens": 300,
                 "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}}  # fmt: skip
    path = write_jsonl(tmp_path / "r.jsonl", [
        L.openai("1", model="a", usage={"prompt_tokens": 400, "completion_tokens": 100, "total_tokens": 500}),
        L.openai("2", model="a", usage={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
        L.anthropic("3", model="ran-on-fb", usage=anthropic),
    ])  # fmt: skip
    assert invoke(*g, "replay", path, "--tier", "standard").exit_code == 0
    data = json.loads(invoke(*g, "report", "--format", "json", "--out", "-").stdout)
    rows = {r["model"]: r for r in data["whatif"]["rows"]}
    assert set(rows) == {"a", "b", "ran-on-fb"}  # not never-ran: a fallback sheet can hold thousands
    assert (rows["a"]["observed_requests"], rows["ran-on-fb"]["observed_requests"], rows["b"]["observed_requests"]) == (
        2, 1, None,
    )  # fmt: skip
    # Volumes: prompt 400 + 400 = 800 (of which 300 cache writes, 200 of them 1-hour), output 100 + 50.
    # On ran-on-fb (its own ratio 50/400 = 0.125 -> 100 output):
    # 500 x 3 + 100 x 4 + 200 x 8 = 3,500 input; 100 x 6 = 600 output.
    fb = rows["ran-on-fb"]
    assert (Decimal(fb["input_cost_usd"]), Decimal(fb["output_cost_usd"])) == (
        Decimal("0.0035"),
        Decimal("0.0006"),
    )
    # On b: 500 x 2 + 300 x 2 (no cache prices) = 1,600; output (same 150) x 4 = 600; 3 ok requests x 0.01.
    b = rows["b"]
    assert Decimal(b["cost_usd"]) == Decimal("0.0016") + Decimal("0.0006") + Decimal("0.03")
    html = tmp_path / "r.html"
    assert invoke(*g, "report", "--out", html).exit_code == 0
    assert "observed ratio 0.125× (1 request)" in html.read_text(encoding="utf-8")
