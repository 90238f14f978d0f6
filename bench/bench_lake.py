"""The lake (issue 14): publish throughput against DuckDB's bare COPY ... TO parquet of the same rows,
and `summary --lake` against `summary --db` over the same requests; same run, medians of --repeat runs.

Both sides of each comparison are whole commands in their own process (Python start, price table
load, DuckDB open), so the ratio is what a user waits for:
- publish: `costlens publish --lake DIR` (Parquet by day and run, zstd, manifest, cleanup) against a
  script that opens the same session and runs one `COPY (<the publish query>) TO 'file.parquet'`;
- summary: `costlens summary --lake DIR --json` against `costlens --db DB summary --json`, with
  peak RSS of each (GNU time).
Prints one JSON object per figure, with the peak RSS of each side and the load average (1 min)
before and after the figure's runs, since the machine may be shared. `make bench` runs it at
1,000,000 requests; `--lines 10000000` is the issue's size (about 25 minutes on 2 cores, a fifth of it
generating the file and building the DB; `--clean` then deletes the DB, lake and file).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

BARE_COPY = """
import sys
from pathlib import Path
from costlens.lake.publish import requests_select
from costlens.session import Settings, open_session
with open_session(Settings(db_path=Path(sys.argv[1]))) as s:
    run_id, uuid = s.conn.execute("SELECT run_id, CAST(run_uuid AS VARCHAR) FROM runs").fetchone()
    s.conn.execute(f"COPY ({requests_select(run_id, uuid, s.pricing_sha256)}) TO '{sys.argv[2]}' (FORMAT parquet)")
"""


def timed(args: list[str]) -> tuple[float, int]:
    t0 = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "maxrss-kb=%M", *args], capture_output=True, cwd=ROOT)
    elapsed = time.monotonic() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"{args} failed: {done.stderr.decode(errors='replace')[-2000:]}")
    last = done.stderr.decode(errors="replace").strip().splitlines()[-1]
    return elapsed, int(last.split("=", 1)[1]) * 1024


def load() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clean", action="store_true", help="delete the generated file, DB and lake afterwards")
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    source = OUT / f"lake_batch_{a.lines}.jsonl"
    if not source.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_batch_output.py"), str(source),
                        "--lines", str(a.lines)], check=True)  # fmt: skip
    db = OUT / f"lake_{a.lines}.duckdb"
    if not db.exists():
        subprocess.run([sys.executable, "-m", "costlens", "--db", str(db), "replay", str(source)],
                       check=False, capture_output=True, cwd=ROOT)  # fmt: skip
    py = sys.executable
    publish, bare = [], []
    lake = OUT / f"lake_{a.lines}_dir"
    load_before = load()
    for i in range(a.repeat):
        shutil.rmtree(lake, ignore_errors=True)
        publish.append(timed([py, "-m", "costlens", "--db", str(db), "publish", "--lake", str(lake)]))
        target = OUT / f"lake_bare_{i}.parquet"
        bare.append(timed([py, "-c", BARE_COPY, str(db), str(target)]))
        target.unlink()
    p, b = statistics.median(t for t, _ in publish), statistics.median(t for t, _ in bare)
    print(json.dumps({"figure": "publish vs bare COPY", "rows": a.lines, "publish_s": round(p, 2),
                      "bare_copy_s": round(b, 2), "publish_rows_per_s": round(a.lines / p),
                      "bare_rows_per_s": round(a.lines / b), "ratio": round(p / b, 3),
                      "publish_peak_rss_mb": max(r for _, r in publish) // 2**20,
                      "bare_peak_rss_mb": max(r for _, r in bare) // 2**20,
                      "runs": {"publish": [round(t, 2) for t, _ in publish], "bare": [round(t, 2) for t, _ in bare]},
                      "load_1min": [load_before, load()]}), flush=True)  # fmt: skip
    over_lake, over_db = [], []
    load_before = load()
    for _ in range(a.repeat):
        over_lake.append(timed([py, "-m", "costlens", "summary", "--lake", str(lake), "--json"]))
        over_db.append(timed([py, "-m", "costlens", "--db", str(db), "summary", "--json"]))
    lt, dt = statistics.median(t for t, _ in over_lake), statistics.median(t for t, _ in over_db)
    print(json.dumps({"figure": "summary --lake vs --db", "rows": a.lines, "lake_s": round(lt, 2),
                      "db_s": round(dt, 2), "ratio": round(lt / dt, 3),
                      "lake_peak_rss_mb": max(r for _, r in over_lake) // 2**20,
                      "db_peak_rss_mb": max(r for _, r in over_db) // 2**20,
                      "runs": {"lake": [round(t, 2) for t, _ in over_lake], "db": [round(t, 2) for t, _ in over_db]},
                      "load_1min": [load_before, load()]}), flush=True)  # fmt: skip
    if a.clean:
        for tree in (lake, db.with_name(db.name + ".tmp")):  # .tmp: DuckDB's spill directory
            shutil.rmtree(tree, ignore_errors=True)
        for path in (db, db.with_name(db.name + ".wal"), source):
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
