"""Which loss does scikit-learn's LinearSVC minimise, and is it svmtrain's squared_hinge?

Fits LinearSVC (one-vs-rest squared hinge, and Crammer-Singer) on a small synthetic problem,
minimises each candidate objective with scipy's L-BFGS, and prints how far apart the weights
are; docs/losses.md quotes the output. Needs scikit-learn and scipy (not dependencies).

    python scripts/which_squared_hinge.py
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from sklearn.svm import LinearSVC

from svmtrain.core.losses import LOSSES

N, F, C, REG = 300, 8, 4, 1e-3
# sklearn minimises 0.5 |W|^2 + C_svc * sum_i loss_i; svmtrain mean_i loss_i + reg |W|^2.
C_SVC = 1 / (2 * N * REG)


def problem() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, C, N)
    X = np.ones((N, F + 1))
    X[:, :F] = rng.normal(0, 1, (N, F)) + 2.0 * np.eye(C, F)[y]
    return X, y


def minimise(objective, shape: tuple[int, int]) -> np.ndarray:
    """W minimising ``objective(w) -> (value, gradient)`` from zero, to L-BFGS's limits."""
    options = {"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-15}
    x0 = np.zeros(shape[0] * shape[1])
    return minimize(objective, x0, jac=True, method="L-BFGS-B", options=options).x.reshape(shape)


def main() -> None:
    X, y = problem()
    shape = (C, F + 1)

    def ours(name):
        def objective(w):
            value, dW = LOSSES[name](w.reshape(shape), X, y, REG)
            return value, dW.ravel()

        return objective

    def one_vs_rest(w):
        W = w.reshape(shape)
        t = np.where(np.arange(C)[None] == y[:, None], 1.0, -1.0)
        m = np.maximum(0, 1 - t * (X @ W.T))
        return (m**2).sum() / N + REG * (W**2).sum(), ((-2 * t * m).T @ X / N + 2 * REG * W).ravel()

    def crammer_singer(W):
        s = X @ W.T
        rows = np.arange(N)
        m = s - s[rows, y][:, None] + 1
        m[rows, y] = 0
        return np.maximum(0, m.max(axis=1)).mean() + REG * (W**2).sum()

    candidates = {
        "one-vs-rest squared hinge": minimise(one_vs_rest, shape),
        "svmtrain squared_hinge": minimise(ours("squared_hinge"), shape),
        "svmtrain svm": minimise(ours("svm"), shape),
    }
    for multi in ("ovr", "crammer_singer"):
        svc = LinearSVC(
            C=C_SVC, multi_class=multi, loss="squared_hinge", tol=1e-10, max_iter=200_000
        )
        svc.fit(X[:, :F], y)
        W = np.hstack([svc.coef_, svc.intercept_[:, None]])
        for name, V in candidates.items():
            gap = np.abs(W - V).max() / np.abs(V).max()
            print(f"LinearSVC({multi}) vs {name}: max |dW| / max |W| = {gap:.1e}")
        if multi == "crammer_singer":
            for name, V in {"LinearSVC(crammer_singer)": W, **candidates}.items():
                print(f"  Crammer-Singer objective at {name}: {crammer_singer(V):.6f}")


if __name__ == "__main__":
    main()
