"""The arrows between svmtrain's parts point one way: each part imports only parts below it.

From the bottom: errors and fileio (the foundation), core (the math), config, data, features,
model, io (what runs write and read back), experiments (the jobs), cli, and the package's own
``__init__``/``__main__`` (the Python API and ``python -m svmtrain``). README's "Development"
section draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "svmtrain"
LAYERS = [
    ("errors", "fileio"),
    ("core",),
    ("config",),
    ("data",),
    ("features",),
    ("model",),
    ("io",),
    ("experiments",),
    ("cli", "sklearn"),
    ("__init__", "__main__"),
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _part(dotted: str) -> str:
    """The part of svmtrain a dotted module name belongs to: 'svmtrain.data.cache' -> 'data'."""
    names = dotted.split(".")
    return names[1] if len(names) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, part) for every import of svmtrain in ``path``, at any depth (lazy ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "svmtrain":
                # "from svmtrain import __version__" reads the root's metadata, no layer.
                found += [
                    (node.lineno, alias.name) for alias in node.names if alias.name != "__version__"
                ]
            elif node.module.startswith("svmtrain."):
                found.append((node.lineno, _part(node.module)))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, _part(alias.name))
                for alias in node.names
                if alias.name.startswith("svmtrain.")
            ]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_layer():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in MODULES}
    assert parts - {"configs"} <= set(RANK), sorted(parts - set(RANK))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if here not in RANK:
        pytest.skip(f"{here} holds no code of a layer")
    upward = [
        f"line {line}: {here} imports {there}"
        for line, there in _imports(path)
        if there in RANK and RANK[there] > RANK[here]
    ]
    assert not upward, upward
