"""Widget latency: how long a control change takes to redraw, on 256 x 256 images.

Each lesson widget is built once (not timed), then one control is moved through
a few values; the figure is the median time from ``set(...)`` to the new PNG,
which is what a learner waits for (target: <= 200 ms).

Examples
--------
``segtutor bench --only widgets``.
"""

from __future__ import annotations

import statistics
import time

__all__ = ["bench_widgets"]


def _median_ms(explorer, changes) -> float:
    explorer.png()  # first render: layout and the static background
    times = []
    for change in changes:
        start = time.perf_counter()
        explorer.set(**change)
        explorer.png()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 1)


def _bench_fcn(size):
    """Lesson 04's explorer over three (untrained: same cost) FCNs, moving the scene slider."""
    from segtutor import fcn, widgets

    images, labels = fcn.scenes(5, seed=2, size=size)
    models = {variant: fcn.build_model(fcn.Config(variant=variant)) for variant in fcn.VARIANTS}
    return _median_ms(widgets.FCNExplorer(models, images, labels), [{"index": i} for i in (1, 2, 3, 4, 0)])


def _bench_weak(size):
    """Lesson 05's explorer: boxes, two kinds of pseudo-mask and the truth, moving the scene slider."""
    from segtutor import fcn, weak, widgets

    scenes = weak.instance_scenes(5, seed=2, config=fcn.Config(size=size))
    pseudo = {kind: weak.pseudo_labels(scenes, kind) for kind in ("box", "band")}
    return _median_ms(widgets.WeakLabelExplorer(scenes, pseudo), [{"index": i} for i in (1, 2, 3, 4, 0)])


def _bench_detections(size):
    """Lesson 06's explorer on the true objects of a scene (scored), moving the score threshold."""
    import numpy as np

    from segtutor import maskrcnn, widgets

    scene = maskrcnn.instance_scenes(1, seed=3, config=maskrcnn.Config(size=size))[0]
    detections = dict(scene, scores=np.linspace(1.0, 0.1, len(scene["labels"])))
    explorer = widgets.DetectionExplorer(scene["image"], detections, score_threshold=0.5)
    return _median_ms(explorer, [{"score_threshold": t} for t in (0.2, 0.4, 0.6, 0.8, 0.3)])


def bench_widgets(size: int = 256) -> dict:
    """Median redraw time (ms) of each lesson widget for a control change."""
    from segtutor import data, widgets

    gray, truth = data.make_gray_scene(size=size, seed=1)
    ramp, ramp_truth = data.make_gray_scene(size=size, gradient=0.6, seed=2)
    rgb, labels = data.make_scene(size=size, seed=3)
    scene = data.make_instance_scene(size=size, seed=0)
    figures = {}
    thr = widgets.ThresholdExplorer(gray, truth)
    figures["00_label_map_ms"] = _median_ms(widgets.LabelMapExplorer(scene),
                                            [{"row": r, "shift": s} for r, s in ((10, 2), (40, 6), (90, 12), (120, 3))])
    figures["01_threshold_ms"] = _median_ms(thr, [{"threshold": thr.low + f * (thr.high - thr.low)}
                                                  for f in (0.3, 0.4, 0.5, 0.6, 0.7)])
    figures["01_local_threshold_ms"] = _median_ms(widgets.LocalThresholdExplorer(ramp, ramp_truth),
                                                  [{"block_size": b} for b in (21, 31, 41, 51, 61)])
    figures["02_kmeans_ms"] = _median_ms(widgets.KMeansExplorer(rgb, labels, num_classes=4),
                                         [{"k": k} for k in (2, 3, 5, 6, 4)])
    figures["04_fcn_scenes_ms"] = _bench_fcn(size)
    figures["05_weak_labels_ms"] = _bench_weak(size)
    figures["06_detections_ms"] = _bench_detections(size)
    figures["image_size"] = f"{size} x {size}"
    figures["target_ms"] = 200
    return figures
