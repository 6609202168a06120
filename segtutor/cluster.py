"""Clustering for segmentation: k-means from scratch, pixel features, SLIC.

Lesson 02 segments an image by clustering its pixels. Everything here is plain
NumPy so the algorithm can be read line by line:

* :func:`assign_labels` and :func:`update_centers` are the two steps of
  Lloyd's algorithm; :func:`kmeans` alternates them from a
  :func:`kmeans_plusplus` start.
* :func:`pixel_features` turns an image into one feature row per pixel
  (colour, optionally position); :func:`kmeans_segment` clusters them and
  returns a label map.
* :func:`slic_superpixels` wraps :func:`skimage.segmentation.slic` on purpose,
  to compare against; :func:`superpixel_means` paints each superpixel with its
  mean colour.
* :func:`match_clusters` renames cluster ids to ground-truth classes so that a
  clustering can be scored with :func:`segtutor.metrics.mean_iou`.
* :func:`inertia_curve` gives the numbers for the "elbow" plot used to choose k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._checks import _to_array, as_float, as_image, as_int, as_label_map, as_seed, same_shape

__all__ = [
    "KMeansResult",
    "assign_labels",
    "update_centers",
    "kmeans_plusplus",
    "kmeans",
    "pixel_features",
    "kmeans_segment",
    "slic_superpixels",
    "superpixel_means",
    "match_clusters",
    "inertia_curve",
]


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------

#: Most k-means runs (``n_init``) one call makes.
_MAX_RUNS = 1000


def _as_samples(X, name="X"):
    """Check a sample matrix ``(n, d)`` and return it as C-contiguous float64."""
    array = _to_array(X, name)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); "
            f"got {array.ndim}-D shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); expected samples with features")
    array = np.ascontiguousarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "inf"
        raise ValueError(f"{name} contains {bad}; expected finite values")
    return array


def _check_k(k, n_samples):
    k = as_int(k, "k", minimum=1)
    if k > n_samples:
        raise ValueError(f"k must be <= the number of samples ({n_samples}), got {k}")
    return k


def _colour(image):
    """Image as float colour, ``(H, W, C)``; see :func:`pixel_features` for the scaling."""
    image = as_image(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 4:  # RGBA: drop alpha
        image = image[:, :, :3]
    if image.dtype == np.uint8:
        return image / 255.0
    if image.dtype == np.uint16:
        return image / 65535.0
    return image.astype(np.float64)


def _feature_major(X):
    """``X`` (n, d) as a C-contiguous ``(d, n)`` array: one row per feature."""
    return np.ascontiguousarray(X.T)


def _sq_distances(Xt, point, out, tmp):
    """Squared distances from ``point`` (d,) to every column of ``Xt`` (d, n), into ``out``.

    ``X`` is kept feature-major (one contiguous row per feature) so that each
    step is a fast whole-array operation over the n samples.
    """
    np.subtract(Xt[0], point[0], out=out)
    np.square(out, out=out)
    for f in range(1, Xt.shape[0]):
        np.subtract(Xt[f], point[f], out=tmp)
        np.square(tmp, out=tmp)
        out += tmp
    return out


def _sq_distances_min(Xt, centers):
    """Nearest center of each sample and the squared distance to it.

    ``Xt`` is the feature-major ``(d, n)`` sample matrix. The distances are
    computed as ``sum((x - c) ** 2)``, one center at a time: memory stays
    ``O(n)`` per center and there is no cancellation error from the
    ``|x|^2 - 2 x.c + |c|^2`` expansion. Ties go to the lower center index.
    """
    n = Xt.shape[1]
    best = np.full(n, np.inf)
    labels = np.zeros(n, dtype=np.int64)
    dist = np.empty(n)
    tmp = np.empty(n)
    closer = np.empty(n, dtype=bool)
    for j, center in enumerate(centers):
        _sq_distances(Xt, center, dist, tmp)
        np.less(dist, best, out=closer)
        labels[closer] = j
        np.minimum(best, dist, out=best)
    return labels, best


def _sq_distances_to(Xt, points):
    """Squared distances ``(len(points), n)`` from each point to every sample."""
    out = np.empty((points.shape[0], Xt.shape[1]))
    tmp = np.empty(Xt.shape[1])
    for i, point in enumerate(points):
        _sq_distances(Xt, point, out[i], tmp)
    return out


# ---------------------------------------------------------------------------
# k-means
# ---------------------------------------------------------------------------


@dataclass
class KMeansResult:
    """Result of :func:`kmeans`.

    Attributes
    ----------
    labels : ndarray of int64, shape (n,)
        Index of the nearest center of each sample.
    centers : ndarray of float64, shape (k, d)
        Cluster centers.
    inertia : float
        Sum of squared distances from each sample to its center.
    n_iter : int
        Lloyd iterations run by the best of the ``n_init`` runs.
    """

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int


def assign_labels(X, centers):
    """Assign each sample to its nearest center (squared Euclidean distance).

    Parameters
    ----------
    X : array-like, shape (n, d)
        Samples.
    centers : array-like, shape (k, d)
        Cluster centers.

    Returns
    -------
    labels : ndarray of int64, shape (n,)
        ``labels[i] = argmin_j |X[i] - centers[j]|^2``; ties go to the lower
        index ``j``.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.9, 1.0], [5.0, 5.0]])
    >>> assign_labels(X, centers=[[0.0, 0.0], [5.0, 5.0]])
    array([0, 0, 1])
    """
    X = _as_samples(X)
    centers = _as_samples(centers, "centers")
    if centers.shape[1] != X.shape[1]:
        raise ValueError(
            f"centers must have the same number of features as X ({X.shape[1]}); "
            f"got shape {centers.shape}"
        )
    return _sq_distances_min(_feature_major(X), centers)[0]


def _check_labels(labels, n_samples, k):
    labels = as_label_map(labels, "labels", ndim=1)
    if labels.shape[0] != n_samples:
        raise ValueError(
            f"labels must have one entry per sample of X ({n_samples}); got shape {labels.shape}"
        )
    if labels.max() >= k:
        raise ValueError(f"labels must lie in 0..{k - 1} for k={k}; found {int(labels.max())}")
    return labels


def _update(Xt, labels, k, previous):
    """Cluster means from the feature-major ``Xt`` (d, n); empty clusters keep ``previous``."""
    counts = np.bincount(labels, minlength=k)
    sums = np.empty((k, Xt.shape[0]))
    for f in range(Xt.shape[0]):
        sums[:, f] = np.bincount(labels, weights=Xt[f], minlength=k)
    empty = counts == 0
    centers = sums / np.maximum(counts, 1)[:, None]
    centers[empty] = previous[empty]
    return centers


def update_centers(X, labels, k, previous=None):
    """Move each center to the mean of the samples assigned to it.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Samples.
    labels : array-like of int, shape (n,)
        Cluster of each sample, in ``0 .. k - 1``.
    k : int
        Number of clusters.
    previous : array-like, shape (k, d), optional
        The centers before the update. A cluster with no samples keeps its
        ``previous`` center. Without ``previous``, an empty cluster raises a
        ``ValueError`` (its mean is undefined).

    Returns
    -------
    centers : ndarray of float64, shape (k, d)

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]])
    >>> update_centers(X, [0, 0, 1], k=2)
    array([[1., 0.],
           [5., 5.]])
    >>> update_centers(X, [0, 0, 0], k=2, previous=[[0.0, 0.0], [9.0, 9.0]])
    array([[2.33333333, 1.66666667],
           [9.        , 9.        ]])
    """
    X = _as_samples(X)
    k = as_int(k, "k", minimum=1)
    labels = _check_labels(labels, X.shape[0], k)
    if previous is None:
        counts = np.bincount(labels, minlength=k)
        if (counts == 0).any():
            raise ValueError(
                f"cluster(s) {np.flatnonzero(counts == 0).tolist()} have no samples, so their "
                "mean is undefined; pass previous=<old centers> to keep their old centers"
            )
        previous = np.zeros((k, X.shape[1]))
    else:
        previous = _as_samples(previous, "previous")
        if previous.shape != (k, X.shape[1]):
            raise ValueError(
                f"previous must have shape (k, n_features) = {(k, X.shape[1])}; "
                f"got {previous.shape}"
            )
    return _update(_feature_major(X), labels, k, previous)


def _kmeans_plusplus(Xt, k, rng):
    n = Xt.shape[1]
    n_trials = 2 + int(np.log(k))
    indices = np.empty(k, dtype=np.int64)
    indices[0] = rng.integers(n)
    closest = _sq_distances_to(Xt, Xt[:, indices[:1]].T)[0]
    potential = closest.sum()
    for c in range(1, k):
        if potential > 0:
            # D^2 sampling: draw points with probability proportional to the
            # squared distance to the nearest chosen center. side="right" never
            # lands on a point at distance 0 (one already chosen).
            cumulative = np.cumsum(closest)
            draws = rng.uniform(size=n_trials) * cumulative[-1]
            candidates = np.searchsorted(cumulative, draws, side="right")
            np.clip(candidates, None, n - 1, out=candidates)
        else:
            # Every sample coincides with a chosen center (fewer distinct
            # points than k): take unused indices at random.
            unused = np.setdiff1d(np.arange(n), indices[:c])
            candidates = rng.choice(unused, size=min(n_trials, unused.size), replace=False)
        # Greedy k-means++: keep the candidate that lowers the potential most.
        trial = np.minimum(closest, _sq_distances_to(Xt, Xt[:, candidates].T))
        trial_potential = trial.sum(axis=1)
        best = int(np.argmin(trial_potential))
        indices[c] = candidates[best]
        closest = trial[best]
        potential = trial_potential[best]
    return np.ascontiguousarray(Xt[:, indices].T)


def kmeans_plusplus(X, k, seed=0):
    """Initial centers by greedy k-means++ (D^2 sampling).

    The first center is a sample drawn uniformly; each next one is drawn with
    probability proportional to the squared distance to the nearest center
    chosen so far. As in scikit-learn, ``2 + int(log(k))`` candidates are drawn
    at each step and the one that lowers the total squared distance most is
    kept.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Samples.
    k : int
        Number of centers, ``1 <= k <= n``.
    seed : int or numpy.random.Generator
        An int >= 0 seeds a new generator; a generator is used as it is.

    Returns
    -------
    centers : ndarray of float64, shape (k, d)
        Rows of ``X``, all distinct unless ``X`` has fewer than ``k`` distinct rows.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.0, 10.1]])
    >>> centers = kmeans_plusplus(X, 2, seed=0)
    >>> sorted(int(c[0] > 5) for c in centers)  # one center in each group
    [0, 1]
    """
    X = _as_samples(X)
    k = _check_k(k, X.shape[0])
    return _kmeans_plusplus(_feature_major(X), k, as_seed(seed))


def _lloyd(Xt, centers, max_iter, tol):
    labels, dist = _sq_distances_min(Xt, centers)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        new_centers = _update(Xt, labels, centers.shape[0], centers)
        shift = np.sum((new_centers - centers) ** 2)
        centers = new_centers
        new_labels, dist = _sq_distances_min(Xt, centers)
        converged = np.array_equal(new_labels, labels) or shift <= tol
        labels = new_labels
        if converged:
            break
    # labels and dist always belong to the returned centers.
    return labels, centers, float(dist.sum()), n_iter


def kmeans(X, k, *, seed=0, n_init=1, max_iter=100, tol=1e-4):
    """k-means clustering by Lloyd's algorithm from a k-means++ start.

    Each run alternates :func:`assign_labels` (nearest center) and
    :func:`update_centers` (cluster means) until the labels stop changing, the
    centers move less than ``tol`` (see below) or ``max_iter`` iterations have
    run. ``n_init`` runs from different k-means++ starts are made and the one
    with the lowest inertia is returned. The same ``seed`` gives the same
    result.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Samples.
    k : int
        Number of clusters, ``1 <= k <= n``.
    seed : int or numpy.random.Generator
        Seed of the k-means++ starts (an int >= 0, or a generator used as it is).
    n_init : int
        Number of runs (``>= 1``).
    max_iter : int
        Largest number of Lloyd iterations per run (``>= 1``).
    tol : float
        A run stops when the summed squared movement of the centers is at most
        ``tol`` times the mean per-feature variance of ``X`` (scikit-learn's
        rule).

    Returns
    -------
    KMeansResult
        ``labels`` (n,), ``centers`` (k, d), ``inertia`` (sum of squared
        distances to the assigned centers) and ``n_iter``. A cluster that
        becomes empty keeps its previous center.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    >>> result = kmeans(X, 2, seed=0)
    >>> bool(result.labels[0] == result.labels[1] != result.labels[2] == result.labels[3])
    True
    >>> float(result.inertia)
    1.0
    """
    X = _as_samples(X)
    k = _check_k(k, X.shape[0])
    n_init = as_int(n_init, "n_init", minimum=1, maximum=_MAX_RUNS)
    max_iter = as_int(max_iter, "max_iter", minimum=1)
    tol = as_float(tol, "tol", minimum=0)
    rng = as_seed(seed)
    tol_abs = tol * float(np.mean(np.var(X, axis=0)))
    Xt = _feature_major(X)
    best = None
    for _ in range(n_init):
        start = _kmeans_plusplus(Xt, k, rng)
        labels, centers, inertia, n_iter = _lloyd(Xt, start, max_iter, tol_abs)
        if best is None or inertia < best.inertia:
            best = KMeansResult(labels, centers, inertia, n_iter)
    return best


# ---------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------


def pixel_features(image, use_position=False, position_weight=1.0):
    """One feature row per pixel: colour, and optionally position.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, C)
        Grayscale or colour image. ``uint8`` values are divided by 255 and
        ``uint16`` by 65535, so colours lie in ``[0, 1]``; floats (and other
        dtypes) are used as given, so float images should already be in
        ``[0, 1]``. A 4th (alpha) channel is dropped.
    use_position : bool
        Append the pixel's (row, col) coordinates.
    position_weight : float
        Multiplies the two position columns (``>= 0``).

    Returns
    -------
    features : ndarray of float64, shape (H * W, C) or (H * W, C + 2)
        Rows in raster order (``features[r * W + c]`` is pixel ``(r, c)``).
        Position columns are ``row / s`` and ``col / s`` with
        ``s = max(H, W) - 1``: the longer side spans ``[0, 1]``, like each
        colour channel, and the scale is the same along both axes so distances
        stay round. With ``position_weight=1``, moving across the whole image
        therefore costs about as much as going from black to white in one
        channel; larger weights give compact, blob-like segments, smaller
        weights segments that follow colour only.

    Examples
    --------
    >>> image = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    >>> pixel_features(image)
    array([[0.],
           [1.],
           [1.],
           [0.]])
    >>> pixel_features(image, use_position=True)[1]
    array([1., 0., 1.])
    """
    colour = _colour(image)
    if not isinstance(use_position, (bool, np.bool_)):
        raise TypeError(f"use_position must be True or False, got {use_position!r}")
    position_weight = as_float(position_weight, "position_weight", minimum=0)
    height, width, channels = colour.shape
    features = colour.reshape(height * width, channels)
    if not use_position:
        return np.ascontiguousarray(features, dtype=np.float64)
    scale = max(height, width) - 1 or 1
    rows, cols = np.indices((height, width), dtype=np.float64)
    position = np.stack([rows.ravel(), cols.ravel()], axis=1) * (position_weight / scale)
    return np.concatenate([features, position], axis=1)


def kmeans_segment(image, k, *, use_position=False, position_weight=1.0, seed=0, n_init=1):
    """Segment an image by k-means on its pixel features.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, C)
        Grayscale or colour image (see :func:`pixel_features` for scaling).
    k : int
        Number of clusters, ``1 <= k <= H * W``.
    use_position, position_weight
        See :func:`pixel_features`.
    seed, n_init
        See :func:`kmeans`.

    Returns
    -------
    labels : ndarray of int64, shape (H, W)
        Cluster of each pixel, numbered ``0 .. k - 1`` by increasing
        brightness (mean over the colour channels) of the cluster's center:
        0 is the darkest cluster. Ties keep k-means' order. When the image has
        fewer than ``k`` distinct features some numbers are unused.

    Examples
    --------
    >>> image = np.zeros((4, 4, 3)); image[:, 2:] = [1.0, 0.5, 0.0]
    >>> kmeans_segment(image, 2)
    array([[0, 0, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    """
    colour = _colour(image)
    features = pixel_features(colour, use_position=use_position, position_weight=position_weight)
    result = kmeans(features, k, seed=seed, n_init=n_init)
    brightness = result.centers[:, : colour.shape[2]].mean(axis=1)
    order = np.argsort(brightness, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[result.labels].reshape(colour.shape[:2])


def slic_superpixels(image, n_segments=100, compactness=10.0, enforce_connectivity=True):
    """SLIC superpixels, by :func:`skimage.segmentation.slic`.

    A thin wrapper that sets ``start_label=0`` and ``channel_axis`` (``None``
    for a grayscale ``(H, W)`` image, ``-1`` for colour), so it can be compared
    with :func:`kmeans_segment` with ``use_position=True``: SLIC is k-means on
    (colour, position) restricted to a local window.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, C)
        A 4th (alpha) channel is dropped.
    n_segments : int
        Approximate number of superpixels.
    compactness : float
        Weight of position against colour (``> 0``); larger is more square.
    enforce_connectivity : bool
        Merge superpixels that are too small, or in several pieces, into
        their neighbours (scikit-image's default). The number of superpixels
        is only approximately ``n_segments``: the starting centres lie on a
        regular grid with a step of about ``sqrt(H * W / n_segments)`` pixels,
        as many as fit in the image, and this merge removes more.

    Returns
    -------
    labels : ndarray of int, shape (H, W)
        Superpixel ids starting at 0.

    Examples
    --------
    >>> image = np.zeros((20, 20)); image[:, 10:] = 1.0
    >>> labels = slic_superpixels(image, n_segments=4, compactness=0.1)
    >>> labels.shape, int(labels.min())
    ((20, 20), 0)
    """
    from skimage.segmentation import slic

    image = as_image(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    n_segments = as_int(n_segments, "n_segments", minimum=1)
    compactness = as_float(compactness, "compactness")
    if compactness <= 0:
        raise ValueError(f"compactness must be > 0, got {compactness}")
    if not isinstance(enforce_connectivity, (bool, np.bool_)):
        raise TypeError(f"enforce_connectivity must be True or False, got {enforce_connectivity!r}")
    channel_axis = -1 if image.ndim == 3 else None
    return slic(
        image,
        n_segments=n_segments,
        compactness=compactness,
        start_label=0,
        channel_axis=channel_axis,
        enforce_connectivity=bool(enforce_connectivity),
    )


def superpixel_means(image, superpixels):
    """Replace every superpixel by its mean colour.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, C)
    superpixels : array-like of int, shape (H, W)
        Region id of each pixel (any non-negative ids, e.g. from
        :func:`slic_superpixels`).

    Returns
    -------
    ndarray, same shape and dtype as ``image``
        Each pixel holds the mean of its region. For integer images the mean
        is rounded to the nearest integer, so a ``uint8`` image stays
        displayable as is.

    Examples
    --------
    >>> image = np.array([[0.0, 1.0, 4.0], [2.0, 3.0, 5.0]])
    >>> regions = np.array([[0, 0, 1], [0, 0, 1]])
    >>> superpixel_means(image, regions)
    array([[1.5, 1.5, 4.5],
           [1.5, 1.5, 4.5]])
    """
    image = as_image(image)
    regions = as_label_map(superpixels, "superpixels")
    if image.shape[:2] != regions.shape:
        raise ValueError(
            "image and superpixels must have the same height and width; "
            f"got {image.shape} and {regions.shape}"
        )
    # number the regions 0..n-1 first: memory follows the number of regions, not the largest id
    _, flat = np.unique(regions.ravel(), return_inverse=True)
    flat = flat.ravel()
    counts = np.bincount(flat)
    colour = image.reshape(flat.size, -1).astype(np.float64)
    means = np.empty((counts.size, colour.shape[1]))
    for j in range(colour.shape[1]):
        means[:, j] = np.bincount(flat, weights=colour[:, j], minlength=counts.size)
    means /= counts[:, None]
    out = means[flat].reshape(image.shape)
    if image.dtype == bool:
        return out >= 0.5
    if np.issubdtype(image.dtype, np.integer):
        return np.rint(out).astype(image.dtype)
    return out.astype(image.dtype, copy=False)


def match_clusters(clusters, target, num_classes=None):
    """Rename cluster ids to the ground-truth classes they overlap best.

    Cluster ids are arbitrary (cluster 0 may well be class 2), so before a
    clustering can be scored against ground truth its ids must be matched to
    classes. The contingency table ``overlap[i, c]`` (pixels in cluster ``i``
    and class ``c``) is built, and a one-to-one matching that maximises the
    total overlap is found with the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`). Clusters left over (more
    clusters than classes), or matched to a class they do not overlap at all,
    go to their majority class instead.

    Parameters
    ----------
    clusters : array-like of int
        Cluster id of each pixel (any shape, e.g. ``(H, W)``).
    target : array-like of int
        Ground-truth class of each pixel, same shape.
    num_classes : int, optional
        Number of classes; default ``target.max() + 1``.

    Returns
    -------
    ndarray of int64, same shape as ``clusters``
        Class id of each pixel.

    Examples
    --------
    >>> target = np.array([[0, 0, 1, 1, 2, 2]])
    >>> clusters = np.array([[7, 7, 3, 3, 5, 5]])
    >>> match_clusters(clusters, target)
    array([[0, 0, 1, 1, 2, 2]])
    """
    clusters = as_label_map(clusters, "clusters", ndim=(1, 2, 3))
    target = as_label_map(target, "target", ndim=(1, 2, 3))
    same_shape(clusters, target, "clusters", "target")
    top = int(target.max())
    if num_classes is not None:
        num_classes = as_int(num_classes, "num_classes", minimum=1)
        if top >= num_classes:
            raise ValueError(
                f"target contains label {top}, but num_classes={num_classes} "
                f"allows only labels 0..{num_classes - 1}"
            )
    # Only the ids present matter (a class absent from target overlaps no cluster), so the
    # table is (clusters present) x (classes present), whatever the largest id is.
    ids, inverse = np.unique(clusters.ravel(), return_inverse=True)
    classes, class_index = np.unique(target.ravel(), return_inverse=True)
    inverse, class_index = inverse.ravel(), class_index.ravel()
    overlap = np.bincount(
        inverse * classes.size + class_index, minlength=ids.size * classes.size
    ).reshape(ids.size, classes.size)
    mapping = overlap.argmax(axis=1)  # majority class of each cluster
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    useful = overlap[rows, cols] > 0
    mapping[rows[useful]] = cols[useful]
    return classes[mapping][inverse].reshape(clusters.shape).astype(np.int64, copy=False)


def inertia_curve(image_or_X, ks, *, seed=0, use_position=False):
    """k-means inertia for each k, for the "elbow" plot used to choose k.

    Parameters
    ----------
    image_or_X : array-like
        A colour image ``(H, W, C)`` (turned into features by
        :func:`pixel_features`) or a sample matrix ``(n, d)``. A 2-D array is
        always read as samples: pass a grayscale image as ``image[..., None]``.
    ks : iterable of int
        Values of k to try (each ``1 <= k <= n``).
    seed : int
        Seed of :func:`kmeans` (the same for every k).
    use_position : bool
        Add pixel positions to the features (images only).

    Returns
    -------
    ndarray of float64, shape (len(ks),)
        Inertia of ``kmeans(features, k, seed=seed)`` for each k. The best
        possible inertia never rises as k grows; k-means finds a local optimum,
        so these values usually fall but need not. An "elbow", where the curve
        stops falling fast, suggests a k when the clusters are compact and well
        separated; a curve without one says the data do not choose k.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [10.0], [11.0]])
    >>> inertia_curve(X, [1, 2, 4])
    array([101.,   1.,   0.])
    """
    array = _to_array(image_or_X, "image_or_X")
    if array.ndim == 3:
        features = pixel_features(array, use_position=use_position)
    elif array.ndim == 2:
        if use_position:
            raise ValueError(
                "use_position=True needs an image of shape (H, W, C); got a 2-D array, "
                "which is read as samples (n, d); pass a grayscale image as image[..., None]"
            )
        features = _as_samples(array, "image_or_X")
    else:
        raise ValueError(
            "image_or_X must be a 3-D image (H, W, C) or 2-D samples (n, d); "
            f"got {array.ndim}-D shape {array.shape}"
        )
    try:
        ks = [int(k) if isinstance(k, np.integer) else k for k in ks]
    except TypeError:
        raise TypeError(f"ks must be an iterable of integers, got {ks!r}") from None
    if not ks:
        raise ValueError("ks is empty; give at least one k")
    return np.array([kmeans(features, k, seed=seed).inertia for k in ks], dtype=np.float64)
