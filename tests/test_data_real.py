"""The real CIFAR-10 mirror, fetched from 127.0.0.1 through the user's own code path."""

import gzip
import tarfile

import numpy as np
import pytest

from svmtrain.data import dataset_info, load_cifar10
from svmtrain.data.format import TEST_MEMBER

pytestmark = pytest.mark.slow

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(scope="module")
def dataset(cifar_data_dir):
    # the fixture's server is gone: this load is answered from the cache or fails
    return load_cifar10(
        cifar_data_dir.data_dir, cifar_data_dir.url, cifar_data_dir.sha256, progress=False
    )


def test_counts_shapes_and_labels(dataset, cifar_data_dir):
    assert dataset.x_train.shape == (30_000, 3072)
    assert dataset.y_train.shape == (30_000,)
    assert dataset.x_test.shape == (10_000, 3072)
    assert dataset.y_test.shape == (10_000,)
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        assert array.dtype == np.uint8
    assert np.bincount(dataset.y_train, minlength=10).tolist() == [3_000] * 10
    assert np.bincount(dataset.y_test, minlength=10).tolist() == [1_000] * 10
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


def test_info_reports_the_mirror(cifar_data_dir):
    info = dataset_info(cifar_data_dir.data_dir)
    assert info["sha256"] == cifar_data_dir.sha256
    assert info["official"] is False
    assert info["splits"]["train"]["per_class"] == dict.fromkeys(CLASSES, 3_000)
    assert info["splits"]["test"]["count"] == 10_000
