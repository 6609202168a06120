"""segtutor: a hands-on course on image segmentation.

The package is the helper library of the course notebooks in ``lessons/``. Its
folders show its three audiences, and imports only go downward
(topics → exercises → grading → tools):

==========================  ================================================  ==============
module                      what it holds                                     lesson / user
==========================  ================================================  ==============
``segtutor.data``           synthetic scenes with ground truth, samples       all
``segtutor.metrics``        confusion matrix, IoU, Dice, boundary F1          00
``segtutor.viz``            overlays, contours, image grids                   all
``segtutor.classical``      Otsu, multi-Otsu, local threshold, regions        01
``segtutor.cluster``        k-means, colour/position segmentation, SLIC       02
``segtutor.backbones``      AlexNet, VGG-16, GoogLeNet, ResNet measured       03
``segtutor.fcn``            FCN-32s/16s/8s heads                              04
``segtutor.training``       training loop helpers, checkpoint cache           04–06
``segtutor.weak``           pseudo-masks from bounding boxes                  05
``segtutor.maskrcnn``       Mask R-CNN on small images, COCO metrics          06
``segtutor.datasets``       PASCAL VOC, Oxford-IIIT Pet, PennFudan loaders    04–06 on hubs
``segtutor.profiles``       quick (CPU, synthetic) or full (GPU, real data)   all
``segtutor.widgets``        interactive widgets of the lessons                all
``segtutor.paths``          where lessons, data, caches and weights are       all
``segtutor.exercises``      graded exercises: checks, hints, references       learners
``segtutor.grading``        student release and sandboxed autograding         instructors
``segtutor.tools``          the ``segtutor`` command: open, doctor, bench,    everyone
                            fetch
==========================  ================================================  ==============

Each module is imported on first use, so ``import segtutor`` is quick and never
imports torch (only the lessons 03–06 modules do, when used).

Examples
--------
>>> import segtutor
>>> image, labels = segtutor.data.make_scene(seed=0)
>>> round(segtutor.metrics.mean_iou(labels, labels, num_classes=4), 3)
1.0
"""

import importlib
import importlib.util

__version__ = "0.1.0"


def _submodules() -> list:
    import pkgutil

    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name):
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'segtutor' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_submodules()))


__all__ = ["__version__"]
