"""Exercises on :mod:`segtutor.cluster` (lesson 02)."""

import numpy as np

from ._core import Case, Exercise, register
from .compare import close, exact


def _points(rng, n, d, k):
    centers = rng.normal(0, 3, (k, d))
    X = centers[rng.integers(0, k, n)] + rng.normal(0, 0.5, (n, d))
    return X, centers + rng.normal(0, 0.3, (k, d))


def _assign_cases(rng, hidden):
    if not hidden:
        X = np.array([[0.0, 0.0], [0.9, 0.1], [5.0, 5.0], [4.0, 6.0], [0.2, 4.8]])
        centers = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]])
        X3, c3 = _points(rng, 40, 3, 4)
        return [
            Case("five 2-D points, three centres", (X, centers)),
            Case("one centre", (X, centers[:1])),
            Case("40 colours, four centres", (X3, c3)),
        ]
    return [Case("random", _points(rng, n, d, k)) for n, d, k in [(200, 3, 5), (50, 5, 2), (7, 1, 3)]]


def _update_cases(rng, hidden):
    if not hidden:
        X = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]])
        return [
            Case("two clusters", (X, np.array([0, 0, 1, 1]), 2)),
            Case("one point per cluster", (X, np.array([0, 1, 2, 3]), 4)),
            Case("empty cluster keeps its previous centre",
                 (X, np.array([0, 0, 2, 2]), 3), {"previous": np.array([[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]])}),
        ]
    cases = []
    for n, d, k in [(100, 3, 4), (30, 2, 6)]:
        X = rng.normal(size=(n, d))
        labels = rng.integers(0, k - 1, n)  # the last cluster is always empty
        cases.append(Case("random", (X, labels, k), {"previous": rng.normal(size=(k, d))}))
    return cases


def _features_cases(rng, hidden):
    if not hidden:
        gray = np.array([[0.0, 0.5], [1.0, 0.25]])
        rgb = (rng.random((3, 4, 3)) * 255).astype(np.uint8)
        return [
            Case("2x2 grayscale, colour only", (gray,), {"use_position": False}),
            Case("uint8 colour image with position", (rgb,), {"use_position": True}),
            Case("position weighted by 2", (rgb,), {"use_position": True, "position_weight": 2.0}),
        ]
    return [
        Case("random", (rng.random((7, 5, 3)),), {"use_position": True, "position_weight": 0.5}),
        Case("random", ((rng.random((6, 9)) * 255).astype(np.uint8),), {"use_position": True}),
    ]


register(Exercise(
    id="cluster.assign_labels",
    title="assign each point to its nearest centre",
    reference="segtutor.cluster.assign_labels",
    make_cases=_assign_cases,
    compare=exact,
    hint="squared distances of every point to every centre form an (n, k) array "
         "(broadcast X[:, None, :] - centers[None, :, :]); take argmin over k.",
))

register(Exercise(
    id="cluster.update_centers",
    title="move each centre to the mean of its points",
    reference="segtutor.cluster.update_centers",
    make_cases=_update_cases,
    compare=close(rtol=1e-9, atol=1e-12),
    hint="for each cluster j, average X[labels == j]; a cluster with no points keeps previous[j].",
))

register(Exercise(
    id="cluster.pixel_features",
    title="pixel features: colour, optionally position",
    reference="segtutor.cluster.pixel_features",
    make_cases=_features_cases,
    compare=close(rtol=1e-9, atol=1e-12),
    hint="one row per pixel in row-major order; see the scaling rules in the cell above the exercise.",
))
