"""The suite passes every time or fails every time: checks on the tests themselves.

A test that can pass or fail by chance teaches nothing, so:
- property tests draw the same examples every run under the default ``ci`` Hypothesis profile
  (``make test``); the random ``thorough`` one is opt-in (``make test-thorough``);
- nothing costlens needs to run (its own modules, its runtime dependencies) is imported with
  ``pytest.importorskip``: missing, it must fail the suite, not quietly skip tests;
- random choices (a kill point, say) come from seeded generators;
- no test sleeps a guessed time: ``time.sleep`` only inside a loop that polls a condition;
- no unit test puts an upper bound on wall-clock time (speed belongs in bench/);
- expected token counts come from tiktoken (``helpers.reference_*``) or literals, never from
  ``costlens.tokens`` itself: only tests/test_tokens.py, which tests that module, imports it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TEST_FILES = sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)
CLOCKS = {"perf_counter", "monotonic", "time", "perf_counter_ns", "monotonic_ns", "time_ns"}
GLOBAL_RANDOM = {"random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform"}


def parsed() -> Iterator[tuple[str, ast.Module]]:
    for path in TEST_FILES:
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"), str(path))


def dotted(node: ast.AST) -> str:
    """``time.sleep`` for the expression ``time.sleep``; "" for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def calls(tree: ast.Module) -> Iterator[tuple[ast.Call, list[ast.AST]]]:
    """Every call with its ancestors, innermost last."""

    def walk(node: ast.AST, ancestors: list[ast.AST]) -> Iterator[tuple[ast.Call, list[ast.AST]]]:
        if isinstance(node, ast.Call):
            yield node, ancestors
        for child in ast.iter_child_nodes(node):
            yield from walk(child, [*ancestors, node])

    yield from walk(tree, [])


# --- Hypothesis profiles ---------------------------------------------------------------------------


def test_the_ci_profile_is_fixed_and_the_default() -> None:
    ci = settings.get_profile("ci")
    assert (ci.derandomize, ci.database, ci.deadline, ci.print_blob) == (True, None, None, True)
    assert HealthCheck.too_slow in ci.suppress_health_check  # a wall-clock check: off
    thorough = settings.get_profile("thorough")
    assert not thorough.derandomize and thorough.max_examples > ci.max_examples
    assert thorough.deadline is None
    if "HYPOTHESIS_PROFILE" not in os.environ:
        assert (settings().derandomize, settings().max_examples) == (True, ci.max_examples)


def test_the_ci_profile_draws_the_same_examples_every_run() -> None:
    def draws() -> list[int]:
        seen: list[int] = []

        @settings(settings.get_profile("ci"), max_examples=30)
        @given(st.integers())
        def record(value: int) -> None:
            seen.append(value)

        record()
        return seen

    first = draws()
    assert len(first) == 30 and draws() == first


# --- imports, randomness, sleeps, clocks -----------------------------------------------------------


def runtime_imports() -> set[str]:
    """Top-level import names of costlens and of every runtime dependency in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {
        re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in project["dependencies"]
    }
    names = {"costlens"}
    for module, dists in importlib.metadata.packages_distributions().items():
        if any(d.lower().replace("_", "-") in wanted for d in dists):
            names.add(module)
    return names


def test_nothing_costlens_needs_is_importorskipped() -> None:
    needed = runtime_imports()
    assert {"costlens", "duckdb", "quicktok", "httpx"} <= needed
    found = [
        f"{name}:{call.lineno} importorskip({call.args[0].value!r})"
        for name, tree in parsed()
        for call, _ in calls(tree)
        if dotted(call.func).endswith("importorskip")
        and call.args
        and isinstance(call.args[0], ast.Constant)
        and str(call.args[0].value).split(".")[0] in needed
    ]
    assert not found, f"import these normally (a missing one must fail, not skip): {found}"


def test_random_choices_are_seeded() -> None:
    found = []
    for name, tree in parsed():
        for call, _ in calls(tree):
            func = dotted(call.func)
            unseeded_generator = (
                func in ("random.Random", "Random", "np.random.default_rng") and not call.args
            )
            global_state = (
                func.startswith(("random.", "np.random.")) and func.rsplit(".", 1)[1] in GLOBAL_RANDOM
            )
            if unseeded_generator or global_state:
                found.append(f"{name}:{call.lineno} {func}()")
    assert not found, f"draw from a seeded generator (and print the seed): {found}"


def test_sleeps_only_poll_a_condition() -> None:
    found = [
        f"{name}:{call.lineno}"
        for name, tree in parsed()
        for call, ancestors in calls(tree)
        if dotted(call.func) == "time.sleep" and not any(isinstance(a, ast.While) for a in ancestors)
    ]
    assert not found, f"wait on a state (helpers.wait_until), not a guessed time: {found}"


def _is_elapsed(node: ast.AST, elapsed_names: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in elapsed_names
    return (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Sub)
        and isinstance(node.left, ast.Call)
        and dotted(node.left.func).rsplit(".", 1)[-1] in CLOCKS
    )


def test_no_unit_test_bounds_wall_clock_time_from_above() -> None:
    found = []
    for name, tree in parsed():
        elapsed_names = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and _is_elapsed(node.value, set())
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, sides[:-1], sides[1:], strict=True):
                below = isinstance(op, ast.Lt | ast.LtE) and _is_elapsed(left, elapsed_names)
                above = isinstance(op, ast.Gt | ast.GtE) and _is_elapsed(right, elapsed_names)
                if below or above:
                    found.append(f"{name}:{node.lineno}")
    assert not found, f"a time limit fails on a slow machine; measure it in bench/ instead: {found}"


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(TESTS)))
def test_expected_token_counts_do_not_come_from_costlens_tokens(path: Path) -> None:
    if path.name == "test_tokens.py":
        return  # the module under test there
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.ImportFrom) and node.module == "costlens.tokens")
        or (
            isinstance(node, ast.ImportFrom)
            and node.module == "costlens"
            and any(alias.name == "tokens" for alias in node.names)
        )
        or (isinstance(node, ast.Import) and any(alias.name == "costlens.tokens" for alias in node.names))
    ]
    assert not imports, f"lines {imports}: count with helpers.reference_count / reference_prompt_tokens"
