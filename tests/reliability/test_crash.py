"""Crash safety: `kill -9` at seeded random points, 20 trials each for `replay`, `run` and `run --budget`.

After each kill the DB opens, `summary` works, and a re-run (`replay` of the same file) or `--resume`
completes; then no request is lost, duplicated or billed twice. Each trial's kill point comes from its
own seed (printed on failure), so a failure is reproduced by running that trial alone.

`run`: the simulator's door is gated (as in tests/test_run.py): at the kill point new requests are held
and the test waits until every worker is knocking again, so every answer the simulator gave has been
journalled; the killed client's held requests are then turned away. So "exactly once" is exact: each
request × model is completed by the simulator exactly once over the kill and the resume.
`replay`: one file is one transaction; a kill at a random moment of it leaves either nothing of the
file or all of it, and replaying the file again stores it whole, once.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from helpers import SimGate, wait_until

from costlens.send import sim

TRIALS = 20
REQUESTS = 120
MODELS = ("gpt-4o-mini", "gpt-4o")
CONCURRENCY = 6


@pytest.fixture(scope="module")
def requests_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "reqs.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i in range(REQUESTS):
            body = {"model": "gpt-4o-mini", "max_tokens": 20, "stream": i % 3 == 0,
                    "messages": [{"role": "user", "content": f"question {i}"}]}  # fmt: skip
            f.write(json.dumps({"custom_id": f"k{i}", "body": body}) + "\n")
    return path


def _summary(db: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "costlens", "--db", str(db), "summary", "--json", "--include-simulated"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("budget", [False, True], ids=["run", "run-budget"])
@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_9_during_run_then_resume(tmp_path, monkeypatch, requests_file, figure, budget, trial):
    seed = 7_000 + trial + (1_000 if budget else 0)
    total = REQUESTS * len(MODELS)
    target = random.Random(seed).randint(5, total - 20)
    gate = SimGate()
    monkeypatch.setattr(sim, "SimApp", gate.app(sim.SimApp))
    db = tmp_path / "crash.duckdb"
    what = f"seed {seed}, kill after {target} of {total} completions"
    with sim.running_server(sim.SimConfig(latency_ms=2, seed=seed)) as server:
        command = [sys.executable, "-m", "costlens", "--db", str(db), "run", str(requests_file),
                   "--base-url", server.base_url, "--concurrency", str(CONCURRENCY),
                   *[a for m in MODELS for a in ("--model", m)],
                   *(["--budget", "50"] if budget else [])]  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: server.app.stats.completions >= target or proc.poll() is not None, what)
            assert proc.poll() is None, (what, proc.communicate())
            gate.closed = True
            wait_until(lambda: gate.waiting == CONCURRENCY or proc.poll() is not None, what)
            assert proc.poll() is None and gate.inside == 0, (what, proc.communicate())
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.communicate()
        gate.turn_away = True
        wait_until(lambda: gate.waiting == 0, what)
        gate.closed = gate.turn_away = False
        # The DB opens and summary works on what the kill left (the journal is committed first).
        _summary(db)
        resumed = subprocess.run(
            [*command, "--resume", "1", "--json"], capture_output=True, text=True, timeout=300
        )
        assert resumed.returncode == 0, (what, resumed.stderr)
        completed = server.app.stats.as_json()["completed"]
    assert completed == {f"1:k{i}": dict.fromkeys(MODELS, 1) for i in range(REQUESTS)}, what
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT request_id), count(*) FILTER (WHERE status = 'ok') FROM results"
        ).fetchall()
    assert rows == [(total, total, total)], what
    outcome = json.loads(resumed.stdout)
    summary = _summary(db)
    # Billed once: the run's spend is the cost of its requests, each counted once.
    assert Decimal(outcome["run"]["spent_usd"]) == Decimal(summary["total"]["cost_usd"]), what
    assert summary["total"]["requests"] == total, what
    if trial == TRIALS - 1:
        figure(
            f"crash: kill -9 during `run{' --budget' if budget else ''}` at seeded points, then --resume",
            cases=TRIALS,
            held=f"every trial: DB opens, summary works, each of {total} requests completed exactly once "
            "by the provider and stored once, spend = cost view",
        )


@pytest.fixture(scope="module")
def batch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 OpenAI batch output lines: a replay that takes long enough to be killed in the middle."""
    path = tmp_path_factory.mktemp("crash-replay") / "batch.jsonl"
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "bench" / "gen_batch_output.py"),
         "--lines", "200000", "--seed", "3", str(path)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_9_during_replay_then_replay_again(tmp_path, batch_file, figure, trial):
    seed = 9_000 + trial
    db = tmp_path / "crash.duckdb"
    command = [sys.executable, "-m", "costlens", "--db", str(db), "replay", str(batch_file)]
    # A first, timed replay says how long one takes here; the kill lands at a seeded fraction of that.
    moment = random.Random(seed).uniform(0.05, 0.95) * _replay_seconds(batch_file)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + moment
    while proc.poll() is None and time.monotonic() < deadline:  # the kill lands at a moment of the replay
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    stored = 0
    if db.exists():  # a kill before the file was even created leaves nothing at all
        with duckdb.connect(str(db), read_only=True) as conn:
            if _has_results(conn):
                (stored,) = conn.execute("SELECT count(*) FROM results").fetchall()[0]
    assert stored in (0, 200_000), f"seed {seed}: {stored} rows after the kill (half a file)"
    _OUTCOMES.append(stored)
    _summary(db)
    again = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300)
    if stored == 200_000:  # the kill came after the commit: the file is already in
        assert again.returncode == 2 and "already replayed" in again.stderr, again.stderr
    else:
        assert again.returncode in (0, 1), again.stderr
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute(
            "SELECT count(*), count(DISTINCT (run_id, request_id)) FROM results"
        ).fetchall() == [(200_000, 200_000)], f"seed {seed}"
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'completed'").fetchall() == [(1,)]
    if trial == TRIALS - 1:
        figure(
            "crash: kill -9 during `replay` of 200,000 lines at seeded moments, then replay again",
            cases=TRIALS,
            held=f"every trial: none ({_OUTCOMES.count(0)} trials) or all ({_OUTCOMES.count(200_000)}) of "
            "the file after the kill, DB opens, summary works, the second replay stores it once "
            "(200,000 rows, 1 run)",
        )


_TIMED: dict[Path, float] = {}
_OUTCOMES: list[int] = []


def _replay_seconds(path: Path) -> float:
    if path not in _TIMED:
        scratch = path.with_suffix(".timing.duckdb")
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "costlens", "--db", str(scratch), "replay", str(path)],
                       capture_output=True, timeout=300)  # fmt: skip
        _TIMED[path] = time.monotonic() - t0
    return _TIMED[path]


def _has_results(conn: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'results'"
        ).fetchall()[0][0]
    )
