"""Weakly supervised segmentation: training a segmenter from bounding boxes.

A box says *where* an object is and *what* it is, but not which pixels of the box
belong to it. This module turns boxes into **pseudo-masks** (label maps a
segmentation network can be trained on) in four ways, from the crudest to the
best:

===============================  ==========================================================
name                             the pseudo-mask of each box
===============================  ==========================================================
:func:`filled_boxes`             (a) every pixel of the box gets the box's class
:func:`banded_boxes`             (b) the centre of the box gets its class; a border band,
                                 where the object may or may not be, is ignored
:func:`refined_boxes`            (c) a classical method inside the box (Otsu's threshold
                                 and k-means from lessons 01--02) picks the object's pixels
:func:`relabel`                  (d) self-training: a network trained on (c) predicts
                                 inside the boxes, and its predictions become the labels
===============================  ==========================================================

Pixels outside every box are background (0). Pixels left out of the loss get
:data:`IGNORE_INDEX` (255, PASCAL VOC's "void", the ``ignore_index`` of
:func:`segtutor.fcn.train`).

Box convention
--------------
Boxes are torchvision's ``(x0, y0, x1, y1)`` in pixels, with ``x0, y0`` inclusive
and **x1, y1 exclusive**: the box covers rows ``y0 .. y1 - 1`` and columns
``x0 .. x1 - 1``, that is ``mask[y0:y1, x0:x1]``; its width is ``x1 - x0``. These are
the boxes of :func:`segtutor.data.make_instance_scene`. (``torchvision.ops.masks_to_boxes``
returns the last row and column themselves, ``x1 - 1`` and ``y1 - 1``.) Coordinates
must be whole numbers (``12.0`` is accepted, ``12.5`` is not) with
``0 <= x0 < x1 <= W`` and ``0 <= y0 < y1 <= H``.

Overlaps
--------
Where boxes overlap, **the smaller box wins** (by area; between boxes of the same
area, the one listed first): a small object in front of a large one is more likely
to fill the shared pixels than the large one, and otherwise the small object would
vanish under its neighbour's label.

The experiment
--------------
:func:`train_kinds` trains the same FCN-8s (:mod:`segtutor.fcn`) on each kind of
pseudo-mask and on the true masks, with the same settings, through
:func:`segtutor.training.cached` (a second run reloads the models).

On a hub: real photographs
--------------------------
:func:`hub_run` repeats the experiment on Penn-Fudan's photographs of people
(:class:`segtutor.datasets.PennFudan`) under the full profile: the boxes come from the
instance masks, :class:`BoxLabelDataset` turns them into training labels of each kind,
the same FCN trains on each (:func:`segtutor.fcn.train_on`), and every model is scored
on the held-out photographs against their true masks.
"""

from __future__ import annotations

import numbers

import numpy as np

from segtutor import classical as _classical
from segtutor import cluster as _cluster
from segtutor import data as _data
from segtutor import metrics as _metrics
from segtutor._checks import as_float, as_image, as_int, describe

__all__ = [
    "IGNORE_INDEX",
    "KINDS",
    "KIND_NAMES",
    "PAPER_RESULTS",
    "check_boxes",
    "box_to_mask",
    "box_with_band",
    "paint_order",
    "filled_boxes",
    "band_width",
    "banded_boxes",
    "refine_box",
    "refined_boxes",
    "relabel",
    "pseudo_label_iou",
    "pseudo_label_scores",
    "instance_scenes",
    "box_fill",
    "pseudo_labels",
    "lesson_config",
    "train_kinds",
    "training_report",
    "score_kinds",
    "score_table",
    "tinted",
    "plot_pseudo_labels",
    "plot_scores",
    "HUB_KINDS",
    "hub_config",
    "BoxLabelDataset",
    "hub_run",
    "hub_table",
    "plot_hub_run",
]

#: Label of the pixels a pseudo-mask is unsure about: left out of the loss (``segtutor.fcn.IGNORE_INDEX``).
IGNORE_INDEX = 255
#: The kinds of pseudo-masks, crudest first, then the true masks (``"full"``).
KINDS = ("box", "band", "refined", "self-trained", "full")
#: How the lesson's tables and figures name each kind.
KIND_NAMES = {"box": "(a) filled boxes", "band": "(b) box + ignored band", "refined": "(c) refined in box",
              "self-trained": "(d) self-trained", "full": "true masks"}
#: Published results on PASCAL VOC 2012 val (mIoU, %): box-supervised vs the same network trained on
#: true masks, and their ratio (Box_i is quoted by its ratio only).
PAPER_RESULTS = (
    {"method": "BoxSup (Dai et al., 2015)", "boxes": 62.0, "masks": 63.8, "ratio": 0.97},
    {"method": "Simple Does It, M∩G+ (Khoreva et al., 2017)", "boxes": 65.7, "masks": 69.1, "ratio": 0.95},
    {"method": "Simple Does It, Box_i (Khoreva et al., 2017)", "boxes": None, "masks": 69.1, "ratio": 0.91},
)

_METHODS = ("threshold", "kmeans", "both")


# =========================================================================== boxes


def _shape(shape):
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise TypeError(f"shape must be the image size (H, W), got {describe(shape)}")
    return as_int(shape[0], "shape[0] (H)", minimum=1), as_int(shape[1], "shape[1] (W)", minimum=1)


_CONVENTION = "boxes are (x0, y0, x1, y1) in pixels with x1, y1 exclusive (torchvision): 0 <= x0 < x1 <= W, " \
              "0 <= y0 < y1 <= H"


def check_boxes(boxes, shape, labels=None, num_classes=_data.NUM_CLASSES):
    """Check boxes (and their class labels) against an image size; return them as integers.

    Parameters
    ----------
    boxes : array-like, shape (N, 4) or (4,)
        ``(x0, y0, x1, y1)`` per box, whole numbers (see *Box convention* in the
        module docstring); one box may be given as a flat sequence of 4.
    shape : (H, W)
        Size of the image.
    labels : array-like of int, shape (N,), optional
        Class of each box, ``1 .. num_classes - 1`` (0 is the background).
    num_classes : int
        Number of classes, background included.

    Returns
    -------
    boxes : ndarray of int64, shape (N, 4)
    labels : ndarray of int64, shape (N,) (only when ``labels`` is given)

    Raises
    ------
    TypeError, ValueError
        Naming the box, what is wrong and the expected convention: not 4
        coordinates, NaN or infinite, not whole numbers, ``x1 < x0``, empty
        (``x1 == x0``), outside the image, labels of the wrong length or out of range.

    Examples
    --------
    >>> check_boxes([[2, 1, 5, 4]], (8, 8))
    array([[2, 1, 5, 4]])
    >>> check_boxes([[5, 1, 2, 4]], (8, 8))
    Traceback (most recent call last):
    ...
    ValueError: box 0 = [5, 1, 2, 4] has x1 < x0: boxes are (x0, y0, x1, y1) in pixels with x1, y1 exclusive (torchvision): 0 <= x0 < x1 <= W, 0 <= y0 < y1 <= H
    """
    height, width = _shape(shape)
    if isinstance(boxes, (str, bytes)) or boxes is None:
        raise TypeError(f"boxes must be an array (N, 4) of numbers; {_CONVENTION}; got {describe(boxes)}")
    try:
        array = np.asarray(boxes)
    except (TypeError, ValueError):
        raise TypeError(f"boxes must be an array (N, 4) of numbers; {_CONVENTION}; got {describe(boxes)}") from None
    if array.dtype.kind not in "iuf" or array.dtype == bool:
        raise TypeError(f"boxes must hold numbers; {_CONVENTION}; got dtype {array.dtype}")
    if array.ndim == 1 and array.shape[0] == 4:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4); {_CONVENTION}; got shape {array.shape}")
    array = array.astype(np.float64)
    for i, box in enumerate(array):
        shown = "[" + ", ".join(f"{v:g}" for v in box) + "]"
        if not np.isfinite(box).all():
            raise ValueError(f"box {i} = {shown} has NaN or infinite coordinates; {_CONVENTION}")
        if not np.array_equal(box, np.round(box)):
            raise ValueError(f"box {i} = {shown} has coordinates that are not whole pixels; {_CONVENTION}")
        x0, y0, x1, y1 = box
        if x1 < x0 or y1 < y0:
            which = "x1 < x0" if x1 < x0 else "y1 < y0"
            raise ValueError(f"box {i} = {shown} has {which}: {_CONVENTION}")
        if x1 == x0 or y1 == y0:
            raise ValueError(f"box {i} = {shown} is empty (x1 == x0 or y1 == y0 covers no pixel); {_CONVENTION}")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(f"box {i} = {shown} lies outside the {height}x{width} image; {_CONVENTION}")
    out = array.astype(np.int64)
    if labels is None:
        return out
    num_classes = as_int(num_classes, "num_classes", minimum=2)
    labels = np.asarray(labels)
    if labels.ndim == 0:
        labels = labels[None]
    if labels.dtype.kind not in "iu" or labels.dtype == bool:
        raise TypeError(f"labels must be integer class ids 1..{num_classes - 1}, got dtype {labels.dtype}")
    if labels.shape != (len(out),):
        raise ValueError(f"labels must hold one class per box, shape ({len(out)},); got shape {labels.shape}")
    bad = (labels < 1) | (labels >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"label {i} is {int(labels[i])}; box labels must be object classes 1..{num_classes - 1} "
                         "(0 is the background)")
    return out, labels.astype(np.int64)


def box_to_mask(box, shape):
    """The pixels of one box as a boolean mask.

    Parameters
    ----------
    box : sequence of 4 int
        ``(x0, y0, x1, y1)``, ``x1`` and ``y1`` exclusive (torchvision).
    shape : (H, W)

    Returns
    -------
    ndarray of bool, shape (H, W)
        True on rows ``y0 .. y1 - 1`` and columns ``x0 .. x1 - 1``.

    Examples
    --------
    >>> box_to_mask([1, 0, 3, 2], (3, 4)).astype(int)
    array([[0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]])
    """
    (x0, y0, x1, y1), = check_boxes(box, shape)
    mask = np.zeros(_shape(shape), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def box_with_band(box, shape, band):
    """One box as a pseudo-mask: 1 in its centre, :data:`IGNORE_INDEX` in a border band, 0 outside.

    The band is ``band`` pixels wide along each of the box's four sides; the rest
    of the box (its centre, ``band`` pixels in from every side) is labelled 1. A band
    of half the box's width or height or more leaves no centre: the whole box is
    ignored.

    Parameters
    ----------
    box : sequence of 4 int
        ``(x0, y0, x1, y1)``, ``x1`` and ``y1`` exclusive.
    shape : (H, W)
    band : int
        Width of the ignored band in pixels, >= 0 (0: the filled box).

    Returns
    -------
    ndarray of int64, shape (H, W)
        Values 0, 1 and 255.

    Examples
    --------
    >>> box_with_band([0, 0, 5, 4], (4, 6), band=1)
    array([[255, 255, 255, 255, 255,   0],
           [255,   1,   1,   1, 255,   0],
           [255,   1,   1,   1, 255,   0],
           [255, 255, 255, 255, 255,   0]])
    """
    (x0, y0, x1, y1), = check_boxes(box, shape)
    band = as_int(band, "band", minimum=0)
    out = np.zeros(_shape(shape), dtype=np.int64)
    out[y0:y1, x0:x1] = IGNORE_INDEX
    if y1 - band > y0 + band and x1 - band > x0 + band:  # else no centre is left (and y1 - band may be < 0)
        out[y0 + band:y1 - band, x0 + band:x1 - band] = 1
    return out


def paint_order(boxes):
    """The order in which to paint boxes so that the smaller box wins overlaps.

    Boxes are painted from the largest area to the smallest, each over the ones
    before; between boxes of equal area the one listed later is painted first, so
    that the one listed first ends on top.

    Parameters
    ----------
    boxes : array-like (N, 4)

    Returns
    -------
    ndarray of int, shape (N,)
        Box indices, in painting order.

    Examples
    --------
    >>> paint_order([[0, 0, 4, 4], [1, 1, 3, 3], [0, 0, 2, 2]])  # areas 16, 4, 4
    array([0, 2, 1])
    """
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    index = np.arange(len(boxes))
    return np.lexsort((-index, -area))  # last key first: area descending, then index descending


def filled_boxes(boxes, labels, shape):
    """(a) Every pixel of a box gets the box's class; where boxes overlap, the smaller wins.

    Parameters
    ----------
    boxes : array-like (N, 4)
        ``(x0, y0, x1, y1)``, ``x1`` and ``y1`` exclusive.
    labels : array-like of int (N,)
        Class of each box, >= 1.
    shape : (H, W)

    Returns
    -------
    ndarray of int64, shape (H, W)
        0 outside every box.

    Examples
    --------
    >>> filled_boxes([[0, 0, 4, 3], [2, 1, 5, 3]], [1, 2], (3, 6))
    array([[1, 1, 1, 1, 0, 0],
           [1, 1, 2, 2, 2, 0],
           [1, 1, 2, 2, 2, 0]])
    """
    boxes, labels = check_boxes(boxes, shape, labels, num_classes=IGNORE_INDEX)
    out = np.zeros(_shape(shape), dtype=np.int64)
    for i in paint_order(boxes):
        x0, y0, x1, y1 = boxes[i]
        out[y0:y1, x0:x1] = labels[i]
    return out


def band_width(box, band=0.2):
    """The band of :func:`banded_boxes` for one box, in pixels: ``band`` times its shorter side, rounded half up.

    Examples
    --------
    >>> band_width([0, 0, 12, 30]), band_width([0, 0, 5, 5]), band_width([0, 0, 5, 5], band=0.5)
    (2, 1, 3)
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    return int(np.floor(as_float(band, "band", minimum=0, maximum=0.5) * min(x1 - x0, y1 - y0) + 0.5))


def banded_boxes(boxes, labels, shape, band=0.2):
    """(b) The centre of each box gets its class; a band along its border is ignored.

    The object certainly touches the four sides of its (tight) box, but near the
    corners and sides the box also holds background: the band marks those pixels
    unsure (:data:`IGNORE_INDEX`), and only the centre is kept as a label. This is
    "Box_i" of Khoreva et al. (2017).

    Parameters
    ----------
    boxes, labels, shape
        As for :func:`filled_boxes`.
    band : float
        Width of the band as a fraction of the box's shorter side, in ``[0, 0.5]``;
        the width in pixels is rounded half up (see :func:`box_with_band`).

    Returns
    -------
    ndarray of int64, shape (H, W)
        0 outside every box; overlaps as in :func:`filled_boxes` (the smaller box wins).

    Examples
    --------
    >>> banded_boxes([[0, 0, 5, 5]], [3], (5, 6), band=0.2)
    array([[255, 255, 255, 255, 255,   0],
           [255,   3,   3,   3, 255,   0],
           [255,   3,   3,   3, 255,   0],
           [255,   3,   3,   3, 255,   0],
           [255, 255, 255, 255, 255,   0]])
    """
    boxes, labels = check_boxes(boxes, shape, labels, num_classes=IGNORE_INDEX)
    band = as_float(band, "band", minimum=0, maximum=0.5)
    out = np.zeros(_shape(shape), dtype=np.int64)
    for i in paint_order(boxes):
        x0, y0, x1, y1 = boxes[i]
        b = band_width(boxes[i], band)
        out[y0:y1, x0:x1] = IGNORE_INDEX
        if y1 - b > y0 + b and x1 - b > x0 + b:
            out[y0 + b:y1 - b, x0 + b:x1 - b] = labels[i]
    return out


# =========================================================================== refining inside a box


def _largest_region(mask):
    """The largest 4-connected region of ``mask``, holes filled."""
    if not mask.any():
        return mask
    regions, count = _classical.label_components(mask, connectivity=1)
    sizes = np.bincount(regions.ravel(), minlength=count + 1)
    sizes[0] = 0
    return _classical.clean_mask(regions == int(np.argmax(sizes)), fill_holes=True)


def _ring_colours(image, box, pixels, ring=3):
    """Colours of a ``ring``-pixel frame around the box (outside it: the box is tight, so never the object),
    or of the box's own outermost pixels when the box fills the image."""
    x0, y0, x1, y1 = box
    height, width = image.shape[:2]
    top, left = max(y0 - ring, 0), max(x0 - ring, 0)
    around = np.asarray(image[top:min(y1 + ring, height), left:min(x1 + ring, width)], dtype=np.float64)
    if image.dtype == np.uint8:
        around = around / 255
    outside = np.ones(around.shape[:2], dtype=bool)
    outside[y0 - top:y1 - top, x0 - left:x1 - left] = False
    if outside.sum() >= 8:
        return around[outside]
    frame = np.ones(pixels.shape[:2], dtype=bool)
    frame[1:-1, 1:-1] = False
    return pixels[frame]


def refine_box(image, box, method="both", *, seed=0):
    """Which pixels of one box belong to its object, by a classical method.

    The box is tight, so the pixels just outside it (a 3-pixel frame) are not the
    object: they are samples of the background, and their median colour is taken
    as the background's. The colours of the box and of that frame (lessons 01--02):

    * ``"threshold"``: each colour is projected on the line from the background
      colour to the median colour of the box's centre, and split by Otsu's
      threshold (:func:`segtutor.classical.otsu_threshold`);
    * ``"kmeans"``: the colours fall in two clusters (:func:`segtutor.cluster.kmeans`,
      k = 2); the cluster whose centre lies farther from the background colour is
      the object;
    * ``"both"``: a pixel is the object where both methods say so, background
      where both say so, and unsure where they disagree (the idea of "M∩G" in
      Khoreva et al., 2017).

    Of the object's pixels only the largest 4-connected region is kept, its holes
    filled.

    Parameters
    ----------
    image : ndarray (H, W, 3)
        RGB, float in [0, 1] or uint8.
    box : sequence of 4 int
        ``(x0, y0, x1, y1)``, ``x1`` and ``y1`` exclusive.
    method : {"threshold", "kmeans", "both"}
    seed : int
        Seed of k-means.

    Returns
    -------
    object : ndarray of bool, shape (H, W)
        The object's pixels (inside the box only).
    unsure : ndarray of bool, shape (H, W)
        Pixels of the box the methods disagree on (always empty unless ``method="both"``).

    Examples
    --------
    >>> image = np.zeros((6, 6, 3)); image[2:4, 2:5] = 1.0
    >>> obj, unsure = refine_box(image, [1, 1, 6, 5])
    >>> obj.astype(int)
    array([[0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 1, 0],
           [0, 0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0]])
    >>> bool(unsure.any())
    False
    """
    image = as_image(image, "image", channels="color")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    (x0, y0, x1, y1), = check_boxes(box, image.shape[:2])
    pixels = np.asarray(image[y0:y1, x0:x1], dtype=np.float64)
    if image.dtype == np.uint8:
        pixels = pixels / 255
    h, w = pixels.shape[:2]
    ring = _ring_colours(image, (x0, y0, x1, y1), pixels)
    background = np.median(ring, axis=0)
    colours = pixels.reshape(-1, 3)
    samples = np.concatenate([colours, ring])  # the background is always among them, even if the box is full
    votes = []
    if method in ("threshold", "both"):
        cy, cx = slice(h // 3, h - h // 3), slice(w // 3, w - w // 3)
        centre = pixels[cy, cx].reshape(-1, 3)
        centre = np.median(centre if len(centre) else colours, axis=0)
        projection = (samples - background) @ (centre - background)
        if np.ptp(projection) > 0:
            threshold = _classical.otsu_threshold(projection.reshape(1, -1))
            votes.append((projection[:len(colours)] > threshold).reshape(h, w))
        else:
            votes.append(np.zeros((h, w), dtype=bool))
    if method in ("kmeans", "both"):
        if np.ptp(samples, axis=0).max() > 0:
            result = _cluster.kmeans(samples, 2, seed=seed)
            far = int(np.argmax(np.linalg.norm(result.centers - background, axis=1)))
            votes.append((result.labels[:len(colours)] == far).reshape(h, w))
        else:
            votes.append(np.zeros((h, w), dtype=bool))
    agree = np.logical_and.reduce(votes)
    either = np.logical_or.reduce(votes)
    inside = _largest_region(agree)
    obj = np.zeros(image.shape[:2], dtype=bool)
    unsure = np.zeros(image.shape[:2], dtype=bool)
    obj[y0:y1, x0:x1] = inside
    unsure[y0:y1, x0:x1] = either & ~agree
    return obj, unsure


def refined_boxes(image, boxes, labels, method="both", *, min_fill=0.25, band=0.2, seed=0):
    """(c) Each box's object pixels found by :func:`refine_box`; unsure pixels ignored.

    The object's pixels get the box's class, the pixels the methods disagree on
    :data:`IGNORE_INDEX`; the rest of the box, and everything outside the boxes, is
    background. Where two boxes both claim a pixel, the smaller box wins (it is
    painted last, :func:`paint_order`). A box whose object covers less than
    ``min_fill`` of it (the method failed, e.g. an object of the background's
    colour) falls back to :func:`banded_boxes`'s label for that box, as "Simple Does
    It" falls back to Box_i.

    Parameters
    ----------
    image : ndarray (H, W, 3)
    boxes, labels
        As for :func:`filled_boxes`.
    method : {"threshold", "kmeans", "both"}
    min_fill : float
        In [0, 1].
    band : float
        Band of the fallback.
    seed : int
        Seed of k-means.

    Returns
    -------
    ndarray of int64, shape (H, W)

    Examples
    --------
    >>> image = np.zeros((6, 7, 3)); image[1:4, 1:4] = (1.0, 0.5, 0.0)
    >>> refined_boxes(image, [[0, 0, 5, 5]], [2])
    array([[0, 0, 0, 0, 0, 0, 0],
           [0, 2, 2, 2, 0, 0, 0],
           [0, 2, 2, 2, 0, 0, 0],
           [0, 2, 2, 2, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0]])
    """
    image = as_image(image, "image", channels="color")
    shape = image.shape[:2]
    boxes, labels = check_boxes(boxes, shape, labels, num_classes=IGNORE_INDEX)
    min_fill = as_float(min_fill, "min_fill", minimum=0, maximum=1)
    band = as_float(band, "band", minimum=0, maximum=0.5)
    out = np.zeros(shape, dtype=np.int64)
    for i in paint_order(boxes):
        x0, y0, x1, y1 = boxes[i]
        obj, unsure = refine_box(image, boxes[i], method, seed=seed)
        if obj.sum() < min_fill * (x1 - x0) * (y1 - y0):
            fallback = banded_boxes(boxes[i:i + 1], labels[i:i + 1], shape, band)
            out[y0:y1, x0:x1] = fallback[y0:y1, x0:x1]
            continue
        out[unsure] = IGNORE_INDEX
        out[obj] = labels[i]
    return out


def relabel(prediction, boxes, labels, *, start=None, mode="agree", min_fill=0.25):
    """(d) One round of self-training: a network's prediction, kept inside the boxes, as new labels.

    Inside each box, the network's answer for each pixel is "the box's class",
    "background", or another object class (which the box rules out: such pixels are
    ignored). Outside the boxes everything is background. Overlaps as in
    :func:`filled_boxes`. With

    * ``mode="replace"``: the network's answers become the labels;
    * ``mode="agree"``: a pixel keeps its label from ``start`` where the network
      agrees with it, and is ignored where they disagree; pixels ``start`` ignored
      take the network's answer. Two independent opinions, and only their agreement
      is trusted (as M∩G in Khoreva et al., 2017, with the network as one opinion).

    Where the network finds less than ``min_fill`` of a box, that box keeps its
    labels from ``start``, so that one bad prediction cannot erase an object.

    Parameters
    ----------
    prediction : ndarray of int (H, W)
        A label map predicted by the network (e.g. :func:`segtutor.fcn.predict`).
    boxes, labels
        As for :func:`filled_boxes`.
    start : ndarray of int (H, W), optional
        The labels the network was trained on; default :func:`filled_boxes`.
    mode : {"agree", "replace"}
    min_fill : float

    Returns
    -------
    ndarray of int64, shape (H, W)

    Examples
    --------
    >>> prediction = np.array([[0, 1, 1, 0, 0],
    ...                        [0, 1, 2, 0, 1]])
    >>> relabel(prediction, [[0, 0, 4, 2]], [1], mode="replace")
    array([[  0,   1,   1,   0,   0],
           [  0,   1, 255,   0,   0]])
    >>> start = np.array([[0, 1, 1, 1, 0],
    ...                   [0, 1, 1, 255, 0]])
    >>> relabel(prediction, [[0, 0, 4, 2]], [1], start=start)
    array([[  0,   1,   1, 255,   0],
           [  0,   1, 255,   0,   0]])
    """
    prediction = np.asarray(prediction)
    if prediction.ndim != 2 or prediction.dtype.kind not in "iu":
        raise ValueError(f"prediction must be a label map (H, W) of integers, got {describe(prediction)}")
    if mode not in ("agree", "replace"):
        raise ValueError(f"mode must be 'agree' or 'replace', got {mode!r}")
    shape = prediction.shape
    boxes, labels = check_boxes(boxes, shape, labels, num_classes=IGNORE_INDEX)
    min_fill = as_float(min_fill, "min_fill", minimum=0, maximum=1)
    if start is None:
        start = filled_boxes(boxes, labels, shape)
    start = np.asarray(start)
    if start.shape != shape:
        raise ValueError(f"start must have the prediction's shape {shape}, got {start.shape}")
    out = np.zeros(shape, dtype=np.int64)
    for i in paint_order(boxes):
        x0, y0, x1, y1 = boxes[i]
        inside = prediction[y0:y1, x0:x1]
        before = start[y0:y1, x0:x1]
        region = out[y0:y1, x0:x1]  # a view: writing to it writes to out
        if np.count_nonzero(inside == labels[i]) < min_fill * inside.size:
            region[...] = before
            continue
        says = np.where(inside == labels[i], labels[i], np.where(inside == 0, 0, IGNORE_INDEX))
        if mode == "agree":
            said = np.where(before == labels[i], labels[i], np.where(before == IGNORE_INDEX, IGNORE_INDEX, 0))
            says = np.where(said == IGNORE_INDEX, says, np.where(says == said, says, IGNORE_INDEX))
        claimed = says != 0  # background inside this box keeps what larger boxes said
        region[claimed] = says[claimed]
    return out


# =========================================================================== quality of pseudo-labels


def pseudo_label_iou(pseudo, truth):
    """IoU of a one-class pseudo-label with the true mask, over the pixels it labels.

    Pixels where ``pseudo`` is :data:`IGNORE_INDEX` are left out of both the
    intersection and the union (the network never learns from them); of the rest,
    ``pseudo == 1`` is the object.

    Parameters
    ----------
    pseudo : ndarray of int (H, W)
        0 (background), 1 (object) or 255 (ignored).
    truth : ndarray of bool (H, W)
        The object's true mask.

    Returns
    -------
    float
        In [0, 1]; 1.0 when neither says "object" anywhere they are compared
        (as :func:`segtutor.metrics.iou`).

    Examples
    --------
    >>> pseudo = np.array([[255, 255, 255, 0],
    ...                    [255,   1, 255, 0],
    ...                    [255, 255, 255, 0]])
    >>> truth = np.array([[0, 1, 0, 0],
    ...                   [1, 1, 1, 0],
    ...                   [0, 1, 0, 0]], dtype=bool)
    >>> pseudo_label_iou(pseudo, truth)
    1.0
    >>> pseudo_label_iou(np.where(pseudo == 255, 1, pseudo), truth)  # the filled box
    0.5555555555555556
    """
    pseudo = np.asarray(pseudo)
    truth = np.asarray(truth)
    if pseudo.dtype.kind not in "iu":
        raise TypeError(f"pseudo must be a label map of integers 0, 1 and {IGNORE_INDEX}, got dtype {pseudo.dtype}")
    if pseudo.shape != truth.shape:
        raise ValueError(f"pseudo and truth must have the same shape, got {pseudo.shape} and {truth.shape}")
    bad = ~np.isin(pseudo, (0, 1, IGNORE_INDEX))
    if bad.any():
        raise ValueError(f"pseudo must hold 0, 1 or {IGNORE_INDEX} only, found {int(pseudo[bad][0])}")
    kept = pseudo != IGNORE_INDEX
    return _metrics.iou((pseudo == 1) & kept, truth.astype(bool) & kept)


def pseudo_label_scores(pseudo, truth, num_classes=_data.NUM_CLASSES):
    """How good a set of pseudo-masks is: mIoU with the truth where they label, and how much they label.

    Parameters
    ----------
    pseudo, truth : ndarray of int (N, H, W) or (H, W)
        Pseudo-masks (with :data:`IGNORE_INDEX`) and true label maps.
    num_classes : int

    Returns
    -------
    dict
        ``miou``: mean IoU over the classes on the labelled pixels (one confusion
        matrix over all images, as :func:`segtutor.fcn.evaluate`); ``labelled``:
        the fraction of pixels not ignored; ``miou_ignored_as_background``: the
        mIoU when ignored pixels count as background, which a pseudo-mask cannot
        improve by ignoring more.

    Examples
    --------
    >>> truth = np.array([[0, 1, 1, 0]])
    >>> scores = pseudo_label_scores(np.array([[0, 1, 255, 0]]), truth, num_classes=2)
    >>> scores["miou"], scores["labelled"]
    (1.0, 0.75)
    """
    pseudo = np.asarray(pseudo)
    truth = np.asarray(truth)
    if pseudo.shape != truth.shape:
        raise ValueError(f"pseudo and truth must have the same shape, got {pseudo.shape} and {truth.shape}")
    kept = pseudo != IGNORE_INDEX
    if not kept.any():
        raise ValueError(f"every pixel of pseudo is {IGNORE_INDEX} (ignored): there is nothing to score")
    confusion = _metrics.confusion_matrix(pseudo[kept], truth[kept], num_classes)
    as_background = np.where(kept, pseudo, 0)
    return {
        "miou": _miou(confusion),
        "labelled": float(kept.mean()),
        "miou_ignored_as_background": _miou(_metrics.confusion_matrix(as_background.ravel(), truth.ravel(),
                                                                      num_classes)),
    }


def _miou(confusion):
    tp = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - tp
    return float(np.mean(tp[union > 0] / union[union > 0]))


# =========================================================================== data and training


def lesson_config():
    """The lesson's training settings: FCN-8s, 150 steps on 300 scenes (``fcn.LESSON_CONFIG``, shorter).

    Five models train under these settings in the lesson.

    Examples
    --------
    >>> lesson_config().iterations
    150
    """
    from segtutor import fcn

    return fcn.LESSON_CONFIG.replace(variant="8s", iterations=150, eval_every=75, val_scenes=60)


def instance_scenes(n, *, seed, config=None):
    """``n`` scenes with their boxes: the scenes of :func:`segtutor.fcn.scenes`, image for image.

    Scene ``i`` is :func:`segtutor.data.make_instance_scene` with ``seed=(seed, i)``
    and the scene settings of ``config``, so its image and semantic label map are
    those of ``fcn.scenes(n, seed=seed, config=config)``.

    Returns
    -------
    dict
        ``images`` (n, H, W, 3) float32; ``truth`` (n, H, W) int64 (the true label
        maps); ``boxes``, ``labels`` and ``masks``: lists of n arrays, (k, 4), (k,) and
        (k, H, W) (the true mask of each object).

    Examples
    --------
    >>> scenes = instance_scenes(2, seed=5)
    >>> scenes["images"].shape, len(scenes["boxes"])
    ((2, 96, 96, 3), 2)
    """
    from segtutor import fcn

    config = fcn.Config() if config is None else config
    n = as_int(n, "n", minimum=1)
    max_size = min(config.max_size, config.size)
    out = {"images": [], "truth": [], "boxes": [], "labels": [], "masks": []}
    for i in range(n):
        scene = _data.make_instance_scene(config.size, n_objects=config.n_objects, min_size=min(config.min_size,
                                          max_size), max_size=max_size, noise=config.noise, seed=(int(seed), i))
        out["images"].append(scene["image"])
        out["truth"].append(scene["semantic"])
        out["boxes"].append(scene["boxes"].astype(np.int64))
        out["labels"].append(scene["labels"])
        out["masks"].append(scene["masks"])
    out["images"] = np.stack(out["images"])
    out["truth"] = np.stack(out["truth"])
    return out


def box_fill(scenes):
    """How much of its box each object fills, by class: the share of the box's pixels in the true mask.

    Parameters
    ----------
    scenes : dict
        From :func:`instance_scenes`.

    Returns
    -------
    dict
        ``{class name: list of fractions}``, one per box.

    Examples
    --------
    >>> fill = box_fill(instance_scenes(3, seed=5))
    >>> sorted(fill), all(0 < f <= 1 for values in fill.values() for f in values)
    (['circle', 'square', 'triangle'], True)
    """
    if not isinstance(scenes, dict) or "masks" not in scenes:
        raise TypeError(f"scenes must be the dict of instance_scenes(), got {describe(scenes)}")
    out = {}
    for boxes, labels, masks in zip(scenes["boxes"], scenes["labels"], scenes["masks"]):
        for (x0, y0, x1, y1), label, mask in zip(boxes, labels, masks):
            share = mask[y0:y1, x0:x1].sum() / ((x1 - x0) * (y1 - y0))
            out.setdefault(_data.CLASS_NAMES[int(label)], []).append(float(share))
    return dict(sorted(out.items()))


def pseudo_labels(scenes, kind, **options):
    """Pseudo-masks of one kind for every scene of :func:`instance_scenes`.

    Parameters
    ----------
    scenes : dict
        From :func:`instance_scenes`.
    kind : {"box", "band", "refined", "full"}
        ``"full"`` returns the true label maps. (``"self-trained"`` needs a network:
        see :func:`train_kinds`.)
    **options
        Passed to :func:`banded_boxes` (``band``) or :func:`refined_boxes`.

    Returns
    -------
    ndarray of int64, shape (N, H, W)

    Examples
    --------
    >>> scenes = instance_scenes(1, seed=5)
    >>> sorted(np.unique(pseudo_labels(scenes, "band")).tolist())
    [0, 1, 2, 3, 255]
    """
    if not isinstance(scenes, dict) or "images" not in scenes:
        raise TypeError(f"scenes must be the dict of instance_scenes(), got {describe(scenes)}")
    if kind == "full":
        return np.asarray(scenes["truth"], dtype=np.int64).copy()
    makers = {"box": lambda im, b, lab: filled_boxes(b, lab, im.shape[:2], **options),
              "band": lambda im, b, lab: banded_boxes(b, lab, im.shape[:2], **options),
              "refined": lambda im, b, lab: refined_boxes(im, b, lab, **options)}
    if kind not in makers:
        raise ValueError(f"kind must be one of {sorted(makers)} (self-trained labels need a network: "
                         f"use train_kinds), got {kind!r}")
    return np.stack([makers[kind](im, b, lab) for im, b, lab in zip(scenes["images"], scenes["boxes"],
                                                                      scenes["labels"])])


def _digest(*arrays):
    """sha256 of arrays' shapes, dtypes and bytes: the data a training saw is part of its cache key."""
    import hashlib

    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _train_cached(name, config, train_set, val_set, extra, progress):
    from segtutor import fcn, training

    data = {"train_data": _digest(*train_set), "val_data": _digest(*val_set)}
    result, from_cache = training.cached(
        name, {**config.as_dict(), **extra, **data, "device": training.device().type},
        lambda: fcn.train(config, progress=progress, train_set=train_set, val_set=val_set),
        sources=("segtutor.fcn", "segtutor.data", "segtutor.classical", "segtutor.cluster"),
    )
    return fcn.load_model(result), result, from_cache


def train_kinds(config=None, kinds=KINDS, *, progress=True, scenes=None, val_set=None):
    """Train the same FCN on each kind of pseudo-mask and on the true masks, under one budget.

    Every model has the settings ``config`` (same network, initial weights,
    mini-batches, steps) and differs only in its training labels. Trainings go
    through :func:`segtutor.training.cached`, so a second call reloads them.
    ``"self-trained"`` first trains on ``"refined"`` (reused when it is in
    ``kinds`` too), predicts the training scenes, :func:`relabel` s them and trains
    a fresh network on the new labels.

    Parameters
    ----------
    config : segtutor.fcn.Config, optional
        Default :func:`lesson_config`.
    kinds : sequence of str
        Out of :data:`KINDS`.
    progress : bool
        Progress bars while training.
    scenes : dict, optional
        Training scenes (:func:`instance_scenes`); default ``config.train_scenes``
        scenes with ``config.train_seed``.
    val_set : (images, labels), optional
        True label maps the training history is scored on; default
        ``fcn.scenes(config.val_scenes, seed=config.val_seed)``.

    Returns
    -------
    dict
        ``{kind: {"model", "result", "from_cache", "labels"}}``: ``labels`` are the
        training labels (N, H, W) the model was trained on.
    """
    from segtutor import fcn

    config = lesson_config() if config is None else config
    if not isinstance(config, fcn.Config):
        raise TypeError(f"config must be a segtutor.fcn.Config, got {describe(config)}")
    if isinstance(kinds, str) or not kinds or not all(k in KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty sequence out of {KINDS}, got {kinds!r}")
    scenes = instance_scenes(config.train_scenes, seed=config.train_seed, config=config) if scenes is None else scenes
    val_set = fcn.scenes(config.val_scenes, seed=config.val_seed, config=config) if val_set is None else val_set
    runs = {}

    def run(kind, labels, extra):
        model, result, from_cache = _train_cached(f"weak-{kind}", config, (scenes["images"], labels), val_set,
                                                  {"kind": kind, "n_train": len(labels), **extra}, progress)
        runs[kind] = {"model": model, "result": result, "from_cache": from_cache, "labels": labels}

    for kind in kinds:
        if kind in runs:
            continue
        if kind == "self-trained":
            if "refined" not in runs:
                run("refined", pseudo_labels(scenes, "refined"), {})
            start = runs["refined"]
            predictions = fcn.predict(start["model"], scenes["images"])
            labels = np.stack([relabel(p, b, lab, start=s) for p, b, lab, s in
                               zip(predictions, scenes["boxes"], scenes["labels"], start["labels"])])
            run("self-trained", labels, {"start": "refined"})
        else:
            run(kind, pseudo_labels(scenes, kind), {})
    return {kind: runs[kind] for kind in kinds}


def training_report(runs):
    """A Markdown table: per kind, trained now (and how long it took) or reloaded.

    Examples
    --------
    >>> runs = {"box": {"result": {"seconds": 12.3, "config": {"iterations": 150}}, "from_cache": False}}
    >>> print(training_report(runs))
    | training labels | iterations | |
    |---|---|---|
    | (a) filled boxes | 150 | trained in 12 s |
    """
    from segtutor import training

    lines = ["| training labels | iterations | |", "|---|---|---|"]
    for kind, run in runs.items():
        result = run["result"]
        lines.append(f"| {KIND_NAMES.get(kind, kind)} | {result['config']['iterations']} | "
                     f"{training.describe_run(run['from_cache'], result.get('seconds'))} |")
    return "\n".join(lines)


def score_kinds(runs, images, labels):
    """Validation scores of every model of :func:`train_kinds`, and their ratio to full supervision.

    Returns
    -------
    dict
        ``{kind: fcn.evaluate(...)}`` with, when ``"full"`` is among the runs, a
        ``ratio_to_full`` entry in each (mIoU over the fully supervised model's).
    """
    from segtutor import fcn

    if not isinstance(runs, dict) or not runs:
        raise TypeError(f"runs must be the dict returned by train_kinds, got {describe(runs)}")
    scores = {kind: fcn.evaluate(run["model"], images, labels) for kind, run in runs.items()}
    if "full" in scores:
        for kind in scores:
            scores[kind]["ratio_to_full"] = scores[kind]["miou"] / scores["full"]["miou"]
    return scores


def score_table(scores, pseudo=None):
    """The scores of :func:`score_kinds` (and pseudo-label quality) as a text table.

    Parameters
    ----------
    scores : dict
        ``{kind: {"miou": ..., "boundary_f1": ..., "ratio_to_full": ...}}``.
    pseudo : dict, optional
        ``{kind: pseudo_label_scores(...)}``.

    Examples
    --------
    >>> print(score_table({"box": {"miou": 0.6, "boundary_f1": 0.5, "ratio_to_full": 0.75},
    ...                    "full": {"miou": 0.8, "boundary_f1": 0.7, "ratio_to_full": 1.0}}))
    training labels   val mIoU  boundary F  / full
    (a) filled boxes     0.600       0.500    0.75
    true masks           0.800       0.700    1.00
    """
    header = ["training labels"]
    if pseudo is not None:
        header += ["labels' mIoU", "labelled"]
    header += ["val mIoU", "boundary F", "/ full"]
    rows = []
    for kind, s in scores.items():
        row = [KIND_NAMES.get(kind, kind)]
        if pseudo is not None:
            p = pseudo.get(kind)
            row += [f"{p['miou']:.3f}", f"{p['labelled']:.0%}"] if p else ["", ""]
        row += [f"{s['miou']:.3f}", f"{s['boundary_f1']:.3f}",
                f"{s['ratio_to_full']:.2f}" if "ratio_to_full" in s else ""]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def fmt(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join(fmt(r) for r in [header] + rows)


# =========================================================================== pictures


def tinted(image, labels):
    """An RGB picture of a pseudo-mask over its image: classes tinted, ignored pixels striped grey.

    Labelled object pixels mix 35 % of the image with 65 % of their class colour
    (:data:`segtutor.viz.PALETTE`); background pixels show the image; ignored pixels
    (:data:`IGNORE_INDEX`) are diagonal white and grey stripes.

    Parameters
    ----------
    image : ndarray (H, W, 3)
        Float in [0, 1] or uint8.
    labels : ndarray of int (H, W)

    Returns
    -------
    ndarray of float64, shape (H, W, 3), values in [0, 1]

    Examples
    --------
    >>> rgb = tinted(np.zeros((2, 2, 3)), np.array([[0, 255], [1, 1]]))
    >>> rgb.shape, rgb[0, 0].tolist(), rgb[0, 1].tolist()
    ((2, 2, 3), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    """
    from segtutor import viz

    image = as_image(image, "image", channels="color")
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels must have the image's shape {image.shape[:2]}, got {labels.shape}")
    image = np.asarray(image, dtype=float) / (255 if image.dtype == np.uint8 else 1)
    out = image.copy()
    classes = (labels > 0) & (labels != IGNORE_INDEX)
    colours = viz.label_to_rgb(np.where(classes, labels, 0)).astype(float) / 255
    out[classes] = 0.35 * image[classes] + 0.65 * colours[classes]
    ignored = labels == IGNORE_INDEX
    rows, cols = np.indices(labels.shape)
    stripes = ((rows + cols) // 2) % 2 == 0
    out[ignored & stripes] = 1.0
    out[ignored & ~stripes] = 0.55
    return out


def _legend_handles(class_names=_data.CLASS_NAMES):
    from matplotlib.patches import Patch

    from segtutor import viz

    handles = [Patch(facecolor=viz.PALETTE[c] / 255, label=name) for c, name in enumerate(class_names) if c]
    handles.append(Patch(facecolor="0.55", edgecolor="white", hatch="////", label="ignored (255)"))
    return handles


def plot_pseudo_labels(image, boxes, panels, *, truth=None, axes=None, class_names=None):
    """One scene: its boxes, then each pseudo-mask (tinted over the image), titled with its IoU.

    Parameters
    ----------
    image : ndarray (H, W, 3)
    boxes : array-like (N, 4)
        Drawn as rectangles on the first panel.
    panels : dict
        ``{title: label map}``; ignored pixels are striped grey.
    truth : ndarray (H, W), optional
        When given, each title gets the panel's mIoU with it over the labelled pixels.
    axes : sequence of matplotlib Axes, optional
        ``len(panels) + 1`` axes to draw on (default: a new figure).
    class_names : sequence of str, optional
        Names of the classes in the legend, background first (default
        :data:`segtutor.data.CLASS_NAMES`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> scenes = instance_scenes(1, seed=5)
    >>> fig = plot_pseudo_labels(scenes["images"][0], scenes["boxes"][0],
    ...                          {"filled": pseudo_labels(scenes, "box")[0]}, truth=scenes["truth"][0])
    >>> [ax.get_title().split(chr(10))[0] for ax in fig.axes]
    ['image and boxes', 'filled']
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    image = as_image(image, "image", channels="color")
    boxes = check_boxes(boxes, image.shape[:2])
    if not isinstance(panels, dict) or not panels:
        raise TypeError(f"panels must be a non-empty dict {{title: label map}}, got {describe(panels)}")
    n = len(panels) + 1
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(2.3 * n, 2.9), layout="constrained")
    axes = list(np.ravel(axes))
    fig = axes[0].figure
    shown = np.asarray(image, dtype=float) / (255 if image.dtype == np.uint8 else 1)
    axes[0].imshow(shown, interpolation="nearest")
    for x0, y0, x1, y1 in boxes:
        axes[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="#F0E442",
                                    linewidth=1.3))
    axes[0].set_title("image and boxes\n ", fontsize="medium")
    for ax, (title, labels) in zip(axes[1:], panels.items()):
        labels = np.asarray(labels)
        ax.imshow(tinted(shown, labels), interpolation="nearest")
        if truth is not None:
            scores = pseudo_label_scores(labels, truth)
            title = f"{title}\nmIoU {scores['miou']:.2f}, {scores['labelled']:.0%} labelled"
        ax.set_title(title, fontsize="medium")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    names = _data.CLASS_NAMES if class_names is None else tuple(class_names)
    fig.legend(handles=_legend_handles(names), loc="outside lower center", ncols=4, fontsize="small", frameon=False)
    return fig


def plot_scores(scores, *, ax=None, title=None):
    """Bar chart of the validation mIoU of each kind, with its ratio to full supervision on each bar.

    Parameters
    ----------
    scores : dict
        From :func:`score_kinds`.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ax = plot_scores({"box": {"miou": 0.6, "ratio_to_full": 0.75}, "full": {"miou": 0.8, "ratio_to_full": 1.0}})
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['(a)\\nfilled boxes', 'true masks']
    >>> plt.close(ax.figure)
    """
    import matplotlib.pyplot as plt

    if not isinstance(scores, dict) or not scores:
        raise TypeError(f"scores must be the dict returned by score_kinds, got {describe(scores)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 3.4), layout="constrained")
    kinds = list(scores)
    values = [scores[k]["miou"] for k in kinds]
    colours = ["#0072B2" if k != "full" else "#E69F00" for k in kinds]  # Okabe-Ito blue / orange
    bars = ax.bar(np.arange(len(kinds)), values, color=colours, edgecolor="white",
                  hatch=["" if k != "full" else "//" for k in kinds])
    inside = [f"{v:.3f}" + (f"\n\n{scores[k]['ratio_to_full']:.2f}\nof full" if "ratio_to_full" in scores[k]
                            and k != "full" else "") for k, v in zip(kinds, values)]
    texts = ax.bar_label(bars, labels=inside, label_type="center", color="white", fontsize="small",
                         fontweight="bold")
    for text, kind in zip(texts, kinds):
        if kind == "full":
            text.set_color("black")  # white on orange is hard to read
            text.set_backgroundcolor("#E69F00")
    if "full" in scores:
        ax.axhline(0.95 * scores["full"]["miou"], color="0.3", linestyle="--", linewidth=1,
                   label="0.95 x full supervision")
        ax.legend(loc="upper left", fontsize="small")
    names = [KIND_NAMES.get(k, k) for k in kinds]
    ax.set_xticks(np.arange(len(kinds)), [n.replace(") ", ")\n", 1) for n in names], fontsize="small")
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("validation mIoU (true masks)")
    ax.set_xlabel("training labels")
    if title is not None:
        ax.set_title(str(title))
    return ax


# =========================================================================== on a hub: real photographs

#: The kinds of training labels :func:`hub_run` compares on Penn-Fudan's photographs (self-training is
#: left out: it needs a trained network per round).
HUB_KINDS = ("box", "band", "refined", "full")


def hub_config():
    """The settings of :func:`hub_run`: :class:`segtutor.fcn.HubConfig` on Penn-Fudan, 1000 steps.

    FCN-8s over VGG-16 (pretrained when the weights are cached), batches of 8 random
    crops of 320 pixels, torchvision's ``references/segmentation`` optimiser; every
    kind of label trains under these same settings.

    Examples
    --------
    >>> config = hub_config()
    >>> config.dataset, config.backbone, config.iterations
    ('pennfudan', 'vgg16', 1000)
    """
    from segtutor import fcn

    return fcn.HubConfig(dataset="pennfudan", iterations=1000, eval_every=250, val_images=0)


def _instances(image, target, index):
    """A dataset item as (image (H, W, 3) float in [0, 1], boxes (N, 4) int, classes (N,), truth (H, W) int)."""
    if not isinstance(target, dict) or not {"boxes", "masks"} <= set(target):
        raise TypeError(f"item {index} must be (image, target) with a target dict holding 'boxes', 'labels' and "
                        "'masks', as segtutor.datasets.PennFudan(root, target='instances') gives it without "
                        f"transforms; got a target {describe(target)}")
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[0] != 3:
        raise ValueError(f"item {index}: the image must be (3, H, W), got shape {pixels.shape}")
    pixels = pixels.transpose(1, 2, 0)
    pixels = pixels / 255 if pixels.dtype == np.uint8 else pixels.astype(np.float32, copy=False)
    shape = pixels.shape[:2]
    masks = np.asarray(target["masks"]).astype(bool)
    if masks.ndim != 3 or masks.shape[1:] != shape:
        raise ValueError(f"item {index}: masks must be (N, H, W) of the image's size {shape}, got {masks.shape}")
    classes = np.asarray(target.get("labels", np.ones(len(masks), dtype=np.int64)))
    boxes, classes = check_boxes(np.asarray(target["boxes"], dtype=np.float64).reshape(-1, 4), shape, classes,
                                 num_classes=IGNORE_INDEX)
    if len(masks) != len(boxes):
        raise ValueError(f"item {index}: {len(boxes)} boxes but {len(masks)} masks")
    truth = np.zeros(shape, dtype=np.int64)
    for i in paint_order(boxes):
        truth[masks[i]] = classes[i]
    return pixels, boxes, classes, truth


class BoxLabelDataset:
    """Photographs with training labels made from their boxes: filled, banded, refined, or the true masks.

    Wraps a dataset of ``(image, target)`` items with instance targets, as
    :class:`segtutor.datasets.PennFudan` ``(root, target="instances")`` gives them
    without transforms (or a :class:`~torch.utils.data.Subset` of it). For each image
    the label map of ``kind`` is made **once**, when the dataset is built, from the
    target's boxes (``x1``, ``y1`` exclusive) and classes (Penn-Fudan: person = 1,
    background = 0, :data:`IGNORE_INDEX` where the label is unsure):

    * ``"box"``: :func:`filled_boxes`; ``"band"``: :func:`banded_boxes`;
    * ``"refined"``: :func:`refined_boxes` on the photograph;
    * ``"full"``: the true masks (the target's ``masks``), for full supervision.

    An item is then ``transforms(tv_tensors.Image, tv_tensors.Mask)``: the paired
    transforms (e.g. :func:`segtutor.datasets.segmentation_transforms`) crop, scale and
    flip the image and its pseudo-labels together.

    Parameters
    ----------
    data : sequence of (image, target)
        ``image`` a (3, H, W) tensor, uint8 or float in [0, 1]; ``target`` a dict with
        ``boxes`` (N, 4), ``labels`` (N,) and ``masks`` (N, H, W).
    kind : {"box", "band", "refined", "full"}
    transforms : callable, optional
        ``transforms(image, mask) -> (image, mask)``; without, items are the image and
        the label map at the photograph's size.
    **options
        Passed to :func:`banded_boxes` (``band``) or :func:`refined_boxes`.

    Attributes
    ----------
    labels : list of ndarray of uint8 (H, W)
        The training labels of each image (0, classes and 255).
    truth : list of ndarray of uint8 (H, W)
        The true label map of each image.
    boxes : list of ndarray of int64 (N, 4)

    Examples
    --------
    >>> import torch
    >>> masks = torch.zeros(1, 6, 8, dtype=torch.uint8); masks[0, 1:5, 2:5] = 1; masks[0, 1, 2] = 0
    >>> item = (torch.zeros(3, 6, 8), {"boxes": torch.tensor([[2., 1., 5., 5.]]), "labels": torch.tensor([1]),
    ...                                "masks": masks})
    >>> data = BoxLabelDataset([item], "box")
    >>> image, labels = data[0]
    >>> labels[1].tolist(), data.truth[0][1].tolist()
    ([0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0, 0, 0])
    """

    def __init__(self, data, kind, *, transforms=None, **options):
        if kind not in HUB_KINDS:
            raise ValueError(f"kind must be one of {HUB_KINDS} (filled boxes, box + ignored band, refined in "
                             f"the box, true masks), got {kind!r}")
        if not hasattr(data, "__len__") or not hasattr(data, "__getitem__") or isinstance(data, (str, bytes)):
            raise TypeError(f"data must be a dataset of (image, target) items, e.g. "
                            f"segtutor.datasets.PennFudan(root, target='instances'); got {describe(data)}")
        if len(data) == 0:
            raise ValueError("data holds no images")
        if transforms is not None and not callable(transforms):
            raise TypeError(f"transforms must be callable as transforms(image, mask), got {describe(transforms)}")
        if kind in ("box", "full") and options:
            raise TypeError(f"kind {kind!r} takes no options, got {sorted(options)}")
        self.data, self.kind, self.transforms, self.options = data, kind, transforms, dict(options)
        self.labels, self.truth, self.boxes = [], [], []
        for index in range(len(data)):
            image, target = data[index]
            pixels, boxes, classes, truth = _instances(image, target, index)
            if kind == "box":
                labels = filled_boxes(boxes, classes, truth.shape)
            elif kind == "band":
                labels = banded_boxes(boxes, classes, truth.shape, **options)
            elif kind == "refined":
                labels = refined_boxes(pixels, boxes, classes, **options)
            else:
                labels = truth
            self.labels.append(labels.astype(np.uint8))
            self.truth.append(truth.astype(np.uint8))
            self.boxes.append(boxes)

    def __len__(self):
        return len(self.labels)

    def __repr__(self):
        return f"BoxLabelDataset({len(self)} images, kind {self.kind!r})"

    def __getitem__(self, index):
        import torch
        from torchvision import tv_tensors

        index = as_int(index, "index", minimum=-len(self), maximum=len(self) - 1) % len(self)
        image, _ = self.data[index]
        image = tv_tensors.Image(torch.as_tensor(image))
        mask = tv_tensors.Mask(torch.from_numpy(self.labels[index].astype(np.int64)))
        if self.transforms is None:
            return image, mask
        return self.transforms(image, mask)

    def quality(self):
        """The labels against the true masks over all images: :func:`pseudo_label_scores` (one confusion matrix).

        Returns
        -------
        dict
            ``miou`` (on the labelled pixels), ``labelled``, ``miou_ignored_as_background``.
        """
        pseudo = np.concatenate([labels.ravel() for labels in self.labels]).astype(np.int64)
        truth = np.concatenate([truth.ravel() for truth in self.truth]).astype(np.int64)
        return pseudo_label_scores(pseudo, truth, num_classes=max(2, int(truth.max()) + 1))


def _hub_kinds(kinds):
    if isinstance(kinds, str) or not hasattr(kinds, "__iter__"):
        raise TypeError(f"kinds must be a sequence out of {HUB_KINDS}, got {describe(kinds)}")
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in HUB_KINDS]
    if not kinds or unknown or len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds must be a non-empty sequence of distinct kinds out of {HUB_KINDS}, got {kinds!r}")
    return kinds


def _describe_hub_run(config, kinds):
    backbone = "the tiny backbone" if config.backbone == "tiny" else f"{config.backbone} (pretrained when cached)"
    names = ", ".join(KIND_NAMES[k] for k in kinds)
    return (f"trains FCN-{config.variant} over {backbone} on the Penn-Fudan training photographs once per kind of "
            f"label ({names}; {config.iterations} steps of {config.batch_size} crops of {config.size} px each) "
            "and scores every model on the held-out photographs with their true masks")


def _photographs(n):
    return f"{n} photograph" + ("" if n == 1 else "s")


def _hub_kind(out, kind, config, settings, folder, classes, train_photos, train_t, val_set, shown, held, progress):
    """One kind of :func:`hub_run`: its labels, its (cached) training, its held-out scores and predictions."""
    from segtutor import fcn, training

    data = BoxLabelDataset(train_photos, kind, transforms=train_t)
    out["quality"][kind] = data.quality()
    key = {**config.as_dict(), "kind": kind, "data": str(folder), "train_items": len(data),
           "labels": _digest(*data.labels), **settings.cache_key()}
    result, from_cache = training.cached(
        f"weak-hub-{kind}", key,
        lambda: fcn.train_on(fcn.hub_model(config, len(classes)), data, val_set, config, settings=settings,
                             progress=progress),
        sources=("segtutor.fcn", "segtutor.datasets", "segtutor.classical", "segtutor.cluster"),
    )
    model = fcn.load_hub_model(result, len(classes))
    del result["state_dict"]
    out["scores"][kind] = fcn.evaluate_dataset(model, val_set, settings=settings, batch_size=config.batch_size)
    with settings.autocast():
        predictions = fcn.predict(model, [example["image"] for example in held]) if held else []
    for example, prediction in zip(held, predictions):
        example["predictions"][kind] = prediction
    del model
    for i, example in enumerate(shown):
        example["labels"][kind] = data.labels[i]
        example["truth"], example["boxes"] = data.truth[i], data.boxes[i]
        if example["image"] is None:
            example["image"] = np.asarray(train_photos[i][0]).transpose(1, 2, 0)
    out["histories"][kind] = result["history"]
    out["seconds"][kind] = result["seconds"]
    out["from_cache"][kind] = from_cache
    print(f"{KIND_NAMES[kind]}: {training.describe_run(from_cache, result['seconds'])} on {result['device']}; "
          f"held-out mIoU {out['scores'][kind]['miou']:.3f} over {_photographs(len(val_set))}")


def hub_run(config=None, *, kinds=HUB_KINDS, root=None, profile=None, progress=True, examples=1):
    """Lesson 05 on real photographs: FCN trained on Penn-Fudan from boxes, and from the true masks.

    Runs under the full profile when Penn-Fudan is present (see
    :func:`segtutor.profiles.hub_section`); otherwise prints one line saying what it
    would show and returns ``None``. Penn-Fudan's last images are held out
    (:func:`segtutor.datasets.pennfudan_split`); on the others, each kind of label
    (:class:`BoxLabelDataset`) trains the same FCN (:func:`segtutor.fcn.train_on`, same
    settings, initial weights and crops), through :func:`segtutor.training.cached` so that
    running the notebook again reloads the models. Every model is scored on the held-out
    photographs against their **true** masks (:func:`segtutor.fcn.evaluate_dataset`).

    Parameters
    ----------
    config : segtutor.fcn.HubConfig, optional
        With ``dataset="pennfudan"``; default :func:`hub_config`.
    kinds : sequence of str
        Out of :data:`HUB_KINDS`; with ``"full"``, each score gets its ratio to full supervision.
    root : str or Path, optional
        The data folder (default :func:`segtutor.paths.data_dir`).
    profile : {"quick", "full"}, optional
    progress : bool
    examples : int
        Training photographs kept with their labels of every kind, and held-out
        photographs with every model's prediction, for :func:`plot_hub_run`.

    Returns
    -------
    dict or None
        ``scores`` (``{kind: evaluate_dataset(...)}``, with ``ratio_to_full`` when
        ``"full"`` is among the kinds), ``quality`` (``{kind: BoxLabelDataset.quality()}``
        on the training photographs); the same numbers flat, ``{kind: float}``: ``miou``,
        ``ratio_to_full``, ``labels_miou``, ``labelled``; ``histories``, ``seconds`` and
        ``from_cache`` per kind, ``examples`` (training photographs: ``image``, ``boxes``, ``labels``
        ``{kind: map}``, ``truth``), ``predictions`` (held-out photographs: ``image``,
        ``truth``, ``predictions`` ``{kind: map}``), ``classes``, ``config``,
        ``train_images``, ``val_images``.

    Examples
    --------
    >>> hub_run(profile="quick")  # doctest: +ELLIPSIS
    On a hub: skipped (quick profile). ... (`segtutor fetch pennfudan`), this section trains FCN-8s over vgg16 ...
    """
    from segtutor import datasets, fcn, paths, profiles, training

    config = hub_config() if config is None else config
    if not isinstance(config, fcn.HubConfig):
        raise TypeError(f"config must be a segtutor.fcn.HubConfig (see weak.hub_config()), got {describe(config)}")
    if config.dataset != "pennfudan":
        raise ValueError(f"config.dataset must be 'pennfudan' (boxes come from its instance masks), "
                         f"got {config.dataset!r}")
    kinds = _hub_kinds(kinds)
    examples = as_int(examples, "examples", minimum=0)
    if not profiles.hub_section("pennfudan", _describe_hub_run(config, kinds), profile=profile, root=root):
        return None
    settings = profiles.settings(profile)
    folder = paths.data_dir() if root is None else root
    _, val_set, classes = fcn.hub_datasets(config, folder)
    train_photos, _ = datasets.pennfudan_split(datasets.PennFudan(folder, target="instances"))
    train_t = datasets.segmentation_transforms(config.size, train=True)
    out = {"scores": {}, "quality": {}, "histories": {}, "seconds": {}, "from_cache": {}, "classes": tuple(classes),
           "config": config, "train_images": len(train_photos), "val_images": len(val_set)}
    shown = [{"image": None, "boxes": None, "labels": {}, "truth": None} for _ in range(min(examples,
                                                                                           len(train_photos)))]
    held = [{"image": np.asarray(val_set[i][0]).transpose(1, 2, 0), "truth": np.asarray(val_set[i][1]),
             "predictions": {}} for i in range(min(examples, len(val_set)))]
    with training.cpu_threads(config.threads if settings.device == "cpu" else 0):
        for kind in kinds:
            _hub_kind(out, kind, config, settings, folder, classes, train_photos, train_t, val_set,
                      shown, held, progress)
    if "full" in out["scores"]:
        full = out["scores"]["full"]["miou"]
        for kind, scores in out["scores"].items():
            scores["ratio_to_full"] = scores["miou"] / full if full > 0 else float("nan")
        out["ratio_to_full"] = {kind: scores["ratio_to_full"] for kind, scores in out["scores"].items()}
    out["miou"] = {kind: scores["miou"] for kind, scores in out["scores"].items()}
    out["labels_miou"] = {kind: quality["miou"] for kind, quality in out["quality"].items()}
    out["labelled"] = {kind: quality["labelled"] for kind, quality in out["quality"].items()}
    out["examples"], out["predictions"] = shown, held
    return out


def hub_table(run):
    """The scores of :func:`hub_run` as a text table: labels' quality, held-out mIoU, ratio to full supervision.

    Examples
    --------
    >>> run = {"quality": {"box": {"miou": 0.7, "labelled": 1.0}, "full": {"miou": 1.0, "labelled": 1.0}},
    ...        "scores": {"box": {"miou": 0.6, "ratio_to_full": 0.75}, "full": {"miou": 0.8, "ratio_to_full": 1.0}}}
    >>> print(hub_table(run))
    training labels   labels' mIoU  labelled  held-out mIoU  / full
    (a) filled boxes         0.700      100%          0.600    0.75
    true masks               1.000      100%          0.800    1.00
    """
    if not isinstance(run, dict) or "scores" not in run or "quality" not in run:
        raise TypeError(f"run must be what segtutor.weak.hub_run returned, got {describe(run)}")
    header = ["training labels", "labels' mIoU", "labelled", "held-out mIoU", "/ full"]
    rows = []
    for kind, s in run["scores"].items():
        q = run["quality"][kind]
        rows.append([KIND_NAMES.get(kind, kind), f"{q['miou']:.3f}", f"{q['labelled']:.0%}", f"{s['miou']:.3f}",
                     f"{s['ratio_to_full']:.2f}" if "ratio_to_full" in s else ""])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def fmt(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join(fmt(r) for r in [header] + rows)


def plot_hub_run(run):
    """The results of :func:`hub_run`: held-out mIoU per kind of label, one training photograph's
    labels of every kind, and one held-out photograph predicted by every model.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from segtutor import metrics

    if not isinstance(run, dict) or not {"scores", "examples", "predictions", "classes"} <= set(run):
        raise TypeError(f"run must be what segtutor.weak.hub_run returned, got {describe(run)}")
    if not run["examples"] or not run["predictions"]:
        raise ValueError("run has no photographs to show (hub_run(..., examples=0))")
    kinds = list(run["scores"])
    n = len(kinds) + 1
    fig = plt.figure(figsize=(max(2.4 * n, 8.0), 10.0), layout="constrained")
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=(1.2, 1.0, 1.0))
    config = run["config"]
    ax = plot_scores(run["scores"], ax=top.subplots(), title=(
        f"FCN-{config.variant} ({config.backbone}, {config.iterations} steps) trained on {run['train_images']} "
        f"Penn-Fudan photographs"))
    ax.set_ylabel(f"held-out mIoU ({_photographs(run['val_images'])})")
    example = run["examples"][0]
    plot_pseudo_labels(example["image"], example["boxes"], {KIND_NAMES[k]: example["labels"][k] for k in kinds},
                       truth=example["truth"], axes=middle.subplots(1, n), class_names=run["classes"])
    middle.suptitle("a training photograph: its boxes and the labels each model learns from", fontsize="medium")
    held = run["predictions"][0]
    axes = bottom.subplots(1, n)
    axes[0].imshow(np.clip(held["image"], 0, 1), interpolation="nearest")
    axes[0].set_title("held-out photograph\n ", fontsize="medium")
    truth = held["truth"]
    for ax, kind in zip(axes[1:], kinds):
        prediction = held["predictions"][kind]
        kept = truth != IGNORE_INDEX
        iou = metrics.iou((prediction == 1) & kept, (truth == 1) & kept)
        ax.imshow(tinted(np.clip(held["image"], 0, 1), prediction), interpolation="nearest")
        ax.set_title(f"{KIND_NAMES[kind]}\n{run['classes'][1]} IoU {iou:.2f}", fontsize="medium")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    bottom.suptitle("a held-out photograph: the prediction of each model, by its training labels", fontsize="medium")
    return fig
