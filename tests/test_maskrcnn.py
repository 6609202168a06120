"""segtutor.maskrcnn: targets, torchvision's Mask R-CNN, COCO evaluation, NumPy parts, data."""

import json
import re
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from pycocotools import mask as mask_utils  # noqa: E402

import segtutor.exercises.maskrcnn  # noqa: E402,F401  (registers the exercises)
from segtutor import exercises, maskrcnn  # noqa: E402
from segtutor.exercises import _core  # noqa: E402

TINY = maskrcnn.Config(iterations=3, batch_size=2, train_scenes=4, warmup=2)


@pytest.fixture(scope="module")
def tiny_result():
    return maskrcnn.train(TINY, progress=False)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# -- scenes and targets --------------------------------------------------------------------


def test_scenes_are_deterministic_and_do_not_depend_on_n():
    a = maskrcnn.instance_scenes(3, seed=5)
    b = maskrcnn.instance_scenes(5, seed=5)
    for x, y in zip(a, b):
        assert np.array_equal(x["image"], y["image"]) and np.array_equal(x["masks"], y["masks"])
    c = maskrcnn.instance_scenes(3, seed=6)
    assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_scenes_have_several_classes_and_touching_objects_of_one_class():
    scenes = maskrcnn.instance_scenes(40, seed=3)
    counts = [len(s["labels"]) for s in scenes]
    assert min(counts) >= 1 and max(counts) <= 6
    assert set(np.concatenate([s["labels"] for s in scenes]).tolist()) == {1, 2, 3}
    # some objects of one class touch: a semantic map merges them into one region
    merged = maskrcnn.count_objects(scenes)
    assert (merged["semantic_regions"] < merged["true"]).sum() >= 3
    for s in scenes:
        assert s["masks"].sum(axis=0).max() <= 1  # visible parts never overlap
        maskrcnn.check_target(s, s["image"].shape)


def test_empty_scenes():
    scene = maskrcnn.instance_scenes(2, seed=0, empty=1)[0]
    assert scene["masks"].shape == (0, 96, 96) and scene["boxes"].shape == (0, 4)
    assert len(maskrcnn.check_target(scene, (96, 96))["labels"]) == 0


def _target(**changes):
    masks = np.zeros((1, 10, 12), bool)
    masks[0, 2:6, 3:8] = True
    target = {"boxes": [[3.0, 2.0, 8.0, 6.0]], "labels": [2], "masks": masks}
    target.update(changes)
    return target


@pytest.mark.parametrize("changes, error, pattern", [
    ({"boxes": [[8.0, 2.0, 3.0, 6.0]]}, ValueError, r"x1 <= x0"),
    ({"boxes": [[3.0, 6.0, 8.0, 2.0]]}, ValueError, r"y1 <= y0"),
    ({"boxes": [[3.0, 2.0, 13.0, 6.0]]}, ValueError, r"outside the 10x12 image"),
    ({"boxes": [[-1.0, 2.0, 8.0, 6.0]]}, ValueError, r"outside"),
    ({"boxes": [[3.0, 2.0, 8.0]]}, ValueError, r"shape \(N, 4\)"),
    ({"labels": [4]}, ValueError, r"class id 4 is out of range.*1 \.\. 3"),
    ({"labels": [0]}, ValueError, r"0 is the background"),
    ({"labels": [1, 2]}, ValueError, r"1 boxes but 2 labels"),
    ({"labels": [1.5]}, TypeError, r"integer class ids"),
    ({"masks": np.zeros((1, 12, 10), bool)}, ValueError, r"masks must have shape \(N, H, W\) = \(1, 10, 12\)"),
    ({"masks": np.zeros((2, 10, 12), bool)}, ValueError, r"1 boxes but 2 masks"),
    ({"masks": np.full((1, 10, 12), 3)}, ValueError, r"0/1"),
    ({"boxes": "box"}, TypeError, r"numbers"),
])
def test_bad_targets_get_clear_errors(changes, error, pattern):
    with pytest.raises(error, match=pattern):
        maskrcnn.check_target(_target(**changes), (10, 12))


def test_check_target_needs_a_dict_with_boxes_and_labels():
    with pytest.raises(TypeError, match="dict"):
        maskrcnn.check_target([[0, 0, 1, 1]], (4, 4))
    with pytest.raises(ValueError, match="no 'labels'"):
        maskrcnn.check_target({"boxes": [[0, 0, 1, 1]]}, (4, 4))
    out = maskrcnn.check_target(_target(), (10, 12))
    assert out["masks"].dtype == bool and out["boxes"].dtype == np.float32


def test_config_validation():
    with pytest.raises(ValueError, match="min_objects must be <= max_objects"):
        maskrcnn.Config(min_objects=5, max_objects=2)
    with pytest.raises(ValueError, match="one size per pyramid level"):
        maskrcnn.Config(anchor_sizes=(16, 32))
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        maskrcnn.Config(batch_size=2.5)
    assert maskrcnn.Config().as_dict()["widths"] == [32, 64, 128]


# -- the model -----------------------------------------------------------------------------


def test_model_is_torchvisions_mask_rcnn_with_the_configured_parts():
    config = maskrcnn.Config(sampling_ratio=2, box_batch=16)
    model = maskrcnn.build_model(config)
    assert isinstance(model, torchvision.models.detection.MaskRCNN)
    assert model.roi_heads.mask_roi_pool.sampling_ratio == 2
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 16
    assert model.rpn.anchor_generator.sizes == ((12,), (24,), (48,), (96,))
    with pytest.raises(TypeError, match="Config"):
        maskrcnn.build_model({"size": 96})


def test_mask_branch_reads_a_stride_2_map_that_the_rpn_never_sees():
    torch.manual_seed(0)
    model = maskrcnn.build_model(maskrcnn.Config(mask_stride=2)).eval()
    images = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        features = model.backbone(images)
    assert list(features) == ["0", "1", "2", "pool", "fine"]
    assert features["fine"].shape == (2, 64, 48, 48) and features["0"].shape == (2, 64, 24, 24)
    assert model.roi_heads.mask_roi_pool.featmap_names == ["fine"]
    assert model.roi_heads.box_roi_pool.featmap_names == ["0"]
    # the RPN scores the anchors of the four pyramid levels only: 3 per cell of 24², 12², 6², 3²
    image_list = torchvision.models.detection.image_list.ImageList(images, [(96, 96)] * 2)
    with torch.no_grad():
        levels = [v for k, v in features.items() if k != "fine"]
        anchors = model.rpn.anchor_generator(image_list, levels)
        proposals, _ = model.rpn(image_list, features)
    assert anchors[0].shape == (3 * (24**2 + 12**2 + 6**2 + 3**2), 4)
    assert len(proposals) == 2 and proposals[0].shape[1] == 4
    # stride 4: torchvision's BackboneWithFPN and RPN as they are
    plain = maskrcnn.build_model(maskrcnn.Config(mask_stride=4))
    assert type(plain.backbone) is torchvision.models.detection.backbone_utils.BackboneWithFPN
    assert type(plain.rpn) is torchvision.models.detection.rpn.RegionProposalNetwork
    assert plain.roi_heads.mask_roi_pool.featmap_names == ["0"]
    with pytest.raises(ValueError, match="mask_stride must be 2 or 4"):
        maskrcnn.Config(mask_stride=8)


def test_trained_model_reloads_the_same_configuration_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path))
    config = maskrcnn.Config(iterations=1, batch_size=1, train_scenes=1, warmup=1)
    model, result, from_cache = maskrcnn.trained_model(config, name="test06", progress=False)
    again, result_again, from_cache_again = maskrcnn.trained_model(config, name="test06", progress=False)
    assert (from_cache, from_cache_again) == (False, True)
    assert result_again["history"]["loss"] == result["history"]["loss"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    other = maskrcnn.Config(iterations=1, batch_size=1, train_scenes=1, warmup=1, seed=1)
    assert maskrcnn.trained_model(other, name="test06", progress=False)[2] is False
    with pytest.raises(TypeError, match="Config"):
        maskrcnn.trained_model(config.as_dict())


def test_the_lessons_training_is_the_same_in_the_student_release():
    """nbgrader's release changes solution and test cells only: the student run hits the source run's checkpoint."""
    import nbformat

    from segtutor import paths

    nb = nbformat.read(paths.lessons_dir() / "06_maskrcnn.ipynb", as_version=4)
    training_cells = [c for c in nb.cells if c.cell_type == "code" and
                      ("maskrcnn.Config(" in c.source or "trained_model(" in c.source)]
    assert len(training_cells) == 2
    for cell in training_cells:
        meta = cell.metadata.get("nbgrader", {})
        assert not meta.get("solution") and not meta.get("grade"), cell.source
        assert "my_" not in cell.source  # it uses nothing a learner writes


def test_an_image_without_objects_trains():
    torch.manual_seed(0)
    model = maskrcnn.build_model()
    scenes = maskrcnn.instance_scenes(2, seed=0, empty=1)
    pairs = [maskrcnn.scene_tensors(s) for s in scenes]
    losses = model([p[0] for p in pairs], [p[1] for p in pairs])
    assert set(losses) == set(maskrcnn.LOSS_NAMES)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    # a batch of background only: no box, class or mask loss from objects, yet finite
    empty = [maskrcnn.scene_tensors(scenes[0])]
    losses = model([p[0] for p in empty], [p[1] for p in empty])
    assert losses["loss_mask"].item() == 0.0 and torch.isfinite(sum(losses.values()))


def test_flip_keeps_boxes_on_their_masks():
    scene = maskrcnn.instance_scenes(1, seed=2)[0]
    image, target = maskrcnn.scene_tensors(scene, flip=True)
    masks = target["masks"].bool()
    expected = torchvision.ops.masks_to_boxes(masks) + torch.tensor([0, 0, 1, 1])
    assert torch.equal(target["boxes"], expected)
    assert torch.equal(image[:, :, 0], torch.from_numpy(scene["image"][:, -1].T.copy()))


def test_training_is_deterministic_and_records_every_loss(tiny_result):
    again = maskrcnn.train(TINY, progress=False)
    history = tiny_result["history"]
    assert history["loss"] == again["history"]["loss"]
    for name in ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"):
        assert len(history[name]) == TINY.iterations and np.isfinite(history[name]).all()
    assert np.allclose(history["loss"], np.sum([history[n] for n in maskrcnn.LOSS_NAMES], axis=0), rtol=1e-5)
    # warm-up: the first step uses lr / 100, then the rate grows
    assert history["lr"][0] == pytest.approx(TINY.lr / 100) and history["lr"][1] > history["lr"][0]
    assert max(history["grad_norm"]) > 0


def test_training_uses_the_configured_threads_and_restores_them(monkeypatch):
    seen = []
    real_forward = torchvision.models.detection.MaskRCNN.forward

    def forward(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(torchvision.models.detection.MaskRCNN, "forward", forward)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        maskrcnn.train(maskrcnn.Config(iterations=1, batch_size=1, train_scenes=1, warmup=1, threads=1),
                       progress=False)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        maskrcnn.Config(threads=-1)


def test_warmup_and_clipping_keep_the_first_steps_stable():
    config = maskrcnn.Config(iterations=6, batch_size=2, train_scenes=6, warmup=6, lr=0.02)
    result = maskrcnn.train(config, progress=False)
    assert np.isfinite(result["history"]["loss"]).all()
    assert max(result["history"]["loss"]) < 10


def test_training_on_scenes_with_empty_images():
    scenes = maskrcnn.instance_scenes(4, seed=0, empty=2)
    result = maskrcnn.train(maskrcnn.Config(iterations=2, batch_size=2, warmup=1), scenes=scenes, progress=False)
    assert np.isfinite(result["history"]["loss"]).all()


def test_training_rejects_bad_scenes_before_it_starts():
    scenes = maskrcnn.instance_scenes(2, seed=0)
    bad = dict(scenes[1], labels=scenes[1]["labels"] + 3)
    with pytest.raises(ValueError, match="out of range"):
        maskrcnn.train(TINY, scenes=[scenes[0], bad], progress=False)
    with pytest.raises(ValueError, match="non-empty list"):
        maskrcnn.train(TINY, scenes=[], progress=False)


def test_load_and_predict(tiny_result):
    model = maskrcnn.load_model(tiny_result)
    assert not model.training
    scenes = maskrcnn.instance_scenes(2, seed=9)
    out = maskrcnn.predict(model, [s["image"] for s in scenes])
    assert len(out) == 2
    for pred in out:
        n = len(pred["scores"])
        assert pred["boxes"].shape == (n, 4) and pred["masks"].shape == (n, 96, 96)
        assert np.all(np.diff(pred["scores"]) <= 0)
        assert np.all((pred["labels"] >= 1) & (pred["labels"] <= 3))
    with pytest.raises(ValueError, match="colour array"):
        maskrcnn.predict(model, np.zeros((96, 96)))
    with pytest.raises(TypeError, match="train"):
        maskrcnn.load_model({"weights": 1})


# -- COCO evaluation -----------------------------------------------------------------------


def _box_mask(box, shape=(40, 40)):
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = (int(v) for v in box)
    mask[y0:y1, x0:x1] = True
    return mask


def _gt(boxes, labels, shape=(40, 40)):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    return {"boxes": boxes, "labels": np.asarray(labels, int),
            "masks": np.array([_box_mask(b, shape) for b in boxes], bool).reshape((len(boxes),) + shape)}


def _pred(boxes, labels, scores, shape=(40, 40)):
    return dict(_gt(boxes, labels, shape), scores=np.asarray(scores, float))


def test_coco_perfect_predictions_score_one():
    gt = _gt([[2, 2, 12, 12], [20, 5, 30, 25]], [1, 3])
    scores = maskrcnn.coco_evaluate([gt], [_pred(gt["boxes"], gt["labels"], [0.9, 0.8])])
    assert scores == {"bbox": {"AP": 1.0, "AP50": 1.0, "AP75": 1.0}, "segm": {"AP": 1.0, "AP50": 1.0, "AP75": 1.0}}


def test_coco_a_detection_with_iou_062_counts_at_three_thresholds_of_ten():
    # a 10x10 box against a 10x11 box shifted down by 2: IoU = 80 / 130 = 0.615, a hit at 0.50, 0.55, 0.60
    gt = _gt([[0, 0, 10, 10]], [1])
    pred = _pred([[0, 2, 10, 13]], [1], [0.9])
    iou = maskrcnn.box_iou(gt["boxes"], pred["boxes"])[0, 0]
    assert 0.60 < iou < 0.65
    scores = maskrcnn.coco_evaluate([gt], [pred])
    for kind in ("bbox", "segm"):
        assert scores[kind] == {"AP": pytest.approx(0.3), "AP50": 1.0, "AP75": 0.0}


def test_coco_a_false_positive_ranked_first_halves_precision():
    gt = _gt([[0, 0, 10, 10]], [1])
    pred = _pred([[20, 20, 30, 30], [0, 0, 10, 10]], [1, 1], [0.9, 0.8])
    # precision is 1/2 at recall 1, and COCO's interpolated precision is 1/2 at every recall point
    assert maskrcnn.coco_evaluate([gt], [pred])["segm"]["AP50"] == pytest.approx(0.5)
    # the same false positive with a lower score costs nothing
    pred["scores"] = np.array([0.1, 0.8])
    assert maskrcnn.coco_evaluate([gt], [pred])["segm"]["AP50"] == pytest.approx(1.0)


def test_coco_a_missed_object_caps_recall_at_one_half():
    gt = _gt([[0, 0, 10, 10], [20, 20, 30, 30]], [2, 2])
    pred = _pred([[0, 0, 10, 10]], [2], [0.9])
    # precision 1 at the 51 recall points 0.00 .. 0.50 of 101, 0 beyond
    assert maskrcnn.coco_evaluate([gt], [pred])["bbox"]["AP"] == pytest.approx(51 / 101)


def test_coco_wrong_class_is_a_miss_and_a_false_positive():
    gt = _gt([[0, 0, 10, 10]], [1])
    assert maskrcnn.coco_evaluate([gt], [_pred([[0, 0, 10, 10]], [2], [0.9])])["segm"]["AP"] == 0.0


def test_coco_images_without_objects_and_without_detections():
    gt = _gt([[0, 0, 10, 10]], [1])
    empty_gt = _gt(np.zeros((0, 4)), [])
    empty_pred = _pred(np.zeros((0, 4)), [], [])
    hit = _pred([[0, 0, 10, 10]], [1], [0.5])
    # a detection on an empty image is a false positive, ranked above the hit
    fp = _pred([[5, 5, 15, 15]], [1], [0.9])
    assert maskrcnn.coco_evaluate([gt, empty_gt], [hit, empty_pred])["segm"]["AP"] == pytest.approx(1.0)
    assert maskrcnn.coco_evaluate([gt, empty_gt], [hit, fp])["segm"]["AP50"] == pytest.approx(0.5)
    assert maskrcnn.coco_evaluate([gt], [empty_pred])["segm"] == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    assert np.isnan(maskrcnn.coco_evaluate([empty_gt], [fp])["bbox"]["AP"])


def test_coco_bad_input():
    gt = _gt([[0, 0, 10, 10]], [1])
    with pytest.raises(ValueError, match="1 targets but 2 predictions"):
        maskrcnn.coco_evaluate([gt], [gt, gt])
    with pytest.raises(ValueError, match="no 'masks'"):
        maskrcnn.coco_evaluate([gt], [{"boxes": gt["boxes"], "labels": [1], "scores": [1.0]}])
    bad = _pred([[0, 0, 10, 10]], [1], [0.9], shape=(30, 30))
    with pytest.raises(ValueError, match=r"masks must have shape \(N, H, W\) = \(1, 40, 40\)"):
        maskrcnn.coco_evaluate([gt], [bad])
    with pytest.raises(ValueError, match="iou_types"):
        maskrcnn.coco_evaluate([gt], [_pred([[0, 0, 10, 10]], [1], [0.9])], iou_types=("keypoints",))
    with pytest.raises(ValueError, match="out of range"):
        maskrcnn.coco_evaluate([_gt([[0, 0, 10, 10]], [7])], [_pred([[0, 0, 10, 10]], [1], [0.9])])


def test_coco_results_round_trip():
    scene = maskrcnn.instance_scenes(1, seed=4)[0]
    pred = dict(scene, scores=np.linspace(1, 0.5, len(scene["labels"])))
    results = maskrcnn.to_coco_results([pred], image_ids=[7])
    json.dumps(results)  # plain JSON, as COCO result files are
    for result, mask, box in zip(results, scene["masks"], scene["boxes"]):
        assert result["image_id"] == 7
        assert np.array_equal(mask_utils.decode(result["segmentation"]).astype(bool), mask)
        x, y, w, h = result["bbox"]
        assert [x, y, x + w, y + h] == box.tolist()
        assert mask_utils.toBbox(result["segmentation"]).tolist() == result["bbox"]


def test_coco_on_real_model_outputs(tiny_result):
    """On a (barely trained) model's detections: box and mask AP agree where they must."""
    model = maskrcnn.load_model(tiny_result)
    scenes = maskrcnn.instance_scenes(6, seed=11)
    preds = maskrcnn.predict(model, [s["image"] for s in scenes])
    assert sum(len(p["scores"]) for p in preds) > 0
    scores = maskrcnn.coco_evaluate(scenes, preds)
    for kind in ("bbox", "segm"):
        for value in scores[kind].values():
            assert 0.0 <= value <= 1.0
        assert scores[kind]["AP50"] >= scores[kind]["AP75"]
    # Same detections, every box rounded to whole pixels and every mask replaced by the filled
    # box; ground truth likewise. Then box IoU equals mask IoU, so box AP must equal mask AP:
    # this checks the conversion of both to COCO (xywh boxes, Fortran-order RLE) against each other.
    boxed = []
    for p in preds:
        boxes = np.clip(np.round(p["boxes"]), 0, 96)
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxed.append(_pred(boxes[ok], p["labels"][ok], p["scores"][ok], shape=(96, 96)))
    gts = [_gt(s["boxes"], s["labels"], shape=(96, 96)) for s in scenes]
    scores = maskrcnn.coco_evaluate(gts, boxed)
    assert scores["bbox"] == pytest.approx(scores["segm"], abs=1e-9)
    # and the ground truth as predictions scores 1
    truth = [dict(s, scores=np.ones(len(s["labels"]))) for s in scenes]
    assert maskrcnn.coco_evaluate(scenes, truth)["segm"]["AP"] == pytest.approx(1.0)


# -- semantic vs instances -----------------------------------------------------------------


def test_semantic_instances_merge_touching_objects_of_one_class():
    from skimage.measure import label

    semantic = np.zeros((8, 8), int)
    semantic[1:4, 1:4] = 1
    semantic[1:4, 4:7] = 1  # touches the first square
    semantic[5:7, 1:3] = 2
    semantic[5:7, 3:5] = 1  # touches class 2, but is another class
    masks, labels = maskrcnn.semantic_instances(semantic)
    assert labels.tolist() == [1, 1, 2]
    assert masks.sum() == (semantic > 0).sum()
    scene = maskrcnn.instance_scenes(1, seed=3)[0]
    expected = sum(label(scene["semantic"] == c, connectivity=1).max() for c in (1, 2, 3))
    assert len(maskrcnn.semantic_instances(scene["semantic"])[1]) == expected


def test_a_class_map_recovers_one_of_two_touching_objects():
    masks = np.zeros((2, 8, 10), bool)
    masks[0, 2:5, 1:4] = True  # 3x3
    masks[1, 2:5, 4:9] = True  # 3x5, touching the first
    scene = {"masks": masks, "labels": np.array([1, 1]), "boxes": np.array([[1, 2, 4, 5], [4, 2, 9, 5]], float),
             "semantic": masks.any(axis=0).astype(int)}
    counts = maskrcnn.count_objects([scene])
    # one region of 24 px: IoU 15/24 with the larger square (found), 9/24 with the smaller (lost)
    assert counts["semantic_regions"].tolist() == [1] and counts["semantic_found"].tolist() == [1]
    assert counts["merged"].tolist() == [2] and counts["merged_semantic_found"].tolist() == [1]
    separated = dict(scene, scores=np.array([0.9, 0.8]))
    counts = maskrcnn.count_objects([scene], [separated])
    assert counts["detections_found"].tolist() == [2] and counts["merged_detections_found"].tolist() == [2]
    # a third object of another class touching them is not merged with them
    apart = dict(scene, masks=np.concatenate([masks, np.zeros((1, 8, 10), bool)]))
    apart["masks"][2, 5:7, 1:4] = True
    apart.update(labels=np.array([1, 1, 2]), boxes=np.array([[1, 2, 4, 5], [4, 2, 9, 5], [1, 5, 4, 7]], float),
                 semantic=scene["semantic"] + 2 * apart["masks"][2])
    assert maskrcnn.count_objects([apart])["merged"].tolist() == [2]


def test_count_objects_and_failure_cases():
    scenes = maskrcnn.instance_scenes(4, seed=3)
    truth = [dict(s, scores=np.ones(len(s["labels"]))) for s in scenes]
    # drop every detection of scene 2: it becomes the worst case
    truth[2] = dict(truth[2], scores=np.zeros(len(scenes[2]["labels"])))
    counts = maskrcnn.count_objects(scenes, truth)
    assert counts["detections"].tolist() == [len(s["labels"]) for s in scenes[:2]] + [0, len(scenes[3]["labels"])]
    assert counts["detections_found"].tolist() == counts["detections"].tolist()
    assert np.all(counts["semantic_found"] <= np.minimum(counts["true"], counts["semantic_regions"]))
    assert maskrcnn.failure_cases(scenes, truth, k=1) == [2]
    score = maskrcnn.detection_scores(scenes[2], truth[2])
    assert score == {"matched": 0, "missed": len(scenes[2]["labels"]), "false": 0, "f1": 0.0}
    with pytest.raises(ValueError, match="4 scenes but 3 predictions"):
        maskrcnn.count_objects(scenes, truth[:3])


# -- the parts, in NumPy, against torchvision ----------------------------------------------


def test_box_iou_matches_torchvision():
    rng = np.random.default_rng(0)
    a = np.concatenate([xy := rng.uniform(0, 50, (9, 2)), xy + rng.uniform(0.5, 30, (9, 2))], axis=1)
    b = np.concatenate([xy := rng.uniform(0, 50, (6, 2)), xy + rng.uniform(0.5, 30, (6, 2))], axis=1)
    ours = maskrcnn.box_iou(a, b)
    theirs = torchvision.ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert ours.shape == (9, 6) and np.allclose(ours, theirs, rtol=1e-12)
    assert maskrcnn.box_iou(a, np.zeros((0, 4))).shape == (9, 0)
    with pytest.raises(ValueError, match="x0 <= x1"):
        maskrcnn.box_iou([[5, 0, 1, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        maskrcnn.box_iou([[0, 0, 1]], [[0, 0, 1, 1]])


@pytest.mark.parametrize("sizes, ratios, stride, grid", [
    ((32,), (0.5, 1.0, 2.0), 16, (4, 5)),
    ((8, 16, 24), (0.25, 1.0, 3.0), 4, (3, 6)),
    ((12,), (0.5, 1.0, 2.0), 8, (5, 2)),
])
def test_cell_anchors_match_torchvisions_anchor_generator(sizes, ratios, stride, grid):
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList

    height, width = grid
    generator = AnchorGenerator((sizes,), (ratios,))
    images = ImageList(torch.zeros(1, 3, height * stride, width * stride), [(height * stride, width * stride)])
    anchors = generator(images, [torch.zeros(1, 1, height, width)])[0].numpy()
    per_cell = len(sizes) * len(ratios)
    for row in range(height):
        for col in range(width):
            index = (row * width + col) * per_cell
            assert np.array_equal(maskrcnn.cell_anchors(row, col, stride, sizes, ratios),
                                  anchors[index:index + per_cell])


def test_cell_anchors_bad_input():
    with pytest.raises(ValueError, match="positive"):
        maskrcnn.cell_anchors(0, 0, 8, [], [1.0])
    with pytest.raises(ValueError, match="positive"):
        maskrcnn.cell_anchors(0, 0, 8, [16], [0.0])
    with pytest.raises(ValueError, match="row must be >= 0"):
        maskrcnn.cell_anchors(-1, 0, 8, [16], [1.0])


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [1, 2, 3, 0, -1])
def test_roi_align_box_matches_torchvision(aligned, sampling_ratio):
    from torchvision.ops import roi_align

    rng = np.random.default_rng([sampling_ratio + 1, int(aligned)])
    feature = rng.normal(size=(7, 9))
    boxes = [[0.0, 0.0, 9.0, 7.0], [1.3, 0.7, 6.1, 4.9], [-2.0, -1.5, 3.0, 2.0], [6.5, 4.0, 11.0, 9.5],
             [2.0, 2.0, 2.4, 2.3]]
    for scale in (1.0, 0.5, 0.25):
        for box in boxes:
            scaled = [v / scale for v in box]
            rois = torch.tensor([[0.0, *scaled]], dtype=torch.float64)
            theirs = roi_align(torch.from_numpy(feature)[None, None], rois, (3, 2), scale, sampling_ratio,
                               aligned)[0, 0].numpy()
            ours = maskrcnn.roi_align_box(feature, scaled, (3, 2), scale, sampling_ratio, aligned)
            assert np.allclose(ours, theirs, atol=1e-12), (box, scale)


def test_roi_align_box_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        maskrcnn.roi_align_box(np.zeros((2, 3, 3)), [0, 0, 1, 1], 2)
    with pytest.raises(ValueError, match="4 finite numbers"):
        maskrcnn.roi_align_box(np.zeros((3, 3)), [0, 0, 1], 2)
    with pytest.raises(ValueError, match="output_size must be >= 1"):
        maskrcnn.roi_align_box(np.zeros((3, 3)), [0, 0, 1, 1], 0)
    with pytest.raises(TypeError, match="aligned"):
        maskrcnn.roi_align_box(np.zeros((3, 3)), [0, 0, 1, 1], 2, aligned="yes")


def test_paste_mask_puts_the_object_in_its_box():
    small = np.pad(np.ones((24, 24)), 2)
    pasted = maskrcnn.paste_mask(small, [10, 20, 30, 35], (48, 40))
    assert pasted.shape == (48, 40)
    box = np.zeros((48, 40), bool)
    box[20:35, 10:30] = True
    inside = pasted > 0.5
    # the object fills 24 of the 28 cells per side: the box less about a pixel at each edge
    assert (inside & box).sum() / (inside | box).sum() > 0.7
    assert (inside & ~box).sum() == 0
    rows, cols = np.nonzero(inside)
    assert abs(rows.min() - 20) <= 1 and abs(cols.min() - 10) <= 1
    assert abs(rows.max() - 34) <= 1 and abs(cols.max() - 29) <= 1
    # clipped at the border, never raises
    assert maskrcnn.paste_mask(small, [30, 40, 50, 60], (48, 40))[40:, 30:].any()
    with pytest.raises(ValueError, match="square"):
        maskrcnn.paste_mask(np.ones((28, 14)), [0, 0, 4, 4], (8, 8))
    with pytest.raises(ValueError, match="x0 <= x1"):
        maskrcnn.paste_mask(small, [30, 0, 4, 4], (8, 8))


def test_mask_probabilities_are_the_mask_heads_output(tiny_result):
    model = maskrcnn.load_model(tiny_result)
    scene = maskrcnn.instance_scenes(1, seed=9)[0]
    probs = maskrcnn.mask_probabilities(model, scene["image"], scene["boxes"], scene["labels"])
    assert probs.shape == (len(scene["labels"]), 28, 28)
    assert np.all((probs > 0) & (probs < 1))


# -- pictures ------------------------------------------------------------------------------


def test_pictures(tiny_result):
    model = maskrcnn.load_model(tiny_result)
    scene = maskrcnn.instance_scenes(1, seed=9)[0]
    truth = dict(scene, scores=np.linspace(0.9, 0.6, len(scene["labels"])))
    ax = maskrcnn.plot_detections(scene["image"], truth, score_threshold=0.7, labels=False)
    assert ax.get_title() == f"{int((truth['scores'] >= 0.7).sum())} detections with score >= 0.7"
    assert not ax.texts
    ax = maskrcnn.plot_anchors(model, scene["image"], top=5)
    assert len(ax.patches) == 4 * 3 + 5  # 3 anchors per level, 4 levels, 5 proposals
    fig = maskrcnn.plot_objects(scene["image"], truth)
    assert fig.axes[0].get_title().endswith(f"score {truth['scores'][0]:.2f}")
    fig = maskrcnn.plot_mask_head(model, scene["image"], truth, index=1)
    assert CLASS_NAME(truth["labels"][1]) in fig.axes[0].get_title()
    ax = maskrcnn.plot_losses(tiny_result["history"], smooth=2)
    assert ax.get_yscale() == "log" and len(ax.get_legend().get_texts()) == 5
    with pytest.raises(ValueError, match="lower score_threshold"):
        maskrcnn.plot_objects(scene["image"], dict(truth, scores=np.zeros(len(truth["scores"]))))
    with pytest.raises(ValueError, match="history has no"):
        maskrcnn.plot_losses({"loss": [1.0]})


def CLASS_NAME(label):
    return maskrcnn.CLASS_NAMES[int(label)]


def test_classes_and_instances_use_the_courses_two_colour_schemes():
    from segtutor import viz

    assert np.allclose(maskrcnn.CLASS_MAP_COLORS, viz.PALETTE[:4] / 255, atol=1e-4)
    assert np.allclose(maskrcnn.INSTANCE_COLORS, viz.instance_colors(len(maskrcnn.INSTANCE_COLORS)), atol=1e-4)
    assert not set(map(tuple, np.round(maskrcnn.CLASS_MAP_COLORS, 2))) & set(
        map(tuple, np.round(maskrcnn.INSTANCE_COLORS, 2)))
    assert maskrcnn.instance_color(len(maskrcnn.INSTANCE_COLORS)) == maskrcnn.INSTANCE_COLORS[0]
    assert [maskrcnn.text_color(c) for c in [(0, 0, 0), (1, 1, 1), (0.99, 0.91, 0.15)]] == ["white", "black", "black"]


def test_roi_pool_vs_align_shows_quantisation():
    fig = maskrcnn.plot_roi_pool_vs_align(np.arange(36.0).reshape(6, 6), [1.3, 1.2, 4.6, 4.4], shift=0.4)
    text = fig.axes[1].texts[0].get_text()
    assert "RoIPool:  unchanged" in text and "RoIAlign: changed" in text


# -- on a hub: torchvision's Mask R-CNN fine-tuned on Penn-Fudan ---------------------------

# The smallest run of the hub code that still goes through every part: 32-pixel images,
# a few proposals and RoIs, the ResNet frozen (its forward pass still runs).
TINY_HUB = maskrcnn.HubConfig(iterations=2, warmup=1, test_images=1, min_size=32, max_size=48,
                              rpn_post_nms_train=8, rpn_post_nms_test=8, box_batch=4, trainable_layers=0,
                              pretrained=False)


def _cpu(workers=0):
    from segtutor import profiles

    return profiles.Settings("full", "cpu", False, workers, True, True)


@pytest.fixture(scope="module")
def fudan3(tmp_path_factory):
    from conftest import pennfudan

    return pennfudan(tmp_path_factory.mktemp("fudan"), n=3)


@pytest.fixture(scope="module")
def fresh_hub_model():
    """One randomly initialised hub model; tests train copies of it."""
    return maskrcnn.hub_model(2, config=TINY_HUB, pretrained=False)


def test_hub_datasets_hold_out_the_last_photographs_and_flip_targets_with_them(fudan3):
    train, test = maskrcnn.hub_datasets(TINY_HUB, fudan3)
    assert list(train.indices) == [0, 1] and list(test.indices) == [2]
    image, target = test[0]
    assert image.dtype == torch.float32 and tuple(image.shape) == (3, 40, 56) and 0 <= float(image.min())
    assert float(image.max()) <= 1 and type(target["boxes"]) is torch.Tensor  # plain tensors for the model
    # the fixture: person 1 in rows 5..29, columns 4..13; person 2 rows 10..37, columns 30..40
    assert target["boxes"].tolist() == [[4, 5, 14, 30], [30, 10, 41, 38]]
    maskrcnn.check_target(target, image.shape[1:], num_classes=2)
    flipped, _ = maskrcnn.hub_datasets(TINY_HUB.replace(flip=1.0), fudan3)
    f_image, f_target = flipped[0]
    u_image, u_target = maskrcnn.hub_datasets(TINY_HUB.replace(flip=0.0), fudan3)[0][0]
    assert torch.equal(f_image, u_image.flip(-1)) and torch.equal(f_target["masks"], u_target["masks"].flip(-1))
    assert f_target["boxes"].tolist()[0] == [56 - 14, 5, 56 - 4, 30]
    # 170 photographs would hold out the last 50, as torchvision's tutorial holds out 50
    assert maskrcnn.HubConfig().test_images == 50 and maskrcnn.HubConfig().iterations == 2 * 120 // 2


def test_hub_model_is_torchvisions_with_new_predictors(tmp_path, monkeypatch, capsys):
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: nothing may be downloaded
    model = maskrcnn.hub_model(3, config=TINY_HUB.replace(trainable_layers=None), pretrained=True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "COCO weights" in out and "starting from random weights" in out
    assert not any(tmp_path.rglob("*.pth"))
    assert isinstance(model, torchvision.models.detection.MaskRCNN)
    box, mask = model.roi_heads.box_predictor, model.roi_heads.mask_predictor
    assert type(box) is FastRCNNPredictor and type(mask) is MaskRCNNPredictor
    assert (box.cls_score.out_features, box.bbox_pred.out_features, mask.mask_fcn_logits.out_channels) == (3, 12, 3)
    assert model.transform.min_size == (32,) and model.transform.max_size == 48
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 4
    assert all(p.requires_grad for p in model.backbone.body.parameters())  # random weights: all of it trains


def test_hub_model_starts_from_cached_coco_weights_and_keeps_them(tmp_path, monkeypatch, capsys):
    """A file under the COCO weights' name in torch's hub cache is what the model loads (no download)."""
    from torchvision.models import ResNet50_Weights
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights, maskrcnn_resnet50_fpn_v2

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / ResNet50_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]).touch()
    assert maskrcnn.hub_weights(verbose=True) == "ImageNet backbone"
    assert "starting from the ImageNet weights of its ResNet-50" in capsys.readouterr().out
    torch.manual_seed(1)
    coco = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None)  # 91 classes, like COCO's
    torch.save(coco.state_dict(), checkpoints / MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url.rsplit("/", 1)[1])
    model = maskrcnn.hub_model(2, config=TINY_HUB.replace(trainable_layers=None))
    assert capsys.readouterr().out == "" and maskrcnn.hub_weights() == "COCO"
    start = coco.state_dict()
    for name, value in model.state_dict().items():
        if "predictor" not in name:
            assert torch.equal(value, start[name]), name
    assert model.roi_heads.box_predictor.cls_score.out_features == 2
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 2
    # torchvision's choice from pretrained weights: the last 3 ResNet stages train
    trained = {name.split(".")[0] for name, p in model.backbone.body.named_parameters() if p.requires_grad}
    assert trained == {"layer2", "layer3", "layer4"}


def test_hub_model_trains_only_the_chosen_resnet_stages(fresh_hub_model):
    trained = {name.split(".")[0] for name, p in fresh_hub_model.backbone.body.named_parameters() if p.requires_grad}
    assert trained == set()
    assert all(p.requires_grad for p in fresh_hub_model.backbone.fpn.parameters())
    assert all(p.requires_grad for p in fresh_hub_model.roi_heads.parameters())


def test_hub_train_records_finite_losses_and_repeats_them_with_two_workers(fudan3, fresh_hub_model):
    """Two data-loader workers flip the photographs: the same seed still gives the same numbers.

    (Batches of 2 and no workers: test_hub_run_trains_scores_reloads_and_plots.)
    """
    import copy

    config = TINY_HUB.replace(batch_size=1)
    train, _ = maskrcnn.hub_datasets(config, fudan3)
    runs = [maskrcnn.hub_train(copy.deepcopy(fresh_hub_model), train, config, settings=_cpu(workers=2),
                               progress=False) for _ in range(2)]
    history = runs[0]["history"]
    assert set(maskrcnn.LOSS_NAMES) <= set(history)
    for name in maskrcnn.LOSS_NAMES + ("loss",):
        assert len(history[name]) == config.iterations and np.isfinite(history[name]).all(), name
    total = np.sum([history[name] for name in maskrcnn.LOSS_NAMES], axis=0)
    np.testing.assert_allclose(history["loss"], total, rtol=1e-5)
    assert history["lr"] == pytest.approx([TINY_HUB.lr * 0.001, TINY_HUB.lr])  # warm-up, then constant
    assert runs[1]["history"] == history and runs[0]["device"] == "cpu"
    for key, value in runs[0]["state_dict"].items():
        assert torch.equal(value, runs[1]["state_dict"][key]), key
    # the frozen ResNet did not move, the heads did
    start = fresh_hub_model.state_dict()
    assert torch.equal(runs[0]["state_dict"]["backbone.body.layer1.0.conv1.weight"],
                       start["backbone.body.layer1.0.conv1.weight"])
    assert not torch.equal(runs[0]["state_dict"]["roi_heads.mask_predictor.mask_fcn_logits.weight"],
                           start["roi_heads.mask_predictor.mask_fcn_logits.weight"])


def test_hub_run_is_one_line_without_the_full_profile_or_the_data(tmp_path, capsys):
    assert maskrcnn.hub_run(profile="quick") is None
    first = capsys.readouterr().out
    assert first.count("\n") == 1 and first.startswith("On a hub: skipped (quick profile)")
    assert "segtutor fetch pennfudan" in first and "Mask R-CNN" in first
    assert maskrcnn.hub_run(TINY_HUB, profile="full", root=tmp_path) is None
    second = capsys.readouterr().out
    assert second.count("\n") == 1 and f"is not in {tmp_path}" in second and "Penn-Fudan" in second


def test_hub_run_trains_scores_reloads_and_plots(fudan3, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("segtutor.profiles._cuda_available", lambda: False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)  # no data-loader workers
    run = maskrcnn.hub_run(TINY_HUB, root=fudan3, profile="full", progress=False, examples=1)
    *notes, summary = capsys.readouterr().out.splitlines()  # notes: hub_section's about running on a CPU
    assert all(note.startswith("On a hub:") for note in notes) and len(notes) <= 1
    assert "trained in" in summary and "mask AP" in summary and not run["from_cache"]
    assert (run["train_images"], run["test_images"], run["weights"], run["device"]) == (2, 1, "random", "cpu")
    for kind in ("bbox", "segm"):
        for metric in ("AP", "AP50", "AP75"):
            value = run["scores"][kind][metric]
            assert 0 <= value <= 1
            assert run["ap"][f"{'box' if kind == 'bbox' else 'mask'}_{metric}"] == value
    (image, truth, prediction), = run["examples"]
    assert image.shape == (40, 56, 3) and truth["masks"].shape == (2, 40, 56) and truth["labels"].tolist() == [1, 1]
    assert prediction["masks"].shape[1:] == (40, 56) and not run["model"].training
    # the scores are COCOeval's on the held-out photograph, recomputed here from the kept example
    binary = dict(prediction, masks=prediction["masks"] >= 0.5)
    assert maskrcnn.coco_evaluate([truth], [binary]) == run["scores"]
    again = maskrcnn.hub_run(TINY_HUB, root=fudan3, profile="full", progress=False, examples=1)
    assert again["from_cache"] and again["scores"] == run["scores"] and again["history"] == run["history"]
    for key, value in run["model"].state_dict().items():
        assert torch.equal(value, again["model"].state_dict()[key]), key
    fig = maskrcnn.plot_hub_run(run)
    assert len(fig.axes) == 3 and "mask AP" in fig._suptitle.get_text()
    assert fig.axes[0].get_title() == "marked by hand: 2 people"
    with pytest.raises(TypeError, match="what segtutor.maskrcnn.hub_run returned"):
        maskrcnn.plot_hub_run(None)


def test_hub_code_refuses_bad_input(fudan3, tmp_path):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        maskrcnn.HubConfig(batch_size=0)
    with pytest.raises(ValueError, match="max_size must be >= min_size"):
        maskrcnn.HubConfig(min_size=800, max_size=400)
    with pytest.raises(ValueError, match="trainable_layers must be <= 5"):
        maskrcnn.HubConfig(trainable_layers=6)
    with pytest.raises(TypeError, match="pretrained must be True or False"):
        maskrcnn.HubConfig(pretrained="yes")
    with pytest.raises(ValueError, match="flip must be <= 1"):
        maskrcnn.HubConfig(flip=2)
    with pytest.raises(TypeError, match="segtutor.maskrcnn.HubConfig"):
        maskrcnn.hub_model(2, config=maskrcnn.Config())
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        maskrcnn.hub_model(1, config=TINY_HUB, pretrained=False)
    with pytest.raises(TypeError, match="segtutor.maskrcnn.HubConfig"):
        maskrcnn.hub_run(maskrcnn.Config(), profile="quick")
    with pytest.raises(FileNotFoundError, match="PennFudanPed"):
        maskrcnn.hub_datasets(TINY_HUB, tmp_path)
    from conftest import pennfudan

    with pytest.raises(ValueError, match="needs at least 2 photographs"):
        maskrcnn.hub_datasets(TINY_HUB, pennfudan(tmp_path / "one", n=1))
    train, _ = maskrcnn.hub_datasets(TINY_HUB, fudan3)
    with pytest.raises(TypeError, match="torchvision MaskRCNN"):
        maskrcnn.hub_train(torch.nn.Linear(2, 2), train, TINY_HUB, settings=_cpu())
    with pytest.raises(TypeError, match="Settings"):
        maskrcnn.hub_train(maskrcnn.build_model(), train, TINY_HUB, settings="cpu")


# -- exercises -----------------------------------------------------------------------------

MASKRCNN_EXERCISES = ["maskrcnn.box_iou", "maskrcnn.cell_anchors", "maskrcnn.roi_align_box"]


@pytest.mark.parametrize("exercise_id", MASKRCNN_EXERCISES)
def test_reference_passes_and_every_catalogued_mistake_is_caught_and_named(exercise_id):
    ex = exercises.get(exercise_id)
    assert exercises.check(exercise_id, ex.reference_function(), hidden_seed=77).passed
    assert len(ex.wrong_answers) >= 4
    assert isinstance(ex.hint, tuple) and len(ex.hint) == 2
    cases = ex.cases()
    for wrong in ex.wrong_answers:
        verdict = _core.compare_results(ex, cases, _core.run_cases(wrong.func, cases))
        assert not verdict.passed, wrong.name
        assert re.search(wrong.points_at, verdict.message()), (wrong.name, verdict.message())


def test_exercise_references_agree_with_torchvision_on_the_visible_cases():
    from torchvision.ops import box_iou, roi_align

    for case in exercises.get("maskrcnn.box_iou").cases(hidden_seed=5):
        a, b = (torch.from_numpy(np.asarray(x, float)) for x in case.args)
        assert np.allclose(maskrcnn.box_iou(*case.args), box_iou(a, b).numpy())
    for case in exercises.get("maskrcnn.roi_align_box").cases(hidden_seed=5):
        feature, box, size, scale, ratio, aligned = case.args
        rois = torch.tensor([[0.0, *box]], dtype=torch.float64)
        theirs = roi_align(torch.from_numpy(np.asarray(feature, float))[None, None], rois, size, scale, ratio, aligned)
        assert np.allclose(maskrcnn.roi_align_box(*case.args), theirs[0, 0].numpy(), atol=1e-12)


def test_spec_and_numpy_parts_import_without_torch():
    code = ("import sys, segtutor.exercises.maskrcnn, segtutor.maskrcnn;"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- the widget ----------------------------------------------------------------------------


def test_detection_explorer_threshold_and_toggles():
    from segtutor import widgets

    scene = maskrcnn.instance_scenes(1, seed=3)[0]
    n = len(scene["labels"])
    scores = np.linspace(0.95, 0.3, n)
    explorer = widgets.DetectionExplorer(scene["image"], dict(scene, scores=scores), score_threshold=0.5)
    assert explorer.n_shown == int((scores >= 0.5).sum())
    explorer.png()  # draws the figure once
    canvas = explorer.set(score_threshold=0.0)
    assert explorer.n_shown == n
    tinted = np.any(scene["masks"], axis=0)
    assert not np.allclose(canvas[tinted], np.clip(scene["image"], 0, 1)[tinted])
    plain = explorer.set(masks=False)
    assert np.allclose(plain, np.clip(scene["image"], 0, 1))
    explorer.set(boxes=False, labels=True, score_threshold=1.0)
    assert explorer.n_shown == 0
    assert not any(p.get_visible() for p in explorer._patches)
    assert f"0 of {n} detections" in explorer._ax.get_title()
    explorer.set(boxes=True, score_threshold=0.0)
    assert all(p.get_visible() for p in explorer._patches)
    assert "image/png" in explorer._repr_mimebundle_()
    with pytest.raises(ValueError, match="score_threshold must be <= 1"):
        explorer.set(score_threshold=2)
    with pytest.raises(TypeError, match="boxes must be True or False"):
        explorer.set(boxes="yes")
    with pytest.raises(ValueError, match=r"masks must have shape \(N, H, W\)"):
        widgets.DetectionExplorer(scene["image"], dict(scene, scores=scores, masks=scene["masks"][:, :10]))
