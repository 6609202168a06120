"""Comparisons between a reference result and a learner's result.

Each comparator is ``compare(expected, got, case) -> None | str``: ``None`` when
the learner's result is acceptable, otherwise one readable sentence (with a small
text diff for masks). Comparators never show the reference's code.
"""

from __future__ import annotations

import copy

import numpy as np

__all__ = [
    "boxes", "close", "describe_value", "detections", "exact", "explain", "label_map", "mask", "same_split",
    "tensor_close",
]


def _is_tensor(value) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def describe_value(value, limit: int = 60) -> str:
    """A compact description of a value for a message."""
    if _is_tensor(value):
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        if value.size <= 8:
            text = np.array2string(value, precision=4, separator=", ")
            return f"array({text})"
        return f"array of shape {value.shape}, dtype {value.dtype}"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_array(got):
    try:
        array = np.asarray(got)
    except Exception:
        return None
    if array.dtype == object:
        return None
    return array


def _shape_reason(expected: np.ndarray, got) -> str | None:
    array = _as_array(got)
    if array is None:
        return f"expected an array of shape {expected.shape}, got {describe_value(got)}"
    if array.shape != expected.shape:
        return f"expected shape {expected.shape}, got shape {array.shape}"
    return None


def _mask_diff_text(expected: np.ndarray, got: np.ndarray) -> str:
    from segtutor import viz

    try:
        return viz.ascii_mask_diff(expected, got)
    except (TypeError, ValueError) as exc:  # e.g. NaN in the learner's array
        return f"(no picture of the difference: {exc})"


def exact(expected, got, case=None) -> str | None:
    """Equal values; integer/bool arrays must match pixel for pixel.

    Examples
    --------
    >>> exact(np.array([1, 2]), [1, 3]) is None
    False
    """
    if np.ndim(expected) == 0 and not isinstance(expected, np.ndarray):
        if _as_array(got) is None or np.ndim(got) != 0:
            return f"expected a single number {describe_value(expected)}, got {describe_value(got)}"
        return None if got == expected else f"expected {describe_value(expected)}, got {describe_value(got)}"
    expected = np.asarray(expected)
    reason = _shape_reason(expected, got)
    if reason:
        return reason
    got = np.asarray(got)
    if expected.dtype == bool and got.dtype != bool:
        return f"expected a boolean mask (dtype bool), got dtype {got.dtype}"
    differ = got != expected
    if not differ.any():
        return None
    n = int(differ.sum())
    message = f"{n} of {expected.size} values differ"
    if expected.ndim == 2:
        message += "\n" + _mask_diff_text(expected, got)
    elif expected.size <= 16:
        message += f": expected {describe_value(expected)}, got {describe_value(got)}"
    return message


def close(rtol: float = 1e-6, atol: float = 1e-9):
    """Comparator for floats and float arrays: ``np.allclose`` with these tolerances.

    Examples
    --------
    >>> close()(0.5, 0.5 + 1e-12) is None
    True
    """

    def compare(expected, got, case=None) -> str | None:
        exp = np.asarray(expected, dtype=float)
        if exp.ndim == 0:
            array = _as_array(got)
            if array is None or array.ndim != 0 or not np.issubdtype(array.dtype, np.number):
                return f"expected a single number close to {describe_value(float(exp))}, got {describe_value(got)}"
            value = float(array)
            if np.isnan(value) and np.isnan(exp):
                return None
            if np.isclose(value, float(exp), rtol=rtol, atol=atol):
                return None
            if np.isnan(value):
                return (f"expected {float(exp):.6g}, got NaN (not a number): somewhere 0 was divided by 0, "
                        "e.g. a mean over nothing")
            message = f"expected {float(exp):.6g}, got {value:.6g}"
            if np.issubdtype(array.dtype, np.integer) and float(exp) != round(float(exp)):
                message += f" (an integer, of type {type(got).__name__}: an integer division // or a count not divided?)"
            return message
        reason = _shape_reason(exp, got)
        if reason:
            return reason
        array = np.asarray(got, dtype=float)
        ok = np.isclose(array, exp, rtol=rtol, atol=atol, equal_nan=True)
        if ok.all():
            return None
        nan = np.isnan(array) & ~np.isnan(exp)
        if nan.any():
            where = tuple(int(i) for i in np.argwhere(nan)[0])
            return (f"{int(nan.sum())} of {exp.size} values are NaN (not a number) where numbers were expected, "
                    f"e.g. at index {where} (expected {exp[where]:.6g}): somewhere 0 was divided by 0, "
                    "e.g. a mean over nothing")
        worst = np.unravel_index(np.argmax(np.where(ok, 0, np.abs(array - exp))), exp.shape)
        return (
            f"{int((~ok).sum())} of {exp.size} values differ; e.g. at index {tuple(int(i) for i in worst)} "
            f"expected {exp[worst]:.6g}, got {array[worst]:.6g}"
        )

    return compare


def _between_class_variance(values: np.ndarray, above: np.ndarray) -> float:
    n = values.size
    n1 = int(above.sum())
    if n1 in (0, n):
        return 0.0
    w1 = n1 / n
    mu0, mu1 = values[~above].mean(), values[above].mean()
    return float((1 - w1) * w1 * (mu0 - mu1) ** 2)


def same_split(image_arg: int = 0, rtol: float = 1e-3, exact_split: bool = False):
    """Comparator for Otsu-style thresholds: judge the *split*, not the number.

    A threshold ``t`` splits the image into ``image > t`` and the rest. The
    learner's threshold is accepted when it gives the same split as the
    reference, or a split whose between-class variance ``w0 w1 (mu0 - mu1)^2``
    (computed on the pixels themselves, ``w`` the fractions of pixels) is within
    ``rtol`` of the reference's: a different choice of histogram bins then does
    not count as an error. A wrong threshold is reported with the expected value.
    With ``exact_split=True`` only the very same split is accepted (to recognise
    a known wrong threshold, see :func:`explain`).

    Examples
    --------
    >>> from segtutor.exercises import Case
    >>> case = Case("c", (np.array([[0, 0], [10, 10]]),))
    >>> same_split()(5.0, 9.0, case) is None
    True
    >>> print(same_split()(5.0, -1.0, case))
    expected a threshold near 5 (between-class variance 25); yours, -1, puts every pixel above it: one class is empty and the between-class variance is 0 (2 pixels are on the other side of it)
    """

    def compare(expected, got, case) -> str | None:
        array = _as_array(got)
        if array is None or array.ndim != 0 or not np.issubdtype(array.dtype, np.number) or array.dtype == bool:
            return f"expected a single threshold value, got {describe_value(got)}"
        image = np.asarray(case.args[image_arg], dtype=float)
        if np.isnan(float(array)):
            return f"expected a threshold near {float(expected):.6g}, got NaN (not a number): somewhere 0 was divided by 0"
        want, have = image > float(expected), image > float(array)
        if np.array_equal(want, have):
            return None
        best = _between_class_variance(image, want)
        yours = _between_class_variance(image, have)
        if yours >= best * (1 - rtol) and not exact_split:
            return None
        n = int((want != have).sum())
        above = int(have.sum())
        if above in (0, image.size):
            effect = (f"puts every pixel {'above' if above else 'at or below'} it: one class is empty and the "
                      "between-class variance is 0")
        else:
            effect = (f"gives a between-class variance of {yours:.6g} with {above} of {image.size} pixels above it "
                      f"(the best split has {int(want.sum())})")
        return (
            f"expected a threshold near {float(expected):.6g} (between-class variance {best:.6g}); "
            f"yours, {float(array):.6g}, {effect} ({n} pixels are on the other side of it)"
        )

    return compare

# -- feedback that points at the mistake ----------------------------------------------------


def _integer_kind(array: np.ndarray) -> bool:
    return array.dtype != bool and np.issubdtype(array.dtype, np.integer)


def _relabelling(expected: np.ndarray, got: np.ndarray) -> str | None:
    """How ``got`` is a consistent renaming of ``expected``'s labels, in words, or None."""
    if expected.size == 0 or not np.issubdtype(got.dtype, np.number) or np.isnan(got.astype(float)).any():
        return None
    shift = got.astype(float) - expected.astype(float)
    if np.all(shift == shift.flat[0]) and shift.flat[0] != 0:
        step = shift.flat[0]
        return (f"your labels are the reference's {'+' if step > 0 else '-'} {abs(step):g} "
                "everywhere (the first label is 0)")
    lo, hi = expected.min(), expected.max()
    if lo != hi and np.array_equal(got, hi + lo - expected):
        return f"your labels run the other way: {hi} where the reference has {lo}, and so on"
    pairs = np.unique(np.stack([expected.ravel(), got.ravel()]), axis=1)
    if pairs.shape[1] == np.unique(expected).size == np.unique(got).size:
        return "your map has the same regions as the reference, numbered differently"
    return None


def label_map(expected, got, case=None) -> str | None:
    """Integer labels (a label map, or one label per sample), equal value for value.

    The result must hold integers (any integer dtype; not bool, not float, since
    labels index arrays later) of the expected shape. When the labels are a
    consistent renaming of the expected ones (all shifted by one, reversed,
    permuted), the message says so.

    Examples
    --------
    >>> label_map(np.array([0, 2, 1]), np.array([1, 3, 2]))
    "your labels are the reference's + 1 everywhere (the first label is 0); 3 of 3 values differ: expected array([0, 2, 1]), got array([1, 3, 2])"
    >>> label_map(np.array([0, 1]), np.array([0.0, 1.0]))
    'expected integer labels, got dtype float64 (labels index arrays later on: make them integers)'
    """
    expected = np.asarray(expected)
    reason = _shape_reason(expected, got)
    if reason:
        return reason
    got = np.asarray(got)
    if not _integer_kind(got):
        return (f"expected integer labels, got dtype {got.dtype} "
                "(labels index arrays later on: make them integers)")
    reason = exact(expected, got)
    if reason is None:
        return None
    why = _relabelling(expected, got)
    return f"{why}; {reason}" if why else reason


def mask(expected, got, case=None) -> str | None:
    """A boolean mask (dtype bool) of the expected shape, equal pixel for pixel.

    Examples
    --------
    >>> mask(np.array([[True, False]]), np.array([[1, 0]]))
    'expected a boolean mask (dtype bool), got dtype int64 (a comparison such as a <= b gives booleans)'
    >>> print(mask(np.array([[True, False]]), np.array([[False, True]])).splitlines()[0])
    your mask is the reference's inverted (True where it should be False); 2 of 2 values differ
    """
    expected = np.asarray(expected, dtype=bool)
    reason = _shape_reason(expected, got)
    if reason:
        return reason
    got = np.asarray(got)
    if got.dtype != bool:
        return (f"expected a boolean mask (dtype bool), got dtype {got.dtype} "
                "(a comparison such as a <= b gives booleans)")
    reason = exact(expected, got)
    if reason is None:
        return None
    if np.array_equal(got, ~expected):
        return f"your mask is the reference's inverted (True where it should be False); {reason}"
    return reason


def explain(compare, *mistakes, match=None):
    """A comparator that also names the mistake behind a wrong result.

    ``mistakes`` are ``(sentence, make)`` pairs: ``make(*case.args,
    **case.kwargs)`` computes what a function making that mistake returns on
    the case (``None`` when the mistake makes no difference there). When the
    learner's result fails ``compare`` but equals one of these (by ``compare``
    itself, or by ``match`` when given: a stricter comparator), the first such
    sentence is put in front of the reason. The
    ``make`` functions should be written independently of the catalogue's
    wrong answers (with the library or scikit-image), so that the test of the
    catalogue also tests them.

    Examples
    --------
    >>> from segtutor.exercises import Case
    >>> twice = explain(close(), ("that is twice the answer", lambda x: 2.0 * x))
    >>> twice(1.5, 3.0, Case("c", (1.5,)))
    'that is twice the answer; expected 1.5, got 3'
    """

    def compare_and_explain(expected, got, case=None) -> str | None:
        reason = compare(expected, got, case)
        if reason is None or case is None:
            return reason
        for sentence, make in mistakes:
            try:
                wrong = make(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
                if wrong is None or compare(expected, wrong, case) is None:
                    continue  # the mistake makes no difference on this case
                if (match or compare)(wrong, got, case) is None:
                    return f"{sentence}; {reason}"
            except Exception:  # a diagnosis is a bonus; the plain reason stands
                continue
        return reason

    compare_and_explain.__doc__ = compare.__doc__
    return compare_and_explain


def tensor_close(rtol: float = 1e-5, atol: float = 1e-6, check_dtype: bool = True):
    """Comparator for torch tensors: a tensor, of the expected shape and dtype, with close values.

    Examples
    --------
    >>> import torch
    >>> tensor_close()(torch.ones(2), torch.ones(2)) is None
    True
    >>> tensor_close()(torch.ones(2), torch.ones(2, dtype=torch.float64))
    'expected dtype torch.float32, got torch.float64'
    >>> tensor_close()(torch.ones(2), [1.0, 1.0])
    'expected a torch tensor of shape (2,), got [1.0, 1.0]'
    """

    def compare(expected, got, case=None) -> str | None:
        if not _is_tensor(got):
            return f"expected a torch tensor of shape {tuple(expected.shape)}, got {describe_value(got)}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
        if check_dtype and got.dtype != expected.dtype:
            return f"expected dtype {expected.dtype}, got {got.dtype}"
        exp = expected.detach().double().cpu().numpy()
        have = got.detach().double().cpu().numpy()
        return close(rtol, atol)(exp, have, case)

    return compare


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` boxes in ``(x1, y1, x2, y2)`` form."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _as_boxes(value):
    array = np.asarray(value.detach().cpu().numpy() if _is_tensor(value) else value, dtype=float)
    if array.ndim != 2 or array.shape[1] != 4:
        return None
    return array


def boxes(min_iou: float = 0.99):
    """Comparator for ``(N, 4)`` boxes ``(x1, y1, x2, y2)``: same count, each box's IoU >= ``min_iou``.

    Boxes are compared in order (box i with box i).

    Examples
    --------
    >>> boxes(0.9)(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10.2]])) is None
    True
    >>> boxes(0.9)(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 5]]))
    'box 0: IoU 0.5 with the expected box [0, 0, 10, 10] (needs >= 0.9)'
    """

    def compare(expected, got, case=None) -> str | None:
        exp, have = _as_boxes(expected), _as_boxes(got)
        if have is None:
            return f"expected boxes as an array of shape ({len(exp)}, 4), got {describe_value(got)}"
        if len(have) != len(exp):
            return f"expected {len(exp)} boxes, got {len(have)}"
        for i, (e, h) in enumerate(zip(exp, have)):
            iou = float(_box_iou(e, h)[0, 0])
            if iou < min_iou:
                return (f"box {i}: IoU {iou:.3g} with the expected box "
                        f"[{', '.join(f'{v:g}' for v in e)}] (needs >= {min_iou:g})")
        return None

    return compare


def detections(min_iou: float = 0.5, score_atol: float = 1e-3):
    """Comparator for detections ``{"boxes": (N, 4), "labels": (N,), "scores": (N,)}``, in any order.

    Expected and given detections are matched one to one (Hungarian matching on
    IoU among equal labels); every expected detection needs a partner with IoU >=
    ``min_iou`` and a score within ``score_atol``, and no detection may be left over.

    Examples
    --------
    >>> want = {"boxes": np.array([[0, 0, 4, 4], [5, 5, 9, 9]]), "labels": np.array([1, 2]),
    ...         "scores": np.array([0.9, 0.8])}
    >>> got = {k: v[::-1] for k, v in want.items()}
    >>> detections()(want, got) is None
    True
    """
    from scipy.optimize import linear_sum_assignment

    def compare(expected, got, case=None) -> str | None:
        if not isinstance(got, dict) or not {"boxes", "labels"} <= set(got):
            return f"expected a dict with 'boxes', 'labels' and 'scores', got {describe_value(got)}"
        eb, hb = _as_boxes(expected["boxes"]), _as_boxes(got["boxes"])
        if hb is None:
            return f"'boxes' must have shape (N, 4), got {describe_value(got['boxes'])}"
        el = np.asarray(expected["labels"]).reshape(-1)
        hl = np.asarray(got["labels"].cpu().numpy() if _is_tensor(got["labels"]) else got["labels"]).reshape(-1)
        if len(hl) != len(hb):
            return f"{len(hb)} boxes but {len(hl)} labels"
        if len(hb) != len(eb):
            return f"expected {len(eb)} detections, got {len(hb)}"
        if not len(eb):
            return None
        iou = _box_iou(eb, hb) * (el[:, None] == hl[None, :])
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols):
            if iou[r, c] < min_iou:
                return (f"the expected detection of class {el[r]} at "
                        f"[{', '.join(f'{v:g}' for v in eb[r])}] has no match with IoU >= {min_iou:g}")
            if "scores" in expected and "scores" in got:
                es = float(np.asarray(expected["scores"]).reshape(-1)[r])
                gs = got["scores"]
                hs = float(np.asarray(gs.cpu().numpy() if _is_tensor(gs) else gs).reshape(-1)[c])
                if abs(es - hs) > score_atol:
                    return f"the detection of class {el[r]} has score {hs:.4g}, expected {es:.4g}"
        return None

    return compare
