"""Input validation shared by every public function.

Every public function of segtutor checks what it is given and raises an error
that names what it expected and what it got. These helpers keep the wording
the same across modules::

    image = as_image(image)                    # 2-D or 3-D, finite, non-empty
    gray = as_image(image, channels="gray")    # exactly (H, W)
    labels = as_label_map(labels, "target")    # integer, non-negative
    same_shape(pred, target, "pred", "target")
    k = as_int(k, "k", minimum=1, maximum=n)

``TypeError`` is raised for the wrong kind of object or dtype, ``ValueError``
for the right kind with a wrong shape or value.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_image", "as_label_map", "as_int", "as_float", "as_seed", "same_shape", "describe"]

#: Largest integer parameter accepted when a function sets no tighter bound: beyond it NumPy
#: cannot hold the value (it would wrap or overflow far from the caller's code).
_INT64_MAX = 2**63 - 1


def describe(value) -> str:
    """Short description of a value for an error message."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if value is None:
        return "None"
    return f"{type(value).__name__} {value!r}"[:120]


def _to_array(value, name: str) -> np.ndarray:
    if value is None:
        raise TypeError(f"{name} must be a NumPy array, got None")
    if isinstance(value, np.ma.MaskedArray):
        if np.ma.is_masked(value):
            raise TypeError(
                f"{name} is a masked array with {int(np.ma.count_masked(value))} masked value(s); "
                f"segtutor does not skip masked pixels: fill them ({name}.filled(value)) or pass "
                f"{name}.data to use the values underneath"
            )
        value = value.data
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like, got {describe(value)}: {exc}") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool
    ):
        raise TypeError(
            f"{name} must hold numbers (bool, integer or float), got dtype {array.dtype}"
        )
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real-valued, got complex dtype {array.dtype}")
    return array


def as_image(
    image,
    name: str = "image",
    *,
    channels: str = "any",
    min_size: int = 1,
) -> np.ndarray:
    """Check an image and return it as a NumPy array (no copy when possible).

    Parameters
    ----------
    image : array-like
        Grayscale ``(H, W)`` or colour ``(H, W, C)`` image, any real dtype.
    name : str
        Name used in error messages.
    channels : {"any", "gray", "color"}
        ``"gray"`` demands ``(H, W)``, ``"color"`` demands ``(H, W, 3)`` or
        ``(H, W, 4)`` (alpha is dropped), ``"any"`` accepts either.
    min_size : int
        Smallest number of pixels accepted.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    TypeError
        If ``image`` is not numeric.
    ValueError
        If it is empty, has the wrong number of dimensions, or holds NaN/inf.

    Examples
    --------
    >>> as_image(np.zeros((2, 3))).shape
    (2, 3)
    """
    array = _to_array(image, name)
    expected = {
        "gray": "a 2-D grayscale array of shape (H, W)",
        "color": "a colour array of shape (H, W, 3)",
        "any": "a grayscale (H, W) or colour (H, W, C) array",
    }[channels]
    if array.ndim not in (2, 3) or (channels == "gray" and array.ndim != 2):
        raise ValueError(f"{name} must be {expected}; got {array.ndim}-D shape {array.shape}")
    if channels == "color":
        if array.ndim != 3 or array.shape[2] not in (3, 4):
            raise ValueError(f"{name} must be {expected}; got shape {array.shape}")
        array = array[..., :3]
    if array.ndim == 3 and array.shape[2] == 0:
        raise ValueError(f"{name} has no channels; expected {expected}, got shape {array.shape}")
    if array.size == 0 or min(array.shape[:2]) == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); expected {expected} with pixels")
    if array.shape[0] * array.shape[1] < min_size:
        raise ValueError(
            f"{name} has {array.shape[0] * array.shape[1]} pixels; at least {min_size} are needed"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "inf"
        raise ValueError(f"{name} contains {bad}; expected finite pixel values")
    return array


def as_label_map(labels, name: str = "labels", *, ndim: int | tuple = 2) -> np.ndarray:
    """Check a label map: integer (or bool) values >= 0; returns an int64 array.

    Float arrays are accepted only when every value is a whole number.

    Examples
    --------
    >>> as_label_map([[0, 1], [2, 1]]).dtype
    dtype('int64')
    """
    array = _to_array(labels, name)
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if array.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be a {want} label map; got {array.ndim}-D shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); expected a label map with pixels")
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or inf; expected integer class labels")
        if not np.all(array == np.round(array)):
            raise TypeError(f"{name} must hold integer class labels; got non-integer floats")
    if array.dtype == np.uint64 and int(array.max()) > _INT64_MAX:
        raise ValueError(
            f"{name} must hold labels below 2**63; found {int(array.max())}"
        )
    array = array.astype(np.int64, copy=False)
    if array.min() < 0:
        raise ValueError(f"{name} must hold labels >= 0; found {int(array.min())}")
    return array


def same_shape(a: np.ndarray, b: np.ndarray, name_a: str = "pred", name_b: str = "target") -> None:
    """Raise ``ValueError`` unless two arrays have the same shape."""
    if np.shape(a) != np.shape(b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape; got {np.shape(a)} and {np.shape(b)}"
        )


def as_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Check an integer parameter (bool is refused) and its range.

    Examples
    --------
    >>> as_int(3, "k", minimum=1)
    3
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {describe(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    if abs(value) > _INT64_MAX:
        raise ValueError(f"{name} is too large: {value} does not fit in a 64-bit integer")
    return value


def as_seed(seed, name: str = "seed", *, generator: bool = True):
    """Check a random seed: an int >= 0 or, with ``generator=True``, a NumPy ``Generator``.

    Returns a ``numpy.random.Generator`` (the one given, or a new one seeded with ``seed``).

    Examples
    --------
    >>> bool(as_seed(3).integers(10) == np.random.default_rng(3).integers(10))
    True
    """
    if generator and isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        kinds = "an int >= 0 or a numpy.random.Generator" if generator else "an int >= 0"
        raise TypeError(f"{name} must be {kinds}, got {describe(seed)}")
    if seed < 0:
        raise ValueError(f"{name} must be >= 0, got {int(seed)}")
    return np.random.default_rng(int(seed))


def as_float(value, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """Check a finite real parameter and its range.

    Examples
    --------
    >>> as_float(0.5, "sigma", minimum=0)
    0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value
