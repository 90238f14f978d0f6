"""Messages quote data from files and servers (model ids, paths, JSON values): on stdout and stderr
they are shown inert, with control characters escaped, like the tables (costlens/cli/tables.py).

Before: `pricing which`, `pricing diff`, the `rejected ...` lines of run/estimate and the
`costlens: error:` line printed such text raw, so an id could clear the screen or retitle the terminal.
"""

from __future__ import annotations

ESC = "\x1b"
HOSTILE = f"{ESC}[2J{ESC}]0;pwned\x07[red]boom[/]\u202e"
IN_A_NAME = f"{ESC}[2J{ESC}]0;pwned\x07[red]boom\u202e"  # a file name cannot hold "/"


def assert_inert(text: str) -> None:
    assert ESC not in text and "\x07" not in text and "\u202e" not in text, repr(text)


def test_rejected_lines_are_inert(invoke, jsonl):
    bad = {"custom_id": "a", "body": {"model": "m", "messages": [{"role": "robot", "content": "x"}]}}
    path = jsonl(f"{IN_A_NAME}.jsonl", [bad])
    result = invoke("estimate", path, "--model", "gpt-4o")
    assert result.exit_code == 1
    assert "rejected" in result.stderr and "\\x1b[2J" in result.stderr
    assert_inert(result.stderr + result.stdout)


def test_pricing_which_shows_the_id_inert(invoke):
    result = invoke("pricing", "which", HOSTILE)
    assert result.exit_code == 1  # unpriced
    assert "\\x1b[2J\\x1b]0;pwned\\x07[red]boom[/]\\u202e" in result.stdout
    assert_inert(result.stdout + result.stderr)


def test_an_error_line_quoting_a_path_is_inert(invoke, tmp_path):
    result = invoke("pricing", "check", str(tmp_path / f"{IN_A_NAME}.csv"))
    assert result.exit_code == 2 and result.stderr.startswith("costlens: error: ")
    assert "\\x1b[2J" in result.stderr
    assert_inert(result.stderr)


def test_pricing_diff_rows_are_inert(invoke, tmp_path):
    old = tmp_path / "old.csv"
    new = tmp_path / "new.csv"
    old.write_text("model,input_per_1m,output_per_1m\ngpt-4o,1,2\n", encoding="utf-8")
    new.write_text(
        "model,input_per_1m,output_per_1m\ngpt-4o,1,2\n" + '"' + HOSTILE + '",3,4\n', encoding="utf-8"
    )
    result = invoke("pricing", "diff", old, new)
    assert result.exit_code == 0, result.stderr
    assert "added" in result.stdout and "\\x1b[2J" in result.stdout
    assert_inert(result.stdout + result.stderr)


def test_the_report_shows_control_and_bidi_characters_as_escapes(invoke, jsonl, lines):
    """Autoescaping stops markup, not an RLO: "safe\u202egnp.exe" would read "safeexe.png" on the page."""
    spoof = "safe\u202egnp.exe"
    path = jsonl("out.jsonl", [lines.chat("a", model=spoof), lines.chat("b", model=f"{ESC}[31mred")])
    assert invoke("replay", path).exit_code == 0
    page = invoke("report", "--out", "-").stdout
    assert "safe\\u202egnp.exe" in page and "\\x1b[31mred" in page
    assert_inert(page)
    # The data itself stays verbatim: JSON and exports are for machines.
    data = invoke("report", "--format", "json", "--out", "-").stdout
    assert spoof in data
