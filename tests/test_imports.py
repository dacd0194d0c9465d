"""What an import pulls in: the config and the package itself stay light.

Each import runs in a fresh interpreter, so modules loaded by other tests do not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

THIRD_PARTY = ("numpy", "yaml", "requests", "tqdm", "click", "matplotlib", "sklearn")
# The layers above the config: data, experiments and the CLI.
ABOVE_CONFIG = ("svmtrain.data", "svmtrain.experiments", "svmtrain.cli")


def _loaded_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout))


def _matching(modules: set[str], roots: tuple[str, ...]) -> set[str]:
    return {m for m in modules if any(m == r or m.startswith(r + ".") for r in roots)}


def test_import_svmtrain_loads_nothing_heavy():
    loaded = _loaded_after("import svmtrain")
    assert _matching(loaded, THIRD_PARTY) == set()
    assert {m for m in loaded if m.startswith("svmtrain.")} == set()


@pytest.mark.parametrize("statement", ["import svmtrain.config", "from svmtrain import config"])
def test_import_config_loads_no_data_code_nor_downloader(statement):
    loaded = _loaded_after(statement)
    assert "svmtrain.config" in loaded
    assert _matching(loaded, ("requests", "tqdm", "click", "matplotlib")) == set()
    assert _matching(loaded, ABOVE_CONFIG) == set()
