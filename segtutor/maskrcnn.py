"""Mask R-CNN on small synthetic scenes: model, training, COCO evaluation, pictures.

Instance segmentation gives every object its own **class, box and mask**. This
module wraps torchvision's :class:`~torchvision.models.detection.MaskRCNN` (the
detector is never re-implemented here) for lesson 06:

* :func:`instance_scenes` draws scenes of circles, squares and triangles that
  touch and overlap (:func:`segtutor.data.make_instance_scene`), and
  :func:`check_target` validates a target before it reaches the model;
* :func:`build_model` puts a small residual network with a feature pyramid under
  torchvision's Mask R-CNN, with anchors, RoI sampling and heads sized for
  96-pixel images (:class:`Config`); :func:`train` trains it with warm-up and
  gradient clipping and records each loss; :func:`predict` runs it;
* :func:`coco_evaluate` scores boxes and masks with ``pycocotools``' COCOeval
  (AP@[.5:.95], AP50, AP75) on predictions converted to COCO results with RLE
  masks (:func:`to_coco_results`);
* the parts of the detector as small NumPy functions to compare with torchvision:
  :func:`box_iou`, :func:`cell_anchors`, :func:`roi_align_box`, :func:`paste_mask`;
* pictures: anchors and proposals, RoIPool against RoIAlign, the mask head,
  detections per object, losses;
* on a hub (the full profile, :func:`hub_run`): torchvision's ``maskrcnn_resnet50_fpn_v2``
  fine-tuned on the Penn-Fudan pedestrians (:class:`segtutor.datasets.PennFudan`) as in
  torchvision's detection tutorial, COCO weights when cached (nothing is downloaded):
  :class:`HubConfig`, :func:`hub_model`, :func:`hub_train`, :func:`hub_predict`,
  :func:`plot_hub_run`.

Boxes are ``[x0, y0, x1, y1]`` in pixels with ``x1``, ``y1`` exclusive, as in
:func:`segtutor.data.make_instance_scene`: a box covers columns ``x0:x1``.
Class ids are those of :mod:`segtutor.data`: 1 circle, 2 square, 3 triangle
(0 is the background and never a target).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import time

import numpy as np

from segtutor import data as _data
from segtutor._checks import as_float, as_image, as_int, describe

__all__ = [
    "Config",
    "HUB_CLASS_NAMES",
    "HubConfig",
    "CLASS_MAP_COLORS",
    "CLASS_NAMES",
    "INSTANCE_COLORS",
    "LOSS_NAMES",
    "bilinear_sample",
    "box_iou",
    "build_model",
    "cell_anchors",
    "check_boxes",
    "check_target",
    "coco_evaluate",
    "count_objects",
    "detection_scores",
    "failure_cases",
    "hub_datasets",
    "hub_model",
    "hub_predict",
    "hub_run",
    "hub_train",
    "hub_weights",
    "instance_color",
    "instance_scenes",
    "load_model",
    "mask_probabilities",
    "overlay_instances",
    "paste_mask",
    "plot_anchors",
    "plot_cases",
    "plot_comparison",
    "plot_detections",
    "plot_hub_run",
    "plot_losses",
    "plot_mask_head",
    "plot_objects",
    "plot_roi_pool_vs_align",
    "predict",
    "roi_align_box",
    "scene_tensors",
    "semantic_instances",
    "text_color",
    "to_coco_results",
    "train",
    "trained_model",
]

#: Class names of the synthetic scenes, indexed by class id (0 is the background).
CLASS_NAMES = ("background", "circle", "square", "triangle")

#: Colours of *instances*, cycled: the course's instance colours, steps along ``viridis``
#: (:func:`segtutor.viz.instance_colors`). Classes are named in text, never by colour, so
#: instance colours carry no class.
INSTANCE_COLORS = (
    (0.2670, 0.0049, 0.3294),
    (0.1197, 0.6185, 0.5363),
    (0.2486, 0.2788, 0.5346),
    (0.4040, 0.8003, 0.3626),
    (0.1548, 0.4933, 0.5578),
    (0.2832, 0.1157, 0.4361),
    (0.1709, 0.6944, 0.4938),
)

#: Colours of *classes* in class maps, indexed by class id: the course's class colours
#: (:data:`segtutor.viz.PALETTE`: background black, then Okabe-Ito vermillion, bluish green
#: and blue). A different scheme from :data:`INSTANCE_COLORS`, so a class is never mistaken
#: for an instance.
CLASS_MAP_COLORS = (
    (0.0, 0.0, 0.0),
    (0.8353, 0.3686, 0.0000),  # circle: vermillion
    (0.0000, 0.6196, 0.4510),  # square: bluish green
    (0.0000, 0.4471, 0.6980),  # triangle: blue
)

#: The loss components of torchvision's Mask R-CNN, in the order :func:`plot_losses` draws them.
LOSS_NAMES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask")
_LOSS_TITLES = {
    "loss_objectness": "RPN objectness",
    "loss_rpn_box_reg": "RPN box",
    "loss_classifier": "classifier",
    "loss_box_reg": "box regression",
    "loss_mask": "mask",
}


# --------------------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that determines the scenes, the model and its training.

    The defaults are the settings of the benchmark (``segtutor bench``): 96-pixel
    scenes with 2 to 6 objects that touch and overlap, a small residual network
    (three stages of torchvision ``BasicBlock`` s) with a 64-channel FPN, and
    torchvision's Mask R-CNN heads sized down for small images.

    Parameters
    ----------
    size : int
        Image side in pixels.
    min_objects, max_objects : int
        Objects per scene, drawn uniformly (``min_objects`` may be 0).
    min_size, max_size : float
        Object sizes in pixels (see :func:`segtutor.data.make_scene`).
    noise : float
        Pixel noise of the scenes.
    widths : tuple of int
        Channels of the three residual stages (strides 4, 8 and 16).
    fpn_channels : int
        Channels of the feature pyramid (and of the RoI features).
    anchor_sizes : tuple of int
        One anchor size per pyramid level (4 levels: strides 4, 8, 16, 32).
    aspect_ratios : tuple of float
        Height / width of the anchors, the same at every level.
    rpn_batch : int
        Anchors sampled per image for the RPN losses.
    rpn_pre_nms_train, rpn_post_nms_train, rpn_pre_nms_test, rpn_post_nms_test : int
        Proposals kept per level before NMS and per image after it.
    box_batch : int
        RoIs sampled per image for the box and mask heads.
    box_positive_fraction : float
        Largest share of positives (RoIs on an object) among them; the mask
        head learns from the positives only.
    representation : int
        Width of the two fully connected layers of the box head.
    mask_layers : tuple of int
        Channels of the mask head's 3x3 convolutions.
    mask_pool : int
        Side of the RoIAlign output of the mask branch; the mask is twice that.
    mask_stride : {2, 4}
        Stride of the feature map the mask branch reads. 4: the finest FPN level,
        like the box branch. 2: that level upsampled and added to a 1x1
        projection of the stem's stride-2 features, a finer map for the masks of
        small objects (the RPN and the box branch never see it).
    sampling_ratio : int
        RoIAlign samples per bin side (torchvision's default is 2).
    detections : int
        Most detections kept per image.
    box_score_threshold : float
        Class score below which a detection is dropped before non-maximum
        suppression (torchvision's default is 0.05; a lower one keeps more
        low-score detections, which the COCO metrics rank below the rest).
    batch_size, iterations : int
        Images per step and number of steps.
    lr, momentum, weight_decay : float
        SGD settings; the learning rate decays with a cosine to 0 at the end.
    warmup : int
        Steps of linear learning-rate warm-up from ``lr / 100``.
    clip : float
        Gradient norm clipping (0 to turn it off).
    train_scenes : int
        Distinct training scenes, drawn with ``seed=(seed, i)``; each is
        flipped at random when used.
    seed : int
        Seed of the scenes, the weights and the batches.
    threads : int
        torch CPU threads for the training (0: leave torch's setting). One is
        the default: this model's small tensors gain little from a second
        thread, and on a busy CPU threads waiting for each other cost a lot.
    """

    size: int = 96
    min_objects: int = 2
    max_objects: int = 6
    min_size: float = 14.0
    max_size: float = 30.0
    noise: float = 0.05
    widths: tuple = (32, 64, 128)
    fpn_channels: int = 64
    anchor_sizes: tuple = (12, 24, 48, 96)
    aspect_ratios: tuple = (0.5, 1.0, 2.0)
    rpn_batch: int = 64
    rpn_pre_nms_train: int = 300
    rpn_post_nms_train: int = 100
    rpn_pre_nms_test: int = 150
    rpn_post_nms_test: int = 50
    box_batch: int = 32
    box_positive_fraction: float = 0.25
    representation: int = 256
    mask_layers: tuple = (32, 32)
    mask_pool: int = 14
    mask_stride: int = 2
    sampling_ratio: int = 1
    detections: int = 20
    box_score_threshold: float = 0.01
    batch_size: int = 4
    iterations: int = 650
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup: int = 100
    clip: float = 10.0
    train_scenes: int = 1000
    seed: int = 0
    threads: int = 1

    def __post_init__(self):
        for name in ("size", "max_objects", "fpn_channels", "rpn_batch", "box_batch", "representation",
                     "mask_pool", "detections", "batch_size", "train_scenes",
                     "rpn_pre_nms_train", "rpn_post_nms_train", "rpn_pre_nms_test", "rpn_post_nms_test"):
            as_int(getattr(self, name), name, minimum=1)
        for name in ("min_objects", "iterations", "warmup", "seed", "threads"):
            as_int(getattr(self, name), name, minimum=0)
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects must be <= max_objects, got {self.min_objects} > {self.max_objects}")
        as_int(self.sampling_ratio, "sampling_ratio", minimum=0)
        if self.mask_stride not in (2, 4):
            raise ValueError(f"mask_stride must be 2 or 4, got {describe(self.mask_stride)}")
        if len(self.widths) != 3:
            raise ValueError(f"widths must give the channels of 3 stages, got {describe(self.widths)}")
        if len(self.anchor_sizes) != 4:
            raise ValueError(
                f"anchor_sizes must give one size per pyramid level (4 levels), got {describe(self.anchor_sizes)}"
            )
        as_float(self.lr, "lr", minimum=0)
        as_float(self.box_positive_fraction, "box_positive_fraction", minimum=0.01, maximum=1)
        as_float(self.clip, "clip", minimum=0)
        as_float(self.box_score_threshold, "box_score_threshold", minimum=0, maximum=1)

    def as_dict(self) -> dict:
        """The settings as a plain dict (tuples become lists), e.g. a cache key."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# --------------------------------------------------------------------------- scenes and targets


def instance_scenes(n, *, seed=0, config=None, empty=0):
    """Synthetic instance-segmentation scenes: touching, overlapping objects of 3 classes.

    Scene ``i`` is :func:`segtutor.data.make_instance_scene` with
    ``seed=(seed, i)``, ``touching=True`` and a number of objects drawn from the
    same seed, so it does not depend on ``n``.

    Parameters
    ----------
    n : int
        Number of scenes (>= 1).
    seed : int
        Seed of the set (>= 0). The training scenes of a :class:`Config` use
        ``config.seed``; evaluate on another seed to get held-out scenes.
    config : Config, optional
        Size, object count and sizes, noise (default: ``Config()``).
    empty : int
        The first ``empty`` scenes have no object at all (background only).

    Returns
    -------
    list of dict
        One dict per scene with ``image`` (float32 (H, W, 3)), ``masks`` (bool
        (N, H, W)), ``boxes`` (float32 (N, 4), x1/y1 exclusive), ``labels``
        (int64 (N,), 1..3) and ``semantic`` (int64 (H, W)).

    Examples
    --------
    >>> scenes = instance_scenes(2, seed=1)
    >>> scenes[0]["image"].shape, scenes[0]["masks"].shape[1:]
    ((96, 96, 3), (96, 96))
    >>> len(instance_scenes(1, seed=1, empty=1)[0]["labels"])
    0
    """
    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise TypeError(f"config must be a segtutor.maskrcnn.Config, got {describe(config)}")
    n = as_int(n, "n", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    empty = as_int(empty, "empty", minimum=0, maximum=n)
    scenes = []
    for i in range(n):
        count_rng = np.random.default_rng([seed, i, 1])
        objects = 0 if i < empty else int(count_rng.integers(config.min_objects, config.max_objects + 1))
        scenes.append(_data.make_instance_scene(
            config.size, n_objects=objects, min_size=config.min_size, max_size=config.max_size,
            noise=config.noise, touching=True, seed=(seed, i),
        ))
    return scenes


def check_target(target, image_shape, num_classes=4):
    """Check one training or evaluation target and return it as NumPy arrays.

    Parameters
    ----------
    target : dict
        ``boxes`` (N, 4) as ``[x0, y0, x1, y1]`` with ``x0 < x1 <= W`` and
        ``y0 < y1 <= H``; ``labels`` (N,) integers in ``1 .. num_classes - 1``;
        optionally ``masks`` (N, H, W) of 0/1 or bool. ``N = 0`` is allowed: an
        image without objects trains the detector on background only.
    image_shape : tuple of int
        ``(H, W)`` (or ``(H, W, C)``) of the image the target belongs to.
    num_classes : int
        Number of classes of the model, background included.

    Returns
    -------
    dict
        ``boxes`` float32 (N, 4), ``labels`` int64 (N,), and ``masks`` bool
        (N, H, W) when given.

    Raises
    ------
    TypeError
        If ``target`` is not a dict or holds non-numeric arrays.
    ValueError
        If a box is empty or reversed (``x1 <= x0``), lies outside the image,
        a label is 0 or ``>= num_classes``, or the masks are not ``(N, H, W)``.

    Examples
    --------
    >>> t = check_target({"boxes": [[1, 2, 5, 6]], "labels": [3]}, (8, 8))
    >>> t["boxes"].dtype, t["labels"].tolist()
    (dtype('float32'), [3])
    >>> check_target({"boxes": [[5, 2, 1, 6]], "labels": [1]}, (8, 8))
    Traceback (most recent call last):
    ...
    ValueError: box 0 has x1 <= x0 ([5.0, 2.0, 1.0, 6.0]); boxes must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1
    """
    if not isinstance(target, dict):
        raise TypeError(f"target must be a dict with 'boxes' and 'labels' (and 'masks'), got {describe(target)}")
    for key in ("boxes", "labels"):
        if key not in target:
            raise ValueError(f"target has no {key!r}; expected keys 'boxes', 'labels' and optionally 'masks'")
    num_classes = as_int(num_classes, "num_classes", minimum=2)
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) < 2:
        raise TypeError(f"image_shape must be a tuple (H, W), got {describe(image_shape)}")
    height, width = int(image_shape[0]), int(image_shape[1])
    boxes = _numeric(target["boxes"], "boxes").astype(np.float32)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) as [x0, y0, x1, y1]; got shape {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError("boxes contain NaN or inf")
    labels = _numeric(target["labels"], "labels").reshape(-1)
    if labels.size and not np.all(labels == np.round(labels)):
        raise TypeError(f"labels must be integer class ids, got {labels.dtype} values {labels[:4].tolist()}")
    labels = labels.astype(np.int64)
    if len(labels) != len(boxes):
        raise ValueError(f"target has {len(boxes)} boxes but {len(labels)} labels; give one label per box")
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        if x1 <= x0 or y1 <= y0:
            which = "x1 <= x0" if x1 <= x0 else "y1 <= y0"
            raise ValueError(
                f"box {i} has {which} ({[x0, y0, x1, y1]}); boxes must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1"
            )
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(
                f"box {i} = {[x0, y0, x1, y1]} lies outside the {height}x{width} image; "
                f"expected 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height}"
            )
    bad = labels[(labels < 1) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(
            f"class id {int(bad[0])} is out of range: labels must be 1 .. {num_classes - 1} "
            f"(0 is the background, the model has num_classes={num_classes})"
        )
    out = {"boxes": boxes, "labels": labels}
    if "masks" in target and target["masks"] is not None:
        masks = _numeric(target["masks"], "masks")
        if masks.size == 0 and len(boxes) == 0:
            masks = masks.reshape(0, height, width)
        if masks.ndim != 3 or masks.shape[1:] != (height, width):
            raise ValueError(
                f"masks must have shape (N, H, W) = ({len(boxes)}, {height}, {width}) to match the image; "
                f"got shape {masks.shape}"
            )
        if len(masks) != len(boxes):
            raise ValueError(f"target has {len(boxes)} boxes but {len(masks)} masks; give one mask per box")
        if masks.size and not np.isin(masks, (0, 1)).all():
            raise ValueError("masks must hold only 0/1 or True/False values")
        out["masks"] = masks.astype(bool)
    return out


def _numeric(value, name):
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name} must be array-like, got {describe(value)}: {exc}") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array


def scene_tensors(scene, flip=False):
    """One scene as the ``(image, target)`` tensors torchvision's Mask R-CNN trains on.

    Parameters
    ----------
    scene : dict
        ``image`` (H, W, 3), ``boxes``, ``labels`` and ``masks`` (see
        :func:`instance_scenes`); checked with :func:`check_target`.
    flip : bool
        Mirror the image, masks and boxes left to right.

    Returns
    -------
    image : torch.Tensor, float32 (3, H, W)
    target : dict of torch.Tensor
        ``boxes`` float32 (N, 4), ``labels`` int64 (N,), ``masks`` uint8 (N, H, W).

    Raises
    ------
    ValueError
        If the scene has no ``masks`` or :func:`check_target` rejects it.

    Examples
    --------
    >>> scene = instance_scenes(1, seed=2)[0]
    >>> image, target = scene_tensors(scene, flip=True)
    >>> tuple(image.shape), target["masks"].dtype
    ((3, 96, 96), torch.uint8)
    >>> bool(target["boxes"][0, 0] == 96 - scene["boxes"][0, 2])
    True
    """
    import torch

    target = check_target(scene, scene["image"].shape)
    image = np.asarray(scene["image"], dtype=np.float32)
    boxes, masks = target["boxes"], target.get("masks")
    if masks is None:
        raise ValueError("training needs masks: the target has no 'masks'")
    if flip:
        width = image.shape[1]
        image = image[:, ::-1]
        masks = masks[:, :, ::-1]
        boxes = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), {
        "boxes": torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32)).reshape(-1, 4),
        "labels": torch.from_numpy(target["labels"]),
        "masks": torch.from_numpy(np.ascontiguousarray(masks, dtype=np.uint8)),
    }


# --------------------------------------------------------------------------- the model


def _body(widths):
    """A small residual network: a stride-2 stem and three stages of one BasicBlock each."""
    from torch import nn
    from torchvision.models.resnet import BasicBlock

    class SmallResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True)
            )
            channels = 24
            for i, width in enumerate(widths, start=1):
                down = nn.Sequential(nn.Conv2d(channels, width, 1, 2, bias=False), nn.BatchNorm2d(width))
                setattr(self, f"layer{i}", BasicBlock(channels, width, 2, down))
                channels = width

        def forward(self, x):
            return self.layer3(self.layer2(self.layer1(self.stem(x))))

    return SmallResNet()


def _backbone(config):
    """The residual body under torchvision's FPN; with ``mask_stride=2`` also a stride-2 map ``"fine"``."""
    import torch.nn.functional as F
    from torch import nn
    from torchvision.models.detection.backbone_utils import BackboneWithFPN

    fpn = BackboneWithFPN(
        _body(config.widths), {"layer1": "0", "layer2": "1", "layer3": "2"}, list(config.widths),
        config.fpn_channels,
    )
    if config.mask_stride == 4:
        return fpn

    class WithFineLevel(nn.Module):
        """torchvision's BackboneWithFPN, plus the finest level upsampled to stride 2 and added to the stem."""

        def __init__(self):
            super().__init__()
            self.fpn = fpn
            self.fine = nn.Conv2d(fpn.body.stem[0].out_channels, config.fpn_channels, 1)
            self.out_channels = config.fpn_channels

        def forward(self, x):
            body = self.fpn.body  # IntermediateLayerGetter over the small ResNet
            stem = body.stem(x)
            c1 = body.layer1(stem)
            c2 = body.layer2(c1)
            features = self.fpn.fpn({"0": c1, "1": c2, "2": body.layer3(c2)})
            features["fine"] = self.fine(stem) + F.interpolate(features["0"], size=stem.shape[-2:], mode="nearest")
            return features

    return WithFineLevel()


def _pyramid_rpn(rpn):
    """The same RPN, reading the pyramid levels only (not the mask branch's ``"fine"`` map)."""
    from collections import OrderedDict

    from torchvision.models.detection.rpn import RegionProposalNetwork

    class PyramidRPN(RegionProposalNetwork):
        def forward(self, images, features, targets=None):
            levels = OrderedDict((k, v) for k, v in features.items() if k != "fine")
            return super().forward(images, levels, targets)

    rpn.__class__ = PyramidRPN
    return rpn


def build_model(config=None):
    """torchvision's Mask R-CNN on a small residual FPN backbone, sized for small images.

    The detector is :class:`torchvision.models.detection.MaskRCNN` itself; only
    its parts are chosen here: the backbone (a stride-2 stem and three residual
    stages of torchvision ``BasicBlock`` s under torchvision's
    ``BackboneWithFPN``), one anchor size per pyramid level, fewer proposals and
    sampled RoIs, a narrower box head and a two-layer mask head. Images are not
    resized (``min_size = max_size = config.size``).

    Parameters
    ----------
    config : Config, optional

    Returns
    -------
    torchvision.models.detection.MaskRCNN
        In training mode, with freshly initialised weights (seed them with
        ``torch.manual_seed`` first).

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = build_model()
    >>> type(model).__name__, model.roi_heads.mask_predictor.mask_fcn_logits.out_channels
    ('MaskRCNN', 4)
    """
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise TypeError(f"config must be a segtutor.maskrcnn.Config, got {describe(config)}")
    num_classes = len(CLASS_NAMES)
    fpn = config.fpn_channels
    backbone = _backbone(config)
    anchors = AnchorGenerator(tuple((s,) for s in config.anchor_sizes),
                              (tuple(config.aspect_ratios),) * len(config.anchor_sizes))
    # Objects of 10-40 px all map to the finest level of torchvision's level mapper, so the
    # RoI heads read level "0" (stride 4) only.
    box_pool = MultiScaleRoIAlign(["0"], 7, config.sampling_ratio)
    mask_pool = MultiScaleRoIAlign(["fine" if config.mask_stride == 2 else "0"], config.mask_pool,
                                   config.sampling_ratio)
    mask_channels = config.mask_layers[-1]
    model = MaskRCNN(
        backbone,
        num_classes=None,
        min_size=config.size,
        max_size=config.size,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.25, 0.25, 0.25],
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=config.rpn_pre_nms_train,
        rpn_post_nms_top_n_train=config.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=config.rpn_pre_nms_test,
        rpn_post_nms_top_n_test=config.rpn_post_nms_test,
        rpn_batch_size_per_image=config.rpn_batch,
        box_roi_pool=box_pool,
        box_head=TwoMLPHead(fpn * 7 * 7, config.representation),
        box_predictor=FastRCNNPredictor(config.representation, num_classes),
        box_batch_size_per_image=config.box_batch,
        box_positive_fraction=config.box_positive_fraction,
        box_detections_per_img=config.detections,
        box_score_thresh=config.box_score_threshold,
        mask_roi_pool=mask_pool,
        mask_head=MaskRCNNHeads(fpn, tuple(config.mask_layers), 1),
        mask_predictor=MaskRCNNPredictor(mask_channels, mask_channels, num_classes),
    )
    if config.mask_stride == 2:
        _pyramid_rpn(model.rpn)
    return model


def _lr_at(step, config):
    """Linear warm-up from lr/100, then a cosine decay to 0 at the last step."""
    if step < config.warmup:
        return config.lr * (0.01 + 0.99 * step / config.warmup)
    span = max(config.iterations - config.warmup, 1)
    return config.lr * 0.5 * (1 + math.cos(math.pi * (step - config.warmup) / span))


def _progress_bar(total, desc, enabled):
    """A ``tqdm.auto`` bar; in a notebook it is removed from the cell's output when done.

    Returns ``(bar, done)``: call ``done()`` after ``bar.close()``. Removing the
    finished bar keeps a cell's saved output the same whether the model was
    trained now or reloaded from the checkpoint cache.
    """
    from tqdm.auto import tqdm

    if enabled and hasattr(tqdm, "status_printer"):  # the notebook (ipywidgets) bar
        try:
            from IPython.display import display

            bar = tqdm(total=total, desc=desc, leave=False, display=False)
            handle = display(bar.container, display_id=True)
            if handle is not None:
                return bar, lambda: handle.update({"text/html": ""}, raw=True)
        except Exception:  # no front end to talk to: fall back to the plain bar
            pass
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False), lambda: None


def train(config=None, *, scenes=None, progress=True, model=None):
    """Train Mask R-CNN on synthetic scenes, in the style of torchvision's references.

    Plain SGD with momentum and weight decay, a linear warm-up over
    ``config.warmup`` steps and a cosine decay, gradient-norm clipping at
    ``config.clip``, random horizontal flips, ``config.threads`` CPU threads
    (restored afterwards). Every step draws ``batch_size`` scenes from the
    training set in a seeded order, so a run is repeatable.

    Parameters
    ----------
    config : Config, optional
    scenes : list of dict, optional
        Training scenes (see :func:`instance_scenes`); default
        ``instance_scenes(config.train_scenes, seed=config.seed, config=config)``.
        Scenes without objects are allowed.
    progress : bool
        Show a ``tqdm`` progress bar (in a notebook it disappears when training ends).
    model : MaskRCNN, optional
        Continue training this model instead of a new one.

    Returns
    -------
    dict
        ``state_dict`` (the trained weights), ``config`` (``config.as_dict()``),
        ``history`` (one list per loss component of torchvision — ``loss_objectness``,
        ``loss_rpn_box_reg``, ``loss_classifier``, ``loss_box_reg``, ``loss_mask``
        — plus ``loss``, ``lr`` and ``grad_norm``, one value per step) and
        ``seconds`` (training time, without drawing the scenes).

    Examples
    --------
    >>> cfg = Config(iterations=2, batch_size=2, train_scenes=4, warmup=1)
    >>> result = train(cfg, progress=False)
    >>> sorted(result["history"])[:3], len(result["history"]["loss_mask"])
    (['grad_norm', 'loss', 'loss_box_reg'], 2)
    """
    import torch

    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise TypeError(f"config must be a segtutor.maskrcnn.Config, got {describe(config)}")
    if scenes is None:
        scenes = instance_scenes(config.train_scenes, seed=config.seed, config=config)
    if not isinstance(scenes, (list, tuple)) or not scenes:
        raise ValueError(f"scenes must be a non-empty list of scene dicts, got {describe(scenes)}")
    for i, scene in enumerate(scenes):  # fail before training, not in the middle
        if not isinstance(scene, dict) or "image" not in scene:
            raise TypeError(f"scene {i} must be a dict with 'image', 'boxes', 'labels' and 'masks'")
        as_image(scene["image"], f"scene {i} image", channels="color")
        check_target(scene, np.shape(scene["image"]))

    from segtutor import training

    with training.cpu_threads(config.threads):
        return _train_loop(config, scenes, progress, model)


def _train_loop(config, scenes, progress, model):
    import torch

    torch.manual_seed(config.seed)
    if model is None:
        model = build_model(config)
    model.train()
    rng = np.random.default_rng([config.seed, 7])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    history = {name: [] for name in LOSS_NAMES + ("loss", "lr", "grad_norm")}
    order = np.empty(0, dtype=np.int64)
    start = time.perf_counter()
    bar, remove_bar = _progress_bar(config.iterations, "training Mask R-CNN", progress)
    for step in range(config.iterations):
        if len(order) < config.batch_size:
            order = np.concatenate([order, rng.permutation(len(scenes))])
        picked, order = order[:config.batch_size], order[config.batch_size:]
        flips = rng.random(len(picked)) < 0.5
        pairs = [scene_tensors(scenes[i], flip) for i, flip in zip(picked, flips)]
        lr = _lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        losses = model([p[0] for p in pairs], [p[1] for p in pairs])
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} at step {step}; lower lr (now {config.lr}) or keep clip > 0"
            )
        optimizer.zero_grad()
        loss.backward()
        if config.clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, config.clip)
        else:
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        optimizer.step()
        for name in LOSS_NAMES:
            history[name].append(losses[name].item())
        history["loss"].append(loss.item())
        history["lr"].append(lr)
        history["grad_norm"].append(float(norm))
        bar.update(1)
        if progress and step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    remove_bar()
    model.eval()
    return {
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "config": config.as_dict(),
        "history": history,
        "seconds": time.perf_counter() - start,
    }


def load_model(payload):
    """Rebuild the trained model from what :func:`train` returned; in eval mode.

    Examples
    --------
    >>> result = train(Config(iterations=1, batch_size=1, train_scenes=1, warmup=1), progress=False)
    >>> load_model(result).training
    False
    """
    if not isinstance(payload, dict) or "state_dict" not in payload or "config" not in payload:
        raise TypeError("payload must be the dict returned by segtutor.maskrcnn.train")
    fields = {f.name for f in dataclasses.fields(Config)}
    config = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items() if k in fields})
    model = build_model(config)
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def trained_model(config=None, *, name="maskrcnn", progress=True):
    """The model trained with ``config``, from the course's checkpoint cache when it has it.

    Training goes through :func:`segtutor.training.cached`, keyed on ``name``,
    ``config.as_dict()``, the library versions and this module's source: the
    first call with a configuration trains (deterministically) and saves the
    result; every later call with the same configuration, in any process,
    reloads it.

    Parameters
    ----------
    config : Config, optional
    name : str
        Name of the checkpoint (letters, digits, ``.``, ``_``, ``-``).
    progress : bool
        Show a progress bar while training.

    Returns
    -------
    model : MaskRCNN
        In eval mode.
    result : dict
        What :func:`train` returned (weights, settings, loss history, seconds).
    from_cache : bool
        True when the model was reloaded rather than trained now.

    Examples
    --------
    >>> import os, tempfile
    >>> saved = os.environ.get("SEGTUTOR_CACHE")
    >>> os.environ["SEGTUTOR_CACHE"] = tempfile.mkdtemp()
    >>> cfg = Config(iterations=1, batch_size=1, train_scenes=1, warmup=1)
    >>> trained_model(cfg, name="doc", progress=False)[2], trained_model(cfg, name="doc", progress=False)[2]
    (False, True)
    >>> if saved is None:
    ...     del os.environ["SEGTUTOR_CACHE"]
    ... else:
    ...     os.environ["SEGTUTOR_CACHE"] = saved
    """
    from segtutor import training

    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise TypeError(f"config must be a segtutor.maskrcnn.Config, got {describe(config)}")
    result, from_cache = training.cached(name, config.as_dict(), lambda: train(config, progress=progress))
    return load_model(result), result, from_cache


# --------------------------------------------------------------------------- inference


def _image_tensor(image):
    import torch

    image = as_image(image, "image", channels="color")
    if image.dtype == np.uint8:
        image = image / 255.0
    return torch.from_numpy(np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1)))


def predict(model, images, *, score_threshold=0.0):
    """Run Mask R-CNN on images; return NumPy detections.

    Parameters
    ----------
    model : MaskRCNN
        Put in eval mode by this function.
    images : array (H, W, 3) or list of them
        Float in [0, 1] or uint8.
    score_threshold : float
        Keep detections with at least this score.

    Returns
    -------
    list of dict
        Per image, sorted by falling score: ``boxes`` float32 (N, 4), ``labels``
        int64 (N,), ``scores`` float32 (N,), ``masks`` float32 (N, H, W), the
        mask probability of each object pasted into the image (threshold it at
        0.5 for a binary mask).

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> out = predict(build_model(), np.zeros((96, 96, 3), np.float32))
    >>> sorted(out[0]), out[0]["masks"].dtype
    (['boxes', 'labels', 'masks', 'scores'], dtype('float32'))
    """
    import torch

    single = isinstance(images, np.ndarray) and images.ndim == 3
    batch = [images] if single else list(images)
    score_threshold = as_float(score_threshold, "score_threshold", minimum=0, maximum=1)
    tensors = [_image_tensor(image) for image in batch]
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(tensors), 8):
            outputs += model(tensors[start:start + 8])
    results = []
    for tensor, out in zip(tensors, outputs):
        keep = (out["scores"] >= score_threshold).numpy()
        height, width = tensor.shape[1:]
        results.append({
            "boxes": out["boxes"].numpy()[keep].astype(np.float32).reshape(-1, 4),
            "labels": out["labels"].numpy()[keep].astype(np.int64),
            "scores": out["scores"].numpy()[keep].astype(np.float32),
            "masks": out["masks"].numpy()[keep, 0].astype(np.float32).reshape(-1, height, width),
        })
    return results


# --------------------------------------------------------------------------- COCO evaluation


def _check_prediction(pred, shape, i):
    if not isinstance(pred, dict) or not {"boxes", "labels", "scores"} <= set(pred):
        raise TypeError(f"prediction {i} must be a dict with 'boxes', 'labels', 'scores' (and 'masks')")
    boxes = _numeric(pred["boxes"], "boxes").astype(np.float64).reshape(-1, 4)
    labels = _numeric(pred["labels"], "labels").astype(np.int64).reshape(-1)
    scores = _numeric(pred["scores"], "scores").astype(np.float64).reshape(-1)
    if not len(boxes) == len(labels) == len(scores):
        raise ValueError(
            f"prediction {i} has {len(boxes)} boxes, {len(labels)} labels and {len(scores)} scores; "
            "they must match"
        )
    masks = None
    if "masks" in pred and pred["masks"] is not None:
        masks = _numeric(pred["masks"], "masks")
        if masks.ndim == 4 and masks.shape[1] == 1:
            masks = masks[:, 0]
        if masks.size == 0:
            masks = masks.reshape((0,) + tuple(shape))
        if masks.ndim != 3 or masks.shape[1:] != tuple(shape) or len(masks) != len(boxes):
            raise ValueError(
                f"prediction {i}: masks must have shape (N, H, W) = ({len(boxes)}, {shape[0]}, {shape[1]}); "
                f"got {masks.shape}"
            )
    return boxes, labels, scores, masks


def _rle(mask):
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def to_coco_results(predictions, image_ids=None, *, mask_threshold=0.5):
    """Detections in the COCO results format, masks as run-length encodings.

    Parameters
    ----------
    predictions : list of dict
        As returned by :func:`predict`; ``masks`` may be probabilities
        (thresholded at ``mask_threshold``) or bool.
    image_ids : list of int, optional
        COCO image id of each prediction (default ``0, 1, ...``).
    mask_threshold : float

    Returns
    -------
    list of dict
        One per detection: ``image_id``, ``category_id``, ``bbox`` as
        ``[x, y, width, height]``, ``score`` and, with masks,
        ``segmentation`` (an RLE dict with ``size`` and string ``counts``).

    Examples
    --------
    >>> mask = np.zeros((1, 4, 6), bool); mask[0, 1:3, 2:5] = True
    >>> pred = {"boxes": [[2, 1, 5, 3]], "labels": [2], "scores": [0.9], "masks": mask}
    >>> r = to_coco_results([pred])[0]
    >>> r["bbox"], r["category_id"], r["segmentation"]["size"]
    ([2.0, 1.0, 3.0, 2.0], 2, [4, 6])
    """
    if not isinstance(predictions, (list, tuple)):
        raise TypeError(f"predictions must be a list of dicts (one per image), got {describe(predictions)}")
    image_ids = list(range(len(predictions))) if image_ids is None else list(image_ids)
    if len(image_ids) != len(predictions):
        raise ValueError(f"got {len(predictions)} predictions but {len(image_ids)} image ids")
    mask_threshold = as_float(mask_threshold, "mask_threshold", minimum=0, maximum=1)
    results = []
    for i, (pred, image_id) in enumerate(zip(predictions, image_ids)):
        shape = None
        if isinstance(pred, dict) and pred.get("masks") is not None:
            shape = np.shape(pred["masks"])[-2:]
        boxes, labels, scores, masks = _check_prediction(pred, shape, i)
        for k in range(len(boxes)):
            x0, y0, x1, y1 = boxes[k].tolist()
            result = {
                "image_id": int(image_id),
                "category_id": int(labels[k]),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": float(scores[k]),
            }
            if masks is not None:
                binary = masks[k] >= mask_threshold if masks.dtype != bool else masks[k]
                result["segmentation"] = _rle(binary)
            results.append(result)
    return results


def _coco_ground_truth(targets):
    images, annotations = [], []
    for i, target in enumerate(targets):
        if not isinstance(target, dict):
            raise TypeError(f"target {i} must be a dict with 'boxes', 'labels' and 'masks'")
        if "masks" in target and target["masks"] is not None:
            shape = np.shape(target["masks"])[-2:]
        elif "image" in target:
            shape = np.shape(target["image"])[:2]
        else:
            raise ValueError(f"target {i} needs 'masks' (or 'image') to know the image size")
        if len(shape) != 2:
            raise ValueError(f"target {i}: masks must have shape (N, H, W); got {np.shape(target['masks'])}")
        checked = check_target(target, shape, num_classes=len(CLASS_NAMES))
        images.append({"id": i, "height": int(shape[0]), "width": int(shape[1])})
        for k in range(len(checked["boxes"])):
            x0, y0, x1, y1 = checked["boxes"][k].tolist()
            annotation = {
                "id": len(annotations) + 1,
                "image_id": i,
                "category_id": int(checked["labels"][k]),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": float((x1 - x0) * (y1 - y0)),
                "iscrowd": 0,
            }
            if "masks" in checked:
                annotation["segmentation"] = _rle(checked["masks"][k])
                annotation["area"] = float(checked["masks"][k].sum())
            annotations.append(annotation)
    categories = [{"id": c, "name": CLASS_NAMES[c]} for c in range(1, len(CLASS_NAMES))]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_evaluate(targets, predictions, *, iou_types=("bbox", "segm")):
    """Box and mask AP, COCO style, computed by ``pycocotools``' COCOeval.

    Targets and predictions are converted to COCO dicts in memory (masks as
    RLE, :func:`to_coco_results`) and scored with the standard settings: IoU
    thresholds 0.50:0.05:0.95, 101 recall points, up to 100 detections per
    image, all classes averaged.

    Parameters
    ----------
    targets : list of dict
        Ground truth per image: ``boxes``, ``labels`` and ``masks`` (for
        ``"segm"``), as in :func:`instance_scenes`. Images without objects are
        allowed: their detections count as false positives.
    predictions : list of dict
        One per target, as returned by :func:`predict`.
    iou_types : tuple of {"bbox", "segm"}

    Returns
    -------
    dict
        ``{"bbox": {"AP": ..., "AP50": ..., "AP75": ...}, "segm": {...}}`` with
        values in [0, 1]. ``AP`` is AP@[.5:.95]. With no ground-truth object at
        all the values are ``nan``; with objects but no detection they are 0.

    Examples
    --------
    >>> masks = np.zeros((1, 8, 8), bool); masks[0, 2:6, 1:5] = True
    >>> truth = {"boxes": [[1, 2, 5, 6]], "labels": [1], "masks": masks}
    >>> perfect = dict(truth, scores=[0.9])
    >>> coco_evaluate([truth], [perfect])["segm"]
    {'AP': 1.0, 'AP50': 1.0, 'AP75': 1.0}
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not isinstance(targets, (list, tuple)) or not isinstance(predictions, (list, tuple)):
        raise TypeError("targets and predictions must be lists of dicts, one per image")
    if len(targets) != len(predictions):
        raise ValueError(f"got {len(targets)} targets but {len(predictions)} predictions; give one per image")
    if isinstance(iou_types, str):
        iou_types = (iou_types,)
    for iou_type in iou_types:
        if iou_type not in ("bbox", "segm"):
            raise ValueError(f"iou_types must be 'bbox' and/or 'segm', got {iou_type!r}")
    gt = _coco_ground_truth(targets)
    for i, (target, pred) in enumerate(zip(targets, predictions)):
        height = next(im for im in gt["images"] if im["id"] == i)
        shape = (height["height"], height["width"])
        if "segm" in iou_types and (not isinstance(pred, dict) or pred.get("masks") is None):
            raise ValueError(f"prediction {i} has no 'masks'; mask AP ('segm') needs them")
        if isinstance(pred, dict) and pred.get("masks") is not None:
            _check_prediction(pred, shape, i)
    results = to_coco_results(predictions) if "segm" in iou_types else to_coco_results(
        [{k: v for k, v in p.items() if k != "masks"} for p in predictions])
    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        for iou_type in iou_types:
            if not gt["annotations"]:
                out[iou_type] = {"AP": float("nan"), "AP50": float("nan"), "AP75": float("nan")}
                continue
            if not results:
                out[iou_type] = {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
                continue
            coco_dt = coco_gt.loadRes([dict(r) for r in results])
            evaluator = COCOeval(coco_gt, coco_dt, iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            stats = evaluator.stats
            out[iou_type] = {"AP": _ap(stats[0]), "AP50": _ap(stats[1]), "AP75": _ap(stats[2])}
    return out


def _ap(value):
    # COCOeval's means of 101 precisions carry rounding noise (1.0 comes out as 0.9999999999999998)
    return float("nan") if value < 0 else round(float(value), 10)


# --------------------------------------------------------------------------- semantic vs instances


def semantic_instances(semantic):
    """Instances as a semantic segmentation sees them: connected regions of one class.

    A semantic label map only says *which class* each pixel has; splitting it
    into connected components (4-connectivity) is the best one can do for
    instances, and two touching objects of one class become one.

    Parameters
    ----------
    semantic : array-like of int, shape (H, W)
        Class label map, 0 for background.

    Returns
    -------
    masks : ndarray of bool, shape (N, H, W)
    labels : ndarray of int64, shape (N,)

    Examples
    --------
    >>> semantic = np.array([[1, 1, 0, 2], [1, 1, 0, 2], [0, 0, 0, 0]])
    >>> masks, labels = semantic_instances(semantic)
    >>> masks.shape, labels.tolist()
    ((2, 3, 4), [1, 2])
    """
    from scipy import ndimage

    from segtutor._checks import as_label_map

    semantic = as_label_map(semantic, "semantic")
    masks, labels = [], []
    for c in np.unique(semantic):
        if c == 0:
            continue
        components, n = ndimage.label(semantic == c)
        for k in range(1, n + 1):
            masks.append(components == k)
            labels.append(int(c))
    shape = semantic.shape
    return np.array(masks, dtype=bool).reshape((len(masks),) + shape), np.array(labels, dtype=np.int64)


def count_objects(scenes, predictions=None, *, score_threshold=0.5, semantic_maps=None):
    """Count objects per scene: the truth, connected regions of a semantic map, detections.

    Parameters
    ----------
    scenes : list of dict
        Scenes with ``labels`` and ``semantic`` (see :func:`instance_scenes`).
    predictions : list of dict, optional
        Mask R-CNN detections (:func:`predict`); counted above ``score_threshold``.
    score_threshold : float
    semantic_maps : list of (H, W) arrays, optional
        Predicted semantic label maps (e.g. from an FCN); default: each scene's
        true ``semantic`` map, a perfect semantic segmentation.

    Returns
    -------
    dict of ndarray of int64
        One count per scene: ``true`` objects; ``semantic_regions``, the
        connected regions of the class map, and ``semantic_found``, the true
        objects that one of those regions recovers (same class, mask IoU >= 0.5);
        with predictions, ``detections`` (score >= ``score_threshold``) and
        ``detections_found`` likewise. ``merged`` counts the objects that share
        their class-map region with another object of their class (touching
        objects merged into one region); ``merged_semantic_found`` and
        ``merged_detections_found`` how many of those are recovered.

    Examples
    --------
    >>> counts = count_objects(instance_scenes(3, seed=1))
    >>> bool((counts["semantic_found"] <= counts["true"]).all())
    True
    """
    if not isinstance(scenes, (list, tuple)) or not scenes:
        raise ValueError("scenes must be a non-empty list of scene dicts")
    maps = [s["semantic"] for s in scenes] if semantic_maps is None else list(semantic_maps)
    if len(maps) != len(scenes):
        raise ValueError(f"got {len(scenes)} scenes but {len(maps)} semantic maps")
    if predictions is not None and len(predictions) != len(scenes):
        raise ValueError(f"got {len(scenes)} scenes but {len(predictions)} predictions")
    rows = []
    for i, (scene, semantic) in enumerate(zip(scenes, maps)):
        masks, labels = semantic_instances(semantic)
        found, _ = _match(scene, {"masks": masks, "labels": labels, "scores": np.ones(len(labels))}, 0.5, 0.5)
        truth = np.asarray(scene["masks"], bool)
        # the region of the class map that holds most of each true object's pixels
        home = [int(np.argmax((masks & m).reshape(len(masks), -1).sum(1))) if len(masks) else -1 for m in truth]
        shared = np.array([home.count(h) > 1 for h in home], dtype=bool)
        row = {"true": len(truth), "semantic_regions": len(labels), "semantic_found": int(found.sum()),
               "merged": int(shared.sum()), "merged_semantic_found": int((found & shared).sum())}
        if predictions is not None:
            detected, n = _match(scene, predictions[i], 0.5, score_threshold)
            row.update(detections=n, detections_found=int(detected.sum()),
                       merged_detections_found=int((detected & shared).sum()))
        rows.append(row)
    return {key: np.array([row[key] for row in rows], dtype=np.int64) for key in rows[0]}


def detection_scores(target, prediction, *, iou=0.5, score_threshold=0.5):
    """Per-image quality: matched objects, misses and false detections at a mask IoU.

    Detections above ``score_threshold`` are matched greedily (highest score
    first) to unmatched true objects of the same class with mask IoU >= ``iou``.

    Returns
    -------
    dict
        ``matched``, ``missed``, ``false`` (counts) and ``f1`` (1.0 for an image
        with neither objects nor detections).

    Examples
    --------
    >>> masks = np.zeros((1, 6, 6), bool); masks[0, 1:4, 1:4] = True
    >>> truth = {"boxes": [[1, 1, 4, 4]], "labels": [1], "masks": masks}
    >>> detection_scores(truth, dict(truth, scores=[0.9]))
    {'matched': 1, 'missed': 0, 'false': 0, 'f1': 1.0}
    """
    used, n_predictions = _match(target, prediction, iou, score_threshold)
    matched = int(used.sum())
    missed, false = len(used) - matched, n_predictions - matched
    denominator = 2 * matched + missed + false
    return {"matched": matched, "missed": missed, "false": false,
            "f1": 1.0 if denominator == 0 else 2 * matched / denominator}


def _match(target, prediction, iou, score_threshold):
    """Which true objects a detection recovers (greedy, by falling score); and how many detections."""
    masks_t = np.asarray(target["masks"], bool)
    labels_t = np.asarray(target["labels"]).reshape(-1)
    scores = np.asarray(prediction["scores"]).reshape(-1)
    keep = np.flatnonzero(scores >= score_threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    masks_p = np.asarray(prediction["masks"])[keep] >= 0.5
    labels_p = np.asarray(prediction["labels"]).reshape(-1)[keep]
    used = np.zeros(len(labels_t), bool)
    for mask, label in zip(masks_p, labels_p):
        best, best_iou = -1, iou
        for j in np.flatnonzero(~used & (labels_t == label)):
            union = np.logical_or(mask, masks_t[j]).sum()
            value = np.logical_and(mask, masks_t[j]).sum() / union if union else 0.0
            if value >= best_iou:
                best, best_iou = j, value
        if best >= 0:
            used[best] = True
    return used, len(labels_p)


def failure_cases(targets, predictions, k=4, *, score_threshold=0.5):
    """Indices of the ``k`` scenes the detector gets most wrong (lowest F1 at mask IoU 0.5).

    Ties are broken by more errors (misses + false detections), then by index.

    Examples
    --------
    >>> masks = np.zeros((1, 6, 6), bool); masks[0, 1:4, 1:4] = True
    >>> truth = {"boxes": [[1, 1, 4, 4]], "labels": [1], "masks": masks}
    >>> empty = {"boxes": np.zeros((0, 4)), "labels": [], "scores": [], "masks": np.zeros((0, 6, 6))}
    >>> failure_cases([truth, truth], [dict(truth, scores=[0.9]), empty], k=1)
    [1]
    """
    if len(targets) != len(predictions):
        raise ValueError(f"got {len(targets)} targets but {len(predictions)} predictions")
    k = as_int(k, "k", minimum=1)
    scored = []
    for i, (t, p) in enumerate(zip(targets, predictions)):
        s = detection_scores(t, p, score_threshold=score_threshold)
        scored.append((s["f1"], -(s["missed"] + s["false"]), i))
    return [i for _, _, i in sorted(scored)[:k]]


# --------------------------------------------------------------------------- the parts, in NumPy


def check_boxes(value, name="boxes"):
    """Boxes ``[x0, y0, x1, y1]`` as a float64 (N, 4) array; one box (4,) becomes (1, 4).

    Parameters
    ----------
    value : array-like
        (N, 4) or (4,) finite numbers with ``x0 <= x1`` and ``y0 <= y1``.
    name : str
        Used in error messages.

    Returns
    -------
    ndarray of float64, shape (N, 4)

    Raises
    ------
    ValueError
        On another shape, NaN or inf, or reversed corners.

    Examples
    --------
    >>> check_boxes([1, 2, 5, 6])
    array([[1., 2., 5., 6.]])
    >>> check_boxes([[5, 2, 1, 6]])
    Traceback (most recent call last):
    ...
    ValueError: boxes must be [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1
    """
    boxes = _numeric(value, name).astype(np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim == 1 and boxes.shape[0] == 4:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as [x0, y0, x1, y1]; got shape {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{name} contain NaN or inf")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError(f"{name} must be [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1")
    return boxes


def box_iou(boxes_a, boxes_b):
    """IoU of every box in ``boxes_a`` with every box in ``boxes_b``.

    Boxes are ``[x0, y0, x1, y1]`` with exclusive ``x1, y1`` (the area of a box
    is ``(x1 - x0) * (y1 - y0)``), as in ``torchvision.ops.box_iou``.

    Parameters
    ----------
    boxes_a : array-like, shape (N, 4)
    boxes_b : array-like, shape (M, 4)

    Returns
    -------
    ndarray of float64, shape (N, M)
        Values in [0, 1]; 0 where the union is empty.

    Examples
    --------
    >>> box_iou([[0, 0, 4, 4]], [[2, 2, 6, 6], [0, 0, 4, 4]])
    array([[0.14285714, 1.        ]])
    """
    a, b = check_boxes(boxes_a, "boxes_a"), check_boxes(boxes_b, "boxes_b")
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = width * height
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def cell_anchors(row, col, stride, sizes, aspect_ratios):
    """The anchors of one feature-map cell, as torchvision's ``AnchorGenerator`` makes them.

    For each aspect ratio ``r`` (height / width), then each size ``s``, the
    anchor has height ``s * sqrt(r)`` and width ``s / sqrt(r)`` (so its area is
    ``s**2``), is centred on the cell's top-left corner ``(col * stride, row *
    stride)`` in image pixels, and its corners are rounded to whole pixels
    before the shift (``round`` half to even, as ``torch.round``).

    Parameters
    ----------
    row, col : int
        The cell in the feature map.
    stride : int
        Image pixels per feature-map cell.
    sizes : sequence of float
    aspect_ratios : sequence of float

    Returns
    -------
    ndarray of float64, shape (len(aspect_ratios) * len(sizes), 4)
        ``[x0, y0, x1, y1]``, ratio-major: anchor ``i * len(sizes) + j`` has
        ratio ``i`` and size ``j``.

    Examples
    --------
    >>> cell_anchors(1, 2, 8, sizes=[16], aspect_ratios=[0.5, 1.0, 2.0])
    array([[ 5.,  2., 27., 14.],
           [ 8.,  0., 24., 16.],
           [10., -3., 22., 19.]])
    """
    row = as_int(row, "row", minimum=0)
    col = as_int(col, "col", minimum=0)
    stride = as_float(stride, "stride", minimum=0)
    sizes = _positive(sizes, "sizes")
    ratios = _positive(aspect_ratios, "aspect_ratios")
    h_ratios = np.sqrt(ratios)
    w_ratios = 1.0 / h_ratios
    ws = (w_ratios[:, None] * sizes[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * sizes[None, :]).reshape(-1)
    # torchvision computes in float32 and rounds half to even
    base = np.round((np.stack([-ws, -hs, ws, hs], axis=1) / 2).astype(np.float32)).astype(np.float64)
    shift = np.array([col * stride, row * stride, col * stride, row * stride], dtype=np.float64)
    return base + shift


def _positive(values, name):
    array = _numeric(values, name).astype(np.float64).reshape(-1)
    if array.size == 0 or not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{name} must be a non-empty sequence of positive numbers, got {describe(values)}")
    return array


def bilinear_sample(feature, y, x):
    """The value of a 2-D feature map at a fractional point, as torchvision's RoIAlign reads it.

    torchvision's CPU ``bilinear_interpolate``: a point more than one cell
    outside the map reads 0; otherwise coordinates below 0 are clamped to 0 and
    those past the last row or column read that row or column.

    Parameters
    ----------
    feature : ndarray, shape (H, W)
    y, x : float
        Row and column; cell ``(r, c)`` holds its value at ``(r, c)``.

    Returns
    -------
    float

    Examples
    --------
    >>> feature = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> float(bilinear_sample(feature, 0.5, 0.5)), float(bilinear_sample(feature, 1.7, -0.4))
    (1.5, 2.0)
    >>> bilinear_sample(feature, -1.5, 0.0)
    0.0
    """
    height, width = feature.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (hy * hx * feature[y_low, x_low] + hy * lx * feature[y_low, x_high]
            + ly * hx * feature[y_high, x_low] + ly * lx * feature[y_high, x_high])


def roi_align_box(feature, box, output_size, spatial_scale=1.0, sampling_ratio=2, aligned=True):
    """RoIAlign of one box on a one-channel feature map, as ``torchvision.ops.roi_align``.

    The box, scaled by ``spatial_scale`` (and shifted by -0.5 when ``aligned``,
    so that pixel ``i`` covers ``[i, i + 1)``), is cut into ``output_size`` bins;
    each bin averages ``sampling_ratio x sampling_ratio`` bilinear samples at
    evenly spaced points inside it. Nothing is rounded: that is the difference
    from RoIPool.

    Parameters
    ----------
    feature : array-like, shape (H, W)
    box : array-like, shape (4,)
        ``[x0, y0, x1, y1]`` in image coordinates.
    output_size : int or (int, int)
        Bins ``(ph, pw)``.
    spatial_scale : float
        Feature-map cells per image pixel (1 / stride).
    sampling_ratio : int
        Samples per bin side; 0 or less: ``ceil(roi_size / output_size)`` (adaptive).
    aligned : bool
        The half-pixel shift of torchvision's ``aligned=True`` (Detectron2's
        convention). With ``False`` the legacy behaviour: no shift, and boxes
        narrower than one cell are widened to one cell.

    Returns
    -------
    ndarray of float64, shape (ph, pw)

    Examples
    --------
    >>> feature = np.arange(16.0).reshape(4, 4)
    >>> roi_align_box(feature, [0, 0, 4, 4], 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    feature = _numeric(feature, "feature").astype(np.float64)
    if feature.ndim != 2 or feature.size == 0:
        raise ValueError(f"feature must be a non-empty 2-D array (H, W); got shape {feature.shape}")
    box = _numeric(box, "box").astype(np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise ValueError(f"box must be 4 finite numbers [x0, y0, x1, y1], got {describe(box)}")
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair (ph, pw), got {describe(output_size)}")
        ph, pw = (as_int(v, "output_size", minimum=1) for v in output_size)
    else:
        ph = pw = as_int(output_size, "output_size", minimum=1)
    spatial_scale = as_float(spatial_scale, "spatial_scale", minimum=0)
    sampling_ratio = as_int(sampling_ratio, "sampling_ratio")
    if not isinstance(aligned, (bool, np.bool_)):
        raise TypeError(f"aligned must be True or False, got {describe(aligned)}")
    offset = 0.5 if aligned else 0.0
    x0, y0 = box[0] * spatial_scale - offset, box[1] * spatial_scale - offset
    roi_w = box[2] * spatial_scale - offset - x0
    roi_h = box[3] * spatial_scale - offset - y0
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / ph, roi_w / pw
    grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / ph))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / pw))
    count = max(grid_h * grid_w, 1)
    out = np.zeros((ph, pw))
    for i in range(ph):
        for j in range(pw):
            total = 0.0
            for iy in range(grid_h):
                y = y0 + i * bin_h + (iy + 0.5) * bin_h / grid_h
                for ix in range(grid_w):
                    x = x0 + j * bin_w + (ix + 0.5) * bin_w / grid_w
                    total += bilinear_sample(feature, y, x)
            out[i, j] = total / count
    return out


def paste_mask(mask, box, image_shape):
    """Paste a small mask (e.g. the mask head's 28x28) into the image at its box.

    torchvision's ``paste_masks_in_image``: the mask is padded by one cell,
    resized bilinearly to the (equally padded) box and copied into an empty
    image, clipped at the borders.

    Parameters
    ----------
    mask : array-like, shape (M, M)
        Mask probabilities of one object.
    box : array-like, shape (4,)
        ``[x0, y0, x1, y1]`` in image pixels.
    image_shape : (int, int)

    Returns
    -------
    ndarray of float32, shape image_shape

    Examples
    --------
    >>> small = np.pad(np.ones((24, 24)), 2)  # an object filling its box
    >>> (paste_mask(small, [2, 1, 6, 4], (6, 8)) > 0.5).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0]])
    """
    import torch
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    mask = _numeric(mask, "mask").astype(np.float32)
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1] or mask.size == 0:
        raise ValueError(f"mask must be a square 2-D array (M, M); got shape {mask.shape}")
    box = check_boxes(box, "box")
    if len(box) != 1:
        raise ValueError(f"box must be one box [x0, y0, x1, y1], got {len(box)} boxes")
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 2:
        raise TypeError(f"image_shape must be (H, W), got {describe(image_shape)}")
    height = as_int(image_shape[0], "image_shape[0]", minimum=1)
    width = as_int(image_shape[1], "image_shape[1]", minimum=1)
    pasted = paste_masks_in_image(torch.from_numpy(mask)[None, None], torch.from_numpy(box).float(), (height, width))
    return pasted[0, 0].numpy()


# --------------------------------------------------------------------------- looking inside


def _axes(ax, figsize=(4.5, 4.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def text_color(background):
    """``"black"`` or ``"white"``, whichever reads better on an RGB ``background`` in [0, 1].

    Examples
    --------
    >>> text_color(INSTANCE_COLORS[0]), text_color((0.99, 0.91, 0.15))
    ('white', 'black')
    """
    r, g, b = (float(v) for v in background[:3])
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


def instance_color(i):
    """RGB colour of the ``i``-th instance: :data:`INSTANCE_COLORS`, cycled.

    Examples
    --------
    >>> instance_color(0) == instance_color(len(INSTANCE_COLORS))
    True
    """
    return INSTANCE_COLORS[i % len(INSTANCE_COLORS)]


def _features(model, image):
    import torch

    model.eval()
    with torch.inference_mode():
        images, _ = model.transform([_image_tensor(image)])
        features = model.backbone(images.tensors)
    return images, features


def plot_anchors(model, image, *, top=10, cell=None, ax=None):
    """Anchors of one location at every pyramid level, and the RPN's top proposals.

    Parameters
    ----------
    model : MaskRCNN
    image : array (H, W, 3)
    top : int
        Number of proposals drawn (highest objectness first, after NMS).
    cell : (row, col), optional
        Pixel whose anchors are drawn (default: the image centre), snapped to
        each level's grid.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt, torch
    >>> _ = torch.manual_seed(0)
    >>> ax = plot_anchors(build_model(), instance_scenes(1)[0]["image"], top=3)
    >>> ax.get_title()
    'anchors of one location (dashed)\\nand the top 3 proposals (solid)'
    >>> plt.close(ax.figure)
    """
    import torch
    from matplotlib import patheffects
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    top = as_int(top, "top", minimum=0)
    images, features = _features(model, image)
    height, width = images.tensors.shape[-2:]
    y, x = (height // 2, width // 2) if cell is None else (as_int(cell[0], "row"), as_int(cell[1], "col"))
    with torch.inference_mode():
        proposals, _ = model.rpn(images, features)
    levels = [v for k, v in features.items() if k != "fine"]  # the RPN's levels (not the mask branch's map)
    generator = model.rpn.anchor_generator
    ax = _axes(ax, figsize=(7.2, 4.2))
    ax.imshow(np.clip(image, 0, 1) if np.asarray(image).dtype != np.uint8 else image, interpolation="nearest")
    import matplotlib

    level_colors = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, len(levels)))
    handles = []
    for level, (feat, sizes, color) in enumerate(zip(levels, generator.sizes, level_colors)):
        stride = height // feat.shape[-2]
        row, col = round(y / stride), round(x / stride)
        anchors = cell_anchors(row, col, stride, sizes, generator.aspect_ratios[level])
        for x0, y0, x1, y1 in anchors:
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.2, ls="--"))
        handles.append(Line2D([], [], color=color, ls="--", label=f"anchors, stride {stride}, size {sizes[0]}"))
    outline = [patheffects.withStroke(linewidth=2.8, foreground="black")]  # white with a black edge
    for k, (x0, y0, x1, y1) in enumerate(proposals[0][:top].tolist()):
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="white", lw=1.5,
                               path_effects=outline))
    handles.append(Line2D([], [], color="white", lw=1.5, path_effects=outline, label="top proposals"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"anchors of one location (dashed)\nand the top {top} proposals (solid)")
    return ax


def plot_roi_pool_vs_align(feature, box, output_size=2, *, shift=0.4):
    """RoIPool against RoIAlign on a tiny feature map: where each one reads.

    The left panel draws the box, RoIPool's box rounded to whole cells and its
    bins, and RoIAlign's sample points; the right panel prints the two outputs
    for the box and for the box moved right by ``shift`` cells. RoIPool's
    output does not change (the move is rounded away), RoIAlign's does.

    Parameters
    ----------
    feature : array-like, shape (H, W)
    box : array-like, shape (4,)
        In feature-map cells (``spatial_scale=1``).
    output_size : int
    shift : float

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = plot_roi_pool_vs_align(np.arange(36.0).reshape(6, 6), [1.3, 1.2, 4.6, 4.4])
    >>> len(fig.axes)
    2
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    from torchvision.ops import roi_align, roi_pool

    feature = _numeric(feature, "feature").astype(np.float32)
    if feature.ndim != 2:
        raise ValueError(f"feature must be 2-D (H, W); got shape {feature.shape}")
    box = check_boxes(box, "box")[0]
    output_size = as_int(output_size, "output_size", minimum=1)
    shift = as_float(shift, "shift")
    tensor = torch.from_numpy(feature)[None, None]

    def both(b):
        rois = torch.tensor([[0.0, *b]], dtype=torch.float32)
        pooled = roi_pool(tensor, rois, output_size, 1.0)[0, 0].numpy()
        aligned = roi_align(tensor, rois, output_size, 1.0, 2, aligned=True)[0, 0].numpy()
        return pooled, aligned

    moved = box + np.array([shift, 0, shift, 0])
    (pool_a, align_a), (pool_b, align_b) = both(box), both(moved)

    fig, (ax, text_ax) = plt.subplots(1, 2, figsize=(9.5, 4.2), layout="constrained",
                                      gridspec_kw={"width_ratios": [1.1, 1]})
    height, width = feature.shape
    ax.imshow(feature, cmap="cividis", extent=(0, width, height, 0))
    ax.set_xticks(range(width + 1))
    ax.set_yticks(range(height + 1))
    ax.grid(color="white", lw=0.5, alpha=0.5)
    x0, y0, x1, y1 = box
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="#E69F00", lw=2.5))
    # RoIPool: torchvision rounds the corners and covers the cells from the first to the last one
    r0, c0, r1, c1 = round(y0), round(x0), round(y1), round(x1)
    ax.add_patch(Rectangle((c0, r0), c1 - c0 + 1, r1 - r0 + 1, fill=False, ec="#56B4E9", lw=2, ls="--"))
    # RoIAlign (aligned=True): cell i covers [i, i + 1), sample points in the shifted box
    bin_w, bin_h = (x1 - x0) / output_size, (y1 - y0) / output_size
    points = [(x0 + (j + (s + 0.5) / 2) * bin_w, y0 + (i + (t + 0.5) / 2) * bin_h)
              for i in range(output_size) for j in range(output_size) for s in range(2) for t in range(2)]
    ax.plot(*np.array(points).T, "o", color="#D55E00", ms=4)
    ax.set_title("where RoIPool and RoIAlign read")
    ax.set_xlabel("feature-map column")
    ax.set_ylabel("feature-map row")
    ax.legend(handles=[
        Line2D([], [], color="#E69F00", lw=2.5, label="box (fractional)"),
        Line2D([], [], color="#56B4E9", lw=2, ls="--", label="RoIPool: box rounded to cells"),
        Line2D([], [], color="#D55E00", marker="o", ls="", label="RoIAlign: 2x2 samples per bin"),
    ], loc="upper left", bbox_to_anchor=(0, -0.14), fontsize=8, frameon=False)

    def fmt(a):
        return "\n".join("  ".join(f"{v:6.2f}" for v in row) for row in a)

    text = (f"box {np.round(box, 2).tolist()}\n"
            f"RoIPool:\n{fmt(pool_a)}\nRoIAlign:\n{fmt(align_a)}\n\n"
            f"box moved right by {shift:g} cell\n"
            f"RoIPool:  {'unchanged' if np.allclose(pool_a, pool_b) else 'changed'}\n{fmt(pool_b)}\n"
            f"RoIAlign: {'unchanged' if np.allclose(align_a, align_b) else 'changed'}\n{fmt(align_b)}")
    text_ax.text(0, 1, text, family="monospace", va="top", fontsize=9)
    text_ax.axis("off")
    text_ax.set_title(f"{output_size}x{output_size} outputs")
    return fig


def mask_probabilities(model, image, boxes, labels):
    """The mask head's small masks (``2 * mask_pool`` square) for given boxes and classes.

    Runs the backbone, RoIAlign on the boxes, the mask head and the mask
    predictor, and returns the sigmoid of the logits of each box's class:
    the raw output before :func:`paste_mask` puts it back into the image.

    Returns
    -------
    ndarray of float32, shape (N, M, M)

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = build_model()
    >>> mask_probabilities(model, np.zeros((96, 96, 3)), [[10, 10, 30, 40]], [1]).shape
    (1, 28, 28)
    """
    import torch

    boxes = check_boxes(boxes, "boxes").astype(np.float32)
    labels = _numeric(labels, "labels").astype(np.int64).reshape(-1)
    if len(labels) != len(boxes):
        raise ValueError(f"got {len(boxes)} boxes but {len(labels)} labels")
    images, features = _features(model, image)
    heads = model.roi_heads
    with torch.inference_mode():
        pooled = heads.mask_roi_pool(features, [torch.from_numpy(boxes)], images.image_sizes)
        logits = heads.mask_predictor(heads.mask_head(pooled))
        picked = logits[torch.arange(len(labels)), torch.from_numpy(labels)]
    return torch.sigmoid(picked).numpy().astype(np.float32)


def plot_mask_head(model, image, prediction, index=0):
    """One detection through the mask head: the 28x28 mask, pasted into its box, thresholded.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt, torch
    >>> _ = torch.manual_seed(0)
    >>> model = build_model()
    >>> image = np.zeros((96, 96, 3), np.float32)
    >>> pred = {"boxes": [[10, 10, 30, 40]], "labels": [1], "scores": [0.5]}
    >>> fig = plot_mask_head(model, image, pred)
    >>> [ax.get_title() for ax in fig.axes][:2]
    ['28x28 mask for its circle', 'pasted into the box']
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    boxes = check_boxes(prediction["boxes"], "boxes")
    labels = np.asarray(prediction["labels"]).reshape(-1)
    index = as_int(index, "index", minimum=0, maximum=len(boxes) - 1)
    box, label = boxes[index], int(labels[index])
    small = mask_probabilities(model, image, box[None], [label])[0]
    height, width = np.shape(image)[:2]
    pasted = paste_mask(small, box, (height, width))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), layout="constrained")
    im = axes[0].imshow(small, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title(f"{small.shape[0]}x{small.shape[1]} mask for its {CLASS_NAMES[label]}")
    axes[0].set_xlabel("mask column")
    axes[0].set_ylabel("mask row")
    axes[1].imshow(pasted, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    axes[1].add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0], box[3] - box[1],
                                fill=False, ec="white", lw=1.2))
    axes[1].set_title("pasted into the box")
    axes[2].imshow(np.clip(image, 0, 1), interpolation="nearest")
    axes[2].contour(pasted >= 0.5, levels=[0.5], colors=["white"], linewidths=2)
    axes[2].set_title("thresholded at 0.5, on the image")
    for ax in axes[1:]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[:2], shrink=0.8, label="mask probability")
    return fig


def overlay_instances(image, masks, keep):
    """The image (float RGB) with the masks of detections ``keep`` tinted, one colour per instance.

    Parameters
    ----------
    image : ndarray (H, W, 3)
        Float in [0, 1] or uint8.
    masks : array (N, H, W) or None
        Mask probabilities or bool; a pixel belongs to a mask where it is >= 0.5.
        ``None`` returns the image alone.
    keep : sequence of int
        Which masks to tint; the ``r``-th of them gets :func:`instance_color` ``(r)``.

    Returns
    -------
    ndarray of float64, shape (H, W, 3)
        70 % instance colour, 30 % image on each tinted pixel.

    Examples
    --------
    >>> masks = np.zeros((2, 4, 4), bool); masks[1, :2] = True
    >>> canvas = overlay_instances(np.zeros((4, 4, 3)), masks, [1])
    >>> np.allclose(canvas[0, 0], 0.7 * np.array(INSTANCE_COLORS[0])), canvas[3, 3].tolist()
    (True, [0.0, 0.0, 0.0])
    """
    shown = np.clip(image, 0, 1) if image.dtype != np.uint8 else image / 255.0
    canvas = np.array(shown, dtype=float)
    if masks is not None:
        for rank, k in enumerate(keep):
            mask = np.asarray(masks[k]) >= 0.5
            canvas[mask] = 0.3 * canvas[mask] + 0.7 * np.array(instance_color(rank))
    return canvas


def plot_comparison(scene, prediction=None, *, score_threshold=0.5):
    """Semantic against instance segmentation on one scene, with object counts in the titles.

    Panels: the image; the class map (what a semantic model such as lesson 04's
    FCN predicts at best), whose connected regions are its only "instances";
    the true instances; and, with ``prediction``, Mask R-CNN's detections. Class
    maps use :data:`CLASS_MAP_COLORS`; instances use :data:`INSTANCE_COLORS`,
    one colour per object.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = plot_comparison(instance_scenes(1, seed=3)[0])
    >>> len(fig.axes), fig.axes[3].get_title().startswith("true instances")
    (4, True)
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    image = as_image(scene["image"], "image", channels="color")
    regions, _ = semantic_instances(scene["semantic"])
    n_panels = 5 if prediction is not None else 4
    fig, axes = plt.subplots(1, n_panels, figsize=(2.9 * n_panels, 3.9), layout="constrained")
    axes[0].imshow(np.clip(image, 0, 1), interpolation="nearest")
    axes[0].set_title("image")
    axes[1].imshow(np.asarray(CLASS_MAP_COLORS)[scene["semantic"]], interpolation="nearest")
    axes[1].set_title("class map (a perfect\nsemantic segmentation)")
    present = [c for c in range(1, len(CLASS_NAMES)) if (scene["semantic"] == c).any()]
    axes[1].legend(handles=[Patch(color=CLASS_MAP_COLORS[c], label=CLASS_NAMES[c]) for c in present],
                   loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=8, frameon=False)
    axes[2].imshow(overlay_instances(image, regions, range(len(regions))), interpolation="nearest")
    axes[2].set_title(f"its connected regions:\n{len(regions)} 'objects'")
    truth = np.asarray(scene["masks"], bool)
    axes[3].imshow(overlay_instances(image, truth, range(len(truth))), interpolation="nearest")
    axes[3].set_title(f"true instances:\n{len(truth)} objects")
    if prediction is not None:
        scores = np.asarray(prediction["scores"]).reshape(-1)
        keep = np.flatnonzero(scores >= score_threshold)
        axes[4].imshow(overlay_instances(image, prediction["masks"], keep), interpolation="nearest")
        axes[4].set_title(f"Mask R-CNN (score >= {score_threshold:g}):\n{len(keep)} objects")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_cases(scenes, predictions, indices, *, score_threshold=0.5):
    """Ground truth above detections for the chosen scenes (e.g. :func:`failure_cases`).

    Titles give each scene's matched, missed and false detections at mask IoU 0.5.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> scenes = instance_scenes(2, seed=3)
    >>> truth = [dict(s, scores=np.ones(len(s["labels"]))) for s in scenes]
    >>> fig = plot_cases(scenes, truth, [1])
    >>> fig.axes[1].get_title()
    'scene 1: 0 missed, 0 false'
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    indices = [as_int(i, "index", minimum=0, maximum=len(scenes) - 1) for i in indices]
    if not indices:
        raise ValueError("indices is empty; give at least one scene index")
    fig, axes = plt.subplots(2, len(indices), figsize=(3.0 * len(indices), 6.4), layout="constrained",
                             squeeze=False)
    for col, i in enumerate(indices):
        scene = scenes[i]
        truth = dict(scene, scores=np.ones(len(scene["labels"])))
        plot_detections(scene["image"], truth, ax=axes[0, col], title=f"scene {i}: truth")
        score = detection_scores(scene, predictions[i], score_threshold=score_threshold)
        plot_detections(scene["image"], predictions[i], score_threshold=score_threshold, ax=axes[1, col],
                        title=f"scene {i}: {score['missed']} missed, {score['false']} false")
    return fig


def plot_detections(image, prediction, *, score_threshold=0.5, boxes=True, masks=True, labels=True,
                    ax=None, title=None, class_names=CLASS_NAMES):
    """Detections on an image: one colour per *instance*, class and score in text.

    Parameters
    ----------
    image : array (H, W, 3)
    prediction : dict
        From :func:`predict` (or a target with ``scores`` added).
    score_threshold : float
        Draw detections with at least this score.
    boxes, masks, labels : bool
        What to draw for each detection.
    ax : matplotlib Axes, optional
    title : str, optional
        Default: how many detections are drawn.
    class_names : sequence of str
        Name of each class id (default :data:`CLASS_NAMES`; :data:`HUB_CLASS_NAMES`
        for the pedestrians).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> scene = instance_scenes(1)[0]
    >>> truth = dict(scene, scores=np.ones(len(scene["labels"])))
    >>> ax = plot_detections(scene["image"], truth)
    >>> ax.get_title() == f"{len(scene['labels'])} detections with score >= 0.5"
    True
    >>> plt.close(ax.figure)
    """
    from matplotlib.patches import Rectangle

    image = as_image(image, "image", channels="color")
    score_threshold = as_float(score_threshold, "score_threshold", minimum=0, maximum=1)
    height, width = image.shape[:2]
    scores = np.asarray(prediction["scores"], dtype=float).reshape(-1)
    keep = np.flatnonzero(scores >= score_threshold)
    ax = _axes(ax)
    pred_masks = prediction.get("masks") if masks else None
    ax.imshow(overlay_instances(image, pred_masks, keep), interpolation="nearest")
    box_array = check_boxes(prediction["boxes"], "boxes")
    label_array = np.asarray(prediction["labels"]).reshape(-1)
    for rank, k in enumerate(keep):
        color = instance_color(rank)
        x0, y0, x1, y1 = box_array[k]
        if pred_masks is not None:
            ax.contour(np.asarray(pred_masks[k]) >= 0.5, levels=[0.5], colors=[color], linewidths=1.2)
        if boxes:
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.5))
        if labels:
            ax.text(x0 - 0.5, y0 - 1.0, f"{class_names[int(label_array[k])]} {scores[k]:.2f}", fontsize=7,
                    color=text_color(color), va="bottom", bbox={"facecolor": color, "edgecolor": "none", "pad": 1, "alpha": 0.9})
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title if title is not None else f"{len(keep)} detections with score >= {score_threshold:g}")
    return ax


def plot_objects(image, prediction, *, score_threshold=0.5, max_objects=6):
    """The three outputs per object, one column each: class and score, box, mask.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> scene = instance_scenes(1)[0]
    >>> fig = plot_objects(scene["image"], dict(scene, scores=np.ones(len(scene["labels"]))))
    >>> len(fig.axes) == 2 * min(len(scene["labels"]), 6)
    True
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    image = as_image(image, "image", channels="color")
    scores = np.asarray(prediction["scores"], dtype=float).reshape(-1)
    keep = np.flatnonzero(scores >= as_float(score_threshold, "score_threshold", minimum=0, maximum=1))
    keep = keep[:as_int(max_objects, "max_objects", minimum=1)]
    if len(keep) == 0:
        raise ValueError(f"no detection has a score >= {score_threshold}; lower score_threshold")
    box_array = check_boxes(prediction["boxes"], "boxes")
    label_array = np.asarray(prediction["labels"]).reshape(-1)
    fig, axes = plt.subplots(2, len(keep), figsize=(2.0 * len(keep), 4.3), layout="constrained", squeeze=False)
    shown = np.clip(image, 0, 1) if image.dtype != np.uint8 else image / 255.0
    for col, k in enumerate(keep):
        color = instance_color(col)
        x0, y0, x1, y1 = box_array[k]
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(shown, interpolation="nearest")
        top.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color, lw=2))
        top.set_title(f"{CLASS_NAMES[int(label_array[k])]}, score {scores[k]:.2f}", fontsize=9)
        bottom.imshow(np.asarray(prediction["masks"][k]) >= 0.5, cmap="gray", interpolation="nearest")
        bottom.set_title(f"mask, {int((np.asarray(prediction['masks'][k]) >= 0.5).sum())} px", fontsize=9)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("class, score, box")
    axes[1, 0].set_ylabel("mask")
    return fig


def plot_losses(history, *, ax=None, smooth=20):
    """Each loss component of Mask R-CNN against the training step (log scale).

    Parameters
    ----------
    history : dict
        ``result["history"]`` from :func:`train`.
    smooth : int
        Width of the running mean drawn over the raw values.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> history = {name: [1.0, 0.5, 0.25] for name in LOSS_NAMES}
    >>> ax = plot_losses(history, smooth=2)
    >>> [t.get_text() for t in ax.get_legend().get_texts()][0]
    'RPN objectness'
    >>> plt.close(ax.figure)
    """
    import matplotlib

    missing = [name for name in LOSS_NAMES if name not in history]
    if missing:
        raise ValueError(f"history has no {', '.join(missing)}; pass result['history'] from train()")
    smooth = as_int(smooth, "smooth", minimum=1)
    ax = _axes(ax, figsize=(7, 3.6))
    colors = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(LOSS_NAMES)))
    for name, color in zip(LOSS_NAMES, colors):
        values = np.asarray(history[name], dtype=float)
        steps = np.arange(1, len(values) + 1)
        width = min(smooth, len(values))
        mean = np.convolve(values, np.ones(width) / width, mode="valid")
        style = "--" if name.startswith("loss_rpn") or name == "loss_objectness" else "-"
        ax.plot(steps, values, color=color, alpha=0.2, lw=0.8)
        ax.plot(steps[width - 1:], mean, color=color, lw=1.8, ls=style, label=_LOSS_TITLES[name])
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(f"Mask R-CNN losses (faint: per step; bold: mean of {smooth} steps; dashed: RPN)")
    ax.legend(fontsize=8, ncol=2)
    return ax


# =========================================================================== on a hub: real photographs

#: Class names of the Penn-Fudan pedestrians (0 is the background).
HUB_CLASS_NAMES = ("background", "person")


@dataclasses.dataclass(frozen=True)
class HubConfig:
    """Fine-tuning torchvision's Mask R-CNN on the Penn-Fudan pedestrians (see :func:`hub_run`).

    The defaults are those of torchvision's detection tutorial: batches of 2
    photographs flipped at random, SGD with learning rate 0.005, momentum 0.9 and
    weight decay 5e-4, a linear warm-up from ``lr / 1000`` over the first epoch
    (the tutorial's ``min(1000, len(data_loader) - 1)`` steps), then a constant
    rate (its step decay comes after epoch 3, which a 2-epoch run never reaches),
    and 2 epochs of the 120 training photographs: 120 steps. The last
    ``test_images`` photographs in name order are held out (the tutorial holds out
    50 of its 170, drawn at random); with fewer photographs, all but one train.

    Parameters
    ----------
    iterations, batch_size : int
        Training steps and photographs per step.
    lr, momentum, weight_decay : float
        SGD settings.
    warmup : int
        Steps of linear warm-up from ``lr / 1000`` (0: none).
    flip : float
        Probability of a horizontal flip of a training photograph.
    test_images : int
        Photographs held out for the evaluation (the last ones).
    min_size, max_size : int
        The model's resizing (``GeneralizedRCNNTransform``): the shorter side to
        ``min_size`` unless the longer one would exceed ``max_size``
        (torchvision: 800 and 1333).
    rpn_post_nms_train, rpn_post_nms_test : int
        Proposals kept per image after the RPN's NMS (torchvision: 2000 and 1000).
    box_batch : int
        RoIs sampled per image for the box and mask heads (torchvision: 512).
    trainable_layers : int or None
        ResNet stages trained, from the last (0 to 5; the feature pyramid and the
        heads always train). None: torchvision's choice, 3 when starting from
        pretrained weights and 5 from random ones.
    pretrained : bool
        Start from COCO weights when they are cached (see :func:`hub_model`).
    seed : int
        Seed of the new layers' weights, the order of the photographs and the flips.

    Examples
    --------
    >>> HubConfig().iterations, HubConfig(min_size=64).as_dict()["min_size"]
    (120, 64)
    >>> HubConfig(batch_size=0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be >= 1, got 0
    """

    iterations: int = 120
    batch_size: int = 2
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup: int = 60
    flip: float = 0.5
    test_images: int = 50
    min_size: int = 800
    max_size: int = 1333
    rpn_post_nms_train: int = 2000
    rpn_post_nms_test: int = 1000
    box_batch: int = 512
    trainable_layers: int | None = None
    pretrained: bool = True
    seed: int = 0

    def __post_init__(self):
        for name in ("iterations", "batch_size", "test_images", "min_size", "max_size", "rpn_post_nms_train",
                     "rpn_post_nms_test", "box_batch"):
            as_int(getattr(self, name), name, minimum=1)
        for name in ("warmup", "seed"):
            as_int(getattr(self, name), name, minimum=0)
        for name in ("lr", "momentum", "weight_decay"):
            as_float(getattr(self, name), name, minimum=0)
        as_float(self.flip, "flip", minimum=0, maximum=1)
        if self.max_size < self.min_size:
            raise ValueError(f"max_size must be >= min_size, got {self.max_size} < {self.min_size}")
        if self.trainable_layers is not None:
            as_int(self.trainable_layers, "trainable_layers", minimum=0, maximum=5)
        if not isinstance(self.pretrained, bool):
            raise TypeError(f"pretrained must be True or False, got {describe(self.pretrained)}")

    def as_dict(self) -> dict:
        """The settings as a plain dict, e.g. a cache key."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "HubConfig":
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


def _check_hub_config(config):
    config = HubConfig() if config is None else config
    if not isinstance(config, HubConfig):
        raise TypeError(f"config must be a segtutor.maskrcnn.HubConfig, got {describe(config)}")
    return config


def _coco_weights_file():
    """Where torchvision keeps the COCO weights of ``maskrcnn_resnet50_fpn_v2`` (the file may not exist)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    from segtutor import paths

    return paths.weights_dir() / os.path.basename(MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url)


def hub_weights(pretrained=True, *, verbose=False):
    """Which weights :func:`hub_model` starts from: ``"COCO"``, ``"ImageNet backbone"`` or ``"random"``.

    COCO weights of ``maskrcnn_resnet50_fpn_v2`` when they are in torch's hub cache
    (``torch.hub.get_dir()/checkpoints``), else the ImageNet weights of its ResNet-50
    when those are, else none. Nothing is downloaded.

    Parameters
    ----------
    pretrained : bool
        False: ``"random"``, without looking.
    verbose : bool
        Print one line when the COCO weights are missing.

    Examples
    --------
    >>> hub_weights(pretrained=False)
    'random'
    """
    from segtutor import backbones

    if not pretrained:
        return "random"
    coco = _coco_weights_file()
    if coco.is_file():
        return "COCO"
    # the ImageNet weights lesson 03 uses for ResNet-50 are the backbone's (ResNet50_Weights.IMAGENET1K_V1)
    source = "ImageNet backbone" if backbones.weights_file("resnet50").is_file() else "random"
    if verbose:
        start = "random weights" if source == "random" else "the ImageNet weights of its ResNet-50"
        print(f"COCO weights of maskrcnn_resnet50_fpn_v2 are not in {coco.parent} "
              f"(nothing is downloaded); starting from {start}.")
    return source


def hub_model(num_classes=2, *, config=None, pretrained=True, verbose=True):
    """torchvision's ``maskrcnn_resnet50_fpn_v2`` with new predictors for ``num_classes``.

    As in torchvision's detection tutorial: the model with COCO weights, its box
    predictor replaced by a :class:`~torchvision.models.detection.faster_rcnn.FastRCNNPredictor`
    and its mask predictor by a :class:`~torchvision.models.detection.mask_rcnn.MaskRCNNPredictor`
    for ``num_classes`` (background included). COCO weights are used only if already
    cached (:func:`hub_weights`); otherwise one line says so and the model starts
    from the ImageNet weights of its backbone if cached, else from random weights.
    The new layers (all layers, without weights) are drawn from ``config.seed``.

    Parameters
    ----------
    num_classes : int
        Classes including the background (>= 2): 2 for the pedestrians.
    config : HubConfig, optional
        Image sizes, proposal and RoI counts, seed.
    pretrained : bool
        Look for cached weights (False: random weights, nothing printed).
    verbose : bool
        Print the line about missing COCO weights.

    Returns
    -------
    torchvision.models.detection.MaskRCNN
        In training mode.

    Examples
    --------
    >>> model = hub_model(3, config=HubConfig(min_size=64, max_size=96), pretrained=False)
    >>> heads = model.roi_heads
    >>> heads.box_predictor.cls_score.out_features, heads.mask_predictor.mask_fcn_logits.out_channels
    (3, 3)
    """
    import torch
    from torchvision.models import ResNet50_Weights
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights, maskrcnn_resnet50_fpn_v2
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    num_classes = as_int(num_classes, "num_classes", minimum=2)
    config = _check_hub_config(config)
    source = hub_weights(pretrained, verbose=verbose)
    sizes = {
        "min_size": config.min_size, "max_size": config.max_size, "box_batch_size_per_image": config.box_batch,
        "rpn_post_nms_top_n_train": config.rpn_post_nms_train, "rpn_post_nms_top_n_test": config.rpn_post_nms_test,
        "rpn_pre_nms_top_n_train": config.rpn_post_nms_train, "rpn_pre_nms_top_n_test": config.rpn_post_nms_test,
        # torchvision ignores (with a warning) a choice of trained stages without pretrained weights
        "trainable_backbone_layers": None if source == "random" else config.trainable_layers,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = maskrcnn_resnet50_fpn_v2(
            weights=MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1 if source == "COCO" else None,
            weights_backbone=ResNet50_Weights.IMAGENET1K_V1 if source == "ImageNet backbone" else None,
            **sizes,
        )
        in_features = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes)
        mask_channels = model.roi_heads.mask_predictor.conv5_mask.in_channels
        model.roi_heads.mask_predictor = MaskRCNNPredictor(mask_channels, 256, num_classes)
    if config.trainable_layers is not None and source == "random":  # torchvision's rule, applied here
        stages = ["layer4", "layer3", "layer2", "layer1", "conv1", "bn1"][:config.trainable_layers + (
            config.trainable_layers == 5)]
        for name, parameter in model.backbone.body.named_parameters():
            if not name.startswith(tuple(stages)):
                parameter.requires_grad_(False)
    return model


def _collate_lists(batch):
    """Detection batches are lists: photographs differ in size (the model pads them itself)."""
    return tuple(list(items) for items in zip(*batch))


def hub_datasets(config=None, root=None):
    """The Penn-Fudan photographs for fine-tuning, and the held-out ones.

    :class:`segtutor.datasets.PennFudan` with instance targets, through
    :mod:`torchvision.transforms.v2`: random horizontal flips (training only; the
    boxes and masks move with the photograph), then ``ToDtype(float32, scale=True)``
    (pixels in [0, 1], as the model expects) and plain tensors.

    Returns
    -------
    train, test : torch.utils.data.Subset
        Items ``(image float32 (3, H, W), target)``; ``test`` holds the last
        ``min(config.test_images, n - 1)`` photographs.

    Raises
    ------
    FileNotFoundError
        When Penn-Fudan is not under ``root`` (the message names the layout).
    ValueError
        With fewer than 2 photographs.
    """
    import torch
    from torchvision.transforms import v2

    from segtutor import datasets

    config = _check_hub_config(config)
    to_model = [v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()]
    train_view = datasets.PennFudan(root, target="instances",
                                    transforms=v2.Compose([v2.RandomHorizontalFlip(config.flip), *to_model]))
    test_view = datasets.PennFudan(root, target="instances", transforms=v2.Compose(to_model))
    return datasets.pennfudan_split(train_view, test_view, held_out=config.test_images)


def hub_train(model, data, config=None, *, settings=None, progress=True):
    """Fine-tune a detection model on photographs, as torchvision's detection tutorial does.

    One loop, top to bottom: batches (lists of photographs and targets) from a
    shuffled, seeded data loader with ``settings.num_workers`` workers; the model
    returns its five losses, their sum is minimised by SGD (momentum, weight decay)
    after a linear warm-up; on CUDA with ``settings.mixed_precision`` the forward
    pass runs under ``torch.autocast`` (float16) and a ``torch.amp.GradScaler``
    scales the loss. On the CPU the same config and settings give the same losses.

    Parameters
    ----------
    model : torchvision.models.detection.MaskRCNN
        E.g. :func:`hub_model`; trained in place (on ``settings.device``).
    data : torch.utils.data.Dataset
        Items ``(image float32 (3, H, W) in [0, 1], target dict)`` with ``boxes``,
        ``labels`` and ``masks`` (see :func:`hub_datasets`).
    config : HubConfig, optional
    settings : segtutor.profiles.Settings, optional
        Device, mixed precision and workers (default: the current profile's).
    progress : bool
        Show a progress bar (removed when training ends).

    Returns
    -------
    dict
        ``state_dict`` (on the CPU), ``config``, ``history`` (each of :data:`LOSS_NAMES`,
        ``loss`` and ``lr``, one value per step), ``seconds``, ``device``.

    Raises
    ------
    FloatingPointError
        When the loss stops being finite.
    """
    import torch
    from torchvision.models.detection import MaskRCNN

    from segtutor import profiles, training

    config = _check_hub_config(config)
    if not isinstance(model, MaskRCNN):
        raise TypeError(f"model must be a torchvision MaskRCNN (e.g. hub_model()), got {describe(model)}")
    settings = profiles.settings() if settings is None else settings
    if not isinstance(settings, profiles.Settings):
        raise TypeError(f"settings must be a segtutor.profiles.Settings, got {describe(settings)}")
    if len(data) == 0:
        raise ValueError("data is empty; give at least one photograph to train on")

    torch.manual_seed(config.seed)
    device = torch.device(settings.device)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scaler = settings.grad_scaler()
    loader = training.data_loader(data, config.batch_size, settings, shuffle=True, seed=config.seed,
                                  collate_fn=_collate_lists)
    history = {name: [] for name in LOSS_NAMES + ("loss", "lr")}
    bar, remove_bar = _progress_bar(config.iterations, "fine-tuning Mask R-CNN", progress)
    start = time.perf_counter()
    step = 0
    while step < config.iterations:
        for images, targets in loader:
            images = [image.to(device, non_blocking=True) for image in images]
            targets = [{k: v.to(device) if hasattr(v, "to") else v for k, v in t.items()} for t in targets]
            lr = config.lr * (0.001 + 0.999 * step / config.warmup if step < config.warmup else 1.0)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with settings.autocast():
                losses = model(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss.item()} at step {step}; lower lr (now {config.lr})")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            for name in LOSS_NAMES:
                history[name].append(losses[name].item())
            history["loss"].append(loss.item())
            history["lr"].append(lr)
            step += 1
            bar.update(1)
            if progress and step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            if step == config.iterations:
                break
    bar.close()
    remove_bar()
    model.eval()
    return {
        "state_dict": {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()},
        "config": config.as_dict(),
        "history": history,
        "seconds": time.perf_counter() - start,
        "device": device.type,
    }


def _numpy_target(image, target):
    return {"boxes": target["boxes"].numpy().astype(np.float32), "labels": target["labels"].numpy(),
            "masks": target["masks"].numpy().astype(bool), "image": image.permute(1, 2, 0).numpy()}


def hub_predict(model, data, *, settings=None, batch_size=2, keep=0):
    """Run a detection model over a dataset of ``(image, target)`` pairs.

    Batches of ``batch_size`` on ``settings.device`` (autocast to float16 on CUDA
    with ``settings.mixed_precision``). Masks are kept as booleans (a probability
    map per detection for each of 50 photographs would take gigabytes).

    Parameters
    ----------
    model : torchvision.models.detection.MaskRCNN
        Put in eval mode by this function.
    data : torch.utils.data.Dataset
        Items ``(image float32 (3, H, W), target)`` as :func:`hub_datasets` gives them.
    settings : segtutor.profiles.Settings, optional
        Default: the current profile's.
    batch_size : int
    keep : int
        How many of the first images to return in ``examples``.

    Returns
    -------
    targets : list of dict
        ``boxes``, ``labels``, ``masks`` (bool) as NumPy arrays, as :func:`coco_evaluate` takes them.
    predictions : list of dict
        ``boxes``, ``labels``, ``scores``, and ``masks`` thresholded at 0.5 (bool (N, H, W)).
    examples : list of (image, target, prediction)
        The first ``keep`` images (float (H, W, 3)), with mask probabilities.
    """
    import torch

    from segtutor import profiles, training

    settings = profiles.settings() if settings is None else settings
    keep = as_int(keep, "keep", minimum=0)
    device = torch.device(settings.device)
    model = model.to(device).eval()
    targets, predictions, examples = [], [], []
    with torch.inference_mode():
        for images, truths in training.data_loader(data, as_int(batch_size, "batch_size", minimum=1), settings,
                                                   shuffle=False, collate_fn=_collate_lists):
            with settings.autocast():
                outputs = model([image.to(device) for image in images])
            for image, truth, out in zip(images, truths, outputs):
                out = {k: v.float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy()
                       for k, v in out.items()}
                probabilities = out["masks"][:, 0]
                prediction = {"boxes": out["boxes"].reshape(-1, 4), "labels": out["labels"],
                              "scores": out["scores"], "masks": probabilities >= 0.5}
                target = _numpy_target(image, truth)
                if len(examples) < keep:
                    examples.append((target.pop("image"), target, dict(prediction, masks=probabilities)))
                target.pop("image", None)
                targets.append(target)
                predictions.append(prediction)
    return targets, predictions, examples


def _load_hub_model(state_dict, config):
    """:func:`hub_model` with trained weights, built without drawing (and then replacing) random ones."""
    import torch

    with torch.device("meta"):
        model = hub_model(len(HUB_CLASS_NAMES), config=config, pretrained=False)
    model.load_state_dict(state_dict, assign=True)
    left = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"the saved weights lack {left[:3]}; they are not those of hub_model()")
    return model.eval()


def _describe_hub(config):
    start = "COCO weights when cached" if config.pretrained else "random weights"
    return (f"fine-tunes torchvision's Mask R-CNN (maskrcnn_resnet50_fpn_v2, from {start}) on the pedestrians "
            f"({config.iterations} steps of {config.batch_size} photographs) and shows its box and mask AP "
            f"on the last {config.test_images} photographs, held out")


def hub_run(config=None, *, root=None, profile=None, progress=True, examples=3):
    """Lesson 06 on real photographs: Mask R-CNN fine-tuned on the Penn-Fudan pedestrians.

    Runs under the full profile when Penn-Fudan is present (see
    :func:`segtutor.profiles.hub_section`); otherwise prints one line saying what it
    would show and returns ``None``. The model is :func:`hub_model` (COCO weights
    when cached), trained by :func:`hub_train` on the profile's device through
    :func:`segtutor.training.cached` (running the notebook again reloads it), and
    scored with :func:`coco_evaluate` on the held-out photographs.

    Parameters
    ----------
    config : HubConfig, optional
    root : str or Path, optional
        The data folder (default :func:`segtutor.paths.data_dir`).
    profile : {"quick", "full"}, optional
    progress : bool
    examples : int
        Held-out photographs kept with their predictions, for :func:`plot_hub_run`.

    Returns
    -------
    dict or None
        ``model`` (on the CPU, eval mode), ``history`` (the losses per step),
        ``scores`` (:func:`coco_evaluate`: ``bbox`` and ``segm``, each ``AP``, ``AP50``,
        ``AP75``), ``ap`` (the same, flat: ``box_AP``, ..., ``mask_AP75``), ``examples``
        (list of ``(image (H, W, 3), truth, prediction)``), ``seconds`` (training),
        ``device``, ``weights`` (what the training started from), ``from_cache``,
        ``train_images``, ``test_images``, ``config``.

    Examples
    --------
    >>> hub_run(profile="quick")
    On a hub: skipped (quick profile). With SEGTUTOR_PROFILE=full and Penn-Fudan pedestrians in the data folder (`segtutor fetch pennfudan`), this section fine-tunes torchvision's Mask R-CNN (maskrcnn_resnet50_fpn_v2, from COCO weights when cached) on the pedestrians (120 steps of 2 photographs) and shows its box and mask AP on the last 50 photographs, held out.
    """
    from segtutor import paths, profiles, training

    config = _check_hub_config(config)
    examples = as_int(examples, "examples", minimum=0)
    if not profiles.hub_section("pennfudan", _describe_hub(config), profile=profile, root=root):
        return None
    settings = profiles.settings(profile)
    folder = paths.data_dir() if root is None else root
    train_set, test_set = hub_datasets(config, folder)
    weights = hub_weights(config.pretrained and settings.pretrained, verbose=True)
    key = {**config.as_dict(), "data": str(folder), "train_images": len(train_set), "weights": weights,
           **settings.cache_key()}
    trained = {}

    def train_now():
        trained["model"] = hub_model(len(HUB_CLASS_NAMES), config=config, pretrained=weights != "random",
                                     verbose=False)
        return hub_train(trained["model"], train_set, config, settings=settings, progress=progress)

    result, from_cache = training.cached("maskrcnn-hub-pennfudan", key, train_now)
    model = trained["model"] if "model" in trained else _load_hub_model(result["state_dict"], config)
    targets, predictions, shown = hub_predict(model, test_set, settings=settings, batch_size=config.batch_size,
                                              keep=examples)
    scores = coco_evaluate(targets, predictions)
    ap = {f"{name}_{metric}": scores[kind][metric] for kind, name in (("bbox", "box"), ("segm", "mask"))
          for metric in ("AP", "AP50", "AP75")}
    print(f"Mask R-CNN from {weights} weights on Penn-Fudan: {training.describe_run(from_cache, result['seconds'])}"
          f" on {result['device']} ({len(train_set)} photographs); on the {len(test_set)} held out: "
          f"box AP {ap['box_AP']:.3f}, mask AP {ap['mask_AP']:.3f} (mask AP50 {ap['mask_AP50']:.3f})")
    return {"model": model.cpu().eval(), "history": result["history"], "scores": scores, "ap": ap,
            "examples": shown, "seconds": result["seconds"], "device": result["device"], "weights": weights,
            "from_cache": from_cache, "train_images": len(train_set), "test_images": len(test_set),
            "config": config}


def plot_hub_run(run, *, score_threshold=0.5):
    """Held-out photographs of :func:`hub_run`: the people marked by hand above Mask R-CNN's detections.

    One colour per person (:data:`INSTANCE_COLORS`), boxes and mask outlines as in
    :func:`plot_detections`; box and mask AP in the title; the five losses of the
    training below (:func:`plot_losses`).

    Parameters
    ----------
    run : dict
        What :func:`hub_run` returned.
    score_threshold : float
        Draw detections with at least this score.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if not isinstance(run, dict) or not {"examples", "ap", "history"} <= set(run):
        raise TypeError(f"run must be what segtutor.maskrcnn.hub_run returned, got {describe(run)}")
    shown = run["examples"]
    if not shown:
        raise ValueError("run has no examples to show (hub_run(..., examples=0))")
    width = 3.6 * max(len(shown), 2) / len(shown)  # inches per photograph
    row = width * max(np.shape(image)[0] / np.shape(image)[1] for image, _, _ in shown) + 0.5
    fig = plt.figure(figsize=(width * len(shown), 2 * row + 3.6), layout="constrained")
    grid = fig.add_gridspec(3, len(shown), height_ratios=(row, row, 3.2))
    for col, (image, truth, prediction) in enumerate(shown):
        marked = dict(truth, scores=np.ones(len(truth["labels"])))
        plot_detections(image, marked, labels=False, ax=fig.add_subplot(grid[0, col]),
                        title=f"marked by hand: {len(truth['labels'])} people")
        kept = int((np.asarray(prediction["scores"]) >= score_threshold).sum())
        plot_detections(image, prediction, score_threshold=score_threshold, ax=fig.add_subplot(grid[1, col]),
                        class_names=HUB_CLASS_NAMES,
                        title=f"Mask R-CNN: {kept} with score >= {score_threshold:g}")
    steps = len(run["history"]["loss"])
    plot_losses(run["history"], ax=fig.add_subplot(grid[2, :]), smooth=max(1, min(10, steps // 4)))
    ap = run["ap"]
    fig.suptitle(f"Mask R-CNN (from {run['weights']} weights) fine-tuned on Penn-Fudan, "
                 f"on the {run['test_images']} held-out photographs:\nmask AP {ap['mask_AP']:.3f} "
                 f"(AP50 {ap['mask_AP50']:.3f}), box AP {ap['box_AP']:.3f} (AP50 {ap['box_AP50']:.3f})")
    return fig
