"""The math: losses, their gradients and finite differences, optimisers, metrics,
pixel scalings; and how many threads numpy's BLAS runs it on (:mod:`svmtrain.core.blas`).

Pure functions on numpy arrays. Nothing here reads or writes files, and nothing here imports
another part of svmtrain but :mod:`svmtrain.errors`.
"""
