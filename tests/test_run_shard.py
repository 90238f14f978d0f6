"""`run --shard I/N` (issue 14, point 4): a deterministic split of one request file over N workers by
custom_id hash, each with its own DB; the union of the shards is the file, each request in exactly one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import duckdb
import pytest
from test_run import cli_provider, line  # noqa: F401 (cli_provider: a fixture)

from costlens.send.run import shard_of


def reference_shard(custom_id: str, count: int) -> int:
    """The documented rule, computed independently: MD5 as a little-endian 128-bit integer, mod N, + 1."""
    return int.from_bytes(hashlib.md5(custom_id.encode()).digest(), "little") % count + 1


def test_the_shard_rule_is_md5_little_endian_mod_n():
    for cid in ("r1", "a", "", "ünïcode-✓", "x" * 300):
        for n in (1, 2, 7, 10):
            assert shard_of(cid, n) == reference_shard(cid, n)
    # And DuckDB's md5_number agrees (the rule is applied in SQL).
    with duckdb.connect() as conn:
        (value,) = conn.execute("SELECT md5_number('ünïcode-✓') % 10 + 1").fetchall()[0]
    assert value == reference_shard("ünïcode-✓", 10)


def test_the_union_of_the_shards_is_the_file(invoke, cli_provider, jsonl, tmp_path):  # noqa: F811
    records: list[dict[str, Any] | str] = [line(f"req-{i}") for i in range(200)]
    records[17] = "{not json"
    records[120] = {"custom_id": "bad", "body": {"messages": "no"}}
    path = jsonl("reqs.jsonl", records)
    seen: dict[str, int] = {}
    rejected: list[int] = []
    for i in range(1, 5):
        db = tmp_path / f"shard{i}.duckdb"
        result = invoke("--db", db, "run", path, "--shard", f"{i}/4", "--run-name", "nightly", "--json")
        assert result.exit_code in (0, 1), result.stderr
        outcome = json.loads(result.stdout)
        rf = outcome["requests_file"]
        assert rf["lines_read"] == rf["accepted"] + rf["rejected"]
        rejected += [r["line"] for r in rf["rejects"]]
        with duckdb.connect(str(db), read_only=True) as conn:
            ids = [cid for (cid,) in conn.execute("SELECT custom_id FROM requests").fetchall()]
            (tags,) = conn.execute("SELECT CAST(tags AS VARCHAR) FROM runs").fetchall()[0]
        assert json.loads(tags) == {"shard": f"{i}/4"}
        for cid in ids:
            assert cid not in seen, f"{cid} in shards {seen[cid]} and {i}"
            assert reference_shard(cid, 4) == i
            seen[cid] = i
    assert sorted(seen) == sorted(f"req-{i}" for i in range(200) if i not in (17, 120))
    assert sorted(rejected) == [18, 121]  # each rejected line reported by one shard only
    assert len(set(seen.values())) == 4  # 198 ids do spread over all four


def test_a_shard_resumes_with_or_without_its_shard_option(invoke, cli_provider, jsonl, user_error):  # noqa: F811
    failing = {"req-3", "req-8", "req-9"}
    cli_provider.script = lambda body, cid, attempt: (
        __import__("httpx").Response(500, json={"error": {"message": "boom", "type": "server_error"}})
        if cid in failing and attempt < 3
        else None
    )
    path = jsonl("reqs.jsonl", [line(f"req-{i}") for i in range(40)])
    first = json.loads(invoke("run", path, "--shard", "2/3", "--max-retries", "0", "--json").stdout)
    mine = {f"req-{i}" for i in range(40) if reference_shard(f"req-{i}", 3) == 2}
    assert first["run"]["requests"] == len(mine)
    again = invoke("run", path, "--resume", "1", "--json")
    assert again.exit_code in (0, 1), again.stderr
    third = json.loads(invoke("run", path, "--resume", "1", "--shard", "2/3", "--json").stdout)
    assert third["run"]["requests"] == len(mine) and third["run"]["ok"] == len(mine)
    user_error(invoke("run", path, "--resume", "1", "--shard", "1/3"), 2, "run 1 is shard 2/3, not 1/3")


@pytest.mark.parametrize("value", ["0/3", "4/3", "x", "2", "1/0", "-1/2"])
def test_a_bad_shard_is_a_usage_error(invoke, jsonl, user_error, value):
    path = jsonl("reqs.jsonl", [line("a")])
    user_error(invoke("run", path, "--shard", value), 2, "--shard", "is not I/N")
