"""Replay benchmark: how fast does `costlens replay` load and price an OpenAI Batch output file?

Three ways of getting the same file into a priced state are compared, each run in a fresh
subprocess (so imports, startup and teardown are counted) writing to a fresh DuckDB file in a
temporary directory:

(a) **DuckDB floor** - a bare ``CREATE TABLE t AS SELECT * FROM read_json(...)``. Nothing on this
    stack can load the file faster, so it is the yardstick: costlens should cost at most 2x this.
(b) **Naive Python loop** - what a user would write without costlens: ``json.loads`` every line
    and call ``genai_prices.calc_price`` on its usage, summing the total. It stores nothing, so it
    is a lower bound on the hand-written approach; costlens should be at least 20x faster.
(c) **costlens** - ``costlens --db <tmp>/c.duckdb replay <file>``, which must also stay under
    1.5 GiB peak RSS.

Wall time is measured by this script around the child; peak RSS comes from GNU ``/usr/bin/time``
(``%M``) when it exists, else from a tiny Python wrapper that reports ``RUSAGE_CHILDREN``'s
``ru_maxrss`` for its single child. The input is generated once with ``bench/gen_batch_output.py``
and cached in ``bench/out/`` by line count and seed.

Usage::

    .venv/bin/python bench/bench_replay.py [--lines N] [--repeats R] [--out bench/out/replay.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
GEN_SCRIPT = BENCH_DIR / "gen_batch_output.py"
GNU_TIME = Path("/usr/bin/time")
MIB = 1024 * 1024

TARGET_RATIO_VS_A = 2.0
TARGET_SPEEDUP_VS_B = 20.0
TARGET_PEAK_RSS_MIB = 1.5 * 1024

LABELS = {
    "a": "(a) DuckDB read_json CTAS (floor)",
    "b": "(b) json.loads + genai-prices loop",
    "c": "(c) costlens replay",
}

# Wrapper used only when GNU time is missing: runs argv[2:], writes its own children's peak RSS (KiB
# on Linux) to argv[1] and exits with the child's return code.
RSS_RUNNER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(sys.argv[1], 'w').write(f'0 {rss}')\n"
    "sys.exit(rc)\n"
)


# --------------------------------------------------------------------------------------------------
# Child workloads (run as `bench_replay.py _child a|b FILE DB` in a fresh interpreter)
# --------------------------------------------------------------------------------------------------


def child_duckdb_floor(path: str, db: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(db)
    con.execute(
        "CREATE TABLE t AS SELECT * FROM read_json(?, format='newline_delimited')",
        [path],
    )
    row = con.execute("SELECT count(*) FROM t").fetchone()
    con.close()
    return {"rows": row[0] if row else None}


def child_naive_loop(path: str, _db: str) -> dict[str, Any]:
    from decimal import Decimal

    from genai_prices import Usage, calc_price

    total = Decimal(0)
    lines = priced = failed_requests = unknown_models = 0
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            lines += 1
            rec = json.loads(raw)
            resp = rec.get("response")
            if not resp or resp.get("status_code") != 200:
                failed_requests += 1
                continue
            body = resp["body"]
            usage = body["usage"]
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
            try:
                price = calc_price(
                    Usage(
                        input_tokens=usage["prompt_tokens"],
                        output_tokens=usage["completion_tokens"],
                        cache_read_tokens=cached,
                    ),
                    model_ref=body["model"],
                )
            except LookupError:
                unknown_models += 1
                continue
            total += price.total_price
            priced += 1
    return {
        "lines": lines,
        "priced": priced,
        "failed_requests": failed_requests,
        "unknown_models": unknown_models,
        "total_usd": str(total),
    }


CHILDREN = {"a": child_duckdb_floor, "b": child_naive_loop}


def run_child(argv: list[str]) -> None:
    method, path, db = argv
    print(json.dumps(CHILDREN[method](path, db)))


# --------------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------------


def ensure_input(lines: int, seed: int) -> Path:
    """Return the cached batch-output file for (lines, seed), generating it if needed."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"batch_output_{lines}_seed{seed}.jsonl"
    if path.exists():
        print(f"using cached input {path.relative_to(ROOT)}", file=sys.stderr)
        return path
    print(f"generating {lines:,} lines -> {path.relative_to(ROOT)} ...", file=sys.stderr)
    tmp = path.with_suffix(".jsonl.partial")
    t0 = time.perf_counter()
    cmd = [sys.executable, str(GEN_SCRIPT), str(tmp), "--lines", str(lines), "--seed", str(seed)]
    subprocess.run(cmd, check=True)
    tmp.replace(path)  # atomic: an interrupted generation never leaves a truncated cache entry
    print(f"generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def warm_page_cache(path: Path) -> None:
    """Read the file once so the first measured method does not pay for cold disk reads."""
    with open(path, "rb") as fh:
        while fh.read(16 * MIB):
            pass


def tail(text: str, n: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def measure(cmd: list[str], timeout: float, ok_codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Run cmd in a fresh process; return wall time, peak RSS and output tails."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss", delete=False) as rss_file:
        rss_path = rss_file.name
    if GNU_TIME.exists():
        wrapped = [str(GNU_TIME), "-f", "%e %M", "-o", rss_path, *cmd]
    else:
        wrapped = [sys.executable, "-c", RSS_RUNNER, rss_path, *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        wrapped,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so a timeout can kill the wrapper and the child together
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    wall = time.perf_counter() - t0
    try:
        fields = Path(rss_path).read_text().split()
        # GNU time prefixes the numbers with "Command exited with non-zero status N" on failure.
        peak_kib = int(fields[-1])
    except (OSError, ValueError, IndexError):
        peak_kib = None
    finally:
        Path(rss_path).unlink(missing_ok=True)
    rc = proc.returncode
    # costlens exits 1 when the file holds failed requests (the generated file has ~1%
    # expired lines): finished and recorded, so it counts as a successful run here.
    return {
        "ok": rc in ok_codes and not timed_out,
        "rc": rc,
        "timed_out": timed_out,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(peak_kib / 1024, 1) if peak_kib is not None else None,
        "stdout_tail": tail(out, 5),
        "stderr_tail": tail(err),
    }


def command_for(method: str, path: Path, db: Path) -> list[str] | None:
    if method == "c":
        exe = ROOT / ".venv" / "bin" / "costlens"
        if not exe.exists():
            found = shutil.which("costlens")
            if found is None:
                return None
            exe = Path(found)
        return [str(exe), "--db", str(db), "replay", str(path)]
    return [sys.executable, str(Path(__file__).resolve()), "_child", method, str(path), str(db)]


def run_method(method: str, path: Path, tmp_root: str | None, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench_{method}_", dir=tmp_root) as tmp:
        db = Path(tmp) / f"{method}.duckdb"
        cmd = command_for(method, path, db)
        if cmd is None:
            return {"ok": False, "missing": True, "stderr_tail": "costlens executable not found"}
        run = measure(cmd, timeout, (0, 1) if method == "c" else (0,))
        run["db_mib"] = round(db.stat().st_size / MIB, 1) if db.exists() else None
        return run


def summarize(method: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r.get("ok")]
    if not runs:
        status = "skipped"
    elif any(r.get("missing") for r in runs):
        status = "missing"
    elif len(ok) < len(runs):
        status = "failed"
    else:
        status = "ok"
    rss = [r["peak_rss_mib"] for r in ok if r.get("peak_rss_mib") is not None]
    return {
        "label": LABELS[method],
        "status": status,
        "median_wall_s": round(statistics.median(r["wall_s"] for r in ok), 3) if ok else None,
        "peak_rss_mib": max(rss) if rss else None,
        "runs": runs,
    }


def add_ratios(results: dict[str, dict[str, Any]]) -> None:
    a = results.get("a", {}).get("median_wall_s")
    b = results.get("b", {}).get("median_wall_s")
    for res in results.values():
        wall = res["median_wall_s"]
        res["ratio_vs_a"] = round(wall / a, 2) if wall and a else None
        res["speedup_vs_b"] = round(b / wall, 1) if wall and b else None


def target_checks(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    c = results.get("c", {})

    def check(name: str, value: float | None, limit: float, higher_is_better: bool) -> dict[str, Any]:
        passed = None
        if value is not None:
            passed = value >= limit if higher_is_better else value <= limit
        return {"target": name, "value": value, "limit": limit, "pass": passed}

    return [
        check("costlens wall <= 2x DuckDB floor (a)", c.get("ratio_vs_a"), TARGET_RATIO_VS_A, False),
        check("costlens >= 20x faster than naive loop (b)", c.get("speedup_vs_b"), TARGET_SPEEDUP_VS_B, True),
        check("costlens peak RSS <= 1.5 GiB (MiB)", c.get("peak_rss_mib"), TARGET_PEAK_RSS_MIB, False),
    ]


def _cmd_output(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def machine_info() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _cmd_output(["lscpu"]).splitlines()
            if line.startswith("Model name:")
        ),
        platform.processor() or "unknown",
    )
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / MIB, 1)
    except OSError:
        pass

    def ver(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "mem_total_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": ver("duckdb"),
        "polars": ver("polars"),
        "genai_prices": ver("genai-prices"),
        "costlens": ver("costlens"),
        "rss_source": "GNU /usr/bin/time %M" if GNU_TIME.exists() else "python ru_maxrss wrapper",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def render_markdown(report: dict[str, Any]) -> str:
    m, inp = report["machine"], report["input"]
    lines = [
        f"## Replay benchmark - {inp['lines']:,} lines ({inp['mib']:,.0f} MiB), seed {inp['seed']}",
        "",
        f"Machine: {m['cpu']}, {m['nproc']} CPUs, {m['mem_total_gib']} GiB RAM; Python {m['python']}, "
        f"duckdb {m['duckdb']}, polars {m['polars']}, genai-prices {m['genai_prices']}, "
        f"costlens {m['costlens']}; {m['date']}",
        "",
        "| method | median wall s | all runs (s) | peak RSS MiB | ratio vs (a) | speed-up vs (b) |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for res in report["results"].values():
        runs = ", ".join(f"{r['wall_s']:.2f}" for r in res["runs"] if "wall_s" in r) or "-"
        label = res["label"] if res["status"] == "ok" else f"{res['label']} **[{res['status']}]**"
        lines.append(
            f"| {label} | {fmt(res['median_wall_s'], '.2f')} | {runs} | {fmt(res['peak_rss_mib'], '.0f')} "
            f"| {fmt(res['ratio_vs_a'], '.2f')} | {fmt(res['speedup_vs_b'], '.1f')} |"
        )
    lines += ["", "Targets:", ""]
    for t in report["targets"]:
        mark = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        lines.append(f"- {mark}: {t['target']} (value {fmt(t['value'])}, limit {t['limit']})")
    for res in report["results"].values():
        bad = [r for r in res["runs"] if not r.get("ok")]
        if bad:
            lines += [
                "",
                f"{res['label']} {res['status']}; stderr tail:",
                "",
                "```",
                bad[-1]["stderr_tail"],
                "```",
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        run_child(sys.argv[2:])
        return

    ap = argparse.ArgumentParser(
        description="Benchmark `costlens replay` against the DuckDB floor and a naive Python loop."
    )
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines in the generated input")
    ap.add_argument("--seed", type=int, default=7, help="generator seed")
    ap.add_argument("--repeats", type=int, default=3, help="runs of (a) and (c); medians are reported")
    ap.add_argument(
        "--repeats-baseline-b", type=int, default=3, help="runs of the slow loop (b), ~2.5 min each"
    )
    ap.add_argument("--methods", default="abc", help="subset of methods to run, e.g. 'ac'")
    ap.add_argument("--out", type=Path, default=OUT_DIR / "replay.json", help="JSON report path")
    ap.add_argument("--tmpdir", default=None, help="where the per-run temp DuckDB files go")
    ap.add_argument("--timeout", type=float, default=3600, help="per-run timeout in seconds")
    args = ap.parse_args()

    methods = [m for m in "abc" if m in args.methods]
    path = ensure_input(args.lines, args.seed)
    warm_page_cache(path)

    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    # All three are interleaved, round by round, so drift (thermal, noisy neighbours: this VM's
    # speed wanders by +-20% from one minute to the next) hits each method alike.
    counts = {m: args.repeats_baseline_b if m == "b" else args.repeats for m in methods}
    schedule = [(i, m) for i in range(max(counts.values())) for m in methods if i < counts[m]]
    for i, m in schedule:
        if runs[m] and not runs[m][-1].get("ok"):
            continue  # a missing or failing method is recorded once, not retried
        total = args.repeats_baseline_b if m == "b" else args.repeats
        print(f"run {i + 1}/{total}: {LABELS[m]}", file=sys.stderr)
        runs[m].append(run_method(m, path, args.tmpdir, args.timeout))

    results = {m: summarize(m, runs[m]) for m in methods}
    add_ratios(results)
    report = {
        "machine": machine_info(),
        "input": {
            "path": str(path.relative_to(ROOT)),
            "lines": args.lines,
            "seed": args.seed,
            "mib": round(path.stat().st_size / MIB, 1),
        },
        "config": {"repeats": args.repeats, "repeats_baseline_b": args.repeats_baseline_b},
        "results": results,
        "targets": target_checks(results),
    }
    md = render_markdown(report)
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**report, "markdown": md}, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
