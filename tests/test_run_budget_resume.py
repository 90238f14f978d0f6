"""After a budget stop, the printed resume command actually continues; `run --max-tokens` bounds bodies.

Before: the resume command repeated the old `--budget`, so pasting it sent nothing and exited 3
again; and `--budget` refused bodies without `max_tokens` while `run` had no way to give one.
"""

from __future__ import annotations

import json
import shlex
from decimal import Decimal

from test_run import cli_provider, flat_prices, line  # noqa: F401 (cli_provider: a fixture)


def resume_command(stderr: str) -> list[str]:
    """The argv after `costlens` of the `Resume with:` command on stderr."""
    (hint,) = [ln for ln in stderr.splitlines() if "Resume with: " in ln]
    argv = shlex.split(hint.split("Resume with: ", 1)[1])
    assert argv[0] == "costlens"
    return argv[1:]


def test_the_printed_resume_command_finishes_the_run(invoke, cli_provider, jsonl, tmp_path):  # noqa: F811
    prices = flat_prices(tmp_path)
    path = jsonl("reqs.jsonl", [line(f"r{i}", model="flat", max_tokens=100) for i in range(20)])
    first = invoke("--pricing", prices, "run", path, "--budget", "0.002", "--concurrency", "1", "--json")
    assert first.exit_code == 3, first.stderr
    outcome = json.loads(first.stdout)
    sent = outcome["this_invocation"]["sent"]
    assert 0 < sent < 20
    spent = Decimal(outcome["run"]["spent_usd"])
    remaining = Decimal(outcome["run"]["remaining_worst_case_usd"])
    needed = Decimal(outcome["run"]["budget_to_finish_usd"])
    # Spend so far plus the worst case of what is left, to the cent up.
    assert (
        needed == (spent + remaining).quantize(Decimal("0.01"), rounding="ROUND_CEILING") > Decimal("0.002")
    )
    (listed,) = json.loads(invoke("--pricing", prices, "runs", "--json").stdout)
    assert (listed["requests"], listed["ok"], listed["failed"], listed["not_sent"]) == (
        20,
        sent,
        0,
        20 - sent,
    )
    assert (listed["models"], listed["endpoint"]) == (["flat"], "api.openai.com")
    argv = resume_command(first.stderr)
    assert argv[argv.index("--budget") + 1] == str(needed) and argv.count("--budget") == 1
    assert argv[-2:] == ["--resume", "1"]
    assert "the rest is at most $" in first.stderr
    # Pasting it (the global options are the same) sends the rest.
    second = invoke("--pricing", prices, *argv[argv.index("run") :])
    assert second.exit_code == 0, second.stderr
    done = json.loads(second.stdout)  # the first command had --json, and so has the pasted one
    assert (done["status"], done["resumed"], done["run"]["ok"], done["run"]["not_sent"]) == (
        "completed",
        True,
        20,
        0,
    )
    assert Decimal(done["run"]["spent_usd"]) <= needed
    assert len(cli_provider.attempts) == 20 and all(n == 1 for n in cli_provider.attempts.values())


def test_max_tokens_fills_unbounded_bodies_so_a_budget_can_run(invoke, cli_provider, jsonl, tmp_path):  # noqa: F811
    prices = flat_prices(tmp_path)
    path = jsonl("reqs.jsonl", [
        line("bare", model="flat"),
        line("own", model="flat", max_tokens=7),
        line("completion", model="flat", max_completion_tokens=9),
    ])  # fmt: skip
    refused = invoke("--pricing", prices, "run", path, "--budget", "1")
    assert refused.exit_code == 2 and "every request needs max_tokens" in refused.stderr
    ran = invoke("--pricing", prices, "run", path, "--budget", "1", "--max-tokens", "32", "--json")
    assert ran.exit_code == 0, ran.stderr
    sent = {
        h["x-costlens-request"].split(":", 1)[1]: body
        for body, h in zip(cli_provider.bodies, cli_provider.headers, strict=True)
    }
    assert sent["bare"]["max_tokens"] == 32  # filled
    assert sent["own"]["max_tokens"] == 7  # its own bound is kept
    assert "max_tokens" not in sent["completion"] and sent["completion"]["max_completion_tokens"] == 9
    # What is logged is what was sent.
    out = tmp_path / "e.csv"
    assert invoke("--pricing", prices, "export", "--format", "jsonl", "--out", out).exit_code == 0
    logged = {r["custom_id"]: r["max_tokens"] for r in map(json.loads, out.read_text().splitlines())}
    assert logged == {"bare": 32, "own": 7, "completion": None}


def test_max_tokens_must_be_positive(invoke, jsonl, tmp_path, user_error):
    path = jsonl("reqs.jsonl", [line("a", model="flat")])
    user_error(invoke("run", path, "--max-tokens", "0"), 2, "--max-tokens")


def test_a_budgeted_run_prices_each_batch_alone_to_the_same_total(session, jsonl, monkeypatch):
    """The budget's running spend is the sum of each committed batch priced over its rows alone
    (linear in the run); it equals what the cost view says of the whole run, to the last digit,
    across models that resolve exactly, by alias, by provider prefix, and not at all."""
    import httpx

    import costlens.send.run as run_module
    from costlens.send.run import RunOptions, run_requests

    seen: list[Decimal] = []
    real = run_module._batch_spend

    def spy(conn, run_id, records):  # type: ignore[no-untyped-def]
        seen.append(real(conn, run_id, records))
        return seen[-1]

    monkeypatch.setattr(run_module, "_batch_spend", spy)
    models = ["gpt-4o", "gpt-4o-2024-08-06", "openai/gpt-4o-mini", "deepseek-chat"]

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        n = int(body["messages"][0]["content"].split()[-1])
        usage = {"prompt_tokens": 1000 + n, "completion_tokens": 10 + n % 7,
                 "prompt_tokens_details": {"cached_tokens": (n % 3) * 100}}  # fmt: skip
        return httpx.Response(200, json={"id": f"c{n}", "object": "chat.completion", "model": body["model"],
                                         "choices": [], "usage": usage})  # fmt: skip

    lines = [
        {"custom_id": f"r{i}", "body": {"model": models[i % 4], "max_tokens": 50,
                                         "messages": [{"role": "user", "content": f"q {i}"}]}}
        for i in range(400)
    ]  # fmt: skip
    outcome = run_requests(
        session,
        RunOptions(requests_file=jsonl("reqs.jsonl", lines), base_url="http://llm.test/v1",
                   budget=Decimal("100"), flush_every=37, concurrency=8),
        env={}, transport=httpx.MockTransport(answer), handle_signals=False,
    )  # fmt: skip
    assert outcome.run_ok == 400 and len(seen) >= 2  # several batches
    assert sum(seen) == outcome.spent_usd > 0
