"""The worked example of the exercise format for PyTorch (``docs/exercises.md``).

Not part of a lesson: it shows, and the test suite proves, every part of the
format a network exercise uses. The learner writes ``MyScaleShift(channels)``,
an ``nn.Module`` with a 1x1 convolution followed by a ReLU. The spec's
``invoke`` builds it, loads a fixed state dict, runs forward on the ``batch``
fixture and returns the output tensor, which ``tensor_close`` compares (type,
shape, dtype, values). Nothing here imports torch until an exercise runs.

Examples
--------
>>> from segtutor import exercises
>>> exercises.get("tutorial.scale_shift").limits
{'memory': '3G', 'timeout': 120}
"""

import numpy as np

from ._core import Case, Exercise, WrongAnswer, register
from .compare import tensor_close
from .wire import Fixture


def _make_class(relu=True, double=False):
    import torch

    class ScaleShift(torch.nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.proj = torch.nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            y = self.proj(x)
            y = torch.relu(y) if relu else y
            return y.double() if double else y

    return ScaleShift


def reference_scale_shift(channels):
    return _make_class()(channels)


def no_relu(channels):
    return _make_class(relu=False)(channels)


def returns_float64(channels):
    return _make_class(double=True)(channels)


def batch():
    import torch

    return torch.randn(2, 3, 5, 7)  # torch is seeded by the exercise format


def invoke(module_class, state, x):
    import torch

    model = module_class(3)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        return model(x)


def _state(rng):
    import torch

    return {"proj.weight": torch.from_numpy(rng.normal(size=(3, 3, 1, 1)).astype(np.float32)),
            "proj.bias": torch.from_numpy(rng.normal(size=3).astype(np.float32))}


def cases(rng, hidden):
    names = ["random weights", "other weights", "third weights"] if not hidden else ["random"] * 2
    return [Case(name, (_state(rng), Fixture("batch"))) for name in names]


register(Exercise(
    id="tutorial.scale_shift",
    title="a 1x1 convolution with ReLU",
    reference="segtutor.exercises.tutorial.reference_scale_shift",
    make_cases=cases,
    compare=tensor_close(),
    hint=("a 1x1 convolution mixes the channels of each pixel", "look at nn.Conv2d's kernel_size"),
    invoke=invoke,
    fixtures={"batch": batch},
    limits={"memory": "3G", "timeout": 120},
    wrong_answers=(
        WrongAnswer("forgets the ReLU", no_relu, r"values differ"),
        WrongAnswer("returns float64", returns_float64, r"expected dtype torch.float32"),
    ),
))
