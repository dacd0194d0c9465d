"""Losses against hand-computed numbers and against the loop references.

The tests below the hand-computed cases run over the registry, so a new loss is checked by
them as soon as it has a record.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from svmtrain.core.losses import (
    HYPERPARAMETERS,
    LOSSES,
    predict,
    reg_loss,
    softmax_loss,
    softmax_loss_naive,
    svm_kink_gaps,
)

LOSS_NAMES = list(LOSSES)

# ---------------------------------------------------------------------------------------------
# Hand-computed SVM case: C = 3 classes, D = 3 (two features and the bias), N = 2.
#   example 0: x = (1, 2, 1), y = 0, scores (0.5, 1.5, 2.0): margins 2.0 and 2.5, both active
#   example 1: x = (2, -1, 1), y = 2, scores (1.0, 0.0, 1.5): margins 0.5 (active), -0.5
# Data loss (4.5 + 0.5) / 2 = 2.5. Gradient: example 0 adds x0 to rows 1 and 2 and -2 x0 to
# row 0; example 1 adds x1 to row 0 and -x1 to row 2; all halved.

SVM_W = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.5], [-0.5, 0.0, 2.5]])
SVM_X = np.array([[1.0, 2.0, 1.0], [2.0, -1.0, 1.0]])
SVM_Y = np.array([0, 2])
SVM_DATA_GRAD = np.array([[0.0, -2.5, -0.5], [0.5, 1.0, 0.5], [-0.5, 1.5, 0.0]])


def _svm_case(reg, reg_bias, delta, loss, dW):
    return (SVM_W, SVM_X, SVM_Y, reg, reg_bias, {"delta": delta}, loss, dW)


# The squared hinge on the SVM case: sum of squared active margins, each margin m adding 2 m x
# to its class's row and taking it from the correct row.
#   delta 1: (2.0^2 + 2.5^2 + 0.5^2) / 2 = 5.25;
#            dW rows: (-9 x0 + x1) / 2, 4 x0 / 2, (5 x0 - x1) / 2
#   delta 2: margins 3.0, 3.5 | 1.5, 0.5: (9 + 12.25 + 2.25 + 0.25) / 2 = 11.875;
#            dW rows: (-13 x0 + 3 x1) / 2, (6 x0 + x1) / 2, (7 x0 - 4 x1) / 2
SQUARED_HINGE_DATA_GRAD = np.array([[-3.5, -9.5, -4.0], [2.0, 4.0, 2.0], [1.5, 5.5, 2.0]])

# Hand-computed softmax case: C = 3, D = 3, N = 2, W zero but for W[2, 0] = ln 2.
#   example 0: x = (1, 0, 1), y = 2: scores (0, 0, ln 2), p = (1/4, 1/4, 1/2), loss ln 2
#   example 1: x = (0, 1, 1), y = 0: scores (0, 0, 0),    p = (1/3, 1/3, 1/3), loss ln 3
# dW = ((p0 - e2) x0^T + (p1 - e0) x1^T) / 2.
OVR_DATA_GRAD = np.array([[3.5, -3.0, 1.5], [4.5, 4.0, 3.5], [3.0, 6.0, 3.0]])

SOFTMAX_W = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [math.log(2), 0.0, 0.0]])
SOFTMAX_X = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
SOFTMAX_Y = np.array([2, 0])
SOFTMAX_LOSS = math.log(6) / 2
SOFTMAX_GRAD = np.array(
    [[1 / 8, -1 / 3, -5 / 24], [1 / 8, 1 / 6, 7 / 24], [-1 / 4, 1 / 6, -1 / 12]]
)

# loss name -> case name -> (W, X, y, reg, reg_bias, hyperparameters, loss, dW), every number
# worked out by hand above. Each registered loss must have some (a test says so).
HAND_CASES = {
    "svm": {
        # reg * sum(W^2): sum is 7.25, or 0.75 without the bias.
        "no reg": _svm_case(0.0, True, 1.0, 2.5, SVM_DATA_GRAD),
        "reg": _svm_case(0.1, True, 1.0, 2.5 + 0.725, SVM_DATA_GRAD + 0.2 * SVM_W),
        "reg, bias free": _svm_case(
            0.1,
            False,
            1.0,
            2.5 + 0.075,
            SVM_DATA_GRAD + 0.2 * np.hstack([SVM_W[:, :2], np.zeros((3, 1))]),
        ),
        # delta 2: margins 3.0, 3.5 | 1.5, 0.5 -> (6.5 + 2.0) / 2; now example 1 violates twice.
        "delta 2": _svm_case(
            0.0,
            True,
            2.0,
            4.25,
            np.array([[0.0, -2.5, -0.5], [1.5, 0.5, 1.0], [-1.5, 2.0, -0.5]]),
        ),
    },
    "squared_hinge": {
        "no reg": _svm_case(0.0, True, 1.0, 5.25, SQUARED_HINGE_DATA_GRAD),
        "reg, bias free": _svm_case(
            0.1,
            False,
            1.0,
            5.25 + 0.075,
            SQUARED_HINGE_DATA_GRAD + 0.2 * np.hstack([SVM_W[:, :2], np.zeros((3, 1))]),
        ),
        "delta 2": _svm_case(
            0.0,
            True,
            2.0,
            11.875,
            np.array([[-3.5, -14.5, -5.0], [4.0, 5.5, 3.5], [-0.5, 9.0, 1.5]]),
        ),
    },
    # One against the rest, t = +1 at the label: example 0 scores (0.5, 1.5, 2.0), t (1, -1, -1),
    # hinges (0.5, 2.5, 3.0); example 1 scores (1.0, 0.0, 1.5), t (-1, -1, 1), hinges (2, 1, 0).
    # Loss (15.5 + 5) / 2; dW_j = sum_i -2 t h x_i / 2.
    "ovr_squared_hinge": {
        "no reg": _svm_case(0.0, True, 1.0, 10.25, OVR_DATA_GRAD),
        "reg": _svm_case(0.1, True, 1.0, 10.25 + 0.725, OVR_DATA_GRAD + 0.2 * SVM_W),
        # delta 2: hinges (1.5, 3.5, 4.0) and (3, 2, 0.5): loss (30.5 + 13.25) / 2
        "delta 2": _svm_case(
            0.0,
            True,
            2.0,
            21.875,
            np.array([[4.5, -6.0, 1.5], [7.5, 5.0, 5.5], [3.0, 8.5, 3.5]]),
        ),
    },
    "softmax": {
        "no reg": (SOFTMAX_W, SOFTMAX_X, SOFTMAX_Y, 0.0, True, {}, SOFTMAX_LOSS, SOFTMAX_GRAD),
    },
}


@pytest.mark.parametrize("version", ["vectorised", "naive"])
@pytest.mark.parametrize(
    ("name", "case"),
    [(name, case) for name, cases in HAND_CASES.items() for case in cases],
)
def test_hand_computed(name, case, version):
    W, X, y, reg, reg_bias, options, loss, dW = HAND_CASES[name][case]
    impl = getattr(LOSSES[name], version)
    got_loss, got_dW = impl(W, X, y, reg, reg_bias=reg_bias, **options)
    assert got_loss == pytest.approx(loss, abs=1e-14)
    np.testing.assert_allclose(got_dW, dW, atol=1e-14)


def test_softmax_is_stable_for_huge_scores():
    # Scores of 1e4 overflow exp() unless shifted; the loss depends only on score differences.
    shift = np.zeros_like(SOFTMAX_W)
    shift[:, 2] = 1e4  # every class's bias, so every score rises by 1e4
    loss, dW = softmax_loss(SOFTMAX_W + shift, SOFTMAX_X, SOFTMAX_Y)
    assert loss == pytest.approx(SOFTMAX_LOSS, abs=1e-12)
    np.testing.assert_allclose(dW, SOFTMAX_GRAD, atol=1e-12)


@pytest.mark.parametrize("name", ["svm", "squared_hinge"])
def test_hinge_gradient_is_zero_at_a_margin_of_exactly_zero(name):
    # scores (1, 0), y = 0, delta 1: the margin of class 1 is exactly 0, counted as inactive
    # (svm: the subgradient taken; squared hinge: its gradient, 2 * 0, from both sides).
    W = np.array([[1.0, 0.0], [0.0, 0.0]])
    X = np.array([[1.0, 1.0]])
    for impl in (LOSSES[name].vectorised, LOSSES[name].naive):
        loss, dW = impl(W, X, np.array([0]))
        assert loss == 0.0
        assert not dW.any()


def test_squared_hinge_is_the_hinge_squared_margin_by_margin():
    W, X, y = _problem(seed=11)
    scores = X @ W.T
    rows = np.arange(len(y))
    margins = scores - scores[rows, y][:, None] + 1.5
    margins[rows, y] = 0
    expected = (np.maximum(margins, 0) ** 2).sum(axis=1)
    got = LOSSES["squared_hinge"].example_losses(scores, y, delta=1.5)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    assert np.all(got <= LOSSES["svm"].example_losses(scores, y, delta=1.5) ** 2 + 1e-12)


# ---------------------------------------------------------------------------------------------
# Vectorised against the loops on random data


def _problem(seed: int, n: int = 40, c: int = 10, d: int = 51, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = np.ones((n, d))
    X[:, :-1] = rng.normal(0, 64, (n, d - 1))
    W = 2e-3 * rng.standard_normal((c, d))  # scores of spread ~1: active and inactive margins
    return W.astype(dtype), X.astype(dtype), rng.integers(0, c, n)


@pytest.mark.parametrize("reg_bias", [True, False])
@pytest.mark.parametrize("reg", [0.0, 0.5])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_vectorised_matches_loop(name, reg, reg_bias):
    W, X, y = _problem(seed=1)
    loss, dW = LOSSES[name].vectorised(W, X, y, reg, reg_bias=reg_bias)
    ref_loss, ref_dW = LOSSES[name].naive(W, X, y, reg, reg_bias=reg_bias)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-12, atol=1e-12 * np.abs(ref_dW).max())
    assert np.mean(dW != 0) > 0.05  # a real gradient, not trivially zero


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_float32_follows_w_and_matches_float64(name):
    W, X, y = _problem(seed=2)
    loss64, dW64 = LOSSES[name](W, X, y, 0.5)
    loss32, dW32 = LOSSES[name](W.astype(np.float32), X.astype(np.float32), y, 0.5)
    assert dW32.dtype == np.float32
    assert isinstance(loss32, float)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(dW32, dW64, rtol=1e-3, atol=1e-4 * np.abs(dW64).max())


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_the_dtype_of_w_decides(name):
    W, X, y = _problem(seed=3)
    loss, dW = LOSSES[name](W, X.astype(np.float32), y)  # float32 data, float64 weights
    assert dW.dtype == np.float64
    exact_loss, exact_dW = LOSSES[name](W, X.astype(np.float32).astype(np.float64), y)
    assert loss == exact_loss
    np.testing.assert_array_equal(dW, exact_dW)


# ---------------------------------------------------------------------------------------------
# Pieces and registries


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_is_mean_example_loss_plus_reg_loss(name):
    W, X, y = _problem(seed=4)
    loss, _ = LOSSES[name](W, X, y, 0.3, reg_bias=False)
    scores = X @ W.T
    per_example = LOSSES[name].example_losses(scores, y)
    assert per_example.shape == (len(y),)
    assert loss == pytest.approx(per_example.mean() + reg_loss(W, 0.3, False), rel=1e-13)
    # A stack of score matrices gives one row of per-example losses per matrix.
    stacked = LOSSES[name].example_losses(np.stack([scores, 2 * scores]), y)
    np.testing.assert_allclose(stacked[0], per_example, rtol=1e-13)
    np.testing.assert_allclose(stacked[1], LOSSES[name].example_losses(2 * scores, y), rtol=1e-13)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_score_gradient_is_the_loss_without_its_products(name):
    """Against the naive loop reference: its data loss, and its dW = coef.T @ X."""
    W, X, y = _problem(seed=8)
    record = LOSSES[name]
    data_loss, coef = record.score_gradient(X @ W.T, y)
    assert coef.shape == (len(y), W.shape[0]) and coef.dtype == W.dtype
    ref_loss, ref_dW = record.naive(W, X, y, 0.0)
    assert data_loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(coef.T @ X, ref_dW, rtol=1e-10, atol=1e-12)


def test_reg_loss_by_hand():
    assert reg_loss(SVM_W, 0.1) == pytest.approx(0.725)
    assert reg_loss(SVM_W, 0.1, reg_bias=False) == pytest.approx(0.075)
    assert reg_loss(SVM_W, 0.0) == 0.0


def test_softmax_has_no_margin_option():
    W, X, y = _problem(seed=5)
    assert LOSSES["softmax"].hyperparameters == ()
    for impl in (softmax_loss, softmax_loss_naive):
        with pytest.raises(TypeError, match="delta"):
            impl(W, X, y, 0.1, delta=1.0)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_loss_has_hand_computed_cases(name):
    """A new loss comes with its own hand-computed numbers (HAND_CASES), not only the
    registry-driven comparisons with its loop reference."""
    assert HAND_CASES.get(name), f"add hand-computed cases of the {name} loss to HAND_CASES"


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_record_is_named_by_its_key_and_calls_its_vectorised_loss(name):
    record = LOSSES[name]
    assert record.name == name
    W, X, y = _problem(seed=6)
    loss, dW = record(W, X, y, 0.2, reg_bias=False)
    ref_loss, ref_dW = record.vectorised(W, X, y, 0.2, reg_bias=False)
    assert loss == ref_loss
    np.testing.assert_array_equal(dW, ref_dW)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_function_of_a_record_takes_its_hyperparameters_with_one_default(name):
    record = LOSSES[name]
    functions = [record.vectorised, record.naive, record.example_losses, record.score_gradient]
    functions += [record.kink_gaps] if record.has_kinks else []
    for hyperparameter in record.hyperparameters:
        defaults = set()
        for fn in functions:
            parameter = inspect.signature(fn).parameters[hyperparameter]
            assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
            defaults.add(parameter.default)
        assert len(defaults) == 1, (hyperparameter, defaults)
    # And nothing but them (besides reg and reg_bias): no loss takes another loss's options.
    for foreign in HYPERPARAMETERS - set(record.hyperparameters):
        for fn in functions:
            assert foreign not in inspect.signature(fn).parameters


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_hyperparameter_changes_the_loss_the_same_way_in_both_versions(name):
    record = LOSSES[name]
    W, X, y = _problem(seed=7)
    for hyperparameter in record.hyperparameters:
        default = inspect.signature(record.vectorised).parameters[hyperparameter].default
        options = {hyperparameter: 2.5 * default}
        loss, dW = record.vectorised(W, X, y, 0.1, **options)
        ref_loss, ref_dW = record.naive(W, X, y, 0.1, **options)
        assert loss != record.vectorised(W, X, y, 0.1)[0]
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        np.testing.assert_allclose(dW, ref_dW, rtol=1e-12, atol=1e-12 * np.abs(ref_dW).max())


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_record_reads_its_options_from_settings(name):
    record = LOSSES[name]

    class Settings:
        pass

    settings = Settings()
    for k, hyperparameter in enumerate(sorted(HYPERPARAMETERS)):
        setattr(settings, hyperparameter, float(k + 2))
    expected = {h: getattr(settings, h) for h in record.hyperparameters}
    assert record.options(settings) == expected


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_default_steps_cover_both_dtypes_and_methods(name):
    record = LOSSES[name]
    for dtype in ("float64", "float32", np.float64, np.dtype("float32")):
        for method in ("centered", "forward"):
            assert 0 < record.default_step(dtype, method) < 1e-2
        assert record.default_step(dtype) == record.default_step(dtype, "centered")


def _difference(values: list[float]) -> float:
    """The finite difference of order len(values) - 1 of equally spaced values."""
    order = len(values) - 1
    return sum((-1) ** (order - k) * math.comb(order, k) * v for k, v in enumerate(values))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_kink_gaps_are_where_the_example_loss_changes_piece(name):
    """A loss that is a polynomial of degree d between kinks (the record's piecewise_degree)
    has a difference of order d + 1 of 0 (to rounding) where a score moves less than its gap,
    and not where the score sits on a kink (gap 0). A smooth loss has no kinks: its second
    difference shrinks with the step like h^2 everywhere."""
    record = LOSSES[name]
    W, X, y = _problem(seed=8)
    scores = X @ W.T
    h = 1e-4

    def difference(i: int, c: int, order: int) -> float:
        """The difference of order ``order`` of example i's loss along score (i, c), over
        ``order + 1`` points h apart centred on the score."""
        values = []
        for k in range(order + 1):
            moved = scores.copy()
            moved[i, c] += (k - order / 2) * h
            values.append(float(record.example_losses(moved, y)[i]))
        return _difference(values)

    assert record.has_kinks == (record.piecewise_degree is not None)
    if not record.has_kinks:
        for i, c in [(0, 0), (3, 2), (7, 9)]:
            assert abs(difference(i, c, 2)) < 1e-6
        return
    order = record.piecewise_degree + 1
    gaps = record.kink_gaps(scores, y)
    assert gaps.shape == scores.shape and np.all(gaps >= 0)
    far = np.argwhere(gaps > 10 * h)[:20]
    for i, c in far:
        assert abs(difference(i, c, order)) < 1e-12 * (1 + abs(scores[i]).sum()) ** order
    # Move scores by their gap, one way or the other: that puts them on a kink (gap 0), where
    # the next piece starts and the difference is of the size h^d.
    for i, c in far[:5]:
        start = scores[i, c]
        for sign in (1.0, -1.0):
            scores[i, c] = start + sign * gaps[i, c]
            if record.kink_gaps(scores, y)[i, c] < 1e-9 * (1 + abs(start)):
                break
        else:
            pytest.fail(f"no kink at a distance of the gap of score ({i}, {c})")
        assert abs(difference(i, c, order)) > h**record.piecewise_degree / 4
        scores[i, c] = start


def test_svm_kink_gaps_by_hand():
    # scores (1, 0, -5), y = 0, delta 1: margins of class 1 and 2 are 0 and -5; the correct
    # class moves both, so its gap is the smaller, 0.
    gaps = svm_kink_gaps(np.array([[1.0, 0.0, -5.0]]), np.array([0]), delta=1.0)
    np.testing.assert_array_equal(gaps, [[0.0, 0.0, 5.0]])


def test_predict_takes_the_highest_score():
    # scores: example 0 (0.5, 1.5, 2.0) -> 2; example 1 (1.0, 0.0, 1.5) -> 2
    np.testing.assert_array_equal(predict(SVM_W, SVM_X), [2, 2])
    np.testing.assert_array_equal(predict(SOFTMAX_W, SOFTMAX_X), [2, 0])  # a tie goes to 0


@pytest.mark.parametrize("version", ["vectorised", "naive"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_no_penalty_means_no_penalty_even_when_sum_w_squared_overflows(name, version):
    # float32 W of size 1e20: sum(W * W) is inf in float32, and 0 * inf would be NaN. With
    # reg = 0 the loss is the data loss alone, as computed from the same scores in float64.
    W, X, y = _problem(seed=9, c=4, d=9)
    W = (W * 1e22).astype(np.float32)
    X = (X * 1e-22).astype(np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.vdot(W, W))  # precondition: the overflow
    fn = getattr(LOSSES[name], version)
    loss, dW = fn(W, X, y, 0.0)
    exact_loss, exact_dW = fn(W.astype(np.float64), X.astype(np.float64), y, 0.0)
    assert math.isfinite(loss) and np.all(np.isfinite(dW))
    assert loss == pytest.approx(exact_loss, rel=1e-5)
    np.testing.assert_allclose(dW, exact_dW, rtol=1e-3, atol=1e-4 * np.abs(exact_dW).max())
    assert reg_loss(W, 0.0) == 0.0


# ---------------------------------------------------------------------------------------------
# Against torch autograd, where torch is installed (not a dependency: pip install torch)


def _torch_references():
    """loss name -> (scores tensor (N, C), y tensor (N,), delta) -> summed data loss, written
    with torch's own losses: MultiMarginLoss averages over the C classes (the correct one adds
    0), so it is scaled back by C."""
    F = pytest.importorskip("torch").nn.functional

    def margin(p):
        return lambda s, y, delta: (
            s.shape[1] * F.multi_margin_loss(s, y, p=p, margin=delta, reduction="sum")
        )

    return {
        "svm": margin(1),
        "squared_hinge": margin(2),
        "softmax": lambda s, y, delta: F.cross_entropy(s, y, reduction="sum"),
    }


@pytest.mark.parametrize("reg_bias", [True, False])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_and_gradient_match_torch_autograd(name, reg_bias):
    references = _torch_references()
    torch = pytest.importorskip("torch")
    assert name in references, f"add a torch reference of the {name} loss"
    W, X, y = _problem(seed=12)
    options = {"delta": 1.5} if "delta" in LOSSES[name].hyperparameters else {}
    loss, dW = LOSSES[name](W, X, y, 0.3, reg_bias=reg_bias, **options)
    Wt = torch.tensor(W, requires_grad=True)
    scores = torch.tensor(X) @ Wt.T
    penalised = Wt if reg_bias else Wt[:, :-1]
    data = references[name](scores, torch.tensor(y), options.get("delta", 1.0)) / len(y)
    total = data + 0.3 * (penalised**2).sum()
    total.backward()
    assert loss == pytest.approx(total.item(), rel=1e-13)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), rtol=1e-11, atol=1e-13 * np.abs(dW).max())


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_the_loop_reference_is_as_overflow_safe_as_the_vectorised_loss(name):
    """Scores in the thousands (W = N(0, 1) on pixel-scale data): softmax probabilities
    underflow to 0, which the loop once turned into log(0) = inf (issue 19 #13)."""
    W, X, y = _problem(seed=13)
    W = np.random.default_rng(13).standard_normal(W.shape)
    assert np.abs(X @ W.T).max() > 1000  # precondition: exp(-score gaps) underflows
    loss, dW = LOSSES[name](W, X, y, 0.1)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow is harmless
        ref_loss, ref_dW = LOSSES[name].naive(W, X, y, 0.1)
    assert math.isfinite(loss) and math.isfinite(ref_loss)
    assert ref_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(ref_dW, dW, rtol=1e-10, atol=1e-12 * np.abs(dW).max())
