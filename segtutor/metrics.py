"""Segmentation metrics: confusion matrix, pixel accuracy, IoU, Dice, boundary F1.

Every function takes integer label maps (``pred`` and ``target`` of the same
shape, class ids ``0 .. num_classes - 1``) and is written in plain NumPy so it
can be read next to the formulas in lesson 00:

* ``confusion_matrix`` counts pixels: ``cm[t, p]`` = number of pixels whose
  true class is ``t`` and predicted class is ``p``.
* For class ``c``: ``TP = cm[c, c]``, ``FP = cm[:, c].sum() - TP``,
  ``FN = cm[c, :].sum() - TP``;
  ``IoU = TP / (TP + FP + FN)`` and ``Dice = 2 TP / (2 TP + FP + FN)``.
* ``boundary_f1`` compares the *outlines* of the two label maps, with a few
  pixels of tolerance.

Label maps may be 1-D (a flat list of pixels), 2-D ``(H, W)`` or 3-D
``(N, H, W)`` (a batch); the boundary functions need 2-D maps.

``ignore_index`` marks "don't care" pixels of ``target`` (for instance 255 on
object outlines): those pixels are left out of every count, whatever ``pred``
says there.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._checks import _to_array, as_float, as_int, as_label_map, same_shape

__all__ = [
    "confusion_matrix",
    "pixel_accuracy",
    "iou_per_class",
    "mean_iou",
    "iou",
    "dice_per_class",
    "mean_dice",
    "dice",
    "boundary_mask",
    "boundary_f1",
]

_NDIM = (1, 2, 3)
#: Most classes a confusion matrix may have (4096 x 4096 counts are 128 MiB).
_MAX_CLASSES = 4096


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------


def _check_ignore(ignore_index):
    if ignore_index is None:
        return None
    return as_int(ignore_index, "ignore_index")


def _target_map(target, ignore_index):
    """Validate ``target``; return it and the mask of pixels that are not ignored."""
    if ignore_index is not None and ignore_index < 0:
        # A negative ignore label (-1 is common) is not a valid class label,
        # so validate the other pixels and put a placeholder where it sits.
        array = _to_array(target, "target")
        if array.size and not np.issubdtype(array.dtype, np.bool_):
            ignored = array == ignore_index
            checked = as_label_map(np.where(ignored, 0, array), "target", ndim=_NDIM)
            return checked, ~ignored
    checked = as_label_map(target, "target", ndim=_NDIM)
    return checked, checked != ignore_index


def _pair(pred, target, ignore_index):
    """Validated ``pred``, ``target`` (flat int64) at the scored pixels.

    With ``ignore_index``, ``pred`` is checked only where ``target`` is not ignored:
    what it says at an ignored pixel (even a negative or non-integer value) never
    matters.
    """
    ignore_index = _check_ignore(ignore_index)
    if ignore_index is None:
        pred = as_label_map(pred, "pred", ndim=_NDIM)
        target = as_label_map(target, "target", ndim=_NDIM)
        same_shape(pred, target, "pred", "target")
        return pred.ravel(), target.ravel()
    target, valid = _target_map(target, ignore_index)
    raw = _to_array(pred, "pred")
    if raw.ndim not in _NDIM:
        raise ValueError(f"pred must be a 1-D, 2-D or 3-D label map; got {raw.ndim}-D shape {raw.shape}")
    same_shape(raw, target, "pred", "target")
    kept = raw[valid]
    if kept.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return as_label_map(kept, "pred", ndim=1), target[valid]


def _check_range(labels, num_classes, name, ignore_index):
    if labels.size == 0:
        return
    top = int(labels.max())
    if top >= num_classes:
        hint = "" if ignore_index is None else f" (and is not ignore_index={ignore_index})"
        raise ValueError(
            f"{name} contains label {top}{hint}, but num_classes={num_classes} "
            f"allows only labels 0..{num_classes - 1}"
        )


def _binary(mask, name):
    array = as_label_map(mask, name, ndim=_NDIM)
    top = int(array.max())
    if top > 1:
        raise ValueError(f"{name} must be a binary mask (bool or 0/1); found value {top}")
    return array.astype(bool)


def _nothing_left(what):
    return ValueError(
        f"every pixel of target equals ignore_index; there is nothing left to compute {what} on"
    )


# ---------------------------------------------------------------------------
# region metrics
# ---------------------------------------------------------------------------


def confusion_matrix(pred, target, num_classes, ignore_index=None):
    """Count pixels by (true class, predicted class).

    Parameters
    ----------
    pred, target : array-like of int
        Predicted and true label maps of the same shape, values in
        ``0 .. num_classes - 1``.
    num_classes : int
        Number of classes ``C`` (at least 1).
    ignore_index : int, optional
        Pixels where ``target == ignore_index`` are not counted.

    Returns
    -------
    cm : ndarray of int64, shape (C, C)
        ``cm[t, p]`` is the number of pixels of true class ``t`` predicted as
        ``p``: rows are the truth, columns the prediction (the layout of
        ``sklearn.metrics.confusion_matrix(target.ravel(), pred.ravel())``).

    Raises
    ------
    ValueError
        If the shapes differ, a label is negative or ``>= num_classes``, or a
        map is empty or holds NaN.
    TypeError
        If a map holds non-integer values.

    Examples
    --------
    >>> target = np.array([[0, 0, 1], [1, 1, 2]])
    >>> pred = np.array([[0, 1, 1], [1, 2, 2]])
    >>> confusion_matrix(pred, target, num_classes=3)
    array([[1, 1, 0],
           [0, 2, 1],
           [0, 0, 1]])
    """
    num_classes = as_int(num_classes, "num_classes", minimum=1, maximum=_MAX_CLASSES)
    ignore_index = _check_ignore(ignore_index)
    pred, target = _pair(pred, target, ignore_index)
    _check_range(target, num_classes, "target", ignore_index)
    _check_range(pred, num_classes, "pred", ignore_index)
    # One bincount over the joint index t * C + p counts every (t, p) pair at once.
    counts = np.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def pixel_accuracy(pred, target, ignore_index=None):
    """Fraction of (non-ignored) pixels whose predicted label equals the true one.

    Parameters
    ----------
    pred, target : array-like of int
        Label maps of the same shape.
    ignore_index : int, optional
        Pixels where ``target == ignore_index`` are left out.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    ValueError
        On bad input (see :func:`confusion_matrix`), or when every pixel is ignored.

    Examples
    --------
    >>> pixel_accuracy([[0, 1], [1, 1]], [[0, 1], [0, 1]])
    0.75
    >>> pixel_accuracy([[0, 1], [1, 1]], [[0, 1], [255, 1]], ignore_index=255)
    1.0
    """
    pred, target = _pair(pred, target, ignore_index)
    if target.size == 0:
        raise _nothing_left("pixel accuracy")
    return float(np.mean(pred == target))


def _per_class(pred, target, num_classes, ignore_index, dice_weight):
    cm = confusion_matrix(pred, target, num_classes, ignore_index)
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denominator = dice_weight * tp + fp + fn
    scores = np.full(num_classes, np.nan)
    present = denominator > 0  # the class occurs in pred or target
    scores[present] = dice_weight * tp[present] / denominator[present]
    return scores


def _nan_mean(scores, what):
    if np.isnan(scores).all():
        raise _nothing_left(what)
    return float(np.nanmean(scores))


def iou_per_class(pred, target, num_classes, ignore_index=None):
    """Intersection over union (Jaccard index) of each class.

    ``IoU_c = |pred == c and target == c| / |pred == c or target == c|``, counted
    over the non-ignored pixels.

    Parameters
    ----------
    pred, target : array-like of int
        Label maps of the same shape.
    num_classes : int
        Number of classes ``C``.
    ignore_index : int, optional
        Pixels where ``target == ignore_index`` are left out.

    Returns
    -------
    ndarray of float64, shape (C,)
        ``NaN`` for a class that appears neither in ``pred`` nor in ``target``
        (its IoU is 0 / 0: undefined, not a failure).

    Examples
    --------
    >>> target = np.array([[0, 0, 1, 1]])
    >>> pred = np.array([[0, 1, 1, 1]])
    >>> iou_per_class(pred, target, num_classes=3)
    array([0.5       , 0.66666667,        nan])
    """
    return _per_class(pred, target, num_classes, ignore_index, dice_weight=1.0)


def mean_iou(pred, target, num_classes, ignore_index=None):
    """Mean IoU (mIoU) over the classes present in ``pred`` or ``target``.

    Convention: a class absent from both maps has an undefined IoU (``NaN`` in
    :func:`iou_per_class`) and is **left out of the mean**, rather than counted
    as 1 or 0. A class that is present in only one of the two maps has IoU 0
    and does count. (Benchmarks such as Pascal VOC instead accumulate one
    confusion matrix over the whole data set before taking the mean.)

    Parameters
    ----------
    pred, target : array-like of int
        Label maps of the same shape.
    num_classes : int
        Number of classes ``C``.
    ignore_index : int, optional
        Pixels where ``target == ignore_index`` are left out.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        On bad input, or when every pixel is ignored.

    Examples
    --------
    >>> target = np.array([[0, 0, 1, 1]])
    >>> pred = np.array([[0, 1, 1, 1]])
    >>> round(mean_iou(pred, target, num_classes=3), 4)  # (1/2 + 2/3) / 2
    0.5833
    """
    return _nan_mean(iou_per_class(pred, target, num_classes, ignore_index), "mean IoU")


def dice_per_class(pred, target, num_classes, ignore_index=None):
    """Dice coefficient (F1 score) of each class.

    ``Dice_c = 2 |P_c and T_c| / (|P_c| + |T_c|)`` where ``P_c`` and ``T_c`` are the
    pixels labelled ``c`` in ``pred`` and ``target``. It is linked to IoU by
    ``Dice = 2 IoU / (1 + IoU)``.

    Parameters
    ----------
    pred, target : array-like of int
        Label maps of the same shape.
    num_classes : int
        Number of classes ``C``.
    ignore_index : int, optional
        Pixels where ``target == ignore_index`` are left out.

    Returns
    -------
    ndarray of float64, shape (C,)
        ``NaN`` for a class absent from both maps.

    Examples
    --------
    >>> target = np.array([[0, 0, 1, 1]])
    >>> pred = np.array([[0, 1, 1, 1]])
    >>> dice_per_class(pred, target, num_classes=2)
    array([0.66666667, 0.8       ])
    """
    return _per_class(pred, target, num_classes, ignore_index, dice_weight=2.0)


def mean_dice(pred, target, num_classes, ignore_index=None):
    """Mean Dice over the classes present in ``pred`` or ``target``.

    Same convention as :func:`mean_iou`: classes absent from both maps are
    left out of the mean.

    Examples
    --------
    >>> target = np.array([[0, 0, 1, 1]])
    >>> pred = np.array([[0, 1, 1, 1]])
    >>> round(mean_dice(pred, target, num_classes=5), 4)  # (2/3 + 4/5) / 2
    0.7333
    """
    return _nan_mean(dice_per_class(pred, target, num_classes, ignore_index), "mean Dice")


def iou(mask_a, mask_b):
    """IoU of two binary masks: ``|A and B| / |A or B|``.

    Parameters
    ----------
    mask_a, mask_b : array-like of bool or 0/1
        Masks of the same shape.

    Returns
    -------
    float
        In ``[0, 1]``. Two empty masks agree perfectly: the result is ``1.0``.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 0]], dtype=bool)
    >>> b = np.array([[0, 1, 1, 0]], dtype=bool)
    >>> round(iou(a, b), 4)
    0.3333
    >>> iou(np.zeros((2, 2)), np.zeros((2, 2)))
    1.0
    """
    a = _binary(mask_a, "mask_a")
    b = _binary(mask_b, "mask_b")
    same_shape(a, b, "mask_a", "mask_b")
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(a & b) / union)


def dice(mask_a, mask_b):
    """Dice coefficient of two binary masks: ``2 |A and B| / (|A| + |B|)``.

    Parameters
    ----------
    mask_a, mask_b : array-like of bool or 0/1
        Masks of the same shape.

    Returns
    -------
    float
        In ``[0, 1]``. Two empty masks give ``1.0``.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 0]], dtype=bool)
    >>> b = np.array([[0, 1, 1, 0]], dtype=bool)
    >>> dice(a, b)
    0.5
    """
    a = _binary(mask_a, "mask_a")
    b = _binary(mask_b, "mask_b")
    same_shape(a, b, "mask_a", "mask_b")
    total = np.count_nonzero(a) + np.count_nonzero(b)
    if total == 0:
        return 1.0
    return float(2 * np.count_nonzero(a & b) / total)


# ---------------------------------------------------------------------------
# boundary metrics
# ---------------------------------------------------------------------------


def boundary_mask(labels):
    """Boundary pixels of a label map.

    A pixel is on the boundary when one of its 4 neighbours (up, down, left,
    right) has a different label. Both sides of an edge are marked, so a
    boundary between two regions is 2 pixels wide. The image border is not a
    boundary.

    Parameters
    ----------
    labels : array-like of int, shape (H, W)

    Returns
    -------
    ndarray of bool, shape (H, W)

    Examples
    --------
    >>> labels = np.array([[0, 0, 1, 1],
    ...                    [0, 0, 1, 1]])
    >>> boundary_mask(labels).astype(int)
    array([[0, 1, 1, 0],
           [0, 1, 1, 0]])
    """
    labels = as_label_map(labels, "labels")
    out = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:, :] != labels[:-1, :]
    horizontal = labels[:, 1:] != labels[:, :-1]
    out[1:, :] |= vertical
    out[:-1, :] |= vertical
    out[:, 1:] |= horizontal
    out[:, :-1] |= horizontal
    return out


def boundary_f1(pred, target, tolerance=2, num_classes=None):
    """Boundary F-score of two label maps (BSDS / DAVIS style).

    The boundaries of both maps are found with :func:`boundary_mask`. A
    predicted boundary pixel is a hit when a true boundary pixel lies within
    ``tolerance`` pixels of it (Euclidean distance); likewise for recall::

        precision = fraction of predicted boundary pixels near a true one
        recall    = fraction of true boundary pixels near a predicted one
        F         = 2 * precision * recall / (precision + recall)

    Parameters
    ----------
    pred, target : array-like of int, shape (H, W)
        Label maps of the same shape.
    tolerance : float
        Largest distance in pixels at which two boundary pixels still match
        (``>= 0``; 0 asks for exact overlap).
    num_classes : int, optional
        When given, labels must lie in ``0 .. num_classes - 1``.

    Returns
    -------
    float
        In ``[0, 1]``. When neither map has any boundary (each a single
        region) the result is ``1.0``; when only one of them has a boundary
        it is ``0.0``; when no boundary pixel matches it is ``0.0``.

    Examples
    --------
    >>> target = np.zeros((8, 8), dtype=int); target[:, 4:] = 1
    >>> boundary_f1(target, target)
    1.0
    >>> shifted = np.zeros((8, 8), dtype=int); shifted[:, 5:] = 1
    >>> boundary_f1(shifted, target, tolerance=1)
    1.0
    >>> boundary_f1(shifted, target, tolerance=0)
    0.5
    """
    tolerance = as_float(tolerance, "tolerance", minimum=0)
    pred = as_label_map(pred, "pred")
    target = as_label_map(target, "target")
    same_shape(pred, target, "pred", "target")
    if num_classes is not None:
        num_classes = as_int(num_classes, "num_classes", minimum=1)
        _check_range(target, num_classes, "target", None)
        _check_range(pred, num_classes, "pred", None)
    pred_edges = boundary_mask(pred)
    true_edges = boundary_mask(target)
    n_pred = np.count_nonzero(pred_edges)
    n_true = np.count_nonzero(true_edges)
    if n_pred == 0 and n_true == 0:
        return 1.0
    if n_pred == 0 or n_true == 0:
        return 0.0
    # distance_transform_edt gives, for each nonzero pixel, the distance to the
    # nearest zero pixel: here the distance to the nearest boundary pixel.
    to_true = ndimage.distance_transform_edt(~true_edges)
    to_pred = ndimage.distance_transform_edt(~pred_edges)
    precision = np.count_nonzero(to_true[pred_edges] <= tolerance) / n_pred
    recall = np.count_nonzero(to_pred[true_edges] <= tolerance) / n_true
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))
