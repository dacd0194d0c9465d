"""The run configuration: one typed dataclass per section, with the defaults.

A YAML file overrides any subset of these; unknown keys are rejected.
:func:`load_config` reads a file and ``--set section.key=value`` overrides,
:func:`validate` checks every value against the one table of rules, ``_RULES``,
and :func:`save_config` writes the resolved config so that a run can be replayed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import operator
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args, get_type_hints

import yaml

from svmtrain import __version__
from svmtrain.core.losses import HYPERPARAMETERS, LOSSES
from svmtrain.core.optim import SCHEDULES
from svmtrain.data.preprocess import SCALINGS
from svmtrain.data.source import is_http_url
from svmtrain.errors import ConfigError
from svmtrain.io.fileio import atomic_write


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
    name: str = "default"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# ---------------------------------------------------------------------------------------------
# The rules: one entry per key. The type and whether null is allowed come from the annotations
# above; a rule adds what the value must satisfy and the words that say so in an error.


@dataclass(frozen=True)
class _Rule:
    """What one key accepts beyond its annotated type.

    ``ok`` is called only with a value of the right type. ``wording`` completes
    "<key> must be ..."; ``{type}`` in it becomes "an int", "a float", "a string", ...
    """

    ok: Callable[[Any], bool] = lambda value: True
    wording: str = "{type}"
    choices: tuple[str, ...] = ()


_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _compare(op: str, bound: float) -> _Rule:
    """Values ``op bound``, e.g. ``_compare(">=", 1)``."""
    return _Rule(lambda v: _COMPARE[op](v, bound), f"{{type}} {op} {bound}")


def _between(low: float, high: float, brackets: str) -> _Rule:
    """Values in an interval; ``brackets`` "[)" includes ``low`` and excludes ``high``."""
    low_op, high_op = (">=" if brackets[0] == "[" else ">"), ("<=" if brackets[1] == "]" else "<")
    return _Rule(
        lambda v: _COMPARE[low_op](v, low) and _COMPARE[high_op](v, high),
        f"{{type}} in {brackets[0]}{low}, {high}{brackets[1]}",
    )


def _one_of(*choices: str) -> _Rule:
    return _Rule(lambda v: v in choices, f"one of {', '.join(choices)}", choices)


def _hex_digest(digits: int) -> _Rule:
    return _Rule(
        lambda v: re.fullmatch(f"[0-9a-fA-F]{{{digits}}}", v) is not None, f"{digits} hex digits"
    )


_POSITIVE_INT = _compare(">=", 1)
_NON_EMPTY = _Rule(lambda v: v != "", "a non-empty string")
_BOOL = _Rule(wording="true or false")

_RULES: dict[str, _Rule] = {
    "data.dir": _NON_EMPTY,
    "data.url": _Rule(is_http_url, "an http:// or https:// URL"),
    "data.sha256": _hex_digest(64),
    "data.md5": _hex_digest(32),
    "data.val_size": _POSITIVE_INT,
    "data.num_train": _POSITIVE_INT,
    "data.num_test": _POSITIVE_INT,
    "preprocess.subtract_mean": _BOOL,
    "preprocess.scaling": _one_of(*SCALINGS),
    "preprocess.dtype": _one_of("float32", "float64"),
    "model.loss": _one_of(*LOSSES),
    "model.delta": _compare(">", 0),
    "model.reg": _compare(">=", 0),
    "model.reg_bias": _BOOL,
    "model.init_scale": _compare(">", 0),
    "optim.learning_rate": _compare(">", 0),
    "optim.momentum": _between(0, 1, "[)"),
    "optim.nesterov": _BOOL,
    "schedule.name": _one_of(*SCHEDULES),
    "schedule.step_epochs": _POSITIVE_INT,
    "schedule.gamma": _between(0, 1, "(]"),
    "schedule.min_lr": _compare(">=", 0),
    "train.batch_size": _POSITIVE_INT,
    "train.epochs": _POSITIVE_INT,
    "train.iterations": _POSITIVE_INT,
    "train.sampling": _one_of("shuffle", "replacement"),
    "train.seed": _compare(">=", 0),
    "train.early_stopping": _BOOL,
    "train.patience": _POSITIVE_INT,
    "train.train_acc_samples": _POSITIVE_INT,
    "train.divergence_factor": _compare(">", 1),
    "output.dir": _NON_EMPTY,
    "output.name": _Rule(lambda v: v != "" and "/" not in v, "a non-empty string without '/'"),
}


def _foreign_hyperparameter(model: ModelConfig) -> str | None:
    """A hyperparameter of another loss that ``model`` sets away from its default, if any (at
    its default it is tolerated: configs written before losses had their own options keep it)."""
    own = LOSSES[model.loss].hyperparameters
    defaults = ModelConfig()
    foreign = sorted(HYPERPARAMETERS - set(own))
    return next((h for h in foreign if getattr(model, h) != getattr(defaults, h)), None)


def _foreign_hyperparameter_message(model: ModelConfig) -> str:
    name = _foreign_hyperparameter(model)
    owners = [loss for loss, record in LOSSES.items() if name in record.hyperparameters]
    return (
        f"model.{name} is {getattr(model, name)}, but the {model.loss} loss has no {name} "
        f"(the {' and '.join(owners)} loss's); remove model.{name} or set model.loss to "
        f"{' or '.join(owners)}."
    )


# Rules that tie keys together: (is it broken?, the message saying how to fix it).
_CROSS_RULES: tuple[tuple[Callable[[Config], bool], Callable[[Config], str]], ...] = (
    (
        lambda c: _foreign_hyperparameter(c.model) is not None,
        lambda c: _foreign_hyperparameter_message(c.model),
    ),
    (
        lambda c: c.train.epochs is None and c.train.iterations is None,
        lambda c: (
            "Neither train.epochs nor train.iterations is set; set exactly one of them, "
            "e.g. train.epochs: 10."
        ),
    ),
    (
        lambda c: c.train.epochs is not None and c.train.iterations is not None,
        lambda c: (
            f"train.epochs ({c.train.epochs}) and train.iterations "
            f"({c.train.iterations}) are both set; set exactly one of them and the other to null, "
            "e.g. --set train.epochs=null."
        ),
    ),
    (
        lambda c: c.optim.nesterov and c.optim.momentum == 0,
        lambda c: (
            "optim.nesterov is true but optim.momentum is 0.0; Nesterov momentum needs "
            "optim.momentum > 0 (e.g. 0.9), or set optim.nesterov to false."
        ),
    ),
    (
        lambda c: c.schedule.name == "cosine" and c.schedule.min_lr >= c.optim.learning_rate,
        lambda c: (
            f"schedule.min_lr ({c.schedule.min_lr}) must be below optim.learning_rate "
            f"({c.optim.learning_rate}) for the cosine schedule to decay; lower schedule.min_lr."
        ),
    ),
)


def _type_of(hint: Any) -> tuple[type, bool]:
    """``int | None`` -> (int, True); ``float`` -> (float, False)."""
    args = get_args(hint) or (hint,)
    return next(t for t in args if t is not type(None)), type(None) in args


_SECTIONS: dict[str, type] = get_type_hints(Config)
# "section.key" -> (its type, whether null is allowed), read from the annotations.
_TYPES: dict[str, tuple[type, bool]] = {
    f"{section}.{name}": _type_of(hint)
    for section, cls in _SECTIONS.items()
    for name, hint in get_type_hints(cls).items()
}
_TYPE_WORDS = {int: "an int", float: "a float", bool: "a bool", str: "a string"}


def key_type(key: str) -> type:
    """The type (int, float, bool or str) of config key "section.key", null aside.

    Raises KeyError if there is no such key.
    """
    return _TYPES[key][0]


# ---------------------------------------------------------------------------------------------
# YAML


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load`` with two fixes: floats like ``1e-3`` and duplicate keys.

    PyYAML follows YAML 1.1, where ``1e-3`` and ``1.5e3`` are strings (a float needs a dot and a
    signed exponent); a learning rate is written that way, so it must be a float as in YAML 1.2.
    A key given twice would silently lose its first value, so it is an error instead.
    """

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"found the key {key!r} twice",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


class _Dumper(yaml.SafeDumper):
    """Quotes the strings that :class:`_Loader` would read as floats (a name "1e5")."""


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}.") from None


# ---------------------------------------------------------------------------------------------
# Public API


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read the YAML file at ``path`` (None: the defaults), apply ``--set`` overrides, validate.

    ``overrides`` are "section.key=value" strings; the value is read as YAML, so
    ``data.num_train=null`` gives None and ``optim.learning_rate=1e-3`` a float.
    Raises ConfigError naming the file, key or override at fault.
    """
    raw: dict = {}
    if path is not None:
        raw = _read_file(path)
    for item in overrides:
        section, key, value = _parse_override(item)
        if raw.get(section) is None:
            raw[section] = {}
        raw[section][key] = value
    return config_from_dict(raw)


def config_from_dict(d: Mapping) -> Config:
    """Build and validate a Config from ``{section: {key: value}}``; missing keys keep defaults."""
    _check_keys(d, "")
    sections = {name: cls(**(d.get(name) or {})) for name, cls in _SECTIONS.items()}
    return validate(Config(**sections))


def config_to_dict(cfg: Config) -> dict:
    """``{section: {key: value}}`` of plain Python values, ready for YAML or JSON."""
    return dataclasses.asdict(cfg)


def config_to_yaml(cfg: Config) -> str:
    """``cfg`` as YAML text that :func:`config_from_yaml` reads back as an equal Config."""
    return yaml.dump(config_to_dict(validate(cfg)), Dumper=_Dumper, sort_keys=False)


def config_from_yaml(text: str, where: str) -> Config:
    """The Config in YAML ``text`` (e.g. stored in a weights file); ``where`` names it in errors."""
    raw = _parse_yaml(text, where) or {}
    _check_keys(raw, f"{where}: ")
    return config_from_dict(raw)


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    """Write ``cfg`` as commented YAML, atomically; :func:`load_config` reads back an equal one."""
    text = config_to_yaml(cfg)
    header = (
        f"# Resolved svmtrain {__version__} config: every key, with defaults filled in.\n"
        "# Pass it to --config to run again with exactly these settings.\n"
    )
    with atomic_write(path, "w") as f:
        f.write(header + text)


def validate(cfg: Config) -> Config:
    """Check every value of ``cfg`` and the rules between keys; raise ConfigError on the first.

    Returns a copy with ints given for floats made floats (and numpy scalars made plain).
    """
    sections = {}
    for section in _SECTIONS:
        values = {
            key: _check_value(f"{section}.{key}", value)
            for key, value in dataclasses.asdict(getattr(cfg, section)).items()
        }
        sections[section] = type(getattr(cfg, section))(**values)
    checked = Config(**sections)
    for broken, message in _CROSS_RULES:
        if broken(checked):
            raise ConfigError(message(checked))
    return checked


# ---------------------------------------------------------------------------------------------
# Helpers


def _read_file(path: str | os.PathLike) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {os.fspath(path)} does not exist; pass the path of a YAML file "
            "(configs/default.yaml is one)."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConfigError(f"Cannot read config file {os.fspath(path)}: {reason}.") from None
    raw = _parse_yaml(text, os.fspath(path))
    if raw is None:
        return {}  # an empty file: all defaults
    _check_keys(raw, f"{os.fspath(path)}: ")
    return raw


def _check_keys(d: Mapping, prefix: str) -> None:
    """Reject unknown sections and keys, and sections that are not mappings."""
    if not isinstance(d, Mapping):
        raise ConfigError(
            f"{prefix}the top level must be a mapping of sections ({', '.join(_SECTIONS)}) "
            f"to their keys. Got {_kind(d)} instead."
        )
    for section, values in d.items():
        _check_name(section, _SECTIONS, "a section of the config", prefix)
        if values is None:
            continue  # "optim:" with nothing under it: all defaults
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{prefix}{section} must be a mapping of its keys "
                f"({', '.join(_fields(section))}) to values. Got {_kind(values)} instead."
            )
        for key in values:
            _check_name(key, _fields(section), f"a key of {section}", prefix)


def _parse_override(item: str) -> tuple[str, str, Any]:
    """Split an override "section.key=value" into section, key and the value read as YAML."""
    path, sep, text = item.partition("=")
    if not sep:
        raise ConfigError(
            f"--set {item!r}: expected section.key=value, e.g. --set optim.learning_rate=1e-3."
        )
    section, dot, key = path.strip().partition(".")
    if not dot or "." in key:
        raise ConfigError(
            f"--set {item!r}: the key must be section.key, e.g. train.epochs. Got {path!r}."
        )
    where = f"--set {item!r}: "
    _check_name(section, _SECTIONS, "a section of the config", where)
    _check_name(key, _fields(section), f"a key of {section}", where)
    return section, key, _parse_yaml(text, f"--set {item!r}")


def _fields(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(_SECTIONS[section])]


def _check_name(name: Any, valid: Sequence[str] | Mapping, what: str, prefix: str) -> None:
    if name in valid:
        return
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(valid)}."
    raise ConfigError(f"{prefix}{str(name)!r} is not {what}; {hint}")


def _check_value(path: str, value: Any) -> Any:
    """The value, converted to the plain type of ``path``; ConfigError if it breaks the rule."""
    kind, nullable = _TYPES[path]
    rule = _RULES[path]
    if value is None and nullable:
        return None
    converted = _as_type(value, kind)
    if converted is not None and rule.ok(converted):
        return converted
    if converted is not None:
        shown = _show(converted)
    elif value is None or _kind(value) == _TYPE_WORDS[kind]:  # null, or a float not finite
        shown = _show(value)
    else:
        shown = f"{_show(value)} ({_kind(value)})"
    close = difflib.get_close_matches(str(value), rule.choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    expected = rule.wording.format(type=_TYPE_WORDS[kind])
    raise ConfigError(
        f"{path} must be {'null or ' if nullable else ''}{expected}. Got {shown} instead{hint}"
    )


def _as_type(value: Any, kind: type) -> Any:
    """``value`` as a plain ``kind`` if it is one (an int is a float), else None.

    bool is a subclass of int in Python, but ``batch_size: true`` is a mistake, not 1.
    Non-finite floats are refused: no setting means anything at inf or nan.
    """
    if isinstance(value, bool) or kind is bool:
        return value if isinstance(value, bool) and kind is bool else None
    if kind is int:
        return int(value) if isinstance(value, numbers.Integral) else None
    if kind is float:
        ok = isinstance(value, numbers.Real) and math.isfinite(value)
        return float(value) if ok else None
    return value if isinstance(value, kind) else None


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML (true, null), cut short if long."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return _TYPE_WORDS.get(type(value), f"a {type(value).__name__}")
