"""Parsing the archive straight from the tar, rejecting damaged ones, and the parsed cache."""

import errno
import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from svmtrain.data import dataset_info, load_cifar10
from svmtrain.data.cache import PARSED_DIR, STAMP_NAME
from svmtrain.data.format import ARCHIVE_NAME, META_MEMBER, TRAIN_MEMBERS
from svmtrain.errors import ArchiveError, DataError


def fetch(http_server, archive, data_dir):
    """Serve ``archive`` on 127.0.0.1 and load it into ``data_dir`` the user's way."""
    server = http_server(archive.body)
    return load_cifar10(data_dir, server.url, archive.sha256, progress=False), server


def assert_same_data(dataset, archive):
    for name in ("x_train", "y_train", "x_test", "y_test"):
        got, want = getattr(dataset, name), getattr(archive, name)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert dataset.class_names == archive.class_names


@pytest.mark.parametrize(
    ("train_counts", "test_count"),
    [((3, 1, 4, 1, 5), 2), ((1, 1, 1, 1, 1), 1), ((2, 7, 1, 8, 2), 8)],
)
def test_parses_batches_of_any_size_in_order(
    http_server, tiny_archive, tmp_path, train_counts, test_count
):
    archive = tiny_archive(train_counts=train_counts, test_count=test_count)
    dataset, _ = fetch(http_server, archive, tmp_path)
    assert dataset.x_train.shape == (sum(train_counts), 3072)
    assert dataset.x_test.shape == (test_count, 3072)
    assert_same_data(dataset, archive)
    assert dataset.archive == tmp_path / ARCHIVE_NAME
    assert dataset.sha256 == archive.sha256


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        ({"corrupt": "wrong_size"}, [TRAIN_MEMBERS[1], "3,073"]),
        ({"train_counts": (2, 0, 1, 1, 1)}, [TRAIN_MEMBERS[1], "has 0 bytes"]),
        ({"corrupt": "missing_member"}, [TRAIN_MEMBERS[2], "lacks"]),
        ({"corrupt": "bad_label"}, [TRAIN_MEMBERS[3], "record 0 has label 10"]),
        ({"corrupt": "truncated_gzip"}, ["corrupt or truncated", "cifar-10-batches-bin/"]),
        ({"extra_members": {META_MEMBER: b"cat\ndog\n"}}, [META_MEMBER, "2 class names"]),
    ],
    ids=["wrong-size", "empty-member", "missing-member", "bad-label", "truncated-gzip", "meta"],
)
def test_damaged_archive_is_rejected(http_server, tiny_archive, tmp_path, options, needles):
    archive = tiny_archive(**options)
    with pytest.raises(ArchiveError) as err:
        fetch(http_server, archive, tmp_path)
    message = str(err.value)
    for needle in [*needles, f"rm {tmp_path / ARCHIVE_NAME}", "svmtrain data download"]:
        assert needle in message
    # nothing half-written: no parsed arrays, no temporary directory left behind
    assert not any((tmp_path / PARSED_DIR).glob("*"))


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -4, -1], ids=lambda k: f"keep={k}")
def test_truncated_anywhere_is_rejected(tiny_archive, tmp_path, keep):
    body = tiny_archive().body
    cut = body[: int(len(body) * keep)] if keep > 0 else body[:keep]  # -4: the trailer's length
    (tmp_path / ARCHIVE_NAME).write_bytes(cut)  # placed by hand; its digest is given
    digest = hashlib.sha256(cut).hexdigest()
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        load_cifar10(tmp_path, "http://127.0.0.1:9/never-used.tar.gz", digest, progress=False)


def test_members_outside_the_expected_names_are_never_written(http_server, tiny_archive, tmp_path):
    archive = tiny_archive(
        extra_members={
            "../evil.txt": b"escaped",
            "cifar-10-batches-bin/../../evil-too.txt": b"escaped",
            "cifar-10-batches-bin/evil.sh": b"#!/bin/sh",
        }
    )
    data_dir = tmp_path / "one" / "two" / "data"  # where ../ and ../../ would land: in tmp_path
    dataset, _ = fetch(http_server, archive, data_dir)
    assert_same_data(dataset, archive)
    assert sorted(p.name for p in tmp_path.rglob("evil*")) == []
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(
        [ARCHIVE_NAME, STAMP_NAME, PARSED_DIR, ".lock"]
    )


def test_second_load_makes_no_request_and_maps_the_cache(http_server, tiny_archive, tmp_path):
    archive = tiny_archive()
    _, server = fetch(http_server, archive, tmp_path)
    server.close()  # a request now would fail
    dataset = load_cifar10(tmp_path, server.url, archive.sha256, progress=False)
    assert len(server.requests) == 1
    assert isinstance(dataset.x_train, np.memmap)
    assert not dataset.x_train.flags.writeable
    assert_same_data(dataset, archive)


def test_a_new_archive_replaces_the_cache(http_server, tiny_archive, tmp_path):
    old, new = tiny_archive(seed=1), tiny_archive(seed=2, train_counts=(2, 2, 2, 2, 2))
    fetch(http_server, old, tmp_path)
    dataset, server = fetch(http_server, new, tmp_path)
    assert len(server.gets) == 1  # the old archive did not satisfy the new digest
    assert_same_data(dataset, new)
    assert [p.name for p in (tmp_path / PARSED_DIR).iterdir()] == [new.sha256]


def test_an_archive_changed_on_disk_is_parsed_again(tiny_archive, tmp_path):
    old, new = tiny_archive(seed=1), tiny_archive(seed=2, train_counts=(1, 2, 3, 4, 5))
    offline = "http://127.0.0.1:9/never-used.tar.gz"
    (tmp_path / ARCHIVE_NAME).write_bytes(old.body)  # placed by hand: verified, no download
    assert_same_data(load_cifar10(tmp_path, offline, old.sha256, progress=False), old)
    (tmp_path / ARCHIVE_NAME).write_bytes(new.body)
    assert_same_data(load_cifar10(tmp_path, offline, new.sha256, progress=False), new)
    assert [p.name for p in (tmp_path / PARSED_DIR).iterdir()] == [new.sha256]


def test_a_damaged_parsed_cache_is_rebuilt_without_a_request(http_server, tiny_archive, tmp_path):
    archive = tiny_archive()
    _, server = fetch(http_server, archive, tmp_path)
    (tmp_path / PARSED_DIR / archive.sha256 / "x_train.npy").write_bytes(b"not an array")
    dataset = load_cifar10(tmp_path, server.url, archive.sha256, progress=False)
    assert_same_data(dataset, archive)
    assert len(server.requests) == 1


def test_a_parsed_cache_with_a_label_out_of_range_is_rebuilt(http_server, tiny_archive, tmp_path):
    archive = tiny_archive()
    _, server = fetch(http_server, archive, tmp_path)
    labels = tmp_path / PARSED_DIR / archive.sha256 / "y_test.npy"
    damaged = np.load(labels)
    damaged[0] = 77  # a flipped byte: still a valid array, but no class has this label
    np.save(labels, damaged)
    dataset = load_cifar10(tmp_path, server.url, archive.sha256, progress=False)
    assert_same_data(dataset, archive)
    assert len(server.requests) == 1


def test_a_write_that_fails_inside_the_data_dir_is_a_data_error(
    http_server, tiny_archive, tmp_path
):
    (tmp_path / PARSED_DIR).write_text("a file where the parsed cache goes")
    with pytest.raises(DataError) as err:
        fetch(http_server, tiny_archive(), tmp_path)
    assert str(tmp_path) in str(err.value)
    assert "--data-dir" in str(err.value)


def test_dataset_info_counts_per_split_and_class(http_server, tiny_archive, tmp_path):
    archive = tiny_archive(train_counts=(9, 8, 7, 6, 5), test_count=11)
    _, server = fetch(http_server, archive, tmp_path)
    info = dataset_info(tmp_path)
    assert info["data_dir"] == str(tmp_path)
    assert info["archive"] == str(tmp_path / ARCHIVE_NAME)
    assert info["archive_bytes"] == len(archive.body)
    assert (info["sha256"], info["md5"]) == (archive.sha256, archive.md5)
    assert info["official"] is False
    assert info["source_url"] == server.url
    assert info["class_names"] == list(archive.class_names)
    for split, labels in (("train", archive.y_train), ("test", archive.y_test)):
        expected = {name: int((labels == k).sum()) for k, name in enumerate(archive.class_names)}
        assert info["splits"][split] == {"count": len(labels), "per_class": expected}
    assert len(server.requests) == 1


def test_dataset_info_without_data_says_how_to_get_it(tmp_path):
    data_dir = tmp_path / "empty"
    with pytest.raises(DataError, match="svmtrain data download"):
        dataset_info(data_dir)
    assert not data_dir.exists()  # looking created nothing


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """svmtrain in a child process, so that a crash (a signal) cannot take the tests with it."""
    code = "import sys; from svmtrain.cli import main; sys.argv[0] = 'svmtrain'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_a_full_disk_while_parsing_is_a_clear_error(http_server, tiny_archive, small_tmpfs):
    archive = tiny_archive(train_counts=(10,) * 5, test_count=10)  # x_train: 153,600 bytes
    data_dir = small_tmpfs(len(archive.body) + 64 * 1024)  # the archive fits, the arrays do not
    server = http_server(archive.body)
    result = run_cli(
        "data", "download", "--data-dir", str(data_dir), "--url", server.url,
        "--sha256", archive.sha256, "--quiet",
    )  # fmt: skip
    assert result.returncode == 1, (result.returncode, result.stderr)  # was -7: SIGBUS
    assert "Traceback" not in result.stderr
    assert "No space left on device" in result.stderr
    assert "Free some space" in result.stderr
    assert str(data_dir) in result.stderr
    assert "--data-dir" in result.stderr
    assert (data_dir / ARCHIVE_NAME).read_bytes() == archive.body  # the download is kept
    assert list((data_dir / PARSED_DIR).iterdir()) == []  # no hidden half-written arrays

    # with room made, the kept archive is parsed without a second download
    subprocess.run(["mount", "-o", "remount,size=4m", str(data_dir)], check=True)
    server.close()
    assert_same_data(load_cifar10(data_dir, server.url, archive.sha256, progress=False), archive)


def test_disk_full_reported_at_fsync_is_a_clear_error(tiny_archive, tmp_path, monkeypatch):
    # ext4 may accept the writes and report ENOSPC only when the file is flushed
    archive = tiny_archive()
    (tmp_path / ARCHIVE_NAME).write_bytes(archive.body)  # placed by hand; its digest is given
    real_fsync = os.fsync

    def fsync_full_for_arrays(fd):
        if any(os.path.samestat(os.fstat(fd), p.stat()) for p in tmp_path.rglob("*.npy")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_full_for_arrays)
    with pytest.raises(DataError) as err:
        load_cifar10(tmp_path, "http://127.0.0.1:9/never-used.tar.gz", archive.sha256)
    message = str(err.value)
    assert "No space left on device" in message
    assert str(tmp_path) in message
    records = len(archive.y_train) + len(archive.y_test)
    assert f"{records * 3073:,} bytes" in message  # what the arrays need
    assert "Free some space" in message
    assert "writable" not in message  # the directory is writable; it is full
    assert list((tmp_path / PARSED_DIR).iterdir()) == []
    assert (tmp_path / ARCHIVE_NAME).read_bytes() == archive.body


def test_a_member_whose_header_size_is_wrong_is_called_damaged(http_server, tiny_archive, tmp_path):
    # The header of data_batch_3 says one record fewer than it holds, so the next "header" is
    # pixel data; tarfile's stream reader takes that for the end of the archive.
    archive = tiny_archive(corrupt="short_header_size")
    with pytest.raises(ArchiveError) as err:
        fetch(http_server, archive, tmp_path)
    message = str(err.value)
    assert TRAIN_MEMBERS[2] in message
    assert "damaged" in message
    assert "lacks" not in message  # the members are there; the archive is broken before them
    assert f"rm {tmp_path / ARCHIVE_NAME}" in message
    assert not any((tmp_path / PARSED_DIR).glob("*"))


def copied_cache(http_server, archive, tmp_path):
    """A cache filled by a download, then copied elsewhere (new inodes, as on a shared disk)."""
    original, server = tmp_path / "original", http_server(archive.body)
    load_cifar10(original, server.url, archive.sha256, progress=False)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    server.close()  # any download now would fail
    return copy, server


def files_of(directory):
    return {p.relative_to(directory): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_a_copied_cache_on_read_only_media_loads_and_answers_info(
    http_server, tiny_archive, tmp_path, read_only_view
):
    archive = tiny_archive()
    copy, server = copied_cache(http_server, archive, tmp_path)
    before = files_of(copy)
    media = read_only_view(copy)
    info = dataset_info(media)
    assert (info["sha256"], info["md5"]) == (archive.sha256, archive.md5)
    assert info["source_url"] == server.url  # still known: the contents match the stamp
    assert info["splits"]["train"]["count"] == len(archive.y_train)
    assert_same_data(load_cifar10(media, server.url, archive.sha256, progress=False), archive)
    assert files_of(copy) == before
    assert len(server.requests) == 1


def test_a_read_only_cache_is_used_without_writing(
    http_server, tiny_archive, tmp_path, monkeypatch
):
    # Where no read-only mount can be made: the directory reports itself unwritable, as a
    # read-only mount or a directory of another user's does.
    archive = tiny_archive()
    copy, server = copied_cache(http_server, archive, tmp_path)
    before = files_of(copy)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: mode != os.W_OK and real_access(path, mode, **kw)
    )
    assert dataset_info(copy)["sha256"] == archive.sha256
    assert_same_data(load_cifar10(copy, server.url, archive.sha256, progress=False), archive)
    assert files_of(copy) == before
    assert sorted(p.name for p in copy.iterdir()) == sorted(
        [ARCHIVE_NAME, STAMP_NAME, PARSED_DIR, ".lock"]
    )


def test_a_read_only_cache_that_needs_writing_says_so(
    http_server, tiny_archive, tmp_path, read_only_view
):
    archive = tiny_archive()
    copy, _ = copied_cache(http_server, archive, tmp_path)
    shutil.rmtree(copy / PARSED_DIR)  # the arrays would have to be parsed again
    media = read_only_view(copy)
    with pytest.raises(DataError) as err:
        dataset_info(media)
    assert str(media) in str(err.value)
    assert "Read-only file system" in str(err.value)
    assert "--data-dir" in str(err.value)
