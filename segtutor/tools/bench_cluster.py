"""Benchmark: segtutor's NumPy k-means against scikit-learn's ``KMeans``.

Run ``python -m segtutor._bench_cluster``. Both sides cluster the RGB colours
of ``skimage.data.astronaut()`` (downsampled by ``step``) with the same k,
``n_init`` and seeds; the report gives the inertia ratio (ours / sklearn's,
lower is better, 1.0 is a tie) and the best-of-``repeat`` wall time of each.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["bench_cluster"]


def _best_time(fn, repeat):
    best = np.inf
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def bench_cluster(k=4, n_inits=(1, 4), seeds=(0, 1, 2), step=4, repeat=3, sklearn_threads=None) -> dict:
    """Compare :func:`segtutor.cluster.kmeans` with ``sklearn.cluster.KMeans``.

    Parameters
    ----------
    k : int
        Number of clusters.
    n_inits : tuple of int
        ``n_init`` values to try (the same for both implementations).
    seeds : tuple of int
        Seeds (``seed=`` for ours, ``random_state=`` for sklearn).
    step : int
        Downsampling of the 512 x 512 astronaut (4 gives 128 x 128 = 16384 colours).
    repeat : int
        Each fit is timed ``repeat`` times and the fastest kept.
    sklearn_threads : int, optional
        Limit scikit-learn's OpenMP threads (``threadpoolctl``); ``None`` keeps
        its default. On a small or busy machine its threads can cost more than
        they save on 16k samples; ours is single-threaded NumPy.

    Returns
    -------
    dict
        ``{"n_samples", "k", "seeds", "sklearn_threads", "runs": {n_init: {...}}}`` where each run
        holds per-seed lists ``ratio``, ``ours_inertia``, ``sklearn_inertia``,
        ``ours_s``, ``sklearn_s`` and the summaries ``max_ratio``,
        ``geomean_ratio``, ``ours_median_s``, ``sklearn_median_s``.
    """
    from skimage import data
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from .cluster import kmeans, pixel_features

    X = pixel_features(data.astronaut()[::step, ::step])
    report = {
        "n_samples": int(X.shape[0]),
        "k": k,
        "seeds": list(seeds),
        "sklearn_threads": sklearn_threads,
        "runs": {},
    }

    def fit_sklearn(n_init, seed):
        with threadpool_limits(sklearn_threads):
            return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)

    for n_init in n_inits:
        run = {key: [] for key in ("ours_inertia", "sklearn_inertia", "ratio", "ours_s", "sklearn_s")}
        for seed in seeds:
            ours, t_ours = _best_time(lambda: kmeans(X, k, seed=seed, n_init=n_init), repeat)
            theirs, t_theirs = _best_time(lambda: fit_sklearn(n_init, seed), repeat)
            run["ours_inertia"].append(float(ours.inertia))
            run["sklearn_inertia"].append(float(theirs.inertia_))
            run["ratio"].append(float(ours.inertia / theirs.inertia_))
            run["ours_s"].append(t_ours)
            run["sklearn_s"].append(t_theirs)
        ratios = np.array(run["ratio"])
        run["max_ratio"] = float(ratios.max())
        run["geomean_ratio"] = float(np.exp(np.log(ratios).mean()))
        run["ours_median_s"] = float(np.median(run["ours_s"]))
        run["sklearn_median_s"] = float(np.median(run["sklearn_s"]))
        report["runs"][n_init] = run
    return report


if __name__ == "__main__":  # pragma: no cover
    import sys

    threads = int(sys.argv[1]) if len(sys.argv) > 1 else None
    result = bench_cluster(sklearn_threads=threads)
    print(
        f"astronaut colours: {result['n_samples']} samples, k={result['k']}, "
        f"seeds {result['seeds']}, sklearn threads {threads or 'default'}"
    )
    for n_init, run in result["runs"].items():
        ratios = ", ".join(f"{r:.4f}" for r in run["ratio"])
        print(
            f"n_init={n_init}: inertia ratio ours/sklearn [{ratios}] "
            f"(geomean {run['geomean_ratio']:.4f}); time ours {run['ours_median_s'] * 1e3:.1f} ms, "
            f"sklearn {run['sklearn_median_s'] * 1e3:.1f} ms"
        )
