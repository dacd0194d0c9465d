"""The problem a gradient check runs on: the data, the point W, and the weights to check.

:func:`make_problem` builds it from a config, on CIFAR-10 (loaded and preprocessed as the
config says, through :mod:`svmtrain.experiments.train`) or on synthetic pixels;
:func:`synthetic_data` is the pure part. The check itself is
:func:`svmtrain.core.gradients.check_gradient`::

    problem = make_problem(cfg, num_examples=200, synthetic=True, checks=None)
    result = check_gradient("svm", problem.W, problem.X, problem.y, coords=problem.coords)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svmtrain.config import Config
from svmtrain.data.format import NUM_CLASSES
from svmtrain.data.preprocess import PIXELS
from svmtrain.errors import ProblemSizeError
from svmtrain.experiments.train import load_splits

SYNTHETIC_PIXEL_STD = 64.0  # about the spread of CIFAR-10 pixels once the mean image is subtracted
# The most synthetic examples a check draws: CIFAR-10's training set (50,000 images, 1.2 GB of
# float64 pixels). A check needs far fewer, and a larger count would only exhaust the memory.
MAX_SYNTHETIC_EXAMPLES = 50_000


@dataclass(frozen=True)
class GradProblem:
    """Where and on what to check a gradient."""

    W: np.ndarray  # (C, D) of the requested dtype
    X: np.ndarray  # (N, D) of the same dtype; the last column is the bias feature, 1
    y: np.ndarray  # (N,) intp in [0, C)
    coords: np.ndarray | None  # (K,) sorted distinct flat indices into W; None: every weight


def synthetic_data(
    num_examples: int,
    rng: np.random.Generator,
    *,
    pixel_std: float = SYNTHETIC_PIXEL_STD,
    num_pixels: int = PIXELS,
    num_classes: int = NUM_CLASSES,
) -> tuple[np.ndarray, np.ndarray]:
    """X (N, num_pixels + 1) float64: Gaussian pixels N(0, pixel_std^2), shaped like
    mean-subtracted CIFAR-10 by default, then the bias column of ones; y (N,) intp, uniform
    over the classes."""
    X = np.ones((num_examples, num_pixels + 1))
    X[:, :num_pixels] = rng.normal(0.0, pixel_std, (num_examples, num_pixels))
    return X, rng.integers(0, num_classes, num_examples).astype(np.intp)


def make_problem(
    cfg: Config,
    *,
    num_examples: int,
    synthetic: bool = False,
    dtype: str = "float64",
    weight_scale: float | None = None,
    seed: int = 0,
    checks: int | None = None,
    progress: bool = True,
) -> GradProblem:
    """The first ``num_examples`` training images of CIFAR-10 (downloaded or cached, and
    preprocessed as ``cfg`` says; ``progress``: show the download's progress bar) or, with
    ``synthetic``, :func:`synthetic_data`; W = weight_scale * N(0, 1) (default
    cfg.model.init_scale), and ``checks`` weights drawn without replacement (None: every one).

    Data, W and the sample come from separate streams of ``seed``, so that e.g. ``checks``
    does not change W. Raises :class:`ProblemSizeError` when ``num_examples`` or ``checks`` is
    below 1, ``num_examples`` more than the config's training images (synthetic:
    MAX_SYNTHETIC_EXAMPLES) or ``checks`` more than the weights.
    """
    for argument, count in (("num_examples", num_examples), ("checks", checks)):
        if count is not None and count < 1:
            raise ProblemSizeError(argument, f"must be at least 1. Got {count} instead.")
    data_rng, weight_rng, coord_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    if synthetic:
        if num_examples > MAX_SYNTHETIC_EXAMPLES:
            raise ProblemSizeError(
                "num_examples",
                f"must be at most {MAX_SYNTHETIC_EXAMPLES:,} with synthetic data (the size of "
                f"CIFAR-10's training set). Got {num_examples:,} instead.",
            )
        X, y = synthetic_data(num_examples, data_rng)
    else:
        splits = load_splits(cfg, progress=progress)
        available = len(splits.y_train)
        if num_examples > available:
            raise ProblemSizeError(
                "num_examples",
                f"must be at most {available} (the training images of this config). "
                f"Got {num_examples} instead.",
            )
        X, y = splits.X_train[:num_examples], splits.y_train[:num_examples]
    X = X.astype(dtype, copy=False)
    scale = cfg.model.init_scale if weight_scale is None else weight_scale
    W = (scale * weight_rng.standard_normal((NUM_CLASSES, X.shape[1]))).astype(dtype)
    if checks is None:
        return GradProblem(W, X, y, None)
    if checks > W.size:
        raise ProblemSizeError(
            "checks", f"must be at most {W.size:,} (the weights). Got {checks} instead."
        )
    return GradProblem(W, X, y, np.sort(coord_rng.choice(W.size, size=checks, replace=False)))
