"""Injection: model ids, user ids, tags, custom_ids, error messages, completions and run names that carry
SQL, HTML/JS, spreadsheet formulas, terminal control sequences, console markup and path traversal are
stored verbatim and shown inert everywhere: terminal tables (both layouts), messages, CSV, and the report
in a real headless Chromium, which runs none of it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import duckdb
from test_report_browser import document_title, dump_dom

PAYLOADS = {
    "sql": "x'); DROP TABLE results; --",
    "html": "<img src=x onerror=\"document.title='pwned-img'\">",
    "script": "</td><script>document.title='pwned-script'</script>",
    "formula": '=HYPERLINK("http://evil.example","click")',
    "formula2": "+cmd|' /C calc'!A0",
    "terminal": "\x1b[2J\x1b]0;pwned\x07\r\x1b[1A",
    "bidi": "safe\u202egnp.exe",
    "markup": "[bold red]alert[/] [/]",
    "traversal": "../../../../tmp/costlens-pwned",
}
RAW_CONTROLS = ("\x1b", "\x07", "\u202e", "\r")
# costlens's own styling on a terminal (rich's bold headers, italic titles): SGR sequences only.
OWN_STYLING = re.compile(r"\x1b\[[0-9;]*m")


def batch_line(key: str, payload: str, *, ok: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"chatcmpl-{key}", "object": "chat.completion", "created": 1761564674, "model": payload,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": payload}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }  # fmt: skip
    if not ok:
        return {
            "custom_id": payload,
            "response": {"status_code": 400, "body": {"error": {"message": payload, "type": payload}}},
        }
    return {"custom_id": payload, "response": {"status_code": 200, "request_id": key, "body": body}}


def request_line(payload: str) -> dict[str, Any]:
    return {
        "custom_id": payload,
        "body": {"model": "gpt-4o", "user": payload, "messages": [{"role": "user", "content": payload}]},
    }


def test_hostile_values_are_stored_verbatim_and_shown_inert(
    invoke, jsonl, tmp_path, monkeypatch, chromium, figure
):
    names = list(PAYLOADS)
    out = jsonl("out.jsonl", [batch_line(k, PAYLOADS[k]) for k in names])
    failed = jsonl("failed.jsonl", [batch_line(k, PAYLOADS[k] + " (failed)", ok=False) for k in names])
    requests = jsonl("reqs.jsonl", [request_line(PAYLOADS[k]) for k in names])
    surfaces = 0
    for path, extra in ((out, ["--requests", requests]), (failed, [])):
        result = invoke("replay", path, *extra, "--store-content", "--run-name", PAYLOADS["traversal"],
                        "--tag", f"team={PAYLOADS['script']}", "--tag", f"note={PAYLOADS['terminal']}")  # fmt: skip
        assert result.exit_code in (0, 1), result.stderr
    # Stored verbatim (the SQL payload is a value, not a statement: every table is still there).
    db = tmp_path / "state" / "costlens.duckdb"
    with duckdb.connect(str(db), read_only=True) as conn:
        ids = {cid for (cid,) in conn.execute("SELECT custom_id FROM requests").fetchall()}
        models = {
            m for (m,) in conn.execute("SELECT response_model FROM results WHERE status = 'ok'").fetchall()
        }
        names_stored = {n for (n,) in conn.execute("SELECT name FROM runs").fetchall()}
        users = {u for (u,) in conn.execute('SELECT "user" FROM request_params').fetchall()}
        errors = {
            e for (e,) in conn.execute("SELECT error_message FROM results WHERE status = 'error'").fetchall()
        }
    assert set(PAYLOADS.values()) <= ids and set(PAYLOADS.values()) == models == users
    assert errors == {p + " (failed)" for p in PAYLOADS.values()} and names_stored == {PAYLOADS["traversal"]}
    assert not Path("/tmp/costlens-pwned").exists()
    # Terminal tables and messages, both layouts: no raw control character; markup printed as text.
    for layout in ("terminal", "plain"):
        monkeypatch.setenv("COSTLENS_LAYOUT", layout)
        monkeypatch.setenv("COLUMNS", "400")
        for command in (
            ["summary"],
            ["runs"],
            ["pricing", "which", PAYLOADS["terminal"]],
            ["estimate", requests, "--model", "gpt-4o"],
        ):
            result = invoke(*command)
            text = OWN_STYLING.sub("", result.stdout + result.stderr)
            assert not any(c in text for c in RAW_CONTROLS), (layout, command, repr(text)[:300])
            surfaces += 1
        assert "[bold red]alert[/] [/]" in invoke("summary").stdout
    monkeypatch.delenv("COSTLENS_LAYOUT")
    # CSV: formula-like cells get a leading apostrophe; read back, the rest is the value itself.
    export = tmp_path / "rows.csv"
    assert invoke("export", "--format", "csv", "--out", export).exit_code == 0
    with export.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    cells = {r["custom_id"] for r in rows} | {r["response_model"] for r in rows}
    for name in ("formula", "formula2"):
        assert "'" + PAYLOADS[name] in cells and PAYLOADS[name] not in cells
    assert PAYLOADS["html"] in cells  # not a formula: verbatim
    surfaces += 1
    # The report, in Chromium: the title is the page's, no injected element exists, the text is there.
    page = tmp_path / "report.html"
    assert invoke("report", "--out", page).exit_code == 0
    dom = dump_dom(chromium, page)
    assert document_title(dom) == "costlens report"
    assert "<img" not in dom and "<script>document.title='pwned-script'" not in dom
    assert "&lt;img src=x onerror=" in dom and "&lt;/td&gt;&lt;script&gt;" in dom
    assert not any(c in dom for c in RAW_CONTROLS[:3])  # no ESC, BEL or bidi override as such...
    assert "safe\\u202egnp.exe" in dom and "\\x1b[2J" in dom  # ...but shown, as escapes
    surfaces += 1
    figure(
        f"injection: {len(PAYLOADS)} payloads (SQL, HTML/JS, formulas, terminal controls, bidi, markup, "
        "path traversal) as model id, custom_id, user, tag, run name, error message, completion",
        cases=len(PAYLOADS) * 7,
        held=f"stored verbatim; inert on {surfaces} surfaces (tables and messages in both layouts, CSV, "
        "report in Chromium: title unchanged, no element injected); no file written outside --out",
    )
