"""Finite differences, the fast linear-model probes, kink detection and check_gradient."""

from __future__ import annotations

import numpy as np
import pytest

from svmtrain.gradients import (
    METHODS,
    StepTooSmall,
    check_gradient,
    default_tolerance,
    linear_numerical_partials,
    numerical_gradient,
    numerical_partials,
    relative_error,
    svm_kinks,
)
from svmtrain.losses import LOSSES


def _problem(seed: int, n: int = 12, c: int = 4, d: int = 9, w_scale: float = 5e-3):
    """Pixel-scale data (std 64) with a bias column; scores of spread ~1 with w_scale 5e-3."""
    rng = np.random.default_rng(seed)
    X = np.ones((n, d))
    X[:, :-1] = rng.normal(0, 64, (n, d - 1))
    W = w_scale * rng.standard_normal((c, d))
    return W, X, rng.integers(0, c, n)


def _whole_loss(name, X, y, reg, delta, reg_bias):
    return lambda w: LOSSES[name](w, X, y, reg, delta=delta, reg_bias=reg_bias)[0]


# ---------------------------------------------------------------------------------------------
# The generic finite differences


@pytest.mark.parametrize("method", METHODS)
def test_numerical_gradient_of_a_known_function(method):
    x = np.array([[0.3, -1.2, 2.0], [0.0, 0.7, -0.4]])
    grad = numerical_gradient(lambda v: float(np.sum(v**3)), x.copy(), h=1e-6, method=method)
    # Truncation: centred h^2 f''' / 6 = 1e-12; forward h f'' / 2 = 3 h |x| <= 6e-6.
    atol = 1e-8 if method == "centered" else 1e-5
    np.testing.assert_allclose(grad, 3 * x**2, atol=atol)


def test_forward_is_clearly_worse_than_centred_on_a_smooth_function():
    x = np.linspace(-1, 1, 7)
    exact = np.exp(x)
    errors = {
        m: np.abs(numerical_gradient(lambda v: float(np.exp(v).sum()), x.copy(), 1e-5, m) - exact)
        for m in METHODS
    }
    assert errors["forward"].max() > 100 * errors["centered"].max()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_probed_values_are_written_back_exactly(dtype):
    h = 1e-3
    x = np.array([1 / 3, 0.7, 1e-20, -2.9, 123.456], dtype=dtype)
    step = dtype(h)
    # The case this guards against: x + h - h is not x for some of these values.
    assert np.any((x + step) - step != x)
    before = x.copy()
    seen = []
    numerical_partials(lambda v: seen.append(v.copy()) or float(v.sum()), x, np.arange(x.size), h)
    np.testing.assert_array_equal(x.view(np.uint8), before.view(np.uint8))
    # Each probe changed exactly one coordinate, and the others held their original values.
    for probe in seen:
        assert np.count_nonzero(probe != before) == 1


def test_x_is_restored_when_f_raises():
    x = np.array([0.1, 0.2, 0.3])
    before = x.copy()
    calls = []

    def f(v):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError):
        numerical_partials(f, x, np.array([1]), 1e-3)
    np.testing.assert_array_equal(x, before)


def test_step_too_small_is_refused():
    x = np.array([1.0], dtype=np.float32)
    with pytest.raises(StepTooSmall, match=r"h=1e-12 is too small for float32"):
        numerical_partials(lambda v: float(v.sum()), x, np.array([0]), h=1e-12)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match=r"choose one of centered, forward"):
        numerical_partials(lambda v: 0.0, np.zeros(2), np.array([0]), method="backward")


def test_relative_error():
    np.testing.assert_array_equal(
        relative_error(np.array([1.0, 0.0, -2.0, 3.0]), np.array([1.0, 0.0, 2.0, 1.0])),
        [0.0, 0.0, 1.0, 0.5],
    )


# ---------------------------------------------------------------------------------------------
# The fast path is the same finite difference as probing the whole loss


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("reg_bias", [True, False])
@pytest.mark.parametrize("reg", [0.0, 3.0])
@pytest.mark.parametrize("name", list(LOSSES))
def test_linear_fast_path_equals_whole_loss_probes(name, reg, reg_bias, method):
    W, X, y = _problem(seed=7)
    coords = np.arange(W.size)
    assert not svm_kinks(W, X, y, coords, h=1e-5).any()  # precondition: no kink in the way
    options = {"reg": reg, "delta": 1.0, "reg_bias": reg_bias, "h": 1e-5, "method": method}
    fast = linear_numerical_partials(name, W, X, y, coords, **options)
    slow = numerical_partials(
        _whole_loss(name, X, y, reg, 1.0, reg_bias), W.copy(), coords, 1e-5, method
    )
    # Whole-loss probes carry rounding noise of about eps * loss / h ~ 1e-10.
    np.testing.assert_allclose(fast, slow, rtol=1e-7, atol=1e-8)


def test_fast_path_in_float32_follows_the_float64_one():
    W, X, y = _problem(seed=8)
    coords = np.arange(W.size)
    f64 = linear_numerical_partials("svm", W, X, y, coords, reg=3.0)
    f32 = linear_numerical_partials("svm", W.astype(np.float32), X, y, coords, reg=3.0)
    np.testing.assert_allclose(f32, f64, rtol=1e-2, atol=1e-2 * np.abs(f64).max())


# ---------------------------------------------------------------------------------------------
# Kinks

# One example x = (1, 0, 1), y = 0, scores (1, 0, -5): the margin of class 1 is exactly 0 (a
# kink), that of class 2 is -5 (far). Probing W[1, d] or W[0, d] (the correct class moves every
# margin) crosses the kink unless x_d = 0; probing W[2, d] moves only the far margin.
KINK_W = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-5.0, 0.0, 0.0]])
KINK_X = np.array([[1.0, 0.0, 1.0]])
KINK_Y = np.array([0])
KINK_MASK = np.array([[True, False, True], [True, False, True], [False, False, False]])


def test_kink_detector_flags_a_margin_at_exactly_zero():
    mask = svm_kinks(KINK_W, KINK_X, KINK_Y, np.arange(KINK_W.size), h=1e-5)
    np.testing.assert_array_equal(mask.reshape(KINK_W.shape), KINK_MASK)


def test_kink_detector_uses_the_probe_size():
    # Move the margin of class 1 to -1e-3: it is a kink for h = 1e-2, not for h = 1e-5.
    W = KINK_W.copy()
    W[1, 0] = -1e-3
    coords = np.array([3])  # W[1, 0]
    assert svm_kinks(W, KINK_X, KINK_Y, coords, h=1e-2).all()
    assert not svm_kinks(W, KINK_X, KINK_Y, coords, h=1e-5).any()


def test_kinks_are_reported_apart_not_failed():
    result = check_gradient("svm", KINK_W.copy(), KINK_X, KINK_Y)
    np.testing.assert_array_equal(result.kink.reshape(KINK_W.shape), KINK_MASK)
    assert result.num_kinks == 4
    # At the kink the centred difference sees half of each slope: a large "error" ...
    assert result.rel_error[result.kink].max() > 0.1
    # ... that is left out of the statistics, so the check passes on the other weights.
    assert result.max_rel_error <= result.tol
    assert result.passed


def test_every_weight_at_a_kink_is_inconclusive():
    result = check_gradient("svm", KINK_W.copy(), KINK_X, KINK_Y, coords=np.array([0, 3]))
    assert result.kink.all()
    assert np.isnan(result.max_rel_error)
    assert not result.passed


def test_softmax_has_no_kinks():
    W, X, y = _problem(seed=9)
    assert not check_gradient("softmax", W, X, y).kink.any()


# ---------------------------------------------------------------------------------------------
# check_gradient


@pytest.mark.parametrize("full_loss", [False, True])
@pytest.mark.parametrize("name", list(LOSSES))
def test_true_gradient_passes(name, full_loss):
    W, X, y = _problem(seed=10)
    result = check_gradient(name, W, X, y, reg=3.0, full_loss=full_loss, reference=True)
    assert result.passed, (result.max_rel_error, result.reference_max_rel_error)
    assert result.coords.shape == (W.size, 2)  # coords=None: every weight
    assert result.max_rel_error < 1e-7
    assert result.reference_max_rel_error < 1e-12
    assert result.band.startswith("excellent")


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(lambda dW: dW * (1 + 1e-4), id="scaled by 1+1e-4"),
        pytest.param(lambda dW: np.hstack([dW[:, :-1], 2 * dW[:, -1:]]), id="bias doubled"),
        pytest.param(lambda dW: dW[::-1], id="classes swapped"),
    ],
)
@pytest.mark.parametrize("name", list(LOSSES))
def test_wrong_gradient_fails(name, wrong):
    W, X, y = _problem(seed=11)

    def analytic(*args, **kwargs):
        loss, dW = LOSSES[name](*args, **kwargs)
        return loss, wrong(dW)

    result = check_gradient(name, W, X, y, reg=3.0, analytic_fn=analytic, reference=True)
    assert not result.passed
    assert result.max_rel_error > result.tol
    assert result.reference_max_rel_error > result.reference_tol


@pytest.mark.parametrize("name", list(LOSSES))
def test_forward_errors_are_larger_than_centred(name):
    W, X, y = _problem(seed=12)
    errors = {
        m: np.median(check_gradient(name, W, X, y, reg=3.0, method=m).rel_error) for m in METHODS
    }
    assert errors["forward"] > 100 * errors["centered"]


def test_sparse_check_reports_the_asked_weights():
    W, X, y = _problem(seed=13)
    coords = np.array([0, 5, W.size - 1])
    result = check_gradient("svm", W, X, y, coords=coords)
    np.testing.assert_array_equal(result.coords, [[0, 0], [0, 5], [W.shape[0] - 1, W.shape[1] - 1]])
    _, dW = LOSSES["svm"](W, X, y)
    np.testing.assert_array_equal(result.analytic, dW.ravel()[coords])


def test_default_tolerances():
    assert default_tolerance("float64", "centered") == 1e-7
    assert default_tolerance(np.float64, "forward") > default_tolerance("float64", "centered")
    assert default_tolerance("float32", "centered") >= 1e-2
