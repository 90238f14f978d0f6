"""Vertex AI batch prediction rows (FORMATS.md §7): line-number ids, processed_time prices the row.

Prices from tests/data/formats/prices.csv: gemini-2.0-flash-001 at batch costs $0.10 / $0.40 per
1M tokens from 2025-08-01 to 2025-09-01 and $1.00 / $4.00 after, so a row priced at its
processed_time (2025-08-14) and one priced at the replay (now) cost tenfold apart.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from helpers import DATA

from costlens.ingest.replay import ReplayOptions, replay_files
from costlens.session import Settings, open_session

VERTEX = DATA / "formats" / "vertex_batch.jsonl"
PRICES = DATA / "formats" / "prices.csv"


@pytest.fixture
def priced(db_path):
    with open_session(Settings(db_path=db_path, pricing_path=PRICES)) as s:
        yield s


def rows(session, sql: str) -> list[dict[str, Any]]:
    cursor = session.conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def test_vertex_success_and_failure(priced):
    (result,) = replay_files(priced.conn, ReplayOptions(files=[VERTEX], store_content=True)).results
    assert (result.lines_read, result.stored, result.rejected, result.failed) == (2, 2, 0, 1)
    assert dict(result.formats) == {"vertex_batch": 2}
    got = rows(
        priced,
        """SELECT c.custom_id, c.source_format, c.status, c.error_type, c.error_message, c.response_id,
                  c.response_model, c.finish_reasons, r.usage_format, c.prompt_tokens, c.completion_tokens,
                  c.total_tokens, c.reasoning_tokens, c.service_tier, c.created_at, c.priced_at, c.cost_usd
           FROM request_costs c JOIN results r USING (run_id, request_id) ORDER BY c.line_no""",
    )
    assert [tuple(r.values()) for r in got] == [
        # custom_id = the line number; processed_time (UTC) dates and prices it, at the August row:
        # 7 x 0.10 + (2 + 5 thoughts) x 0.40 = 3.5 / 1e6 (at the September row it would be 35 / 1e6).
        ("1", "vertex_batch", "ok", None, None, "vx-1", "gemini-2.0-flash-001", ["STOP"], "gemini",
         7, 7, 14, 5, "batch", datetime(2025, 8, 14, 16, 27, 27, 775000), datetime(2025, 8, 14, 16, 27, 27, 775000),
         Decimal("0.0000035")),
        # A failed row: the status text is the message; its +02:00 time is kept in UTC.
        ("2", "vertex_batch", "error", "error",
         'Bad Request: {"error": {"code": 400, "message": "Request contains an invalid argument.", '
         '"status": "INVALID_ARGUMENT"}}', None, None, None, None, None, None, None, None, "batch",
         datetime(2025, 8, 14, 16, 27, 28), datetime(2025, 8, 14, 16, 27, 28), Decimal("0")),
    ]  # fmt: skip
    assert rows(priced, "SELECT completion FROM result_details WHERE completion IS NOT NULL") == [
        {"completion": '["4"]'}
    ]


def vertex(**changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "status": "",
        "processed_time": "2025-08-14T16:27:27Z",
        "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        "response": {"modelVersion": "gemini-2.0-flash-001", "usageMetadata": {"promptTokenCount": 3}},
    }
    line.update(changes)
    return {k: v for k, v in line.items() if v is not None}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (vertex(processed_time="yesterday"), 'processed_time is not an ISO 8601 time ("yesterday")'),
        (vertex(processed_time=1723652847), "processed_time is not an ISO 8601 time (1723652847)"),
        (vertex(status="", response=None), "no response and no error in status"),
        (vertex(response={"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": -4}}),
         "usageMetadata.candidatesTokenCount is negative (-4)"),
    ],
    ids=["time-text", "time-number", "no-response", "negative"],
)  # fmt: skip
def test_each_vertex_reject_names_its_line(jsonl, replay, line, reason):
    path = jsonl("v.jsonl", [vertex(), line, vertex()])
    result = replay(path)
    assert [(r.file, r.line_no, r.reason) for r in result.rejects] == [(str(path), 2, reason)]
    assert (result.lines_read, result.stored, result.rejected) == (3, 2, 1)


def test_a_time_without_offset_is_utc_and_the_line_number_is_the_id(jsonl, replay, query):
    path = jsonl(
        "v.jsonl", ["", vertex(processed_time="2025-08-14 16:27:27.5"), vertex(status="quota exceeded")]
    )
    replay(path)
    assert query(
        "SELECT q.custom_id, r.status, r.error_message, r.created_at FROM requests q "
        "JOIN results r USING (run_id, request_id) ORDER BY q.line_no"
    ) == [
        {"custom_id": "2", "status": "ok", "error_message": None, "created_at": datetime(2025, 8, 14, 16, 27, 27, 500000)},
        # A status that says something is the error, even beside a response.
        {"custom_id": "3", "status": "error", "error_message": "quota exceeded", "created_at": datetime(2025, 8, 14, 16, 27, 27)},
    ]  # fmt: skip


def test_the_echoed_request_is_not_stored(jsonl, replay, query):
    replay(jsonl("v.jsonl", [vertex()]), store_content=True)
    (row,) = query("SELECT raw_usage FROM results")
    assert json.loads(row["raw_usage"]) == {"promptTokenCount": 3}


def test_vertex_rows_are_not_paired_across_runs_by_their_line_numbers(invoke, tmp_path):
    """Their custom_id is a position in a file, not a request: line 1 of one model's output and line 1
    of another's need not be the same request, so the report's model comparison never pairs them."""
    line = json.loads(VERTEX.read_text(encoding="utf-8").splitlines()[0])
    for model in ("gemini-2.0-flash-001", "gemini-2.5-flash"):
        line["response"]["modelVersion"] = model
        path = tmp_path / f"{model}.jsonl"
        path.write_text(json.dumps(line) + "\n", encoding="utf-8")
        assert invoke("--pricing", PRICES, "replay", path).exit_code == 0
    data = json.loads(invoke("--pricing", PRICES, "report", "--format", "json", "--out", "-").stdout)
    assert len(data["models"]) == 2 and data["comparison"] is None
