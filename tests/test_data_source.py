"""Where the data comes from and where it goes: arguments > environment > defaults."""

from pathlib import Path

import pytest

from svmtrain.data.source import (
    OFFICIAL_MD5,
    OFFICIAL_SHA256,
    OFFICIAL_URL,
    Source,
    resolve_data_dir,
    resolve_source,
)
from svmtrain.errors import ConfigError

MIRROR = "http://127.0.0.1:8000/cifar-10-binary.tar.gz"
OTHER = "https://mirror.example/c10.tgz"
SHA_A, SHA_B = "a" * 64, "b" * 64
MD5_A = "c" * 32


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ({}, {}, Source(OFFICIAL_URL, OFFICIAL_SHA256, OFFICIAL_MD5)),
        # the official digests belong to the official URL only
        ({"url": MIRROR}, {}, Source(MIRROR, None, None)),
        ({}, {"SVMTRAIN_DATA_URL": MIRROR}, Source(MIRROR, None, None)),
        ({"url": MIRROR, "sha256": SHA_A}, {}, Source(MIRROR, SHA_A, None)),
        (
            {},
            {"SVMTRAIN_DATA_URL": MIRROR, "SVMTRAIN_DATA_MD5": MD5_A},
            Source(MIRROR, None, MD5_A),
        ),
        # an explicit digest replaces the official pair, even on the official URL
        ({"md5": MD5_A}, {}, Source(OFFICIAL_URL, None, MD5_A)),
        # arguments beat the environment, field by field
        ({"url": OTHER}, {"SVMTRAIN_DATA_URL": MIRROR}, Source(OTHER, None, None)),
        (
            {"url": MIRROR, "sha256": SHA_B},
            {"SVMTRAIN_DATA_SHA256": SHA_A},
            Source(MIRROR, SHA_B, None),
        ),
        ({"url": MIRROR}, {"SVMTRAIN_DATA_SHA256": SHA_A}, Source(MIRROR, SHA_A, None)),
        # digests are compared in lower case, surrounding blanks ignored
        ({"url": MIRROR, "sha256": f" {SHA_A.upper()}\n"}, {}, Source(MIRROR, SHA_A, None)),
        # an empty variable counts as unset
        (
            {},
            {"SVMTRAIN_DATA_URL": "", "SVMTRAIN_DATA_SHA256": ""},
            Source(OFFICIAL_URL, OFFICIAL_SHA256, OFFICIAL_MD5),
        ),
    ],
)
def test_resolve_source(monkeypatch, args, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_source(**args) == expected


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        ({"url": MIRROR, "sha256": "abc"}, {}, "sha256 digest must be 64 hexadecimal digits"),
        ({"url": MIRROR, "md5": "z" * 32}, {}, "md5 digest must be 32 hexadecimal digits"),
        ({}, {"SVMTRAIN_DATA_SHA256": SHA_A + "0"}, "SVMTRAIN_DATA_SHA256"),
        ({"url": "ftp://mirror.example/c.tgz"}, {}, "must start with http:// or https://"),
        ({}, {"SVMTRAIN_DATA_URL": "mirror.example/c.tgz"}, "SVMTRAIN_DATA_URL"),
        # the scheme alone is not enough: config refuses these too, with the same check
        ({"url": "http://"}, {}, "name a host"),
        ({"url": "https:///c.tgz"}, {}, "name a host"),
    ],
)
def test_resolve_source_rejects_bad_values(monkeypatch, args, env, needle):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=needle):
        resolve_source(**args)


@pytest.mark.parametrize(
    ("arg", "env", "expected"),
    [
        ("/d/arg", {"SVMTRAIN_DATA_DIR": "/d/env", "XDG_CACHE_HOME": "/d/xdg"}, "/d/arg"),
        (None, {"SVMTRAIN_DATA_DIR": "/d/env", "XDG_CACHE_HOME": "/d/xdg"}, "/d/env"),
        (None, {"XDG_CACHE_HOME": "/d/xdg"}, "/d/xdg/svmtrain"),
        (None, {"HOME": "/d/home"}, "/d/home/.cache/svmtrain"),
        (None, {"HOME": "/d/home", "XDG_CACHE_HOME": ""}, "/d/home/.cache/svmtrain"),
        ("~/c", {"HOME": "/d/home"}, "/d/home/c"),
    ],
)
def test_resolve_data_dir(monkeypatch, arg, env, expected):
    monkeypatch.delenv("XDG_CACHE_HOME")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_data_dir(arg) == Path(expected)


def test_resolve_data_dir_makes_relative_paths_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir("cache") == tmp_path / "cache"
