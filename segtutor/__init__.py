"""segtutor: a hands-on course on image segmentation.

The package is a small helper library for the course notebooks in ``lessons/``.
Each topic lives in its own module and is imported on first use, so
``import segtutor`` is quick and never imports torch:

==========================  ============================================  =================
module                      what it holds                                 lesson
==========================  ============================================  =================
``segtutor.data``           synthetic scenes with ground truth, samples   all
``segtutor.metrics``        confusion matrix, IoU, Dice, boundary F1      00
``segtutor.viz``            overlays, contours, image grids               all
``segtutor.classical``      Otsu, multi-Otsu, local threshold, regions    01
``segtutor.cluster``        k-means, colour/position segmentation, SLIC   02
``segtutor.exercises``      graded exercises: checks, hints, references   all
``segtutor.grading``        student release and sandboxed autograding     (instructor)
==========================  ============================================  =================

Examples
--------
>>> import segtutor
>>> image, labels = segtutor.data.make_scene(seed=0)
>>> round(segtutor.metrics.mean_iou(labels, labels, num_classes=4), 3)
1.0
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "bench",
    "classical",
    "cli",
    "cluster",
    "data",
    "doctor",
    "exercises",
    "grading",
    "metrics",
    "sandbox",
    "viz",
)

__all__ = list(_SUBMODULES) + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'segtutor' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
