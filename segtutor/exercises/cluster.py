"""Exercises on :mod:`segtutor.cluster` (lesson 02).

Each exercise keeps its catalogue of wrong answers: functions written the way a
learner makes the mistake. The visible cases reject every one of them, and the
comparator names the mistake, using the ``_MISTAKES`` functions below (written
with the library, independently of the wrong answers).
"""

import numpy as np

from ._core import Case, Exercise, WrongAnswer, register
from .compare import close, explain, label_map


def _points(rng, n, d, k):
    centers = rng.normal(0, 3, (k, d))
    X = centers[rng.integers(0, k, n)] + rng.normal(0, 0.5, (n, d))
    return X, centers + rng.normal(0, 0.3, (k, d))


# -- assign ----------------------------------------------------------------------------------


def _assign_cases(rng, hidden):
    if not hidden:
        X = np.array([[0.0, 0.0], [0.9, 0.1], [5.0, 5.0], [4.0, 6.0], [0.2, 4.8]])
        centers = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]])
        X3, c3 = _points(rng, 40, 3, 4)
        return [
            Case("five 2-D points, three centres", (X, centers)),
            Case("one centre", (X, centers[:1])),
            Case("40 colours, four centres", (X3, c3)),
            Case("a point equally far from two centres", (np.array([[1.0, 1.0], [0.0, 0.2], [2.0, 1.8]]),
                                                          np.array([[0.0, 0.0], [2.0, 2.0]]))),
            Case("straight-line distance, not city-block",
                 (np.array([[0.0, 0.0], [3.0, 3.0]]), np.array([[1.5, 1.5], [0.0, 2.5]]))),
        ]
    return [Case("random", _points(rng, n, d, k)) for n, d, k in [(200, 3, 5), (50, 5, 2), (7, 1, 3)]]


def _distances(X, centers, power=2):
    X, centers = np.asarray(X, float), np.asarray(centers, float)
    return (np.abs(X[:, None, :] - centers[None, :, :]) ** power).sum(axis=2)


def _last_of_ties(X, centers):
    d = _distances(X, centers)
    return (d.shape[1] - 1 - np.argmin(d[:, ::-1], axis=1)).astype(np.int64)


_ASSIGN_MISTAKES = (
    ("a point equally far from two centres goes to the one with the lower index", _last_of_ties),
    ("each point went to its farthest centre: take the nearest",
     lambda X, centers: np.argmax(_distances(X, centers), axis=1)),
    ("that is the city-block (L1) distance |dx| + |dy|; use the squared straight-line distance",
     lambda X, centers: np.argmin(_distances(X, centers, power=1), axis=1)),
)


def _assign_by_hand(X, centers, *, axis=1, pick=np.argmin, power=2, dtype=None):
    X, centers = np.asarray(X, float), np.asarray(centers, float)
    distances = (np.abs(X[:, None, :] - centers[None, :, :]) ** power).sum(axis=2)
    labels = pick(distances, axis=axis)
    return labels if dtype is None else labels.astype(dtype)


def _assign_float(X, centers):
    return _assign_by_hand(X, centers, dtype=float)


def _assign_farthest(X, centers):
    return _assign_by_hand(X, centers, pick=np.argmax)


def _assign_wrong_axis(X, centers):
    return _assign_by_hand(X, centers, axis=0)


def _assign_l1(X, centers):
    return _assign_by_hand(X, centers, power=1)


def _assign_last_tie(X, centers):
    X, centers = np.asarray(X, float), np.asarray(centers, float)
    labels = np.zeros(len(X), dtype=int)
    for i, x in enumerate(X):
        best = np.inf
        for j, c in enumerate(centers):
            d = ((x - c) ** 2).sum()
            if d <= best:  # '<=' lets a later centre win a tie
                best, labels[i] = d, j
    return labels


def _assign_distance_matrix(X, centers):
    X, centers = np.asarray(X, float), np.asarray(centers, float)
    return ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)


def _assign_shape_reason(expected, got, case=None):
    """``label_map``, plus what a result of the wrong shape suggests."""
    reason = label_map(expected, got, case)
    if reason is None or case is None:
        return reason
    shape, k = np.shape(got), len(case.args[1])
    if len(expected) != k and shape == (k,):
        return ("one label per centre instead of one per point: the minimum went over the points axis "
                f"(or X and centers were swapped); {reason}")
    if shape == (len(expected), k):
        return f"that looks like the ({len(expected)}, {k}) array of distances: keep the index of the smallest in each row; {reason}"
    return reason


# -- update ----------------------------------------------------------------------------------


def _update_cases(rng, hidden):
    if not hidden:
        X = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]])
        return [
            Case("two clusters", (X, np.array([0, 0, 1, 1]), 2)),
            Case("one point per cluster", (X, np.array([0, 1, 2, 3]), 4)),
            Case("empty cluster keeps its previous centre",
                 (X, np.array([0, 0, 2, 2]), 3), {"previous": np.array([[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]])}),
            Case("integer points: a mean need not be an integer",
                 (np.array([[0, 0], [1, 0], [4, 4], [5, 4]]), np.array([0, 0, 1, 1]), 2),
                 {"previous": np.array([[0, 0], [9, 9]])}),
        ]
    cases = []
    for n, d, k in [(100, 3, 4), (30, 2, 6)]:
        X = rng.normal(size=(n, d))
        labels = rng.integers(0, k - 1, n)  # the last cluster is always empty
        cases.append(Case("random", (X, labels, k), {"previous": rng.normal(size=(k, d))}))
    return cases


def _with_empty(value):
    def mistake(X, labels, k, previous=None):
        from segtutor import cluster

        labels = np.asarray(labels)
        empty = np.bincount(labels, minlength=k) == 0
        if not empty.any():
            return None
        fallback = np.zeros((k, np.shape(X)[1])) if previous is None else np.asarray(previous, float)
        centers = cluster.update_centers(X, labels, k, previous=fallback)
        centers[empty] = value
        return centers

    return mistake


def _sums(X, labels, k, previous=None):
    X, labels = np.asarray(X, float), np.asarray(labels)
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, labels, X)
    counts = np.bincount(labels, minlength=k)
    if previous is not None:
        sums[counts == 0] = np.asarray(previous, float)[counts == 0]
    return sums


def _truncated(X, labels, k, previous=None):
    from segtutor import cluster

    if np.issubdtype(np.asarray(X).dtype, np.floating):
        return None
    return np.trunc(cluster.update_centers(X, labels, k, previous=previous))


def _last_not_updated(X, labels, k, previous=None):
    from segtutor import cluster

    centers = cluster.update_centers(X, labels, k, previous=previous)
    centers[-1] = 0.0 if previous is None else np.asarray(previous, float)[-1]
    return centers


_UPDATE_MISTAKES = (
    ("a cluster with no points keeps its previous centre (yours got zeros)", _with_empty(0.0)),
    ("a cluster with no points has a mean of nothing, NaN: keep its previous centre instead",
     _with_empty(np.nan)),
    ("your centres were rounded down to integers: a mean of integers is a float", _truncated),
    ("that is the sum of each cluster's points: divide by how many there are", _sums),
    ("the last cluster, k - 1, was not updated: clusters go from 0 to k - 1", _last_not_updated),
)


def _update_by_hand(X, labels, k, previous=None, *, empty="previous", divide=True, clusters=None, dtype=float):
    X, labels = np.asarray(X), np.asarray(labels)
    if previous is not None and empty == "previous":
        centers = np.array(previous, dtype=dtype)
    else:
        centers = np.zeros((k, X.shape[1]), dtype=dtype)
    for j in range(k if clusters is None else clusters):
        members = X[labels == j]
        if len(members) or empty == "nan":
            with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
                __import__("warnings").simplefilter("ignore")
                centers[j] = members.mean(axis=0) if divide else members.sum(axis=0)
    return centers


def _update_empty_zero(X, labels, k, previous=None):
    return _update_by_hand(X, labels, k, previous, empty="zero")


def _update_empty_nan(X, labels, k, previous=None):
    return _update_by_hand(X, labels, k, previous, empty="nan")


def _update_sum(X, labels, k, previous=None):
    return _update_by_hand(X, labels, k, previous, divide=False)


def _update_integer(X, labels, k, previous=None):
    X = np.asarray(X)
    return _update_by_hand(X, labels, k, previous, dtype=X.dtype)


def _update_off_by_one(X, labels, k, previous=None):
    return _update_by_hand(X, labels, k, previous, clusters=k - 1)


# -- pixel features --------------------------------------------------------------------------


def _features_cases(rng, hidden):
    if not hidden:
        gray = np.array([[0.0, 0.5], [1.0, 0.25]])
        rgb = (rng.random((3, 4, 3)) * 255).astype(np.uint8)
        return [
            Case("2x2 grayscale, colour only", (gray,), {"use_position": False}),
            Case("uint8 colour image with position", (rgb,), {"use_position": True}),
            Case("position weighted by 2", (rgb,), {"use_position": True, "position_weight": 2.0}),
            Case("a tall float image with position", (rng.random((5, 2, 3)),), {"use_position": True}),
        ]
    return [
        Case("random", (rng.random((7, 5, 3)),), {"use_position": True, "position_weight": 0.5}),
        Case("random", ((rng.random((6, 9)) * 255).astype(np.uint8),), {"use_position": True}),
    ]


def _features(image, use_position=False, position_weight=1.0, *, scale255=True, order="C", swap=False,
              per_axis=False, divisor_offset=-1, weight=True):
    """The features the library computes, with switches that make one mistake each."""
    from segtutor import cluster

    image = np.asarray(image)
    colour = cluster.pixel_features(image)
    if not scale255 and image.dtype == np.uint8:
        colour = colour * 255
    h, w = image.shape[:2]
    if order == "F":
        colour = colour.reshape(h, w, -1).transpose(1, 0, 2).reshape(h * w, -1)
    if not use_position:
        return colour
    rows, cols = np.indices((h, w), dtype=float)
    if order == "F":
        rows, cols = rows.T, cols.T
    if per_axis:
        rows, cols = rows / max(h - 1, 1), cols / max(w - 1, 1)
    else:
        scale = max(max(h, w) + divisor_offset, 1)
        rows, cols = rows / scale, cols / scale
    position = np.stack([cols.ravel(), rows.ravel()] if swap else [rows.ravel(), cols.ravel()], axis=1)
    return np.hstack([colour, position * (position_weight if weight else 1.0)])


def _only_if(condition, make):
    return lambda image, use_position=False, position_weight=1.0: (
        make(image, use_position, position_weight) if condition(image, use_position, position_weight) else None)


_FEATURES_MISTAKES = (
    ("the colours of a uint8 image must be scaled to [0, 1]: divide them by 255",
     _only_if(lambda im, p, w: np.asarray(im).dtype == np.uint8,
              lambda im, p, w: _features(im, p, w, scale255=False))),
    ("your rows go down the columns first: pixel (r, c) belongs in row r * W + c (row-major order)",
     lambda im, use_position=False, position_weight=1.0: _features(im, use_position, position_weight, order="F")),
    ("your position columns are (col, row); they must be (row, col)",
     _only_if(lambda im, p, w: p, lambda im, p, w: _features(im, p, w, swap=True))),
    ("rows and columns must share one scale, max(H, W) - 1, so that distances stay round",
     _only_if(lambda im, p, w: p, lambda im, p, w: _features(im, p, w, per_axis=True))),
    ("divide the positions by max(H, W) - 1, so that the longer side spans exactly [0, 1]",
     _only_if(lambda im, p, w: p, lambda im, p, w: _features(im, p, w, divisor_offset=0))),
    ("the position columns must be multiplied by position_weight",
     _only_if(lambda im, p, w: p, lambda im, p, w: _features(im, p, w, weight=False))),
)


def _features_compare(expected, got, case=None):
    """``close``, plus what a result of the wrong shape suggests."""
    reason = explain(close(rtol=1e-9, atol=1e-12), *_FEATURES_MISTAKES)(expected, got, case)
    if reason is None or case is None:
        return reason
    shape = np.shape(got)
    if shape == expected.shape[:1]:
        return f"one column per colour channel: a grayscale image gives shape (H*W, 1), not (H*W,); {reason}"
    if len(shape) == 3:
        return f"one row per pixel: reshape the image to (H*W, C); {reason}"
    return reason


def _features_by_hand(image, use_position=False, position_weight=1.0, *, scale=True, order="C", swap=False,
                      per_axis=False, divisor=None, weight=True, keep_gray_2d=False):
    image = np.asarray(image)
    colour = image / 255.0 if (image.dtype == np.uint8 and scale) else image.astype(float)
    h, w = image.shape[:2]
    if keep_gray_2d and colour.ndim == 2:
        features = colour.reshape(h * w)
        return features
    features = colour.reshape(h * w, -1, order=order) if colour.ndim == 3 else colour.reshape(h * w, 1, order=order)
    if colour.ndim == 3 and order == "F":
        features = colour.transpose(1, 0, 2).reshape(h * w, -1)
    if use_position:
        rows, cols = np.mgrid[0:h, 0:w].astype(float)
        if order == "F":
            rows, cols = rows.T, cols.T
        if per_axis:
            rows, cols = rows / (h - 1), cols / (w - 1)
        else:
            s = divisor if divisor is not None else max(h, w) - 1
            rows, cols = rows / s, cols / s
        position = np.stack([cols.ravel(), rows.ravel()] if swap else [rows.ravel(), cols.ravel()], axis=1)
        features = np.hstack([features, position * (position_weight if weight else 1)])
    return features


def _features_not_scaled(image, use_position=False, position_weight=1.0):
    return _features_by_hand(image, use_position, position_weight, scale=False)


def _features_column_major(image, use_position=False, position_weight=1.0):
    return _features_by_hand(image, use_position, position_weight, order="F")


def _features_xy(image, use_position=False, position_weight=1.0):
    return _features_by_hand(image, use_position, position_weight, swap=True)


def _features_per_axis(image, use_position=False, position_weight=1.0):
    return _features_by_hand(image, use_position, position_weight, per_axis=True)


def _features_max_side(image, use_position=False, position_weight=1.0):
    return _features_by_hand(image, use_position, position_weight, divisor=max(np.shape(image)[:2]))


def _features_unweighted(image, use_position=False, position_weight=1.0):
    return _features_by_hand(image, use_position, position_weight, weight=False)


def _features_flat_gray(image, use_position=False, position_weight=1.0):
    return _features_by_hand(image, use_position, position_weight, keep_gray_2d=True)


register(Exercise(
    id="cluster.assign_labels",
    title="assign each point to its nearest centre",
    reference="segtutor.cluster.assign_labels",
    make_cases=_assign_cases,
    compare=explain(_assign_shape_reason, *_ASSIGN_MISTAKES),
    hint=("for every point, measure its squared distance to every centre and keep the index of the "
          "closest; the result is one integer per point.",
          "broadcasting X[:, None, :] against centers[None, :, :] gives all differences at once, an "
          "(n, k, d) array; NumPy's arg-functions return integer indices along the axis you name."),
    wrong_answers=(
        WrongAnswer("float labels", _assign_float, r"integer labels"),
        WrongAnswer("farthest centre (argmax)", _assign_farthest, r"farthest"),
        WrongAnswer("minimum over the wrong axis", _assign_wrong_axis, r"one label per centre"),
        WrongAnswer("city-block distance", _assign_l1, r"city-block"),
        WrongAnswer("ties go to the later centre", _assign_last_tie, r"equally far"),
        WrongAnswer("returns the distance matrix", _assign_distance_matrix, r"array of distances"),
    ),
))

register(Exercise(
    id="cluster.update_centers",
    title="move each centre to the mean of its points",
    reference="segtutor.cluster.update_centers",
    make_cases=_update_cases,
    compare=explain(close(rtol=1e-9, atol=1e-12), *_UPDATE_MISTAKES),
    hint=("each centre moves to the mean of the points assigned to it; a cluster without points has no "
          "mean, and keeps the centre it had.",
          "X[labels == j] selects the points of cluster j; start from a float copy of previous so that "
          "empty clusters keep their centre."),
    wrong_answers=(
        WrongAnswer("empty cluster gets zeros", _update_empty_zero, r"keeps its previous centre"),
        WrongAnswer("empty cluster gets NaN", _update_empty_nan, r"NaN"),
        WrongAnswer("sum instead of mean", _update_sum, r"sum of each cluster"),
        WrongAnswer("integer centres", _update_integer, r"rounded down to integers"),
        WrongAnswer("off by one: range(k - 1)", _update_off_by_one, r"last cluster"),
    ),
))

register(Exercise(
    id="cluster.pixel_features",
    title="pixel features: colour, optionally position",
    reference="segtutor.cluster.pixel_features",
    make_cases=_features_cases,
    compare=_features_compare,
    hint=("one row per pixel, in the order the pixels are stored (row by row), with the colours scaled to "
          "[0, 1] and, when asked, two more columns for the pixel's row and column on a common scale.",
          "image.reshape(H * W, C) keeps row-major order; np.indices or np.mgrid give every pixel's row and "
          "column; read the scaling rules in the cell above again."),
    wrong_answers=(
        WrongAnswer("uint8 colours not divided by 255", _features_not_scaled, r"divide them by 255"),
        WrongAnswer("column-major order", _features_column_major, r"row-major order"),
        WrongAnswer("(x, y) instead of (row, col)", _features_xy, r"\(row, col\)"),
        WrongAnswer("rows and columns scaled separately", _features_per_axis, r"share one scale"),
        WrongAnswer("positions divided by max(H, W)", _features_max_side, r"max\(H, W\) - 1"),
        WrongAnswer("position_weight ignored", _features_unweighted, r"position_weight"),
        WrongAnswer("grayscale gives a flat vector", _features_flat_gray, r"\(H\*W, 1\)"),
    ),
))
