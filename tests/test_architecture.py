"""The core never imports Click, and the import-linter contract covers every core module.

An AST scan catches any ``import click`` (including lazy, function-level ones), and the
contract check makes sure a new module cannot be added without being listed in
``source_modules`` — otherwise it would silently escape ``lint-imports``.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "costlens"
# Only these may import click: the CLI and the ``python -m costlens`` shim that runs it.
CLI_MODULES = {"costlens.cli", "costlens.__main__"}
FORBIDDEN = {"click", "costlens.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return found


def core_modules() -> dict[str, Path]:
    modules = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    return {name: path for name, path in modules.items() if name not in CLI_MODULES}


def contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (found,) = [c for c in config["contracts"] if set(c.get("forbidden_modules", ())) >= FORBIDDEN]
    return found


def test_the_scan_sees_the_package():
    modules = core_modules()
    assert {"costlens", "costlens.replay", "costlens.store", "costlens.export"} <= set(modules)
    assert "costlens.cli" not in modules
    assert "click" in imported_modules(PACKAGE / "cli.py")


def test_the_scan_finds_every_kind_of_import(tmp_path, monkeypatch):
    pkg = tmp_path / "costlens"
    pkg.mkdir()
    sample = pkg / "sample.py"
    sample.write_text(
        "import click.testing\n"
        "from . import cli\n"
        "def later():\n"
        "    from click import echo\n"
        "    import importlib; importlib.import_module('rich')\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert {"click.testing", "costlens.cli", "click", "rich"} <= imported_modules(sample)


@pytest.mark.parametrize("name", sorted(core_modules()))
def test_core_module_does_not_import_click_or_the_cli(name):
    path = core_modules()[name]
    bad = {
        imported
        for imported in imported_modules(path)
        if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not bad, f"{name} imports {sorted(bad)}: the core must not depend on Click or costlens.cli"


def test_every_core_module_is_in_the_import_linter_contract():
    """A new module that is not listed would escape lint-imports."""
    listed = set(contract()["source_modules"])
    # The package root cannot be a source module: as a package it would include costlens.cli.
    expected = set(core_modules()) - {"costlens"}
    missing = sorted(expected - listed)
    assert not missing, f"add {missing} to source_modules in pyproject.toml"
    stale = sorted(listed - expected)
    assert not stale, f"source_modules lists modules that do not exist: {stale}"


def test_contract_forbids_click_and_the_cli():
    found = contract()
    assert found["type"] == "forbidden"
    assert set(found["forbidden_modules"]) == FORBIDDEN


def _lint_imports() -> str | None:
    venv = Path(sys.executable).parent / "lint-imports"
    return str(venv) if venv.exists() else shutil.which("lint-imports")


@pytest.mark.skipif(_lint_imports() is None, reason="import-linter is not installed")
def test_lint_imports_passes(tmp_path):
    proc = subprocess.run(
        [_lint_imports(), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b0 broken", proc.stdout), proc.stdout
