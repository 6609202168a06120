"""Benchmark: the lesson-03 backbones on this machine's CPU, and the feature-map widget.

Run ``segtutor bench --only backbones``. For each backbone (random weights, batch 1,
``torch.no_grad``) it reports parameters, multiply-adds, the time and memory to build
it, and the time of a forward pass at 224 x 224; then the convolutionalized AlexNet
and VGG-16 on 320 x 480, the receptive-field probe, and the redraw latency of
:class:`segtutor.widgets.FeatureMapExplorer` on a 256 x 256 image (target: 200 ms).

Timings depend on what else runs: the report records the CPU count, torch's thread
count and the load average before and after, so a busy machine's (pessimistic)
figures can be recognised as such.
"""

from __future__ import annotations

import gc
import os
import statistics
import time

__all__ = ["bench_backbones"]


def _times(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_backbones(models=None, *, repeat=3, widget_changes=20, include_vgg=True) -> dict:
    """Measure the backbones and the widget; return a dict of figures.

    Parameters
    ----------
    models : sequence of str, optional
        Names from :data:`segtutor.backbones.MODELS` (default all).
    repeat : int
        Forward passes timed per model (median and best are reported).
    widget_changes : int
        Channel changes timed in the widget.
    include_vgg : bool
        Time the convolutionalized VGG-16 as well (the slowest item).

    Returns
    -------
    dict
        ``{"conditions": {...}, "models": {name: {...}}, "fcn": {...},
        "probe": {...}, "widget": {...}}``; times in seconds, memory in MiB.
    """
    import torch

    from segtutor import backbones, data, widgets

    names = list(models or backbones.MODELS)
    report = {
        "conditions": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before": os.getloadavg()[0],
            "note": "wall-clock times on a CPU shared with other work are pessimistic",
        },
        "models": {},
        "fcn": {},
    }
    x224 = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for name in names:
        info = backbones.describe(name)
        gc.collect()
        start = time.perf_counter()
        model = backbones.build(name, weights="random")
        build_s = time.perf_counter() - start
        with torch.no_grad():
            model(x224)  # warm-up
            times = _times(lambda: model(x224), repeat)
        report["models"][name] = {
            "params_M": info.params / 1e6,
            "gmacs_224": info.macs / 1e9,
            "build_s": build_s,
            "weights_MiB": sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20,
            "forward_224_median_s": statistics.median(times),
            "forward_224_best_s": min(times),
        }
        if name == "alexnet" or (name == "vgg16" and include_vgg):
            fcn = backbones.convolutionalize(model)
            big = torch.randn(1, 3, 320, 480, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                fcn(big)
                times = _times(lambda: fcn(big), repeat)
            report["fcn"][name] = {"input": "320x480", "forward_median_s": statistics.median(times),
                                   "max_logit_difference_224": backbones.logit_difference(model, fcn, x224)}
            del fcn
        del model
        gc.collect()

    start = time.perf_counter()
    probe = backbones.receptive_field_probe("resnet50", "layer4", size=491)
    report["probe"] = {"model": "resnet50", "layer": "layer4", "input": 491,
                       "seconds": time.perf_counter() - start,
                       "measured_receptive_field": probe["boxes"][0][0][1] - probe["boxes"][0][0][0] + 1}

    resnet18 = backbones.build("resnet18", weights="random")
    image = data.sample_image("astronaut")
    start = time.perf_counter()
    images = {"astronaut": image, "coffee": data.sample_image("coffee")}
    explorer = widgets.FeatureMapExplorer({"resnet18": resnet18}, images, stage="layer1", size=256)
    explorer.png()
    first = time.perf_counter() - start
    channel_times, channel_cpu = [], []
    for i in range(widget_changes):
        start, cpu = time.perf_counter(), time.process_time()
        explorer.set(channel=(i * 7) % explorer.n_channels)  # redraws (set calls refresh)
        channel_times.append(time.perf_counter() - start)
        channel_cpu.append(time.process_time() - cpu)
    stage_times = []
    for stage in ("layer2", "layer3", "layer4", "stem", "layer1"):
        start = time.perf_counter()
        explorer.set(stage=stage)
        stage_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    explorer.set(image="coffee")
    image_s = time.perf_counter() - start
    report["widget"] = {
        "image": "256x256 (astronaut, resnet18)",
        "first_render_s": first,
        "channel_change_median_s": statistics.median(channel_times),
        "channel_change_max_s": max(channel_times),
        "channel_change_cpu_median_s": statistics.median(channel_cpu),
        "stage_change_median_s": statistics.median(stage_times),
        "image_change_s (new forward pass)": image_s,
        "target_s": 0.2,
    }
    report["conditions"]["load_average_after"] = os.getloadavg()[0]
    report["conditions"]["peak_rss_MiB"] = _peak_rss_mib()
    return report


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(bench_backbones(), indent=2))
