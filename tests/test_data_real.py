"""The real CIFAR-10 archive (the mirror, or the user's own: SVMTRAIN_TEST_ARCHIVE), fetched
from 127.0.0.1 through the user's own code path and checked against the archive's own bytes,
read here with gzip and tarfile alone."""

import gzip
import tarfile

import numpy as np
import pytest

from svmtrain.data import dataset_info, load_cifar10
from svmtrain.data.format import RECORD_BYTES, TEST_MEMBER, TRAIN_MEMBERS
from svmtrain.data.source import OFFICIAL_SHA256

pytestmark = pytest.mark.slow

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(scope="module")
def labels(mirror_archive) -> dict[str, np.ndarray]:
    """The label bytes of every record of the archive, "train" (its five batches in order) and
    "test", read straight from the tar: the counts the tests expect, never written down."""
    found: dict[str, list[bytes]] = {"train": [], "test": []}
    with gzip.open(mirror_archive) as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        for member in tar:
            if member.name in TRAIN_MEMBERS or member.name == TEST_MEMBER:
                body = tar.extractfile(member).read()
                split = "test" if member.name == TEST_MEMBER else "train"
                found[split].append((member.name, body[::RECORD_BYTES]))
    return {
        split: np.frombuffer(b"".join(body for _, body in sorted(parts)), dtype=np.uint8)
        for split, parts in found.items()
    }


@pytest.fixture(scope="module")
def dataset(cifar_data_dir):
    # the fixture's server is gone: this load is answered from the cache or fails
    return load_cifar10(
        cifar_data_dir.data_dir, cifar_data_dir.url, cifar_data_dir.sha256, progress=False
    )


def test_counts_shapes_and_labels(dataset, cifar_data_dir, labels):
    n, m = len(labels["train"]), len(labels["test"])
    assert n >= 10_000 and m >= 1_000  # a real archive, not an empty one
    assert dataset.x_train.shape == (n, 3072)
    assert dataset.y_train.shape == (n,)
    assert dataset.x_test.shape == (m, 3072)
    assert dataset.y_test.shape == (m,)
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        assert array.dtype == np.uint8
    np.testing.assert_array_equal(dataset.y_train, labels["train"])
    np.testing.assert_array_equal(dataset.y_test, labels["test"])
    assert dataset.class_names == CLASSES
    assert dataset.sha256 == cifar_data_dir.sha256


def test_records_match_the_archive_bytes(dataset, mirror_archive):
    # an independent reader: the last test record, straight from the tar
    with gzip.open(mirror_archive) as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        for member in tar:
            if member.name == TEST_MEMBER:
                last = tar.extractfile(member).read()[-3073:]
                break
    assert dataset.y_test[-1] == last[0]
    assert dataset.x_test[-1].tobytes() == last[1:]


def test_info_reports_the_archive(cifar_data_dir, labels):
    info = dataset_info(cifar_data_dir.data_dir)
    assert info["sha256"] == cifar_data_dir.sha256
    assert info["official"] is (cifar_data_dir.sha256 == OFFICIAL_SHA256)
    per_class = np.bincount(labels["train"], minlength=10).tolist()
    assert info["splits"]["train"]["per_class"] == dict(zip(CLASSES, per_class, strict=True))
    assert info["splits"]["test"]["count"] == len(labels["test"])
