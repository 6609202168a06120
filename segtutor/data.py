"""Synthetic scenes with exact ground truth, and sample images that work offline.

Every lesson needs images whose correct segmentation is known. This module
draws them: coloured circles, squares and triangles on a smooth background
(:func:`make_scene`, :func:`make_scenes`), the same scenes with one mask, box
and label per object (:func:`make_instance_scene`), and grey blobs under
uneven lighting for thresholding (:func:`make_gray_scene`). Everything is
fully determined by ``seed``.

:func:`sample_image` loads real photographs shipped with scikit-image and
scikit-learn; no network access is needed and nothing is written to disk.

Class ids of the synthetic scenes:

=====  ==============
id     class
=====  ==============
0      ``background``
1      ``circle``
2      ``square``
3      ``triangle``
=====  ==============
"""

from __future__ import annotations

import numbers

import numpy as np

from segtutor._checks import as_float, as_int, describe

__all__ = [
    "CLASS_NAMES",
    "NUM_CLASSES",
    "CLASS_COLORS",
    "SAMPLE_IMAGES",
    "make_scene",
    "make_scenes",
    "make_instance_scene",
    "mask_boxes",
    "make_gray_scene",
    "sample_image",
]

#: Names of the classes of the synthetic scenes, indexed by class id.
CLASS_NAMES = ("background", "circle", "square", "triangle")
#: Number of classes of the synthetic scenes, background included.
NUM_CLASSES = len(CLASS_NAMES)
#: Base RGB colour (floats in [0, 1]) of each class, indexed by class id. The
#: background varies smoothly around its colour and every object gets its own
#: random offset (``color_jitter``), so colours alone separate classes only
#: roughly.
CLASS_COLORS = (
    (0.55, 0.52, 0.45),  # background
    (0.78, 0.42, 0.34),  # circle: brick red
    (0.42, 0.64, 0.40),  # square: leaf green
    (0.40, 0.47, 0.76),  # triangle: slate blue
)

_SKIMAGE_IMAGES = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "checkerboard",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "shepp_logan_phantom",
    "text",
)
_SKLEARN_IMAGES = ("china", "flower")
#: Names accepted by :func:`sample_image`; all ship with scikit-image or
#: scikit-learn and load without a network connection.
SAMPLE_IMAGES = tuple(sorted(_SKIMAGE_IMAGES + _SKLEARN_IMAGES))

_MIN_SCENE = 8  # smallest image side
_MAX_SCENE = 4096  # largest image side
_MAX_OBJECTS = 1000  # most objects in one scene
_MAX_BATCH_PIXELS = 2**28  # most pixels in one batch of make_scenes (3 GiB of float32 RGB)
_MIN_OBJECT = 3  # smallest object size
_ATTEMPTS = 60  # placement tries per object
_GAP = 2.0  # pixels kept between objects that should not touch
_SHAPES = {1: "circle", 2: "square", 3: "triangle"}


# --------------------------------------------------------------------------- checks


def _shape(size, name: str = "size", minimum: int = _MIN_SCENE) -> tuple[int, int]:
    """``size`` as ``(H, W)``: an int or a pair of ints, each in ``minimum.._MAX_SCENE``."""
    if isinstance(size, (tuple, list, np.ndarray)):
        if len(size) != 2:
            raise ValueError(f"{name} must be an int or a pair (H, W); got {describe(size)}")
        return (
            as_int(size[0], f"{name}[0] (height)", minimum=minimum, maximum=_MAX_SCENE),
            as_int(size[1], f"{name}[1] (width)", minimum=minimum, maximum=_MAX_SCENE),
        )
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise TypeError(f"{name} must be an int or a pair (H, W) of ints, got {describe(size)}")
    side = as_int(size, name, minimum=minimum, maximum=_MAX_SCENE)
    return side, side


def _rng(seed) -> np.random.Generator:
    """A generator from a seed: an int >= 0 or a tuple of ints >= 0."""
    parts = seed if isinstance(seed, (tuple, list)) else (seed,)
    if len(parts) == 0:
        raise ValueError("seed must be an int >= 0 or a non-empty tuple of ints >= 0, got ()")
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, numbers.Integral):
            raise TypeError(f"seed must be an int >= 0 or a tuple of such ints, got {describe(seed)}")
        if part < 0:
            raise ValueError(f"seed must be >= 0, got {describe(seed)}")
    return np.random.default_rng([int(p) for p in parts] if isinstance(seed, (tuple, list)) else int(seed))


def _classes(classes) -> tuple[int, ...]:
    if isinstance(classes, numbers.Integral) and not isinstance(classes, bool):
        classes = (classes,)
    try:
        values = list(classes)
    except TypeError:
        raise TypeError(f"classes must be a sequence of class ids from (1, 2, 3), got {describe(classes)}") from None
    if not values:
        raise ValueError("classes must name at least one of the object classes 1, 2, 3; got an empty sequence")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"classes must hold integer class ids, got {describe(value)}")
        if int(value) not in _SHAPES:
            raise ValueError(
                f"classes must be a subset of (1, 2, 3) = circle, square, triangle; got {int(value)}"
            )
        out.append(int(value))
    return tuple(sorted(set(out)))


# --------------------------------------------------------------------------- drawing


def _shape_mask(label: int, cy: float, cx: float, size: float, angle: float, yy, xx) -> np.ndarray:
    """Pixels (centres at integer coordinates) covered by one object."""
    dy, dx = yy - cy, xx - cx
    if label == 1:  # circle of diameter ``size``
        return dy * dy + dx * dx <= (size / 2) ** 2
    cos, sin = np.cos(angle), np.sin(angle)
    if label == 2:  # square of side ``size``
        u = cos * dx + sin * dy
        v = -sin * dx + cos * dy
        return np.maximum(np.abs(u), np.abs(v)) <= size / 2
    # equilateral triangle of height ``size``: inside all three edges, each at the
    # inradius size / 3 from the centroid
    inside = np.ones(np.broadcast_shapes(dy.shape, dx.shape), dtype=bool)
    for k in range(3):
        theta = angle + 2 * np.pi * k / 3
        inside &= np.cos(theta) * dx + np.sin(theta) * dy <= size / 3
    return inside


def _one_region(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a drawn shape.

    A pixel at a sharp corner (a triangle's tip) can touch the rest of the shape
    only diagonally; it is dropped, so that every object is one 4-connected region.
    """
    from scipy import ndimage

    regions, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(regions.ravel(), minlength=n + 1)
    sizes[0] = 0
    return regions == int(np.argmax(sizes))


def _radii(label: int, size: float) -> tuple[float, float]:
    """(circumscribed, inscribed) radius of an object."""
    if label == 1:
        return size / 2, size / 2
    if label == 2:
        return size / np.sqrt(2), size / 2
    return 2 * size / 3, size / 3


def _centre_range(radius: float, length: int) -> tuple[float, float]:
    """Centres that keep a disc of ``radius`` inside ``[0, length - 1]``."""
    lo, hi = radius, length - 1 - radius
    if lo > hi:
        lo = hi = (length - 1) / 2
    return lo, hi


def _place(shape, outer, inner, touching: bool, rng) -> list[tuple[float, float]]:
    """Centres for objects of circumscribed radii ``outer``.

    Without ``touching``, each object is placed clear of the earlier ones when a
    free spot is found in ``_ATTEMPTS`` tries (else at the most free spot tried).
    With ``touching``, the second object, and each later one with probability
    1/2, is placed against a random earlier object so that the two overlap.
    """
    height, width = shape
    centres: list[np.ndarray] = []
    for k, radius in enumerate(outer):
        (y0, y1), (x0, x1) = _centre_range(radius, height), _centre_range(radius, width)
        partner = None
        if touching and k > 0 and (k == 1 or rng.random() < 0.5):
            partner = int(rng.integers(k))
        best, best_score = None, -np.inf
        for _ in range(_ATTEMPTS):
            if partner is not None:
                phi = rng.uniform(0, 2 * np.pi)
                dist = rng.uniform(0.7, 0.95) * (inner[partner] + inner[k])
                centre = centres[partner] + dist * np.array([np.sin(phi), np.cos(phi)])
                # how far outside the allowed box (0 when inside)
                score = -(max(y0 - centre[0], 0, centre[0] - y1) + max(x0 - centre[1], 0, centre[1] - x1))
                ok = score == 0
            else:
                centre = np.array([rng.uniform(y0, y1), rng.uniform(x0, x1)])
                score = min(
                    (np.hypot(*(centre - c)) - outer[j] - radius for j, c in enumerate(centres)),
                    default=np.inf,
                )
                ok = score >= _GAP
            if score > best_score:
                best, best_score = centre, score
            if ok:
                break
        best = np.array([np.clip(best[0], y0, y1), np.clip(best[1], x0, x1)])
        centres.append(best)
    return [(float(c[0]), float(c[1])) for c in centres]


def _smooth_field(shape, rng, n_waves: int = 3, amplitude: float = 0.05) -> np.ndarray:
    """A smooth random field (H, W): a few cosines of 0.3 to 1.2 cycles per image."""
    height, width = shape
    yy = np.arange(height)[:, None] / height
    xx = np.arange(width)[None, :] / width
    field = np.zeros(shape)
    for _ in range(n_waves):
        fy, fx = rng.uniform(0.3, 1.2, size=2) * rng.choice([-1, 1], size=2)
        phase = rng.uniform(0, 2 * np.pi)
        field += amplitude * rng.uniform(0.5, 1.0) * np.cos(2 * np.pi * (fy * yy + fx * xx) + phase)
    return field


def _texture(shape, rng) -> np.ndarray:
    """A random high-frequency pattern in [-1, 1]: the product of two gratings."""
    height, width = shape
    yy = np.arange(height)[:, None]
    xx = np.arange(width)[None, :]
    out = np.ones(shape)
    for _ in range(2):
        theta = rng.uniform(0, np.pi)
        wavelength = rng.uniform(3.0, 7.0)
        phase = rng.uniform(0, 2 * np.pi)
        out = out * np.cos(2 * np.pi * (np.cos(theta) * xx + np.sin(theta) * yy) / wavelength + phase)
    return out


def _render(
    size,
    n_objects,
    classes,
    min_size,
    max_size,
    noise,
    texture,
    touching,
    color_jitter,
    seed,
):
    """Draw one scene; shared by :func:`make_scene` and :func:`make_instance_scene`.

    Returns ``(image, instances, object_labels)``: the float32 image, an int64
    map with 0 for background and ``k + 1`` where object ``k`` is visible, and
    the class of each object.
    """
    shape = _shape(size)
    n_objects = as_int(n_objects, "n_objects", minimum=0, maximum=_MAX_OBJECTS)
    classes = _classes(classes)
    min_size = as_float(min_size, "min_size", minimum=_MIN_OBJECT)
    max_size = as_float(max_size, "max_size", minimum=_MIN_OBJECT)
    if min_size > max_size:
        raise ValueError(f"min_size must be <= max_size, got min_size={min_size:g} and max_size={max_size:g}")
    if max_size > min(shape):
        raise ValueError(
            f"max_size must be <= the smaller image side {min(shape)}, got max_size={max_size:g}; "
            "pass a smaller max_size (and min_size) for small images"
        )
    noise = as_float(noise, "noise", minimum=0)
    texture = as_float(texture, "texture", minimum=0)
    color_jitter = as_float(color_jitter, "color_jitter", minimum=0, maximum=0.5)
    if not isinstance(touching, (bool, np.bool_)):
        raise TypeError(f"touching must be True or False, got {describe(touching)}")
    rng = _rng(seed)

    # layout first, so that noise, texture and colours never move the objects
    if n_objects >= len(classes):  # every class at least once, in random depth order
        chosen = np.concatenate([classes, rng.choice(classes, n_objects - len(classes))])
        labels = rng.permutation(chosen).astype(np.int64)
    else:
        labels = rng.choice(classes, n_objects, replace=False).astype(np.int64)
    sizes = rng.uniform(min_size, max_size, n_objects)
    angles = rng.uniform(0, 2 * np.pi, n_objects)
    radii = [_radii(int(lab), s) for lab, s in zip(labels, sizes)]
    centres = _place(shape, [r[0] for r in radii], [r[1] for r in radii], bool(touching), rng)

    yy = np.arange(shape[0], dtype=float)[:, None]
    xx = np.arange(shape[1], dtype=float)[None, :]
    instances = np.zeros(shape, dtype=np.int64)
    for k in range(n_objects):  # later objects occlude earlier ones
        mask = _one_region(_shape_mask(int(labels[k]), *centres[k], sizes[k], angles[k], yy, xx))
        instances[mask] = k + 1

    base = np.asarray(CLASS_COLORS)
    colors = np.clip(base[labels] + rng.uniform(-1, 1, (n_objects, 3)) * color_jitter, 0, 1)
    background = base[0] + rng.uniform(-0.05, 0.05, 3)
    image = np.empty(shape + (3,))
    for c in range(3):
        image[..., c] = background[c] + _smooth_field(shape, rng)
    for k in range(n_objects):
        image[instances == k + 1] = colors[k]
    for k in range(n_objects + 1):  # one texture per region, background included
        pattern = _texture(shape, rng)
        if texture > 0:
            region = instances == k
            image[region] += texture * pattern[region][:, None]
    image += noise * rng.standard_normal(image.shape)
    return np.clip(image, 0, 1).astype(np.float32), instances, labels


# --------------------------------------------------------------------------- public


def make_scene(
    size=64,
    *,
    n_objects=4,
    classes=(1, 2, 3),
    min_size=8,
    max_size=20,
    noise=0.05,
    texture=0.0,
    touching=False,
    color_jitter=0.1,
    seed=0,
):
    """A colour image of circles, squares and triangles, and its label map.

    Each object has its class's base colour (:data:`CLASS_COLORS`) plus a
    random offset; the background is a smooth random colour field. Later
    objects occlude earlier ones, and the label map shows what is visible.

    Parameters
    ----------
    size : int or (int, int)
        Image side, or ``(H, W)``; at least 8.
    n_objects : int
        Number of objects drawn (>= 0). When it is at least ``len(classes)``,
        every class in ``classes`` is drawn at least once.
    classes : sequence of int
        Object classes to draw, a subset of ``(1, 2, 3)`` (circle, square,
        triangle).
    min_size, max_size : float
        Range of object sizes in pixels: the diameter of a circle, the side of
        a square, the height of a triangle. ``3 <= min_size <= max_size <=
        min(H, W)``.
    noise : float
        Standard deviation of the Gaussian noise added to every pixel and
        channel (>= 0).
    texture : float
        Amplitude of a random high-frequency pattern, a different one for the
        background and for each object (>= 0). It makes segmenting by colour
        alone harder.
    touching : bool
        If False, objects are kept apart whenever there is room. Every object
        is drawn as one 4-connected region (a corner pixel that would touch
        its shape only diagonally is left out), so a scene without overlaps
        has exactly one 4-connected region per object. If True, the second
        object, and each later one with probability 1/2, is placed
        overlapping an earlier object, so that some objects touch: the case
        where semantic and instance segmentation differ (an occluded object
        may then also be cut in two).
    color_jitter : float
        Largest random offset, per channel, of an object's colour from its
        class colour (0 to 0.5).
    seed : int or tuple of int
        Seed of ``numpy.random.default_rng``; the scene is fully determined by
        it and the other parameters. ``noise``, ``texture`` and
        ``color_jitter`` change only the pixels, never the layout: with the
        other parameters fixed, the label map stays the same.

    Returns
    -------
    image : ndarray of float32, shape (H, W, 3)
        RGB image with values in [0, 1].
    labels : ndarray of int64, shape (H, W)
        0 for background, 1 circle, 2 square, 3 triangle.

    See Also
    --------
    make_instance_scene : the same scene with one mask per object.

    Examples
    --------
    >>> image, labels = make_scene(seed=0)
    >>> image.shape, image.dtype, labels.dtype
    ((64, 64, 3), dtype('float32'), dtype('int64'))
    >>> sorted(np.unique(labels).tolist())
    [0, 1, 2, 3]
    """
    image, instances, object_labels = _render(
        size, n_objects, classes, min_size, max_size, noise, texture, touching, color_jitter, seed
    )
    return image, np.concatenate([[0], object_labels]).astype(np.int64)[instances]


def make_scenes(n, *, seed=0, **kwargs):
    """A batch of scenes from :func:`make_scene`.

    Scene ``i`` is ``make_scene(seed=(seed, i), **kwargs)``, so it is the same
    whatever ``n`` is.

    Parameters
    ----------
    n : int
        Number of scenes (>= 1).
    seed : int
        Seed of the batch (>= 0).
    **kwargs
        Passed to :func:`make_scene` (``size``, ``n_objects``, ``noise``, ...).

    Returns
    -------
    images : ndarray of float32, shape (n, H, W, 3)
    labels : ndarray of int64, shape (n, H, W)

    Examples
    --------
    >>> images, labels = make_scenes(3, size=32, max_size=12, seed=1)
    >>> images.shape, labels.shape
    ((3, 32, 32, 3), (3, 32, 32))
    >>> bool((make_scenes(1, size=32, max_size=12, seed=1)[1][0] == labels[0]).all())
    True
    """
    n = as_int(n, "n", minimum=1)
    if isinstance(seed, (tuple, list)):
        raise TypeError(f"seed of make_scenes must be an int >= 0, got {describe(seed)}")
    _rng(seed)  # validate before drawing anything
    height, width = _shape(kwargs.get("size", 64))
    if n * height * width > _MAX_BATCH_PIXELS:
        raise ValueError(
            f"n={n} scenes of {height}x{width} pixels would hold {n * height * width} pixels; "
            f"at most {_MAX_BATCH_PIXELS} fit in one batch: ask for fewer or smaller scenes"
        )
    pairs = [make_scene(seed=(int(seed), i), **kwargs) for i in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def make_instance_scene(
    size=64,
    *,
    n_objects=4,
    classes=(1, 2, 3),
    min_size=8,
    max_size=20,
    noise=0.05,
    texture=0.0,
    touching=False,
    color_jitter=0.1,
    seed=0,
):
    """A scene from :func:`make_scene` with one mask, box and class per object.

    The parameters are those of :func:`make_scene`, and with the same values
    the image is the same and ``semantic`` equals its label map.

    Returns
    -------
    dict
        ``image`` : float32 (H, W, 3) in [0, 1].
        ``masks`` : bool (N, H, W), the visible part of each object, in
        drawing order (later objects occlude earlier ones, so masks never
        overlap). Objects hidden entirely are left out, so no mask is empty
        and N may be less than ``n_objects``.
        ``boxes`` : float32 (N, 4), ``[x0, y0, x1, y1]`` in pixels, the tight
        box of each mask with ``x1`` and ``y1`` exclusive: the mask lies in
        ``rows y0:y1`` and ``columns x0:x1`` (the torchvision convention).
        ``labels`` : int64 (N,), the class of each object, in 1..3.
        ``semantic`` : int64 (H, W), the class label map (0 background).

    Examples
    --------
    >>> scene = make_instance_scene(seed=0, touching=True)
    >>> sorted(scene)
    ['boxes', 'image', 'labels', 'masks', 'semantic']
    >>> n = len(scene["labels"])
    >>> scene["masks"].shape == (n, 64, 64) and scene["boxes"].shape == (n, 4)
    True
    """
    image, instances, object_labels = _render(
        size, n_objects, classes, min_size, max_size, noise, texture, touching, color_jitter, seed
    )
    masks, labels = [], []
    for k, label in enumerate(object_labels):
        mask = instances == k + 1
        if not mask.any():
            continue
        masks.append(mask)
        labels.append(label)
    shape = instances.shape
    masks = np.array(masks, dtype=bool).reshape((len(masks),) + shape)
    return {
        "image": image,
        "masks": masks,
        "boxes": mask_boxes(masks),
        "labels": np.array(labels, dtype=np.int64),
        "semantic": np.concatenate([[0], object_labels]).astype(np.int64)[instances],
    }


def mask_boxes(masks):
    """The box of every mask: ``(x0, y0, x1, y1)`` with ``x1``, ``y1`` exclusive (torchvision's XYXY).

    Parameters
    ----------
    masks : array_like of bool, shape (N, H, W)
        One mask per object; none may be empty.

    Returns
    -------
    ndarray of float32, shape (N, 4)
        ``torchvision.ops.masks_to_boxes`` gives the same boxes with ``x1``, ``y1``
        one smaller (the last column and row inside the mask).

    Examples
    --------
    >>> masks = np.zeros((1, 5, 6), bool)
    >>> masks[0, 1:3, 2:5] = True
    >>> mask_boxes(masks)
    array([[2., 1., 5., 3.]], dtype=float32)
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape (N, H, W); got shape {masks.shape}")
    masks = masks.astype(bool, copy=False)
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if not len(rows):
            raise ValueError(f"mask {k} is empty: an empty mask has no box")
        boxes[k] = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
    return boxes


def make_gray_scene(size=128, *, n_objects=6, contrast=0.4, noise=0.05, gradient=0.0, seed=0):
    """Bright elliptical blobs on a darker background, for thresholding.

    Blobs are ``contrast`` brighter than the background (a little more or
    less for each blob). An optional linear illumination ramp from left to
    right makes one global threshold fail: with ``gradient=0.6`` the
    background on the right is brighter than the blobs on the left, while a
    local threshold still separates them.

    Parameters
    ----------
    size : int or (int, int)
        Image side, or ``(H, W)``; at least 8.
    n_objects : int
        Number of blobs (>= 0). They are kept apart whenever there is room.
    contrast : float
        Brightness difference between blobs and background, 0 to 1.
    noise : float
        Standard deviation of the Gaussian pixel noise (>= 0).
    gradient : float
        Brightness added across the image from left (``-gradient / 2``) to
        right (``+gradient / 2``), 0 to 1; 0 is even lighting. Values stay
        within [0, 1] before noise when ``contrast + gradient <= 1``, and the
        image is clipped to [0, 1].
    seed : int or tuple of int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    image : ndarray of float64, shape (H, W)
        Values in [0, 1].
    mask : ndarray of bool, shape (H, W)
        True on the blobs.

    Notes
    -----
    Blobs are up to about a quarter of the image wide. A local threshold needs
    a window larger than that and a small positive margin over the local
    mean, e.g. ``skimage.filters.threshold_local(image, 51, offset=-0.1)``
    for the default size and contrast.

    Examples
    --------
    >>> image, mask = make_gray_scene(seed=0)
    >>> image.shape, image.dtype, mask.dtype
    ((128, 128), dtype('float64'), dtype('bool'))
    >>> bool(image[mask].mean() > image[~mask].mean())
    True
    """
    shape = _shape(size)
    n_objects = as_int(n_objects, "n_objects", minimum=0, maximum=_MAX_OBJECTS)
    contrast = as_float(contrast, "contrast", minimum=0, maximum=1)
    noise = as_float(noise, "noise", minimum=0)
    gradient = as_float(gradient, "gradient", minimum=0, maximum=1)
    rng = _rng(seed)

    side = min(shape)
    semi_axes = np.maximum(rng.uniform(0.05, 0.11, (n_objects, 2)) * side, 1.5)
    angles = rng.uniform(0, np.pi, n_objects)
    outer = semi_axes.max(axis=1)
    centres = _place(shape, list(outer), list(semi_axes.min(axis=1)), False, rng)
    brightness = contrast * (1 + rng.uniform(-0.15, 0.15, n_objects))

    yy = np.arange(shape[0], dtype=float)[:, None]
    xx = np.arange(shape[1], dtype=float)[None, :]
    image = np.full(shape, 0.5 - contrast / 2)
    mask = np.zeros(shape, dtype=bool)
    for (cy, cx), (a, b), angle, level in zip(centres, semi_axes, angles, brightness):
        dy, dx = yy - cy, xx - cx
        u = np.cos(angle) * dx + np.sin(angle) * dy
        v = -np.sin(angle) * dx + np.cos(angle) * dy
        blob = (u / a) ** 2 + (v / b) ** 2 <= 1
        image[blob] = 0.5 - contrast / 2 + level
        mask |= blob
    ramp = np.linspace(-0.5, 0.5, shape[1])[None, :] if shape[1] > 1 else np.zeros((1, 1))
    image = image + gradient * ramp
    image += noise * rng.standard_normal(shape)
    return np.clip(image, 0, 1), mask


def sample_image(name, *, as_gray=False):
    """A real photograph or scan, loaded from scikit-image or scikit-learn.

    No network access is needed and nothing is cached on disk.

    Parameters
    ----------
    name : str
        One of :data:`SAMPLE_IMAGES`: ``"coins"``, ``"camera"``,
        ``"astronaut"``, ``"coffee"``, ``"china"``, ``"flower"``, ...
    as_gray : bool
        If True, return a float64 (H, W) grayscale image in [0, 1].

    Returns
    -------
    ndarray
        ``uint8`` of shape (H, W) or (H, W, 3) (binary and float images such
        as ``"horse"`` are converted to 0..255), or float64 (H, W) in [0, 1]
        with ``as_gray=True``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`SAMPLE_IMAGES`.

    Examples
    --------
    >>> sample_image("coins").shape
    (303, 384)
    >>> gray = sample_image("coffee", as_gray=True)
    >>> gray.dtype, gray.ndim
    (dtype('float64'), 2)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, one of {', '.join(SAMPLE_IMAGES)}; got {describe(name)}")
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"unknown sample image {name!r}; available: {', '.join(SAMPLE_IMAGES)}")
    if not isinstance(as_gray, (bool, np.bool_)):
        raise TypeError(f"as_gray must be True or False, got {describe(as_gray)}")
    from skimage.util import img_as_ubyte

    if name in _SKLEARN_IMAGES:
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data

        image = getattr(skimage.data, name)()
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    image = np.array(img_as_ubyte(image), copy=True)
    if as_gray:
        from skimage.color import rgb2gray

        return rgb2gray(image) if image.ndim == 3 else image.astype(np.float64) / 255
    return image
