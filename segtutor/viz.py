"""Pictures of segmentations: overlays, contours, grids, histograms, diffs.

Every plotting function draws with matplotlib's object API and returns what it
drew on (an ``Axes`` or a ``Figure``); none calls ``plt.show()``, so in a
notebook the figure appears once, at the end of the cell. Pass ``ax=`` to draw
into a panel of your own figure.

Classes always get the same colour, from the fixed :data:`PALETTE` (the
PASCAL VOC colours): 0 black, 1 dark red, 2 green, 3 olive, 4 navy, ...

matplotlib is imported on first use, so ``import segtutor.viz`` stays quick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from segtutor._checks import as_float, as_image, as_int, as_label_map, describe, same_shape

__all__ = [
    "PALETTE",
    "label_to_rgb",
    "overlay",
    "contour_overlay",
    "show_grid",
    "plot_histogram",
    "mask_diff",
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


#: Colour of each class id, uint8 of shape (256, 3): PASCAL VOC's colour map.
PALETTE = _voc_palette()
PALETTE.setflags(write=False)

# difference colours (Okabe-Ito, readable with colour-blindness)
_AGREE_BG = (0.25, 0.25, 0.25)
_AGREE_FG = (0.80, 0.80, 0.80)
_MISSING = (0.90, 0.62, 0.00)  # orange
_EXTRA = (0.00, 0.45, 0.70)  # blue
_WRONG = (0.80, 0.47, 0.65)  # reddish purple


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


def _as_rgb_float(image: np.ndarray) -> np.ndarray:
    """Any grayscale or colour image as float RGB in [0, 1], for display."""
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
    >>> rgb[0, 1].tolist()  # class 1 is dark red
    [128, 0, 0]
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
    class is tinted with its :data:`PALETTE` colour, so a class has the same
    colour in every plot.

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
    rgb = _as_rgb_float(image)
    tinted = labels > 0
    blended = rgb.copy()
    blended[tinted] = (1 - alpha) * rgb[tinted] + alpha * colors[tinted]
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


def contour_overlay(image, masks_or_labels, *, ax=None, colors=None, linewidth=1.5, title=None):
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
    ax.imshow(_as_rgb_float(image), interpolation="nearest")
    height, width = image.shape[:2]
    # pad so that regions touching the border get a closed outline
    ys = np.arange(-1, height + 1)
    xs = np.arange(-1, width + 1)
    for mask, color in zip(masks, colors):
        if not mask.any():
            continue
        padded = np.pad(mask.astype(float), 1)
        ax.contour(xs, ys, padded, levels=[0.5], colors=[color], linewidths=linewidth)
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


def show_grid(images, titles=None, *, ncols=4, cmap=None, size=3.0, suptitle=None):
    """Show images side by side in a grid.

    Label maps (2-D integer arrays with few values below 64) are coloured with
    :data:`PALETTE`; other 2-D arrays are shown in grey (``cmap``), with
    uint8 on 0..255 and floats within [0, 1] on 0..1, so a dark image looks
    dark; colour images as they are.

    Parameters
    ----------
    images : sequence of arrays, dict, or array (N, H, W) / (N, H, W, C)
        The images; a dict maps titles to images.
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
            ax.imshow(_as_rgb_float(image), interpolation="nearest")
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
    image : array-like, shape (H, W) or (H, W, 3)
        A colour image gets one histogram per channel.
    thresholds : float, sequence of float, or dict
        Where to draw vertical lines; a dict maps a label to each value
        (``{"Otsu": 0.42}``).
    nbins : int
        Number of bins (>= 2).
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
    nbins = as_int(nbins, "nbins", minimum=2)
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
    edges = np.linspace(lo, hi, nbins + 1)
    if image.ndim == 2 or image.shape[2] == 1:
        counts, _ = np.histogram(data, bins=edges)
        ax.stairs(counts, edges, fill=True, color="0.45")
    else:
        for c, name in zip(range(min(image.shape[2], 3)), ("red", "green", "blue")):
            counts, _ = np.histogram(data[..., c], bins=edges)
            ax.stairs(counts, edges, color=f"tab:{name}", label=name, alpha=0.8)
    cycle = ["tab:red", "tab:orange", "tab:purple", "tab:green", "tab:blue", "tab:brown"]
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
