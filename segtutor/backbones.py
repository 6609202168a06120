"""CNN backbones: AlexNet, VGG-16, GoogLeNet and ResNet from torchvision, measured.

A classification network is a **backbone** (convolutions and pooling that turn an
image into feature maps of falling resolution) followed by a **head** (pooling and
fully connected layers that turn the last feature map into class scores).
Segmentation networks keep the backbone and replace the head. This module builds the
four classic backbones from :mod:`torchvision.models` and measures them:

==============================  ==========================================================
function                        what it gives
==============================  ==========================================================
:func:`build`                   a model in eval mode; pretrained weights when the torch
                                cache has them, else random weights and a one-line note
:func:`describe`, :func:`compare`  parameters, multiply-adds, depth, and for each stage
                                its output stride and receptive field
:func:`layer_geometry`          stride, receptive field and size of any layer, computed
                                from the layers (kernel, stride, padding, dilation,
                                branches and shortcuts)
:func:`receptive_field_probe`   the same, measured: the input-gradient support of units
:func:`feature_maps`            activations of chosen stages, through forward hooks
:func:`convolutionalize`        the fully connected head as convolutions: the first step
                                of a fully convolutional network (FCN)
:func:`gradient_flow`           gradient norms per layer of a deep plain and a residual net
==============================  ==========================================================

and the small functions the lesson's exercises are about: :func:`output_size`,
:func:`stack_receptive_field`, :func:`conv_param_count`, :func:`fc_to_conv_weight`.

torch and torchvision are imported with this module; ``import segtutor`` does not
import it until it is used. Pretrained weights are read from
:func:`segtutor.paths.weights_dir` (torchvision's cache) and never downloaded here.

Examples
--------
>>> from segtutor import backbones
>>> info = backbones.describe("resnet18")          # built on the meta device: no weights
>>> info.params, info.depth, info.stages[-1].stride, info.stages[-1].receptive_field
(11689512, 18, 32, 435)
>>> backbones.output_size(224, kernel=11, stride=4, padding=2)
55
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from segtutor._checks import as_int, describe as _describe_value

__all__ = [
    "MODELS",
    "STAGES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BackboneInfo",
    "Geometry",
    "Stage",
    "build",
    "weights_file",
    "imagenet_categories",
    "describe",
    "compare",
    "format_table",
    "layer_geometry",
    "minimum_input_size",
    "receptive_field_probe",
    "to_batch",
    "feature_maps",
    "convolutionalize",
    "logit_difference",
    "score_map",
    "gradient_flow",
    "output_size",
    "stack_receptive_field",
    "conv_param_count",
    "fc_to_conv_weight",
    "plot_comparison",
    "plot_gradient_flow",
    "plot_receptive_field_probe",
    "plot_feature_maps",
    "plot_score_map",
]

#: The backbones of the lesson, by their torchvision builder names.
MODELS = ("alexnet", "vgg16", "googlenet", "resnet18", "resnet50")

#: The stages of each backbone: stage name -> module path in the torchvision model.
#: A stage ends where the resolution is about to drop (or at the last block).
STAGES = {
    "alexnet": {"conv1": "features.1", "pool1": "features.2", "pool2": "features.5",
                "conv5": "features.11", "pool5": "features.12"},
    "vgg16": {"pool1": "features.4", "pool2": "features.9", "pool3": "features.16",
              "pool4": "features.23", "pool5": "features.30"},
    "googlenet": {"pool1": "maxpool1", "pool2": "maxpool2", "inception3b": "inception3b",
                  "inception4e": "inception4e", "inception5b": "inception5b"},
    "resnet18": {"stem": "maxpool", "layer1": "layer1", "layer2": "layer2",
                 "layer3": "layer3", "layer4": "layer4"},
    "resnet50": {"stem": "maxpool", "layer1": "layer1", "layer2": "layer2",
                 "layer3": "layer3", "layer4": "layer4"},
}

#: Mean and standard deviation of ImageNet's RGB channels (inputs in [0, 1]), as
#: torchvision's pretrained models expect them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The weights every model here uses: torchvision's original ImageNet-1K weights.
_WEIGHTS = "IMAGENET1K_V1"

# Okabe-Ito colours, readable with colour-blindness; one per model.
_OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#000000")
_MODEL_COLORS = dict(zip(MODELS, _OKABE_ITO))
# where the labels of the accuracy-vs-cost plot go (GoogLeNet and ResNet-18 sit close together)
_LABEL_OFFSETS = {"googlenet": ((-9, 9), "right"), "resnet18": ((9, -11), "left"), "vgg16": ((16, -4), "left")}


# =========================================================================== building


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, one of {', '.join(MODELS)}; got {_describe_value(name)}")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return name


def _weights_enum(name: str):
    return torchvision.models.get_model_weights(name)[_WEIGHTS]


def weights_file(name) -> Path:
    """Where torchvision keeps the pretrained weights of ``name`` (the file may not exist).

    Parameters
    ----------
    name : str
        One of :data:`MODELS`.

    Returns
    -------
    pathlib.Path
        ``segtutor.paths.weights_dir() / <file name of torchvision's download URL>``.

    Examples
    --------
    >>> weights_file("resnet18").name
    'resnet18-f37072fd.pth'
    """
    from segtutor import paths

    url = _weights_enum(_check_name(name)).url
    return paths.weights_dir() / url.rsplit("/", 1)[-1]


def imagenet_categories() -> tuple:
    """The 1000 ImageNet class names, in the order of the models' outputs.

    From torchvision's weight metadata; no download needed.

    Examples
    --------
    >>> names = imagenet_categories()
    >>> len(names), names[281]
    (1000, 'tabby')
    """
    return tuple(_weights_enum("resnet18").meta["categories"])


def _download_advice(name: str, path: Path) -> str:
    enum = _weights_enum(name)
    return (
        f"Delete it and download it again on a machine with internet access, e.g. "
        f"`python -c \"import torchvision; torchvision.models.{name}(weights='{_WEIGHTS}')\"` "
        f"(which saves it to {path.parent}), or copy {enum.url} to {path}."
    )


def _load_state_dict(name: str, path: Path) -> dict:
    """Read a cached checkpoint; a broken file gives an error naming it and the fix."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated download, not a checkpoint at all, ...
        raise RuntimeError(
            f"the pretrained weights file {path} is corrupt or incomplete "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}). "
            + _download_advice(name, path)
        ) from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RuntimeError(
            f"the pretrained weights file {path} does not hold a state dict of tensors "
            f"(got {type(state).__name__}). " + _download_advice(name, path)
        )
    return dict(state)


def build(name, *, weights="auto", seed=0):
    """Build one of the lesson's backbones from :mod:`torchvision.models`, in eval mode.

    Parameters
    ----------
    name : str
        One of :data:`MODELS`: ``"alexnet"``, ``"vgg16"``, ``"googlenet"``,
        ``"resnet18"``, ``"resnet50"``.
    weights : {"auto", "pretrained", "random"}
        ``"pretrained"`` loads torchvision's ImageNet weights (``IMAGENET1K_V1``)
        from the torch cache (:func:`weights_file`) and fails when they are not
        there; ``"random"`` initialises the weights as torchvision does for
        training; ``"auto"`` (default) loads them when cached and otherwise
        prints one line and uses random weights. Nothing is downloaded.
    seed : int
        Seed of the random initialisation (the global torch generator is left
        untouched), so the same ``name`` and ``seed`` give the same weights.

    Returns
    -------
    torch.nn.Module
        The model in eval mode; its attribute ``segtutor_weights`` says which
        weights it got (``"pretrained (IMAGENET1K_V1)"`` or ``"random (seed 0)"``).
        GoogLeNet comes without its auxiliary
        classifiers; with pretrained weights it normalises its input the way
        it was trained (``transform_input=True``), as torchvision's does.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the known names) or
        ``weights`` is not one of the three choices.
    FileNotFoundError
        With ``weights="pretrained"`` when the file is not in the cache.
    RuntimeError
        If the cached file is corrupt or holds other weights; the message names
        the file and how to download it again.

    Examples
    --------
    >>> model = build("resnet18", weights="random")
    >>> type(model).__name__, model.training, model.segtutor_weights
    ('ResNet', False, 'random (seed 0)')
    """
    name = _check_name(name)
    if weights not in ("auto", "pretrained", "random"):
        raise ValueError(f"weights must be 'auto', 'pretrained' or 'random'; got {weights!r}")
    seed = as_int(seed, "seed", minimum=0)
    path = weights_file(name)
    pretrained = weights == "pretrained" or (weights == "auto" and path.is_file())
    if weights == "pretrained" and not path.is_file():
        raise FileNotFoundError(
            f"no pretrained weights for {name} at {path}. Download them on a machine with internet access, "
            f"e.g. `python -c \"import torchvision; torchvision.models.{name}(weights='{_WEIGHTS}')\"`, "
            f"and copy the file there (or set TORCH_HOME to the folder above hub/checkpoints)."
        )
    kwargs = {}
    if name == "googlenet":
        kwargs = ({"aux_logits": True, "transform_input": True, "init_weights": False} if pretrained
                  else {"aux_logits": False, "init_weights": True})
    if pretrained:
        state = _load_state_dict(name, path)
        with torch.device("meta"):
            model = torchvision.models.get_model(name, weights=None, **kwargs)
        try:
            model.load_state_dict(state, assign=True)
        except RuntimeError as exc:
            raise RuntimeError(
                f"the pretrained weights file {path} does not hold {name} weights "
                f"({str(exc).splitlines()[0][:300]}). " + _download_advice(name, path)
            ) from None
        if name == "googlenet":
            model.aux_logits, model.aux1, model.aux2 = False, None, None
        model.segtutor_weights = f"pretrained ({_WEIGHTS})"
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = torchvision.models.get_model(name, weights=None, **kwargs)
        model.segtutor_weights = f"random (seed {seed})"
        if weights == "auto":
            print(f"{name}: no pretrained weights in the torch cache ({path}); using random weights.")
    return model.eval()


def _identify(model) -> str | None:
    """The name in :data:`MODELS` of a torchvision model, or None."""
    models = torchvision.models
    if isinstance(model, models.AlexNet):
        return "alexnet"
    if isinstance(model, models.VGG):
        convs = sum(isinstance(m, nn.Conv2d) for m in model.features)
        return "vgg16" if convs == 13 else None
    if isinstance(model, models.GoogLeNet):
        return "googlenet"
    if isinstance(model, models.ResNet):
        blocks = [len(getattr(model, f"layer{i}")) for i in range(1, 5)]
        bottleneck = isinstance(model.layer1[0], models.resnet.Bottleneck)
        if blocks == [2, 2, 2, 2] and not bottleneck:
            return "resnet18"
        if blocks == [3, 4, 6, 3] and bottleneck:
            return "resnet50"
    return None


def _meta_model(name: str) -> nn.Module:
    kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None, **kwargs).eval()


def _as_model(model, what="model") -> nn.Module:
    if isinstance(model, str):
        return _meta_model(_check_name(model))
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{what} must be a torch.nn.Module or one of the names {', '.join(MODELS)}; got {_describe_value(model)}"
        )
    return model


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the meta device (no data copied)."""
    memo = {}
    for tensor in model.parameters():
        memo[id(tensor)] = nn.Parameter(torch.empty_like(tensor, device="meta"), tensor.requires_grad)
    for tensor in model.buffers():
        memo[id(tensor)] = torch.empty_like(tensor, device="meta")
    return copy.deepcopy(model, memo)


# =========================================================================== geometry


class _ScopeTracer(torch.fx.Tracer):
    """An fx tracer that remembers the module each node was created in (``""``: the top level)."""

    def __init__(self):
        super().__init__()
        self.scopes: dict = {}

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        self.scopes[node] = self.scope.module_path
        return node


@dataclasses.dataclass(frozen=True)
class Geometry:
    """How the units of one layer's output map onto the input image.

    Along each axis (rows, columns), unit ``i`` of the layer sees the input pixels
    ``start + i * stride`` to ``end + i * stride`` (inclusive; negative values and
    values past the image are padding).

    Attributes
    ----------
    stride : tuple of int
        Output stride (the "jump" between neighbouring units), per axis.
    start, end : tuple of int
        First and last input pixel seen by unit 0, per axis.
    size : tuple of int
        Output size for the input size the geometry was computed for.
    depth : int
        Weight layers (convolutions and fully connected) on the longest path
        from the input.
    channels : int or None
        Output channels (None when unknown).

    Examples
    --------
    >>> geo = layer_geometry("alexnet", ["pool1"])["pool1"]
    >>> geo.stride, geo.receptive_field, geo.window((0, 0))   # 2 pixels of padding on the left
    ((8, 8), (19, 19), ((-2, 16), (-2, 16)))
    """

    stride: tuple
    start: tuple
    end: tuple
    size: tuple
    depth: int
    channels: int | None = None

    @property
    def receptive_field(self) -> tuple:
        """Pixels seen by one unit, per axis: ``end - start + 1``."""
        return tuple(e - s + 1 for s, e in zip(self.start, self.end))

    def window(self, unit) -> tuple:
        """``((top, bottom), (left, right))``: input pixels seen by the unit at ``(row, col)``."""
        return tuple((s + u * j, e + u * j) for s, e, u, j in zip(self.start, self.end, unit, self.stride))


_POINTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
    nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LocalResponseNorm, nn.Dropout, nn.Dropout2d,
    nn.Identity,
)
_GLOBAL_MODULES = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear)
_POINTWISE_FUNCTIONS = {
    operator.add, operator.iadd, operator.mul, operator.imul, operator.sub, operator.truediv, operator.getitem,
    torch.add, torch.mul, torch.cat, torch.relu, torch.sigmoid, torch.unsqueeze,
    F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.dropout, F.batch_norm,
}
_GLOBAL_FUNCTIONS = {torch.flatten, torch.mean, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.linear}
_POINTWISE_METHODS = {"relu", "relu_", "sigmoid", "add", "add_", "mul", "mul_", "contiguous", "clone"}
_GLOBAL_METHODS = {"flatten", "view", "reshape", "mean"}


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _window_size(size, kernel, stride, padding, dilation, ceil_mode) -> int:
    """PyTorch's output size of a convolution or pooling window along one axis."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -((-span) // stride) + 1
        if (out - 1) * stride >= size + padding:  # the last window would start in the right padding
            out -= 1
    else:
        out = span // stride + 1
    return out


_GLOBAL = "global"


def _spatial(node, geos):
    """The geometries of the tensor inputs of ``node`` (None for other arguments)."""
    found = []

    def visit(value):
        if isinstance(value, torch.fx.Node):
            found.append(geos.get(value))
        elif isinstance(value, (tuple, list)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
    visit(node.args)
    visit(node.kwargs)
    return [g for g in found if g is not None]


def _combine(inputs, what, concatenate=False) -> Geometry | str:
    """Geometry of an element-wise op or concatenation: the union of the inputs' windows."""
    if any(g is _GLOBAL for g in inputs):
        return _GLOBAL
    first = inputs[0]
    for other in inputs[1:]:
        if other.stride != first.stride or other.size != first.size:
            raise NotImplementedError(
                f"{what} combines feature maps of strides {first.stride} and {other.stride} "
                f"(sizes {first.size}, {other.size}); their receptive fields cannot be combined"
            )
    start = tuple(min(g.start[a] for g in inputs) for a in range(2))
    end = tuple(max(g.end[a] for g in inputs) for a in range(2))
    depth = max(g.depth for g in inputs)
    channels = [g.channels for g in inputs]
    if concatenate:
        channels = sum(channels) if None not in channels else None
    else:
        channels = channels[0]
    return Geometry(first.stride, start, end, first.size, depth, channels)


def _module_geometry(module, geo: Geometry, path: str) -> Geometry | str:
    if geo is _GLOBAL:
        return _GLOBAL
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        dilation = _pair(getattr(module, "dilation", 1))
        ceil_mode = bool(getattr(module, "ceil_mode", False))
        padding = module.padding
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0, 0)
            else:  # "same" (stride 1): PyTorch pads total d*(k-1), the extra pixel on the right
                padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
        padding = _pair(padding)
        size = tuple(_window_size(n, k, s, p, d, ceil_mode)
                     for n, k, s, p, d in zip(geo.size, kernel, stride, padding, dilation))
        start = tuple(st - p * j for st, p, j in zip(geo.start, padding, geo.stride))
        end = tuple(en + ((k - 1) * d - p) * j
                    for en, k, d, p, j in zip(geo.end, kernel, dilation, padding, geo.stride))
        jump = tuple(j * s for j, s in zip(geo.stride, stride))
        depth = geo.depth + isinstance(module, nn.Conv2d)
        channels = module.out_channels if isinstance(module, nn.Conv2d) else geo.channels
        return Geometry(jump, start, end, size, depth, channels)
    if isinstance(module, _POINTWISE_MODULES):
        return geo
    if isinstance(module, _GLOBAL_MODULES):
        return _GLOBAL
    raise NotImplementedError(
        f"cannot follow the receptive field through {path} ({type(module).__name__}); "
        "supported: Conv2d, MaxPool2d, AvgPool2d, element-wise layers, adaptive pooling, Linear"
    )


def _trace(model: nn.Module):
    tracer = _ScopeTracer()
    graph = tracer.trace(model)
    return graph, tracer.scopes


_TRACES: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _cached_trace(model: nn.Module):
    try:
        return _TRACES[model]
    except KeyError:
        traced = _trace(model)
        _TRACES[model] = traced
        return traced


def _propagate(model: nn.Module, size: tuple):
    """Geometry (or "global") of every node of the traced model for an input of ``size``."""
    graph, scopes = _cached_trace(model)
    modules = dict(model.named_modules())
    geos: dict = {}
    for node in graph.nodes:
        if node.op == "placeholder":
            if not geos:
                geos[node] = Geometry((1, 1), (0, 0), (0, 0), tuple(size), 0, None)
            continue
        if node.op in ("output", "get_attr"):
            continue
        inputs = _spatial(node, geos)
        if not inputs:
            continue
        if node.op == "call_module":
            module = modules[node.target]
            geos[node] = _module_geometry(module, inputs[0], node.target)
        elif node.op == "call_function":
            if node.target in _GLOBAL_FUNCTIONS:
                geos[node] = _GLOBAL
            elif node.target in _POINTWISE_FUNCTIONS:
                geos[node] = _combine(inputs, getattr(node.target, "__name__", str(node.target)),
                                      concatenate=node.target is torch.cat)
            else:
                raise NotImplementedError(f"cannot follow the receptive field through the function {node.target}")
        elif node.op == "call_method":
            if node.target in _GLOBAL_METHODS:
                geos[node] = _GLOBAL
            elif node.target in _POINTWISE_METHODS:
                geos[node] = _combine(inputs, node.target)
            elif node.target == "size" or node.target == "dim":
                continue
            else:
                raise NotImplementedError(f"cannot follow the receptive field through the method .{node.target}()")
    return graph, scopes, geos


def _stage_nodes(model: nn.Module, layers) -> dict:
    """The last graph node of each named module (the node that outputs it)."""
    graph, scopes = _cached_trace(model)
    last: dict = {}
    for node in graph.nodes:
        scope = scopes.get(node, "")
        for layer in layers:
            if scope == layer or scope.startswith(layer + "."):
                last[layer] = node
    return last


def _layer_paths(model: nn.Module, layers, name: str | None = None) -> dict:
    """``layers`` (stage names or module paths) as {label: module path}, checked."""
    stages = STAGES.get(name or _identify(model) or "", {})
    if layers is None:
        if not stages:
            raise ValueError("this model is not one of " + ", ".join(MODELS) + "; name its layers (module paths)")
        return dict(stages)
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, Mapping):
        pairs = list(layers.items())
    else:
        try:
            pairs = [(layer, layer) for layer in layers]
        except TypeError:
            raise TypeError(
                f"layers must be a list of stage names or module paths, got {_describe_value(layers)}"
            ) from None
    modules = dict(model.named_modules())
    out = {}
    for label, layer in pairs:
        if not isinstance(layer, str):
            raise TypeError(f"layer names must be strings, got {_describe_value(layer)}")
        path = stages.get(layer, layer)
        if path not in modules or path == "":
            known = ", ".join(stages) if stages else ", ".join(list(modules)[1:12]) + ", ..."
            raise ValueError(f"unknown layer {layer!r}; stages of this model: {known} (or any module path)")
        out[str(label)] = path
    return out


def layer_geometry(model, layers=None, *, size=224) -> dict:
    """Stride, receptive field and output size of layers, computed from the layers.

    The model is traced with :mod:`torch.fx` and, from the input on, every layer's
    kernel, stride, padding and dilation update where its units look. Branches
    (GoogLeNet's inception modules) and shortcuts (ResNet's residual additions)
    are handled: a unit of a concatenation or sum sees the union of what its
    inputs see.

    Parameters
    ----------
    model : torch.nn.Module or str
        A model, or a name from :data:`MODELS` (built on the meta device).
    layers : sequence of str, optional
        Stage names (see :data:`STAGES`) or module paths (``"layer2.0.conv1"``).
        Default: the model's stages.
    size : int or (int, int)
        Input size used for the output sizes.

    Returns
    -------
    dict
        ``{layer: Geometry}``.

    Raises
    ------
    ValueError
        For an unknown layer (the message lists the stages).

    Examples
    --------
    >>> geo = layer_geometry("vgg16", ["pool5"])["pool5"]
    >>> geo.stride, geo.receptive_field, geo.size
    ((32, 32), (212, 212), (7, 7))
    """
    model = _as_model(model)
    paths = _layer_paths(model, layers)
    size = _size_pair(size)
    graph, scopes, geos = _propagate(model, size)
    nodes = _stage_nodes(model, set(paths.values()))
    out = {}
    for label, path in paths.items():
        node = nodes.get(path)
        geo = geos.get(node) if node is not None else None
        if not isinstance(geo, Geometry):
            raise ValueError(f"layer {label!r} ({path}) has no spatial output (it comes after global pooling)")
        out[label] = geo
    return out


def _size_pair(size) -> tuple:
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"size must be an int or a pair (H, W); got {size!r}")
        return (as_int(size[0], "size[0]", minimum=1), as_int(size[1], "size[1]", minimum=1))
    side = as_int(size, "size", minimum=1)
    return (side, side)


def _fits(model, side: int) -> bool:
    _, _, geos = _propagate(model, (side, side))
    return all(min(g.size) >= 1 for g in geos.values() if isinstance(g, Geometry))


def minimum_input_size(model) -> int:
    """The smallest square input (side in pixels) every layer of ``model`` accepts.

    Computed from the layers: each convolution and pooling window needs at least
    one output position.

    Examples
    --------
    >>> minimum_input_size("alexnet"), minimum_input_size("vgg16")
    (63, 32)
    """
    model = _as_model(model)
    if _fits(model, 1):
        return 1
    low, high = 1, 2
    while not _fits(model, high):
        low, high = high, high * 2
        if high > 1 << 16:
            raise ValueError("this model accepts no input up to 65536 pixels wide")
    while high - low > 1:
        mid = (low + high) // 2
        if _fits(model, mid):
            high = mid
        else:
            low = mid
    return high


# =========================================================================== description


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a backbone, as :func:`describe` reports it.

    Examples
    --------
    >>> describe("vgg16").stages[0]
    Stage(name='pool1', module='features.4', channels=64, size=(112, 112), stride=2, receptive_field=6)
    """

    name: str
    module: str
    channels: int
    size: tuple
    stride: int
    receptive_field: int


@dataclasses.dataclass(frozen=True)
class BackboneInfo:
    """What :func:`describe` measures on one backbone.

    Attributes
    ----------
    name : str
    params : int
        Number of parameters (weights and biases).
    flops : int
        Floating-point operations of one forward pass at ``input_size`` x
        ``input_size``, batch 1, as :class:`torch.utils.flop_counter.FlopCounterMode`
        counts them (2 per multiply-add of convolutions and matrix products).
    depth : int
        Weight layers on the longest path from input to output.
    min_size : int
        Smallest square input the network accepts.
    input_size : int
    top1 : float or None
        ImageNet-1K top-1 accuracy (%) of torchvision's ``IMAGENET1K_V1``
        weights, from their metadata.
    stages : tuple of Stage

    Examples
    --------
    >>> info = describe("googlenet")
    >>> info.depth, info.min_size, info.macs
    (22, 15, 1498376192)
    """

    name: str
    params: int
    flops: int
    depth: int
    min_size: int
    input_size: int
    top1: float | None
    stages: tuple

    @property
    def macs(self) -> int:
        """Multiply-adds: ``flops // 2``."""
        return self.flops // 2

    def __str__(self) -> str:
        top1 = f", ImageNet top-1 {self.top1:.1f} %" if self.top1 is not None else ""
        lines = [
            f"{self.name}: {self.params / 1e6:.1f} M parameters, {self.macs / 1e9:.2f} G multiply-adds "
            f"at {self.input_size}x{self.input_size}, depth {self.depth}, minimum input {self.min_size} px{top1}",
            f"  {'stage':<12} {'module':<12} {'output (C x H x W)':>20} {'stride':>7} {'receptive field':>16}",
        ]
        for s in self.stages:
            shape = f"{s.channels} x {s.size[0]} x {s.size[1]}"
            lines.append(f"  {s.name:<12} {s.module:<12} {shape:>20} {s.stride:>7} {s.receptive_field:>16}")
        return "\n".join(lines)


def _square(value: tuple, what: str) -> int:
    if value[0] != value[1]:
        raise ValueError(f"{what} differs between rows and columns: {value}")
    return int(value[0])


def describe(model, stages=None, *, size=224) -> BackboneInfo:
    """Parameters, operations, depth and per-stage stride and receptive field of a backbone.

    Parameters
    ----------
    model : str or torch.nn.Module
        A name from :data:`MODELS` (built on the meta device: no memory, no
        weights) or a model (described without running it on data).
    stages : sequence of str or dict, optional
        Stages to report (default :data:`STAGES` of a known model).
    size : int
        Side of the square input used for operations and output sizes.

    Returns
    -------
    BackboneInfo

    Examples
    --------
    >>> info = describe("alexnet")
    >>> info.params, round(info.macs / 1e9, 3), info.depth
    (61100840, 0.714, 8)
    >>> [(s.name, s.stride, s.receptive_field) for s in info.stages][-2:]
    [('conv5', 16, 163), ('pool5', 32, 195)]
    """
    name = model if isinstance(model, str) else None
    model = _as_model(model)
    name = name or _identify(model)
    size = as_int(size, "size", minimum=1)
    meta = model if all(p.is_meta for p in model.parameters()) else _meta_copy(model)
    min_size = minimum_input_size(meta)
    if size < min_size:
        raise ValueError(f"size {size} is smaller than the smallest input this network accepts, {min_size} px")
    paths = _layer_paths(meta, stages, name)
    geos = layer_geometry(meta, paths, size=size)

    from torch.utils.flop_counter import FlopCounterMode

    shapes = {}
    handles = [meta.get_submodule(path).register_forward_hook(
        lambda m, i, o, label=label: shapes.__setitem__(label, tuple(o.shape))) for label, path in paths.items()]
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            meta(torch.empty(1, _in_channels(meta), size, size, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    out_stages = []
    for label, path in paths.items():
        geo = geos[label]
        out_stages.append(Stage(label, path, int(shapes[label][1]), tuple(int(v) for v in shapes[label][2:]),
                                _square(geo.stride, "stride"), _square(geo.receptive_field, "receptive field")))
    depth = _depth(meta)
    top1 = None
    if name in MODELS:
        top1 = float(_weights_enum(name).meta["_metrics"]["ImageNet-1K"]["acc@1"])
    return BackboneInfo(
        name=name or type(model).__name__,
        params=int(sum(p.numel() for p in model.parameters())),
        flops=int(counter.get_total_flops()),
        depth=depth,
        min_size=min_size,
        input_size=size,
        top1=top1,
        stages=tuple(out_stages),
    )


def _depth(model: nn.Module) -> int:
    """Weight layers (Conv2d, Linear) on the longest path through the traced graph."""
    graph, _ = _cached_trace(model)
    modules = dict(model.named_modules())
    depth: dict = {}
    best = 0
    for node in graph.nodes:
        inputs = [depth[a] for a in node.all_input_nodes if a in depth]
        own = int(node.op == "call_module" and isinstance(modules[node.target], (nn.Conv2d, nn.Linear)))
        depth[node] = (max(inputs) if inputs else 0) + own
        best = max(best, depth[node])
    return best


def compare(names=MODELS, *, size=224) -> list:
    """:func:`describe` each of ``names`` (on the meta device: fast, no weights needed).

    Examples
    --------
    >>> [info.depth for info in compare(["alexnet", "vgg16"])]
    [8, 16]
    """
    if isinstance(names, str):
        names = [names]
    return [describe(_check_name(n), size=size) for n in names]


def format_table(infos) -> str:
    """A text table of :func:`compare`'s results, one row per model.

    Examples
    --------
    >>> print(format_table(compare(["resnet18"])))  # doctest: +NORMALIZE_WHITESPACE
    model      parameters  GMACs  depth  min input  stride  receptive field  top-1 (%)
    resnet18       11.7 M   1.81     18          1      32              435       69.8
    """
    if isinstance(infos, BackboneInfo):
        infos = [infos]
    header = (f"{'model':<10} {'parameters':>10} {'GMACs':>6} {'depth':>6} {'min input':>10} "
              f"{'stride':>7} {'receptive field':>16} {'top-1 (%)':>10}")
    rows = [header]
    for info in infos:
        if not isinstance(info, BackboneInfo):
            raise TypeError(f"format_table needs results of describe()/compare(), got {_describe_value(info)}")
        last = info.stages[-1]
        top1 = f"{info.top1:.1f}" if info.top1 is not None else "-"
        rows.append(f"{info.name:<10} {info.params / 1e6:>8.1f} M {info.macs / 1e9:>6.2f} {info.depth:>6} "
                    f"{info.min_size:>10} {last.stride:>7} {last.receptive_field:>16} {top1:>10}")
    return "\n".join(rows)


# =========================================================================== inputs


def _in_channels(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


_MIN_SIZES: "weakref.WeakKeyDictionary[nn.Module, int]" = weakref.WeakKeyDictionary()


def _check_input(model: nn.Module, batch: torch.Tensor) -> None:
    channels = _in_channels(model)
    if batch.ndim != 4:
        raise ValueError(
            f"the input must be a batch of shape (N, {channels}, H, W); got {batch.ndim}-D shape {tuple(batch.shape)}"
        )
    if batch.shape[1] != channels:
        raise ValueError(
            f"the input must have {channels} channels, shape (N, {channels}, H, W); got shape {tuple(batch.shape)}"
        )
    if model not in _MIN_SIZES:
        _MIN_SIZES[model] = minimum_input_size(model)
    minimum = _MIN_SIZES[model]
    if min(batch.shape[2:]) < minimum:
        raise ValueError(
            f"the input ({batch.shape[2]} x {batch.shape[3]} pixels) is smaller than the smallest input "
            f"this network accepts: {minimum} x {minimum} pixels"
        )


def to_batch(image, *, size=None) -> torch.Tensor:
    """An RGB image as a normalised batch of one, the way ImageNet models expect it.

    Parameters
    ----------
    image : ndarray (H, W, 3) or torch.Tensor (N, C, H, W)
        A NumPy image (uint8 0..255, or floats in [0, 1]) is scaled to [0, 1]
        and normalised with :data:`IMAGENET_MEAN` and :data:`IMAGENET_STD`.
        A tensor is taken as already normalised and only resized.
    size : int or (int, int), optional
        An int resizes the shorter side to ``size`` and crops the centre
        square (ImageNet's evaluation transform); a pair resizes to exactly
        ``(H, W)``. Resizing is bilinear with antialiasing.

    Returns
    -------
    torch.Tensor
        float32 of shape (N, 3, H, W) (N, C, H, W for a tensor).

    Examples
    --------
    >>> from segtutor import data
    >>> to_batch(data.sample_image("chelsea"), size=224).shape
    torch.Size([1, 3, 224, 224])
    """
    if isinstance(image, torch.Tensor):
        if image.ndim != 4:
            raise ValueError(f"a tensor image must be a batch of shape (N, C, H, W); got shape {tuple(image.shape)}")
        batch = image.float()
    else:
        array = np.asarray(image) if not isinstance(image, np.ndarray) else image
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise TypeError(f"image must be a NumPy array of numbers, got {_describe_value(image)}")
        if array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(
                f"image must be an RGB array of shape (H, W, 3); got shape {array.shape}"
                + (" (a grayscale image: stack it three times, np.dstack([g, g, g]))" if array.ndim == 2 else "")
            )
        if array.size == 0:
            raise ValueError(f"image is empty (shape {array.shape})")
        if np.issubdtype(array.dtype, np.integer):
            if array.min() < 0 or array.max() > 255:
                raise ValueError("an integer image must hold values 0..255")
            values = array.astype(np.float32) / 255.0
        else:
            values = array.astype(np.float32)
            if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
                raise ValueError("a float image must hold finite values in [0, 1]")
        batch = torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))[None]
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        batch = (batch - mean) / std
    if size is None:
        return batch
    h, w = batch.shape[2:]
    if isinstance(size, (tuple, list)):
        target = _size_pair(size)
        return F.interpolate(batch, size=target, mode="bilinear", antialias=True, align_corners=False)
    side = as_int(size, "size", minimum=1)
    # the arithmetic of torchvision's Resize(side) + CenterCrop(side)
    if h <= w:
        resized = (side, int(side * w / h))
    else:
        resized = (int(side * h / w), side)
    if resized != (h, w):
        batch = F.interpolate(batch, size=resized, mode="bilinear", antialias=True, align_corners=False)
    top, left = int(round((resized[0] - side) / 2.0)), int(round((resized[1] - side) / 2.0))
    return batch[:, :, top:top + side, left:left + side].contiguous()


class _Stop(Exception):
    """Raised by a forward hook once every requested activation is captured."""


def feature_maps(model, image, layers=None, *, size=None) -> dict:
    """The activations of chosen layers, captured with forward hooks.

    The forward pass stops after the last requested layer, runs without
    gradients, and leaves no hook behind.

    Parameters
    ----------
    model : torch.nn.Module
        A backbone (use it in eval mode, e.g. from :func:`build`).
    image : ndarray (H, W, 3) or torch.Tensor (N, 3, H, W)
        Passed through :func:`to_batch`.
    layers : sequence of str, optional
        Stage names (:data:`STAGES`) or module paths; default all stages.
    size : int or (int, int), optional
        Resize first (see :func:`to_batch`).

    Returns
    -------
    dict
        ``{layer: tensor (N, C, h, w)}`` in the order of ``layers``.

    Raises
    ------
    ValueError
        For an unknown layer (the message lists the stages), an input of the
        wrong shape, or one smaller than the network's minimum size.

    Examples
    --------
    >>> from segtutor import data
    >>> model = build("resnet18", weights="random")
    >>> maps = feature_maps(model, data.sample_image("chelsea"), ["layer1", "layer4"], size=224)
    >>> {k: tuple(v.shape) for k, v in maps.items()}
    {'layer1': (1, 64, 56, 56), 'layer4': (1, 512, 7, 7)}
    """
    model = _as_model(model)
    if any(p.is_meta for p in model.parameters()):
        raise ValueError("this model has no weights (meta device); build it with backbones.build(name)")
    paths = _layer_paths(model, layers)
    batch = to_batch(image, size=size)
    _check_input(model, batch)
    captured: dict = {}
    wanted = set(paths.values())

    def hook(module, inputs, output, path):
        captured[path] = output.detach()
        if wanted <= set(captured):
            raise _Stop

    handles = [model.get_submodule(path).register_forward_hook(
        lambda m, i, o, path=path: hook(m, i, o, path)) for path in wanted]
    try:
        with torch.no_grad():
            model(batch)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return {label: captured[path] for label, path in paths.items()}


# =========================================================================== probe


class _ProbeConv(nn.Module):
    """A stand-in for a convolution: channel mean, then an averaging kernel of the same window."""

    def __init__(self, kernel, stride, padding, dilation):
        super().__init__()
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation

    def forward(self, x):
        x = x.mean(dim=1, keepdim=True)
        weight = torch.full((1, 1, *self.kernel), 1.0 / (self.kernel[0] * self.kernel[1]), dtype=x.dtype)
        return F.conv2d(x, weight, stride=self.stride, padding=self.padding, dilation=self.dilation)


def _probe_model(model: nn.Module) -> nn.Module:
    probe = _meta_copy(model)
    for path, module in list(probe.named_modules()):
        if not path:
            continue
        parent_path, _, child = path.rpartition(".")
        parent = probe.get_submodule(parent_path) if parent_path else probe
        if isinstance(module, nn.Conv2d):
            replacement = _ProbeConv(_pair(module.kernel_size), _pair(module.stride), module.padding,
                                     _pair(module.dilation))
        elif isinstance(module, nn.MaxPool2d):
            if _pair(module.dilation) != (1, 1):
                raise NotImplementedError("the probe cannot stand in for a dilated max-pool")
            replacement = nn.AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode,
                                       count_include_pad=True)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LocalResponseNorm)):
            replacement = nn.Identity()
        else:
            continue
        setattr(parent, child, replacement)
    return probe.eval()


def receptive_field_probe(model, layer, *, size=224, units=None) -> dict:
    """Measure which input pixels units of a layer see: the support of their input gradient.

    The model's own forward pass runs with every convolution replaced by an
    averaging kernel of the same size, stride, padding and dilation (over the
    mean of its input channels), every max-pool by an average pool of the same
    window, and normalisations by identities. All weights are then positive, so
    no contributions cancel and ReLUs pass everything: the gradient of a unit
    with respect to the input is non-zero exactly on the pixels the unit can see.
    It is a measurement independent of :func:`layer_geometry`'s bookkeeping.

    Parameters
    ----------
    model : torch.nn.Module or str
    layer : str
        A stage name or module path.
    size : int or (int, int)
        Input size.
    units : sequence of (row, col), optional
        Units of the layer's output to probe; default the centre unit.

    Returns
    -------
    dict
        ``"gradient"``: float64 array (len(units), H, W), the input gradient of
        each unit (summed over colour channels); ``"boxes"``: for each unit
        ``((top, bottom), (left, right))``, the rows and columns of the support;
        ``"units"``; ``"output_size"``: the layer's (h, w).

    Examples
    --------
    >>> probe = receptive_field_probe("vgg16", "pool2", size=64)
    >>> probe["units"], probe["boxes"]
    (((7, 7),), (((22, 37), (22, 37)),))
    """
    model = _as_model(model)
    size = _size_pair(size)
    path = _layer_paths(model, [layer])[layer]
    probe = _probe_model(model)
    captured = {}

    def hook(module, inputs, output):
        captured["out"] = output
        raise _Stop

    handle = probe.get_submodule(path).register_forward_hook(hook)
    # one pass over a batch of shape (1, C, H, W) tells the output size
    with torch.no_grad():
        try:
            probe(torch.ones(1, _in_channels(model), *size, dtype=torch.float64))
        except _Stop:
            pass
    out_size = tuple(int(v) for v in captured["out"].shape[2:])
    if units is None:
        units = [((out_size[0] - 1) // 2, (out_size[1] - 1) // 2)]
    units = tuple((int(r), int(c)) for r, c in units)
    for r, c in units:
        if not (0 <= r < out_size[0] and 0 <= c < out_size[1]):
            raise ValueError(f"unit {(r, c)} is outside the layer's output of size {out_size}")
    x = torch.ones(len(units), _in_channels(model), *size, dtype=torch.float64, requires_grad=True)
    try:
        try:
            probe(x)
        except _Stop:
            pass
    finally:
        handle.remove()
    out = captured["out"]
    total = sum(out[i, :, r, c].sum() for i, (r, c) in enumerate(units))
    (grad,) = torch.autograd.grad(total, x)
    gradient = grad.abs().sum(dim=1).numpy()
    boxes = []
    for g in gradient:
        rows, cols = np.nonzero(g.any(axis=1))[0], np.nonzero(g.any(axis=0))[0]
        boxes.append(((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))))
    return {"gradient": gradient, "boxes": tuple(boxes), "units": units, "output_size": out_size}


# =========================================================================== FCN


def convolutionalize(classifier) -> nn.Sequential:
    """Turn a classifier's fully connected head into convolutions (FCN, step one).

    * AlexNet/VGG (``features`` + ``avgpool`` + ``classifier``): the first
      ``Linear`` on the flattened C x h x w map becomes a convolution with an
      h x w kernel, the following ``Linear`` layers 1 x 1 convolutions. On
      the input size the classifier was made for (224 x 224) the output is
      1 x 1 and equals its logits; on a larger input it is a map of class scores.
    * ResNet/GoogLeNet (global average pooling + ``fc``): ``fc`` becomes a 1 x 1
      convolution on the last feature map; averaging the score map over space
      gives the logits exactly, at any size.

    The new model shares its parameters with ``classifier`` (nothing is copied).

    Parameters
    ----------
    classifier : torch.nn.Module
        A torchvision AlexNet, VGG, ResNet or GoogLeNet.

    Returns
    -------
    torch.nn.Sequential
        ``(N, 3, H, W) -> (N, classes, h, w)``, in the classifier's mode.

    Raises
    ------
    TypeError
        For another kind of model.

    Examples
    --------
    >>> fcn = convolutionalize(build("resnet18", weights="random"))
    >>> fcn(torch.zeros(1, 3, 320, 480)).shape
    torch.Size([1, 1000, 10, 15])
    """
    if not isinstance(classifier, nn.Module):
        raise TypeError(f"classifier must be a torch.nn.Module, got {_describe_value(classifier)}")
    models = torchvision.models
    if isinstance(classifier, (models.AlexNet, models.VGG)):
        pool = classifier.avgpool
        if not isinstance(pool, nn.AdaptiveAvgPool2d):
            raise TypeError("expected the classifier's avgpool to be an AdaptiveAvgPool2d")
        h, w = _pair(pool.output_size)
        layers = [classifier.features]
        first = True
        for module in classifier.classifier:
            if isinstance(module, nn.Linear):
                if first:
                    channels = module.in_features // (h * w)
                    conv = nn.Conv2d(channels, module.out_features, (h, w))
                    conv.weight = nn.Parameter(fc_to_conv_weight(module.weight.detach(), channels, h, w),
                                               module.weight.requires_grad)
                    first = False
                else:
                    conv = nn.Conv2d(module.in_features, module.out_features, 1)
                    conv.weight = nn.Parameter(fc_to_conv_weight(module.weight.detach(), module.in_features, 1, 1),
                                               module.weight.requires_grad)
                conv.bias = module.bias
                layers.append(conv)
            elif isinstance(module, (nn.ReLU, nn.Dropout)):
                layers.append(module)
            else:
                raise TypeError(f"cannot convolutionalize a {type(module).__name__} in the head")
        fcn = nn.Sequential(*layers)
    elif isinstance(getattr(classifier, "fc", None), nn.Linear) and isinstance(
            getattr(classifier, "avgpool", None), nn.AdaptiveAvgPool2d):
        fc = classifier.fc
        body = []
        if getattr(classifier, "transform_input", False):
            body.append(_GoogLeNetInput())
        for child_name, child in classifier.named_children():
            if child_name in ("avgpool", "fc") or child is None or child_name.startswith("aux"):
                continue
            body.append(child)
        conv = nn.Conv2d(fc.in_features, fc.out_features, 1)
        conv.weight = nn.Parameter(fc_to_conv_weight(fc.weight.detach(), fc.in_features, 1, 1), fc.weight.requires_grad)
        conv.bias = fc.bias
        fcn = nn.Sequential(*body, conv)
    else:
        raise TypeError(
            f"cannot convolutionalize a {type(classifier).__name__}: expected an AlexNet/VGG-style model "
            "(features, avgpool, classifier) or a ResNet/GoogLeNet-style one (global avgpool, fc)"
        )
    return fcn.train(classifier.training)


class _GoogLeNetInput(nn.Module):
    """GoogLeNet's ``transform_input``: ImageNet normalisation to the (x - 0.5) / 0.5 its weights expect."""

    def forward(self, x):
        mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * std + mean - 0.5) / 0.5


def score_map(model, image, *, size=None) -> np.ndarray:
    """Class scores of a convolutionalized classifier: float32 array (classes, h, w).

    Examples
    --------
    >>> fcn = convolutionalize(build("resnet18", weights="random"))
    >>> score_map(fcn, np.zeros((64, 96, 3), np.uint8)).shape
    (1000, 2, 3)
    """
    model = _as_model(model)
    batch = to_batch(image, size=size)
    if batch.shape[0] != 1:
        raise ValueError(f"score_map takes one image; got a batch of {batch.shape[0]}")
    _check_input(model, batch)
    with torch.no_grad():
        scores = model(batch)
    if scores.ndim != 4:
        raise ValueError("the model does not output a score map (N, classes, h, w); convolutionalize it first")
    return scores[0].numpy()


def logit_difference(classifier, fcn, image, *, size=224) -> float:
    """Largest absolute difference between a classifier's logits and its convolutionalized version's.

    The score map of ``fcn`` is averaged over space (1 x 1 for AlexNet/VGG at 224).

    Examples
    --------
    >>> model = build("resnet18", weights="random")
    >>> logit_difference(model, convolutionalize(model), np.zeros((224, 224, 3), np.uint8)) < 1e-5
    True
    """
    batch = to_batch(image, size=size)
    _check_input(classifier, batch)
    with torch.no_grad():
        logits = classifier(batch)
        scores = fcn(batch).mean(dim=(2, 3))
    return float((logits - scores).abs().max())


# =========================================================================== residuals


def gradient_flow(depth=30, *, width=16, size=8, batch=16, seed=0) -> dict:
    """Gradient norms per layer of a deep plain network and of the same network with shortcuts.

    Both networks stack ``depth`` blocks ``conv 3x3 -> ReLU`` with PyTorch's
    default initialisation and no normalisation; the residual one adds each
    block's input to its output (``x + relu(conv(x))``). Both start from the
    *same* weights and see the same random batch; the loss is the mean square
    of the output. Without shortcuts the gradient shrinks layer after layer on
    its way back to the first layers; with them it reaches them.

    Parameters
    ----------
    depth : int
        Number of blocks (>= 2).
    width, size, batch : int
        Channels, image side and batch size of the synthetic input.
    seed : int

    Returns
    -------
    dict
        ``{"plain": ndarray (depth,), "residual": ndarray (depth,)}``: the norm
        of the gradient of each block's weights, first block first.

    Examples
    --------
    >>> flow = gradient_flow(depth=12, seed=0)
    >>> bool(flow["plain"][0] < 1e-3 * flow["plain"][-1]), bool(flow["residual"][0] > 0.1 * flow["residual"][-1])
    (True, True)
    """
    depth = as_int(depth, "depth", minimum=2)
    width = as_int(width, "width", minimum=1)
    size = as_int(size, "size", minimum=1)
    batch = as_int(batch, "batch", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        convs = [nn.Conv2d(width, width, 3, padding=1) for _ in range(depth)]
    x = torch.randn(batch, width, size, size, generator=generator)
    norms = {}
    from segtutor import training

    # tensors this small run slower split over threads, much slower on a busy CPU
    with training.cpu_threads(1):
        for kind in ("plain", "residual"):
            for conv in convs:
                conv.zero_grad()
            h = x
            for conv in convs:
                out = F.relu(conv(h))
                h = h + out if kind == "residual" else out
            loss = h.pow(2).mean()
            loss.backward()
            norms[kind] = np.array([float(conv.weight.grad.norm()) for conv in convs])
    return norms


# =========================================================================== exercise references


def _check_ints(**values):
    for name, (value, minimum) in values.items():
        as_int(value, name, minimum=minimum)


def output_size(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False) -> int:
    """Output length of a convolution or pooling window along one axis, as PyTorch computes it.

    ``floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1``; with
    ``ceil_mode`` the division rounds up, except that a last window that would
    start in the right padding is dropped.

    Parameters
    ----------
    size, kernel, stride, padding, dilation : int
    ceil_mode : bool
        Pooling only (GoogLeNet's max-pools use it).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If the input is too small for one window (the message says how small).

    Examples
    --------
    >>> output_size(224, 11, stride=4, padding=2)   # AlexNet's first convolution
    55
    >>> output_size(112, 3, stride=2, ceil_mode=True), output_size(112, 3, stride=2)
    (56, 55)
    """
    _check_ints(size=(size, 1), kernel=(kernel, 1), stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be True or False, got {_describe_value(ceil_mode)}")
    out = _window_size(int(size), int(kernel), int(stride), int(padding), int(dilation), bool(ceil_mode))
    if out < 1:
        span = int(dilation) * (int(kernel) - 1) + 1
        raise ValueError(
            f"an input of {size} pixels (+ {2 * padding} padding) is smaller than one window "
            f"of {span} pixels (kernel {kernel}, dilation {dilation})"
        )
    return int(out)


def stack_receptive_field(layers) -> tuple:
    """Receptive field and total stride of a stack of convolution/pooling layers.

    Each layer is ``(kernel, stride)`` or ``(kernel, stride, dilation)``. A layer
    widens the field by ``(kernel - 1) * dilation`` of *its input's* units, and
    each of those is ``jump`` input pixels apart, the product of the strides
    of the layers before it. Padding moves the field but does not change its size.

    Returns
    -------
    (int, int)
        ``(receptive_field, stride)`` in input pixels.

    Examples
    --------
    >>> stack_receptive_field([(3, 1), (3, 1), (3, 1)])   # VGG: three 3x3 see 7x7
    (7, 1)
    >>> stack_receptive_field([(11, 4), (3, 2)])          # AlexNet's conv1 + pool1
    (19, 8)
    """
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError("layers must be a list of (kernel, stride) or (kernel, stride, dilation) tuples, "
                        f"got {_describe_value(layers)}")
    field, jump = 1, 1
    for i, layer in enumerate(layers):
        if not isinstance(layer, (tuple, list)) or len(layer) not in (2, 3):
            raise ValueError(f"layers[{i}] must be (kernel, stride) or (kernel, stride, dilation); got {layer!r}")
        kernel, stride = layer[0], layer[1]
        dilation = layer[2] if len(layer) == 3 else 1
        _check_ints(kernel=(kernel, 1), stride=(stride, 1), dilation=(dilation, 1))
        field += (int(kernel) - 1) * int(dilation) * jump
        jump *= int(stride)
    return int(field), int(jump)


def conv_param_count(in_channels, out_channels, kernel_size, bias=True, groups=1) -> int:
    """Number of parameters of a ``torch.nn.Conv2d`` layer.

    Each of the ``out_channels`` filters has ``in_channels / groups`` x kh x kw
    weights, plus one bias.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    bias : bool
    groups : int
        Both channel counts must be divisible by it.

    Examples
    --------
    >>> conv_param_count(3, 64, 11)          # AlexNet's first layer
    23296
    >>> conv_param_count(64, 64, 3, bias=False)
    36864
    """
    _check_ints(in_channels=(in_channels, 1), out_channels=(out_channels, 1), groups=(groups, 1))
    kh, kw = _pair(kernel_size)
    _check_ints(kernel_height=(kh, 1), kernel_width=(kw, 1))
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False, got {_describe_value(bias)}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})"
        )
    return int(out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0))


def fc_to_conv_weight(weight, in_channels, height, width):
    """A fully connected layer's weight as the kernel of the equivalent convolution.

    A ``Linear`` layer on a flattened C x H x W feature map (flattened channel
    first, then rows, then columns, as ``torch.flatten`` does) computes the same
    as a convolution with an H x W kernel at the one position where it fits.

    Parameters
    ----------
    weight : ndarray or torch.Tensor (out_features, in_features)
        PyTorch's layout: one row per output unit.
    in_channels, height, width : int
        ``in_features`` must equal ``in_channels * height * width``.

    Returns
    -------
    ndarray or torch.Tensor (out_features, in_channels, height, width)
        Same type and dtype as ``weight`` (a view when possible).

    Examples
    --------
    >>> fc_to_conv_weight(np.arange(8.0).reshape(2, 4), 1, 2, 2)[1]
    array([[[4., 5.],
            [6., 7.]]])
    """
    _check_ints(in_channels=(in_channels, 1), height=(height, 1), width=(width, 1))
    if not isinstance(weight, torch.Tensor):
        if not isinstance(weight, np.ndarray):
            raise TypeError(f"weight must be a NumPy array or a torch tensor, got {_describe_value(weight)}")
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features); got shape {tuple(weight.shape)}")
    expected = in_channels * height * width
    if weight.shape[1] != expected:
        raise ValueError(
            f"weight has {weight.shape[1]} input features, but a {in_channels} x {height} x {width} map "
            f"flattens to {expected}"
        )
    return weight.reshape(weight.shape[0], in_channels, height, width)


# =========================================================================== plots


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def plot_comparison(infos, *, axes=None):
    """Two panels: ImageNet top-1 vs multiply-adds, and receptive field per stage vs stride.

    Parameters
    ----------
    infos : list of BackboneInfo
        From :func:`compare`.
    axes : pair of Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = plot_comparison(compare(["alexnet", "resnet18"]))
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['multiply-adds per 224x224 image (G, log scale)', 'stage (1 = nearest the input; see the table for the names)']
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    if isinstance(infos, BackboneInfo):
        infos = [infos]
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    else:
        fig = axes[0].figure
    ax_acc, ax_rf = axes
    for i, info in enumerate(infos):
        color = _MODEL_COLORS.get(info.name, _OKABE_ITO[i % len(_OKABE_ITO)])
        if info.top1 is not None:
            ax_acc.scatter(info.macs / 1e9, info.top1, s=30 + info.params / 1e6 * 3, color=color,
                           edgecolor="black", linewidth=0.6, zorder=3)
            offset, align = _LABEL_OFFSETS.get(info.name, ((10, -4), "left"))
            ax_acc.annotate(f"{info.name}\n{info.params / 1e6:.1f} M params", (info.macs / 1e9, info.top1),
                            textcoords="offset points", xytext=offset, ha=align, va="center", fontsize=8.5)
        stages = np.arange(1, len(info.stages) + 1)
        ax_rf.plot(stages, [s.receptive_field for s in info.stages], marker="o", color=color,
                   label=f"{info.name} (stride {info.stages[0].stride} -> {info.stages[-1].stride})")
    ax_acc.set_xscale("log")
    ax_acc.set_xlabel(f"multiply-adds per {infos[0].input_size}x{infos[0].input_size} image (G, log scale)")
    ax_acc.set_ylabel("ImageNet-1K top-1 accuracy (%)")
    ax_acc.set_title("accuracy vs cost (torchvision IMAGENET1K_V1 metadata)\nmarker area grows with parameters",
                     fontsize=10)
    low, high = ax_acc.get_xlim()
    ax_acc.set_xlim(low, high * 2.5)
    low, high = ax_acc.get_ylim()
    ax_acc.set_ylim(low - 1, high + 1)
    ax_acc.grid(alpha=0.3)
    size = infos[0].input_size
    ax_rf.axhline(size, color="0.4", linestyle="--", linewidth=1)
    ax_rf.text(1, size + 8, f"input size ({size} px)", color="0.3", fontsize=8.5)
    ax_rf.set_xticks(np.arange(1, max(len(i.stages) for i in infos) + 1))
    ax_rf.set_xlabel("stage (1 = nearest the input; see the table for the names)")
    ax_rf.set_ylabel("receptive field of one unit (px)")
    ax_rf.set_title("each stage sees more of the image", fontsize=10)
    ax_rf.legend(title="model (output stride, first -> last stage)", fontsize=8, title_fontsize=8.5)
    ax_rf.grid(alpha=0.3)
    return fig


def plot_gradient_flow(flow, *, ax=None):
    """Gradient norm per layer, relative to the last layer's, for :func:`gradient_flow`'s two networks.

    Dividing by the last layer's norm compares how much of the gradient *reaches*
    each layer, whatever the scale of each network's output (log scale).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ax = plot_gradient_flow(gradient_flow(depth=6))
    >>> [line.get_label() for line in ax.get_lines()]
    ['plain: conv -> ReLU', 'residual: x + ReLU(conv(x))']
    >>> plt.close(ax.figure)
    """
    if not isinstance(flow, Mapping) or not {"plain", "residual"} <= set(flow):
        raise TypeError("flow must be the dict returned by gradient_flow()")
    ax = _axes(ax, (6.5, 3.6))
    layers = np.arange(1, len(flow["plain"]) + 1)
    for kind, label, color, marker in (("plain", "plain: conv -> ReLU", _OKABE_ITO[4], "o"),
                                       ("residual", "residual: x + ReLU(conv(x))", _OKABE_ITO[3], "s")):
        norms = np.asarray(flow[kind], dtype=float)
        ax.semilogy(layers, norms / norms[-1], marker=marker, markersize=3.5, color=color, label=label)
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel("gradient norm / last layer's")
    ax.set_title(f"how much gradient reaches each of {len(layers)} layers (same initial weights)", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3, which="major")
    return ax


def plot_receptive_field_probe(model, layer, *, size=224, image=None, ax=None):
    """Draw the measured receptive field of the centre unit of ``layer`` and the computed square.

    The panel shows the input gradient of the unit (:func:`receptive_field_probe`,
    log colour scale) over the image, and the receptive field that
    :func:`layer_geometry` computes from the layers as a dashed square.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ax = plot_receptive_field_probe("resnet18", "layer1", size=64)
    >>> ax.get_title().splitlines()[1]
    'computed 43 px, measured 43 px'
    >>> plt.close(ax.figure)
    """
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    model = _as_model(model)
    size = _size_pair(size)
    probe = receptive_field_probe(model, layer, size=size)
    geo = layer_geometry(model, [layer], size=size)[layer]
    (top, bottom), (left, right) = geo.window(probe["units"][0])
    ax = _axes(ax, (4.8, 4.6))
    if image is not None:
        shown = np.asarray(image)
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, extent=(-0.5, size[1] - 0.5, size[0] - 0.5, -0.5))
    gradient = probe["gradient"][0]
    masked = np.ma.masked_less_equal(gradient, 0)
    shown = ax.imshow(masked, cmap="viridis", norm=LogNorm(vmin=masked.min(), vmax=masked.max()),
                      alpha=0.75 if image is not None else 1.0, interpolation="nearest")
    colorbar = ax.figure.colorbar(shown, ax=ax, shrink=0.8, label="input gradient of the unit (log scale)")
    colorbar.minorticks_off()
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                           edgecolor="#E69F00", linestyle="--", linewidth=1.8, label="computed receptive field"))
    ax.set_xlim(-0.5, size[1] - 0.5)
    ax.set_ylim(size[0] - 0.5, -0.5)
    (mt, mb), (ml, mr) = probe["boxes"][0]
    ax.set_title(f"{layer}, unit {probe['units'][0]}: receptive field\n"
                 f"computed {geo.receptive_field[0]} px, measured {mb - mt + 1} px", fontsize=10)
    ax.set_xlabel("input column (px)")
    ax.set_ylabel("input row (px)")
    ax.legend(loc="lower left", fontsize=8)
    return ax


def plot_feature_maps(maps, *, channels=6, image=None):
    """A grid of feature maps: one row per layer, its first ``channels`` channels.

    The first column names each row (layer, channels x rows x columns); with
    ``image``, a first row shows the input. Each map has its own colour range
    (viridis: dark is the channel's lowest value, yellow its highest).

    Parameters
    ----------
    maps : dict
        From :func:`feature_maps` (the first image of the batch is shown).
    channels : int
    image : ndarray, optional
        The input, shown in a first row.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> maps = {"a": torch.rand(1, 4, 8, 8), "b": torch.rand(1, 8, 4, 4)}
    >>> fig = plot_feature_maps(maps, channels=3)
    >>> len([ax for ax in fig.axes if ax.images])
    6
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    if not isinstance(maps, Mapping) or not maps:
        raise TypeError("maps must be a non-empty dict {layer: tensor (N, C, h, w)} from feature_maps()")
    channels = as_int(channels, "channels", minimum=1)
    arrays = {}
    for layer, tensor in maps.items():
        values = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
        if values.ndim != 4:
            raise ValueError(f"maps[{layer!r}] must be (N, C, h, w); got shape {values.shape}")
        arrays[str(layer)] = values[0]
    rows = ([("input", None)] if image is not None else []) + list(arrays.items())
    first = next(iter(arrays.values()))
    aspect = min(max(first.shape[1] / first.shape[2], 0.4), 1.5)
    panel = 1.55
    figsize = (panel * (channels + 0.8), (panel * aspect + 0.32) * len(rows))
    fig, axes = plt.subplots(len(rows), channels + 1, figsize=figsize, squeeze=False, gridspec_kw={"width_ratios": [0.8] + [1] * channels, "left": 0.01,
                                                         "right": 0.99, "top": 0.97, "bottom": 0.01,
                                                         "wspace": 0.06, "hspace": 0.3})
    for ax in axes.flat:
        ax.set_axis_off()
    for row, (layer, values) in enumerate(rows):
        if values is None:
            shown = np.asarray(image)
            axes[row, 0].text(0.5, 0.5, f"input\n{shown.shape[0]} x {shown.shape[1]}", ha="center", va="center",
                              fontsize=9, transform=axes[row, 0].transAxes)
            axes[row, 1].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
            continue
        c_, h_, w_ = values.shape
        axes[row, 0].text(0.5, 0.5, f"{layer}\n{c_} x {h_} x {w_}", ha="center", va="center", fontsize=9,
                          transform=axes[row, 0].transAxes)
        for c in range(min(channels, c_)):
            ax = axes[row, c + 1]
            ax.imshow(values[c], cmap="viridis", interpolation="nearest")
            ax.set_title(f"channel {c}", fontsize=8)
    return fig


def plot_score_map(scores, image, class_index, *, categories=None):
    """An image and the score map of one class, its cells stretched over the image.

    Parameters
    ----------
    scores : ndarray (classes, h, w)
        From :func:`score_map`.
    image : ndarray (H, W, 3)
        The image the scores were computed on, at the same size.
    class_index : int
    categories : sequence of str, optional
        Class names (default :func:`imagenet_categories` for 1000 classes).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = plot_score_map(np.zeros((1000, 2, 3)), np.zeros((64, 96, 3)), 281)
    >>> fig.axes[1].get_title().splitlines()[0]
    "score of class 281 'tabby'"
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    scores = np.asarray(scores)
    if scores.ndim != 3:
        raise ValueError(f"scores must be (classes, h, w); got shape {scores.shape}")
    class_index = as_int(class_index, "class_index", minimum=0, maximum=scores.shape[0] - 1)
    if categories is None and scores.shape[0] == 1000:
        categories = imagenet_categories()
    label = f"class {class_index}" + (f" '{categories[class_index]}'" if categories is not None else "")
    image = np.asarray(image)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    axes[0].imshow(image)
    axes[0].set_title(f"image ({image.shape[0]} x {image.shape[1]} px)")
    axes[0].axis("off")
    shown = axes[1].imshow(scores[class_index], cmap="viridis", interpolation="nearest",
                           extent=(0, image.shape[1], image.shape[0], 0))
    axes[1].imshow(image, alpha=0.25, extent=(0, image.shape[1], image.shape[0], 0))
    axes[1].set_title(f"score of {label}\n{scores.shape[1]} x {scores.shape[2]} positions, stretched over the image")
    axes[1].axis("off")
    fig.colorbar(shown, ax=axes[1], shrink=0.85, label="class score (logit)")
    return fig
