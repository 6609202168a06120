"""Exercises on :mod:`segtutor.maskrcnn` (lesson 06): box IoU, anchors, RoIAlign.

Each exercise keeps a catalogue of plausible wrong answers. The comparator runs
every catalogued mistake on the failing case and, when the learner's result is
exactly what that mistake gives, says which mistake it looks like (a pointer,
never the answer). The spec imports only NumPy; the references in
:mod:`segtutor.maskrcnn` are NumPy functions too.
"""

from __future__ import annotations

import copy

import numpy as np

from ._core import Case, Exercise, WrongAnswer, register
from .compare import close, describe_value

# --------------------------------------------------------------------------- diagnosing comparator


def _same(a, b) -> bool:
    try:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True))


def diagnosing(base, wrong_answers=()):
    """Wrap a comparator: on a failure, name the catalogued mistake that gives the same result.

    Parameters
    ----------
    base : callable
        ``compare(expected, got, case) -> None | str``.
    wrong_answers : sequence of WrongAnswer
        Run on the failing case's arguments; the first whose result equals the
        learner's is named in the message ("this is what you get when ...").
    """

    def compare(expected, got, case):
        reason = base(expected, got, case)
        if reason is None:
            return None
        for wrong in wrong_answers:
            try:
                theirs = wrong.func(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            except Exception:  # a mistake may not run on every case
                continue
            if _same(theirs, got) and not _same(theirs, expected):
                return f"{reason} (this is what you get when {wrong.name})"
        return reason

    return compare


def _shape_first(base, what):
    """Check the result's shape first; a transposed result is named as such."""

    def compare(expected, got, case):
        exp = np.asarray(expected)
        try:
            arr = np.asarray(got, dtype=float)
        except (TypeError, ValueError):
            return f"expected an array of shape {exp.shape}, got {describe_value(got)}"
        if arr.shape != exp.shape:
            if exp.ndim == 2 and arr.shape == exp.shape[::-1] and exp.shape[0] != exp.shape[1]:
                return f"expected shape {exp.shape}, got the transposed shape {arr.shape}: {what}"
            return f"expected shape {exp.shape}, got shape {arr.shape}"
        return base(expected, got, case)

    return compare


# --------------------------------------------------------------------------- box IoU


def _iou_plus_one(boxes_a, boxes_b):
    a, b = np.asarray(boxes_a, float).reshape(-1, 4), np.asarray(boxes_b, float).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1, 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1, 0, None)
    inter = w * h
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _iou_parts(a, b):
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return area_a, area_b, w, h


def _iou_no_clamp(boxes_a, boxes_b):
    area_a, area_b, w, h = _iou_parts(boxes_a, boxes_b)
    inter = w * h
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _iou_sum_of_areas(boxes_a, boxes_b):
    area_a, area_b, w, h = _iou_parts(boxes_a, boxes_b)
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    return inter / (area_a[:, None] + area_b[None, :])


def _iou_transposed(boxes_a, boxes_b):
    from segtutor.maskrcnn import box_iou

    return box_iou(boxes_b, boxes_a)


def _iou_xywh(boxes_a, boxes_b):
    def corners(boxes):
        boxes = np.asarray(boxes, float).reshape(-1, 4)
        return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)

    from segtutor.maskrcnn import box_iou

    return box_iou(corners(boxes_a), corners(boxes_b))


def _iou_integer(boxes_a, boxes_b):
    from segtutor.maskrcnn import box_iou

    return box_iou(np.asarray(boxes_a).astype(int), np.asarray(boxes_b).astype(int))


_IOU_WRONG = (
    WrongAnswer("x1 and y1 count as inside the box (+1 pixel)", _iou_plus_one,
                r"touching boxes share an edge.*\+1 pixel"),
    WrongAnswer("the overlap's width and height are not clipped at 0", _iou_no_clamp,
                r"disjoint boxes.*not clipped at 0"),
    WrongAnswer("dividing by the sum of the areas instead of the union", _iou_sum_of_areas,
                r"identical boxes.*sum of the areas"),
    WrongAnswer("rows follow boxes_b instead of boxes_a (arguments swapped)", _iou_transposed,
                r"transposed shape.*row i is box i of boxes_a"),
    WrongAnswer("the boxes are read as [x, y, width, height]", _iou_xywh,
                r"\[x, y, width, height\]"),
    WrongAnswer("coordinates are rounded down to whole pixels", _iou_integer,
                r"fractional corners.*rounded down"),
)


def _random_boxes(rng, n, extent=40.0, fractional=True):
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(1, extent / 2, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    return boxes if fractional else np.round(boxes)


def _iou_cases(rng, hidden):
    if not hidden:
        return [
            Case("touching boxes share an edge, not an area", (np.array([[0.0, 0, 4, 4]]), np.array([[4.0, 0, 8, 4]]))),
            Case("disjoint boxes", (np.array([[0.0, 0, 2, 2]]), np.array([[5.0, 5, 8, 9]]))),
            Case("identical boxes", (np.array([[1.0, 2, 5, 8]]), np.array([[1.0, 2, 5, 8]]))),
            Case("3 boxes against 2 (a 3x2 result)",
                 (np.array([[0.0, 0, 4, 4], [2, 2, 6, 6], [10, 10, 12, 14]]),
                  np.array([[3.0, 3, 9, 6], [0, 0, 4, 4]]))),
            Case("fractional corners", (np.array([[0.5, 0.5, 3.7, 2.5]]), np.array([[1.5, 0.2, 4.9, 2.8]]))),
            Case("no boxes on one side (a 2x0 result)", (np.array([[0.0, 0, 4, 4], [1, 1, 2, 2]]), np.zeros((0, 4)))),
        ]
    return [
        Case("random", (_random_boxes(rng, 5), _random_boxes(rng, 7))),
        Case("random", (_random_boxes(rng, 8, 20, False), _random_boxes(rng, 3, 20, False))),
        Case("random", (_random_boxes(rng, 1), _random_boxes(rng, 1))),
    ]


register(Exercise(
    id="maskrcnn.box_iou",
    title="IoU of every pair of boxes",
    reference="segtutor.maskrcnn.box_iou",
    make_cases=_iou_cases,
    compare=_shape_first(diagnosing(close(rtol=1e-6, atol=1e-9), _IOU_WRONG),
                         "row i is box i of boxes_a, column j is box j of boxes_b"),
    hint=(
        "the overlap of two boxes is itself a box: from the larger of the two x0 to the smaller of the two x1 "
        "(and the same for y); the union is area A + area B - overlap.",
        "broadcast: boxes_a[:, None, k] against boxes_b[None, :, k] gives an (N, M) array for each corner; "
        "an overlap cannot be narrower than 0.",
    ),
    wrong_answers=_IOU_WRONG,
))


# --------------------------------------------------------------------------- anchors of one cell


def _anchors(row, col, stride, sizes, ratios, *, centre=0.0, swap=False, rounded=True, size_major=False,
             half=True, rowcol=False):
    sizes, ratios = np.asarray(sizes, float), np.asarray(ratios, float)
    h_ratios = np.sqrt(ratios)
    w_ratios = 1 / h_ratios
    if swap:
        h_ratios, w_ratios = w_ratios, h_ratios
    if size_major:
        ws = (sizes[:, None] * w_ratios[None, :]).reshape(-1)
        hs = (sizes[:, None] * h_ratios[None, :]).reshape(-1)
    else:
        ws = (w_ratios[:, None] * sizes[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * sizes[None, :]).reshape(-1)
    base = np.stack([-ws, -hs, ws, hs], axis=1) / (2 if half else 1)
    if rounded:
        base = np.round(base.astype(np.float32)).astype(float)
    cx, cy = (row, col) if rowcol else (col, row)
    shift = (np.array([cx, cy, cx, cy], float) + centre) * stride
    return base + shift


_ANCHOR_WRONG = (
    WrongAnswer("each anchor is centred on the middle of its cell", lambda *a: _anchors(*a, centre=0.5),
                r"middle of its cell"),
    WrongAnswer("width and height are swapped (the ratio read as width / height)",
                lambda *a: _anchors(*a, swap=True), r"width / height"),
    WrongAnswer("the corners are not rounded to whole pixels", lambda *a: _anchors(*a, rounded=False),
                r"not rounded"),
    WrongAnswer("the anchors are listed size by size instead of ratio by ratio",
                lambda *a: _anchors(*a, size_major=True), r"size by size"),
    WrongAnswer("row and column are swapped in the shift", lambda *a: _anchors(*a, rowcol=True),
                r"row and column"),
    WrongAnswer("the size is used as the half-width (anchors twice too large)",
                lambda *a: _anchors(*a, half=False), r"twice too large"),
)


def _anchor_cases(rng, hidden):
    if not hidden:
        return [
            Case("cell (0, 0), size 32, three ratios", (0, 0, 16, [32.0], [0.5, 1.0, 2.0])),
            Case("cell (2, 3), stride 8, one square anchor", (2, 3, 8, [16.0], [1.0])),
            Case("cell (1, 4), two sizes and two ratios (order matters)", (1, 4, 4, [8.0, 16.0], [0.5, 2.0])),
            Case("a size whose corners need rounding", (3, 1, 16, [24.0], [0.5, 1.0, 2.0])),
        ]
    cases = []
    for _ in range(3):
        sizes = sorted(float(s) for s in rng.choice([8, 12, 16, 20, 24, 32, 48, 64], int(rng.integers(1, 4)), False))
        ratios = sorted(float(r) for r in rng.choice([0.25, 0.5, 1.0, 2.0, 3.0], int(rng.integers(1, 4)), False))
        cases.append(Case("random", (int(rng.integers(0, 12)), int(rng.integers(0, 12)),
                                     int(rng.choice([4, 8, 16, 32])), sizes, ratios)))
    return cases


register(Exercise(
    id="maskrcnn.cell_anchors",
    title="the anchors of one feature-map cell",
    reference="segtutor.maskrcnn.cell_anchors",
    make_cases=_anchor_cases,
    compare=_shape_first(diagnosing(close(rtol=0, atol=1e-6), _ANCHOR_WRONG),
                         "one row per anchor, 4 columns"),
    hint=(
        "an anchor of size s and ratio r has area s**2 and height / width = r; it is centred on the cell "
        "as torchvision places it (read the text above the exercise), with corners rounded.",
        "compute the corners around (0, 0) first (±width/2, ±height/2), round them, then add the shift of the "
        "cell; loop over ratios on the outside and sizes on the inside.",
    ),
    wrong_answers=_ANCHOR_WRONG,
))


# --------------------------------------------------------------------------- RoIAlign of one box


def _roi_variant(feature, box, output_size, spatial_scale=1.0, sampling_ratio=2, aligned=True, *,
                 offset=None, nearest=False, reduce="mean", samples=None, transpose=False, scale=True):
    """RoIAlign with one convention changed (the catalogue of mistakes)."""
    from segtutor.maskrcnn import bilinear_sample

    feature = np.asarray(feature, float)
    ph = pw = int(output_size) if np.ndim(output_size) == 0 else None
    if ph is None:
        ph, pw = (int(v) for v in output_size)
    s = spatial_scale if scale else 1.0
    off = (0.5 if aligned else 0.0) if offset is None else offset
    x0, y0 = box[0] * s - off, box[1] * s - off
    roi_w, roi_h = box[2] * s - off - x0, box[3] * s - off - y0
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    grid = sampling_ratio if samples is None else samples
    grid_h = grid if grid > 0 else int(np.ceil(roi_h / ph))
    grid_w = grid if grid > 0 else int(np.ceil(roi_w / pw))
    out = np.zeros((ph, pw))
    height, width = feature.shape
    for i in range(ph):
        for j in range(pw):
            values = []
            for iy in range(grid_h):
                y = y0 + i * roi_h / ph + (iy + 0.5) * roi_h / ph / grid_h
                for ix in range(grid_w):
                    x = x0 + j * roi_w / pw + (ix + 0.5) * roi_w / pw / grid_w
                    if nearest:
                        r, c = int(np.clip(np.round(y), 0, height - 1)), int(np.clip(np.round(x), 0, width - 1))
                        values.append(feature[r, c])
                    elif transpose:
                        values.append(bilinear_sample(feature, x, y))
                    else:
                        values.append(bilinear_sample(feature, y, x))
            out[i, j] = max(values) if reduce == "max" else sum(values) / max(len(values), 1)
    return out


_ROI_WRONG = (
    WrongAnswer("aligned=True is ignored (no half-pixel offset)", lambda *a: _roi_variant(*a, offset=0.0),
                r"half-pixel offset"),
    WrongAnswer("the box is not multiplied by spatial_scale", lambda *a: _roi_variant(*a, scale=False),
                r"spatial_scale"),
    WrongAnswer("samples are rounded to the nearest cell (no bilinear interpolation)",
                lambda *a: _roi_variant(*a, nearest=True), r"nearest cell"),
    WrongAnswer("the bin keeps the largest sample instead of the mean (RoIPool's max)",
                lambda *a: _roi_variant(*a, reduce="max"), r"largest sample"),
    WrongAnswer("sampling_ratio is ignored (one sample at the centre of each bin)",
                lambda *a: _roi_variant(*a, samples=1), r"sampling_ratio is ignored"),
    WrongAnswer("rows and columns are swapped (x read as the row)",
                lambda *a: _roi_variant(*a, transpose=True), r"rows and columns are swapped"),
)


def _ramp(height, width):
    return np.add.outer(10.0 * np.arange(height), np.arange(width))


def _roi_cases(rng, hidden):
    if not hidden:
        bumpy = np.round(rng.normal(0, 1, (6, 8)), 2)
        return [
            Case("whole 4x4 ramp, 2x2 bins", (_ramp(4, 4), [0.0, 0.0, 4.0, 4.0], 2, 1.0, 2, True)),
            Case("fractional box on a 6x8 map", (bumpy, [1.3, 0.7, 6.1, 4.9], (2, 3), 1.0, 2, True)),
            Case("stride 4: box in image pixels, spatial_scale 0.25",
                 (bumpy, [6.0, 3.0, 26.0, 19.0], 2, 0.25, 2, True)),
            Case("aligned=False (the legacy convention)", (_ramp(5, 7), [1.0, 1.0, 5.0, 4.0], 2, 1.0, 2, False)),
            Case("sampling_ratio 3 on a wide box", (bumpy, [0.2, 1.0, 7.4, 3.0], (1, 3), 1.0, 3, True)),
        ]
    cases = []
    for _ in range(3):
        height, width = (int(v) for v in rng.integers(5, 11, 2))
        scale = float(rng.choice([1.0, 0.5, 0.25]))
        x0, y0 = rng.uniform(0, width / 2) / scale, rng.uniform(0, height / 2) / scale
        x1, y1 = x0 + rng.uniform(1, width / 2) / scale, y0 + rng.uniform(1, height / 2) / scale
        out = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        cases.append(Case("random", (np.round(rng.normal(0, 1, (height, width)), 3), [x0, y0, x1, y1], out,
                                     scale, int(rng.integers(1, 4)), bool(rng.random() < 0.7))))
    return cases


register(Exercise(
    id="maskrcnn.roi_align_box",
    title="RoIAlign of one box",
    reference="segtutor.maskrcnn.roi_align_box",
    make_cases=_roi_cases,
    compare=_shape_first(diagnosing(close(rtol=1e-6, atol=1e-9), _ROI_WRONG),
                         "the result is (rows, columns) = output_size"),
    hint=(
        "scale the box, shift it by half a cell when aligned, cut it into output_size bins and average "
        "sampling_ratio x sampling_ratio bilinear samples per bin, evenly spaced inside the bin.",
        "sample k of n along a bin of width w starting at x starts is at start + (k + 0.5) * w / n; "
        "follow the bilinear rules in the text above for points near and beyond the border.",
    ),
    wrong_answers=_ROI_WRONG,
))
