"""Generate a synthetic OpenAI Batch API output file for benchmarks.

Deterministic (seeded) so every run of the benchmark reads the same bytes. The
lines look like real batch output (see shared FORMATS.md section 2): mostly
successes with usage (some with cached and reasoning tokens), ~1% errors.

``--models a,b,c`` draws each response's model from that list instead of ``MODELS`` (uniformly;
repeat an id to weight it). Without it the output is byte-for-byte what it always was.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence

MODELS = ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-4.1-2025-04-14", "deepseek-chat"]
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "cats",
    "watch",
    "quietly",
    "from",
    "far",
]


def line(i: int, rng: random.Random, models: Sequence[str] = MODELS) -> str:
    if rng.random() < 0.01:
        return json.dumps(
            {
                "id": f"batch_req_{i:08x}",
                "custom_id": f"request-{i}",
                "response": None,
                "error": {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window expired.",
                },
            }
        )
    prompt = rng.randint(10, 4000)
    cached = rng.choice([0, 0, 0, prompt // 2])
    completion = rng.randint(1, 800)
    reasoning = rng.choice([0, 0, completion // 3])
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
    body = {
        "id": f"chatcmpl-{i:08x}",
        "object": "chat.completion",
        "created": 1730000000 + i,
        "model": rng.choice(models),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "system_fingerprint": "fp_44709d6fcb",
    }
    return json.dumps(
        {
            "id": f"batch_req_{i:08x}",
            "custom_id": f"request-{i}",
            "response": {"status_code": 200, "request_id": f"req_{i:08x}", "body": body},
            "error": None,
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--models",
        default=None,
        help="comma-separated model ids to draw from (default: the four of MODELS); repeat one to weight it",
    )
    args = ap.parse_args()
    models = MODELS if args.models is None else [m.strip() for m in args.models.split(",")]
    if not all(models):
        ap.error("--models: empty model id")
    rng = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8") as fh:
        for i in range(args.lines):
            fh.write(line(i, rng, models))
            fh.write("\n")


if __name__ == "__main__":
    main()
