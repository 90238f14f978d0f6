"""The core never imports Click, the import-linter contracts cover every core module, and the
folder tree is the architecture (layers that import one way).

An AST scan catches any ``import click`` (including lazy, function-level ones), and the
contract check makes sure a new module cannot be added without being covered by
``source_modules`` and the layers — otherwise it would silently escape ``lint-imports``.
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
CLI_PACKAGE = "costlens.cli"
# Modules at the package root that belong to no layer: shared leaves and the package itself.
ROOT_MODULES = {
    "costlens", "costlens.__main__", "costlens.errors", "costlens.inert", "costlens.tokens", "costlens.session",
}  # fmt: skip
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


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_cli(name: str) -> bool:
    return name == CLI_PACKAGE or name.startswith(CLI_PACKAGE + ".") or name == "costlens.__main__"


def core_modules() -> dict[str, Path]:
    return {name: path for name, path in all_modules().items() if not is_cli(name)}


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return list(config["contracts"])


def contract() -> dict:
    (found,) = [c for c in contracts() if set(c.get("forbidden_modules", ())) >= FORBIDDEN]
    return found


def covered(name: str, listed: set[str]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in listed)


def test_the_scan_sees_the_package():
    modules = core_modules()
    assert {"costlens", "costlens.ingest.replay", "costlens.store.db", "costlens.report.export"} <= set(
        modules
    )
    assert "costlens.cli" not in modules and "costlens.cli.run" not in modules
    assert "click" in imported_modules(PACKAGE / "cli" / "__init__.py")


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
    """A new module that is not covered would escape lint-imports."""
    listed = set(contract()["source_modules"])
    # The package root cannot be a source module: as a package it would include costlens.cli.
    expected = set(core_modules()) - {"costlens"}
    missing = sorted(name for name in expected if not covered(name, listed))
    assert not missing, f"add {missing} (or their package) to source_modules in pyproject.toml"
    stale = sorted(m for m in listed if m not in all_modules())
    assert not stale, f"source_modules lists modules that do not exist: {stale}"


def test_every_module_sits_in_a_layer_or_is_a_shared_leaf():
    """The folder tree is the architecture: each subpackage is a layer of the layers contract."""
    (layers,) = [c for c in contracts() if c["type"] == "layers"]
    assert layers["containers"] == ["costlens"]
    names = {part.strip() for layer in layers["layers"] for part in layer.split("|")}
    strays = sorted(
        name for name in all_modules() if name not in ROOT_MODULES and name.split(".")[1] not in names
    )
    assert not strays, f"{strays} belong to no layer: move them into a layer or list them as a shared leaf"
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert subpackages == names - {"session"}, "every subpackage is a layer and every layer exists"
    # The order, top to bottom, is the data's path read backwards.
    assert layers["layers"][0] == "cli" and layers["layers"][-1] == "store"


def test_contract_forbids_click_and_the_cli():
    found = contract()
    assert found["type"] == "forbidden"
    assert set(found["forbidden_modules"]) == FORBIDDEN


def _lint_imports() -> str | None:
    venv = Path(sys.executable).parent / "lint-imports"
    return str(venv) if venv.exists() else shutil.which("lint-imports")


def test_lint_imports_passes(tmp_path):
    # import-linter is a dev dependency (`make test` installs it): missing, it is a broken setup to
    # fail on, not a reason to skip the contracts.
    lint_imports = _lint_imports()
    assert lint_imports is not None, "lint-imports not found: pip install -e '.[dev]'"
    proc = subprocess.run(
        [lint_imports, "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b0 broken", proc.stdout), proc.stdout
