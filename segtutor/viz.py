"""Pictures of segmentations: overlays, contours, grids, histograms, diffs.

Every plotting function draws with matplotlib's object API and returns what it
drew on (an ``Axes`` or a ``Figure``); none calls ``plt.show()``, so in a
notebook the figure appears once, at the end of the cell. Pass ``ax=`` to draw
into a panel of your own figure.

Three kinds of maps get three colour schemes, so that a picture never mixes
them up:

* **classes** (semantic label maps) get the fixed categorical :data:`PALETTE`:
  0 black (background), then the colour-blind-safe colours of Okabe and Ito
  (1 vermillion, 2 bluish green, 3 blue, 4 orange, 5 sky blue, 6 yellow,
  7 reddish purple), so a class has the same colour in every plot, with a
  legend naming it (:func:`show_labels`, :func:`overlay`);
* **instances** (one id per object) get colours of the ``viridis`` colour
  map on a light grey background, and their number written on them
  (:func:`show_instances`);
* **clusters** (ids without meaning) are painted with the mean colour of
  their pixels (:func:`show_clusters`).

matplotlib is imported on first use, so ``import segtutor.viz`` stays quick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from segtutor._checks import as_float, as_image, as_int, as_label_map, describe, same_shape

__all__ = [
    "PALETTE",
    "OKABE_ITO",
    "VOC_PALETTE",
    "label_to_rgb",
    "as_rgb_float",
    "overlay",
    "contour_overlay",
    "show_labels",
    "show_instances",
    "instance_colors",
    "show_clusters",
    "cluster_colors",
    "feature_scatter",
    "show_grid",
    "plot_histogram",
    "mask_diff",
    "diff_figure",
    "ascii_mask_diff",
]


def _voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: the bits of the class id spread over R, G, B."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for index in range(n):
        value, rgb = index, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << (7 - bit)
            value >>= 3
        palette[index] = rgb
    return palette


#: Okabe and Ito's colour-blind-safe qualitative colours, in their published order
#: (black, orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple).
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")

#: PASCAL VOC's colour map, uint8 of shape (256, 3), for data sets that use it.
VOC_PALETTE = _voc_palette()
VOC_PALETTE.setflags(write=False)


def _hex(color: str) -> list:
    return [int(color[i:i + 2], 16) for i in (1, 3, 5)]


def _class_palette() -> np.ndarray:
    """Class 0 black; classes 1-7 Okabe-Ito (hues chosen to match the synthetic
    scenes' circles, squares and triangles: red-ish, green-ish, blue-ish); from 8 on the VOC colours."""
    palette = VOC_PALETTE.copy()
    order = ("#000000", "#D55E00", "#009E73", "#0072B2", "#E69F00", "#56B4E9", "#F0E442", "#CC79A7")
    palette[: len(order)] = [_hex(c) for c in order]
    return palette


#: Colour of each class id, uint8 of shape (256, 3): 0 black, 1-7 Okabe-Ito
#: (vermillion, bluish green, blue, orange, sky blue, yellow, reddish purple),
#: then the PASCAL VOC colours.
PALETTE = _class_palette()
PALETTE.setflags(write=False)

# difference colours (Okabe-Ito, readable with colour-blindness)
_AGREE_BG = (0.25, 0.25, 0.25)
_AGREE_FG = (0.80, 0.80, 0.80)
_MISSING = (0.90, 0.62, 0.00)  # orange
_EXTRA = (0.00, 0.45, 0.70)  # blue
_WRONG = (0.80, 0.47, 0.65)  # reddish purple
_INSTANCE_BG = (0.88, 0.88, 0.88)  # no object: light grey, unlike the black class background


# --------------------------------------------------------------------------- helpers


def _axes(ax, figsize=(4.5, 4.5)):
    """``ax``, or the axes of a new figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
        return ax
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {describe(ax)}")
    return ax


def _check_palette(palette) -> np.ndarray:
    array = np.asarray(palette)
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
        raise ValueError(f"palette must have shape (K, 3), one RGB row per class; got {describe(array)}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"palette must hold numbers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ValueError("a float palette must hold values in [0, 1]")
        return np.round(array * 255).astype(np.uint8)
    if array.min() < 0 or array.max() > 255:
        raise ValueError("an integer palette must hold values in 0..255")
    return array.astype(np.uint8)


def as_rgb_float(image: np.ndarray) -> np.ndarray:
    """Any grayscale or colour image as float RGB in [0, 1], for display.

    Booleans become 0/1; integers in 0..255 are divided by 255; anything else outside
    [0, 1] is stretched to it; gray images are repeated over three channels and an
    alpha channel is dropped.

    Examples
    --------
    >>> as_rgb_float(np.array([[0, 255]], dtype=np.uint8))[0, 1]
    array([1., 1., 1.])
    """
    image = np.asarray(image)
    if image.dtype == bool:
        out = image.astype(float)
    elif np.issubdtype(image.dtype, np.integer):
        if image.min() >= 0 and image.max() <= 255:
            out = image.astype(float) / 255
        else:
            out = _stretch(image)
    else:
        out = image.astype(float)
        if out.min() < 0 or out.max() > 1:
            out = _stretch(out)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    elif out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    elif out.shape[2] == 2 or out.shape[2] > 4:
        raise ValueError(f"image must have 1, 3 or 4 channels, got shape {image.shape}")
    return out[..., :3]


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """Brightness of a float RGB image, with the weights of ``skimage.color.rgb2gray``."""
    return rgb @ np.array([0.2125, 0.7154, 0.0721])


def _stretch(image: np.ndarray) -> np.ndarray:
    image = image.astype(float)
    lo, hi = image.min(), image.max()
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


def _class_name(label: int, class_names) -> str:
    if class_names is None:
        return f"class {label}"
    if isinstance(class_names, Mapping):
        return str(class_names.get(label, f"class {label}"))
    return str(class_names[label]) if label < len(class_names) else f"class {label}"


def _check_class_names(class_names):
    if class_names is None or isinstance(class_names, Mapping):
        return class_names
    if isinstance(class_names, str):
        raise TypeError("class_names must be a sequence of names indexed by class id, not a string")
    try:
        return list(class_names)
    except TypeError:
        raise TypeError(
            f"class_names must be a sequence or dict of names, got {describe(class_names)}"
        ) from None


def _same_size(image: np.ndarray, other_shape: tuple, other: str) -> None:
    """Raise ``ValueError`` unless an image and a label map have the same (H, W)."""
    if tuple(image.shape[:2]) != tuple(other_shape):
        raise ValueError(
            f"image and {other} must have the same shape (H, W); got image of shape {image.shape} "
            f"and {other} of shape (H, W) = {tuple(other_shape)}"
        )


def _hide_ticks(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _is_label_map(image: np.ndarray) -> bool:
    """Integer (not bool) 2-D array with few small non-negative values."""
    if image.ndim != 2 or image.dtype == bool or not np.issubdtype(image.dtype, np.integer):
        return False
    if image.min() < 0 or image.max() >= 64:
        return False
    return np.unique(image).size <= 32


# --------------------------------------------------------------------------- public


def label_to_rgb(labels, palette=PALETTE):
    """Colour a label map: each class id becomes its colour in ``palette``.

    Parameters
    ----------
    labels : array-like of int, shape (H, W)
        Class ids, 0 to ``len(palette) - 1``.
    palette : array-like, shape (K, 3)
        One colour per class id, uint8 in 0..255 or floats in [0, 1].

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    Examples
    --------
    >>> rgb = label_to_rgb(np.array([[0, 1], [2, 3]]))
    >>> rgb.dtype, rgb.shape
    (dtype('uint8'), (2, 2, 3))
    >>> rgb[0, 1].tolist()  # class 1 is vermillion
    [213, 94, 0]
    """
    labels = as_label_map(labels, "labels")
    palette = _check_palette(palette)
    if labels.max() >= len(palette):
        raise ValueError(
            f"labels go up to {int(labels.max())} but the palette has only {len(palette)} colours"
        )
    return palette[labels]


def overlay(image, labels, *, alpha=0.5, class_names=None, ax=None, legend=True, title=None):
    """Draw an image with its label map blended on top.

    Pixels of class 0 (background) show the image unchanged; every other
    class is tinted with its :data:`PALETTE` colour, blended with the
    *brightness* of the image there (as ``skimage.color.label2rgb`` does), so
    the tint keeps the class's hue whatever the object's own colour is, and a
    class has the same colour in every plot.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, 3)
        Grayscale or RGB image (uint8, or floats in [0, 1]; other ranges are
        stretched to fit).
    labels : array-like of int, shape (H, W)
        Class ids.
    alpha : float
        Opacity of the colours, 0 (image only) to 1 (labels only).
    class_names : sequence or dict, optional
        Name of each class id, e.g. :data:`segtutor.data.CLASS_NAMES`;
        default ``"class 1"``, ``"class 2"``, ...
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.
    legend : bool
        Add a legend with the name and colour of each non-zero class present.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from segtutor.data import make_scene, CLASS_NAMES
    >>> image, labels = make_scene(seed=0)
    >>> ax = overlay(image, labels, class_names=CLASS_NAMES)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['circle', 'square', 'triangle']
    >>> plt.close(ax.figure)
    """
    image = as_image(image, "image")
    labels = as_label_map(labels, "labels")
    _same_size(image, labels.shape, "labels")
    alpha = as_float(alpha, "alpha", minimum=0, maximum=1)
    class_names = _check_class_names(class_names)
    colors = label_to_rgb(labels).astype(float) / 255
    rgb = as_rgb_float(image)
    tinted = labels > 0
    blended = rgb.copy()
    # Blend the class colour over the image's *brightness*, not its colours: a blue
    # object under an orange label would otherwise mix to grey.
    gray = _luminance(rgb)[..., None]
    blended[tinted] = ((1 - alpha) * gray + alpha * colors)[tinted]
    ax = _axes(ax)
    ax.imshow(blended, interpolation="nearest")
    _hide_ticks(ax)
    if title is not None:
        ax.set_title(str(title))
    present = [int(v) for v in np.unique(labels) if v > 0]
    if legend and present:
        from matplotlib.patches import Patch

        handles = [
            Patch(facecolor=PALETTE[v] / 255, edgecolor="white", label=_class_name(v, class_names))
            for v in present
        ]
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
            fontsize="small",
            frameon=False,
        )
    return ax


def contour_overlay(image, masks_or_labels, *, ax=None, colors=None, linewidth=1.5, title=None, points=None,
                    points_label="seed"):
    """Draw region outlines on an image.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, 3)
    masks_or_labels : array-like
        A label map (H, W), where every non-zero value is a region (a bool
        mask is one region), or a stack of masks (N, H, W), one per instance.
    ax : matplotlib Axes, optional
    colors : colour or sequence of colours, optional
        One matplotlib colour for every outline, or one per region (non-zero
        label in increasing order, or mask). Default: the :data:`PALETTE`
        colour of each label, or a distinct colour per mask.
    linewidth : float
    title : str, optional
    points : sequence of (row, col), optional
        Pixels to mark with a cross (e.g. the seeds of region growing), with a
        legend entry ``points_label``.
    points_label : str

    Returns
    -------
    matplotlib.axes.Axes
        With one contour set per region drawn.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from segtutor.data import make_scene
    >>> image, labels = make_scene(seed=0)
    >>> ax = contour_overlay(image, labels)
    >>> len(ax.collections)  # one outline set per class present
    3
    >>> plt.close(ax.figure)
    """
    image = as_image(image, "image")
    regions = as_label_map(masks_or_labels, "masks_or_labels", ndim=(2, 3))
    stacked = regions.ndim == 3
    if stacked:
        _same_size(image, regions.shape[1:], "masks")
        if regions.max() > 1:
            raise ValueError("a stack of masks (N, H, W) must hold only 0/1 or True/False values")
        masks = regions.astype(bool)
        default = [_tab_color(i) for i in range(len(masks))]
    else:
        _same_size(image, regions.shape, "labels")
        values = [int(v) for v in np.unique(regions) if v > 0]
        masks = [regions == v for v in values]
        default = [tuple(PALETTE[v % 256] / 255) for v in values]
    linewidth = as_float(linewidth, "linewidth", minimum=0)
    colors = _region_colors(colors, len(masks), default)

    ax = _axes(ax)
    ax.imshow(as_rgb_float(image), interpolation="nearest")
    height, width = image.shape[:2]
    # pad so that regions touching the border get a closed outline
    ys = np.arange(-1, height + 1)
    xs = np.arange(-1, width + 1)
    for mask, color in zip(masks, colors):
        if not mask.any():
            continue
        padded = np.pad(mask.astype(float), 1)
        ax.contour(xs, ys, padded, levels=[0.5], colors=[color], linewidths=linewidth)
    if points is not None:
        marks = np.asarray(points, dtype=float).reshape(-1, 2)
        if marks.size and not np.isfinite(marks).all():
            raise ValueError("points must be finite (row, col) pairs")
        ax.plot(marks[:, 1], marks[:, 0], linestyle="none", marker="X", markersize=9, color=OKABE_ITO[4],
                markeredgecolor="black", label=str(points_label))
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small",
                  frameon=False)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    _hide_ticks(ax)
    if title is not None:
        ax.set_title(str(title))
    return ax


def _tab_color(i: int):
    import matplotlib

    return matplotlib.colormaps["tab10"](i % 10)[:3]


def _region_colors(colors, n: int, default: list) -> list:
    if colors is None:
        return default
    from matplotlib.colors import is_color_like

    if is_color_like(colors):
        return [colors] * n
    colors = list(colors)
    if not all(is_color_like(c) for c in colors):
        raise ValueError(f"colors must be a matplotlib colour or a sequence of colours, got {colors!r}")
    if len(colors) < n:
        raise ValueError(f"colors has {len(colors)} entries but there are {n} regions to outline")
    return colors[:n]


def _legend_right(ax, handles, title=None) -> None:
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize="small",
        frameon=False,
        title=title,
        title_fontsize="small",
    )


def _patch(color, label):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, edgecolor="black", linewidth=0.5, label=label)


def show_labels(labels, *, class_names=None, ax=None, title=None, legend=True):
    """Draw a class label map in the class colours of :data:`PALETTE`, with a legend.

    Parameters
    ----------
    labels : array-like of int, shape (H, W)
        Class ids, 0 to 255 (a bool mask is read as classes 0 and 1).
    class_names : sequence or dict, optional
        Name of each class id, e.g. :data:`segtutor.data.CLASS_NAMES`; default
        ``"class 0"``, ``"class 1"``, ...
    ax : matplotlib Axes, optional
    title : str, optional
    legend : bool
        A legend with the colour and name of every class present (background included).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from segtutor.data import make_scene, CLASS_NAMES
    >>> _, labels = make_scene(seed=0)
    >>> ax = show_labels(labels, class_names=CLASS_NAMES)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['background', 'circle', 'square', 'triangle']
    >>> plt.close(ax.figure)
    """
    labels = as_label_map(labels, "labels")
    class_names = _check_class_names(class_names)
    rgb = label_to_rgb(labels)
    ax = _axes(ax)
    ax.imshow(rgb, interpolation="nearest")
    _hide_ticks(ax)
    if title is not None:
        ax.set_title(str(title))
    if legend:
        _legend_right(ax, [_patch(PALETTE[v] / 255, _class_name(int(v), class_names)) for v in np.unique(labels)])
    return ax


def _instance_map(instances) -> np.ndarray:
    array = as_label_map(instances, "instances", ndim=(2, 3))
    if array.ndim == 2:
        return array
    if array.max() > 1:
        raise ValueError("a stack of instance masks (N, H, W) must hold only 0/1 or True/False values")
    out = np.zeros(array.shape[1:], dtype=np.int64)
    for i, mask in enumerate(array.astype(bool), start=1):
        out[mask] = i
    return out


def instance_colors(n: int) -> np.ndarray:
    """``n`` colours of the ``viridis`` colour map, float RGB of shape (n, 3): instance ``i`` gets row ``i - 1``.

    Consecutive instances get far-apart colours (golden-ratio steps along the map).

    Examples
    --------
    >>> instance_colors(3).shape
    (3, 3)
    """
    import matplotlib

    n = as_int(n, "n", minimum=0, maximum=100_000)
    # Golden-ratio steps along viridis (up to 0.9, short of its pale yellow end): consecutive
    # ids, often neighbouring objects, get far-apart colours.
    positions = (np.arange(n) * 0.6180339887) % 1.0 * 0.9
    return matplotlib.colormaps["viridis"](positions)[:, :3]


def show_instances(instances, *, ax=None, title=None, numbers=True):
    """Draw an instance map: one ``viridis`` colour per object, its number written on it.

    Instances are not classes: their ids only tell objects apart, so they get a
    scheme of their own (colours of the ``viridis`` colour map, see
    :func:`instance_colors`, on a light grey "no object" background), never the
    class colours of :data:`PALETTE`.

    Parameters
    ----------
    instances : array-like
        An instance map ``(H, W)`` (0 for no object, ``1..N`` for the objects) or
        a stack of masks ``(N, H, W)``, one per object.
    ax : matplotlib Axes, optional
    title : str, optional
    numbers : bool
        Write each object's number at the centre of its largest part.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from segtutor.data import make_instance_scene
    >>> scene = make_instance_scene(seed=0, touching=True)
    >>> ax = show_instances(scene["masks"])
    >>> len(ax.texts) == len(scene["masks"])
    True
    >>> plt.close(ax.figure)
    """
    ids = _instance_map(instances)
    present = [int(v) for v in np.unique(ids) if v > 0]
    colors = instance_colors(max(present, default=0))
    rgb = np.empty(ids.shape + (3,))
    rgb[...] = _INSTANCE_BG
    for v in present:
        rgb[ids == v] = colors[v - 1]
    ax = _axes(ax)
    ax.imshow(rgb, interpolation="nearest")
    _hide_ticks(ax)
    if numbers:
        import matplotlib.patheffects as effects
        from scipy import ndimage

        for v in present:
            parts, n = ndimage.label(ids == v)
            largest = 1 + int(np.argmax(np.bincount(parts.ravel())[1:])) if n > 1 else 1
            rows, cols = np.nonzero(parts == largest)
            inside = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)  # a pixel of the object
            ax.text(cols[inside], rows[inside], str(v), ha="center", va="center", fontsize="small",
                    color="white", fontweight="bold",
                    path_effects=[effects.withStroke(linewidth=2, foreground="black")])
    if title is not None:
        ax.set_title(str(title))
    return ax


def cluster_colors(image, clusters) -> np.ndarray:
    """Mean colour of every cluster: float RGB of shape (K, 3), row ``j`` for cluster id ``j``.

    A cluster id with no pixels gets grey.

    Examples
    --------
    >>> image = np.zeros((2, 2, 3)); image[0] = 1.0
    >>> cluster_colors(image, [[1, 1], [0, 0]]).tolist()
    [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    image = as_image(image, "image")
    clusters = as_label_map(clusters, "clusters")
    _same_size(image, clusters.shape, "clusters")
    rgb = as_rgb_float(image).reshape(-1, 3)
    ids, inverse = np.unique(clusters.ravel(), return_inverse=True)
    if ids[-1] >= 100_000:
        raise ValueError(f"clusters must be numbered below 100000; found {int(ids[-1])}")
    inverse = inverse.ravel()
    counts = np.bincount(inverse)
    means = np.stack([np.bincount(inverse, weights=rgb[:, c]) / counts for c in range(3)], axis=1)
    out = np.full((int(ids[-1]) + 1, 3), 0.5)
    out[ids] = means
    return out


def show_clusters(image, clusters, *, ax=None, title=None, legend=True, names=None):
    """Draw a clustering: every pixel painted with the mean colour of its cluster.

    Cluster ids carry no meaning (cluster 0 is not "background" and cluster 2 is
    not "square"), so clusters are drawn neither in class colours nor in instance
    colours but in what they stand for, their mean colour, as
    :func:`segtutor.cluster.superpixel_means` paints superpixels.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, C)
        The image that was clustered.
    clusters : array-like of int, shape (H, W)
        Cluster id of every pixel.
    ax : matplotlib Axes, optional
    title : str, optional
    legend : bool
        One entry per cluster: its mean colour and how many pixels it holds.
    names : sequence or dict, optional
        A name for each cluster id in the legend (default ``"cluster 0"``, ...),
        e.g. the brightness range of a group made by thresholds.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> image = np.zeros((4, 4, 3)); image[:, 2:] = [1.0, 0.5, 0.0]
    >>> ax = show_clusters(image, (image[..., 0] > 0).astype(int))
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['cluster 0: 8 px', 'cluster 1: 8 px']
    >>> plt.close(ax.figure)
    """
    clusters = as_label_map(clusters, "clusters")
    names = _check_class_names(names)
    colors = cluster_colors(image, clusters)
    ax = _axes(ax)
    ax.imshow(colors[clusters], interpolation="nearest")
    _hide_ticks(ax)
    if title is not None:
        ax.set_title(str(title))
    if legend:
        ids, counts = np.unique(clusters, return_counts=True)
        label = (lambda v: f"cluster {v}") if names is None else (lambda v: _class_name(v, names))
        _legend_right(ax, [_patch(colors[v], f"{label(int(v))}: {int(c)} px") for v, c in zip(ids, counts)])
    return ax


def feature_scatter(X, labels, *, dims=(0, 1), axis_names=None, class_names=None, ax=None, max_per_class=400,
                    seed=0, title=None):
    """Scatter two features of samples (e.g. two colour channels of pixels), coloured by class.

    Each class is drawn in its :data:`PALETTE` colour, with a legend; class 0
    (background) first, small and half transparent, so that it does not hide
    the others. At most ``max_per_class`` samples of each class are drawn,
    picked at random with ``seed``, so that a small class is as visible as a
    large one (the legend gives each class's full count).

    Parameters
    ----------
    X : array-like, shape (n, d)
        Samples, e.g. :func:`segtutor.cluster.pixel_features`.
    labels : array-like of int, shape (n,) or (H, W) with H * W = n
        Class of each sample.
    dims : (int, int)
        The two features to plot.
    axis_names : sequence of str, optional
        Name of every feature, e.g. ``"RGB"``; default ``"feature 0"``, ...
    class_names : sequence or dict, optional
    ax : matplotlib Axes, optional
    max_per_class : int
    seed : int
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> X = np.array([[0.0, 0.1], [0.2, 0.1], [0.9, 0.8]])
    >>> ax = feature_scatter(X, [0, 0, 1], axis_names=("red", "green"))
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['class 0 (2 px)', 'class 1 (1 px)']
    >>> plt.close(ax.figure)
    """
    from segtutor._checks import _to_array

    X = _to_array(X, "X")
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a 2-D array of shape (n_samples, n_features); got shape {X.shape}")
    labels = as_label_map(labels, "labels", ndim=(1, 2)).ravel()
    if labels.size != X.shape[0]:
        raise ValueError(f"labels must have one entry per sample of X ({X.shape[0]}); got {labels.size}")
    if not (isinstance(dims, (tuple, list)) and len(dims) == 2):
        raise TypeError(f"dims must be a pair of feature indices, got {describe(dims)}")
    dims = [as_int(d, "dims", minimum=0, maximum=X.shape[1] - 1) for d in dims]
    max_per_class = as_int(max_per_class, "max_per_class", minimum=1)
    class_names = _check_class_names(class_names)
    if axis_names is not None:
        axis_names = [str(n) for n in axis_names]
        if len(axis_names) != X.shape[1]:
            raise ValueError(f"axis_names must name every feature ({X.shape[1]}); got {len(axis_names)}")
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    ax = _axes(ax, figsize=(4.5, 4))
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        shown = members if members.size <= max_per_class else rng.choice(members, max_per_class, replace=False)
        background = value == 0
        ax.scatter(X[shown, dims[0]], X[shown, dims[1]], s=4 if background else 7,
                   alpha=0.35 if background else 0.9, color=PALETTE[value % 256] / 255, linewidths=0,
                   label=f"{_class_name(int(value), class_names)} ({members.size} px)")
    names = axis_names or [f"feature {i}" for i in range(X.shape[1])]
    ax.set_xlabel(names[dims[0]])
    ax.set_ylabel(names[dims[1]])
    ax.legend(fontsize="small", markerscale=2.5, frameon=False, loc="best")
    if title is not None:
        ax.set_title(str(title))
    return ax


def show_grid(images, titles=None, *, ncols=4, cmap=None, size=3.0, suptitle=None):
    """Show images side by side in a grid.

    Label maps (2-D integer arrays with few values below 64) are coloured with
    :data:`PALETTE`; other 2-D arrays are shown in grey (``cmap``), with
    uint8 on 0..255 and floats within [0, 1] on 0..1, so a dark image looks
    dark; colour images as they are.

    Parameters
    ----------
    images : sequence of arrays, dict, or array
        The images; a dict maps titles to images. An array is a stack ``(N, H,
        W)`` or ``(N, H, W, C)``, except that a 3-D array whose last axis has 3
        or 4 entries is one colour image ``(H, W, 3)`` (pass a stack of gray
        images 3 or 4 pixels wide as a list).
    titles : sequence of str, optional
        One per image.
    ncols : int
        Largest number of images per row.
    cmap : str, optional
        Colour map for grayscale images; default ``"gray"``.
    size : float
        Size of one panel in inches.
    suptitle : str, optional
        Title above the grid.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from segtutor.data import make_scene
    >>> image, labels = make_scene(seed=0)
    >>> fig = show_grid([image, labels, image.mean(axis=2)], ["image", "labels", "gray"])
    >>> len([ax for ax in fig.axes if ax.images])
    3
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    if isinstance(images, Mapping):
        if titles is not None:
            raise ValueError("give titles either as the keys of a dict of images or as titles, not both")
        titles = [str(k) for k in images]
        images = list(images.values())
    elif isinstance(images, np.ndarray):
        if images.ndim == 3 and images.shape[2] in (3, 4):
            images = images[None]  # one colour image, not a stack of H images
        if images.ndim not in (3, 4):
            raise ValueError(
                "an array of images must be a stack (N, H, W) or (N, H, W, C); "
                f"got shape {images.shape} (wrap a single image in a list)"
            )
        images = list(images)
    elif isinstance(images, (list, tuple)):
        images = list(images)
    else:
        raise TypeError(f"images must be a list of arrays, a dict or an array stack, got {describe(images)}")
    if not images:
        raise ValueError("images is empty; give at least one image")
    images = [as_image(im, f"images[{i}]") for i, im in enumerate(images)]
    if titles is not None:
        if isinstance(titles, str):
            raise TypeError("titles must be a sequence of strings, one per image, not a single string")
        titles = list(titles)
        if len(titles) != len(images):
            raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    ncols = as_int(ncols, "ncols", minimum=1)
    size = as_float(size, "size", minimum=0.1)
    if cmap is not None and not isinstance(cmap, str):
        from matplotlib.colors import Colormap

        if not isinstance(cmap, Colormap):
            raise TypeError(f"cmap must be a colour map name or a Colormap, got {describe(cmap)}")

    n = len(images)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False, layout="constrained"
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = images[i]
        if _is_label_map(image):
            ax.imshow(label_to_rgb(image), interpolation="nearest")
        elif image.ndim == 2 or image.shape[2] == 1:
            gray = image if image.ndim == 2 else image[..., 0]
            vmin, vmax = _gray_range(gray)
            ax.imshow(gray, cmap=cmap or "gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        else:
            ax.imshow(as_rgb_float(image), interpolation="nearest")
        if titles is not None and titles[i] is not None:
            ax.set_title(str(titles[i]))
    if suptitle is not None:
        fig.suptitle(str(suptitle))
    return fig


def _gray_range(gray: np.ndarray):
    if gray.dtype == bool:
        return 0, 1
    if gray.dtype == np.uint8:
        return 0, 255
    if np.issubdtype(gray.dtype, np.floating) and gray.min() >= 0 and gray.max() <= 1:
        return 0, 1
    return None, None


def plot_histogram(image, *, thresholds=(), nbins=256, ax=None, title=None):
    """Plot the intensity histogram of an image, with threshold lines.

    Parameters
    ----------
    image : array-like, shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)
        A colour image gets one histogram per channel (red, green, blue; an
        alpha channel is left out).
    thresholds : float, sequence of float, or dict
        Where to draw vertical lines; a dict maps a label to each value
        (``{"Otsu": 0.42}``).
    nbins : int
        Number of bins (>= 2). An integer image whose values span at most
        ``nbins`` values gets one bin per value instead.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from segtutor.data import make_gray_scene
    >>> image, mask = make_gray_scene(seed=0)
    >>> ax = plot_histogram(image, thresholds={"middle": 0.5})
    >>> [line.get_xdata()[0] for line in ax.get_lines()]
    [0.5]
    >>> plt.close(ax.figure)
    """
    image = as_image(image, "image")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"image must be grayscale (H, W) or (H, W, 1), or colour (H, W, 3) or (H, W, 4); "
            f"got {image.shape[2]} channels, shape {image.shape}"
        )
    nbins = as_int(nbins, "nbins", minimum=2, maximum=2**20)
    if isinstance(thresholds, Mapping):
        items = [(str(k), as_float(v, f"thresholds[{k!r}]")) for k, v in thresholds.items()]
    elif isinstance(thresholds, (int, float, np.number)) and not isinstance(thresholds, bool):
        items = [("threshold", as_float(thresholds, "thresholds"))]
    else:
        try:
            values = list(np.ravel(thresholds)) if isinstance(thresholds, np.ndarray) else list(thresholds)
        except TypeError:
            raise TypeError(
                f"thresholds must be a number, a sequence of numbers or a dict, got {describe(thresholds)}"
            ) from None
        values = [as_float(v, f"thresholds[{i}]") for i, v in enumerate(values)]
        if len(values) == 1:
            items = [("threshold", values[0])]
        else:
            items = [(f"threshold {i + 1}", v) for i, v in enumerate(values)]

    ax = _axes(ax, figsize=(5.5, 3.2))
    data = image.astype(float)
    lo, hi = float(data.min()), float(data.max())
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    if np.issubdtype(image.dtype, np.integer) and hi - lo + 1 <= nbins:
        edges = np.arange(lo, hi + 2) - 0.5  # one bin per value: no empty bins between integers
    else:
        edges = np.linspace(lo, hi, nbins + 1)
    if image.ndim == 2 or image.shape[2] == 1:
        counts, _ = np.histogram(data, bins=edges)
        ax.stairs(counts, edges, fill=True, color="0.45")
    else:
        for c, name in zip(range(min(image.shape[2], 3)), ("red", "green", "blue")):
            counts, _ = np.histogram(data[..., c], bins=edges)
            ax.stairs(counts, edges, color=f"tab:{name}", label=name, alpha=0.8)
    cycle = ["#D55E00", "#0072B2", "#CC79A7", "#009E73", "#E69F00", "#56B4E9"]  # Okabe-Ito
    for i, (name, value) in enumerate(items):
        ax.axvline(value, color=cycle[i % len(cycle)], linestyle="--", linewidth=1.5, label=f"{name} = {value:.4g}")
    ax.set_xlabel("intensity")
    ax.set_ylabel("pixels")
    if items or (image.ndim == 3 and image.shape[2] > 1):
        ax.legend(fontsize="small")
    if title is not None:
        ax.set_title(str(title))
    return ax


def _diff_parts(expected, got, names=("expected", "got")):
    """Boolean maps: agree-background, agree-foreground, missing, extra, wrong label."""
    expected = as_image(expected, names[0], channels="gray")
    got = as_image(got, names[1], channels="gray")
    same_shape(expected, got, names[0], names[1])
    exp_fg, got_fg = expected != 0, got != 0
    equal = expected == got
    return {
        "agree_bg": equal & ~exp_fg,
        "agree_fg": equal & exp_fg,
        "missing": exp_fg & ~got_fg,
        "extra": got_fg & ~exp_fg,
        "wrong": exp_fg & got_fg & ~equal,
    }


def mask_diff(expected, got, *, ax=None, title=None):
    """Show where two masks (or label maps) differ.

    Where they agree, pixels are dark grey (both background, 0) or light grey
    (both the same non-zero value); orange marks pixels only in ``expected``
    (missing), blue pixels only in ``got`` (extra), and purple pixels that are
    foreground in both but with different labels. The legend counts each kind.

    Parameters
    ----------
    expected, got : array-like, shape (H, W)
        Binary masks or label maps; 0 is background.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> expected = np.zeros((8, 8), bool); expected[2:6, 2:6] = True
    >>> got = np.zeros((8, 8), bool); got[3:7, 2:6] = True
    >>> ax = mask_diff(expected, got)
    >>> [t.get_text() for t in ax.get_legend().get_texts()][-2:]
    ['missing (expected only): 4 px', 'extra (got only): 4 px']
    >>> plt.close(ax.figure)
    """
    parts = _diff_parts(expected, got)
    shape = parts["agree_bg"].shape
    rgb = np.zeros(shape + (3,))
    legend = [
        ("agree_bg", _AGREE_BG, "agree: background"),
        ("agree_fg", _AGREE_FG, "agree: foreground"),
        ("missing", _MISSING, "missing (expected only)"),
        ("extra", _EXTRA, "extra (got only)"),
        ("wrong", _WRONG, "different label"),
    ]
    for key, color, _ in legend:
        rgb[parts[key]] = color
    ax = _axes(ax)
    ax.imshow(rgb, interpolation="nearest")
    _hide_ticks(ax)
    from matplotlib.patches import Patch

    handles = []
    for key, color, text in legend:
        count = int(parts[key].sum())
        if key in ("agree_bg", "agree_fg", "missing", "extra") or count:
            label = f"{text}: {count} px" if key not in ("agree_bg", "agree_fg") else text
            handles.append(Patch(facecolor=color, edgecolor="black", linewidth=0.5, label=label))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize="small",
        frameon=False,
    )
    if title is not None:
        ax.set_title(str(title))
    return ax


def diff_figure(expected, got, *, title=None, names=("expected", "yours")):
    """Two masks or label maps side by side, and where they differ.

    Three framed panels: ``expected``, ``got`` and :func:`mask_diff` of the two.
    Both maps are drawn on one colour scale: a boolean mask in dark grey
    (False) and light grey (True), the colours :func:`mask_diff` uses where
    they agree; a label map in the categorical :data:`PALETTE`, with one
    legend naming every value that occurs in either map.

    Parameters
    ----------
    expected, got : array-like, shape (H, W)
        Boolean masks, or integer label maps with values 0..255.
    title : str, optional
        Title above the three panels.
    names : (str, str)
        Titles of the first two panels.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        If a map is not 2-D, holds NaN, non-integer or negative values, values
        above 255, or the shapes differ.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> expected = np.zeros((6, 6), bool); expected[1:4, 1:4] = True
    >>> fig = diff_figure(expected, np.roll(expected, 1, axis=1))
    >>> [ax.get_title() for ax in fig.axes]
    ['expected', 'yours', 'difference']
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    if not (isinstance(names, (tuple, list)) and len(names) == 2):
        raise TypeError(f"names must be a pair of panel titles, got {describe(names)}")
    is_mask = np.asarray(expected).dtype == bool
    maps = [as_label_map(m, str(n)) for m, n in ((expected, names[0]), (got, names[1]))]
    same_shape(maps[0], maps[1], str(names[0]), str(names[1]))
    top = max(int(m.max()) for m in maps)
    if top > 255:
        raise ValueError(f"label maps are drawn for values 0..255; found {top}")
    if is_mask:
        colors = np.array([_AGREE_BG, _AGREE_FG])
        if top > 1:
            colors = np.vstack([colors, PALETTE[2 : top + 1] / 255])
        labels = {0: "False (background)", 1: "True (foreground)"}
    else:
        colors = PALETTE / 255
        labels = {}
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.2), layout="constrained")
    for ax, labels_map, name in zip(axes[:2], maps, names):
        ax.imshow(colors[labels_map], interpolation="nearest")
        _hide_ticks(ax)
        ax.set_title(str(name))
    values = np.union1d(np.unique(maps[0]), np.unique(maps[1]))
    handles = [_patch(colors[v], labels.get(int(v), f"label {int(v)}")) for v in values[:12]]
    if len(values) > 12:
        handles.append(_patch((1, 1, 1), f"... {len(values) - 12} more labels"))
    axes[1].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.04), fontsize="small",
                   frameon=False, ncols=min(len(handles), 3))
    mask_diff(maps[0], maps[1], ax=axes[2], title="difference")
    if title is not None:
        fig.suptitle(str(title))
    return fig


def ascii_mask_diff(expected, got, max_size=24):
    """A text picture of where two masks (or label maps) differ.

    The first line is the legend: ``.`` both background, ``#`` both
    foreground (same label), ``-`` missing (foreground only in
    ``expected``), ``+`` extra (foreground only in ``got``), ``x`` foreground
    in both with different labels, and how many pixels one character stands
    for. Masks larger than ``max_size`` are shrunk by square blocks; a block
    shows its most common error when it has one (so no error is hidden),
    else its most common agreement.

    Parameters
    ----------
    expected, got : array-like, shape (H, W)
        Binary masks or label maps; 0 is background.
    max_size : int
        Most characters per row and rows of the picture (>= 1).

    Returns
    -------
    str
        The legend line, then one line per row.

    Examples
    --------
    >>> expected = np.array([[0, 1, 1], [0, 1, 0]])
    >>> got = np.array([[0, 1, 0], [1, 1, 0]])
    >>> print(ascii_mask_diff(expected, got).splitlines()[1:])
    ['.#-', '+#.']
    """
    parts = _diff_parts(expected, got)
    max_size = as_int(max_size, "max_size", minimum=1)
    height, width = parts["agree_bg"].shape
    block = max(math.ceil(height / max_size), math.ceil(width / max_size))
    keys = ("agree_bg", "agree_fg", "missing", "extra", "wrong")
    chars = np.array([".", "#", "-", "+", "x"])
    rows, cols = np.arange(0, height, block), np.arange(0, width, block)
    counts = np.stack(
        [np.add.reduceat(np.add.reduceat(parts[k].astype(np.int64), rows, axis=0), cols, axis=1) for k in keys]
    )
    errors = counts[2:]
    has_error = errors.sum(axis=0) > 0
    # argmax takes the first of equal counts: '.' before '#', '-' before '+' before 'x'
    choice = np.where(has_error, 2 + errors.argmax(axis=0), counts[:2].argmax(axis=0))
    picture = chars[choice]
    scale = "1 char = 1 px" if block == 1 else f"1 char = {block}x{block} px"
    header = (
        "legend: '.' both background, '#' both foreground, '-' missing (expected only), "
        f"'+' extra (got only), 'x' different label; {scale}"
    )
    return "\n".join([header] + ["".join(row) for row in picture])
