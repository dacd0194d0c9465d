"""The configs shipped inside the package (``svmtrain.configs``, from the top-level configs/).

``svmtrain fit -c NAME`` reads one by name, so they work without a checkout; ``svmtrain configs
list`` and ``show`` print them to start your own. The first line of each file is a one-line
comment saying what it is. "notes" is shipped too, as no file: it is the built-in defaults
(:mod:`svmtrain.config.sections`), what a config without ``--config`` runs.
"""

from __future__ import annotations

import dataclasses
import os
from importlib import resources
from pathlib import Path

from svmtrain.config.sections import Config
from svmtrain.config.yamltext import dump_yaml
from svmtrain.errors import ConfigError, SvmtrainError
from svmtrain.fileio import atomic_write

_PACKAGE = "svmtrain.configs"
_SUFFIX = ".yaml"
NOTES = "notes"  # the name of the built-in defaults
_NOTES_HEADER = (
    "# The built-in defaults: the CS231n notes' SVM, mean-subtracted pixels, lr 1e-7, reg 2.5e4.\n"
    "#   svmtrain fit -c notes   (the same as no --config at all)\n"
    "# A key another config leaves out takes its value from here.\n"
)


def shipped_names() -> list[str]:
    """The names of the shipped configs, sorted: their file names without ``.yaml``, and
    "notes" (the built-in defaults)."""
    files = [entry.name for entry in resources.files(_PACKAGE).iterdir()]
    return sorted(
        [NOTES, *(name.removesuffix(_SUFFIX) for name in files if name.endswith(_SUFFIX))]
    )


def shipped_text(name: str) -> str:
    """The YAML text of the shipped config ``name``; ConfigError listing the names if unknown."""
    if name not in shipped_names():
        raise ConfigError(
            f"{name!r} is not a shipped config; the shipped configs are "
            f"{', '.join(shipped_names())} (svmtrain configs list)."
        )
    if name == NOTES:
        return _NOTES_HEADER + dump_yaml(dataclasses.asdict(Config()))
    return resources.files(_PACKAGE).joinpath(name + _SUFFIX).read_text(encoding="utf-8")


def shipped_summaries() -> dict[str, str]:
    """Name -> what the config is: the first line of its file, without the ``#``."""
    return {
        name: shipped_text(name).partition("\n")[0].removeprefix("#").strip()
        for name in shipped_names()
    }


def copy_shipped(name: str, out: str | os.PathLike) -> Path:
    """Write the shipped config ``name`` to the new file ``out``, to edit into your own.

    Raises ConfigError if ``name`` is unknown and SvmtrainError if ``out`` exists (it is never
    overwritten) or cannot be written. Returns ``out`` as a Path.
    """
    text = shipped_text(name)
    target = Path(out)
    if target.exists() or target.is_symlink():
        raise SvmtrainError(
            f"{target} already exists; choose a new file name (it is never overwritten)."
        )
    with atomic_write(target, "w") as f:
        f.write(text)
    return target
