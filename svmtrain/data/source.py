"""Where the archive comes from (URL and expected digests) and where it is cached.

Each setting is the argument, else its environment variable, else the official value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from svmtrain.config.keys import HEX_DIGITS, is_hex_digest, is_http_url
from svmtrain.errors import ConfigError, DataError

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
OFFICIAL_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
OFFICIAL_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"

ENV_URL = "SVMTRAIN_DATA_URL"
ENV_DIGEST = {"sha256": "SVMTRAIN_DATA_SHA256", "md5": "SVMTRAIN_DATA_MD5"}
ENV_DIR = "SVMTRAIN_DATA_DIR"

# How a caller's own digest is set again, by default (``svmtrain data download``'s options) and
# from a config; {algo} and {value} are filled in.
OPTION_DIGEST = "--{algo} {value}"
CONFIG_DIGEST = "--set data.{algo}={value} (data.{algo} in the config)"


@dataclass(frozen=True)
class Source:
    """Where the archive comes from and the digests it must match (None: not checked).

    ``origin``: for each digest, how to set it to ``value`` where it came from (the caller's
    ``given_as``, the environment variable, or "" for the official digest); empty when unknown.
    """

    url: str
    sha256: str | None
    md5: str | None
    origin: dict[str, str] = field(default_factory=dict, compare=False)

    def digests(self) -> dict[str, str]:
        """The expected digests that are set, by algorithm name."""
        return {algo: value for algo in ("sha256", "md5") if (value := getattr(self, algo))}


def resolve_source(
    url: str | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    given_as: str = OPTION_DIGEST,
) -> Source:
    """Each of url, sha256, md5: the argument, else its environment variable, else the official
    value. The official digests apply only to the official URL; a custom URL without a digest is
    accepted with an :class:`~svmtrain.data.cifar10.UnverifiedArchiveWarning` at download time.
    ``given_as``: how the caller's digests are set (e.g. :data:`CONFIG_DIGEST`), for messages.

    Raises ConfigError for a URL that is not http(s) or a digest that is not hexadecimal."""
    url = url or os.environ.get(ENV_URL) or OFFICIAL_URL
    if not is_http_url(url):
        raise ConfigError(
            f"The data URL must start with http:// or https:// and name a host. Got {url!r} "
            f"instead (from --url, the config or {ENV_URL})."
        )
    digests, origin = {"sha256": sha256, "md5": md5}, {}
    for algo, value in digests.items():
        origin[algo] = given_as if value else f"{ENV_DIGEST[algo]}={{value}}"
        value = (value or os.environ.get(ENV_DIGEST[algo]) or "").strip().lower()
        if value and not is_hex_digest(value, algo):
            raise ConfigError(
                f"The {algo} digest must be {HEX_DIGITS[algo]} hexadecimal digits. Got "
                f"{value!r} instead (from --{algo}, the config or {ENV_DIGEST[algo]})."
            )
        digests[algo] = value or None
    if url == OFFICIAL_URL and not any(digests.values()):
        digests, origin = (
            {"sha256": OFFICIAL_SHA256, "md5": OFFICIAL_MD5},
            dict.fromkeys(digests, ""),
        )
    return Source(url=url, **digests, origin=origin)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: the argument, else $SVMTRAIN_DATA_DIR, else
    $XDG_CACHE_HOME/svmtrain, else ~/.cache/svmtrain (absolute; not created here).

    Raises DataError when a ``~`` cannot be expanded: no $HOME and no home directory for the
    user (a container run with ``--user``), or no such user for ``~name``."""
    chosen = data_dir or os.environ.get(ENV_DIR)
    if not chosen:
        chosen = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "svmtrain"
    try:
        return Path(chosen).expanduser().absolute()
    except RuntimeError:
        raise DataError(
            f"Cannot tell where to keep the data: {str(chosen)!r} needs a home directory, and "
            f"HOME is not set and user {os.getuid()} has none. Set {ENV_DIR} (or "
            "XDG_CACHE_HOME) to a writable directory, or pass --data-dir."
        ) from None
