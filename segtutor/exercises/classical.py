"""Exercises on :mod:`segtutor.classical` (lesson 01)."""

import numpy as np

from ._core import Case, Exercise, register
from .compare import exact, same_split


def _bimodal(rng, shape, dark, bright, spread, fraction, dtype):
    values = np.where(
        rng.random(shape) < fraction,
        rng.normal(bright, spread, shape),
        rng.normal(dark, spread, shape),
    )
    if dtype == np.uint8:
        return np.clip(np.round(values), 0, 255).astype(np.uint8)
    return np.clip(values, 0, 1).astype(dtype)


def _otsu_cases(rng, hidden):
    if not hidden:
        two_level = np.full((8, 8), 40, dtype=np.uint8)
        two_level[2:6, 2:6] = 200
        return [
            Case("two grey levels", (two_level,)),
            Case("bimodal uint8 image", (_bimodal(rng, (48, 48), 70, 170, 20, 0.35, np.uint8),)),
            Case("float image in [0, 1]", (_bimodal(rng, (40, 40), 0.3, 0.7, 0.1, 0.5, np.float64),)),
        ]
    return [
        Case("random", (_bimodal(rng, (64, 64), 50, 140, 25, 0.2, np.uint8),)),
        Case("random", (_bimodal(rng, (33, 65), 100, 180, 10, 0.6, np.uint8),)),
        Case("random", (_bimodal(rng, (50, 50), 0.2, 0.5, 0.05, 0.3, np.float32),)),
    ]


def _multi_threshold_cases(rng, hidden):
    if not hidden:
        ramp = np.arange(12, dtype=float).reshape(3, 4)
        return [
            Case("ramp with one threshold", (ramp, [5.5])),
            Case("ramp with two thresholds", (ramp, [3.0, 8.0])),
            Case("values equal to a threshold", (np.array([[1.0, 2.0], [3.0, 4.0]]), [2.0, 3.0])),
        ]
    return [
        Case("random", (rng.integers(0, 256, (30, 30)).astype(np.uint8), sorted(rng.choice(255, 2, replace=False).tolist()))),
        Case("random", (rng.random((20, 25)), [0.25, 0.5, 0.75])),
    ]


def _blocks(rng, size, levels):
    image = np.zeros((size, size))
    for _ in range(levels):
        r, c = rng.integers(0, size - 3, 2)
        h, w = rng.integers(2, size // 2, 2)
        image[r:r + h, c:c + w] = rng.integers(1, 6) * 0.15
    return image + rng.normal(0, 0.01, image.shape)


def _region_grow_cases(rng, hidden):
    if not hidden:
        image = np.zeros((9, 9))
        image[2:6, 2:6] = 1.0
        image[7, 7] = 1.0  # bright, but not connected to the square
        ring = np.ones((7, 7))
        ring[2:5, 2:5] = 0.0
        return [
            Case("square from its centre", (image, (3, 3), 0.5)),
            Case("background around the square", (image, (0, 0), 0.5)),
            Case("ring: the inside is not reached", (ring, (0, 0), 0.1)),
        ]
    cases = []
    for size in (24, 40):
        image = _blocks(rng, size, 6)
        seed = tuple(int(v) for v in rng.integers(0, size, 2))
        cases.append(Case("random", (image, seed, 0.08)))
    return cases


register(Exercise(
    id="classical.otsu_threshold",
    title="Otsu's threshold",
    reference="segtutor.classical.otsu_threshold",
    make_cases=_otsu_cases,
    compare=same_split(),
    hint="build the histogram, then for every split compute w0*w1*(mu0-mu1)**2 and take the best; "
         "a threshold whose split is as good as the reference's (same between-class variance) is accepted.",
))

register(Exercise(
    id="classical.multi_threshold",
    title="label map from several thresholds",
    reference="segtutor.classical.multi_threshold",
    make_cases=_multi_threshold_cases,
    compare=exact,
    hint="class i holds the pixels between threshold i-1 and threshold i; np.digitize does exactly this.",
))

register(Exercise(
    id="classical.region_grow",
    title="region growing from a seed",
    reference="segtutor.classical.region_grow",
    make_cases=_region_grow_cases,
    compare=exact,
    hint="keep a queue of pixels to visit; add a 4-neighbour when |value - seed value| <= tolerance "
         "and it is not yet in the region.",
))
