"""Exercises on :mod:`segtutor.fcn` (lesson 04).

Three pieces of an FCN a learner writes before training one: the bilinear kernel
that initialises the upsampling layers, the output size of a transposed
convolution, and the skip that fuses coarse scores with finer ones (an
``nn.Module``, graded through ``invoke``). Each exercise keeps a catalogue of
plausible wrong answers (:class:`~segtutor.exercises._core.WrongAnswer`); the test
suite proves that the visible cases reject each one with a message that points at
the mistake.

This module imports neither torch nor :mod:`segtutor.fcn` at import time.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._core import Case, Exercise, WrongAnswer, register
from .compare import describe_value, explain, tensor_close


# =========================================================================== the bilinear kernel


def _tent(size):
    """The 1-D bilinear weights, written out from their definition (independent of the library)."""
    factor = (size + 1) // 2
    centre = (size - 1) / 2  # the middle of the kernel, between two taps when size is even
    return np.array([max(0.0, 1 - abs(i - centre) / factor) for i in range(size)])


def kernel_compare(expected, got, case=None):
    """Comparator for a bilinear kernel: a 2-D float array, symmetric, separable, with the right taps.

    Examples
    --------
    >>> kernel_compare(np.ones((2, 2)), np.ones(2))
    'expected a 2-D array of shape (2, 2), got shape (2,): that is a 1-D tent; the kernel is the outer product of the tent with itself'
    """
    if not isinstance(got, np.ndarray):
        return f"expected a NumPy array of shape {expected.shape}, got {describe_value(got)}"
    if got.shape != expected.shape:
        extra = ""
        if got.ndim == 1 and got.shape == expected.shape[:1]:
            extra = ": that is a 1-D tent; the kernel is the outer product of the tent with itself"
        return f"expected a 2-D array of shape {expected.shape}, got shape {got.shape}{extra}"
    if got.dtype.kind != "f":
        return (f"expected floating-point weights, got dtype {got.dtype} (integer arithmetic rounds the "
                "fractions away; compute with floats)")
    if not np.isfinite(got).all():
        return "your kernel contains NaN or inf"
    if np.allclose(got, expected, rtol=1e-9, atol=1e-12):
        return None
    size = expected.shape[0]
    if not np.allclose(got, got[::-1, ::-1], atol=1e-9):
        peak = tuple(int(i) for i in np.unravel_index(np.argmax(got), got.shape))
        return (f"your kernel is not symmetric: its largest tap is at {peak}, but the kernel is centred on "
                f"({(size - 1) / 2:g}, {(size - 1) / 2:g}) (between two taps when the size is even)")
    if np.isclose(got.sum(), 1) and not np.isclose(expected.sum(), 1):
        return (f"your kernel sums to 1, expected {expected.sum():g} = factor ** 2: a stride-factor transposed "
                "convolution adds factor ** 2 taps into each output pixel, one from each of its neighbours; "
                "do not normalise the kernel")
    singular = np.linalg.svd(got, compute_uv=False)
    if singular.size > 1 and singular[1] > 1e-9 * max(singular[0], 1e-12):
        return ("your kernel is not separable: bilinear weights are a product (tent along the rows) x "
                "(tent along the columns), not a sum or a distance from the centre")
    row = got[size // 2] / np.sqrt(max(got[size // 2, size // 2], 1e-300))
    want = expected[size // 2] / np.sqrt(expected[size // 2, size // 2])
    if size > 2:
        i = size // 2  # the first tap right of the centre line, and its neighbour further out
        slope, wanted = abs(row[i] - row[i + 1]), abs(want[i] - want[i + 1])
        if not np.isclose(slope, wanted, rtol=1e-6):
            return (f"your tent falls by {slope:.4g} per pixel away from the centre; bilinear weights fall by "
                    f"1 / factor = {wanted:.4g} per pixel (factor = (size + 1) // 2)")
    differ = ~np.isclose(got, expected, rtol=1e-9, atol=1e-12)
    index = tuple(int(i) for i in np.argwhere(differ)[0])
    return f"{int(differ.sum())} of {expected.size} taps differ; e.g. at {index} expected {expected[index]:.6g}, got {got[index]:.6g}"


def _kernel_cases(rng, hidden):
    if not hidden:
        return [
            Case("factor 2: a 4x4 kernel", (4,)),
            Case("odd size 3: the centre is a tap", (3,)),
            Case("factor 8: the 16x16 kernel of FCN-8s's last upsampling", (16,)),
            Case("size 1: a single tap", (1,)),
            Case("odd size 5", (5,)),
        ]
    return [Case("random", (int(s),)) for s in rng.choice(np.arange(2, 65), size=5, replace=False)]


def _wa_centre_half_size(size):
    factor = (size + 1) // 2
    centre = size // 2
    og = np.ogrid[:size, :size]
    return (1 - abs(og[0] - centre) / factor) * (1 - abs(og[1] - centre) / factor)


def _wa_normalised(size):
    tent = _tent(size)
    kernel = np.outer(tent, tent)
    return kernel / kernel.sum()


def _wa_one_dimensional(size):
    return _tent(size)


def _wa_cone(size):
    factor = (size + 1) // 2
    centre = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    return np.clip(1 - np.hypot(yy - centre, xx - centre) / factor, 0, None)


def _wa_divides_by_size(size):
    centre = (size - 1) / 2
    tent = 1 - np.abs(np.arange(size) - centre) / size
    return np.outer(tent, tent)


def _wa_integer_grid(size):
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return (factor - abs(og[0] - centre)) * (factor - abs(og[1] - centre)) // (factor * factor)


register(Exercise(
    id="fcn.bilinear_kernel",
    title="the bilinear upsampling kernel",
    reference="segtutor.fcn.bilinear_kernel",
    make_cases=_kernel_cases,
    compare=kernel_compare,
    hint=(
        "an output pixel takes from each nearby input pixel a weight that falls linearly with the distance "
        "(a 'tent') along each axis; the 2-D weight is the product of the two tents.",
        "factor = (size + 1) // 2; the centre is factor - 1 for an odd size and factor - 0.5 for an even one; "
        "np.ogrid[:size, :size] gives row and column indices to broadcast.",
    ),
    wrong_answers=(
        WrongAnswer("centre at size // 2", _wa_centre_half_size, r"not symmetric"),
        WrongAnswer("normalised to sum 1", _wa_normalised, r"sums to 1"),
        WrongAnswer("returns the 1-D tent", _wa_one_dimensional, r"1-D tent"),
        WrongAnswer("a cone (distance from the centre)", _wa_cone, r"not separable"),
        WrongAnswer("divides by size instead of factor", _wa_divides_by_size, r"falls by .* per pixel"),
        WrongAnswer("integer arithmetic", _wa_integer_grid, r"floating-point"),
    ),
))


# =========================================================================== transposed convolution size


def _is_whole_number(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def pixel_count(expected, got, case=None):
    """Comparator for sizes: an ``int`` equal to the reference (a float, even ``16.0``, is refused).

    Examples
    --------
    >>> pixel_count(16, 15)
    'expected 16, got 15 (one pixel too few)'
    >>> pixel_count(16, 16.0)
    'expected a whole number (int) 16, got float 16.0'
    """
    if not _is_whole_number(got):
        shown = repr(float(got)) if isinstance(got, (float, np.floating)) else describe_value(got)
        return f"expected a whole number (int) {expected}, got {type(got).__name__} {shown}"
    diff = int(got) - expected
    if diff == 0:
        return None
    if abs(diff) == 1:
        return f"expected {expected}, got {int(got)} (one pixel too {'many' if diff > 0 else 'few'})"
    return f"expected {expected}, got {int(got)} ({abs(diff)} pixels too {'many' if diff > 0 else 'few'})"


def _size_parts(size, kernel_size, stride=1, padding=0, output_padding=0):
    return size, kernel_size, stride, padding, output_padding


def _mistake(formula):
    def make(*args, **kwargs):
        return formula(*_size_parts(*args, **kwargs))
    return make


_SIZE_MISTAKES = (
    ("that is the output size of a forward convolution, which shrinks its input; a transposed convolution "
     "enlarges it", _mistake(lambda n, k, s, p, op: (n + 2 * p - k) // s + 1)),
    ("padding removes pixels from both ends of a transposed convolution's output",
     _mistake(lambda n, k, s, p, op: (n - 1) * s - p + k + op)),
    ("padding removes pixels from a transposed convolution's output (it adds them to a convolution's input)",
     _mistake(lambda n, k, s, p, op: (n - 1) * s + 2 * p + k + op)),
    ("output_padding adds pixels at one end", _mistake(lambda n, k, s, p, op: (n - 1) * s - 2 * p + k)),
    ("kernel_size and stride are swapped", _mistake(lambda n, k, s, p, op: (n - 1) * k - 2 * p + s + op)),
    ("the windows of n input pixels start at 0, s, ..., (n - 1) * s: there are n - 1 strides, not n",
     _mistake(lambda n, k, s, p, op: n * s - 2 * p + k + op)),
)


def _size_cases(rng, hidden):
    if not hidden:
        return [
            Case("stride 1, no padding: the kernel adds kernel_size - 1 pixels", (5, 3)),
            Case("kernel 4, stride 2, padding 1 on each side: exactly twice the size", (8, 4), {"stride": 2, "padding": 1}),
            Case("FCN-32s: kernel 64, stride 32, no padding", (2, 64), {"stride": 32}),
            Case("padding 2 on each side", (10, 5), {"padding": 2}),
            Case("output_padding 1 adds one pixel at one end", (7, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
            Case("one input pixel: the output is one kernel", (1, 16), {"stride": 8}),
        ]
    cases = []
    while len(cases) < 8:
        stride = int(rng.integers(1, 9))
        kernel = int(rng.integers(1, 2 * stride + 3))
        padding = int(rng.integers(0, kernel // 2 + 1))
        output_padding = int(rng.integers(0, stride))
        size = int(rng.integers(1, 40))
        if (size - 1) * stride - 2 * padding + kernel + output_padding >= 1:
            cases.append(Case("random", (size, kernel),
                              {"stride": stride, "padding": padding, "output_padding": output_padding}))
    return cases


def _wa_conv_formula(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size + 2 * padding - kernel_size) // stride + 1


def _wa_padding_once(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size - 1) * stride - padding + kernel_size + output_padding


def _wa_padding_added(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size - 1) * stride + 2 * padding + kernel_size + output_padding


def _wa_no_output_padding(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size - 1) * stride - 2 * padding + kernel_size


def _wa_swapped(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size - 1) * kernel_size - 2 * padding + stride + output_padding


def _wa_n_strides(size, kernel_size, stride=1, padding=0, output_padding=0):
    return size * stride - 2 * padding + kernel_size + output_padding


def _wa_forgets_plus_one(size, kernel_size, stride=1, padding=0, output_padding=0):
    return (size - 1) * stride - 2 * padding + (kernel_size - 1) + output_padding


def _wa_float(size, kernel_size, stride=1, padding=0, output_padding=0):
    return float((size - 1) * stride - 2 * padding + kernel_size + output_padding)


register(Exercise(
    id="fcn.transposed_conv_output_size",
    title="output size of a transposed convolution",
    reference="segtutor.fcn.transposed_conv_output_size",
    make_cases=_size_cases,
    compare=explain(pixel_count, *_SIZE_MISTAKES),
    hint=(
        "each input pixel paints a kernel_size window of the output, and the windows of neighbouring input "
        "pixels start stride pixels apart; padding then trims the output, output_padding extends it.",
        "where does the window of the last input pixel start, and where does it end? padding is trimmed from "
        "both ends, output_padding added at one.",
    ),
    wrong_answers=(
        WrongAnswer("the forward convolution's formula", _wa_conv_formula, r"forward convolution"),
        WrongAnswer("subtracts the padding once", _wa_padding_once, r"both ends"),
        WrongAnswer("adds the padding", _wa_padding_added, r"removes pixels from a transposed"),
        WrongAnswer("forgets output_padding", _wa_no_output_padding, r"output_padding adds pixels"),
        WrongAnswer("swaps kernel_size and stride", _wa_swapped, r"swapped"),
        WrongAnswer("n strides instead of n - 1", _wa_n_strides, r"n - 1 strides"),
        WrongAnswer("kernel_size - 1 without the + 1", _wa_forgets_plus_one, r"one pixel too few"),
        WrongAnswer("returns a float", _wa_float, r"whole number \(int\)"),
    ),
))


# =========================================================================== the skip (an nn.Module)


def _fuse_invoke(module_class, state, num_classes, skip_channels, factor, scores, features):
    import torch

    model = module_class(num_classes, skip_channels, factor)
    model.load_state_dict(state)  # fixed weights: the architecture and the forward pass are graded
    model.eval()
    with torch.no_grad():
        return model(scores, features)


def _fuse_state(rng, num_classes, skip_channels, factor):
    import torch

    def tensor(*shape):
        return torch.from_numpy(rng.normal(size=shape).astype(np.float32))

    return {
        "score.weight": tensor(num_classes, skip_channels, 1, 1),
        "score.bias": tensor(num_classes),
        "upsample.weight": tensor(num_classes, num_classes, 2 * factor, 2 * factor),
    }


def _fuse_case(name, rng, num_classes, skip_channels, factor, coarse, fine, batch=1):
    import torch

    scores = torch.from_numpy(rng.normal(size=(batch, num_classes) + coarse).astype(np.float32))
    features = torch.from_numpy(rng.normal(size=(batch, skip_channels) + fine).astype(np.float32))
    return Case(name, (_fuse_state(rng, num_classes, skip_channels, factor), num_classes, skip_channels, factor,
                       scores, features))


def _fuse_cases(rng, hidden):
    if not hidden:
        return [
            _fuse_case("3x4 coarse scores, a 6x8 skip: twice the size", rng, 4, 6, 2, (3, 4), (6, 8)),
            _fuse_case("a 5x7 skip (odd sizes): crop, do not resize", rng, 3, 5, 2, (3, 4), (5, 7)),
            _fuse_case("non-square, a batch of 2", rng, 4, 3, 2, (2, 5), (4, 9), batch=2),
            _fuse_case("factor 4 (stride 32 to stride 8 in one step)", rng, 2, 4, 4, (3, 3), (12, 11)),
        ]
    cases = []
    for _ in range(3):
        factor = int(rng.choice([2, 2, 4]))
        h, w = (int(v) for v in rng.integers(1, 6, size=2))
        fine = (h * factor - int(rng.integers(0, factor)), w * factor - int(rng.integers(0, factor)))
        cases.append(_fuse_case("random", rng, int(rng.integers(2, 6)), int(rng.integers(1, 8)), factor,
                                (h, w), fine, batch=int(rng.integers(1, 3))))
    return cases


def _skip_scores(state, features):
    import torch.nn.functional as F

    return F.conv2d(features, state["score.weight"], state["score.bias"])


def _upsampled(state, scores, factor, offset, height, width):
    import torch.nn.functional as F

    up = F.conv_transpose2d(scores, state["upsample.weight"], stride=factor)
    return up[..., offset:offset + height, offset:offset + width]


def _mk_offset_zero(state, num_classes, skip_channels, factor, scores, features):
    skip = _skip_scores(state, features)
    return skip + _upsampled(state, scores, factor, 0, *skip.shape[-2:])


def _mk_offset_one(state, num_classes, skip_channels, factor, scores, features):
    skip = _skip_scores(state, features)
    return skip + _upsampled(state, scores, factor, 1, *skip.shape[-2:])


def _mk_no_skip(state, num_classes, skip_channels, factor, scores, features):
    skip = _skip_scores(state, features)
    return _upsampled(state, scores, factor, factor // 2, *skip.shape[-2:])


def _mk_skip_only(state, num_classes, skip_channels, factor, scores, features):
    return _skip_scores(state, features)


def _mk_interpolated(mode):
    def make(state, num_classes, skip_channels, factor, scores, features):
        import torch.nn.functional as F

        skip = _skip_scores(state, features)
        up = F.interpolate(scores, scale_factor=factor, mode=mode)
        return skip + up[..., :skip.shape[-2], :skip.shape[-1]]
    return make


_FIXED = ("you upsampled with a fixed interpolation; use the transposed convolution self.upsample, whose "
          "weights training changes")
_fuse_compare = explain(
    tensor_close(rtol=1e-4, atol=1e-5),
    ("your output is shifted by factor // 2 pixels: crop the upsampled scores starting at factor // 2, not 0",
     _mk_offset_zero),
    ("your crop starts at 1 whatever the factor: it starts at factor // 2", _mk_offset_one),
    ("your output is the upsampled coarse scores alone: add the skip's scores (self.score(features))",
     _mk_no_skip),
    ("your output is the skip's scores alone: add the upsampled coarse scores", _mk_skip_only),
    (_FIXED, _mk_interpolated("bilinear")),
    (_FIXED, _mk_interpolated("nearest")),
)


def _fuse_wrong(body):
    """A learner's class whose forward pass is ``body(self, scores, features)``."""
    import torch
    from torch import nn

    class WrongFuse(nn.Module):
        def __init__(self, num_classes, skip_channels, factor=2):
            super().__init__()
            self.factor = factor
            self.score = nn.Conv2d(skip_channels, num_classes, 1)
            self.upsample = nn.ConvTranspose2d(num_classes, num_classes, 2 * factor, stride=factor, bias=False)

        def forward(self, scores, features):
            return body(self, scores, features, torch)

    return WrongFuse


def _crop_at(offset_of):
    def body(self, scores, features, torch):
        skip = self.score(features)
        up = self.upsample(scores)
        o = offset_of(self.factor)
        return skip + up[..., o:o + skip.shape[-2], o:o + skip.shape[-1]]
    return body


def _wa_fuse_offset_zero(*args, **kwargs):
    return _fuse_wrong(_crop_at(lambda f: 0))(*args, **kwargs)


def _wa_fuse_offset_one(*args, **kwargs):
    return _fuse_wrong(_crop_at(lambda f: 1))(*args, **kwargs)


def _wa_fuse_no_skip(*args, **kwargs):
    def body(self, scores, features, torch):
        h, w = features.shape[-2:]
        o = self.factor // 2
        return self.upsample(scores)[..., o:o + h, o:o + w]
    return _fuse_wrong(body)(*args, **kwargs)


def _wa_fuse_interpolate(*args, **kwargs):
    def body(self, scores, features, torch):
        skip = self.score(features)
        up = torch.nn.functional.interpolate(scores, scale_factor=self.factor, mode="bilinear")
        return skip + up[..., :skip.shape[-2], :skip.shape[-1]]
    return _fuse_wrong(body)(*args, **kwargs)


def _wa_fuse_swapped_crop(*args, **kwargs):
    def body(self, scores, features, torch):
        skip = self.score(features)
        up = self.upsample(scores)
        o = self.factor // 2
        return skip + up[..., o:o + skip.shape[-1], o:o + skip.shape[-2]]
    return _fuse_wrong(body)(*args, **kwargs)


def _wa_fuse_float64(*args, **kwargs):
    def body(self, scores, features, torch):
        skip = self.score(features)
        up = self.upsample(scores)
        o = self.factor // 2
        return (skip + up[..., o:o + skip.shape[-2], o:o + skip.shape[-1]]).double()
    return _fuse_wrong(body)(*args, **kwargs)


register(Exercise(
    id="fcn.FuseSkip",
    title="a skip: upsample, crop, add",
    reference="segtutor.fcn.FuseSkip",
    make_cases=_fuse_cases,
    compare=_fuse_compare,
    invoke=_fuse_invoke,
    limits={"memory": "3G", "timeout": 120},
    hint=(
        "score the finer features with the 1x1 convolution, upsample the coarse scores with the transposed "
        "convolution, then line the two up and add them.",
        "the upsampled map is larger than the skip's: keep the window of the skip's height and width that "
        "starts at row and column factor // 2 (slicing with [..., a:b, c:d]).",
    ),
    wrong_answers=(
        WrongAnswer("crops at offset 0", _wa_fuse_offset_zero, r"shifted by factor // 2"),
        WrongAnswer("crop offset 1 for every factor", _wa_fuse_offset_one, r"starts at 1 whatever the factor"),
        WrongAnswer("forgets to add the skip", _wa_fuse_no_skip, r"upsampled coarse scores alone"),
        WrongAnswer("a fixed bilinear interpolation", _wa_fuse_interpolate, r"fixed interpolation"),
        WrongAnswer("height and width swapped in the crop", _wa_fuse_swapped_crop, r"must match the size|shape"),
        WrongAnswer("returns float64", _wa_fuse_float64, r"expected dtype torch.float32"),
    ),
))
