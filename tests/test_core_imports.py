"""The math core (svmtrain/core/) imports nothing of svmtrain but svmtrain.errors, and of the
outside world only the standard library and numpy: read from the source with ast, so that what
svmtrain/__init__.py happens to import does not blur it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import svmtrain.core

CORE = Path(svmtrain.core.__file__).parent
ALLOWED_THIRD_PARTY = {"numpy"}


def _imports(path: Path) -> set[str]:
    """The absolute names of the modules ``path`` imports (relative imports resolved)."""
    package = "svmtrain.core"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            if node.module:
                names.add(f"{base}.{node.module}" if base else node.module)
            else:  # from . import x
                names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


CORE_MODULES = sorted(CORE.glob("*.py"))


def test_the_core_has_its_modules():
    assert {p.stem for p in CORE_MODULES} >= {"losses", "differences", "fd_error", "gradcheck"}


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda p: p.name)
def test_core_module_imports_only_errors_numpy_and_the_standard_library(path):
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "svmtrain":
            assert name == "svmtrain.errors" or name.startswith("svmtrain.core."), name
        else:
            assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, name


def test_the_check_itself_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from svmtrain.config import Config\nfrom . import losses\nimport tqdm\n")
    assert _imports(bad) == {"svmtrain.config", "svmtrain.core.losses", "tqdm"}
