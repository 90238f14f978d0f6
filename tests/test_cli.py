"""The command line: exit codes, one-line errors without tracebacks, JSON outputs against hand
computations, global options, the DB lock, secret redaction and help text everywhere."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import click
import duckdb
import pytest
from helpers import DATA

from costlens import __version__
from costlens.cli import cli, redacted_command_line
from costlens.cli import summary as cli_module
from costlens.money.pricing import default_pricing_path

SEED_MODELS = {
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022",
    "gemini-2.5-flash-preview-05-20", "deepseek-chat", "llama-3.3-70b-instruct", "gemini-2.0-flash",
}  # fmt: skip
PER_1M = Decimal("0.000001")


def plain(value: Decimal) -> str:
    """How --json writes money: plain decimal text, trailing zeros trimmed."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@pytest.fixture
def clean_file(jsonl, lines):
    return jsonl("clean.jsonl", [lines.chat("a"), lines.chat("b", model="deepseek-chat")])


@pytest.fixture
def priced_file(jsonl, lines):
    """Four plain chat completions (standard tier) whose cost is computed by hand below."""
    return jsonl(
        "priced.jsonl",
        [
            lines.chat("mini", model="gpt-4o-mini-2024-07-18", usage={
                "prompt_tokens": 1124, "completion_tokens": 215, "total_tokens": 1339,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 192}}),
            lines.chat("ds-1", model="deepseek-chat", usage={"prompt_tokens": 1000, "completion_tokens": 500}),
            lines.chat("ds-2", model="deepseek/deepseek-chat", usage={"prompt_tokens": 3, "completion_tokens": 2}),
            lines.chat("unknown", model="mystery-model", usage={"prompt_tokens": 10, "completion_tokens": 10}),
        ],
    )  # fmt: skip


def write_prices(path: Path, rows: str) -> Path:
    path.write_text("model,input_per_1m,output_per_1m\n" + rows, encoding="utf-8")
    return path


def stored_runs(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute("SELECT run_id, name, command_line FROM runs ORDER BY run_id").fetchall()


# --- exit codes --------------------------------------------------------------------------------


def test_clean_replay_exits_0(invoke, clean_file):
    result = invoke("replay", clean_file)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert (
        f"run 1 {clean_file}: 2 lines read, 2 stored, 0 rejected, 0 failed requests (chat_completion 2)"
        in result.stdout
    )


def test_rejected_lines_exit_1_and_are_listed_on_stderr(invoke, jsonl, lines):
    path = jsonl("out.jsonl", [lines.chat("a"), "{nope", lines.chat("a")])
    result = invoke("replay", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"rejected {path}:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"rejected {path}:3: duplicate custom_id 'a' (first at line 1)",
    ]
    assert "3 lines read, 1 stored, 2 rejected, 0 failed requests" in result.stdout


def test_failed_requests_exit_1(invoke):
    result = invoke("replay", DATA / "formats.jsonl")
    assert result.exit_code == 1
    assert result.stderr == ""
    assert "11 lines read, 11 stored, 0 rejected, 6 failed requests" in result.stdout


def test_rejected_requests_file_lines_exit_1(invoke, clean_file, jsonl):
    requests = jsonl("requests.jsonl", [{"custom_id": "a", "body": {"model": "m", "messages": []}}])
    result = invoke("replay", clean_file, "--requests", requests)
    assert result.exit_code == 1
    assert f"rejected {requests}:1: messages must not be empty" in result.stderr
    assert f"requests {requests}: 1 read, 0 accepted, 1 rejected" in result.stdout


def test_more_than_fifty_rejects_are_summarised(invoke, jsonl):
    path = jsonl("junk.jsonl", ["[]"] * 60)
    result = invoke("replay", path)
    assert result.exit_code == 1
    err = result.stderr.splitlines()
    assert len(err) == 51
    assert err[49] == f"rejected {path}:50: not a JSON object (got an array)"
    assert err[50] == "... and 10 more rejected lines (see the rejects table)"


def test_missing_file_exits_2_and_stores_nothing(invoke, clean_file, tmp_path, user_error, db_path):
    result = invoke("replay", clean_file, tmp_path / "nope.jsonl")
    user_error(result, 2, f"{tmp_path / 'nope.jsonl'}: no such file")
    assert stored_runs(db_path) == []


def test_bad_tag_exits_2(invoke, clean_file, user_error, db_path):
    user_error(invoke("replay", clean_file, "--tag", "novalue"), 2, "--tag 'novalue': expected KEY=VALUE")
    user_error(invoke("replay", clean_file, "--tag", "=x"), 2, "--tag '=x': expected KEY=VALUE")


def test_malformed_price_file_exits_2_with_its_place(invoke, clean_file, tmp_path, user_error, db_path):
    bad = write_prices(tmp_path / "bad.csv", "gpt-4o,$1.25,5\n")
    result = invoke("--pricing", bad, "replay", clean_file)
    user_error(result, 2, f"{bad}:2:2: bad number '$1.25' for input_per_1m")
    # Prices are checked before the DB is touched.
    assert not db_path.exists()


def test_malformed_price_file_from_env_exits_2(invoke, tmp_path, user_error):
    bad = write_prices(tmp_path / "bad.csv", "gpt-4o,1,nan\n")
    user_error(invoke("summary", env={"COSTLENS_PRICING": str(bad)}), 2, f"{bad}:2:3:")


def test_replaying_again_exits_2_unless_forced(invoke, clean_file, user_error, db_path):
    assert invoke("replay", clean_file).exit_code == 0
    result = invoke("replay", clean_file)
    user_error(
        result,
        2,
        f"{clean_file} was already replayed into this database as run 1 (same sha256); "
        "use --force to replay it again",
    )
    assert [r[0] for r in stored_runs(db_path)] == [1]
    forced = invoke("replay", clean_file, "--force")
    assert forced.exit_code == 0
    assert len(stored_runs(db_path)) == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("summary", "--since", "yesterday"), "--since: 'yesterday' is not an ISO date or datetime"),
        (("export", "--format", "csv", "--out", "x.csv", "--until", "soon"), "--until: 'soon' is not an ISO"),
        (("summary", "--tag", "x"), "--tag 'x': expected KEY=VALUE"),
    ],
)
def test_bad_option_values_exit_2(invoke, user_error, args, fragment):
    user_error(invoke(*args), 2, fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("replay",), "Missing argument 'FILES...'. (see 'costlens replay --help')"),
        (("runs", "--limit", "0"), "Invalid value for '--limit': 0 is not in the range x>=1."),
        (("export", "--format", "xml", "--out", "x"), "Invalid value for '--format': 'xml' is not one of"),
        (("nope",), "No such command 'nope'. (see 'costlens --help')"),
        (("--db", ".", "summary"), "Invalid value for '--db': File '.' is a directory."),
        (("replay", "."), "Invalid value for 'FILES...': File '.' is a directory."),
    ],
)
def test_click_usage_errors_are_one_error_line_exit_2(invoke, args, fragment):
    """Click's own usage errors read like every other error: one `costlens: error:` line (issue 11)."""
    result = invoke(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("costlens: error: "), result.stderr
    assert fragment in result.stderr


def test_a_group_without_its_command_shows_its_help(invoke):
    result = invoke("pricing")
    assert result.exit_code == 2 and "Usage: costlens pricing" in result.output and "which" in result.output


def test_a_bug_exits_4_with_a_plain_message_and_traceback_only_with_debug(invoke, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli_module, "list_runs", boom)
    result = invoke("runs")
    assert result.exit_code == 4
    assert result.stderr == (
        "costlens: error: internal error: RuntimeError: boom (this is a bug; rerun with --debug for details)\n"
    )
    debug = invoke("--debug", "runs")
    assert debug.exit_code == 4
    assert "Traceback" in debug.stderr and "RuntimeError: boom" in debug.stderr


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"costlens, version {__version__}"


# --- JSON outputs ------------------------------------------------------------------------------


def test_replay_json_reports_counts_formats_and_rejects(invoke, jsonl, lines):
    path = jsonl("out.jsonl", [lines.openai("o"), lines.anthropic("a"), "[]", lines.chat()])
    result = invoke("replay", path, "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    (run,) = payload["runs"]
    assert {k: v for k, v in run.items() if k != "sha256"} == {
        "run_id": 1,
        "file": str(path),
        "lines_read": 4,
        "stored": 3,
        "rejected": 1,
        "failed": 0,
        "formats": {"anthropic_batch": 1, "chat_completion": 1, "openai_batch": 1},
        "rejects": [{"line": 3, "reason": "not a JSON object (got an array)"}],
    }
    assert payload["requests_file"] is None
    assert payload["summary"]["total"]["requests"] == 3


def test_summary_json_matches_a_hand_computation(invoke, priced_file):
    assert invoke("replay", priced_file).exit_code == 0
    result = invoke("summary", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)

    # gpt-4o-mini: $0.075 in / $0.30 out per 1M; no cached or reasoning price, so those tokens are
    # billed once, at the input and output price. Reported as gpt-4o-mini-2024-07-18 (an alias).
    mini_in, mini_out = 1124 * Decimal("0.075") * PER_1M, 215 * Decimal("0.30") * PER_1M
    # deepseek-chat: $0.007 / $0.014 per 1M; "deepseek/deepseek-chat" resolves by stripping the prefix.
    ds_in, ds_out = (1000 + 3) * Decimal("0.007") * PER_1M, (500 + 2) * Decimal("0.014") * PER_1M
    assert (plain(mini_in + mini_out), plain(ds_in + ds_out)) == ("0.0001488", "0.000014049")

    def model(name, requests, tokens, cached, reasoning, costs, priced, unpriced, unpriced_tokens):
        cost = None if costs is None else costs[0] + costs[1]
        return {
            "model": name,
            "requests": requests,
            "failed": 0,
            "input_tokens": tokens[0],
            "cached_tokens": cached,
            "cache_write_tokens": 0,
            "output_tokens": tokens[1],
            "reasoning_tokens": reasoning,
            "input_cost_usd": None if costs is None else plain(costs[0]),
            "output_cost_usd": None if costs is None else plain(costs[1]),
            "cost_usd": None if cost is None else plain(cost),
            "cost_per_1k_requests_usd": None if cost is None else plain(cost * 1000 / priced),
            "priced": priced,
            "unpriced": unpriced,
            "tier_fallback": 0,
            "priced_by_fallback_sheet": 0,
            "unpriced_tokens": unpriced_tokens,
            "reported": {  # no provider reported a cost here
                "requests": 0,
                "reported_cost_usd": None,
                "compared_requests": 0,
                "reported_compared_usd": None,
                "computed_compared_usd": None,
                "difference_usd": None,
            },
        }

    assert data == {
        "models": [
            model("gpt-4o-mini", 1, (1124, 215), 1024, 192, (mini_in, mini_out), 1, 0, 0),
            model("deepseek-chat", 2, (1003, 502), 0, 0, (ds_in, ds_out), 2, 0, 0),
            model("mystery-model", 1, (10, 10), 0, 0, None, 0, 1, 20),
        ],
        "total": model("TOTAL", 4, (2137, 727), 1024, 192, (mini_in + ds_in, mini_out + ds_out), 3, 1, 20),
        "simulated_runs": {"included": False, "runs": 0, "requests": 0},
    }
    assert data["total"]["cost_per_1k_requests_usd"] == "0.054283"


def test_summary_filters_by_model_run_and_tag(invoke, priced_file, clean_file):
    assert invoke("replay", priced_file, "--tag", "env=prod").exit_code == 0
    assert invoke("replay", clean_file, "--tag", "env=dev").exit_code == 0

    def total(*filters: str) -> int:
        result = invoke("summary", "--json", *filters)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)["total"]["requests"]

    by_model = json.loads(invoke("summary", "--json", "--model", "DEEPSEEK-CHAT").stdout)
    assert [m["model"] for m in by_model["models"]] == ["deepseek-chat"]
    assert by_model["total"]["requests"] == 3  # ds-1, ds-2 and clean file's "b"
    assert (total(), total("--run", "2"), total("--run", "1", "--run", "2")) == (6, 2, 6)
    assert (total("--tag", "env=prod"), total("--tag", "env=dev"), total("--tag", "env=qa")) == (4, 2, 0)
    assert total("--tag", "env=prod", "--model", "gpt-4o-mini") == 1


def test_extra_pricing_replaces_a_models_price(invoke, priced_file, tmp_path):
    invoke("replay", priced_file)
    layer = write_prices(tmp_path / "deepseek.csv", "deepseek-chat,1,2\n")
    result = invoke("--extra-pricing", layer, "summary", "--json", "--model", "deepseek-chat")
    assert result.exit_code == 0, result.stderr
    (ds,) = json.loads(result.stdout)["models"]
    assert (ds["input_cost_usd"], ds["output_cost_usd"], ds["cost_usd"]) == (
        plain(1003 * PER_1M * 1),
        plain(502 * PER_1M * 2),
        "0.002007",
    )
    # Without the layer the shipped price applies again: nothing was stored.
    shipped = json.loads(invoke("summary", "--json", "--model", "deepseek-chat").stdout)
    assert shipped["models"][0]["cost_usd"] == "0.000014049"


def test_pricing_replaces_the_shipped_table(invoke, priced_file, tmp_path):
    invoke("replay", priced_file)
    only = write_prices(tmp_path / "only.csv", "mystery-model,100000,0\n")
    data = json.loads(invoke("--pricing", only, "summary", "--json").stdout)
    assert {m["model"]: m["cost_usd"] for m in data["models"]} == {
        "mystery-model": "1",
        "gpt-4o-mini-2024-07-18": None,
        "deepseek-chat": None,
        "deepseek/deepseek-chat": None,
    }


def test_run_is_selected_by_its_uuid_or_a_prefix_of_it(invoke, clean_file, priced_file):
    invoke("replay", clean_file)
    invoke("replay", priced_file)
    runs = {r["run_id"]: r["run_uuid"] for r in json.loads(invoke("runs", "--json").stdout)}
    by_number = json.loads(invoke("summary", "--json", "--run", "2").stdout)
    for ref in (runs[2], runs[2][:8], runs[2].upper()):
        assert json.loads(invoke("summary", "--json", "--run", ref).stdout)["models"] == by_number["models"]
    assert by_number["models"] != json.loads(invoke("summary", "--json", "--run", "1").stdout)["models"]
    bad = invoke("summary", "--run", "abc")
    assert bad.exit_code == 2 and "--run 'abc': expected a run number" in bad.stderr


def test_runs_json_newest_first(invoke, clean_file, priced_file):
    tagged = invoke("replay", clean_file, "--run-name", "nightly", "--tag", "env=prod", "--tag", "team = ml")
    assert tagged.exit_code == 0
    assert invoke("replay", priced_file).exit_code == 0
    result = invoke("runs", "--json")
    assert result.exit_code == 0
    runs = json.loads(result.stdout)
    assert [r["run_id"] for r in runs] == [2, 1]
    first = runs[1]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", first["run_uuid"])
    assert first["run_uuid"] != runs[0]["run_uuid"]
    ignored = ("started_at", "finished_at", "cost_usd", "run_uuid")
    assert {k: first[k] for k in first if k not in ignored} == {
        "run_id": 1,
        "name": "nightly",
        "kind": "replay",
        "status": "completed",
        "source_file": str(clean_file),
        "lines_read": 2,
        "lines_stored": 2,
        "lines_rejected": 0,
        "tags": {"env": "prod", "team": "ml"},
        "requests": 2,
        "ok": 2,
        "failed": 0,
        "not_sent": 0,
        "models": ["deepseek-chat", "gpt-4o-mini"],
        "endpoint": None,
        "simulated": False,
    }
    assert len(first["started_at"]) == len("2024-01-01 00:00:00")
    assert runs[0]["cost_usd"] == "0.000162849"
    assert [r["run_id"] for r in json.loads(invoke("runs", "--json", "--limit", "1").stdout)] == [2]


def test_pricing_show_json_lists_the_nine_seed_models(invoke):
    result = invoke("pricing", "show", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {row["model"] for row in data["prices"]} == SEED_MODELS
    assert len(data["prices"]) == 9
    deepseek = next(r for r in data["prices"] if r["model"] == "deepseek-chat")
    assert (deepseek["input_per_1m"], deepseek["output_per_1m"], deepseek["service_tier"]) == (
        "0.007",
        "0.014",
        "standard",
    )
    assert data["sources"][0]["path"] == str(default_pricing_path())
    assert data["sources"][0]["rows"] == 9
    assert {"alias": "gpt-4o-mini-2024-07-18", "model": "gpt-4o-mini"} in data["aliases"]


def test_pricing_check_good_file(invoke, tmp_path):
    good = write_prices(tmp_path / "good.csv", "a-model,1,2\nb-model,0.5,1\n")
    result = invoke("pricing", "check", good)
    assert result.exit_code == 0
    assert result.stdout == f"{good}: OK, 2 price rows for 2 models\n"


def test_pricing_check_shipped_file(invoke):
    result = invoke("pricing", "check", default_pricing_path())
    assert result.exit_code == 0
    assert result.stdout.endswith(": OK, 9 price rows for 9 models\n")


@pytest.mark.parametrize(
    ("rows", "place"),
    [
        ("gpt-4o,1.25,abc\n", "2:3: "),
        ("x-model,1,2\ny-model,-1,2\n", "3:2: negative price '-1' for input_per_1m"),
        ("x-model,1,2,extra\n", "2:4: wrong number of fields"),
        (",1,2\n", "2:1: empty model"),
    ],
)
def test_pricing_check_bad_file_names_file_line_column(invoke, tmp_path, user_error, rows, place):
    bad = write_prices(tmp_path / "bad.csv", rows)
    user_error(invoke("pricing", "check", bad), 2, f"{bad}:{place}")


# --- where the DB is ---------------------------------------------------------------------------


def test_db_option_and_env(invoke, clean_file, tmp_path, db_path):
    assert invoke("replay", clean_file).exit_code == 0
    assert db_path.exists()  # COSTLENS_DB (set by the autouse fixture)
    other = tmp_path / "other.duckdb"
    assert invoke("--db", other, "replay", clean_file).exit_code == 0  # --db wins over the env
    assert len(stored_runs(other)) == 1 and len(stored_runs(db_path)) == 1
    assert json.loads(invoke("--db", other, "runs", "--json").stdout)[0]["source_file"] == str(clean_file)
    third = tmp_path / "third.duckdb"
    assert invoke("runs", env={"COSTLENS_DB": str(third)}).exit_code == 0
    assert third.exists()


def test_default_db_is_in_the_working_directory(invoke, tmp_path):
    assert invoke("runs", env={"COSTLENS_DB": None}).exit_code == 0
    assert (tmp_path / "costlens.duckdb").exists()


def test_db_in_a_missing_directory_exits_2(invoke, tmp_path, user_error):
    user_error(invoke("--db", tmp_path / "no" / "x.duckdb", "runs"), 2, "directory")


HOLD_DB = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1])
print("open", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
conn.close()
"""


def test_db_held_by_another_process_exits_2_without_traceback(invoke, db_path, user_error):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DB, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        result = invoke("summary")
        user_error(result, 2, f"database {db_path} is in use by another process", f"(process {holder.pid})")
        # The real entry point in a fresh process says the same.
        proc = subprocess.run(
            [sys.executable, "-m", "costlens", "runs"], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2
        assert proc.stderr.startswith("costlens: error: database ")
        assert "in use by another process" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert invoke("summary").exit_code == 0  # released


# --- secrets in the recorded command line ------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--api-key", "sk-abcdefgh12345678", "x.jsonl"], "costlens run --api-key '***' x.jsonl"),
        (["run", "--api-key=sk-abcdefgh12345678"], "costlens run '--api-key=***'"),
        (["run", "--api-key-env", "OPENAI_API_KEY"], "costlens run --api-key-env OPENAI_API_KEY"),
        (["run", "--auth-token", "abc", "--password", "hunter2"], "costlens run --auth-token '***' --password '***'"),
        (["replay", "--run-name", "sk-proj-AbCdEfGh_1234"], "costlens replay --run-name '***'"),
        (["replay", "--run-name", "key sk-abcdefgh12345678 end"], "costlens replay --run-name 'key *** end'"),
        (["run", "-H", "Authorization: Bearer abc.def"], "costlens run -H 'Authorization: ***'"),
        (["replay", "f.jsonl", "--tag", "team=sk-ai"], "costlens replay f.jsonl --tag team=sk-ai"),
        # Gateways take keys in the URL: its userinfo and query are dropped (found by tests/reliability).
        (["run", "--base-url", "https://u:hunter2@gw.local/v1?key=hunter2"],
         "costlens run --base-url 'https://***@gw.local/v1?***'"),
        (["run", "--base-url=http://gw.local:8080/v1"], "costlens run --base-url=http://gw.local:8080/v1"),
        (["run", "--base-url=http://hunter2@gw.local/v1"], "costlens run '--base-url=http://***@gw.local/v1'"),
    ],
)  # fmt: skip
def test_redacted_command_line(argv, expected):
    assert redacted_command_line(argv) == expected
    assert "hunter2" not in expected and "sk-abcdefgh" not in expected


def test_api_key_env_with_equals_keeps_the_variable_name():
    assert redacted_command_line(["run", "--api-key-env=OPENAI_API_KEY"]) == (
        "costlens run --api-key-env=OPENAI_API_KEY"
    )


def test_max_tokens_value_is_not_a_secret():
    assert redacted_command_line(["run", "--max-tokens", "100"]) == "costlens run --max-tokens 100"


def test_replay_records_the_redacted_command_line(invoke, clean_file, db_path):
    assert invoke("replay", clean_file, "--run-name", "sk-abcdefgh12345678").exit_code == 0
    [(run_id, name, command_line)] = stored_runs(db_path)
    assert name == "sk-abcdefgh12345678"  # the name itself is data, stored as given
    assert command_line == shlex.join(["costlens", "replay", str(clean_file), "--run-name", "***"])


# --- help text ---------------------------------------------------------------------------------


def _walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(cli))


def test_every_command_is_walked():
    assert [" ".join(p) for p, _ in COMMANDS] == [
        "", "estimate", "export", "pricing", "pricing check", "pricing diff", "pricing import", "pricing show",
        "pricing which", "publish", "reconcile", "replay", "report", "run", "runs", "serve-sim", "summary",
    ]  # fmt: skip


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "costlens" for p, _ in COMMANDS])
def test_every_command_and_option_has_help(invoke, path, command):
    assert command.help and command.help.strip(), f"costlens {' '.join(path)} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"costlens {' '.join(path)} {param.opts[0]} has no help text"
    result = invoke(*path, "--help")
    assert result.exit_code == 0
    assert command.help.split("\n")[0].strip()[:40] in " ".join(result.stdout.split())


def test_a_reader_that_goes_away_is_not_an_internal_error(tmp_path):
    """`costlens pricing show | head -1`: exit 141 (128 + SIGPIPE) and nothing on stderr, not exit 4."""
    import subprocess

    exe = Path(sys.executable).parent / "costlens"
    proc = subprocess.Popen(
        [str(exe), "--fallback-pricing", "genai-prices", "pricing", "show"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader is gone before costlens has written its ~3,000 rows
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "internal error" not in err and "Traceback" not in err
