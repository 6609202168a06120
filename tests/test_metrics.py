"""Tests of segtutor.metrics against scikit-learn / scikit-image and by hand."""

import doctest
import itertools

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from skimage.segmentation import find_boundaries
from sklearn import metrics as skm

import segtutor.metrics
from segtutor.metrics import (
    boundary_f1,
    boundary_mask,
    confusion_matrix,
    dice,
    dice_per_class,
    iou,
    iou_per_class,
    mean_dice,
    mean_iou,
    pixel_accuracy,
)


def test_doctests():
    assert doctest.testmod(segtutor.metrics).failed == 0


def test_all_is_complete():
    for name in segtutor.metrics.__all__:
        assert callable(getattr(segtutor.metrics, name))


# ---------------------------------------------------------------------------
# random inputs against scikit-learn
# ---------------------------------------------------------------------------

SHAPES = [(1, 1), (7,), (5, 9), (32, 17), (3, 8, 8)]
CASES = list(itertools.product(range(3), SHAPES, [1, 2, 5], [None, 255, -1]))


def _random_case(seed, shape, num_classes, ignore_index):
    """Random pred/target; the top class is rare so that it is sometimes absent."""
    rng = np.random.default_rng(seed)
    probs = np.ones(num_classes)
    probs[-1] = 0.05 if num_classes > 1 else 1.0
    probs /= probs.sum()
    target = rng.choice(num_classes, size=shape, p=probs)
    pred = rng.choice(num_classes, size=shape, p=probs)
    if ignore_index is not None and target.size > 1:
        ignored = rng.random(shape) < 0.2
        ignored.flat[0] = False  # keep at least one scored pixel
        target = np.where(ignored, ignore_index, target)
        valid = ~ignored
    else:
        valid = np.ones(shape, dtype=bool)
    return pred, target, pred[valid].ravel(), target[valid].ravel()


# sklearn warns when a sample holds a single label; that is expected for tiny maps
@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@pytest.mark.parametrize("seed,shape,num_classes,ignore_index", CASES)
def test_against_sklearn(seed, shape, num_classes, ignore_index):
    pred, target, p, t = _random_case(seed, shape, num_classes, ignore_index)
    labels = list(range(num_classes))

    cm = confusion_matrix(pred, target, num_classes, ignore_index=ignore_index)
    assert cm.dtype == np.int64 and cm.shape == (num_classes, num_classes)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(t, p, labels=labels))

    assert pixel_accuracy(pred, target, ignore_index=ignore_index) == pytest.approx(
        skm.accuracy_score(t, p)
    )

    present = np.isin(labels, np.union1d(t, p))
    ious = iou_per_class(pred, target, num_classes, ignore_index=ignore_index)
    assert ious.dtype == np.float64 and ious.shape == (num_classes,)
    assert np.array_equal(np.isnan(ious), ~present)
    expected = skm.jaccard_score(t, p, labels=labels, average=None, zero_division=0)
    np.testing.assert_allclose(ious[present], expected[present])
    assert mean_iou(pred, target, num_classes, ignore_index=ignore_index) == pytest.approx(
        skm.jaccard_score(t, p, labels=np.flatnonzero(present), average="macro")
    )

    dices = dice_per_class(pred, target, num_classes, ignore_index=ignore_index)
    np.testing.assert_allclose(
        dices, skm.f1_score(t, p, labels=labels, average=None, zero_division=np.nan)
    )
    assert mean_dice(pred, target, num_classes, ignore_index=ignore_index) == pytest.approx(
        skm.f1_score(t, p, labels=np.flatnonzero(present), average="macro")
    )
    # Dice and IoU are tied: D = 2 J / (1 + J)
    np.testing.assert_allclose(dices[present], 2 * ious[present] / (1 + ious[present]))


@pytest.mark.parametrize("seed", range(5))
def test_binary_against_sklearn(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((13, 11)) < rng.uniform(0.1, 0.9)
    b = rng.random((13, 11)) < rng.uniform(0.1, 0.9)
    assert iou(a, b) == pytest.approx(skm.jaccard_score(b.ravel(), a.ravel()))
    assert dice(a, b) == pytest.approx(skm.f1_score(b.ravel(), a.ravel()))
    # 0/1 integers and bools give the same answer; both are symmetric
    assert iou(a.astype(np.uint8), b.astype(int)) == iou(b, a)
    assert dice(a.astype(float), b) == dice(b, a)


def test_binary_conventions():
    empty = np.zeros((4, 4), dtype=bool)
    full = np.ones((4, 4), dtype=bool)
    assert iou(empty, empty) == 1.0 and dice(empty, empty) == 1.0
    assert iou(empty, full) == 0.0 and dice(full, empty) == 0.0
    assert iou(full, full) == 1.0 and dice(full, full) == 1.0


# ---------------------------------------------------------------------------
# hand-worked examples (counted pixel by pixel, not through a confusion matrix)
# ---------------------------------------------------------------------------


def test_hand_worked_example():
    target = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [255, 2, 2, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 1, 1], [3, 2, 0, 1]])
    # Pixels as (row, col) sets per class, ignoring (2, 0) where target is 255.
    pixels = [(r, c) for r in range(3) for c in range(4) if target[r, c] != 255]
    truth = {k: {p for p in pixels if target[p] == k} for k in range(4)}
    guess = {k: {p for p in pixels if pred[p] == k} for k in range(4)}
    expected_iou = [len(truth[k] & guess[k]) / len(truth[k] | guess[k]) for k in range(3)]
    # class 0: truth {(0,0),(0,1),(1,0)}, pred {(0,0),(1,0),(2,2)} -> 2/4
    assert expected_iou[0] == 0.5
    got = iou_per_class(pred, target, 4, ignore_index=255)
    np.testing.assert_allclose(got[:3], expected_iou)
    assert np.isnan(got[3])  # class 3 only appears under the ignored pixel
    assert mean_iou(pred, target, 4, ignore_index=255) == pytest.approx(np.mean(expected_iou))
    correct = sum(target[p] == pred[p] for p in pixels)
    assert pixel_accuracy(pred, target, ignore_index=255) == pytest.approx(correct / len(pixels))
    expected_dice = [
        2 * len(truth[k] & guess[k]) / (len(truth[k]) + len(guess[k])) for k in range(3)
    ]
    np.testing.assert_allclose(dice_per_class(pred, target, 4, ignore_index=255)[:3], expected_dice)
    cm = confusion_matrix(pred, target, 4, ignore_index=255)
    for t, p in itertools.product(range(4), range(4)):
        assert cm[t, p] == len(truth[t] & guess[p])


def test_class_present_in_one_map_only_counts_as_zero():
    target = np.array([[0, 0, 0, 0]])
    pred = np.array([[0, 0, 1, 1]])
    ious = iou_per_class(pred, target, 3)
    assert ious[1] == 0.0 and np.isnan(ious[2])
    assert mean_iou(pred, target, 3) == pytest.approx((0.5 + 0.0) / 2)


def test_inputs_not_modified_and_lists_accepted():
    pred = np.array([[0, 1], [1, 1]])
    target = np.array([[0, 1], [255, 1]])
    before = (pred.copy(), target.copy())
    confusion_matrix(pred, target, 2, ignore_index=255)
    assert np.array_equal(pred, before[0]) and np.array_equal(target, before[1])
    np.testing.assert_array_equal(
        confusion_matrix(pred.tolist(), target.tolist(), 2, ignore_index=255),
        confusion_matrix(pred.astype(np.uint8), target.astype(np.uint8), 2, ignore_index=255),
    )


# ---------------------------------------------------------------------------
# boundaries
# ---------------------------------------------------------------------------


def _brute_boundary(labels):
    h, w = labels.shape
    out = np.zeros((h, w), dtype=bool)
    for r in range(h):
        for c in range(w):
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < h and 0 <= cc < w and labels[rr, cc] != labels[r, c]:
                    out[r, c] = True
    return out


def _brute_boundary_f1(pred, target, tolerance):
    pb = np.argwhere(_brute_boundary(pred))
    tb = np.argwhere(_brute_boundary(target))
    if len(pb) == 0 and len(tb) == 0:
        return 1.0
    if len(pb) == 0 or len(tb) == 0:
        return 0.0
    d = cdist(pb, tb)
    precision = np.mean(d.min(axis=1) <= tolerance)
    recall = np.mean(d.min(axis=0) <= tolerance)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("seed", range(4))
def test_boundary_mask_against_loops_and_skimage(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=(9, 12))
    got = boundary_mask(labels)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, _brute_boundary(labels))
    np.testing.assert_array_equal(got, find_boundaries(labels, connectivity=1, mode="thick"))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tolerance", [0, 1, 1.5, 3])
def test_boundary_f1_against_brute_force(seed, tolerance):
    rng = np.random.default_rng(seed)
    # blocky maps so that there are real regions, not salt-and-pepper noise
    target = np.kron(rng.integers(0, 3, size=(4, 5)), np.ones((5, 5), dtype=int))
    pred = np.kron(rng.integers(0, 3, size=(4, 5)), np.ones((5, 5), dtype=int))
    assert boundary_f1(pred, target, tolerance) == pytest.approx(
        _brute_boundary_f1(pred, target, tolerance)
    )


def test_boundary_f1_properties():
    target = np.zeros((40, 40), dtype=int)
    target[10:30, 10:30] = 1
    assert boundary_f1(target, target) == 1.0
    assert boundary_f1(target, target, tolerance=0) == 1.0
    # a relabelling does not move any boundary
    assert boundary_f1(1 - target, target) == 1.0
    shifted = np.roll(target, 5, axis=1)  # 5 px > tolerance 2
    assert boundary_f1(shifted, target, tolerance=2) < 1.0
    assert boundary_f1(shifted, target, tolerance=2) == boundary_f1(target, shifted, tolerance=2)
    scores = [boundary_f1(shifted, target, tolerance=t) for t in (0, 1, 2, 3, 5, 8, 20)]
    assert all(a <= b for a, b in zip(scores, scores[1:]))
    assert scores[-1] == 1.0
    # a bigger shift scores lower at the same tolerance
    assert boundary_f1(np.roll(target, 8, axis=1), target) < boundary_f1(
        np.roll(target, 3, axis=1), target
    )


def test_boundary_f1_conventions():
    flat = np.zeros((6, 6), dtype=int)
    other = np.ones((6, 6), dtype=int)  # a single region too: no boundary
    split = flat.copy()
    split[:, 3:] = 1
    assert boundary_f1(flat, other) == 1.0
    assert boundary_f1(flat, split) == 0.0
    assert boundary_f1(split, flat) == 0.0


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

GOOD = np.array([[0, 1], [1, 0]])
REGION_FUNCS = [
    lambda p, t: confusion_matrix(p, t, 2),
    lambda p, t: pixel_accuracy(p, t),
    lambda p, t: iou_per_class(p, t, 2),
    lambda p, t: mean_iou(p, t, 2),
    lambda p, t: dice_per_class(p, t, 2),
    lambda p, t: mean_dice(p, t, 2),
    lambda p, t: boundary_f1(p, t),
    lambda p, t: iou(p, t),
    lambda p, t: dice(p, t),
]


@pytest.mark.parametrize("func", REGION_FUNCS)
def test_shape_mismatch_names_both_shapes(func):
    with pytest.raises(ValueError, match=r"same shape.*\(2, 2\).*\(2, 3\)"):
        func(GOOD, np.zeros((2, 3), dtype=int))


@pytest.mark.parametrize("func", REGION_FUNCS)
@pytest.mark.parametrize(
    "bad,error,message",
    [
        (np.array([[0.0, np.nan], [1.0, 0.0]]), ValueError, "NaN"),
        (np.zeros((0, 2), dtype=int), ValueError, "empty"),
        (np.array([[0.5, 1.0], [1.0, 0.0]]), TypeError, "integer"),
        (np.array([[0, -1], [1, 0]]), ValueError, ">= 0"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "numbers"),
        (None, TypeError, "None"),
    ],
)
def test_bad_label_maps(func, bad, error, message):
    with pytest.raises(error, match=message):
        func(bad, GOOD)
    with pytest.raises(error, match=message):
        func(GOOD, bad)


def test_wrong_ndim():
    with pytest.raises(ValueError, match="4-D"):
        confusion_matrix(np.zeros((1, 1, 2, 2), int), np.zeros((1, 1, 2, 2), int), 2)
    with pytest.raises(ValueError, match="2-D"):
        boundary_f1(np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), int))
    with pytest.raises(ValueError, match="2-D"):
        boundary_mask(np.zeros(5, int))


@pytest.mark.parametrize("func", [confusion_matrix, iou_per_class, mean_iou, dice_per_class, mean_dice])
def test_label_out_of_range_names_the_value(func):
    with pytest.raises(ValueError, match=r"target contains label 7.*num_classes=3"):
        func(GOOD, np.array([[0, 7], [1, 0]]), 3)
    with pytest.raises(ValueError, match=r"pred contains label 4.*num_classes=3"):
        func(np.array([[0, 4], [1, 0]]), GOOD, 3)
    # the ignore label is allowed in target, and pred is not checked under it
    func(np.array([[0, 9], [1, 0]]), np.array([[0, 255], [1, 0]]), 3, ignore_index=255)


@pytest.mark.parametrize("func", [confusion_matrix, iou_per_class, mean_iou, dice_per_class, mean_dice])
@pytest.mark.parametrize("num_classes,error", [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_bad_num_classes(func, num_classes, error):
    with pytest.raises(error, match="num_classes"):
        func(GOOD, GOOD, num_classes)


def test_bad_ignore_index():
    with pytest.raises(TypeError, match="ignore_index"):
        confusion_matrix(GOOD, GOOD, 2, ignore_index=1.5)
    with pytest.raises(TypeError, match="ignore_index"):
        pixel_accuracy(GOOD, GOOD, ignore_index="255")


def test_everything_ignored():
    everything = np.full((2, 2), 255)
    np.testing.assert_array_equal(confusion_matrix(GOOD, everything, 2, ignore_index=255), 0)
    assert np.isnan(iou_per_class(GOOD, everything, 2, ignore_index=255)).all()
    for func in (pixel_accuracy,):
        with pytest.raises(ValueError, match="ignore_index"):
            func(GOOD, everything, ignore_index=255)
    for func in (mean_iou, mean_dice):
        with pytest.raises(ValueError, match="ignore_index"):
            func(GOOD, everything, 2, ignore_index=255)


def test_non_binary_masks():
    with pytest.raises(ValueError, match="binary.*2"):
        iou(np.array([[0, 2]]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="mask_b must be a binary"):
        dice(np.array([[0, 1]]), np.array([[0, 3]]))


def test_bad_boundary_arguments():
    with pytest.raises(ValueError, match="tolerance"):
        boundary_f1(GOOD, GOOD, tolerance=-1)
    with pytest.raises(ValueError, match="tolerance"):
        boundary_f1(GOOD, GOOD, tolerance=np.nan)
    with pytest.raises(TypeError, match="tolerance"):
        boundary_f1(GOOD, GOOD, tolerance="2")
    with pytest.raises(ValueError, match="label 5"):
        boundary_f1(np.array([[0, 5], [1, 0]]), GOOD, num_classes=2)


# --------------------------------------------------------------------------- what pred says at ignored pixels


@pytest.mark.parametrize("func, args", [(confusion_matrix, (3,)), (iou_per_class, (3,)), (mean_iou, (3,)),
                                        (dice_per_class, (3,)), (mean_dice, (3,)), (pixel_accuracy, ())])
@pytest.mark.parametrize("ignore_index", [255, -1])
@pytest.mark.parametrize("there", [-1, 7, 2**40, 0.5, np.nan])
def test_pred_at_an_ignored_pixel_never_matters(func, args, ignore_index, there):
    # "ignored pixels are left out, whatever pred says there": a negative, out-of-range,
    # huge, fractional or NaN prediction at an ignored pixel gives the same result as 0
    target = np.array([[0, ignore_index, 1], [2, 1, 0]])
    pred = np.array([[0, 0, 1], [2, 0, 0]], dtype=float)
    expected = func(pred, target, *args, ignore_index=ignore_index)
    pred[0, 1] = there
    np.testing.assert_array_equal(func(pred, target, *args, ignore_index=ignore_index), expected)


def test_pred_is_still_checked_where_it_is_scored():
    target = np.array([[0, 255], [1, 0]])
    with pytest.raises(ValueError, match="pred must hold labels >= 0; found -1"):
        confusion_matrix(np.array([[-1, 0], [1, 0]]), target, 2, ignore_index=255)
    with pytest.raises(ValueError, match="pred contains label 7"):
        confusion_matrix(np.array([[7, 0], [1, 0]]), target, 2, ignore_index=255)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(np.zeros((3, 2), int), target, 2, ignore_index=255)


# --------------------------------------------------------------------------- unusual input


def test_uint64_labels_beyond_int64_are_reported_as_they_are():
    big = np.array([[0, 2**63 + 5]], dtype=np.uint64)
    with pytest.raises(ValueError, match=f"below 2\\*\\*63; found {2**63 + 5}"):
        confusion_matrix(big, np.zeros((1, 2), int), 2)
    with pytest.raises(ValueError, match="found 18446744073709551615"):
        iou(np.array([[2**64 - 1]], dtype=np.uint64), np.array([[1]]))


def test_masked_arrays_are_refused_not_silently_unmasked():
    masked = np.ma.masked_array([[0, 1], [1, 0]], mask=[[False, True], [False, False]])
    with pytest.raises(TypeError, match="masked array with 1 masked value"):
        pixel_accuracy(masked, GOOD)
    unmasked = np.ma.masked_array([[0, 1], [1, 0]])  # nothing masked: the values are used
    assert pixel_accuracy(unmasked, np.array([[0, 1], [1, 0]])) == 1.0


def test_huge_num_classes_names_the_parameter():
    for value in (10**30, 2**63, 5000):
        with pytest.raises(ValueError, match="num_classes must be <= 4096"):
            confusion_matrix(GOOD, GOOD, value)


# --------------------------------------------------------------------------- the exercises of lesson 00


def _failure(exercise_id, func):
    from segtutor import exercises

    with pytest.raises(exercises.ExerciseFailed) as info:
        exercises.check(exercise_id, func)
    return str(info.value)


def test_a_nan_result_gets_a_sentence():
    def my_iou(a, b):
        a, b = np.asarray(a, bool), np.asarray(b, bool)
        with np.errstate(invalid="ignore"):
            return float(np.float64((a & b).sum()) / (a | b).sum())

    message = _failure("metrics.iou", my_iou)
    assert "got NaN (not a number): somewhere 0 was divided by 0" in message
    assert "1 by convention" in message


def test_an_integer_division_is_named_and_the_expected_value_given():
    def my_pixel_accuracy(pred, target):
        return int((np.asarray(pred) == np.asarray(target)).sum() // np.size(pred))

    message = _failure("metrics.pixel_accuracy", my_pixel_accuracy)
    assert "case 'worked example': expected 0.777778, got 0 (an integer" in message
    assert "integer division" in message


def test_hints_come_in_stages_and_never_hold_the_answer(monkeypatch):
    from segtutor import exercises
    from segtutor.exercises import _core

    monkeypatch.setattr(_core, "_FAILED_CHECKS", {})  # a fresh session: no failed check yet

    for exercise_id in ("metrics.iou", "metrics.pixel_accuracy", "metrics.mean_iou"):
        ex = exercises.get(exercise_id)
        assert isinstance(ex.hint, tuple) and len(ex.hint) == 2 and ex.hint_for(1) != ex.hint_for(2)
        for stage in ex.hint:
            assert ".mean()" not in stage.replace(" ", "") and "(pred==target)" not in stage.replace(" ", "")

    def wrong(pred, target):
        return 0.5

    first, second = _failure("metrics.pixel_accuracy", wrong), _failure("metrics.pixel_accuracy", wrong)
    hint = exercises.get("metrics.pixel_accuracy").hint
    assert f"Hint: {hint[0]}" in first and f"Hint: {hint[1]}" in second


def test_yours_or_reference_hands_on_only_what_passes_every_check(capsys):
    from segtutor import exercises

    reference = exercises.get("metrics.mean_iou").reference_function()

    def only_visible(pred, target, num_classes):
        # right on the visible cases (which have at most 4 classes), wrong beyond them
        return reference(pred, target, num_classes) if num_classes <= 4 else 0.0

    assert exercises.check("metrics.mean_iou", only_visible).passed
    assert exercises.yours_or_reference("metrics.mean_iou", only_visible) is reference
    out = capsys.readouterr().out
    assert "Using the reference segtutor.metrics.mean_iou" in out and "case 'further check" in out
