"""Reconcile benchmark: a year of daily OpenAI usage and costs pages for 50 models against a 1M-request DB.

What is timed: ``costlens --db DB --pricing SHEET reconcile PAGES... --json`` (and the same with
the text table of the differing cells, ``--only-differences``), each run a fresh process (start-up
and imports included), medians of ``--repeats`` runs taken in turn. Target (issue 12): under 5 s.
An in-process child per round times the steps: reading and checking the pages, opening the
session, the comparison in SQL and storing the cells.

The data is built once and cached in ``bench/out/`` (git-ignored), all seeded:

1. a 1,000,000-line OpenAI Batch output file: each line a request of one of 50 models
   (``bench-model-00`` .. ``-49``), created at a random second of 2025 (UTC), with usage like
   ``gen_batch_output.py``'s (some cache reads), ~1% expired lines; and a price sheet for the 50
   models (standard and batch rows, batch at half);
2. the DB: that file replayed once with ``costlens replay`` (the 1% expired lines are errors
   without usage: not billed, so reconcile leaves them out of costlens's side);
3. the provider's pages, computed from the DB through the cost view (so the year reconciles to
   the digit) with three planted differences the script then expects the command to find, each
   with its cause: one model-day the provider has and costlens not (its rows removed from the DB
   copy: ``traffic costlens never saw``), one priced 10% higher by the provider (``price sheet
   differs``), and one the provider's pages leave out (an empty day for that model: ``window or
   time zone``). 12 monthly usage pages (``/v1/organization/usage/completions``, 1d buckets,
   grouped by model and batch) and 12 monthly costs pages (``/v1/organization/costs``, grouped
   by line item, two per model and day: input and output; amounts as strings).

Each run reconciles against a scratch copy of the DB (each run stores its ~91,000 cells).

Usage::

    .venv/bin/python bench/bench_reconcile.py [--lines N] [--models M] [--repeats R] [--out bench/out/reconcile.json]
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
sys.path.insert(0, str(BENCH_DIR))

from bench_pricing import wait_quiet  # noqa: E402  (sibling scripts, not a package)
from bench_replay import machine_info  # noqa: E402

TARGET_S = 5.0
YEAR = 2025
YEAR_START = int(dt.datetime(YEAR, 1, 1, tzinfo=dt.UTC).timestamp())
DAYS = 365
DAY_S = 86400


def costlens_bin() -> str:
    local = Path(sys.executable).parent / "costlens"
    return str(local) if local.exists() else "costlens"


def model_id(m: int) -> str:
    return f"bench-model-{m:02d}"


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


# The planted differences: (model, day of the year) -> what the provider's side does there.
PLANTED = {
    (3, 40): "traffic costlens never saw",  # removed from costlens's DB copy
    (7, 200): "price sheet differs",  # the provider bills 10% more, same tokens
    (11, 300): "window or time zone",  # the provider's pages show nothing for it
}


def write_sheet(path: Path, models: int) -> None:
    """Standard and batch rows (batch at half) for each model; prices vary by model."""
    lines = ["model,input_per_1m,output_per_1m,cached_input_per_1m,service_tier"]
    for m in range(models):
        inp, out = Decimal(m % 7 + 1) / 4, Decimal(m % 5 + 1)
        for tier, factor in (("standard", 1), ("batch", Decimal("0.5"))):
            lines.append(f"{model_id(m)},{inp * factor},{out * factor},{inp * factor / 2},{tier}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_batch_output(path: Path, lines: int, models: int, seed: int) -> None:
    """Seeded batch output lines, created over the year; written with plain string formatting."""
    rng = random.Random(seed)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            if rng.random() < 0.01:
                fh.write(
                    f'{{"id": "batch_req_{i:08x}", "custom_id": "request-{i}", "response": null, "error": '
                    '{"code": "batch_expired", "message": "This request could not be executed before the '
                    'completion window expired."}}\n'
                )
                continue
            prompt = rng.randint(10, 4000)
            cached = rng.choice((0, 0, 0, prompt // 2))
            completion = rng.randint(1, 800)
            created = YEAR_START + rng.randrange(DAYS * DAY_S)
            model = rng.randrange(models)
            if i < 20 * len(PLANTED):  # the planted cells always have traffic, whatever --lines says
                model, day = list(PLANTED)[i % len(PLANTED)]
                created = YEAR_START + day * DAY_S + rng.randrange(DAY_S)
            fh.write(
                f'{{"id": "batch_req_{i:08x}", "custom_id": "request-{i}", "response": {{"status_code": 200, '
                f'"request_id": "req_{i:08x}", "body": {{"id": "chatcmpl-{i:08x}", "object": "chat.completion", '
                f'"created": {created}, "model": "{model_id(model)}", "choices": [{{"index": 0, '
                '"message": {"role": "assistant", "content": "ok"}, "logprobs": null, "finish_reason": "stop"}], '
                f'"usage": {{"prompt_tokens": {prompt}, "completion_tokens": {completion}, "total_tokens": '
                f'{prompt + completion}, "prompt_tokens_details": {{"cached_tokens": {cached}, "audio_tokens": 0}}, '
                '"completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}, '
                '"system_fingerprint": "fp_bench"}}, "error": null}\n'
            )
    tmp.replace(path)


def ensure_db(lines: int, models: int, seed: int) -> tuple[Path, Path, dict[str, float]]:
    """The cached DB (one replay of the generated file) and its price sheet; build times if built now."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"reconcile_{lines}_m{models}_seed{seed}"
    db, sheet, source = OUT_DIR / f"{stem}.duckdb", OUT_DIR / f"{stem}_prices.csv", OUT_DIR / f"{stem}.jsonl"
    write_sheet(sheet, models)
    if db.exists():
        print(f"using cached DB {db.relative_to(ROOT)}", file=sys.stderr)
        return db, sheet, {}
    build: dict[str, float] = {}
    if not source.exists():
        print(f"generating {lines:,} lines ({models} models over {YEAR}) ...", file=sys.stderr)
        t0 = time.perf_counter()
        write_batch_output(source, lines, models, seed)
        build["generate_s"] = round(time.perf_counter() - t0, 1)
    tmp = db.with_suffix(".duckdb.partial")
    tmp.unlink(missing_ok=True)
    print(f"replaying {source.name} -> {db.relative_to(ROOT)} ...", file=sys.stderr)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            costlens_bin(),
            "--db",
            str(tmp),
            "--pricing",
            str(sheet),
            "replay",
            str(source),
            "--run-name",
            "bench",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1):  # 1: the expired lines are failed requests
        sys.exit(f"replay failed ({proc.returncode}): {proc.stderr[-2000:]}")
    build["replay_s"] = round(time.perf_counter() - t0, 1)
    tmp.replace(db)
    return db, sheet, build


def provider_figures(db: Path, sheet: Path) -> list[tuple[Any, ...]]:
    """Per (day, model): requests, input, cached, output tokens, input and output cost, from the cost view."""
    from costlens.session import Settings, open_session

    with open_session(Settings(db_path=db, pricing_path=sheet)) as session:
        return session.conn.execute(
            """SELECT CAST(occurred_at AS DATE) AS day, response_model,
                      count(*) FILTER (WHERE status = 'ok'), sum(prompt_tokens), sum(coalesce(cached_tokens, 0)),
                      sum(completion_tokens), sum(input_cost_usd), sum(output_cost_usd)
               FROM request_costs WHERE status = 'ok' GROUP BY ALL ORDER BY 1, 2"""
        ).fetchall()


def write_pages(figures: list[tuple[Any, ...]], models: int, pages_dir: Path) -> list[Path]:
    """12 monthly usage pages and 12 monthly costs pages, with the planted differences."""
    by_day: dict[dt.date, list[tuple[Any, ...]]] = {}
    for row in figures:
        by_day.setdefault(row[0], []).append(row)
    start = dt.date(YEAR, 1, 1)
    shutil.rmtree(pages_dir, ignore_errors=True)
    pages_dir.mkdir(parents=True)
    files: list[Path] = []
    for month in range(1, 13):
        usage_buckets, cost_buckets = [], []
        for d in range(calendar.monthrange(YEAR, month)[1]):
            day = dt.date(YEAR, month, d + 1)
            begin = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
            usage_results, cost_results = [], []
            for _, model, requests, inp, cached, out, in_cost, out_cost in by_day.get(day, []):
                m = int(model.rsplit("-", 1)[1])
                plant = PLANTED.get((m, (day - start).days))
                if plant == "window or time zone":
                    continue
                if plant == "price sheet differs":
                    in_cost, out_cost = in_cost * Decimal("1.1"), out_cost * Decimal("1.1")
                usage_results.append(
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": int(inp),
                        "output_tokens": int(out),
                        "input_cached_tokens": int(cached),
                        "input_audio_tokens": 0,
                        "output_audio_tokens": 0,
                        "num_model_requests": int(requests),
                        "project_id": None,
                        "user_id": None,
                        "api_key_id": None,
                        "model": model,
                        "batch": True,
                        "service_tier": None,
                    }
                )
                for kind, value in (("input", in_cost), ("output", out_cost)):
                    cost_results.append(
                        {
                            "object": "organization.costs.result",
                            "amount": {"value": format(value.normalize(), "f"), "currency": "usd"},
                            "line_item": f"{model}, {kind}",
                            "project_id": None,
                        }
                    )
            usage_buckets.append({"object": "bucket", "start_time": begin, "end_time": begin + DAY_S,
                                  "results": usage_results})  # fmt: skip
            cost_buckets.append({"object": "bucket", "start_time": begin, "end_time": begin + DAY_S,
                                 "results": cost_results})  # fmt: skip
        for name, buckets in (("usage", usage_buckets), ("costs", cost_buckets)):
            path = pages_dir / f"{name}-{YEAR}-{month:02d}.json"
            page = {"object": "page", "data": buckets, "has_more": month < 12, "next_page": None}
            path.write_text(json.dumps(page), encoding="utf-8")
            files.append(path)
    return files


def prepare_scratch(db: Path, scratch: Path) -> int:
    """A copy of the DB without the requests of the "never saw" cell; returns how many were removed."""
    import duckdb

    shutil.copyfile(db, scratch)
    ((m, day),) = [k for k, v in PLANTED.items() if v == "traffic costlens never saw"]
    when = dt.datetime(YEAR, 1, 1) + dt.timedelta(days=day)
    with duckdb.connect(str(scratch)) as conn:
        (removed,) = conn.execute(
            """DELETE FROM results WHERE response_model = ? AND created_at >= ? AND created_at < ?""",
            [model_id(m), when, when + dt.timedelta(days=1)],
        ).fetchone() or (0,)
    return int(removed)


# --------------------------------------------------------------------------------------------------
# In-process child: `bench_reconcile.py _child DB SHEET PAGES_DIR`
# --------------------------------------------------------------------------------------------------


def child(db: str, sheet: str, pages: str) -> None:
    t = [time.perf_counter()]
    phases: dict[str, float] = {}

    def lap(name: str) -> None:
        t.append(time.perf_counter())
        phases[name] = round(t[-1] - t[-2], 3)

    from costlens.cli.reconcile import dump_json
    from costlens.reconcile import read_exports
    from costlens.reconcile.compare import compare, drop_tables
    from costlens.reconcile.exports import plan_kinds
    from costlens.reconcile.store import save_reconciliation
    from costlens.reconcile.tolerance import DEFAULT_TOLERANCE
    from costlens.session import Settings, open_session

    lap("imports")
    exports = read_exports(sorted(Path(pages).glob("*.json")))
    lap("read_exports")
    with open_session(Settings(db_path=Path(db), pricing_path=Path(sheet))) as session:
        lap("open_session")
        from costlens.money.filters import Filters
        from costlens.reconcile.job import _input  # the job's own steps, timed apart
        from costlens.reconcile.records import Reconciliation
        from costlens.reconcile.store import selection_json

        comparison = compare(session.conn, exports, plan_kinds(exports), Filters(), DEFAULT_TOLERANCE)
        lap("compare")
        result = Reconciliation(
            reconciliation_id=None,
            created_at=dt.datetime.now(),
            tolerance=DEFAULT_TOLERANCE,
            selection=selection_json(Filters()),
            inputs=tuple(_input(e) for e in exports),
            cell_rows=comparison.cell_rows,
            totals=comparison.totals,
            period=comparison.period,
        )
        save_reconciliation(
            session.conn,
            result,
            cells_table="_recon_out",
            command_line=None,
            pricing_sha256=session.pricing_sha256,
        )
        lap("store")
        drop_tables(session.conn)
        dump_json(result)
        lap("json_text")
    print(json.dumps({"phases": phases, "cells": len(result.cell_rows)}))


# --------------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------------


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 5):  # 5: differences found (three are planted)
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc


def check_findings(payload: dict[str, Any], removed: int) -> dict[str, Any]:
    """The command finds the planted differences, each with its cause, and nothing else."""
    start = dt.date(YEAR, 1, 1)
    found: dict[tuple[int, int], set[str]] = {}
    for cell in payload["cells"]:
        if cell["verdict"] == "ok":
            continue
        day = (dt.date.fromisoformat(cell["day"]) - start).days
        m = int(cell["model"].rsplit("-", 1)[1])
        found.setdefault((m, day), set()).add(cell["cause"])
    expected = {key: {cause} for key, cause in PLANTED.items()}
    if found != expected:
        sys.exit(f"reconcile found {found}, expected {expected}")
    return {
        "cells": len(payload["cells"]),
        "differing": sum(1 for c in payload["cells"] if c["verdict"] != "ok"),
        "removed_requests": removed,
        "not_compared": payload["not_compared"],
        "inputs": len(payload["inputs"]),
        "results": sum(i["results"] for i in payload["inputs"]),
    }


def render_markdown(report: dict[str, Any]) -> str:
    m, f = report["machine"], report["findings"]
    lines = [
        f"Machine: {m['cpu']}, {m['nproc']} CPUs, {m['mem_total_gib']} GiB RAM; {m['os']}; Python {m['python']}, "
        f"duckdb {m['duckdb']}, costlens {m['costlens']}; {m['date']}.",
        "",
        f"DB: {report['lines']:,} replayed requests ({report['db_mib']} MiB), {report['models']} models over {YEAR}; "
        f"{f['inputs']} pages ({f['results']:,} results); {f['cells']:,} cells, {f['differing']} differing "
        f"(the {len(PLANTED)} planted differences, each found with its cause).",
        "",
        "| command (fresh process) | median wall s | runs (s) |",
        "| --- | ---: | --- |",
    ]
    busy = ", ".join(f"{q['busy']:.0%}" for q in report["quiet"])
    used = report["rounds_used"]
    note = (
        f"Medians over rounds {', '.join(map(str, used))} (those that started with other work under "
        f"{report['quiet_limit']:.0%} of the CPUs); CPU used by others at the start of each round: {busy}."
        if len(used) < len(report["quiet"]) or report["all_rounds_quiet"]
        else f"No round started quiet (CPU used by others at the start of each: {busy}): medians over all."
    )
    for key, label in (
        ("json", "`costlens reconcile PAGES... --json` (every cell)"),
        ("text", "`costlens reconcile PAGES... --only-differences` (plain table)"),
    ):
        r = report["runs"][key]
        lines.append(f"| {label} | {r['median_s']:.2f} | {', '.join(f'{x:.2f}' for x in r['runs_s'])} |")
    lines += ["", note, "", "In-process steps (median s):", "", "| step | s |", "| --- | ---: |"]
    for name, value in report["in_process_median_s"].items():
        lines.append(f"| {name} | {value:.3f} |")
    target = report["target"]
    lines += [
        "",
        f"Target: under {TARGET_S:g} s — {'met' if target['pass'] else 'NOT met'} ({target['value']:.2f} s, "
        "the `--json` median).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "_child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="requests in the benchmark DB")
    ap.add_argument(
        "--models", type=int, default=50, help="models (at least 12: the planted cells use 3, 7, 11)"
    )
    ap.add_argument("--seed", type=int, default=7, help="generator seed")
    ap.add_argument("--repeats", type=int, default=5, help="rounds (medians)")
    ap.add_argument(
        "--quiet", type=float, default=0.15, help="start a round once other work uses less CPU than this"
    )
    ap.add_argument("--quiet-wait", type=float, default=120, help="... waiting at most this many seconds")
    ap.add_argument("--out", type=Path, default=OUT_DIR / "reconcile.json", help="JSON results path")
    args = ap.parse_args()
    t_start = time.perf_counter()
    db, sheet, build = ensure_db(args.lines, args.models, args.seed)
    work = OUT_DIR / "reconcile_tmp"
    work.mkdir(parents=True, exist_ok=True)
    scratch = work / "db.duckdb"
    pages_dir = work / "pages"
    figures = provider_figures(db, sheet)
    pages = write_pages(figures, args.models, pages_dir)
    removed = prepare_scratch(db, scratch)
    # --tolerance 0: the pages are costlens's own figures to the digit, so every planted difference,
    # however small at a reduced --lines, is beyond it.
    base = [
        costlens_bin(),
        "--db",
        str(scratch),
        "--pricing",
        str(sheet),
        "reconcile",
        *map(str, pages),
        "--tolerance",
        "0",
    ]
    _, first = timed([*base, "--json"])  # untimed: checks the findings, warms the page cache
    findings = check_findings(json.loads(first.stdout), removed)
    runs: dict[str, list[float]] = {"json": [], "text": []}
    phases: dict[str, list[float]] = {}
    quiet: list[dict[str, float]] = []
    for i in range(args.repeats):
        quiet.append(wait_quiet(args.quiet, args.quiet_wait))
        order = ("json", "text") if i % 2 == 0 else ("text", "json")
        for key in order:
            wall, _ = timed([*base, "--json"] if key == "json" else [*base, "--only-differences"])
            runs[key].append(wall)
        proc = subprocess.run(
            [sys.executable, __file__, "_child", str(scratch), str(sheet), str(pages_dir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        for name, value in json.loads(proc.stdout)["phases"].items():
            phases.setdefault(name, []).append(value)
        print(
            f"round {i + 1}/{args.repeats}: json {runs['json'][-1]:.2f} s, text {runs['text'][-1]:.2f} s",
            file=sys.stderr,
        )
    # Medians over the rounds that started with the machine quiet (others' work under --quiet);
    # when none did, over all of them, and the report says so.
    used = [i for i, q in enumerate(quiet) if q["busy"] < args.quiet] or list(range(args.repeats))
    median = statistics.median(runs["json"][i] for i in used)
    report = {
        "lines": args.lines,
        "models": args.models,
        "seed": args.seed,
        "repeats": args.repeats,
        "db_mib": round(db.stat().st_size / 2**20, 1),
        "build": build,
        "findings": findings,
        "runs": {
            k: {
                "median_s": round(statistics.median(v[i] for i in used), 3),
                "runs_s": [round(x, 3) for x in v],
            }
            for k, v in runs.items()
        },
        "rounds_used": [i + 1 for i in used],
        "all_rounds_quiet": len(used) == args.repeats and all(q["busy"] < args.quiet for q in quiet),
        "in_process_median_s": {
            k: round(statistics.median(v[i] for i in used), 3) for k, v in phases.items()
        },
        "target": {"limit_s": TARGET_S, "value": median, "pass": median < TARGET_S},
        "quiet": quiet,
        "quiet_limit": args.quiet,
        "machine": machine_info(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "total_s": round(time.perf_counter() - t_start, 1),
    }
    md = render_markdown(report)
    args.out.write_text(json.dumps({**report, "markdown": md}, indent=2) + "\n", encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
