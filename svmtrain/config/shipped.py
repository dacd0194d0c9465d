"""The configs shipped inside the package (``svmtrain.configs``, from the top-level configs/).

``svmtrain fit -c NAME`` reads one by name, so they work without a checkout. Each file lists only
what it changes from the built-in defaults, below a header comment whose first line says what it
is. "notes" is shipped too, as no file: it is the built-in defaults
(:mod:`svmtrain.config.sections`), what a config without ``--config`` runs.
"""

from __future__ import annotations

import itertools
import os
from importlib import resources
from pathlib import Path

from svmtrain.config.sections import Config
from svmtrain.config.yamltext import explained_yaml
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
_EXPLAINED = (
    "#\n# Every key, resolved and explained; edit what you need, then svmtrain fit -c FILE.\n\n"
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
        return _NOTES_HEADER + explained_yaml(Config())
    return resources.files(_PACKAGE).joinpath(name + _SUFFIX).read_text(encoding="utf-8")


def shipped_summaries() -> dict[str, str]:
    """Name -> what the config is: the first line of its file, without the ``#``."""
    return {
        name: shipped_text(name).partition("\n")[0].removeprefix("#").strip()
        for name in shipped_names()
    }


def shipped_header(name: str) -> str:
    """The comment lines that open the shipped config ``name``: what it is and why its values."""
    if name == NOTES:
        return _NOTES_HEADER
    lines = shipped_text(name).splitlines(keepends=True)
    return "".join(line for line in itertools.takewhile(lambda x: x.startswith("#"), lines))


def explained_text(name: str, cfg: Config) -> str:
    """What ``svmtrain configs show NAME`` prints: the header of the shipped config ``name``,
    then ``cfg`` (it resolved) with every key explained."""
    return shipped_header(name) + _EXPLAINED + explained_yaml(cfg)


def write_new(text: str, out: str | os.PathLike) -> Path:
    """Write ``text`` to the new file ``out`` (e.g. a config to edit into your own).

    Raises SvmtrainError if ``out`` exists (it is never overwritten) or cannot be written.
    Returns ``out`` as a Path.
    """
    target = Path(out)
    if target.exists() or target.is_symlink():
        raise SvmtrainError(
            f"{target} already exists; choose a new file name (it is never overwritten)."
        )
    with atomic_write(target, "w") as f:
        f.write(text)
    return target
