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
