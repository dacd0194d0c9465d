"""svmtrain: train, sweep and gradient-check linear classifiers on CIFAR-10 with numpy."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("svmtrain")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
