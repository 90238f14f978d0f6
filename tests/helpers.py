"""Plain helpers shared by the tests (JSONL builders and writers, data paths).

Kept out of conftest.py so tests can import them by name: with more than one
conftest.py in the tree (tests/real/ has its own), ``from conftest import`` is
ambiguous.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"

# 2024-03-26 17:44:14 UTC, the `created` of the FORMATS.md example.
CREATED = 1711475054
OPENAI_USAGE = {"prompt_tokens": 24, "completion_tokens": 15, "total_tokens": 39}

Record = dict[str, Any] | str | bytes


def encode(record: Record) -> bytes:
    if isinstance(record, bytes):
        return record
    if isinstance(record, str):
        return record.encode("utf-8")
    return json.dumps(record).encode("utf-8")


def write_jsonl(
    path: Path, records: Iterable[Record], *, newline: str = "\n", trailing_newline: bool = True
) -> Path:
    """One record per line: dicts as JSON, str/bytes verbatim (to write broken lines on purpose)."""
    sep = newline.encode()
    data = sep.join(encode(r) for r in records)
    path.write_bytes(data + sep if trailing_newline else data)
    return path


class Lines:
    """Builders for one output line of each wire format (FORMATS.md §2-3), as dicts to tweak."""

    @staticmethod
    def body(
        *,
        model: str = "gpt-4o-mini",
        usage: dict[str, Any] | None = None,
        created: Any = CREATED,
        content: str = "ok",
        **extra: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": copy.deepcopy(OPENAI_USAGE) if usage is None else usage,
            "system_fingerprint": None,
        }
        body.update(extra)
        return body

    def openai(self, custom_id: Any = "r-1", *, status_code: int = 200, **body: Any) -> dict[str, Any]:
        return {
            "id": "batch_req_wnaDys",
            "custom_id": custom_id,
            "response": {"status_code": status_code, "request_id": "req_c187b3", "body": self.body(**body)},
            "error": None,
        }

    def vllm(self, custom_id: str = "v-1", **body: Any) -> dict[str, Any]:
        line = self.openai(custom_id, **body)
        line["id"] = "vllm-0f8c6e4a1b2d4c3e9f7a5b6c8d9e0f1a"
        return line

    @staticmethod
    def anthropic(
        custom_id: Any = "a-1",
        *,
        usage: dict[str, Any] | None = None,
        model: str = "claude-3-5-haiku-20241022",
        text: str = "ok",
    ) -> dict[str, Any]:
        return {
            "custom_id": custom_id,
            "result": {
                "type": "succeeded",
                "message": {
                    "id": "msg_01",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 11, "output_tokens": 36} if usage is None else usage,
                },
            },
        }

    def chat(self, custom_id: str | None = None, **body: Any) -> dict[str, Any]:
        line = self.body(**body)
        if custom_id is not None:
            line["custom_id"] = custom_id
        return line


def plain_table(text: str, title: str) -> dict[str, list[str]]:
    """The piped (plain) table titled ``title`` in ``text``: each row's first cell -> its other cells.

    The plain layout (costlens/cli/tables.py) is a title line, a header line and one line per row,
    cells two or more spaces apart; the sentences after it have single spaces only.
    """
    lines = text[text.index(title) :].splitlines()[1:]
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = {}
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):
            break
        rows[cells[0]] = cells[1:]
    return rows
