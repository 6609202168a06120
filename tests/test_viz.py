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
    VOC_PALETTE,
    ascii_mask_diff,
    contour_overlay,
    feature_scatter,
    label_to_rgb,
    mask_diff,
    overlay,
    plot_histogram,
    show_clusters,
    show_grid,
    show_instances,
    show_labels,
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


def test_palette_is_okabe_ito_then_pascal_voc():
    assert PALETTE.shape == (256, 3) and PALETTE.dtype == np.uint8
    assert PALETTE[0].tolist() == [0, 0, 0]  # background black
    okabe_ito = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in viz.OKABE_ITO}
    assert len(okabe_ito) == 8 and {tuple(c) for c in PALETTE[:8].tolist()} == okabe_ito
    # the object classes of the synthetic scenes get hues like their objects: red, green, blue
    for label, channel in ((1, 0), (2, 1), (3, 2)):
        assert int(np.argmax(PALETTE[label])) == channel, label
    # from 8 on, the PASCAL VOC colour map (bits of the id spread over R, G, B)
    assert VOC_PALETTE[1].tolist() == [128, 0, 0] and VOC_PALETTE[3].tolist() == [128, 128, 0]
    np.testing.assert_array_equal(PALETTE[8:], VOC_PALETTE[8:])
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


# --------------------------------------------------------------------------- classes, instances, clusters


def test_overlay_keeps_the_class_hue_over_an_object_of_another_colour():
    # a slate-blue triangle under the (blue) triangle label used to turn grey when the label
    # colour was mixed with the object's own colour; now it is mixed with its brightness
    blue_object = np.zeros((4, 4, 3))
    blue_object[...] = (0.40, 0.47, 0.76)
    labels = np.full((4, 4), 1)  # class 1 is vermillion: its hue must survive on a blue object
    rendered = _render_full(lambda ax: overlay(blue_object, labels, alpha=0.6, ax=ax, legend=False), (4, 4))
    gray = 0.2125 * 0.40 + 0.7154 * 0.47 + 0.0721 * 0.76
    expected = 0.4 * gray * 255 + 0.6 * PALETTE[1].astype(float)
    assert np.abs(rendered - expected).max() <= 2
    r, g, b = rendered[0, 0]
    assert r > g > b  # still red-orange, not grey


def test_show_labels_legend_names_every_class_present_in_its_colour():
    image, labels = make_scene(seed=0)
    ax = show_labels(labels, class_names=CLASS_NAMES, title="classes")
    assert _legend_texts(ax) == list(CLASS_NAMES) and ax.get_title() == "classes"
    for patch, value in zip(ax.get_legend().get_patches(), range(4)):
        np.testing.assert_allclose(patch.get_facecolor()[:3], PALETTE[value] / 255)
    np.testing.assert_array_equal(ax.images[0].get_array(), label_to_rgb(labels))


def test_show_instances_uses_its_own_scheme_and_numbers_every_object():
    from segtutor.data import make_instance_scene

    scene = make_instance_scene(seed=2, touching=True, n_objects=6)
    ax = show_instances(scene["masks"])
    n = len(scene["masks"])
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(i) for i in range(1, n + 1))
    rgb = np.asarray(ax.images[0].get_array())
    colors = viz.instance_colors(n)
    for i, mask in enumerate(scene["masks"]):
        np.testing.assert_allclose(rgb[mask], np.broadcast_to(colors[i], rgb[mask].shape))
        x, y = next((t.get_position() for t in ax.texts if t.get_text() == str(i + 1)))
        assert mask[int(y), int(x)]  # the number sits on its object
    class_colours = PALETTE[:8] / 255
    assert np.min(np.abs(colors[:, None, :] - class_colours[None]).sum(axis=2)) > 0.05  # never a class colour
    np.testing.assert_allclose(rgb[~scene["masks"].any(axis=0)][0], viz._INSTANCE_BG)
    same = show_instances(np.argmax(np.concatenate([np.zeros((1,) + scene["masks"].shape[1:]), scene["masks"]]), 0))
    np.testing.assert_array_equal(same.images[0].get_array(), rgb)  # an id map draws the same


def test_instance_colours_of_consecutive_ids_are_far_apart():
    colors = viz.instance_colors(8)
    assert len({tuple(np.round(c, 6)) for c in colors}) == 8
    assert min(np.abs(colors[i] - colors[i + 1]).sum() for i in range(7)) > 0.3


def test_show_clusters_paints_each_cluster_with_its_mean_colour():
    rng = np.random.default_rng(3)
    image = rng.random((10, 12, 3))
    clusters = rng.integers(0, 3, (10, 12))
    ax = show_clusters(image, clusters, names={0: "a", 1: "b", 2: "c"})
    rgb = np.asarray(ax.images[0].get_array())
    for c in range(3):
        np.testing.assert_allclose(rgb[clusters == c], np.broadcast_to(image[clusters == c].mean(axis=0),
                                                                        rgb[clusters == c].shape))
    assert _legend_texts(ax) == [f"{n}: {int((clusters == c).sum())} px" for c, n in enumerate("abc")]
    uint8 = (image * 255).astype(np.uint8)
    np.testing.assert_allclose(viz.cluster_colors(uint8, clusters)[1], uint8[clusters == 1].mean(axis=0) / 255)


def test_feature_scatter_samples_each_class_and_counts_all_of_it():
    rng = np.random.default_rng(0)
    X = rng.random((1000, 3))
    labels = np.where(np.arange(1000) < 950, 0, 2)
    ax = feature_scatter(X, labels, dims=(0, 2), axis_names="RGB", class_names=CLASS_NAMES, max_per_class=100)
    assert _legend_texts(ax) == ["background (950 px)", "square (50 px)"]
    assert [len(c.get_offsets()) for c in ax.collections] == [100, 50]
    assert ax.get_xlabel() == "R" and ax.get_ylabel() == "B"
    np.testing.assert_allclose(ax.collections[1].get_facecolor()[0][:3], PALETTE[2] / 255)
    with pytest.raises(ValueError, match="one entry per sample"):
        feature_scatter(X, labels[:10])
    with pytest.raises(ValueError, match="dims must be <= 2"):
        feature_scatter(X, labels, dims=(0, 5))


def test_contour_overlay_marks_points():
    image = np.zeros((10, 10))
    ax = contour_overlay(image, np.eye(10, dtype=bool), points=[(2, 3), (7, 1)], points_label="seeds")
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [3, 1])
    np.testing.assert_array_equal(line.get_ydata(), [2, 7])
    assert "seeds" in _legend_texts(ax)


# --------------------------------------------------------------------------- unusual input


def test_show_grid_takes_one_rgb_image_as_one_panel():
    image, _ = make_scene(size=32, max_size=12, seed=0)
    fig = show_grid(image)  # used to become 32 panels, one per row
    assert len([ax for ax in fig.axes if ax.images]) == 1
    assert np.asarray(fig.axes[0].images[0].get_array()).shape == (32, 32, 3)


@pytest.mark.parametrize("channels", [2, 5])
def test_plot_histogram_refuses_channels_it_cannot_name(channels):
    with pytest.raises(ValueError, match=f"got {channels} channels"):
        plot_histogram(np.zeros((4, 4, channels)))


def test_plot_histogram_drops_alpha_and_bins_integers_by_value():
    rgba = np.random.default_rng(0).integers(0, 256, (8, 8, 4)).astype(np.uint8)
    assert len(plot_histogram(rgba).patches) == 3
    image = np.array([[3, 3, 5, 9]], dtype=np.uint8)
    values, edges = plot_histogram(image).patches[0].get_data()[:2]
    np.testing.assert_array_equal(edges, np.arange(3, 11) - 0.5)  # one bin per value, none empty in between
    np.testing.assert_array_equal(values, [2, 0, 1, 0, 0, 0, 1])


def test_masked_arrays_are_refused():
    masked = np.ma.masked_array(np.zeros((3, 3)), mask=np.eye(3, dtype=bool))
    with pytest.raises(TypeError, match="masked array with 3 masked value"):
        show_grid([masked])


# --------------------------------------------------------------------------- pictures of a failed check


def test_diff_figure_one_colour_scale_frames_and_a_legend():
    expected = np.zeros((6, 7), dtype=np.int64)
    expected[1:4, 1:4], expected[4:, 4:] = 1, 3
    got = expected.copy()
    got[1, 1], got[0, 6] = 2, 3
    fig = viz.diff_figure(expected, got, title="case 'x'")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["expected", "yours", "difference"] and fig.get_suptitle() == "case 'x'"
    left, right = (np.asarray(ax.images[0].get_array()) for ax in axes[:2])
    same = expected == got
    np.testing.assert_allclose(left[same], right[same])  # one colour per value, in both panels
    np.testing.assert_allclose(right[0, 6], PALETTE[3] / 255)
    assert _legend_texts(axes[1]) == ["label 0", "label 1", "label 2", "label 3"]
    assert all(ax.axison and ax.spines["left"].get_visible() for ax in axes)  # framed
    mask = expected > 0
    fig = viz.diff_figure(mask, ~mask)
    assert _legend_texts(fig.axes[1]) == ["False (background)", "True (foreground)"]
    with pytest.raises(ValueError, match="NaN"):
        viz.diff_figure(expected, np.full((6, 7), np.nan))


def _pictures_of_a_failed_check(monkeypatch, exercise_id, func):
    import IPython

    from segtutor import exercises

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # as in a notebook
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    plt.close("all")
    with pytest.raises(exercises.ExerciseFailed):
        exercises.check(exercise_id, func)
    return [plt.figure(n) for n in plt.get_fignums()]


def test_a_failed_check_draws_masks_and_label_maps_only(monkeypatch):
    figures = _pictures_of_a_failed_check(monkeypatch, "classical.region_grow",
                                          lambda image, seed, tolerance: np.zeros(np.shape(image)[:2], bool))
    assert len(figures) == 1 and [ax.get_title() for ax in figures[0].axes] == ["expected", "yours", "difference"]
    figures = _pictures_of_a_failed_check(monkeypatch, "classical.multi_threshold",
                                          lambda image, thresholds: np.digitize(image, thresholds))
    assert len(figures) == 1 and "label 1" in _legend_texts(figures[0].axes[1])
    # not a picture of a segmentation: features (an (n, C) float array), a number, a NaN
    assert _pictures_of_a_failed_check(monkeypatch, "cluster.pixel_features",
                                       lambda image, use_position=False, position_weight=1.0:
                                       np.zeros((np.shape(image)[0] * np.shape(image)[1], 5))) == []
    assert _pictures_of_a_failed_check(monkeypatch, "metrics.iou", lambda a, b: float("nan")) == []
    assert _pictures_of_a_failed_check(monkeypatch, "classical.region_grow",
                                       lambda image, seed, tolerance: np.full(np.shape(image)[:2], np.nan)) == []
