"""Comparisons between a reference result and a learner's result.

Each comparator is ``compare(expected, got, case) -> None | str``: ``None`` when
the learner's result is acceptable, otherwise one readable sentence (with a small
text diff for masks). Comparators never show the reference's code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exact", "close", "same_split", "describe_value"]


def describe_value(value, limit: int = 60) -> str:
    """A compact description of a value for a message."""
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
            return f"expected {float(exp):.6g}, got {value:.6g}"
        reason = _shape_reason(exp, got)
        if reason:
            return reason
        array = np.asarray(got, dtype=float)
        ok = np.isclose(array, exp, rtol=rtol, atol=atol, equal_nan=True)
        if ok.all():
            return None
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


def same_split(image_arg: int = 0, rtol: float = 1e-3):
    """Comparator for Otsu-style thresholds: judge the *split*, not the number.

    A threshold ``t`` splits the image into ``image > t`` and the rest. The
    learner's threshold is accepted when it gives the same split as the
    reference, or a split whose between-class variance ``w0 w1 (mu0 - mu1)^2``
    (computed on the pixels themselves) is within ``rtol`` of the reference's:
    a different choice of histogram bins then does not count as an error.

    Examples
    --------
    >>> from segtutor.exercises import Case
    >>> case = Case("c", (np.array([[0, 0], [10, 10]]),))
    >>> same_split()(5.0, 9.0, case) is None
    True
    >>> same_split()(5.0, -1.0, case)
    'threshold -1 gives a between-class variance of 0, the best split reaches 25 (2 pixels are on the other side)'
    """

    def compare(expected, got, case) -> str | None:
        array = _as_array(got)
        if array is None or array.ndim != 0 or not np.issubdtype(array.dtype, np.number):
            return f"expected a single threshold value, got {describe_value(got)}"
        image = np.asarray(case.args[image_arg], dtype=float)
        want, have = image > float(expected), image > float(array)
        if np.array_equal(want, have):
            return None
        best = _between_class_variance(image, want)
        yours = _between_class_variance(image, have)
        if yours >= best * (1 - rtol):
            return None
        n = int((want != have).sum())
        return (
            f"threshold {float(array):.6g} gives a between-class variance of {yours:.6g}, "
            f"the best split reaches {best:.6g} ({n} pixels are on the other side)"
        )

    return compare
