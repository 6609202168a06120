"""Pseudo-masks from boxes (segtutor.weak), compared with scikit-image, scikit-learn and torchvision."""

import re

import numpy as np
import pytest
from skimage.draw import disk, rectangle

from segtutor import data, exercises, weak

IGNORE = weak.IGNORE_INDEX


def random_boxes(rng, shape, n):
    height, width = shape
    boxes = []
    for _ in range(n):
        x0, x1 = sorted(rng.choice(width + 1, size=2, replace=False))
        y0, y1 = sorted(rng.choice(height + 1, size=2, replace=False))
        boxes.append([int(x0), int(y0), int(x1), int(y1)])
    return np.array(boxes), rng.integers(1, 4, size=n)


def skimage_box(box, shape):
    """The box drawn by scikit-image, whose ``end`` is inclusive: (y1 - 1, x1 - 1)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.zeros(shape, dtype=bool)
    rows, cols = rectangle((y0, x0), end=(y1 - 1, x1 - 1), shape=shape)
    out[rows.astype(int), cols.astype(int)] = True
    return out


# -- the box convention --------------------------------------------------------------------


def test_box_to_mask_matches_scikit_image_with_x1_y1_exclusive():
    rng = np.random.default_rng(0)
    for _ in range(50):
        shape = tuple(int(v) for v in rng.integers(1, 25, size=2))
        (box,), _ = random_boxes(rng, shape, 1)
        got = weak.box_to_mask(box, shape)
        assert got.dtype == bool and got.shape == shape
        np.testing.assert_array_equal(got, skimage_box(box, shape))
        assert got.sum() == (box[2] - box[0]) * (box[3] - box[1])  # width x1 - x0, height y1 - y0


def test_the_convention_is_torchvision_masks_to_boxes_plus_one_and_that_of_make_instance_scene():
    import torch
    from torchvision.ops import masks_to_boxes

    scene = data.make_instance_scene(seed=3, touching=True)
    inclusive = masks_to_boxes(torch.from_numpy(scene["masks"])).numpy()
    np.testing.assert_array_equal(inclusive + [0, 0, 1, 1], scene["boxes"])  # masks_to_boxes: last pixel
    for mask, box in zip(scene["masks"], scene["boxes"]):
        region = weak.box_to_mask(box, mask.shape)
        assert (mask <= region).all()  # the object lies in its box ...
        rows, cols = np.nonzero(region)
        for edge in (mask[rows.min()], mask[rows.max()], mask[:, cols.min()], mask[:, cols.max()]):
            assert edge.any()  # ... and touches all four sides: the box is tight


# -- (a) filled boxes and the overlap rule --------------------------------------------------


def brute_force_fill(boxes, labels, shape, band=None):
    """Each pixel: the class of the smallest box holding it (first listed on ties), pixel by pixel."""
    out = np.zeros(shape, dtype=np.int64)
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    for r in range(shape[0]):
        for c in range(shape[1]):
            holding = [i for i, b in enumerate(boxes) if b[0] <= c < b[2] and b[1] <= r < b[3]]
            if not holding:
                continue
            i = min(holding, key=lambda i: (areas[i], i))
            x0, y0, x1, y1 = boxes[i]
            if band is None:
                out[r, c] = labels[i]
            else:
                b = int(np.floor(band * min(x1 - x0, y1 - y0) + 0.5))
                centre = x0 + b <= c < x1 - b and y0 + b <= r < y1 - b
                out[r, c] = labels[i] if centre else IGNORE
    return out


def test_filled_boxes_smaller_box_wins_against_a_pixel_by_pixel_computation():
    rng = np.random.default_rng(1)
    for _ in range(30):
        shape = tuple(int(v) for v in rng.integers(4, 16, size=2))
        boxes, labels = random_boxes(rng, shape, int(rng.integers(1, 5)))
        np.testing.assert_array_equal(weak.filled_boxes(boxes, labels, shape), brute_force_fill(boxes, labels, shape))


def test_equal_areas_go_to_the_box_listed_first():
    boxes = [[0, 0, 4, 2], [2, 0, 6, 2]]
    assert weak.filled_boxes(boxes, [1, 2], (2, 6))[0, 2] == 1
    assert weak.filled_boxes(boxes[::-1], [2, 1], (2, 6))[0, 2] == 2
    np.testing.assert_array_equal(weak.paint_order([[0, 0, 4, 4], [0, 0, 2, 2], [1, 1, 3, 3]]), [0, 2, 1])


# -- (b) the ignored band ------------------------------------------------------------------


def test_box_with_band_against_scikit_image_rectangles():
    rng = np.random.default_rng(2)
    for _ in range(40):
        shape = tuple(int(v) for v in rng.integers(2, 20, size=2))
        (box,), _ = random_boxes(rng, shape, 1)
        band = int(rng.integers(0, 5))
        x0, y0, x1, y1 = box
        expected = np.where(skimage_box(box, shape), IGNORE, 0)
        if x1 - x0 > 2 * band and y1 - y0 > 2 * band:
            expected[skimage_box([x0 + band, y0 + band, x1 - band, y1 - band], shape)] = 1
        got = weak.box_with_band(box, shape, band)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)


def test_a_band_of_zero_is_the_filled_box_and_a_band_too_wide_ignores_the_whole_box():
    np.testing.assert_array_equal(weak.box_with_band([1, 2, 4, 5], (6, 6), 0), weak.box_to_mask([1, 2, 4, 5], (6, 6)))
    wide = weak.box_with_band([0, 0, 2, 2], (10, 10), 3)  # 2 - 3 < 0 must not wrap around the image
    assert (wide[:2, :2] == IGNORE).all() and (wide[2:] == 0).all() and (wide[:, 2:] == 0).all()


def test_banded_boxes_against_a_pixel_by_pixel_computation():
    rng = np.random.default_rng(3)
    for band in (0.0, 0.2, 0.35, 0.5):
        shape = (14, 17)
        boxes, labels = random_boxes(rng, shape, 3)
        np.testing.assert_array_equal(weak.banded_boxes(boxes, labels, shape, band=band),
                                      brute_force_fill(boxes, labels, shape, band=band))


# -- (c) refined inside the box --------------------------------------------------------------


@pytest.mark.parametrize("method", ["threshold", "kmeans", "both"])
def test_refine_box_finds_a_disk_drawn_by_scikit_image(method):
    rng = np.random.default_rng(4)
    image = 0.3 + 0.05 * rng.standard_normal((40, 50, 3))
    truth = np.zeros((40, 50), dtype=bool)
    truth[disk((20, 24), 9, shape=truth.shape)] = True
    image[truth] = (0.9, 0.6, 0.1) + 0.05 * rng.standard_normal((truth.sum(), 3))
    rows, cols = np.nonzero(truth)
    box = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    found, unsure = weak.refine_box(np.clip(image, 0, 1), box, method)
    assert (found <= weak.box_to_mask(box, truth.shape)).all()
    assert data_iou(found, truth) > 0.97
    assert not (found & unsure).any()


def data_iou(a, b):
    from sklearn.metrics import jaccard_score

    return jaccard_score(b.ravel(), a.ravel())


def test_refined_pseudo_masks_are_close_to_the_truth_and_much_better_than_filled_boxes():
    scenes = weak.instance_scenes(20, seed=9)
    box = weak.pseudo_label_scores(weak.pseudo_labels(scenes, "box"), scenes["truth"])
    band = weak.pseudo_label_scores(weak.pseudo_labels(scenes, "band"), scenes["truth"])
    refined = weak.pseudo_label_scores(weak.pseudo_labels(scenes, "refined"), scenes["truth"])
    assert refined["miou"] > 0.95 and refined["labelled"] > 0.95
    assert box["miou"] < refined["miou"] - 0.15 and box["labelled"] == 1.0
    assert band["labelled"] < 0.95  # the band is ignored


def test_refined_boxes_fall_back_to_the_band_when_the_method_finds_nothing():
    image = np.full((12, 12, 3), 0.5)  # nothing to find: a flat box
    got = weak.refined_boxes(image, [[2, 2, 10, 10]], [2], min_fill=0.25, band=0.25)
    np.testing.assert_array_equal(got, weak.banded_boxes([[2, 2, 10, 10]], [2], (12, 12), band=0.25))


def test_refined_overlaps_go_to_the_smaller_box():
    image = np.zeros((12, 12, 3))
    image[1:9, 1:9] = (1.0, 0.0, 0.0)
    image[5:8, 5:8] = (0.0, 0.0, 1.0)
    got = weak.refined_boxes(image, [[5, 5, 8, 8], [0, 0, 10, 10]], [3, 1], method="threshold", min_fill=0)
    assert (got[5:8, 5:8] == 3).all() and (got[1:5, 1:9] == 1).all() and got[0, 0] == 0


# -- (d) relabelling -------------------------------------------------------------------------


def test_relabel_keeps_the_box_class_inside_the_boxes_only():
    prediction = np.array([[1, 1, 2, 0, 1],
                           [0, 1, 1, 0, 1],
                           [3, 0, 0, 0, 0]])
    got = weak.relabel(prediction, [[0, 0, 3, 2]], [1], mode="replace")
    np.testing.assert_array_equal(got, [[1, 1, IGNORE, 0, 0],
                                        [0, 1, 1, 0, 0],
                                        [0, 0, 0, 0, 0]])


def test_relabel_agree_keeps_only_what_the_network_and_the_start_agree_on():
    prediction = np.array([[1, 1, 0, 0],
                           [0, 1, 1, 2]])
    start = np.array([[1, 0, 0, IGNORE],
                      [1, 1, IGNORE, IGNORE]])
    got = weak.relabel(prediction, [[0, 0, 4, 2]], [1], start=start, mode="agree")
    # agree: 1/1 -> 1, 0/0 -> 0; disagree -> ignored; start ignored -> the network (another class: ignored)
    np.testing.assert_array_equal(got, [[1, IGNORE, 0, 0],
                                        [IGNORE, 1, 1, IGNORE]])


def test_relabel_falls_back_to_the_start_where_the_network_misses_a_box():
    prediction = np.zeros((4, 4), dtype=np.int64)
    start = weak.banded_boxes([[0, 0, 4, 4]], [2], (4, 4), band=0.25)
    np.testing.assert_array_equal(weak.relabel(prediction, [[0, 0, 4, 4]], [2], start=start), start)


# -- pseudo-label quality ------------------------------------------------------------------


def test_pseudo_label_iou_matches_scikit_learn_on_the_labelled_pixels():
    from sklearn.metrics import jaccard_score

    rng = np.random.default_rng(5)
    for _ in range(20):
        truth = rng.random((9, 11)) < 0.4
        pseudo = np.where(rng.random(truth.shape) < 0.2, ~truth, truth).astype(np.int64)
        pseudo[rng.random(truth.shape) < 0.3] = IGNORE
        kept = pseudo != IGNORE
        assert weak.pseudo_label_iou(pseudo, truth) == pytest.approx(
            jaccard_score(truth[kept], pseudo[kept] == 1, zero_division=1.0))
    assert weak.pseudo_label_iou(np.full((2, 2), IGNORE), np.ones((2, 2), bool)) == 1.0


def test_pseudo_label_scores_match_scikit_learn_macro_jaccard():
    from sklearn.metrics import jaccard_score

    scenes = weak.instance_scenes(4, seed=6)
    pseudo = weak.pseudo_labels(scenes, "band")
    kept = pseudo != IGNORE
    scores = weak.pseudo_label_scores(pseudo, scenes["truth"])
    assert scores["miou"] == pytest.approx(jaccard_score(scenes["truth"][kept], pseudo[kept], average="macro"))
    assert scores["labelled"] == pytest.approx(kept.mean())
    as_background = np.where(kept, pseudo, 0).ravel()
    assert scores["miou_ignored_as_background"] == pytest.approx(
        jaccard_score(scenes["truth"].ravel(), as_background, average="macro"))


# -- data and determinism ------------------------------------------------------------------


def test_instance_scenes_are_the_fcn_scenes_and_pseudo_labels_are_deterministic():
    from segtutor import fcn

    config = weak.lesson_config()
    scenes = weak.instance_scenes(5, seed=config.train_seed, config=config)
    images, labels = fcn.scenes(5, seed=config.train_seed, config=config)
    np.testing.assert_array_equal(scenes["images"], images)
    np.testing.assert_array_equal(scenes["truth"], labels)
    for kind in ("box", "band", "refined"):
        np.testing.assert_array_equal(weak.pseudo_labels(scenes, kind),
                                      weak.pseudo_labels(weak.instance_scenes(5, seed=config.train_seed,
                                                                              config=config), kind))
    assert weak.IGNORE_INDEX == fcn.IGNORE_INDEX


def test_train_kinds_trains_each_kind_once_then_reloads(tmp_path, monkeypatch):
    from segtutor import fcn

    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path))
    config = fcn.Config(iterations=2, batch_size=2, train_scenes=3, val_scenes=2, eval_every=2)
    runs = weak.train_kinds(config, kinds=("box", "self-trained", "full"), progress=False)
    assert list(runs) == ["box", "self-trained", "full"]
    assert not any(run["from_cache"] for run in runs.values())
    again = weak.train_kinds(config, kinds=("box", "self-trained", "full"), progress=False)
    assert all(run["from_cache"] for run in again.values())
    for kind in runs:
        for key, value in runs[kind]["result"]["state_dict"].items():
            assert (value == again[kind]["result"]["state_dict"][key]).all()
    scenes = weak.instance_scenes(3, seed=config.train_seed, config=config)
    np.testing.assert_array_equal(runs["full"]["labels"], scenes["truth"])
    np.testing.assert_array_equal(runs["box"]["labels"], weak.pseudo_labels(scenes, "box"))
    val = fcn.scenes(2, seed=config.val_seed, config=config)
    scores = weak.score_kinds(runs, *val)
    assert scores["full"]["ratio_to_full"] == 1.0
    assert scores["box"]["ratio_to_full"] == pytest.approx(scores["box"]["miou"] / scores["full"]["miou"])


# -- bad input -----------------------------------------------------------------------------


CONVENTION = r"\(x0, y0, x1, y1\) in pixels with x1, y1 exclusive"


@pytest.mark.parametrize("boxes, match", [
    ([[-1, 0, 3, 3]], "outside the 8x10 image"),
    ([[0, 0, 11, 3]], "outside the 8x10 image"),
    ([[0, 0, 3, 9]], "outside the 8x10 image"),
    ([[2, 0, 2, 3]], "is empty"),
    ([[0, 3, 4, 3]], "is empty"),
    ([[5, 0, 2, 3]], "x1 < x0"),
    ([[0, 5, 2, 3]], "y1 < y0"),
    ([[0.5, 0, 2, 3]], "not whole pixels"),
    ([[np.nan, 0, 2, 3]], "NaN"),
    ([[0, 0, np.inf, 3]], "NaN or infinite"),
    ([[0, 0, 2]], r"shape \(N, 4\)"),
])
def test_bad_boxes_name_the_convention(boxes, match):
    with pytest.raises(ValueError, match=match) as info:
        weak.filled_boxes(boxes, [1], (8, 10))
    assert re.search(CONVENTION, str(info.value))


@pytest.mark.parametrize("labels, match", [
    ([0], r"object classes 1..3 \(0 is the background\)"),
    ([4], r"object classes 1..3"),
    ([-1], r"object classes 1..3"),
    ([1, 2], r"one class per box"),
])
def test_bad_labels_say_what_is_expected(labels, match):
    with pytest.raises(ValueError, match=match):
        weak.check_boxes([[0, 0, 2, 2]], (4, 4), labels)


def test_bad_types_are_refused_clearly():
    with pytest.raises(TypeError, match="boxes must hold numbers"):
        weak.box_to_mask(["a", "b", "c", "d"], (4, 4))
    with pytest.raises(TypeError, match="labels must be integer class ids"):
        weak.check_boxes([[0, 0, 2, 2]], (4, 4), [1.5])
    with pytest.raises(TypeError, match=r"shape must be the image size \(H, W\)"):
        weak.box_to_mask([0, 0, 2, 2], 4)
    with pytest.raises(ValueError, match="band"):
        weak.box_with_band([0, 0, 2, 2], (4, 4), -1)
    with pytest.raises(ValueError, match="method must be one of"):
        weak.refine_box(np.zeros((4, 4, 3)), [0, 0, 2, 2], "grabcut")
    with pytest.raises(ValueError, match="pseudo must hold 0, 1 or 255"):
        weak.pseudo_label_iou(np.array([[2]]), np.array([[True]]))
    with pytest.raises(ValueError, match="kind must be one of"):
        weak.pseudo_labels(weak.instance_scenes(1, seed=0), "self-trained")
    with pytest.raises(ValueError, match="nothing to score"):
        weak.pseudo_label_scores(np.full((2, 2), IGNORE), np.zeros((2, 2), int))


def test_float_boxes_with_whole_values_are_accepted():
    np.testing.assert_array_equal(weak.box_to_mask(np.array([1.0, 0.0, 3.0, 2.0], np.float32), (3, 4)),
                                  weak.box_to_mask([1, 0, 3, 2], (3, 4)))


# -- the exercises -------------------------------------------------------------------------


WEAK_EXERCISES = ["weak.box_to_mask", "weak.box_with_band", "weak.pseudo_label_iou", "weak.filled_boxes"]


@pytest.mark.parametrize("exercise_id", WEAK_EXERCISES)
def test_each_exercise_has_staged_hints_and_a_catalogue_the_visible_cases_reject(exercise_id):
    ex = exercises.get(exercise_id)
    assert isinstance(ex.hint, tuple) and len(ex.hint) >= 2
    assert len(ex.wrong_answers) >= 5
    assert exercises.check(exercise_id, ex.reference_function(), hidden_seed=5).passed
    for wrong in ex.wrong_answers:
        with pytest.raises(exercises.ExerciseFailed) as info:
            exercises.check(exercise_id, wrong.func)
        assert re.search(wrong.points_at, str(info.value)), (wrong.name, str(info.value))


# -- pictures ------------------------------------------------------------------------------


def test_figures_have_titles_labels_and_a_legend():
    import matplotlib.pyplot as plt

    scenes = weak.instance_scenes(1, seed=7)
    panels = {weak.KIND_NAMES[k]: weak.pseudo_labels(scenes, k)[0] for k in ("box", "band", "refined")}
    fig = weak.plot_pseudo_labels(scenes["images"][0], scenes["boxes"][0], panels, truth=scenes["truth"][0])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("image and boxes") and all("mIoU" in t for t in titles[1:])
    assert "ignored (255)" in [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    ax = weak.plot_scores({"box": {"miou": 0.7, "ratio_to_full": 0.8}, "full": {"miou": 0.875, "ratio_to_full": 1}})
    assert ax.get_ylabel() == "validation mIoU (true masks)" and ax.get_legend() is not None
    plt.close(ax.figure)


# -- the widget ----------------------------------------------------------------------------


def test_weak_label_explorer_shows_each_scene_with_its_scores():
    from segtutor import widgets

    scenes = weak.instance_scenes(3, seed=8)
    pseudo = {"filled": weak.pseudo_labels(scenes, "box"), "band": weak.pseudo_labels(scenes, "band")}
    explorer = widgets.WeakLabelExplorer(scenes, pseudo)
    first = explorer.png()
    titles = [ax.get_title() for ax in explorer.figure.axes]
    assert titles[0].startswith("scene 0") and titles[-1].startswith("true masks")
    expected = weak.pseudo_label_scores(pseudo["band"][0], scenes["truth"][0])["miou"]
    assert f"mIoU {expected:.2f}" in titles[2]
    np.testing.assert_array_equal(explorer.set(index=2), np.stack([pseudo["filled"][2], pseudo["band"][2]]))
    assert explorer.png() != first
    with pytest.raises(ValueError, match=r"index must be 0..2"):
        explorer.set(index=3)
    with pytest.raises(ValueError, match="must have shape"):
        widgets.WeakLabelExplorer(scenes, {"bad": pseudo["band"][:2]})
    import base64

    assert base64.b64decode(explorer._repr_mimebundle_()["image/png"])[:4] == b"\x89PNG"  # static renders
    controls = explorer.widget().children[0].children
    assert controls and all(getattr(c, "description", "") for c in controls)


def test_other_training_scenes_are_not_mistaken_for_cached_ones(tmp_path, monkeypatch):
    from segtutor import fcn

    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path))
    config = fcn.Config(iterations=1, batch_size=2, train_scenes=2, val_scenes=2, eval_every=1)
    first = weak.train_kinds(config, kinds=("box",), progress=False)
    other = weak.instance_scenes(2, seed=99, config=config)
    second = weak.train_kinds(config, kinds=("box",), progress=False, scenes=other)
    assert not first["box"]["from_cache"] and not second["box"]["from_cache"]


# -- on a hub: Penn-Fudan photographs (conftest's tiny copy) -----------------------------------

# The two people of every conftest.pennfudan image, drawn there as mask[5:30, 4:14] and mask[10:38, 30:41]:
FUDAN_BOXES = np.array([[4, 5, 14, 30], [30, 10, 41, 38]])


def _tiny_hub(**changes):
    from segtutor import fcn

    values = dict(dataset="pennfudan", backbone="tiny", size=32, iterations=4, batch_size=2, eval_every=2,
                  warmup=2, lr=0.05, val_images=0, threads=1)
    values.update(changes)
    return fcn.HubConfig(**values)


def _fudan_photo_and_mask(root, k=1):
    from PIL import Image

    base = root / "PennFudanPed"
    photo = np.asarray(Image.open(base / "PNGImages" / f"FudanPed{k:05d}.png").convert("RGB"))
    return photo, np.asarray(Image.open(base / "PedMasks" / f"FudanPed{k:05d}_mask.png"))


@pytest.mark.parametrize("kind", weak.HUB_KINDS)
def test_box_label_dataset_gives_the_labels_of_weaks_own_functions(fudan_root, kind):
    from segtutor import datasets

    data = weak.BoxLabelDataset(datasets.PennFudan(fudan_root, target="instances"), kind)
    photo, mask = _fudan_photo_and_mask(fudan_root)
    people = np.ones(2, dtype=np.int64)
    expected = {"box": lambda: weak.filled_boxes(FUDAN_BOXES, people, mask.shape),
                "band": lambda: weak.banded_boxes(FUDAN_BOXES, people, mask.shape),
                "refined": lambda: weak.refined_boxes(photo, FUDAN_BOXES, people),
                "full": lambda: (mask > 0).astype(np.int64)}[kind]()
    assert len(data) == 2
    np.testing.assert_array_equal(data.boxes[0], FUDAN_BOXES)
    np.testing.assert_array_equal(data.truth[0], mask > 0)
    np.testing.assert_array_equal(data.labels[0], expected)
    image, labels = data[0]  # no transforms: the photograph and its labels at full size
    assert tuple(image.shape) == (3, 40, 56) and labels.dtype == torch_int64()
    np.testing.assert_array_equal(labels.numpy(), expected)
    np.testing.assert_allclose(image.numpy().transpose(1, 2, 0), photo / 255, atol=1e-6)
    quality = data.quality()
    reference = weak.pseudo_label_scores(np.stack([expected, expected]), np.stack([mask > 0] * 2), num_classes=2)
    assert quality == pytest.approx(reference)
    if kind == "full":
        assert quality["miou"] == 1.0 and quality["labelled"] == 1.0
    if kind == "band":
        assert quality["labelled"] < 1.0 and (expected == weak.IGNORE_INDEX).any()


def torch_int64():
    import torch

    return torch.int64


def test_box_label_dataset_transforms_move_the_labels_with_the_photograph(fudan_root):
    """After random crops, scales and flips, label 1 is still on the people's colours, 0 on the grey."""
    import torch

    from segtutor import datasets

    data = weak.BoxLabelDataset(datasets.PennFudan(fudan_root, target="instances"), "full",
                                transforms=datasets.segmentation_transforms(32, train=True))
    torch.manual_seed(0)
    for _ in range(6):
        image, labels = data[1]
        assert tuple(image.shape) == (3, 32, 32) and tuple(labels.shape) == (32, 32)
        rgb = image.numpy().transpose(1, 2, 0) * 255
        grey = np.abs(rgb - 90).max(-1) < 1
        person = (np.abs(rgb - (200, 30, 30)).max(-1) < 1) | (np.abs(rgb - (30, 30, 200)).max(-1) < 1)
        labels = labels.numpy()
        assert (labels[person] == 1).all() and (labels[grey] == 0).all()
        assert person.any() or grey.any()


def test_hub_run_is_one_line_without_the_full_profile_or_the_data(tmp_path, capsys):
    assert weak.hub_run(profile="quick") is None
    first = capsys.readouterr().out
    assert first.count("\n") == 1 and "quick profile" in first and "segtutor fetch pennfudan" in first
    assert weak.hub_run(_tiny_hub(), profile="full", root=tmp_path) is None
    second = capsys.readouterr().out
    assert second.count("\n") == 1 and f"is not in {tmp_path}" in second and "segtutor fetch pennfudan" in second


def test_hub_run_trains_each_kind_scores_it_on_true_masks_and_reloads(tmp_path, capsys, monkeypatch):
    import matplotlib.pyplot as plt

    from conftest import pennfudan
    from segtutor import datasets, fcn

    root = pennfudan(tmp_path / "fudan", n=4)  # 3 training photographs, 1 held out
    monkeypatch.setattr("segtutor.profiles._cuda_available", lambda: False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)  # no data-loader workers
    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path / "cache"))
    config = _tiny_hub()
    run = weak.hub_run(config, root=root, profile="full", progress=False)
    out = capsys.readouterr().out
    assert out.count("trained in") == len(weak.HUB_KINDS) and not any(run["from_cache"].values())
    assert list(run["scores"]) == list(weak.HUB_KINDS) and (run["train_images"], run["val_images"]) == (3, 1)
    for kind, scores in run["scores"].items():
        assert 0 <= scores["miou"] <= 1 and scores["ratio_to_full"] == pytest.approx(
            scores["miou"] / run["scores"]["full"]["miou"])
        assert len(run["histories"][kind]["loss"]) == config.iterations
    # scored against the TRUE masks of the held-out photograph (not the band's, which ignore pixels):
    # the confusion matrix's rows count every pixel of each true class
    _, val, _ = fcn.hub_datasets(config, root)
    truth = np.asarray(val[0][1])
    for kind in weak.HUB_KINDS:
        np.testing.assert_array_equal(run["scores"][kind]["confusion"].sum(1), np.bincount(truth.ravel(), minlength=2))
    # pseudo-label quality on the training photographs, as BoxLabelDataset gives it
    train, _ = datasets.pennfudan_split(datasets.PennFudan(root, target="instances"))
    assert run["quality"]["band"] == pytest.approx(weak.BoxLabelDataset(train, "band").quality())
    assert run["quality"]["full"]["miou"] == 1.0
    assert run["miou"] == {k: s["miou"] for k, s in run["scores"].items()} and run["ratio_to_full"]["full"] == 1.0
    assert run["labelled"]["band"] == run["quality"]["band"]["labelled"] < 1 == run["labelled"]["box"]
    (example,), (held,) = run["examples"], run["predictions"]
    assert set(example["labels"]) == set(held["predictions"]) == set(weak.HUB_KINDS)
    assert held["image"].shape == (32, 32, 3) and all(p.shape == (32, 32) for p in held["predictions"].values())

    again = weak.hub_run(config, root=root, profile="full", progress=False)
    assert capsys.readouterr().out.count("trained earlier") == len(weak.HUB_KINDS)
    assert all(again["from_cache"].values())
    assert {k: s["miou"] for k, s in again["scores"].items()} == {k: s["miou"] for k, s in run["scores"].items()}

    fig = weak.plot_hub_run(run)
    titles = [ax.get_title() for ax in fig.axes]
    assert "held-out mIoU" in fig.axes[0].get_ylabel() and len(fig.axes) == 1 + 2 * (len(weak.HUB_KINDS) + 1)
    assert any(t.startswith("(b) box + ignored band\nmIoU") for t in titles)
    plt.close(fig)
    assert weak.hub_table(run).splitlines()[-1].startswith("true masks")


def test_hub_run_gives_the_same_numbers_twice(tmp_path, capsys, monkeypatch):
    from conftest import pennfudan

    root = pennfudan(tmp_path / "fudan", n=4)
    monkeypatch.setattr("segtutor.profiles._cuda_available", lambda: False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    runs = []
    for cache in ("one", "two"):  # two caches: both runs train
        monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path / cache))
        runs.append(weak.hub_run(_tiny_hub(), kinds=("refined", "full"), root=root, profile="full", progress=False))
    assert not any(runs[1]["from_cache"].values())
    for kind in ("refined", "full"):
        assert runs[0]["histories"][kind]["loss"] == runs[1]["histories"][kind]["loss"]
        np.testing.assert_array_equal(runs[0]["scores"][kind]["confusion"], runs[1]["scores"][kind]["confusion"])
        np.testing.assert_array_equal(runs[0]["predictions"][0]["predictions"][kind],
                                      runs[1]["predictions"][0]["predictions"][kind])


def test_hub_run_and_box_label_dataset_name_bad_input(fudan_root):
    from segtutor import datasets, fcn

    with pytest.raises(ValueError, match=r"kinds must be .*out of \('box', 'band', 'refined', 'full'\)"):
        weak.hub_run(_tiny_hub(), kinds=("box", "self-trained"), profile="quick")
    with pytest.raises(TypeError, match="kinds must be a sequence"):
        weak.hub_run(_tiny_hub(), kinds="box", profile="quick")
    with pytest.raises(TypeError, match="config must be a segtutor.fcn.HubConfig"):
        weak.hub_run(fcn.Config(), profile="quick")
    with pytest.raises(ValueError, match="config.dataset must be 'pennfudan'"):
        weak.hub_run(_tiny_hub(dataset="voc"), profile="quick")
    photos = datasets.PennFudan(fudan_root, target="instances")
    with pytest.raises(ValueError, match="kind must be one of"):
        weak.BoxLabelDataset(photos, "filled")
    with pytest.raises(TypeError, match="target dict holding 'boxes'"):
        weak.BoxLabelDataset(datasets.PennFudan(fudan_root, target="semantic"), "box")
    with pytest.raises(TypeError, match="data must be a dataset"):
        weak.BoxLabelDataset(42, "box")
    with pytest.raises(TypeError, match="takes no options"):
        weak.BoxLabelDataset(photos, "box", band=0.3)
    with pytest.raises(TypeError, match="what segtutor.weak.hub_run returned"):
        weak.plot_hub_run({"scores": {}})


def test_weak_label_explorer_redraws_only_what_changes_and_shows_what_a_full_render_shows():
    """After the first picture the explorer redraws only the panels and titles (blitting);
    the result equals a new explorer's full render of the same scene, pixel for pixel."""
    import io

    from PIL import Image

    from segtutor import widgets

    scenes = weak.instance_scenes(4, seed=8)
    pseudo = {"filled": weak.pseudo_labels(scenes, "box"), "refined": weak.pseudo_labels(scenes, "refined")}
    explorer = widgets.WeakLabelExplorer(scenes, pseudo)
    explorer.png()
    for index in (3, 1):
        explorer.set(index=index)
        assert explorer._background is not None  # the static part was not drawn again
        blitted = np.asarray(Image.open(io.BytesIO(explorer.png())))
        fresh = np.asarray(Image.open(io.BytesIO(widgets.WeakLabelExplorer(scenes, pseudo, index=index).png())))
        np.testing.assert_array_equal(blitted, fresh)
