"""The provider's own figure for each request, stored beside costlens's cost (issue 12, point 2):
OpenRouter-style ``usage.cost`` and LiteLLM's ``x-litellm-response-cost`` header during ``run``,
kept exact from their text, exported, and compared with the computed cost in summary and report.
"""

from __future__ import annotations

import asyncio
import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from costlens.money.decimal_text import format_decimal
from costlens.send import sim
from costlens.send.client import ChatClient, ClientConfig

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ROOT / "data" / "samples" / "batch_input_gpt-4o-mini.jsonl"
PER_1M = Decimal("0.000001")


def body(usage: dict[str, Any] | str) -> bytes:
    usage_text = usage if isinstance(usage, str) else json.dumps(usage)
    return (
        '{"id": "x", "object": "chat.completion", "model": "m", "created": 1, "choices": [{"index": 0, '
        '"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}], "usage": '
        + usage_text
        + "}"
    ).encode()


def outcome_of(content: bytes, headers: dict[str, str] | None = None, *, stream: bool = False) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        kind = "text/event-stream" if stream else "application/json"
        return httpx.Response(200, content=content, headers={"content-type": kind, **(headers or {})})

    async def go() -> Any:
        config = ClientConfig(base_url="http://llm.test/v1", max_retries=0)
        async with ChatClient(config, transport=httpx.MockTransport(answer)) as client:
            return await client.complete({"model": "m", "messages": []}, stream=stream)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("usage", "headers", "cost", "source"),
    [
        # Exact from the JSON text: a float would make this 0.00012345678901234567 something else.
        ('{"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.000123456789012345}', {},
         "0.000123456789012345", "usage.cost"),
        ('{"prompt_tokens": 1, "completion_tokens": 1, "cost": 1.5e-05, "is_byok": false}', {},
         "0.000015", "usage.cost"),
        ('{"prompt_tokens": 1, "completion_tokens": 1}', {"x-litellm-response-cost": "2.5e-05"},
         "0.000025", "x-litellm-response-cost"),
        # Both: the gateway's charge wins over LiteLLM's own estimate.
        ('{"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.002}', {"x-litellm-response-cost": "0.003"},
         "0.002", "usage.cost"),
        ('{"prompt_tokens": 1, "completion_tokens": 1, "cost": -1}', {}, None, None),
        ('{"prompt_tokens": 1, "completion_tokens": 1, "cost": "n/a"}', {"x-litellm-response-cost": "nan"},
         None, None),
        ('{"prompt_tokens": 1, "completion_tokens": 1}', {}, None, None),
    ],
)  # fmt: skip
def test_the_reported_cost_is_read_exactly_from_its_text(usage, headers, cost, source):
    outcome = outcome_of(body(usage), headers)
    assert outcome.status == "ok"
    assert outcome.reported_cost_usd == (None if cost is None else Decimal(cost))
    assert outcome.reported_cost_source == source


def test_a_stream_carries_its_cost_in_the_usage_chunk():
    events = (
        b'data: {"id": "x", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\n'
        b'data: {"id": "x", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
        b'data: {"id": "x", "model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, '
        b'"cost": 0.0000071}}\n\n'
        b"data: [DONE]\n\n"
    )
    outcome = outcome_of(events, stream=True)
    assert (outcome.status, outcome.reported_cost_usd, outcome.reported_cost_source) == (
        "ok",
        Decimal("0.0000071"),
        "usage.cost",
    )


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    """gpt-4o at the simulator's made-up rate ($2.50 / $10 per 1M), gpt-4o-mini well below it."""
    path = tmp_path / "prices.csv"
    path.write_text(
        "model,input_per_1m,output_per_1m\ngpt-4o,2.5,10\ngpt-4o-mini,0.15,0.6\n", encoding="utf-8"
    )
    return path


@pytest.mark.parametrize("style", ["usage", "litellm"])
def test_run_stores_exports_and_compares_the_reported_cost(invoke, tmp_path, sheet, style):
    config = sim.SimConfig(seed=4, reported_cost=style)
    with sim.running_server(config) as server:
        result = invoke(
            "--pricing", sheet, "run", REQUESTS, "--model", "gpt-4o", "--model", "gpt-4o-mini",
            "--base-url", server.base_url, "--concurrency", "8", "--json",
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "rows.csv"
    assert (
        invoke("--pricing", sheet, "export", "--format", "csv", "--out", out, "--include-simulated").exit_code
        == 0
    )
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 240
    source = "usage.cost" if style == "usage" else "x-litellm-response-cost"
    for row in rows:
        assert row["reported_cost_source"] == source
        # What the simulator said, by its rate, from the stored token counts.
        said = (int(row["input_tokens"]) * Decimal("2.5") + int(row["output_tokens"]) * 10) * PER_1M
        assert Decimal(row["reported_cost_usd"]) == said
    mini = [r for r in rows if r["priced_model"] == "gpt-4o-mini"]
    computed = sum(Decimal(r["cost_usd"]) for r in mini)
    reported = sum(Decimal(r["reported_cost_usd"]) for r in mini)

    data = json.loads(invoke("--pricing", sheet, "summary", "--json", "--include-simulated").stdout)
    by_model = {m["model"]: m["reported"] for m in data["models"]}
    assert by_model["gpt-4o"]["difference_usd"] == "0"  # the sheet agrees with the provider
    assert by_model["gpt-4o-mini"]["requests"] == by_model["gpt-4o-mini"]["compared_requests"] == 120
    assert Decimal(by_model["gpt-4o-mini"]["computed_compared_usd"]) == computed
    assert Decimal(by_model["gpt-4o-mini"]["reported_compared_usd"]) == reported
    assert Decimal(by_model["gpt-4o-mini"]["difference_usd"]) == reported - computed > 0
    text = invoke("--pricing", sheet, "summary", "--include-simulated").stdout
    assert "Cost reported by the provider vs computed by costlens" in text
    page = invoke("--pricing", sheet, "report", "--out", "-", "--include-simulated").stdout
    table = page[
        page.index('id="table-reported"') : page.index("</table>", page.index('id="table-reported"'))
    ]
    assert f'data-v="{format_decimal(reported - computed)}"' in table


def test_no_reported_cost_leaves_summary_and_report_as_they_were(invoke, sheet):
    with sim.running_server(sim.SimConfig(seed=4)) as server:
        assert invoke(
            "--pricing", sheet, "run", REQUESTS, "--model", "gpt-4o", "--base-url", server.base_url
        ).exit_code == 0  # fmt: skip
    text = invoke("--pricing", sheet, "summary", "--include-simulated").stdout
    assert "reported by the provider" not in text
    assert (
        'id="table-reported"'
        not in invoke("--pricing", sheet, "report", "--out", "-", "--include-simulated").stdout
    )
