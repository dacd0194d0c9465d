"""svmtrain.experiments.gradcheck: the data, W and weights a gradient check runs on."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from svmtrain.config import load_config
from svmtrain.core.gradcheck import check_gradient
from svmtrain.core.losses import LOSSES
from svmtrain.errors import (
    ArgumentError,
    ProblemSizeError,
    StepTooSmall,
    SvmtrainError,
    require_count,
)
from svmtrain.experiments.gradcheck import (
    DEFAULT_CHECKS,
    SYNTHETIC_PIXEL_STD,
    make_problem,
    run_gradcheck,
    synthetic_data,
)

SHAPE = (10, 3073)


def test_synthetic_data_is_pixel_scale_with_a_bias_column():
    X, y = synthetic_data(500, np.random.default_rng(0))
    assert X.shape == (500, 3073) and X.dtype == np.float64
    np.testing.assert_array_equal(X[:, -1], 1.0)
    assert abs(X[:, :-1].std() - SYNTHETIC_PIXEL_STD) < 1.0
    assert y.dtype == np.intp and set(np.unique(y)) == set(range(10))


def test_synthetic_data_takes_other_shapes_and_spreads():
    X, y = synthetic_data(4, np.random.default_rng(0), pixel_std=1.0, num_pixels=6, num_classes=3)
    assert X.shape == (4, 7) and y.max() < 3
    np.testing.assert_array_equal(X[:, -1], 1.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_synthetic_problem(dtype):
    p = make_problem(load_config(), num_examples=7, synthetic=True, dtype=dtype, checks=5)
    assert p.W.shape == SHAPE and p.X.shape == (7, 3073) and p.y.shape == (7,)
    assert p.W.dtype == p.X.dtype == np.dtype(dtype)
    assert np.all(np.diff(p.coords) > 0) and p.coords[0] >= 0 and p.coords[-1] < p.W.size
    # W = init_scale * N(0, 1): the built-in init_scale is 1e-4.
    assert 0.5e-4 < p.W.std() < 2e-4


def test_weight_scale_overrides_the_config():
    p = make_problem(load_config(), num_examples=3, synthetic=True, weight_scale=2.0)
    assert 1.5 < p.W.std() < 2.5


def test_every_weight_when_checks_is_none():
    assert make_problem(load_config(), num_examples=3, synthetic=True).coords is None


def test_streams_are_separate_and_seeded():
    cfg = load_config()
    few = make_problem(cfg, num_examples=5, synthetic=True, checks=3, seed=4)
    many = make_problem(cfg, num_examples=5, synthetic=True, checks=300, seed=4)
    # The sample size draws from its own stream: data and W do not move with it.
    np.testing.assert_array_equal(few.W, many.W)
    np.testing.assert_array_equal(few.X, many.X)
    other = make_problem(cfg, num_examples=5, synthetic=True, checks=3, seed=5)
    assert not np.array_equal(few.W, other.W)


def test_the_problem_feeds_check_gradient():
    p = make_problem(load_config(), num_examples=20, synthetic=True, checks=40)
    result = check_gradient("svm", p.W, p.X, p.y, coords=p.coords, reg=1.0)
    assert result.passed and len(result.rel_error) == 40


@pytest.mark.parametrize(
    ("options", "argument", "message"),
    [
        ({"checks": 30_731}, "checks", "must be at most 30,730 (the weights). Got 30731 instead."),
        ({"checks": 0}, "checks", "must be at least 1. Got 0 instead."),
        ({"num_examples": 0}, "num_examples", "must be at least 1. Got 0 instead."),
        (
            {"num_examples": 50_001},
            "num_examples",
            "must be at most 50,000 with synthetic data (the size of CIFAR-10's training set). "
            "Got 50,001 instead.",
        ),
    ],
)
def test_impossible_sizes_are_refused(options, argument, message):
    with pytest.raises(ProblemSizeError, match=re.escape(message)) as caught:
        make_problem(load_config(), **{"num_examples": 3, "synthetic": True, **options})
    assert caught.value.argument == argument
    assert isinstance(caught.value, ValueError)
    # A Python caller is told the parameter; the CLI puts the bare reason after the option.
    assert str(caught.value) == f"{argument} {caught.value.reason}"
    assert caught.value.reason.startswith(message)


def _tiny_config(http_server, tiny_archive, tmp_path):
    archive = tiny_archive(train_counts=(4, 4, 4, 4, 4), test_count=3)
    server = http_server(archive.body)
    overrides = [
        f"data.dir={tmp_path / 'data'}",
        f"data.url={server.url}",
        f"data.sha256={archive.sha256}",
        "data.val_size=5",
        "preprocess.scaling=standardize",
    ]
    return archive, load_config(None, overrides)


def test_cifar_problem_takes_the_first_training_images(http_server, tiny_archive, tmp_path):
    archive, cfg = _tiny_config(http_server, tiny_archive, tmp_path)
    p = make_problem(cfg, num_examples=6, checks=4, progress=False)
    assert p.X.shape == (6, 3073) and p.X.dtype == np.float64
    np.testing.assert_array_equal(p.y, archive.y_train[:6])
    np.testing.assert_array_equal(p.X[:, -1], 1.0)
    # Mean-subtracted and standardised over the 15 training images (20 less 5 for validation).
    pixels = archive.x_train[:15].astype(np.float64)
    expected = (pixels[:6] - pixels.mean(axis=0)) / pixels.std(axis=0)
    np.testing.assert_allclose(p.X[:, :-1], expected, rtol=1e-5, atol=1e-5)


def test_cifar_problem_refuses_more_examples_than_images(http_server, tiny_archive, tmp_path):
    _, cfg = _tiny_config(http_server, tiny_archive, tmp_path)
    with pytest.raises(ProblemSizeError, match=r"must be at most 15 .* Got 16 instead") as caught:
        make_problem(cfg, num_examples=16, progress=False)
    assert caught.value.argument == "num_examples"


@pytest.mark.parametrize("checks", [1, 3, 10, 25, 30_729])
def test_the_sample_covers_the_bias_column_and_every_class_row(checks):
    cfg = load_config()
    for seed in range(40 if checks < 1000 else 2):
        coords = make_problem(cfg, num_examples=2, synthetic=True, checks=checks, seed=seed).coords
        rows, columns = np.unravel_index(coords, SHAPE)
        assert len(set(coords)) == len(coords) == checks
        assert len(set(rows)) == min(checks, SHAPE[0]), seed
        assert (columns == SHAPE[1] - 1).any(), seed


def _bias_sign_flipped(name):
    def analytic(*args, **kwargs):
        loss, dW = LOSSES[name](*args, **kwargs)
        dW[:, -1] *= -1
        return loss, dW

    return analytic


def test_the_default_sample_catches_a_bias_only_bug_on_every_seed():
    # The default check: DEFAULT_CHECKS weights on 100 synthetic examples, the built-in model.
    # Before the sample was spread, a bias-only sign flip passed on 0 of 30 seeds.
    cfg = load_config()
    m = cfg.model
    for seed in range(30):
        p = make_problem(cfg, num_examples=100, synthetic=True, checks=DEFAULT_CHECKS, seed=seed)
        for name, loss in LOSSES.items():
            options = {"reg": m.reg, "reg_bias": m.reg_bias, **loss.options(m)}
            right = check_gradient(name, p.W, p.X, p.y, coords=p.coords, **options)
            assert right.passed, (name, seed)
            flipped = _bias_sign_flipped(name)
            wrong = check_gradient(
                name, p.W, p.X, p.y, coords=p.coords, analytic_fn=flipped, **options
            )
            assert not wrong.passed, (name, seed)


# ---------------------------------------------------------------------------------------------
# run_gradcheck: what the CLI prints, for a Python caller


def test_run_gradcheck_gives_exactly_what_the_cli_prints():
    from click.testing import CliRunner

    from svmtrain.cli import main
    from svmtrain.io.records import to_json

    args = ["--loss", "softmax", "--checks", "6", "--reg", "2.5", "--seed", "3", "--reference"]
    cli = CliRunner().invoke(main, ["gradcheck", "--synthetic", "-n", "20", "--json", *args])
    run = run_gradcheck(
        load_config(),
        loss="softmax",
        num_examples=20,
        synthetic=True,
        checks=6,
        reg=2.5,
        seed=3,
        reference=True,
        progress=False,
    )
    printed, document = json.loads(cli.output), json.loads(to_json(run.to_dict()))
    assert printed.pop("seconds") >= 0 and document.pop("seconds") >= 0
    assert printed == document
    assert document["verdict"] == run.result.verdict() and document["verdict"].startswith("PASS")
    assert list(document)[:6] == ["passed", "status", "verdict", "band", "loss", "data"]

    text = CliRunner().invoke(main, ["gradcheck", "--synthetic", "-n", "20", *args]).output
    timing = re.compile(r"checked in [0-9.]+ s")
    assert timing.sub("", text.rstrip("\n")) == timing.sub("", run.report(rows=20))


def test_run_gradcheck_takes_the_losses_hyperparameters_by_name():
    run = run_gradcheck(
        load_config(), synthetic=True, num_examples=10, checks=3, delta=2.0, progress=False
    )
    assert run.settings["delta"] == 2.0 and run.result.passed
    with pytest.raises(ArgumentError, match="margin") as caught:
        run_gradcheck(load_config(), synthetic=True, num_examples=10, margin=2.0)
    assert caught.value.argument == "margin"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"h": 0.0}, "h must be a finite number > 0. Got 0.0 instead."),
        ({"tol": -1e-7}, "tol must be a finite number > 0. Got -1e-07 instead."),
        ({"reg": -1.0}, "reg must be a finite number >= 0. Got -1.0 instead."),
        ({"reg": float("nan")}, "reg must be a finite number >= 0. Got nan instead."),
        ({"weight_scale": float("inf")}, "weight_scale must be a finite number > 0. Got inf"),
        ({"delta": 0.0}, "delta must be a finite number > 0. Got 0.0 instead."),
        ({"h": "abc"}, "h must be a finite number > 0. Got 'abc' instead."),
    ],
)
def test_run_gradcheck_checks_its_numbers(options, message):
    """Checked once, in the library: the CLI's --h, --tol, --reg, --delta, --weight-scale
    show these reasons after the option."""
    with pytest.raises(ArgumentError) as caught:
        run_gradcheck(load_config(), synthetic=True, num_examples=3, progress=False, **options)
    assert str(caught.value).startswith(message)
    assert caught.value.arguments == tuple(options)


def test_size_and_step_errors_are_svmtrain_errors_that_name_the_argument():
    with pytest.raises(ProblemSizeError) as caught:
        require_count("checks", 0)
    assert caught.value.argument == "checks" and caught.value.exit_code == 2
    assert isinstance(caught.value, SvmtrainError) and isinstance(caught.value, ValueError)
    require_count("checks", None)
    require_count("checks", 1)
    with pytest.raises(StepTooSmall) as step:
        make = make_problem(load_config(), num_examples=3, synthetic=True, weight_scale=1e200)
        check_gradient("svm", make.W, make.X, make.y, h=1e-5, coords=np.array([0]))
    assert isinstance(step.value, SvmtrainError) and step.value.arguments == ("h",)
