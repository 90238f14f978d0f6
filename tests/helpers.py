"""Plain helpers shared by the tests (JSONL builders and writers, data paths, reference token counts).

Kept out of conftest.py so tests can import them by name: with more than one
conftest.py in the tree (tests/real/ has its own), ``from conftest import`` is
ambiguous.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import quicktok
import tiktoken
from hypothesis import settings

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


def plain_records(text: str, title: str) -> list[dict[str, str]]:
    """The piped (plain) table titled ``title`` in ``text`` as one dict per row, header -> cell."""
    lines = text[text.index(title) :].splitlines()[1:]
    header = re.split(r"\s{2,}", lines[0].strip())
    records = []
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):
            break
        records.append(dict(zip(header, cells, strict=True)))
    return records


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds: a wait on a state, never a guessed sleep.

    The timeout is generous on purpose: it only bounds a test that would otherwise hang.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.005)


# --- property tests ------------------------------------------------------------------------------


def examples(ci: int) -> int:
    """A property test's example budget: ``ci`` under the ``ci`` profile, scaled up under ``thorough``.

    A test's own ``max_examples`` would override the profile, so each test states its budget relative
    to the ``ci`` profile's 100 (tests/conftest.py) and ``make test-thorough`` scales every one of them.
    """
    return max(1, ci * settings().max_examples // 100)


# --- reference token counts (tiktoken itself, offline) -----------------------------------------

# tiktoken's download URLs and the sha256 it pins for them (tiktoken_ext/openai_public.py).
TIKTOKEN_FILES = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
QUICKTOK_VOCAB = {"o200k_base": "o200k.vocab", "cl100k_base": "cl100k.vocab"}


def tiktoken_file(encoding: str) -> bytes:
    """quicktok's vocabulary file for ``encoding``, rewritten in tiktoken's ``.tiktoken`` format.

    Read from the file, not through quicktok's API (as costlens does), so the reference shares no code
    with what it checks. quicktok stores: u32 count, then per token u16 length, the token's bytes,
    u32 rank (little-endian).
    """
    data = (Path(quicktok.__file__).parent / "data" / QUICKTOK_VOCAB[encoding]).read_bytes()
    (count,) = struct.unpack_from("<I", data, 0)
    offset, lines = 4, []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, offset)
        token = data[offset + 2 : offset + 2 + length]
        (rank,) = struct.unpack_from("<I", data, offset + 2 + length)
        offset += 2 + length + 4
        lines.append(base64.b64encode(token) + b" " + str(rank).encode())
    assert offset == len(data)
    return b"\n".join(lines) + b"\n"


@functools.cache
def reference_encodings() -> dict[str, tiktoken.Encoding]:
    """tiktoken's own encoders (its patterns, its special tokens), loaded offline.

    ``tiktoken.get_encoding`` finds the vocabularies in a cache dir under the names it would download
    them to; it re-checks each file's sha256 and would try to download on a mismatch (and fail: no
    network here), so loading at all proves the vocabulary is the official one.
    """
    cache = Path(tempfile.mkdtemp(prefix="costlens-tiktoken-"))
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    try:
        for encoding, (url, _) in TIKTOKEN_FILES.items():
            (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(tiktoken_file(encoding))
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
        return {name: tiktoken.get_encoding(name) for name in TIKTOKEN_FILES}
    finally:
        if saved is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved
        shutil.rmtree(cache, ignore_errors=True)


def reference_count(text: str, encoding: str = "o200k_base") -> int:
    """Tokens in ``text`` by tiktoken (special-token text counted as text, as the API does)."""
    return len(reference_encodings()[encoding].encode_ordinary(text))


def reference_prompt_tokens(messages: Sequence[Mapping[str, Any]], encoding: str = "o200k_base") -> int:
    """The OpenAI cookbook's ``num_tokens_from_messages``, transcribed, run on tiktoken.

    3 tokens per message, the tokens of each value, 1 more per ``name``, 3 priming the reply. Plain
    string values only, as in the cookbook (a ``None`` content counts nothing).
    """
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            if value is None:
                continue
            assert isinstance(value, str), f"the cookbook recipe counts strings, not {value!r}"
            total += reference_count(value, encoding)
            total += 1 if key == "name" else 0
    return total


# --- a gated simulator, for kill -9 tests -----------------------------------------------------------


class SimGate:
    """Holds new chat requests at the simulator's door, so a kill can land between requests.

    ``closed``: new requests wait at the door (``waiting`` counts them); ``turn_away``: they get an
    empty 503 instead of reaching the simulator (a killed client's requests); ``inside`` counts the
    requests the simulator is answering.
    """

    def __init__(self) -> None:
        self.closed = False
        self.turn_away = False
        self.waiting = 0
        self.inside = 0

    def app(self, base: type[Any]) -> type[Any]:
        """A subclass of the simulator's ASGI app (``costlens.send.sim.SimApp``) behind this gate."""
        import asyncio

        gate = self

        class GatedSim(base):  # type: ignore[misc,valid-type]
            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] == "http" and scope["path"].endswith("/chat/completions"):
                    gate.waiting += 1
                    while gate.closed and not gate.turn_away:
                        await asyncio.sleep(0.002)
                    turned_away = gate.turn_away  # read before leaving the count: tests wait on it
                    gate.waiting -= 1
                    if turned_away:  # its client was killed: never reaches the simulator
                        await send({"type": "http.response.start", "status": 503, "headers": []})
                        await send({"type": "http.response.body", "body": b""})
                        return
                    gate.inside += 1
                    try:
                        await super().__call__(scope, receive, send)
                    finally:
                        gate.inside -= 1
                    return
                await super().__call__(scope, receive, send)

        return GatedSim
