"""The loss landscape of the CS231n optimisation notes: the loss along random directions.

The loss of a linear classifier is a function of the 30,730 numbers of W, too many to see; the
notes slice it. Along one random direction W1 it is ``L(W + a W1)``, a curve in ``a``; over the
plane of two, ``L(W + a W1 + b W2)``, a surface in ``(a, b)``. For the multiclass SVM without
regularisation the curve of one example is piecewise linear (a sum of hinges, each linear in
``a`` until it crosses its kink), and the mean over many examples is a convex bowl.

Scores are linear in ``a`` and ``b``: with S0, S1, S2 the scores of W, W1 and W2, the scores at
``(a, b)`` are ``S0 + a S1 + b S2``, so the whole grid costs three products with the data and
the loss record's per-example losses of those scores; the L2 term is a quadratic in ``(a, b)``
from six inner products. :func:`run_landscape` does the whole experiment::

    result = run_landscape(load_config(), num_examples=100)  # loads the data
    print(result.text())  # what ``svmtrain landscape`` prints; result.to_dict() is its --json

The directions are scaled to the data: each is standard normal, multiplied so that it moves the
scores of the examples by 1 (their root mean square), the SVM's default margin. So ``a = 1`` is
a step that changes a typical score by about 1, whatever the features' scale or W.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from svmtrain.config import Config, config_from_yaml, load_config, override_config
from svmtrain.core.losses import HYPERPARAMETERS, LOSSES, Loss
from svmtrain.data.preprocess import Splits, split_rows
from svmtrain.errors import WeightsError, require_count
from svmtrain.experiments.common import (
    load_dataset,
    load_splits,
    random_streams,
    require_examples,
)
from svmtrain.io.plots import plot_landscape
from svmtrain.io.records import format_table, write_csv
from svmtrain.model import LinearModel, chunked_scores, linear_scores
from svmtrain.progress import tqdm

DEFAULT_EXAMPLES = 100  # the notes' right-hand figure: a hundred CIFAR-10 examples
DEFAULT_SPAN = 3.0  # a and b run from -span to span
DEFAULT_POINTS = 101  # along the line
DEFAULT_GRID = 51  # along each side of the plane
MAX_POINTS = 10_001
MAX_GRID = 501
CSV_COLUMNS = ("examples", "slice", "a", "b", "loss")
_CHUNK = 1 << 22  # scores evaluated at a time (points x examples x classes)


def scores_and_directions(
    scores: Callable[[np.ndarray], np.ndarray], W: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two random directions for W (C, D) and the scores of W and of both.

    Each direction is standard normal, scaled so that the scores it gives have a root mean
    square of 1 (one that moves no score is left as drawn). ``scores(V)``: the scores (n, C')
    of V (C', D) on the examples, called once for W and both directions together.
    Returns (S (3, n, C): the scores of W, W1 and W2; the directions (2, C, D)), float64.
    """
    C = W.shape[0]
    directions = rng.standard_normal((2, *W.shape))
    S = scores(np.concatenate([W, *directions])).reshape(-1, 3, C).transpose(1, 0, 2)
    for d, s in zip(directions, S[1:], strict=True):
        rms = float(np.sqrt(np.mean(np.square(s))))
        if rms > 0:
            d /= rms
            s /= rms
    return np.ascontiguousarray(S), directions


def slice_losses(
    loss: Loss,
    options: dict,
    S: np.ndarray,
    y: np.ndarray,
    gram: np.ndarray,
    reg: float,
    coefficients: np.ndarray,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The loss at ``W + sum_k c_k W_k`` for each row c of ``coefficients`` (P, K).

    S: (K + 1, n, C) float64, the scores of W, W_1 ... W_K on the n examples, labels y (n,);
    gram: (K + 1, K + 1) the inner products of the regularised parts of W, W_1 ... W_K, so the
    L2 term is ``reg * c' G c'`` with c' = (1, c). ``options``: the loss's hyperparameters.
    Scores are built a chunk of points at a time (``progress(points)`` after each).
    Returns (P,) float64: the mean of ``loss.example_losses`` over the n examples plus L2.
    """
    P = len(coefficients)
    full = np.column_stack([np.ones(P), coefficients])  # (P, K + 1)
    out = np.empty(P)
    step = max(1, _CHUNK // S[0].size)
    for start in range(0, P, step):
        c = full[start : start + step]
        scores = np.tensordot(c, S, axes=1)  # (p, n, C)
        with np.errstate(over="ignore", invalid="ignore"):
            out[start : start + step] = loss.example_losses(scores, y, **options).mean(axis=-1)
        if progress is not None:
            progress(len(c))
    if reg:
        out += reg * np.einsum("pi,ij,pj->p", full, gram, full)
    return out


@dataclass(frozen=True)
class Landscape:
    """Slices of the loss around one W, as :func:`run_landscape` fills them in.

    a: (P,) the coefficients along the line; grid: (G,) those along each side of the plane;
    lines: examples -> (P,) the loss at W + a W1; planes: examples -> (G, G) the loss at
    W + grid[i] W1 + grid[j] W2 (row i, column j); at_w: examples -> the loss at W; W (C, D)
    and directions (2, C, D): W, W1 and W2 in float64; settings: what it ran with (loss, reg,
    hyperparameters, reg_bias, start, seed, examples, span); warning: what the weights are when
    their run diverged, else None.
    """

    W: np.ndarray
    directions: np.ndarray
    a: np.ndarray
    grid: np.ndarray
    lines: dict[int, np.ndarray]
    planes: dict[int, np.ndarray]
    at_w: dict[int, float]
    settings: dict = field(default_factory=dict)
    warning: str | None = None

    def records(self) -> list[dict]:
        """One dict per point (the keys of CSV_COLUMNS): the line's (b = 0), then the plane's."""
        rows = []
        for n in self.lines:
            rows += [
                {"examples": n, "slice": "line", "a": float(a), "b": 0.0, "loss": float(v)}
                for a, v in zip(self.a, self.lines[n], strict=True)
            ]
            rows += [
                {
                    "examples": n,
                    "slice": "plane",
                    "a": float(self.grid[i]),
                    "b": float(self.grid[j]),
                    "loss": float(v),
                }
                for (i, j), v in np.ndenumerate(self.planes[n])
            ]
        return rows

    def write_csv(self, path: str | os.PathLike) -> Path:
        """:meth:`records` as a CSV file at ``path`` (``landscape --csv``), written atomically."""
        write_csv(path, list(CSV_COLUMNS), self.records())
        return Path(path)

    def plot(self, path: str | os.PathLike) -> Path:
        """The notes' figures of these slices as a PNG at ``path`` (``landscape --plot``; see
        :func:`~svmtrain.io.plots.plot_landscape`); returns its path."""
        slices = {n: (self.lines[n], self.planes[n]) for n in self.lines}
        return plot_landscape(self.a, self.grid, slices, path)

    def to_dict(self) -> dict:
        """The JSON document of ``landscape --json``: the settings, the coefficients and, for
        each number of examples, the loss at W, the line's losses and the plane's rows."""
        return {
            **self.settings,
            "a": self.a.tolist(),
            "grid": self.grid.tolist(),
            "slices": [
                {
                    "examples": n,
                    "loss_at_w": self.at_w[n],
                    "line": self.lines[n].tolist(),
                    "plane": self.planes[n].tolist(),
                }
                for n in self.lines
            ],
        }

    def text(self) -> str:
        """What the command prints: what was sliced, then one row per slice (the loss at W,
        its lowest value and where, its highest)."""
        s = self.settings
        rows = []
        for n in self.lines:
            line, plane = self.lines[n], self.planes[n]
            i = int(np.nanargmin(line))
            j, k = np.unravel_index(np.nanargmin(plane), plane.shape)
            lowest = (f"a={self.a[i]:+.3g}", f"a={self.grid[j]:+.3g}, b={self.grid[k]:+.3g}")
            side = len(self.grid)
            for kind, size, values, at in zip(
                ("line", "plane"), (len(line), f"{side}x{side}"), (line, plane), lowest, strict=True
            ):
                low, high = np.nanmin(values), np.nanmax(values)
                rows.append((n, kind, size, f"{self.at_w[n]:.6g}", f"{low:.6g}", at, f"{high:.6g}"))
        hyper = "".join(f", {name} {s[name]:g}" for name in LOSSES[s["loss"]].hyperparameters)
        head = (
            f"The {s['loss']} loss (reg {s['reg']:g}{hyper}) around {s['start']}, along random "
            f"directions W1, W2 (a = 1 moves the scores by 1, root mean square), a and b in "
            f"{-s['span']:g}..{s['span']:g}: line L(W + a W1), plane L(W + a W1 + b W2)."
        )
        table = format_table(
            ["examples", "slice", "points", "loss at W", "lowest", "at", "highest"], rows
        )
        return f"{head}\n\n{table}"


def landscape_config(
    config_path: str | os.PathLike | None,
    weights_path: str | os.PathLike | None,
    overrides: Sequence[str] = (),
) -> Config:
    """The config a landscape runs with: the config file (or shipped name) ``config_path``, or
    with ``weights_path`` the config stored in those weights (their loss, reg and data);
    either with ``--set`` ``overrides`` applied. Raises ConfigError, or WeightsError for a
    weights file that cannot be read."""
    if weights_path is None:
        return load_config(config_path, overrides)
    stored = LinearModel.load(weights_path).config_yaml
    return override_config(
        config_from_yaml(stored, f"the config stored in {weights_path}"), overrides
    )


def _training_scores(
    cfg: Config, weights: LinearModel | None, splits: Splits | None, progress: bool
):
    """(y, score, shape) of the training split ``cfg`` names: y (N,) its labels, score(V, n)
    the scores (n, C) of V (C, D) float64 on its first n images (through the weights' stored
    transform when given, else the config's preprocessing: pixels, or its feature cache; or
    those of ``splits`` when given), and shape (C, D) the shape of its W."""
    if weights is not None:
        dataset = load_dataset(cfg.data, progress=progress)
        if len(weights.class_names) != len(dataset.class_names):
            raise WeightsError(
                f"The weights have {len(weights.class_names)} classes but the dataset has "
                f"{len(dataset.class_names)}."
            )
        train, _, _ = split_rows(dataset, cfg)
        rows = dataset.x_train[train]
        y = np.asarray(dataset.y_train[train], dtype=np.intp)
        return y, lambda V, n: linear_scores(V, weights.transform, rows[:n]), weights.W.shape
    if splits is None:
        splits = load_splits(cfg, progress=progress)
    rows, shape = splits.X_train, (len(splits.class_names), splits.num_features)
    return splits.y_train, lambda V, n: chunked_scores(V, splits.affine.features, rows[:n]), shape


def run_landscape(
    cfg: Config,
    weights: str | os.PathLike | None = None,
    *,
    splits: Splits | None = None,
    num_examples: int | None = None,
    span: float = DEFAULT_SPAN,
    points: int = DEFAULT_POINTS,
    grid: int = DEFAULT_GRID,
    seed: int | None = None,
    progress: bool = True,
) -> Landscape:
    """The loss along a random line and over a random plane through W, for the first training
    image and for the first ``num_examples`` of them (None: DEFAULT_EXAMPLES, or all if fewer).

    W is the W of the weights file ``weights`` (then ``cfg`` should be the weights' own, from
    :func:`landscape_config`) or else a random W as training starts from,
    ``model.init_scale`` * standard normal. The loss, reg, reg_bias and the loss's
    hyperparameters come from cfg.model; everything is computed in float64. The directions
    (:func:`scores_and_directions`) and the random W are drawn from ``seed``
    (None: cfg.train.seed). Without weights, ``splits`` gives the training images (None:
    CIFAR-10 loaded and preprocessed as ``cfg`` says). ``points`` coefficients along the line
    and ``grid`` along each side of the plane, evenly from -span to span.
    Raises :class:`~svmtrain.errors.ProblemSizeError` when ``num_examples`` is below 1 or more
    than the training images, :class:`~svmtrain.errors.WeightsError` when the weights do not
    fit the data.
    """
    require_count("num_examples", num_examples)
    model = None if weights is None else LinearModel.load(weights)
    y, scores, shape = _training_scores(cfg, model, splits, progress)
    available = len(y)
    require_examples(num_examples, available)
    n = num_examples or min(DEFAULT_EXAMPLES, available)
    seed = cfg.train.seed if seed is None else seed
    start_rng, direction_rng = random_streams(seed, 2)
    if model is not None:
        W = model.W.astype(np.float64)
    else:
        W = cfg.model.init_scale * start_rng.standard_normal(shape)
    S_all, directions = scores_and_directions(lambda V: scores(V, n), W, direction_rng)
    W1, W2 = directions
    loss = LOSSES[cfg.model.loss]
    options = loss.options(cfg.model)
    regularised = [V if cfg.model.reg_bias else V[:, :-1] for V in (W, W1, W2)]
    flat = np.stack([V.ravel() for V in regularised])
    gram = flat @ flat.T
    a = np.linspace(-span, span, points)
    g = np.linspace(-span, span, grid)
    plane_coefficients = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    counts = sorted({1, n})
    lines, planes, at_w = {}, {}, {}
    with tqdm(
        total=len(counts) * (points + grid * grid + 1),
        disable=not progress,
        unit="point",
        desc="loss landscape",
        dynamic_ncols=True,
        leave=False,
    ) as bar:
        for m in counts:

            def losses(k: int, coefficients: np.ndarray, m: int = m) -> np.ndarray:
                """The loss on the first m examples at W + the first k directions' sums."""
                S, G = S_all[: k + 1, :m], gram[: k + 1, : k + 1]
                return slice_losses(
                    loss, options, S, y[:m], G, cfg.model.reg, coefficients, bar.update
                )

            at_w[m] = float(losses(0, np.zeros((1, 0)))[0])
            lines[m] = losses(1, a[:, None])
            planes[m] = losses(2, plane_coefficients).reshape(grid, grid)
    m = cfg.model
    settings = {
        "loss": m.loss,
        "reg": m.reg,
        **{name: getattr(m, name) for name in sorted(HYPERPARAMETERS)},
        "reg_bias": m.reg_bias,
        "start": f"the weights {weights}" if weights is not None else f"a random W (seed {seed})",
        "seed": seed,
        "examples": counts,
        "span": span,
    }
    warning = None if model is None else model.divergence_note()
    return Landscape(W, directions, a, g, lines, planes, at_w, settings, warning)
