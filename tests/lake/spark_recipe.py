"""The documented Spark recipe: per-model, per-day totals of a costlens lake, read through its manifests.

A publish writes its Parquet files first and its manifest (``manifests/run=<uuid>.json``) last, so a file
that no manifest lists is a crashed or superseded publish's leftover: the recipe reads exactly the listed
``requests`` files and nothing else. It is plain Spark (the manifests are read by Spark too), so the same
function reads ``s3a://bucket/lake`` on a cluster with hadoop-aws; here it reads a directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

MANIFEST = "files ARRAY<STRUCT<`table`: STRING, path: STRING, rows: BIGINT, bytes: BIGINT>>"


def spark_totals(spark: SparkSession, lake: str) -> list[tuple]:
    """``[(model, day, requests, input_tokens, output_tokens, cost_usd), ...]`` sorted by model and day.

    ``cost_usd`` sums priced requests only and stays ``decimal(38,15)``; it is NULL (never 0) when none
    of a group's requests is priced.
    """
    lake = str(lake).rstrip("/")
    listed = (
        spark.read.schema(MANIFEST)
        .option("multiLine", True)
        .json(f"{lake}/manifests/*.json")
        .select(F.explode("files").alias("file"))
        .where(F.col("file.table") == "requests")
    )
    paths = sorted(f"{lake}/{row.path}" for row in listed.select("file.path").collect())
    if not paths:
        return []
    requests = spark.read.option("basePath", f"{lake}/requests").parquet(*paths)  # day=... → a DATE column
    totals = requests.groupBy("model", "day").agg(
        F.expr("count(*) AS requests"),
        F.expr("sum(input_tokens) AS input_tokens"),
        F.expr("sum(output_tokens) AS output_tokens"),
        F.expr("sum(cost_usd) FILTER (WHERE priced) AS cost_usd"),
    )
    return [tuple(row) for row in totals.orderBy("model", "day").collect()]


def local_spark(scratch: Path, app: str, driver_memory: str | None = None) -> SparkSession:
    """A local-mode SparkSession: two cores, no UI, UTC, loopback only, scratch space in ``scratch``."""
    # The JVM is a child of this process and inherits these.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    builder = (
        SparkSession.builder.master("local[2]")
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
    )
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
