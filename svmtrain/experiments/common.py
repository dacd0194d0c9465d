"""What every experiment starts from: the preprocessed splits, seeded random streams, the
predictions of weights on a split, and SIGTERM as Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from svmtrain.config import Config, DataConfig
from svmtrain.core.blas import limited_threads
from svmtrain.data import load_cifar10
from svmtrain.data.cache import CIFAR10
from svmtrain.data.preprocess import Splits, prepare
from svmtrain.data.source import CONFIG_DIGEST
from svmtrain.errors import ConfigError, ProblemSizeError, SigTerm
from svmtrain.features import EXTRACTORS, PIXELS, check_feature_name
from svmtrain.features.cache import FeatureCache
from svmtrain.features.prepare import cached_features, feature_splits
from svmtrain.model import chunked_scores


def load_dataset(
    data: DataConfig, *, data_dir: str | os.PathLike | None = None, progress: bool = True
) -> CIFAR10:
    """The CIFAR-10 a config's data section names, downloaded or from the cache (``data_dir``
    overrides data.dir); a digest that does not match says to fix data.sha256 or data.md5."""
    return load_cifar10(
        data_dir or data.dir,
        url=data.url,
        sha256=data.sha256,
        md5=data.md5,
        progress=progress,
        given_as=CONFIG_DIGEST,
    )


def load_splits(
    cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> Splits:
    """CIFAR-10 downloaded (or found in the cache ``cfg.data`` names) and split as ``cfg``
    says, as :class:`~svmtrain.data.preprocess.Splits`: for pixels, X (N, 3072) uint8 rows
    memory-mapped from the cache, with the training split's mean and scale beside them
    (``splits.design(X, dtype)`` makes a float design matrix, bias column included); with
    ``cfg.features`` other than pixels, X (N, dim) rows memory-mapped from the feature cache
    (built on first use), with their training split's mean and scale. y (N,) intp class
    indices for train, val and test.

    ``progress``: show the download's and the feature build's progress bars; ``log``
    receives a line per phase of a feature build (what it needs, then each phase). Raises
    :class:`~svmtrain.errors.DataError` when the data cannot be fetched or verified,
    :class:`~svmtrain.errors.ConfigError` when the config's split sizes do not fit them.
    """
    check_feature_name(cfg.features)
    dataset = load_dataset(cfg.data, progress=progress)
    if cfg.features.name != PIXELS:
        with limited_threads(1):  # the extractor's threads make the products, one core each
            return feature_splits(dataset, cfg, progress=progress, log=log)
    return prepare(dataset, cfg)


def build_features(
    cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> FeatureCache:
    """The feature cache ``cfg.features`` names, built first if need be: what ``svmtrain
    features build`` does. The data come from ``cfg.data`` (downloaded on first use).
    Raises ConfigError when ``cfg.features.name`` is pixels (nothing to build)."""
    check_feature_name(cfg.features)
    if cfg.features.name == PIXELS:
        raise ConfigError(
            "features.name is pixels, which need no feature cache; set features.name to one "
            f"of {', '.join(EXTRACTORS)} (e.g. --set features.name=kmeans)."
        )
    d = cfg.data
    dataset = load_cifar10(d.dir, url=d.url, sha256=d.sha256, md5=d.md5, progress=progress)
    with limited_threads(1):
        return cached_features(dataset, cfg, progress=progress, log=log)


def require_examples(num_examples: int | None, available: int) -> None:
    """Raises :class:`~svmtrain.errors.ProblemSizeError` (argument "num_examples") when more
    than the ``available`` training images are asked for (None asks for none in particular)."""
    if num_examples is not None and num_examples > available:
        raise ProblemSizeError(
            "num_examples",
            f"the training split has {available} images (data.num_train and data.val_size set "
            f"it). Got {num_examples} instead.",
        )


def random_streams(seed: int, count: int) -> tuple[np.random.Generator, ...]:
    """``count`` independent generators spawned from ``numpy.random.SeedSequence(seed)``.

    An experiment takes one stream per purpose (e.g. initial W, batch order, sample), so that
    drawing more from one never changes what another draws.
    """
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count))


def predict_rows(splits: Splits, W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n,) intp: the highest-scoring class under W (C, D) of each row of X, rows of a split of
    ``splits``, scored chunk by chunk (no float copy of X)."""
    return np.argmax(chunked_scores(W, splits.affine.features, X), axis=1)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # a kill, a closed terminal: stop as Ctrl-C


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`~svmtrain.errors.SigTerm` (a
    KeyboardInterrupt) in the main thread, so they stop work as Ctrl-C does: a checkpoint is
    saved, temporaries are removed. Once one has come, more of them are ignored until the block
    (the outermost, when blocks nest) ends, so the clean-up is not cut short. The previous
    handlers are restored after. Elsewhere than the main thread (where no handler can be set)
    it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            if old is _stop and signal.getsignal(sig) == signal.SIG_IGN:
                continue  # stopping: the enclosing block ignores more of them too, to its end
            signal.signal(sig, old)


def _stop(signum: int, frame: object) -> None:
    """The handler of :func:`sigterm_as_interrupt`."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise SigTerm(signum)
