"""Exercises on :mod:`segtutor.metrics` (lesson 00)."""

import numpy as np

from ._core import Case, Exercise, register
from .compare import close


def _square(size, top, left, side):
    mask = np.zeros((size, size), dtype=bool)
    mask[top:top + side, left:left + side] = True
    return mask


def _iou_cases(rng, hidden):
    if not hidden:
        return [
            Case("overlapping squares", (_square(8, 1, 1, 4), _square(8, 3, 3, 4))),
            Case("identical masks", (_square(6, 1, 1, 3), _square(6, 1, 1, 3))),
            Case("disjoint masks", (_square(8, 0, 0, 3), _square(8, 5, 5, 3))),
            Case("both empty (IoU is 1 by convention)", (np.zeros((4, 4), bool), np.zeros((4, 4), bool))),
        ]
    return [
        Case("random", (rng.random((h, w)) < p, rng.random((h, w)) < q))
        for h, w, p, q in [(16, 16, 0.3, 0.5), (9, 31, 0.1, 0.1), (40, 40, 0.7, 0.2), (1, 7, 0.5, 0.5)]
    ] + [Case("one empty", (np.zeros((5, 5), bool), _square(5, 1, 1, 2)))]


def _labels(rng, shape, num_classes):
    return rng.integers(0, num_classes, size=shape)


def _pixel_accuracy_cases(rng, hidden):
    if not hidden:
        target = np.array([[0, 0, 1], [0, 1, 1], [2, 2, 1]])
        return [
            Case("perfect prediction", (target.copy(), target)),
            Case("worked example", (np.array([[0, 1, 1], [0, 1, 1], [2, 0, 1]]), target)),
            Case("all wrong", ((target + 1) % 3, target)),
        ]
    return [
        Case("random", (_labels(rng, shape, c), _labels(rng, shape, c)))
        for shape, c in [((20, 20), 2), ((13, 7), 5), ((1, 50), 3)]
    ]


def _mean_iou_cases(rng, hidden):
    if not hidden:
        target = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
        pred = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [2, 2, 2, 0], [2, 2, 2, 2]])
        return [
            Case("worked example, 3 classes", (pred, target, 3)),
            Case("perfect prediction", (target.copy(), target, 3)),
            Case("class 3 absent from both (left out of the mean)", (pred, target, 4)),
        ]
    cases = []
    for shape, c in [((24, 24), 3), ((10, 30), 6), ((5, 5), 2)]:
        target = _labels(rng, shape, c)
        pred = np.where(rng.random(shape) < 0.7, target, _labels(rng, shape, c))
        cases.append(Case("random", (pred, target, c)))
    return cases


register(Exercise(
    id="metrics.iou",
    title="IoU of two masks",
    reference="segtutor.metrics.iou",
    make_cases=_iou_cases,
    compare=close(rtol=1e-9),
    hint="IoU = |A and B| / |A or B|; count pixels with np.logical_and / np.logical_or and .sum().",
))

register(Exercise(
    id="metrics.pixel_accuracy",
    title="pixel accuracy",
    reference="segtutor.metrics.pixel_accuracy",
    make_cases=_pixel_accuracy_cases,
    compare=close(rtol=1e-9),
    hint="the fraction of pixels where pred == target: (pred == target).mean().",
))

register(Exercise(
    id="metrics.mean_iou",
    title="mean IoU over classes",
    reference="segtutor.metrics.mean_iou",
    make_cases=_mean_iou_cases,
    compare=close(rtol=1e-9),
    hint="compute IoU for each class c with masks pred == c and target == c; "
         "skip classes absent from both, then average.",
))
