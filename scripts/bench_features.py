"""Feature extraction throughput: images/s and GFLOP/s against this machine's product rate.

For kmeans, the FLOPs counted are those of the two matrix products per image (whitening,
patches x 108 x 108, and distances, patches x 110 x K), which are most of the arithmetic; the
product rate is the same distance product timed alone on one image's patches, one BLAS thread,
in turns with the extraction (a round of each, then the next round, medians over rounds), so
"share of the product rate" says how much the elementwise work and the threading cost, and a
load that comes and goes weighs on both alike.
Random images and a random state: the speed does not depend on what the pixels are.

    python scripts/bench_features.py [--centroids 1600] [--images 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from svmtrain.core.blas import limited_threads
from svmtrain.features.base import worker_count
from svmtrain.features.hog_color import HogColorFeatures
from svmtrain.features.kmeans import KMeansFeatures


def _median_seconds(run, repeats: int) -> float:
    run()  # warm: caches, thread pools, page faults
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def kmeans_extractor(k: int, rng: np.random.Generator) -> KMeansFeatures:
    extractor = KMeansFeatures({"num_centroids": k})
    d = extractor.settings.patch_dim
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    state = {
        "whitening_mean": rng.standard_normal(d).astype(np.float32) * 0.1,
        "whitening": (q * rng.uniform(0.5, 3.0, d)) @ q.T,
        "centroids": rng.standard_normal((k, d)).astype(np.float32),
    }
    return KMeansFeatures.from_state(extractor.settings_dict(), state)


def bench_kmeans(k: int, n: int, repeats: int, rng: np.random.Generator) -> dict:
    """Extraction of n images on 1 and on every core, and the distance product alone on one
    image's patches n times, timed in turns (round by round) so that a load that comes and
    goes weighs on all of them alike; medians over the rounds."""
    extractor = kmeans_extractor(k, rng)
    images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    s = extractor.settings
    patches = s.positions**2
    flops = 2.0 * patches * (s.patch_dim * s.patch_dim + (s.patch_dim + 2) * k)
    lifted = rng.standard_normal((patches, s.patch_dim + 2)).astype(np.float32)
    augmented = rng.standard_normal((s.patch_dim + 2, k)).astype(np.float32)

    def product() -> None:
        for _ in range(n):
            lifted @ augmented

    runs = {"product": product}
    for workers in sorted({1, worker_count()}):
        runs[workers] = lambda w=workers: extractor.transform(images, workers=w)
    with limited_threads(1):  # as the jobs run it: the workers make the products
        seconds = _median_seconds_in_turns(runs, repeats)
    product_rate = 2.0 * patches * (s.patch_dim + 2) * k * n / seconds.pop("product")
    result = {
        "centroids": k,
        "images": n,
        "flop_per_image": flops,
        "product_gflops_1_thread": product_rate / 1e9,
    }
    for workers, took in seconds.items():
        rate = n / took
        result[f"workers_{workers}"] = {
            "images_per_second": rate,
            "gflops": rate * flops / 1e9,
            "share_of_product_rate": rate * flops / (product_rate * workers),
        }
    return result


def _median_seconds_in_turns(runs: dict, repeats: int) -> dict:
    """{key: median seconds} of each callable, run once each per round, after a warm round."""
    times: dict = {key: [] for key in runs}
    for round_ in range(repeats + 1):
        for key, run in runs.items():
            started = time.perf_counter()
            run()
            if round_:  # the first round warms caches, thread pools and page faults
                times[key].append(time.perf_counter() - started)
    return {key: statistics.median(t) for key, t in times.items()}


def bench_hog(n: int, repeats: int, rng: np.random.Generator) -> dict:
    extractor = HogColorFeatures()
    extractor.fit(rng.integers(0, 256, (1, 3072), dtype=np.uint8), rng)
    images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    result = {"images": n}
    for workers in sorted({1, worker_count()}):
        seconds = _median_seconds(lambda w=workers: extractor.transform(images, workers=w), repeats)
        result[f"workers_{workers}"] = {"images_per_second": n / seconds}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centroids", type=int, default=1600)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    report = {
        "kmeans": bench_kmeans(args.centroids, args.images, args.repeats, rng),
        "hog_color": bench_hog(8 * args.images, args.repeats, rng),
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "cores": worker_count(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    km = report["kmeans"]
    print(
        f"## Feature extraction (load average {load_before[0]:.2f} at start, "
        f"{report['load_average']['end'][0]:.2f} at end; {report['cores']} cores)\n"
    )
    print(
        f"kmeans, K = {km['centroids']}, {km['flop_per_image'] / 1e6:.0f} MFLOP per image; "
        f"distance product alone: {km['product_gflops_1_thread']:.1f} GFLOP/s on 1 thread\n"
    )
    print("| extractor | threads | images/s | GFLOP/s | share of product rate |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key, row in km.items():
        if key.startswith("workers_"):
            print(
                f"| kmeans | {key[8:]} | {row['images_per_second']:.1f} | {row['gflops']:.1f} "
                f"| {row['share_of_product_rate']:.0%} |"
            )
    for key, row in report["hog_color"].items():
        if key.startswith("workers_"):
            print(f"| hog_color | {key[8:]} | {row['images_per_second']:.0f} | | |")


if __name__ == "__main__":
    main()
