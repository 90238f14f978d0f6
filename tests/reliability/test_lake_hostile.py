"""Hostile lake input: a directory lake whose manifests or Parquet files were damaged or forged
outside costlens. Every reader (summary, export, report, reconcile over --lake) must answer with one
``costlens: error:`` line naming what is wrong (exit 2), never a traceback, never figures summed
from a file no manifest vouches for; and ``publish`` from the run's DB must repair the damage (the
lake then gives the DB's figures again).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
OPENAI = SAMPLES / "openai_batch_output_gpt-4o-mini.jsonl"
ANTHROPIC = SAMPLES / "anthropic_batch_results_claude-3-5-haiku.jsonl"
USAGE_PAGE = ROOT / "tests" / "data" / "reconcile" / "openai_usage_page.json"

READERS: tuple[tuple[str, ...], ...] = (
    ("summary", "--json"),
    ("export", "--format", "csv", "--out", "{out}/x.csv"),
    ("report", "--format", "json", "--out", "{out}/r.json"),
    ("reconcile", str(USAGE_PAGE)),
)


def _manifests(lake: Path) -> list[Path]:
    return sorted((lake / "manifests").glob("*.json"))


def _doc(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], str]:
    def damage(lake: Path) -> str:
        path = _manifests(lake)[0]
        doc = _doc(path)
        change(doc)
        path.write_text(json.dumps(doc))
        return path.name

    return damage


def _write(data: bytes) -> Callable[[Path], str]:
    def damage(lake: Path) -> str:
        path = _manifests(lake)[0]
        path.write_bytes(data)
        return path.name

    return damage


def _truncate_manifest(lake: Path) -> str:
    path = _manifests(lake)[0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path.name


def _first_file(doc: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in doc["files"] if f["table"] == "requests")


def _set_path(path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        _first_file(doc)["path"] = path

    return change


def _copied_under_another_name(lake: Path) -> str:
    """A run's manifest copied under a made-up run's name: its rows would count twice."""
    first = _manifests(lake)[0]
    shutil.copy(first, lake / "manifests" / "run=00000000-0000-4000-8000-000000000000.json")
    return "run=00000000-0000-4000-8000-000000000000.json"


def _listing_the_other_runs_file(lake: Path) -> str:
    one, two = _manifests(lake)
    doc = _doc(one)
    doc["files"].append(_first_file(_doc(two)))
    one.write_text(json.dumps(doc))
    return one.name


def _parquet(action: str) -> Callable[[Path], str]:
    def damage(lake: Path) -> str:
        rel = _first_file(_doc(_manifests(lake)[0]))["path"]
        path = lake / rel
        data = path.read_bytes()
        if action == "truncate":
            path.write_bytes(data[: len(data) // 2])
        elif action == "delete":
            path.unlink()
        elif action == "garbage":  # the same size, so only reading it can tell
            path.write_bytes(b"\x00" * len(data))
        elif action == "footer":  # the last bytes (Parquet's footer length and magic) overwritten
            path.write_bytes(data[:-8] + b"XXXXXXXX")
        return rel.rsplit("/", 1)[-1]

    return damage


CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    # case: (damage -> the name the error must give, a fragment of the reason)
    "manifest not JSON": (_write(b"this is not json"), "not a costlens manifest"),
    "manifest empty": (_write(b""), "not a costlens manifest"),
    "manifest truncated": (_truncate_manifest, "not a costlens manifest"),
    "manifest not UTF-8": (
        _write(b'{"schema_version": 1, "run_uuid": "\xff\xfe"}'),
        "not a costlens manifest",
    ),
    "manifest nested 100,000 deep": (_write(b"[" * 100_000 + b"]" * 100_000), "not a costlens manifest"),
    "manifest a list": (_write(b"[1, 2, 3]"), "not a costlens manifest"),
    "manifest from a newer costlens": (_edit(lambda d: d.update(schema_version=99)), "upgrade costlens"),
    "manifest files a string": (_edit(lambda d: d.update(files="everything")), "not a costlens manifest"),
    "manifest rows not a number": (_edit(lambda d: d.update(rows="many")), "not a costlens manifest"),
    "manifest rows Infinity": (_write(b'{"schema_version": 1, "rows": Infinity}'), "not a costlens manifest"),
    "manifest file rows 1e400": (
        _edit(lambda d: _first_file(d).update(rows=10**400)),
        "not a costlens manifest",
    ),
    "manifest lists ../ outside the lake": (
        _edit(_set_path("requests/../../../etc/passwd")),
        "unexpected file",
    ),
    "manifest lists an absolute path": (_edit(_set_path("/etc/passwd")), "unexpected file"),
    "manifest lists a NUL byte": (
        _edit(_set_path("requests/day=2024-01-01/a\x00.parquet")),
        "unexpected file",
    ),
    "manifest lists a table it has not": (
        _edit(lambda d: _first_file(d).update(table="secrets")),
        "unexpected",
    ),
    "manifest copied under another run's name": (_copied_under_another_name, "not of the run its name says"),
    "manifest lists another run's file": (_listing_the_other_runs_file, "not a file of this run"),
    "parquet truncated": (_parquet("truncate"), "changed outside costlens"),
    "parquet deleted": (_parquet("delete"), "is missing"),
    "parquet zeroed (same size)": (_parquet("garbage"), "cannot read it"),
    "parquet footer overwritten (same size)": (_parquet("footer"), "cannot read it"),
}


@pytest.fixture
def published(invoke, tmp_path) -> tuple[Path, dict[str, Any]]:
    assert invoke("replay", OPENAI).exit_code in (0, 1)
    assert invoke("replay", ANTHROPIC, "--model", "claude-3-5-haiku-20241022").exit_code in (0, 1)
    lake = tmp_path / "lake"
    assert invoke("publish", "--lake", lake).exit_code == 0
    return lake, json.loads(invoke("summary", "--json").stdout)


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_lake_is_one_clear_error_and_publish_repairs_it(invoke, published, tmp_path, case, figure):
    lake, db_summary = published
    damage, reason = CASES[case]
    named = damage(lake)
    out = tmp_path / "out"
    out.mkdir()
    for reader in READERS:
        args = [a.format(out=out) for a in reader]
        result = invoke(*args, "--lake", lake)
        output = result.stdout + result.stderr
        assert "Traceback" not in output, (case, reader, output)
        assert result.exit_code == 2, (case, reader, result.exit_code, output)
        (line,) = result.stderr.splitlines()
        assert line.startswith("costlens: error: lake") or line.startswith(f"costlens: error: {lake}"), line
        assert reason in line, (case, line)
        assert named.replace("\x00", "") in line or reason == "cannot read it", (case, named, line)
        assert not (out / "x.csv").exists() and not (out / "r.json").exists()
    # Re-publishing from the runs' DB repairs the lake: the DB's figures again, nothing doubled.
    # (A manifest forged under a name no run has is not any DB's to repair: its owner deletes it.)
    (lake / "manifests" / "run=00000000-0000-4000-8000-000000000000.json").unlink(missing_ok=True)
    repair = invoke("publish", "--lake", lake, "--json")
    assert repair.exit_code == 0, (case, repair.stdout, repair.stderr)
    actions = sorted(r["action"] for r in json.loads(repair.stdout)["runs"])
    forged = case == "manifest copied under another run's name"  # no run of the DB was damaged
    assert actions == (["unchanged", "unchanged"] if forged else ["repaired", "unchanged"]), (case, actions)
    again = invoke("summary", "--json", "--lake", lake)
    assert again.exit_code == 0, (case, again.stderr)
    assert json.loads(again.stdout) == db_summary, case
    if case == list(CASES)[-1]:
        figure(
            "lake hostile input: a directory lake with a damaged or forged manifest (not JSON, empty, "
            "truncated, not UTF-8, nested 100,000 deep, a list, a newer schema, wrong types, Infinity, "
            "a count of 10^400, paths with ../, absolute, a NUL byte, an unknown table, copied under another "
            "run's name, listing another run's file) or Parquet file (truncated, deleted, zeroed, footer "
            "overwritten) x summary, export, report, reconcile over --lake; then publish from the DB",
            cases=len(CASES) * len(READERS),
            held="one `costlens: error:` line each (exit 2) naming the manifest or file and why, no "
            "traceback, no output file written; publish repaired every case (the DB's figures again)",
        )
