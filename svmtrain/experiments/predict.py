"""Class scores of image files and of CIFAR-10 test images under a saved model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from svmtrain.config import config_from_yaml
from svmtrain.core.losses import log_softmax
from svmtrain.errors import ArgumentError, SvmtrainError, WeightsError
from svmtrain.experiments.common import load_dataset
from svmtrain.features.prepare import matching_cache
from svmtrain.features.transform import FeatureTransform
from svmtrain.io.images import conversion_note, read_image, write_png
from svmtrain.io.records import format_table
from svmtrain.model import LinearModel


def predict(
    weights_path: str | Path,
    image_paths: Sequence[str | Path] = (),
    test_indices: Sequence[int] = (),
    *,
    data_dir: str | None = None,
    progress: bool = True,
    top: int | None = None,
    show: str | Path | None = None,
) -> list[dict]:
    """One result per image, files first then test images, in the order given:
    ``{"image", "class", "scores": {class name: score}}``; for a softmax model also
    ``"probabilities"`` (the softmax of the scores, summing to 1); ``"true_class"`` for a test
    image; ``"converted"`` for a file whose colours had to be converted to RGB (a phrase such
    as "grey levels repeated in red, green and blue"); with ``top``, ``"top"``: the
    ``top`` most likely classes, each ``{"class", "probability" or "score"}``, best first.

    Image files of any size are read with Pillow (see :func:`svmtrain.io.images.read_image`);
    test images come from the data source of the config stored in the weights (``data_dir``
    overrides its cache directory). ``show``: also write the 32 x 32 images the model scored,
    enlarged, side by side, as a PNG there (:func:`svmtrain.io.images.write_png`). Every file
    and index is checked before any score is computed; a fault is one SvmtrainError naming
    it (:class:`~svmtrain.errors.ImageError` for an image file), and ``top`` must be 1 to the
    number of classes (:class:`~svmtrain.errors.ArgumentError`).
    """
    model = LinearModel.load(weights_path)
    if top is not None and not 1 <= top <= model.num_classes:
        raise ArgumentError(
            "top", f"must be 1 to {model.num_classes} (the model's classes). Got {top} instead."
        )
    images = [read_image(p) for p in image_paths]
    names = [str(p) for p in image_paths]
    notes = [conversion_note(p) for p in image_paths]
    truths: list[str | None] = [None] * len(images)
    scores = [model.scores(np.stack(images))] if images else [np.empty((0, model.num_classes))]
    if test_indices:
        x_test, y_test, cached = _test_split(model, weights_path, data_dir, progress)
        bad = [i for i in test_indices if not 0 <= i < len(y_test)]
        if bad:
            raise SvmtrainError(
                f"Test index {bad[0]} is out of range: the test split has {len(y_test)} images "
                f"(indices 0 to {len(y_test) - 1})."
            )
        which = list(test_indices)
        if cached is not None:
            scores.append(model.scores_of_features(cached.test[which]))
        else:
            scores.append(model.scores(x_test[which]))
        names += [f"test[{i}]" for i in test_indices]
        truths += [model.class_names[int(y_test[i])] for i in test_indices]
        notes += [None] * len(test_indices)
        planes = x_test[which].reshape(-1, 3, 32, 32)
        images += list(planes.transpose(0, 2, 3, 1))
    shown = np.stack(images) if images else np.empty((0, 32, 32, 3), np.uint8)
    scores = np.concatenate(scores)
    softmax = model.loss == "softmax"
    likelihoods = np.exp(log_softmax(scores.astype(np.float64))) if softmax else scores
    results = []
    for name, row, likely, truth, note in zip(
        names, scores, likelihoods, truths, notes, strict=True
    ):
        result = {
            "image": name,
            "class": model.class_names[int(np.argmax(row))],
            "scores": _by_class(model, row),
        }
        if softmax:
            result["probabilities"] = _by_class(model, likely)
        if truth is not None:
            result["true_class"] = truth
        if note is not None:
            result["converted"] = note
        if top is not None:
            key = "probability" if softmax else "score"
            order = np.argsort(-likely, kind="stable")[:top]
            result["top"] = [
                {"class": model.class_names[int(k)], key: float(likely[k])} for k in order
            ]
        results.append(result)
    if show is not None and images:
        write_png(show, shown)
    return results


def _by_class(model: LinearModel, row: np.ndarray) -> dict[str, float]:
    return {c: float(v) for c, v in zip(model.class_names, row, strict=True)}


def _test_split(model: LinearModel, weights_path, data_dir, progress):
    """The CIFAR-10 test images and labels of the model's data source, and its feature cache
    when the model's extractor made it (None otherwise, or for a pixel model)."""
    cfg = config_from_yaml(model.config_yaml, f"the config stored in {weights_path}")
    dataset = load_dataset(cfg.data, data_dir=data_dir, progress=progress)
    if tuple(dataset.class_names) != model.class_names:
        raise WeightsError(
            f"{weights_path} was trained on the classes {', '.join(model.class_names)}, but the "
            f"dataset has {', '.join(dataset.class_names)}."
        )
    cached = None
    if isinstance(model.transform, FeatureTransform):
        cached = matching_cache(dataset, cfg, model.transform, data_dir)
    return dataset.x_test, dataset.y_test, cached


def predictions_text(results: list[dict]) -> str:
    """What ``svmtrain predict`` prints for :func:`predict`'s results: a line saying what the
    numbers are (a softmax model's probabilities, a margin loss's scores), then one row per image:
    its class, its true class when any image has one, and either the number of every class
    (whole class names as headers) or, when the results have "top", the top classes."""
    softmax = "probabilities" in results[0]
    values = "probabilities" if softmax else "scores"
    has_truth = any("true_class" in r for r in results)
    truth = ["true"] if has_truth else []
    if "top" in results[0]:
        k = len(results[0]["top"])
        key = "probability" if softmax else "score"
        headers = ["image", "class", *truth, *(f"#{i + 1}" for i in range(k))]
        cells = [[f"{t['class']} {t[key]:.3f}" for t in r["top"]] for r in results]
    else:
        classes = list(results[0][values])
        headers = ["image", "class", *truth, *classes]
        cells = [[f"{r[values][c]:.3f}" for c in classes] for r in results]
    rows = [
        (r["image"], r["class"], *([r.get("true_class", "")] if has_truth else []), *row)
        for r, row in zip(results, cells, strict=True)
    ]
    what = (
        "probabilities (the softmax of the class scores)"
        if softmax
        else "class scores (margins: the highest wins; they are not probabilities)"
    )
    return f"{what}\n\n{format_table(headers, rows)}"
