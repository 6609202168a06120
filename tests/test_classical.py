"""Tests of segtutor.classical against scikit-image and independent properties."""

import doctest
import warnings

import numpy as np
import pytest
from skimage import data, exposure, filters, measure, segmentation

import segtutor.classical as classical
from segtutor.classical import (
    apply_threshold,
    between_class_variance,
    count_objects,
    histogram,
    label_components,
    local_threshold,
    multi_threshold,
    multiotsu_thresholds,
    otsu_threshold,
    region_grow,
)

SEEDS = [0, 1, 2]


def random_image(kind, seed, shape=(37, 53)):
    rng = np.random.default_rng(seed)
    if kind == "uint8":
        return rng.integers(0, 256, shape).astype(np.uint8)
    if kind == "uint8-narrow":  # minimum well above 0
        return rng.integers(90, 140, shape).astype(np.uint8)
    if kind == "uint16":
        return rng.integers(0, 65536, shape).astype(np.uint16)
    if kind == "uint16-narrow":
        return rng.integers(1000, 1400, shape).astype(np.uint16)
    if kind == "int8":
        return rng.integers(-128, 128, shape).astype(np.int8)
    if kind == "int32":
        return rng.integers(-3000, 3000, shape).astype(np.int32)
    if kind == "float64":
        return rng.random(shape)
    if kind == "float64-normal":
        return rng.normal(5.0, 3.0, shape)
    if kind == "float32":
        return (rng.random(shape) * 100 - 50).astype(np.float32)
    if kind == "float-bimodal":
        return np.where(rng.random(shape) < 0.3, rng.normal(0.7, 0.05, shape), rng.normal(0.3, 0.1, shape))
    if kind == "float-coarse":  # few distinct values: many ties between splits
        return np.round(rng.random(shape) * 5) / 5
    if kind == "bool":
        return rng.random(shape) < 0.4
    raise ValueError(kind)


KINDS = ["uint8", "uint8-narrow", "uint16", "uint16-narrow", "int8", "int32", "float64",
         "float64-normal", "float32", "float-bimodal", "float-coarse", "bool"]


def sk_otsu(image, nbins=256):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns when np.histogram converts bool
        return filters.threshold_otsu(image, nbins)


def same_float(a, b):
    """Equal values, compared bit for bit as float64 (the value, not the type)."""
    return np.float64(a).tobytes() == np.float64(b).tobytes()


# --------------------------------------------------------------------------- histogram


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nbins", [256, 7])
def test_histogram_matches_skimage(kind, nbins):
    image = random_image(kind, 0)
    counts, centers = histogram(image, nbins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk_counts, sk_centers = exposure.histogram(image.ravel(), nbins, source_range="image")
    np.testing.assert_array_equal(counts, sk_counts)
    np.testing.assert_array_equal(centers, sk_centers)
    assert counts.sum() == image.size
    assert counts[0] > 0 and counts[-1] > 0


def test_histogram_integer_one_bin_per_value():
    image = np.array([[-2, 0, 0], [3, 3, 3]], dtype=np.int16)
    counts, centers = histogram(image, nbins=2)  # nbins is ignored for integers
    np.testing.assert_array_equal(centers, np.arange(-2, 4))
    np.testing.assert_array_equal(counts, [np.count_nonzero(image == v) for v in range(-2, 4)])


# --------------------------------------------------------------------------- Otsu


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_otsu_matches_skimage_bit_for_bit(kind, seed):
    image = random_image(kind, seed)
    for nbins in (256, 16, 2):
        ours = otsu_threshold(image, nbins)
        assert isinstance(ours, float)
        assert same_float(ours, sk_otsu(image, nbins)), (kind, seed, nbins)


@pytest.mark.parametrize("name", ["camera", "coins", "moon", "page"])
def test_otsu_real_images(name):
    image = getattr(data, name)()
    assert same_float(otsu_threshold(image), sk_otsu(image))
    as_float = image / 255.0
    assert same_float(otsu_threshold(as_float, 100), sk_otsu(as_float, 100))


@pytest.mark.parametrize(
    "image",
    [
        np.full((4, 5), 7, dtype=np.uint8),
        np.full((3, 3), -4, dtype=np.int16),
        np.full((2, 6), 0.25, dtype=np.float32),
        np.full((2, 2), 3.5),
        np.ones((3, 3), dtype=bool),
        np.array([[42]], dtype=np.uint16),
        np.array([[0.5]]),
    ],
)
def test_otsu_constant_image_returns_its_value(image):
    value = image.reshape(-1)[0]
    assert otsu_threshold(image) == float(value)
    assert same_float(otsu_threshold(image), sk_otsu(image))


@pytest.mark.parametrize("low, high, dtype", [(10, 200, np.uint8), (0, 1, np.uint8), (-5, 3, np.int8),
                                              (0.2, 0.9, np.float64), (-1.0, 1.0, np.float32)])
def test_otsu_two_valued_image(low, high, dtype):
    rng = np.random.default_rng(3)
    image = np.where(rng.random((9, 11)) < 0.3, high, low).astype(dtype)
    t = otsu_threshold(image)
    assert same_float(t, sk_otsu(image))
    # whatever the bins, the two values must end up on both sides
    np.testing.assert_array_equal(apply_threshold(image, t), image == image.max())


def test_otsu_tiny_images():
    for image in (np.array([[0, 255]], dtype=np.uint8), np.array([[0.0], [1.0]]),
                  np.array([[3, 1], [2, 9]], dtype=np.int64)):
        assert same_float(otsu_threshold(image), sk_otsu(image))


def test_otsu_accepts_nested_lists():
    image = [[0, 10, 10], [200, 210, 200]]
    assert same_float(otsu_threshold(image), sk_otsu(np.asarray(image)))


# --------------------------------------------------------------------------- between-class variance


def brute_force_variance(counts, centers):
    """sigma_b^2 per split from its definition, float64, one split at a time."""
    counts = np.asarray(counts, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    out = []
    for k in range(len(counts) - 1):
        w0, w1 = counts[: k + 1].sum(), counts[k + 1:].sum()
        if w0 == 0 or w1 == 0:
            out.append(0.0)
            continue
        mu0 = (counts[: k + 1] * centers[: k + 1]).sum() / w0
        mu1 = (counts[k + 1:] * centers[k + 1:]).sum() / w1
        out.append(w0 * w1 * (mu0 - mu1) ** 2)
    return np.array(out)


@pytest.mark.parametrize("seed", SEEDS)
def test_between_class_variance_matches_definition(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 50, 40)
    counts[[0, -1]] = [3, 5]
    centers = np.sort(rng.random(40)) * 10
    ours = between_class_variance(counts, centers)
    assert ours.shape == (39,)
    np.testing.assert_allclose(ours, brute_force_variance(counts, centers), rtol=1e-5)


def test_between_class_variance_is_total_minus_within():
    # sigma_b^2 / N^2 = sigma^2 - (n0 var0 + n1 var1) / N for every split
    rng = np.random.default_rng(5)
    values = rng.integers(0, 20, 500)
    counts = np.bincount(values, minlength=20)
    centers = np.arange(20)
    n = values.size
    ours = between_class_variance(counts, centers) / n**2
    for k in range(19):
        low, high = values[values <= k], values[values > k]
        within = (low.size * low.var() + high.size * high.var()) / n
        assert ours[k] == pytest.approx(values.var() - within, rel=1e-5, abs=1e-9)


def test_between_class_variance_argmax_is_otsu():
    image = data.camera()
    counts, centers = histogram(image)
    k = np.argmax(between_class_variance(counts, centers))
    assert centers[k] == filters.threshold_otsu(image)


def test_between_class_variance_empty_classes_score_zero():
    variance = between_class_variance([0, 0, 4, 0, 2, 0], np.arange(6))
    assert np.isfinite(variance).all()
    np.testing.assert_allclose(variance, brute_force_variance([0, 0, 4, 0, 2, 0], np.arange(6)))
    assert variance[0] == 0 and variance[-1] == 0


# --------------------------------------------------------------------------- multi-Otsu


@pytest.mark.parametrize("classes", [2, 3, 4])
@pytest.mark.parametrize("name", ["camera", "coins"])
def test_multiotsu_real_images(name, classes):
    image = getattr(data, name)()
    ours = multiotsu_thresholds(image, classes)
    theirs = filters.threshold_multiotsu(image, classes)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == theirs.dtype and ours.shape == (classes - 1,)


@pytest.mark.parametrize("kind", ["uint8", "uint8-narrow", "int8", "float64", "float32",
                                  "float-bimodal", "float64-normal"])
@pytest.mark.parametrize("seed", SEEDS)
def test_multiotsu_matches_skimage_three_classes(kind, seed):
    image = random_image(kind, seed)
    for nbins in (256, 32):
        np.testing.assert_array_equal(
            multiotsu_thresholds(image, 3, nbins), filters.threshold_multiotsu(image, 3, nbins)
        )


@pytest.mark.parametrize("kind", ["uint8", "float-bimodal"])
def test_multiotsu_matches_skimage_four_classes(kind):
    image = random_image(kind, 7)
    np.testing.assert_array_equal(
        multiotsu_thresholds(image, 4, 64), filters.threshold_multiotsu(image, 4, 64)
    )


def test_multiotsu_float_coarse_and_exactly_enough_values():
    coarse = random_image("float-coarse", 0)  # 6 distinct values: many ties
    for classes in (2, 3, 4):
        np.testing.assert_array_equal(multiotsu_thresholds(coarse, classes),
                                      filters.threshold_multiotsu(coarse, classes))
    three = np.array([[0, 0, 5], [9, 9, 9]], dtype=np.uint8)  # exactly 3 values, 3 classes
    np.testing.assert_array_equal(multiotsu_thresholds(three, 3), filters.threshold_multiotsu(three, 3))


def test_multiotsu_too_few_values_raises_like_skimage():
    image = np.array([[1, 1, 7]], dtype=np.uint8)
    with pytest.raises(ValueError):
        filters.threshold_multiotsu(image, 3)
    with pytest.raises(ValueError, match="only 2 distinct value"):
        multiotsu_thresholds(image, 3)


def test_multiotsu_with_multi_threshold_partitions_classes():
    image = data.camera()
    thresholds = multiotsu_thresholds(image, 3)
    labels = multi_threshold(image, thresholds)
    assert set(np.unique(labels)) == {0, 1, 2}
    # a multi-Otsu threshold is the last grey level of its lower class: class k is t_k < x <= t_k+1
    sk = filters.threshold_multiotsu(image, 3)
    np.testing.assert_array_equal(labels, np.digitize(image, bins=sk, right=True))
    assert labels[image == sk[0]].max() == 0 and labels[image == sk[1]].max() == 1


# --------------------------------------------------------------------------- local threshold


@pytest.mark.parametrize("method", ["gaussian", "mean", "median"])
@pytest.mark.parametrize("mode", ["reflect", "constant", "nearest", "mirror", "wrap"])
def test_local_threshold_matches_skimage(method, mode):
    images = [data.camera()[100:160, 200:270], random_image("float64", 1), random_image("int32", 2)]
    for image in images:
        for block_size in (1, 3, 11):
            for offset in (0.0, 0.25):
                ours = local_threshold(image, block_size, method, offset, mode)
                theirs = filters.threshold_local(image, block_size, method, offset, mode)
                assert ours.dtype == theirs.dtype
                np.testing.assert_allclose(ours, theirs, atol=1e-10, rtol=0)


def test_local_threshold_gaussian_param_and_float32():
    image = random_image("float32", 0)
    ours = local_threshold(image, 7, "gaussian", param=2.5)
    theirs = filters.threshold_local(image, 7, "gaussian", param=2.5)
    assert ours.dtype == np.float32 == theirs.dtype
    np.testing.assert_allclose(ours, theirs, atol=1e-10, rtol=0)


def test_local_threshold_mean_by_hand():
    # the mean over a full 3x3 window, computed directly, at an interior pixel
    image = random_image("float64", 4, (8, 8))
    ours = local_threshold(image, 3, "mean", offset=0.1)
    assert ours[4, 5] == pytest.approx(image[3:6, 4:7].mean() - 0.1)


# --------------------------------------------------------------------------- apply / multi threshold


def test_apply_threshold_scalar_and_array():
    image = random_image("uint8", 0)
    t = filters.threshold_otsu(image)
    mask = apply_threshold(image, t)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, image > t)
    local = filters.threshold_local(image, 15)
    np.testing.assert_array_equal(apply_threshold(image, local), image > local)
    np.testing.assert_array_equal(apply_threshold(image, np.float32(100)), image > 100)
    np.testing.assert_array_equal(apply_threshold(image, np.array(100)), image > 100)


@pytest.mark.parametrize("seed", SEEDS)
def test_multi_threshold_counts_the_thresholds_strictly_below_each_pixel(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 10, (12, 13)).astype(float)
    thresholds = np.sort(rng.choice(10, 3, replace=False)).astype(float)
    labels = multi_threshold(image, thresholds)
    assert labels.dtype == np.int64
    expected = (image[..., None] > thresholds).sum(axis=-1)  # pixel == threshold -> lower class
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(labels, np.digitize(image, thresholds, right=True))


def test_multi_threshold_follows_the_rule_of_apply_threshold():
    image = random_image("uint8", 0)
    for t in (0, 100, 127, 255):
        np.testing.assert_array_equal(multi_threshold(image, [t]), apply_threshold(image, t).astype(int))


def test_multi_threshold_accepts_python_lists():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(multi_threshold(image, [3, 8]), np.digitize(image, [3, 8], right=True))


@pytest.mark.parametrize("thresholds", [np.array([10, 5], dtype=np.uint8), np.array([200, 3], dtype=np.uint64),
                                        np.array([True, False]), [5.0, 1.0], [1, 3, 2]])
def test_multi_threshold_rejects_unsorted_thresholds_of_any_dtype(thresholds):
    # np.diff of unsigned or bool values wraps around, so a check based on it let these through
    with pytest.raises(ValueError, match="sorted in increasing order"):
        multi_threshold(random_image("uint8", 0), thresholds)


# --------------------------------------------------------------------------- connected components


def check_label(mask, connectivity):
    labels, num = label_components(mask, connectivity)
    sk_labels, sk_num = measure.label(mask, connectivity=connectivity, return_num=True)
    assert labels.dtype == np.int64
    assert num == sk_num
    np.testing.assert_array_equal(labels, sk_labels)


@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("density", [0.1, 0.45, 0.6, 0.9])
@pytest.mark.parametrize("seed", SEEDS)
def test_label_random_masks_match_skimage(seed, density, connectivity):
    rng = np.random.default_rng(seed)
    check_label(rng.random((41, 67)) < density, connectivity)


@pytest.mark.parametrize("connectivity", [1, 2])
def test_label_large_mask_and_real_image(connectivity):
    rng = np.random.default_rng(11)
    check_label(rng.random((256, 256)) < 0.55, connectivity)
    coins = data.coins()
    check_label(coins > filters.threshold_otsu(coins), connectivity)


@pytest.mark.parametrize("mask", [
    np.zeros((5, 4), dtype=bool),
    np.ones((5, 4), dtype=bool),
    np.ones((1, 1), dtype=bool),
    np.zeros((1, 1), dtype=bool),
    np.array([[1, 0, 1, 1, 0, 1]], dtype=bool),
    np.array([[1], [0], [1], [1]], dtype=bool),
    np.eye(6, dtype=bool),
    np.fliplr(np.eye(6, dtype=bool)),
    np.indices((9, 9)).sum(axis=0) % 2 == 0,  # checkerboard: 8-connected, not 4-connected
])
@pytest.mark.parametrize("connectivity", [1, 2])
def test_label_edge_cases(mask, connectivity):
    check_label(mask, connectivity)


def test_label_spiral_needs_many_merges():
    # one long snake: the worst case for label propagation
    mask = np.zeros((31, 31), dtype=bool)
    mask[::2, :] = True
    mask[1::4, -1] = True
    mask[3::4, 0] = True
    labels, num = label_components(mask)
    assert num == 1
    check_label(mask, 1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("connectivity", [1, 2])
def test_label_integer_maps_like_skimage(seed, connectivity):
    rng = np.random.default_rng(seed)
    check_label(rng.integers(0, 4, (30, 30)).astype(np.uint8), connectivity)
    check_label(rng.integers(-2, 3, (30, 30)).astype(np.int32), connectivity)
    binary = (rng.random((30, 30)) < 0.5).astype(np.int64)
    np.testing.assert_array_equal(label_components(binary)[0], label_components(binary.astype(bool))[0])


# --------------------------------------------------------------------------- region growing


@pytest.mark.parametrize("seed", SEEDS)
def test_region_grow_matches_flood_uint8(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 8, (30, 35)).astype(np.uint8)
    for tolerance in (0, 1, 3):
        for point in rng.integers(0, 30, (4, 2)).tolist():
            point = tuple(point)
            np.testing.assert_array_equal(
                region_grow(image, point, tolerance),
                segmentation.flood(image, point, connectivity=1, tolerance=tolerance),
            )


def test_region_grow_matches_flood_on_camera_and_float():
    camera = data.camera()[::4, ::4]
    for point, tolerance in (((10, 10), 20), ((100, 60), 35), ((64, 64), 0)):
        np.testing.assert_array_equal(
            region_grow(camera, point, tolerance),
            segmentation.flood(camera, point, connectivity=1, tolerance=tolerance),
        )
    image = random_image("float-bimodal", 2)
    np.testing.assert_array_equal(
        region_grow(image, (5, 7), 0.25), segmentation.flood(image, (5, 7), connectivity=1, tolerance=0.25)
    )


def test_region_grow_several_seeds_is_union():
    image = random_image("uint8", 1) // 32
    points = [(0, 0), (20, 30), (36, 52), (0, 0)]
    expected = np.zeros(image.shape, dtype=bool)
    for point in points:
        expected |= segmentation.flood(image, point, connectivity=1, tolerance=1)
    np.testing.assert_array_equal(region_grow(image, points, 1), expected)
    np.testing.assert_array_equal(region_grow(image, np.array(points), 1), expected)


def test_region_grow_colour_uses_euclidean_distance():
    rng = np.random.default_rng(0)
    image = rng.random((25, 30, 3))
    point = (12, 15)
    tolerance = 0.45
    close = np.linalg.norm(image - image[point], axis=-1) <= tolerance
    components = measure.label(close, connectivity=1)
    expected = components == components[point]
    np.testing.assert_array_equal(region_grow(image, point, tolerance), expected)


# --------------------------------------------------------------------------- counting objects


def sk_count(image, threshold, min_size):
    labels = measure.label(image > threshold, connectivity=1)
    return sum(region.area >= min_size for region in measure.regionprops(labels))


@pytest.mark.parametrize("min_size", [1, 20, 100])
def test_count_objects_coins(min_size):
    coins = data.coins()
    assert count_objects(coins, min_size=min_size) == sk_count(coins, filters.threshold_otsu(coins), min_size)
    assert count_objects(coins, threshold=150, min_size=min_size) == sk_count(coins, 150, min_size)


def test_count_objects_no_foreground():
    assert count_objects(np.zeros((4, 4)), threshold=0.5) == 0
    assert count_objects(np.full((4, 4), 3.0)) == 0  # constant: threshold is the value itself


# --------------------------------------------------------------------------- bad input

GRAY = np.zeros((4, 4))


@pytest.mark.parametrize("func", [histogram, otsu_threshold, multiotsu_thresholds, count_objects,
                                  lambda im: local_threshold(im, 3), lambda im: apply_threshold(im, 0.5),
                                  lambda im: multi_threshold(im, [0.5])])
@pytest.mark.parametrize("image, error, words", [
    (np.zeros((4, 4, 3)), ValueError, "2-D grayscale"),
    (np.zeros(5), ValueError, "2-D grayscale"),
    (np.zeros((0, 4)), ValueError, "empty"),
    (np.array([[0.0, np.nan]]), ValueError, "NaN"),
    (np.array([[0.0, np.inf]]), ValueError, "inf"),
    (np.array([["a", "b"]]), TypeError, "numbers"),
    (None, TypeError, "None"),
    (np.ones((2, 2), dtype=complex), TypeError, "real"),
])
def test_image_validation(func, image, error, words):
    with pytest.raises(error, match=words):
        func(image)


@pytest.mark.parametrize("call, error, words", [
    (lambda: otsu_threshold(GRAY, nbins=1), ValueError, "nbins must be >= 2"),
    (lambda: otsu_threshold(GRAY, nbins=2.5), TypeError, "nbins must be an integer"),
    (lambda: histogram(GRAY, nbins="many"), TypeError, "nbins"),
    (lambda: otsu_threshold(np.array([[0, 2**40]])), ValueError, "spans .* values"),
    (lambda: between_class_variance([1, 2], [1, 2, 3]), ValueError, "same shape"),
    (lambda: between_class_variance([[1, 2]], [[1, 2]]), ValueError, "1-D"),
    (lambda: between_class_variance([1], [1]), ValueError, "at least 2 bins"),
    (lambda: between_class_variance([1, -2], [1, 2]), ValueError, ">= 0"),
    (lambda: between_class_variance([0, 0], [1, 2]), ValueError, "all zero"),
    (lambda: between_class_variance([1, np.nan], [1, 2]), ValueError, "NaN"),
    (lambda: multiotsu_thresholds(data.camera(), classes=1), ValueError, "classes must be >= 2"),
    (lambda: multiotsu_thresholds(data.camera(), classes=3.0), TypeError, "classes must be an integer"),
    (lambda: multiotsu_thresholds(np.full((3, 3), 2.0)), ValueError, "distinct value"),
    (lambda: multiotsu_thresholds(data.camera(), classes=7), ValueError, "fewer classes or fewer bins"),
    (lambda: local_threshold(GRAY, 4), ValueError, "block_size must be an odd positive"),
    (lambda: local_threshold(GRAY, 0), ValueError, "block_size must be an odd positive"),
    (lambda: local_threshold(GRAY, -3), ValueError, "block_size must be an odd positive"),
    (lambda: local_threshold(GRAY, 3.0), TypeError, "block_size must be an integer"),
    (lambda: local_threshold(GRAY, 3, method="otsu"), ValueError, "method must be one of"),
    (lambda: local_threshold(GRAY, 3, mode="edge"), ValueError, "mode must be one of"),
    (lambda: local_threshold(GRAY, 3, offset="a"), TypeError, "offset must be a real number"),
    (lambda: local_threshold(GRAY, 3, offset=np.inf), ValueError, "offset must be finite"),
    (lambda: local_threshold(GRAY, 3, "mean", param=1.0), ValueError, "only used by method='gaussian'"),
    (lambda: local_threshold(GRAY, 3, param=-1.0), ValueError, "param must be >= 0"),
    (lambda: apply_threshold(GRAY, np.zeros((3, 4))), ValueError, "same shape"),
    (lambda: apply_threshold(GRAY, np.nan), ValueError, "threshold must be finite"),
    (lambda: apply_threshold(GRAY, np.full((4, 4), np.inf)), ValueError, "NaN or inf"),
    (lambda: apply_threshold(GRAY, "half"), TypeError, "threshold must hold numbers"),
    (lambda: apply_threshold(GRAY, True), TypeError, "threshold must be a real number"),
    (lambda: multi_threshold(GRAY, []), ValueError, "non-empty 1-D"),
    (lambda: multi_threshold(GRAY, [[1, 2]]), ValueError, "non-empty 1-D"),
    (lambda: multi_threshold(GRAY, [3, 1]), ValueError, "sorted in increasing order"),
    (lambda: multi_threshold(GRAY, [1, np.nan]), ValueError, "NaN or inf"),
    (lambda: label_components(np.ones((3, 3))), TypeError, "bool or integer"),
    (lambda: label_components(np.ones((3, 3, 3), dtype=bool)), ValueError, "2-D"),
    (lambda: label_components(np.ones((0, 3), dtype=bool)), ValueError, "empty"),
    (lambda: label_components(np.ones((3, 3), dtype=bool), 3), ValueError, "connectivity must be <= 2"),
    (lambda: label_components(np.ones((3, 3), dtype=bool), 0), ValueError, "connectivity must be >= 1"),
    (lambda: region_grow(GRAY, (4, 0), 1), ValueError, "outside the image"),
    (lambda: region_grow(GRAY, (0, -1), 1), ValueError, "outside the image"),
    (lambda: region_grow(GRAY, [(0, 0), (9, 9)], 1), ValueError, r"seed \(9, 9\) is outside"),
    (lambda: region_grow(GRAY, (1.5, 0), 1), TypeError, "integer"),
    (lambda: region_grow(GRAY, (1, 2, 3), 1), ValueError, r"\(row, col\) pair"),
    (lambda: region_grow(GRAY, [], 1), ValueError, r"\(row, col\) pair"),
    (lambda: region_grow(GRAY, (0, 0), -0.5), ValueError, "tolerance must be >= 0"),
    (lambda: region_grow(GRAY, (0, 0), np.nan), ValueError, "tolerance must be finite"),
    (lambda: region_grow(GRAY, (0, 0), None), TypeError, "tolerance must be a real number"),
    (lambda: region_grow(np.zeros((4, 4, 3, 1)), (0, 0), 1), ValueError, "grayscale"),
    (lambda: count_objects(GRAY, min_size=0), ValueError, "min_size must be >= 1"),
    (lambda: count_objects(GRAY, threshold="auto"), TypeError, "threshold must be a real number"),
    (lambda: count_objects(GRAY, threshold=np.nan), ValueError, "threshold must be finite"),
])
def test_parameter_validation(call, error, words):
    with pytest.raises(error, match=words):
        call()


# --------------------------------------------------------------------------- module hygiene


def test_doctests_pass():
    result = doctest.testmod(classical, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10
    assert result.failed == 0


def test_public_api_is_documented():
    for name in classical.__all__:
        func = getattr(classical, name)
        assert func.__doc__ and "Examples" in func.__doc__, name


# --------------------------------------------------------------------------- region growing, exactly


def _grow_by_hand(image, seed, tolerance):
    """Breadth-first search in Python integers/floats: the definition, with nothing to wrap."""
    rows, cols = len(image), len(image[0])
    value = image[seed[0]][seed[1]]
    region, todo = {tuple(seed)}, [tuple(seed)]
    while todo:
        r, c = todo.pop()
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < rows and 0 <= cc < cols and (rr, cc) not in region \
                    and abs(image[rr][cc] - value) <= tolerance:
                region.add((rr, cc))
                todo.append((rr, cc))
    out = np.zeros((rows, cols), dtype=bool)
    out[tuple(np.array(sorted(region)).T)] = True
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int64, np.uint64])
@pytest.mark.parametrize("tolerance", [0, 0.5, 1, 2.7, 1e300])
def test_region_grow_is_exact_for_integer_images(dtype, tolerance):
    rng = np.random.default_rng(int(tolerance * 7) % 100)
    info = np.iinfo(dtype)
    offset = int(info.max) - 8 if info.min == 0 else 0  # unsigned: values near the top of the range
    image = np.array([[v + offset for v in row] for row in rng.integers(0, 6, (15, 17)).tolist()], dtype=dtype)
    for seed in [(0, 0), (7, 8), (14, 16)]:
        expected = _grow_by_hand(image.tolist(), seed, tolerance)
        np.testing.assert_array_equal(region_grow(image, seed, tolerance), expected)


def test_region_grow_int64_beyond_float_precision():
    image = np.array([[2**62, 2**62 + 1, 2**62 + 3]], dtype=np.int64)  # 2**62 + 1 == 2**62 as a float
    np.testing.assert_array_equal(region_grow(image, (0, 0), 1), [[True, True, False]])
    np.testing.assert_array_equal(region_grow(image, (0, 0), 0), [[True, False, False]])


def test_region_grow_where_it_differs_from_flood_as_documented():
    image = np.array([[10, 9, 11]], dtype=np.uint8)
    # flood casts 10 - 0.5 and 10 + 0.5 to uint8 (9 and 10): it takes 9 but not 11
    np.testing.assert_array_equal(segmentation.flood(image, (0, 0), tolerance=0.5), [[True, True, False]])
    np.testing.assert_array_equal(region_grow(image, (0, 0), 0.5), [[True, False, False]])
    np.testing.assert_array_equal(region_grow(image, (0, 0), 1), segmentation.flood(image, (0, 0), tolerance=1))


def test_region_grow_never_wraps_around_in_uint8():
    coin = np.full((6, 6), 10, dtype=np.uint8)
    coin[2:4, 2:4] = 200
    # |10 - 200| is 190, but 10 - 200 in uint8 is 66, within a tolerance of 70
    np.testing.assert_array_equal(region_grow(coin, (2, 2), 70), coin == 200)


@pytest.mark.parametrize("seeds, error, words", [
    ((True, 0), TypeError, "not True/False"),
    ([(0, 0), (1, False)], TypeError, "not True/False"),
    ((2**70, 0), ValueError, "outside the image"),
    ((np.uint64(2**64 - 1), 0), ValueError, "outside the image"),
])
def test_region_grow_seed_errors_name_the_seeds(seeds, error, words):
    with pytest.raises(error, match=words):
        region_grow(GRAY, seeds, 1)


# --------------------------------------------------------------------------- the variance identity


@pytest.mark.parametrize("kind", ["uint8", "float64", "float-bimodal", "int32"])
def test_variance_decomposition_adds_up_and_matches_numpy(kind):
    image = random_image(kind, 3)
    for t in np.quantile(image, [0.0, 0.2, 0.5, 0.9, 1.0]):
        parts = classical.variance_decomposition(image, float(t))
        values = image.astype(float).ravel()
        low, high = values[values <= t], values[values > t]
        assert parts["total"] == pytest.approx(np.var(values))
        assert parts["within"] + parts["between"] == pytest.approx(parts["total"])
        assert parts["w0"] == pytest.approx(low.size / values.size)
        if low.size and high.size:
            assert parts["mu0"] == pytest.approx(low.mean()) and parts["var1"] == pytest.approx(high.var())
            assert parts["between"] == pytest.approx(low.size * high.size / values.size**2
                                                     * (low.mean() - high.mean()) ** 2)
        else:
            assert parts["between"] == 0.0


def test_normalized_between_class_variance_is_in_the_images_units():
    coins = data.coins()
    counts, centers = histogram(coins)
    normalized = between_class_variance(counts, centers, normalize=True)
    raw = between_class_variance(counts, centers)
    np.testing.assert_allclose(normalized, raw / coins.size**2, rtol=1e-5)
    assert normalized.max() <= np.var(coins.astype(float))
    t = otsu_threshold(coins)
    assert centers[np.argmax(normalized)] == t == sk_otsu(coins)
    k = int(np.flatnonzero(centers == t)[0])
    assert normalized[k] == pytest.approx(classical.variance_decomposition(coins, t)["between"])
    with pytest.raises(TypeError, match="normalize"):
        between_class_variance(counts, centers, normalize="yes")


# --------------------------------------------------------------------------- cleaning a mask


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("radius", [1, 2, 4])
def test_clean_mask_matches_scipy_and_skimage(seed, radius):
    from scipy import ndimage
    from skimage import morphology

    mask = np.random.default_rng(seed).random((40, 50)) < 0.55
    np.testing.assert_array_equal(classical.clean_mask(mask, opening=radius),
                                  morphology.binary_opening(mask, morphology.disk(radius)))
    np.testing.assert_array_equal(classical.clean_mask(mask, fill_holes=True), ndimage.binary_fill_holes(mask))
    np.testing.assert_array_equal(classical.clean_mask(mask, min_size=5),
                                  morphology.remove_small_objects(mask, max_size=4, connectivity=1))
    both = classical.clean_mask(mask, fill_holes=True, opening=radius, min_size=20)
    step = morphology.binary_opening(ndimage.binary_fill_holes(mask), morphology.disk(radius))
    np.testing.assert_array_equal(both, morphology.remove_small_objects(step, max_size=19, connectivity=1))
    assert classical.clean_mask(mask) is not mask and np.array_equal(classical.clean_mask(mask), mask)


@pytest.mark.parametrize("call, error, words", [
    (lambda: classical.clean_mask(np.ones((4, 4))), TypeError, "boolean"),
    (lambda: classical.clean_mask(np.ones((4, 4), bool), opening=-1), ValueError, "opening must be >= 0"),
    (lambda: classical.clean_mask(np.ones((4, 4), bool), opening=10**9), ValueError, "opening must be <= 4"),
    (lambda: classical.clean_mask(np.ones((4, 4), bool), fill_holes=1), TypeError, "fill_holes"),
    (lambda: classical.clean_mask(np.ones((4, 4), bool), min_size=0), ValueError, "min_size must be >= 1"),
])
def test_clean_mask_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_the_lessons_coin_count_finds_each_coin_once():
    # Lesson 01: Otsu's regions of >= 100 px number 24, but one of them is a coin joined to the
    # background; a local threshold and clean_mask give 24 regions that are each one coin.
    # Independent reference: scikit-image's region-based coins segmentation (watershed on a
    # Sobel elevation map with markers), from its gallery.
    from scipy import ndimage

    coins = data.coins()
    elevation = filters.sobel(coins)
    markers = np.zeros(coins.shape, int)
    markers[coins < 30], markers[coins > 150] = 1, 2
    reference = measure.label(ndimage.binary_fill_holes(segmentation.watershed(elevation, markers) == 2))
    reference = measure.label(np.isin(reference, [r.label for r in measure.regionprops(reference) if r.area >= 300]))
    assert reference.max() == 24

    def matches(regions):
        """How many of our regions overlap exactly one reference coin, and it only them."""
        pairs = {(a, b) for a, b in zip(regions.ravel(), reference.ravel()) if a and b}
        ours = [a for a in range(1, regions.max() + 1) if sum(1 for p in pairs if p[0] == a) == 1]
        return sum(1 for a in ours if sum(1 for p in pairs if p[1] == next(q[1] for q in pairs if q[0] == a)) == 1)

    otsu_regions = label_components(classical.clean_mask(coins > otsu_threshold(coins), min_size=100))[0]
    assert otsu_regions.max() == 24
    first = otsu_regions == otsu_regions[40, 40]  # the top-left coin's region
    assert first.sum() > 3 * (reference == reference[40, 40]).sum()  # the coin and a strip of background

    local = apply_threshold(coins, local_threshold(coins, 51, offset=-5))
    cleaned = label_components(classical.clean_mask(local, fill_holes=True, opening=4, min_size=100))[0]
    assert cleaned.max() == 24 and matches(cleaned) == 24


# --------------------------------------------------------------------------- huge parameters


@pytest.mark.parametrize("call, words", [
    (lambda: histogram(GRAY, nbins=2**62), "nbins must be <= 16777216"),
    (lambda: otsu_threshold(GRAY, nbins=10**30), "nbins must be <= 16777216"),
    (lambda: multiotsu_thresholds(GRAY, nbins=2**40), "nbins must be <= 16777216"),
    (lambda: local_threshold(GRAY, 2**64 - 1), "block_size must be <= 65535"),
    (lambda: local_threshold(GRAY, 3, param=1e300), "param must be <= 16384"),
    (lambda: count_objects(GRAY, min_size=10**30), "min_size is too large"),
])
def test_huge_parameters_are_refused_by_name(call, words):
    with pytest.raises(ValueError, match=words):
        call()


# --------------------------------------------------------------------------- the exercises of lesson 01


def _failure(exercise_id, func):
    from segtutor import exercises

    with pytest.raises(exercises.ExerciseFailed) as info:
        exercises.check(exercise_id, func)
    return str(info.value)


def test_a_wrong_threshold_is_reported_with_the_expected_one():
    message = _failure("classical.otsu_threshold", lambda image: float(np.mean(image)))
    assert "case 'few bright pixels': that is the mean of the image" in message
    assert "expected a threshold near 104 (between-class variance" in message


def test_a_label_map_off_by_one_is_named():
    message = _failure("classical.multi_threshold",
                       lambda image, thresholds: np.digitize(image, thresholds, right=True) + 1)
    assert "your labels are the reference's + 1 everywhere" in message


def test_the_uint8_region_grow_that_passed_float_cases_is_caught_and_not_handed_on(capsys):
    from segtutor import exercises

    def my_region_grow(image, seed, tolerance):  # the mistake of the issue: abs(a - b) in uint8
        image = np.asarray(image)
        close = np.abs(image - image[seed[0], seed[1]]) <= tolerance
        return label_components(close)[0] == label_components(close)[0][seed[0], seed[1]]

    message = _failure("classical.region_grow", my_region_grow)
    assert "case 'uint8 image, as in the lesson'" in message and "wrapped around" in message
    reference = exercises.get("classical.region_grow").reference_function()
    assert exercises.yours_or_reference("classical.region_grow", my_region_grow) is reference
    assert "wrapped around" in capsys.readouterr().out


def test_region_grow_with_8_connectivity_no_longer_gets_full_marks():
    from segtutor import exercises

    def my_region_grow(image, seed, tolerance):
        image = np.asarray(image, dtype=float)
        close = np.abs(image - image[seed[0], seed[1]]) <= tolerance
        labels = label_components(close, connectivity=2)[0]
        return labels == labels[seed[0], seed[1]]

    message = _failure("classical.region_grow", my_region_grow)
    assert "case 'corners do not connect'" in message and "diagonally" in message
    with pytest.raises(exercises.ExerciseFailed):
        exercises.check("classical.region_grow", my_region_grow, hidden_seed=5103)
