"""svmtrain's trainer and feature extractors as scikit-learn estimators (``svmtrain[sklearn]``).

- :class:`LinearClassifier`: the linear classifier of ``svmtrain fit`` (every loss and optimiser
  of the registries, the same objective and training loop) on any numeric (n_samples,
  n_features) array and any labels.
- One transformer per feature extractor of :data:`svmtrain.features.EXTRACTORS`, named as the
  extractor's class (``KMeansFeatures``, ``HogColorFeatures``): raw CIFAR-10 images, (N, 3072)
  rows as stored or (N, 32, 32, 3) uint8, to (N, dim) float32 features, fitted on the images
  they are given. Their parameters are the extractor's settings.

The estimators follow scikit-learn's conventions (``get_params``/``set_params``, ``clone``,
``Pipeline``, ``GridSearchCV``); parameters are checked at ``fit`` by the config's own rules, so
a bad value is a ValueError worded as ``svmtrain fit`` words it, naming the parameter.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import re
from typing import Any

import numpy as np

try:
    import sklearn  # noqa: F401
except ImportError:  # pragma: no cover - the extra is installed in the tests
    raise ImportError(
        "svmtrain.sklearn needs scikit-learn: pip install 'svmtrain[sklearn]'"
    ) from None
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from svmtrain.config import Config, config_from_dict
from svmtrain.config.rules import OPTIMIZERS, optimizer_keys
from svmtrain.core.losses import log_softmax
from svmtrain.data.preprocess import Splits
from svmtrain.errors import ConfigError, DivergenceError, ImageError
from svmtrain.experiments.train import final_weights, init_state, train
from svmtrain.features import EXTRACTORS, Extractor
from svmtrain.model import image_rows

# ---------------------------------------------------------------------------------------------
# Feature extractors as transformers


class _ImageFeatures(TransformerMixin, BaseEstimator):
    """The base of the generated transformers: ``_extractor`` names the registry entry."""

    _extractor: str

    def fit(self, X, y=None):
        """Learn the extractor's state from images X (N, 3072) or (N, 32, 32, 3) uint8.

        Returns self. Raises ValueError for images of another shape or dtype, or a bad setting.
        """
        rows = self._rows(X, reset=True)
        extractor = self._make()
        extractor.fit(rows, np.random.default_rng(getattr(extractor.settings, "seed", 0)))
        self.extractor_ = extractor
        self.n_features_out_ = extractor.dim
        return self

    def transform(self, X):
        """(N, dim) float32 features of images X (as :meth:`fit` takes them)."""
        check_is_fitted(self)
        return self.extractor_.transform(self._rows(X, reset=False))

    def get_feature_names_out(self, input_features=None):
        """``<extractor>0`` .. ``<extractor>{dim - 1}``: one name per feature."""
        check_is_fitted(self)
        return np.array([f"{self._extractor}{i}" for i in range(self.n_features_out_)], object)

    def _make(self) -> Extractor:
        try:
            return EXTRACTORS[self._extractor](self.get_params())
        except ConfigError as err:
            raise ValueError(str(err).replace(f"features.{self._extractor}.", "")) from None

    def _rows(self, X, *, reset: bool) -> np.ndarray:
        """X as (N, 3072) uint8 rows in CIFAR-10's order; ValueError for anything else."""
        try:
            rows = image_rows(np.asarray(X))
        except ImageError as err:
            raise ValueError(f"{type(self).__name__}: {err}") from None
        if reset:
            self.n_features_in_ = int(np.prod(np.shape(X)[1:]))
        return np.ascontiguousarray(rows[:])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags


def _transformer(extractor: type[Extractor]) -> type[_ImageFeatures]:
    """The transformer class of ``extractor``: its settings as keyword parameters."""
    fields = dataclasses.fields(extractor.Settings)
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default) for f in fields
    ]

    def __init__(self, **settings: Any) -> None:
        for f in fields:
            setattr(self, f.name, settings.pop(f.name, f.default))
        if settings:
            raise TypeError(f"unexpected parameters {', '.join(settings)}")

    __init__.__signature__ = inspect.Signature(params)
    doc = (extractor.__doc__ or "").strip().splitlines()[0]
    return type(
        extractor.__name__,
        (_ImageFeatures,),
        {
            "__init__": __init__,
            "_extractor": extractor.name,
            "__module__": __name__,
            "__doc__": f"{doc}\n\nA scikit-learn transformer of raw images; parameters: "
            f"{', '.join(f.name for f in fields)} (``features.{extractor.name}`` in a config).",
        },
    )


TRANSFORMERS: dict[str, type[_ImageFeatures]] = {
    name: _transformer(cls) for name, cls in EXTRACTORS.items()
}
globals().update({cls.__name__: cls for cls in TRANSFORMERS.values()})


# ---------------------------------------------------------------------------------------------
# The linear classifier

# Each parameter of LinearClassifier and the config key it sets: the one place that ties them.
_KEYS = {
    "loss": "model.loss",
    "reg": "model.reg",
    "delta": "model.delta",
    "reg_bias": "model.reg_bias",
    "init_scale": "model.init_scale",
    "learning_rate": "optim.learning_rate",
    "momentum": "optim.momentum",
    "nesterov": "optim.nesterov",
    "schedule": "schedule.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "optimizer": "optim.name",
    "max_iter": "lbfgs.iterations",
    "tol": "lbfgs.grad_tol",
    "loss_tol": "lbfgs.loss_tol",
    "history": "lbfgs.history",
    "dtype": "preprocess.dtype",
}


class LinearClassifier(ClassifierMixin, BaseEstimator):
    """A linear classifier trained by svmtrain: W (C, F + 1) with the bias trick.

    Parameters are config keys of ``svmtrain fit`` (:data:`_KEYS` maps them), defaults those of
    the ``default`` config; ``random_state`` (an int, or None for a fresh seed each fit) seeds the
    initial W and the batch order, so an int gives bit-identical results. ``dtype`` None trains
    in float32 for float32 X, else float64.

    Attributes after fit: ``classes_`` (C,), ``coef_`` (C, F) and ``intercept_`` (C,) (for two
    classes, one row: the second class's scores less the first's, as scikit-learn's linear
    models give them), ``W_`` (C, F + 1), ``n_iter_`` (rounds run: SGD epochs, L-BFGS iterations),
    ``loss_curve_`` (the loss of each round), ``n_features_in_``.
    """

    def __init__(
        self,
        *,
        loss="svm",
        reg=0.3,
        delta=1.0,
        reg_bias=True,
        init_scale=1e-4,
        learning_rate=1e-4,
        momentum=0.9,
        nesterov=False,
        schedule="cosine",
        epochs=10,
        batch_size=256,
        optimizer="sgd",
        max_iter=100,
        tol=1e-6,
        loss_tol=1e-9,
        history=10,
        dtype=None,
        random_state=None,
    ):
        self.loss = loss
        self.reg = reg
        self.delta = delta
        self.reg_bias = reg_bias
        self.init_scale = init_scale
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.schedule = schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.tol = tol
        self.loss_tol = loss_tol
        self.history = history
        self.dtype = dtype
        self.random_state = random_state

    def fit(self, X, y):
        """Train on X (n_samples, n_features) numeric and labels y (n_samples,) of any kind.

        Returns self. Raises ValueError for a bad parameter (worded as the config's rule), for
        fewer than two classes, and for X or y that scikit-learn's validation refuses.
        """
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), y_numeric=False)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; y holds only "
                f"one class, {self.classes_[0]!r}."
            )
        cfg = self._config(X)
        try:
            W, curve = _train(cfg, X, labels.astype(np.intp), len(self.classes_))
        except DivergenceError as err:
            raise ValueError(f"{type(self).__name__}: {_param_words(str(err))}") from None
        self.W_ = W
        self.loss_curve_ = curve
        self.n_iter_ = len(curve)
        return self

    def decision_function(self, X):
        """Scores (n_samples, C) of X; for two classes (n_samples,), the second less the first."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """(n_samples,) the class of ``classes_`` with the highest score for each row of X."""
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def _is_softmax(self) -> bool:
        return self.loss == "softmax"

    @available_if(_is_softmax)
    def predict_proba(self, X):
        """(n_samples, C) class probabilities, softmax of the scores (softmax loss only)."""
        return np.exp(self.predict_log_proba(X))

    @available_if(_is_softmax)
    def predict_log_proba(self, X):
        """(n_samples, C) the logarithms of :meth:`predict_proba`, computed stably."""
        return log_softmax(self._scores(X).astype(np.float64))

    @property
    def coef_(self) -> np.ndarray:
        check_is_fitted(self, "W_")
        W = self.W_[:, :-1]
        return W[1:] - W[:1] if len(W) == 2 else W

    @property
    def intercept_(self) -> np.ndarray:
        check_is_fitted(self, "W_")
        b = self.W_[:, -1]
        return b[1:] - b[:1] if len(b) == 2 else b

    def _scores(self, X) -> np.ndarray:
        check_is_fitted(self, "W_")
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        W = self.W_
        return X.astype(W.dtype, copy=False) @ W[:, :-1].T + W[:, -1]

    def _config(self, X: np.ndarray) -> Config:
        """The config of this estimator's parameters for data X, checked by the config's rules.

        The keys of an optimiser other than ``optimizer`` are left out while they keep this
        class's defaults; changed, the config's rule refuses them (they would mean nothing).
        """
        params, defaults = self.get_params(), _defaults(type(self))
        params["dtype"] = params["dtype"] or ("float32" if X.dtype == np.float32 else "float64")
        foreign = {
            key
            for owner in OPTIMIZERS
            if owner != params["optimizer"]
            for key in optimizer_keys(owner)
        }
        raw: dict[str, dict[str, Any]] = {"train": {"seed": _seed(self.random_state)}}
        for name, key in _KEYS.items():
            if key in foreign and params[name] == defaults[name]:
                continue
            section, _, field = key.partition(".")
            raw.setdefault(section, {})[field] = params[name]
        if "batch_size" in raw["train"]:  # small data: one batch of all of it
            raw["train"]["batch_size"] = min(raw["train"]["batch_size"], len(X))
        raw["train"]["train_acc_samples"] = min(1000, len(X))
        try:
            return config_from_dict(raw)
        except ConfigError as err:
            raise ValueError(f"{type(self).__name__}: {_param_words(str(err))}") from None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


def _defaults(cls: type) -> dict[str, Any]:
    """The default of each parameter of ``cls.__init__``."""
    return {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _seed(random_state) -> int:
    """An int seed from random_state: itself, a draw from a RandomState, or a fresh one."""
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random
    return int(rng.randint(0, 2**31 - 1))


def _train(cfg: Config, X: np.ndarray, y: np.ndarray, num_classes: int):
    """W (C, F + 1) trained as ``cfg`` says on X (n, F), y (n,) in [0, C); and the loss curve."""
    F = X.shape[1]
    splits = Splits(
        X_train=X,
        y_train=y,
        X_val=X[:0],
        y_val=y[:0],
        X_test=X[:0],
        y_test=y[:0],
        mean=np.zeros(F, np.float32),
        scale=np.ones(F, np.float32),
        class_names=tuple(str(i) for i in range(num_classes)),
    )
    state = init_state(cfg, num_classes, F + 1)
    with np.errstate(all="ignore"):
        train(cfg, splits, state, progress=False)
    return final_weights(cfg, state), np.array([m["loss"] for m in state.metrics])


def _param_words(message: str) -> str:
    """A config message worded for the estimator: parameter names instead of config keys."""
    for name, key in _KEYS.items():
        message = re.sub(rf"(--set )?\b{re.escape(key)}\b", name, message)
    return message
