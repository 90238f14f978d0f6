"""Mistral and Azure OpenAI batch output replay as openai_batch (FORMATS.md §7): golden figures.

Prices from tests/data/formats/prices.csv, batch rows: mistral-small-latest $0.05 / $0.15,
gpt-4o-2024-05-13 $1.25 / $5.00 per 1M tokens.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from helpers import DATA

from costlens.ingest.replay import ReplayOptions, replay_files
from costlens.session import Settings, open_session

MISTRAL = DATA / "formats" / "mistral_batch.jsonl"
AZURE = DATA / "formats" / "azure_batch.jsonl"
PRICES = DATA / "formats" / "prices.csv"


@pytest.fixture
def priced(db_path):
    with open_session(Settings(db_path=db_path, pricing_path=PRICES)) as s:
        yield s


def replayed(session, path, columns: str, **options: Any) -> list[tuple[Any, ...]]:
    (result,) = replay_files(session.conn, ReplayOptions(files=[path], **options)).results
    assert result.rejects == ()
    return session.conn.execute(f"SELECT {columns} FROM request_costs ORDER BY line_no").fetchall()


def test_mistral_string_error_is_a_failed_request_with_that_message(priced):
    got = replayed(
        priced,
        MISTRAL,
        "custom_id, source_format, status, http_status, error_type, error_message, model, prompt_tokens, "
        "completion_tokens, service_tier, cost_usd",
        model="mistral-small-latest",
    )
    assert got == [
        # 10 x 0.05 + 4 x 0.15 = 1.1 / 1e6.
        ("0", "openai_batch", "ok", 200, None, None, "mistral-small-latest", 10, 4, "batch", Decimal("0.0000011")),
        ("1", "openai_batch", "error", None, "error",
         "Input should be a valid dictionary or object to extract fields from", "mistral-small-latest",
         None, None, "batch", Decimal("0")),
    ]  # fmt: skip


def test_azure_content_filter_lines_and_request_ids(priced):
    got = replayed(
        priced,
        AZURE,
        "custom_id, source_format, status, http_status, error_type, error_message, provider_request_id, "
        "response_model, finish_reasons, prompt_tokens, completion_tokens, cost_usd",
    )
    assert got == [
        # The content-filter annotations are not read; the base model prices it: 24 x 1.25 + 15 x 5 = 105 / 1e6.
        ("task-0", "openai_batch", "ok", 200, None, None, "0d7a7a1e-3c39-4c3b-8d3b-4ad1bd7b38d8",
         "gpt-4o-2024-05-13", ["stop"], 24, 15, Decimal("0.000105")),
        # Filtered output: still a billed answer (30 x 1.25 = 37.5 / 1e6), its finish reason says why.
        ("task-1", "openai_batch", "ok", 200, None, None, "6a3e1b0c-8a52-4f7e-b2a4-0f5b7d4c1e90",
         "gpt-4o-2024-05-13", ["content_filter"], 30, 0, Decimal("0.0000375")),
        # A filtered prompt is an HTTP 400 with the filter's code as its type.
        ("task-2", "openai_batch", "error", 400, "content_filter",
         "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
         "f1c2d3e4-5b6a-4789-9abc-def012345678", None, None, None, None, Decimal("0")),
    ]  # fmt: skip


def test_azure_lines_take_the_fast_path(priced):
    """No top-level id, extra body fields: still plain OpenAI success lines."""
    from costlens.ingest.formats import openai_batch
    from costlens.ingest.jsonl import FileDigest, read_line_chunks
    from costlens.ingest.replay import ChunkStager
    from costlens.store.macros import install_macros

    cursor = priced.conn.cursor()
    install_macros(cursor)
    stager = ChunkStager(cursor, tier="auto", store_content=False, pool_rows=100)
    (chunk,) = read_line_chunks(AZURE, FileDigest())
    ((table, rejected, fast),) = stager.stage(chunk.table)
    assert fast is openai_batch.FAST and rejected == []
    assert table.column("reason").to_pylist() == [None, None, "(left to the full query)"]
