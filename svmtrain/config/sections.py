"""The run configuration's keys: one typed dataclass per section, one line per key.

Each line gives the key's type, its default, its rule (:mod:`svmtrain.config.keys`) and what it
means; ``svmtrain configs show`` prints every key explained from these lines. The defaults are
the built-in "notes" config: the CS231n notes' SVM recipe. Feature extractors' settings are
sections too (features.kmeans, features.hog_color), checked when the config is.
"""

from __future__ import annotations

from svmtrain.config.keys import (
    BOOL,
    NON_EMPTY,
    PATH,
    POSITIVE_INT,
    RUN_NAME,
    Rule,
    between,
    compare,
    hex_digest,
    is_http_url,
    key,
    one_of,
    section,
    settings,
)
from svmtrain.core.losses import DTYPES, LOSSES
from svmtrain.core.optimizers import OPTIMIZERS
from svmtrain.core.optimizers.sgd import SCHEDULES
from svmtrain.core.scaling import SCALINGS

SIDE = 32  # CIFAR-10 images are SIDE x SIDE pixels, 3 colour planes
_SIDE_INT = between(1, SIDE, "[]")
URL = Rule(is_http_url, "an http:// or https:// URL")
SAMPLINGS = one_of("shuffle", "replacement")
SHA256 = hex_digest("sha256")


@settings
class DataConfig:
    dir: str | None = key(None, PATH, "null: $SVMTRAIN_DATA_DIR or $XDG_CACHE_HOME/svmtrain")
    url: str | None = key(None, URL, "archive URL; null: $SVMTRAIN_DATA_URL, else the official one")
    sha256: str | None = key(None, SHA256, "null: $SVMTRAIN_DATA_SHA256, else the official one")
    md5: str | None = key(None, hex_digest("md5"), "optional extra check; null: $SVMTRAIN_DATA_MD5")
    val_size: int = key(1000, POSITIVE_INT, "validation images, from the end of the training set")
    num_train: int | None = key(None, POSITIVE_INT, "training images; null: all but validation")
    num_test: int | None = key(None, POSITIVE_INT, "test images; null: the whole test batch")


@settings
class PreprocessConfig:
    subtract_mean: bool = key(True, BOOL, "subtract the training split's mean image everywhere")
    scaling: str = key("none", one_of(*SCALINGS), "unit: / 255; standardize: / per-pixel std")
    dtype: str = key("float32", one_of(*DTYPES), "of the design matrices and W")


@settings
class KMeansSettings:
    num_centroids: int = key(1600, POSITIVE_INT, "K centroids; pooling_grid**2 * K features")
    patch_size: int = key(6, _SIDE_INT, "patches of patch_size x patch_size pixels x 3 colours")
    stride: int = key(1, _SIDE_INT, "pixels between two patch positions")
    whitening_epsilon: float = key(0.1, compare(">", 0), "ZCA whitening: added to every eigenvalue")
    pooling_grid: int = key(2, POSITIVE_INT, "pooling regions per side (2: the paper's quadrants)")
    kmeans_iterations: int = key(20, POSITIVE_INT, "rounds of Lloyd's k-means")
    patches_sampled: int = key(200_000, POSITIVE_INT, "patches the whitening and k-means learn")
    seed: int = key(0, compare(">=", 0), "seeds the patch sample and the initial centroids")

    @property
    def positions(self) -> int:
        """Patch positions along each side of an image."""
        return (SIDE - self.patch_size) // self.stride + 1

    @property
    def patch_dim(self) -> int:
        """Values per patch: patch_size**2 pixels x 3 colours."""
        return self.patch_size * self.patch_size * 3

    cross_rules = (
        (
            lambda s: s.pooling_grid > s.positions,
            lambda s: (
                f"features.kmeans.pooling_grid must be an int in [1, {s.positions}] (the patch "
                f"positions per side at patch_size {s.patch_size}, stride {s.stride}). "
                f"Got {s.pooling_grid} instead."
            ),
        ),
        (
            lambda s: s.patches_sampled < s.num_centroids,
            lambda s: (
                f"features.kmeans.patches_sampled must be an int >= {s.num_centroids} "
                f"(features.kmeans.num_centroids). Got {s.patches_sampled} instead."
            ),
        ),
    )


@settings
class HogColorSettings:
    cell_size: int = key(8, between(2, SIDE, "[]"), "HOG cells of cell_size x cell_size pixels")
    orientation_bins: int = key(9, POSITIVE_INT, "unsigned orientations (9: 20 degrees each)")
    hue_bins: int = key(10, POSITIVE_INT, "bins of the hue histogram")


@settings
class FeaturesConfig:
    # The name is the extractors' to check (svmtrain.features, which sits above the config).
    name: str = key("pixels", NON_EMPTY, "pixels (W: 10 x 3073) or an extractor: kmeans, hog_color")
    kmeans: KMeansSettings = section(
        KMeansSettings,
        "k-means features (Coates, Lee & Ng 2011), if features.name is kmeans",
    )
    hog_color: HogColorSettings = section(
        HogColorSettings,
        "HOG and hue histogram (CS231n assignment 1), if features.name is hog_color",
    )
    flip: bool = key(False, BOOL, "also train on each training image mirrored (not val, test)")


@settings
class ModelConfig:
    loss: str = key("svm", one_of(*LOSSES), "the data loss; the model minimises it plus L2")
    delta: float = key(1.0, compare(">", 0), "the margin of the hinge losses (not softmax's)")
    reg: float = key(2.5e4, compare(">=", 0), "L2 strength: loss += reg * sum(W * W)")
    reg_bias: bool = key(True, BOOL, "whether the bias column is regularised too")
    init_scale: float = key(1e-4, compare(">", 0), "W starts as init_scale * standard normal")


@settings
class OptimConfig:
    name: str = key("sgd", one_of(*OPTIMIZERS), "the optimiser; the others' keys keep defaults")
    learning_rate: float = key(1e-7, compare(">", 0), "SGD step size at the start of the schedule")
    momentum: float = key(0.0, between(0, 1, "[)"), "0 is plain SGD; e.g. 0.9 damps oscillation")
    nesterov: bool = key(False, BOOL, "Nesterov momentum (needs momentum > 0)")


@settings
class ScheduleConfig:
    name: str = key("constant", one_of(*SCHEDULES), "the learning rate over the epochs")
    step_epochs: int = key(10, POSITIVE_INT, "step: times gamma every step_epochs epochs")
    gamma: float = key(0.5, between(0, 1, "(]"), "step and exponential: the decay factor")
    min_lr: float = key(0.0, compare(">=", 0), "cosine: the floor it decays towards")


@settings
class LbfgsConfig:
    history: int = key(10, POSITIVE_INT, "(s, y) pairs kept for the inverse-Hessian estimate")
    iterations: int = key(100, POSITIVE_INT, "at most this many iterations, each a line search")
    grad_tol: float = key(1e-6, compare(">=", 0), "converged when max |gradient| <= grad_tol")
    loss_tol: float = key(1e-9, compare(">=", 0), "converged when the loss falls by <= this share")
    max_evaluations: int = key(20, POSITIVE_INT, "loss evaluations one line search may take")


@settings
class RandomSearchConfig:
    tries: int = key(1000, POSITIVE_INT, "random W drawn, each scored on the whole training split")
    scale: float = key(1e-4, compare(">", 0), "each W is scale * standard normal (the notes' 1e-4)")


@settings
class RandomLocalSearchConfig:
    tries: int = key(1000, POSITIVE_INT, "steps tried from W, each scored on the whole split")
    step: float = key(1e-4, compare(">", 0), "each is W + step * standard normal (the notes' 1e-4)")


@settings
class TrainConfig:
    batch_size: int = key(256, POSITIVE_INT, "images per SGD step")
    epochs: int | None = key(10, POSITIVE_INT, "passes over the training set (or iterations)")
    iterations: int | None = key(None, POSITIVE_INT, "SGD steps instead of epochs")
    sampling: str = key("shuffle", SAMPLINGS, "a permutation each epoch, or random batches")
    seed: int = key(0, compare(">=", 0), "seeds init, shuffling and the train-accuracy sample")
    early_stopping: bool = key(False, BOOL, "stop when val accuracy stalls for patience epochs")
    patience: int = key(3, POSITIVE_INT, "epochs without improvement before stopping (keeps best)")
    train_acc_samples: int = key(1000, POSITIVE_INT, "the fixed training sample of train accuracy")
    divergence_factor: float = key(100.0, compare(">", 1), "diverged: loss > factor * initial")


@settings
class OutputConfig:
    dir: str = key("runs", PATH, "runs go to <dir>/<timestamp>-<name> unless --out is given")
    name: str = key("notes", RUN_NAME, "the run's name; a config file that sets none: its file's")


@settings
class Config:
    data: DataConfig = section(DataConfig, "the CIFAR-10 archive and the splits")
    preprocess: PreprocessConfig = section(PreprocessConfig, "what is done to the pixels")
    features: FeaturesConfig = section(FeaturesConfig, "the inputs of the linear model")
    model: ModelConfig = section(ModelConfig, "the loss and its regularisation")
    optim: OptimConfig = section(OptimConfig, "the optimiser")
    schedule: ScheduleConfig = section(ScheduleConfig, "the learning-rate schedule")
    lbfgs: LbfgsConfig = section(LbfgsConfig, "full-batch L-BFGS (optim.name: lbfgs)")
    random_search: RandomSearchConfig = section(
        RandomSearchConfig, "the notes' Strategy 1, if optim.name is random_search"
    )
    random_local_search: RandomLocalSearchConfig = section(
        RandomLocalSearchConfig, "the notes' Strategy 2, if optim.name is random_local_search"
    )
    train: TrainConfig = section(TrainConfig, "the run's length, batches and seeds")
    output: OutputConfig = section(OutputConfig, "where the run is written")
