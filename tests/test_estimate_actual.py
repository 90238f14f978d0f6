"""`estimate` learns from the history `summary`'s filters select, shows the sample size next to every
expected figure, and sets itself beside a finished run of the same file (--actual).

Before: "expected" was a mean over everything in the DB (sample replays, the simulator, other files),
with no filter, the sample size only in --json, and nothing set an estimate beside what the run
then cost.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import plain_records

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
REQUESTS = SAMPLES / "batch_input_gpt-4o-mini.jsonl"
OUTPUT = SAMPLES / "openai_batch_output_gpt-4o-mini.jsonl"


def ok_json(invoke: Any, *args: Any) -> Any:
    result = invoke(*args)
    assert result.exit_code in (0, 1), result.stderr  # replays of the samples exit 1 (expired lines)
    return json.loads(result.stdout)


@pytest.fixture
def two_nights(invoke: Any) -> None:
    """The same batch replayed twice, as two nights of one job: runs 1 and 2, both of REQUESTS."""
    for night in ("1", "2"):
        args = ["replay", OUTPUT, "--requests", REQUESTS, "--run-name", "nightly", "--tag", f"night={night}"]
        result = invoke(*args, *(["--force"] if night == "2" else []))
        assert result.exit_code in (0, 1), result.stderr


def test_estimate_beside_the_run_it_predicts(invoke, two_nights):
    night1 = ok_json(invoke, "summary", "--run", "1", "--json")["total"]
    night2 = ok_json(invoke, "summary", "--run", "2", "--json")["total"]
    data = ok_json(invoke, "estimate", REQUESTS, "--actual", "2", "--json")
    (model,) = data["models"]
    # The history is night 1 only: night 2 is the run being predicted.
    ok1 = night1["requests"] - night1["failed"]
    assert model["history_requests"] == ok1
    assert data["history"]["excluded_runs"] == [2] and data["history"]["until"] is not None
    per_request = (Decimal(night1["output_tokens"]) / ok1).to_integral_value(ROUND_HALF_UP)
    assert model["expected_output_tokens"] == int(per_request) * model["requests"]

    (row,) = data["actual"]["models"]
    actual = row["actual"]
    # What the run came to, as summary says it.
    assert (actual["input_tokens"], actual["output_tokens"], actual["cost_usd"]) == (
        night2["input_tokens"],
        night2["output_tokens"],
        night2["cost_usd"],
    )
    assert actual["requests"] == night2["requests"] and actual["ok"] == night2["requests"] - night2["failed"]
    diff = row["difference"]
    assert diff["input_tokens"] == actual["input_tokens"] - model["input_tokens"]
    assert diff["output_tokens"] == actual["output_tokens"] - model["expected_output_tokens"]
    assert Decimal(diff["cost_usd"]) == Decimal(actual["cost_usd"]) - Decimal(model["expected_total_usd"])

    text = invoke("estimate", REQUESTS, "--actual", "2").stdout
    table = plain_records(text, "Estimate vs actual: run 2 (nightly)")
    assert table[0]["model"] == "gpt-4o-mini"
    assert table[0]["history n"] == f"{ok1:,}"
    assert table[0]["output tok actual"] == f"{night2['output_tokens']:,}"
    assert "without run 2" in text and "simulated runs left out" in text


def test_last_is_the_newest_run_of_the_file(invoke, two_nights):
    data = ok_json(invoke, "estimate", REQUESTS, "--actual", "last", "--json")
    assert data["actual"]["run_id"] == 2


def test_history_takes_the_summary_filters_and_shows_its_size(invoke, two_nights):
    everything = ok_json(invoke, "estimate", REQUESTS, "--model", "gpt-4o-mini", "--json")["models"][0]
    one_night = ok_json(invoke, "estimate", REQUESTS, "--model", "gpt-4o-mini", "--tag", "night=1", "--json")
    nobody = ok_json(invoke, "estimate", REQUESTS, "--model", "gpt-4o-mini", "--run", "7", "--json")
    assert everything["history_requests"] == 2 * one_night["models"][0]["history_requests"] > 0
    assert one_night["history"]["tags"] == {"night": "1"}
    assert nobody["models"][0]["history_requests"] == 0
    assert nobody["models"][0]["expected_total_usd"] is None
    text = invoke("estimate", REQUESTS, "--model", "gpt-4o-mini", "--tag", "night=1").stdout
    (row,) = [r for r in plain_records(text, "Estimate for") if r["model"] == "gpt-4o-mini"]
    assert row["history n"] == f"{one_night['models'][0]['history_requests']:,}"
    assert "tags night=1" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--actual", "9"], "--actual 9: no such run in this database"),
        (["--actual", "soon"], "--actual 'soon': expected a run id or last"),
    ],
)
def test_actual_must_name_a_run(invoke, two_nights, user_error, args, message):
    user_error(invoke("estimate", REQUESTS, *args), 2, message)


def test_actual_must_be_a_run_of_this_file(invoke, two_nights, user_error, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text(REQUESTS.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    user_error(invoke("estimate", other, "--actual", "1"), 2, "run 1 was not planned from")
    user_error(invoke("estimate", other, "--actual", "last"), 2, "no finished run or replay of")
