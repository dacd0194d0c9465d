"""Downloading from a real HTTP server on 127.0.0.1: resume, retries, faults, Ctrl-C, locking.

Each fault test fails if its handling is removed: the error type, the request log, or the
bytes on disk would differ.
"""

import errno
import itertools
import os
import subprocess
import sys
import threading
import time
import warnings

import pytest

from svmtrain.data import Source, UnverifiedArchiveWarning, download, fetch, load_cifar10
from svmtrain.data.cache import PART_NAME
from svmtrain.data.format import ARCHIVE_NAME
from svmtrain.errors import ChecksumError, DataError, DownloadError, Interrupted

FAST = {"progress": False, "backoff": 0.0}  # retries without waiting


@pytest.fixture
def archive(tiny_archive):
    return tiny_archive()


def source_for(server, archive, **digests) -> Source:
    return Source(server.url, digests.get("sha256", archive.sha256), digests.get("md5"))


def ranges(server) -> list[str | None]:
    """The Range header of each GET, in order (None: a request from byte 0)."""
    return [r.headers.get("Range") for r in server.gets]


def test_download_writes_the_verified_archive_and_nothing_else(http_server, archive, tmp_path):
    server = http_server(archive.body)
    path = download(source_for(server, archive), tmp_path, **FAST)
    assert path == tmp_path / ARCHIVE_NAME
    assert path.read_bytes() == archive.body
    assert not (tmp_path / PART_NAME).exists()
    assert ranges(server) == [None]
    assert server.gets[0].headers["Accept-Encoding"] == "identity"


def test_a_download_to_a_log_file_says_how_far_it_got_every_few_percent(
    http_server, tiny_archive, tmp_path, capfd
):
    """stderr is no terminal here: lines, not a bar's carriage returns; and a resumed download
    starts counting from what was kept."""
    archive = tiny_archive(train_counts=(120,) * 5, test_count=120)  # 34 chunks of 64 KiB
    cut = len(archive.body) // 2
    server = http_server(archive.body, drop_after=cut)
    download(source_for(server, archive), tmp_path, progress=True, retries=1, backoff=0.0)
    err = capfd.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"Downloading {ARCHIVE_NAME}: ")]
    percents = [int(line.split()[2].rstrip("%")) for line in lines]
    assert percents == sorted(percents) and percents[-1] == 100
    # each line crosses another 5%: the first attempt stops near 50%, the resume goes on from it
    assert all(b // 5 > a // 5 for a, b in itertools.pairwise(percents))
    assert len(percents) >= 19  # 20 marks; the cut may fall within one
    size = f"{len(archive.body) / 1e6:.1f} MB"
    assert lines[-1] == f"Downloading {ARCHIVE_NAME}: 100% ({size} of {size})"
    download(source_for(server, archive), tmp_path, progress=False)  # cached: says nothing
    assert capfd.readouterr().err == ""


def test_download_again_makes_no_request(http_server, archive, tmp_path):
    server = http_server(archive.body)
    download(source_for(server, archive), tmp_path, **FAST)
    server.close()
    assert download(source_for(server, archive), tmp_path, **FAST).read_bytes() == archive.body
    assert len(server.requests) == 1


def test_unreachable_host(closed_port_url, archive, tmp_path):
    source = Source(closed_port_url, archive.sha256, None)
    with pytest.raises(DownloadError) as err:
        download(source, tmp_path, retries=2, **FAST)
    message = str(err.value)
    assert closed_port_url in message
    assert "Connection refused" in message
    assert "3 failed attempts" in message
    assert not (tmp_path / ARCHIVE_NAME).exists()


def test_read_timeout_is_a_download_error(http_server, archive, tmp_path):
    server = http_server(archive.body, delay=1.0)  # one chunk, then a pause longer than the timeout
    with pytest.raises(DownloadError, match="timed out"):
        download(source_for(server, archive), tmp_path, retries=0, timeout=(1.0, 0.2), **FAST)


def test_dropped_connection_is_resumed_with_a_range_request(http_server, archive, tmp_path):
    cut = len(archive.body) // 3
    server = http_server(archive.body, drop_after=cut)
    path = download(source_for(server, archive), tmp_path, retries=1, **FAST)
    assert ranges(server) == [None, f"bytes={cut}-"]
    assert path.read_bytes() == archive.body


def test_dropped_connection_keeps_the_partial_for_the_next_run(http_server, archive, tmp_path):
    cut = len(archive.body) // 3
    server = http_server(archive.body, drop_after=cut)
    with pytest.raises(DownloadError, match="is kept in") as err:
        download(source_for(server, archive), tmp_path, retries=0, **FAST)
    assert str(tmp_path / PART_NAME) in str(err.value)
    assert (tmp_path / PART_NAME).read_bytes() == archive.body[:cut]
    assert not (tmp_path / ARCHIVE_NAME).exists()

    path = download(source_for(server, archive), tmp_path, retries=0, **FAST)
    assert ranges(server) == [None, f"bytes={cut}-"]
    assert path.read_bytes() == archive.body


def test_a_resumed_body_cut_short_is_caught_by_its_content_range(http_server, archive, tmp_path):
    # Without Content-Length the HTTP layer cannot tell a dropped connection from the end of
    # the body; the total in Content-Range can.
    third = len(archive.body) // 3
    (tmp_path / PART_NAME).write_bytes(archive.body[:third])
    server = http_server(archive.body, content_length=False, drop_after=third)
    path = download(source_for(server, archive), tmp_path, retries=1, **FAST)
    assert ranges(server) == [f"bytes={third}-", f"bytes={2 * third}-"]
    assert path.read_bytes() == archive.body


def test_a_server_that_ignores_range_restarts_the_file(http_server, archive, tmp_path):
    cut = len(archive.body) // 2
    (tmp_path / PART_NAME).write_bytes(archive.body[:cut])
    server = http_server(archive.body, honour_range=False)
    path = download(source_for(server, archive), tmp_path, **FAST)
    assert ranges(server) == [f"bytes={cut}-"]  # asked to resume, got 200 and the whole file
    assert path.read_bytes() == archive.body


@pytest.mark.parametrize(
    ("partial", "expected_ranges"),
    [
        # whole already (Ctrl-C between the last byte and verification): 416, then verified
        (lambda body: body, lambda n: [f"bytes={n}-"]),
        # longer than the file (the file changed on the server): 416, then from byte 0
        (lambda body: body + b"stale", lambda n: [f"bytes={n + 5}-", None]),
    ],
    ids=["complete-partial", "oversized-partial"],
)
def test_range_not_satisfiable(http_server, archive, tmp_path, partial, expected_ranges):
    (tmp_path / PART_NAME).write_bytes(partial(archive.body))
    server = http_server(archive.body)
    path = download(source_for(server, archive), tmp_path, **FAST)
    assert ranges(server) == expected_ranges(len(archive.body))
    assert path.read_bytes() == archive.body


def test_http_404_is_not_retried(http_server, archive, tmp_path):
    server = http_server(archive.body)
    url = server.base + "/missing.tar.gz"
    with pytest.raises(DownloadError) as err:
        download(Source(url, archive.sha256, None), tmp_path, **FAST)
    assert url in str(err.value)
    assert "HTTP 404" in str(err.value)
    assert len(server.requests) == 1


def test_http_503_then_success(http_server, archive, tmp_path):
    server = http_server(archive.body, fail_first=2)
    path = download(source_for(server, archive), tmp_path, retries=2, **FAST)
    assert len(server.gets) == 3
    assert path.read_bytes() == archive.body


def test_http_503_until_retries_run_out(http_server, archive, tmp_path):
    server = http_server(archive.body, fail_first=10)
    with pytest.raises(DownloadError) as err:
        download(source_for(server, archive), tmp_path, retries=2, **FAST)
    assert "HTTP 503" in str(err.value)
    assert server.url in str(err.value)
    assert len(server.gets) == 3


def test_retries_back_off_exponentially(http_server, archive, tmp_path, monkeypatch):
    # Only this thread's sleeps: the handler threads of earlier tests' servers may still be
    # pausing between chunks (Behaviour.delay), and time.sleep is patched process-wide.
    waits, this_thread, real_sleep = [], threading.current_thread(), time.sleep

    def sleep(seconds):
        if threading.current_thread() is this_thread:
            waits.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(fetch.time, "sleep", sleep)
    server = http_server(archive.body, fail_first=3)
    download(source_for(server, archive), tmp_path, progress=False, retries=3, backoff=0.5)
    assert waits == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("algo", ["sha256", "md5"])
def test_digest_mismatch_deletes_the_download(http_server, archive, tmp_path, algo):
    server = http_server(archive.body)
    wrong = "0" * len(getattr(archive, algo))
    source = Source(server.url, **{"sha256": None, "md5": None, algo: wrong})
    with pytest.raises(ChecksumError) as err:
        download(source, tmp_path, **FAST)
    message = str(err.value)
    assert wrong in message
    assert getattr(archive, algo) in message
    assert f"--{algo}" in message
    assert f"SVMTRAIN_DATA_{algo.upper()}" in message
    assert not (tmp_path / ARCHIVE_NAME).exists()
    assert not (tmp_path / PART_NAME).exists()


def test_every_given_digest_must_match(http_server, archive, tmp_path):
    server = http_server(archive.body)
    with pytest.raises(ChecksumError, match="md5"):
        download(Source(server.url, archive.sha256, "0" * 32), tmp_path, **FAST)


def test_custom_url_without_digest_warns_with_the_sha256(http_server, archive, tmp_path):
    server = http_server(archive.body)
    with pytest.warns(UnverifiedArchiveWarning, match=archive.sha256):
        download(Source(server.url, None, None), tmp_path, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second run accepts the same URL's archive silently
        download(Source(server.url, None, None), tmp_path, **FAST)
    assert len(server.requests) == 1


def test_an_archive_from_another_url_is_not_taken_without_a_digest(
    http_server, tiny_archive, tmp_path
):
    first, second = tiny_archive(seed=1), tiny_archive(seed=2)
    one, two = http_server(first.body), http_server(second.body)
    with pytest.warns(UnverifiedArchiveWarning):
        download(Source(one.url, None, None), tmp_path, **FAST)
        path = download(Source(two.url, None, None), tmp_path, **FAST)
    assert path.read_bytes() == second.body


def test_ctrl_c_keeps_the_partial_and_the_next_run_resumes(http_server, tiny_archive, tmp_path):
    archive = tiny_archive(train_counts=(10,) * 5, test_count=10)  # a few client reads long
    sent, part = fetch.CHUNK_BYTES, tmp_path / PART_NAME  # the client writes what it reads whole
    server = http_server(
        archive.body,
        chunk=sent,
        interrupt_after=sent,  # Ctrl-C once the client has written what was sent
        interrupt_when=lambda: part.exists() and part.stat().st_size == sent,
    )
    with pytest.raises(Interrupted) as err:
        download(source_for(server, archive), tmp_path, **FAST)
    assert err.value.exit_code == 130
    assert str(part) in str(err.value)
    assert "run the same command again to resume" in str(err.value)
    assert not (tmp_path / ARCHIVE_NAME).exists()
    assert part.read_bytes() == archive.body[:sent]

    path = download(source_for(server, archive), tmp_path, **FAST)
    assert ranges(server) == [None, f"bytes={sent}-"]
    assert path.read_bytes() == archive.body


def test_two_threads_at_once_download_once(http_server, archive, tmp_path):
    server = http_server(archive.body, chunk=4096, delay=0.02)  # ~0.3 s: the two overlap
    start = threading.Barrier(2)
    results, errors = [], []

    def load():
        start.wait()
        try:
            results.append(load_cifar10(tmp_path, server.url, archive.sha256, progress=False))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(server.gets) == 1
    for result in results:
        assert result.sha256 == archive.sha256
        assert (result.x_train == archive.x_train).all()


def test_two_processes_at_once_download_once(http_server, archive, tmp_path):
    server = http_server(archive.body, chunk=4096, delay=0.1)  # ~1.3 s, past interpreter start-up
    code = (
        "import sys; from svmtrain.data import load_cifar10; "
        "d = load_cifar10(sys.argv[1], sys.argv[2], sys.argv[3], progress=False); "
        "print(len(d.y_train), d.sha256)"
    )
    argv = [sys.executable, "-c", code, str(tmp_path), server.url, archive.sha256]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs == [[str(len(archive.y_train)), archive.sha256]] * 2
    assert len(server.gets) == 1
    assert (tmp_path / ARCHIVE_NAME).read_bytes() == archive.body


@pytest.mark.parametrize(
    "make_dir",
    [
        lambda tmp: tmp / "a-file" / "cache",  # a parent is a regular file: nothing can be made
        lambda tmp: tmp / "a-file",  # the data dir itself is a regular file
    ],
    ids=["parent-is-a-file", "dir-is-a-file"],
)
def test_unwritable_data_dir(http_server, archive, tmp_path, make_dir):
    # Tests run as root, whom chmod does not stop; a path that runs through a regular file
    # fails for root too, with the same OSError path as a read-only directory.
    (tmp_path / "a-file").write_text("not a directory")
    data_dir = make_dir(tmp_path)
    server = http_server(archive.body)
    with pytest.raises(DataError) as err:
        load_cifar10(data_dir, server.url, archive.sha256, progress=False)
    assert str(data_dir) in str(err.value)
    assert "--data-dir" in str(err.value)
    assert "SVMTRAIN_DATA_DIR" in str(err.value)
    assert server.requests == []  # found out before any download


def test_a_full_disk_keeps_the_partial_and_says_it_resumes(http_server, archive, small_tmpfs):
    data_dir = small_tmpfs(16 * 1024)  # less than the archive
    server = http_server(archive.body)
    with pytest.raises(DataError) as err:
        download(source_for(server, archive), data_dir, **FAST)
    message, part = str(err.value), data_dir / PART_NAME
    kept = part.stat().st_size
    assert 0 < kept < len(archive.body)
    assert part.read_bytes() == archive.body[:kept]
    assert "No space left on device" in message
    assert f"{kept:,} of {len(archive.body):,} bytes" in message
    assert str(part) in message
    assert "resume" in message
    assert "writable" not in message  # the directory is writable; it is full

    subprocess.run(["mount", "-o", "remount,size=4m", str(data_dir)], check=True)
    assert download(source_for(server, archive), data_dir, **FAST).read_bytes() == archive.body
    assert ranges(server) == [None, f"bytes={kept}-"]


def test_disk_full_reported_at_fsync_keeps_the_partial(http_server, archive, tmp_path, monkeypatch):
    part, real_fsync = tmp_path / PART_NAME, os.fsync

    def fsync_full_for_the_partial(fd):
        if part.exists() and os.path.samestat(os.fstat(fd), part.stat()):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_full_for_the_partial)
    server = http_server(archive.body)
    with pytest.raises(DataError) as err:
        download(source_for(server, archive), tmp_path, **FAST)
    assert "No space left on device" in str(err.value)
    assert f"{len(archive.body):,} of {len(archive.body):,} bytes" in str(err.value)
    assert str(part) in str(err.value)
    assert not (tmp_path / ARCHIVE_NAME).exists()


@pytest.mark.parametrize("sent", [0, fetch.CHUNK_BYTES], ids=["after-headers", "mid-body"])
def test_a_stalled_server_is_given_up_on_after_the_stall_deadline(
    http_server, tiny_archive, tmp_path, sent, caplog
):
    archive = tiny_archive(train_counts=(10,) * 5, test_count=10)  # a few client reads long
    server = http_server(archive.body, stall_after=sent)
    with pytest.raises(DownloadError) as err, caplog.at_level("WARNING", "svmtrain"):
        download(
            source_for(server, archive), tmp_path, progress=True, retries=50, backoff=0.0,
            timeout=(1.0, 0.2), stall=0.5,
        )  # fmt: skip
    message = str(err.value)
    assert len(server.gets) < 51  # the deadline ended it, not the retries
    assert "no data" in message
    assert server.url in message
    assert "run the same command again" in message.lower()
    if sent:
        assert f"({sent:,} bytes) is kept in {tmp_path / PART_NAME}" in message
    # each silence was followed by a line saying what happened and what comes next
    # (a notice each, which the CLI prints as one line on stderr)
    assert sum("retrying" in line for line in caplog.messages) == len(server.gets) - 1


def test_a_process_waiting_for_the_lock_says_for_whom(http_server, archive, tmp_path):
    released = threading.Event()
    server = http_server(archive.body, hold_until=released.is_set)  # the first keeps the lock
    code = (
        "import sys; from svmtrain.data import load_cifar10; "
        "load_cifar10(sys.argv[1], sys.argv[2], sys.argv[3], progress=False)"
    )
    argv = [sys.executable, "-c", code, str(tmp_path), server.url, archive.sha256]
    first = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / PART_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the first holds the lock once its download has begun
    second = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    waiting = second.stderr.readline()  # said while the first still holds the lock
    released.set()
    errors = [p.communicate(timeout=60)[1] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0]
    assert "Waiting" not in errors[0]
    assert f"Waiting for another svmtrain process (PID {first.pid})" in waiting
    assert str(tmp_path) in waiting
    assert len(server.gets) == 1


def test_a_lock_file_that_cannot_take_the_pid_does_not_stop_the_download(
    http_server, archive, tmp_path, monkeypatch
):
    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", full)  # the PID is only for another process's message
    server = http_server(archive.body)
    assert download(source_for(server, archive), tmp_path, **FAST).read_bytes() == archive.body


@pytest.mark.parametrize(
    "given, env, advice",
    [
        ({}, {"SVMTRAIN_DATA_SHA256": "0" * 64}, "SVMTRAIN_DATA_SHA256={got}"),
        ({"sha256": "0" * 64}, {}, "--sha256 {got}"),
    ],
)
def test_a_digest_mismatch_names_where_the_digest_came_from(
    http_server, archive, tmp_path, monkeypatch, given, env, advice
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server = http_server(archive.body)
    with pytest.raises(ChecksumError) as err:
        load_cifar10(tmp_path, server.url, **given, progress=False)
    message = str(err.value)
    assert advice.format(got=archive.sha256) in message
    other = "--sha256" if env else "SVMTRAIN_DATA_SHA256"
    assert other not in message
