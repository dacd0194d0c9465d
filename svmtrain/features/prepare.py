"""Design matrices of features: the cached features of every image, scaled as the config says."""

from __future__ import annotations

from collections.abc import Callable

from svmtrain.config import Config
from svmtrain.data.preprocess import Splits, design_splits, split_rows, stats_from_moments
from svmtrain.data.source import resolve_data_dir
from svmtrain.features.cache import FeatureCache, load_or_build


def cached_features(
    dataset, cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> FeatureCache:
    """The feature cache ``cfg.features`` names for ``dataset``, built first if need be, its
    state learned from the config's training split only."""
    train, _, _ = split_rows(dataset, cfg)
    name = cfg.features.name
    return load_or_build(
        dataset,
        name,
        getattr(cfg.features, name),
        train,
        resolve_data_dir(cfg.data.dir),
        progress=progress,
        log=log,
    )


def feature_splits(
    dataset, cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> Splits:
    """Splits whose X are the features ``cfg.features`` names (N, dim + 1), centred and scaled
    by the training split's moments as ``cfg.preprocess`` says, with their extractor."""
    cached = cached_features(dataset, cfg, progress=progress, log=log)
    mean, scale = stats_from_moments(
        cached.mean,
        cached.std,
        subtract_mean=cfg.preprocess.subtract_mean,
        scaling=cfg.preprocess.scaling,
    )
    rows = split_rows(dataset, cfg)
    inputs = (cached.train, cached.test)
    return design_splits(dataset, inputs, rows, mean, scale, cfg, extractor=cached.extractor)
