"""`svmtrain data download` and `svmtrain data info` through Click: exit codes and messages."""

import json
import shutil
import sys

import pytest
from cli_helpers import assert_clean_failure, run

from svmtrain.data.cache import PART_NAME
from svmtrain.data.format import ARCHIVE_NAME
from svmtrain.errors import DataError
from svmtrain.progress import notify


@pytest.fixture
def served(http_server, tiny_archive):
    archive = tiny_archive(train_counts=(4, 4, 4, 4, 4), test_count=6)
    return archive, http_server(archive.body)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["data", "--help"], ["download", "info"]),
        (
            ["data", "download", "--help"],
            ["--data-dir", "--url", "--sha256", "--md5", "--quiet", "SVMTRAIN_DATA_URL"],
        ),
        (["data", "info", "--help"], ["--data-dir", "--json", "Never downloads"]),
    ],
)
def test_help(args, needles):
    result = run(*args)
    assert result.exit_code == 0
    for needle in needles:
        assert needle in result.output


def test_download_then_info(served, tmp_path):
    archive, server = served
    result = run(
        "data", "download", "--data-dir", str(tmp_path), "--url", server.url,
        "--sha256", archive.sha256, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "20 training and 6 test images" in result.stdout
    assert archive.sha256 in result.stdout

    result = run("data", "info", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"sha256          {archive.sha256} (not the official archive)" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()]
    for k, name in enumerate(archive.class_names):
        train, test = (archive.y_train == k).sum(), (archive.y_test == k).sum()
        assert [name, str(train), str(test)] in rows
    assert ["total", "20", "6"] in rows
    assert len(server.requests) == 1


def test_info_json(served, tmp_path):
    archive, server = served
    env = {"SVMTRAIN_DATA_DIR": str(tmp_path)}
    env |= {"SVMTRAIN_DATA_URL": server.url, "SVMTRAIN_DATA_SHA256": archive.sha256}
    assert run("data", "download", env=env).exit_code == 0
    result = run("data", "info", "--json", env={"SVMTRAIN_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["sha256"] == archive.sha256
    assert facts["splits"]["test"]["count"] == 6
    assert sum(facts["splits"]["train"]["per_class"].values()) == 20


def test_info_without_data_says_how_to_get_it(tmp_path):
    result = run("data", "info", "--data-dir", str(tmp_path / "nothing"))
    assert_clean_failure(result, 1, "No CIFAR-10 archive", "svmtrain data download")


def test_download_404(served, tmp_path):
    _, server = served
    url = server.base + "/nope.tar.gz"
    result = run("data", "download", "--data-dir", str(tmp_path), "--url", url)
    assert_clean_failure(result, 1, url, "HTTP 404")


def test_download_digest_mismatch(served, tmp_path):
    archive, server = served
    wrong = "f" * 64
    result = run(
        "data", "download", "--data-dir", str(tmp_path), "--url", server.url, "--sha256", wrong
    )
    assert_clean_failure(result, 1, wrong, archive.sha256, "--sha256")
    assert not (tmp_path / ARCHIVE_NAME).exists()


def test_download_malformed_digest(tmp_path):
    result = run("data", "download", "--data-dir", str(tmp_path), "--md5", "xyz")
    assert_clean_failure(result, 1, "md5 digest must be 32 hexadecimal digits")


def test_download_without_digest_warns_with_the_sha256(served, tmp_path):
    archive, server = served
    result = run("data", "download", "--data-dir", str(tmp_path), "--url", server.url)
    assert result.exit_code == 0, result.output
    assert f"Warning: No digest given for {server.url}" in result.stderr
    assert f"--sha256 {archive.sha256}" in result.stderr


def test_download_damaged_archive(http_server, tiny_archive, tmp_path):
    archive = tiny_archive(corrupt="wrong_size")
    server = http_server(archive.body)
    result = run(
        "data", "download", "--data-dir", str(tmp_path), "--url", server.url, "--md5", archive.md5
    )
    assert_clean_failure(result, 1, "data_batch_2.bin", f"rm {tmp_path / ARCHIVE_NAME}")


def test_download_into_an_unwritable_dir(tmp_path):
    (tmp_path / "file").write_text("a regular file, so nothing can be made below it")
    data_dir = tmp_path / "file" / "cache"
    result = run("data", "download", "--data-dir", str(data_dir))
    assert_clean_failure(result, 1, str(data_dir), "--data-dir", "SVMTRAIN_DATA_DIR")


def test_download_interrupted_exits_130_and_keeps_the_partial(http_server, tiny_archive, tmp_path):
    archive = tiny_archive(train_counts=(10,) * 5, test_count=10)
    part = tmp_path / PART_NAME
    server = http_server(
        archive.body,
        chunk=1 << 16,
        interrupt_after=1 << 16,
        interrupt_when=lambda: part.exists() and part.stat().st_size > 0,
    )
    result = run(
        "data", "download", "--data-dir", str(tmp_path), "--url", server.url,
        "--sha256", archive.sha256,
    )  # fmt: skip
    assert_clean_failure(result, 130, "Download interrupted", str(part), "resume")
    assert part.stat().st_size > 0
    assert not (tmp_path / ARCHIVE_NAME).exists()


def test_info_on_a_copied_cache_on_read_only_media(served, tmp_path, read_only_view):
    archive, server = served
    original = tmp_path / "original"
    result = run(
        "data", "download", "--data-dir", str(original), "--url", server.url,
        "--sha256", archive.sha256, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shutil.copytree(original, tmp_path / "copy")
    media = read_only_view(tmp_path / "copy")
    result = run("data", "info", "--data-dir", str(media))
    assert result.exit_code == 0, result.output
    assert archive.sha256 in result.stdout
    assert server.url in result.stdout


@pytest.mark.parametrize("command", [["data", "download"], ["gradcheck", "-n", "3"]])
def test_library_notices_are_plain_lines_on_stderr(monkeypatch, command):
    """A retried download or a locked data directory (a notice) reads as the library says it,
    in every command: no 'Warning:' prefix, no file and line."""

    def load(*args, **kwargs):
        for _ in range(2):
            notify("Downloading http://x/c.tar.gz: timed out; retrying in 2 s.")
        raise DataError("stop here")

    monkeypatch.setattr("svmtrain.experiments.common.load_cifar10", load)
    monkeypatch.setattr(sys.modules["svmtrain.cli.data"], "load_cifar10", load)
    result = run(*command)
    assert_clean_failure(result, 1, "stop here")
    line = "Downloading http://x/c.tar.gz: timed out; retrying in 2 s.\n"
    assert result.stderr.count(line) == 2  # each one, not once per place
    assert "Warning" not in result.stderr and "WARNING" not in result.stderr
