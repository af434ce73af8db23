"""The package layout: small modules, packages that say what they may import, and no module
reaching into another's private helpers (the layers themselves are checked by import-linter,
`make lint`)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "layersim"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 600


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_600_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines; split it by job"


def test_every_subpackage_says_what_it_may_import() -> None:
    packages = [p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()]
    assert {p.name for p in packages} >= {"cka", "results", "stats", "tasks", "models"}
    for package in packages:
        if package.name == "cka":  # the core: its own contract (imports nothing of layersim)
            continue
        assert "May import" in (package / "__init__.py").read_text(encoding="utf-8"), package.name


def _private_imports(path: Path) -> list[str]:
    """`from layersim.x import _y` and `module._y` where `module` was imported from layersim."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("layersim"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"from {node.module} import {alias.name}")
                modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_imports_private_names_of_another() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): names
        for path in MODULES
        if (names := _private_imports(path))
    }
    assert offenders == {}


def test_the_private_import_check_finds_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from layersim.stats import blocks\nfrom layersim.cka import _x\nblocks._y\n")
    assert _private_imports(bad) == ["from layersim.cka import _x", "blocks._y"]
