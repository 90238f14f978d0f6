"""The fastest OpenAI-compatible server we can put behind uvicorn, for client benchmarks.

``POST /v1/chat/completions`` (any body) answers one fixed small ``chat.completion`` with usage;
``GET /health`` answers 200. It does no work per request, so a benchmark against it measures the
client, not the server. Run it with::

    .venv/bin/python bench/asgi_min.py --port 18282
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1711475054,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "2 + 2 equals 4."},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 24,
            "completion_tokens": 8,
            "total_tokens": 32,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": "bench",
    },
    separators=(",", ":"),
).encode()
OK_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(COMPLETION)).encode())]
HEALTH = b'{"status":"ok"}'
HEALTH_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(HEALTH)).encode())]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the request body
        more = (await receive()).get("more_body", False)
    if scope["path"].endswith("/chat/completions"):
        status, headers, body = 200, OK_HEADERS, COMPLETION
    elif scope["path"] == "/health":
        status, headers, body = 200, HEALTH_HEADERS, HEALTH
    else:
        status, headers, body = 404, HEALTH_HEADERS, HEALTH
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18282)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
