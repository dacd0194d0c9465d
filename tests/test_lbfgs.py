"""Full-batch L-BFGS (core.optimizers.lbfgs): its line search, its minimum against
scipy.optimize's L-BFGS-B on the same problem, and a run through fit (resume, Ctrl-C,
metrics), on small synthetic data."""

import itertools
import json
import re

import numpy as np
import pytest
import scipy.optimize

from svmtrain.config import load_config
from svmtrain.core.losses import LOSSES
from svmtrain.core.objective import AffineRows, Objective
from svmtrain.core.optimizers import Progress
from svmtrain.core.optimizers.lbfgs import C1, C2, LBFGS, strong_wolfe
from svmtrain.data.preprocess import PIXELS, Splits, fit_stats
from svmtrain.errors import ConfigError, Interrupted
from svmtrain.experiments import fit, train
from svmtrain.io import runs
from svmtrain.model import LinearModel

N, F, C = 400, 48, 10


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(5)
    y = rng.integers(0, C, N).astype(np.intp)
    x = np.clip(rng.normal(100 + 6 * y[:, None], 50, (N, F)), 0, 255).astype(np.uint8)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    return x, y, mean.astype(np.float32), scale.astype(np.float32)


def _cfg(*extra):
    return load_config(overrides=["optim.name=lbfgs", "model.reg=0.01", "lbfgs.grad_tol=0", *extra])


def _minimise(cfg, objective, W):
    """LBFGS rounds until it converges or its iterations run out; returns (state, fields)."""
    opt, state, rounds = LBFGS(cfg), LBFGS(cfg).init_state(W), []
    while len(rounds) < cfg.lbfgs.iterations and not opt.finished(state):
        fields, _ = opt.run_round(
            objective, W, state, Progress(len(rounds), len(rounds)), None, lambda: None
        )
        rounds.append(fields)
    return state, rounds


SMOOTH = sorted(name for name, record in LOSSES.items() if not record.has_kinks)


@pytest.mark.parametrize(("loss", "rel"), [*((name, 1e-6) for name in SMOOTH), ("svm", 1e-3)])
def test_it_reaches_scipys_minimum(problem, loss, rel):
    """The same objective in float64, minimised by scipy's L-BFGS-B (no bounds) to a tight
    tolerance: our minimum equals its to 1e-6 relative for a smooth loss. (The SVM's hinge has
    kinks, where no quasi-Newton method converges to the last digits: both stop near 1e-4 of
    each other, so the check there is loose.)"""
    x, y, mean, scale = problem
    record = LOSSES[loss]
    objective = Objective(
        record, AffineRows(x, mean, scale), y, reg=0.01, options=record.options(load_config().model)
    )
    W0 = np.random.default_rng(0).standard_normal((C, F + 1)) * 1e-3

    def f(w):
        value, dW = objective.full(w.reshape(W0.shape))
        return value, dW.ravel()

    ref = scipy.optimize.minimize(
        f,
        W0.ravel(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 500, "ftol": 1e-15, "gtol": 1e-10},
    )
    cfg = _cfg(f"model.loss={loss}", "lbfgs.iterations=500", "lbfgs.loss_tol=1e-15")
    W = W0.copy()
    _, rounds = _minimise(cfg, objective, W)
    assert rounds[-1]["loss"] == pytest.approx(ref.fun, rel=rel)
    losses = [r["loss"] for r in rounds]
    assert all(b <= a for a, b in itertools.pairwise(losses))  # a line search never goes up
    if loss == "softmax":  # smooth and strongly convex: the same point
        np.testing.assert_allclose(W, ref.x.reshape(W.shape), rtol=1e-3, atol=1e-4)


def test_the_one_vs_rest_squared_hinge_minimum_is_liblinears(problem):
    """The paper's L2-SVM: our ovr_squared_hinge minimised by L-BFGS is scikit-learn's
    LinearSVC (liblinear's primal Newton solver, squared hinge, one against the rest) on the
    same features. LinearSVC minimises 0.5 |w|^2 + C sum_i hinge_i^2 with its intercept a
    penalised column of ones (intercept_scaling 1), which is ours times 1 / (2 reg N) for
    C = 1 / (2 reg N)."""
    svm = pytest.importorskip("sklearn.svm")
    x, y, mean, scale = problem
    reg, record = 0.01, LOSSES["ovr_squared_hinge"]
    objective = Objective(record, AffineRows(x, mean, scale), y, reg=reg, options={"delta": 1.0})
    W = np.zeros((C, F + 1))
    cfg = _cfg("model.loss=ovr_squared_hinge", "lbfgs.iterations=500", "lbfgs.loss_tol=1e-15")
    _minimise(cfg, objective, W)
    X = (x - mean.astype(np.float64)) / scale.astype(np.float64)
    ref = svm.LinearSVC(C=1 / (2 * reg * N), dual=False, tol=1e-12, max_iter=10_000).fit(X, y)
    want = np.hstack([ref.coef_, ref.intercept_[:, None]])
    np.testing.assert_allclose(W, want, rtol=0, atol=2e-5 * np.abs(want).max())
    # the gradient there is zero up to the same tolerance, and not at a point nearby
    assert np.abs(objective.full(want)[1]).max() < 1e-5
    assert np.abs(objective.full(want * 1.01)[1]).max() > 1e-3


def test_the_line_search_meets_the_strong_wolfe_conditions():
    """On a 1-D quartic, from steps far too short and far too long."""

    def phi(t):
        return t, (t - 3) ** 4 - 2 * t, 4 * (t - 3) ** 3 - 2, None

    f0, slope0 = phi(0)[1], phi(0)[2]
    for t0 in (1e-4, 1.0, 50.0, 1e3):
        (t, f, slope, _), evaluations = strong_wolfe(phi, f0, slope0, t0, 30)
        assert f <= f0 + C1 * t * slope0
        assert abs(slope) <= -C2 * slope0
        assert evaluations <= 30


def test_a_non_finite_loss_is_a_step_too_far():
    def phi(t):
        return (
            (t, float("nan"), float("nan"), None) if t > 2 else (t, (t - 1) ** 2, 2 * (t - 1), None)
        )

    (t, f, _, _), _ = strong_wolfe(phi, 1.0, -2.0, 100.0, 30)
    assert 0 < t <= 2 and f < 1.0


# --- through fit, on pixels --------------------------------------------------------------


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(7)
    templates = rng.uniform(60, 190, (10, PIXELS))

    def images(n):
        y = rng.integers(0, 10, n)
        x = np.clip(templates[y] + rng.normal(0, 60, (n, PIXELS)), 0, 255).astype(np.uint8)
        return x, y.astype(np.intp)

    (xtr, ytr), (xv, yv), (xt, yt) = (images(n) for n in (300, 100, 100))
    mean, scale = fit_stats(xtr, subtract_mean=True, scaling="standardize")
    return Splits(xtr, ytr, xv, yv, xt, yt, mean, scale, tuple("abcdefghij"))


FIT = ["model.loss=softmax", "lbfgs.iterations=6", "train.train_acc_samples=100"]


def _fit(splits, out, *extra, hook=None):
    with train.step_hook(hook or (lambda state, updates: None)):
        return fit.fit(_cfg(*FIT, *extra), out=out, splits=splits, progress=False)


def _metrics(run):
    lines = (run / runs.METRICS).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def test_a_fit_records_what_lbfgs_has_and_resumes_bit_identically(splits, tmp_path):
    whole = _fit(splits, tmp_path / "whole")
    metrics = _metrics(whole.run_dir)
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert {"grad_norm", "step_length", "evaluations", "val_acc", "train_acc"} <= set(metrics[0])
    assert "lr" not in metrics[0]
    assert metrics[0]["evaluations"] >= 2  # the start and at least one step
    assert [m["loss"] for m in metrics] == sorted((m["loss"] for m in metrics), reverse=True)
    calls = [0]

    def interrupt_in_iteration_four(state, updates):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match=r"after epoch 3"):
        _fit(splits, tmp_path / "cut", hook=interrupt_in_iteration_four)
    resumed = fit.fit(resume=tmp_path / "cut", splits=splits, progress=False)
    W = LinearModel.load(resumed.run_dir / runs.WEIGHTS).W
    assert W.tobytes() == LinearModel.load(whole.run_dir / runs.WEIGHTS).W.tobytes()
    assert _metrics(resumed.run_dir) == metrics
    assert resumed.summary["test_acc"] == whole.summary["test_acc"] > 0.3


def test_full_loss_is_lower_than_sgds_on_the_same_problem(splits, tmp_path):
    lbfgs = train.objective(_cfg(*FIT), splits)
    W = LinearModel.load(_fit(splits, tmp_path / "l").run_dir / runs.WEIGHTS).W
    sgd_cfg = load_config(
        overrides=[
            "model.loss=softmax",
            "model.reg=0.01",
            "optim.learning_rate=1e-3",
            "train.batch_size=50",
            "train.epochs=6",
            "train.train_acc_samples=100",
        ]
    )
    sgd = fit.fit(sgd_cfg, out=tmp_path / "s", splits=splits, progress=False)
    W_sgd = LinearModel.load(sgd.run_dir / runs.WEIGHTS).W
    assert lbfgs.value(W.astype(np.float64)) < lbfgs.value(W_sgd.astype(np.float64))


def test_converged_runs_stop_early(splits, tmp_path):
    result = _fit(splits, tmp_path / "c", "lbfgs.iterations=200", "lbfgs.grad_tol=1e-3")
    assert result.summary["epochs"] < 200


# --- config ----------------------------------------------------------------------------


def test_choosing_lbfgs_on_an_sgd_config_resets_its_sgd_keys_with_a_note(caplog):
    cfg = load_config("softmax", ["optim.name=lbfgs"])
    (note,) = caplog.messages  # a notice (svmtrain.progress.notify), one line
    assert re.match(r"optim.name=lbfgs: .*optim.momentum.*reset", note)
    assert cfg.optim.momentum == 0.0 and cfg.schedule.name == "constant"
    assert cfg.model.loss == "softmax" and cfg.preprocess.scaling == "standardize"


@pytest.mark.parametrize(
    "overrides",
    [
        ["optim.name=lbfgs", "optim.momentum=0.9"],
        ["optim.momentum=0.9", "optim.name=lbfgs", "train.batch_size=64"],
    ],
)
def test_an_sgd_key_set_alongside_lbfgs_is_refused(overrides):
    with pytest.raises(ConfigError, match=r"means nothing to optim.name=lbfgs .*remove"):
        load_config(None, overrides)


def test_an_lbfgs_key_is_refused_under_sgd():
    with pytest.raises(
        ConfigError, match=r"lbfgs.history is 5, but it means nothing to optim.name=sgd"
    ):
        load_config(None, ["lbfgs.history=5"])


def test_the_resolved_config_replays(tmp_path, caplog):
    cfg = load_config("default", ["optim.name=lbfgs"])
    assert caplog.messages[0].startswith("optim.name=lbfgs: ")  # the reset is said
    from svmtrain.config import save_config

    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
