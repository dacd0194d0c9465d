"""svmtrain: train, sweep and gradient-check linear classifiers on CIFAR-10 with numpy."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("svmtrain")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"


# --- The Python API ------------------------------------------------------------------------
# What a notebook needs, importable from ``svmtrain`` itself. Each name is imported on first
# use (PEP 562), so ``import svmtrain`` stays light (no numpy, tqdm or requests until needed).
#
#     import svmtrain
#     cfg = svmtrain.load_config("default")  # shipped name or path; None: notes
#     result = svmtrain.fit(cfg, out="runs/try")     # result.summary["test_acc"]
#     report = svmtrain.evaluate("runs/try/weights.npz")
#     model = svmtrain.LinearModel.load("runs/try/weights.npz")
#     model.predict(images)                          # raw uint8 images -> class indices
#     splits = svmtrain.load_splits(cfg)             # X (N, 3072) uint8 pixels, y (N,) per split
#     sweep = svmtrain.run_sweep(cfg, num_examples=500); print(sweep.text())
#     land = svmtrain.run_landscape(cfg, num_examples=100); land.plot("landscape.png")
#     found = svmtrain.search_hyperparameters("quick", lr="1e-7,1e-6", epochs=2)
#     print(found.text())                            # found.document(): results.json

_API = {
    "load_config": "svmtrain.config",
    "load_cifar10": "svmtrain.data",
    "load_splits": "svmtrain.experiments.common",
    "fit": "svmtrain.experiments.fit",
    "evaluate": "svmtrain.experiments.evaluate",
    "LinearModel": "svmtrain.model",
    "check_gradient": "svmtrain.core.gradcheck",
    "make_problem": "svmtrain.experiments.gradcheck",
    "run_gradcheck": "svmtrain.experiments.gradcheck",
    "run_sweep": "svmtrain.experiments.sweep",
    "run_landscape": "svmtrain.experiments.landscape",
    "search_hyperparameters": "svmtrain.experiments.search",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'svmtrain' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
