"""Load (RELIABILITY.md, issue 13 point 7): time and peak memory at size, nothing lost.

1. A 200,000-request `run --budget` against serve-sim on loopback with 5% faults (retry waits capped at
   10 ms: they are the policy's time, not costlens's): the time per request over the last 10,000
   against the first 10,000, in the same run (the budget's spend check must stay linear in the run's
   size), and that every request ends with exactly one row.
2. A 5,000,000-request DB (a replay of 5M batch output lines), then `summary`, `report` and `export`
   over it: wall time and peak RSS of each command (target <= 1.5 GB), and the row counts.

Run with `make reliability-load` (about 15 minutes on 2 cores); prints one JSON object per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))


def budgeted_run(n: int) -> dict[str, object]:
    from costlens.send import sim
    from costlens.send.run import RunOptions, run_requests
    from costlens.session import Settings, open_session

    OUT.mkdir(exist_ok=True)
    path = OUT / f"load_requests_{n}.jsonl"
    if not path.exists():
        with path.open("w", encoding="utf-8") as f:
            for i in range(n):
                body = {
                    "model": "gpt-4o-mini",
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": f"q {i}"}],
                }
                f.write(json.dumps({"custom_id": f"r{i}", "body": body}) + "\n")
    db = OUT / f"load_run_{n}.duckdb"
    for old in OUT.glob(f"load_run_{n}.duckdb*"):
        old.unlink() if old.is_file() else None
    marks: list[tuple[float, int]] = []

    def progress(p: object) -> None:
        marks.append((time.monotonic(), p.done))  # type: ignore[attr-defined]

    mix = {"429": 4, "500": 2, "503": 2, "drop": 1, "cut": 1}
    config = sim.SimConfig(error_rate=0.05, seed=5, retry_after_ms=20, fault_mix=mix)  # type: ignore[arg-type]
    with sim.running_server(config) as server, open_session(Settings(db_path=db)) as session:
        t0 = time.monotonic()
        outcome = run_requests(
            session,
            RunOptions(requests_file=path, base_url=server.base_url, concurrency=64, budget=Decimal("1000"),
                       max_retries=4, timeout=10, progress_seconds=0.25),
            env={}, handle_signals=False, on_progress=progress,
            # Retry waits (up to 8 s of backoff) are the policy's, not costlens's work: capped here so a
            # retry in the last stretch does not stand for the per-request cost of the run's end.
            sleep=lambda seconds: asyncio.sleep(min(seconds, 0.01)),
        )  # fmt: skip
        elapsed = time.monotonic() - t0
    with duckdb.connect(str(db), read_only=True) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT request_id) FROM results").fetchall()[
            0
        ]

    def seconds_for(lo: int, hi: int) -> float:
        def at(k: int) -> float:
            for (t1, d1), (t2, d2) in zip(marks, marks[1:], strict=False):
                if d1 <= k <= d2 and d2 > d1:
                    return t1 + (t2 - t1) * (k - d1) / (d2 - d1)
            return marks[-1][0]

        return at(hi) - at(lo)

    first = seconds_for(0, 10_000) / 10_000
    last = seconds_for(n - 10_000, n) / 10_000
    return {
        "figure": "budgeted run", "requests": n, "ok": outcome.run_ok, "failed": outcome.run_failed,
        "rows": rows, "distinct_rows": distinct, "elapsed_s": round(elapsed, 1),
        "first_10k_us_per_request": round(first * 1e6, 1), "last_10k_us_per_request": round(last * 1e6, 1),
        "ratio_last_to_first": round(last / first, 3),
    }  # fmt: skip


def measured(args: list[str]) -> tuple[float, int, subprocess.CompletedProcess[bytes] | None]:
    """Wall seconds and peak RSS (bytes) of one costlens command, run as its own process under
    GNU time: a child's own ru_maxrss would start from this (large) process's size at the fork."""
    t0 = time.monotonic()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss-kb=%M", sys.executable, "-m", "costlens", *args], capture_output=True
    )
    elapsed = time.monotonic() - t0
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    rss_kb = int(lines[-1].split("=", 1)[1]) if lines and lines[-1].startswith("maxrss-kb=") else -1
    err = "\n".join(lines[:-1]).encode()
    return elapsed, rss_kb * 1024, subprocess.CompletedProcess(args, done.returncode, done.stdout, err)


def big_db(lines: int) -> list[dict[str, object]]:
    OUT.mkdir(exist_ok=True)
    source = OUT / f"load_batch_{lines}.jsonl"
    if not source.exists():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "gen_batch_output.py"),
                "--lines",
                str(lines),
                "--seed",
                "9",
                str(source),
            ],
            check=True,
        )
    db = OUT / f"load_{lines}.duckdb"
    for old in OUT.glob(f"load_{lines}.duckdb*"):
        if old.is_file():
            old.unlink()
    figures: list[dict[str, object]] = []
    commands = {
        "replay": ["--db", str(db), "replay", str(source)],
        "summary": ["--db", str(db), "summary", "--json"],
        "report": ["--db", str(db), "report", "--out", str(OUT / "load_report.html")],
        "export parquet": [
            "--db",
            str(db),
            "export",
            "--format",
            "parquet",
            "--out",
            str(OUT / "load.parquet"),
        ],
    }
    for name, args in commands.items():
        elapsed, rss, done = measured(args)
        assert done is not None
        ok = done.returncode in (0, 1)
        figures.append({"figure": f"{lines:,}-request DB: {name}", "elapsed_s": round(elapsed, 1),
                        "peak_rss_mb": round(rss / 2**20), "exit": done.returncode, "ok": ok,
                        "stderr_tail": done.stderr.decode(errors="replace")[-200:] if not ok else ""})  # fmt: skip
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute("SELECT count(*), count(DISTINCT request_id) FROM results").fetchall()[0]
    exported = duckdb.sql(f"SELECT count(*) FROM '{OUT / 'load.parquet'}'").fetchall()[0][0]
    figures.append(
        {
            "figure": f"{lines:,}-request DB: rows",
            "results": rows[0],
            "distinct": rows[1],
            "exported": exported,
        }
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-requests", type=int, default=200_000)
    parser.add_argument("--db-requests", type=int, default=5_000_000)
    args = parser.parse_args()
    if args.run_requests:  # 0 skips a part
        print(json.dumps(budgeted_run(args.run_requests)), flush=True)
    if args.db_requests:
        for figure in big_db(args.db_requests):
            print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
