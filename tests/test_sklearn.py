"""svmtrain.sklearn: scikit-learn's own estimator checks, and what they cannot see.

LinearClassifier passes every check of ``parametrize_with_checks``. The feature transformers
take raw CIFAR-10 images only, so the checks that fit them on generic (n, k) float matrices are
declared expected failures (:data:`IMAGE_ONLY`, with the reason); the same properties are then
checked here on images.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from svmtrain.core.losses import LOSSES  # noqa: E402
from svmtrain.core.optimizers import OPTIMIZERS  # noqa: E402
from svmtrain.features import EXTRACTORS  # noqa: E402
from svmtrain.sklearn import TRANSFORMERS, LinearClassifier  # noqa: E402

# Small settings per extractor so the checks run in seconds.
SMALL = {
    "kmeans": {"num_centroids": 8, "patches_sampled": 2000, "kmeans_iterations": 2},
    "hog_color": {},
}
REASON = (
    "fits on generic (n, k) float matrices; the extractor takes raw CIFAR-10 images, (N, 3072) "
    "or (N, 32, 32, 3) uint8 (the same property is tested on images below)"
)
# scikit-learn's checks that need an estimator to fit arbitrary 2-D numeric data.
IMAGE_ONLY = {
    name: REASON
    for name in (
        "check_complex_data",
        "check_dict_unchanged",
        "check_dont_overwrite_parameters",
        "check_dtype_object",
        "check_estimator_sparse_array",
        "check_estimator_sparse_matrix",
        "check_estimator_sparse_tag",
        "check_estimators_dtypes",
        "check_estimators_empty_data_messages",
        "check_estimators_fit_returns_self",
        "check_estimators_nan_inf",
        "check_estimators_overwrite_params",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_fit2d_1feature",
        "check_fit2d_1sample",
        "check_fit2d_predict1d",
        "check_fit_check_is_fitted",
        "check_fit_idempotent",
        "check_fit_score_takes_y",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_n_features_in",
        "check_n_features_in_after_fitting",
        "check_pipeline_consistency",
        "check_positive_only_tag_during_fit",
        "check_readonly_memmap_input",
        "check_transformer_data_not_an_array",
        "check_transformer_general",
        "check_transformer_preserve_dtypes",
    )
}


def _expected_failures(estimator) -> dict[str, str]:
    return {} if isinstance(estimator, LinearClassifier) else IMAGE_ONLY


CLASSIFIERS = [
    *(LinearClassifier(loss=name, random_state=0) for name in LOSSES),
    *(LinearClassifier(optimizer=name, random_state=0) for name in OPTIMIZERS if name != "sgd"),
]
TRANSFORMER_INSTANCES = [TRANSFORMERS[name](**SMALL.get(name, {})) for name in EXTRACTORS]


@parametrize_with_checks(
    [*CLASSIFIERS, *TRANSFORMER_INSTANCES], expected_failed_checks=_expected_failures
)
def test_sklearn_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------------
# The transformers on images: what the checks above test on matrices


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


@pytest.fixture(params=list(EXTRACTORS), ids=str)
def transformer(request):
    return TRANSFORMERS[request.param](**SMALL.get(request.param, {}))


def test_transformer_equals_its_extractor(transformer):
    images = _images(40)
    got = transformer.fit(images).transform(images)
    extractor = EXTRACTORS[transformer._extractor](transformer.get_params())
    extractor.fit(images, np.random.default_rng(transformer.get_params().get("seed", 0)))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, extractor.transform(images))
    assert transformer.n_features_in_ == 3072
    assert len(transformer.get_feature_names_out()) == got.shape[1] == extractor.dim


def test_transformer_image_properties(transformer, tmp_path):
    images = _images(30)
    before = images.copy()
    fitted = transformer.fit(images)
    assert fitted is transformer  # fit returns self
    np.testing.assert_array_equal(images, before)  # input not modified
    full = transformer.transform(images)
    again = clone(transformer).fit(images).transform(images)
    np.testing.assert_array_equal(full, again)  # fit is idempotent and seeded
    np.testing.assert_array_equal(transformer.transform(images[:7]), full[:7])  # subsets
    order = np.random.default_rng(1).permutation(len(images))
    np.testing.assert_array_equal(transformer.transform(images[order]), full[order])
    restored = pickle.loads(pickle.dumps(transformer))
    np.testing.assert_array_equal(restored.transform(images), full)
    channels_last = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(transformer.transform(channels_last), full)
    path = tmp_path / "images.npy"
    np.save(path, images)
    read_only = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(transformer.transform(read_only), full)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (np.zeros((4, 3072), np.float64), "uint8"),
        (np.zeros((4, 10), np.uint8), "(4, 10)"),
        (np.zeros((3072,), np.uint8), "leading axis"),
    ],
    ids=["floats", "wrong width", "one image without its axis"],
)
def test_transformer_refuses_what_is_not_images(transformer, bad, words):
    with pytest.raises(ValueError, match=None) as err:
        transformer.fit(bad)
    assert words in str(err.value) and type(transformer).__name__ in str(err.value)


def test_transformer_bad_setting_names_the_parameter():
    with pytest.raises(ValueError, match="num_centroids") as err:
        TRANSFORMERS["kmeans"](num_centroids=0).fit(_images(4))
    assert "features.kmeans." not in str(err.value)


def test_transformer_not_fitted(transformer):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        transformer.transform(_images(2))


# ---------------------------------------------------------------------------------------------
# LinearClassifier


def _blobs(n=300, classes=3, features=5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    return (centres[y] + rng.normal(size=(n, features))).astype(np.float64), y


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_same_random_state_is_bit_identical(loss, optimizer):
    X, y = _blobs()
    a = LinearClassifier(loss=loss, optimizer=optimizer, random_state=3).fit(X, y)
    b = LinearClassifier(loss=loss, optimizer=optimizer, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.W_, b.W_)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    assert a.n_iter_ == len(a.loss_curve_) >= 1


@pytest.mark.parametrize("loss", list(LOSSES))
def test_lbfgs_needs_no_tuning_on_small_data(loss):
    X, y = _blobs()
    clf = LinearClassifier(loss=loss, optimizer="lbfgs", random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.95


def test_softmax_lbfgs_reaches_logistic_regressions_minimum():
    """An independent reference: scikit-learn's multinomial LogisticRegression minimises
    C * sum(cross-entropy) + ||coef||^2 / 2 with the intercept free, which is our mean
    cross-entropy + reg * ||W||^2 with reg = 1 / (2 C N) and reg_bias False."""
    from sklearn.linear_model import LogisticRegression

    X, y = _blobs(n=200, classes=3, features=4, seed=1)
    X = X / 4
    C = 0.5
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    ours = LinearClassifier(
        loss="softmax",
        optimizer="lbfgs",
        reg=1 / (2 * C * len(X)),
        reg_bias=False,
        tol=1e-9,
        loss_tol=0.0,
        max_iter=1000,
        random_state=0,
    ).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    # Softmax does not change when every class's intercept moves alike: compare them centred.
    centred = ours.intercept_ - ours.intercept_.mean()
    np.testing.assert_allclose(centred, ref.intercept_ - ref.intercept_.mean(), atol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)


def test_string_labels_and_binary_decision():
    X, y = _blobs(classes=2)
    names = np.array(["cat", "dog"])[y]
    clf = LinearClassifier(random_state=0).fit(X, names)
    assert list(clf.classes_) == ["cat", "dog"]
    assert clf.decision_function(X).shape == (len(X),)
    assert set(clf.predict(X)) <= {"cat", "dog"}
    assert clf.coef_.shape == (1, X.shape[1]) and clf.intercept_.shape == (1,)
    # The binary decision is the difference of the two rows' scores, as sklearn's linear models.
    scores = X @ clf.W_[:, :-1].T + clf.W_[:, -1]
    np.testing.assert_allclose(clf.decision_function(X), scores[:, 1] - scores[:, 0])


def test_predict_proba_for_softmax_only():
    X, y = _blobs()
    soft = LinearClassifier(loss="softmax", random_state=0).fit(X, y)
    p = soft.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(soft.classes_[p.argmax(axis=1)], soft.predict(X))
    assert not hasattr(LinearClassifier(loss="svm"), "predict_proba")


def test_float32_data_trains_in_float32():
    X, y = _blobs()
    clf = LinearClassifier(random_state=0).fit(X.astype(np.float32), y)
    assert clf.W_.dtype == np.float32
    assert LinearClassifier(random_state=0).fit(X, y).W_.dtype == np.float64


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"reg": -1.0}, "reg must be a float >= 0"),
        ({"loss": "hinge"}, "loss must be one of"),
        ({"epochs": 0}, "epochs must be"),
        ({"momentum": 1.5}, "momentum must be"),
    ],
)
def test_bad_parameter_is_a_value_error_naming_it(params, words):
    X, y = _blobs()
    with pytest.raises(ValueError) as err:
        LinearClassifier(**params).fit(X, y)
    assert words in str(err.value)
    assert "model." not in str(err.value) and "optim." not in str(err.value)


def test_grid_search_over_a_pipeline_of_features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=60)
    images = _images(60)
    images[y == 1, :1024] //= 4  # class 1: a darker red plane, which the hue histogram sees
    pipe = Pipeline(
        [
            ("features", TRANSFORMERS["hog_color"]()),
            ("scale", StandardScaler()),
            ("clf", LinearClassifier(random_state=0, learning_rate=1e-2)),
        ]
    )
    search = GridSearchCV(pipe, {"clf__reg": [1e-3, 1e-1]}, cv=2).fit(images, y)
    assert search.best_score_ > 0.8
    assert search.best_estimator_.predict(images[:5]).shape == (5,)
