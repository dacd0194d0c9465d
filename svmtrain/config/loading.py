"""Reading, overriding and writing configs: the functions most callers need.

A YAML file (or a shipped config, by name) overrides any subset of the built-in defaults;
unknown keys are rejected. :func:`load_config` reads one and ``--set section.key=value``
overrides, and :func:`save_config` writes the resolved config so that a run can be replayed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from svmtrain import __version__
from svmtrain.config.rules import KEY_TYPES, SECTIONS, check_key, check_keys, validate
from svmtrain.config.sections import Config
from svmtrain.config.shipped import shipped_names, shipped_text
from svmtrain.config.yamltext import dump_yaml, parse_yaml
from svmtrain.errors import ConfigError
from svmtrain.fileio import atomic_write


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read the config at ``path``, apply ``--set`` overrides, validate.

    ``path`` is a YAML file or the name of a shipped config ("default", "quick", ...); a file
    that exists wins over a name. None gives the built-in defaults, named "notes". A config
    that does not set output.name takes its file's name without the suffix (or the shipped
    name); a file without settings (empty, or only comments) is refused. ``overrides`` are
    "section.key=value" strings; the value is read as YAML, so ``data.num_train=null`` gives
    None and ``optim.learning_rate=1e-3`` a float.
    Raises ConfigError naming the file, key or override at fault.
    """
    raw: dict = {}
    if path is not None:
        raw, name = _read_config(path)
        output = raw.get("output") or {}
        if "name" not in output:
            raw["output"] = {**output, "name": name}
    for item in overrides:
        section, key, setting, value = _parse_override(item)
        if raw.get(section) is None:
            raw[section] = {}
        if setting is None:
            raw[section][key] = value
        else:  # one setting of a mapping, e.g. features.kmeans.num_centroids
            if not isinstance(raw[section].get(key), dict):
                raw[section][key] = {}
            raw[section][key][setting] = value
    return config_from_dict(raw)


def config_from_dict(d: Mapping) -> Config:
    """Build and validate a Config from ``{section: {key: value}}``; missing keys keep defaults."""
    check_keys(d, "")
    sections = {name: cls(**(d.get(name) or {})) for name, cls in SECTIONS.items()}
    return validate(Config(**sections))


def config_to_dict(cfg: Config) -> dict:
    """``{section: {key: value}}`` of plain Python values, ready for YAML or JSON."""
    return dataclasses.asdict(cfg)


def config_to_yaml(cfg: Config) -> str:
    """``cfg`` as YAML text that :func:`config_from_yaml` reads back as an equal Config."""
    return dump_yaml(config_to_dict(validate(cfg)))


def config_from_yaml(text: str, where: str) -> Config:
    """The Config in YAML ``text`` (e.g. stored in a weights file); ``where`` names it in errors."""
    raw = parse_yaml(text, where) or {}
    check_keys(raw, f"{where}: ")
    return config_from_dict(raw)


def config_file_text(cfg: Config) -> str:
    """What :func:`save_config` writes for ``cfg``: a comment saying what it is, then the YAML."""
    header = (
        f"# Resolved svmtrain {__version__} config: every key, with defaults filled in.\n"
        "# Pass it to --config to run again with exactly these settings.\n"
    )
    return header + config_to_yaml(cfg)


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    """Write ``cfg`` as commented YAML, atomically; :func:`load_config` reads back an equal one."""
    with atomic_write(path, "w") as f:
        f.write(config_file_text(cfg))


def _read_config(path: str | os.PathLike) -> tuple[dict, str]:
    """The sections of the config file at ``path``, or of the shipped config of that name if
    no such file exists, and the config's name (the file's stem, or the shipped name)."""
    where = os.fspath(path)
    if not os.path.exists(where) and where in shipped_names():
        text, name = shipped_text(where), where
    else:
        text, name = _read_file(where), Path(where).stem
    raw = parse_yaml(text, where)
    if raw is None:  # likely a mistake (a truncated file, the wrong one): not silently defaults
        raise ConfigError(
            f"{where} holds no settings (it is empty or only comments). Write the settings to "
            "change in it (svmtrain configs show default prints a full config to start from), "
            "or use -c notes for the built-in defaults."
        )
    check_keys(raw, f"{where}: ")
    return raw, name


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
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
    path, sep, text = item.partition("=")
    if not sep:
        raise ConfigError(
            f"--set {item!r}: expected section.key=value, e.g. --set optim.learning_rate=1e-3."
        )
    parts = path.strip().split(".")
    malformed = ConfigError(
        f"--set {item!r}: the key must be section.key, e.g. train.epochs. Got {path!r}."
    )
    if len(parts) not in (2, 3) or "" in parts:  # three: a setting of a mapping key
        raise malformed
    section, key, setting = (*parts, None)[:3]
    where = f"--set {item!r}: "
    check_key(section, key, where)
    if setting is not None and KEY_TYPES[f"{section}.{key}"][0] is not dict:
        raise malformed
    return section, key, setting, parse_yaml(text, f"--set {item!r}")
