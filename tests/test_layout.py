"""The layout rules of DESIGN.md and docs/layout.md, checked on the source tree itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("datasets", "clients", "server", "simulation", "coverage_psi")
# package -> top-level packages of this project it must never import (the coverage use case reuses
# datasets/ and simulation/, DESIGN.md, and has nothing to do with the federated apps)
FORBIDDEN = {"datasets": {"clients", "server", "simulation", "coverage_psi"},
             "clients": {"server", "simulation", "coverage_psi"}, "server": {"simulation", "coverage_psi"},
             "coverage_psi": {"clients", "server"}}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def _imports(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_respects_import_direction_and_size(path):
    text = path.read_text()
    tree = ast.parse(text)
    pkg = path.relative_to(ROOT).parts[0]
    bad = _imports(tree) & FORBIDDEN.get(pkg, set())
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; data flows one way (DESIGN.md)"
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_every_module_says_what_it_is_for():
    missing = [str(p.relative_to(ROOT)) for p in _modules() if ast.get_docstring(ast.parse(p.read_text())) is None
               and p.read_text().strip()]
    assert not missing, f"modules without a docstring: {missing}"
