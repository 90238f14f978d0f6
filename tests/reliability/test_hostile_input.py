"""Hostile input for the readers: request files (`run`, `estimate`, `replay --requests`), result files
(`replay`), price CSVs (`pricing check`, `--pricing`) and every `pricing import` source.

A corpus of known-bad shapes plus hypothesis-generated lines. Each time: no traceback, every reject
names file:line (or the JSON path) and a reason, every good line is stored, read = stored + rejected
exactly, and a line over the size limit is rejected with its length before anything parses it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from helpers import examples
from hypothesis import given, settings
from hypothesis import strategies as st

GOOD = {
    "custom_id": "good-{i}",
    "body": {"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi {i}"}]},
}


def good(i: int) -> str:
    return json.dumps(GOOD).replace("{i}", str(i))


# Lines that must be rejected (each with a reason), between good ones.
BAD_REQUEST_LINES: dict[str, bytes] = {
    "invalid JSON": b'{"custom_id": "x", "body": {',
    "not an object": b"[1, 2, 3]",
    "a bare string": b'"hello"',
    "deeply nested": ("[" * 5000 + "]" * 5000).encode(),
    "nested body": b'{"custom_id": "n", "body": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}",
    "non-UTF-8": b'{"custom_id": "\xff\xfe", "body": {}}',
    "body not an object": b'{"custom_id": "b", "body": "text"}',
    "messages not a list": b'{"custom_id": "m", "body": {"model": "gpt-4o", "messages": {"role": "user"}}}',
    "role unknown": b'{"custom_id": "r", "body": {"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]}}',
    "max_tokens as string": b'{"custom_id": "s", "body": {"model": "gpt-4o", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]}}',
    "max_tokens NaN": b'{"custom_id": "nan", "body": {"model": "gpt-4o", "max_tokens": NaN, "messages": [{"role": "user", "content": "x"}]}}',
    "max_tokens Infinity": b'{"custom_id": "inf", "body": {"model": "gpt-4o", "max_tokens": Infinity, "messages": [{"role": "user", "content": "x"}]}}',
    "max_tokens above 2^63": b'{"custom_id": "big", "body": {"model": "gpt-4o", "max_tokens": 99999999999999999999, "messages": [{"role": "user", "content": "x"}]}}',
    "max_tokens negative": b'{"custom_id": "neg", "body": {"model": "gpt-4o", "max_tokens": -3, "messages": [{"role": "user", "content": "x"}]}}',
    "max_tokens fractional": b'{"custom_id": "frac", "body": {"model": "gpt-4o", "max_tokens": 2.5, "messages": [{"role": "user", "content": "x"}]}}',
    "n zero": b'{"custom_id": "n0", "body": {"model": "gpt-4o", "n": 0, "messages": [{"role": "user", "content": "x"}]}}',
    "temperature as string": b'{"custom_id": "t", "body": {"model": "gpt-4o", "temperature": "hot", "messages": [{"role": "user", "content": "x"}]}}',
    "model a number": b'{"custom_id": "mn", "body": {"model": 4, "messages": [{"role": "user", "content": "x"}]}}',
    # (an integer custom_id is read as its digits, as batch tools write them; a fraction is not an id)
    "custom_id a fraction": b'{"custom_id": 7.5, "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}}',
    "duplicate custom_id": good(0).encode(),
}


def write(
    path: Path, lines: list[bytes], *, bom: bool = False, crlf: bool = False, final_newline: bool = True
) -> Path:
    sep = b"\r\n" if crlf else b"\n"
    data = sep.join(lines) + (sep if final_newline else b"")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def reject_lines(stderr: str, path: Path) -> dict[int, str]:
    found = {}
    for m in re.finditer(rf"rejected {re.escape(str(path))}:(\d+): (.+)", stderr):
        found[int(m.group(1))] = m.group(2)
    return found


@pytest.mark.parametrize("variant", ["plain", "bom+crlf", "no final newline", "blank lines"])
def test_a_request_file_full_of_hostile_lines(invoke, cli_provider, tmp_path, variant, figure):
    lines: list[bytes] = []
    expect_bad: dict[int, str] = {}
    for i, (name, raw) in enumerate(BAD_REQUEST_LINES.items()):
        lines.append(good(i).encode())
        if variant == "blank lines":
            lines.append(b"   ")
        lines.append(raw)
        expect_bad[len(lines)] = name
    lines.append(good(999).encode())
    path = write(tmp_path / "reqs.jsonl", lines, bom=variant == "bom+crlf", crlf=variant == "bom+crlf",
                 final_newline=variant != "no final newline")  # fmt: skip
    result = invoke("run", path, "--json")
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    outcome = json.loads(result.stdout)
    rf = outcome["requests_file"]
    good_lines = len(BAD_REQUEST_LINES) + 1
    assert (rf["accepted"], rf["rejected"]) == (good_lines, len(BAD_REQUEST_LINES)), rf
    assert rf["lines_read"] == rf["accepted"] + rf["rejected"]
    assert {r["line"] for r in rf["rejects"]} == set(expect_bad), (variant, rf["rejects"])
    assert all(r["reason"] for r in rf["rejects"])
    assert set(reject_lines(result.stderr, path)) == set(expect_bad)
    assert outcome["run"]["ok"] == good_lines  # every good line was sent and stored
    if variant == "blank lines":
        figure(
            f"hostile input: request file with {len(BAD_REQUEST_LINES)} bad shapes among good lines "
            "(plain, BOM+CRLF, no final newline, blank lines), through `run`",
            cases=4 * len(BAD_REQUEST_LINES),
            held="each bad line rejected with file:line and reason; every good line sent and stored; "
            "read = stored + rejected",
        )


def test_an_empty_file_and_a_blank_file(invoke, cli_provider, tmp_path):
    for name, data in (("empty.jsonl", b""), ("blank.jsonl", b"\n \n\t\n")):
        path = tmp_path / name
        path.write_bytes(data)
        result = invoke("run", path, "--json")
        assert result.exit_code == 0, result.stderr
        rf = json.loads(result.stdout)["requests_file"]
        assert (rf["accepted"], rf["rejected"]) == (0, 0)


@pytest.mark.parametrize("command", ["run", "replay"])
def test_a_50_mb_line_is_rejected_with_its_length(invoke, cli_provider, tmp_path, command, figure):
    huge = (
        b'{"custom_id": "huge", "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "'
        + b"x" * (50 << 20)
        + b'"}]}}'
    )
    path = write(tmp_path / "big.jsonl", [good(1).encode(), huge, good(2).encode()])
    if command == "run":
        result = invoke("run", path, "--json")
        rf = json.loads(result.stdout)["requests_file"]
        assert (rf["accepted"], rf["rejected"], rf["lines_read"]) == (2, 1, 3)
    else:
        out = write(tmp_path / "out.jsonl", [
            json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": {"model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}}}).encode(),
            huge,
        ])  # fmt: skip
        result = invoke("replay", out)
        assert result.exit_code == 1
        assert f"rejected {out}:2: line is 52,428," in result.stderr
        again = invoke("replay", out, "--json", "--force")
        (run,) = json.loads(again.stdout)["runs"]
        assert (run["stored"], run["rejected"], run["lines_read"]) == (1, 1, 2)
        assert run["rejects"][0]["reason"].startswith("line is 52,428,")
        figure(
            "hostile input: a 50 MB single line in a request file and in a result file",
            cases=2,
            held="rejected with its length before parsing (limit 32 MiB, COSTLENS_MAX_LINE_BYTES); "
            "the other lines stored",
        )
        return
    assert result.exit_code == 1
    assert f"rejected {path}:2: line is 52,428," in result.stderr and "-byte limit per line" in result.stderr


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)  # fmt: skip
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "model": JSONISH, "messages": JSONISH | st.just([{"role": "user", "content": "x"}]), "max_tokens": JSONISH,
        "n": JSONISH, "temperature": JSONISH, "stream": JSONISH, "stop": JSONISH, "user": JSONISH,
        "max_completion_tokens": JSONISH, "top_p": JSONISH,
    },
)  # fmt: skip


@settings(max_examples=examples(30))
@given(bodies=st.lists(st.one_of(FIELDS, JSONISH), min_size=1, max_size=8))
def test_generated_request_lines(tmp_path_factory, bodies):
    """Through the library (the CLI's reader is the same code): staging never raises, counts add up,
    and every accepted line has a custom_id and a model."""
    from costlens.ingest.requests_file import stage_request_file
    from costlens.store.db import open_store

    root = tmp_path_factory.mktemp("gen")
    lines = [json.dumps({"custom_id": f"c{i}", "body": b}).encode() for i, b in enumerate(bodies)]
    path = write(root / "reqs.jsonl", [good(0).encode(), *lines])
    with open_store(root / "x.duckdb") as conn:
        staged = stage_request_file(conn, path, default_model="gpt-4o")
        (accepted,) = conn.execute("SELECT count(*) FROM cl_req_input").fetchall()[0]
        nulls = conn.execute(
            "SELECT count(*) FROM cl_req_input WHERE custom_id IS NULL OR model IS NULL"
        ).fetchall()
    assert staged.lines_read == len(lines) + 1 == staged.accepted + len(staged.rejects)
    assert accepted == staged.accepted >= 1 and nulls == [(0,)]
    assert all(r.file == str(path) and r.line_no >= 2 and r.reason for r in staged.rejects)


# --- price CSVs ------------------------------------------------------------------------------------

BAD_PRICE_ROWS = {
    "negative price": "gpt-x,-1,2",
    "text price": "gpt-x,cheap,2",
    "NaN price": "gpt-x,NaN,2",
    "Infinity price": "gpt-x,Infinity,2",
    "too many places": "gpt-x,0.00000000001,2",
    "huge price": "gpt-x,1e400,2",
    "missing fields": "gpt-x,1",
    "extra fields": "gpt-x,1,2,3",
    "empty model": ",1,2",
    "formula model": "=cmd|x,1,2",
}


@pytest.mark.parametrize("name", list(BAD_PRICE_ROWS))
def test_a_bad_price_row_is_named_by_file_line_and_column(invoke, tmp_path, name, figure):
    path = tmp_path / "prices.csv"
    path.write_text(
        "model,input_per_1m,output_per_1m\ngpt-4o,1,2\n" + BAD_PRICE_ROWS[name] + "\n", encoding="utf-8"
    )
    result = invoke("pricing", "check", path)
    if name == "formula model":  # a model id is data, whatever it looks like
        assert result.exit_code == 0, result.stderr
        return
    assert result.exit_code == 2 and result.stderr.startswith(f"costlens: error: {path}:3"), (
        name,
        result.stderr,
    )
    assert "Traceback" not in result.stderr
    if name == list(BAD_PRICE_ROWS)[-2]:
        figure(
            "hostile input: price CSV rows (negative, text, NaN, Infinity, too precise, huge, short, long, "
            "empty model)",
            cases=len(BAD_PRICE_ROWS) - 1,
            held="each one error line naming file:line:column",
        )


@settings(max_examples=examples(30))
@given(
    cells=st.lists(
        st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12), min_size=3, max_size=3
    )
)
def test_generated_price_cells(tmp_path_factory, cells):
    from costlens.errors import CostlensError
    from costlens.money.pricing import load_price_table

    root = tmp_path_factory.mktemp("prices")
    path = root / "prices.csv"
    row = ",".join('"' + c.replace('"', '""') + '"' for c in cells)
    path.write_text("model,input_per_1m,output_per_1m\n" + row + "\n", encoding="utf-8", newline="")
    try:
        load_price_table([path], [])
    except CostlensError as e:
        assert str(path) in str(e)


# --- pricing import sources --------------------------------------------------------------------------

SOURCE_CASES: dict[str, list[tuple[str, str]]] = {
    "litellm": [
        ("truncated", '{"gpt-4o": {"input_cost_per_token": 2.5e-06'),
        ("not an object", "[1, 2]"),
        (
            "cost as string",
            '{"gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": "x", "output_cost_per_token": 1e-05}}',
        ),
        (
            "negative cost",
            '{"gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": -1, "output_cost_per_token": 1e-05}}',
        ),
        (
            "NaN",
            '{"gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": NaN, "output_cost_per_token": 1e-05}}',
        ),
        ("deep", '{"gpt-4o": ' + "[" * 3000 + "]" * 3000 + "}"),
    ],
    "openrouter": [
        ("truncated", '{"data": [{"id": "openai/gpt-4o", "pricing": {"prompt": "0.0000025"'),
        ("data not a list", '{"data": {"id": "x"}}'),
        (
            "price not a number",
            '{"data": [{"id": "openai/gpt-4o", "pricing": {"prompt": "free", "completion": "0.00001"}}]}',
        ),
        (
            "huge",
            '{"data": [{"id": "openai/gpt-4o", "pricing": {"prompt": "1e999", "completion": "0.00001"}}]}',
        ),
    ],
    "models-dev": [
        ("truncated", '{"openai": {"models": {"gpt-4o": {"cost": {"input": 2.5'),
        ("models not an object", '{"openai": {"models": [1]}}'),
        (
            "cost as string",
            '{"openai": {"id": "openai", "models": {"gpt-4o": {"id": "gpt-4o", "cost": {"input": "2.5", "output": "x"}}}}}',
        ),
        (
            "Infinity",
            '{"openai": {"id": "openai", "models": {"gpt-4o": {"id": "gpt-4o", "cost": {"input": Infinity, "output": 10}}}}}',
        ),
    ],
}


@pytest.mark.parametrize(("source", "case"), [(s, c) for s, cases in SOURCE_CASES.items() for c, _ in cases])
def test_a_malformed_price_database_writes_nothing(invoke, tmp_path, source, case, figure):
    text = dict(SOURCE_CASES[source])[case]
    src = tmp_path / "source.json"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "sheet.csv"
    result = invoke("pricing", "import", source, src, "--out", out)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    if result.exit_code == 0:
        # Accepted only when the bad value is of a model it skips, and says so.
        assert "skipped" in result.stdout + result.stderr or "omitted" in result.stdout + result.stderr, (
            source,
            case,
        )
    else:
        assert result.exit_code == 2 and result.stderr.startswith("costlens: error: "), (
            source,
            case,
            result.stderr,
        )
        assert str(src) in result.stderr or "source.json" in result.stderr
        assert not out.exists()
    if (source, case) == ("models-dev", "Infinity"):
        figure(
            "hostile input: malformed litellm / OpenRouter / models.dev files for `pricing import`",
            cases=sum(len(c) for c in SOURCE_CASES.values()),
            held="one error line with the file and JSON path, nothing written (or the model skipped and listed)",
        )


# --- result files, every format ------------------------------------------------------------------


def _gemini(key: str, usage: Any) -> dict[str, Any]:
    return {
        "key": key,
        "response": {"modelVersion": "gemini-2.5-flash", "candidates": [], "usageMetadata": usage},
    }


def _bedrock(rid: str, usage: Any) -> dict[str, Any]:
    return {"recordId": rid, "modelInput": {}, "modelOutput": {"output": {}, "usage": usage}}


def _openai(cid: str, usage: Any) -> dict[str, Any]:
    return {
        "custom_id": cid,
        "response": {"status_code": 200, "body": {"model": "gpt-4o", "choices": [], "usage": usage}},
    }


def _anthropic(cid: str, usage: Any) -> dict[str, Any]:
    return {
        "custom_id": cid,
        "result": {"type": "succeeded", "message": {"model": "claude-3-5-haiku", "usage": usage}},
    }


def _vertex(usage: Any, when: Any = "2025-08-14T16:27:27Z") -> dict[str, Any]:
    return {
        "status": "",
        "processed_time": when,
        "request": {},
        "response": {"modelVersion": "gemini-2.0-flash-001", "usageMetadata": usage},
    }


BIG = 2**64 + 5
RESULT_CASES: list[tuple[str, Any, Any]] = [
    # (format, a good line, bad lines)
    ("openai", _openai("ok", {"prompt_tokens": 3, "completion_tokens": 1}), [
        _openai("neg", {"prompt_tokens": -3, "completion_tokens": 1}),
        _openai("str", {"prompt_tokens": "3", "completion_tokens": 1}),
        _openai("frac", {"prompt_tokens": 3.5, "completion_tokens": 1}),
        _openai("big", {"prompt_tokens": BIG, "completion_tokens": 1}),
        _openai("cached", {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 9}}),
        _openai("cost", {"prompt_tokens": 3, "completion_tokens": 1, "cost": "free"}),
        _openai("ok", {"prompt_tokens": 3, "completion_tokens": 1}),  # a duplicate custom_id
        {"custom_id": "status", "response": {"status_code": "two hundred", "body": {}}},
        {"custom_id": ["list"], "response": {"status_code": 200, "body": {}}},
    ]),
    ("anthropic", _anthropic("ok", {"input_tokens": 3, "output_tokens": 1}), [
        _anthropic("neg", {"input_tokens": -1, "output_tokens": 1}),
        _anthropic("split", {"input_tokens": 3, "output_tokens": 1, "cache_creation_input_tokens": 10,
                             "cache_creation": {"ephemeral_5m_input_tokens": 1, "ephemeral_1h_input_tokens": 2}}),
        _anthropic("lacks", {"input_tokens": 3}),
    ]),
    ("gemini", _gemini("ok", {"promptTokenCount": 3, "candidatesTokenCount": 1}), [
        _gemini("neg", {"promptTokenCount": -3, "candidatesTokenCount": 1}),
        _gemini("str", {"promptTokenCount": "3", "candidatesTokenCount": 1}),
        _gemini("big", {"promptTokenCount": BIG, "candidatesTokenCount": 1}),
        _gemini("cached", {"promptTokenCount": 3, "candidatesTokenCount": 1, "cachedContentTokenCount": 9}),
        {"key": 5.5, "response": {"usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}}},
    ]),
    ("vertex", _vertex({"promptTokenCount": 3, "candidatesTokenCount": 1}), [
        _vertex({"promptTokenCount": 3, "candidatesTokenCount": 1}, when="yesterday"),
        _vertex({"promptTokenCount": -3, "candidatesTokenCount": 1}),
    ]),
    ("bedrock", _bedrock("ok", {"inputTokens": 3, "outputTokens": 1}), [
        _bedrock("neg", {"inputTokens": -3, "outputTokens": 1}),
        _bedrock("ttl", {"inputTokens": 3, "outputTokens": 1, "cacheWriteInputTokens": 5,
                         "cacheDetails": [{"ttl": "1y", "inputTokens": 5}]}),
        _bedrock("sum", {"inputTokens": 3, "outputTokens": 1, "cacheWriteInputTokens": 5,
                         "cacheDetails": [{"ttl": "1h", "inputTokens": 9}]}),
        {"recordId": 12.5, "modelOutput": {"usage": {"inputTokens": 1, "outputTokens": 1}}},
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "good_line", "bad_lines"), RESULT_CASES, ids=[c[0] for c in RESULT_CASES])
def test_result_files_of_every_format_with_hostile_lines(invoke, tmp_path, fmt, good_line, bad_lines, figure):
    raw = [json.dumps(good_line).encode()]
    raw += [json.dumps(b).encode() for b in bad_lines]
    raw += [
        b"{not json",
        b'{"custom_id": "x", "response": ' + b"[" * 4000 + b"]" * 4000 + b"}",
        b"\xff\xfe{}",
    ]
    path = write(tmp_path / f"{fmt}.jsonl", raw, crlf=fmt == "gemini", bom=fmt == "bedrock")
    result = invoke("replay", path, "--json", "--model", "gpt-4o")
    assert "Traceback" not in result.stderr + result.stdout
    assert result.exit_code == 1, result.stderr
    (run,) = json.loads(result.stdout)["runs"]
    assert (run["lines_read"], run["stored"], run["rejected"]) == (len(raw), 1, len(raw) - 1), run["rejects"]
    assert sorted(r["line"] for r in run["rejects"]) == list(range(2, len(raw) + 1))
    assert all(r["reason"] for r in run["rejects"])
    _RESULT_FIGURES.append(len(raw))
    if fmt == RESULT_CASES[-1][0]:
        figure(
            "hostile input: result lines of every format (OpenAI/vLLM, Anthropic, Gemini, Vertex, Bedrock) with "
            "negative, fractional, string, NaN-like and >2^64 counts, inconsistent buckets, bad ids and times, "
            "duplicates, invalid JSON, deep nesting, non-UTF-8, BOM, CRLF",
            cases=sum(_RESULT_FIGURES),
            held="every bad line rejected with its line and reason, the good line "
            "stored, read = stored + rejected",
        )


_RESULT_FIGURES: list[int] = []


# --- reconcile exports ------------------------------------------------------------------------------

RECONCILE_DATA = Path(__file__).resolve().parents[1] / "data" / "reconcile"


def _mutate(name: str, change: Any) -> str:
    data = json.loads((RECONCILE_DATA / f"{name}.json").read_text(encoding="utf-8"))
    change(data)
    return json.dumps(data)


def _set(path: list[Any], value: Any) -> Any:
    def change(data: Any) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


EXPORT_CASES: dict[str, str] = {
    "truncated page": (RECONCILE_DATA / "openai_usage_page.json").read_text(encoding="utf-8")[:200],
    "not JSON at all": "<html>502 Bad Gateway</html>",
    "deeply nested": "[" * 5000 + "]" * 5000,
    "negative tokens": _mutate("openai_usage_page", _set(["data", 0, "results", 0, "input_tokens"], -5)),
    "tokens as text": _mutate("openai_usage_page", _set(["data", 0, "results", 0, "input_tokens"], "many")),
    "tokens above 2^63": _mutate("openai_usage_page", _set(["data", 0, "results", 0, "input_tokens"], 2**64)),
    "fractional requests": _mutate(
        "openai_usage_page", _set(["data", 0, "results", 0, "num_model_requests"], 2.5)
    ),
    "amount NaN": _mutate("openai_costs_page", _set(["data", 0, "results", 0, "amount", "value"], "NaN")),
    "amount in euros": _mutate(
        "openai_costs_page", _set(["data", 0, "results", 0, "amount", "currency"], "eur")
    ),
    "bucket not a day": _mutate("openai_costs_page", _set(["data", 0, "end_time"], 1730419200 + 3600 * 5)),
    "cents as a number": _mutate("anthropic_cost_page", _set(["data", 0, "results", 0, "amount"], "12,3")),
    "time not a time": _mutate("anthropic_usage_page", _set(["data", 0, "starting_at"], "first of August")),
    "duplicate bucket": _mutate("openai_usage_page", lambda d: d["data"].append(d["data"][0])),
}


@pytest.mark.parametrize("case", list(EXPORT_CASES))
def test_a_hostile_export_is_one_clear_error_and_stores_nothing(invoke, tmp_path, case, figure):
    path = tmp_path / "export.json"
    path.write_text(EXPORT_CASES[case], encoding="utf-8")
    result = invoke("reconcile", path)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.exit_code == 2, (case, result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("costlens: error: ") and "export.json" in result.stderr, (
        case,
        result.stderr,
    )
    db = tmp_path / "state" / "costlens.duckdb"
    if db.exists():
        with duckdb.connect(str(db), read_only=True) as conn:
            tables = {
                t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
            }
            if "reconciliations" in tables:
                assert conn.execute("SELECT count(*) FROM reconciliations").fetchall() == [(0,)]
    if case == list(EXPORT_CASES)[-1]:
        figure(
            "hostile input: provider exports for `reconcile` (truncated, not JSON, nested 5,000 deep, negative, "
            "text, >2^63 and fractional counts, NaN amount, another currency, a bucket not a UTC day, a bad "
            "cents text, a bad time, a duplicate bucket)",
            cases=len(EXPORT_CASES),
            held="one error line naming the file (and JSON path), exit 2, nothing stored",
        )


def test_overlapping_pages_and_a_bad_spend_log_row(invoke, tmp_path):
    page = RECONCILE_DATA / "openai_usage_page.json"
    copy = tmp_path / "again.json"
    copy.write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
    result = invoke("reconcile", page, copy)
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    csv_path = tmp_path / "spend.csv"
    rows = (RECONCILE_DATA / "litellm_spend.csv").read_text(encoding="utf-8").splitlines()
    csv_path.write_text(
        "\n".join([rows[0], rows[1], rows[1].replace(",", ",oops,", 1)]) + "\n", encoding="utf-8"
    )
    result = invoke("reconcile", csv_path)
    assert result.exit_code == 2 and "spend.csv:3" in result.stderr, result.stderr
    huge = rows[1].split(",")
    header = rows[0].split(",")
    huge[header.index("prompt_tokens")] = str(2**64)
    csv_path.write_text("\n".join([rows[0], ",".join(huge)]) + "\n", encoding="utf-8")
    result = invoke("reconcile", csv_path)
    assert result.exit_code == 2 and "above the largest count" in result.stderr, result.stderr
