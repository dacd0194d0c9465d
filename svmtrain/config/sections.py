"""The run configuration's keys, types and defaults: one typed dataclass per section.

These dataclasses are the single source of the keys, their types (read from the annotations)
and their defaults. The defaults are the built-in "notes" config: the CS231n notes' SVM recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    dir: str | None = None  # cache; None: $SVMTRAIN_DATA_DIR, else $XDG_CACHE_HOME/svmtrain
    url: str | None = None  # None: $SVMTRAIN_DATA_URL, else the official binary archive
    sha256: str | None = None  # None: $SVMTRAIN_DATA_SHA256, else the official digest
    md5: str | None = None  # None: $SVMTRAIN_DATA_MD5
    val_size: int = 1000  # validation images carved from the end of the training set
    num_train: int | None = None  # None: every remaining training image
    num_test: int | None = None  # None: the whole test batch


@dataclass
class PreprocessConfig:
    subtract_mean: bool = True  # mean image of the training split, subtracted from every split
    scaling: str = "none"  # none | unit (/255) | standardize (per-pixel std of the training split)
    dtype: str = "float32"  # float32 | float64


@dataclass
class FeaturesConfig:
    name: str = "pixels"  # pixels | kmeans | hog_color (svmtrain/features/)
    # Each extractor's settings: a key left out takes the extractor's default. The extractor
    # checks them (svmtrain.features.check_settings), before any work that uses the config.
    kmeans: dict = field(default_factory=dict)
    hog_color: dict = field(default_factory=dict)
    # Also train on every training image mirrored left to right (never validation or test).
    flip: bool = False


@dataclass
class ModelConfig:
    loss: str = "svm"  # svm | softmax
    delta: float = 1.0  # SVM margin
    reg: float = 2.5e4  # L2 strength: loss += reg * sum(W * W)
    reg_bias: bool = True  # whether the bias column is regularised too
    init_scale: float = 1e-4  # W = init_scale * standard normal


@dataclass
class OptimConfig:
    learning_rate: float = 1e-7
    momentum: float = 0.0  # 0 is plain SGD
    nesterov: bool = False


@dataclass
class ScheduleConfig:
    name: str = "constant"  # constant | step | exponential | cosine
    step_epochs: int = 10  # step: multiply by gamma every step_epochs epochs
    gamma: float = 0.5  # step and exponential: the decay factor
    min_lr: float = 0.0  # cosine: the floor the learning rate decays towards


@dataclass
class TrainConfig:
    batch_size: int = 256
    epochs: int | None = 10  # exactly one of epochs and iterations is set
    iterations: int | None = None
    sampling: str = "shuffle"  # shuffle (each epoch a permutation) | replacement
    seed: int = 0
    early_stopping: bool = False  # stop when val accuracy has not improved for `patience` epochs
    patience: int = 3
    train_acc_samples: int = 1000  # size of the fixed training sample for train accuracy
    divergence_factor: float = 100.0  # diverged when loss > factor * initial loss (or not finite)


@dataclass
class OutputConfig:
    dir: str = "runs"  # runs go to <dir>/<timestamp>-<name> unless --out is given
    name: str = "notes"  # a config file that sets none takes its file's name


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
