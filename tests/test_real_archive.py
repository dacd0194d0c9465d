"""Where the real-data tests find CIFAR-10 (conftest.real_archive): a user's own archive, a
mirror directory, or the workspace's make-mirror; and, with none, a skip that says how."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import conftest
import pytest


@pytest.fixture
def nothing_known(monkeypatch, tmp_path):
    """No variable set, no mirror under the repository, no ../shared/cifar10/make-mirror."""
    monkeypatch.delenv(conftest.ENV_TEST_ARCHIVE, raising=False)
    monkeypatch.setenv(conftest.ENV_MIRROR_DIR, str(tmp_path / "empty"))
    monkeypatch.setattr(conftest, "MAKE_MIRROR", tmp_path / "no-shared" / "make-mirror")


def test_without_any_archive_the_reason_says_how_to_give_one(nothing_known):
    reason = conftest.real_archive()
    assert isinstance(reason, str)
    assert "SVMTRAIN_TEST_ARCHIVE" in reason and "SVMTRAIN_MIRROR_DIR" in reason
    assert "cifar-10-binary.tar.gz" in reason and "shared" not in reason


def test_a_users_own_archive_is_used_as_it_is(nothing_known, monkeypatch, tmp_path):
    mine = tmp_path / "downloads" / "cifar-10-binary.tar.gz"
    mine.parent.mkdir()
    mine.write_bytes(b"not checked here")
    monkeypatch.setenv(conftest.ENV_TEST_ARCHIVE, str(mine))
    assert conftest.real_archive() == mine
    # no .sha256 beside it: the digest is computed, block by block
    assert conftest.archive_sha256(mine) == hashlib.sha256(b"not checked here").hexdigest()


def test_a_mistyped_archive_path_is_named(nothing_known, monkeypatch, tmp_path):
    monkeypatch.setenv(conftest.ENV_TEST_ARCHIVE, str(tmp_path / "typo.tar.gz"))
    reason = conftest.real_archive()
    assert reason == f"SVMTRAIN_TEST_ARCHIVE={tmp_path / 'typo.tar.gz'} is not a file"


def test_a_mirror_directory_holding_an_archive_needs_no_make_mirror(nothing_known, monkeypatch):
    mirror = Path(os.environ[conftest.ENV_MIRROR_DIR])
    mirror.mkdir()
    (mirror / "cifar-10-binary.tar.gz").write_bytes(b"x")
    assert conftest.real_archive() == mirror / "cifar-10-binary.tar.gz"
