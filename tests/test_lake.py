"""The lake (costlens publish, --lake readers) on a local directory: the same figures as the DuckDB
file, runs of many databases side by side, atomic and idempotent publishes, and --reprice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from costlens.lake.layout import Manifest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
OPENAI = SAMPLES / "openai_batch_output_gpt-4o-mini.jsonl"
OPENAI_REQUESTS = SAMPLES / "batch_input_gpt-4o-mini.jsonl"
ANTHROPIC = SAMPLES / "anthropic_batch_results_claude-3-5-haiku.jsonl"


@pytest.fixture
def two_runs(invoke):
    assert invoke("replay", OPENAI, "--requests", OPENAI_REQUESTS, "--tag", "job=nightly").exit_code in (0, 1)
    assert invoke("replay", ANTHROPIC, "--model", "claude-3-5-haiku-20241022").exit_code in (0, 1)


def lake_files(lake: Path) -> dict[str, bytes]:
    return {p.relative_to(lake).as_posix(): p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()}


def test_readers_over_the_lake_give_the_figures_of_the_db(invoke, two_runs, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    result = invoke("publish", "--lake", lake, "--json")
    assert result.exit_code == 0, result.stderr
    published = json.loads(result.stdout)["runs"]
    assert [r["action"] for r in published] == ["published", "published"]
    assert sum(r["rows"] for r in published) == 240
    for args in (
        ("summary", "--json"),
        ("summary", "--json", "--tag", "job=nightly"),
        ("summary", "--json", "--model", "claude-3-5-haiku-20241022", "--since", "2026-01-01"),
    ):
        db, over_lake = invoke(*args), invoke(*args, "--lake", lake)
        assert over_lake.exit_code == 0, over_lake.stderr
        assert json.loads(over_lake.stdout) == json.loads(db.stdout)
    monkeypatch.setenv("COSTLENS_REPORT_TIME", "2026-12-02T00:00:00")
    db_report = json.loads(invoke("report", "--format", "json", "--out", "-").stdout)
    lake_report = json.loads(invoke("report", "--format", "json", "--out", "-", "--lake", lake).stdout)
    for key in ("headline", "models", "daily", "runs"):
        if key in db_report:
            assert _without_floats(lake_report[key]) == _without_floats(db_report[key]), key
    invoke("export", "--format", "csv", "--out", tmp_path / "db.csv")
    invoke("export", "--format", "csv", "--out", tmp_path / "lake.csv", "--lake", lake)
    assert (tmp_path / "lake.csv").read_bytes() == (tmp_path / "db.csv").read_bytes()


def _without_floats(value):
    """Float ratios (not money) may differ in the last digit with summation order."""
    if isinstance(value, dict):
        return {k: _without_floats(v) for k, v in value.items() if not isinstance(v, float)}
    if isinstance(value, list):
        return [_without_floats(v) for v in value]
    return value


def test_money_in_the_lake_is_decimal_38_15_and_no_day_or_run_column_repeats_the_path(
    invoke, two_runs, tmp_path
):
    import pyarrow.parquet as pq

    lake = tmp_path / "lake"
    invoke("publish", "--lake", lake)
    (manifest_file,) = sorted((lake / "manifests").glob("*.json"))[:1]
    manifest = Manifest.parse(manifest_file.read_bytes(), "m")
    part = lake / manifest.files_of("requests")[0].path
    schema = pq.read_schema(part)
    assert str(schema.field("cost_usd").type) == "decimal128(38, 15)"
    assert "day" not in schema.names and "run" not in schema.names and "run_uuid" in schema.names
    assert part.parent.name == f"run={manifest.run_uuid}" and part.parent.parent.name.startswith("day=")


def test_publishing_again_changes_nothing(invoke, two_runs, tmp_path):
    lake = tmp_path / "lake"
    invoke("publish", "--lake", lake)
    before = lake_files(lake)
    again = json.loads(invoke("publish", "--lake", lake, "--json").stdout)["runs"]
    assert [r["action"] for r in again] == ["unchanged", "unchanged"]
    assert lake_files(lake) == before


def test_runs_of_many_databases_share_one_lake(invoke, tmp_path):
    lake = tmp_path / "lake"
    totals = []
    for name in ("a", "b"):
        env = {"COSTLENS_DB": str(tmp_path / f"{name}.duckdb")}
        invoke("replay", OPENAI, env=env)
        assert json.loads(invoke("runs", "--json", env=env).stdout)[0]["run_id"] == 1  # both number it 1
        invoke("publish", "--lake", lake, env=env)
        totals.append(json.loads(invoke("summary", "--json", env=env).stdout)["total"])
    over_lake = json.loads(invoke("summary", "--json", "--lake", lake).stdout)["total"]
    assert over_lake["requests"] == totals[0]["requests"] + totals[1]["requests"]
    assert over_lake["cost_usd"] != totals[0]["cost_usd"]
    one = json.loads(invoke("summary", "--json", "--lake", lake, "--run", "2").stdout)["total"]
    assert one["requests"] == totals[0]["requests"]


def test_a_publish_that_dies_before_its_manifest_is_invisible_and_a_re_publish_completes_it(
    invoke, two_runs, tmp_path, monkeypatch
):
    from costlens.lake import location

    lake = tmp_path / "lake"
    real_write = location.LocalLake.write_bytes

    def write_but_not_manifests(self, rel, data):
        if rel.startswith("manifests/"):  # stands for a kill between the data files and the manifest
            raise KeyboardInterrupt
        real_write(self, rel, data)

    monkeypatch.setattr(location.LocalLake, "write_bytes", write_but_not_manifests)
    assert invoke("publish", "--lake", lake).exit_code != 0
    monkeypatch.setattr(location.LocalLake, "write_bytes", real_write)
    assert list(lake.rglob("part-*.parquet")), "the data files were written"
    empty = invoke("summary", "--lake", lake)
    assert empty.exit_code == 2 and "no published runs" in empty.stderr
    assert invoke("publish", "--lake", lake).exit_code == 0
    db = json.loads(invoke("summary", "--json").stdout)
    assert json.loads(invoke("summary", "--json", "--lake", lake).stdout) == db
    manifests = [Manifest.parse(p.read_bytes(), "m") for p in (lake / "manifests").glob("*.json")]
    listed = {f.path for m in manifests for f in m.files}
    on_disk = {p.relative_to(lake).as_posix() for p in lake.rglob("part-*.parquet")}
    assert on_disk == listed, "the dead attempt's files are gone"
    assert not list((lake / "_intents").rglob("*.json"))


def test_reprice_publishes_under_the_table_now_in_force_and_says_so(invoke, two_runs, tmp_path):
    lake = tmp_path / "lake"
    invoke("publish", "--lake", lake)
    before = json.loads(invoke("summary", "--json", "--lake", lake).stdout)
    sheet = tmp_path / "dear.csv"
    text = (Path(__file__).resolve().parent.parent / "data" / "pricing.csv").read_text(encoding="utf-8")
    # Twice the price for every model: a different table, so different figures.
    lines = text.splitlines()
    header = lines[0].split(",")
    money_cols = [i for i, h in enumerate(header) if h.endswith("_per_1m")]
    doubled = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        for i in money_cols:
            if i < len(cells) and cells[i].strip():
                cells[i] = str(2 * float(cells[i]))
        doubled.append(",".join(cells))
    sheet.write_text("\n".join(doubled) + "\n", encoding="utf-8")
    unchanged = json.loads(invoke("--pricing", sheet, "publish", "--lake", lake, "--json").stdout)["runs"]
    assert {r["action"] for r in unchanged} == {"unchanged"}  # no --reprice: the lake keeps its figures
    repriced = json.loads(invoke("--pricing", sheet, "publish", "--lake", lake, "--reprice", "--json").stdout)
    assert {r["action"] for r in repriced["runs"]} == {"repriced"}
    after = json.loads(invoke("summary", "--json", "--lake", lake).stdout)
    assert after["total"]["requests"] == before["total"]["requests"]
    assert after["total"]["cost_usd"] != before["total"]["cost_usd"]
    assert after == json.loads(invoke("--pricing", sheet, "summary", "--json").stdout)
    manifests = [Manifest.parse(p.read_bytes(), "m") for p in (lake / "manifests").glob("*.json")]
    assert all(m.repriced for m in manifests)
    listed = {f.path for m in manifests for f in m.files}
    assert {p.relative_to(lake).as_posix() for p in lake.rglob("part-*.parquet")} == listed


def test_lake_errors_are_one_line(invoke, two_runs, tmp_path):
    for args, text in (
        (("summary", "--lake", tmp_path / "nowhere"), "no published runs"),
        (("summary", "--lake", "ftp://x/y"), "unsupported scheme"),
        (("publish", "--lake", "s3://Bad_Bucket/x"), "not a valid bucket name"),
        (("publish", "--lake", tmp_path / "l", "--run", "9"), "no such run"),
    ):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert result.stderr.count("costlens: error:") == 1 and text in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


# A publish attempt in its own process: it takes a staging directory, writes a half file in it, then
# dies there by SIGKILL ("die") or waits for stdin to close ("live"). argv: lake URI, mode, host name
# it runs as ("-" = this one's: another machine sharing the lake otherwise).
ATTEMPT = """
import os, signal, socket, sys
if sys.argv[3] != "-":
    socket.gethostname = lambda: sys.argv[3]
from costlens.lake.location import open_location
with open_location(sys.argv[1]).staging_dir() as staging:
    (staging / "requests").mkdir()
    (staging / "requests" / "part-0.parquet").write_bytes(b"PAR1 half")
    print(staging, flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()
"""


def _attempt(uri: str, mode: str, host: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ATTEMPT, uri, mode, host], cwd=ROOT, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    staging = Path(proc.stdout.readline().strip())
    if mode == "die":
        proc.wait()
    assert staging.is_dir()
    return proc, staging


@pytest.mark.parametrize("where", ["local", "s3"])
def test_staging_left_by_dead_attempts_is_removed_and_live_attempts_keep_theirs(
    where, invoke, two_runs, tmp_path, monkeypatch
):
    from costlens.lake.location import open_location

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # where an S3 lake stages; children inherit it
    monkeypatch.setattr("tempfile.tempdir", None)
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true"}
    uri = str(tmp_path / "lake") if where == "local" else "s3://no-bucket/lake"
    dead_here = _attempt(uri, "die", "-", env)[1]
    live, live_here = _attempt(uri, "live", "-", env)
    fresh_elsewhere = _attempt(uri, "die", "other-machine", env)[1]
    old_elsewhere = _attempt(uri, "die", "other-machine", env)[1]
    day_ago = old_elsewhere.stat().st_mtime - 25 * 3600
    os.utime(old_elsewhere, (day_ago, day_ago))
    try:
        if where == "local":  # the sweep is part of every publish
            assert invoke("publish", "--lake", uri).exit_code == 0
        else:  # no S3 server here: the same sweep, called as publish calls it
            open_location(uri, env).remove_dead_staging()
        assert not dead_here.exists(), "its process is gone: nobody will finish it"
        assert not old_elsewhere.exists(), "another host's, untouched for 25 hours"
        assert (live_here / "requests" / "part-0.parquet").exists(), "a live attempt is never touched"
        assert fresh_elsewhere.is_dir(), "another host's may be alive: kept until it is a day old"
    finally:
        live.communicate("")
    assert live.returncode == 0 and not live_here.exists(), "the live attempt finished and cleaned up"
    if where == "local":
        db = json.loads(invoke("summary", "--json").stdout)
        assert json.loads(invoke("summary", "--json", "--lake", uri).stdout) == db
