"""Tests of segtutor.viz: palette, overlays, contours, grids, histograms, diffs."""

import matplotlib

matplotlib.use("Agg")

import doctest  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import segtutor.viz as viz  # noqa: E402
from segtutor.data import CLASS_NAMES, make_gray_scene, make_scene  # noqa: E402
from segtutor.viz import (  # noqa: E402
    PALETTE,
    ascii_mask_diff,
    contour_overlay,
    label_to_rgb,
    mask_diff,
    overlay,
    plot_histogram,
    show_grid,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _render_full(draw, shape, scale=4):
    """Draw into an axes filling a figure of exactly ``scale`` px per image pixel; return RGB."""
    height, width = shape
    fig = plt.figure(figsize=(width * scale / 100, height * scale / 100), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    draw(ax)
    fig.canvas.draw()
    buffer = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    assert buffer.shape[:2] == (height * scale, width * scale)
    # the centre of each image pixel's block
    return buffer[scale // 2 :: scale, scale // 2 :: scale]


def _legend_texts(ax):
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def _diff_reference(expected, got):
    """Independent per-pixel classification: the character the text diff should show."""
    out = np.full(expected.shape, "?")
    for i in range(expected.shape[0]):
        for j in range(expected.shape[1]):
            e, g = expected[i, j], got[i, j]
            if e == g:
                out[i, j] = "#" if e else "."
            elif e and not g:
                out[i, j] = "-"
            elif g and not e:
                out[i, j] = "+"
            else:
                out[i, j] = "x"
    return out


# --------------------------------------------------------------------------- palette


def test_palette_is_pascal_voc():
    assert PALETTE.shape == (256, 3) and PALETTE.dtype == np.uint8
    assert PALETTE[0].tolist() == [0, 0, 0]  # background black
    assert PALETTE[1].tolist() == [128, 0, 0]  # dark red
    assert PALETTE[2].tolist() == [0, 128, 0]  # green
    assert PALETTE[3].tolist() == [128, 128, 0]
    assert PALETTE[4].tolist() == [0, 0, 128]
    assert len({tuple(c) for c in PALETTE}) == 256  # every class its own colour
    with pytest.raises(ValueError):
        PALETTE[0, 0] = 1  # read-only, so nobody changes the colours by accident


def test_label_to_rgb_uses_palette():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 21, (7, 9))
    rgb = label_to_rgb(labels)
    assert rgb.dtype == np.uint8 and rgb.shape == (7, 9, 3)
    for i in range(7):
        for j in range(9):
            assert rgb[i, j].tolist() == PALETTE[labels[i, j]].tolist()
    custom = [[0, 0, 0], [255, 255, 255]]
    np.testing.assert_array_equal(label_to_rgb(np.eye(3, dtype=bool), custom)[..., 0], np.eye(3) * 255)
    np.testing.assert_array_equal(label_to_rgb([[1]], [[0, 0, 0], [1.0, 0.5, 0.0]])[0, 0], [255, 128, 0])


def test_label_to_rgb_errors():
    with pytest.raises(ValueError, match="palette has only 2"):
        label_to_rgb([[0, 2]], [[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match=">= 0"):
        label_to_rgb([[0, -1]])
    with pytest.raises(TypeError):
        label_to_rgb([[0.5, 1]])
    with pytest.raises(ValueError, match=r"\(K, 3\)"):
        label_to_rgb([[0]], np.zeros((4, 2)))
    with pytest.raises(ValueError):
        label_to_rgb(np.zeros((2, 2, 2), int))


# --------------------------------------------------------------------------- overlay


def test_overlay_changes_pixels_exactly_where_labels_are_nonzero():
    gray = np.full((12, 16), 0.5)
    labels = np.zeros((12, 16), int)
    labels[2:6, 3:9] = 1
    labels[7:11, 10:15] = 2
    alpha = 0.6
    rendered = _render_full(lambda ax: overlay(gray, labels, alpha=alpha, ax=ax, legend=False), gray.shape)
    base = round(0.5 * 255)
    # background pixels show the image unchanged
    assert np.abs(rendered[labels == 0] - base).max() <= 1
    # labelled pixels are blended with the class colour
    for value in (1, 2):
        expected = (1 - alpha) * 0.5 * 255 + alpha * PALETTE[value].astype(float)
        assert np.abs(rendered[labels == value] - expected).max() <= 2
        assert np.abs(rendered[labels == value] - base).max() > 20


def test_overlay_same_class_same_colour_across_plots():
    a = _render_full(lambda ax: overlay(np.zeros((4, 4)), np.full((4, 4), 3), ax=ax, legend=False), (4, 4))
    b_labels = np.array([[0, 3, 3, 3]] * 4)
    b = _render_full(lambda ax: overlay(np.zeros((4, 4)), b_labels, ax=ax, legend=False), (4, 4))
    np.testing.assert_array_equal(a[:, 1:], b[:, 1:])


def test_overlay_returns_axes_and_legend_names_classes_present():
    image, labels = make_scene(seed=0, classes=(1, 3))
    ax = overlay(image, labels, class_names=CLASS_NAMES, title="scene")
    assert isinstance(ax, Axes)
    assert ax.get_title() == "scene"
    present = [int(v) for v in np.unique(labels) if v > 0]
    assert present == [1, 3]
    assert _legend_texts(ax) == [CLASS_NAMES[v] for v in present]
    # legend patch colours are the palette colours
    patches = ax.get_legend().get_patches()
    for patch, value in zip(patches, present):
        np.testing.assert_allclose(patch.get_facecolor()[:3], PALETTE[value] / 255)
    # default names, dict names, no legend
    assert _legend_texts(overlay(image, labels)) == ["class 1", "class 3"]
    assert _legend_texts(overlay(image, labels, class_names={1: "disc"})) == ["disc", "class 3"]
    assert overlay(image, labels, legend=False).get_legend() is None


def test_overlay_draws_into_given_axes_and_accepts_uint8_gray():
    fig, (ax1, ax2) = plt.subplots(1, 2)
    image = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    out = overlay(image, np.eye(8, dtype=int), ax=ax2)
    assert out is ax2 and not ax1.images and len(ax2.images) == 1


def test_overlay_errors():
    image = np.zeros((8, 8, 3))
    with pytest.raises(ValueError, match="same shape"):
        overlay(image, np.zeros((8, 9), int))
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, np.zeros((8, 8), int), alpha=1.5)
    with pytest.raises(TypeError):
        overlay(image, np.full((8, 8), 0.5))
    with pytest.raises(TypeError, match="Axes"):
        overlay(image, np.zeros((8, 8), int), ax="left")
    with pytest.raises(ValueError, match="NaN"):
        overlay(np.full((8, 8), np.nan), np.zeros((8, 8), int))
    with pytest.raises(TypeError, match="class_names"):
        overlay(image, np.zeros((8, 8), int), class_names="abc")


# --------------------------------------------------------------------------- contours


def test_contour_overlay_outlines_each_region_on_its_boundary():
    labels = np.zeros((10, 12), int)
    labels[2:6, 3:8] = 1  # rows 2..5, columns 3..7
    labels[0:4, 9:12] = 2  # touches the top and right borders
    ax = contour_overlay(np.zeros((10, 12)), labels, title="outlines")
    assert isinstance(ax, Axes) and ax.get_title() == "outlines"
    assert len(ax.collections) == 2
    first = np.concatenate([p.vertices for p in ax.collections[0].get_paths()])
    # the outline runs between the region's pixels and their neighbours
    assert first[:, 0].min() >= 2 and first[:, 0].max() <= 8
    assert first[:, 1].min() >= 1 and first[:, 1].max() <= 6
    second = np.concatenate([p.vertices for p in ax.collections[1].get_paths()])
    assert second[:, 0].max() > 11 and second[:, 1].min() < 0  # closed along the border
    # default colours come from the palette
    np.testing.assert_allclose(ax.collections[0].get_edgecolor()[0][:3], PALETTE[1] / 255)


def test_contour_overlay_with_mask_stack_and_colors():
    masks = np.zeros((3, 10, 10), bool)
    masks[0, 1:4, 1:4] = True
    masks[1, 5:9, 5:9] = True  # masks[2] empty: nothing to draw
    ax = contour_overlay(np.zeros((10, 10, 3)), masks, colors="yellow", linewidth=2)
    assert len(ax.collections) == 2
    np.testing.assert_allclose(ax.collections[0].get_edgecolor()[0][:3], (1, 1, 0))
    ax = contour_overlay(np.zeros((10, 10)), masks[:2], colors=["red", "blue"])
    np.testing.assert_allclose(ax.collections[1].get_edgecolor()[0][:3], (0, 0, 1))


def test_contour_overlay_errors():
    image = np.zeros((6, 6))
    with pytest.raises(ValueError, match="same shape"):
        contour_overlay(image, np.zeros((5, 6), int))
    with pytest.raises(ValueError, match="same shape"):
        contour_overlay(image, np.zeros((2, 6, 5), bool))
    with pytest.raises(ValueError, match="0/1"):
        contour_overlay(image, np.full((2, 6, 6), 2))
    with pytest.raises(ValueError, match="colors has 1"):
        contour_overlay(image, np.eye(6, dtype=int) + np.eye(6, k=2, dtype=int) * 2, colors=["red"])
    with pytest.raises(ValueError):
        contour_overlay(image, np.zeros((1, 1, 6, 6), int))


# --------------------------------------------------------------------------- grid


def test_show_grid_layout_and_automatic_display():
    image, labels = make_scene(seed=1)
    gray, mask = make_gray_scene(seed=1)
    fig = show_grid([image, labels, gray, mask, gray], ["rgb", "labels", "gray", "mask", "again"], ncols=3,
                    suptitle="all")
    assert isinstance(fig, Figure)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5 and len(fig.axes) == 6  # 2 rows of 3, last panel empty
    assert all(not ax.axison for ax in fig.axes)
    assert [ax.get_title() for ax in shown] == ["rgb", "labels", "gray", "mask", "again"]
    assert fig.get_suptitle() == "all"
    # the label map is coloured with the palette, grayscale uses the gray colour map
    np.testing.assert_array_equal(np.asarray(shown[1].images[0].get_array()), label_to_rgb(labels))
    assert shown[2].images[0].get_cmap().name == "gray"
    assert shown[2].images[0].get_clim() == (0, 1)
    # a uint8 image with many grey levels is not a label map
    coins = (np.arange(100 * 100) % 256).astype(np.uint8).reshape(100, 100)
    fig = show_grid([coins], cmap="viridis")
    assert fig.axes[0].images[0].get_cmap().name == "viridis"


def test_show_grid_accepts_dict_and_stack():
    images = np.random.default_rng(0).random((5, 6, 6))
    fig = show_grid({"a": images[0], "b": images[1]})
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    fig = show_grid(images, ncols=2, size=1.0)
    assert len([ax for ax in fig.axes if ax.images]) == 5
    np.testing.assert_allclose(fig.get_size_inches(), (2.0, 3.0))


def test_show_grid_errors():
    with pytest.raises(ValueError, match="empty"):
        show_grid([])
    with pytest.raises(ValueError, match="2 titles for 1 images"):
        show_grid([np.zeros((4, 4))], ["a", "b"])
    with pytest.raises(ValueError, match="stack"):
        show_grid(np.zeros((4, 4)))
    with pytest.raises(TypeError):
        show_grid("image.png")
    with pytest.raises(ValueError, match="ncols"):
        show_grid([np.zeros((4, 4))], ncols=0)
    with pytest.raises(ValueError, match=r"images\[1\]"):
        show_grid([np.zeros((4, 4)), np.zeros(4)])


# --------------------------------------------------------------------------- histogram


def test_plot_histogram_counts_and_threshold_lines():
    image, _ = make_gray_scene(seed=0)
    ax = plot_histogram(image, thresholds=(0.3, 0.6), nbins=64, title="hist")
    assert isinstance(ax, Axes) and ax.get_title() == "hist"
    step = ax.patches[0]
    values, edges = step.get_data()[:2]
    assert len(values) == 64 and values.sum() == image.size
    np.testing.assert_array_equal(values, np.histogram(image, bins=64)[0])
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [0.3, 0.6]
    texts = _legend_texts(ax)
    assert len(texts) == 2 and "0.3" in texts[0] and "0.6" in texts[1]
    ax = plot_histogram(image, thresholds={"Otsu": 0.45})
    assert _legend_texts(ax) == ["Otsu = 0.45"]
    ax = plot_histogram(image, thresholds=0.5)
    assert len(ax.get_lines()) == 1
    ax = plot_histogram(image)
    assert ax.get_lines() == [] and ax.get_legend() is None


def test_plot_histogram_colour_image_one_histogram_per_channel():
    image, _ = make_scene(seed=0)
    ax = plot_histogram(image, nbins=32)
    assert len(ax.patches) == 3
    for c, patch in enumerate(ax.patches):
        assert patch.get_data()[0].sum() == image[..., c].size


def test_plot_histogram_errors():
    with pytest.raises(ValueError, match="nbins"):
        plot_histogram(np.zeros((4, 4)), nbins=1)
    with pytest.raises(TypeError, match="thresholds"):
        plot_histogram(np.zeros((4, 4)), thresholds=["low"])
    with pytest.raises(ValueError):
        plot_histogram(np.zeros(4))


# --------------------------------------------------------------------------- diffs


def test_mask_diff_colours_and_counts():
    rng = np.random.default_rng(1)
    expected = rng.random((9, 11)) > 0.5
    got = expected.copy()
    got[rng.random((9, 11)) > 0.7] ^= True
    ax = mask_diff(expected, got, title="diff")
    assert isinstance(ax, Axes) and ax.get_title() == "diff"
    shown = np.asarray(ax.images[0].get_array())[..., :3]
    missing, extra = expected & ~got, got & ~expected
    # every pixel of one kind has one colour, and the kinds have different colours
    kinds = [expected & got, ~expected & ~got, missing, extra]
    colours = []
    for kind in kinds:
        assert kind.any()
        colour = shown[kind][0]
        assert (shown[kind] == colour).all()
        colours.append(tuple(colour))
    assert len(set(colours)) == 4
    texts = _legend_texts(ax)
    assert any(t.startswith("missing") and t.endswith(f"{missing.sum()} px") for t in texts)
    assert any(t.startswith("extra") and t.endswith(f"{extra.sum()} px") for t in texts)


def test_mask_diff_label_maps_mark_wrong_labels():
    expected = np.array([[0, 1, 2], [2, 2, 0]])
    got = np.array([[0, 1, 1], [2, 0, 3]])
    ax = mask_diff(expected, got)
    shown = np.asarray(ax.images[0].get_array())[..., :3]
    assert tuple(shown[0, 2]) not in {tuple(shown[0, 1]), tuple(shown[1, 1]), tuple(shown[1, 2])}
    assert any(t.startswith("different label") and t.endswith("1 px") for t in _legend_texts(ax))


def test_ascii_mask_diff_marks_exactly_the_differing_pixels():
    rng = np.random.default_rng(2)
    expected = rng.random((6, 7)) > 0.5
    got = rng.random((6, 7)) > 0.5
    lines = ascii_mask_diff(expected, got).splitlines()
    legend, grid = lines[0], np.array([list(row) for row in lines[1:]])
    for symbol in (".", "#", "-", "+"):
        assert f"'{symbol}'" in legend
    np.testing.assert_array_equal(grid, _diff_reference(expected, got))
    # label maps: same label agrees, different non-zero labels are 'x'
    expected = np.array([[0, 1, 2], [3, 3, 0]])
    got = np.array([[0, 1, 1], [0, 3, 2]])
    grid = np.array([list(row) for row in ascii_mask_diff(expected, got).splitlines()[1:]])
    np.testing.assert_array_equal(grid, _diff_reference(expected, got))


def test_ascii_mask_diff_downsamples_without_hiding_errors():
    expected = np.zeros((100, 60), bool)
    expected[20:70, 10:50] = True
    got = expected.copy()
    got[33, 27] = False  # one missing pixel inside
    got[90, 5] = True  # one extra pixel outside
    lines = ascii_mask_diff(expected, got, max_size=20).splitlines()
    grid = lines[1:]
    assert len(grid) <= 20 and max(len(row) for row in grid) <= 20
    text = "".join(grid)
    assert text.count("-") == 1 and text.count("+") == 1
    assert "#" in text and "." in text
    block = int(np.ceil(100 / 20))
    assert f"{block}x{block}" in lines[0]
    assert grid[33 // block][27 // block] == "-" and grid[90 // block][5 // block] == "+"
    same = "".join(ascii_mask_diff(expected, expected, max_size=20).splitlines()[1:])
    assert set(same) == {".", "#"}


def test_diff_errors():
    with pytest.raises(ValueError, match="same shape"):
        ascii_mask_diff(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="max_size"):
        ascii_mask_diff(np.zeros((3, 3)), np.zeros((3, 3)), max_size=0)
    with pytest.raises(ValueError, match="2-D"):
        ascii_mask_diff(np.zeros((3, 3, 3)), np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="same shape"):
        mask_diff(np.zeros((3, 3)), np.zeros((4, 3)))
    with pytest.raises(TypeError):
        mask_diff(np.array([["a"]]), np.zeros((1, 1)))


# --------------------------------------------------------------------------- module


def test_doctests():
    assert doctest.testmod(viz).failed == 0


def test_import_does_not_load_matplotlib():
    code = "import sys, segtutor.viz; print('matplotlib' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_all_names_exist():
    for name in viz.__all__:
        assert hasattr(viz, name)
