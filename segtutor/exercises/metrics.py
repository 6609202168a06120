"""Exercises on :mod:`segtutor.metrics` (lesson 00).

Each exercise keeps its catalogue of wrong answers: functions written the way a
learner makes the mistake. The visible cases reject every one of them, and the
comparator names the mistake, using the independent ``_mistake`` functions
below (written with :mod:`segtutor.metrics`, not with the wrong answers).
"""

import numpy as np

from ._core import Case, Exercise, WrongAnswer, register
from .compare import close, explain


def _square(size, top, left, side):
    mask = np.zeros((size, size), dtype=bool)
    mask[top:top + side, left:left + side] = True
    return mask


# -- IoU ------------------------------------------------------------------------------------


def _iou_cases(rng, hidden):
    if not hidden:
        return [
            Case("overlapping squares", (_square(8, 1, 1, 4), _square(8, 3, 3, 4))),
            Case("identical masks", (_square(6, 1, 1, 3), _square(6, 1, 1, 3))),
            Case("disjoint masks", (_square(8, 0, 0, 3), _square(8, 5, 5, 3))),
            Case("both empty (IoU is 1 by convention)", (np.zeros((4, 4), bool), np.zeros((4, 4), bool))),
            Case("a small mask inside a large one", (_square(10, 2, 2, 6), _square(10, 3, 3, 2))),
        ]
    return [
        Case("random", (rng.random((h, w)) < p, rng.random((h, w)) < q))
        for h, w, p, q in [(16, 16, 0.3, 0.5), (9, 31, 0.1, 0.1), (40, 40, 0.7, 0.2), (1, 7, 0.5, 0.5)]
    ] + [Case("one empty", (np.zeros((5, 5), bool), _square(5, 1, 1, 2)))]


def _counts(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return int((a & b).sum()), int(a.sum()), int(b.sum()), a.size


def _dice_or_twice(twice):
    def mistake(a, b):
        both, n_a, n_b, _ = _counts(a, b)
        return (2 if twice else 1) * both / (n_a + n_b) if n_a + n_b else None

    return mistake


def _if_empty(value):
    return lambda a, b: None if np.asarray(a).any() or np.asarray(b).any() else value


_IOU_MISTAKES = (
    ("two empty masks agree perfectly: their IoU is 1 by convention, not 0", _if_empty(0.0)),
    ("0 / 0 is NaN: two empty masks agree perfectly, and their IoU is 1 by convention", _if_empty(np.nan)),
    ("that is the Dice coefficient 2|A ∩ B| / (|A| + |B|), not IoU", _dice_or_twice(True)),
    ("you divided by |A| + |B|, which counts the overlap twice: the union has each pixel once",
     _dice_or_twice(False)),
    ("that is |A ∩ B|, the number of pixels in both masks: divide it by the number of pixels in either",
     lambda a, b: float(_counts(a, b)[0])),
    ("that is the fraction of all pixels where the masks agree (background included), not IoU",
     lambda a, b: float(np.mean(np.asarray(a, bool) == np.asarray(b, bool)))),
)


def _iou_dice(mask_a, mask_b):
    a, b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    with np.errstate(invalid="ignore"):  # two empty masks: 0 / 0
        return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _iou_overlap_twice(mask_a, mask_b):
    a, b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    with np.errstate(invalid="ignore"):
        return float(np.logical_and(a, b).sum() / (a.sum() + b.sum()))


def _iou_intersection_only(mask_a, mask_b):
    return float(np.logical_and(mask_a, mask_b).sum())


def _iou_empty_is_zero(mask_a, mask_b):
    a, b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    union = (a | b).sum()
    return 0.0 if union == 0 else float((a & b).sum() / union)


def _iou_empty_is_nan(mask_a, mask_b):
    a, b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    with np.errstate(invalid="ignore"):
        return float(np.float64((a & b).sum()) / np.float64((a | b).sum()))


def _iou_integer_division(mask_a, mask_b):
    a, b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    union = (a | b).sum()
    return 1 if union == 0 else int((a & b).sum() // union)


def _iou_agreement(mask_a, mask_b):
    return float((np.asarray(mask_a) == np.asarray(mask_b)).mean())


# -- pixel accuracy --------------------------------------------------------------------------


def _labels(rng, shape, num_classes):
    return rng.integers(0, num_classes, size=shape)


def _pixel_accuracy_cases(rng, hidden):
    if not hidden:
        target = np.array([[0, 0, 1], [0, 1, 1], [2, 2, 1]])
        return [
            Case("perfect prediction", (target.copy(), target)),
            Case("worked example", (np.array([[0, 1, 1], [0, 1, 1], [2, 0, 1]]), target)),
            Case("all wrong", ((target + 1) % 3, target)),
            Case("mostly background, all of it right",
                 (np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]),
                  np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]]))),
        ]
    return [
        Case("random", (_labels(rng, shape, c), _labels(rng, shape, c)))
        for shape, c in [((20, 20), 2), ((13, 7), 5), ((1, 50), 3)]
    ]


def _mean_class_accuracy(pred, target):
    pred, target = np.asarray(pred), np.asarray(target)
    return float(np.mean([np.mean(pred[target == c] == c) for c in np.unique(target)]))


def _foreground_accuracy(pred, target):
    pred, target = np.asarray(pred), np.asarray(target)
    keep = target != 0
    return float(np.mean(pred[keep] == target[keep])) if keep.any() else None


_ACCURACY_MISTAKES = (
    ("that is the number of pixels that agree: divide it by the number of pixels",
     lambda pred, target: float(np.sum(np.asarray(pred) == np.asarray(target)))),
    ("that is the fraction of pixels that differ (the error rate), not the fraction that agree",
     lambda pred, target: float(np.mean(np.asarray(pred) != np.asarray(target)))),
    ("that is the mean per-class accuracy, where every class weighs the same; pixel accuracy "
     "weighs every pixel the same", _mean_class_accuracy),
    ("you scored only the pixels whose target is not 0: background pixels count too", _foreground_accuracy),
)


def _accuracy_count(pred, target):
    return int((np.asarray(pred) == np.asarray(target)).sum())


def _accuracy_error_rate(pred, target):
    return float((np.asarray(pred) != np.asarray(target)).mean())


def _accuracy_per_class(pred, target):
    pred, target = np.asarray(pred), np.asarray(target)
    scores = []
    for c in np.unique(target):
        scores.append((pred[target == c] == c).mean())
    return float(np.mean(scores))


def _accuracy_foreground_only(pred, target):
    pred, target = np.asarray(pred), np.asarray(target)
    objects = target > 0
    return float((pred[objects] == target[objects]).mean())


def _accuracy_integer_division(pred, target):
    pred, target = np.asarray(pred), np.asarray(target)
    return int((pred == target).sum() // pred.size)


# -- mean IoU --------------------------------------------------------------------------------


def _mean_iou_cases(rng, hidden):
    if not hidden:
        target = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
        pred = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [2, 2, 2, 0], [2, 2, 2, 2]])
        no_two = np.where(target == 2, 1, target)
        return [
            Case("worked example, 3 classes", (pred, target, 3)),
            Case("perfect prediction", (target.copy(), target, 3)),
            Case("class 3 absent from both (left out of the mean)", (pred, target, 4)),
            Case("class 2 only in the prediction (IoU 0, counted)", (pred, no_two, 3)),
        ]
    cases = []
    for shape, c in [((24, 24), 3), ((10, 30), 6), ((5, 5), 2)]:
        target = _labels(rng, shape, c)
        pred = np.where(rng.random(shape) < 0.7, target, _labels(rng, shape, c))
        cases.append(Case("random", (pred, target, c)))
    return cases


def _per_class(pred, target, num_classes, which="iou"):
    from segtutor import metrics

    if which == "dice":
        return metrics.dice_per_class(pred, target, num_classes)
    return metrics.iou_per_class(pred, target, num_classes)


def _absent_as(value):
    def mistake(pred, target, num_classes):
        scores = _per_class(pred, target, num_classes)
        return float(np.mean(np.where(np.isnan(scores), value, scores)))

    return mistake


def _without_last_class(pred, target, num_classes):
    scores = _per_class(pred, target, num_classes)[:-1]
    return float(np.nanmean(scores)) if not np.isnan(scores).all() else None


def _target_classes_only(pred, target, num_classes):
    scores = _per_class(pred, target, num_classes)
    present = np.isin(np.arange(num_classes), np.asarray(target))
    return float(np.mean(scores[present]))


_MEAN_IOU_MISTAKES = (
    ("a class in neither map has IoU 0 / 0, which is NaN and made the mean NaN: leave such classes out",
     _absent_as(np.nan)),
    ("you counted a class that is in neither map as IoU 0: leave it out of the mean", _absent_as(0.0)),
    ("you counted a class that is in neither map as IoU 1: leave it out of the mean", _absent_as(1.0)),
    ("you left out the last class, num_classes - 1: classes go from 0 to num_classes - 1",
     _without_last_class),
    ("you averaged only the classes in the target: a class that appears only in the prediction has "
     "IoU 0 and counts", _target_classes_only),
    ("that is the mean Dice coefficient, not the mean IoU",
     lambda pred, target, num_classes: float(np.nanmean(_per_class(pred, target, num_classes, "dice")))),
    ("that is the pixel accuracy, not the mean IoU",
     lambda pred, target, num_classes: float(np.mean(np.asarray(pred) == np.asarray(target)))),
)


def _miou_per_class(pred, target, num_classes):
    pred, target = np.asarray(pred), np.asarray(target)
    ious = []
    for c in range(num_classes):
        p, t = pred == c, target == c
        union = (p | t).sum()
        ious.append((p & t).sum() / union if union else None)
    return ious


def _miou_absent_as_zero(pred, target, num_classes):
    return float(np.mean([0.0 if v is None else v for v in _miou_per_class(pred, target, num_classes)]))


def _miou_absent_as_nan(pred, target, num_classes):
    return float(np.mean([np.nan if v is None else v for v in _miou_per_class(pred, target, num_classes)]))


def _miou_off_by_one(pred, target, num_classes):
    return float(np.mean([v for v in _miou_per_class(pred, target, num_classes - 1) if v is not None]))


def _miou_target_classes(pred, target, num_classes):
    ious = _miou_per_class(pred, target, num_classes)
    return float(np.mean([ious[c] for c in np.unique(target)]))


def _miou_dice(pred, target, num_classes):
    pred, target = np.asarray(pred), np.asarray(target)
    scores = []
    for c in range(num_classes):
        p, t = pred == c, target == c
        if p.any() or t.any():
            scores.append(2 * (p & t).sum() / (p.sum() + t.sum()))
    return float(np.mean(scores))


register(Exercise(
    id="metrics.iou",
    title="IoU of two masks",
    reference="segtutor.metrics.iou",
    make_cases=_iou_cases,
    compare=explain(close(rtol=1e-9), *_IOU_MISTAKES),
    hint=("IoU is a ratio of two pixel counts: the pixels in both masks over the pixels in at least one "
          "of them; two empty masks are a special case.",
          "NumPy's logical operations combine two boolean masks pixel by pixel, and .sum() counts the True "
          "pixels of a mask."),
    wrong_answers=(
        WrongAnswer("Dice instead of IoU", _iou_dice, r"Dice coefficient"),
        WrongAnswer("union taken as |A| + |B|", _iou_overlap_twice, r"counts the overlap twice"),
        WrongAnswer("forgets to divide by the union", _iou_intersection_only, r"divide it by the number"),
        WrongAnswer("two empty masks give 0", _iou_empty_is_zero, r"1 by convention"),
        WrongAnswer("two empty masks give NaN (0 / 0)", _iou_empty_is_nan, r"0 / 0 is NaN.*1 by convention"),
        WrongAnswer("integer division", _iou_integer_division, r"integer division"),
        WrongAnswer("agreement of all pixels", _iou_agreement, r"background included"),
    ),
))

register(Exercise(
    id="metrics.pixel_accuracy",
    title="pixel accuracy",
    reference="segtutor.metrics.pixel_accuracy",
    make_cases=_pixel_accuracy_cases,
    compare=explain(close(rtol=1e-9), *_ACCURACY_MISTAKES),
    hint=("count the pixels where the two label maps hold the same class, then turn that count into a "
          "fraction of all the pixels.",
          "comparing two NumPy arrays with == gives a boolean array, pixel by pixel; NumPy can count or "
          "average booleans (True is 1)."),
    wrong_answers=(
        WrongAnswer("forgets to divide by the number of pixels", _accuracy_count, r"divide it by the number"),
        WrongAnswer("error rate instead of accuracy", _accuracy_error_rate, r"error rate"),
        WrongAnswer("mean per-class accuracy", _accuracy_per_class, r"per-class accuracy"),
        WrongAnswer("skips the background pixels", _accuracy_foreground_only, r"background pixels count too"),
        WrongAnswer("integer division", _accuracy_integer_division, r"integer division"),
    ),
))

register(Exercise(
    id="metrics.mean_iou",
    title="mean IoU over classes",
    reference="segtutor.metrics.mean_iou",
    make_cases=_mean_iou_cases,
    compare=explain(close(rtol=1e-9), *_MEAN_IOU_MISTAKES),
    hint=("compute one IoU per class c, with the masks pred == c and target == c, then average them; "
          "a class that is in neither map has no IoU at all.",
          "loop over range(num_classes); skip a class whose union is empty before you divide, and take "
          "the mean of the IoUs you kept."),
    wrong_answers=(
        WrongAnswer("absent class counted as 0", _miou_absent_as_zero, r"as IoU 0: leave it out"),
        WrongAnswer("absent class gives NaN", _miou_absent_as_nan, r"NaN"),
        WrongAnswer("off by one: range(num_classes - 1)", _miou_off_by_one, r"left out the last class"),
        WrongAnswer("only the classes of the target", _miou_target_classes, r"only in the prediction"),
        WrongAnswer("mean Dice instead of mean IoU", _miou_dice, r"mean Dice"),
    ),
))
