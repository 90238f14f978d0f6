"""Client benchmark: how fast does `costlens run` send chat requests, next to bare clients?

N chat requests (default 20,000) at concurrency C (default 128) against ``bench/asgi_min.py`` — a
uvicorn server that answers a fixed completion and does no work — sent three ways, each in its own
fresh subprocess (imports, startup and teardown counted):

(a) **bare aiohttp** - one ``aiohttp.ClientSession`` and an ``asyncio.Semaphore``, reading each JSON
    answer and logging nothing. The ceiling for Python on this machine; target: costlens >= 0.4x (a).
(b) **official SDK** - ``openai.AsyncOpenAI`` and a semaphore, what a user would write by hand;
    target: costlens >= 5x (b).
(c) **costlens** - ``costlens --db <tmp> run <requests.jsonl> ...`` (the command line is
    ``--costlens-args``); it logs every request and its usage into DuckDB. A missing or failing
    costlens is recorded with its stderr tail, not fatal.

Throughput is N / the child's wall time; client CPU is the child's user+system time from
``os.wait4`` rusage, per request. (a) and (b) also report the same two figures measured inside
their send loop (startup and imports excluded). Each method runs ``--repeats`` times, interleaved,
and the medians are compared. The server runs in its own process for the whole benchmark; on a
2-core machine it competes with the client for CPU, as it would for any of the three.

Usage::

    .venv/bin/python bench/bench_run.py [--requests N] [--concurrency C] [--repeats R]
                                        [--methods abc] [--out bench/out/run.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
SERVER_SCRIPT = BENCH_DIR / "asgi_min.py"
COSTLENS = ROOT / ".venv" / "bin" / "costlens"
DEFAULT_COSTLENS_ARGS = "--db {db} run {requests} --base-url {base_url} --concurrency {concurrency}"
API_KEY = "sk-bench-not-a-real-key"

TARGET_VS_A = 0.4
TARGET_VS_B = 5.0

LABELS = {
    "a": "(a) aiohttp + semaphore (bare)",
    "b": "(b) openai AsyncOpenAI + semaphore",
    "c": "(c) costlens run",
}


# --------------------------------------------------------------------------------------------------
# Child workloads (run as `bench_run.py _child a|b URL REQUESTS CONCURRENCY` in a fresh interpreter)
# --------------------------------------------------------------------------------------------------


def read_bodies(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["body"] for line in f if line.strip()]


async def child_aiohttp(base_url: str, bodies: list[dict[str, Any]], concurrency: int) -> int:
    import aiohttp

    url = base_url + "/chat/completions"
    payloads = [json.dumps(b).encode() for b in bodies]
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    semaphore = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(session: aiohttp.ClientSession, payload: bytes) -> None:
        nonlocal ok
        async with semaphore, session.post(url, data=payload, headers=headers) as response:
            body = await response.read()
            if response.status == 200 and "usage" in json.loads(body):
                ok += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session, p) for p in payloads))
    return ok


async def child_openai(base_url: str, bodies: list[dict[str, Any]], concurrency: int) -> int:
    import openai

    semaphore = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(client: openai.AsyncOpenAI, body: dict[str, Any]) -> None:
        nonlocal ok
        async with semaphore:
            completion = await client.chat.completions.create(**body)
            if completion.usage is not None:
                ok += 1

    async with openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY) as client:
        await asyncio.gather(*(one(client, b) for b in bodies))
    return ok


def run_child(method: str, base_url: str, requests: str, concurrency: int) -> None:
    bodies = read_bodies(requests)
    workload = {"a": child_aiohttp, "b": child_openai}[method]
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    ok = asyncio.run(workload(base_url, bodies, concurrency))
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"ok": ok, "loop_wall_s": t1 - t0, "loop_cpu_s": cpu}))


# --------------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench server exited: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("bench server did not answer /health within 20 s")


def write_requests(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            body = {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": f"What is {i} + 2? Answer briefly."},
                ],
                "max_tokens": 16,
            }
            line = {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
            f.write(json.dumps(line) + "\n")


def spawn(argv: list[str], env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """Run argv to completion; wall time around it and its own rusage (os.wait4)."""
    out_path, err_path = workdir / "child.out", workdir / "child.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=workdir)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "rc": proc.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mib": usage.ru_maxrss / 1024,
        "stdout": out_path.read_text(errors="replace"),
        "stderr": err_path.read_text(errors="replace"),
    }


def run_method(
    method: str, args: argparse.Namespace, base_url: str, requests: Path, tmp: Path
) -> dict[str, Any]:
    n = args.requests
    env = dict(os.environ, OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=base_url)
    workdir = Path(tempfile.mkdtemp(prefix=f"run_{method}_", dir=tmp))
    if method == "c":
        if not COSTLENS.exists():
            return {"ok": False, "error": f"{COSTLENS} not found"}
        fields = {"db": str(workdir / "c.duckdb"), "requests": str(requests), "base_url": base_url}
        fields["concurrency"] = str(args.concurrency)
        argv = [str(COSTLENS), *[a.format(**fields) for a in shlex.split(args.costlens_args)]]
    else:
        argv = [sys.executable, __file__, "_child", method, base_url, str(requests), str(args.concurrency)]
    result = spawn(argv, env, workdir)
    row: dict[str, Any] = {
        "argv": argv,
        "rc": result["rc"],
        "wall_s": result["wall_s"],
        "req_per_s": n / result["wall_s"],
        "cpu_ms_per_req": 1000 * result["cpu_s"] / n,
        "max_rss_mib": result["max_rss_mib"],
    }
    if method == "c":
        # Exit 1 = some requests failed (all recorded): count what the DB holds as succeeded instead.
        row["completed"] = count_ok_results(workdir / "c.duckdb") if result["rc"] in (0, 1) else None
        row["ok"] = row["completed"] == n
    else:
        child = json.loads(result["stdout"].strip().splitlines()[-1]) if result["rc"] == 0 else {}
        row["completed"] = child.get("ok")
        row["ok"] = result["rc"] == 0 and child.get("ok") == n
        if child:
            row["loop_req_per_s"] = n / child["loop_wall_s"]
            row["loop_cpu_ms_per_req"] = 1000 * child["loop_cpu_s"] / n
    if not row["ok"]:
        row["error"] = f"exit {result['rc']}: " + result["stderr"][-1500:]
    return row


def count_ok_results(db: Path) -> int | None:
    """Successful requests stored by `costlens run` (None if the DB cannot be read)."""
    try:
        import duckdb

        with duckdb.connect(str(db), read_only=True) as con:
            row = con.execute("SELECT count(*) FROM results WHERE status = 'ok'").fetchone()
        return int(row[0]) if row else None
    except Exception:  # noqa: BLE001 - a schema we do not know is "unverified", not a crash
        return None


def median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get("ok") and r.get(key) is not None]
    return statistics.median(values) if values else None


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("aiohttp", "openai", "httpx", "uvicorn", "h11", "httptools", "costlens"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "packages": versions,
    }


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def render(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        f"## `costlens run` client benchmark — {cfg['requests']} requests, concurrency {cfg['concurrency']}, "
        f"{cfg['repeats']} repeat(s), medians",
        "",
        "| method | req/s | CPU ms/req | runs (req/s) | in-loop req/s | in-loop CPU ms/req | max RSS MiB |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for method, summary in report["results"].items():
        runs = ", ".join(fmt(r.get("req_per_s"), ".0f") if r.get("ok") else "failed" for r in summary["runs"])
        lines.append(
            f"| {LABELS[method]} | {fmt(summary['req_per_s'], '.0f')} | {fmt(summary['cpu_ms_per_req'], '.3f')} "
            f"| {runs} | {fmt(summary['loop_req_per_s'], '.0f')} | {fmt(summary['loop_cpu_ms_per_req'], '.3f')} "
            f"| {fmt(summary['max_rss_mib'], '.0f')} |"
        )
    lines.append("")
    for name, check in report["targets"].items():
        verdict = "n/a" if check["value"] is None else ("PASS" if check["pass"] else "FAIL")
        lines.append(f"- {name}: {fmt(check['value'], '.3f')}× (target ≥ {check['target']}×) — {verdict}")
    for method, summary in report["results"].items():
        for run in summary["runs"]:
            if not run.get("ok"):
                error = run.get("error", "").strip().splitlines()
                lines.append(f"- {LABELS[method]} failed: {error[-1] if error else 'no output'}")
                break
    m = report["machine"]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['platform']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v),
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        run_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="abc", help="subset of 'abc' to run")
    parser.add_argument(
        "--costlens-args",
        default=DEFAULT_COSTLENS_ARGS,
        help="arguments after `costlens` for (c); placeholders {db} {requests} {base_url} {concurrency}",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR / "run.json")
    args = parser.parse_args()
    methods = [m for m in "abc" if m in args.methods]

    with tempfile.TemporaryDirectory(prefix="costlens_bench_run_") as tmp_name:
        tmp = Path(tmp_name)
        requests = tmp / "requests.jsonl"
        write_requests(requests, args.requests)
        port = free_port()
        server = start_server(port)
        base_url = f"http://127.0.0.1:{port}/v1"
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        try:
            for repeat in range(args.repeats):
                for method in methods:
                    row = run_method(method, args, base_url, requests, tmp)
                    runs[method].append(row)
                    status = f"{row['req_per_s']:.0f} req/s" if row.get("ok") else "FAILED"
                    print(f"[{repeat + 1}/{args.repeats}] {LABELS[method]}: {status}", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(10)

    results = {
        m: {
            "runs": rows,
            "req_per_s": median(rows, "req_per_s"),
            "cpu_ms_per_req": median(rows, "cpu_ms_per_req"),
            "loop_req_per_s": median(rows, "loop_req_per_s"),
            "loop_cpu_ms_per_req": median(rows, "loop_cpu_ms_per_req"),
            "max_rss_mib": median(rows, "max_rss_mib"),
        }
        for m, rows in runs.items()
    }

    def ratio(over: str, target: float) -> dict[str, Any]:
        c = results.get("c", {}).get("req_per_s")
        base = results.get(over, {}).get("req_per_s")
        value = c / base if c is not None and base else None
        return {"value": value, "target": target, "pass": value is not None and value >= target}

    report = {
        "benchmark": "run",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "repeats": args.repeats,
            "methods": "".join(methods),
            "costlens_args": args.costlens_args,
        },
        "machine": machine(),
        "results": results,
        "targets": {
            "(c)/(a) throughput": ratio("a", TARGET_VS_A),
            "(c)/(b) throughput": ratio("b", TARGET_VS_B),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
