"""Concurrent use and damaged databases: two processes on one DB (write+write, write+read, report while a
run writes) give a clear message at once, or wait with COSTLENS_LOCK_WAIT; a DB of a newer schema, a
truncated or garbage DB file and a full disk give one clear error line; nothing is half-committed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from helpers import wait_until

from costlens.send import sim


def costlens(
    db: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costlens", "--db", str(db), *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip


def assert_clear_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("costlens: error: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


@pytest.fixture
def requests_file(tmp_path: Path) -> Path:
    path = tmp_path / "reqs.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i in range(200):
            body = {
                "model": "gpt-4o-mini",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": f"q {i}"}],
            }
            f.write(json.dumps({"custom_id": f"c{i}", "body": body}) + "\n")
    return path


def test_two_processes_on_one_db(tmp_path, requests_file, figure):
    db = tmp_path / "shared.duckdb"
    other = tmp_path / "other.jsonl"
    other.write_text(
        json.dumps({"custom_id": "x", "response": {"status_code": 200, "body": {"model": "gpt-4o", "choices": [],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1}}}}) + "\n", encoding="utf-8",
    )  # fmt: skip
    tried: list[str] = []
    # 200 requests at 2 in flight and 200 ms each: the run holds the DB for ~20 s, long enough for three
    # other processes to start and try it on a loaded 2-core machine (at 60 ms it once finished first).
    with sim.running_server(sim.SimConfig(latency_ms=200, seed=1)) as server:
        writer = subprocess.Popen(
            [sys.executable, "-m", "costlens", "--db", str(db), "run", str(requests_file),
             "--base-url", server.base_url, "--concurrency", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_until(
                lambda: server.app.stats.completions >= 5 or writer.poll() is not None, "the run to start"
            )
            assert writer.poll() is None, writer.communicate()
            for name, args in (
                ("write+write (replay)", ["replay", str(other)]),
                ("write+read (summary)", ["summary", "--include-simulated"]),
                ("report while a run writes", ["report", "--out", str(tmp_path / "r.html")]),
            ):
                done = costlens(db, *args)
                assert_clear_error(done, "is in use by another process (process", "COSTLENS_LOCK_WAIT")
                tried.append(name)
            assert writer.poll() is None, "the checks must have run while the writer held the file"
            # With a wait the reader gets its turn once the writer is done, and sees all of it.
            waited = costlens(
                db, "summary", "--json", "--include-simulated", env={"COSTLENS_LOCK_WAIT": "300"}
            )
        finally:
            out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["total"]["requests"] == 200
    assert (
        costlens(db, "replay", str(other)).returncode == 0
    )  # the file was never half-written by the refusals
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute(
            "SELECT count(*), count(DISTINCT (run_id, request_id)) FROM results"
        ).fetchall() == [(201, 201)]
    figure(
        "concurrent: a second process on a DB a run is writing (" + ", ".join(tried) + "); "
        "then the same with COSTLENS_LOCK_WAIT",
        cases=len(tried) + 1,
        held="each refused with one error line naming the holder's PID (exit 2), or waited and saw the "
        "finished run; the run completed; no row lost or doubled",
    )


def _a_db(tmp_path: Path) -> Path:
    db = tmp_path / "good.duckdb"
    done = costlens(
        db,
        "replay",
        str(Path(__file__).resolve().parents[2] / "data/samples/openai_batch_output_gpt-4o.jsonl"),
    )
    assert done.returncode in (0, 1), done.stderr
    return db


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "newer-schema"])
def test_a_damaged_or_newer_db_is_one_clear_error(tmp_path, damage, figure):
    db = _a_db(tmp_path)
    if damage == "truncated":
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        db.write_bytes(bytes(range(256)) * 64)
    elif damage == "empty":
        db.write_bytes(b"")
    else:
        with duckdb.connect(str(db)) as conn:
            conn.execute("INSERT INTO _costlens_migrations VALUES (999, 'from the future', now())")
    for args in (
        ["summary"],
        ["runs"],
        ["report", "--out", str(tmp_path / "r.html")],
        ["export", "--format", "csv", "--out", str(tmp_path / "x.csv")],
    ):
        done = costlens(db, *args)
        if damage == "empty" and done.returncode == 0:
            continue  # DuckDB treats an empty file as a new database: nothing was lost, nothing to read
        if damage == "newer-schema":
            assert_clear_error(done, "newer costlens")
        else:
            assert_clear_error(done, "database", str(db))
    if damage == "newer-schema":
        figure(
            "damaged DB: truncated, garbage, empty, newer schema × summary, runs, report, export",
            cases=16,
            held="one error line each (exit 2), no traceback; an empty file opens as a new DB",
        )


def test_a_full_disk_leaves_nothing_half_committed(tmp_path, figure):
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"this machine does not allow a small filesystem here: {made.stderr.strip()}")
    try:
        db = mount / "full.duckdb"
        big = tmp_path / "big.jsonl"
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve().parents[2] / "bench" / "gen_batch_output.py"),
             "--lines", "60000", "--seed", "5", str(big)], check=True, capture_output=True,
        )  # fmt: skip
        small = _a_db(tmp_path)
        shutil.copy(small, db)
        done = costlens(db, "replay", str(big), "--store-content")
        assert_clear_error(done)
        assert (
            "No space left" in done.stderr or "disk" in done.stderr.lower() or "space" in done.stderr.lower()
        )
        # Free the space again: the DB still opens, with what it had before and nothing of the failed file.
        for extra in mount.glob("*.wal"):
            extra.unlink()
        summary = costlens(db, "summary", "--json")
        assert summary.returncode == 0, summary.stderr
        assert json.loads(summary.stdout)["total"]["requests"] == 120
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
    figure(
        "full disk: replay of 60,000 lines onto a 2 MB filesystem",
        cases=1,
        held="one error line (exit 2); the DB opens afterwards with only what it had before",
    )
