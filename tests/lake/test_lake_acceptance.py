"""The lake issue's acceptance at small scale (bench/lake_acceptance.py, the same functions): 10 shard
workers x 200 requests run concurrently against one serve-sim, each into its own DB, published
concurrently to one directory lake, equal to one DB into which the unsharded file was run, by
summary, report and Spark; and the same comparisons catch a lake with a shard missing or a shard
published twice under another run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import lake_acceptance as acceptance  # noqa: E402

pytestmark = pytest.mark.lake

SHARDS, PER_SHARD = 10, 200
SUMMARY = "summary --lake vs summary --db (every figure, per model and total)"
PER_DAY = "summary --lake vs summary --db per UTC day (--since DAY --until DAY+1), per model"
REPORT = "report --lake vs report --db (--format json, every section)"
SPARK = "Spark recipe (local mode) vs summary --db, per model per UTC day"
ROWS = "every lake row equals the unsharded DB's row of its custom_id"
MANIFESTS = "lake manifests"
PARTITION = "shards partition the file"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The file, the 10 concurrent shard runs, the unsharded run and the concurrent publish; the
    simulator stays up for the module (a test runs a shard again)."""
    work = acceptance.Workload(tmp_path_factory.mktemp("acceptance"), PER_SHARD, SHARDS, concurrency=8)
    with acceptance.serve_sim(work) as sim:
        figures = list(acceptance.build(work, sim))
        yield work, sim, figures


def unequal(figures) -> list[dict]:
    return [f for f in figures if f.get("equal") is False]


def by_name(figures) -> dict[str, dict]:
    return {f["figure"]: f for f in figures}


def test_ten_concurrent_shards_in_one_lake_equal_one_unsharded_db(built, spark):
    work, _, built_figures = built
    assert not unequal(built_figures), json.dumps(unequal(built_figures), default=str, indent=1)
    runs = by_name(built_figures)["sharded runs (concurrent processes)"]["per_worker"]
    assert len(runs) == SHARDS and all(r["exit"] == 0 for r in runs)
    figures = list(acceptance.compare(work, work.lake, spark=spark))
    assert not unequal(figures), json.dumps(unequal(figures), default=str, indent=1)
    got = by_name(figures)
    accepted = len(acceptance.accepted_ids(SHARDS * PER_SHARD))
    # The figures compared are the workload's, not two empty selections: every accepted request, six
    # models (one unpriced), failures (n=129) and money to the nanodollar (prices per 1M tokens with
    # up to 3 decimals).
    summary = got[SUMMARY]
    assert summary["requests"] == {"lake": accepted, "db": accepted} and summary["models"] == 6
    assert len(summary["cost_usd"]["db"].split(".")[1]) >= 7
    assert got[ROWS]["rows"] == {
        "lake": accepted,
        "lake_distinct_custom_ids": accepted,
        "unsharded": accepted,
    }
    assert got[SPARK]["spark_totals"]["requests"] == accepted
    assert got[SPARK]["groups"]["db"] >= 6
    assert got[PER_DAY]["days"] and got[REPORT]["daily_rows"] >= 6
    unsharded = by_name(built_figures)["unsharded run"]
    assert unsharded["failed"] == sum(acceptance.is_refused_request(i) for i in range(SHARDS * PER_SHARD)) > 0
    assert unsharded["rejected"] == SHARDS * PER_SHARD - accepted > 0


def test_a_lake_missing_one_shard_is_unequal(built, spark, tmp_path):
    work, _, _ = built
    lake = tmp_path / "lake"
    shutil.copytree(work.lake, lake)
    victim = sorted((lake / "manifests").glob("*.json"))[3]
    victim_rows = json.loads(victim.read_text())["rows"]
    victim.unlink()  # the shard's files stay, but no reader sees them
    got = by_name(acceptance.compare(work, lake, spark=spark))
    accepted = len(acceptance.accepted_ids(SHARDS * PER_SHARD))
    assert got[PARTITION]["equal"]  # the shard DBs are still a partition of the file
    for name in (MANIFESTS, ROWS, SUMMARY, PER_DAY, REPORT, SPARK):
        assert got[name]["equal"] is False, name
    assert got[SUMMARY]["requests"] == {"lake": accepted - victim_rows, "db": accepted}
    assert got[ROWS]["only_in_db"] == victim_rows


def test_a_shard_published_twice_under_another_run_is_unequal(built, spark, tmp_path):
    work, sim, _ = built
    lake = tmp_path / "lake"
    shutil.copytree(work.lake, lake)
    # Shard 4 again, as a worker restarted from scratch would: a fresh DB, so a new run UUID.
    again = tmp_path / "shard_4_again.duckdb"
    outcome = json.loads(acceptance.costlens(*acceptance.run_args(work, sim, again, 4)).stdout)
    assert outcome["run"]["ok"] > 0
    published = json.loads(acceptance.costlens("--db", again, "publish", "--lake", lake, "--json").stdout)
    assert [r["action"] for r in published["runs"]] == ["published"]
    got = by_name(acceptance.compare(work, lake, spark=spark))
    accepted = len(acceptance.accepted_ids(SHARDS * PER_SHARD))
    for name in (MANIFESTS, ROWS, SUMMARY, PER_DAY, REPORT, SPARK):
        assert got[name]["equal"] is False, name
    doubled = outcome["run"]["requests"]
    assert got[SUMMARY]["requests"] == {"lake": accepted + doubled, "db": accepted}
    assert got[ROWS]["rows"]["lake"] - got[ROWS]["rows"]["lake_distinct_custom_ids"] == doubled
