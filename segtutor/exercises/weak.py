"""Exercises on :mod:`segtutor.weak` (lesson 05).

Four small pieces of training from boxes: a box as a mask in torchvision's
convention (``x1``, ``y1`` exclusive), a box with an ignored border band, the IoU of
a pseudo-label that ignores pixels, and filling overlapping boxes so that the
smaller box wins. Each exercise keeps a catalogue of plausible wrong answers
(:class:`~segtutor.exercises._core.WrongAnswer`); the test suite proves that the
visible cases reject each one with a message that points at the mistake. The
diagnoses (``explain``) are computed with scikit-image and scikit-learn, not with
the catalogue's code.

This module imports neither torch nor :mod:`segtutor.weak` at import time.
"""

from __future__ import annotations

import numpy as np

from ._core import Case, Exercise, WrongAnswer, register
from .compare import close, explain, label_map, mask

_IGNORE = 255


def _rectangle(shape, start, end=None, extent=None):
    """A boolean mask drawn by ``skimage.draw.rectangle`` (``end`` inclusive), clipped to ``shape``."""
    from skimage.draw import rectangle

    out = np.zeros(shape, dtype=bool)
    rows, cols = rectangle(start, end=end, extent=extent, shape=shape)
    out[rows.astype(int), cols.astype(int)] = True
    return out


def _ints(box):
    return [int(v) for v in box]


# =========================================================================== a box as a mask


_BOX_MISTAKES = (
    ("x1 and y1 are exclusive: the box covers columns x0 .. x1 - 1 and rows y0 .. y1 - 1, so your mask has "
     "one row and one column too many",
     lambda box, shape: _rectangle(shape, (_ints(box)[1], _ints(box)[0]), end=(_ints(box)[3], _ints(box)[2]))),
    ("rows and columns are swapped: x counts columns (the second index of mask[row, col]), y counts rows",
     lambda box, shape: _rectangle(shape, (_ints(box)[0], _ints(box)[1]), end=(_ints(box)[2] - 1, _ints(box)[3] - 1))),
    ("x0 and y0 are inclusive: the first row and column of the box belong to it",
     lambda box, shape: _rectangle(shape, (_ints(box)[1] + 1, _ints(box)[0] + 1),
                                   end=(_ints(box)[3] - 1, _ints(box)[2] - 1))),
    ("the box is (x0, y0, x1, y1), two corners, not (x, y, width, height)",
     lambda box, shape: _rectangle(shape, (_ints(box)[1], _ints(box)[0]), extent=(_ints(box)[3], _ints(box)[2]))),
    ("shape is (H, W): H rows, W columns",
     lambda box, shape: _rectangle((shape[1], shape[0]), (_ints(box)[1], _ints(box)[0]),
                                   end=(_ints(box)[3] - 1, _ints(box)[2] - 1))),
)


def _box_cases(rng, hidden):
    if not hidden:
        return [
            Case("a 3x2 box in a 6x8 image", ([2, 1, 5, 3], (6, 8))),
            Case("a box at the image's top-left corner", ([0, 0, 4, 2], (5, 7))),
            Case("a box reaching the right and bottom edges (x1 = W, y1 = H)", ([3, 2, 9, 7], (7, 9))),
            Case("a single pixel", ([4, 1, 5, 2], (4, 6))),
            Case("a tall box in a wide image", ([6, 1, 8, 6], (7, 12))),
            Case("a box as make_instance_scene gives it (float32)",
                 (np.array([1.0, 2.0, 4.0, 5.0], dtype=np.float32), (6, 6))),
        ]
    cases = []
    for _ in range(6):
        height, width = (int(v) for v in rng.integers(4, 30, size=2))
        x0, x1 = sorted(int(v) for v in rng.choice(width + 1, size=2, replace=False))
        y0, y1 = sorted(int(v) for v in rng.choice(height + 1, size=2, replace=False))
        cases.append(Case("random", ([x0, y0, x1, y1], (height, width))))
    return cases


def _wa_box_inclusive(box, shape):
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.zeros(shape, dtype=bool)
    out[y0:y1 + 1, x0:x1 + 1] = True
    return out


def _wa_box_swapped(box, shape):
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.zeros(shape, dtype=bool)
    out[x0:x1, y0:y1] = True
    return out


def _wa_box_skips_first(box, shape):
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.zeros(shape, dtype=bool)
    out[y0 + 1:y1, x0 + 1:x1] = True
    return out


def _wa_box_xywh(box, shape):
    x, y, w, h = (int(v) for v in box)
    out = np.zeros(shape, dtype=bool)
    out[y:y + h, x:x + w] = True
    return out


def _wa_box_shape_wh(box, shape):
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.zeros((shape[1], shape[0]), dtype=bool)
    out[y0:y1, x0:x1] = True
    return out


def _wa_box_integers(box, shape):
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.zeros(shape, dtype=np.int64)
    out[y0:y1, x0:x1] = 1
    return out


register(Exercise(
    id="weak.box_to_mask",
    title="a box as a mask",
    reference="segtutor.weak.box_to_mask",
    make_cases=_box_cases,
    compare=explain(mask, *_BOX_MISTAKES),
    hint=(
        "a torchvision box (x0, y0, x1, y1) names two corners in pixels: x runs along the columns, y along the "
        "rows, and the second corner is just outside the box.",
        "start from np.zeros(shape, dtype=bool) and set one slice of it; remember that mask[row, col] puts the "
        "row first, and that the coordinates may arrive as floats.",
    ),
    wrong_answers=(
        WrongAnswer("x1 and y1 taken as inclusive", _wa_box_inclusive, r"exclusive"),
        WrongAnswer("rows and columns swapped", _wa_box_swapped, r"swapped"),
        WrongAnswer("skips the first row and column", _wa_box_skips_first, r"x0 and y0 are inclusive"),
        WrongAnswer("reads the box as (x, y, width, height)", _wa_box_xywh, r"width, height"),
        WrongAnswer("builds a (W, H) mask", _wa_box_shape_wh, r"shape is \(H, W\)"),
        WrongAnswer("returns 0/1 integers", _wa_box_integers, r"boolean mask"),
    ),
))


# =========================================================================== the ignored band


def _band_reference_parts(box, shape, band):
    """(inside the box, the centre) as boolean masks, drawn with scikit-image."""
    x0, y0, x1, y1 = _ints(box)
    inside = _rectangle(shape, (y0, x0), end=(y1 - 1, x1 - 1))
    if y1 - band > y0 + band and x1 - band > x0 + band:
        centre = _rectangle(shape, (y0 + band, x0 + band), end=(y1 - band - 1, x1 - band - 1))
    else:
        centre = np.zeros(shape, dtype=bool)
    return inside, centre


def _band_map(inside, centre, band_value=_IGNORE, centre_value=1):
    out = np.zeros(inside.shape, dtype=np.int64)
    out[inside] = band_value
    out[centre] = centre_value
    return out


def _band_outside(box, shape, band):
    from skimage.morphology import dilation, footprint_rectangle

    inside, _ = _band_reference_parts(box, shape, 0)
    grown = dilation(inside, footprint_rectangle((2 * band + 1, 2 * band + 1))) if band else inside
    out = np.zeros(shape, dtype=np.int64)
    out[grown] = _IGNORE
    out[inside] = 1
    return out


_BAND_MISTAKES = (
    ("the band lies inside the box, along its border: the box's own border pixels are the unsure ones",
     _band_outside),
    ("the band runs along all four sides of the box, the right and bottom ones too",
     lambda box, shape, band: _band_map(_band_reference_parts(box, shape, 0)[0],
                                        _rectangle(shape, (_ints(box)[1] + band, _ints(box)[0] + band),
                                                   end=(_ints(box)[3] - 1, _ints(box)[2] - 1)))),
    ("the band is `band` pixels wide on each side, not 2 * band",
     lambda box, shape, band: _band_map(*_band_reference_parts(box, shape, 2 * band))),
    (f"ignored pixels are labelled {_IGNORE}, not 0: 0 would teach the network that they are background",
     lambda box, shape, band: _band_map(*_band_reference_parts(box, shape, band), band_value=0)),
    ("the centre of the box is the object (1) and the band is ignored, not the other way round",
     lambda box, shape, band: _band_map(_band_reference_parts(box, shape, band)[0],
                                        _band_reference_parts(box, shape, band)[1], band_value=1,
                                        centre_value=_IGNORE)),
)


def _band_cases(rng, hidden):
    if not hidden:
        return [
            Case("a 6x5 box with a band of 1", ([1, 1, 7, 6], (8, 9), 1)),
            Case("band 0: the filled box", ([2, 0, 5, 3], (4, 6), 0)),
            Case("a band of 2 in a box at the corner", ([0, 0, 8, 7], (9, 10), 2)),
            Case("a band wider than half the box: no centre left", ([0, 0, 2, 2], (10, 10), 3)),
            Case("a wide box reaching the image's edges", ([3, 2, 12, 7], (7, 12), 2)),
        ]
    cases = []
    for _ in range(6):
        height, width = (int(v) for v in rng.integers(5, 30, size=2))
        x0, x1 = sorted(int(v) for v in rng.choice(width + 1, size=2, replace=False))
        y0, y1 = sorted(int(v) for v in rng.choice(height + 1, size=2, replace=False))
        cases.append(Case("random", ([x0, y0, x1, y1], (height, width), int(rng.integers(0, 5)))))
    return cases


def _wa_band_outside(box, shape, band):
    x0, y0, x1, y1 = box
    out = np.zeros(shape, dtype=np.int64)
    out[max(y0 - band, 0):y1 + band, max(x0 - band, 0):x1 + band] = _IGNORE
    out[y0:y1, x0:x1] = 1
    return out


def _wa_band_two_sides(box, shape, band):
    x0, y0, x1, y1 = box
    out = np.zeros(shape, dtype=np.int64)
    out[y0:y1, x0:x1] = _IGNORE
    out[y0 + band:y1, x0 + band:x1] = 1
    return out


def _wa_band_double(box, shape, band):
    x0, y0, x1, y1 = box
    out = np.zeros(shape, dtype=np.int64)
    out[y0:y1, x0:x1] = _IGNORE
    if y1 - 2 * band > y0 + 2 * band and x1 - 2 * band > x0 + 2 * band:
        out[y0 + 2 * band:y1 - 2 * band, x0 + 2 * band:x1 - 2 * band] = 1
    return out


def _wa_band_as_background(box, shape, band):
    x0, y0, x1, y1 = box
    out = np.zeros(shape, dtype=np.int64)
    if y1 - band > y0 + band and x1 - band > x0 + band:
        out[y0 + band:y1 - band, x0 + band:x1 - band] = 1
    return out


def _wa_band_inverted(box, shape, band):
    x0, y0, x1, y1 = box
    out = np.zeros(shape, dtype=np.int64)
    out[y0:y1, x0:x1] = 1
    if y1 - band > y0 + band and x1 - band > x0 + band:
        out[y0 + band:y1 - band, x0 + band:x1 - band] = _IGNORE
    return out


def _wa_band_negative_slice(box, shape, band):
    x0, y0, x1, y1 = box
    out = np.zeros(shape, dtype=np.int64)
    out[y0:y1, x0:x1] = _IGNORE
    out[y0 + band:y1 - band, x0 + band:x1 - band] = 1  # a negative end counts from the image's far edge
    return out


def _band_negative_slice_mistake(box, shape, band):
    x0, y0, x1, y1 = _ints(box)
    if y1 - band >= 0 and x1 - band >= 0:
        return None  # the slice ends are not negative: no difference
    height, width = shape
    rows = range(height)[y0 + band:y1 - band]
    cols = range(width)[x0 + band:x1 - band]
    inside, _ = _band_reference_parts(box, shape, band)
    out = _band_map(inside, np.zeros(shape, dtype=bool))
    if len(rows) and len(cols):
        out[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = 1
    return out


def _wa_band_float(box, shape, band):
    x0, y0, x1, y1 = box
    out = np.zeros(shape)
    out[y0:y1, x0:x1] = _IGNORE
    if y1 - band > y0 + band and x1 - band > x0 + band:
        out[y0 + band:y1 - band, x0 + band:x1 - band] = 1
    return out


register(Exercise(
    id="weak.box_with_band",
    title="a box with an ignored band",
    reference="segtutor.weak.box_with_band",
    make_cases=_band_cases,
    compare=explain(label_map, *_BAND_MISTAKES,
                    ("when the band is wider than half the box, no centre is left; a negative slice end such "
                     "as y1 - band < 0 counts from the far edge of the image", _band_negative_slice_mistake)),
    hint=(
        "a tight box surely holds its object in the middle, but near its border it holds background too: "
        f"label the middle 1, the border band {_IGNORE} (ignored), and everything outside the box 0.",
        f"set the whole box to {_IGNORE} first, then the box shrunk by `band` pixels on every side to 1; check "
        "that the shrunk box is not empty before you slice (Python counts a negative index from the end).",
    ),
    wrong_answers=(
        WrongAnswer("the band drawn outside the box", _wa_band_outside, r"inside the box"),
        WrongAnswer("the band on two sides only", _wa_band_two_sides, r"all four sides"),
        WrongAnswer("a band of 2 * band", _wa_band_double, r"not 2 \* band"),
        WrongAnswer("the band labelled background", _wa_band_as_background, r"not 0"),
        WrongAnswer("centre and band swapped", _wa_band_inverted, r"not the other way round"),
        WrongAnswer("negative slice ends", _wa_band_negative_slice, r"negative slice end"),
        WrongAnswer("a float map", _wa_band_float, r"integer labels"),
    ),
))


# =========================================================================== IoU of a pseudo-label


def _kept(pseudo, truth):
    pseudo, truth = np.asarray(pseudo), np.asarray(truth, dtype=bool)
    kept = pseudo != _IGNORE
    return (pseudo[kept] == 1), truth[kept], pseudo, truth


def _score(metric, pseudo, truth):
    import sklearn.metrics

    y_pred, y_true, _, _ = _kept(pseudo, truth)
    return float(getattr(sklearn.metrics, metric)(y_true, y_pred, zero_division=1.0))


_IOU_MISTAKES = (
    (f"ignored pixels ({_IGNORE}) are neither object nor background: leave them out, do not count them as object",
     lambda pseudo, truth: _score("jaccard_score", np.where(np.asarray(pseudo) == _IGNORE, 1, pseudo), truth)),
    ("leave the ignored pixels out of the truth as well: the network never learns from them",
     lambda pseudo, truth: float(__import__("sklearn.metrics").metrics.jaccard_score(
         np.asarray(truth, dtype=bool).ravel(), (np.asarray(pseudo) == 1).ravel(), zero_division=1.0))),
    ("that is the share of the pseudo-label that is right (precision): divide by the union, not by the "
     "pseudo-label's area", lambda pseudo, truth: _score("precision_score", pseudo, truth)),
    ("that is the share of the object that is found (recall): divide by the union, not by the true area",
     lambda pseudo, truth: _score("recall_score", pseudo, truth)),
    ("that is the Dice coefficient 2|A∩B| / (|A| + |B|), not the IoU |A∩B| / |A∪B|",
     lambda pseudo, truth: _score("f1_score", pseudo, truth)),
    ("the union |A∪B| is |A| + |B| - |A∩B|: the overlap must not be counted twice",
     lambda pseudo, truth: _score("f1_score", pseudo, truth) / 2),
    ("an IoU is a fraction in [0, 1], not a percentage",
     lambda pseudo, truth: 100 * _score("jaccard_score", pseudo, truth)),
)


def _iou_case(name, pseudo, truth):
    return Case(name, (np.asarray(pseudo, dtype=np.int64), np.asarray(truth, dtype=bool)))


def _iou_cases(rng, hidden):
    if not hidden:
        truth = np.zeros((6, 7), dtype=bool)
        truth[1:5, 2:6] = True
        truth[1, 2] = truth[4, 5] = False  # a rounded object
        filled = np.zeros((6, 7), dtype=np.int64)
        filled[1:5, 2:6] = 1
        banded = np.where(filled == 1, _IGNORE, 0)
        banded[2:4, 3:5] = 1
        shifted = np.zeros((6, 7), dtype=np.int64)
        shifted[0:4, 3:7] = 1
        shifted[0, 3] = _IGNORE
        return [
            _iou_case("the filled box of a rounded object", filled, truth),
            _iou_case("a box with an ignored band", banded, truth),
            _iou_case("a shifted pseudo-label with one ignored pixel", shifted, truth),
            _iou_case("half of the object, the other half ignored", np.where(truth, np.where(
                np.arange(7) < 4, 1, _IGNORE), 0), truth),
            _iou_case("nothing labelled object anywhere", np.where(truth, _IGNORE, 0), truth),
        ]
    cases = []
    for _ in range(6):
        shape = tuple(int(v) for v in rng.integers(4, 20, size=2))
        truth = rng.random(shape) < 0.4
        pseudo = np.where(rng.random(shape) < 0.2, ~truth, truth).astype(np.int64)
        pseudo[rng.random(shape) < 0.25] = _IGNORE
        cases.append(_iou_case("random", pseudo, truth))
    return cases


def _wa_iou_ignored_as_object(pseudo, truth):
    p = pseudo != 0
    return (p & truth).sum() / (p | truth).sum()


def _wa_iou_truth_not_masked(pseudo, truth):
    p = pseudo == 1
    return (p & truth).sum() / (p | truth).sum()


def _masked(pseudo, truth):
    kept = pseudo != _IGNORE
    return (pseudo == 1) & kept, truth & kept


def _wa_iou_precision(pseudo, truth):
    p, t = _masked(pseudo, truth)
    return (p & t).sum() / p.sum() if p.sum() else 1.0


def _wa_iou_recall(pseudo, truth):
    p, t = _masked(pseudo, truth)
    return (p & t).sum() / t.sum() if t.sum() else 1.0


def _wa_iou_dice(pseudo, truth):
    p, t = _masked(pseudo, truth)
    total = p.sum() + t.sum()
    return 2 * (p & t).sum() / total if total else 1.0


def _wa_iou_sum_union(pseudo, truth):
    p, t = _masked(pseudo, truth)
    total = p.sum() + t.sum()
    return (p & t).sum() / total if total else 1.0


def _wa_iou_percent(pseudo, truth):
    p, t = _masked(pseudo, truth)
    union = (p | t).sum()
    return 100 * (p & t).sum() / union if union else 100.0


def _wa_iou_empty_is_zero(pseudo, truth):
    p, t = _masked(pseudo, truth)
    union = (p | t).sum()
    return float((p & t).sum() / union) if union else 0.0


register(Exercise(
    id="weak.pseudo_label_iou",
    title="IoU of a pseudo-label",
    reference="segtutor.weak.pseudo_label_iou",
    make_cases=_iou_cases,
    compare=explain(close(rtol=1e-9, atol=1e-12),
                    ("two empty masks agree perfectly: when nothing is object in either, the IoU is 1.0 "
                     "(as metrics.iou in lesson 00)",
                     lambda pseudo, truth: 0.0 if not (_kept(pseudo, truth)[0].any() or _kept(pseudo, truth)[1].any())
                     else None),
                    *_IOU_MISTAKES),
    hint=(
        f"the IoU is |A∩B| / |A∪B| over the pixels the pseudo-label speaks about; pixels labelled {_IGNORE} "
        "are left out of the comparison altogether.",
        f"make a boolean mask `kept = pseudo != {_IGNORE}`, keep only those pixels of (pseudo == 1) and of the "
        "truth, then count; think about what to return when the union is empty.",
    ),
    wrong_answers=(
        WrongAnswer("ignored pixels counted as object", _wa_iou_ignored_as_object, r"do not count them as object"),
        WrongAnswer("ignored pixels kept in the truth", _wa_iou_truth_not_masked, r"out of the truth"),
        WrongAnswer("divides by the pseudo-label's area", _wa_iou_precision, r"precision"),
        WrongAnswer("divides by the true area", _wa_iou_recall, r"recall"),
        WrongAnswer("the Dice coefficient", _wa_iou_dice, r"Dice"),
        WrongAnswer("union as |A| + |B|", _wa_iou_sum_union, r"counted twice"),
        WrongAnswer("a percentage", _wa_iou_percent, r"not a percentage"),
        WrongAnswer("0 for two empty masks", _wa_iou_empty_is_zero, r"two empty masks"),
    ),
))


# =========================================================================== overlapping boxes


def _paint(boxes, labels, shape, order, combine=None, inclusive=False):
    out = np.zeros(shape, dtype=np.int64)
    for i in order:
        x0, y0, x1, y1 = _ints(boxes[i])
        region = _rectangle(shape, (y0, x0), end=(y1 - (0 if inclusive else 1), x1 - (0 if inclusive else 1)))
        out[region] = labels[i] if combine is None else combine(out[region], labels[i])
    return out


def _areas(boxes):
    return [(int(b[2]) - int(b[0])) * (int(b[3]) - int(b[1])) for b in boxes]


def _by(key, boxes, reverse=False):
    """Painting order: ``key`` descending (the smallest is painted last and wins); ``reverse``: ascending."""
    return sorted(range(len(boxes)), key=lambda i: key[i], reverse=not reverse)


_OVERLAP_MISTAKES = (
    ("between boxes of the same area, the one listed first wins",
     lambda boxes, labels, shape: _paint(boxes, labels, shape, _by([(a, -i) for i, a in enumerate(_areas(boxes))],
                                                                   boxes))),
    ("the rule compares the boxes' areas, not their class labels",
     lambda boxes, labels, shape: _paint(boxes, labels, shape, range(len(boxes)), combine=np.maximum)),
    ("compare areas, width x height, not width + height",
     lambda boxes, labels, shape: _paint(boxes, labels, shape, _by(
         [((int(b[2]) - int(b[0])) + (int(b[3]) - int(b[1])), i) for i, b in enumerate(boxes)], boxes))),
    ("labels must not be added up where boxes overlap: a pixel gets one class",
     lambda boxes, labels, shape: _paint(boxes, labels, shape, range(len(boxes)), combine=np.add)),
    ("where boxes overlap, the smaller box (by area) wins, not the one listed later",
     lambda boxes, labels, shape: _paint(boxes, labels, shape, range(len(boxes)))),
    ("where boxes overlap, the smaller box wins, not the larger one",
     lambda boxes, labels, shape: _paint(boxes, labels, shape, _by(_areas(boxes), boxes, reverse=True))),
    ("x1 and y1 are exclusive: each box has one row and one column too many",
     lambda boxes, labels, shape: _paint(boxes, labels, shape, _by(list(zip(_areas(boxes), range(len(boxes)))),
                                                                   boxes), inclusive=True)),
)


def _overlap_cases(rng, hidden):
    if not hidden:
        return [
            Case("two boxes apart", ([[0, 0, 3, 2], [4, 2, 7, 5]], [1, 3], (6, 8))),
            Case("a small box listed after a large one", ([[0, 0, 6, 5], [3, 2, 5, 4]], [1, 3], (6, 7))),
            Case("a small box listed before a large one", ([[3, 2, 5, 4], [0, 0, 6, 5]], [3, 1], (6, 7))),
            Case("a small box of a lower class listed first", ([[1, 1, 3, 3], [0, 0, 6, 5]], [1, 2], (6, 7))),
            Case("equal areas: the box listed first wins", ([[1, 1, 5, 3], [3, 2, 7, 4]], [2, 1], (5, 8))),
            Case("a long thin box over a square one", ([[0, 0, 5, 5], [0, 2, 10, 4]], [1, 3], (6, 11))),
        ]
    cases = []
    for _ in range(5):
        height, width = (int(v) for v in rng.integers(6, 20, size=2))
        boxes = []
        for _ in range(int(rng.integers(2, 5))):
            x0, x1 = sorted(int(v) for v in rng.choice(width + 1, size=2, replace=False))
            y0, y1 = sorted(int(v) for v in rng.choice(height + 1, size=2, replace=False))
            boxes.append([x0, y0, x1, y1])
        labels = [int(v) for v in rng.integers(1, 4, size=len(boxes))]
        cases.append(Case("random", (boxes, labels, (height, width))))
    return cases


def _wa_fill(boxes, labels, shape, order, op=None, extra=0):
    out = np.zeros(shape, dtype=np.int64)
    for i in order:
        x0, y0, x1, y1 = boxes[i]
        if op is None:
            out[y0:y1 + extra, x0:x1 + extra] = labels[i]
        else:
            out[y0:y1, x0:x1] = op(out[y0:y1, x0:x1], labels[i])
    return out


def _area(box):
    return (box[2] - box[0]) * (box[3] - box[1])


def _wa_overlap_drawing_order(boxes, labels, shape):
    return _wa_fill(boxes, labels, shape, range(len(boxes)))


def _wa_overlap_larger_wins(boxes, labels, shape):
    return _wa_fill(boxes, labels, shape, np.argsort([_area(b) for b in boxes], kind="stable"))


def _wa_overlap_ties_last(boxes, labels, shape):
    return _wa_fill(boxes, labels, shape, np.argsort([-_area(b) for b in boxes], kind="stable"))


def _wa_overlap_max_class(boxes, labels, shape):
    return _wa_fill(boxes, labels, shape, range(len(boxes)), op=np.maximum)


def _wa_overlap_sum(boxes, labels, shape):
    return _wa_fill(boxes, labels, shape, range(len(boxes)), op=np.add)


def _wa_overlap_perimeter(boxes, labels, shape):
    half = [-((b[2] - b[0]) + (b[3] - b[1])) for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: (half[i], -i))
    return _wa_fill(boxes, labels, shape, order)


def _wa_overlap_inclusive(boxes, labels, shape):
    order = sorted(range(len(boxes)), key=lambda i: (-_area(boxes[i]), -i))
    return _wa_fill(boxes, labels, shape, order, extra=1)


register(Exercise(
    id="weak.filled_boxes",
    title="overlapping boxes: the smaller wins",
    reference="segtutor.weak.filled_boxes",
    make_cases=_overlap_cases,
    compare=explain(label_map, *_OVERLAP_MISTAKES),
    hint=(
        "paint the boxes one after the other, each over the ones before: the box painted last wins where they "
        "overlap, so choose the order in which to paint them.",
        "sort the box indices by area (width x height), largest first, so that the smallest is painted last; "
        "between equal areas the box listed first must end on top (sorted() is stable: think about the key).",
    ),
    wrong_answers=(
        WrongAnswer("drawing order: the later box wins", _wa_overlap_drawing_order, r"not the one listed later"),
        WrongAnswer("the larger box wins", _wa_overlap_larger_wins, r"not the larger one"),
        WrongAnswer("ties go to the box listed last", _wa_overlap_ties_last, r"same area"),
        WrongAnswer("the larger class id wins", _wa_overlap_max_class, r"not their class labels"),
        WrongAnswer("labels added up", _wa_overlap_sum, r"added up"),
        WrongAnswer("width + height instead of the area", _wa_overlap_perimeter, r"not width \+ height"),
        WrongAnswer("x1 and y1 taken as inclusive", _wa_overlap_inclusive, r"exclusive"),
    ),
))
