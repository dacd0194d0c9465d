"""Config loading and validation: tables of good and bad files, overrides, save/load."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from svmtrain import __version__
from svmtrain.config import (
    DTYPES,
    Config,
    OptimConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    keys,
    load_config,
    save_config,
    validate,
)
from svmtrain.config.loading import MAX_CONFIG_BYTES
from svmtrain.config.rules import KEYS
from svmtrain.config.shipped import shipped_names, shipped_text
from svmtrain.core.losses import LOSSES, owners, whose
from svmtrain.core.optimizers.sgd import SCHEDULES
from svmtrain.core.scaling import SCALINGS
from svmtrain.errors import ConfigError, SvmtrainError

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
SECTIONS = (
    "data, preprocess, features, model, optim, schedule, lbfgs, random_search, "
    "random_local_search, train, output"
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _defaults_with(changes: dict[str, object]) -> dict:
    """The default config as a dict, with ``{"section.key": value}`` changes applied."""
    expected = config_to_dict(Config())
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        expected[section][key] = value
    return expected


def _assert_same(got: dict, expected: dict) -> None:
    """Equal values of the same types (1 == 1.0 == True would hide int/float/bool mix-ups)."""
    assert got == expected
    for section, values in expected.items():
        for key, value in values.items():
            assert type(got[section][key]) is type(value), f"{section}.{key}"


# --- good files: YAML text -> the keys that differ from the defaults ----------------------------

GOOD_FILES = [
    ("empty section", "optim:\n", {}),
    ("partial section", "optim:\n  momentum: 0.9\n", {"optim.momentum": 0.9}),
    ("sci notation no dot", "optim:\n  learning_rate: 1e-7\n", {"optim.learning_rate": 1e-7}),
    ("sci notation capital", "model:\n  reg: 2.5E4\n", {"model.reg": 25000.0}),
    ("sci notation unsigned exp", "model:\n  reg: 1.5e3\n", {"model.reg": 1500.0}),
    ("sci notation plus sign", "model:\n  reg: +1e3\n", {"model.reg": 1000.0}),
    ("sci notation dot first", "model:\n  init_scale: .5e-3\n", {"model.init_scale": 0.0005}),
    ("yaml 1.1 float", "optim:\n  learning_rate: 1.0e-3\n", {"optim.learning_rate": 1e-3}),
    ("int for float", "model:\n  reg: 0\n  delta: 2\n", {"model.reg": 0.0, "model.delta": 2.0}),
    ("quoted string key value", "output:\n  name: '1e5'\n", {"output.name": "1e5"}),
    (
        "iterations instead of epochs",
        "train:\n  epochs: null\n  iterations: 1500\n  batch_size: 200\n",
        {"train.epochs": None, "train.iterations": 1500, "train.batch_size": 200},
    ),
    (
        "nesterov with momentum",
        "optim:\n  momentum: 0.9\n  nesterov: true\n",
        {"optim.momentum": 0.9, "optim.nesterov": True},
    ),
    (
        "cosine with min_lr below lr",
        "schedule:\n  name: cosine\n  min_lr: 1e-8\n",
        {"schedule.name": "cosine", "schedule.min_lr": 1e-8},
    ),
    ("min_lr ignored unless cosine", "schedule:\n  min_lr: 1.0\n", {"schedule.min_lr": 1.0}),
    (
        "every choice off default",
        "preprocess:\n  scaling: standardize\n  dtype: float64\nmodel:\n  loss: softmax\n"
        "schedule:\n  name: exponential\ntrain:\n  sampling: replacement\n",
        {
            "preprocess.scaling": "standardize",
            "preprocess.dtype": "float64",
            "model.loss": "softmax",
            "schedule.name": "exponential",
            "train.sampling": "replacement",
        },
    ),
    (
        "data source and digests",
        "data:\n  dir: /tmp/cache\n  url: http://127.0.0.1:8000/c.tar.gz\n"
        f"  sha256: {'A' * 64}\n  md5: d41d8cd98f00b204e9800998ecf8427e\n"
        "  num_train: 5000\n  num_test: 1\n",
        {
            "data.dir": "/tmp/cache",
            "data.url": "http://127.0.0.1:8000/c.tar.gz",
            "data.sha256": "A" * 64,
            "data.md5": "d41d8cd98f00b204e9800998ecf8427e",
            "data.num_train": 5000,
            "data.num_test": 1,
        },
    ),
    ("https url", "data:\n  url: https://example.org/x\n", {"data.url": "https://example.org/x"}),
    (
        "boundaries",
        "optim:\n  momentum: 0\nschedule:\n  gamma: 1\ntrain:\n  seed: 0\n"
        "  divergence_factor: 1.0001\ndata:\n  val_size: 1\n",
        {
            "optim.momentum": 0.0,
            "schedule.gamma": 1.0,
            "train.divergence_factor": 1.0001,
            "data.val_size": 1,
        },
    ),
]


@pytest.mark.parametrize(
    ("text", "changes"), [g[1:] for g in GOOD_FILES], ids=[g[0] for g in GOOD_FILES]
)
def test_good_file(tmp_path, text, changes):
    cfg = load_config(_write(tmp_path, text))
    # A file that does not name the run is named after itself (run.yaml).
    _assert_same(config_to_dict(cfg), _defaults_with({"output.name": "run", **changes}))


def test_no_path_gives_defaults():
    assert load_config() == Config()


# --- bad files: YAML text -> the exact message ({path} is the file) -------------------------------

NO_SETTINGS = (
    "{path} holds no settings (it is empty or only comments). Write the settings to change in "
    "it (svmtrain configs show default prints a full config to start from), or use -c notes for "
    "the built-in defaults."
)
BAD_FILES = [
    ("empty file", "", NO_SETTINGS),
    ("only comments", "# nothing to change\n", NO_SETTINGS),
    (
        "top level a list",
        "- optim\n- train\n",
        f"{{path}}: the top level must be a mapping of sections ({SECTIONS}) to their keys. "
        "Got a list instead.",
    ),
    (
        "top level a scalar",
        "learning_rate\n",
        f"{{path}}: the top level must be a mapping of sections ({SECTIONS}) to their keys. "
        "Got a string instead.",
    ),
    (
        "unknown key, close match",
        "optim:\n  learning_rat: 1e-3\n",
        "{path}: 'learning_rat' is not a key of optim; did you mean 'learning_rate'?",
    ),
    (
        "unknown key, no close match",
        "optim:\n  zzz: 1\n",
        "{path}: 'zzz' is not a key of optim; valid: name, learning_rate, momentum, nesterov.",
    ),
    (
        "unknown section, close match",
        "optimizer:\n  learning_rate: 1e-3\n",
        "{path}: 'optimizer' is not a section of the config; did you mean 'optim'?",
    ),
    (
        "unknown section, no close match",
        "zzz: {}\n",
        f"{{path}}: 'zzz' is not a section of the config; valid: {SECTIONS}.",
    ),
    (
        "section not a mapping",
        "optim: 0.1\n",
        "{path}: optim must be a mapping of its keys (name, learning_rate, momentum, nesterov) "
        "to values. Got a float instead.",
    ),
    (
        "bool for int",
        "train:\n  batch_size: true\n",
        "train.batch_size must be an int >= 1. Got true (a bool) instead.",
    ),
    (
        "float for int",
        "train:\n  batch_size: 2.5\n",
        "train.batch_size must be an int >= 1. Got 2.5 (a float) instead.",
    ),
    (
        "sci float for int",
        "train:\n  iterations: 1e4\n  epochs: null\n",
        "train.iterations must be null or an int >= 1. Got 10000.0 (a float) instead.",
    ),
    (
        "string for float",
        "optim:\n  learning_rate: '1e-3'\n",
        "optim.learning_rate must be a float > 0. Got '1e-3' (a string) instead.",
    ),
    (
        "list for float",
        "model:\n  reg: [1, 2]\n",
        "model.reg must be a float >= 0. Got [1, 2] (a list) instead.",
    ),
    (
        "null for non-null",
        "train:\n  batch_size: null\n",
        "train.batch_size must be an int >= 1. Got null instead.",
    ),
    (
        "string for bool",
        "preprocess:\n  subtract_mean: 'yes please'\n",
        "preprocess.subtract_mean must be true or false. Got 'yes please' (a string) instead.",
    ),
    (
        "yaml 1.1 'no' is a bool",
        "output:\n  name: no\n",
        "output.name must be a non-empty string without '/' or NUL, at most 239 bytes. "
        "Got false (a bool) instead.",
    ),
    (
        "batch_size 0",
        "train:\n  batch_size: 0\n",
        "train.batch_size must be an int >= 1. Got 0 instead.",
    ),
    (
        "learning_rate negative",
        "optim:\n  learning_rate: -1\n",
        "optim.learning_rate must be a float > 0. Got -1.0 instead.",
    ),
    (
        "learning_rate inf",
        "optim:\n  learning_rate: .inf\n",
        "optim.learning_rate must be a float > 0. Got inf instead.",
    ),
    (
        "learning_rate nan",
        "optim:\n  learning_rate: .nan\n",
        "optim.learning_rate must be a float > 0. Got nan instead.",
    ),
    (
        "momentum 1",
        "optim:\n  momentum: 1\n",
        "optim.momentum must be a float in [0, 1). Got 1.0 instead.",
    ),
    (
        "momentum negative",
        "optim:\n  momentum: -0.1\n",
        "optim.momentum must be a float in [0, 1). Got -0.1 instead.",
    ),
    (
        "gamma 0",
        "schedule:\n  gamma: 0\n",
        "schedule.gamma must be a float in (0, 1]. Got 0.0 instead.",
    ),
    (
        "gamma above 1",
        "schedule:\n  gamma: 1.5\n",
        "schedule.gamma must be a float in (0, 1]. Got 1.5 instead.",
    ),
    ("delta 0", "model:\n  delta: 0\n", "model.delta must be a float > 0. Got 0.0 instead."),
    (
        "reg negative",
        "model:\n  reg: -1e-3\n",
        "model.reg must be a float >= 0. Got -0.001 instead.",
    ),
    (
        "init_scale 0",
        "model:\n  init_scale: 0.0\n",
        "model.init_scale must be a float > 0. Got 0.0 instead.",
    ),
    (
        "min_lr negative",
        "schedule:\n  min_lr: -1e-9\n",
        "schedule.min_lr must be a float >= 0. Got -1e-09 instead.",
    ),
    (
        "step_epochs 0",
        "schedule:\n  step_epochs: 0\n",
        "schedule.step_epochs must be an int >= 1. Got 0 instead.",
    ),
    ("val_size 0", "data:\n  val_size: 0\n", "data.val_size must be an int >= 1. Got 0 instead."),
    (
        "num_train 0",
        "data:\n  num_train: 0\n",
        "data.num_train must be null or an int >= 1. Got 0 instead.",
    ),
    (
        "num_test negative",
        "data:\n  num_test: -5\n",
        "data.num_test must be null or an int >= 1. Got -5 instead.",
    ),
    ("seed negative", "train:\n  seed: -1\n", "train.seed must be an int >= 0. Got -1 instead."),
    ("patience 0", "train:\n  patience: 0\n", "train.patience must be an int >= 1. Got 0 instead."),
    (
        "train_acc_samples 0",
        "train:\n  train_acc_samples: 0\n",
        "train.train_acc_samples must be an int >= 1. Got 0 instead.",
    ),
    (
        "divergence_factor 1",
        "train:\n  divergence_factor: 1\n",
        "train.divergence_factor must be a float > 1. Got 1.0 instead.",
    ),
    (
        "epochs 0",
        "train:\n  epochs: 0\n",
        "train.epochs must be null or an int >= 1. Got 0 instead.",
    ),
    (
        "scaling typo",
        "preprocess:\n  scaling: unt\n",
        f"preprocess.scaling must be one of {', '.join(SCALINGS)}. Got 'unt' instead; "
        "did you mean 'unit'?",
    ),
    (
        "dtype",
        "preprocess:\n  dtype: float16\n",
        f"preprocess.dtype must be one of {', '.join(DTYPES)}. Got 'float16' instead; "
        "did you mean 'float64'?",
    ),
    (
        "loss, no close choice",
        "model:\n  loss: hinge\n",
        f"model.loss must be one of {', '.join(LOSSES)}. Got 'hinge' instead.",
    ),
    (
        "schedule name",
        "schedule:\n  name: cos\n",
        f"schedule.name must be one of {', '.join(SCHEDULES)}. Got 'cos' instead; "
        "did you mean 'cosine'?",
    ),
    (
        "sampling",
        "train:\n  sampling: shufle\n",
        "train.sampling must be one of shuffle, replacement. Got 'shufle' instead; "
        "did you mean 'shuffle'?",
    ),
    (
        "epochs and iterations both set",
        "train:\n  iterations: 1500\n",
        "train.epochs (10) and train.iterations (1500) are both set; set exactly one of them and "
        "the other to null, e.g. --set train.epochs=null.",
    ),
    (
        "neither epochs nor iterations",
        "train:\n  epochs: null\n",
        "Neither train.epochs nor train.iterations is set; set exactly one of them, "
        "e.g. train.epochs: 10.",
    ),
    (
        "nesterov without momentum",
        "optim:\n  nesterov: true\n",
        "optim.nesterov is true but optim.momentum is 0.0; Nesterov momentum needs "
        "optim.momentum > 0 (e.g. 0.9), or set optim.nesterov to false.",
    ),
    (
        "cosine min_lr not below lr",
        "schedule:\n  name: cosine\n  min_lr: 1e-7\n",
        "schedule.min_lr (1e-07) must be below optim.learning_rate (1e-07) for the cosine "
        "schedule to decay; lower schedule.min_lr.",
    ),
    (
        "url not http",
        "data:\n  url: ftp://example.org/c.tar.gz\n",
        "data.url must be null or an http:// or https:// URL. Got 'ftp://example.org/c.tar.gz' "
        "instead.",
    ),
    (
        "url without host",
        "data:\n  url: http://\n",
        "data.url must be null or an http:// or https:// URL. Got 'http://' instead.",
    ),
    (
        "sha256 too short",
        "data:\n  sha256: abc123\n",
        "data.sha256 must be null or 64 hex digits. Got 'abc123' instead.",
    ),
    (
        "sha256 not hex",
        f"data:\n  sha256: {'g' * 64}\n",
        f"data.sha256 must be null or 64 hex digits. Got '{'g' * 56}... instead.",
    ),
    (
        "md5 wrong length",
        f"data:\n  md5: {'a' * 31}\n",
        f"data.md5 must be null or 32 hex digits. Got '{'a' * 31}' instead.",
    ),
    (
        "name with slash",
        "output:\n  name: a/b\n",
        "output.name must be a non-empty string without '/' or NUL, at most 239 bytes. "
        "Got 'a/b' instead.",
    ),
    (
        "name empty",
        "output:\n  name: ''\n",
        "output.name must be a non-empty string without '/' or NUL, at most 239 bytes. "
        "Got '' instead.",
    ),
    (
        "output dir empty",
        "output:\n  dir: ''\n",
        "output.dir must be a non-empty string without NUL, at most 255 bytes between '/'s. "
        "Got '' instead.",
    ),
    (
        "data dir empty",
        "data:\n  dir: ''\n",
        "data.dir must be null or a non-empty string without NUL, at most 255 bytes between '/'s. "
        "Got '' instead.",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES]
)
def test_bad_file(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == message.format(path=path)


BAD_YAML = [
    ("bad indentation", "optim:\n  learning_rate: 1\n momentum: 0.9\n", 3, 2),
    ("unclosed flow mapping", "train: {batch_size: 1\n", 2, 1),
    ("tab indentation", "optim:\n\tlearning_rate: 1\n", 2, 1),
    ("mapping in a plain value", "optim: a: b\n", 1, 9),
    ("duplicate key", "optim:\n  learning_rate: 1\n  learning_rate: 2\n", 3, 3),
]


@pytest.mark.parametrize(
    ("text", "line", "column"), [b[1:] for b in BAD_YAML], ids=[b[0] for b in BAD_YAML]
)
def test_bad_yaml_names_file_line_and_column(tmp_path, text, line, column):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: invalid YAML at line {line}, column {column}: ")


ANCHORS_AND_ALIASES = [
    ("an anchor alone", "optim: &o {momentum: 0.9}\n", "&o", 1, 8),
    ("an alias", "model:\n  reg: &r 0.5\n  delta: *r\n", "&r", 2, 8),
    ("a merge key", "optim: {momentum: 0.9}\nschedule:\n  <<: *o\n", "*o", 3, 7),
    ("an alias bomb", (Path(__file__).parent / "alias_bomb.yaml").read_text(), "&l0", 1, 20),
]


@pytest.mark.parametrize(
    ("text", "token", "line", "column"),
    [a[1:] for a in ANCHORS_AND_ALIASES],
    ids=[a[0] for a in ANCHORS_AND_ALIASES],
)
def test_anchors_and_aliases_are_refused(tmp_path, text, token, line, column):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: YAML anchors and aliases are not allowed in a config; found '{token}' at "
        f"line {line}, column {column}. Write each value out in full."
    )


def test_a_merge_key_without_an_alias_is_read(tmp_path):
    """``<<:`` with an inline mapping needs no alias, so the duplicate-key check must let the
    merge key through to PyYAML rather than construct it as a plain key."""
    path = _write(tmp_path, "optim:\n  <<: {momentum: 0.5}\n  learning_rate: 1.0e-3\n")
    cfg = load_config(path)
    assert (cfg.optim.momentum, cfg.optim.learning_rate) == (0.5, 1e-3)


def test_duplicate_key_says_which(tmp_path):
    path = _write(tmp_path, "optim:\n  learning_rate: 1\n  learning_rate: 2\n")
    with pytest.raises(ConfigError, match="found the key 'learning_rate' twice"):
        load_config(path)


SHIPPED_NAMES = "cs231n, default, hog, kmeans, notes, quick, softmax"


@pytest.mark.parametrize(
    ("file", "hint"), [("absent.yaml", ""), ("quick.yml", " Did you mean 'quick'?")]
)
def test_missing_file_names_the_path_and_the_shipped_configs(tmp_path, file, hint):
    path = tmp_path / file
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"Config file {path} does not exist; pass the path of a YAML file or the name of a "
        f"shipped config: {SHIPPED_NAMES}.{hint}"
    )


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value).startswith(
        f"Config file {tmp_path} is not a regular file (it is a directory); pass the path of a "
        "YAML file or the name of a shipped config"
    )


def test_a_config_of_at_most_the_bound_is_read_and_one_byte_more_refused(tmp_path):
    path = tmp_path / "c.yaml"
    text = "train:\n  epochs: 2\n"
    path.write_text(text + "#" * (MAX_CONFIG_BYTES - len(text) - 1) + "\n")
    assert load_config(path).train.epochs == 2
    path.write_text(text + "#" * (MAX_CONFIG_BYTES - len(text)) + "\n")
    with pytest.raises(ConfigError, match=r"is 1\.0 MB; a config is a few KB"):
        load_config(path)


@pytest.mark.parametrize("depth", [1, 30])
def test_values_nested_within_the_bound_are_read(depth):
    nested = "[" * depth + "1" + "]" * depth
    with pytest.raises(ConfigError, match=r"^train\.seed must be an int >= 0\. Got \["):
        load_config(None, [f"train.seed={nested}"])


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"output:\n  name: caf\xe9\n")
    with pytest.raises(ConfigError, match=f"^Config file {path} is not UTF-8 text .byte 20 "):
        load_config(path)


# --- overrides ------------------------------------------------------------------------------------

GOOD_OVERRIDES = [
    ("float sci", ["optim.learning_rate=1e-3"], {"optim.learning_rate": 1e-3}),
    ("int", ["train.epochs=5"], {"train.epochs": 5}),
    ("int for float", ["model.reg=0"], {"model.reg": 0.0}),
    ("null", ["data.num_train=null"], {"data.num_train": None}),
    ("string with spaces", ["output.name=my run"], {"output.name": "my run"}),
    ("quoted number string", ["output.name='1e5'"], {"output.name": "1e5"}),
    ("value containing =", ["output.name=a=b"], {"output.name": "a=b"}),
    ("spaces around", [" train.epochs = 5"], {"train.epochs": 5}),
    (
        "swap epochs for iterations",
        ["train.epochs=null", "train.iterations=1500"],
        {"train.epochs": None, "train.iterations": 1500},
    ),
    ("last one wins", ["train.epochs=2", "train.epochs=4"], {"train.epochs": 4}),
    (
        "bool",
        ["optim.momentum=0.9", "optim.nesterov=true"],
        {"optim.momentum": 0.9, "optim.nesterov": True},
    ),
]


@pytest.mark.parametrize(
    ("overrides", "changes"), [g[1:] for g in GOOD_OVERRIDES], ids=[g[0] for g in GOOD_OVERRIDES]
)
def test_good_override(overrides, changes):
    _assert_same(config_to_dict(load_config(None, overrides)), _defaults_with(changes))


def test_override_beats_file(tmp_path):
    path = _write(tmp_path, "data:\n  num_train: 5000\ntrain:\n  epochs: 3\n")
    cfg = load_config(path, ["data.num_train=null", "train.epochs=7"])
    _assert_same(config_to_dict(cfg), _defaults_with({"train.epochs": 7, "output.name": "run"}))


def test_override_into_empty_section(tmp_path):
    path = _write(tmp_path, "optim:\n")
    assert load_config(path, ["optim.momentum=0.5"]).optim.momentum == 0.5


BAD_OVERRIDES = [
    (
        "missing =",
        ["train.epochs5"],
        "--set 'train.epochs5': expected section.key=value, e.g. --set optim.learning_rate=1e-3.",
    ),
    (
        "no section",
        ["epochs=5"],
        "--set 'epochs=5': the key must be section.key, e.g. train.epochs. Got 'epochs'.",
    ),
    (
        "too deep",
        ["train.epochs.x=5"],
        "--set 'train.epochs.x=5': the key must be section.key, e.g. train.epochs. "
        "Got 'train.epochs.x'.",
    ),
    (
        "unknown key",
        ["optim.learning_rat=1e-3"],
        "--set 'optim.learning_rat=1e-3': 'learning_rat' is not a key of optim; "
        "did you mean 'learning_rate'?",
    ),
    (
        "unknown section",
        ["optimizer.learning_rate=1e-3"],
        "--set 'optimizer.learning_rate=1e-3': 'optimizer' is not a section of the config; "
        "did you mean 'optim'?",
    ),
    (
        "bad yaml value",
        ["train.epochs=[1,"],
        "--set 'train.epochs=[1,': invalid YAML at line 1, column 4: expected the node content, "
        "but found '<stream end>'.",
    ),
    (
        "an alias",
        ["train.sampling=[&a shuffle, *a]"],
        "--set 'train.sampling=[&a shuffle, *a]': YAML anchors and aliases are not allowed in a "
        "config; found '&a' at line 1, column 2. Write each value out in full.",
    ),
    ("bad value", ["train.epochs=0"], "train.epochs must be null or an int >= 1. Got 0 instead."),
    (
        "empty value is null",
        ["train.batch_size="],
        "train.batch_size must be an int >= 1. Got null instead.",
    ),
    (
        "iterations without clearing epochs",
        ["train.iterations=100"],
        "train.epochs (10) and train.iterations (100) are both set; set exactly one of them and "
        "the other to null, e.g. --set train.epochs=null.",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "message"), [b[1:] for b in BAD_OVERRIDES], ids=[b[0] for b in BAD_OVERRIDES]
)
def test_bad_override(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert str(err.value) == message


# --- dicts and programmatic configs -------------------------------------------------------------


def test_config_from_dict_checks_like_a_file():
    assert config_from_dict({"optim": {"learning_rate": 1}}).optim.learning_rate == 1.0
    with pytest.raises(ConfigError, match=r"^'epoch' is not a key of train; did you mean 'epochs'"):
        config_from_dict({"train": {"epoch": 1}})
    with pytest.raises(ConfigError, match=r"^the top level must be a mapping .* Got a list"):
        config_from_dict([("train", {})])


def test_validate_makes_plain_types_without_touching_its_input():
    cfg = Config(
        optim=OptimConfig(learning_rate=np.float32(0.5), momentum=0),
        train=TrainConfig(batch_size=np.int64(64)),
    )
    checked = validate(cfg)
    assert (type(checked.optim.learning_rate), checked.optim.learning_rate) == (float, 0.5)
    assert (type(checked.optim.momentum), checked.optim.momentum) == (float, 0.0)
    assert (type(checked.train.batch_size), checked.train.batch_size) == (int, 64)
    assert cfg.optim.learning_rate == np.float32(0.5) and type(cfg.train.batch_size) is np.int64


def test_validate_rejects_programmatic_bad_value():
    with pytest.raises(ConfigError, match=r"^train\.batch_size must be an int >= 1\. Got true"):
        validate(Config(train=TrainConfig(batch_size=True)))


def _declared(cls, prefix=""):
    """Every key declared under ``cls`` as "section.key", read from the dataclasses alone."""
    found = {}
    for f in dataclasses.fields(cls):
        kind = keys.keys_of(cls)[f.name][0]
        found |= (
            _declared(kind, f"{prefix}{f.name}.")
            if keys.is_settings(kind)
            else {f"{prefix}{f.name}": f}
        )
    return found


def test_every_key_has_a_rule_and_a_doc_and_the_rules_name_only_real_keys():
    declared = _declared(Config)
    assert set(KEYS) == set(declared)  # no key without a rule, no rule without a key
    assert "features.kmeans.num_centroids" in KEYS and "train.seed" in KEYS
    for path, f in declared.items():
        assert isinstance(f.metadata["rule"], keys.Rule), path
        assert f.metadata["doc"] and "\n" not in f.metadata["doc"], path
        assert KEYS[path][2] is f.metadata["rule"]


def test_a_key_declared_without_a_rule_cannot_be_defined():
    with pytest.raises(TypeError, match=r"Broken.plain is not declared with key\(\)"):

        @keys.settings
        class Broken:
            ok: int = keys.key(1, keys.Rule(), "fine")
            plain: int = 2


def test_defaults_are_valid():
    assert validate(Config()) == Config()


# --- save / load ----------------------------------------------------------------------------------

ROUND_TRIPS = [
    ("defaults", {}),
    (
        "every kind of value",
        {
            "optim.learning_rate": 1e-7,
            "model.reg": 2.5e4,
            "data.num_train": None,
            "data.num_test": 123,
            "train.epochs": None,
            "train.iterations": 1500,
            "optim.momentum": 0.9,
            "optim.nesterov": True,
            "preprocess.subtract_mean": False,
        },
    ),
    (
        "strings that look like other things",
        {"output.name": "1e5", "output.dir": "null", "data.dir": "true", "data.md5": "1" * 32},
    ),
    ("tiny and huge floats", {"model.init_scale": 1e-300, "train.divergence_factor": 1e300}),
]


@pytest.mark.parametrize("changes", [r[1] for r in ROUND_TRIPS], ids=[r[0] for r in ROUND_TRIPS])
def test_save_then_load_is_equal(tmp_path, changes):
    cfg = config_from_dict(_defaults_with(changes))
    path = tmp_path / "config.yaml"
    save_config(cfg, path)
    again = load_config(path)
    assert again == cfg
    _assert_same(config_to_dict(again), config_to_dict(cfg))
    assert path.read_text().startswith(f"# Resolved svmtrain {__version__} config")


def test_config_to_dict_is_plain():
    d = config_to_dict(Config())
    assert json.loads(json.dumps(d)) == d
    assert yaml.safe_load(yaml.safe_dump(d)) == d


def test_save_failure_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("old\n")

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(SvmtrainError) as err:
        save_config(Config(), path)
    assert str(err.value).startswith(f"Cannot write {path}: Input/output error.")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_save_refuses_an_invalid_config_before_writing(tmp_path):
    path = tmp_path / "config.yaml"
    with pytest.raises(ConfigError, match=r"^optim\.learning_rate must be a float > 0"):
        save_config(Config(optim=OptimConfig(learning_rate=0.0)), path)
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_directory(tmp_path):
    path = tmp_path / "missing" / "config.yaml"
    with pytest.raises(SvmtrainError, match=f"^Cannot write {re.escape(str(path))}: "):
        save_config(Config(), path)


# --- the shipped configs --------------------------------------------------------------------------

SHIPPED = sorted(CONFIGS_DIR.glob("*.yaml"))


def test_the_six_configs_are_shipped_and_known_by_name():
    assert [p.stem for p in SHIPPED] == ["cs231n", "default", "hog", "kmeans", "quick", "softmax"]
    assert shipped_names() == sorted([*(p.stem for p in SHIPPED), "notes"])


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_config_by_name_is_the_file(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file of that name here
    assert shipped_text(path.stem) == path.read_text(encoding="utf-8")
    assert load_config(path.stem) == load_config(path)
    assert load_config(path.stem, ["train.seed=7"]) == load_config(path, ["train.seed=7"])


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_config_names_its_runs_after_itself(path):
    assert "output" not in yaml.safe_load(path.read_text())  # its file's name is the default
    assert load_config(path.stem).output.name == path.stem
    assert load_config(path).output.name == path.stem


def test_a_file_that_exists_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("default").write_text("optim:\n  learning_rate: 0.5\n")
    cfg = load_config("default")
    assert (cfg.optim.learning_rate, cfg.output.name) == (0.5, "default")
    assert cfg.model.reg == Config().model.reg  # the file's, not the shipped default's 0.3


def test_unknown_shipped_name():
    with pytest.raises(ConfigError) as err:
        shipped_text("nope")
    assert str(err.value) == (
        f"'nope' is not a shipped config; the shipped configs are {SHIPPED_NAMES} "
        "(svmtrain configs list)."
    )


def test_the_built_in_defaults_have_a_name_of_their_own():
    assert load_config().output.name == "notes"
    assert Config().output.name == "notes"
    assert load_config("default").output.name == "default"
    assert load_config().optim.learning_rate != load_config("default").optim.learning_rate


NAMES = [
    ("file without output", "mine.yaml", "train:\n  epochs: 2\n", [], "mine"),
    ("empty output section", "exp 1.yaml", "output:\n", [], "exp 1"),
    ("output without name", "a.b.yaml", "output:\n  dir: elsewhere\n", [], "a.b"),
    ("file names the run", "mine.yaml", "output:\n  name: other\n", [], "other"),
    ("--set names the run", "mine.yaml", "train:\n  epochs: 2\n", ["output.name=cli"], "cli"),
]


@pytest.mark.parametrize(
    ("file", "text", "overrides", "name"), [n[1:] for n in NAMES], ids=[n[0] for n in NAMES]
)
def test_a_config_file_names_its_runs(tmp_path, file, text, overrides, name):
    path = tmp_path / file
    path.write_text(text)
    assert load_config(path, overrides).output.name == name


# The shipped configs as the code resolved them when every file restated every key (commit
# 1cdcf73, config_to_dict of load_config(NAME)); "notes" then kept the extractors' settings empty.
# features.flip (added since, default false) is in each.
RESOLVED_BEFORE = yaml.safe_load(
    (Path(__file__).parent / "data" / "resolved_configs.yaml").read_text()
)


@pytest.mark.parametrize("name", shipped_names())
def test_shipped_configs_resolve_as_before_they_listed_only_overrides(name):
    assert set(RESOLVED_BEFORE) == set(shipped_names())
    before = RESOLVED_BEFORE[name]
    assert load_config(name) == config_from_dict(before)
    if name != "notes":  # every key was in the file: the dicts themselves agree on those keys
        # (keys added since, optim.name and the lbfgs section, are at their defaults: above)
        after = config_to_dict(load_config(name))
        assert {s: {k: after[s][k] for k in keys} for s, keys in before.items()} == before


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_config_lists_only_what_it_changes(path):
    raw = yaml.safe_load(path.read_text())
    defaults = config_to_dict(Config())

    def changed(values, default):
        return {
            k: changed(v, default[k]) if isinstance(v, dict) else v
            for k, v in values.items()
            if v != default[k] or isinstance(v, dict)
        }

    assert raw == {s: changed(v, defaults[s]) for s, v in raw.items()}  # no default restated
    assert all(raw.values())  # no empty section
    header = path.read_text().split("\n\n")[0].splitlines()
    assert len(header) >= 3 and all(line.startswith("#") for line in header)
    assert f"svmtrain configs show {path.stem}" in "\n".join(header)
    assert not any(
        "/" in word and ("docs" in word or ".py" in word) for word in "\n".join(header).split()
    )


def test_shipped_configs_say_what_they_are():
    assert load_config(CONFIGS_DIR / "default.yaml").model.loss == "svm"
    assert load_config(CONFIGS_DIR / "softmax.yaml").model.loss == "softmax"
    quick = load_config(CONFIGS_DIR / "quick.yaml")
    assert (quick.data.num_train, quick.train.epochs) == (5000, 3)


# ---------------------------------------------------------------------------------------------
# A loss's own hyperparameters belong to it


def test_a_hyperparameter_of_another_loss_is_refused_when_set():
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["model.loss=softmax", "model.delta=2"])
    message = str(caught.value)
    assert f"model.delta is 2.0, but the softmax loss has no delta ({whose('delta')})" in message
    remedy = f"remove model.delta or set model.loss to {' or '.join(owners('delta'))}."
    assert remedy in " ".join(message.split())


def test_a_hyperparameter_of_another_loss_at_its_default_is_accepted():
    # The shipped softmax config keeps delta: 1.0 (the default), as older configs may.
    assert load_config(None, ["model.loss=softmax", "model.delta=1.0"]).model.loss == "softmax"
    assert load_config(CONFIGS_DIR / "softmax.yaml").model.delta == 1.0
    assert load_config(None, ["model.loss=svm", "model.delta=2"]).model.delta == 2.0
