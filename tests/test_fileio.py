"""atomic_write: all or nothing, and a failing file system is one clear error."""

import errno
import os
from pathlib import Path

import pytest

from svmtrain.errors import SvmtrainError
from svmtrain.fileio import atomic_write


def test_writes_the_whole_file_and_leaves_no_temporary(tmp_path):
    with atomic_write(tmp_path / "out.txt", "w") as f:
        f.write("complete\n")
    assert (tmp_path / "out.txt").read_text() == "complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_exception_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic_write(target, "w") as f:
        f.write("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.ENOSPC, "Free some space"),
        (errno.ENOENT, "Its directory does not exist"),
        (errno.EROFS, "Choose a writable location."),
    ],
)
def test_file_system_errors_name_the_file_and_the_fix(tmp_path, monkeypatch, code, advice):
    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    target = tmp_path / "out.bin"
    with pytest.raises(SvmtrainError) as err, atomic_write(target) as f:
        f.write(b"data")
    assert str(err.value).startswith(f"Cannot write {target}: {os.strerror(code)}. {advice}")
    assert not target.exists() and not list(tmp_path.iterdir())


def test_a_missing_directory_says_so(tmp_path):
    with pytest.raises(SvmtrainError, match=r"Its directory does not exist"):  # noqa: SIM117
        with atomic_write(tmp_path / "nowhere" / "out.txt", "w") as f:
            f.write("x")


def test_a_read_only_file_system_is_one_clear_error(tmp_path, read_only_view):
    # The temporary file cannot be created, and removing it (it is not there) fails with EROFS
    # too: that second failure must not escape as a traceback.
    (tmp_path / "src").mkdir()
    target = read_only_view(tmp_path / "src") / "out.txt"
    with pytest.raises(SvmtrainError) as err, atomic_write(target, "w") as f:
        f.write("x")
    assert str(err.value).startswith(f"Cannot write {target}: Read-only file system.")
    assert "Choose a writable location." in str(err.value)
    assert list((tmp_path / "src").iterdir()) == []


def test_a_failing_cleanup_does_not_hide_the_first_error(tmp_path, monkeypatch):
    def read_only_unlink(self, missing_ok=False):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "unlink", read_only_unlink)
    target = tmp_path / "nowhere" / "out.txt"
    with pytest.raises(SvmtrainError, match="Its directory does not exist"):  # noqa: SIM117
        with atomic_write(target, "w") as f:
            f.write("x")


def test_a_directory_that_exists_but_takes_no_new_files_is_not_called_missing():
    # /proc exists; creating a file in it fails with ENOENT all the same
    target = Path("/proc") / f"svmtrain-test-{os.getpid()}"
    with pytest.raises(SvmtrainError) as err, atomic_write(target, "w") as f:
        f.write("x")
    message = str(err.value)
    assert message.startswith(f"Cannot write {target}:")
    advice = message.split(":", 1)[1]
    assert "Its directory does not exist" not in advice
    assert "/proc" in advice
    assert "writable location" in advice
