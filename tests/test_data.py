"""Tests of segtutor.data: synthetic scenes with ground truth, and sample images."""

import doctest
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi

import segtutor.data as data
from segtutor.data import (
    CLASS_COLORS,
    CLASS_NAMES,
    NUM_CLASSES,
    SAMPLE_IMAGES,
    make_gray_scene,
    make_instance_scene,
    make_scene,
    make_scenes,
    sample_image,
)

SEEDS = range(6)


def _touching_pairs(masks):
    """Pairs of masks that overlap or are 4-neighbours."""
    pairs = []
    for i in range(len(masks)):
        grown = ndi.binary_dilation(masks[i])
        pairs += [(i, j) for j in range(i + 1, len(masks)) if (grown & masks[j]).any()]
    return pairs


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


# --------------------------------------------------------------------------- constants


def test_class_constants():
    assert CLASS_NAMES == ("background", "circle", "square", "triangle")
    assert NUM_CLASSES == 4 == len(CLASS_COLORS)
    colors = np.asarray(CLASS_COLORS)
    assert colors.shape == (4, 3) and colors.min() >= 0 and colors.max() <= 1
    # the base colours are distinct
    assert len({tuple(c) for c in colors}) == 4


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_scene_and_different_seeds_differ():
    a_img, a_lab = make_scene(seed=3, texture=0.1)
    b_img, b_lab = make_scene(seed=3, texture=0.1)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    c_img, c_lab = make_scene(seed=4, texture=0.1)
    assert not np.array_equal(a_img, c_img)
    assert not np.array_equal(a_lab, c_lab)

    g1, m1 = make_gray_scene(seed=3, gradient=0.3)
    g2, m2 = make_gray_scene(seed=3, gradient=0.3)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(m1, m2)
    assert not np.array_equal(m1, make_gray_scene(seed=4)[1])


def test_make_scenes_scene_i_independent_of_n():
    images3, labels3 = make_scenes(3, size=32, max_size=12, seed=5)
    images5, labels5 = make_scenes(5, size=32, max_size=12, seed=5)
    np.testing.assert_array_equal(images3, images5[:3])
    np.testing.assert_array_equal(labels3, labels5[:3])
    # scene i is make_scene with seed (seed, i), as documented
    image, labels = make_scene(32, max_size=12, seed=(5, 2))
    np.testing.assert_array_equal(images5[2], image)
    np.testing.assert_array_equal(labels5[2], labels)
    # the scenes of a batch differ from one another and from another batch
    assert not np.array_equal(labels5[0], labels5[1])
    assert not np.array_equal(make_scenes(1, size=32, max_size=12, seed=6)[1][0], labels5[0])


def test_make_scenes_shapes_and_kwargs():
    images, labels = make_scenes(2, size=(24, 40), n_objects=2, max_size=10, noise=0.0)
    assert images.shape == (2, 24, 40, 3) and images.dtype == np.float32
    assert labels.shape == (2, 24, 40) and labels.dtype == np.int64


def test_instance_scene_matches_make_scene():
    for seed in SEEDS:
        for touching in (False, True):
            image, labels = make_scene(seed=seed, touching=touching, texture=0.1)
            scene = make_instance_scene(seed=seed, touching=touching, texture=0.1)
            np.testing.assert_array_equal(scene["image"], image)
            np.testing.assert_array_equal(scene["semantic"], labels)


def test_noise_texture_and_jitter_keep_the_layout():
    _, labels = make_scene(seed=2, noise=0.0)
    for kwargs in ({"noise": 0.2}, {"texture": 0.3}, {"color_jitter": 0.0}):
        np.testing.assert_array_equal(make_scene(seed=2, **kwargs)[1], labels)


# --------------------------------------------------------------------------- contracts


@pytest.mark.parametrize("size, shape", [(64, (64, 64)), (8, (8, 8)), ((40, 72), (40, 72))])
def test_scene_dtype_shape_range(size, shape):
    image, labels = make_scene(size, max_size=min(shape), noise=0.3, texture=0.5, seed=1)
    assert image.shape == shape + (3,) and image.dtype == np.float32
    assert labels.shape == shape and labels.dtype == np.int64
    assert image.min() >= 0 and image.max() <= 1
    assert set(np.unique(labels)) <= {0, 1, 2, 3}


def test_every_class_drawn_and_background_majority():
    for seed in SEEDS:
        _, labels = make_scene(seed=seed)
        assert set(np.unique(labels)) == {0, 1, 2, 3}
        counts = np.bincount(labels.ravel(), minlength=4)
        assert counts[0] > labels.size / 2
    _, labels = make_scene(seed=0, classes=(2,))
    assert set(np.unique(labels)) == {0, 2}
    _, labels = make_scene(seed=0, n_objects=0)
    assert not labels.any()


def test_pixels_match_labels_without_noise():
    """With no noise or texture, each object is one flat colour near its class colour."""
    jitter = 0.1
    for seed in SEEDS:
        scene = make_instance_scene(seed=seed, noise=0.0, texture=0.0, color_jitter=jitter)
        image = scene["image"].astype(float)
        for mask, label in zip(scene["masks"], scene["labels"]):
            pixels = image[mask]
            assert np.ptp(pixels, axis=0).max() < 1e-6
            assert np.abs(pixels[0] - CLASS_COLORS[label]).max() <= jitter + 1e-6
        # the background varies smoothly: neighbouring background pixels are
        # much closer than the typical jump across an object's edge
        background = scene["semantic"] == 0
        both = background[:, 1:] & background[:, :-1]
        steps = np.abs(np.diff(image, axis=1)).max(axis=2)
        assert steps[both].max() < 0.05
        edges = ~both & (background[:, 1:] | background[:, :-1])
        assert np.median(steps[edges]) > 0.05
    image, labels = make_scene(seed=0, noise=0.0, color_jitter=0.0)
    for label in (1, 2, 3):
        np.testing.assert_allclose(image[labels == label], np.tile(CLASS_COLORS[label], ((labels == label).sum(), 1)), atol=1e-6)


def test_noise_and_texture_amounts():
    clean, labels = make_scene(seed=1, noise=0.0)
    noisy, _ = make_scene(seed=1, noise=0.1)
    assert 0.08 < np.std(noisy.astype(float) - clean) < 0.11
    # texture: a pattern of amplitude `texture` on every object and on the background
    amplitude = 0.2
    scene = make_instance_scene(seed=1, noise=0.0, texture=amplitude)
    pattern = scene["image"].astype(float) - clean
    regions = list(scene["masks"]) + [scene["semantic"] == 0]
    for region in regions:
        values = pattern[region]
        assert np.abs(values).max() <= amplitude + 1e-6
        assert np.ptp(values) > amplitude  # really there, not a flat offset


def test_object_sizes_follow_parameters():
    """A circle of diameter d covers about pi d^2 / 4 pixels; a square of side d about d^2."""
    for seed in SEEDS:
        circles = make_instance_scene(size=96, n_objects=3, classes=(1,), min_size=12, max_size=12, seed=seed)
        for mask in circles["masks"]:
            assert abs(mask.sum() - np.pi * 36) < 0.15 * np.pi * 36
        squares = make_instance_scene(size=96, n_objects=3, classes=(2,), min_size=12, max_size=12, seed=seed)
        for mask in squares["masks"]:
            assert abs(mask.sum() - 144) < 0.2 * 144


def test_instance_masks_boxes_labels():
    for seed in SEEDS:
        for touching in (False, True):
            scene = make_instance_scene(seed=seed, touching=touching, n_objects=5)
            masks, boxes, labels = scene["masks"], scene["boxes"], scene["labels"]
            n = len(labels)
            assert masks.shape == (n, 64, 64) and masks.dtype == bool
            assert boxes.shape == (n, 4) and boxes.dtype == np.float32
            assert labels.dtype == np.int64 and set(labels.tolist()) <= {1, 2, 3}
            assert scene["semantic"].dtype == np.int64
            assert masks.any(axis=(1, 2)).all()  # no empty mask
            assert masks.sum(axis=0).max() <= 1  # visible parts never overlap
            np.testing.assert_array_equal(masks.any(axis=0), scene["semantic"] > 0)
            for mask, box, label in zip(masks, boxes, labels):
                assert (scene["semantic"][mask] == label).all()
                ys, xs = np.nonzero(mask)
                np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                x0, y0, x1, y1 = box.astype(int)
                assert mask[y0:y1, x0:x1].sum() == mask.sum()


def test_instance_scene_without_objects():
    scene = make_instance_scene(n_objects=0, size=16, max_size=8)
    assert scene["masks"].shape == (0, 16, 16)
    assert scene["boxes"].shape == (0, 4)
    assert scene["labels"].shape == (0,)
    assert not scene["semantic"].any()


def test_touching_produces_touching_pairs():
    found = [bool(_touching_pairs(make_instance_scene(seed=s, touching=True)["masks"])) for s in range(4)]
    assert any(found)


def test_not_touching_keeps_objects_apart_when_there_is_room():
    for seed in SEEDS:
        scene = make_instance_scene(size=128, n_objects=3, max_size=16, seed=seed)
        assert _touching_pairs(scene["masks"]) == []
        for mask in scene["masks"]:
            assert ndi.label(mask)[1] == 1


@pytest.mark.parametrize("kwargs", [{}, {"size": 96, "n_objects": 6}, {"size": 48, "max_size": 16, "min_size": 6}])
def test_every_object_is_drawn_as_one_4_connected_region(kwargs):
    # A triangle's tip pixel used to touch the rest of its triangle only at a corner, so one
    # object was two 4-connected regions, and count_objects counted it twice.
    from skimage import measure

    from segtutor import classical

    checked = 0
    for seed in range(120):
        scene = make_instance_scene(seed=seed, **kwargs)
        if _touching_pairs(scene["masks"]):
            continue  # overlapping objects: an occluded one may be cut in two, as documented
        checked += 1
        for mask in scene["masks"]:
            assert measure.label(mask, connectivity=1).max() == 1, (seed, kwargs)
        foreground = (scene["semantic"] > 0).astype(float)
        assert classical.count_objects(foreground, threshold=0.5) == len(scene["masks"]), (seed, kwargs)
    assert checked >= 20


# --------------------------------------------------------------------------- gray scenes


def test_gray_scene_contract():
    image, mask = make_gray_scene(size=(50, 70), n_objects=3, seed=2, noise=0.2, gradient=1.0)
    assert image.shape == (50, 70) and image.dtype == np.float64
    assert mask.shape == (50, 70) and mask.dtype == bool
    assert image.min() >= 0 and image.max() <= 1
    assert mask.any() and not mask.all()
    assert not make_gray_scene(n_objects=0)[1].any()
    clean, mask = make_gray_scene(seed=1, noise=0.0)
    assert clean[mask].min() > clean[~mask].max()  # blobs are brighter


def test_gradient_defeats_global_threshold_but_not_local():
    from skimage.filters import threshold_local, threshold_otsu

    for seed in range(3):
        image, mask = make_gray_scene(seed=seed)
        assert _iou(image > threshold_otsu(image), mask) > 0.9  # even lighting: Otsu works

        image, mask = make_gray_scene(seed=seed, gradient=0.6)
        global_iou = _iou(image > threshold_otsu(image), mask)
        local_iou = _iou(image > threshold_local(image, 51, offset=-0.1), mask)
        assert local_iou > global_iou + 0.2
        assert local_iou > 0.8
        # the ramp really runs from left to right
        left, right = image[:, :20][~mask[:, :20]], image[:, -20:][~mask[:, -20:]]
        assert right.mean() - left.mean() > 0.4


# --------------------------------------------------------------------------- sample images


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_every_sample_image_loads(name):
    image = sample_image(name)
    assert image.dtype == np.uint8
    assert image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
    assert min(image.shape[:2]) >= 64
    gray = sample_image(name, as_gray=True)
    assert gray.dtype == np.float64 and gray.shape == image.shape[:2]
    assert gray.min() >= 0 and gray.max() <= 1


def test_sample_images_list():
    assert "china" in SAMPLE_IMAGES and "flower" in SAMPLE_IMAGES and "coins" in SAMPLE_IMAGES
    assert len(set(SAMPLE_IMAGES)) == len(SAMPLE_IMAGES)
    # a fresh array each time: changing it does not change the next one
    a = sample_image("coins")
    a[:] = 0
    assert sample_image("coins").any()


def test_unknown_sample_image():
    with pytest.raises(ValueError, match="unknown sample image 'lena'.*coins"):
        sample_image("lena")
    with pytest.raises(TypeError):
        sample_image(3)
    with pytest.raises(TypeError):
        sample_image("coins", as_gray="yes")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"size": 7}, ValueError, "size must be >= 8"),
        ({"size": (64, 4)}, ValueError, "width"),
        ({"size": (64, 64, 3)}, ValueError, "pair"),
        ({"size": 64.0}, TypeError, "size"),
        ({"n_objects": -1}, ValueError, "n_objects"),
        ({"n_objects": 2.5}, TypeError, "n_objects"),
        ({"classes": (1, 4)}, ValueError, "subset"),
        ({"classes": (0,)}, ValueError, "subset"),
        ({"classes": ()}, ValueError, "classes"),
        ({"classes": ("circle",)}, TypeError, "classes"),
        ({"min_size": 12, "max_size": 10}, ValueError, "min_size must be <= max_size"),
        ({"min_size": 1}, ValueError, "min_size"),
        ({"max_size": 65}, ValueError, "max_size"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"noise": float("nan")}, ValueError, "noise"),
        ({"texture": -1}, ValueError, "texture"),
        ({"color_jitter": 0.8}, ValueError, "color_jitter"),
        ({"touching": "yes"}, TypeError, "touching"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": True}, TypeError, "seed"),
        ({"size": 10**30}, ValueError, "size must be <= 4096"),
        ({"size": (64, 2**62)}, ValueError, r"size\[1\] \(width\) must be <= 4096"),
        ({"n_objects": 10**12}, ValueError, "n_objects must be <= 1000"),
        ({"n_objects": True}, TypeError, "n_objects"),
    ],
)
def test_scene_parameter_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_scene(**kwargs)
    with pytest.raises(error, match=match):
        make_instance_scene(**kwargs)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"size": 4}, ValueError),
        ({"n_objects": -2}, ValueError),
        ({"contrast": 1.5}, ValueError),
        ({"contrast": -0.1}, ValueError),
        ({"noise": -0.01}, ValueError),
        ({"gradient": -0.2}, ValueError),
        ({"gradient": 2.0}, ValueError),
        ({"seed": "a"}, TypeError),
        ({"size": 2**40}, ValueError),
        ({"n_objects": 10**15}, ValueError),
    ],
)
def test_gray_scene_parameter_errors(kwargs, error):
    with pytest.raises(error):
        make_gray_scene(**kwargs)


def test_make_scenes_errors():
    with pytest.raises(ValueError, match="n must be >= 1"):
        make_scenes(0)
    with pytest.raises(TypeError, match="seed"):
        make_scenes(2, seed=(1, 2))
    with pytest.raises(ValueError, match="noise"):
        make_scenes(2, noise=-1)
    with pytest.raises(TypeError):
        make_scenes(2, colour=3)  # unknown keyword
    with pytest.raises(ValueError, match="n=1000000000000 scenes of 64x64"):
        make_scenes(10**12)  # refused at once, before drawing anything


# --------------------------------------------------------------------------- module


def test_doctests():
    assert doctest.testmod(data).failed == 0


def test_import_is_cheap():
    code = (
        "import sys, segtutor.data; "
        "print(sorted(m for m in ('skimage', 'sklearn', 'matplotlib', 'torch', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_all_names_exist():
    for name in data.__all__:
        assert hasattr(data, name)


def test_mask_boxes_are_torchvisions_boxes_with_exclusive_ends():
    import torch
    from torchvision.ops import masks_to_boxes

    scene = data.make_instance_scene(size=80, n_objects=6, seed=7)
    boxes = data.mask_boxes(scene["masks"])
    expected = masks_to_boxes(torch.from_numpy(scene["masks"])).numpy() + [0, 0, 1, 1]
    np.testing.assert_array_equal(boxes, expected)
    np.testing.assert_array_equal(scene["boxes"], boxes)
    with pytest.raises(ValueError, match="mask 1 is empty"):
        data.mask_boxes(np.stack([scene["masks"][0], np.zeros_like(scene["masks"][0])]))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        data.mask_boxes(scene["masks"][0])
