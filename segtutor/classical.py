"""Threshold and region based segmentation, written out in plain NumPy.

These are reference implementations for lesson 01. Each function does one
step of a classical pipeline and is small enough to read in one sitting:

* :func:`histogram`, :func:`between_class_variance`, :func:`otsu_threshold`
  and :func:`multiotsu_thresholds` pick global thresholds from the histogram;
* :func:`local_threshold` computes a threshold per pixel from its
  neighbourhood;
* :func:`apply_threshold` and :func:`multi_threshold` turn thresholds into a
  mask or a label map;
* :func:`label_components`, :func:`region_grow` and :func:`count_objects`
  work on connected regions; :func:`clean_mask` tidies a mask before counting
  (fills holes, opens, drops specks).

The results agree with scikit-image (``skimage.filters.threshold_otsu``,
``threshold_multiotsu``, ``threshold_local``, ``skimage.measure.label`` and
``skimage.segmentation.flood``), which the tests use as an independent check;
this module itself uses only NumPy (and ``scipy.ndimage`` for the filters of
:func:`local_threshold` and the morphology of :func:`clean_mask`).

Examples
--------
>>> import numpy as np
>>> from segtutor import classical
>>> image = np.array([[10, 10, 200], [10, 200, 200]], dtype=np.uint8)
>>> t = classical.otsu_threshold(image)
>>> t
10.0
>>> classical.apply_threshold(image, t).astype(int)
array([[0, 0, 1],
       [0, 1, 1]])
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from ._checks import _to_array, as_float, as_image, as_int, describe, same_shape

__all__ = [
    "histogram",
    "between_class_variance",
    "variance_decomposition",
    "otsu_threshold",
    "multiotsu_thresholds",
    "local_threshold",
    "apply_threshold",
    "multi_threshold",
    "label_components",
    "region_grow",
    "count_objects",
    "clean_mask",
]

# An integer image gets one bin per value between its minimum and maximum;
# beyond this many values the histogram would not fit comfortably in memory.
_MAX_INTEGER_BINS = 2**24
# Largest number of threshold combinations multiotsu_thresholds will try.
_MAX_MULTIOTSU_CANDIDATES = 5_000_000
# Largest window and Gaussian sigma of local_threshold (far beyond any image side).
_MAX_BLOCK = 2**16 - 1
_MAX_SIGMA = 2.0**14
_LOCAL_METHODS = ("gaussian", "mean", "median")
_FILTER_MODES = ("reflect", "constant", "nearest", "mirror", "wrap")


# --------------------------------------------------------------------------
# Histogram and Otsu
# --------------------------------------------------------------------------


def _gray(image, name="image"):
    """Validate a grayscale (H, W) image."""
    return as_image(image, name, channels="gray")


def _histogram_from(image, nbins, minimum, maximum):
    """Histogram of a validated gray image whose min and max are known."""
    flat = image.reshape(-1)
    if np.issubdtype(flat.dtype, np.integer):
        low, high = int(minimum), int(maximum)
        nvalues = high - low + 1
        if nvalues > _MAX_INTEGER_BINS:
            raise ValueError(
                f"integer image spans {nvalues} values ({low} to {high}); its histogram has one "
                f"bin per value and at most {_MAX_INTEGER_BINS} are supported. Convert the image "
                f"to float to bin it into nbins bins"
            )
        if low >= 0 and high < _MAX_INTEGER_BINS and flat.dtype != np.uint64:
            counts = np.bincount(flat, minlength=high + 1)[low:]
        elif flat.dtype.kind == "u":
            counts = np.bincount((flat - flat.dtype.type(low)).astype(np.intp), minlength=nvalues)
        else:
            counts = np.bincount(flat.astype(np.int64) - low, minlength=nvalues)
        return counts, np.arange(low, high + 1)
    # bool (viewed as uint8, as np.histogram does) and float images: nbins
    # equal bins over [min, max] (widened to [v - 0.5, v + 0.5] if constant).
    if flat.dtype == bool:
        flat = flat.view(np.uint8)
        minimum, maximum = flat.dtype.type(minimum), flat.dtype.type(maximum)
    counts, edges = np.histogram(flat, bins=nbins, range=(minimum, maximum))
    return counts, (edges[:-1] + edges[1:]) / 2.0


def histogram(image, nbins=256):
    """Histogram of a grayscale image, binned as scikit-image's Otsu bins it.

    Integer images get one bin per integer value from the image minimum to
    its maximum (``nbins`` is ignored); float and bool images get ``nbins``
    equal-width bins spanning ``[min, max]``, as :func:`numpy.histogram`
    builds them. This is ``skimage.exposure.histogram(image,
    source_range="image")``, the histogram ``threshold_otsu`` works on.

    Parameters
    ----------
    image : (H, W) ndarray
        Grayscale image, any real dtype, finite values.
    nbins : int, optional
        Number of bins for float images (at least 2).

    Returns
    -------
    counts : (nbins,) ndarray of int64
        Number of pixels in each bin. The first and last bins are never empty.
    bin_centers : (nbins,) ndarray
        Centre of each bin: the integer values themselves for integer images
        (int64), the bin mid-points for float images (float dtype of the
        image).

    Raises
    ------
    TypeError
        If ``image`` is not numeric or ``nbins`` not an integer.
    ValueError
        If ``image`` is not 2-D, is empty, holds NaN/inf, or ``nbins < 2``.

    Examples
    --------
    >>> counts, centers = histogram(np.array([[3, 3, 5]], dtype=np.uint8))
    >>> counts, centers
    (array([2, 0, 1]), array([3, 4, 5]))
    >>> counts, centers = histogram(np.array([[0.0, 0.25, 1.0]]), nbins=4)
    >>> counts.tolist(), centers.tolist()
    ([1, 1, 0, 1], [0.125, 0.375, 0.625, 0.875])
    """
    image = _gray(image)
    nbins = as_int(nbins, "nbins", minimum=2, maximum=_MAX_INTEGER_BINS)
    return _histogram_from(image, nbins, image.min(), image.max())


def _variance_curve(counts32, bin_centers):
    """Between-class variance for every split, in scikit-image's precision."""
    weight0 = np.cumsum(counts32)
    reversed_weight1 = np.cumsum(counts32[::-1])
    mass = counts32 * bin_centers
    mean0 = np.cumsum(mass) / weight0
    mean1 = (np.cumsum(mass[::-1]) / reversed_weight1)[::-1]
    weight1 = reversed_weight1[::-1]
    return weight0[:-1] * weight1[1:] * (mean0[:-1] - mean1[1:]) ** 2


def between_class_variance(counts, bin_centers, normalize=False):
    r"""Between-class variance of every two-class split of a histogram.

    Split the histogram after bin ``k``: class 0 holds bins ``0..k`` (the
    pixels at or below ``bin_centers[k]``), class 1 holds bins ``k+1..n-1``.
    With :math:`p_i` the count in bin :math:`i` and :math:`x_i` its centre,

    .. math::

        w_0 = \sum_{i \le k} p_i, \quad w_1 = \sum_{i > k} p_i, \quad
        \mu_0 = \frac{1}{w_0}\sum_{i \le k} p_i x_i, \quad
        \mu_1 = \frac{1}{w_1}\sum_{i > k} p_i x_i .

    The total variance splits into a within-class part and a between-class
    part, :math:`\sigma^2 = \sigma_w^2 + \sigma_b^2`, with

    .. math::

        \sigma_b^2 = w_0 \, w_1 \, (\mu_0 - \mu_1)^2

    (up to the constant factor :math:`1/N^2` when the weights are counts
    rather than probabilities). Since :math:`\sigma^2` does not depend on
    the split, maximising :math:`\sigma_b^2` is the same as minimising the
    within-class variance: that is Otsu's criterion. The weights and means
    for all splits come from cumulative sums, so the whole curve costs
    :math:`O(n)`.

    Parameters
    ----------
    counts : (n,) array-like
        Non-negative bin counts (or probabilities), ``n >= 2``. They are
        converted to float32, exactly as ``skimage.filters.threshold_otsu``
        does, so that the curve (and its argmax) match scikit-image bit for
        bit.
    bin_centers : (n,) array-like
        Intensity at the centre of each bin, increasing.
    normalize : bool, optional
        Divide the counts by their sum first (in float64), so that the weights
        are fractions of the pixels and the result is in the image's units
        squared: then it lies between 0 and the image's total variance, and
        ``within + between = total`` holds (see :func:`variance_decomposition`).
        Without it the weights are the counts themselves, computed in float32
        as scikit-image does, and the curve is that of Otsu's search times
        :math:`N^2`; its argmax is the same.

    Returns
    -------
    variance : (n - 1,) ndarray of float64
        ``variance[k]`` is :math:`\sigma_b^2` for the split after bin ``k``
        (threshold ``bin_centers[k]``). A split that leaves a class empty
        has variance 0.

    Raises
    ------
    TypeError
        If the inputs are not numeric.
    ValueError
        If they are not 1-D of the same length ``>= 2``, hold NaN/inf, or
        the counts are negative or all zero.

    Examples
    --------
    >>> variance = between_class_variance([2, 0, 1], [3, 4, 5])
    >>> variance.tolist()  # w0 * w1 * (mu0 - mu1)**2 = 2 * 1 * (3 - 5)**2
    [8.0, 8.0]
    >>> int(np.argmax(variance))  # the first best split wins ties
    0
    >>> between_class_variance([2, 0, 1], [3, 4, 5], normalize=True).round(4).tolist()  # (2/3)(1/3)(3 - 5)**2
    [0.8889, 0.8889]
    """
    counts = _to_array(counts, "counts")
    bin_centers = _to_array(bin_centers, "bin_centers")
    for name, array in (("counts", counts), ("bin_centers", bin_centers)):
        if array.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array; got {array.ndim}-D shape {array.shape}")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or inf; expected finite values")
    same_shape(counts, bin_centers, "counts", "bin_centers")
    if counts.size < 2:
        raise ValueError(f"counts must have at least 2 bins to split; got {counts.size}")
    if counts.min() < 0:
        raise ValueError(f"counts must be >= 0; found {counts.min()}")
    if not counts.any():
        raise ValueError("counts are all zero; expected a histogram with some pixels")
    if bin_centers.dtype == bool:
        bin_centers = bin_centers.astype(np.uint8)
    if not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"normalize must be True or False, got {describe(normalize)}")
    weights = counts / counts.sum(dtype=np.float64) if normalize else counts.astype(np.float32, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = _variance_curve(weights, bin_centers.astype(np.float64) if normalize else bin_centers)
    # 0/0 means appear only where a class is empty: its variance is 0.
    return np.nan_to_num(variance, nan=0.0)


def variance_decomposition(image, threshold):
    r"""Split an image's variance at a threshold: ``total = within + between``.

    Class 0 holds the pixels ``<= threshold``, class 1 those ``> threshold``
    (the rule of :func:`apply_threshold`). With :math:`w_c` the fraction of
    pixels in class :math:`c`, :math:`\mu_c` its mean and :math:`\sigma_c^2`
    its variance,

    .. math::

        \sigma^2 = \underbrace{w_0\sigma_0^2 + w_1\sigma_1^2}_{\text{within}}
                 + \underbrace{w_0 w_1 (\mu_0-\mu_1)^2}_{\text{between}} .

    Every quantity is computed from the pixels themselves (no histogram), in
    float64, so the identity can be checked numerically.

    Parameters
    ----------
    image : (H, W) ndarray
        Grayscale image, finite.
    threshold : float
        Pixels above it form class 1.

    Returns
    -------
    dict
        ``w0, w1, mu0, mu1, var0, var1`` of the two classes (``mu`` and ``var``
        are NaN for an empty class), ``total`` (``np.var(image)``), ``within``
        and ``between``.

    Examples
    --------
    >>> parts = variance_decomposition(np.array([[1, 1, 3], [5, 5, 7]]), 3)
    >>> parts["w1"], parts["mu0"], parts["mu1"], parts["between"]
    (0.5, 1.6666666666666667, 5.666666666666667, 4.0)
    >>> bool(np.isclose(parts["within"] + parts["between"], parts["total"]))
    True
    """
    image = _gray(image).astype(np.float64)
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a real number, got {describe(threshold)}")
    threshold = as_float(threshold, "threshold")
    parts = {}
    above = image > threshold
    for c, members in ((0, image[~above]), (1, image[above])):
        parts[f"w{c}"] = members.size / image.size
        parts[f"mu{c}"] = float(members.mean()) if members.size else float("nan")
        parts[f"var{c}"] = float(members.var()) if members.size else float("nan")
    parts["total"] = float(image.var())
    parts["within"] = float(sum(parts[f"w{c}"] * parts[f"var{c}"] for c in (0, 1) if parts[f"w{c}"]))
    empty = 0 in (parts["w0"], parts["w1"])
    parts["between"] = 0.0 if empty else float(parts["w0"] * parts["w1"] * (parts["mu0"] - parts["mu1"]) ** 2)
    return parts


def otsu_threshold(image, nbins=256):
    """Otsu's threshold: the split of the histogram with the largest
    between-class variance.

    Pixels ``> threshold`` are foreground (see :func:`apply_threshold`). The
    histogram is :func:`histogram` and the criterion
    :func:`between_class_variance`; the threshold is the centre of the last
    bin of the lower class. The result equals
    ``skimage.filters.threshold_otsu(image, nbins)`` exactly (as a Python
    float), ties going to the lowest threshold. A constant image returns its
    value.

    Parameters
    ----------
    image : (H, W) ndarray
        Grayscale image, any real dtype (bool is treated as 0/1), finite.
    nbins : int, optional
        Number of histogram bins for float images (at least 2); integer
        images use one bin per value.

    Returns
    -------
    threshold : float

    Raises
    ------
    TypeError
        If ``image`` is not numeric or ``nbins`` not an integer.
    ValueError
        If ``image`` is not 2-D, is empty, holds NaN/inf, or ``nbins < 2``.

    Examples
    --------
    >>> image = np.array([[1, 2, 2], [8, 9, 9]], dtype=np.uint8)
    >>> otsu_threshold(image)
    2.0
    >>> otsu_threshold(np.full((2, 2), 7, dtype=np.uint8))  # constant image
    7.0
    """
    image = _gray(image)
    nbins = as_int(nbins, "nbins", minimum=2, maximum=_MAX_INTEGER_BINS)
    minimum, maximum = image.min(), image.max()
    if minimum == maximum:
        return float(image.reshape(-1)[0])
    counts, bin_centers = _histogram_from(image, nbins, minimum, maximum)
    variance = _variance_curve(counts.astype(np.float32), bin_centers)
    return float(bin_centers[np.argmax(variance)])


def _multiotsu_indices(prob, thresh_count):
    """Indices of the best ``thresh_count`` splits of a float32 probability
    histogram: exhaustive search in lexicographic order, first maximum wins.

    The arithmetic mirrors scikit-image's look-up-table search step by step
    (float32 cumulative moments, float32 sums in the same order), so that
    ties and near-ties resolve the same way.
    """
    n = prob.size
    zeroth = np.cumsum(prob)  # float32, sequential
    terms = np.arange(n, dtype=np.float32) * prob
    terms[0] = prob[0]  # scikit-image's first moment starts at prob[0]
    first = np.cumsum(terms)
    zero32 = np.float32(0)
    zeroth_before = np.concatenate(([zero32], zeroth[:-1]))
    first_before = np.concatenate(([zero32], first[:-1]))

    def class_variance(i, j):
        """S**2 / P for the class of bins i..j (0 if empty), as in the table."""
        z = zeroth[j] - zeroth_before[i]  # x - 0 == x exactly, so i == 0 needs no branch
        f = first[j] - first_before[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(z > 0, f * f / z, zero32)
        # the table's (0, 0) entry is never filled in: a first class made of bin 0 scores 0
        return np.where((np.asarray(i) == 0) & (np.asarray(j) == 0), zero32, v).astype(np.float32)

    last = n - 1
    best_sigma, best = zero32, None
    if thresh_count == 1:
        t = np.arange(n - 1)
        sigma = class_variance(0, t) + class_variance(t + 1, last)
        k = int(np.argmax(sigma))
        return np.array([k]) if sigma[k] > best_sigma else None
    # All pairs (a, b), a < b <= n - 2, in lexicographic order; those with
    # a > p form a suffix, found with searchsorted.
    pair_a, pair_b = np.triu_indices(n - 1, 1)
    first_var = {}
    for prefix in itertools.combinations(range(n - 1), thresh_count - 2):
        p = prefix[-1] if prefix else -1
        start = np.searchsorted(pair_a, p + 1)
        if start == pair_a.size:
            continue
        a, b = pair_a[start:], pair_b[start:]
        t0 = prefix[0] if prefix else a
        if prefix:
            if t0 not in first_var:
                first_var[t0] = class_variance(0, np.array([t0]))[0]
            head = first_var[t0]
        else:
            head = class_variance(0, a)
        sigma = head + class_variance(b + 1, last)
        for lo, hi in zip(prefix[:-1], prefix[1:]):
            sigma += class_variance(np.array([lo + 1]), np.array([hi]))[0]
        if prefix:
            sigma += class_variance(np.array(p + 1), a)
        sigma += class_variance(a + 1, b)
        k = int(np.argmax(sigma))
        if sigma[k] > best_sigma:
            best_sigma = sigma[k]
            best = np.array(list(prefix) + [a[k], b[k]])
    return best


def multiotsu_thresholds(image, classes=3, nbins=256):
    """Multi-level Otsu: ``classes - 1`` thresholds maximising the
    between-class variance of ``classes`` classes.

    With class probabilities :math:`P_c` and first moments :math:`S_c =
    \\sum_{i \\in c} p_i i`, the between-class variance is (up to a constant)
    :math:`\\sum_c S_c^2 / P_c`. Every increasing choice of ``classes - 1``
    split bins is tried (vectorised), which is exact and fast for
    ``classes <= 4`` on 256 bins. The result equals
    ``skimage.filters.threshold_multiotsu(image, classes, nbins)``; use it
    with :func:`multi_threshold`.

    Parameters
    ----------
    image : (H, W) ndarray
        Grayscale image, any real dtype, finite.
    classes : int, optional
        Number of classes, at least 2.
    nbins : int, optional
        Number of histogram bins for float images (integer images use one bin
        per value, see :func:`histogram`).

    Returns
    -------
    thresholds : (classes - 1,) ndarray
        Increasing thresholds (bin centres; int64 for integer images).

    Raises
    ------
    TypeError
        If ``image`` is not numeric or ``classes``/``nbins`` not integers.
    ValueError
        If ``image`` is not 2-D, is empty or holds NaN/inf; if
        ``classes < 2`` or ``nbins < 2``; if the histogram has fewer
        non-empty bins than ``classes``; or if the exhaustive search would
        try too many combinations (use fewer classes or bins).

    Examples
    --------
    >>> image = np.array([[0, 1, 10], [11, 20, 21]], dtype=np.uint8)
    >>> multiotsu_thresholds(image, classes=3)
    array([ 1, 11])
    """
    image = _gray(image)
    classes = as_int(classes, "classes", minimum=2)
    nbins = as_int(nbins, "nbins", minimum=2, maximum=_MAX_INTEGER_BINS)
    counts, bin_centers = _histogram_from(image, nbins, image.min(), image.max())
    prob = (counts / np.sum(counts)).astype(np.float32)
    nonzero = np.flatnonzero(prob)
    if nonzero.size < classes:
        raise ValueError(
            f"image has only {nonzero.size} distinct value(s) after binning; it cannot be split "
            f"into classes={classes} classes (a float image may need more nbins)"
        )
    if nonzero.size == classes:
        return bin_centers[nonzero[:-1]]
    thresh_count = classes - 1
    candidates = math.comb(prob.size - 1, thresh_count)
    if candidates > _MAX_MULTIOTSU_CANDIDATES:
        raise ValueError(
            f"exhaustive multi-Otsu search over {prob.size} bins with classes={classes} would try "
            f"{candidates:.3g} threshold combinations (at most {_MAX_MULTIOTSU_CANDIDATES:.3g}); "
            f"use fewer classes or fewer bins"
        )
    indices = _multiotsu_indices(prob, thresh_count)
    if indices is None:  # pragma: no cover - needs a histogram with no spread
        raise ValueError("no split of the histogram has a positive between-class variance")
    return bin_centers[indices]


# --------------------------------------------------------------------------
# Local thresholds and applying thresholds
# --------------------------------------------------------------------------


def local_threshold(image, block_size, method="gaussian", offset=0.0, mode="reflect", param=None):
    """Threshold image from each pixel's neighbourhood (adaptive threshold).

    Each pixel's threshold is a local statistic of the ``block_size x
    block_size`` window around it, minus ``offset``:

    * ``"gaussian"``: Gaussian-weighted mean with ``sigma = (block_size - 1)
      / 6`` (the window then holds > 99 % of the weight), or ``sigma =
      param`` if given;
    * ``"mean"``: plain mean over the window;
    * ``"median"``: median over the window.

    The result equals ``skimage.filters.threshold_local(image, block_size,
    method, offset, mode, param)``. Compare with
    ``apply_threshold(image, local_threshold(image, ...))``.

    Parameters
    ----------
    image : (H, W) ndarray
        Grayscale image, finite.
    block_size : int
        Odd, positive window side.
    method : {"gaussian", "mean", "median"}, optional
    offset : float, optional
        Subtracted from the local statistic.
    mode : {"reflect", "constant", "nearest", "mirror", "wrap"}, optional
        How the image is extended past its border (``scipy.ndimage``
        semantics; ``"constant"`` pads with 0).
    param : float, optional
        Gaussian sigma for ``method="gaussian"`` (>= 0); not used by the
        other methods.

    Returns
    -------
    threshold : (H, W) ndarray
        float32 for float16/float32 images, float64 otherwise.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``image`` is not 2-D, empty or not finite; if ``block_size`` is
        not a positive odd integer; if ``method`` or ``mode`` is unknown; or
        if ``param`` is given for a method that does not use it.

    Examples
    --------
    >>> image = np.array([[0, 0, 0], [0, 9, 0], [0, 0, 0]], dtype=np.uint8)
    >>> local_threshold(image, 3, method="mean", mode="constant")
    array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]])
    """
    from scipy import ndimage as ndi

    image = _gray(image)
    block_size = as_int(block_size, "block_size", maximum=_MAX_BLOCK)
    if block_size < 1 or block_size % 2 == 0:
        raise ValueError(f"block_size must be an odd positive integer (1, 3, 5, ...); got {block_size}")
    if not isinstance(method, str) or method not in _LOCAL_METHODS:
        raise ValueError(f"method must be one of {_LOCAL_METHODS}; got {describe(method)}")
    if not isinstance(mode, str) or mode not in _FILTER_MODES:
        raise ValueError(f"mode must be one of {_FILTER_MODES}; got {describe(mode)}")
    offset = as_float(offset, "offset")
    if param is not None:
        if method != "gaussian":
            raise ValueError(f"param (the Gaussian sigma) is only used by method='gaussian', not {method!r}")
        param = as_float(param, "param", minimum=0, maximum=_MAX_SIGMA)
    float_dtype = np.float32 if image.dtype in (np.float16, np.float32) else np.float64
    image = image.astype(float_dtype, copy=False)
    out = np.zeros(image.shape, dtype=float_dtype)
    if method == "gaussian":
        sigma = (block_size - 1) / 6.0 if param is None else param
        ndi.gaussian_filter(image, sigma, output=out, mode=mode, cval=0, truncate=4.0)
    elif method == "mean":
        ndi.uniform_filter(image, block_size, output=out, mode=mode, cval=0)
    else:
        ndi.median_filter(image, block_size, output=out, mode=mode, cval=0)
    return out - offset


def _threshold_value(threshold, image, name="threshold"):
    """Check a scalar threshold or a finite array of the image's shape.

    The value is returned unchanged (a NumPy scalar keeps its dtype), so the
    comparison follows NumPy's rules exactly as ``image > threshold`` would.
    """
    if isinstance(threshold, numbers.Real) and not isinstance(threshold, bool):
        as_float(threshold, name)
        return threshold
    array = _to_array(threshold, name)
    if array.ndim == 0:
        as_float(array.item(), name)
        return array
    same_shape(image, array, "image", name)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf; expected finite values")
    return array


def apply_threshold(image, threshold):
    """Foreground mask ``image > threshold``.

    Parameters
    ----------
    image : (H, W) ndarray
        Grayscale image, finite.
    threshold : float or (H, W) ndarray
        A global threshold (e.g. from :func:`otsu_threshold`) or one per
        pixel (from :func:`local_threshold`).

    Returns
    -------
    mask : (H, W) ndarray of bool
        True where the pixel is strictly brighter than its threshold.

    Raises
    ------
    TypeError
        If ``threshold`` is neither a number nor a numeric array.
    ValueError
        If ``image`` is not 2-D/empty/not finite, or an array threshold has
        another shape or is not finite.

    Examples
    --------
    >>> apply_threshold(np.array([[1, 5], [5, 9]]), 5)
    array([[False, False],
           [False,  True]])
    """
    image = _gray(image)
    threshold = _threshold_value(threshold, image)
    return np.asarray(image > threshold)


def multi_threshold(image, thresholds):
    """Label map from increasing thresholds: the class of a pixel is the number
    of thresholds strictly below its value.

    Class ``i`` holds the pixels with ``thresholds[i-1] < value <=
    thresholds[i]``: class 0 is at or below the first threshold, class
    ``len(thresholds)`` above the last. This is the rule of
    :func:`apply_threshold` and of Otsu's method, used everywhere in
    segtutor: **a pixel equal to a threshold goes to the lower class**. With
    one threshold, ``multi_threshold(image, [t])`` equals
    ``apply_threshold(image, t)`` as 0/1 labels. It is also the rule of
    :func:`multiotsu_thresholds`, whose thresholds are the last bins of
    their lower classes. (scikit-image's examples apply multi-Otsu
    thresholds with ``np.digitize(image, bins=thresholds)``, which puts a
    pixel equal to a threshold in the upper class; here it is
    ``np.digitize(image, bins=thresholds, right=True)``.)

    Parameters
    ----------
    image : (H, W) ndarray
        Grayscale image, finite.
    thresholds : 1-D array-like
        At least one finite threshold, in non-decreasing order.

    Returns
    -------
    labels : (H, W) ndarray of int64
        Values ``0 .. len(thresholds)``.

    Raises
    ------
    TypeError
        If ``thresholds`` is not numeric.
    ValueError
        If ``image`` is invalid, or ``thresholds`` is not 1-D, empty, not
        finite, or not sorted.

    Examples
    --------
    >>> multi_threshold(np.array([[1.0, 2.0], [3.0, 4.0]]), [2.0, 3.0])
    array([[0, 0],
           [1, 2]])
    """
    image = _gray(image)
    thresholds = _to_array(thresholds, "thresholds")
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(
            f"thresholds must be a non-empty 1-D sequence; got shape {thresholds.shape}"
        )
    if np.issubdtype(thresholds.dtype, np.floating) and not np.isfinite(thresholds).all():
        raise ValueError("thresholds contains NaN or inf; expected finite values")
    # compare neighbours rather than np.diff: a difference of unsigned or bool values wraps
    if np.any(thresholds[1:] < thresholds[:-1]):
        raise ValueError(f"thresholds must be sorted in increasing order; got {thresholds.tolist()}")
    return np.digitize(image, bins=thresholds, right=True).astype(np.int64, copy=False)


# --------------------------------------------------------------------------
# Connected regions
# --------------------------------------------------------------------------


def _neighbour_pairs(values, foreground, connectivity):
    """Flat indices (u, v) of neighbouring foreground pixels with equal values.

    Each pair is listed once (v after u in raster order).
    """
    height, width = foreground.shape
    shifts = [((0, 0), (0, 1)), ((0, 0), (1, 0))]  # right, down
    if connectivity == 2:
        shifts += [((0, 0), (1, 1)), ((0, 1), (1, 0))]  # down-right, down-left
    us, vs = [], []
    for (r0, c0), (r1, c1) in shifts:
        rows, cols = height - max(r0, r1), width - max(c0, c1)
        if rows <= 0 or cols <= 0:
            continue
        a = (slice(r0, r0 + rows), slice(c0, c0 + cols))
        b = (slice(r1, r1 + rows), slice(c1, c1 + cols))
        linked = foreground[a] & foreground[b]
        if values is not None:
            linked &= values[a] == values[b]
        r, c = np.nonzero(linked)
        u = (r + r0) * width + (c + c0)
        us.append(u)
        vs.append(u + (r1 - r0) * width + (c1 - c0))
    if not us:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    return np.concatenate(us), np.concatenate(vs)


def _roots(parent):
    """Follow parent pointers to the roots (pointer jumping)."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def label_components(mask, connectivity=1):
    """Label the connected components of a 2-D mask.

    Algorithm (vectorised union-find): every foreground pixel starts as its
    own tree. Repeatedly, for every pair of neighbouring pixels whose trees
    differ, the tree with the larger root index is hooked under the smaller
    root, then all pointers jump straight to their roots. Each round at
    least halves the number of trees of every component, so a few dozen
    whole-array NumPy passes suffice. The surviving root of a component is
    its first pixel in raster order, so numbering the roots in raster order
    gives the same labels as ``skimage.measure.label(mask,
    connectivity=connectivity, return_num=True)``.

    Parameters
    ----------
    mask : (H, W) array of bool or int
        Foreground where non-zero. As in ``skimage.measure.label``, for an
        integer array neighbouring pixels are connected only when they hold
        the same non-zero value; pass ``mask != 0`` to join every non-zero
        pixel.
    connectivity : {1, 2}, optional
        1: 4-neighbourhood (edges); 2: 8-neighbourhood (edges and corners).

    Returns
    -------
    labels : (H, W) ndarray of int64
        0 for background, ``1..num`` for the components in raster order of
        their first pixel.
    num : int
        Number of components.

    Raises
    ------
    TypeError
        If ``mask`` is not bool or integer, or ``connectivity`` not an int.
    ValueError
        If ``mask`` is not 2-D or is empty, or ``connectivity`` is not 1 or 2.

    Examples
    --------
    >>> mask = np.array([[1, 1, 0, 0],
    ...                  [0, 0, 0, 1],
    ...                  [1, 0, 1, 1]], dtype=bool)
    >>> labels, num = label_components(mask)
    >>> num
    3
    >>> labels
    array([[1, 1, 0, 0],
           [0, 0, 0, 2],
           [3, 0, 2, 2]])
    >>> label_components(np.eye(3, dtype=bool), connectivity=2)[1]
    1
    """
    mask = as_image(mask, "mask", channels="gray")
    if not (mask.dtype == bool or np.issubdtype(mask.dtype, np.integer)):
        raise TypeError(f"mask must be a bool or integer array; got dtype {mask.dtype}")
    connectivity = as_int(connectivity, "connectivity", minimum=1, maximum=2)
    foreground = mask if mask.dtype == bool else mask != 0
    values = None if mask.dtype == bool else mask
    u, v = _neighbour_pairs(values, foreground, connectivity)
    parent = np.arange(mask.size, dtype=np.intp)
    while u.size:
        root_u, root_v = parent[u], parent[v]
        differ = root_u != root_v
        if not differ.any():
            break
        u, v, root_u, root_v = u[differ], v[differ], root_u[differ], root_v[differ]
        low, high = np.minimum(root_u, root_v), np.maximum(root_u, root_v)
        np.minimum.at(parent, high, low)  # hook: roots only ever point lower
        parent = _roots(parent)
    flat_fg = foreground.reshape(-1)
    is_root = flat_fg & (parent == np.arange(mask.size))
    number = np.cumsum(is_root)  # label of each root, in raster order
    labels = np.where(flat_fg, number[parent], 0).astype(np.int64, copy=False)
    return labels.reshape(mask.shape), int(number[-1])


def _seed_list(seeds, shape):
    """Validate seeds: one (row, col) pair or a sequence of them."""
    try:
        array = np.asarray(seeds)
    except Exception:
        raise TypeError(f"seeds must be a (row, col) pair or a list of them; got {describe(seeds)}") from None
    if array.size == 0:
        raise ValueError("seeds must be a (row, col) pair or a non-empty list of (row, col) pairs; got none")
    flat = () if isinstance(seeds, np.ndarray) and array.dtype.kind in "iu" else np.ravel(np.asarray(seeds, dtype=object))
    if any(isinstance(v, (bool, np.bool_)) for v in flat):
        raise TypeError(f"seeds must be integer (row, col) pixel coordinates, not True/False; got {describe(seeds)}")
    if array.dtype.kind not in "iu" and len(flat) and all(isinstance(v, numbers.Integral) for v in flat):
        # integers too large for one NumPy integer type
        raise ValueError(f"seeds lie outside the image of shape {shape[:2]}: {describe(seeds)}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"seeds must be integer (row, col) pixel coordinates; got {describe(seeds)}"
        )
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise ValueError(
            f"seeds must be a (row, col) pair or a non-empty list of (row, col) pairs; got shape {array.shape}"
        )
    for row, col in array.tolist():
        if not (0 <= row < shape[0] and 0 <= col < shape[1]):
            raise ValueError(
                f"seed ({row}, {col}) is outside the image of shape {shape[:2]}; rows must be in "
                f"[0, {shape[0] - 1}] and columns in [0, {shape[1] - 1}]"
            )
    return [tuple(s) for s in array.tolist()]


def region_grow(image, seeds, tolerance):
    """Grow a region from seed pixels over pixels similar to the seed.

    A pixel belongs to the region of a seed when it can be reached from the
    seed through 4-connected pixels whose intensity differs from the
    *seed's* intensity by at most ``tolerance`` (Euclidean distance between
    colours for an ``(H, W, C)`` image). With several seeds the result is the
    union of their regions.

    For a grayscale image, ``|value - seed value| <= tolerance`` is decided
    exactly: in integers for an integer image (so int64 values beyond the
    precision of a float still compare right, and nothing wraps around in
    ``uint8``), in float64 otherwise. The result then equals
    ``skimage.segmentation.flood(image, seed, connectivity=1,
    tolerance=tolerance)`` for float64 images, and for integer images when
    ``tolerance`` is a whole number; ``flood`` casts ``seed value -
    tolerance`` and ``seed value + tolerance`` to the image's integer dtype,
    so with a fractional tolerance on an integer image it is lopsided (with
    tolerance 0.5 around a seed of 10 it takes 9 but not 11), and it cannot
    tell int64 values apart that a float cannot. Colour distances are
    computed in float64.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        Grayscale or colour image, finite.
    seeds : (row, col) or sequence of (row, col)
        Integer pixel coordinates inside the image.
    tolerance : float
        Largest accepted difference from the seed value, ``>= 0``.

    Returns
    -------
    mask : (H, W) ndarray of bool

    Raises
    ------
    TypeError
        If ``seeds`` are not integer pairs or ``tolerance`` not a number.
    ValueError
        If ``image`` is invalid, a seed lies outside the image, or
        ``tolerance`` is negative or not finite.

    Examples
    --------
    >>> image = np.array([[1, 1, 5],
    ...                   [9, 2, 5],
    ...                   [2, 9, 4]])
    >>> region_grow(image, (0, 0), tolerance=1).astype(int)
    array([[1, 1, 0],
           [0, 1, 0],
           [0, 0, 0]])
    >>> region_grow(image, [(0, 0), (0, 2)], tolerance=1).astype(int)
    array([[1, 1, 1],
           [0, 1, 1],
           [0, 0, 1]])
    """
    image = as_image(image)
    tolerance = as_float(tolerance, "tolerance", minimum=0)
    seeds = _seed_list(seeds, image.shape)
    exact_integers = image.ndim == 2 and np.issubdtype(image.dtype, np.integer)
    values = image if exact_integers else image.astype(np.float64, copy=False)
    grown = np.zeros(image.shape[:2], dtype=bool)
    for row, col in dict.fromkeys(seeds):  # each distinct seed once, in order
        if exact_integers:
            # |v - s| <= tolerance  <=>  s - floor(tolerance) <= v <= s + floor(tolerance) for
            # integers; the bounds are Python ints clipped to the dtype, so nothing wraps.
            seed_value, reach, info = int(values[row, col]), math.floor(tolerance), np.iinfo(image.dtype)
            low, high = max(seed_value - reach, int(info.min)), min(seed_value + reach, int(info.max))
            similar = (values >= low) & (values <= high)
        elif values.ndim == 3:
            similar = np.sqrt(np.sum((values - values[row, col]) ** 2, axis=-1)) <= tolerance
        else:
            similar = np.abs(values - values[row, col]) <= tolerance
        labels, _ = label_components(similar, connectivity=1)
        grown |= labels == labels[row, col]
    return grown


def count_objects(image, threshold=None, min_size=1):
    """Count bright objects: threshold, label, drop small regions, count.

    Parameters
    ----------
    image : (H, W) ndarray
        Grayscale image, objects brighter than the background.
    threshold : float, optional
        Global threshold; :func:`otsu_threshold` of the image if None.
        Pixels ``> threshold`` are foreground.
    min_size : int, optional
        Regions with fewer pixels (4-connected) are ignored.

    Returns
    -------
    count : int

    Raises
    ------
    TypeError, ValueError
        For an invalid image, threshold or ``min_size < 1``.

    Examples
    --------
    >>> image = np.zeros((6, 6))
    >>> image[1:3, 1:3] = 1.0
    >>> image[4, 4] = 1.0
    >>> count_objects(image)
    2
    >>> count_objects(image, min_size=2)
    1
    """
    image = _gray(image)
    min_size = as_int(min_size, "min_size", minimum=1)
    if threshold is None:
        threshold = otsu_threshold(image)
    elif not isinstance(threshold, numbers.Real) or isinstance(threshold, bool):
        raise TypeError(f"threshold must be a real number or None, got {describe(threshold)}")
    else:
        as_float(threshold, "threshold")
    labels, num = label_components(image > threshold, connectivity=1)
    if num == 0:
        return 0
    sizes = np.bincount(labels.reshape(-1), minlength=num + 1)[1:]
    return int(np.count_nonzero(sizes >= min_size))


def _disk(radius: int) -> np.ndarray:
    """A disk of ``radius`` pixels, as ``skimage.morphology.disk`` draws it."""
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def clean_mask(mask, *, fill_holes=False, opening=0, min_size=1):
    """Tidy a foreground mask before counting objects: fill holes, open, drop specks.

    The three steps, in this order, each optional:

    * ``fill_holes``: background regions not connected to the image border
      become foreground (``scipy.ndimage.binary_fill_holes``): a coin's dark
      details stop being holes;
    * ``opening``: a morphological opening with a disk of this radius, an
      erosion then a dilation; it removes parts narrower than the disk, such
      as a thin bridge between an object and a bright patch of background,
      while objects wider than the disk keep their shape. The image outside
      its border counts as foreground for the erosion, so objects touching
      the border are not eaten away (as in ``skimage.morphology``);
    * ``min_size``: 4-connected regions of fewer pixels are dropped.

    Parameters
    ----------
    mask : (H, W) array of bool
        Foreground mask, e.g. from :func:`apply_threshold`.
    fill_holes : bool
    opening : int
        Radius of the disk, in pixels (0: no opening).
    min_size : int
        Smallest region kept, in pixels (1 keeps everything).

    Returns
    -------
    (H, W) ndarray of bool

    Raises
    ------
    TypeError
        If ``mask`` is not boolean or a parameter has the wrong type.
    ValueError
        If ``mask`` is not 2-D or empty, or a parameter is out of range.

    Examples
    --------
    >>> mask = np.zeros((7, 9), dtype=bool)
    >>> mask[1:6, 1:6] = True; mask[3, 3] = False      # a square with a hole
    >>> mask[3, 6:8] = True                            # and a thin spur
    >>> clean_mask(mask, fill_holes=True, opening=1).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 1, 0, 0, 0, 0],
           [0, 1, 1, 1, 1, 1, 0, 0, 0],
           [0, 1, 1, 1, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 1, 1, 0, 0, 0],
           [0, 0, 1, 1, 1, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0, 0]])
    """
    from scipy import ndimage

    mask = as_image(mask, "mask", channels="gray")
    if mask.dtype != bool:
        raise TypeError(f"mask must be a boolean array (e.g. image > threshold); got dtype {mask.dtype}")
    if not isinstance(fill_holes, (bool, np.bool_)):
        raise TypeError(f"fill_holes must be True or False, got {describe(fill_holes)}")
    opening = as_int(opening, "opening", minimum=0, maximum=max(mask.shape))
    min_size = as_int(min_size, "min_size", minimum=1)
    out = mask.copy()
    if fill_holes:
        out = ndimage.binary_fill_holes(out)
    if opening:
        disk = _disk(opening)
        out = ndimage.binary_dilation(ndimage.binary_erosion(out, disk, border_value=1), disk, border_value=0)
    if min_size > 1:
        labels, num = label_components(out, connectivity=1)
        sizes = np.bincount(labels.reshape(-1), minlength=num + 1)
        sizes[0] = 0
        out = (sizes >= min_size)[labels]
    return out
