"""CIFAR-10 on disk and in memory: download, verify, cache, and the preprocessing of pixels."""
