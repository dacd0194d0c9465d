""":func:`validate`, which checks a whole Config: every key by the rule it is declared with
(:mod:`svmtrain.config.sections`), then the cross rules that tie keys together.
"""

from __future__ import annotations

from typing import Any

from svmtrain.config.keys import (
    CrossRules,
    Rule,
    check_name,
    check_settings,
    is_settings,
    keys_of,
    show,
)
from svmtrain.config.sections import Config, ModelConfig
from svmtrain.core.losses import HYPERPARAMETERS, LOSSES, owners, whose
from svmtrain.core.optimizers import OPTIMIZERS, OWN_KEYS
from svmtrain.errors import ConfigError


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


def optimizer_keys(name: str) -> list[str]:
    """The "section.key" names only the optimiser ``name`` reads."""
    return [
        full
        for key in OWN_KEYS[name]
        for full in ([key] if "." in key else [f"{key}.{f}" for f in keys_of(SECTIONS[key])])
    ]


def _value(cfg: Config, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _foreign_optimizer_key(cfg: Config) -> tuple[str, str] | None:
    """(key, owner): a key of another optimiser than optim.name's set away from its default."""
    defaults = Config()
    return next(
        (
            (key, owner)
            for owner in OPTIMIZERS
            if owner != cfg.optim.name
            for key in optimizer_keys(owner)
            if _value(cfg, key) != _value(defaults, key)
        ),
        None,
    )


def _foreign_optimizer_message(cfg: Config) -> str:
    key, owner = _foreign_optimizer_key(cfg)
    return (
        f"{key} is {show(_value(cfg, key))}, but it means nothing to optim.name="
        f"{cfg.optim.name} (it is a setting of {owner}); remove {key}, or set "
        f"optim.name={owner}."
    )


# Rules that tie keys together: (is it broken?, the message saying how to fix it).
_CROSS_RULES: CrossRules = (
    (lambda c: _foreign_optimizer_key(c) is not None, _foreign_optimizer_message),
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


def _leaves(cls: type, prefix: str) -> dict[str, tuple[type, bool, Rule]]:
    """ "section.key" -> (type, whether null is allowed, rule) for every key under ``cls``."""
    found = {}
    for name, (kind, nullable, f) in keys_of(cls).items():
        path = f"{prefix}{name}"
        if is_settings(kind):  # a section, or an extractor's settings (features.kmeans)
            found.update(_leaves(kind, f"{path}."))
        else:
            found[path] = (kind, nullable, f.metadata["rule"])
    return found


# Section name -> its dataclass, e.g. "optim" -> OptimConfig.
SECTIONS: dict[str, type] = {name: kind for name, (kind, _, _) in keys_of(Config).items()}
# Every key, "section.key" (or "features.kmeans.setting") -> (type, null allowed, rule).
KEYS: dict[str, tuple[type, bool, Rule]] = _leaves(Config, "")


def key_type(key: str) -> type:
    """The type (int, float, bool or str) of config key "section.key", null aside.

    Raises KeyError if there is no such key.
    """
    return KEYS[key][0]


def validate(cfg: Config) -> Config:
    """Check every value of ``cfg`` and the rules between keys; raise ConfigError on the first.

    Returns a copy with ints given for floats made floats (numpy scalars made plain, an
    extractor's settings given as a mapping made its settings dataclass).
    """
    checked = check_settings(Config, cfg)
    for broken, message in _CROSS_RULES:
        if broken(checked):
            raise ConfigError(message(checked))
    return checked


def check_key(section: Any, key: Any, prefix: str) -> None:
    """Reject an unknown ``section`` or a ``key`` that ``section`` does not have."""
    check_name(section, SECTIONS, "a section of the config", prefix)
    check_name(key, keys_of(SECTIONS[section]), f"a key of {section}", prefix)
