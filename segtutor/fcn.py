"""Fully convolutional networks: FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell, 2015).

An FCN "learns a mapping from pixels to pixels, without extracting region
proposals". It keeps only convolutions and pooling, so it takes images of any
size; its scores come out at the backbone's stride (32 pixels), and upsampling
them gives fuzzy boundaries unless finer features are fused back in (*skips*).

The pieces, in the order the lesson meets them:

==================================  ===========================================================
name                                what it is
==================================  ===========================================================
:func:`bilinear_kernel`             the kernel that makes a transposed convolution bilinear
:func:`transposed_conv_output_size` the size a transposed convolution produces
:func:`bilinear_upsampling`         a ``ConvTranspose2d`` initialised to bilinear upsampling
:func:`upsample`                    nearest, bilinear or transposed-convolution upsampling
:class:`FuseSkip`                   one skip: upsample coarse scores x2, crop, add finer ones
:class:`TinyBackbone`               a small stride-32 VGG-style network that trains on a CPU
:func:`torchvision_backbone`        VGG-16 / ResNet from lesson 03 as a stride-8/16/32 backbone
:class:`FCN`                        the head: 1x1 scores, skips (16s: pool4, 8s: + pool3), output
:class:`Config`                     every setting of a training run
:func:`train`                       the training loop (torchvision ``references`` style)
:func:`evaluate`                    mIoU, pixel accuracy and boundary F-score on a data set
:func:`predict`                     label maps for images of any size
:func:`trained_model`               train once, reload afterwards (:func:`segtutor.training.cached`)
:func:`train_variants`              FCN-32s, 16s and 8s under one budget; :func:`compare_variants`
``plot_*``                          the lesson's figures (kernel, upsampling, curves, scores, ...)
==================================  ===========================================================

Backbones
---------
A backbone is an ``nn.Module`` whose ``forward(x)`` returns a dict with the keys
``"stride8"``, ``"stride16"`` and ``"stride32"``: feature maps at 1/8, 1/16 and 1/32
of the input's resolution (VGG's pool3, pool4 and pool5; ResNet's layer2, 3 and 4).
Its ``channels`` attribute gives the number of channels of each. :class:`FCN` checks
both when it is built.

Geometry
--------
Feature pixel ``i`` of a map at stride ``s`` is centred on input pixel
``s * i + (s - 1) / 2`` (the convention of 2x2 pooling). A transposed convolution
with kernel ``2f`` and stride ``f`` then puts the centre of coarse pixel ``i`` at
``f * i + f - 1/2``, so its output is cropped by ``f // 2`` pixels at the top and
left to line up with the finer map (:class:`FuseSkip`). The input is padded at the
bottom and right to a multiple of 32, so every stride divides it exactly, and the
output is cropped back: **the output has exactly the input's size**, whatever it is.
"""

from __future__ import annotations

import dataclasses
import numbers
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segtutor import data as _data
from segtutor import metrics as _metrics
from segtutor._checks import as_float, as_image, as_int, describe

__all__ = [
    "VARIANTS",
    "FEATURES",
    "IGNORE_INDEX",
    "bilinear_kernel",
    "boundary_window",
    "transposed_conv_output_size",
    "bilinear_upsampling",
    "upsample",
    "FuseSkip",
    "TinyBackbone",
    "torchvision_backbone",
    "FCN",
    "Config",
    "LESSON_CONFIG",
    "BENCH_CONFIG",
    "scenes",
    "build_model",
    "train",
    "evaluate",
    "predict",
    "score_maps",
    "feature_shapes",
    "coarse_truth",
    "load_model",
    "trained_model",
    "train_variants",
    "training_report",
    "compare_variants",
    "score_table",
    "evaluate_sizes",
    "plot_kernel",
    "plot_upsampling",
    "plot_histories",
    "plot_scores",
    "plot_boundaries",
    "plot_sizes",
    "HUB_BACKBONES",
    "HubConfig",
    "hub_datasets",
    "hub_model",
    "load_hub_model",
    "evaluate_dataset",
    "train_on",
    "hub_run",
    "plot_hub_run",
]

#: The three networks of the paper, by the stride of their finest scores.
VARIANTS = ("32s", "16s", "8s")
#: The feature maps a backbone returns, and their strides.
FEATURES = {"stride8": 8, "stride16": 16, "stride32": 32}
#: Label of pixels left out of the loss and the scores (PASCAL VOC's "void").
IGNORE_INDEX = 255

_FACTORS = {"32s": 32, "16s": 16, "8s": 8}
_OKABE_ITO = {"32s": "#E69F00", "16s": "#56B4E9", "8s": "#009E73"}


# =========================================================================== upsampling


def bilinear_kernel(size):
    """The 2-D kernel with which a transposed convolution upsamples bilinearly.

    For an upsampling factor ``f`` the kernel has ``size = 2 * f`` taps (the FCN
    paper's choice). With ``factor = (size + 1) // 2`` and ``centre = factor - 1``
    for odd sizes, ``factor - 1/2`` for even ones, tap ``(i, j)`` is::

        (1 - |i - centre| / factor) * (1 - |j - centre| / factor)

    the product of two triangles ("tents"): each output pixel mixes its nearest
    input pixels in proportion to how close they are.

    Parameters
    ----------
    size : int
        Kernel side, >= 1.

    Returns
    -------
    ndarray of float64, shape (size, size)
        Symmetric, separable (the outer product of a 1-D tent with itself),
        largest at the centre. For even ``size`` its taps sum to ``factor ** 2``:
        every output pixel of a stride-``factor`` transposed convolution gets
        weights summing to 1.

    Examples
    --------
    >>> bilinear_kernel(4)
    array([[0.0625, 0.1875, 0.1875, 0.0625],
           [0.1875, 0.5625, 0.5625, 0.1875],
           [0.1875, 0.5625, 0.5625, 0.1875],
           [0.0625, 0.1875, 0.1875, 0.0625]])
    >>> bilinear_kernel(3)[1]
    array([0.5, 1. , 0.5])
    """
    size = as_int(size, "size", minimum=1)
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    tent = 1 - np.abs(np.arange(size) - centre) / factor
    return np.outer(tent, tent)


def transposed_conv_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """Output size of a transposed convolution (``nn.ConvTranspose2d``) along one axis.

    A transposed convolution spreads each input pixel over a ``kernel_size`` window
    of the output, the windows ``stride`` pixels apart; ``padding`` then removes
    ``padding`` pixels from *each* end and ``output_padding`` adds pixels at one end::

        (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1

    It undoes the size change of a convolution with the same ``kernel_size``,
    ``stride`` and ``padding`` (up to the rounding of that convolution, which
    ``output_padding`` selects).

    Parameters
    ----------
    size : int
        Input size (>= 1).
    kernel_size, stride, dilation : int
        >= 1.
    padding : int
        >= 0.
    output_padding : int
        >= 0 and smaller than ``stride`` or ``dilation`` (PyTorch's rule).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        On values out of range, or when the output would be empty.

    Examples
    --------
    >>> transposed_conv_output_size(8, kernel_size=4, stride=2, padding=1)  # exactly x2
    16
    >>> transposed_conv_output_size(2, kernel_size=64, stride=32)  # FCN-32s, before the crop
    96
    """
    size = as_int(size, "size", minimum=1)
    kernel_size = as_int(kernel_size, "kernel_size", minimum=1)
    stride = as_int(stride, "stride", minimum=1)
    padding = as_int(padding, "padding", minimum=0)
    dilation = as_int(dilation, "dilation", minimum=1)
    output_padding = as_int(output_padding, "output_padding", minimum=0)
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding must be smaller than stride or dilation; got output_padding={output_padding} "
            f"with stride={stride} and dilation={dilation}"
        )
    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    if out < 1:
        raise ValueError(
            f"a transposed convolution with size={size}, kernel_size={kernel_size}, stride={stride} and "
            f"padding={padding} has no output pixels ({out}); use less padding"
        )
    return int(out)


def _check_factor(factor) -> int:
    factor = as_int(factor, "factor", minimum=1)
    if factor > 1 and factor % 2:
        raise ValueError(
            f"factor must be 1 or even (the kernel 2 * factor is then centred between two input pixels "
            f"and the crop factor // 2 is whole); got {factor}"
        )
    return factor


def bilinear_upsampling(channels, factor, *, learnable=True, per_channel=False):
    """A transposed convolution that upsamples each channel bilinearly by ``factor``.

    ``nn.ConvTranspose2d(channels, channels, kernel_size=2 * factor, stride=factor,
    bias=False)`` with the weight of input channel ``c`` to output channel ``c`` set
    to :func:`bilinear_kernel` ``(2 * factor)`` and every other weight 0 (the FCN
    paper's initialisation). Training may then change it.

    The output has ``(n + 1) * factor`` pixels for ``n`` input pixels; crop
    ``factor // 2`` at the top and left to line it up with the finer grid.

    Parameters
    ----------
    channels : int
    factor : int
        1 or an even number.
    learnable : bool
        False freezes the weight (``requires_grad=False``).
    per_channel : bool
        One kernel per channel (``groups=channels``, weight ``(channels, 1, 2f, 2f)``)
        instead of a ``channels x channels`` weight that may mix them: fewer
        weights, and faster on a CPU for large factors.

    Returns
    -------
    torch.nn.ConvTranspose2d

    Examples
    --------
    >>> up = bilinear_upsampling(3, 2)
    >>> up.weight.shape, up.weight.requires_grad
    (torch.Size([3, 3, 4, 4]), True)
    >>> x = torch.ones(1, 3, 5, 5)
    >>> up(x)[0, 0, 2:-2, 2:-2].unique().tolist()  # away from the border, 1 stays 1
    [1.0]
    """
    channels = as_int(channels, "channels", minimum=1)
    factor = _check_factor(factor)
    groups = channels if per_channel else 1
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, bias=False, groups=groups)
    kernel = torch.from_numpy(bilinear_kernel(2 * factor)).to(layer.weight.dtype)
    with torch.no_grad():
        layer.weight.zero_()
        for c in range(channels):
            layer.weight[c, 0 if per_channel else c] = kernel
    layer.weight.requires_grad_(bool(learnable))
    return layer


def _crop(x, offset, height, width):
    """``x[..., offset:offset + height, offset:offset + width]``, checking that it fits."""
    if x.shape[-2] < offset + height or x.shape[-1] < offset + width:
        raise ValueError(
            f"cannot crop {height}x{width} at offset {offset} from a map of {x.shape[-2]}x{x.shape[-1]}: "
            "the coarse map is too small for the finer one"
        )
    return x[..., offset:offset + height, offset:offset + width]


def upsample(scores, factor, mode="bilinear"):
    """Upsample score maps by an integer ``factor``: nearest, bilinear, or transposed convolution.

    Parameters
    ----------
    scores : ndarray or tensor, shape (H, W), (C, H, W) or (N, C, H, W)
    factor : int
        1 or even.
    mode : {"nearest", "bilinear", "transposed"}
        ``"nearest"`` repeats every value in a ``factor x factor`` block;
        ``"bilinear"`` interpolates between the centres of the input pixels
        (``F.interpolate(..., align_corners=False)``); ``"transposed"`` runs
        :func:`bilinear_upsampling` and crops ``factor // 2``: the same numbers as
        ``"bilinear"`` away from the border, but a layer that training can change.
        Near the border it fades towards 0 where bilinear repeats the edge.

    Returns
    -------
    same type as ``scores``, float, shape (..., H * factor, W * factor)

    Examples
    --------
    >>> x = np.array([[0.0, 1.0]])
    >>> upsample(x, 2, "nearest")
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.]])
    >>> upsample(x, 2, "bilinear")[0]
    array([0.  , 0.25, 0.75, 1.  ])
    """
    if mode not in ("nearest", "bilinear", "transposed"):
        raise ValueError(f"mode must be 'nearest', 'bilinear' or 'transposed', got {mode!r}")
    factor = _check_factor(factor)
    as_numpy = not isinstance(scores, torch.Tensor)
    if as_numpy:
        array = np.asarray(scores)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"scores must hold numbers, got dtype {array.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    else:
        x = scores if scores.is_floating_point() else scores.double()
    if x.ndim not in (2, 3, 4) or x.numel() == 0:
        raise ValueError(f"scores must have shape (H, W), (C, H, W) or (N, C, H, W) with pixels; got {tuple(x.shape)}")
    shape = x.shape
    x4 = x.reshape((1, 1) + tuple(shape)) if x.ndim == 2 else (x.unsqueeze(0) if x.ndim == 3 else x)
    height, width = x4.shape[-2] * factor, x4.shape[-1] * factor
    if mode == "nearest":
        out = x4.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    elif mode == "bilinear":
        out = F.interpolate(x4, scale_factor=factor, mode="bilinear", align_corners=False)
    else:
        n, c = x4.shape[:2]
        kernel = torch.from_numpy(bilinear_kernel(2 * factor)).to(x4.dtype)[None, None]
        flat = x4.reshape(n * c, 1, *x4.shape[-2:])
        out = F.conv_transpose2d(flat, kernel, stride=factor)
        out = _crop(out, factor // 2, height, width).reshape(n, c, height, width)
    out = out.reshape(tuple(shape[:-2]) + (height, width))
    return out.numpy() if as_numpy else out


# =========================================================================== the skip


class FuseSkip(nn.Module):
    """One FCN skip: upsample coarse scores x``factor``, crop, add the scores of finer features.

    ``forward(scores, features)``:

    1. ``skip = self.score(features)``: a 1x1 convolution turns the finer features
       (pool4 for FCN-16s, pool3 for FCN-8s) into class scores;
    2. ``up = self.upsample(scores)``: a transposed convolution (kernel ``2 * factor``,
       stride ``factor``, no bias) initialised to bilinear upsampling;
    3. ``up`` is cropped by ``factor // 2`` at the top and left to the size of
       ``skip`` (see *Geometry* in the module docstring), and the two are added.

    As in the paper, the 1x1 score layer starts at zero, so an untrained skip
    leaves the coarser network's output unchanged.

    Parameters
    ----------
    num_classes : int
    skip_channels : int
        Channels of the finer features.
    factor : int
        Ratio of the two strides (2 in FCN).

    Examples
    --------
    >>> fuse = FuseSkip(num_classes=4, skip_channels=16)
    >>> scores, features = torch.randn(1, 4, 3, 5), torch.randn(1, 16, 6, 9)  # 9 < 2 * 5: cropped
    >>> fuse(scores, features).shape
    torch.Size([1, 4, 6, 9])
    """

    def __init__(self, num_classes, skip_channels, factor=2):
        super().__init__()
        self.num_classes = as_int(num_classes, "num_classes", minimum=1)
        skip_channels = as_int(skip_channels, "skip_channels", minimum=1)
        self.factor = _check_factor(factor)
        self.score = nn.Conv2d(skip_channels, self.num_classes, kernel_size=1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.upsample = bilinear_upsampling(self.num_classes, self.factor)

    def forward(self, scores, features):
        skip = self.score(features)
        up = self.upsample(scores)
        return skip + _crop(up, self.factor // 2, skip.shape[-2], skip.shape[-1])


# =========================================================================== backbones


def _conv_block(in_channels, out_channels, depth):
    layers = []
    for i in range(depth):
        layers += [
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class TinyBackbone(nn.Module):
    """A small VGG-style backbone with stride 32 that trains in seconds on a CPU.

    Five stages of 3x3 convolutions (each with batch normalisation and ReLU), each
    followed by 2x2 max pooling, then one more 3x3 convolution at stride 32 that plays
    the part of VGG's convolutionalised ``fc6``/``fc7``. It returns the outputs of the
    third pool (``"stride8"``), the fourth (``"stride16"``) and the last block
    (``"stride32"``).

    Parameters
    ----------
    widths : sequence of 5 int
        Channels of the five stages.
    depths : sequence of 5 int
        Convolutions per stage.

    Examples
    --------
    >>> backbone = TinyBackbone()
    >>> {k: tuple(v.shape) for k, v in backbone(torch.zeros(1, 3, 64, 96)).items()}
    {'stride8': (1, 48, 8, 12), 'stride16': (1, 64, 4, 6), 'stride32': (1, 96, 2, 3)}
    """

    def __init__(self, widths=(16, 32, 48, 64, 96), depths=(1, 1, 2, 2, 2)):
        super().__init__()
        widths, depths = tuple(widths), tuple(depths)
        if len(widths) != 5 or len(depths) != 5:
            raise ValueError(f"widths and depths need 5 entries, one per stage; got {widths} and {depths}")
        widths = tuple(as_int(w, "widths[i]", minimum=1) for w in widths)
        depths = tuple(as_int(d, "depths[i]", minimum=1) for d in depths)
        stages, previous = [], 3
        for width, depth in zip(widths, depths):
            stages.append(_conv_block(previous, width, depth))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.fc = _conv_block(widths[-1], widths[-1], 1)
        self.channels = {"stride8": widths[2], "stride16": widths[3], "stride32": widths[4]}

    def forward(self, x):
        out = {}
        for i, stage in enumerate(self.stages):
            x = self.pool(stage(x))
            if i == 2:
                out["stride8"] = x
            elif i == 3:
                out["stride16"] = x
        out["stride32"] = self.fc(x)
        return out


class _FeatureBackbone(nn.Module):
    def __init__(self, extractor, channels, mean, std, name):
        super().__init__()
        self.body = extractor
        self.channels = channels
        self.mean, self.std = mean, std
        self.name = name

    def forward(self, x):
        return dict(self.body(x))


_TORCHVISION_NODES = {
    "vgg16": {"features.16": "stride8", "features.23": "stride16", "features.30": "stride32"},
    "resnet18": {"layer2": "stride8", "layer3": "stride16", "layer4": "stride32"},
    "resnet50": {"layer2": "stride8", "layer3": "stride16", "layer4": "stride32"},
}


def torchvision_backbone(name="vgg16", *, weights="auto", seed=0):
    """VGG-16 or a ResNet from lesson 03, as an FCN backbone.

    The classifier is dropped; the feature maps after pool3, pool4 and pool5 (VGG)
    or after ``layer2``, ``layer3`` and ``layer4`` (ResNet) are returned as
    ``"stride8"``, ``"stride16"`` and ``"stride32"``. Built by
    :func:`segtutor.backbones.build`, so pretrained ImageNet weights are used when
    they are in the torch cache (nothing is downloaded). These networks are for a
    GPU; on a CPU, train the :class:`TinyBackbone`.

    Parameters
    ----------
    name : {"vgg16", "resnet18", "resnet50"}
    weights : {"auto", "pretrained", "random"}
        See :func:`segtutor.backbones.build`.
    seed : int
        Seed of random weights.

    Returns
    -------
    torch.nn.Module
        With ``channels`` (per key) and the ImageNet ``mean`` and ``std`` that
        :class:`FCN` normalises its input with.

    Examples
    --------
    >>> backbone = torchvision_backbone("resnet18", weights="random")
    >>> backbone.channels
    {'stride8': 128, 'stride16': 256, 'stride32': 512}
    """
    if name not in _TORCHVISION_NODES:
        raise ValueError(f"name must be one of {sorted(_TORCHVISION_NODES)}, got {name!r}")
    from torchvision.models.feature_extraction import create_feature_extractor

    from segtutor import backbones

    model = backbones.build(name, weights=weights, seed=seed)
    nodes = _TORCHVISION_NODES[name]
    extractor = create_feature_extractor(model, return_nodes=dict(nodes))
    with torch.no_grad():
        shapes = {k: v.shape[1] for k, v in extractor(torch.zeros(1, 3, 64, 64)).items()}
    backbone = _FeatureBackbone(extractor, shapes, backbones.IMAGENET_MEAN, backbones.IMAGENET_STD, name)
    backbone.segtutor_weights = getattr(model, "segtutor_weights", "")
    return backbone.train()


# =========================================================================== the network


def _probe(backbone) -> dict:
    """Channels of the backbone's stride-8/16/32 features; ValueError naming what is missing."""
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            parameter = next(backbone.parameters(), None)
            device = parameter.device if parameter is not None else torch.device("cpu")
            out = backbone(torch.zeros(1, 3, 64, 64, device=device))
    finally:
        backbone.train(was_training)
    if not isinstance(out, dict):
        raise ValueError(
            f"the backbone must return a dict of feature maps with keys {list(FEATURES)}, got {describe(out)}"
        )
    missing = [k for k in FEATURES if k not in out]
    if missing:
        raise ValueError(
            f"the backbone must return feature maps at strides 8, 16 and 32 under the keys {list(FEATURES)}; "
            f"it returned {sorted(out)} (missing {missing})"
        )
    channels = {}
    for key, stride in FEATURES.items():
        shape = tuple(out[key].shape)
        if len(shape) != 4 or shape[-2:] != (64 // stride, 64 // stride):
            got = f"{shape[-2]}x{shape[-1]}" if len(shape) == 4 else f"shape {shape}"
            raise ValueError(
                f"the backbone's {key!r} features must have stride {stride}: {64 // stride}x{64 // stride} "
                f"for a 64x64 input; got {got}"
            )
        channels[key] = int(shape[1])
    return channels


class FCN(nn.Module):
    """FCN-32s, FCN-16s or FCN-8s over a backbone with stride-8/16/32 features.

    * FCN-32s: a 1x1 convolution scores the stride-32 features; the scores are
      upsampled x32 to the input's size.
    * FCN-16s: the stride-32 scores, upsampled x2, are added to scores of the
      stride-16 features (:class:`FuseSkip`); the sum is upsampled x16.
    * FCN-8s: that sum, upsampled x2, is added to scores of the stride-8 features;
      the result is upsampled x8.

    The last upsampling is bilinear and fixed, as in the paper (computed with
    ``F.interpolate``, which gives the numbers of a frozen bilinear transposed
    convolution away from the border); with ``learn_final=True`` it is a learned
    :func:`bilinear_upsampling` with one kernel per class. The input is padded at
    the bottom and right to a multiple of 32 and the output cropped back: for an
    input ``(N, 3, H, W)`` the output is ``(N, num_classes, H, W)`` for every
    ``H, W >= 1``.

    Parameters
    ----------
    backbone : nn.Module
        Returns ``{"stride8": ..., "stride16": ..., "stride32": ...}`` (see the
        module docstring); checked here.
    num_classes : int
    variant : {"32s", "16s", "8s"}
    mean, std : sequence of 3 float, optional
        Normalisation of the input, which is RGB in [0, 1]; default the
        backbone's ``mean``/``std`` when it has them, else ImageNet's.
    learn_final : bool
        Learn the last upsampling (a per-class transposed convolution, bilinear at
        first) instead of keeping it bilinear.

    Examples
    --------
    >>> model = FCN(TinyBackbone(), num_classes=4, variant="8s")
    >>> model(torch.rand(2, 3, 37, 50)).shape
    torch.Size([2, 4, 37, 50])
    """

    def __init__(self, backbone, num_classes, variant="8s", *, mean=None, std=None, learn_final=False):
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {describe(backbone)}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.num_classes = as_int(num_classes, "num_classes", minimum=2)
        self.variant = variant
        self.backbone = backbone
        self.channels = _probe(backbone)
        mean = getattr(backbone, "mean", (0.485, 0.456, 0.406)) if mean is None else mean
        std = getattr(backbone, "std", (0.229, 0.224, 0.225)) if std is None else std
        self.register_buffer("mean", _triple(mean, "mean").view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", _triple(std, "std", positive=True).view(1, 3, 1, 1), persistent=False)
        self.score = nn.Conv2d(self.channels["stride32"], self.num_classes, kernel_size=1)
        self.fuse16 = FuseSkip(self.num_classes, self.channels["stride16"]) if variant != "32s" else None
        self.fuse8 = FuseSkip(self.num_classes, self.channels["stride8"]) if variant == "8s" else None
        self.factor = _FACTORS[variant]
        self.final = bilinear_upsampling(self.num_classes, self.factor, per_channel=True) if learn_final else None

    def forward(self, x):
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
            what = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else describe(x)
            raise ValueError(f"FCN expects a batch of RGB images, a tensor (N, 3, H, W) in [0, 1]; got {what}")
        if not x.is_floating_point():
            raise TypeError(f"FCN expects float images in [0, 1], got dtype {x.dtype}")
        height, width = x.shape[-2:]
        if height == 0 or width == 0 or x.shape[0] == 0:
            raise ValueError(f"FCN got an empty batch of shape {tuple(x.shape)}")
        scores = self.coarse_scores(x)
        if self.final is not None:
            out = self.final(scores)[..., self.factor // 2:, self.factor // 2:]
        else:
            out = F.interpolate(scores, scale_factor=self.factor, mode="bilinear", align_corners=False)
        return out[..., :height, :width]

    def coarse_scores(self, x):
        """The class scores before the last upsampling: stride 32, 16 or 8 of the padded input."""
        height, width = x.shape[-2:]
        x = (x - self.mean) / self.std
        x = F.pad(x, (0, (-width) % 32, 0, (-height) % 32))  # zeros: the mean colour
        features = self.backbone(x)
        scores = self.score(features["stride32"])
        if self.fuse16 is not None:
            scores = self.fuse16(scores, features["stride16"])
        if self.fuse8 is not None:
            scores = self.fuse8(scores, features["stride8"])
        return scores


def _triple(values, name, positive=False):
    try:
        out = torch.as_tensor([float(v) for v in values], dtype=torch.float32)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be three numbers (R, G, B), got {describe(values)}") from None
    if out.numel() != 3 or not torch.isfinite(out).all() or (positive and (out <= 0).any()):
        raise ValueError(f"{name} must be three finite{' positive' if positive else ''} numbers, got {values!r}")
    return out


# =========================================================================== data


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that determines a training run: scenes, model, optimiser, schedule.

    The defaults: 96x96 scenes of :func:`segtutor.data.make_scene` with objects of
    12 to 30 pixels; the :class:`TinyBackbone`; mini-batches of 8; AdamW with a
    short linear warm-up and torchvision's "poly" decay; the last upsampling
    learned (the paper kept it bilinear; on objects this small, learning it
    sharpens their corners). Training uses ``threads`` CPU threads (then restores
    torch's setting): one thread gives the same bits on every CPU and does not
    slow down when other programs share the machine.

    Examples
    --------
    >>> Config(variant="16s").as_dict()["variant"]
    '16s'
    """

    variant: str = "8s"
    iterations: int = 300
    batch_size: int = 8
    lr: float = 1e-2
    weight_decay: float = 1e-4
    warmup: int = 20
    train_scenes: int = 1000
    val_scenes: int = 100
    size: int = 96
    min_size: float = 12
    max_size: float = 30
    n_objects: int = 4
    noise: float = 0.05
    widths: tuple = (8, 16, 32, 48, 64)
    depths: tuple = (1, 1, 2, 2, 2)
    learn_final: bool = True
    eval_every: int = 100
    threads: int = 1
    seed: int = 0
    train_seed: int = 1
    val_seed: int = 2

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        for name in ("iterations", "batch_size", "train_scenes", "val_scenes", "eval_every", "size", "n_objects"):
            as_int(getattr(self, name), name, minimum=0 if name == "n_objects" else 1)
        for name in ("warmup", "seed", "train_seed", "val_seed", "threads"):
            as_int(getattr(self, name), name, minimum=0)
        as_float(self.lr, "lr", minimum=0)
        as_float(self.weight_decay, "weight_decay", minimum=0)
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))

    def as_dict(self) -> dict:
        """The settings as plain JSON-able values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in fields})

    def replace(self, **changes) -> "Config":
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


#: The lesson's settings: three models train in about a minute in total on a 2-core CPU.
LESSON_CONFIG = Config(iterations=200, train_scenes=300, val_scenes=60, eval_every=50)
#: The benchmark's settings (``segtutor bench``): FCN-8s trains in at most 60 s on a 2-core CPU.
BENCH_CONFIG = Config(iterations=600, eval_every=300)


def scenes(n, *, seed, config=None, size=None):
    """``n`` synthetic scenes for training or validation: images and label maps.

    Scene ``i`` is ``segtutor.data.make_scene(seed=(seed, i), ...)`` with the
    scene settings of ``config``; different seeds give disjoint sets (the lesson
    trains on ``config.train_seed`` and validates on ``config.val_seed``).

    Returns
    -------
    images : ndarray of float32, shape (n, H, W, 3), values in [0, 1]
    labels : ndarray of int64, shape (n, H, W), values 0..3

    Examples
    --------
    >>> images, labels = scenes(2, seed=5, size=(40, 24))
    >>> images.shape, labels.shape
    ((2, 40, 24, 3), (2, 40, 24))
    """
    config = Config() if config is None else config
    size = config.size if size is None else size
    max_size = min(config.max_size, min(size) if isinstance(size, (tuple, list)) else size)
    return _data.make_scenes(n, seed=seed, size=size, min_size=min(config.min_size, max_size),
                             max_size=max_size, n_objects=config.n_objects, noise=config.noise)


def _as_batch(images, name="images"):
    """Images (N, H, W, 3) or (H, W, 3), float in [0, 1] or uint8, as a float32 tensor (N, 3, H, W)."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    array = np.asarray(images) if not isinstance(images, (list, tuple)) else None
    if array is None:
        if len(images) == 0:
            raise ValueError(f"{name} is empty; give at least one image")
        return [_as_batch(im, f"{name}[{i}]")[0] for i, im in enumerate(images)]
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(
            f"{name} must be RGB images of shape (N, H, W, 3) or one image (H, W, 3); got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); give at least one image")
    as_image(array[0], f"{name}[0]", channels="color")
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255
    elif array.dtype.kind != "f":
        raise TypeError(f"{name} must be float in [0, 1] or uint8, got dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return [torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32).transpose(0, 3, 1, 2))]


def _check_labels(labels, images, num_classes, ignore_index=IGNORE_INDEX, name="labels"):
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integer class ids, got dtype {labels.dtype}")
    want = (int(images.shape[0]),) + tuple(int(n) for n in images.shape[2:])
    if labels.shape != want:
        raise ValueError(
            f"{name} must have one label map per image, shape {want} "
            f"(N, H, W); got {labels.shape}"
        )
    valid = labels[labels != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
        bad = int(valid.max() if valid.max() >= num_classes else valid.min())
        raise ValueError(
            f"{name} contains class {bad}, but num_classes={num_classes} allows 0..{num_classes - 1} "
            f"(and {ignore_index} for pixels to ignore)"
        )
    return torch.from_numpy(labels.astype(np.int64))


# =========================================================================== training


def build_model(config=None):
    """A fresh FCN with a :class:`TinyBackbone`, initialised from ``config.seed``.

    Examples
    --------
    >>> build_model(Config(variant="16s")).variant
    '16s'
    """
    config = Config() if config is None else config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        backbone = TinyBackbone(config.widths, config.depths)
        return FCN(backbone, _data.NUM_CLASSES, config.variant, learn_final=config.learn_final)


def _lr_at(step, config):
    """Linear warm-up, then torchvision's "poly" decay: lr * (1 - progress) ** 0.9."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(config.iterations - config.warmup, 1)
    return config.lr * (1 - progress) ** 0.9


def train(config=None, *, progress=True, train_set=None, val_set=None):
    """Train an FCN on synthetic scenes, in the style of torchvision's ``references/segmentation``.

    One loop, top to bottom: draw a mini-batch from a seeded shuffle, flip half of
    it left-right, compute the pixel-wise cross-entropy (``ignore_index=255``), step
    AdamW, set the learning rate of the next step; every ``config.eval_every``
    steps score the validation set (:func:`evaluate`). Same config, same numbers
    (on the CPU).

    Parameters
    ----------
    config : Config, optional
    progress : bool or tqdm bar
        Show a ``tqdm`` progress bar; or advance this bar (made with
        ``total=config.iterations``), as :func:`trained_model` does: it shows the same
        bar for a reloaded model, so a notebook's output does not depend on the cache.
    train_set, val_set : (images, labels), optional
        Default: :func:`scenes` with ``config.train_seed`` and ``config.val_seed``.
        Images (N, H, W, 3) in [0, 1]; labels (N, H, W) in 0..3 or 255 (ignored).

    The device is :func:`segtutor.training.device` (CUDA when present); on the
    CPU the loop runs with ``config.threads`` threads.

    Returns
    -------
    dict
        ``state_dict``; ``config`` (``config.as_dict()``); ``history`` with ``loss``
        and ``lr`` per step, ``val_miou``, ``val_boundary_f1`` and
        ``val_pixel_accuracy`` at the steps ``eval_at``; ``seconds`` (the loop's
        wall time, evaluations included, scene drawing not).

    Examples
    --------
    >>> result = train(Config(iterations=2, batch_size=2, train_scenes=4, val_scenes=2, eval_every=2),
    ...                progress=False)
    >>> len(result["history"]["loss"]), result["history"]["eval_at"]
    (2, [2])
    """
    from segtutor import training

    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise TypeError(f"config must be a segtutor.fcn.Config, got {describe(config)}")
    train_set = scenes(config.train_scenes, seed=config.train_seed, config=config) if train_set is None else train_set
    val_set = scenes(config.val_scenes, seed=config.val_seed, config=config) if val_set is None else val_set
    num_classes = _data.NUM_CLASSES
    images, labels = _dataset(train_set, num_classes, "train_set")
    _dataset(val_set, num_classes, "val_set")  # fail now, not after training

    training.seed_everything(config.seed)
    device = training.device()
    with training.cpu_threads(config.threads if device.type == "cpu" else 0):
        model = build_model(config).to(device, memory_format=torch.channels_last)  # faster convolutions on CPUs
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=_lr_at(0, config), weight_decay=config.weight_decay)
        criterion = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        generator = torch.Generator().manual_seed(config.seed)
        history = {"loss": [], "lr": [], "val_miou": [], "val_boundary_f1": [], "val_pixel_accuracy": [],
                   "eval_at": []}
        order = torch.empty(0, dtype=torch.int64)
        start = time.perf_counter()
        bar = _progress_bar(progress, config)
        for step in range(config.iterations):
            if len(order) < config.batch_size:  # a new epoch: reshuffle
                order = torch.cat([order, torch.randperm(len(images), generator=generator)])
            picked, order = order[:config.batch_size], order[config.batch_size:]
            x, y = images[picked], labels[picked]
            flip = torch.rand(len(picked), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y = torch.where(flip[:, None, None], y.flip(-1), y)
            x = x.to(device, memory_format=torch.channels_last)
            y = y.to(device)

            loss = criterion(model(x), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss.item()} at step {step}; lower lr (now {config.lr})")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history["loss"].append(loss.item())
            history["lr"].append(optimizer.param_groups[0]["lr"])
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step + 1, config)

            if (step + 1) % config.eval_every == 0 or step + 1 == config.iterations:
                scores = evaluate(model, *val_set, num_classes=num_classes)
                model.train()
                history["val_miou"].append(scores["miou"])
                history["val_boundary_f1"].append(scores["boundary_f1"])
                history["val_pixel_accuracy"].append(scores["pixel_accuracy"])
                history["eval_at"].append(step + 1)
                bar.set_postfix(loss=f"{loss.item():.3f}", val_miou=f"{scores['miou']:.3f}")
            bar.update()
        seconds = time.perf_counter() - start
    bar.close()
    model.eval()
    return {
        "state_dict": {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()},
        "config": config.as_dict(),
        "history": history,
        "seconds": seconds,
    }


def _progress_bar(progress, config):
    """``progress`` itself when it is a tqdm bar, else a new one (hidden when ``progress`` is false)."""
    from tqdm.auto import tqdm

    if isinstance(progress, tqdm):
        return progress
    return tqdm(total=config.iterations, desc=f"FCN-{config.variant}", disable=not progress, leave=False)


def _dataset(pair, num_classes, name):
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name} must be a pair (images, labels), got {describe(pair)}")
    images = _as_batch(pair[0], f"{name} images")
    if len(images) != 1:
        raise ValueError(f"{name} images must be one array (N, H, W, 3) of same-sized images")
    images = images[0]
    labels = _check_labels(pair[1], images, num_classes, name=f"{name} labels")
    if bool((labels == IGNORE_INDEX).all()):
        raise ValueError(f"every pixel of {name} labels is ignore_index={IGNORE_INDEX}; there is nothing to learn from")
    return images, labels


def load_model(payload):
    """Rebuild the trained model from what :func:`train` returned; in eval mode.

    Examples
    --------
    >>> result = train(Config(iterations=1, batch_size=1, train_scenes=1, val_scenes=1), progress=False)
    >>> load_model(result).training
    False
    """
    if not isinstance(payload, dict) or "state_dict" not in payload or "config" not in payload:
        raise TypeError("payload must be the dict returned by segtutor.fcn.train")
    model = build_model(Config.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def trained_model(config=None, *, progress=True, _shared=None):
    """The FCN trained with ``config``: trained now, or reloaded when it was trained before.

    A thin layer over :func:`segtutor.training.cached` (keyed on the settings, the
    library versions and this module's source): the training is deterministic,
    so the reloaded model is the one a new training would give.

    Returns
    -------
    model : FCN
        In eval mode, on the CPU.
    result : dict
        What :func:`train` returned (weights, settings, history, seconds).
    from_cache : bool
    """
    from segtutor import training

    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise TypeError(f"config must be a segtutor.fcn.Config, got {describe(config)}")
    bar = _progress_bar(progress, config)  # the same bar whether the model trains or reloads
    result, from_cache = training.cached(
        f"fcn{config.variant}", {**config.as_dict(), "device": training.device().type},
        lambda: train(config, progress=bar, **_default_sets(config, _shared)),
    )
    if from_cache:
        bar.set_postfix_str("reloaded")
        bar.update(config.iterations - bar.n)
    bar.close()
    return load_model(result), result, from_cache


def _default_sets(config, shared):
    """The training and validation scenes of ``config``, drawn once per ``shared`` dict."""
    if shared is None:
        return {}
    key = (config.train_scenes, config.val_scenes, config.size, config.min_size, config.max_size,
           config.n_objects, config.noise, config.train_seed, config.val_seed)
    if shared.get("key") != key:
        shared.clear()
        shared["key"] = key
        shared["train_set"] = scenes(config.train_scenes, seed=config.train_seed, config=config)
        shared["val_set"] = scenes(config.val_scenes, seed=config.val_seed, config=config)
    return {"train_set": shared["train_set"], "val_set": shared["val_set"]}


# =========================================================================== using a model


def _model_device(model):
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def predict(model, images, *, batch_size=32):
    """Label maps of images of any size: the argmax of the FCN's scores.

    Parameters
    ----------
    model : FCN
        Put in eval mode by this function.
    images : array (H, W, 3), array (N, H, W, 3), or list of (H, W, 3) arrays
        Float in [0, 1] or uint8. A list may mix sizes.
    batch_size : int

    Returns
    -------
    ndarray of int64, shape (H, W) or (N, H, W); a list of them for a list input.

    Examples
    --------
    >>> model = build_model()
    >>> predict(model, np.zeros((45, 71, 3), np.float32)).shape
    (45, 71)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an FCN, got {describe(model)}")
    batch_size = as_int(batch_size, "batch_size", minimum=1)
    single = isinstance(images, np.ndarray) and images.ndim == 3
    batches = _as_batch(images)
    device = _model_device(model)
    model.eval()
    outputs = []
    with torch.inference_mode():
        for batch in batches:
            labels = [model(batch[i:i + batch_size].to(device)).argmax(1).cpu()
                      for i in range(0, len(batch), batch_size)]
            outputs.append(torch.cat(labels).numpy().astype(np.int64))
    if isinstance(images, (list, tuple)):
        return [o[0] for o in outputs]
    return outputs[0][0] if single else outputs[0]


def score_maps(model, image):
    """The class scores of one image before the last upsampling, and after it.

    Returns
    -------
    coarse : ndarray of float32, shape (C, h, w)
        At stride 32, 16 or 8 (of the input padded to a multiple of 32).
    full : ndarray of float32, shape (C, H, W)

    Examples
    --------
    >>> coarse, full = score_maps(build_model(Config(variant="32s")), np.zeros((64, 96, 3), np.float32))
    >>> coarse.shape, full.shape
    ((4, 2, 3), (4, 64, 96))
    """
    batch = _as_batch(image)[0]
    if len(batch) != 1:
        raise ValueError(f"score_maps takes one image (H, W, 3), got {len(batch)}")
    model.eval()
    with torch.inference_mode():
        batch = batch.to(_model_device(model))
        return model.coarse_scores(batch)[0].cpu().numpy(), model(batch)[0].cpu().numpy()


def feature_shapes(model, size=(64, 64)):
    """The shape of every map an FCN computes for one input of ``size``: features, scores, output.

    Returns
    -------
    dict
        ``{name: (channels, height, width)}`` for ``"input"``, the backbone's
        ``"stride8"``, ``"stride16"``, ``"stride32"``, the coarse ``"scores"`` (before
        the last upsampling) and the ``"output"``.

    Examples
    --------
    >>> feature_shapes(build_model(Config(variant="32s")), (64, 96))["scores"]
    (4, 2, 3)
    """
    if not isinstance(model, FCN):
        raise TypeError(f"model must be an FCN, got {describe(model)}")
    height, width = _size_pair(size)
    x = torch.zeros(1, 3, height, width, device=_model_device(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            padded = F.pad(x, (0, (-width) % 32, 0, (-height) % 32))
            features = model.backbone((padded - model.mean) / model.std)
            shapes = {"input": (3, height, width)}
            shapes.update({k: tuple(int(n) for n in features[k].shape[1:]) for k in FEATURES})
            shapes["scores"] = tuple(int(n) for n in model.coarse_scores(x).shape[1:])
            shapes["output"] = tuple(int(n) for n in model(x).shape[1:])
    finally:
        model.train(was_training)
    return shapes


def coarse_truth(labels, class_id, stride):
    """The fraction of each ``stride x stride`` cell covered by one class: perfect coarse scores.

    What the best possible score map at that stride could say about a class;
    upsampling it shows what is lost at that resolution.

    Examples
    --------
    >>> labels = np.zeros((4, 4), int); labels[:2, :3] = 1
    >>> coarse_truth(labels, 1, 2)
    array([[1. , 0.5],
           [0. , 0. ]])
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a label map (H, W), got shape {labels.shape}")
    stride = as_int(stride, "stride", minimum=1)
    height, width = labels.shape
    mask = np.pad((labels == class_id).astype(float), ((0, (-height) % stride), (0, (-width) % stride)))
    h, w = mask.shape[0] // stride, mask.shape[1] // stride
    return mask.reshape(h, stride, w, stride).mean(axis=(1, 3))


def evaluate(model, images, labels, *, num_classes=None, ignore_index=IGNORE_INDEX, tolerance=2, batch_size=32):
    """Score a model on a data set: mIoU, per-class IoU, pixel accuracy, boundary F-score.

    The confusion matrix is accumulated over all images before the IoUs are
    taken (the PASCAL VOC convention, as in torchvision's reference); the boundary
    F-score (:func:`segtutor.metrics.boundary_f1`, ``tolerance`` pixels) is the
    mean over images.

    Returns
    -------
    dict
        ``miou``, ``iou_per_class`` (list), ``pixel_accuracy``, ``boundary_f1``,
        ``confusion`` (ndarray (C, C): rows truth, columns prediction).

    Examples
    --------
    >>> images, labels = scenes(2, seed=3)
    >>> sorted(evaluate(build_model(), images, labels))
    ['boundary_f1', 'confusion', 'iou_per_class', 'miou', 'pixel_accuracy']
    """
    num_classes = getattr(model, "num_classes", None) if num_classes is None else num_classes
    num_classes = as_int(num_classes, "num_classes", minimum=1)
    batch = _as_batch(images)
    if len(batch) != 1:
        raise ValueError("images must be one array (N, H, W, 3) of same-sized images")
    target = _check_labels(labels, batch[0], num_classes, ignore_index).numpy()
    predictions = predict(model, images if np.ndim(images) == 4 else np.asarray(images)[None], batch_size=batch_size)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    boundary = []
    for pred, truth in zip(predictions, target):
        confusion += _metrics.confusion_matrix(pred, truth, num_classes, ignore_index=ignore_index)
        boundary.append(_metrics.boundary_f1(pred, np.where(truth == ignore_index, pred, truth), tolerance=tolerance))
    return {**_confusion_scores(confusion), "boundary_f1": float(np.mean(boundary))}


def _confusion_scores(confusion):
    """mIoU, per-class IoU (NaN for a class in neither truth nor prediction) and pixel accuracy
    from a confusion matrix summed over a data set (rows truth)."""
    tp = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    return {
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "iou_per_class": [float(v) for v in iou],
        "pixel_accuracy": float(tp.sum() / max(confusion.sum(), 1)),
        "confusion": confusion,
    }


# =========================================================================== the three variants


def train_variants(config=None, variants=VARIANTS, *, progress=True):
    """Train (or reload) one FCN per variant, all under the same budget (``config`` but the variant).

    Parameters
    ----------
    config : Config, optional
        Settings shared by every variant; its ``variant`` is replaced.
    variants : sequence of str
        Out of :data:`VARIANTS`.
    progress : bool
        Show a progress bar while a model trains.

    Returns
    -------
    dict
        ``{variant: {"model": FCN, "result": dict, "from_cache": bool}}``, in the
        order of ``variants``. ``result`` is what :func:`train` returned.
    """
    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise TypeError(f"config must be a segtutor.fcn.Config, got {describe(config)}")
    if isinstance(variants, str) or not all(v in VARIANTS for v in variants) or not variants:
        raise ValueError(f"variants must be a non-empty sequence out of {VARIANTS}, got {variants!r}")
    runs, shared = {}, {}  # the variants share their scenes: drawn once, and only if one must train
    for variant in variants:
        model, result, from_cache = trained_model(config.replace(variant=variant), progress=progress, _shared=shared)
        runs[variant] = {"model": model, "result": result, "from_cache": from_cache}
    return runs


def training_report(runs):
    """A Markdown table: per variant, trained now (and how long it took) or reloaded.

    Timings differ from run to run, so the lessons show this as Markdown beside
    the numbers, which do not.

    Examples
    --------
    >>> runs = {"8s": {"result": {"seconds": 12.3, "config": {"iterations": 300}}, "from_cache": False}}
    >>> print(training_report(runs))
    | model | iterations | |
    |---|---|---|
    | FCN-8s | 300 | trained in 12 s |
    """
    from segtutor import training

    lines = ["| model | iterations | |", "|---|---|---|"]
    for variant, run in runs.items():
        result = run["result"]
        lines.append(f"| FCN-{variant} | {result['config']['iterations']} | "
                     f"{training.describe_run(run['from_cache'], result.get('seconds'))} |")
    return "\n".join(lines)


def compare_variants(runs, images, labels, *, tolerance=2):
    """Score every model of ``runs`` (from :func:`train_variants`) on the same images.

    Returns
    -------
    dict
        ``{variant: evaluate(...)}`` (see :func:`evaluate`).
    """
    if not isinstance(runs, dict) or not runs:
        raise TypeError(f"runs must be the dict returned by train_variants, got {describe(runs)}")
    return {variant: evaluate(run["model"] if isinstance(run, dict) else run, images, labels, tolerance=tolerance)
            for variant, run in runs.items()}


def score_table(scores, class_names=_data.CLASS_NAMES):
    """The scores of :func:`compare_variants` as a text table (mIoU, boundary F, IoU per class).

    Examples
    --------
    >>> scores = {"8s": {"miou": 0.9, "boundary_f1": 0.95, "pixel_accuracy": 0.98,
    ...                  "iou_per_class": [0.98, 0.9, 0.88, 0.84]}}
    >>> print(score_table(scores))
    model    mIoU  boundary F  pixel acc.  background  circle  square  triangle
    FCN-8s  0.900       0.950       0.980       0.980   0.900   0.880     0.840
    """
    names = list(class_names)
    header = ["model", "mIoU", "boundary F", "pixel acc."] + names
    rows = []
    for variant, s in scores.items():
        rows.append([f"FCN-{variant}", f"{s['miou']:.3f}", f"{s['boundary_f1']:.3f}", f"{s['pixel_accuracy']:.3f}"]
                    + [f"{v:.3f}" for v in s["iou_per_class"]])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    def fmt(row):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
    return "\n".join(fmt(r) for r in [header] + rows)


def evaluate_sizes(model, sizes, *, n=8, seed=30, config=None):
    """Score a model on scenes of other sizes than it was trained on.

    Parameters
    ----------
    model : FCN
    sizes : sequence of (H, W)
    n : int
        Scenes per size.
    seed : int
        Seed of the scenes (use one the model never saw).
    config : Config, optional
        Object sizes and noise of the scenes (as in training). The number of objects
        grows with the area, so that every size has the training scenes' density.

    Returns
    -------
    dict
        ``{(H, W): evaluate(...)}``.
    """
    config = Config() if config is None else config
    out = {}
    for size in sizes:
        size = _size_pair(size)
        images, labels = scenes(n, seed=seed, config=_same_density(config, size), size=size)
        out[size] = evaluate(model, images, labels)
    return out


def _same_density(config, size):
    """``config`` with as many objects per pixel in a ``size`` scene as in a training scene."""
    area = size[0] * size[1] / config.size ** 2
    return config.replace(n_objects=max(1, int(round(config.n_objects * area))))


def _size_pair(size):
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        return (int(size), int(size))
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return (as_int(size[0], "height", minimum=8), as_int(size[1], "width", minimum=8))
    raise TypeError(f"each size must be an int or a pair (H, W), got {describe(size)}")


# =========================================================================== pictures


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def plot_kernel(size=16, ax=None):
    """Show :func:`bilinear_kernel` ``(size)`` as an image, with its taps' values on a colour bar.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ax = plot_kernel(4)
    >>> ax.get_title()
    'bilinear kernel, 4 x 4\\n(upsampling factor 2)'
    >>> plt.close(ax.figure)
    """
    kernel = bilinear_kernel(size)
    ax = _axes(ax, (3.8, 3.4))
    image = ax.imshow(kernel, cmap="cividis", vmin=0, vmax=1, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="weight", shrink=0.85)
    ax.set_title(f"bilinear kernel, {size} x {size}\n(upsampling factor {(size + 1) // 2})", fontsize="medium")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    return ax


def plot_upsampling(scores, factor, *, image=None, class_name="class", axes=None):
    """Upsample one coarse score map three ways and show them side by side.

    Panels: the coarse scores, then nearest, bilinear and (bilinear-initialised)
    transposed-convolution upsampling, all on one colour scale; with ``image``, a
    first panel shows it.

    Parameters
    ----------
    scores : ndarray (h, w)
        Scores of one class (e.g. ``score_maps(model, image)[0][c]``).
    factor : int
    image : ndarray (H, W, 3), optional
        The image, at the upsampled size or smaller.
    class_name : str
        Used in the titles.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be one score map (h, w), got shape {scores.shape}")
    panels = [("coarse scores", scores)] + [
        (f"{mode} x{factor}", upsample(scores, factor, mode)) for mode in ("nearest", "bilinear", "transposed")]
    n = len(panels) + (image is not None)
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.0), layout="constrained")
    fig = axes[0].figure
    axes = list(np.ravel(axes))
    if image is not None:
        axes[0].imshow(np.asarray(image), interpolation="nearest")
        axes[0].set_title("image")
        axes[0].set_xticks([])
        axes[0].set_yticks([])
        axes = axes[1:]
    lo, hi = float(scores.min()), float(scores.max())
    for ax, (title, values) in zip(axes, panels):
        height, width = values.shape
        shown = ax.imshow(values, cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest",
                          extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes, label=f"score of '{class_name}'", shrink=0.85)
    return fig


def plot_histories(runs):
    """Loss and validation curves of every run of :func:`train_variants`, side by side, one scale.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from segtutor import training

    if not isinstance(runs, dict) or not runs:
        raise TypeError(f"runs must be the dict returned by train_variants, got {describe(runs)}")
    fig, axes = plt.subplots(1, len(runs), figsize=(4.0 * len(runs), 3.4), layout="constrained", sharey=True)
    axes = np.ravel(axes)
    top = max(max(run["result"]["history"]["loss"]) for run in runs.values())
    for i, (ax, (variant, run)) in enumerate(zip(axes, runs.items())):
        training.plot_history(run["result"]["history"], metrics=("val_miou", "val_boundary_f1"), ax=ax,
                              title=f"FCN-{variant}", legend=False)
        ax.set_ylim(0, top * 1.05)
        if i > 0:
            ax.set_ylabel("")
        if i < len(runs) - 1:
            ax.right.set_ylabel("")
            ax.right.set_yticklabels([])
    handles = axes[0].get_legend_handles_labels()[0] + axes[0].right.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small", frameon=False)
    return fig


def plot_scores(scores, *, ax=None, title=None):
    """Bar chart of the mIoU and boundary F-score of each variant (from :func:`compare_variants`).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> s = {v: {"miou": m, "boundary_f1": b} for v, m, b in [("32s", .4, .3), ("8s", .9, .95)]}
    >>> ax = plot_scores(s)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['FCN-32s', 'FCN-8s']
    >>> plt.close(ax.figure)
    """
    if not isinstance(scores, dict) or not scores:
        raise TypeError(f"scores must be the dict returned by compare_variants, got {describe(scores)}")
    ax = _axes(ax, (5.2, 3.2))
    variants = list(scores)
    x = np.arange(len(variants))
    width = 0.38
    for offset, key, label, color, hatch in ((-width / 2, "miou", "mIoU", "#0072B2", ""),
                                             (width / 2, "boundary_f1", "boundary F-score", "#E69F00", "//")):
        values = [scores[v][key] for v in variants]
        bars = ax.bar(x + offset, values, width, label=label, color=color, hatch=hatch, edgecolor="white")
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=2, fontsize="small")
    ax.set_xticks(x, [f"FCN-{v}" for v in variants])
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("score on validation scenes")
    ax.legend(loc="upper left", fontsize="small", ncols=2)
    if title is not None:
        ax.set_title(str(title))
    return ax


def boundary_window(truth, side):
    """The ``side x side`` window of a label map holding the most boundary pixels.

    Returns
    -------
    top, left, height, width : int
        The window (smaller than ``side`` where the map is).

    Examples
    --------
    >>> truth = np.zeros((40, 40), dtype=int)
    >>> truth[25:35, 25:35] = 1
    >>> boundary_window(truth, 12)
    (24, 24, 12, 12)
    """
    edges = _metrics.boundary_mask(truth).astype(float)
    height, width = truth.shape
    side_h, side_w = min(side, height), min(side, width)
    table = np.pad(edges.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (table[side_h:, side_w:] - table[:-side_h, side_w:] - table[side_h:, :-side_w] + table[:-side_h, :-side_w])
    top, left = np.unravel_index(np.argmax(sums), sums.shape)
    return int(top), int(left), side_h, side_w


def plot_boundaries(image, truth, predictions, *, zoom=20, tolerance=2):
    """Predictions of several models on one image: overlays, and a zoom on the boundaries.

    Top row: the ground truth and each prediction over the image (class colours of
    :data:`segtutor.viz.PALETTE`), with the outlines of the true regions in white. Bottom
    row: the same, enlarged on the ``zoom x zoom`` window that holds the most true
    boundary pixels (its frame is drawn on the top row). Each title gives the
    image's mIoU and boundary F-score.

    Parameters
    ----------
    image : ndarray (H, W, 3)
    truth : ndarray (H, W) of int
    predictions : dict
        ``{"FCN-32s": labels, ...}``, each a label map (H, W) or a model to run.
    zoom : int
        Side of the enlarged window in pixels.
    tolerance : float
        Of the boundary F-score.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from segtutor import viz

    image = as_image(image, "image", channels="color")
    truth = np.asarray(truth)
    if not isinstance(predictions, dict) or not predictions:
        raise TypeError("predictions must be a non-empty dict {name: label map}")
    predictions = {name: predict(value, image) if isinstance(value, nn.Module) else value
                   for name, value in predictions.items()}
    panels = [("ground truth", truth)] + list(predictions.items())
    top, left, side_h, side_w = boundary_window(truth, as_int(zoom, "zoom", minimum=4))
    fig, axes = plt.subplots(2, len(panels), figsize=(2.5 * len(panels), 5.4), layout="constrained")
    classes = [int(c) for c in np.unique(truth) if c > 0]
    for column, (name, labels) in enumerate(panels):
        labels = np.asarray(labels)
        if labels.shape != truth.shape:
            raise ValueError(f"prediction {name!r} has shape {labels.shape}, the truth {truth.shape}")
        if column == 0:
            title = name
        else:
            miou = _metrics.mean_iou(labels, truth, num_classes=max(int(labels.max()), int(truth.max())) + 1)
            title = f"{name}\nmIoU {miou:.2f}, boundary F {_metrics.boundary_f1(labels, truth, tolerance):.2f}"
        for row in (0, 1):
            ax = axes[row, column]
            viz.overlay(image, labels, alpha=0.75, ax=ax, legend=False)
            for c in classes:  # the outline of each true class region
                ax.contour((truth == c).astype(float), levels=[0.5], colors="white",
                           linewidths=0.8 if row == 0 else 1.5)
            if row == 0:
                ax.set_title(title, fontsize="medium")
                ax.add_patch(Rectangle((left - 0.5, top - 0.5), side_w, side_h, fill=False, edgecolor="#F0E442",
                                       linewidth=1.5))
            else:
                ax.set_xlim(left - 0.5, left + side_w - 0.5)
                ax.set_ylim(top + side_h - 0.5, top - 0.5)
                ax.set_title("zoom (yellow frame)", fontsize="small")
    from matplotlib.patches import Patch

    present = sorted(set(np.unique(truth)) | set().union(*(np.unique(p) for _, p in panels)))
    handles = [Patch(facecolor=viz.PALETTE[v] / 255, label=_data.CLASS_NAMES[v] if v < len(_data.CLASS_NAMES)
                     else f"class {v}") for v in present if v > 0]
    handles.append(plt.Line2D([], [], color="white", label="true boundary"))
    legend = fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small",
                        facecolor="0.35", labelcolor="white")
    legend.get_frame().set_edgecolor("0.35")
    return fig


def plot_sizes(model, sizes, *, seed=30, config=None):
    """Predictions of one model on scenes of several sizes (square, non-square, odd).

    One column per size: the scene with the prediction overlaid, titled with the
    size and the image's mIoU; one legend of the classes for the row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from segtutor import viz

    config = Config() if config is None else config
    sizes = [_size_pair(s) for s in sizes]
    if not sizes:
        raise ValueError("sizes is empty; give at least one (H, W)")
    widths = [w for _, w in sizes]
    fig, axes = plt.subplots(1, len(sizes), figsize=(min(2.2 + 0.03 * sum(widths), 14), 3.4),
                             layout="constrained", gridspec_kw={"width_ratios": widths})
    axes = np.ravel(axes)
    for ax, size in zip(axes, sizes):
        images, labels = scenes(1, seed=seed, config=_same_density(config, size), size=size)
        pred = predict(model, images[0])
        miou = _metrics.mean_iou(pred, labels[0], num_classes=_data.NUM_CLASSES)
        viz.overlay(images[0], pred, alpha=0.6, ax=ax, legend=False)
        ax.set_title(f"{size[0]} x {size[1]}\nmIoU {miou:.2f}", fontsize="medium")
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=viz.PALETTE[v] / 255, label=f"predicted {name}")
               for v, name in enumerate(_data.CLASS_NAMES) if v > 0]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small", frameon=False)
    return fig


# =========================================================================== on a hub: real photographs

#: The backbones a run on real photographs can use (``"tiny"``: :class:`TinyBackbone`, for CPUs).
HUB_BACKBONES = ("tiny", "vgg16", "resnet18", "resnet50")


@dataclasses.dataclass(frozen=True)
class HubConfig:
    """A run on real photographs (the full profile; see :func:`hub_run`).

    The defaults follow torchvision's ``references/segmentation`` (SGD, momentum 0.9,
    learning rate 0.01 with "poly" decay, weight decay 1e-4, batches of 8 random
    crops) with FCN-8s over VGG-16, as in the paper, on PASCAL VOC 2012's
    ``train`` split, scored on the first ``val_images`` images of ``val`` (centre
    crops of ``size``; 0 scores the whole split). Penn-Fudan (people vs background)
    has no split files: its last images are held out, 50 of 170 as in torchvision's
    detection tutorial. ``threads``: torch's CPU threads
    during training on a CPU (0 keeps torch's setting, all cores).

    Examples
    --------
    >>> HubConfig(dataset="pet").as_dict()["dataset"]
    'pet'
    >>> HubConfig(backbone="alexnet")
    Traceback (most recent call last):
    ...
    ValueError: backbone must be one of ('tiny', 'vgg16', 'resnet18', 'resnet50'), got 'alexnet'
    """

    dataset: str = "voc"
    backbone: str = "vgg16"
    variant: str = "8s"
    weights: str = "auto"
    size: int = 320
    iterations: int = 3000
    batch_size: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup: int = 100
    eval_every: int = 1000
    val_images: int = 300
    threads: int = 0
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in ("voc", "pet", "pennfudan"):
            raise ValueError(f"dataset must be 'voc', 'pet' or 'pennfudan', got {self.dataset!r}")
        if self.backbone not in HUB_BACKBONES:
            raise ValueError(f"backbone must be one of {HUB_BACKBONES}, got {self.backbone!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.weights not in ("auto", "pretrained", "random"):
            raise ValueError(f"weights must be 'auto', 'pretrained' or 'random', got {self.weights!r}")
        for name in ("size", "iterations", "batch_size", "eval_every"):
            as_int(getattr(self, name), name, minimum=1)
        for name in ("warmup", "val_images", "threads", "seed"):
            as_int(getattr(self, name), name, minimum=0)
        for name in ("lr", "momentum", "weight_decay"):
            as_float(getattr(self, name), name, minimum=0)

    def as_dict(self) -> dict:
        """The settings as plain JSON-able values."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "HubConfig":
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


def hub_datasets(config=None, root=None):
    """The training and validation sets of a run on real photographs.

    Random crops of ``config.size`` with random scale and flips for training, centre
    crops for validation (:func:`segtutor.datasets.segmentation_transforms`; image and
    labels move together, padding is ``IGNORE_INDEX``). The images stay in [0, 1]:
    :class:`FCN` normalises its input itself.

    Returns
    -------
    train, val : torch.utils.data.Dataset
        Items ``(image float32 (3, size, size), labels int64 (size, size))``.
    classes : tuple of str

    Raises
    ------
    FileNotFoundError
        When the dataset is not under ``root``, naming the layout and how to get it.
    """
    from torch.utils.data import Subset

    from segtutor import datasets

    config = HubConfig() if config is None else config
    if not isinstance(config, HubConfig):
        raise TypeError(f"config must be a segtutor.fcn.HubConfig, got {describe(config)}")
    train_t = datasets.segmentation_transforms(config.size, train=True)
    val_t = datasets.segmentation_transforms(config.size)
    if config.dataset == "voc":
        train_set = datasets.VOCSegmentation(root, split="train", transforms=train_t)
        val_set = datasets.VOCSegmentation(root, split="val", transforms=val_t)
        classes = datasets.VOC_CLASSES
    elif config.dataset == "pet":
        train_set = datasets.OxfordPet(root, split="trainval", transforms=train_t)
        val_set = datasets.OxfordPet(root, split="test", transforms=val_t)
        classes = datasets.PET_CLASSES
    else:
        train_set, val_set = datasets.pennfudan_split(
            datasets.PennFudan(root, target="semantic", transforms=train_t),
            datasets.PennFudan(root, target="semantic", transforms=val_t))
        classes = datasets.PENNFUDAN_CLASSES
    if config.val_images and config.val_images < len(val_set):
        val_set = Subset(val_set, range(config.val_images))
    return train_set, val_set, classes


def hub_model(config=None, num_classes=21):
    """A fresh FCN over ``config.backbone`` (pretrained when the weights are cached, see
    :func:`torchvision_backbone`), initialised from ``config.seed``.

    Examples
    --------
    >>> hub_model(HubConfig(backbone="tiny", variant="16s"), num_classes=2).variant
    '16s'
    """
    config = HubConfig() if config is None else config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.backbone == "tiny":
            backbone = TinyBackbone()
        else:
            backbone = torchvision_backbone(config.backbone, weights=config.weights, seed=config.seed)
        return FCN(backbone, num_classes, config.variant)


def load_hub_model(result, num_classes):
    """Rebuild the FCN that :func:`train_on` trained, from what it returned; in eval mode.

    The backbone is built without looking for pretrained weights: the trained ones replace them.

    Examples
    --------
    >>> config = HubConfig(backbone="tiny", variant="16s")
    >>> result = {"config": config.as_dict(), "state_dict": hub_model(config, 2).state_dict()}
    >>> load_hub_model(result, 2).variant
    '16s'
    """
    if not isinstance(result, dict) or "state_dict" not in result or "config" not in result:
        raise TypeError(f"result must be the dict returned by segtutor.fcn.train_on, got {describe(result)}")
    model = hub_model(HubConfig(**result["config"]).replace(weights="random"), num_classes)
    model.load_state_dict(result["state_dict"])
    return model.eval()


def _stack(batch):
    """Collate (image, labels) pairs as plain tensors (not tv_tensors subclasses)."""
    images = torch.stack([torch.as_tensor(image).as_subclass(torch.Tensor) for image, _ in batch])
    labels = torch.stack([torch.as_tensor(labels).as_subclass(torch.Tensor) for _, labels in batch])
    return images, labels


def evaluate_dataset(model, data, *, num_classes=None, settings=None, batch_size=8, ignore_index=IGNORE_INDEX):
    """Score a model on a dataset of ``(image, labels)`` pairs: mIoU, per-class IoU, pixel accuracy.

    As :func:`evaluate` (one confusion matrix over all images, the VOC convention),
    over a data loader on the profile's device; for data sets too large to hold in memory.

    Returns
    -------
    dict
        ``miou``, ``iou_per_class``, ``pixel_accuracy``, ``confusion`` (rows truth).
    """
    from segtutor import profiles, training

    settings = profiles.settings() if settings is None else settings
    num_classes = as_int(getattr(model, "num_classes", None) if num_classes is None else num_classes,
                         "num_classes", minimum=1)
    device = torch.device(settings.device)
    model = model.to(device).eval()
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    with torch.no_grad():
        for images, labels in training.data_loader(data, batch_size, settings, shuffle=False, collate_fn=_stack):
            images, labels = images.to(device), labels.to(device)
            with settings.autocast():
                pred = model(images).argmax(1)
            keep = labels != ignore_index
            if bool(((labels[keep] < 0) | (labels[keep] >= num_classes)).any()):
                raise ValueError(f"labels hold classes outside 0..{num_classes - 1} (and {ignore_index} to ignore)")
            confusion += torch.bincount(labels[keep] * num_classes + pred[keep], minlength=num_classes ** 2)
    return _confusion_scores(confusion.view(num_classes, num_classes).cpu().numpy())


def train_on(model, train_data, val_data, config=None, *, settings=None, progress=True):
    """Train an FCN on a dataset of photographs, as torchvision's ``references/segmentation`` does.

    One loop, top to bottom: mini-batches from a seeded, shuffled data loader (its
    workers: ``settings.num_workers``), pixel-wise cross-entropy (``ignore_index``),
    SGD with momentum, mixed precision on CUDA (``torch.autocast`` and a gradient
    scaler), warm-up then "poly" decay of the learning rate; every
    ``config.eval_every`` steps score ``val_data`` (:func:`evaluate_dataset`). On the
    CPU the same config and settings give the same numbers.

    Parameters
    ----------
    model : FCN
    train_data, val_data : torch.utils.data.Dataset
        Items ``(image float (3, H, W) in [0, 1], labels int64 (H, W))`` of one size per set
        (see :func:`hub_datasets`).
    config : HubConfig, optional
    settings : segtutor.profiles.Settings, optional
        Device, mixed precision and workers (default: the current profile's).
    progress : bool

    Returns
    -------
    dict
        ``state_dict`` (on the CPU), ``config``, ``history`` (``loss``, ``lr`` per step;
        ``val_miou``, ``val_pixel_accuracy`` at ``eval_at``), ``seconds``, ``device``.
    """
    from tqdm.auto import tqdm

    from segtutor import profiles, training

    config = HubConfig() if config is None else config
    if not isinstance(config, HubConfig):
        raise TypeError(f"config must be a segtutor.fcn.HubConfig, got {describe(config)}")
    if not isinstance(model, FCN):
        raise TypeError(f"model must be a segtutor.fcn.FCN, got {describe(model)}")
    settings = profiles.settings() if settings is None else settings
    if len(train_data) < config.batch_size:
        raise ValueError(f"train_data has {len(train_data)} items, fewer than one batch of {config.batch_size}")

    training.seed_everything(config.seed)
    device = torch.device(settings.device)
    model = model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=_lr_at(0, config), momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scaler = settings.grad_scaler()
    criterion = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    loader = training.data_loader(train_data, config.batch_size, settings, shuffle=True, seed=config.seed,
                                  collate_fn=_stack, drop_last=True, persistent_workers=True)
    history = {"loss": [], "lr": [], "val_miou": [], "val_pixel_accuracy": [], "eval_at": []}
    bar = tqdm(total=config.iterations, desc=f"FCN-{config.variant} on {config.dataset}", disable=not progress,
               leave=False)
    start = time.perf_counter()
    with training.cpu_threads(config.threads if device.type == "cpu" else 0):
        _train_steps(model, loader, val_data, config, settings, device, optimizer, scaler, criterion, history, bar)
    bar.close()
    model.eval()
    return {
        "state_dict": {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()},
        "config": config.as_dict(),
        "history": history,
        "seconds": time.perf_counter() - start,
        "device": device.type,
    }


def _train_steps(model, loader, val_data, config, settings, device, optimizer, scaler, criterion, history, bar):
    """The loop of :func:`train_on`: ``config.iterations`` steps over the loader's epochs."""
    step = 0
    while step < config.iterations:
        for images, labels in loader:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with settings.autocast():
                loss = criterion(model(images), labels)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss.item()} at step {step}; lower lr (now {config.lr})")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            history["loss"].append(loss.item())
            history["lr"].append(optimizer.param_groups[0]["lr"])
            step += 1
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, config)
            if step % config.eval_every == 0 or step == config.iterations:
                scores = evaluate_dataset(model, val_data, settings=settings, batch_size=config.batch_size)
                model.train()
                history["val_miou"].append(scores["miou"])
                history["val_pixel_accuracy"].append(scores["pixel_accuracy"])
                history["eval_at"].append(step)
                bar.set_postfix(loss=f"{loss.item():.3f}", val_miou=f"{scores['miou']:.3f}")
            bar.update()
            if step == config.iterations:
                break


def _describe_hub(config, title):
    backbone = "the tiny backbone" if config.backbone == "tiny" else f"{config.backbone} (pretrained when cached)"
    return (f"trains FCN-{config.variant} over {backbone} on {title} ({config.iterations} steps of "
            f"{config.batch_size} crops of {config.size} px) and shows its validation mIoU and predictions")


def hub_run(config=None, *, root=None, profile=None, progress=True, examples=3):
    """Lesson 04 on real photographs: FCN trained on PASCAL VOC 2012 (or the Pets).

    Runs under the full profile when the dataset is present (see
    :func:`segtutor.profiles.hub_section`); otherwise prints one line saying what
    it would show and returns ``None``. The training goes through
    :func:`segtutor.training.cached`, so running the notebook again reloads it.

    Parameters
    ----------
    config : HubConfig, optional
    root : str or Path, optional
        The data folder (default :func:`segtutor.paths.data_dir`).
    profile : {"quick", "full"}, optional
    progress : bool
    examples : int
        Validation images kept with their predictions, for :func:`plot_hub_run`.

    Returns
    -------
    dict or None
        ``model`` (eval mode), ``result`` (what :func:`train_on` returned), ``scores``
        (:func:`evaluate_dataset` on the validation set), ``classes``, ``examples``
        (list of ``(image (H, W, 3), truth, prediction)``), ``from_cache``,
        ``dataset`` (its title), ``val_images``.

    Examples
    --------
    >>> hub_run(profile="quick")
    On a hub: skipped (quick profile). With SEGTUTOR_PROFILE=full and PASCAL VOC 2012 segmentation in the data folder (`segtutor fetch voc`), this section trains FCN-8s over vgg16 (pretrained when cached) on PASCAL VOC 2012 segmentation (3000 steps of 8 crops of 320 px) and shows its validation mIoU and predictions.
    """
    from segtutor import datasets, paths, profiles, training

    config = HubConfig() if config is None else config
    if not isinstance(config, HubConfig):
        raise TypeError(f"config must be a segtutor.fcn.HubConfig, got {describe(config)}")
    title = datasets.TITLES[config.dataset]
    if not profiles.hub_section(config.dataset, _describe_hub(config, title), profile=profile, root=root):
        return None
    settings = profiles.settings(profile)
    folder = paths.data_dir() if root is None else root
    train_set, val_set, classes = hub_datasets(config, folder)
    key = {**config.as_dict(), "data": str(folder), "train_items": len(train_set), **settings.cache_key()}
    result, from_cache = training.cached(
        f"fcn-hub-{config.dataset}", key,
        lambda: train_on(hub_model(config, len(classes)), train_set, val_set, config, settings=settings,
                         progress=progress),
    )
    model = load_hub_model(result, len(classes))
    scores = evaluate_dataset(model, val_set, settings=settings, batch_size=config.batch_size)
    pairs = [val_set[i] for i in range(min(as_int(examples, "examples", minimum=0), len(val_set)))]
    images = [np.asarray(image).transpose(1, 2, 0) for image, _ in pairs]
    with settings.autocast():
        predictions = predict(model, images) if images else []
    shown = [(image, np.asarray(truth), pred) for image, (_, truth), pred in zip(images, pairs, predictions)]
    print(f"FCN-{config.variant} ({config.backbone}) on {title}: {training.describe_run(from_cache, result['seconds'])}"
          f" on {result['device']}; validation mIoU {scores['miou']:.3f} over {len(val_set)} images")
    return {"model": model.cpu().eval(), "result": result, "scores": scores, "classes": tuple(classes),
            "examples": shown, "from_cache": from_cache, "dataset": title, "val_images": len(val_set),
            "config": config}


def plot_hub_run(run):
    """Validation photographs of :func:`hub_run` with their labels and the FCN's prediction.

    Classes are drawn in the dataset's own colours (the VOC palette), ignored pixels
    in light grey; the legend lists the classes present.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from segtutor import datasets

    if not isinstance(run, dict) or "examples" not in run or "scores" not in run:
        raise TypeError(f"run must be what segtutor.fcn.hub_run returned, got {describe(run)}")
    examples = run["examples"]
    if not examples:
        raise ValueError("run has no examples to show (hub_run(..., examples=0))")
    palette = datasets.voc_palette().astype(np.float32) / 255
    palette[IGNORE_INDEX] = (0.85, 0.85, 0.85)
    fig, axes = plt.subplots(len(examples), 3, figsize=(9, 3 * len(examples)), squeeze=False)
    present = set()
    for row, (image, truth, pred) in zip(axes, examples):
        present |= set(np.unique(truth).tolist()) | set(np.unique(pred).tolist())
        for ax, picture, name in zip(row, (np.clip(image, 0, 1), palette[truth], palette[pred]),
                                     ("photograph", "labels (grey: ignored)", "FCN prediction")):
            ax.imshow(picture)
            ax.set_title(name, fontsize=10)
            ax.axis("off")
    classes = run["classes"]
    handles = [Patch(facecolor=palette[v], edgecolor="0.3", label=classes[v]) for v in sorted(present)
               if v < len(classes)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=9, frameon=False)
    config = run["config"]
    fig.suptitle(f"FCN-{config.variant} ({config.backbone}) on {run['dataset']}: validation mIoU "
                 f"{run['scores']['miou']:.3f} over {run['val_images']} images")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig
