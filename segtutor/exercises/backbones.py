"""Exercises on :mod:`segtutor.backbones` (lesson 03).

Four small functions a learner writes before the lesson measures real networks:
the output size of a convolution or pooling layer, the receptive field of a stack
of layers, the parameter count of a convolution, and a fully connected layer's
weight turned into a convolution kernel. Each exercise keeps a catalogue of
plausible wrong answers (:class:`~segtutor.exercises._core.WrongAnswer`); the
test suite proves that the visible cases reject each one with a message that
points at the mistake.

This module imports neither torch nor :mod:`segtutor.backbones` at import time;
the references are imported when a check first runs.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._core import Case, Exercise, WrongAnswer, register
from .compare import describe_value


# The functions are plain NumPy, but the clean room also runs the lesson's imports (torch,
# torchvision), which take a while on a busy grading machine.
_LIMITS = {"timeout": 120}


# --------------------------------------------------------------------------- comparators


def _is_whole_number(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def whole_number(unit: str = "window"):
    """Comparator for counts: an ``int`` equal to the reference.

    A float, even ``28.0``, is refused: sizes and counts are whole numbers, and
    PyTorch refuses a float where it wants a size. A difference of one is named
    (``one window too few``).

    Examples
    --------
    >>> whole_number()(28, 27, None)
    'expected 28, got 27 (one window too few)'
    >>> whole_number()(28, 28.0, None)
    'expected a whole number (int) 28, got float 28.0 (true division / gives a float; use //)'
    """

    def compare(expected, got, case=None):
        if not _is_whole_number(got):
            extra = " (true division / gives a float; use //)" if isinstance(got, (float, np.floating)) else ""
            shown = repr(float(got)) if isinstance(got, (float, np.floating)) else describe_value(got)
            return f"expected a whole number (int) {expected}, got {type(got).__name__} {shown}{extra}"
        got = int(got)
        if got == expected:
            return None
        diff = got - expected
        if abs(diff) == 1:
            return f"expected {expected}, got {got} (one {unit} too {'many' if diff > 0 else 'few'})"
        return f"expected {expected}, got {got} ({abs(diff)} {'more' if diff > 0 else 'fewer'})"

    return compare


def field_and_stride(expected, got, case=None):
    """Comparator for ``(receptive_field, stride)`` pairs of ints, each named in the message.

    Examples
    --------
    >>> field_and_stride((8, 2), (8, 1))
    'total stride: expected 2, got 1'
    """
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"expected a pair (receptive_field, stride), got {describe_value(got)}"
    reasons = []
    for what, want, have in (("receptive field", expected[0], got[0]), ("total stride", expected[1], got[1])):
        if not _is_whole_number(have):
            shown = repr(float(have)) if isinstance(have, (float, np.floating)) else describe_value(have)
            reasons.append(f"{what}: expected a whole number (int) {want}, got {type(have).__name__} {shown}")
        elif int(have) != want:
            reasons.append(f"{what}: expected {want}, got {int(have)}")
    return "; ".join(reasons) or None


def same_kernel(expected, got, case=None):
    """Comparator for a weight array: same shape, same dtype, same values (a reshape is exact).

    Examples
    --------
    >>> same_kernel(np.zeros((1, 2, 1, 1)), np.zeros((1, 2)))
    'expected shape (1, 2, 1, 1) (out, in_channels, height, width), got shape (1, 2)'
    """
    if not isinstance(got, np.ndarray):
        return f"expected a NumPy array of shape {expected.shape}, got {describe_value(got)}"
    if got.shape != expected.shape:
        return f"expected shape {expected.shape} (out, in_channels, height, width), got shape {got.shape}"
    if got.dtype != expected.dtype:
        return f"expected dtype {expected.dtype} (the weight's own dtype), got dtype {got.dtype}"
    differ = got != expected
    if not differ.any():
        return None
    index = tuple(int(i) for i in np.argwhere(differ)[0])
    return (f"{int(differ.sum())} of {expected.size} weights are in the wrong place; e.g. at "
            f"[out, channel, row, col] = {list(index)} expected {expected[index]:g}, got {got[index]:g}")


# --------------------------------------------------------------------------- output size


def _output_size_cases(rng, hidden):
    if not hidden:
        return [
            Case("5x5 kernel, stride 1, no padding, 32 pixels", (32, 5)),
            Case("AlexNet conv1: 11x11, stride 4, padding 2 on each side", (224, 11), {"stride": 4, "padding": 2}),
            Case("3x3 'same' convolution: padding 1 on each side", (56, 3), {"stride": 1, "padding": 1}),
            Case("stride 2 that does not divide evenly: round down", (8, 3), {"stride": 2}),
            Case("dilation 2: a 3x3 kernel spans 5 pixels", (32, 3), {"dilation": 2}),
            Case("ceil mode rounds up (GoogLeNet's max-pools)", (112, 3), {"stride": 2, "ceil_mode": True}),
            Case("ceil mode, but a last window that would start in the right padding is dropped",
                 (5, 2), {"stride": 2, "padding": 1, "ceil_mode": True}),
        ]
    cases = []
    while len(cases) < 8:
        kernel = int(rng.integers(1, 8))
        stride = int(rng.integers(1, 5))
        dilation = int(rng.integers(1, 4))
        ceil_mode = bool(rng.random() < 0.4)
        padding = int(rng.integers(0, kernel // 2 + 1))
        size = int(rng.integers(dilation * (kernel - 1) + 1, 80))
        kwargs = {"stride": stride, "padding": padding, "dilation": dilation}
        if ceil_mode:
            kwargs["ceil_mode"] = True
        cases.append(Case("random", (size, kernel), kwargs))
    return cases


def _wa_no_plus_one(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride


def _wa_no_dilation(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False):
    span = size + 2 * padding - kernel
    out = -(-span // stride) + 1 if ceil_mode else span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _wa_padding_once(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False):
    span = size + padding - dilation * (kernel - 1) - 1
    out = -(-span // stride) + 1 if ceil_mode else span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _wa_true_division(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False):
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
    return math.ceil(out) if ceil_mode else out


def _wa_always_floor(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _wa_ceil_without_last_window_rule(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False):
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    return (math.ceil(span / stride) if ceil_mode else span // stride) + 1


register(Exercise(
    id="backbones.output_size",
    title="output size of a convolution or pooling layer",
    reference="segtutor.backbones.output_size",
    make_cases=_output_size_cases,
    compare=whole_number("window"),
    hint=(
        "count the positions where the window fits: the padded input has size + 2*padding pixels and a "
        "dilated kernel spans dilation*(kernel - 1) + 1 of them; the window moves by stride.",
        "in ceil mode, round the division up, then drop the last window if it would start at or beyond "
        "size + padding (entirely in the right padding).",
    ),
    limits=_LIMITS,
    wrong_answers=(
        WrongAnswer("counts the steps, not the positions (no + 1)", _wa_no_plus_one, r"one window too few"),
        WrongAnswer("forgets the dilation", _wa_no_dilation, r"case 'dilation 2"),
        WrongAnswer("pads one side only", _wa_padding_once, r"padding \d on each side"),
        WrongAnswer("true division returns a float", _wa_true_division, r"whole number \(int\).*use //"),
        WrongAnswer("ignores ceil mode", _wa_always_floor, r"case 'ceil mode rounds up"),
        WrongAnswer("ceil mode without dropping a window that starts in the padding",
                    _wa_ceil_without_last_window_rule, r"start in the right padding"),
    ),
))


# --------------------------------------------------------------------------- receptive field of a stack


def _stack_cases(rng, hidden):
    if not hidden:
        return [
            Case("one 3x3 conv", ([(3, 1)],)),
            Case("a 2x2 pool with stride 2: its own stride does not widen its field", ([(2, 2)],)),
            Case("three 3x3 convs (VGG): the field of one 7x7", ([(3, 1), (3, 1), (3, 1)],)),
            Case("3x3 conv, 2x2 pool with stride 2, 3x3 conv: the pool spaces out the next layer's inputs",
                 ([(3, 1), (2, 2), (3, 1)],)),
            Case("a 3x3 conv with dilation 2", ([(3, 1, 2)],)),
            Case("AlexNet's conv1 (11x11, stride 4) and pool1 (3x3, stride 2)", ([(11, 4), (3, 2)],)),
            Case("no layers: a pixel sees itself", ([],)),
        ]
    cases = []
    for n in (3, 5, 8, 1, 12):
        layers = []
        for _ in range(n):
            kernel, stride = int(rng.integers(1, 8)), int(rng.integers(1, 4))
            layers.append((kernel, stride, int(rng.integers(1, 4))) if rng.random() < 0.3 else (kernel, stride))
        cases.append(Case("random", (layers,)))
    return cases


def _layer(layer):
    return layer[0], layer[1], (layer[2] if len(layer) == 3 else 1)


def _wa_no_jump(layers):
    field, jump = 1, 1
    for layer in layers:
        kernel, stride, dilation = _layer(layer)
        field += (kernel - 1) * dilation
        jump *= stride
    return field, jump


def _wa_jump_too_early(layers):
    field, jump = 1, 1
    for layer in layers:
        kernel, stride, dilation = _layer(layer)
        jump *= stride
        field += (kernel - 1) * dilation * jump
    return field, jump


def _wa_sum_of_kernels(layers):
    field, jump = 0, 1
    for layer in layers:
        kernel, stride, dilation = _layer(layer)
        field += dilation * (kernel - 1) + 1
        jump *= stride
    return max(field, 1), jump


def _wa_last_stride(layers):
    field, jump = 1, 1
    for layer in layers:
        kernel, stride, dilation = _layer(layer)
        field += (kernel - 1) * dilation * jump
        jump *= stride
    return field, (_layer(layers[-1])[1] if layers else 1)


def _wa_no_dilation_stack(layers):
    field, jump = 1, 1
    for layer in layers:
        kernel, stride, _ = _layer(layer)
        field += (kernel - 1) * jump
        jump *= stride
    return field, jump


def _wa_starts_at_zero(layers):
    field, jump = 0, 1
    for i, layer in enumerate(layers):
        kernel, stride, dilation = _layer(layer)
        field += (kernel - 1) * dilation * jump + (1 if i == 0 else 0)
        jump *= stride
    return field, jump


def _wa_float_stride(layers):
    field, jump = 1.0, 1.0
    for layer in layers:
        kernel, stride, dilation = _layer(layer)
        field += (kernel - 1) * dilation * jump
        jump *= float(stride)
    return field, jump


register(Exercise(
    id="backbones.stack_receptive_field",
    title="receptive field of a stack of layers",
    reference="segtutor.backbones.stack_receptive_field",
    make_cases=_stack_cases,
    compare=field_and_stride,
    hint=(
        "walk the layers from the input: each one widens the field by (kernel - 1) * dilation of its *input's* "
        "units, and neighbouring input units are `jump` pixels apart.",
        "keep two numbers, field = 1 and jump = 1; per layer, first field += (kernel - 1) * dilation * jump, "
        "then jump *= stride.",
    ),
    limits=_LIMITS,
    wrong_answers=(
        WrongAnswer("forgets that earlier strides space out the units", _wa_no_jump, r"spaces out"),
        WrongAnswer("multiplies in a layer's own stride before widening", _wa_jump_too_early, r"its own stride"),
        WrongAnswer("adds up the kernel sizes", _wa_sum_of_kernels, r"three 3x3 convs"),
        WrongAnswer("returns the last layer's stride, not the product", _wa_last_stride,
                    r"total stride: expected 2, got 1"),
        WrongAnswer("forgets the dilation", _wa_no_dilation_stack, r"case 'a 3x3 conv with dilation 2"),
        WrongAnswer("starts from 0 pixels", _wa_starts_at_zero, r"no layers"),
        WrongAnswer("returns floats", _wa_float_stride, r"whole number \(int\)"),
    ),
))


# --------------------------------------------------------------------------- parameters of a convolution


def _param_cases(rng, hidden):
    if not hidden:
        return [
            Case("one filter, 1 input channel, 3x3, no bias: just the kernel", (1, 1, 3), {"bias": False}),
            Case("3 input channels, no bias: each filter spans all of them", (3, 1, 3), {"bias": False}),
            Case("a bias per filter: AlexNet conv1, 3 -> 64 channels, 11x11", (3, 64, 11)),
            Case("VGG convolution: 64 -> 128 channels, 3x3", (64, 128, 3)),
            Case("1x1 bottleneck (GoogLeNet, ResNet): 256 -> 64 channels", (256, 64, 1)),
            Case("rectangular 1x7 kernel: kh x kw weights per channel", (32, 48, (1, 7))),
            Case("groups=2: each filter sees in_channels / groups channels", (96, 256, 5), {"groups": 2}),
        ]
    cases = []
    for _ in range(6):
        groups = int(rng.choice([1, 1, 2, 4]))
        in_channels = groups * int(rng.integers(1, 65))
        out_channels = groups * int(rng.integers(1, 65))
        kernel = (int(rng.integers(1, 8)), int(rng.integers(1, 8))) if rng.random() < 0.3 else int(rng.integers(1, 8))
        cases.append(Case("random", (in_channels, out_channels, kernel),
                          {"bias": bool(rng.random() < 0.6), "groups": groups}))
    return cases


def _kernel_area(kernel_size):
    if isinstance(kernel_size, (tuple, list)):
        return kernel_size[0] * kernel_size[1]
    return kernel_size * kernel_size


def _wa_forgets_bias(in_channels, out_channels, kernel_size, bias=True, groups=1):
    return out_channels * (in_channels // groups) * _kernel_area(kernel_size)


def _wa_bias_per_input(in_channels, out_channels, kernel_size, bias=True, groups=1):
    return out_channels * (in_channels // groups) * _kernel_area(kernel_size) + (in_channels if bias else 0)


def _wa_ignores_bias_flag(in_channels, out_channels, kernel_size, bias=True, groups=1):
    return out_channels * (in_channels // groups) * _kernel_area(kernel_size) + out_channels


def _wa_ignores_in_channels(in_channels, out_channels, kernel_size, bias=True, groups=1):
    return out_channels * _kernel_area(kernel_size) + (out_channels if bias else 0)


def _wa_square_kernel(in_channels, out_channels, kernel_size, bias=True, groups=1):
    side = kernel_size[-1] if isinstance(kernel_size, (tuple, list)) else kernel_size
    return out_channels * (in_channels // groups) * side * side + (out_channels if bias else 0)


def _wa_ignores_groups(in_channels, out_channels, kernel_size, bias=True, groups=1):
    return out_channels * in_channels * _kernel_area(kernel_size) + (out_channels if bias else 0)


def _wa_float_count(in_channels, out_channels, kernel_size, bias=True, groups=1):
    return out_channels * in_channels / groups * _kernel_area(kernel_size) + (out_channels if bias else 0)


register(Exercise(
    id="backbones.conv_param_count",
    title="parameters of a convolution layer",
    reference="segtutor.backbones.conv_param_count",
    make_cases=_param_cases,
    compare=whole_number("parameter"),
    hint=(
        "count one filter's weights (how many input channels does it see, and how many kernel positions?), "
        "multiply by the number of filters, then add the biases.",
        "kernel_size may be an int or a pair (kh, kw); with groups, a filter sees in_channels // groups channels; "
        "bias=True adds one number per filter.",
    ),
    limits=_LIMITS,
    wrong_answers=(
        WrongAnswer("forgets the biases", _wa_forgets_bias, r"a bias per filter"),
        WrongAnswer("one bias per input channel", _wa_bias_per_input, r"a bias per filter"),
        WrongAnswer("adds biases when bias=False", _wa_ignores_bias_flag, r"no bias: just the kernel"),
        WrongAnswer("forgets the input channels", _wa_ignores_in_channels, r"each filter spans all of them"),
        WrongAnswer("assumes a square kernel", _wa_square_kernel, r"rectangular 1x7 kernel"),
        WrongAnswer("ignores groups", _wa_ignores_groups, r"groups=2"),
        WrongAnswer("returns a float", _wa_float_count, r"whole number \(int\)"),
    ),
))


# --------------------------------------------------------------------------- fully connected -> convolution


def _fc_case(name, rng, out_features, channels, height, width, dtype=np.float32):
    weight = np.arange(out_features * channels * height * width, dtype=dtype).reshape(out_features, -1)
    if rng is not None:
        weight = rng.normal(size=weight.shape).astype(dtype)
    return Case(name, (weight, channels, height, width))


def _fc_cases(rng, hidden):
    if not hidden:
        return [
            _fc_case("one input channel: the rows of the weight are the output units", None, 3, 1, 2, 2),
            _fc_case("3 channels of 2x2: features flattened as (channel, row, column)", None, 2, 3, 2, 2),
            _fc_case("a 2x3 map: height before width", None, 4, 2, 2, 3),
            _fc_case("float64 weights stay float64", None, 2, 2, 2, 2, np.float64),
            _fc_case("a 1x1 map: the equivalent of a 1x1 convolution", None, 5, 3, 1, 1),
            _fc_case("AlexNet-sized: 10 classes from a 256 x 6 x 6 map", rng, 10, 256, 6, 6),
        ]
    cases = []
    for _ in range(4):
        channels, height, width = (int(v) for v in rng.integers(1, 9, size=3))
        dtype = np.float32 if rng.random() < 0.7 else np.float64
        cases.append(_fc_case("random", rng, int(rng.integers(1, 12)), channels, height, width, dtype))
    return cases


def _wa_channels_last(weight, in_channels, height, width):
    return weight.reshape(weight.shape[0], height, width, in_channels).transpose(0, 3, 1, 2)


def _wa_width_first(weight, in_channels, height, width):
    return weight.reshape(weight.shape[0], in_channels, width, height)


def _wa_transposed(weight, in_channels, height, width):
    return weight.T.reshape(weight.shape[0], in_channels, height, width)


def _wa_float32(weight, in_channels, height, width):
    return weight.reshape(weight.shape[0], in_channels, height, width).astype(np.float32)


def _wa_unchanged(weight, in_channels, height, width):
    return weight


def _wa_column_major(weight, in_channels, height, width):
    return weight.reshape(weight.shape[0], in_channels, height, width, order="F")


register(Exercise(
    id="backbones.fc_to_conv_weight",
    title="a fully connected layer's weight as a convolution kernel",
    reference="segtutor.backbones.fc_to_conv_weight",
    make_cases=_fc_cases,
    compare=same_kernel,
    hint=(
        "each output unit (a row of the weight) holds one weight per input feature, and the features are the "
        "C x H x W map flattened channel first, then row, then column; give every row that shape.",
        "NumPy's reshape reads and writes in row-major (C) order, the same order torch.flatten used; "
        "the result has shape (out_features, in_channels, height, width).",
    ),
    limits=_LIMITS,
    wrong_answers=(
        WrongAnswer("channels-last flattening", _wa_channels_last, r"flattened as \(channel, row, column\)"),
        WrongAnswer("width before height", _wa_width_first, r"height before width"),
        WrongAnswer("reads the weight as (in_features, out_features)", _wa_transposed,
                    r"rows of the weight are the output units"),
        WrongAnswer("casts to float32", _wa_float32, r"float64 weights stay float64"),
        WrongAnswer("returns the weight unchanged", _wa_unchanged, r"expected shape \(3, 1, 2, 2\)"),
        WrongAnswer("column-major reshape", _wa_column_major, r"flattened as \(channel, row, column\)"),
    ),
))
