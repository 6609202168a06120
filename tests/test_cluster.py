"""Tests of segtutor.cluster against scikit-learn / scikit-image, loops and properties."""

import doctest
import itertools

import numpy as np
import pytest
from skimage import data
from skimage.color import label2rgb
from skimage.segmentation import slic
from sklearn.cluster import KMeans
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

import segtutor.cluster
from segtutor.cluster import (
    KMeansResult,
    assign_labels,
    inertia_curve,
    kmeans,
    kmeans_plusplus,
    kmeans_segment,
    match_clusters,
    pixel_features,
    slic_superpixels,
    superpixel_means,
    update_centers,
)


@pytest.fixture(scope="module")
def astronaut_colours():
    image = data.astronaut()[::4, ::4]  # 128 x 128
    return image, image.reshape(-1, 3) / 255.0


def _inertia(X, centers):
    """Sum of squared distances to the nearest center, by broadcasting (another route)."""
    return float(((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).min(axis=1).sum())


def test_doctests():
    assert doctest.testmod(segtutor.cluster).failed == 0


def test_all_is_complete():
    for name in segtutor.cluster.__all__:
        assert hasattr(segtutor.cluster, name)


# ---------------------------------------------------------------------------
# the two Lloyd steps against loops
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed,n,d,k", [(0, 50, 1, 3), (1, 40, 2, 5), (2, 30, 5, 4), (3, 7, 3, 7)])
def test_assign_labels_against_loops(seed, n, d, k):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    centers = rng.normal(size=(k, d))
    expected = []
    for x in X:
        distances = [sum((x[f] - c[f]) ** 2 for f in range(d)) for c in centers]
        expected.append(min(range(k), key=lambda j: distances[j]))
    got = assign_labels(X, centers)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


def test_assign_labels_ties_go_to_lower_index():
    X = np.array([[0.0], [1.0], [2.0]])
    np.testing.assert_array_equal(assign_labels(X, [[1.0], [1.0]]), [0, 0, 0])
    np.testing.assert_array_equal(assign_labels(X, [[0.0], [2.0]]), [0, 0, 1])


@pytest.mark.parametrize("seed,n,d,k", [(0, 50, 1, 3), (1, 40, 2, 5), (2, 30, 5, 4)])
def test_update_centers_against_loops(seed, n, d, k):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    labels = rng.integers(0, k, size=n)
    labels[:k] = np.arange(k)  # every cluster non-empty
    expected = np.zeros((k, d))
    for j in range(k):
        members = [X[i] for i in range(n) if labels[i] == j]
        for f in range(d):
            expected[j, f] = sum(m[f] for m in members) / len(members)
    np.testing.assert_allclose(update_centers(X, labels, k), expected)


def test_update_centers_empty_cluster():
    X = np.array([[0.0, 0.0], [2.0, 2.0]])
    previous = np.array([[1.0, 1.0], [5.0, 5.0], [-3.0, 7.0]])
    got = update_centers(X, [0, 0], 3, previous=previous)
    np.testing.assert_allclose(got, [[1.0, 1.0], [5.0, 5.0], [-3.0, 7.0]])
    got = update_centers(X, [0, 2], 3, previous=previous)
    np.testing.assert_allclose(got, [[0.0, 0.0], [5.0, 5.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match=r"\[1, 2\].*previous"):
        update_centers(X, [0, 0], 3)


# ---------------------------------------------------------------------------
# k-means++
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 10])
def test_kmeans_plusplus_returns_distinct_points_of_X(seed, k):
    X = np.random.default_rng(seed).normal(size=(60, 3))
    centers = kmeans_plusplus(X, k, seed=seed)
    assert centers.shape == (k, 3)
    rows = [np.flatnonzero((X == c).all(axis=1)) for c in centers]
    assert all(len(r) == 1 for r in rows)  # each center is a row of X ...
    assert len({int(r[0]) for r in rows}) == k  # ... and no row twice


def test_kmeans_plusplus_k_equals_n_and_duplicates():
    X = np.random.default_rng(0).normal(size=(6, 2))
    centers = kmeans_plusplus(X, 6, seed=1)
    assert sorted(map(tuple, centers)) == sorted(map(tuple, X))
    # duplicated samples: distinct points first, then the copies
    X = np.array([[0.0], [0.0], [0.0], [1.0]])
    assert sorted(kmeans_plusplus(X, 2, seed=0).ravel()) == [0.0, 1.0]
    assert sorted(kmeans_plusplus(X, 4, seed=0).ravel()) == [0.0, 0.0, 0.0, 1.0]


def test_kmeans_plusplus_deterministic():
    X = np.random.default_rng(5).normal(size=(200, 2))
    np.testing.assert_array_equal(kmeans_plusplus(X, 5, seed=3), kmeans_plusplus(X, 5, seed=3))
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(kmeans_plusplus(X, 5, seed=rng_a), kmeans_plusplus(X, 5, seed=rng_b))


def test_kmeans_plusplus_one_center_per_separated_blob():
    X, _ = make_blobs(600, 2, centers=[[-20, 0], [0, 20], [20, 0], [0, -20]], random_state=0)
    for seed in range(5):
        centers = kmeans_plusplus(X, 4, seed=seed)
        quadrants = {(int(c[0] > 10) - int(c[0] < -10), int(c[1] > 10) - int(c[1] < -10)) for c in centers}
        assert len(quadrants) == 4


@pytest.mark.parametrize("k", [3, 8])
def test_kmeans_plusplus_quality_matches_sklearn(k):
    X = np.random.default_rng(0).uniform(size=(800, 3))
    ours = np.mean([_inertia(X, kmeans_plusplus(X, k, seed=s)) for s in range(20)])
    theirs = np.mean([_inertia(X, sk_kmeans_plusplus(X, k, random_state=s)[0]) for s in range(20)])
    assert ours <= 1.10 * theirs


# ---------------------------------------------------------------------------
# k-means against scikit-learn
# ---------------------------------------------------------------------------


def _sklearn_inertia(X, k, n_init, seed):
    # one thread: OpenMP threads only add start-up time on inputs this small
    with threadpool_limits(1):
        return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X).inertia_


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_init", [1, 4])
@pytest.mark.parametrize("k,d", [(3, 2), (5, 4)])
def test_kmeans_matches_sklearn_on_blobs(seed, n_init, k, d):
    X, _ = make_blobs(1500, d, centers=k, cluster_std=1.0, random_state=seed)
    ours = kmeans(X, k, seed=seed, n_init=n_init)
    assert ours.inertia <= 1.01 * _sklearn_inertia(X, k, n_init, seed)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [2, 4, 8])
def test_kmeans_matches_sklearn_on_uniform_data(seed, k):
    X = np.random.default_rng(seed).uniform(size=(1000, 2))
    ours = kmeans(X, k, seed=seed, n_init=10)
    assert ours.inertia <= 1.01 * _sklearn_inertia(X, k, 10, seed)


def test_kmeans_single_init_matches_sklearn_on_average():
    # With one start each, either side can land in a worse local minimum on a
    # given seed; over many seeds the two must do equally well.
    X = np.random.default_rng(0).uniform(size=(800, 2))
    ours = [kmeans(X, 8, seed=s).inertia for s in range(12)]
    theirs = [_sklearn_inertia(X, 8, 1, s) for s in range(12)]
    assert np.exp(np.mean(np.log(ours))) <= 1.01 * np.exp(np.mean(np.log(theirs)))


@pytest.mark.parametrize("n_init", [1, 4])
def test_kmeans_matches_sklearn_on_image_colours(astronaut_colours, n_init):
    _, X = astronaut_colours
    ours = [kmeans(X, 4, seed=s, n_init=n_init).inertia for s in range(3)]
    theirs = [_sklearn_inertia(X, 4, n_init, s) for s in range(3)]
    if n_init > 1:
        assert all(a <= 1.01 * b for a, b in zip(ours, theirs))
    assert np.mean(ours) <= 1.01 * np.mean(theirs)


def test_kmeans_result_is_consistent(astronaut_colours):
    _, X = astronaut_colours
    result = kmeans(X, 5, seed=1, n_init=2)
    assert isinstance(result, KMeansResult)
    assert result.labels.shape == (X.shape[0],) and result.labels.dtype == np.int64
    assert result.centers.shape == (5, 3)
    assert 1 <= result.n_iter <= 100
    np.testing.assert_array_equal(result.labels, assign_labels(X, result.centers))
    assert result.inertia == pytest.approx(_inertia(X, result.centers))
    assert result.inertia == pytest.approx(((X - result.centers[result.labels]) ** 2).sum())


def test_kmeans_converged_centers_are_means():
    X, _ = make_blobs(500, 3, centers=4, random_state=2)
    result = kmeans(X, 4, seed=0, tol=0)  # stop only when labels stop changing
    assert result.n_iter < 100
    np.testing.assert_allclose(update_centers(X, result.labels, 4), result.centers)


def test_kmeans_deterministic(astronaut_colours):
    _, X = astronaut_colours
    a = kmeans(X, 4, seed=7, n_init=2)
    b = kmeans(X, 4, seed=7, n_init=2)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.inertia == b.inertia and a.n_iter == b.n_iter


def test_kmeans_edge_cases():
    X = np.random.default_rng(0).normal(size=(20, 3))
    one = kmeans(X, 1)
    np.testing.assert_allclose(one.centers[0], X.mean(axis=0))
    assert one.inertia == pytest.approx(((X - X.mean(axis=0)) ** 2).sum())
    every = kmeans(X, 20)
    assert every.inertia == pytest.approx(0.0, abs=1e-12)
    assert sorted(every.labels) == list(range(20))
    assert kmeans(X, 3, max_iter=1).n_iter == 1
    # fewer distinct points than k still works; the spare cluster stays empty
    same = kmeans(np.array([[1.0, 1.0]] * 5 + [[3.0, 3.0]] * 5), 3)
    assert same.inertia == 0.0
    # integer and bool samples are accepted as floats
    assert kmeans(np.array([[0], [1], [10], [11]]), 2).inertia == 1.0


# ---------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------


def test_pixel_features_colour_scaling():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    np.testing.assert_allclose(pixel_features(rgb), rgb.reshape(20, 3) / 255)
    as_float = rgb / 255.0
    np.testing.assert_allclose(pixel_features(as_float), as_float.reshape(20, 3))
    wide = rng.integers(0, 65536, size=(4, 5), dtype=np.uint16)
    np.testing.assert_allclose(pixel_features(wide), wide.reshape(20, 1) / 65535)
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 255, np.uint8)], axis=2)
    np.testing.assert_allclose(pixel_features(rgba), pixel_features(rgb))
    assert pixel_features(rgb).dtype == np.float64


@pytest.mark.parametrize("shape", [(4, 7), (7, 4, 3), (1, 1)])
@pytest.mark.parametrize("weight", [1.0, 2.5, 0.0])
def test_pixel_features_position(shape, weight):
    image = np.random.default_rng(1).random(shape)
    features = pixel_features(image, use_position=True, position_weight=weight)
    h, w = shape[:2]
    channels = 1 if len(shape) == 2 else shape[2]
    assert features.shape == (h * w, channels + 2)
    scale = max(max(h, w) - 1, 1)
    for r, c in itertools.product(range(h), range(w)):
        row = features[r * w + c]
        np.testing.assert_allclose(row[:channels], np.ravel(image[r, c]))
        np.testing.assert_allclose(row[channels:], [weight * r / scale, weight * c / scale])
    if weight == 1.0 and h * w > 1:
        assert features[:, channels:].max() == 1.0  # same range as a colour channel


def _two_colour_image(seed, colour_a, colour_b, shape=(40, 50), noise=0.04):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < 0.4
    mask[10:25, 5:30] = True  # some structure besides the noise
    image = np.where(mask[..., None], colour_b, colour_a).astype(float)
    image += rng.normal(scale=noise, size=image.shape)
    if image.shape[2] == 1:
        image = image[..., 0]
    return image, mask


@pytest.mark.parametrize("seed", range(3))
def test_kmeans_segment_two_colour_image(seed):
    dark, bright = [0.1, 0.3, 0.8], [0.9, 0.7, 0.2]  # bright has the higher mean
    image, mask = _two_colour_image(seed, dark, bright)
    labels = kmeans_segment(image, 2, seed=seed)
    assert labels.shape == mask.shape and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, mask.astype(int))  # 0 = darker cluster
    gray, mask = _two_colour_image(seed, [0.7], [0.2])
    np.testing.assert_array_equal(kmeans_segment(gray, 2, seed=seed), (~mask).astype(int))
    as_uint8 = np.clip(gray * 255, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(kmeans_segment(as_uint8, 2, seed=seed), (~mask).astype(int))


def test_kmeans_segment_orders_clusters_by_brightness():
    levels = np.array([0.55, 0.05, 0.95, 0.3])
    image = np.repeat(levels, 10)[None, :].repeat(6, axis=0)
    labels = kmeans_segment(image, 4, seed=0)
    np.testing.assert_array_equal(labels, np.repeat(np.argsort(np.argsort(levels)), 10)[None].repeat(6, 0))


def test_kmeans_segment_with_position_splits_flat_image():
    image = np.full((10, 40, 3), 0.5)
    labels = kmeans_segment(image, 2, use_position=True, seed=0)
    # only position varies: each cluster is a run of whole columns
    assert (labels == labels[:1]).all()
    assert np.count_nonzero(np.diff(labels[0])) == 1


def test_kmeans_segment_deterministic(astronaut_colours):
    image, _ = astronaut_colours
    a = kmeans_segment(image, 4, use_position=True, seed=3)
    np.testing.assert_array_equal(a, kmeans_segment(image, 4, use_position=True, seed=3))
    assert set(np.unique(a)) == {0, 1, 2, 3}


@pytest.mark.parametrize("channels", [None, 3])
def test_slic_matches_skimage(astronaut_colours, channels):
    image, _ = astronaut_colours
    if channels is None:
        image = image.mean(axis=2) / 255.0
        expected = slic(image, n_segments=50, compactness=0.1, start_label=0, channel_axis=None)
        got = slic_superpixels(image, n_segments=50, compactness=0.1)
    else:
        expected = slic(image, n_segments=50, compactness=10.0, start_label=0, channel_axis=-1)
        got = slic_superpixels(image, n_segments=50)
    np.testing.assert_array_equal(got, expected)
    assert got.min() == 0 and got.shape == image.shape[:2]


def test_superpixel_means_against_skimage_and_loops(astronaut_colours):
    image, _ = astronaut_colours
    regions = slic(image, n_segments=30, start_label=0)
    as_float = image / 255.0
    expected = label2rgb(regions, as_float, kind="avg", bg_label=-1)
    np.testing.assert_allclose(superpixel_means(as_float, regions), expected)
    got = superpixel_means(image, regions)
    assert got.dtype == np.uint8 and got.shape == image.shape
    for region in np.unique(regions)[:5]:
        inside = regions == region
        mean = image[inside].astype(float).mean(axis=0)
        np.testing.assert_array_equal(got[inside], np.broadcast_to(np.rint(mean), got[inside].shape))
    gray = as_float[..., 0]
    sparse_ids = regions * 7  # ids need not be consecutive
    gray_means = superpixel_means(gray, sparse_ids)
    for region in np.unique(sparse_ids)[:5]:
        inside = sparse_ids == region
        np.testing.assert_allclose(gray_means[inside], gray[inside].mean())


# ---------------------------------------------------------------------------
# matching clusters to classes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_match_clusters_recovers_permutation(seed):
    rng = np.random.default_rng(seed)
    target = np.kron(rng.integers(0, 4, size=(6, 6)), np.ones((4, 4), dtype=int))
    permutation = rng.permutation(4)
    clusters = permutation[target]
    got = match_clusters(clusters, target)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, target)
    np.testing.assert_array_equal(match_clusters(clusters + 10, target, num_classes=6), target)


@pytest.mark.parametrize("seed", range(4))
def test_match_clusters_against_exhaustive_search(seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 4, size=(12, 12))
    clusters = np.where(rng.random((12, 12)) < 0.6, (target + 1) % 4, rng.integers(0, 4, (12, 12)))
    got = match_clusters(clusters, target)
    best = max(
        itertools.permutations(range(4)),
        key=lambda perm: np.count_nonzero(np.array(perm)[clusters] == target),
    )
    assert np.count_nonzero(got == target) == np.count_nonzero(np.array(best)[clusters] == target)


def test_match_clusters_more_clusters_than_classes():
    target = np.array([[0, 0, 0, 0, 1, 1, 1, 1]])
    clusters = np.array([[5, 5, 2, 2, 9, 9, 9, 2]])
    # 5 -> 0 and 9 -> 1 by the matching; 2 is left over and is mostly class 0
    np.testing.assert_array_equal(match_clusters(clusters, target), [[0, 0, 0, 0, 1, 1, 1, 0]])


def test_match_clusters_zero_overlap_falls_back_to_majority():
    target = np.array([[0, 0, 0, 1, 1, 2]])
    clusters = np.array([[0, 0, 2, 1, 1, 1]])  # cluster 2 is only class 0; nothing is mostly class 2
    np.testing.assert_array_equal(match_clusters(clusters, target), [[0, 0, 0, 1, 1, 1]])


# ---------------------------------------------------------------------------
# inertia curve
# ---------------------------------------------------------------------------


def test_inertia_curve(astronaut_colours):
    image, X = astronaut_colours
    ks = [1, 2, 3, 5]
    curve = inertia_curve(image, ks, seed=2)
    assert curve.shape == (4,) and curve.dtype == np.float64
    np.testing.assert_allclose(curve, [kmeans(X, k, seed=2).inertia for k in ks])
    assert all(a >= b for a, b in zip(curve, curve[1:]))
    assert curve[0] == pytest.approx(((X - X.mean(axis=0)) ** 2).sum())
    with_position = inertia_curve(image, np.array([2, 4]), use_position=True)
    features = pixel_features(image, use_position=True)
    np.testing.assert_allclose(with_position, [kmeans(features, k).inertia for k in (2, 4)])
    np.testing.assert_allclose(inertia_curve(X, [2]), [kmeans(X, 2).inertia])


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

X_GOOD = np.random.default_rng(0).normal(size=(10, 2))


@pytest.mark.parametrize(
    "func",
    [
        lambda X, k: kmeans(X, k),
        lambda X, k: kmeans_plusplus(X, k),
        lambda X, k: inertia_curve(X, [k]),
    ],
)
@pytest.mark.parametrize(
    "X,k,error,message",
    [
        (X_GOOD, 0, ValueError, "k must be >= 1"),
        (X_GOOD, -2, ValueError, "k must be >= 1"),
        (X_GOOD, 11, ValueError, r"k must be <= the number of samples \(10\)"),
        (X_GOOD, 2.0, TypeError, "k must be an integer"),
        (X_GOOD, True, TypeError, "k must be an integer"),
        (np.where(np.eye(10, 2) > 0, np.nan, X_GOOD), 2, ValueError, "NaN"),
        (np.where(np.eye(10, 2) > 0, np.inf, X_GOOD), 2, ValueError, "inf"),
        (np.zeros((0, 2)), 1, ValueError, "empty"),
        (np.zeros((5, 0)), 1, ValueError, "empty"),
        (np.zeros(10), 2, ValueError, "2-D"),
        (np.array([["a", "b"]] * 4), 2, TypeError, "numbers"),
        (np.ones((4, 2), dtype=complex), 2, TypeError, "complex"),
        (None, 2, TypeError, "None"),
    ],
)
def test_bad_samples_and_k(func, X, k, error, message):
    with pytest.raises(error, match=message):
        func(X, k)


def test_wrong_ndim_samples():
    with pytest.raises(ValueError, match="2-D"):
        kmeans(np.zeros((4, 4, 2)), 2)
    with pytest.raises(ValueError, match="2-D"):
        assign_labels(np.zeros((4, 4, 2)), np.zeros((2, 2)))


def test_bad_kmeans_parameters():
    with pytest.raises(ValueError, match="n_init"):
        kmeans(X_GOOD, 2, n_init=0)
    with pytest.raises(ValueError, match="max_iter"):
        kmeans(X_GOOD, 2, max_iter=0)
    with pytest.raises(ValueError, match="tol"):
        kmeans(X_GOOD, 2, tol=-1.0)
    with pytest.raises(TypeError, match="tol"):
        kmeans(X_GOOD, 2, tol="small")


def test_bad_assign_and_update_arguments():
    with pytest.raises(ValueError, match="same number of features"):
        assign_labels(X_GOOD, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="centers contains NaN"):
        assign_labels(X_GOOD, np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="one entry per sample"):
        update_centers(X_GOOD, [0, 1], 2)
    with pytest.raises(ValueError, match=r"labels must lie in 0..1.*found 2"):
        update_centers(X_GOOD, [0, 1, 2] + [0] * 7, 2)
    with pytest.raises(ValueError, match=">= 0"):
        update_centers(X_GOOD, [-1] + [0] * 9, 2)
    with pytest.raises(TypeError, match="integer"):
        update_centers(X_GOOD, [0.5] * 10, 2)
    with pytest.raises(ValueError, match=r"previous must have shape.*\(2, 2\)"):
        update_centers(X_GOOD, [0, 1] * 5, 2, previous=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="k must be >= 1"):
        update_centers(X_GOOD, [0] * 10, 0)


@pytest.mark.parametrize(
    "image,error,message",
    [
        (np.zeros((2, 2, 2, 3)), ValueError, "4-D"),
        (np.zeros(5), ValueError, "1-D"),
        (np.array([[0.0, np.nan]]), ValueError, "NaN"),
        (np.zeros((0, 3)), ValueError, "empty"),
        (np.array([["a", "b"]]), TypeError, "numbers"),
    ],
)
def test_bad_images(image, error, message):
    with pytest.raises(error, match=message):
        pixel_features(image)
    with pytest.raises(error, match=message):
        kmeans_segment(image, 1)
    with pytest.raises(error, match=message):
        slic_superpixels(image)
    with pytest.raises(error, match=message):
        superpixel_means(image, np.zeros((1, 2), dtype=int))


def test_bad_image_parameters():
    image = np.zeros((3, 4, 3))
    with pytest.raises(ValueError, match="position_weight"):
        pixel_features(image, use_position=True, position_weight=-1)
    with pytest.raises(TypeError, match="use_position"):
        pixel_features(image, use_position="yes")
    with pytest.raises(ValueError, match=r"k must be <= the number of samples \(12\)"):
        kmeans_segment(image, 13)
    with pytest.raises(ValueError, match="k must be >= 1"):
        kmeans_segment(image, 0)
    with pytest.raises(ValueError, match="compactness"):
        slic_superpixels(image, compactness=0)
    with pytest.raises(ValueError, match="n_segments"):
        slic_superpixels(image, n_segments=0)
    with pytest.raises(ValueError, match=r"height and width.*\(3, 4, 3\).*\(4, 3\)"):
        superpixel_means(image, np.zeros((4, 3), dtype=int))
    with pytest.raises(ValueError, match="use_position"):
        inertia_curve(np.zeros((5, 2)), [1], use_position=True)
    with pytest.raises(ValueError, match="ks is empty"):
        inertia_curve(image, [])
    with pytest.raises(ValueError, match="1-D"):
        inertia_curve(np.zeros(5), [1])


def test_bad_match_clusters_arguments():
    target = np.array([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"same shape.*\(2, 2\).*\(1, 4\)"):
        match_clusters(target, target.reshape(1, 4))
    with pytest.raises(ValueError, match="label 1.*num_classes=1"):
        match_clusters(target, target, num_classes=1)
    with pytest.raises(ValueError, match="NaN"):
        match_clusters(np.array([[0.0, np.nan]]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="empty"):
        match_clusters(np.zeros((0, 2), int), np.zeros((0, 2), int))


# ---------------------------------------------------------------------------
# seeds, huge ids and huge parameters
# ---------------------------------------------------------------------------

X_SMALL = np.random.default_rng(0).random((20, 3))


@pytest.mark.parametrize("call", [lambda s: kmeans(X_SMALL, 2, seed=s), lambda s: kmeans_plusplus(X_SMALL, 2, seed=s),
                                  lambda s: kmeans_segment(X_SMALL.reshape(4, 5, 3), 2, seed=s),
                                  lambda s: inertia_curve(X_SMALL, [1, 2], seed=s)])
@pytest.mark.parametrize("seed, error, words", [
    (True, TypeError, "seed must be an int >= 0 or a numpy.random.Generator, got bool True"),
    (1.5, TypeError, "seed must be an int >= 0"),
    ("a", TypeError, "seed must be an int >= 0"),
    (-1, ValueError, "seed must be >= 0, got -1"),
])
def test_a_bad_seed_is_named_like_everywhere_else(call, seed, error, words):
    with pytest.raises(error, match=words):
        call(seed)


def test_a_generator_is_accepted_as_a_seed():
    a = kmeans(X_SMALL, 3, seed=np.random.default_rng(4))
    b = kmeans(X_SMALL, 3, seed=4)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_huge_ids_cost_no_memory():
    image = np.random.default_rng(1).random((6, 8, 3))
    small = np.repeat(np.arange(4), 12).reshape(6, 8)
    huge = np.array([0, 2**40, 2**62, 2**62 + 7], dtype=np.uint64)[small]  # only the number of ids matters
    np.testing.assert_array_equal(superpixel_means(image, huge), superpixel_means(image, small))
    target = (small >= 2).astype(int)
    np.testing.assert_array_equal(match_clusters(huge[:, ::-1].astype(np.uint64), target),
                                  match_clusters(small[:, ::-1], target))
    big_classes = np.where(target == 1, 2**40, 0)  # class ids are kept as they are
    np.testing.assert_array_equal(match_clusters(small, big_classes), np.where(match_clusters(small, target), 2**40, 0))


def test_huge_n_init_is_refused_by_name():
    with pytest.raises(ValueError, match="n_init must be <= 1000"):
        kmeans(X_SMALL, 2, n_init=10**30)


def test_slic_superpixels_number_is_approximate_and_the_merge_can_be_switched_off():
    image = data.astronaut()[::3, ::3]
    merged = slic_superpixels(image, n_segments=150)
    raw = slic_superpixels(image, n_segments=150, enforce_connectivity=False)
    np.testing.assert_array_equal(raw, slic(image, n_segments=150, compactness=10.0, start_label=0,
                                            channel_axis=-1, enforce_connectivity=False))
    assert len(np.unique(raw)) == 144 and len(np.unique(merged)) < len(np.unique(raw))  # a 12 x 12 grid
    with pytest.raises(TypeError, match="enforce_connectivity"):
        slic_superpixels(image, enforce_connectivity="no")


# ---------------------------------------------------------------------------
# the exercises of lesson 02
# ---------------------------------------------------------------------------


def test_float_labels_are_rejected_and_never_handed_on(capsys):
    # An assign_labels returning floats used to pass every case, then crash the lesson's next
    # cell with an IndexError (centers[labels]).
    from segtutor import exercises

    def my_assign_labels(X, centers):
        X, centers = np.asarray(X, float), np.asarray(centers, float)
        return ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).argmin(axis=1).astype(float)

    with pytest.raises(exercises.ExerciseFailed, match="expected integer labels, got dtype float64"):
        exercises.check("cluster.assign_labels", my_assign_labels)
    with pytest.raises(exercises.ExerciseFailed):
        exercises.check("cluster.assign_labels", my_assign_labels, hidden_seed=6101)
    chosen = exercises.yours_or_reference("cluster.assign_labels", my_assign_labels)
    assert chosen is assign_labels and "integer labels" in capsys.readouterr().out
    centers = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert (centers[chosen(X_SMALL, centers)]).shape == X_SMALL.shape  # the lesson's next step works


def test_the_empty_cluster_message_says_what_to_keep():
    from segtutor import exercises

    def my_update_centers(X, labels, k, previous=None):
        X = np.asarray(X, float)
        return np.array([X[np.asarray(labels) == j].mean(axis=0) if np.any(np.asarray(labels) == j)
                         else np.zeros(X.shape[1]) for j in range(k)])

    with pytest.raises(exercises.ExerciseFailed) as info:
        exercises.check("cluster.update_centers", my_update_centers)
    assert "case 'empty cluster keeps its previous centre': a cluster with no points keeps its previous centre" \
        in str(info.value)
