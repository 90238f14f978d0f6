"""Generate the shipped sample data in data/samples/ (deterministic; rerun to refresh).

The same 120 requests from 6 end users, as OpenAI Batch input files for
gpt-4o-mini and gpt-4o, and the recorded results of running them on three seed
models: two OpenAI batch output files (dated snapshot ids, as the API returns
them) and an Anthropic Message Batches results file (claude-3-5-haiku). Same custom_ids in
all three, so the model comparison has pairs. A few requests expire or fail,
some use prompt caching, as real nightly batches do.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "samples"
USERS = ["u-analytics", "u-support", "u-search", "u-billing", "u-sales", "u-ops"]
TOPICS = ["refund policy", "invoice totals", "shipping delays", "password reset", "API limits", "SLA terms"]
DAY0 = 1_795_478_400  # 2026-11-24T00:00:00Z


def main() -> None:
    rng = random.Random(20251126)
    OUT.mkdir(parents=True, exist_ok=True)
    requests = []
    for i in range(1, 121):
        topic = rng.choice(TOPICS)
        body = {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a concise support assistant."},
                {"role": "user", "content": f"Summarise our {topic} for a customer, ticket {i}."},
            ],
            "temperature": rng.choice([0, 0.2, 0.7]),
            "max_tokens": rng.choice([256, 512]),
            "user": rng.choice(USERS),
        }
        if i % 10 == 0:
            body["stop"] = ["\n\n"]
        requests.append(
            {"custom_id": f"ticket-{i:03d}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        )
    for model in ("gpt-4o-mini", "gpt-4o"):
        per_model = [{**r, "body": {**r["body"], "model": model}} for r in requests]  # type: ignore[dict-item]
        write(OUT / f"batch_input_{model}.jsonl", per_model)

    for model, returned, scale in (
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", 1.0),
        ("gpt-4o", "gpt-4o-2024-08-06", 1.15),
    ):
        lines = []
        for i, req in enumerate(requests, start=1):
            cid = req["custom_id"]
            if i in (17, 64) and model == "gpt-4o":
                lines.append(
                    {
                        "id": f"batch_req_{model}_{i}",
                        "custom_id": cid,
                        "response": None,
                        "error": {
                            "code": "batch_expired",
                            "message": "This request could not be executed before the completion window expired.",
                        },
                    }
                )
                continue
            prompt = rng.randint(300, 2400)
            cached = (prompt // 128) * 64 if i % 4 == 0 else 0
            completion = int(rng.randint(60, 400) * scale)
            created = DAY0 + (i % 3) * 86_400 + i * 60
            lines.append(
                {
                    "id": f"batch_req_{model}_{i}",
                    "custom_id": cid,
                    "response": {
                        "status_code": 200,
                        "request_id": f"req_{model}_{i}",
                        "body": {
                            "id": f"chatcmpl-{model}-{i}",
                            "object": "chat.completion",
                            "created": created,
                            "model": returned,
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": f"Summary for {cid}."},
                                    "finish_reason": "length" if completion > 380 else "stop",
                                }
                            ],
                            "usage": {
                                "prompt_tokens": prompt,
                                "completion_tokens": completion,
                                "total_tokens": prompt + completion,
                                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                                "completion_tokens_details": {"reasoning_tokens": 0},
                            },
                            "system_fingerprint": None,
                        },
                    },
                    "error": None,
                }
            )
        rng.shuffle(lines)  # batch output comes back in any order
        write(OUT / f"openai_batch_output_{model}.jsonl", lines)

    results = []
    for i, req in enumerate(requests, start=1):
        cid = req["custom_id"]
        if i == 33:
            results.append({"custom_id": cid, "result": {"type": "expired"}})
            continue
        if i == 90:
            results.append(
                {
                    "custom_id": cid,
                    "result": {
                        "type": "errored",
                        "error": {
                            "type": "error",
                            "error": {"type": "overloaded_error", "message": "Overloaded"},
                        },
                    },
                }
            )
            continue
        read = 1024 if i % 5 == 0 else 0
        write_ = 1024 if i == 5 else 0
        results.append(
            {
                "custom_id": cid,
                "result": {
                    "type": "succeeded",
                    "message": {
                        "id": f"msg_{i:03d}",
                        "type": "message",
                        "role": "assistant",
                        "model": "claude-3-5-haiku-20241022",
                        "content": [{"type": "text", "text": f"Summary for {cid}."}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": rng.randint(300, 2400),
                            "output_tokens": rng.randint(80, 420),
                            "cache_creation_input_tokens": write_,
                            "cache_read_input_tokens": read,
                        },
                    },
                },
            }
        )
    write(OUT / "anthropic_batch_results_claude-3-5-haiku.jsonl", results)


def write(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
