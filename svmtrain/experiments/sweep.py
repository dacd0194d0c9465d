"""The step-size experiment of the CS231n optimisation notes, as pure functions.

Start from one W, take the gradient of the loss there, and evaluate the loss at
``W - step * dW`` for a range of step sizes: too small a step barely moves the loss, a good one
lowers it most, and a larger one overshoots until the loss explodes. :func:`run_sweep` does the
whole experiment, loading the data unless given the splits::

    result = run_sweep(load_config(), num_examples=500)  # loads the data; steps 1e-10..1e-1
    print(result.text())  # what the command prints; result.to_dict() is its --json

Nothing here prints (a progress bar aside) or writes files unless asked (:meth:`Sweep.write_csv`);
the text, the warning, the CSV file, the JSON document and the overflow verdict of ``svmtrain
sweep-step`` come from here (:meth:`Sweep.text`, :func:`numerical_cost_warning`,
:meth:`Sweep.to_dict`, :meth:`Sweep.require_a_finite_loss`), so a Python caller gets the same.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from svmtrain.config import Config, ModelConfig
from svmtrain.core.blas import limited_threads
from svmtrain.core.differences import numerical_partials
from svmtrain.core.losses import HYPERPARAMETERS, LOSSES
from svmtrain.data.preprocess import Splits
from svmtrain.errors import ArgumentError, DivergenceError, require_count
from svmtrain.experiments.common import load_splits, require_examples
from svmtrain.io.records import duration, format_table, write_csv

DEFAULT_RANGE = "-10:-1"  # the step sizes swept when none are given
FEASIBLE_EXAMPLES = 500  # the -n the cost warning suggests: minutes, not hours, on CIFAR-10
CSV_COLUMNS = ("step", "loss", "change", "best", "worse")  # of Sweep.records(), in this order
OVERFLOW = "Every step made the loss overflow; try smaller steps, e.g. --range -14:-8."
INIT_SCALE = 0.001  # the notes' starting point: W = rand(10, 3073) * 0.001
GRADIENTS = ("analytic", "numerical")
MAX_STEPS = 100  # more step sizes than this is a typo, not an experiment
NUMERICAL_H = 1e-5  # the notes' finite-difference step
# Decimal exponents whose powers of ten are normal float64 numbers.
_MIN_EXPONENT, _MAX_EXPONENT = -307, 307


def parse_steps(text: str) -> tuple[float, ...]:
    """Step sizes from a comma-separated list like "1e-10,1e-9,5e-7", sorted ascending.

    Each must be a finite number > 0, none given twice, at most MAX_STEPS of them.
    Raises :class:`~svmtrain.errors.ArgumentError` (argument "steps") naming the bad item
    and how to write a good list.
    """
    example = "e.g. 1e-10,1e-8,1e-6"
    items = [item.strip() for item in text.split(",")]
    if any(item == "" for item in items):
        raise ArgumentError(
            "steps", f"{text!r} has an empty item; separate step sizes with commas, {example}."
        )
    steps = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise ArgumentError(
                "steps", f"{item!r} is not a number; list step sizes, {example}."
            ) from None
        if not (math.isfinite(value) and value > 0):
            raise ArgumentError(
                "steps", f"every step size must be a finite number > 0. Got {item!r} instead."
            )
        steps.append(value)
    return _checked(steps, "steps", f"{text!r}")


def parse_range(text: str) -> tuple[float, ...]:
    """Step sizes 10**k for every integer k from LOW to HIGH, from "LOW:HIGH" like "-10:-1".

    Raises :class:`~svmtrain.errors.ArgumentError` (argument "range") for anything else: not
    two integers, LOW > HIGH, exponents whose powers of ten are not normal floats, or more than
    MAX_STEPS steps.
    """
    example = "e.g. -10:-1 for 1e-10 ... 1e-1"
    parts = text.split(":")
    if len(parts) != 2:
        raise ArgumentError(
            "range", f"{text!r} must be LOW:HIGH, two integer exponents, {example}."
        )
    try:
        low, high = (int(part.strip()) for part in parts)
    except ValueError:
        raise ArgumentError(
            "range", f"{text!r} must be two integer exponents LOW:HIGH, {example}."
        ) from None
    if low > high:
        raise ArgumentError(
            "range", f"{text!r}: LOW must not exceed HIGH; did you mean {high}:{low}?"
        )
    if low < _MIN_EXPONENT or high > _MAX_EXPONENT:
        raise ArgumentError(
            "range",
            f"{text!r}: the exponents must lie in {_MIN_EXPONENT}..{_MAX_EXPONENT} "
            "(beyond that 10**k is not a normal float).",
        )
    return _checked([10.0**k for k in range(low, high + 1)], "range", f"{text!r}")


def _checked(steps: list[float], argument: str, what: str) -> tuple[float, ...]:
    """``steps`` sorted; ArgumentError naming ``argument`` if too many or one is repeated."""
    if len(steps) > MAX_STEPS:
        raise ArgumentError(
            argument, f"{what} gives {len(steps)} step sizes; at most {MAX_STEPS} are allowed."
        )
    repeated = sorted({s for s in steps if steps.count(s) > 1})
    if repeated:
        raise ArgumentError(
            argument, f"{what} gives the step size {repeated[0]:g} twice; list each once."
        )
    return tuple(sorted(steps))


def initial_weights(num_classes: int, num_features: int, seed: int, dtype) -> np.ndarray:
    """The notes' starting W: uniform in [0, INIT_SCALE), (num_classes, num_features) of dtype.

    Drawn in float64 from ``numpy.random.default_rng(seed)`` and then cast, so the same seed
    gives the same W (up to rounding) in float32 and float64.
    """
    rng = np.random.default_rng(seed)
    return (rng.random((num_classes, num_features)) * INIT_SCALE).astype(dtype)


def loss_function(
    model: ModelConfig, X: np.ndarray, y: np.ndarray
) -> Callable[[np.ndarray], float]:
    """W -> the loss of W (C, D) on X (N, D), y (N,) as ``model`` configures it (loss, reg,
    reg_bias and the loss's own hyperparameters), computed in W's dtype by the loss record."""
    loss = LOSSES[model.loss]
    options = {"reg_bias": model.reg_bias, **loss.options(model)}
    return lambda W: loss(W, X, y, model.reg, **options)[0]


def numerical_evaluations(num_weights: int) -> int:
    """Loss evaluations a centred numerical gradient over ``num_weights`` weights takes."""
    return 2 * num_weights


def numerical_cost_warning(seconds: float, num_weights: int, num_examples: int) -> str:
    """The warning before a numerical gradient: how many loss evaluations over ``num_weights``
    weights on ``num_examples`` images, and how long at ``seconds`` each (the arguments
    ``run_sweep`` passes to ``on_numerical_cost``); with fewer images suggested when
    there are more than FEASIBLE_EXAMPLES."""
    evaluations = numerical_evaluations(num_weights)
    total = evaluations * seconds
    fewer = (
        f"-n {FEASIBLE_EXAMPLES} would take about "
        f"{duration(total * FEASIBLE_EXAMPLES / num_examples)}; "
        if num_examples > FEASIBLE_EXAMPLES
        else ""
    )
    return (
        f"Warning: the numerical gradient takes {evaluations:,} loss evaluations (2 per weight) "
        f"on {num_examples:,} images: about {duration(total)} at {seconds * 1000:.3g} ms each. "
        f"The time is proportional to the images (-n): {fewer}"
        "--gradient analytic takes one evaluation."
    )


def seconds_per_evaluation(
    model: ModelConfig, X: np.ndarray, y: np.ndarray, W: np.ndarray, budget: float = 0.5
) -> float:
    """Mean wall time of one loss evaluation as :func:`gradient` makes it for "numerical".

    The first call is not timed (it pays for first-touch memory and BLAS start-up). Then calls
    repeat until ``budget`` seconds are spent (at least 2, at most 50), and the mean is taken:
    on a busy machine single calls vary tenfold (a BLAS thread waiting for a core), and the
    mean is what tens of thousands of calls will cost.
    """
    loss = loss_function(model, X.astype(np.float64, copy=False), y)
    W64 = W.astype(np.float64)
    loss(W64)
    calls, started = 0, time.perf_counter()
    while calls < 2 or (calls < 50 and time.perf_counter() - started < budget):
        loss(W64)
        calls += 1
    return (time.perf_counter() - started) / calls


def gradient(
    model: ModelConfig,
    X: np.ndarray,
    y: np.ndarray,
    W: np.ndarray,
    method: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[float, np.ndarray]:
    """The loss at W and its gradient, "analytic" (``LOSSES[model.loss]``) or "numerical".

    Numerical: finite differences with the notes' h = NUMERICAL_H at every weight, centred
    ((L(w + h) - L(w - h)) / 2h, 2 evaluations a weight) where the notes' code takes forward
    differences ((L(w + h) - L(w)) / h, 1 evaluation), for an error of order h^2 instead of h;
    ``progress(1)`` after each weight. They run in float64 (X and W cast once) because in
    float32 a change of h moves a loss of ~10 by about as much as its rounding error, which
    would make the estimate mostly noise. W: (C, D); X: (N, D); y: (N,).
    Returns (the loss at W, computed in W's dtype; dW (C, D) of W's dtype).
    """
    if method == "analytic":
        loss = LOSSES[model.loss]
        return loss(W, X, y, model.reg, reg_bias=model.reg_bias, **loss.options(model))
    if method != "numerical":
        raise ArgumentError(
            "method", f"Unknown gradient {method!r}: choose one of {', '.join(GRADIENTS)}."
        )
    loss64 = loss_function(model, X.astype(np.float64, copy=False), y)
    W64 = W.astype(np.float64)
    partials = numerical_partials(loss64, W64, np.arange(W.size), NUMERICAL_H, "centered", progress)
    return loss_function(model, X, y)(W), partials.reshape(W.shape).astype(W.dtype)


def losses_along(
    loss: Callable[[np.ndarray], float], W: np.ndarray, dW: np.ndarray, steps: tuple[float, ...]
) -> np.ndarray:
    """``loss(W - step * dW)`` for each step: (K,) float64, inf or NaN where the loss overflows.

    W, dW: (C, D); the new point is computed in W's dtype.
    """
    direction = dW.astype(W.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array([loss(W - W.dtype.type(step) * direction) for step in steps])


@dataclass(frozen=True)
class Sweep:
    """The outcome of one sweep: K step sizes and the loss after each step, and the settings
    it ran with (loss, reg, every loss's hyperparameters such as delta, reg_bias, dtype,
    gradient, num_examples, seed), as :func:`run_sweep` fills them in."""

    steps: np.ndarray  # (K,) float64, ascending
    losses: np.ndarray  # (K,) float64, the loss at W - step * dW
    original_loss: float  # the loss at W
    settings: dict = field(default_factory=dict)

    @property
    def change(self) -> np.ndarray:
        """(K,) new loss minus the original loss: negative where the step helped."""
        return self.losses - self.original_loss

    @property
    def worse(self) -> np.ndarray:
        """(K,) bool: the step made the loss higher than at the start, or not finite."""
        return ~(self.losses <= self.original_loss)

    @property
    def best(self) -> int | None:
        """Index of the lowest loss below the original (the first if tied); None if no step
        lowered the loss."""
        lower = self.losses < self.original_loss  # False for NaN
        if not lower.any():
            return None
        return int(np.argmin(np.where(lower, self.losses, np.inf)))

    @property
    def unchanged(self) -> np.ndarray:
        """(K,) bool: the step left the loss exactly as it was (too small to matter)."""
        return self.losses == self.original_loss

    def records(self) -> list[dict]:
        """One dict per step: step, loss, change, best, worse (floats may be inf/NaN)."""
        best = self.best
        return [
            {
                "step": float(step),
                "loss": float(loss),
                "change": float(change),
                "best": k == best,
                "worse": bool(worse),
            }
            for k, (step, loss, change, worse) in enumerate(
                zip(self.steps, self.losses, self.change, self.worse, strict=True)
            )
        ]

    def write_csv(self, path: str | os.PathLike) -> Path:
        """:meth:`records` as a CSV file at ``path`` (``sweep-step --csv``), written
        atomically; returns its path."""
        write_csv(path, list(CSV_COLUMNS), self.records())
        return Path(path)

    @property
    def overflowed(self) -> bool:
        """Every step made the loss overflow (inf or NaN): the sweep found nothing."""
        return not np.isfinite(self.losses).any()

    def require_a_finite_loss(self) -> None:
        """Raises :class:`~svmtrain.errors.DivergenceError` (:data:`OVERFLOW`) if every step
        made the loss overflow."""
        if self.overflowed:
            raise DivergenceError(OVERFLOW)

    def to_dict(self) -> dict:
        """The JSON document of ``sweep-step --json``: the settings, the original loss, the best
        step (None if no step helped) and :meth:`records` as "steps"."""
        records = self.records()
        return {
            **self.settings,
            "original_loss": self.original_loss,
            "best_step": None if self.best is None else records[self.best]["step"],
            "steps": records,
        }

    def text(self) -> str:
        """The notes' printout, then a table marking the best step and the steps that made the
        loss worse, then a one-line verdict (none when every loss overflowed: see OVERFLOW)."""
        lines = [f"original loss: {self.original_loss:f}"]
        lines += [
            f"for step size {step:.1e} new loss: {loss:f}"
            for step, loss in zip(self.steps, self.losses, strict=True)
        ]
        best = self.best
        rows = []
        for k, r in enumerate(self.records()):
            marks = (["best"] if k == best else []) + (["worse"] if r["worse"] else [])
            rows.append(
                (f"{r['step']:.1e}", f"{r['loss']:.6g}", f"{r['change']:+.4g}", ", ".join(marks))
            )
        table = format_table(["step size", "new loss", "change", "mark"], rows)
        if self.overflowed:
            return "\n".join([*lines, "", table])
        return "\n".join([*lines, "", table, "", self._verdict()])

    def _verdict(self) -> str:
        worse = int(self.worse.sum())
        best = self.best
        if best is not None:
            return (
                f"Best step {self.steps[best]:.1e}: loss {self.losses[best]:.6g} "
                f"({self.change[best] / self.original_loss:+.1%}); {worse} of "
                f"{len(self.steps)} steps made the loss worse."
            )
        causes = []
        if self.unchanged.any():
            causes.append(
                f"{int(self.unchanged.sum())} left it unchanged (too small: try larger steps, "
                f"e.g. --range {DEFAULT_RANGE})"
            )
        if worse:
            causes.append(
                f"{worse} made it worse (too large: try smaller ones, e.g. --range -14:-8; or "
                "the gradient is wrong: svmtrain gradcheck)"
            )
        return f"No step lowered the loss: {'; '.join(causes)}."


def run_sweep(
    cfg: Config,
    splits: Splits | None = None,
    steps: tuple[float, ...] | None = None,
    *,
    method: str = "analytic",
    num_examples: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    on_numerical_cost: Callable[[float, int, int], None] | None = None,
) -> Sweep:
    """The notes' experiment on the first ``num_examples`` training images of ``splits``
    (None: CIFAR-10 loaded and preprocessed as ``cfg`` says, by
    :func:`~svmtrain.experiments.common.load_splits`; ``num_examples`` None: all of them),
    over ``steps`` (None: DEFAULT_RANGE): W from :func:`initial_weights` (``seed``, default
    cfg.train.seed; cfg.preprocess.dtype), the loss and its ``method`` gradient dW there
    (:func:`gradient`), then the loss at W - step * dW for each of ``steps`` (K ascending
    floats > 0), with the loss, reg, delta and reg_bias of cfg.model.

    A numerical gradient shows a progress bar when ``progress``, and runs on one BLAS thread;
    ``on_numerical_cost(seconds per loss evaluation, weights, examples)`` is called before it
    starts, so that a caller can say how long it will take (timing an evaluation takes about
    half a second, spent only when the callback is given).
    Raises :class:`~svmtrain.errors.ProblemSizeError` when ``num_examples`` is below 1 or
    more than the training images, :class:`~svmtrain.errors.ArgumentError` for an unknown
    ``method``.
    """
    require_count("num_examples", num_examples)
    if splits is None:
        splits = load_splits(cfg, progress=progress)
    steps = parse_range(DEFAULT_RANGE) if steps is None else steps
    available = len(splits.y_train)
    require_examples(num_examples, available)
    n = num_examples or available
    X, y = splits.design(splits.X_train[:n], cfg.preprocess.dtype), splits.y_train[:n]
    seed = cfg.train.seed if seed is None else seed
    W = initial_weights(len(splits.class_names), X.shape[1], seed, cfg.preprocess.dtype)
    numerical = method == "numerical"
    # Tens of thousands of small evaluations: one BLAS thread is much faster for those.
    with limited_threads(1) if numerical else contextlib.nullcontext():
        if numerical and on_numerical_cost is not None:
            on_numerical_cost(seconds_per_evaluation(cfg.model, X, y, W), W.size, n)
        with tqdm(
            total=W.size,
            disable=not progress or not numerical,
            unit="weight",
            desc="numerical gradient",
            dynamic_ncols=True,
            leave=False,
        ) as bar:
            original, dW = gradient(cfg.model, X, y, W, method, progress=bar.update)
    losses = losses_along(loss_function(cfg.model, X, y), W, dW, steps)
    m = cfg.model
    settings = {
        "loss": m.loss,
        "reg": m.reg,
        **{name: getattr(m, name) for name in sorted(HYPERPARAMETERS)},
        "reg_bias": m.reg_bias,
        "dtype": cfg.preprocess.dtype,
        "gradient": method,
        "num_examples": n,
        "seed": seed,
    }
    return Sweep(np.asarray(steps), losses, original, settings)
