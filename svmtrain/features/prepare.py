"""Design matrices of features: the cached features of every image, scaled as the config says."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from svmtrain.config import Config
from svmtrain.data.preprocess import Splits, split_rows, stats_from_moments, transform
from svmtrain.data.source import resolve_data_dir
from svmtrain.errors import DataError
from svmtrain.features.cache import (
    CacheDamaged,
    FeatureCache,
    all_finite,
    cache_key,
    features_root,
    load_or_build,
    open_cache,
)
from svmtrain.features.flips import flipped_features
from svmtrain.features.progress import Phases
from svmtrain.features.sizes import human_bytes
from svmtrain.features.transform import FeatureTransform


def cached_features(
    dataset, cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> FeatureCache:
    """The feature cache ``cfg.features`` names for ``dataset``, built first if need be, its
    state learned from the config's training split only; with ``features.flip``, the mirrored
    training images' features too (:func:`flipped_of`)."""
    train, _, _ = split_rows(dataset, cfg)
    name = cfg.features.name
    cached = load_or_build(
        dataset,
        name,
        getattr(cfg.features, name),
        train,
        resolve_data_dir(cfg.data.dir),
        progress=progress,
        log=log,
    )
    if cfg.features.flip:
        flipped_of(cached, dataset, progress=progress, log=log)
    return cached


def flipped_of(
    cached: FeatureCache,
    dataset,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> np.ndarray:
    """The features of ``dataset``'s training images mirrored (N, dim), kept in ``cached``."""
    phases = Phases(f"features {cached.extractor.name}", bar=progress, log=log)
    return flipped_features(cached, dataset, phases)


def matching_cache(
    dataset, cfg: Config, transform: FeatureTransform, data_dir: str | None = None
) -> FeatureCache | None:
    """The finished feature cache of ``dataset`` that the config ``cfg`` (a model's own)
    names, when its extractor's state is the one of ``transform`` (equal digests of name,
    settings and state arrays); else None. Nothing is built. ``data_dir`` overrides
    ``cfg.data.dir``."""
    extractor = transform.extractor
    train, _, _ = split_rows(dataset, cfg)
    dirname, _ = cache_key(dataset.sha256, extractor.name, extractor.settings_dict(), train)
    path = features_root(resolve_data_dir(data_dir or cfg.data.dir)) / dirname
    if not path.is_dir():
        return None
    try:
        cached = open_cache(path)
    except DataError:
        return None
    return cached if cached.extractor.state_digest() == extractor.state_digest() else None


def feature_splits(
    dataset, cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> Splits:
    """Splits whose X are design matrices (N, dim + 1) of the features ``cfg.features`` names,
    centred and scaled by the training split's moments as ``cfg.preprocess`` says, with the
    :class:`FeatureTransform` a model of them keeps. With ``features.flip`` the training
    split is followed by its mirror images (:mod:`svmtrain.features.flips`), labels alike.
    Raises CacheDamaged for a cache whose rows are not all finite."""
    cached = cached_features(dataset, cfg, progress=progress, log=log)
    mean, scale = stats_from_moments(
        cached.mean,
        cached.std,
        subtract_mean=cfg.preprocess.subtract_mean,
        scaling=cfg.preprocess.scaling,
    )
    train, val, test = split_rows(dataset, cfg)

    def design(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        X = transform(x, mean, scale, cfg.preprocess.dtype, out=out)
        if not all_finite(X):  # a build never keeps such rows: the files were changed since
            raise CacheDamaged(cached.path, "it holds features that are not finite numbers")
        return X

    def labels(y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.intp)

    y_train = labels(dataset.y_train[train])
    rows = (len(y_train) * (2 if cfg.features.flip else 1)) + (val.stop - val.start)
    rows += test.stop - test.start
    width = cached.train.shape[1] + 1
    if log is not None:
        size = human_bytes(rows * width * np.dtype(cfg.preprocess.dtype).itemsize)
        log(
            f"features {cached.extractor.name}: design matrices of {rows:,} images x "
            f"{width:,} columns ({cfg.preprocess.dtype}): {size} of memory"
        )
    if cfg.features.flip:
        flipped = flipped_of(cached, dataset, progress=progress, log=log)
        n = len(y_train)
        X_train = np.empty((2 * n, cached.train.shape[1] + 1), dtype=cfg.preprocess.dtype)
        design(cached.train[train], out=X_train[:n])
        design(flipped[train], out=X_train[n:])
        y_train = np.concatenate([y_train, y_train])
    else:
        X_train = design(cached.train[train])
    return Splits(
        X_train=X_train,
        y_train=y_train,
        X_val=design(cached.train[val]),
        y_val=labels(dataset.y_train[val]),
        X_test=design(cached.test[test]),
        y_test=labels(dataset.y_test[test]),
        mean=mean,
        scale=scale,
        class_names=tuple(dataset.class_names),
        data_sha256=dataset.sha256,
        feature_transform=FeatureTransform(cached.extractor, mean, scale),
    )
