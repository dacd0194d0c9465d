"""Reading, overriding and writing configs: the functions most callers need.

A YAML file (or a shipped config, by name) overrides any subset of the built-in defaults;
unknown keys are rejected. :func:`load_config` reads one and ``--set section.key=value``
overrides, and :func:`save_config` writes the resolved config so that a run can be replayed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import stat
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from svmtrain import __version__
from svmtrain.config.keys import check_name, check_names, check_settings, is_settings, keys_of
from svmtrain.config.rules import OPTIMIZERS, SECTIONS, check_key, optimizer_keys, validate
from svmtrain.config.sections import Config
from svmtrain.config.shipped import shipped_names, shipped_text
from svmtrain.config.yamltext import dump_yaml, explained_yaml, parse_yaml
from svmtrain.errors import ConfigError, Notice
from svmtrain.fileio import atomic_write


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read the config at ``path``, apply ``--set`` overrides, validate.

    ``path`` is a YAML file or the name of a shipped config ("default", "quick", ...); a file
    that exists wins over a name. None gives the built-in defaults, named "notes". A config
    that does not set output.name takes its file's name without the suffix (or the shipped
    name); a file without settings (empty, or only comments) is refused. ``overrides`` are
    "section.key=value" strings; the value is read as YAML, so ``data.num_train=null`` gives
    None and ``optim.learning_rate=1e-3`` a float. An override of ``optim.name`` resets what
    came before it about the other optimisers' keys (a Notice names them); set after it, or
    with it in one file, such a key must keep its default.
    Raises ConfigError naming the file, key or override at fault.
    """
    raw: dict = {}
    if path is not None:
        raw, name = _read_config(path)
        raw["output"] = {"name": name, **(raw.get("output") or {})}
    return config_from_dict(_overridden(raw, overrides))


def override_config(cfg: Config, overrides: Sequence[str]) -> Config:
    """``cfg`` with ``--set`` ``overrides`` applied (as :func:`load_config` applies them to a
    file), validated: e.g. the config stored in a weights file, changed on the command line.
    Raises ConfigError naming the override at fault."""
    return config_from_dict(_overridden(config_to_dict(cfg), overrides))


def _overridden(raw: dict, overrides: Sequence[str]) -> dict:
    """``raw`` ({section: {key: value}}) with each "section.key=value" override set in it."""
    for item in overrides:
        section, key, setting, value = _parse_override(item)
        if (section, key) == ("optim", "name"):
            _reset_optimizers_but(raw, value)
        if raw.get(section) is None:
            raw[section] = {}
        if setting is None:
            raw[section][key] = value
        else:  # one setting of a mapping, e.g. features.kmeans.num_centroids
            if not isinstance(raw[section].get(key), dict):
                raw[section][key] = {}
            raw[section][key][setting] = value
    return raw


def _reset_optimizers_but(raw: dict, name: Any) -> None:
    """Drop from ``raw`` the keys of every optimiser but ``name``, with a Notice naming those
    it set away from their defaults."""
    if name not in OPTIMIZERS:
        return  # validate() says what optim.name may be
    defaults, dropped = config_to_dict(Config()), []
    for owner in OPTIMIZERS:
        for key in optimizer_keys(owner) if owner != name else []:
            section, k = key.split(".")
            values = raw.get(section) or {}
            if k in values and values.pop(k) != defaults[section][k]:
                dropped.append(key)
    if dropped:
        warnings.warn(
            Notice(
                f"optim.name={name}: {', '.join(dropped)} mean nothing to {name}, so they are "
                "reset to their defaults."
            ),
            stacklevel=3,
        )


def config_from_dict(d: Mapping) -> Config:
    """Build and validate a Config from ``{section: {key: value}}``; missing keys keep defaults."""
    return validate(check_settings(Config, d))


def config_to_dict(cfg: Config) -> dict:
    """``{section: {key: value}}`` of plain Python values, ready for YAML or JSON."""
    return dataclasses.asdict(cfg)


def config_to_yaml(cfg: Config) -> str:
    """``cfg`` as YAML text that :func:`config_from_yaml` reads back as an equal Config."""
    return dump_yaml(config_to_dict(validate(cfg)))


def config_from_yaml(text: str, where: str) -> Config:
    """The Config in YAML ``text`` (e.g. stored in a weights file); ``where`` names it in errors."""
    raw = parse_yaml(text, where) or {}
    check_names(Config, raw, where=f"{where}: ")
    return config_from_dict(raw)


def config_file_text(cfg: Config) -> str:
    """What :func:`save_config` writes for ``cfg``: a comment saying what it is, then the YAML
    with every key explained."""
    header = (
        f"# Resolved svmtrain {__version__} config: every key, with defaults filled in.\n"
        "# Pass it to --config to run again with exactly these settings.\n"
    )
    return header + explained_yaml(validate(cfg))


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML with every key explained, atomically; :func:`load_config` reads
    back an equal one."""
    with atomic_write(path, "w") as f:
        f.write(config_file_text(cfg))


def _read_config(path: str | os.PathLike) -> tuple[dict, str]:
    """The sections of the config file at ``path``, or of the shipped config of that name if
    no such file exists, and the config's name (the file's stem, or the shipped name)."""
    where = os.fspath(path)
    if not os.path.exists(where) and where in shipped_names():
        return _sections(shipped_text(where), where), where
    return _sections(_read_file(where), where), Path(where).stem


def _sections(text: str, where: str) -> dict:
    """The sections in config ``text`` (from ``where``), their names checked."""
    raw = parse_yaml(text, where)
    if raw is None:  # likely a mistake (a truncated file, the wrong one): not silently defaults
        raise ConfigError(
            f"{where} holds no settings (it is empty or only comments). Write the settings to "
            "change in it (svmtrain configs show default prints a full config to start from), "
            "or use -c notes for the built-in defaults."
        )
    check_names(Config, raw, where=f"{where}: ")
    return raw


def shipped_config(name: str) -> Config:
    """The shipped config ``name`` resolved (a file of that name in the working directory
    aside); ConfigError listing the names if there is none."""
    raw = _sections(shipped_text(name), name)
    raw["output"] = {"name": name, **(raw.get("output") or {})}
    return config_from_dict(raw)


MAX_CONFIG_BYTES = 1_000_000  # a config is a few KB; more is not one (or not the file meant)
_NOT_REGULAR = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def _read_file(path: str) -> str:
    """The text of config file ``path``: a regular file of at most MAX_CONFIG_BYTES, UTF-8.

    A pipe or a device is refused before it is opened (reading one may never end)."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            kind = _NOT_REGULAR.get(stat.S_IFMT(info.st_mode), "not a file")
            raise ConfigError(
                f"Config file {path} is not a regular file (it is {kind}); pass the path of a "
                "YAML file or the name of a shipped config (svmtrain configs list)."
            )
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            size = max(info.st_size, len(data))
            raise ConfigError(
                f"Config file {path} is {size / 1e6:.1f} MB; a config is a few KB (at most "
                f"{MAX_CONFIG_BYTES / 1e6:.0f} MB is read): is it the file you meant?"
            )
        return data.decode("utf-8")
    except FileNotFoundError:
        names = shipped_names()
        close = difflib.get_close_matches(Path(path).stem, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"Config file {path} does not exist; pass the path of a YAML file or the name of a "
            f"shipped config: {', '.join(names)}.{hint}"
        ) from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"Config file {path} is not UTF-8 text (byte {err.start + 1} is not UTF-8): a YAML "
            "config is a text file; is it the file you meant?"
        ) from None
    except OSError as err:
        raise ConfigError(f"Cannot read config file {path}: {err.strerror or err}.") from None


def _parse_override(item: str) -> tuple[str, str, str | None, Any]:
    """Split an override "section.key=value" into section, key, None and the value read as
    YAML; "section.key.setting=value" (a key that is a mapping, e.g. features.kmeans) gives
    the setting's name third."""
    shown = repr(item if len(item) <= 80 else item[:60] + "...")  # a value may be huge
    path, sep, text = item.partition("=")
    if not sep:
        raise ConfigError(
            f"--set {shown}: expected section.key=value, e.g. --set optim.learning_rate=1e-3."
        )
    parts = path.strip().split(".")
    malformed = ConfigError(
        f"--set {shown}: the key must be section.key, e.g. train.epochs. Got {path!r}."
    )
    if len(parts) not in (2, 3) or "" in parts:  # three: a setting of a mapping key
        raise malformed
    section, key, setting = (*parts, None)[:3]
    where = f"--set {shown}: "
    check_key(section, key, where)
    kind = keys_of(SECTIONS[section])[key][0]
    if setting is not None and not is_settings(kind):
        raise malformed
    if setting is not None:
        check_name(setting, keys_of(kind), f"a key of {section}.{key}", where)
    return section, key, setting, parse_yaml(text, f"--set {shown}")
