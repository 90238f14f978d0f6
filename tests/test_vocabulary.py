"""One vocabulary across commands, JSON and exports (README "Vocabulary").

Before: the same thing had different names: input tokens in summary, prompt tokens in estimate and
in run --json, prompt_tokens in exports; errors in summary, failed in runs; "fallback" in the
report's table for what summary calls "tier fallback".
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from test_run import cli_provider, line  # noqa: F401 (cli_provider: a fixture)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"

# The names README "Vocabulary" retires, and what replaced them.
RETIRED = {
    "errors": "failed",
    "error_rate": "failure_rate",
    "prompt_tokens": "input_tokens",
    "completion_tokens": "output_tokens",
    "sheet_fallback": "priced_by_fallback_sheet",
}


def keys(value: Any) -> set[str]:
    """Every key of every object inside a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


def json_of(invoke: Any, *args: Any) -> Any:
    result = invoke(*args)
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_every_json_output_and_export_speaks_one_vocabulary(invoke, cli_provider, jsonl, tmp_path):  # noqa: F811
    outputs = {
        "replay": json_of(
            invoke, "replay", SAMPLES / "openai_batch_output_gpt-4o-mini.jsonl",
            "--requests", SAMPLES / "batch_input_gpt-4o-mini.jsonl", "--json",
        ),
        "replay 4o": json_of(
            invoke, "replay", SAMPLES / "openai_batch_output_gpt-4o.jsonl",
            "--requests", SAMPLES / "batch_input_gpt-4o.jsonl", "--json",
        ),
        "run": json_of(invoke, "run", jsonl("reqs.jsonl", [line("a"), line("b")]), "--json"),
        "summary": json_of(invoke, "summary", "--json"),
        "runs": json_of(invoke, "runs", "--json"),
        "estimate": json_of(
            invoke, "estimate", SAMPLES / "batch_input_gpt-4o-mini.jsonl", "--actual", "1", "--json"
        ),
        "report": json_of(invoke, "report", "--format", "json", "--out", "-"),
        "which": json_of(invoke, "pricing", "which", "gpt-4o", "--input-tokens", "10", "--json"),
    }  # fmt: skip
    for command, payload in outputs.items():
        found = keys(payload)
        assert not found & set(RETIRED), (command, found & set(RETIRED))
    assert {"failed", "input_tokens", "output_tokens"} <= keys(outputs["summary"])
    assert {"failed", "not_sent", "input_tokens", "output_tokens"} <= keys(outputs["run"])
    assert {"failed"} <= keys(outputs["replay"]) and {"failed", "not_sent"} <= keys(outputs["runs"])
    assert {"input_tokens", "output_tokens"} <= keys(outputs["estimate"])
    assert {"failed", "failure_rate", "priced_by_fallback_sheet"} <= keys(outputs["report"])

    out = tmp_path / "rows.csv"
    assert invoke("export", "--format", "csv", "--out", out).exit_code == 0
    with out.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert not set(header) & set(RETIRED)
    assert {"input_tokens", "output_tokens", "status"} <= set(header)


def test_the_tables_use_the_same_words(invoke, cli_provider, jsonl):  # noqa: F811
    invoke("replay", SAMPLES / "openai_batch_output_gpt-4o-mini.jsonl")
    summary = invoke("summary").stdout
    header = next(ln for ln in summary.splitlines() if ln.startswith("model"))
    assert "failed" in header and "errors" not in header and "input tok" in header
    estimate = invoke("estimate", SAMPLES / "batch_input_gpt-4o-mini.jsonl", "--model", "gpt-4o").stdout
    header = next(ln for ln in estimate.splitlines() if ln.startswith("model"))
    assert "input tok" in header and "prompt" not in header
    page = invoke("report", "--out", "-").stdout
    assert ">failed</button>" in page and ">errors</button>" not in page
    assert "(prompt tokens" not in page.split("<footer")[0].split('id="method"')[0]


def test_fail_on_takes_the_same_word_and_the_old_one(invoke, cli_provider, jsonl):  # noqa: F811
    cli_provider.script = lambda body, cid, attempt: __import__("httpx").Response(
        400, json={"error": {"message": "bad", "type": "invalid_request_error"}}
    )
    path = jsonl("reqs.jsonl", [line("a")])
    assert invoke("--fail-on", "failed", "run", path).exit_code == 1
    assert invoke("--fail-on", "errors", "run", path, "--run-name", "again").exit_code == 1
    assert invoke("--fail-on", "rejects", "run", path, "--run-name", "third").exit_code == 0
