"""Benchmark: Mask R-CNN trained on synthetic scenes for a fixed number of steps, COCO-scored.

Run ``segtutor bench --only maskrcnn``. It draws the training scenes, trains
:func:`segtutor.maskrcnn.train` with the benchmark settings (``Config()``),
evaluates box and mask AP with ``pycocotools`` on held-out scenes (another seed),
and profiles a few extra training steps to show where a step's time goes.

Targets (2-core CPU): mask AP50 >= 0.90 and mask AP@[.5:.95] >= 0.60 on >= 200
held-out scenes after <= 180 s of training. The training is bounded by a fixed
number of steps (``Config().iterations``), so its result does not depend on the
machine; its cost is measured as the **CPU time of a one-thread run**
(``time.process_time()``; ``Config().threads`` is 1): on an idle machine
that is the wall time on one core, and two cores take less. Other processes
running at the same time inflate it a little (shared caches), and wall time a
lot: both are printed, with the load average.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

__all__ = ["bench_maskrcnn"]

#: Targets checked by :func:`bench_maskrcnn` (``met`` in its result); ``train_seconds``
#: bounds the one-thread CPU time of the training (``train_cpu_seconds``).
TARGETS = {"mask_AP50": 0.90, "mask_AP": 0.60, "train_seconds": 180.0}


def _peak_rss_gib():
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _profile_steps(model, scenes, config, steps):
    """Share of a training step's CPU time per operator group, over ``steps`` steps."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from segtutor.maskrcnn import scene_tensors

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(steps):
            pairs = [scene_tensors(s) for s in scenes[step * config.batch_size:(step + 1) * config.batch_size]]
            losses = model([p[0] for p in pairs], [p[1] for p in pairs])
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
    totals = {}
    for event in prof.key_averages():
        totals[event.key] = event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0

    def share(*keys):
        return round(sum(v for k, v in totals.items() if any(key in k for key in keys)) / whole, 3)

    return {
        "roi_align_backward": share("roi_align_backward"),
        "roi_align_forward": share("torchvision::roi_align"),
        "convolution_backward": share("convolution_backward"),
        "convolution_forward": share("mkldnn_convolution", "aten::_convolution"),
        "nms": share("torchvision::nms"),
    }


def bench_maskrcnn(config=None, *, eval_scenes=200, eval_seed=1000, profile_steps=3, progress=False) -> dict:
    """Train the benchmark model once and report its figures.

    Parameters
    ----------
    config : segtutor.maskrcnn.Config, optional
        Default ``Config()``: the settings the targets are stated for.
    eval_scenes : int
        Held-out scenes (``instance_scenes(eval_scenes, seed=eval_seed)``).
    eval_seed : int
        Seed of the held-out scenes; must differ from ``config.seed``.
    profile_steps : int
        Extra training steps profiled with ``torch.profiler`` (0 to skip).
    progress : bool

    Returns
    -------
    dict
        ``train_seconds`` (wall), ``train_cpu_seconds`` (CPU time of the training, all
        its threads: less sensitive to other processes), ``cpu_seconds_per_step``,
        ``seconds_per_step``, ``iterations``, ``batch_size``,
        ``scene_seconds`` (drawing the training scenes), ``eval_seconds``,
        ``box_AP``/``box_AP50``/``box_AP75``, ``mask_AP``/``mask_AP50``/``mask_AP75``,
        ``peak_rss_gib``, ``threads``, ``load_average_start`` and ``load_average``
        (1-minute, before the training and at the end),
        ``profile`` (shares of a step's CPU time), ``targets`` and ``met``.
    """
    import os

    import torch

    from segtutor import maskrcnn

    config = maskrcnn.Config() if config is None else config
    if eval_seed == config.seed:
        raise ValueError("eval_seed must differ from config.seed so that the evaluation scenes are held out")
    start = time.perf_counter()
    train_scenes = maskrcnn.instance_scenes(config.train_scenes, seed=config.seed, config=config)
    test_scenes = maskrcnn.instance_scenes(eval_scenes, seed=eval_seed, config=config)
    scene_seconds = time.perf_counter() - start

    load_at_start = os.getloadavg()[0]
    cpu_start = time.process_time()
    result = maskrcnn.train(config, scenes=train_scenes, progress=progress)  # config.threads threads
    train_cpu_seconds = time.process_time() - cpu_start
    model = maskrcnn.load_model(result)

    start = time.perf_counter()
    predictions = maskrcnn.predict(model, [s["image"] for s in test_scenes])
    scores = maskrcnn.coco_evaluate(test_scenes, predictions)
    eval_seconds = time.perf_counter() - start

    profile = _profile_steps(model, train_scenes, config, profile_steps) if profile_steps else {}
    figures = {
        "iterations": config.iterations,
        "batch_size": config.batch_size,
        "train_seconds": round(result["seconds"], 1),
        "seconds_per_step": round(result["seconds"] / max(config.iterations, 1), 4),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
        "cpu_seconds_per_step": round(train_cpu_seconds / max(config.iterations, 1), 4),
        "scene_seconds": round(scene_seconds, 1),
        "eval_scenes": eval_scenes,
        "eval_seconds": round(eval_seconds, 1),
        "final_loss": round(float(np.mean(result["history"]["loss"][-50:])), 4),
        "threads": config.threads or torch.get_num_threads(),
        "load_average_start": round(load_at_start, 2),
        "load_average": round(os.getloadavg()[0], 2),
        "peak_rss_gib": round(_peak_rss_gib(), 2),
        "profile": profile,
        "targets": dict(TARGETS),
    }
    for kind, prefix in (("bbox", "box"), ("segm", "mask")):
        for key, value in scores[kind].items():
            figures[f"{prefix}_{key}"] = round(value, 4)
    figures["met"] = bool(
        figures["mask_AP50"] >= TARGETS["mask_AP50"]
        and figures["mask_AP"] >= TARGETS["mask_AP"]
        and figures["train_cpu_seconds"] <= TARGETS["train_seconds"]
    )
    return figures


if __name__ == "__main__":
    import json

    from segtutor.maskrcnn import Config

    overrides = {}
    for arg in sys.argv[1:]:  # e.g. iterations=700 lr=0.03
        key, _, value = arg.partition("=")
        overrides[key] = eval(value, {})  # noqa: S307 (a developer's command line)
    print(json.dumps(bench_maskrcnn(Config(**overrides), progress=False), indent=1))
