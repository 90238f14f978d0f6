"""`--fail-on` lets a cron job choose which outcomes fail it; the default is the old behaviour."""

from __future__ import annotations

import pytest
from helpers import Lines, write_jsonl

L = Lines()


@pytest.fixture
def rejected_only(tmp_path):
    return write_jsonl(tmp_path / "rej.jsonl", [L.openai("a"), "{not json"])


@pytest.fixture
def failed_only(tmp_path):
    return write_jsonl(tmp_path / "err.jsonl", [L.openai("b"), L.openai("c", status_code=500)])


@pytest.mark.parametrize(
    ("fail_on", "rejected_exit", "failed_exit"),
    [
        (None, 1, 1),  # the default: rejects,errors,unsent
        ("rejects,errors,unsent", 1, 1),
        ("errors", 0, 1),
        ("rejects", 1, 0),
        ("none", 0, 0),
        (" Errors , rejects ", 1, 1),
    ],
)
def test_fail_on_picks_what_exits_1(invoke, rejected_only, failed_only, fail_on, rejected_exit, failed_exit):
    g = [] if fail_on is None else ["--fail-on", fail_on]
    assert invoke(*g, "replay", rejected_only).exit_code == rejected_exit
    assert invoke(*g, "replay", failed_only).exit_code == failed_exit


def test_fail_on_from_the_environment(invoke, rejected_only):
    assert invoke("replay", rejected_only, env={"COSTLENS_FAIL_ON": "none"}).exit_code == 0


def test_everything_is_recorded_whatever_fail_on_says(invoke, rejected_only):
    assert invoke("--fail-on", "none", "replay", rejected_only, "--json").exit_code == 0
    import json

    (run,) = json.loads(invoke("runs", "--json").stdout)
    assert (run["lines_read"], run["lines_stored"], run["lines_rejected"]) == (2, 1, 1)


@pytest.mark.parametrize("value", ["warnings", "", "none,errors"])
def test_a_bad_fail_on_is_a_usage_error(invoke, user_error, rejected_only, value):
    user_error(invoke("--fail-on", value, "replay", rejected_only), 2, "--fail-on")
