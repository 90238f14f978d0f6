"""Simulated traffic is kept apart: a run against `costlens serve-sim` is marked simulated in the DB
(the simulator says so in every answer) and in `runs`; summary, report, estimate, export and the
what-if leave it out unless --include-simulated (or --run names it), and say so.

Before: such a run was an ordinary run: its made-up latency was the model's p50 in the report, its
spend was in the headline, and it fed estimate's history and the what-if ratios.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from costlens.send import sim
from costlens.send.client import ChatClient, ClientConfig
from costlens.send.run import RunOptions, run_requests
from costlens.session import Settings, open_session

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
REQUESTS = SAMPLES / "batch_input_gpt-4o-mini.jsonl"
FIXED_TIME = {"COSTLENS_REPORT_TIME": "2026-12-01T00:00:00"}


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``replayed``: the sample batch replayed. ``both``: the same, plus a run of its requests file
    against the simulator on loopback (real HTTP), to two models, one of them the replayed one."""
    root = tmp_path_factory.mktemp("simulated")
    replayed = root / "replayed.duckdb"
    settings = Settings(db_path=replayed)
    from costlens.ingest.replay import ReplayOptions, replay_files

    with open_session(settings) as session:
        replay_files(
            session.conn,
            ReplayOptions(
                files=[SAMPLES / "openai_batch_output_gpt-4o-mini.jsonl"],
                requests_file=REQUESTS,
                run_name="nightly",
            ),
        )
    both = root / "both.duckdb"
    shutil.copy(replayed, both)
    with (
        sim.running_server(sim.SimConfig(latency_ms=1, seed=3)) as server,
        open_session(Settings(db_path=both)) as session,
    ):
        outcome = run_requests(
            session,
            RunOptions(
                requests_file=REQUESTS,
                base_url=server.base_url,
                models=["gpt-4o-mini", "gpt-4o"],
                run_name="simulated-try",
                concurrency=8,
            ),
            env={},
            handle_signals=False,
        )
        assert outcome.simulated and outcome.run_ok == 240
    return {"replayed": replayed, "both": both}


def cli_json(invoke: Any, db: Path, *args: str) -> Any:
    result = invoke("--db", db, *args, env=FIXED_TIME)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_the_run_is_marked_simulated_in_the_db_and_in_runs(invoke, databases):
    with open_session(Settings(db_path=databases["both"])) as session:
        marks = session.conn.execute("SELECT run_id, kind, simulated FROM runs ORDER BY run_id").fetchall()
    assert marks == [(1, "replay", False), (2, "run", True)]
    listed = cli_json(invoke, databases["both"], "runs", "--json")
    assert [(r["run_id"], r["simulated"]) for r in listed] == [(2, True), (1, False)]
    text = invoke("--db", databases["both"], "runs").stdout
    assert "2*" in text and "run (simulated)" in text
    assert "* simulated run: its answers came from costlens serve-sim" in text


def test_summary_equals_the_replayed_run_alone_unless_asked(invoke, databases):
    alone = cli_json(invoke, databases["replayed"], "summary", "--json")
    mixed = cli_json(invoke, databases["both"], "summary", "--json")
    assert mixed.pop("simulated_runs") == {"included": False, "runs": 1, "requests": 240}
    assert alone.pop("simulated_runs") == {"included": False, "runs": 0, "requests": 0}
    assert mixed == alone
    text = invoke("--db", databases["both"], "summary").stdout
    assert "1 simulated run (240 requests) left out: answers from costlens serve-sim" in text

    included = cli_json(invoke, databases["both"], "summary", "--json", "--include-simulated")
    assert included["simulated_runs"] == {"included": True, "runs": 1, "requests": 240}
    assert included["total"]["requests"] == alone["total"]["requests"] + 240
    assert {m["model"] for m in included["models"]} == {"gpt-4o-mini", "gpt-4o"}
    text = invoke("--db", databases["both"], "summary", "--include-simulated").stdout
    assert "Includes 1 simulated run (240 requests)" in text
    # Naming the run is asking for it.
    named = cli_json(invoke, databases["both"], "summary", "--json", "--run", "2")
    assert named["total"]["requests"] == 240 and named["simulated_runs"]["included"] is True


def _report_figures(payload: dict[str, Any]) -> dict[str, Any]:
    """The report's figures, without what names the DB file, the runs' sheet of the page or the notice."""
    payload = dict(payload)
    payload["headline"] = {k: v for k, v in payload["headline"].items() if k != "simulated"}
    payload.pop("method")
    return payload


def test_report_equals_the_replayed_run_alone_unless_asked(invoke, databases):
    args = ("report", "--format", "json", "--out", "-")
    alone = cli_json(invoke, databases["replayed"], *args)
    mixed = cli_json(invoke, databases["both"], *args)
    assert mixed["headline"]["simulated"] == {"included": False, "runs": 1, "requests": 240}
    assert _report_figures(mixed) == _report_figures(alone)
    assert mixed["whatif"] == alone["whatif"] and mixed["latency"] == alone["latency"]

    included = cli_json(invoke, databases["both"], *args, "--include-simulated")
    assert included["headline"]["simulated"]["included"] is True
    assert included["headline"]["total"]["requests"] == alone["headline"]["total"]["requests"] + 240
    assert included["latency"] != alone["latency"]  # the simulator's made-up latency is on the page now

    page = invoke("--db", databases["both"], "report", "--out", "-", "--include-simulated", env=FIXED_TIME)
    assert 'id="simulated"' in page.stdout and "Includes 1 simulated run (240 requests)" in page.stdout
    assert "run (simulated)" in page.stdout
    page = invoke("--db", databases["both"], "report", "--out", "-", env=FIXED_TIME)
    assert "1 simulated run (240 requests) left out" in page.stdout


def test_estimate_learns_only_from_real_traffic_unless_asked(invoke, databases):
    args = ("estimate", str(REQUESTS), "--model", "gpt-4o-mini", "--json")
    alone = cli_json(invoke, databases["replayed"], *args)
    mixed = cli_json(invoke, databases["both"], *args)
    assert mixed == alone
    (model,) = mixed["models"]
    assert model["history_requests"] == 120  # the replayed batch only
    included = cli_json(invoke, databases["both"], *args, "--include-simulated")
    assert included["models"][0]["history_requests"] == 240
    assert included["history"]["include_simulated"] is True


def test_export_leaves_them_out_too(invoke, databases, tmp_path):
    for flags, rows in (((), 120), (("--include-simulated",), 360)):
        out = tmp_path / f"x{len(flags)}.jsonl"
        result = invoke("--db", databases["both"], "export", "--format", "jsonl", "--out", out, *flags)
        assert result.exit_code == 0, result.stderr
        assert len(out.read_text().splitlines()) == rows


async def _one_answer(headers: dict[str, str]) -> bool:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"id": "x", "model": "m", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
        return httpx.Response(200, json=body, headers=headers)

    async with ChatClient(
        ClientConfig(base_url="http://llm.test/v1"), transport=httpx.MockTransport(answer)
    ) as c:
        outcome = await c.complete({"model": "m", "messages": []}, stream=False)
    return outcome.simulated


@pytest.mark.parametrize(
    ("headers", "simulated"),
    [({"x-costlens-simulated": "1"}, True), ({}, False), ({"x-costlens-simulated": "0"}, False)],
)
def test_only_an_answer_that_says_so_is_simulated(headers, simulated):
    import asyncio

    assert asyncio.run(_one_answer(headers)) is simulated
