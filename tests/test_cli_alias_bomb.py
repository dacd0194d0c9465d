"""A 407-byte YAML alias bomb (tests/alias_bomb.yaml: nine levels of nine aliases, 9**9 values
when expanded) in each place a config is read: ``fit -c``, ``--set`` and the config stored in a
weights.npz that ``evaluate`` reads. Each is refused at once with one line; the commands run in
a subprocess with a timeout, so a regression fails instead of hanging the test session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from svmtrain.data.preprocess import PIXELS, PixelTransform
from svmtrain.model import LinearModel

BOMB_FILE = Path(__file__).resolve().parent / "alias_bomb.yaml"
BOMB = BOMB_FILE.read_text()
# The bomb's value of train.sampling, for --set.
BOMB_VALUE = BOMB.removeprefix("train: {sampling: ").removesuffix("}\n")
REFUSED = "YAML anchors and aliases are not allowed in a config; found '&l0' at line 1, column "


def _svmtrain(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "svmtrain", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_the_bomb_is_the_one_from_the_issue():
    assert len(BOMB.encode()) == 407
    assert BOMB.count("*l") == 8 * 9 and BOMB_VALUE.startswith("[&l0 [lol,")


@pytest.mark.parametrize(
    ("args", "where", "column"),
    [
        (["-c", str(BOMB_FILE)], f"{BOMB_FILE}: ", 20),
        (["--set", f"train.sampling={BOMB_VALUE}"], "--set 'train.sampling=", 2),
    ],
    ids=["fit -c", "fit --set"],
)
def test_fit_refuses_the_bomb(tmp_path, args, where, column):
    done = _svmtrain("fit", *args, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {where}")
    assert f"{REFUSED}{column}. " in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", ["0.1.0", "now"])
def test_evaluate_refuses_a_weights_file_carrying_the_bomb(tmp_path, version):
    """In a weights file of release 0.1.0 (whose loss is read from its config) and of now."""
    path = tmp_path / "weights.npz"
    W, names = np.zeros((2, PIXELS + 1), np.float32), ("cat", "dog")
    mean, scale = np.zeros(PIXELS, np.float32), np.ones(PIXELS, np.float32)
    if version == "0.1.0":
        np.savez(
            path, W=W, mean=mean, scale=scale, class_names=np.array(names), config=np.array(BOMB)
        )
    else:
        LinearModel(W, PixelTransform(mean, scale), names, "svm", config_yaml=BOMB).save(path)
    before = path.read_bytes()
    done = _svmtrain(
        "evaluate", "-w", str(path), "--data-dir", str(tmp_path / "data"), cwd=tmp_path
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: the config stored in {path}: {REFUSED}20. ")
    assert done.stderr.count("\n") == 1
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.npz"]
