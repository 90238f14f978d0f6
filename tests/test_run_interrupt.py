"""Ctrl-C during `costlens run`: the first stops sending and waits a bounded time for the answers in
flight (recorded as usual: the provider bills them); a second one, or the end of the wait, drops them.

Before: the first Ctrl-C cancelled every request in flight, so answers the provider had already
produced (and billed) were never recorded: "344 sent, 312 recorded" in one try.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from typing import Any

import httpx
import pytest
from test_run import KEY, Provider, line

from costlens.send.run import RunOptions, RunOutcome, run_requests
from costlens.session import Session


class SlowProvider:
    """Answers after ``gate`` is set (never, if it is not). The ``trigger``-th arrival sends SIGINT,
    the way Ctrl-C does; so do the arrivals listed in ``again``."""

    def __init__(self, *, trigger: int, answer_after: float | None) -> None:
        self.trigger = trigger
        self.answer_after = answer_after
        self.arrived: Counter[str] = Counter()
        self.answered: list[str] = []
        self.plain = Provider()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        custom_id = request.headers["x-costlens-request"].split(":", 1)[1]
        self.arrived[custom_id] += 1
        if sum(self.arrived.values()) == self.trigger:
            os.kill(os.getpid(), signal.SIGINT)
        if self.answer_after is None:
            await asyncio.Event().wait()  # an answer that never comes
        await asyncio.sleep(self.answer_after or 0)
        self.answered.append(custom_id)
        return self.plain(request)


def run(session: Session, path: Any, provider: Any, notices: list[str], **options: Any) -> RunOutcome:
    return run_requests(
        session,
        RunOptions(requests_file=path, base_url="http://llm.test/v1", **options),
        env={"OPENAI_API_KEY": KEY},
        transport=httpx.MockTransport(provider),
        on_notice=notices.append,
    )


def stored(session: Session) -> set[int]:
    return {int(r) for (r,) in session.conn.execute("SELECT request_id FROM results").fetchall()}


def test_first_ctrl_c_records_the_answers_in_flight(session, jsonl):
    path = jsonl("reqs.jsonl", [line(f"r{i}") for i in range(20)])
    provider = SlowProvider(trigger=4, answer_after=0.05)
    notices: list[str] = []
    outcome = run(session, path, provider, notices, concurrency=4)
    assert outcome.status == "interrupted"
    # Every request that reached the provider has its answer stored; nothing more was sent.
    assert len(provider.arrived) == 4 and sorted(provider.answered) == sorted(provider.arrived)
    assert len(stored(session)) == 4 == outcome.sent
    assert (outcome.dropped, outcome.drained) == (0, 4)
    assert any("waiting up to 30 s for 4 answers in flight (Ctrl-C again to drop them)" in n for n in notices)
    assert not any("dropped" in n for n in notices)
    rest = Provider()
    resumed = run_requests(
        session, RunOptions(requests_file=path, base_url="http://llm.test/v1", resume=outcome.run_id),
        env={}, transport=httpx.MockTransport(rest), handle_signals=False,
    )  # fmt: skip
    assert resumed.run_ok == 20 and sum(rest.attempts.values()) == 16  # none sent twice


def test_the_wait_is_bounded_then_the_requests_in_flight_are_dropped(session, jsonl):
    path = jsonl("reqs.jsonl", [line(f"r{i}") for i in range(10)])
    provider = SlowProvider(trigger=3, answer_after=None)
    notices: list[str] = []
    outcome = run(session, path, provider, notices, concurrency=3, stop_grace_s=0.2)
    assert outcome.status == "interrupted"
    assert (len(provider.arrived), outcome.dropped, outcome.sent) == (3, 3, 0)
    assert stored(session) == set() and outcome.run_unsent == 10
    assert any("waiting up to 0.2 s for 3 answers" in n for n in notices)
    assert any("3 requests in flight dropped (the provider may still bill them" in n for n in notices)


def test_a_second_ctrl_c_drops_them_at_once(session, jsonl):
    path = jsonl("reqs.jsonl", [line(f"r{i}") for i in range(10)])
    provider = SlowProvider(trigger=2, answer_after=None)
    notices: list[str] = []

    def second_ctrl_c(text: str) -> None:
        notices.append(text)
        if "Ctrl-C again" in text:
            os.kill(os.getpid(), signal.SIGINT)

    outcome = run_requests(
        session,
        RunOptions(requests_file=path, base_url="http://llm.test/v1", concurrency=2, stop_grace_s=3600),
        env={"OPENAI_API_KEY": KEY},
        transport=httpx.MockTransport(provider),
        on_notice=second_ctrl_c,
    )
    # Had the second Ctrl-C not dropped them, this would wait an hour for answers that never come.
    assert outcome.status == "interrupted" and outcome.dropped == 2 and outcome.sent == 0
    assert [n.split(":")[0] for n in notices] == ["stopping", "stopping now"]


def test_zero_grace_drops_at_once_as_before(session, jsonl):
    path = jsonl("reqs.jsonl", [line(f"r{i}") for i in range(6)])
    provider = SlowProvider(trigger=2, answer_after=None)
    notices: list[str] = []
    outcome = run(session, path, provider, notices, concurrency=2, stop_grace_s=0)
    assert (outcome.status, outcome.dropped) == ("interrupted", 2)
    assert len(notices) == 1 and "2 requests in flight dropped" in notices[0]


@pytest.mark.parametrize("grace", ["0", "30"])
def test_cli_ends_with_the_resume_command_either_way(invoke, jsonl, monkeypatch, grace):
    provider = SlowProvider(trigger=2, answer_after=None if grace == "0" else 0.02)
    monkeypatch.setattr("costlens.send.client.default_transport", lambda n: httpx.MockTransport(provider))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = jsonl("reqs.jsonl", [line(f"r{i}") for i in range(8)])
    result = invoke("run", path, "--concurrency", "2", "--stop-grace", grace, "--json")
    assert result.exit_code == 130, result.stderr
    assert (
        result.stderr.rstrip()
        .splitlines()[-1]
        .endswith(f"Resume with: costlens run {path} --concurrency 2 --stop-grace {grace} --json --resume 1")
    )
    outcome = json.loads(result.stdout)
    if grace == "0":
        assert "2 in flight dropped (the provider may bill them)" in result.stderr
        assert outcome["this_invocation"]["dropped_in_flight"] == 2
    else:
        assert "dropped" not in result.stderr
        assert outcome["this_invocation"]["answered_after_stop"] == 2
        assert outcome["run"]["ok"] == 2
