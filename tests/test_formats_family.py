"""The result formats as a family: one module per format behind ``ResultFormat``, one statement.

What holds for every member: a unique name, documented in the README; the staged columns the
loaders expect; batch formats priced as batch; fast paths that fill every column; and a format
built outside the registry stages through the same statement (adding a format = adding a file).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from costlens.ingest import formats as formats_package
from costlens.ingest.formats import FORMATS
from costlens.ingest.formats.base import FIELDS, STAGED_COLUMNS, ResultFormat, merge_shapes
from costlens.ingest.replay import fast_filled_sql, stage_sql
from costlens.store.macros import install_macros

README = Path(__file__).resolve().parent.parent / "README.md"


def stage(lines: list[str], formats=FORMATS, tier: str = "auto") -> list[dict]:
    conn = duckdb.connect()
    install_macros(conn)
    conn.register(
        "cl_chunk", pa.table({"line_no": pa.array(range(1, len(lines) + 1), pa.int64()), "line": lines})
    )
    return (
        conn.sql(stage_sql(store_content=True, formats=formats), params={"tier": tier})
        .to_arrow_table()
        .to_pylist()
    )


def test_every_format_has_a_module_a_unique_name_and_a_readme_row():
    names = [f.name for f in FORMATS]
    assert len(set(names)) == len(names)
    modules = {p.stem for p in Path(formats_package.__file__).parent.glob("*.py")} - {
        "__init__",
        "base",
        "usage",
        "totals",
    }
    assert modules == set(names)
    section = (
        README.read_text(encoding="utf-8").split("## Input formats (`replay`)", 1)[1].split("\n## ", 1)[0]
    )
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    assert documented == set(names)


TYPES = {
    "line_no": "BIGINT", "http_status": "BIGINT", "finish_reasons": "VARCHAR[]", "raw_usage": "JSON",
    "completion": "JSON", "created_at": "TIMESTAMP", "reported_cost_usd": "DECIMAL(38,15)",
    **{c: "BIGINT" for c in STAGED_COLUMNS if c.endswith("_tokens")},
}  # fmt: skip


@pytest.mark.parametrize("store_content", [False, True])
def test_the_statement_stages_the_loaders_columns_and_types(store_content):
    """Every format's SQL for a column gives the column's type (the CASEs are not cast)."""
    conn = duckdb.connect()
    install_macros(conn)
    conn.register("cl_chunk", pa.table({"line_no": pa.array([1], pa.int64()), "line": ["{}"]}))
    described = conn.execute(
        "DESCRIBE " + stage_sql(store_content=store_content), {"tier": "auto"}
    ).fetchall()
    assert [(name, kind) for name, kind, *_ in described] == [
        (c, TYPES.get(c, "VARCHAR")) for c in STAGED_COLUMNS
    ]


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.fast], ids=lambda f: f.name)
def test_each_fast_path_fills_every_staged_column(fmt):
    fast = fmt.fast
    assert fast is not None
    conn = duckdb.connect()
    install_macros(conn)
    conn.register("cl_chunk", pa.table({"line_no": pa.array([1], pa.int64()), "line": ["{}"]}))
    sql = fast.sql.replace("__LINE_SHAPE__", json.dumps(fast.shape)).replace("__COMPLETION__", "")
    varied = [c for c in conn.sql(sql).columns if c != "fast"]
    assert set(varied) | set(fast.constants) | {"service_tier", "completion"} == set(STAGED_COLUMNS)
    assert not set(varied) & set(fast.constants)
    conn.register("cl_stage", conn.sql(sql).to_arrow_table())
    filled = conn.sql(fast_filled_sql(fast, store_content=False), params={"tier": "auto"})
    assert filled.columns == list(STAGED_COLUMNS)


@pytest.mark.parametrize(
    ("line", "fmt"),
    [
        ({"key": "k", "response": {"usageMetadata": {"promptTokenCount": 1}}}, "gemini_batch"),
        ({"status": "", "processed_time": "2025-01-01T00:00:00Z", "response": {}}, "vertex_batch"),
        (
            {"recordId": "r", "modelOutput": {"prompt_token_count": 1, "generation_token_count": 1}},
            "bedrock_batch",
        ),
        ({"custom_id": "c", "result": {"type": "expired"}}, "anthropic_batch"),
        ({"custom_id": "c", "response": None, "error": "x"}, "openai_batch"),
    ],
)
@pytest.mark.parametrize("tier", ["auto", "flex"])
def test_batch_formats_are_priced_as_batch(line, fmt, tier):
    (row,) = stage([json.dumps(line)], tier=tier)
    assert (row["fmt"], row["reason"], row["service_tier"]) == (
        fmt,
        None,
        "batch" if tier == "auto" else "flex",
    )


def test_detection_order_decides_a_line_two_formats_would_read():
    # A Vertex row's response is also what a Gemini line carries; Vertex comes first.
    (row,) = stage([json.dumps({"status": "", "response": {"usageMetadata": {"promptTokenCount": 1}}})])
    assert (row["fmt"], row["custom_id"]) == ("vertex_batch", "1")
    # A chat.completion object wins over the batch shape it might also fit.
    (row,) = stage([json.dumps({"object": "chat.completion", "model": "m", "choices": [], "response": {}})])
    assert row["fmt"] == "chat_completion"


def test_a_format_is_data_a_new_one_stages_through_the_same_statement():
    toy = ResultFormat(
        name="toy_batch",
        expected="a toy line",
        batch=True,
        detect="j.toy_id IS NOT NULL",
        shape={"toy_id": "JSON", "answer": {"usage": "JSON", "model": "VARCHAR"}},
        fields={"id_json": "j.toy_id", "usage_json": "j.answer.usage", "response_model": "j.answer.model"},
        usage_dialect="'openai'",
        ok="j.answer IS NOT NULL",
        error_type="'error'",
        error_message="NULL",
        id_name="toy_id",
    )
    lines = [
        json.dumps(
            {"toy_id": "t1", "answer": {"model": "m", "usage": {"prompt_tokens": 4, "completion_tokens": 2}}}
        ),
        json.dumps({"toy_id": 1.5}),
        json.dumps({"custom_id": "x", "response": None, "error": "e"}),
    ]
    rows = stage(lines, formats=[toy, *FORMATS])
    assert [(r["fmt"], r["custom_id"], r["status"], r["prompt_tokens"], r["total_tokens"], r["reason"]) for r in rows] == [
        ("toy_batch", "t1", "ok", 4, 6, None),
        ("toy_batch", None, "error", None, None, "toy_id must be a string"),
        ("openai_batch", "x", "error", None, None, None),
    ]  # fmt: skip


def test_shapes_merge_and_a_key_typed_two_ways_is_an_error():
    assert merge_shapes(
        {"a": {"b": "JSON"}, "l": [{"x": "JSON"}]}, {"a": {"c": "VARCHAR"}, "l": [{"y": "JSON"}]}
    ) == {
        "a": {"b": "JSON", "c": "VARCHAR"},
        "l": [{"x": "JSON", "y": "JSON"}],
    }
    with pytest.raises(ValueError, match="'b' typed both 'JSON' and 'VARCHAR'"):
        merge_shapes({"a": {"b": "JSON"}}, {"a": {"b": "VARCHAR"}})
    # The registered formats agree with each other.
    merge_shapes(*(f.shape for f in FORMATS), *(f.content_shape for f in FORMATS))


def test_a_format_with_an_unknown_field_is_refused():
    with pytest.raises(ValueError, match="unknown fields"):
        ResultFormat(
            name="x", expected=None, batch=False, detect="false", shape={}, fields={"costs": "NULL"},
            ok="true", error_type="NULL", error_message="NULL",
        )  # fmt: skip
    assert "custom_id" not in FIELDS  # what a format gives is its id's JSON; the statement makes the text
