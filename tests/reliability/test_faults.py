"""Faults: 2,400 requests through `serve-sim` on loopback with 429 (with and without retry-after), 500,
503, dropped connections, cut streams and slow answers (past the client's timeout).

Afterwards: exactly one final row per request; attempts within --max-retries; every wait between
attempts within the documented policy (retry-after-ms when given, else min(0.5 x 2^retry, 8) s plus up
to 25% jitter); and successes the provider completed more than once (sent again because the answer never
arrived) at most the concurrency.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from costlens.send import sim
from costlens.send.run import RunOptions, run_requests
from costlens.session import Settings, open_session

REQUESTS = 1200
MODELS = ("gpt-4o-mini", "gpt-4o")
MAX_RETRIES = 4
CONCURRENCY = 32
RETRY_AFTER_MS = 30
FAULTS: dict[sim.FaultKind, int] = {
    "429": 3,
    "429-bare": 2,
    "500": 2,
    "503": 2,
    "drop": 1,
    "cut": 1,
    "slow": 1,
}


def allowed_wait(seconds: float) -> bool:
    """The client's policy: the server's retry-after-ms, or exponential backoff with up to 25% jitter."""
    if abs(seconds - RETRY_AFTER_MS / 1000) < 1e-9:
        return True
    return any(
        base <= seconds <= base * 1.25 + 1e-9 for base in (min(0.5 * 2**k, 8.0) for k in range(MAX_RETRIES))
    )


@pytest.mark.parametrize("seed", [11, 12])
def test_thousands_of_requests_through_every_fault(tmp_path: Path, seed: int, figure) -> None:
    path = tmp_path / "reqs.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i in range(REQUESTS):
            body = {"model": "gpt-4o-mini", "max_tokens": 16, "stream": i % 2 == 0,
                    "messages": [{"role": "user", "content": f"question {i}"}]}  # fmt: skip
            f.write(json.dumps({"custom_id": f"q{i}", "body": body}) + "\n")
    waits: list[float] = []

    async def short_wait(seconds: float) -> None:  # record the policy's wait, keep the test short
        waits.append(seconds)
        await asyncio.sleep(min(seconds, 0.005))

    config = sim.SimConfig(
        error_rate=0.15, seed=seed, retry_after_ms=RETRY_AFTER_MS, fault_mix=FAULTS, slow_ms=3_000
    )
    with sim.running_server(config) as server, open_session(Settings(db_path=tmp_path / "f.duckdb")) as s:
        outcome = run_requests(
            s,
            RunOptions(requests_file=path, base_url=server.base_url, models=list(MODELS), concurrency=CONCURRENCY,
                       max_retries=MAX_RETRIES, timeout=0.5),
            env={}, handle_signals=False, sleep=short_wait,
        )  # fmt: skip
        stats = server.app.stats.as_json()
    with duckdb.connect(str(tmp_path / "f.duckdb"), read_only=True) as conn:
        per_request = conn.execute(
            """SELECT q.custom_id, q.requested_model, count(r.request_id) AS results, max(d.attempts) AS attempts,
                      any_value(r.status) AS status, any_value(r.error_type) AS error_type
               FROM requests q LEFT JOIN results r USING (run_id, request_id)
               LEFT JOIN result_details d USING (run_id, request_id) GROUP BY 1, 2"""
        ).fetchall()
    total = REQUESTS * len(MODELS)
    assert len(per_request) == total == outcome.run_requests
    assert all(row[2] == 1 for row in per_request), "every request has exactly one final row"
    assert all(1 <= row[3] <= MAX_RETRIES + 1 for row in per_request), "attempts within --max-retries"
    faults = Counter(stats["faults"])
    assert set(faults) == set(FAULTS), faults  # every kind of fault happened
    assert sum(faults.values()) > total * 0.1
    bad_waits = [w for w in waits if not allowed_wait(w)]
    assert not bad_waits, bad_waits[:10]
    completed_twice = sum(1 for models in stats["completed"].values() for n in models.values() if n > 1)
    assert completed_twice <= CONCURRENCY
    failed = Counter(row[5] for row in per_request if row[4] == "error")
    assert outcome.run_ok > total * 0.97, failed
    figure(
        f"faults: {total:,} requests through serve-sim (seed {seed}): "
        + ", ".join(f"{k} x{v}" for k, v in sorted(faults.items())),
        cases=total,
        held=f"1 final row per request; attempts <= {MAX_RETRIES + 1}; all {len(waits):,} retry waits within "
        f"policy; {completed_twice} successes completed twice (<= concurrency {CONCURRENCY}); "
        f"{outcome.run_ok:,} ok, {outcome.run_failed:,} failed after retries",
    )
