"""The Spark recipe (spark_recipe.py) on a lake built by hand with DuckDB, in the published layout.

Its totals must equal DuckDB's own aggregation of the manifest-listed files digit for digit (money is
DECIMAL(38,15) on both sides), and a Parquet file that no manifest lists must change nothing.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

RUN_A = "0b7e4a52-1c1e-4c55-9f39-6a9d9d6f2a01"
RUN_B = "5f0c2d7e-8a43-4f0e-b1d2-3c4e5f6a7b02"
PUBLISH_A, PUBLISH_B, PUBLISH_CRASHED = "20261201T101500Z-a1", "20261202T093000Z-b1", "20261202T120000Z-zz"

# One row per request; ``i`` numbers the rows of a file. Money has 15 decimals and up to 23 integer
# digits, so a float anywhere on the way would show. Every 7th request is unpriced (NULL cost), and
# model 'local-llama' is never priced: its group's cost must be NULL, not 0.
REQUESTS_SQL = """
SELECT
    format('{}-{}', $run, i) AS request_id,
    $run AS run_uuid,
    CASE WHEN i % 5 = 4 THEN 'local-llama' WHEN i % 2 = 0 THEN 'gpt-4o-mini' ELSE 'claude-3-5-haiku' END
        AS model,
    CAST(100 + (i * 37) % 1000 + $seed AS BIGINT) AS input_tokens,
    CAST(10 + (i * 11) % 300 AS BIGINT) AS output_tokens,
    CASE WHEN i % 7 = 0 OR i % 5 = 4 THEN NULL
         WHEN i = 3 THEN CAST('98765432109876543210.123456789012345' AS DECIMAL(38,15))
         ELSE CAST(CAST('0.000123456789012345' AS DECIMAL(38,15)) * (i % 97 + $seed) AS DECIMAL(38,15))
    END AS cost_usd,
    NOT (i % 7 = 0 OR i % 5 = 4) AS priced
FROM range($n) AS t(i)
"""


def copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path, **params: Any) -> dict[str, Any]:
    """Write ``sql``'s rows to ``path`` as Parquet; the manifest entry for it (path relative to the lake)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)", params)
    (rows,) = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone() or (0,)
    return {"rows": rows, "bytes": path.stat().st_size}


def build_lake(root: Path) -> tuple[list[Path], Path]:
    """Two published runs (three day partitions) and one crashed publish's orphan → (listed requests, orphan)."""
    con = duckdb.connect()
    (root / "costlens-lake.json").write_text(json.dumps({"format": "costlens-lake", "schema_version": 1}))
    listed: list[Path] = []
    publishes = [
        (RUN_A, PUBLISH_A, [("2026-11-30", 400, 1), ("2026-12-01", 250, 2)]),
        (RUN_B, PUBLISH_B, [("2026-12-01", 300, 3)]),
    ]
    for run, publish, days in publishes:
        files = []
        for day, n, seed in days:
            rel = f"requests/day={day}/run={run}/part-{publish}.parquet"
            entry = copy(con, REQUESTS_SQL, root / rel, run=run, n=n, seed=seed)
            files.append({"table": "requests", "path": rel, **entry})
            listed.append(root / rel)
        for table, sql in [
            ("runs", f"SELECT '{run}' AS run_uuid, 'nightly' AS run_name"),
            ("prices", "SELECT 'gpt-4o-mini' AS model, CAST('0.15' AS DECIMAL(38,15)) AS input_per_mtok"),
        ]:
            rel = f"{table}/run={run}/part-{publish}.parquet"
            files.append({"table": table, "path": rel, **copy(con, sql, root / rel)})
        manifest = {"schema_version": 1, "run_uuid": run, "publish_id": publish, "files": files}
        (root / "manifests").mkdir(exist_ok=True)
        (root / "manifests" / f"run={run}.json").write_text(json.dumps(manifest, indent=2))
    # A publish of run A that crashed after its data file, before its manifest: no manifest lists it.
    orphan = root / f"requests/day=2026-12-01/run={RUN_A}/part-{PUBLISH_CRASHED}.parquet"
    copy(con, REQUESTS_SQL.replace("'local-llama'", "'orphan-model'"), orphan, run=RUN_A, n=50, seed=9)
    con.close()
    return listed, orphan


def duckdb_totals(files: list[Path]) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    rows = con.execute(
        """
        SELECT model, CAST(day AS DATE) AS day, count(*), sum(input_tokens), sum(output_tokens),
               sum(cost_usd) FILTER (WHERE priced)
        FROM read_parquet($files, hive_partitioning = true)
        GROUP BY ALL ORDER BY model, day
        """,
        {"files": [str(f) for f in files]},
    ).fetchall()
    con.close()
    return rows


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Path, list[Path], Path]:
    root = tmp_path / "lake"
    root.mkdir()
    listed, orphan = build_lake(root)
    return root, listed, orphan


def test_spark_totals_equal_duckdb_digit_for_digit(spark: Any, lake: tuple[Path, list[Path], Path]) -> None:
    from spark_recipe import spark_totals

    root, listed, _ = lake
    got = spark_totals(spark, str(root))
    want = duckdb_totals(listed)
    assert [r[:5] for r in got] == [r[:5] for r in want]
    assert [str(r[5]) for r in got] == [str(r[5]) for r in want]  # same digits, same scale
    assert len(got) == 6  # 3 models x 2 days: run B's 2026-12-01 requests add to run A's
    costs = {(model, str(day)): cost for model, day, *_, cost in got}
    assert costs[("local-llama", "2026-12-01")] is None  # never priced: NULL, not 0
    priced = [c for c in costs.values() if c is not None]
    assert all(isinstance(c, Decimal) and c.as_tuple().exponent == -15 for c in priced)
    assert costs[("claude-3-5-haiku", "2026-11-30")] > Decimal("98765432109876543210")  # the 20-digit cost
    assert sum(r[2] for r in got) == 400 + 250 + 300


def test_the_orphan_file_is_ignored(spark: Any, lake: tuple[Path, list[Path], Path]) -> None:
    from spark_recipe import spark_totals

    root, listed, orphan = lake
    assert orphan.exists() and orphan not in listed
    got = spark_totals(spark, str(root))
    assert "orphan-model" not in {r[0] for r in got}
    assert got == [tuple(r) for r in duckdb_totals(listed)]
    # Reading the directory instead of the manifests would have counted it:
    assert duckdb_totals([*listed, orphan]) != duckdb_totals(listed)
    everything = spark.read.parquet(str(root / "requests"))
    assert everything.count() == 400 + 250 + 300 + 50


def test_a_lake_without_requests_files_totals_nothing(spark: Any, tmp_path: Path) -> None:
    from spark_recipe import spark_totals

    (tmp_path / "manifests").mkdir()
    runs = {"table": "runs", "path": f"runs/run={RUN_A}/part-{PUBLISH_A}.parquet", "rows": 1, "bytes": 1}
    manifest = {"schema_version": 1, "run_uuid": RUN_A, "publish_id": PUBLISH_A, "files": [runs]}
    (tmp_path / "manifests" / f"run={RUN_A}.json").write_text(json.dumps(manifest))
    assert spark_totals(spark, str(tmp_path)) == []
