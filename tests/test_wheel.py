"""svmtrain works without a checkout: the wheel carries every subpackage and the configs, and
installed into a fresh venv outside the repository it trains ``fit -c quick``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from svmtrain.cli import main
from svmtrain.config import config_from_yaml, load_config

REPO = Path(__file__).resolve().parent.parent
# What a build must not see: environments, caches, earlier builds.
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".cache", "runs"
)
SHRINK = [  # quick.yaml asks for 5,000 training images; the tiny archive has 250
    "data.num_train=null",
    "data.val_size=50",
    "train.train_acc_samples=50",
    "train.batch_size=32",
]


def test_every_subpackage_is_listed_for_the_wheel():
    tomllib = pytest.importorskip("tomllib")
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "svmtrain").rglob("__init__.py")
    }
    assert set(listed["packages"]) == found | {"svmtrain.configs"}
    assert listed["package-dir"] == {"svmtrain.configs": "configs"}


def _run(args: list[str | Path], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_the_wheel_in_a_fresh_venv_trains_the_quick_config(tmp_path, tiny_archive, http_server):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [sys.executable, "-m", "pip"]
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    _run([*pip, "wheel", "-q", "--no-deps", "-w", tmp_path / "wheels", source], env, tmp_path)
    (wheel,) = (tmp_path / "wheels").glob("svmtrain-*.whl")
    venv = tmp_path / "venv"
    _run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv],
        env,
        tmp_path,
    )
    python = venv / "bin" / "python"
    _run([*pip, "--python", python, "install", "-q", wheel], env, tmp_path)

    work = tmp_path / "work"  # no configs/ here, and the repository is not on the path
    work.mkdir()
    where = _run([python, "-c", "import svmtrain.configs as c; print(c.__file__)"], env, work)
    assert Path(where.stdout.strip()).is_relative_to(venv)
    listed = _run([python, "-m", "svmtrain", "configs", "list"], env, work)
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "cs231n",
        "default",
        "hog",
        "kmeans",
        "notes",
        "quick",
        "softmax",
    ]
    # What the wheel prints points at commands and names, never at files it does not carry.
    shown = _run([python, "-m", "svmtrain", "configs", "show", "default"], env, work).stdout
    assert load_config("default") == config_from_yaml(shown, "configs show default")
    helped = _run([python, "-m", "svmtrain", "features", "build", "--help"], env, work).stdout
    assert "-c kmeans" in helped
    for text in (shown, helped):
        assert "docs/" not in text and ".py" not in text and "configs/" not in text

    archive = tiny_archive(train_counts=(50,) * 5, test_count=50)
    with http_server(archive.body) as server:
        env |= {
            "SVMTRAIN_DATA_URL": server.url,
            "SVMTRAIN_DATA_SHA256": archive.sha256,
            "SVMTRAIN_DATA_DIR": str(tmp_path / "data"),
        }
        sets = [arg for s in SHRINK for arg in ("--set", s)]
        fit = _run([venv / "bin" / "svmtrain", "fit", "-c", "quick", *sets, "-q"], env, work)
    (run_dir,) = (work / "runs").iterdir()
    assert run_dir.name.endswith("-quick") and str(run_dir.name) in fit.stdout
    assert load_config(run_dir / "config.yaml") == load_config("quick", SHRINK)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 3

    # The same config trained by this checkout gives bit-identical weights.
    data = ["--set", f"data.dir={tmp_path / 'data'}", "--set", f"data.sha256={archive.sha256}"]
    here = CliRunner().invoke(
        main, ["fit", "-c", "quick", *sets, *data, "-q", "--out", str(tmp_path / "here")]
    )
    assert here.exit_code == 0, here.output
    with (
        np.load(run_dir / "weights.npz") as there,
        np.load(tmp_path / "here" / "weights.npz") as ours,
    ):
        assert there["W"].dtype == ours["W"].dtype == np.float32
        assert np.array_equal(there["W"], ours["W"])
