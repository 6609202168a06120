"""Timings of :mod:`segtutor.classical` against scikit-image.

Used by ``segtutor bench``; runs in a few seconds.
"""

from __future__ import annotations

import timeit

import numpy as np

__all__ = ["bench_classical"]


def _best(func, number, repeat):
    """Best time of one call, in seconds, over ``repeat`` runs of ``number`` calls."""
    func()  # warm up (imports, caches)
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number


def bench_classical(size: int = 512, repeat: int = 5, seed: int = 0) -> dict:
    """Time Otsu and connected-component labelling, ours vs scikit-image.

    Parameters
    ----------
    size : int, optional
        Side of the square test images.
    repeat : int, optional
        Number of timing runs; the best is kept.
    seed : int, optional
        Seed of the random test images.

    Returns
    -------
    dict
        For each case (``otsu_uint8``, ``otsu_float64``, ``label_conn1``,
        ``label_conn2``), ``<case>_ours_s`` and ``<case>_skimage_s`` (seconds
        per call, best of ``repeat``) and ``<case>_ratio`` (ours / skimage;
        below 1 means faster), plus ``size`` and ``numbers_agree`` (True if
        both libraries gave identical results on every case).
    """
    from skimage import filters, measure

    from .classical import label_components, otsu_threshold

    rng = np.random.default_rng(seed)
    gray8 = rng.integers(0, 256, (size, size)).astype(np.uint8)
    gray_float = rng.random((size, size))
    mask = rng.random((size, size)) < 0.55

    cases = {
        "otsu_uint8": (lambda: otsu_threshold(gray8), lambda: filters.threshold_otsu(gray8), 20),
        "otsu_float64": (lambda: otsu_threshold(gray_float),
                         lambda: filters.threshold_otsu(gray_float), 10),
        "label_conn1": (lambda: label_components(mask, 1),
                        lambda: measure.label(mask, connectivity=1, return_num=True), 2),
        "label_conn2": (lambda: label_components(mask, 2),
                        lambda: measure.label(mask, connectivity=2, return_num=True), 2),
    }
    result: dict = {"size": size}
    agree = True
    for name, (ours, theirs, number) in cases.items():
        a, b = ours(), theirs()
        if name.startswith("otsu"):
            agree &= float(a) == float(b)
        else:
            agree &= bool(a[1] == b[1] and np.array_equal(a[0], b[0]))
        t_ours = _best(ours, number, repeat)
        t_theirs = _best(theirs, number, repeat)
        result[f"{name}_ours_s"] = t_ours
        result[f"{name}_skimage_s"] = t_theirs
        result[f"{name}_ratio"] = t_ours / t_theirs
    result["numbers_agree"] = bool(agree)
    return result


if __name__ == "__main__":  # pragma: no cover
    for key, value in bench_classical().items():
        print(f"{key:28s} {value}")
