"""Full-batch L-BFGS against SGD and scikit-learn's LogisticRegression, side by side in one run.

On the cached CIFAR-10 the environment points at (SVMTRAIN_DATA_DIR, SVMTRAIN_DATA_SHA256;
say "on the 30k mirror"), each in its own process so that its peak RSS is its own:

- ``svmtrain fit -c softmax`` (SGD) and ``svmtrain fit -c softmax --set optim.name=lbfgs``:
  wall time, peak RSS, test accuracy, and the full training loss of the saved W (float64,
  Objective.full).
- ``LogisticRegression(solver="lbfgs")`` on the same standardised pixels (a float64 design
  matrix), C = 1 / (2 reg N) so that its objective is ours times a constant (its intercept is
  not penalised, ours is with model.reg_bias): fit time, peak RSS, test accuracy, and our full
  loss at its solution.

Writes bench-results/lbfgs-<time>.md and prints it.

    python scripts/bench_lbfgs.py [--sklearn-iterations 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SVMTRAIN = [sys.executable, "-m", "svmtrain"]


def _measured(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{' '.join(argv)} failed ({status})")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, out


def _full_loss(W: np.ndarray) -> float:
    from svmtrain.config import load_config
    from svmtrain.experiments import train
    from svmtrain.experiments.common import load_splits

    cfg = load_config("softmax")
    return train.objective(cfg, load_splits(cfg, progress=False)).value(W.astype(np.float64))


def sklearn_child(iterations: int) -> None:
    """In the child: fit LogisticRegression and print its results as JSON."""
    from sklearn.linear_model import LogisticRegression

    from svmtrain.config import load_config
    from svmtrain.experiments.common import load_splits

    cfg = load_config("softmax")
    s = load_splits(cfg, progress=False)
    X, Xt = s.design(s.X_train, np.float64)[:, :-1], s.design(s.X_test, np.float64)[:, :-1]
    C = 1 / (2 * cfg.model.reg * len(s.y_train))
    started = time.perf_counter()
    model = LogisticRegression(C=C, solver="lbfgs", max_iter=iterations).fit(X, s.y_train)
    seconds = time.perf_counter() - started
    W = np.hstack([model.coef_, model.intercept_[:, None]])
    print(
        json.dumps(
            {
                "fit_seconds": seconds,
                "test_acc": float((model.predict(Xt) == s.y_test).mean()),
                "iterations": int(model.n_iter_.max()),
                "W": W.tolist(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sklearn-iterations", type=int, default=100)
    parser.add_argument("--sklearn-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sklearn_child:
        sklearn_child(args.sklearn_iterations)
        return
    from svmtrain.model import LinearModel

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (
            ("svmtrain SGD", []),
            ("svmtrain L-BFGS", ["--set", "optim.name=lbfgs"]),
        ):
            out = Path(tmp) / name.split()[-1]
            wall, rss, _ = _measured(
                [*SVMTRAIN, "fit", "-c", "softmax", *extra, "--out", str(out), "-q"]
            )
            summary = json.loads((out / "summary.json").read_text())
            W = LinearModel.load(out / "weights.npz").W
            rows.append(
                (
                    name,
                    wall,
                    summary["wall_seconds"],
                    rss,
                    summary["test_acc"],
                    _full_loss(W),
                    summary["steps"],
                )
            )
    wall, rss, out = _measured(
        [
            sys.executable,
            __file__,
            "--sklearn-child",
            "--sklearn-iterations",
            str(args.sklearn_iterations),
        ]
    )
    result = json.loads(out)
    W = np.array(result["W"])
    rows.append(
        (
            "sklearn LogisticRegression(lbfgs)",
            wall,
            result["fit_seconds"],
            rss,
            result["test_acc"],
            _full_loss(W),
            result["iterations"],
        )
    )
    load = os.getloadavg()
    lines = [
        f"# L-BFGS on softmax, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "",
        "| run | process wall s | training s | peak RSS MB | test acc | full training loss "
        "| steps/iterations |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {n} | {w:.1f} | {t:.1f} | {r:.0f} | {a:.4f} | {f:.6f} | {k} |"
            for n, w, t, r, a, f, k in rows
        ),
    ]
    text = "\n".join(lines) + "\n"
    results = REPO / "bench-results"
    results.mkdir(exist_ok=True)
    (results / f"lbfgs-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
