"""A recognisable fake key through every path of `costlens run` — success, 401, 429, 500 whose body
echoes the Authorization header, timeouts, transport errors that quote the request, cut streams,
`--base-url` with credentials in it, a run that dies with answers only in the journal — then the DB
file, the journal, every export, the report (HTML and JSON), stdout and stderr are searched: zero hits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from test_run import KEY, line

URL_SECRET = "pw-9f3c1e77d2"  # a password in --base-url


def every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def hits(root: Path, outputs: str) -> list[str]:
    found = [
        str(p)
        for p in every_file(root)
        if KEY.encode() in p.read_bytes() or URL_SECRET.encode() in p.read_bytes()
    ]
    if KEY in outputs or URL_SECRET in outputs:
        found.append("stdout/stderr")
    return found


def test_the_key_is_nowhere_after_every_path(invoke, cli_provider, jsonl, tmp_path, monkeypatch, figure):
    def script(body: dict[str, Any], custom_id: str, attempt: int) -> httpx.Response | None:
        auth = cli_provider.headers[-1].get("authorization", "")
        echo = f"you sent {auth} (key {KEY})"
        if custom_id == "ok":
            return None
        if custom_id == "401":
            return httpx.Response(
                401, json={"error": {"message": f"Incorrect API key provided: {echo}", "type": "auth"}}
            )
        if custom_id == "429":
            return httpx.Response(
                429, headers={"retry-after-ms": "1"}, json={"error": {"message": echo, "type": "rate_limit"}}
            )
        if custom_id == "500":
            return httpx.Response(500, text=f"<html>upstream said {echo}</html>")
        if custom_id == "timeout":
            raise httpx.ReadTimeout(f"timed out talking with {auth}")
        if custom_id == "connect":
            raise httpx.ConnectError(
                f"could not connect; request headers were {dict(cli_provider.headers[-1])}"
            )
        if custom_id == "cut":
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=f'data: {{"id": "x", "model": "m", "choices": [{{"index": 0, "delta": {{"content": "{KEY}"}}}}]}}\n\n'.encode(),
            )
        return None

    cli_provider.script = script
    path = jsonl(
        "reqs.jsonl",
        [line(c) for c in ("ok", "401", "429", "500", "timeout", "connect")] + [line("cut", stream=True)],
    )
    state = tmp_path / "state"
    outputs = ""
    base = f"http://user:{URL_SECRET}@llm.test/v1?key={URL_SECRET}"
    for args in (
        ["run", path, "--max-retries", "1", "--base-url", base, "--json", "--no-store-content"],
        ["--debug", "run", path, "--max-retries", "0", "--base-url", base, "--run-name", "again"],
    ):
        result = invoke(*args)
        outputs += result.stdout + result.stderr
        assert result.exit_code == 1, result.stderr
    assert cli_provider.headers[0]["authorization"] == f"Bearer {KEY}"  # the key was sent...
    for fmt in ("csv", "jsonl", "parquet"):
        r = invoke("export", "--format", fmt, "--out", tmp_path / f"out.{fmt}")
        outputs += r.stdout + r.stderr
    for fmt in ("html", "json"):
        r = invoke("report", "--format", fmt, "--out", tmp_path / f"report.{fmt}")
        outputs += r.stdout + r.stderr
    for command in (["summary"], ["runs", "--json"], ["summary", "--json"]):
        r = invoke(*command)
        outputs += r.stdout + r.stderr
    # ...and found nowhere: DB, journal, exports, report, outputs. (The completion text of the cut stream
    # is the one place the key may legitimately be, as the model's own words: it was not stored.)
    assert hits(tmp_path, outputs) == []
    assert (state / "costlens.duckdb").exists()
    figure(
        "secrets: fake key and URL password through run paths (ok, 401, 429, 500 echo, timeout, "
        "connect error, cut stream, credentials in --base-url), then DB, journal, exports, report, output",
        cases=7 * 2,
        held="0 hits",
    )


def test_a_journal_left_by_a_failed_write_holds_no_key(
    invoke, cli_provider, jsonl, tmp_path, monkeypatch, figure
):
    import costlens.send.run as run_module

    def refuse(conn: Any, batch: Any) -> None:
        raise run_module.StoreError("disk full (simulated)")

    cli_provider.script = lambda body, cid, attempt: httpx.Response(
        401, json={"error": {"message": f"bad key {KEY}", "type": "auth"}}
    )
    monkeypatch.setattr(run_module, "_write_results", refuse)
    result = invoke("run", jsonl("reqs.jsonl", [line(f"r{i}") for i in range(5)]), "--max-retries", "0")
    assert result.exit_code == 2 and "disk full" in result.stderr
    journal = list((tmp_path / "state").glob("*.journal/*"))
    assert journal, "the journal should hold the answers"
    assert hits(tmp_path, result.stdout + result.stderr) == []
    figure("secrets: journal left by a failed write", cases=5, held="0 hits")


@pytest.mark.parametrize("variable", ["OPENAI_API_KEY", "MY_GATEWAY_TOKEN"])
def test_the_stored_command_line_never_holds_a_key(
    invoke, cli_provider, jsonl, tmp_path, monkeypatch, variable
):
    monkeypatch.setenv(variable, KEY)
    result = invoke(
        "run", jsonl("reqs.jsonl", [line("a")]), "--api-key-env", variable, "--tag", f"note={KEY[:4]}"
    )
    assert result.exit_code == 0, result.stderr
    assert hits(tmp_path, result.stdout + result.stderr) == []
