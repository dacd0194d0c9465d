"""Finite differences, the fast linear-model probes, kink detection and check_gradient."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from svmtrain.core.differences import (
    METHODS,
    linear_numerical_partials,
    numerical_gradient,
    numerical_partials,
    probe_kinks,
)
from svmtrain.core.fd_error import finite_difference_error, rounding_error_bound, truncation_known
from svmtrain.core.gradcheck import (
    bands_apply,
    check_gradient,
    default_tolerance,
    relative_error,
)
from svmtrain.core.losses import LOSSES
from svmtrain.errors import ArgumentError, StepTooLarge, StepTooSmall, SvmtrainError


def _problem(seed: int, n: int = 12, c: int = 4, d: int = 9, w_scale: float = 5e-3):
    """Pixel-scale data (std 64) with a bias column; scores of spread ~1 with w_scale 5e-3."""
    rng = np.random.default_rng(seed)
    X = np.ones((n, d))
    X[:, :-1] = rng.normal(0, 64, (n, d - 1))
    W = w_scale * rng.standard_normal((c, d))
    return W, X, rng.integers(0, c, n)


def _whole_loss(name, X, y, reg, reg_bias):
    return lambda w: LOSSES[name](w, X, y, reg, reg_bias=reg_bias)[0]


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
    with pytest.raises(ArgumentError, match=r"choose one of centered, forward") as caught:
        numerical_partials(lambda v: 0.0, np.zeros(2), np.array([0]), method="backward")
    assert caught.value.argument == "method"


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
    assert not probe_kinks(name, W, X, y, coords, h=1e-5).any()  # precondition: no kink in the way
    options = {"reg": reg, "reg_bias": reg_bias, "h": 1e-5, "method": method}
    fast = linear_numerical_partials(name, W, X, y, coords, **options)
    slow = numerical_partials(
        _whole_loss(name, X, y, reg, reg_bias), W.copy(), coords, 1e-5, method
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
    mask = probe_kinks("svm", KINK_W, KINK_X, KINK_Y, np.arange(KINK_W.size), h=1e-5)
    np.testing.assert_array_equal(mask.reshape(KINK_W.shape), KINK_MASK)


def test_kink_detector_uses_the_probe_size():
    # Move the margin of class 1 to -1e-3: it is a kink for h = 1e-2, not for h = 1e-5.
    W = KINK_W.copy()
    W[1, 0] = -1e-3
    coords = np.array([3])  # W[1, 0]
    assert probe_kinks("svm", W, KINK_X, KINK_Y, coords, h=1e-2).all()
    assert not probe_kinks("svm", W, KINK_X, KINK_Y, coords, h=1e-5).any()


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
    assert not result.passed and result.status == "inconclusive"


@pytest.mark.parametrize("name", [n for n, loss in LOSSES.items() if not loss.has_kinks])
def test_a_loss_without_kinks_has_no_kinks_flagged(name):
    W, X, y = _problem(seed=9)
    assert not check_gradient(name, W, X, y).kink.any()


# ---------------------------------------------------------------------------------------------
# The error of a finite difference, and weights too small for it to judge

# Pixel-scale data as with preprocess.scaling "none" (std 64) and as with "standardize" (std 1).
SCALINGS = {"none": 64.0, "standardize": 1.0}
CANCELLED = (1, 0)  # the weight of _cancelled_problem whose gradient is 0


def _cancelled_problem(name: str, std: float, seed: int = 2, n: int = 20, d: int = 300):
    """A (10, d) problem at W ~ 1e-4 with pixels of spread ``std``, in which the gradient of
    W[1, 0] cancels over the examples: W[:, 0] = 0, so column 0 of X moves no score, and that
    column is made orthogonal to the examples' d loss_i / d s_i1. Its analytic gradient is
    then 0 up to rounding, and its finite difference is nothing but finite-difference error.
    d loss_i / d s_i1 is example i's gradient on W[1, bias], as the bias feature is 1."""
    W, X, y = _problem(seed, n=n, c=10, d=d, w_scale=1e-4)
    X[:, :-1] *= std / 64
    c, col = CANCELLED
    W[:, col] = 0
    slope = np.array([LOSSES[name](W, X[i : i + 1], y[i : i + 1])[1][c, -1] for i in range(n)])
    X[:, col] -= (slope @ X[:, col]) / (slope @ slope) * slope
    return W, X, y


def _flat(coord: tuple[int, int], shape: tuple[int, ...]) -> int:
    return int(np.ravel_multi_index(coord, shape))


needs_long_double = pytest.mark.skipif(
    np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
    reason="np.longdouble is no more precise than float64 on this platform",
)


@needs_long_double
@pytest.mark.parametrize("full_loss", [False, True])
@pytest.mark.parametrize("scaling", list(SCALINGS))
@pytest.mark.parametrize("name", list(LOSSES))
def test_rounding_bound_holds_against_extended_precision(name, scaling, full_loss):
    W, X, y = _cancelled_problem(name, SCALINGS[scaling])
    coords = np.arange(0, W.size, 7)
    options = {"reg": 0.3, "reg_bias": True, "h": 1e-6, "method": "centered"}
    if full_loss:
        f = _whole_loss(name, X, y, 0.3, True)
        in_float64 = numerical_partials(f, W.copy(), coords, 1e-6)
    else:
        in_float64 = linear_numerical_partials(name, W, X, y, coords, **options)
    # The same differences with 64-bit mantissas: what is left is float64 rounding.
    extended = linear_numerical_partials(
        name, W.astype(np.longdouble), X.astype(np.longdouble), y, coords, **options
    ).astype(np.float64)
    bound = rounding_error_bound(name, W, X, y, coords, full_loss=full_loss, **options)
    rounding = np.abs(in_float64 - extended)
    assert np.all(rounding <= bound)
    assert bound.max() < 50 * rounding.max()  # a bound, but not a vacuous one


@pytest.mark.parametrize("method", METHODS)
def test_fd_error_estimates_the_truncation_of_a_smooth_loss(method):
    # A coarse step (scores move by ~0.06) makes truncation dominate, beyond the leading order
    # in h: the estimate must still cover it, and not by much.
    W, X, y = _problem(seed=14, w_scale=1e-2)
    coords = np.arange(W.size)
    options = {"reg": 3.0, "h": 1e-3, "method": method}
    numerical = linear_numerical_partials("softmax", W, X, y, coords, **options)
    estimate = finite_difference_error("softmax", W, X, y, coords, numerical, **options).total
    actual = np.abs(numerical - LOSSES["softmax"](W, X, y, 3.0)[1].ravel())
    assert actual.max() > 1e-3  # precondition: a truncation error far above rounding
    assert np.all(actual <= estimate)
    # Twice the leading-order Richardson estimate, which is within a few % of the truth here.
    assert np.all(estimate <= 2.2 * actual)


@pytest.mark.parametrize("reg_bias", [True, False])
def test_fd_error_of_forward_svm_differences_is_the_penalty_step(reg_bias):
    # Between kinks the SVM loss is quadratic in each weight with second derivative 2 * reg
    # (0 for an unpenalised bias): a forward difference is off by exactly reg * h.
    W, X, y = _problem(seed=15)
    coords = np.arange(W.size)
    options = {"reg": 50.0, "reg_bias": reg_bias, "h": 1e-4, "method": "forward"}
    assert not probe_kinks("svm", W, X, y, coords, h=1e-4).any()
    numerical = linear_numerical_partials("svm", W, X, y, coords, **options)
    fd = finite_difference_error("svm", W, X, y, coords, numerical, **options)
    actual = np.abs(numerical - LOSSES["svm"](W, X, y, 50.0, reg_bias=reg_bias)[1].ravel())
    expected = np.full(W.shape, 50.0 * 1e-4)
    expected[:, -1] *= reg_bias
    np.testing.assert_allclose(actual, expected.ravel(), rtol=1e-6, atol=1e-9)
    assert np.all(actual <= fd.total)
    # The truncation part is that penalty step (as stored), the rest the rounding bound.
    np.testing.assert_allclose(fd.truncation, expected.ravel(), rtol=1e-9)
    np.testing.assert_array_equal(
        fd.rounding, rounding_error_bound("svm", W, X, y, coords, **options)
    )


@pytest.mark.parametrize("name", list(LOSSES))
def test_check_gradient_keeps_the_truncation_part(name):
    W, X, y = _problem(seed=17)
    centred = check_gradient(name, W, X, y, reg=3.0)
    forward = check_gradient(name, W, X, y, reg=3.0, method="forward")
    for result in (centred, forward):
        assert np.all(result.fd_truncation >= 0)
        assert np.all(result.fd_truncation <= result.fd_error)
        np.testing.assert_allclose(
            result.relative_truncation,
            result.fd_truncation / (np.abs(result.analytic) + np.abs(result.numerical)),
        )
    if truncation_known(name, "centered"):  # degree <= 2 between kinks: centred is exact
        np.testing.assert_array_equal(centred.fd_truncation, 0.0)
    else:  # a smooth loss: forward truncation O(h), centred O(h^2)
        assert np.median(forward.fd_truncation) > 100 * np.median(centred.fd_truncation)
    if truncation_known(name, "forward"):  # piecewise linear: the penalty's step alone
        np.testing.assert_allclose(forward.fd_truncation, 3.0 * forward.h, rtol=1e-6)


@pytest.mark.parametrize("full_loss", [False, True])
@pytest.mark.parametrize("scaling", list(SCALINGS))
@pytest.mark.parametrize("name", list(LOSSES))
def test_correct_gradient_passes_with_unresolved_weights_apart(name, scaling, full_loss):
    W, X, y = _cancelled_problem(name, SCALINGS[scaling])
    result = check_gradient(name, W, X, y, reg=0.3, full_loss=full_loss)
    k = _flat(CANCELLED, W.shape)
    # Judged on relative error alone, the cancelled weight fails a correct gradient ...
    assert result.rel_error[~result.kink].max() > result.tol
    assert result.rel_error[k] > result.tol
    # ... but its |a - n| is within the estimated error of n: unresolved, apart, counted.
    assert result.unresolved[k] and not result.kink[k]
    assert abs(result.analytic[k] - result.numerical[k]) <= result.fd_error[k]
    assert result.resolution[k] > result.tol
    assert result.num_unresolved == int(result.unresolved.sum()) >= 1
    assert result.passed, result.max_rel_error
    assert result.max_rel_error <= result.tol


def _one_weight(factor: float):
    def wrong(dW: np.ndarray, k: int, reg: float) -> np.ndarray:
        dW.flat[k] *= factor
        return dW

    return wrong


def _no_penalty_term(dW: np.ndarray, W: np.ndarray, reg: float) -> np.ndarray:
    return dW - 2 * reg * W


def _bias_zeroed(dW: np.ndarray, W: np.ndarray, reg: float) -> np.ndarray:
    dW[:, -1] = 0
    return dW


@pytest.mark.parametrize(
    ("wrong", "one_weight"),
    [
        pytest.param(_one_weight(1.001), True, id="one weight times 1.001"),
        pytest.param(_one_weight(-1.0), True, id="one weight's sign flipped"),
        pytest.param(_no_penalty_term, False, id="reg term missing"),
        pytest.param(_bias_zeroed, False, id="bias column zeroed"),
    ],
)
@pytest.mark.parametrize("scaling", list(SCALINGS))
@pytest.mark.parametrize("name", list(LOSSES))
def test_wrong_gradient_still_fails_beside_unresolved_weights(name, scaling, wrong, one_weight):
    W, X, y = _cancelled_problem(name, SCALINGS[scaling])
    reg = 0.3
    right = check_gradient(name, W, X, y, reg=reg)
    assert right.passed and right.num_unresolved >= 1  # the new category is in play
    # A weight of typical size (the median |gradient|) for the one-weight errors.
    k = int(np.argsort(np.abs(right.analytic))[W.size // 2])

    def analytic(W_, X_, y_, **options):
        value, dW = LOSSES[name](W_, X_, y_, **options)
        return value, wrong(dW, k if one_weight else W_, options["reg"])

    result = check_gradient(name, W, X, y, reg=reg, analytic_fn=analytic)
    assert not result.passed
    assert result.max_rel_error > result.tol
    if one_weight:
        assert not result.unresolved[k] and result.rel_error[k] > result.tol
    assert result.unresolved[_flat(CANCELLED, W.shape)]


@pytest.mark.parametrize(
    ("dtype", "method", "why"),
    [
        ("float64", "centered", None),
        (
            "float32",
            "centered",
            "float32 rounding alone gives relative errors of 1e-3 and more; only",
        ),
        ("float64", "forward", "forward differences add an O(h) truncation error; only"),
        ("float32", "forward", "1e-3 and more and forward differences add an O(h) truncation"),
    ],
)
def test_the_cs231n_bands_read_only_float64_centred_differences(dtype, method, why):
    W, X, y = _problem(seed=18)
    result = check_gradient("svm", W.astype(dtype), X, y, reg=1.0, method=method, tol=1.0)
    assert result.passed and bands_apply(dtype, method) is (why is None)
    if why is None:
        assert result.band.startswith("excellent")
    else:
        assert result.band.startswith("the CS231n bands are for float64 centred differences")
        assert why in result.band


def test_every_weight_unresolved_is_inconclusive():
    W, X, y = _cancelled_problem("softmax", 64.0)
    result = check_gradient("softmax", W, X, y, coords=np.array([_flat(CANCELLED, W.shape)]))
    assert result.unresolved.all()
    assert np.isnan(result.max_rel_error)
    assert not result.passed and result.status == "inconclusive"
    assert result.verdict().startswith("INCONCLUSIVE: every checked weight")
    assert result.band.startswith("nothing to judge")


def test_resolution_is_the_fd_error_as_a_relative_error():
    W, X, y = _problem(seed=16)
    result = check_gradient("softmax", W, X, y, reg=3.0)
    np.testing.assert_allclose(
        result.resolution,
        result.fd_error / (np.abs(result.analytic) + np.abs(result.numerical)),
    )


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
    # A gradient scaled by 1 + e has relative errors e / (2 + e): float32's tolerances sit
    # below those of a 1% (centred) and a 10% (forward) error (issue 20), above float64's.
    assert 1e-4 < default_tolerance("float32", "centered") < 0.01 / 2.01
    assert 1e-4 < default_tolerance("float32", "forward") < 0.1 / 2.1


# (dtype, method, the relative size of a planted error the default settings must catch)
CATCHES = [
    ("float64", "centered", 1e-3),
    ("float64", "forward", 1e-2),
    ("float32", "centered", 1e-2),
    ("float32", "forward", 1e-1),
]


@pytest.mark.parametrize(("dtype", "method", "error"), CATCHES)
@pytest.mark.parametrize("name", list(LOSSES))
def test_the_defaults_pass_a_correct_gradient_and_fail_a_planted_error(name, dtype, method, error):
    """W = 1e-4 * N(0, 1) on pixel-scale data with the notes' reg 2.5e4 (the built-in
    defaults), default step and tolerance: a correct gradient passes (most weights judged, but
    for float32 forward differences); the same gradient scaled by 1 +- error fails."""
    W, X, y = _problem(seed=21, n=100, c=10, d=3073, w_scale=1e-4)  # CIFAR-10 shapes
    W, X = W.astype(dtype), X.astype(dtype)
    coords = np.random.default_rng(21).choice(W.size, 200, replace=False)
    options = {"coords": coords, "reg": 2.5e4, "method": method}
    correct = check_gradient(name, W, X, y, **options)
    assert correct.status == "pass", correct.verdict()
    if (dtype, method) != ("float32", "forward"):  # that one resolves few weights (softmax: 3%)
        assert (correct.kink | correct.unresolved).mean() < 0.5
    for scale in (1 + error, 1 - error):

        def planted(*args, scale=scale, **kwargs):
            value, dW = LOSSES[name](*args, **kwargs)
            return value, dW * dW.dtype.type(scale)

        wrong = check_gradient(name, W, X, y, analytic_fn=planted, **options)
        assert wrong.status == "fail", (scale, wrong.verdict())


@pytest.mark.parametrize(
    ("dtype", "full_loss"),
    # Whole-loss probes of float64 weights stay finite at h = 1e300 (a FAIL, or kinks), as
    # their L2 term is not differenced apart; the fast path's and float32's overflow.
    [(np.float64, False), (np.float32, False), (np.float32, True)],
)
@pytest.mark.parametrize("name", list(LOSSES))
def test_a_step_that_overflows_is_refused_without_warnings(name, dtype, full_loss):
    W, X, y = _problem(seed=19)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(StepTooLarge, match=r"h=1e\+300 is too large for float") as caught:
            check_gradient(name, W.astype(dtype), X, y, h=1e300, full_loss=full_loss)
    assert isinstance(caught.value, SvmtrainError) and caught.value.argument == "h"


def test_a_w_whose_loss_overflows_is_refused_without_warnings():
    W, X, y = _problem(seed=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ArgumentError, match="the loss at W is not finite") as caught:
            check_gradient("softmax", np.full_like(W, 1e306), X, y, h=1e300)
    assert caught.value.arguments == ("W",)
