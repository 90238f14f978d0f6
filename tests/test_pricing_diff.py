"""`costlens pricing diff OLD NEW`: the sheet diff row by row, and the traffic priced on each.

The sheet diff below is worked out by hand (OLD_CSV -> NEW_CSV):

    cheap-m standard            changed: input 2 -> 1, output 8 -> 4 (source unchanged)
    dated-m standard to 2025    unchanged
    dated-m standard from 2025  added (rows are keyed by effective_from, so a new period is a new row)
    dear-m standard             changed: cached_input (empty) -> 0.25; 0.50 -> 0.5 is not a change
    flexy standard              unchanged
    flexy flex                  removed
    long-m standard, >=0        changed: model long-m -> Long-M (the key is case-insensitive)
    long-m standard, >=100000   changed: model, and output 4 -> 5
    only-new standard           added
    match prefix:cheap- removed, match contains:new added

The traffic part must equal ``summary --json --pricing OLD`` and ``--pricing NEW`` (each sheet
alone), model by model; the fixed traffic and its hand-computed costs are in
test_compare_pricing.py.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import Lines, plain_table, write_jsonl
from sheet_cases import MAIN_CSV, OTHER_CSV, traffic_lines

from costlens.money.decimal_text import format_decimal
from costlens.money.diff import CellChange, diff_sheets
from costlens.money.pricing import load_price_table

OLD_CSV = """model,match,input_per_1m,output_per_1m,cached_input_per_1m,service_tier,min_prompt_tokens,effective_from,effective_to,source
cheap-m,,2.00,8.00,,standard,0,,,seed
cheap-m,prefix:cheap-,,,,,,,,
dear-m,,0.50,1.50,,standard,0,,,
flexy,,0.50,2.00,,standard,0,,,
flexy,,0.25,1.00,,flex,0,,,
long-m,,1.00,2.00,,standard,0,,,
long-m,,2.00,4.00,,standard,100000,,,
dated-m,,1,1,,standard,0,,2025-01-01,
"""
NEW_CSV = """model,match,input_per_1m,output_per_1m,cached_input_per_1m,service_tier,min_prompt_tokens,effective_from,effective_to,source
cheap-m,,1.0,4,,standard,0,,,seed
dear-m,,0.5,1.5,0.25,,,,,
flexy,,0.50,2.00,,standard,0,,,
Long-M,,1.00,2.00,,standard,0,,,
Long-M,,2.00,5.00,,standard,100000,,,
dated-m,,1,1,,standard,0,,2025-01-01T00:00:00Z,
dated-m,,2,2,,standard,0,2025-01-01,,
only-new,,3,6,,standard,0,,,
only-new,contains:new,,,,,,,,
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("old", OLD_CSV), ("new", NEW_CSV), ("main", MAIN_CSV), ("other", OTHER_CSV)):
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text(text, encoding="utf-8")
    return out


@pytest.fixture
def traffic(invoke, tmp_path: Path, lines: Lines, files: dict[str, Path], db_path: Path) -> Path:
    first = write_jsonl(tmp_path / "traffic.jsonl", traffic_lines(lines))
    second = write_jsonl(tmp_path / "more.jsonl", [lines.chat("h", model="cheap-m")])
    for path in (first, second):
        assert invoke("replay", path).exit_code == 0
    return db_path


def run_json(invoke, *args: str | Path) -> dict[str, Any]:
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the sheet diff --------------------------------------------------------------------------


def test_sheet_diff_by_hand(files):
    old, new = load_price_table([files["old"]], []), load_price_table([files["new"]], [])
    diff = diff_sheets(old, new, old_name="old", new_name="new")
    summary = [(r.kind, r.label, r.changes) for r in diff.rows]
    assert summary == [
        (
            "changed",
            "cheap-m standard",
            (CellChange("input_per_1m", "2", "1"), CellChange("output_per_1m", "8", "4")),
        ),
        ("added", "dated-m standard from 2025-01-01", ()),
        ("changed", "dear-m standard", (CellChange("cached_input_per_1m", "", "0.25"),)),
        ("removed", "flexy flex", ()),
        ("changed", "Long-M standard", (CellChange("model", "long-m", "Long-M"),)),
        (
            "changed",
            "Long-M standard min_prompt_tokens>=100000",
            (CellChange("model", "long-m", "Long-M"), CellChange("output_per_1m", "4", "5")),
        ),
        ("added", "only-new standard", ()),
    ]
    assert diff.unchanged == 2  # dated-m until 2025 (same instant written two ways) and flexy standard
    assert [(r.old_line, r.new_line) for r in diff.rows] == [
        (2, 2),
        (None, 8),
        (4, 3),
        (6, None),
        (7, 5),
        (8, 6),
        (None, 9),
    ]
    assert dict(diff.rows[1].cells) == {
        "model": "dated-m",
        "input_per_1m": "2",
        "output_per_1m": "2",
        "currency": "USD",
    }
    assert [(m.kind, m.rule, m.model) for m in diff.matches] == [
        ("removed", "prefix:cheap-", "cheap-m"),
        ("added", "contains:new", "only-new"),
    ]
    same = diff_sheets(old, old, old_name="old", new_name="old")
    assert same.identical and same.unchanged == 7  # OLD's 7 price rows


def test_cli_diff_text_and_json_without_a_database(invoke, files, db_path):
    result = invoke("pricing", "diff", files["old"], files["new"])
    assert result.exit_code == 0, result.stderr
    assert "no database: only the sheet diff" in result.stderr
    out = result.stdout
    assert f"Price rows: {files['old']} -> {files['new']}" in out
    assert "  changed  cheap-m standard: input_per_1m 2 -> 1, output_per_1m 8 -> 4" in out
    assert "  changed  dear-m standard: cached_input_per_1m (empty) -> 0.25" in out
    assert "  removed  flexy flex: input_per_1m=0.25, output_per_1m=1" in out
    assert "  added    only-new standard: input_per_1m=3, output_per_1m=6" in out
    assert "  match removed  prefix:cheap- -> cheap-m" in out
    assert "2 added, 1 removed, 4 changed, 2 unchanged; match rows: 1 added, 1 removed." in out
    assert "Selected traffic" not in out
    assert not db_path.exists()  # never created

    payload = run_json(invoke, "pricing", "diff", files["old"], files["new"], "--json")
    assert payload["traffic"] is None
    d = payload["diff"]
    assert (d["added"], d["removed"], d["changed"], d["unchanged"]) == (2, 1, 4, 2)
    assert (d["matches_added"], d["matches_removed"]) == (1, 1)
    changed = {(r["model"], r["min_prompt_tokens"]): r for r in d["rows"] if r["kind"] == "changed"}
    assert changed[("Long-M", 100000)]["changes"] == [
        {"column": "model", "old": "long-m", "new": "Long-M"},
        {"column": "output_per_1m", "old": "4", "new": "5"},
    ]
    added = [r for r in d["rows"] if r["kind"] == "added"]
    assert added[0]["effective_from"] == "2025-01-01" and added[1]["effective_from"] is None
    assert not db_path.exists()


def test_diff_traffic_equals_summaries_on_each_sheet(invoke, files, traffic):
    for filters in ((), ("--run", "1"), ("--model", "cheap-m", "--model", "ONLY-CMP")):
        payload = run_json(invoke, "pricing", "diff", files["main"], files["other"], *filters, "--json")
        t = payload["traffic"]
        assert (t["base"], t["sheets"]) == (str(files["main"]), [str(files["other"])])
        old = run_json(invoke, "--pricing", files["main"], "summary", *filters, "--json")
        new = run_json(invoke, "--pricing", files["other"], "summary", *filters, "--json")

        def pick(summary: dict[str, Any], model: str) -> dict[str, Any]:
            if model == "TOTAL":
                return summary["total"]
            return next(m for m in summary["models"] if m["model"] == model)

        for row in [*t["models"], t["total"]]:
            was, now = pick(old, row["model"]), pick(new, row["model"])
            assert row["base"]["cost_usd"] == was["cost_usd"], (filters, row["model"])
            assert row["sheets"][0]["cost_usd"] == now["cost_usd"], (filters, row["model"])
            assert (row["base"]["priced"], row["sheets"][0]["priced"]) == (was["priced"], now["priced"])
        assert len(t["models"]) == len(old["models"]) == len(new["models"])


def test_diff_traffic_by_hand(invoke, files, traffic):
    """Run 1 of the fixed traffic (see test_compare_pricing.py); the diff is NEW - OLD."""
    payload = run_json(invoke, "pricing", "diff", files["main"], files["other"], "--run", "1", "--json")
    rows = {r["model"]: r for r in payload["traffic"]["models"]}
    diffs = {name: r["sheets"][0]["difference"]["difference_usd"] for name, r in rows.items()}
    assert diffs == {
        "cheap-m": "-0.009",
        "dear-m": "0.0035",
        "flexy": "0.00075",
        "free-m": "0.001",
        "mystery": None,
        "only-cmp": None,
    }
    total = payload["traffic"]["total"]
    assert (total["base"]["cost_usd"], total["sheets"][0]["cost_usd"]) == ("0.02275", "0.028")
    assert total["sheets"][0]["difference"]["difference_usd"] == "-0.00375"
    assert total["sheets"][0]["difference"]["relative_difference"] == format_decimal(
        Decimal("-0.00375") / Decimal("0.02275")
    )
    assert (
        total["base"]["unpriced"],
        total["sheets"][0]["unpriced"],
        total["sheets"][0]["tier_fallback"],
    ) == (2, 1, 1)
    # A sheet diff of the same two files comes with it.
    assert [(r["kind"], r["model"], r["service_tier"]) for r in payload["diff"]["rows"]] == [
        ("changed", "cheap-m", "standard"),
        ("changed", "dear-m", "standard"),
        ("changed", "flexy", "standard"),
        ("removed", "flexy", "flex"),
        ("changed", "free-m", "standard"),
        ("added", "only-cmp", "standard"),
    ]

    text = invoke("pricing", "diff", files["main"], files["other"], "--run", "1")
    assert text.exit_code == 0 and text.stderr == ""
    lines = plain_table(text.stdout, "Selected traffic")
    assert lines["dear-m"] == ["1", "$0.0035", "$0.007", "+$0.0035", "+100.0%"]
    assert lines["TOTAL"] == ["7", "$0.02275", "$0.028", "-$0.00375*", "-16.5%"]


# --- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["old", "new"])
def test_malformed_sheet_fails_with_its_place_and_changes_nothing(
    invoke, user_error, files, traffic, tmp_path, side
):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,input_per_1m,output_per_1m\nx,1,2\ny,nan,1\n", encoding="utf-8")
    before = sha(traffic)
    args = [bad, files["new"]] if side == "old" else [files["old"], bad]
    result = invoke("pricing", "diff", *args)
    user_error(result, 2, f"{bad}:3:2:", "finite")
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert sha(traffic) == before


def test_missing_sheet_is_a_usage_error_and_creates_no_database(invoke, user_error, files, tmp_path, db_path):
    user_error(invoke("pricing", "diff", files["old"], tmp_path / "nope.csv"), 2, "nope.csv", "cannot read")
    assert not db_path.exists()
