"""Exercises on :mod:`segtutor.classical` (lesson 01).

Each exercise keeps its catalogue of wrong answers: functions written the way a
learner makes the mistake. The visible cases reject every one of them, and the
comparator names the mistake, using the ``_MISTAKES`` functions below (written
with the library and scikit-image, independently of the wrong answers).

One rule holds in every exercise, as in the library: a pixel equal to a
threshold belongs to the lower class (``image > t`` is the foreground).
"""

from collections import deque

import numpy as np

from ._core import Case, Exercise, WrongAnswer, register
from .compare import explain, label_map, mask, same_split


def _bimodal(rng, shape, dark, bright, spread, fraction, dtype):
    values = np.where(
        rng.random(shape) < fraction,
        rng.normal(bright, spread, shape),
        rng.normal(dark, spread, shape),
    )
    if dtype == np.uint8:
        return np.clip(np.round(values), 0, 255).astype(np.uint8)
    return np.clip(values, 0, 1).astype(dtype)


# -- Otsu ------------------------------------------------------------------------------------


def _otsu_cases(rng, hidden):
    if not hidden:
        two_level = np.full((8, 8), 40, dtype=np.uint8)
        two_level[2:6, 2:6] = 200
        return [
            Case("two grey levels", (two_level,)),
            Case("bimodal uint8 image", (_bimodal(rng, (48, 48), 70, 170, 20, 0.35, np.uint8),)),
            Case("float image in [0, 1]", (_bimodal(rng, (40, 40), 0.3, 0.7, 0.1, 0.5, np.float64),)),
            Case("few bright pixels", (_bimodal(rng, (48, 48), 60, 190, 12, 0.1, np.uint8),)),
        ]
    return [
        Case("random", (_bimodal(rng, (64, 64), 50, 140, 25, 0.2, np.uint8),)),
        Case("random", (_bimodal(rng, (33, 65), 100, 180, 10, 0.6, np.uint8),)),
        Case("random", (_bimodal(rng, (50, 50), 0.2, 0.5, 0.05, 0.3, np.float32),)),
    ]


def _curve(image, binning):
    """Histogram counts, bin centres and between-class variance of every split of ``image``.

    ``binning`` is ``"library"`` (:func:`segtutor.classical.histogram`: one bin per value of an
    integer image) or ``"numpy"`` (``np.histogram(image, bins=256)``, as the lesson suggests).
    """
    from segtutor import classical

    if binning == "library":
        counts, centers = classical.histogram(image)
    else:
        counts, edges = np.histogram(np.asarray(image, dtype=float), bins=256)
        centers = (edges[:-1] + edges[1:]) / 2
    return counts.astype(float), centers.astype(float), classical.between_class_variance(counts, centers)


def _best_bin_index(binning):
    return lambda image: float(np.argmax(_curve(image, binning)[2]))


def _worst_split(binning):
    def mistake(image):
        counts, centers, variance = _curve(image, binning)
        return float(centers[np.argmin(variance)])

    return mistake


def _unweighted_split(binning):
    def mistake(image):
        counts, centers, _ = _curve(image, binning)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean0 = np.cumsum(counts * centers) / np.cumsum(counts)
            mean1 = (np.cumsum((counts * centers)[::-1]) / np.cumsum(counts[::-1]))[::-1]
            gap = np.nan_to_num((mean0[:-1] - mean1[1:]) ** 2)
        return float(centers[np.argmax(gap)])

    return mistake


_OTSU_MISTAKES = (
    ("that is the mean of the image, not the best split: with more dark pixels than bright ones the "
     "mean sits inside the dark mode", lambda image: float(np.mean(image))),
    ("that is the median of the image, not the best split", lambda image: float(np.median(image))),
) + tuple(
    mistake
    for binning in ("numpy", "library")
    for mistake in (
        ("that looks like the index of the best bin: return the bin's value (its centre) instead",
         _best_bin_index(binning)),
        ("that split has the smallest between-class variance: Otsu's threshold has the largest",
         _worst_split(binning)),
        ("that split maximises (μ0 - μ1)² alone, which favours a tiny class: weigh it by w0 w1",
         _unweighted_split(binning)),
    )
)


def _otsu_by_hand(image, choose="max", weights=True, index=False):
    """Otsu's method as a learner writes it, with a switch for each mistake of the catalogue."""
    image = np.asarray(image, dtype=float)
    counts, edges = np.histogram(image, bins=256)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)[:-1]
    w1 = np.cumsum(counts[::-1])[::-1][1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        m0 = np.cumsum(counts * centers)[:-1] / w0
        m1 = (np.cumsum((counts * centers)[::-1]) / np.cumsum(counts[::-1]))[::-1][1:]
    score = np.nan_to_num((w0 * w1 if weights else 1) * (m0 - m1) ** 2)
    best = int(np.argmax(score) if choose == "max" else np.argmin(score))
    return float(best) if index else float(centers[best])


def _otsu_mean(image):
    return float(np.asarray(image, dtype=float).mean())


def _otsu_median(image):
    return float(np.median(image))


def _otsu_bin_index(image):
    return _otsu_by_hand(image, index=True)


def _otsu_argmin(image):
    return _otsu_by_hand(image, choose="min")


def _otsu_unweighted(image):
    return _otsu_by_hand(image, weights=False)


def _otsu_with_its_variance(image):
    return _otsu_by_hand(image), 1.0


# -- multi_threshold -------------------------------------------------------------------------


def _multi_threshold_cases(rng, hidden):
    if not hidden:
        ramp = np.arange(12, dtype=float).reshape(3, 4)
        levels = np.array([[12, 40, 41, 90], [91, 150, 151, 200], [40, 90, 150, 12]], dtype=np.uint8)
        return [
            Case("ramp with one threshold", (ramp, [5.5])),
            Case("ramp with two thresholds", (ramp, [3.0, 8.0])),
            Case("values equal to a threshold", (np.array([[1.0, 2.0], [3.0, 4.0]]), [2.0, 3.0])),
            Case("uint8 image, three integer thresholds", (levels, [40, 90, 150])),
        ]
    return [
        Case("random", (rng.integers(0, 256, (30, 30)).astype(np.uint8),
                        sorted(rng.choice(255, 2, replace=False).tolist()))),
        Case("random", (rng.random((20, 25)), [0.25, 0.5, 0.75])),
        Case("random", (rng.integers(0, 6, (9, 11)).astype(np.uint8), [1, 3, 4])),
    ]


_MULTI_THRESHOLD_MISTAKES = (
    ("pixels equal to a threshold went to the upper class; here a pixel equal to a threshold belongs to "
     "the class below it, as in Otsu's rule x <= t",
     lambda image, thresholds: np.digitize(image, thresholds).astype(np.int64)),
    ("your map has only classes 0 and 1: every threshold starts a new class",
     lambda image, thresholds: (np.asarray(image) > thresholds[0]).astype(np.int64)
     if len(thresholds) > 1 else None),
)


def _mt_ties_up(image, thresholds):
    return np.digitize(np.asarray(image), bins=np.asarray(thresholds))


def _mt_from_one(image, thresholds):
    image = np.asarray(image)
    labels = np.ones(image.shape, dtype=int)
    for t in thresholds:
        labels += image > t
    return labels


def _mt_float(image, thresholds):
    image = np.asarray(image)
    labels = np.zeros(image.shape)
    for t in thresholds:
        labels += image > t
    return labels


def _mt_reversed(image, thresholds):
    image = np.asarray(image)
    labels = np.zeros(image.shape, dtype=int)
    for t in thresholds:
        labels += image <= t
    return labels


def _mt_first_only(image, thresholds):
    return (np.asarray(image) > thresholds[0]).astype(int)


# -- region growing --------------------------------------------------------------------------


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
        coin = np.full((8, 8), 10, dtype=np.uint8)  # a bright coin on a dark uint8 background
        coin[2:6, 3:7] = 200
        steps = np.full((5, 5), 1.0)
        steps[1:4, 1:4] = 0.75  # exactly one tolerance away from the seed value 0.5
        steps[2, 2] = 0.5
        corner = np.zeros((6, 6))
        corner[0:2, 3:6] = 1.0
        corner[4, 4] = 1.0
        return [
            Case("square from its centre", (image, (3, 3), 0.5)),
            Case("background around the square", (image, (0, 0), 0.5)),
            Case("ring: the inside is not reached", (ring, (0, 0), 0.1)),
            Case("corners do not connect", (np.eye(5), (0, 0), 0.5)),
            Case("uint8 image, as in the lesson", (coin, (3, 4), 70)),
            Case("values exactly one tolerance away", (steps, (2, 2), 0.25)),
            Case("a slow ramp", (np.tile(np.arange(10) * 0.1, (4, 1)), (1, 0), 0.15)),
            Case("seeds are (row, col)", (corner, (0, 4), 0.5)),
        ]
    cases = []
    for size in (24, 40):
        image = _blocks(rng, size, 6)
        seed = tuple(int(v) for v in rng.integers(0, size, 2))
        cases.append(Case("random", (image, seed, 0.08)))
    image = rng.integers(0, 256, (20, 20)).astype(np.uint8) // 64 * 60
    cases.append(Case("random uint8", (image, tuple(int(v) for v in rng.integers(0, 20, 2)), 60)))
    return cases


def _connected_part(similar, seed):
    from segtutor import classical

    labels, _ = classical.label_components(similar, connectivity=1)
    return labels == labels[tuple(seed)]


def _wrapped(image, seed, tolerance):
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.integer):
        return None
    difference = image - image[tuple(seed)]  # in the image's own dtype: uint8 wraps around
    return _connected_part(np.abs(difference) <= tolerance, seed)


def _strict(image, seed, tolerance):
    image = np.asarray(image, dtype=float)
    return _connected_part(np.abs(image - image[tuple(seed)]) < tolerance, seed)


def _step_by_step(image, seed, tolerance):
    """Grow by comparing each pixel with the neighbour it is reached from (whole-array dilation)."""
    image = np.asarray(image, dtype=float)
    region = np.zeros(image.shape, dtype=bool)
    region[tuple(seed)] = True
    while True:
        grown = region.copy()
        for axis in (0, 1):
            for shift in (1, -1):
                neighbour_in = np.roll(region, shift, axis=axis)
                neighbour_value = np.roll(image, shift, axis=axis)
                edge = np.zeros(image.shape, dtype=bool)  # np.roll wraps: drop the wrapped border
                index = [slice(None)] * 2
                index[axis] = slice(0, 1) if shift == 1 else slice(-1, None)
                edge[tuple(index)] = True
                grown |= neighbour_in & ~edge & (np.abs(image - neighbour_value) <= tolerance)
        if np.array_equal(grown, region):
            return region
        region = grown


def _swapped_seed(image, seed, tolerance):
    from segtutor import classical

    row, col = seed
    if not (0 <= col < np.shape(image)[0] and 0 <= row < np.shape(image)[1]):
        return None
    return classical.region_grow(image, (col, row), tolerance)


def _eight_connected(image, seed, tolerance):
    from skimage.segmentation import flood

    return flood(np.asarray(image, dtype=float), tuple(seed), connectivity=2, tolerance=tolerance)


_REGION_GROW_MISTAKES = (
    ("your region also grows through pixels that touch it only at a corner (diagonally): only the "
     "4 neighbours up, down, left and right count", _eight_connected),
    ("the differences were computed in uint8 and wrapped around (10 - 200 is 66 in uint8): convert "
     "the image to int or float before subtracting", _wrapped),
    ("pixels exactly `tolerance` away from the seed value belong to the region (<=, not <)", _strict),
    ("you compared each pixel with the neighbour it was reached from; compare it with the seed's value",
     _step_by_step),
    ("your region grew from (col, row): a seed is (row, col)", _swapped_seed),
    ("your mask holds every similar pixel of the image, also those not connected to the seed",
     lambda image, seed, tolerance: np.abs(np.asarray(image, dtype=float)
                                           - float(np.asarray(image)[tuple(seed)])) <= tolerance),
)


def _grow(image, seed, tolerance, *, neighbours=((-1, 0), (1, 0), (0, -1), (0, 1)), cast=float,
          strict=False, from_neighbour=False, swap=False, dtype=bool):
    """Region growing with a queue, as a learner writes it; keyword switches make the mistakes."""
    image = np.asarray(image) if cast is None else np.asarray(image, dtype=cast)
    r0, c0 = (int(seed[1]), int(seed[0])) if swap else (int(seed[0]), int(seed[1]))
    region = np.zeros(image.shape, dtype=dtype)
    region[r0, c0] = True
    queue = deque([(r0, c0)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in neighbours:
            rr, cc = r + dr, c + dc
            if not (0 <= rr < image.shape[0] and 0 <= cc < image.shape[1]) or region[rr, cc]:
                continue
            reference = image[r, c] if from_neighbour else image[r0, c0]
            difference = abs(image[rr, cc] - reference)
            if difference < tolerance or (difference == tolerance and not strict):
                region[rr, cc] = True
                queue.append((rr, cc))
    return region


def _grow_8(image, seed, tolerance):
    return _grow(image, seed, tolerance, neighbours=[(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                                                     if (dr, dc) != (0, 0)])


def _grow_uint8(image, seed, tolerance):
    with np.errstate(over="ignore"):
        return _grow(image, seed, tolerance, cast=None)


def _grow_strict(image, seed, tolerance):
    return _grow(image, seed, tolerance, strict=True)


def _grow_from_neighbour(image, seed, tolerance):
    return _grow(image, seed, tolerance, from_neighbour=True)


def _grow_xy(image, seed, tolerance):
    return _grow(image, seed, tolerance, swap=True)


def _grow_ints(image, seed, tolerance):
    return _grow(image, seed, tolerance, dtype=np.uint8)


def _grow_everywhere(image, seed, tolerance):
    image = np.asarray(image, dtype=float)
    return np.abs(image - image[seed[0], seed[1]]) <= tolerance


register(Exercise(
    id="classical.otsu_threshold",
    title="Otsu's threshold",
    reference="segtutor.classical.otsu_threshold",
    make_cases=_otsu_cases,
    compare=explain(same_split(), *_OTSU_MISTAKES, match=same_split(exact_split=True)),
    hint=("try every split of the histogram: for each one you need the weights w0, w1 and the means "
          "mu0, mu1 of the two classes, and you keep the split where w0 w1 (mu0 - mu1)^2 is largest.",
          "cumulative sums (np.cumsum) of the counts and of counts * bin centres give w and mu for every "
          "split at once; np.argmax finds the best one. Return a value in the image's units, not an index."),
    wrong_answers=(
        WrongAnswer("returns the image mean", _otsu_mean, r"expected a threshold near .*mean of the image"
                    r"|mean of the image.*expected a threshold near"),
        WrongAnswer("returns the median", _otsu_median, r"median"),
        WrongAnswer("returns the index of the best bin", _otsu_bin_index, r"index of the best bin"),
        WrongAnswer("takes the smallest between-class variance", _otsu_argmin, r"smallest between-class"),
        WrongAnswer("forgets the weights w0 w1", _otsu_unweighted, r"weigh it by w0 w1"),
        WrongAnswer("returns (threshold, variance)", _otsu_with_its_variance, r"single threshold value"),
    ),
))

register(Exercise(
    id="classical.multi_threshold",
    title="label map from several thresholds",
    reference="segtutor.classical.multi_threshold",
    make_cases=_multi_threshold_cases,
    compare=explain(label_map, *_MULTI_THRESHOLD_MISTAKES),
    hint=("a pixel's class is the number of thresholds it is above (strictly: a pixel equal to a "
          "threshold stays in the class below).",
          "compare the image with each threshold and add up the booleans, or look at np.digitize and "
          "what its `right` argument does at a value equal to a bin edge; return integers."),
    wrong_answers=(
        WrongAnswer("a pixel equal to a threshold goes up", _mt_ties_up, r"equal to a threshold went to the upper"),
        WrongAnswer("classes numbered from 1", _mt_from_one, r"reference's \+ 1"),
        WrongAnswer("float labels", _mt_float, r"integer labels"),
        WrongAnswer("classes in reverse order", _mt_reversed, r"other way"),
        WrongAnswer("only the first threshold", _mt_first_only, r"only classes 0 and 1"),
    ),
))

register(Exercise(
    id="classical.region_grow",
    title="region growing from a seed",
    reference="segtutor.classical.region_grow",
    make_cases=_region_grow_cases,
    compare=explain(mask, *_REGION_GROW_MISTAKES),
    hint=("start from the seed and keep adding neighbours (up, down, left, right) whose value is close "
          "enough to the seed's value; a pixel joins once and is never visited twice.",
          "keep a queue (collections.deque) of pixels to visit and a boolean mask of the region; compute "
          "differences in int or float, never in uint8."),
    wrong_answers=(
        WrongAnswer("8-connectivity", _grow_8, r"diagonally"),
        WrongAnswer("abs(a - b) on uint8 wraps around", _grow_uint8, r"wrapped around"),
        WrongAnswer("strict < tolerance", _grow_strict, r"exactly `tolerance` away"),
        WrongAnswer("compares with the neighbour, not the seed", _grow_from_neighbour, r"seed's value"),
        WrongAnswer("seed read as (x, y)", _grow_xy, r"\(row, col\)"),
        WrongAnswer("0/1 integers instead of booleans", _grow_ints, r"dtype bool"),
        WrongAnswer("every similar pixel, connected or not", _grow_everywhere, r"not connected to the seed"),
    ),
))
