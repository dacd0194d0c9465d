"""The step-size sweep library: parsing, the starting W, gradients and the sweep's numbers,
checked against the loop reference (svm_loss_naive) on problems small enough to do by hand."""

import math
import re

import numpy as np
import pytest

from svmtrain.config import Config, ModelConfig, PreprocessConfig, TrainConfig
from svmtrain.core.losses import LOSSES, svm_loss_naive
from svmtrain.data.preprocess import Splits
from svmtrain.errors import ArgumentError, DivergenceError, ProblemSizeError
from svmtrain.experiments import sweep


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-6", (1e-6,)),
        ("1e-10,1e-9,1e-8", (1e-10, 1e-9, 1e-8)),
        (" 5e-7 , 1e-7 ", (1e-7, 5e-7)),  # spaces allowed, sorted ascending
        ("0.5,2", (0.5, 2.0)),
    ],
)
def test_parse_steps(text, expected):
    assert sweep.parse_steps(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "has an empty item"),
        ("1e-6,", "has an empty item"),
        ("1e-6,,1e-5", "has an empty item"),
        ("abc", "'abc' is not a number"),
        ("1e-6;1e-5", "'1e-6;1e-5' is not a number"),
        ("0", "finite number > 0. Got '0'"),
        ("-1e-6", "finite number > 0. Got '-1e-6'"),
        ("inf", "finite number > 0. Got 'inf'"),
        ("nan", "finite number > 0. Got 'nan'"),
        ("1e-6,1e-6", "gives the step size 1e-06 twice"),
        (",".join(["1e-3"] * 2 + [f"{k}e-9" for k in range(1, 100)]), "at most 100"),
    ],
)
def test_parse_steps_rejects(text, message):
    with pytest.raises(ArgumentError, match=message.replace("(", r"\(")) as caught:
        sweep.parse_steps(text)
    assert caught.value.argument == "steps"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-10:-1", tuple(10.0**k for k in range(-10, 0))),
        ("-3:-3", (1e-3,)),
        (" -2 : 1 ", (1e-2, 1e-1, 1.0, 10.0)),
        ("0:2", (1.0, 10.0, 100.0)),
    ],
)
def test_parse_range(text, expected):
    assert sweep.parse_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-10", "must be LOW:HIGH"),
        ("-10:-5:-1", "must be LOW:HIGH"),
        ("a:b", "two integer exponents"),
        ("-10.5:-1", "two integer exponents"),
        ("1e-10:1e-1", "two integer exponents"),
        (":-1", "two integer exponents"),
        ("-1:-10", "LOW must not exceed HIGH; did you mean -10:-1?"),
        ("-400:-1", "must lie in -307..307"),
        ("-200:0", "gives 201 step sizes; at most 100"),
    ],
)
def test_parse_range_rejects(text, message):
    with pytest.raises(ArgumentError, match=message.replace("?", r"\?")) as caught:
        sweep.parse_range(text)
    assert caught.value.argument == "range"


def test_initial_weights_are_the_notes_uniform_start():
    W = sweep.initial_weights(10, 3073, seed=7, dtype="float32")
    assert W.shape == (10, 3073) and W.dtype == np.float32
    assert W.min() >= 0 and W.max() < 0.001
    assert abs(W.mean() - 0.0005) < 1e-5  # uniform on [0, 0.001): mean 0.0005
    expected = np.random.default_rng(7).random((10, 3073)) * 0.001
    np.testing.assert_array_equal(W, expected.astype(np.float32))
    W64 = sweep.initial_weights(10, 3073, seed=7, dtype="float64")
    np.testing.assert_array_equal(W64, expected)
    assert not np.array_equal(W64, sweep.initial_weights(10, 3073, seed=8, dtype="float64"))


def _problem(seed=0, n=12, d=7, c=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 3
    X[:, -1] = 1.0  # the bias column
    return X, rng.integers(0, c, n), rng.random((c, d)) * 0.1


MODEL = ModelConfig(loss="svm", delta=1.0, reg=0.3, reg_bias=False)


def test_sweep_numbers_match_the_loop_reference():
    X, y, W = _problem()
    steps = sweep.parse_range("-3:1")
    loss0, dW = sweep.gradient(MODEL, X, y, W, "analytic")
    losses = sweep.losses_along(sweep.loss_function(MODEL, X, y), W, dW, steps)
    result = sweep.Sweep(np.asarray(steps), losses, loss0)

    ref0, ref_dW = svm_loss_naive(W, X, y, 0.3, delta=1.0, reg_bias=False)
    ref = np.array(
        [svm_loss_naive(W - s * ref_dW, X, y, 0.3, delta=1.0, reg_bias=False)[0] for s in steps]
    )
    assert loss0 == pytest.approx(ref0, rel=1e-12)
    np.testing.assert_allclose(result.losses, ref, rtol=1e-12)
    np.testing.assert_allclose(result.change, ref - ref0, rtol=1e-10, atol=1e-12)
    assert result.best == int(np.argmin(ref))
    np.testing.assert_array_equal(result.worse, ref > ref0)
    assert result.worse.any() and not result.worse.all()  # the problem exercises both
    records = result.records()
    assert [r["step"] for r in records] == list(steps)
    assert [r["best"] for r in records] == [k == np.argmin(ref) for k in range(len(steps))]
    assert [r["worse"] for r in records] == list(ref > ref0)


def test_the_verdict_and_the_csv_come_from_the_sweep(tmp_path):
    partly = sweep.Sweep(np.array([1e-3, 1.0]), np.array([4.0, math.inf]), 5.0)
    partly.require_a_finite_loss()  # one finite loss: no error
    path = partly.write_csv(tmp_path / "sweep.csv")
    assert path.read_text().splitlines() == [
        "step,loss,change,best,worse",
        "0.001,4.0,-1.0,true,false",
        "1.0,inf,inf,false,true",
    ]
    overflowed = sweep.Sweep(np.array([1.0, 2.0]), np.array([math.inf, math.nan]), 5.0)
    with pytest.raises(DivergenceError, match=re.escape(sweep.OVERFLOW)):
        overflowed.require_a_finite_loss()


def test_non_finite_losses_are_worse_and_never_best():
    result = sweep.Sweep(
        np.array([1e-3, 1e-2, 1e-1, 1.0]), np.array([4.0, 3.0, math.inf, math.nan]), 5.0
    )
    assert result.best == 1
    np.testing.assert_array_equal(result.worse, [False, False, True, True])
    nothing = sweep.Sweep(np.array([1.0, 2.0]), np.array([math.inf, math.nan]), 5.0)
    assert nothing.best is None
    assert not any(r["best"] for r in nothing.records())
    unchanged_or_worse = sweep.Sweep(np.array([1e-310, 1.0]), np.array([5.0, 6.0]), 5.0)
    assert unchanged_or_worse.best is None
    np.testing.assert_array_equal(unchanged_or_worse.unchanged, [True, False])


def test_a_tie_picks_the_smaller_step():
    result = sweep.Sweep(np.array([1e-3, 1e-2, 1e-1]), np.array([2.0, 1.0, 1.0]), 3.0)
    assert result.best == 1


def test_losses_along_overflow_is_inf_not_a_warning():
    X, y, W = _problem()
    W32 = W.astype(np.float32)
    _, dW = sweep.gradient(MODEL, X, y, W32, "analytic")
    with np.errstate(all="raise"):
        losses = sweep.losses_along(sweep.loss_function(MODEL, X, y), W32, dW, (1e-3, 1e40))
    assert np.isfinite(losses[0]) and not np.isfinite(losses[1])


@pytest.mark.parametrize("loss", list(LOSSES))
def test_numerical_gradient_matches_the_reference(loss):
    X, y, W = _problem(seed=3)
    model = ModelConfig(loss=loss, delta=1.0, reg=0.3, reg_bias=True)
    calls = []
    loss0, dW = sweep.gradient(model, X, y, W, "numerical", progress=calls.append)
    ref0, ref_dW = LOSSES[loss].naive(W, X, y, 0.3, reg_bias=True)  # delta: the default 1.0
    assert loss0 == pytest.approx(ref0, rel=1e-12)
    assert dW.dtype == W.dtype and dW.shape == W.shape
    # Centred differences in float64: exact between kinks for a piecewise polynomial of degree
    # <= 2 (the hinge losses), O(h^2) for a smooth one (softmax).
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-6, atol=1e-7)
    assert calls == [1] * W.size


def test_numerical_gradient_of_float32_weights_is_float32_and_leaves_w_alone():
    X, y, W = _problem(seed=4)
    W32 = W.astype(np.float32)
    before = W32.copy()
    _, dW = sweep.gradient(MODEL, X.astype(np.float32), y, W32, "numerical")
    np.testing.assert_array_equal(W32, before)
    assert dW.dtype == np.float32
    _, ref_dW = svm_loss_naive(W, X, y, 0.3, delta=1.0, reg_bias=False)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-4, atol=1e-4)


def test_unknown_gradient_method():
    X, y, W = _problem()
    with pytest.raises(ArgumentError, match="Unknown gradient 'exact': choose one of analytic"):
        sweep.gradient(MODEL, X, y, W, "exact")


@pytest.mark.parametrize(
    ("cost", "budget", "timed_calls"),
    [
        (0.2, 0.5, 3),  # 2 calls (0.4 s) are under budget, a third passes it
        (1.0, 0.5, 2),  # at least 2, whatever the budget
        (0.0, 0.5, 50),  # at most 50
    ],
)
def test_seconds_per_evaluation_is_the_mean_of_timed_calls(monkeypatch, cost, budget, timed_calls):
    """On a fake clock that each loss evaluation advances by ``cost`` seconds: the first call
    is not timed, then the mean over the timed calls is returned."""
    clock = {"now": 0.0, "calls": 0}

    def loss_function(model, X, y):
        def loss(W):
            clock["now"] += cost
            clock["calls"] += 1
            return 0.0

        return loss

    monkeypatch.setattr(sweep, "loss_function", loss_function)
    monkeypatch.setattr(sweep.time, "perf_counter", lambda: clock["now"])
    X, y, W = _problem()
    seconds = sweep.seconds_per_evaluation(MODEL, X, y, W, budget=budget)
    assert clock["calls"] == 1 + timed_calls
    assert seconds == pytest.approx(cost)


def test_numerical_evaluations():
    assert sweep.numerical_evaluations(10 * 3073) == 61_460


def _splits():
    """The 12 examples (D = 7, 4 classes) of :func:`_problem` as training images, and no others."""
    X, y, _ = _problem()
    none = np.zeros((0, 7))
    return Splits(
        X[:, :6], y, none[:, :6], y[:0], none[:, :6], y[:0], np.zeros(6), np.ones(6), tuple("abcd")
    )


CFG = Config(model=MODEL, preprocess=PreprocessConfig(dtype="float64"), train=TrainConfig(seed=5))


@pytest.mark.parametrize(
    ("num_examples", "seed", "used_examples", "used_seed"),
    [(None, None, 12, 5), (5, 2, 5, 2), (12, 0, 12, 0)],  # None: every image; cfg.train.seed
)
def test_run_sweep_matches_the_loop_reference(num_examples, seed, used_examples, used_seed):
    steps = sweep.parse_range("-3:1")
    result = sweep.run_sweep(
        CFG, _splits(), steps, num_examples=num_examples, seed=seed, progress=False
    )

    X, y, _ = _problem()
    X, y = X[:used_examples], y[:used_examples]
    W = np.random.default_rng(used_seed).random((4, 7)) * 0.001  # the notes' uniform start
    ref0, ref_dW = svm_loss_naive(W, X, y, 0.3, delta=1.0, reg_bias=False)
    ref = [svm_loss_naive(W - s * ref_dW, X, y, 0.3, delta=1.0, reg_bias=False)[0] for s in steps]
    assert result.original_loss == pytest.approx(ref0, rel=1e-12)
    np.testing.assert_array_equal(result.steps, steps)
    np.testing.assert_allclose(result.losses, ref, rtol=1e-12)
    assert result.best == int(np.argmin(ref)) and min(ref) < ref0


def test_run_sweep_numerical_says_its_cost_first_and_agrees_with_analytic():
    costs = []

    def on_cost(*args):
        costs.append(args)

    steps = (1e-3, 1e-2, 1e-1)
    numerical = sweep.run_sweep(
        CFG, _splits(), steps, method="numerical", progress=False, on_numerical_cost=on_cost
    )
    assert len(costs) == 1
    seconds, weights, examples = costs[0]
    assert seconds > 0 and (weights, examples) == (4 * 7, 12)
    analytic = sweep.run_sweep(CFG, _splits(), steps, progress=False, on_numerical_cost=on_cost)
    assert len(costs) == 1  # nothing to estimate for the formula
    assert numerical.original_loss == analytic.original_loss
    np.testing.assert_allclose(numerical.losses, analytic.losses, rtol=1e-8)


@pytest.mark.parametrize(
    ("num_examples", "message"),
    [
        (0, "must be at least 1. Got 0 instead."),
        (13, "the training split has 12 images (data.num_train and data.val_size set it). Got 13"),
    ],
)
def test_run_sweep_refuses_a_bad_number_of_examples(num_examples, message):
    with pytest.raises(ProblemSizeError, match=re.escape(message)) as caught:
        sweep.run_sweep(CFG, _splits(), (1e-3,), num_examples=num_examples, progress=False)
    assert caught.value.argument == "num_examples"
    assert str(caught.value).startswith("num_examples")


def test_run_sweep_unknown_method():
    with pytest.raises(ArgumentError, match="Unknown gradient 'exact'"):
        sweep.run_sweep(CFG, _splits(), (1e-3,), method="exact", progress=False)
