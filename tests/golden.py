"""Weights and metrics of every shipped config on a tiny synthetic archive, as a fixture.

``python tests/golden.py`` trains each shipped config (shortened and on small feature
settings, see :data:`SETTINGS`) on a tiny archive built by conftest's ``make_tiny_archive``
and writes tests/data/golden.npz: per config its W, its metrics (every field but the wall
time) and its summary accuracies, with the arithmetic they were made on (:func:`arithmetic`).
tests/test_golden.py trains the same way and compares bit for bit on the same arithmetic, so a
refactor of the training core that changes any result fails there. Regenerate only on purpose
(a change of results, or other arithmetic from a commit known good), and say why in the commit.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import LoopbackServer, make_tiny_archive

from svmtrain.config import load_config, shipped_names
from svmtrain.data import load_cifar10
from svmtrain.experiments.fit import fit

FIXTURE = Path(__file__).resolve().parent / "data" / "golden.npz"
# Every config is cut to a few seconds: 250 training images, 50 validation, 50 test; the
# features small enough to build in a second.
COMMON = (
    "data.val_size=50",
    "data.num_train=null",
    "data.num_test=null",
    "train.train_acc_samples=50",
)
SETTINGS = {
    "default": ("train.batch_size=32", "train.epochs=3"),
    "softmax": ("train.batch_size=32", "train.epochs=3"),
    "cs231n": ("train.batch_size=20", "train.iterations=30", "train.epochs=null"),
    "quick": ("train.batch_size=32", "train.epochs=3"),
    "notes": ("train.batch_size=32", "train.epochs=2"),
    "hog": ("train.batch_size=32", "train.epochs=3"),
    "kmeans": (
        "train.batch_size=32",
        "train.epochs=3",
        "features.kmeans.num_centroids=8",
        "features.kmeans.patches_sampled=2000",
        "features.kmeans.kmeans_iterations=3",
        "features.kmeans.stride=4",
    ),
}


def tiny_data(root: Path) -> list[str]:
    """A tiny archive (5 x 60 training images, 50 test) cached in root/data; the --set items
    that point a config at it."""
    archive = make_tiny_archive(
        root / "archive" / "cifar-10-binary.tar.gz", train_counts=(60,) * 5, test_count=50, seed=17
    )
    with LoopbackServer(archive.body) as server:
        load_cifar10(root / "data", url=server.url, sha256=archive.sha256, progress=False)
        url = server.url
    return [f"data.dir={root / 'data'}", f"data.url={url}", f"data.sha256={archive.sha256}"]


def results(name: str, root: Path, data: list[str]) -> dict[str, np.ndarray]:
    """The shipped config ``name`` trained on the tiny data: {field: array} of its W, metrics
    (all but seconds) and summary accuracies."""
    overrides = [*data, *COMMON, *SETTINGS[name]]
    cfg = load_config(name if name != "notes" else None, overrides)
    run = fit(cfg, out=root / "runs" / name, progress=False)
    with np.load(run.run_dir / "weights.npz") as weights:
        W = weights["W"]
    lines = (run.run_dir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    fields = [k for k in records[0] if k != "seconds"]
    return {
        "W": W,
        "metrics": np.array([[r[k] for k in fields] for r in records], dtype=np.float64),
        "metric_names": np.array(fields),
        "accuracies": np.array([run.summary["val_acc"], run.summary["test_acc"]]),
    }


def arithmetic() -> str:
    """What the last bits of training depend on beyond the code: numpy's version, its BLAS, and
    the CPU's vector instructions (OpenBLAS and numpy pick their kernels by them)."""
    try:  # numpy >= 1.26
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except TypeError:
        blas = {"name": "blas", "version": "unknown"}
    cpuinfo = Path("/proc/cpuinfo")
    words = cpuinfo.read_text().split() if cpuinfo.exists() else [platform.processor()]
    simd = sorted({w for w in words if w.startswith(("avx", "fma", "sse", "neon", "asimd"))})
    return " ".join([f"numpy {np.__version__}", blas["name"], blas["version"], *simd])


def all_results(root: Path) -> dict[str, np.ndarray]:
    """Every shipped config's results, flattened to ``<config>/<field>`` arrays, and this
    machine's :func:`arithmetic` as ``arithmetic``."""
    data = tiny_data(root)
    names = sorted({*shipped_names(), "notes"})
    arrays = {f"{n}/{k}": v for n in names for k, v in results(n, root, data).items()}
    return {**arrays, "arithmetic": np.array(arithmetic())}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        arrays = all_results(Path(tmp))
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, **arrays)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes, {len(arrays)} arrays)")
