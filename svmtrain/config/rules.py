"""What each config key accepts, and :func:`validate`, which checks a whole Config.

The type of a key and whether null is allowed come from the annotations of the dataclasses in
:mod:`svmtrain.config.sections`; :data:`RULES` adds, per key, what the value must satisfy and
the words that say so in an error; a few cross rules tie keys together.
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
from dataclasses import dataclass
from typing import Any, get_args, get_type_hints
from urllib.parse import urlsplit

from svmtrain.config.sections import Config, ModelConfig
from svmtrain.core.losses import DTYPES, HYPERPARAMETERS, LOSSES, owners, whose
from svmtrain.core.optim import SCHEDULES
from svmtrain.core.scaling import SCALINGS
from svmtrain.errors import ConfigError


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


HEX_DIGITS = {"sha256": 64, "md5": 32}  # the length of each digest, in hex digits


def is_hex_digest(value: str, algo: str) -> bool:
    """Whether ``value`` is a hex digest of the length ``algo`` ('sha256', 'md5') has, in
    upper or lower case: data.sha256/data.md5 here, the data code's --sha256/--md5 and stamps."""
    return re.fullmatch(f"[0-9a-fA-F]{{{HEX_DIGITS[algo]}}}", value) is not None


def _hex_digest(algo: str) -> _Rule:
    return _Rule(lambda v: is_hex_digest(v, algo), f"{HEX_DIGITS[algo]} hex digits")


def is_http_url(value: str) -> bool:
    """Whether ``value`` is an http(s) URL with a host: data.url here, the data code's
    SVMTRAIN_DATA_URL and --url alike (a malformed one, e.g. ``http://[::1``, is not)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


NAME_MAX = 255  # bytes in one name of a path, on every common file system


def is_path(value: str, name_max: int = NAME_MAX) -> bool:
    """Whether ``value`` can name a file: not empty, no NUL byte, no name in it (between the
    '/'s) longer than ``name_max`` bytes."""
    names = os.fsencode(value).split(b"/")
    return value != "" and "\0" not in value and all(len(n) <= name_max for n in names)


_PATH = _Rule(is_path, f"a non-empty string without NUL, at most {NAME_MAX} bytes between '/'s")
# A run's directory is <timestamp>-<output.name>: 16 bytes are the timestamp's
_RUN_NAME = _Rule(
    lambda v: "/" not in v and is_path(v, NAME_MAX - 16),
    f"a non-empty string without '/' or NUL, at most {NAME_MAX - 16} bytes",
)

_POSITIVE_INT = _compare(">=", 1)
_NON_EMPTY = _Rule(lambda v: v != "", "a non-empty string")
_BOOL = _Rule(wording="true or false")

RULES: dict[str, _Rule] = {
    "data.dir": _PATH,
    "data.url": _Rule(is_http_url, "an http:// or https:// URL"),
    "data.sha256": _hex_digest("sha256"),
    "data.md5": _hex_digest("md5"),
    "data.val_size": _POSITIVE_INT,
    "data.num_train": _POSITIVE_INT,
    "data.num_test": _POSITIVE_INT,
    "preprocess.subtract_mean": _BOOL,
    "preprocess.scaling": _one_of(*SCALINGS),
    "preprocess.dtype": _one_of(*DTYPES),
    # The names and settings of feature extractors are theirs to check (features sit above).
    "features.name": _NON_EMPTY,
    "features.kmeans": _Rule(wording="{type} of its settings"),
    "features.hog_color": _Rule(wording="{type} of its settings"),
    "features.flip": _BOOL,
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
    "output.dir": _PATH,
    "output.name": _RUN_NAME,
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
    return (
        f"model.{name} is {getattr(model, name)}, but the {model.loss} loss has no {name} "
        f"({whose(name)}); remove model.{name} or set model.loss to {' or '.join(owners(name))}."
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


# Section name -> its dataclass, e.g. "optim" -> OptimConfig.
SECTIONS: dict[str, type] = get_type_hints(Config)
# "section.key" -> (its type, whether null is allowed), read from the annotations.
KEY_TYPES: dict[str, tuple[type, bool]] = {
    f"{section}.{name}": _type_of(hint)
    for section, cls in SECTIONS.items()
    for name, hint in get_type_hints(cls).items()
}
_TYPE_WORDS = {int: "an int", float: "a float", bool: "a bool", str: "a string", dict: "a mapping"}


def key_type(key: str) -> type:
    """The type (int, float, bool or str) of config key "section.key", null aside.

    Raises KeyError if there is no such key.
    """
    return KEY_TYPES[key][0]


def validate(cfg: Config) -> Config:
    """Check every value of ``cfg`` and the rules between keys; raise ConfigError on the first.

    Returns a copy with ints given for floats made floats (and numpy scalars made plain).
    """
    sections = {}
    for section in SECTIONS:
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


def check_keys(d: Mapping, prefix: str) -> None:
    """Reject unknown sections and keys, and sections that are not mappings."""
    if not isinstance(d, Mapping):
        raise ConfigError(
            f"{prefix}the top level must be a mapping of sections ({', '.join(SECTIONS)}) "
            f"to their keys. Got {_kind(d)} instead."
        )
    for section, values in d.items():
        _check_name(section, SECTIONS, "a section of the config", prefix)
        if values is None:
            continue  # "optim:" with nothing under it: all defaults
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{prefix}{section} must be a mapping of its keys "
                f"({', '.join(_fields(section))}) to values. Got {_kind(values)} instead."
            )
        for key in values:
            _check_name(key, _fields(section), f"a key of {section}", prefix)


def check_key(section: Any, key: Any, prefix: str) -> None:
    """Reject an unknown ``section`` or a ``key`` that ``section`` does not have."""
    _check_name(section, SECTIONS, "a section of the config", prefix)
    _check_name(key, _fields(section), f"a key of {section}", prefix)


def _fields(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(SECTIONS[section])]


def _check_name(name: Any, valid: Sequence[str] | Mapping, what: str, prefix: str) -> None:
    if name in valid:
        return
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(valid)}."
    raise ConfigError(f"{prefix}{str(name)!r} is not {what}; {hint}")


def _check_value(path: str, value: Any) -> Any:
    """The value, converted to the plain type of ``path``; ConfigError if it breaks the rule."""
    kind, nullable = KEY_TYPES[path]
    rule = RULES[path]
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
