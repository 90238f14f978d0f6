"""The lake for real: runs of several databases published to a directory and to S3 on loopback
(moto), read back by `summary --lake` and by PySpark (the README recipe), equal digit for digit;
kill -9 during publish; the AWS secret nowhere; bad endpoints and credentials as one error line."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from spark_recipe import spark_totals

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
COSTLENS = [sys.executable, "-m", "costlens"]


def generated(tmp: Path, lines: int, seed: int, models: str) -> Path:
    out = tmp / f"batch-{seed}.jsonl"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_batch_output.py"), str(out), "--lines", str(lines),
         "--seed", str(seed), "--models", models],
        check=True,
    )  # fmt: skip
    return out


def costlens(
    *args: object, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*COSTLENS, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    if check:
        assert result.returncode in (0, 1), result.stderr
    return result


@pytest.fixture(scope="module")
def three_dbs(tmp_path_factory):
    """Three machines' databases, each with run 1 (and one with a second run), over a few models and days."""
    tmp = tmp_path_factory.mktemp("dbs")
    dbs = []
    machines = ("gpt-4o-mini-2024-07-18,deepseek-chat", "gpt-4o-2024-08-06", "deepseek-chat")
    for n, models in enumerate(machines):
        db = tmp / f"machine-{n}.duckdb"
        costlens("--db", db, "replay", generated(tmp, 3000, 40 + n, models))
        dbs.append(db)
    costlens("--db", dbs[0], "replay", SAMPLES / "anthropic_batch_results_claude-3-5-haiku.jsonl",
             "--model", "claude-3-5-haiku-20241022")  # fmt: skip
    # One database holding everything, for the figures the lake must equal.
    union = tmp / "union.duckdb"
    for n in range(3):
        costlens("--db", union, "replay", tmp / f"batch-{40 + n}.jsonl")
    costlens("--db", union, "replay", SAMPLES / "anthropic_batch_results_claude-3-5-haiku.jsonl",
             "--model", "claude-3-5-haiku-20241022")  # fmt: skip
    return dbs, union


def per_model_day(source: list[str], days: list[date], env=None) -> dict[tuple[str, date], tuple]:
    out = {}
    for day in days:
        doc = json.loads(
            costlens(
                *source,
                "--since",
                day.isoformat(),
                "--until",
                (day + timedelta(days=1)).isoformat(),
                "--json",
                env=env,
            ).stdout  # fmt: skip
        )
        for m in doc["models"]:
            cost = None if m["cost_usd"] is None else Decimal(m["cost_usd"])
            out[(m["model"], day)] = (m["requests"], m["input_tokens"], m["output_tokens"], cost)
    return out


@pytest.fixture
def figure(capsys):
    """``figure(check, cases=N, held=...)``: a RELIABILITY.md row, printed as the reliability tier prints it."""

    def record(check: str, *, cases: int, held: str) -> None:
        with capsys.disabled():
            print(
                "\nRELIABILITY: "
                + json.dumps({"check": check, "cases": cases, "held": held}, ensure_ascii=False)
            )

    return record


def lake_days(spark_rows) -> list[date]:
    return sorted({row[1] for row in spark_rows})


@pytest.mark.lake
def test_a_directory_lake_equals_one_db_and_spark_agrees(three_dbs, tmp_path, spark):
    dbs, union = three_dbs
    lake = tmp_path / "lake"
    for db in dbs:
        assert costlens("--db", db, "publish", "--lake", lake).returncode == 0
    assert json.loads(costlens("summary", "--lake", lake, "--json").stdout) == json.loads(
        costlens("--db", union, "summary", "--json").stdout
    )
    rows = spark_totals(spark, str(lake))
    # A group with no reported usage sums to NULL tokens in Spark; summary shows it as 0 tokens.
    spark_figures = {(r[0], r[1]): (r[2], r[3] or 0, r[4] or 0, r[5]) for r in rows}
    days = lake_days(rows)
    over_lake = per_model_day(["summary", "--lake", str(lake)], days)
    assert spark_figures == over_lake
    assert over_lake == per_model_day(["--db", str(union), "summary"], days)
    assert any(cost is not None and cost.as_tuple().exponent <= -10 for *_, cost in spark_figures.values())


@pytest.mark.lake
def test_an_s3_lake_on_loopback_reads_back_the_same_and_keeps_the_secret(three_dbs, s3_server, tmp_path):
    dbs, union = three_dbs
    bucket = s3_server.make_bucket("costlens-lake-e2e")
    uri = f"{bucket}/nightly"
    env = s3_server.env()
    outputs = []
    for db in dbs:
        result = costlens("--db", db, "publish", "--lake", uri, "--json", env=env)
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
    again = costlens("--db", dbs[0], "publish", "--lake", uri, "--json", env=env)
    assert {r["action"] for r in json.loads(again.stdout)["runs"]} == {"unchanged"}
    over_s3 = costlens("summary", "--lake", uri, "--json", env=env)
    outputs += [over_s3.stdout, over_s3.stderr]
    assert json.loads(over_s3.stdout) == json.loads(costlens("--db", union, "summary", "--json").stdout)
    report = costlens("report", "--lake", uri, "--out", tmp_path / "r.html", env=env)
    outputs.append(report.stderr)
    fs = s3_server.filesystem()
    from pyarrow import fs as pafs

    objects = [i.path for i in fs.get_file_info(pafs.FileSelector("costlens-lake-e2e", recursive=True))
               if i.type == pafs.FileType.File]  # fmt: skip
    assert any(o.endswith(".parquet") for o in objects)
    blobs = [fs.open_input_file(o).read() for o in objects] + [(tmp_path / "r.html").read_bytes()]
    secret = s3_server.secret_key
    assert not any(secret.encode() in blob for blob in blobs)
    assert not any(secret in text for text in outputs)
    for db in dbs:  # the DB files too
        assert secret.encode() not in db.read_bytes()


@pytest.mark.lake
def test_wrong_credentials_or_endpoint_are_one_error_line(three_dbs, s3_server):
    dbs, _ = three_dbs
    bucket = s3_server.make_bucket("costlens-lake-errors")
    cases = (
        ({**s3_server.env(), "AWS_SECRET_ACCESS_KEY": "wrong-SECRET-x"}, "access denied"),
        ({**s3_server.env(), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot connect"),
    )
    for env, text in cases:
        for args in (("--db", dbs[0], "publish", "--lake", bucket), ("summary", "--lake", bucket)):
            result = costlens(*args, env=env, check=False)
            assert result.returncode == 2, result.stderr
            assert result.stderr.count("costlens: error:") == 1 and text in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
            assert "wrong-SECRET-x" not in result.stderr + result.stdout
            assert s3_server.secret_key not in result.stderr + result.stdout
    missing = costlens("summary", "--lake", "s3://no-such-bucket-here", env=s3_server.env(), check=False)
    assert missing.returncode == 2 and missing.stderr.count("costlens: error:") == 1, missing.stderr


def _reader_counts(lake: str, env) -> int | None:
    result = costlens("summary", "--lake", lake, "--json", env=env, check=False)
    if result.returncode == 2 and "no published runs" in result.stderr:
        return None
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["total"]["requests"]


@pytest.mark.lake
@pytest.mark.parametrize("where", ["local", "s3"])
def test_kill_9_during_publish_leaves_none_or_all_and_a_re_publish_completes_it(
    where, three_dbs, s3_server, tmp_path, figure
):
    dbs, _ = three_dbs
    db = dbs[1]  # one run of 3,000 requests
    expected = json.loads(costlens("--db", db, "summary", "--json").stdout)["total"]
    rng = random.Random(20261202 + (where == "s3"))
    seen = {"none": 0, "all": 0}
    trials = 10
    env = s3_server.env() if where == "s3" else {}
    for trial in range(trials):
        lake = (
            str(tmp_path / f"lake-{trial}") if where == "local"
            else f"{s3_server.make_bucket(f'kill-{trial}-{os.getpid()}')}/lake"
        )  # fmt: skip
        proc = subprocess.Popen([*COSTLENS, "--db", str(db), "publish", "--lake", lake], cwd=ROOT,
                                env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        kill_at = time.monotonic() + rng.uniform(0.3, 2.5)  # a seeded moment, unless it finishes first
        while proc.poll() is None and time.monotonic() < kill_at:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        count = _reader_counts(lake, env)
        assert count in (None, expected["requests"]), f"trial {trial}: a reader saw {count} rows"
        seen["none" if count is None else "all"] += 1
        assert costlens("--db", db, "publish", "--lake", lake, env=env).returncode == 0
        after = json.loads(costlens("summary", "--lake", lake, "--json", env=env).stdout)["total"]
        assert after == expected, f"trial {trial}: after re-publish"
    figure(
        check=f"crash: kill -9 during `publish` ({where} lake) at seeded moments, then publish again",
        cases=trials,
        held=f"every reader saw none ({seen['none']} trials) or all ({seen['all']}) of the run; the re-publish "
        f"completed it with {expected['requests']:,} rows, none doubled",
    )
