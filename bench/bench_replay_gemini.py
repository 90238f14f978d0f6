"""Replay benchmark, Gemini batch mode: `costlens replay` of a Gemini API batch output file.

The same harness as ``bench_replay.py`` (fresh subprocess per run, fresh DuckDB file, medians,
peak RSS), on 1,000,000 Gemini batch-mode lines generated here (``line``, seeded, like
``gen_batch_output.py``): ``{"key", "response": GenerateContentResponse}`` lines as in shared
FORMATS.md section 7, with ``usageMetadata`` (some with cached content, most 2.5 answers with
thoughts; proto3 JSON leaves zero counts out) and ~1% ``error`` lines; text lengths follow
gen_batch_output.py's.

(a) **DuckDB floor** - a bare ``CREATE TABLE t AS SELECT * FROM read_json(...)`` of the same file.
(c) **costlens** - ``costlens --db <tmp>/c.duckdb replay <file>``. Target: at most 2x (a), as for
    OpenAI lines, and under 1.5 GiB peak RSS.

(a) and (c) take turns round by round, so the machine's drift hits both alike. The input is
cached in ``bench/out/`` by line count and seed.

Usage::

    .venv/bin/python bench/bench_replay_gemini.py [--lines N] [--repeats R] [--out bench/out/replay_gemini.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import bench_replay as harness

MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"]
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "seven", "cats"]


def line(i: int, rng: random.Random) -> str:
    if rng.random() < 0.01:
        return json.dumps(
            {
                "key": f"request-{i}",
                "error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                          "status": "RESOURCE_EXHAUSTED"},
            }
        )  # fmt: skip
    model = rng.choice(MODELS)
    prompt = rng.randint(10, 4000)
    cached = rng.choice([0, 0, 0, prompt // 2])
    candidates = rng.randint(1, 800)
    thoughts = rng.choice([0, rng.randint(50, 1500)]) if model != "gemini-2.0-flash" else 0
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
    usage: dict[str, object] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    # proto3 JSON leaves zero counts out.
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    response = {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": "STOP",
                "avgLogprobs": -0.31,
            }
        ],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": f"resp-{i:08x}",
    }
    return json.dumps({"key": f"request-{i}", "response": response})


LABELS = {"a": "(a) DuckDB read_json CTAS (floor)", "c": "(c) costlens replay"}


def ensure_input(lines: int, seed: int) -> Path:
    harness.OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = harness.OUT_DIR / f"gemini_batch_output_{lines}_seed{seed}.jsonl"
    if path.exists():
        print(f"using cached input {path.relative_to(harness.ROOT)}", file=sys.stderr)
        return path
    print(f"generating {lines:,} Gemini lines -> {path.relative_to(harness.ROOT)} ...", file=sys.stderr)
    tmp = path.with_suffix(".jsonl.partial")
    t0 = time.perf_counter()
    rng = random.Random(seed)
    with tmp.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            fh.write(line(i, rng) + "\n")
    tmp.replace(path)  # atomic: an interrupted generation never leaves a truncated cache entry
    print(f"generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(
        description="Benchmark `costlens replay` of Gemini batch output against DuckDB."
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=5, help="runs of (a) and (c); medians are reported")
    ap.add_argument("--out", type=Path, default=harness.OUT_DIR / "replay_gemini.json")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()

    path = ensure_input(args.lines, args.seed)
    harness.warm_page_cache(path)
    runs: dict[str, list[dict[str, Any]]] = {"a": [], "c": []}
    for i in range(args.repeats):
        for m in "ac":
            print(f"run {i + 1}/{args.repeats}: {LABELS[m]}", file=sys.stderr)
            runs[m].append(harness.run_method(m, path, args.tmpdir, args.timeout))
    results = {m: harness.summarize(m, runs[m]) for m in "ac"}
    for m in results:
        results[m]["label"] = LABELS[m]
    harness.add_ratios(results)
    checks = [t for t in harness.target_checks(results) if "naive" not in t["target"]]
    report = {
        "machine": harness.machine_info(),
        "input": {
            "path": str(path.relative_to(harness.ROOT)),
            "lines": args.lines,
            "seed": args.seed,
            "mib": round(path.stat().st_size / harness.MIB, 1),
            "format": "gemini_batch",
        },
        "config": {"repeats": args.repeats},
        "results": results,
        "targets": checks,
    }
    md = harness.render_markdown(report).replace(
        "## Replay benchmark", "## Replay benchmark, Gemini batch mode", 1
    )
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**report, "markdown": md}, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
