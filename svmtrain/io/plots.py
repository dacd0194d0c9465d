"""Pictures of a run: class templates, learning curves, confusion matrix, step sweep, search grid,
loss landscape.

matplotlib is the optional ``plot`` extra, so it is imported inside the functions that draw,
never at module level: ``import svmtrain.io.plots`` works without it, and every drawing function
raises :class:`~svmtrain.errors.PlotUnavailable` (with the install command) when it is missing.
Figures use the object-oriented API on an Agg canvas (no pyplot, no global backend state), and
every PNG is written atomically with :func:`svmtrain.fileio.atomic_write`.

:func:`template_images` is pure numpy and is what the weights picture shows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from svmtrain.data.preprocess import PIXELS
from svmtrain.errors import PlotUnavailable, SvmtrainError, WeightsError
from svmtrain.features.kmeans import centroid_images
from svmtrain.fileio import atomic_write
from svmtrain.io import runs
from svmtrain.io.records import plural
from svmtrain.model import LinearModel

DPI = 100  # every figure is sized in pixels; inches = pixels / DPI

INSTALL_HINT = "pip install 'svmtrain[plot]'"
_STAMP = "svmtrain"  # the Software text of every PNG svmtrain draws
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def template_images(W: np.ndarray) -> np.ndarray:
    """The rows of W as pictures: each class's template, as in the CS231n notes.

    W: (C, 3073) float, one row per class, pixels in CIFAR binary order (planes R, G, B, each
    32x32 row-major) followed by the bias, which is dropped.
    Returns (C, 32, 32, 3) uint8, HWC.

    Every template is rescaled as the notes do, 255 * (w - w_min) / (w_max - w_min) with one
    min and max over all classes' pixel weights, so brightness compares across templates: a
    class whose weights are small looks greyer. A constant W (max == min) is all zeros.
    """
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[1] != PIXELS + 1:
        raise WeightsError(
            f"W must have shape (classes, {PIXELS + 1}): one row of {PIXELS} pixel weights and "
            f"a bias per class. Got shape {W.shape} instead."
        )
    if not np.all(np.isfinite(W)):
        raise WeightsError(
            "W contains NaN or inf, so it has no picture; the run diverged. "
            "Train again with a smaller optim.learning_rate."
        )
    # float64 so that the rescaling does not lose the small differences of float32 weights.
    planes = W[:, :PIXELS].astype(np.float64).reshape(-1, 3, 32, 32)
    hwc = planes.transpose(0, 2, 3, 1)
    lo = hwc.min()
    span = hwc.max() - lo
    unit = (hwc - lo) / span if span > 0 else np.zeros_like(hwc)
    return np.rint(255.0 * unit).astype(np.uint8)


def require_matplotlib() -> Any:
    """The ``matplotlib`` module; raises PlotUnavailable with the install command if missing.

    Commands that plot at the end of a long job can call this first to warn early.
    """
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as err:
        raise PlotUnavailable(
            f"Plotting needs matplotlib, which is not installed ({err}). "
            f"Install the plot extra: {INSTALL_HINT}"
        ) from None
    return matplotlib


def _figure(width_px: int, height_px: int) -> Any:
    """A new Figure on its own Agg canvas, width_px x height_px when saved."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> Path:
    """Write fig as a PNG at path, atomically; returns the path."""
    path = Path(path)
    with atomic_write(path) as f:
        # "Software" names svmtrain, not matplotlib's version: bytes change only with the
        # picture, and plot_run can tell its own pictures from a user's files.
        fig.savefig(f, format="png", dpi=DPI, metadata={"Software": _STAMP})
    return path


def drawn_by_svmtrain(path: Path) -> bool:
    """Whether ``path`` is a PNG whose text chunk says svmtrain drew it (see :func:`_save`)."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != _PNG_SIGNATURE:
                return False
            while header := f.read(8):
                length, kind = int.from_bytes(header[:4], "big"), header[4:]
                if len(header) < 8 or kind in (b"IDAT", b"IEND"):
                    return False
                data = f.read(length + 4)[:length]  # the chunk and its CRC
                if kind == b"tEXt" and data == b"Software\0" + _STAMP.encode():
                    return True
    except OSError:
        return False
    return False


def _finite(values: Iterable[Any]) -> np.ndarray:
    """values as float64, with None, NaN and inf as NaN (matplotlib leaves a gap)."""
    arr = np.asarray(list(values), dtype=np.float64)
    return np.where(np.isfinite(arr), arr, np.nan)


def _log_scale(ax: Any, axis: str, values: np.ndarray) -> None:
    """Log scale on ax's axis ("x" or "y") if every finite value is > 0, else symlog (which
    shows 0 and negatives: linear up to the decade of the smallest nonzero magnitude)."""
    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    v = values[np.isfinite(values)]
    if v.size and np.all(v > 0):
        set_scale("log")
        return
    nonzero = np.abs(v[v != 0])
    decade = 10.0 ** np.floor(np.log10(nonzero.min())) if nonzero.size else 1.0
    set_scale("symlog", linthresh=float(decade))


def plot_weights(W: np.ndarray, class_names: Sequence[str], path: str | os.PathLike) -> Path:
    """The class templates of W in a grid of up to 5 columns, each titled with its class.

    W: (C, 3073) float; class_names: C names. Size: 200 px per column, 60 + 205 px per row
    (1000 x 470 for CIFAR-10's 10 classes).
    """
    images = template_images(W)
    if len(class_names) != len(images):
        raise WeightsError(
            f"W has {len(images)} rows but there are {len(class_names)} class names; "
            "they must match one to one."
        )
    cols = min(len(images), 5)
    rows = math.ceil(len(images) / cols)
    fig = _figure(200 * cols, 60 + 205 * rows)
    fig.suptitle("Class templates: rows of W without the bias, rescaled together to 0-255")
    for i, (image, name) in enumerate(zip(images, class_names, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(image, interpolation="nearest")
        ax.set_title(str(name))
        ax.axis("off")
    return _save(fig, path)


def plot_centroids(patches: np.ndarray, path: str | os.PathLike, limit: int = 400) -> Path:
    """The first ``limit`` k-means centroids as a grid of colour patches, 20 per row.

    patches: (K, p, p, 3) uint8, as :func:`svmtrain.features.kmeans.centroid_images` gives.
    Size: 40 px per patch plus a title.
    """
    shown = patches[:limit]
    cols = min(len(shown), 20)
    rows = math.ceil(len(shown) / cols)
    p = shown.shape[1]
    grid = np.full((rows * (p + 1) - 1, cols * (p + 1) - 1, 3), 255, dtype=np.uint8)
    for i, patch in enumerate(shown):
        r, c = divmod(i, cols)
        grid[r * (p + 1) : r * (p + 1) + p, c * (p + 1) : c * (p + 1) + p] = patch
    fig = _figure(40 * cols, 60 + 40 * rows)
    fig.suptitle(
        f"The first {len(shown)} of {len(patches)} k-means centroids, un-whitened, "
        "each stretched to 0-255"
    )
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(grid, interpolation="nearest")
    ax.axis("off")
    return _save(fig, path)


# The optimiser's own field in the curves' fourth panel: SGD's, L-BFGS's, the random searches'.
_OWN_PANEL = (("lr", "Learning rate"), ("step_length", "Step length"), ("accepted", "Tries kept"))


def plot_curves(
    metrics: Sequence[dict], loss_history: np.ndarray | None, path: str | os.PathLike
) -> Path:
    """Learning curves on a 2 x 2 grid, 1200 x 820 px.

    metrics: one dict per epoch with the keys of ``runs.METRIC_KEYS`` (as in metrics.jsonl).
    loss_history: (S,) float, the minibatch loss of every step, or None to show epochs only.
    Panels: loss per step with each epoch's mean; data and regularisation loss per epoch;
    train and val accuracy per epoch; the learning rate per epoch (L-BFGS: the step length; a
    random search: the tries it kept).
    """
    epoch = _finite(m["epoch"] for m in metrics)
    fig = _figure(1200, 820)
    fig.suptitle(f"Learning curves ({plural(len(metrics), 'epoch')})")
    (ax_step, ax_parts), (ax_acc, ax_lr) = fig.subplots(2, 2)

    if loss_history is not None:
        steps = np.arange(1, len(loss_history) + 1)
        ax_step.plot(steps, _finite(loss_history), lw=0.8, alpha=0.45, label="minibatch loss")
    # An epoch's mean loss belongs to the middle of its steps, not to its last one.
    ends = _finite(m["step"] for m in metrics)
    middles = (ends + np.concatenate([[0.0], ends[:-1]])) / 2
    ax_step.plot(middles, _finite(m["loss"] for m in metrics), "o-", color="C3", label="epoch mean")
    ax_step.set(title="Training loss", xlabel="step", ylabel="loss")
    ax_step.legend()

    for key, label in (("loss", "total"), ("data_loss", "data"), ("reg_loss", "regularisation")):
        ax_parts.plot(epoch, _finite(m[key] for m in metrics), "o-", label=label)
    ax_parts.set(title="Loss per epoch: data + regularisation", xlabel="epoch", ylabel="loss")
    ax_parts.legend()

    ax_acc.plot(epoch, _finite(m["train_acc"] for m in metrics), "o-", label="train (sample)")
    ax_acc.plot(epoch, _finite(m["val_acc"] for m in metrics), "o-", label="validation")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    ax_acc.legend()

    key, title = next((kt for kt in _OWN_PANEL if kt[0] in metrics[0]), _OWN_PANEL[0])
    lr = _finite(m.get(key) for m in metrics)
    ax_lr.plot(epoch, lr, "o-", color="C2")
    _log_scale(ax_lr, "y", lr)
    ax_lr.set(title=title, xlabel="epoch", ylabel=title.lower())

    for ax in (ax_step, ax_parts, ax_acc, ax_lr):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion(
    confusion: np.ndarray, class_names: Sequence[str], path: str | os.PathLike
) -> Path:
    """The confusion matrix as a heat map with counts, 760 x 680 px.

    confusion: (C, C) int counts, rows = true class, columns = predicted class.
    Colour is the row's fraction (the recall of each cell), so classes of different sizes
    compare; the text is the count.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    fraction = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    accuracy = np.trace(counts) / max(counts.sum(), 1)

    fig = _figure(760, 680)
    ax = fig.add_subplot()
    image = ax.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    for (i, j), count in np.ndenumerate(counts):
        color = "white" if fraction[i, j] > 0.5 else "black"
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color=color)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, [str(n) for n in class_names], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(n) for n in class_names])
    ax.set(
        title=f"Confusion matrix (accuracy {accuracy:.3f})",
        xlabel="predicted class",
        ylabel="true class",
    )
    return _save(fig, path)


def plot_sweep(
    steps: Sequence[float],
    losses: Sequence[float],
    original_loss: float,
    path: str | os.PathLike,
) -> Path:
    """Loss after one step along the negative gradient against the step size, 900 x 610 px.

    steps: (K,) step sizes; losses: (K,) the loss at W - step * dW (inf/NaN allowed: shown as
    dotted vertical lines); original_loss: the loss at W, drawn as a horizontal line.
    The best step is starred, steps that made the loss worse are crossed out.
    Log y axis when every finite loss is > 0, else symlog.
    """
    steps = _finite(steps)
    losses = _finite(losses)
    fig = _figure(900, 610)
    ax = fig.add_subplot()
    ax.plot(steps, losses, "o-", color="C0", label="loss after the step")
    ax.axhline(original_loss, ls="--", color="0.4", label=f"starting loss {original_loss:.4g}")

    worse = losses > original_loss
    if worse.any():
        ax.plot(
            steps[worse], losses[worse], "x", ms=11, mew=2, color="C3", label="worse than start"
        )
    for k, step in enumerate(steps[np.isnan(losses)]):
        ax.axvline(step, ls=":", color="C3", label="loss not finite" if k == 0 else None)
    if np.isfinite(losses).any():
        best = int(np.nanargmin(losses))
        ax.plot(
            steps[best],
            losses[best],
            "*",
            ms=18,
            color="C1",
            label=f"best step {steps[best]:.1e}: loss {losses[best]:.4g}",
        )

    _log_scale(ax, "x", steps)
    _log_scale(ax, "y", np.append(losses, original_loss))
    ax.set(
        title="Loss after one step along the negative gradient",
        xlabel="step size",
        ylabel="loss at W - step * dW",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)


def plot_landscape(
    a: np.ndarray,
    grid: np.ndarray,
    slices: Mapping[int, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
) -> Path:
    """The loss along a line and over a plane through W, as in the notes' figures: one row per
    number of examples, a line plot of L(W + a W1) on the left and a heat map of
    L(W + a W1 + b W2) on the right (blue low, red high, W at the centre), 1100 x 430 px a row.

    a: (P,) the line's coefficients; grid: (G,) those of each side of the plane; slices:
    examples -> ((P,) the line's losses, (G, G) the plane's, row i at a = grid[i]).
    """
    fig = _figure(1100, 430 * len(slices))
    axes = fig.subplots(len(slices), 2, squeeze=False)
    extent = (grid[0], grid[-1], grid[0], grid[-1])
    for (ax_line, ax_plane), (n, (line, plane)) in zip(axes, slices.items(), strict=True):
        who = plural(n, "example")
        ax_line.plot(a, _finite(line), color="C0")
        ax_line.axvline(0.0, ls=":", color="0.5")
        ax_line.set(title=f"{who}: L(W + a W1)", xlabel="a", ylabel="loss")
        ax_line.grid(alpha=0.3)
        image = ax_plane.imshow(
            np.ma.masked_invalid(plane.T), origin="lower", extent=extent, cmap="jet", aspect="auto"
        )
        ax_plane.plot(0.0, 0.0, "+", color="white", ms=12, mew=2)
        fig.colorbar(image, ax=ax_plane, label="loss")
        ax_plane.set(title=f"{who}: L(W + a W1 + b W2)", xlabel="a", ylabel="b")
    return _save(fig, path)


def plot_search(results: Sequence[dict], path: str | os.PathLike) -> Path:
    """Validation accuracy of search trials over learning rate x reg, 900 x 650 px.

    results: one dict per trial with the keys learning_rate, reg and val_acc (None or NaN for a
    trial that diverged); other keys are ignored. When every lr x reg combination was tried (a
    grid) it is a heat map with annotated cells, showing the best trial of each cell if other
    keys varied too; otherwise (random samples) a scatter. Diverged trials are grey cells
    marked "diverged", or red crosses. The best trial is named in the title.
    """
    if not results:
        raise SvmtrainError("There are no search trials to plot; run at least one trial.")
    lr = _finite(r["learning_rate"] for r in results)
    reg = _finite(r["reg"] for r in results)
    acc = _finite(r["val_acc"] for r in results)
    fig = _figure(900, 650)
    ax = fig.add_subplot()
    lrs, regs = np.unique(lr), np.unique(reg)
    if len(set(zip(lr, reg, strict=True))) == lrs.size * regs.size:
        _search_heatmap(fig, ax, lr, reg, acc, lrs, regs)
    else:
        _search_scatter(fig, ax, lr, reg, acc)
    if np.isfinite(acc).any():
        best = int(np.nanargmax(acc))
        title = f"best val acc {acc[best]:.3f} at lr {lr[best]:g}, reg {reg[best]:g}"
    else:
        title = "every trial diverged"
    ax.set(
        title=f"Validation accuracy of {len(results)} trials: {title}",
        xlabel="learning rate",
        ylabel="reg (L2 strength)",
    )
    return _save(fig, path)


def _search_heatmap(
    fig: Any,
    ax: Any,
    lr: np.ndarray,
    reg: np.ndarray,
    acc: np.ndarray,
    lrs: np.ndarray,
    regs: np.ndarray,
) -> None:
    """Heat map of the best val accuracy per (reg row, lr column) cell, NaN cells grey."""
    grid = np.full((regs.size, lrs.size), np.nan)
    for i, j, a in zip(np.searchsorted(regs, reg), np.searchsorted(lrs, lr), acc, strict=True):
        grid[i, j] = np.fmax(grid[i, j], a)  # fmax skips NaN: a diverged trial never wins
    finite = grid[np.isfinite(grid)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    cmap = require_matplotlib().colormaps["viridis"].with_extremes(bad="0.85")
    image = ax.imshow(
        np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", aspect="auto"
    )
    fig.colorbar(image, ax=ax, label="validation accuracy")
    for (i, j), a in np.ndenumerate(grid):
        if np.isnan(a):
            ax.text(j, i, "diverged", ha="center", va="center", fontsize=8, color="C3")
        else:
            # Dark text on the bright (high) half of viridis, white on the dark half.
            color = "black" if a > (vmin + vmax) / 2 else "white"
            ax.text(j, i, f"{a:.3f}", ha="center", va="center", fontsize=9, color=color)
    ax.set_xticks(range(lrs.size), [f"{v:g}" for v in lrs])
    ax.set_yticks(range(regs.size), [f"{v:g}" for v in regs])


def _search_scatter(fig: Any, ax: Any, lr: np.ndarray, reg: np.ndarray, acc: np.ndarray) -> None:
    """Scatter of random-search trials coloured by val accuracy; diverged ones as red crosses."""
    ok = np.isfinite(acc)
    if ok.any():
        points = ax.scatter(
            lr[ok], reg[ok], c=acc[ok], cmap="viridis", s=60, edgecolors="k", linewidths=0.5
        )
        fig.colorbar(points, ax=ax, label="validation accuracy")
        best = int(np.nanargmax(acc))
        ax.scatter(
            lr[best], reg[best], marker="*", s=500, facecolors="none", edgecolors="C3", label="best"
        )
    if not ok.all():
        ax.scatter(lr[~ok], reg[~ok], marker="x", s=60, color="C3", label="diverged")
    _log_scale(ax, "x", lr)
    _log_scale(ax, "y", reg)
    ax.margins(0.08)  # keep the markers at the extremes inside the axes
    ax.grid(alpha=0.3, which="both")
    ax.legend()


def kmeans_pictures(extractor, weights: Path) -> np.ndarray:
    """The centroids of a kmeans ``extractor`` (from the model in ``weights``) as colour
    patches (see :func:`~svmtrain.features.kmeans.centroid_images`). Raises SvmtrainError
    when its whitening cannot be undone (a singular matrix: degenerate features)."""
    try:
        return centroid_images(extractor)
    except np.linalg.LinAlgError:
        raise SvmtrainError(
            f"The k-means centroids in {weights} cannot be drawn: the whitening they were "
            "learned in is singular, so the features were degenerate (e.g. "
            f"features.kmeans.whitening_epsilon={extractor.settings.whitening_epsilon:g} is too "
            "large). Fit again with other features.kmeans settings."
        ) from None


def plot_run(run_dir: str | os.PathLike) -> list[Path]:
    """Draw a finished run's pictures into its directory; returns the paths written.

    Reads weights.npz and metrics.jsonl (required), loss_history.npy and summary.json (if
    present). Writes weights.png (a model of pixels) or centroids.png (of kmeans features),
    curves.png, and confusion.png when the summary holds a confusion matrix. Every file is
    checked before anything is drawn, and a picture is only replaced if svmtrain drew it (a
    user's own weights.png is refused, not overwritten).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SvmtrainError(
            f"Run directory {run_dir} does not exist or is not a directory; "
            f"{runs.new_run_hint(run_dir)}."
        )
    if (why := runs.unusable_run(run_dir)) is not None:
        raise SvmtrainError(why)
    for name in (runs.WEIGHTS, runs.METRICS):
        if not (run_dir / name).is_file():
            raise SvmtrainError(runs.run_file_fault(run_dir / name, "not found"))
    weights = LinearModel.load(run_dir / runs.WEIGHTS)
    class_names = weights.class_names
    metrics = runs.read_metrics(run_dir)
    loss_history = runs.read_loss_history(run_dir)
    confusion = runs.read_test_confusion(run_dir, len(class_names))
    extractor = getattr(weights.transform, "extractor", None)
    picture = None if extractor is None else extractor.name
    first = {None: ["weights.png"], "kmeans": ["centroids.png"]}.get(picture, [])
    centroids = kmeans_pictures(extractor, run_dir / runs.WEIGHTS) if picture == "kmeans" else None
    names = [*first, "curves.png"] + (["confusion.png"] if confusion is not None else [])
    for name in names:
        path = run_dir / name
        if (path.exists() or path.is_symlink()) and not drawn_by_svmtrain(path):
            raise SvmtrainError(
                f"{path} is not a picture svmtrain drew, so plot will not overwrite it; "
                "move it away first."
            )
    require_matplotlib()
    written = []
    if extractor is None:  # W's rows are pictures only when they weigh pixels
        written.append(plot_weights(weights.W, class_names, run_dir / "weights.png"))
    elif extractor.name == "kmeans":
        written.append(plot_centroids(centroids, run_dir / "centroids.png"))
    written.append(plot_curves(metrics, loss_history, run_dir / "curves.png"))
    if confusion is not None:
        written.append(plot_confusion(confusion, class_names, run_dir / "confusion.png"))
    return written
