"""The lake issue's acceptance, end to end: K sharded workers published concurrently to one lake read
back exactly as one database into which the whole file was run.

1. One deterministic request file of K x N batch-input lines over five priced models and one unpriced
   one, with varied prompts (a few words to a few thousand), ``max_tokens``, ``n``, ``stop``, streaming
   and end users; a few lines the validator rejects (temperature 3.5) and a few requests the simulator
   refuses (``n`` = 129: a 400, never retried), so rejects, failures and unpriced requests are in the
   figures too.
2. One ``costlens serve-sim`` (its own process, on loopback, error rate 0: see "Why error rate 0").
3. K ``costlens --db shard_I.duckdb run FILE --shard I/K`` processes at once, each with its own DB;
   the simulator's counters are reset (``POST /_sim/reset``); then ``costlens --db unsharded.duckdb
   run FILE`` against the same simulator.
4. K ``costlens --db shard_I.duckdb publish --lake DIR`` processes at once, into one directory lake.
5. Comparisons, each one JSON line with ``"equal"``: the shards partition the file (by custom_id, each
   in exactly the shard its MD5 names), row counts add up, every lake row equals the unsharded DB's
   row of the same custom_id, ``summary --json`` over the lake vs the DB (all days, then per day),
   ``report --format json`` over both (fields that legitimately differ listed in ``REPORT_IGNORED``),
   and the README's Spark recipe (local mode) per model and day against ``summary --db``.

Exit 0 when every comparison is equal, 1 otherwise. ``make lake-acceptance`` runs the full size
(10 x 100,000 sharded plus the unsharded 1,000,000; 30-60 minutes on 2 cores); tests/lake/
test_lake_acceptance.py runs the same functions at 10 x 200.

Why error rate 0: the simulator's answers (text and usage) depend only on the request (seed, model,
messages, choice, ``max_tokens``, ``stop``), but its fault draws depend on the ``x-costlens-request``
key (``RUN_ID:CUSTOM_ID``, RUN_ID being the number in the sender's DB, so 1 for every fresh DB) and on
how many attempts of that key the simulator process has seen: with faults on, a request that exhausts
its retries in one run may succeed in the other. Deterministic failures come from the request itself
(``n`` = 129) instead.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
COSTLENS = [sys.executable, "-m", "costlens"]
SPARK_RECIPE_DIR = ROOT / "tests" / "lake"
REPORT_TIME = "2026-01-01T00:00:00Z"  # COSTLENS_REPORT_TIME: both reports are "generated" at once

# Requested model and its share of the file. Five models data/pricing.csv prices, one it does not.
MODELS: tuple[tuple[str, int], ...] = (
    ("gpt-4o-mini", 30),
    ("gpt-4o", 15),
    ("gpt-4.1", 15),
    ("deepseek-chat", 15),
    ("claude-3-5-haiku-20241022", 15),
    ("acme-unpriced-1", 10),
)
USERS = 80  # more than the report lists (50), so its "others" row is compared too
_VOCABULARY_TEXT = (
    "the of and to in is that it for on with as was at by this be from or are an but not have which all "
    "cost token model price budget request answer batch cache window prompt output input rate limit "
    "report summary estimate retry stream usage total daily monthly margin invoice provider endpoint "
    "latency signal value record table query result number figure careful simple clear exact steady "
    "river mountain harbor garden market library lantern letter bridge station morning evening season "
    "café naïve Größe résumé 日本語 数据 данные 🙂 🚀 x=1; {json: [1, 2]} https://example.com/a?b=c"
)
_VOCABULARY = tuple(_VOCABULARY_TEXT.split())

# Report JSON fields that legitimately differ between K sharded runs and one unsharded run, and why.
# Each is a path into the report JSON (``[]`` = every element of a list); what replaces it in the
# comparison, if anything, is in ``_report_view``.
REPORT_IGNORED: dict[str, str] = {
    "method.db_path": "names the source: the DB file vs the lake URI",
    "headline.runs": "the runs themselves (1 unsharded vs K shard runs: ids, start times, shard tags); "
    "compared instead: the sum of their requests and of their cost",
    "headline.first_at": "when the first request was sent: the two runs ran at different times",
    "headline.last_at": "when the last request was sent: likewise",
    "headline.simulated.runs": "how many simulated runs are included: 1 vs K (its requests are compared)",
    "run_changes": "each run against the previous run of the same name (unnamed runs included): "
    "none for one run, K-1 between the shards",
    "tags": "the shard=I/K tag is on the shard runs only",
    "latency[].p50_ms/p95_ms/p99_ms/ttft_*": "measured wall-clock latency of two different runs "
    "(the request counts of each row are compared)",
    "top_requests[].run_id/request_id/occurred_at": "local ids and send times; ties in cost at the "
    "20th place may pick different requests, so the costs are compared in order and the requests "
    "above the 20th cost as a set",
}


@dataclass(frozen=True)
class Workload:
    """Where one acceptance run keeps its files, and its size."""

    workdir: Path
    per_shard: int
    shards: int
    seed: int = 20261202
    concurrency: int = 16

    @property
    def total(self) -> int:
        return self.per_shard * self.shards

    @property
    def requests_file(self) -> Path:
        return self.workdir / f"requests_{self.total}_{self.seed}.jsonl"

    @property
    def unsharded_db(self) -> Path:
        return self.workdir / "unsharded.duckdb"

    def shard_db(self, index: int) -> Path:
        return self.workdir / f"shard_{index}.duckdb"

    @property
    def shard_dbs(self) -> list[Path]:
        return [self.shard_db(i) for i in range(1, self.shards + 1)]

    @property
    def lake(self) -> Path:
        return self.workdir / "lake"


# --- the request file ------------------------------------------------------------------------------


def is_rejected_line(i: int) -> bool:
    """Line i (0-based) carries temperature 3.5, which the request validator rejects."""
    return i % 997 == 13


def is_refused_request(i: int) -> bool:
    """Request i asks for n = 129, which the simulator answers with a 400 (not retried)."""
    return i % 331 == 7 and not is_rejected_line(i)


def custom_id(i: int) -> str:
    return f"req-{i:08d}"


def accepted_ids(total: int) -> set[str]:
    return {custom_id(i) for i in range(total) if not is_rejected_line(i)}


def write_requests(path: Path, total: int, seed: int) -> dict[str, Any]:
    """Write ``total`` batch-input lines, the same bytes for the same (total, seed)."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    pool = [rng.choice(_VOCABULARY) for _ in range(200_000)]
    names = [m for m, _ in MODELS]
    weights = [w for _, w in MODELS]
    per_model: dict[str, int] = dict.fromkeys(names, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for i in range(total):
            model = rng.choices(names, weights)[0]
            roll = rng.random()
            words = (
                rng.randint(3, 40) if roll < 0.6
                else rng.randint(40, 200) if roll < 0.955
                else rng.randint(200, 600) if roll < 0.995
                else rng.randint(1000, 2000)
            )  # fmt: skip
            start = rng.randrange(len(pool) - words)
            messages: list[dict[str, str]] = []
            if rng.random() < 0.3:
                messages.append(
                    {"role": "system", "content": "You are a " + " ".join(pool[start : start + 6])}
                )
            if rng.random() < 0.1:
                messages += [
                    {"role": "user", "content": " ".join(pool[start + 7 : start + 12])},
                    {"role": "assistant", "content": " ".join(pool[start + 12 : start + 20])},
                ]
            messages.append({"role": "user", "content": " ".join(pool[start : start + words])})
            body: dict[str, Any] = {"model": model, "messages": messages}
            if rng.random() < 0.8:
                body["max_tokens"] = rng.choice((4, 8, 16, 32, 64, 128, 256))
            if is_refused_request(i):
                body["n"] = 129
            elif rng.random() < 0.05:
                body["n"] = rng.choice((2, 3))
            if rng.random() < 0.05:
                body["stop"] = rng.choice((".", ["the", "and"]))
            if rng.random() < 0.1:
                body["stream"] = True
            body["temperature"] = 3.5 if is_rejected_line(i) else round(rng.random(), 2)
            body["user"] = f"user-{rng.randrange(USERS):03d}"
            line = {"custom_id": custom_id(i), "method": "POST", "url": "/v1/chat/completions", "body": body}
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            if not is_rejected_line(i):
                per_model[model] += 1
    tmp.replace(path)
    rejected = sum(1 for i in range(total) if is_rejected_line(i))
    return {
        "figure": "requests file",
        "file": str(path),
        "lines": total,
        "accepted": total - rejected,
        "rejected_lines": rejected,
        "refused_by_sim": sum(1 for i in range(total) if is_refused_request(i)),
        "per_model": per_model,
        "bytes": path.stat().st_size,
        "sha256": _sha256(path),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- processes -------------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """This environment without costlens or OpenAI settings (a stray COSTLENS_PRICING or OPENAI_BASE_URL
    would change the figures), plus a fixed report time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSTLENS_", "OPENAI_"))}
    env["COSTLENS_REPORT_TIME"] = REPORT_TIME
    return env


def costlens(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*COSTLENS, *map(str, args)], capture_output=True, text=True, env=child_env(), cwd=ROOT
    )
    if check and done.returncode != 0:
        raise RuntimeError(
            f"costlens {' '.join(map(str, args))} exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return done


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (2 cores here: above 2 means waiting for a CPU)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    t0: float
    elapsed_s: float | None = None
    peak_rss_mb: int | None = None


def _spawn(name: str, args: Sequence[object], logs: Path) -> _Child:
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / f"{name}.out", logs / f"{name}.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [*COSTLENS, *map(str, args)],
            stdout=o,
            stderr=e,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            cwd=ROOT,
        )
    return _Child(name, proc, out, err, time.monotonic())


def _wait_all(children: Sequence[_Child]) -> None:
    """Reap every child with its own rusage (peak RSS), as each ends."""
    pending = {c.proc.pid: c for c in children}
    while pending:
        for pid, child in list(pending.items()):
            got, status, usage = os.wait4(pid, os.WNOHANG)
            if got == 0:
                continue
            child.proc.returncode = os.waitstatus_to_exitcode(status)
            child.elapsed_s = round(time.monotonic() - child.t0, 1)
            child.peak_rss_mb = round(usage.ru_maxrss / 1024)
            del pending[pid]
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Sim:
    url: str
    pid: int
    seed: int

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def stats(self) -> dict[str, Any]:
        """The simulator's counters, boiled down (the raw ones list every request)."""
        with urllib.request.urlopen(self.url + "/_sim/stats", timeout=600) as r:
            doc = json.loads(r.read())
        attempts = [n for per in doc["attempts"].values() for n in per.values()]
        completed = [n for per in doc["completed"].values() for n in per.values()]
        return {
            "requests": doc["requests"],
            "invalid": doc["invalid"],
            "completions": doc["completions"],
            "usage": doc["usage"],
            "faults": doc["faults"],
            "keys": len(attempts),
            "max_attempts_per_key": max(attempts, default=0),
            "max_completions_per_key": max(completed, default=0),
            "peak_rss_mb": _peak_rss_mb(self.pid),
        }

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/_sim/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=60):
            pass


def _peak_rss_mb(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return None


@contextlib.contextmanager
def serve_sim(work: Workload) -> Iterator[Sim]:
    """``costlens serve-sim`` in its own process on a free loopback port, stopped however this ends."""
    port = free_port()
    log = work.workdir / "logs" / "serve-sim.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    args = ["serve-sim", "--host", "127.0.0.1", "--port", str(port), "--seed", str(work.seed)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*COSTLENS, *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env(), cwd=ROOT,
        )  # fmt: skip
    sim = Sim(f"http://127.0.0.1:{port}", proc.pid, work.seed)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(sim.url + "/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"serve-sim did not start; {log}:\n{log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        yield sim
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _remove_db(db: Path) -> None:
    for old in db.parent.glob(db.name + "*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def run_args(work: Workload, sim: Sim, db: Path, shard: int | None) -> list[object]:
    """One worker's command line: its own DB; --fail-on unsent, since rejects and the simulator's 400s
    are part of the workload (the JSON outcome is checked instead)."""
    args: list[object] = [
        "--db",
        db,
        "--fail-on",
        "unsent",
        "run",
        work.requests_file,
        "--base-url",
        sim.base_url,
    ]
    args += ["--concurrency", work.concurrency, "--no-store-content", "--json"]
    if shard is not None:
        args += ["--shard", f"{shard}/{work.shards}"]
    return args


@functools.cache
def shard_counts(total: int, shards: int) -> dict[int | None, dict[str, int]]:
    """What each shard (and None: the whole file) must plan, fail and reject, from the file's rules and
    costlens's documented shard function; computed once, since it hashes every custom_id."""
    from costlens.send.run import shard_of

    out: dict[int | None, dict[str, int]] = {
        i: {"requests": 0, "failed": 0, "rejected": 0} for i in [None, *range(1, shards + 1)]
    }
    for i in range(total):
        if is_rejected_line(i):
            for key in (None, i % shards + 1):  # a rejected line is reported by shard (line - 1) % N + 1
                out[key]["rejected"] += 1
            continue
        for key in (None, shard_of(custom_id(i), shards)):
            out[key]["requests"] += 1
            out[key]["failed"] += is_refused_request(i)
    return out


def _expected_shard(work: Workload, index: int | None) -> dict[str, int]:
    return dict(shard_counts(work.total, work.shards)[index])


def _outcome(child: _Child, expected: dict[str, int]) -> dict[str, Any]:
    row: dict[str, Any] = {"name": child.name, "exit": child.proc.returncode, "elapsed_s": child.elapsed_s,
                           "peak_rss_mb": child.peak_rss_mb}  # fmt: skip
    try:
        doc = json.loads(child.out.read_text())
        run = doc["run"]
        row |= {"requests": run["requests"], "ok": run["ok"], "failed": run["failed"],
                "not_sent": run["not_sent"], "rejected": doc["requests_file"]["rejected"],
                "spent_usd": run["spent_usd"], "unpriced": run["unpriced"]}  # fmt: skip
    except (OSError, ValueError, KeyError) as e:
        row["error"] = f"{type(e).__name__}: {e}; stderr: {child.err.read_text(errors='replace')[-500:]}"
    row["equal"] = (
        row["exit"] == 0
        and "error" not in row
        and row["requests"] == expected["requests"]
        and row["failed"] == expected["failed"]
        and row["rejected"] == expected["rejected"]
        and row["not_sent"] == 0
        and row["ok"] == expected["requests"] - expected["failed"]
    )
    row["expected"] = expected
    return row


def run_shards(work: Workload, sim: Sim, indices: Sequence[int] | None = None) -> dict[str, Any]:
    """K ``costlens run --shard I/K`` processes at once, each into its own fresh DB."""
    indices = list(indices or range(1, work.shards + 1))
    for i in indices:
        _remove_db(work.shard_db(i))
    load_before = load_average()
    t0 = time.monotonic()
    children = [
        _spawn(f"run-shard-{i}", run_args(work, sim, work.shard_db(i), i), work.workdir / "logs")
        for i in indices
    ]
    _wait_all(children)
    elapsed = time.monotonic() - t0
    rows = [_outcome(c, _expected_shard(work, i)) for c, i in zip(children, indices, strict=True)]
    return {
        "figure": "sharded runs (concurrent processes)",
        "workers": len(indices),
        "elapsed_s": round(elapsed, 1),
        "requests": sum(r.get("requests", 0) for r in rows),
        "requests_per_s": round(sum(r.get("requests", 0) for r in rows) / elapsed),
        "loadavg_before": load_before,
        "loadavg_after": load_average(),
        "per_worker": rows,
        "equal": all(r["equal"] for r in rows),
    }


def run_unsharded(work: Workload, sim: Sim) -> dict[str, Any]:
    _remove_db(work.unsharded_db)
    load_before = load_average()
    child = _spawn("run-unsharded", run_args(work, sim, work.unsharded_db, None), work.workdir / "logs")
    _wait_all([child])
    row = _outcome(child, _expected_shard(work, None))
    return {
        "figure": "unsharded run",
        **row,
        "requests_per_s": round(row.get("requests", 0) / (child.elapsed_s or 1)),
        "loadavg_before": load_before,
        "loadavg_after": load_average(),
    }


def publish_shards(work: Workload, lake: Path, dbs: Sequence[Path]) -> dict[str, Any]:
    """One ``costlens publish --lake DIR`` process per DB, all at once, into the same lake."""
    load_before = load_average()
    t0 = time.monotonic()
    logs = work.workdir / "logs"
    children = [
        _spawn(f"publish-{db.stem}-{n}", ["--db", db, "publish", "--lake", lake, "--json"], logs)
        for n, db in enumerate(dbs)
    ]
    _wait_all(children)
    elapsed = time.monotonic() - t0
    rows = []
    for child in children:
        row: dict[str, Any] = {"name": child.name, "exit": child.proc.returncode, "elapsed_s": child.elapsed_s,
                               "peak_rss_mb": child.peak_rss_mb}  # fmt: skip
        try:
            runs = json.loads(child.out.read_text())["runs"]
            row |= {"runs": len(runs), "actions": sorted({r["action"] for r in runs}),
                    "rows": sum(r["rows"] for r in runs), "bytes": sum(r["bytes"] for r in runs)}  # fmt: skip
        except (OSError, ValueError, KeyError) as e:
            row["error"] = f"{type(e).__name__}: {e}; stderr: {child.err.read_text(errors='replace')[-500:]}"
        row["equal"] = row["exit"] == 0 and row.get("actions") == ["published"] and row.get("runs") == 1
        rows.append(row)
    return {
        "figure": "publish (concurrent processes, one directory lake)",
        "processes": len(children),
        "elapsed_s": round(elapsed, 1),
        "rows": sum(r.get("rows", 0) for r in rows),
        "rows_per_s": round(sum(r.get("rows", 0) for r in rows) / elapsed),
        "loadavg_before": load_before,
        "loadavg_after": load_average(),
        "per_process": rows,
        "equal": all(r["equal"] for r in rows),
    }


def build(work: Workload, sim: Sim) -> Iterator[dict[str, Any]]:
    """Steps 1-4: the file (reused when it is there), the sharded runs, the unsharded run, the publish."""
    work.workdir.mkdir(parents=True, exist_ok=True)
    if work.requests_file.exists():
        yield {"figure": "requests file", "file": str(work.requests_file), "reused": True,
               "bytes": work.requests_file.stat().st_size}  # fmt: skip
    else:
        yield write_requests(work.requests_file, work.total, work.seed)
    sim.reset()
    yield run_shards(work, sim)
    yield {"figure": "serve-sim counters after the sharded runs", **sim.stats()}
    sim.reset()  # so the unsharded run's requests are each key's first attempt again, as they were
    yield run_unsharded(work, sim)
    yield {"figure": "serve-sim counters after the unsharded run", **sim.stats()}
    shutil.rmtree(work.lake, ignore_errors=True)
    yield publish_shards(work, work.lake, work.shard_dbs)


# --- comparisons ------------------------------------------------------------------------------------


def _timed_json(*args: object) -> tuple[Any, float]:
    t0 = time.monotonic()
    done = costlens(*args)
    return json.loads(done.stdout), round(time.monotonic() - t0, 2)


def lake_files(lake: Path, table: str = "requests") -> list[str]:
    """The files the lake's manifests list for ``table`` (what every reader reads)."""
    out = []
    for manifest in sorted((lake / "manifests").glob("*.json")):
        doc = json.loads(manifest.read_text())
        out += [str(lake / f["path"]) for f in doc["files"] if f["table"] == table]
    return sorted(out)


def _sql_list(paths: Sequence[str | Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def check_partition(work: Workload) -> dict[str, Any]:
    """The union of the shards' custom_ids is the file's accepted ones, none in two shards, each in the
    shard its MD5 names; results, rejects and requests add up to the unsharded DB's."""
    from costlens.send.run import shard_of

    expected = accepted_ids(work.total)
    seen: dict[str, int] = {}
    overlap = wrong_shard = 0
    counts = {"requests": 0, "results": 0, "rejects": 0}
    for i, db in enumerate(work.shard_dbs, start=1):
        with duckdb.connect(str(db), read_only=True) as conn:
            for (cid,) in conn.execute("SELECT custom_id FROM requests").fetchall():
                overlap += cid in seen
                seen[cid] = i
                wrong_shard += shard_of(cid, work.shards) != i
            counts["requests"] += conn.execute("SELECT count(*) FROM requests").fetchone()[0]  # type: ignore[index]
            counts["results"] += conn.execute("SELECT count(*) FROM results").fetchone()[0]  # type: ignore[index]
            counts["rejects"] += conn.execute("SELECT count(*) FROM rejects").fetchone()[0]  # type: ignore[index]
    with duckdb.connect(str(work.unsharded_db), read_only=True) as conn:
        unsharded = {
            "requests": conn.execute("SELECT count(*) FROM requests").fetchone()[0],  # type: ignore[index]
            "results": conn.execute("SELECT count(*) FROM results").fetchone()[0],  # type: ignore[index]
            "rejects": conn.execute("SELECT count(*) FROM rejects").fetchone()[0],  # type: ignore[index]
        }
        unsharded_ids = {cid for (cid,) in conn.execute("SELECT custom_id FROM requests").fetchall()}
    union = set(seen)
    rejected = work.total - len(expected)
    return {
        "figure": "shards partition the file",
        "file_ids": len(expected),
        "union_of_shards": len(union),
        "missing_from_shards": len(expected - union),
        "not_in_file": len(union - expected),
        "in_two_shards": overlap,
        "in_the_wrong_shard": wrong_shard,
        "unsharded_ids_equal_file": unsharded_ids == expected,
        "rows": {
            "shards": counts,
            "unsharded": unsharded,
            "file": {"requests": len(expected), "rejects": rejected},
        },
        "equal": union == expected
        and not overlap
        and not wrong_shard
        and unsharded_ids == expected
        and counts == unsharded
        and counts["requests"] == len(expected) == counts["results"]
        and counts["rejects"] == rejected,
    }


_ROW_COLUMNS = (
    "requested_model", "response_model", "priced_model", "status", "http_status", "error_type", "finish_reasons",
    "usage_source", "input_tokens", "output_tokens", "total_tokens", "cached_tokens", "cache_write_tokens",
    "reasoning_tokens", "input_cost_usd", "output_cost_usd", "request_cost_usd", "cost_usd", "priced", "price_note",
    "price_match", "service_tier", "price_tier", "user", "temperature", "max_tokens", "stream", "stop", "n",
)  # fmt: skip


def check_rows(work: Workload, lake: Path) -> dict[str, Any]:
    """Every lake row against the unsharded DB's row of the same custom_id (its `export`), column by column."""
    t0 = time.monotonic()
    exported = work.workdir / "unsharded-export.parquet"
    costlens(
        "--db", work.unsharded_db, "export", "--format", "parquet", "--out", exported, "--include-simulated"
    )
    files = lake_files(lake)
    differs = " OR ".join(f'l."{c}" IS DISTINCT FROM u."{c}"' for c in _ROW_COLUMNS)
    with duckdb.connect(":memory:") as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(
            f"CREATE VIEW l AS SELECT * FROM read_parquet({_sql_list(files)}, hive_partitioning = false)"
        )
        conn.execute(f"CREATE VIEW u AS SELECT * FROM read_parquet({_sql_list([exported])})")
        lake_rows, lake_distinct = conn.execute(
            "SELECT count(*), count(DISTINCT custom_id) FROM l"
        ).fetchone()  # type: ignore[misc]
        (db_rows,) = conn.execute("SELECT count(*) FROM u").fetchone()  # type: ignore[misc]
        # stop is JSON text on both sides (the same text); every other column is compared as typed.
        only_lake, only_db, differing = conn.execute(
            f"""SELECT count(*) FILTER (WHERE u.custom_id IS NULL), count(*) FILTER (WHERE l.custom_id IS NULL),
                       count(*) FILTER (WHERE l.custom_id IS NOT NULL AND u.custom_id IS NOT NULL AND ({differs}))
                FROM l FULL JOIN u ON l.custom_id = u.custom_id"""
        ).fetchone()  # type: ignore[misc]
        example = conn.execute(
            f"""SELECT l.custom_id FROM l JOIN u ON l.custom_id = u.custom_id WHERE {differs}
                ORDER BY l.custom_id LIMIT 3"""
        ).fetchall()
    return {
        "figure": "every lake row equals the unsharded DB's row of its custom_id",
        "columns": len(_ROW_COLUMNS),
        "rows": {"lake": lake_rows, "lake_distinct_custom_ids": lake_distinct, "unsharded": db_rows},
        "only_in_lake": only_lake,
        "only_in_db": only_db,
        "differing": differing,
        "examples": [e[0] for e in example],
        "elapsed_s": round(time.monotonic() - t0, 1),
        "equal": lake_rows == lake_distinct == db_rows and not (only_lake or only_db or differing),
    }


def _summary_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The summary JSON as compared: `simulated_runs.runs` counts runs (K vs 1), so it is left out."""
    doc = copy.deepcopy(doc)
    doc["simulated_runs"].pop("runs", None)
    return doc


def _diff(a: Any, b: Any, path: str = "", limit: int = 10) -> list[dict[str, Any]]:
    """Where two JSON values differ (up to ``limit`` places): path, lake value, DB value."""
    out: list[dict[str, Any]] = []

    def walk(x: Any, y: Any, p: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                walk(x.get(k, "<absent>"), y.get(k, "<absent>"), f"{p}.{k}" if p else k)
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for n, (xi, yi) in enumerate(zip(x, y, strict=True)):
                walk(xi, yi, f"{p}[{n}]")
        elif x != y:
            out.append({"path": p, "lake": x, "db": y})

    walk(a, b, path)
    return out


def compare_summaries(work: Workload, lake: Path) -> Iterator[dict[str, Any]]:
    """summary --json over the lake and over the unsharded DB: all days, then per UTC day."""
    over_lake, t_lake = _timed_json("summary", "--lake", lake, "--include-simulated", "--json")
    over_db, t_db = _timed_json("--db", work.unsharded_db, "summary", "--include-simulated", "--json")
    a, b = _summary_view(over_lake), _summary_view(over_db)
    yield {
        "figure": "summary --lake vs summary --db (every figure, per model and total)",
        "models": len(b["models"]),
        "requests": {"lake": over_lake["total"]["requests"], "db": over_db["total"]["requests"]},
        "cost_usd": {"lake": over_lake["total"]["cost_usd"], "db": over_db["total"]["cost_usd"]},
        "simulated_runs": {"lake": over_lake["simulated_runs"], "db": over_db["simulated_runs"]},
        "ignored": ["simulated_runs.runs: counts runs, K shard runs vs 1"],
        "elapsed_s": {"lake": t_lake, "db": t_db},
        "differences": _diff(a, b),
        "equal": a == b,
    }
    days = sorted(set(lake_days(lake)) | set(db_days(work.unsharded_db)))
    per_day: list[dict[str, Any]] = []
    for day in days:
        window = ["--since", day.isoformat(), "--until", (day + timedelta(days=1)).isoformat()]
        x, _ = _timed_json("summary", "--lake", lake, "--include-simulated", *window, "--json")
        y, _ = _timed_json("--db", work.unsharded_db, "summary", "--include-simulated", *window, "--json")
        per_day.append({"day": day.isoformat(), "requests": {"lake": x["total"]["requests"],
                        "db": y["total"]["requests"]}, "differences": _diff(_summary_view(x), _summary_view(y)),
                        "equal": _summary_view(x) == _summary_view(y)})  # fmt: skip
    figure: dict[str, Any] = {
        "figure": "summary --lake vs summary --db per UTC day (--since DAY --until DAY+1), per model",
        "days": per_day,
        "equal": bool(per_day) and all(d["equal"] for d in per_day),
    }
    if len(days) > 1:
        figure["note"] = (
            "the rows span more than one UTC day: a run that crossed midnight splits its days differently "
            "from the other run, so a per-day difference may be legitimate (the all-days figure is not)"
        )
    yield figure


def lake_days(lake: Path) -> list[date]:
    return sorted({date.fromisoformat(p.split("/day=", 1)[1][:10]) for p in lake_files(lake)})


def db_days(db: Path) -> list[date]:
    """UTC days the DB's requests occurred on (as the cost view dates them: started_at, else priced_at)."""
    with duckdb.connect(str(db), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        rows = conn.execute(
            """SELECT DISTINCT CAST(coalesce(d.started_at, r.priced_at) AS DATE) FROM results r
               LEFT JOIN result_details d USING (run_id, request_id)"""
        ).fetchall()
    return sorted(r[0] for r in rows)


def _report_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The report JSON with REPORT_IGNORED taken out, and what stands for each put in."""
    doc = copy.deepcopy(doc)
    doc["method"].pop("db_path", None)
    head = doc["headline"]
    runs = head.pop("runs")
    head["runs_requests"] = sum(r["requests"] for r in runs)
    costs = [Decimal(r["cost_usd"]) for r in runs if r["cost_usd"] is not None]
    # Compared as a number: a sum of decimal strings may carry a trailing zero ("80.825381910").
    head["runs_cost_usd"] = sum(costs) if costs else None
    head.pop("first_at", None)
    head.pop("last_at", None)
    head["simulated"].pop("runs", None)
    doc.pop("run_changes", None)
    doc.pop("tags", None)
    doc["latency"] = [{k: v for k, v in row.items() if k in ("model", "requests", "latency_n", "ttft_n")}
                      for row in doc["latency"]]  # fmt: skip
    top = doc.pop("top_requests")
    costs_in_order = [r["cost_usd"] for r in top]
    boundary = min((Decimal(c) for c in costs_in_order), default=None)
    above = sorted(
        json.dumps(
            {k: v for k, v in r.items() if k not in ("run_id", "request_id", "occurred_at")}, sort_keys=True
        )
        for r in top
        if boundary is not None and Decimal(r["cost_usd"]) > boundary
    )
    doc["top_requests"] = {"costs_in_order": costs_in_order, "above_the_last_cost": above}
    return doc


def compare_reports(work: Workload, lake: Path) -> dict[str, Any]:
    over_lake, t_lake = _timed_json(
        "report", "--lake", lake, "--include-simulated", "--format", "json", "--out", "-"
    )
    over_db, t_db = _timed_json(
        "--db", work.unsharded_db, "report", "--include-simulated", "--format", "json", "--out", "-"
    )
    a, b = _report_view(over_lake), _report_view(over_db)
    return {
        "figure": "report --lake vs report --db (--format json, every section)",
        "sections": sorted(b),
        "daily_rows": len(b["daily"]),
        "ignored": REPORT_IGNORED,
        "runs": {"lake": len(over_lake["headline"]["runs"]), "db": len(over_db["headline"]["runs"])},
        "elapsed_s": {"lake": t_lake, "db": t_db},
        "differences": _diff(a, b),
        "equal": a == b,
    }


def start_spark(scratch: Path) -> Any:
    """A local-mode SparkSession as tests/lake/conftest.py makes it (2 cores, no UI, UTC, loopback)."""
    sys.path.insert(0, str(SPARK_RECIPE_DIR))
    from spark_recipe import local_spark

    return local_spark(scratch, "costlens-lake-acceptance", driver_memory="2g")


def compare_spark(work: Workload, lake: Path, spark: Any) -> dict[str, Any]:
    """The README's Spark recipe over the lake against summary --db per model and UTC day."""
    sys.path.insert(0, str(SPARK_RECIPE_DIR))
    from spark_recipe import spark_totals

    t0 = time.monotonic()
    rows = spark_totals(spark, str(lake))
    elapsed = round(time.monotonic() - t0, 1)
    # A group whose requests reported no usage sums to NULL tokens in Spark; summary shows 0.
    over_spark = {(r[0], r[1]): (r[2], r[3] or 0, r[4] or 0, r[5]) for r in rows}
    days = sorted({r[1] for r in rows} | set(db_days(work.unsharded_db)))
    over_db: dict[tuple[str, date], tuple[Any, ...]] = {}
    for day in days:
        doc, _ = _timed_json(
            "--db", work.unsharded_db, "summary", "--include-simulated", "--since", day.isoformat(),
            "--until", (day + timedelta(days=1)).isoformat(), "--json",
        )  # fmt: skip
        for m in doc["models"]:
            cost = None if m["cost_usd"] is None else Decimal(m["cost_usd"])
            over_db[(m["model"], day)] = (m["requests"], m["input_tokens"], m["output_tokens"], cost)
    differing = sorted(k for k in set(over_spark) | set(over_db) if over_spark.get(k) != over_db.get(k))
    total = [sum(v[i] for v in over_spark.values() if v[i] is not None) for i in range(4)]
    return {
        "figure": "Spark recipe (local mode) vs summary --db, per model per UTC day",
        "groups": {"spark": len(over_spark), "db": len(over_db)},
        "spark_totals": {
            "requests": total[0],
            "input_tokens": total[1],
            "output_tokens": total[2],
            "cost_usd": str(total[3]),
        },  # fmt: skip
        "differing_groups": [
            {
                "model": k[0],
                "day": k[1].isoformat(),
                "spark": str(over_spark.get(k)),
                "db": str(over_db.get(k)),
            }
            for k in differing[:10]
        ],
        "elapsed_s": elapsed,
        "equal": bool(over_db) and not differing,
    }


def compare(work: Workload, lake: Path, *, spark: Any | None) -> Iterator[dict[str, Any]]:
    """Step 5; ``spark`` None leaves the Spark figure out (said so, and not equal)."""
    yield check_partition(work)
    manifests = list((lake / "manifests").glob("*.json"))
    manifest_rows = sum(json.loads(m.read_text())["rows"] for m in manifests)
    expected = len(accepted_ids(work.total))
    yield {"figure": "lake manifests", "manifests": len(manifests), "rows": manifest_rows,
           "expected": {"manifests": work.shards, "rows": expected},
           "equal": len(manifests) == work.shards and manifest_rows == expected}  # fmt: skip
    yield check_rows(work, lake)
    yield from compare_summaries(work, lake)
    yield compare_reports(work, lake)
    if spark is None:
        yield {"figure": "Spark recipe", "skipped": "no Spark session (--no-spark)", "equal": False}
    else:
        yield compare_spark(work, lake, spark)


# --- main ------------------------------------------------------------------------------------------


def _emit(figure: dict[str, Any], figures: list[dict[str, Any]]) -> None:
    figures.append(figure)
    print(json.dumps(figure, default=str), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-shard", type=int, default=100_000, help="requests per shard (default 100000)")
    parser.add_argument("--shards", type=int, default=10, help="shards = concurrent workers (default 10)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "lake_acceptance")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight per worker")
    parser.add_argument("--compare-only", action="store_true", help="compare what --workdir holds")
    parser.add_argument("--no-spark", action="store_true", help="leave the Spark figure out (exit 1)")
    args = parser.parse_args(argv)
    work = Workload(args.workdir.resolve(), args.per_shard, args.shards, args.seed, args.concurrency)
    figures: list[dict[str, Any]] = []
    started = time.monotonic()
    _emit({"figure": "start", "per_shard": work.per_shard, "shards": work.shards, "total": work.total,
           "workdir": str(work.workdir), "uptime": _uptime(), "free_disk_gb": _free_gb(work.workdir)}, figures)  # fmt: skip
    if not args.compare_only:
        with serve_sim(work) as sim:
            _emit(
                {"figure": "serve-sim", "url": sim.url, "pid": sim.pid, "seed": sim.seed, "error_rate": 0},
                figures,
            )
            for figure in build(work, sim):
                _emit(figure, figures)
    spark = None
    if not args.no_spark:
        scratch = work.workdir / "spark"
        shutil.rmtree(scratch, ignore_errors=True)
        spark = start_spark(scratch)
    try:
        for figure in compare(work, work.lake, spark=spark):
            _emit(figure, figures)
    finally:
        if spark is not None:
            spark.stop()
    unequal = [f["figure"] for f in figures if f.get("equal") is False]
    _emit({"figure": "acceptance", "equal": not unequal, "unequal": unequal,
           "elapsed_s": round(time.monotonic() - started, 1), "uptime": _uptime()}, figures)  # fmt: skip
    return 0 if not unequal else 1


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _free_gb(path: Path) -> float:
    path.mkdir(parents=True, exist_ok=True)
    return round(shutil.disk_usage(path).free / 2**30, 1)


if __name__ == "__main__":
    sys.exit(main())
