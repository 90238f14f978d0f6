"""`costlens run` end to end against a real llama.cpp server on loopback.

What is checked is what a user signs off on: the usage costlens logs is the usage the
server reported (each request is also sent straight to the server with httpx; at
``temperature: 0`` the server answers identically), and the cost follows a test price
row for the server's model alias — exactly, in DECIMAL.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from click.testing import CliRunner

from costlens.cli import cli

pytestmark = pytest.mark.real

ALIAS = "gemma3-270m"
INPUT_PER_1M = Decimal("1.25")
OUTPUT_PER_1M = Decimal("5.5")
MESSAGES = [{"role": "user", "content": "Name three colours of the sea."}]

BODIES: dict[str, dict[str, Any]] = {
    "plain": {"messages": MESSAGES, "temperature": 0, "max_tokens": 12},
    "stop": {"messages": MESSAGES, "temperature": 0, "max_tokens": 24, "stop": ["."]},
    "two": {"messages": MESSAGES, "temperature": 0, "max_tokens": 8, "n": 2},
}


def _run(tmp_path: Path, real_url: str, *extra: str) -> tuple[Path, Any]:
    prices = tmp_path / "prices.csv"
    prices.write_text(f"model,input_per_1m,output_per_1m\n{ALIAS},{INPUT_PER_1M},{OUTPUT_PER_1M}\n")
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps({"custom_id": cid, "body": {"model": "gpt-4o-mini", **body}}) + "\n"
            for cid, body in BODIES.items()
        )
    )
    db = tmp_path / "run.duckdb"
    result = CliRunner().invoke(
        cli,
        ["--db", str(db), "--extra-pricing", str(prices), "run", str(requests), "--base-url", real_url + "/v1",
         "--api-key-env", "COSTLENS_TEST_NO_KEY", "--concurrency", "2", "--timeout", "120", *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return db, result


def _rows(db: Path) -> dict[str, dict[str, Any]]:
    with duckdb.connect(str(db)) as conn:
        cursor = conn.execute(
            """SELECT q.custom_id, q.requested_model, r.response_model, r.status, r.usage_source,
                      r.prompt_tokens, r.completion_tokens, d.completion, d.ttft_ms, r.source_format
               FROM requests q JOIN results r USING (run_id, request_id)
               JOIN result_details d USING (run_id, request_id)"""
        )
        names = [d[0] for d in cursor.description or ()]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _costs(tmp_path: Path, db: Path) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(
        cli, ["--db", str(db), "--extra-pricing", str(tmp_path / "prices.csv"), "export", "--format", "jsonl",
              "--out", str(tmp_path / "rows.jsonl")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    return {row["custom_id"]: row for row in rows}


def _direct(real_url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        real_url + "/v1/chat/completions", json={"model": "gpt-4o-mini", **body}, timeout=120
    )
    assert response.status_code == 200, response.text
    return response.json()["usage"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_run_logs_the_servers_usage_and_prices_it_by_the_alias_row(
    tmp_path: Path, real_url: str, stream: str
) -> None:
    db, _ = _run(tmp_path, real_url, stream)
    rows = _rows(db)
    costs = _costs(tmp_path, db)
    assert set(rows) == set(BODIES)
    for cid, body in BODIES.items():
        row = rows[cid]
        assert row["status"] == "ok", row
        assert row["usage_source"] == "reported"
        # The server answers with its alias whatever was asked: both are kept, the alias is priced.
        assert (row["requested_model"], row["response_model"]) == ("gpt-4o-mini", ALIAS)
        if cid != "two":  # llama.cpp under-reports completion tokens for n > 1 (see test_llama_server)
            usage = _direct(real_url, body)
            assert (row["prompt_tokens"], row["completion_tokens"]) == (
                usage["prompt_tokens"],
                usage["completion_tokens"],
            )
        cost = costs[cid]
        assert cost["priced_model"] == ALIAS and cost["priced"] is True
        expected = (row["prompt_tokens"] * INPUT_PER_1M + row["completion_tokens"] * OUTPUT_PER_1M) / Decimal(
            10**6
        )
        assert Decimal(cost["cost_usd"]) == expected
    assert rows["plain"]["completion_tokens"] <= 12  # max_tokens honoured
    texts = json.loads(rows["two"]["completion"])
    assert len(texts) == 2  # n=2: one text per choice index
    if stream == "--stream":
        assert all(row["ttft_ms"] is not None and row["ttft_ms"] > 0 for row in rows.values())
        assert {row["source_format"] for row in rows.values()} == {"chat_api_stream"}
    stop_text = json.loads(rows["stop"]["completion"])[0]
    assert "." not in stop_text  # the stop sequence ends the text and is not included
