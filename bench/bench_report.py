"""Report benchmark: how long does `costlens report` take over a 1,000,000-request DB, and how big is the page?

Targets (issue 4): at most 5 s to render and at most 6 MB for the HTML with plotly.js inline.

The DB is the 1M-line OpenAI Batch output of ``bench/gen_batch_output.py`` (seeded, cached in
``bench/out/`` like the replay benchmark's input) replayed once with ``costlens replay`` (~20 s)
and cached as ``bench/out/report_<lines>_seed<seed>.duckdb``. Every measured run is a fresh
subprocess, so imports and start-up are counted, and does what ``costlens report`` does: open a
session, aggregate (``build_report_data``), render, write the file. The child reports its phase
times; this script times the whole child. When ``costlens report`` is registered in the CLI, the
command itself is timed too.

Scenario ``shared`` adds a second DB (built from the first by SQL, cached too) in which 500,000
custom_ids ran on two models each, so the model-comparison queries run at full size as well.

Usage::

    .venv/bin/python bench/bench_report.py [--lines N] [--repeats R] [--scenarios base,shared]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
sys.path.insert(0, str(BENCH_DIR))

from bench_replay import ensure_input, machine_info  # noqa: E402  (sibling script, not a package)

TARGET_SECONDS = 5.0
TARGET_MB = 6.0
REPORT_TIME = "2026-01-01T00:00:00Z"  # fixed: the what-if prices and the footer do not depend on the clock


def costlens_bin() -> str:
    local = Path(sys.executable).parent / "costlens"
    return str(local) if local.exists() else "costlens"


def ensure_db(lines: int, seed: int) -> Path:
    """The cached DB holding one replay of the (lines, seed) batch output."""
    path = OUT_DIR / f"report_{lines}_seed{seed}.duckdb"
    if path.exists():
        print(f"using cached DB {path.relative_to(ROOT)}", file=sys.stderr)
        return path
    source = ensure_input(lines, seed)
    tmp = path.with_suffix(".duckdb.partial")
    tmp.unlink(missing_ok=True)
    print(f"replaying {source.name} -> {path.relative_to(ROOT)} ...", file=sys.stderr)
    t0 = time.perf_counter()
    cmd = [costlens_bin(), "--db", str(tmp), "replay", str(source), "--run-name", "bench-nightly"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):  # 1 = some requests in the file had failed (the ~1% errors)
        sys.exit(f"replay failed ({proc.returncode}): {proc.stderr[-2000:]}")
    tmp.replace(path)  # atomic: an interrupted replay never leaves a half-built cache entry
    print(f"replayed in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


# Half the requests become custom_ids that ran on two models: the first half is copied as a
# second run, each answered by the "next" model of the generator's list; the second half is
# dropped, so the DB still holds `lines` requests.
_SHARED_SQL = """
INSERT INTO runs (run_id, name, kind, status, source_file, tags, costlens_version, started_at)
SELECT 2, 'bench-nightly-rerun', 'replay', 'completed', 'synthetic', '{{"bench": "shared"}}', costlens_version,
       started_at + INTERVAL 1 DAY
FROM runs WHERE run_id = 1;
INSERT INTO requests SELECT * REPLACE (2 AS run_id) FROM requests WHERE run_id = 1 AND request_id < {half};
INSERT INTO results SELECT * REPLACE (
    2 AS run_id,
    CASE response_model
        WHEN 'gpt-4o-2024-08-06' THEN 'gpt-4o-mini-2024-07-18'
        WHEN 'gpt-4o-mini-2024-07-18' THEN 'gpt-4.1-2025-04-14'
        WHEN 'gpt-4.1-2025-04-14' THEN 'deepseek-chat'
        ELSE 'gpt-4o-2024-08-06' END AS response_model)
FROM results WHERE run_id = 1 AND request_id < {half};
DELETE FROM results WHERE run_id = 1 AND request_id >= {half} AND request_id < {full};
DELETE FROM requests WHERE run_id = 1 AND request_id >= {half} AND request_id < {full};
-- As if sent by costlens rather than replayed: deterministic timings, so the latency table and
-- the cost-vs-latency scatter are computed at full size too.
INSERT INTO result_details (run_id, request_id, latency_ms, ttft_ms)
SELECT run_id, request_id, 300 + (request_id * 7919 + run_id * 104729) % 4000, 80 + (request_id * 104729) % 400
FROM results;
"""


def ensure_shared_db(base: Path, lines: int, seed: int) -> Path:
    path = OUT_DIR / f"report_{lines}_seed{seed}_shared.duckdb"
    if path.exists():
        print(f"using cached DB {path.relative_to(ROOT)}", file=sys.stderr)
        return path
    import duckdb

    tmp = path.with_suffix(".duckdb.partial")
    shutil.copy(base, tmp)
    half = lines // 2
    with duckdb.connect(str(tmp)) as conn:
        conn.execute("BEGIN")
        # Keep the total at `lines`: drop the second half's originals, re-add the first half as run 2.
        ids = conn.execute(
            "SELECT min(request_id), max(request_id) FROM requests WHERE run_id = 1"
        ).fetchone()
        assert ids is not None
        low = ids[0]
        conn.execute(_SHARED_SQL.format(half=low + half, full=low + 2 * half))
        conn.execute("COMMIT")
        total = conn.execute("SELECT count(*) FROM results").fetchone()
    print(f"built {path.relative_to(ROOT)}: {total[0] if total else 0:,} requests", file=sys.stderr)
    tmp.replace(path)
    return path


def child(db: str, out: str, plotly_mode: str) -> None:
    """One report, as `costlens report` makes it; prints its phase times as JSON."""
    t0 = time.perf_counter()
    from costlens.money.filters import Filters
    from costlens.report.data import build_report_data
    from costlens.report.html import render_html, report_time, write_report
    from costlens.session import Settings, open_session

    t1 = time.perf_counter()
    now = report_time({"COSTLENS_REPORT_TIME": REPORT_TIME})
    with open_session(Settings(db_path=Path(db))) as session:
        t2 = time.perf_counter()
        data = build_report_data(session.conn, Filters(), prices=session.prices, as_of=now, db_path=db)
    t3 = time.perf_counter()
    text = render_html(data, plotly_mode=plotly_mode, generated_at=now)  # type: ignore[arg-type]
    t4 = time.perf_counter()
    write_report(Path(out), text)
    t5 = time.perf_counter()
    print(
        json.dumps(
            {
                "imports_s": t1 - t0,
                "open_s": t2 - t1,
                "aggregate_s": t3 - t2,
                "render_s": t4 - t3,
                "write_s": t5 - t4,
                "requests": data.headline.total.requests,
                "sections": {
                    "comparison": data.comparison is not None,
                    "whatif": data.whatif is not None,
                    "days": len({r.day for r in data.daily}),
                },
            }
        )
    )


def timed(
    cmd: list[str], env: dict[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc


def has_report_command() -> bool:
    proc = subprocess.run([costlens_bin(), "report", "--help"], capture_output=True, text=True)
    return proc.returncode == 0


def run_scenario(name: str, db: Path, repeats: int, tmp_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"scenario": name, "db": str(db.relative_to(ROOT))}
    for mode in ("inline", "cdn"):
        out = tmp_dir / f"{name}-{mode}.html"
        walls, phases = [], []
        for _ in range(repeats):
            cmd = [sys.executable, __file__, "--child", str(db), str(out), mode]
            wall, proc = timed(cmd)
            walls.append(wall)
            phases.append(json.loads(proc.stdout))
        result[mode] = {
            "wall_s_median": statistics.median(walls),
            "wall_s_min": min(walls),
            "wall_s_runs": walls,
            "phases_median": {
                key: statistics.median(p[key] for p in phases)
                for key in ("imports_s", "open_s", "aggregate_s", "render_s", "write_s")
            },
            "bytes": out.stat().st_size,
            "requests": phases[0]["requests"],
            "sections": phases[0]["sections"],
        }
    if has_report_command():
        out = tmp_dir / f"{name}-cli.html"
        env = {**os.environ, "COSTLENS_REPORT_TIME": REPORT_TIME}
        walls = [
            timed([costlens_bin(), "--db", str(db), "report", "--out", str(out)], env)[0]
            for _ in range(repeats)
        ]
        result["cli"] = {
            "wall_s_median": statistics.median(walls),
            "wall_s_runs": walls,
            "bytes": out.stat().st_size,
        }
    return result


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"## Report benchmark - {report['lines']:,} requests, seed {report['seed']}, {report['repeats']} runs each",
        "",
        "| scenario | plotly | wall (median) | wall (min) | imports | open | aggregate | render | write | file |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report["scenarios"]:
        for mode in ("inline", "cdn"):
            r, p = s[mode], s[mode]["phases_median"]
            lines.append(
                f"| {s['scenario']} | {mode} | {r['wall_s_median']:.2f} s | {r['wall_s_min']:.2f} s "
                f"| {p['imports_s']:.2f} | {p['open_s']:.2f} "
                f"| {p['aggregate_s']:.2f} | {p['render_s']:.2f} | {p['write_s']:.2f} | {r['bytes'] / 1e6:.2f} MB |"
            )
        if "cli" in s:
            lines.append(
                f"| {s['scenario']} | `costlens report` | {s['cli']['wall_s_median']:.2f} s "
                f"| {min(s['cli']['wall_s_runs']):.2f} s | | | | | "
                f"| {s['cli']['bytes'] / 1e6:.2f} MB |"
            )
    lines += ["", "Targets:"]
    for check in report["checks"]:
        lines.append(
            f"- {check['name']}: {check['value']} (limit {check['limit']}) - {'OK' if check['ok'] else 'MISSED'}"
        )
    m = report["machine"]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['nproc']} CPUs, {m['mem_total_gib']} GiB; Python {m['python']}, "
        f"duckdb {m['duckdb']}; load average {report['load_average_1_5_15']} at the end.",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="requests in the benchmark DB")
    ap.add_argument("--seed", type=int, default=7, help="generator seed")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement (median reported)")
    ap.add_argument("--scenarios", default="base,shared", help="comma-separated: base, shared")
    ap.add_argument("--out", type=Path, default=OUT_DIR / "report.json", help="JSON results path")
    args = ap.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    base = ensure_db(args.lines, args.seed)
    dbs = {"base": base}
    if "shared" in args.scenarios.split(","):
        dbs["shared"] = ensure_shared_db(base, args.lines, args.seed)
    tmp_dir = OUT_DIR / "report_pages"
    tmp_dir.mkdir(exist_ok=True)
    scenarios = [
        run_scenario(name, db, args.repeats, tmp_dir) for name, db in dbs.items() if name in args.scenarios
    ]
    checks = []
    for s in scenarios:
        wall = s.get("cli", s["inline"])["wall_s_median"]
        size = s["inline"]["bytes"] / 1e6
        checks.append({"name": f"{s['scenario']}: render (fresh process)", "value": f"{wall:.2f} s",
                       "limit": f"{TARGET_SECONDS} s", "ok": wall <= TARGET_SECONDS})  # fmt: skip
        checks.append({"name": f"{s['scenario']}: HTML size, plotly inline", "value": f"{size:.2f} MB",
                       "limit": f"{TARGET_MB} MB", "ok": size <= TARGET_MB})  # fmt: skip
    report = {
        "lines": args.lines,
        "seed": args.seed,
        "repeats": args.repeats,
        "scenarios": scenarios,
        "checks": checks,
        "machine": machine_info(),
        # Other work on the machine shifts every figure; keep the load next to them.
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render_markdown(report))
    print(
        f"\nresults: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
