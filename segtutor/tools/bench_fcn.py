"""Figures behind lesson 04's targets: FCN-32s/16s/8s trained under one budget on this machine.

Targets (synthetic scenes drawn with a seed used neither for training nor for validation):

* FCN-8s reaches a mean IoU of at least 0.90 after at most 60 s of training;
* FCN-8s beats FCN-32s by at least 0.15 mIoU under the same budget, and FCN-32s's
  boundary F-score is lower;
* the trained FCN-8s keeps its quality on other input sizes (non-square, odd).

Timings are wall-clock seconds on this machine's CPU (or GPU), training only; the load
average at the start and the end is reported, since other processes slow the run down
(the figures are then pessimistic). Run with ``segtutor bench --only fcn``.
"""

from __future__ import annotations

import os
import time

__all__ = ["bench_fcn"]

#: Sizes at which the trained FCN-8s is scored besides its training size.
SIZES = ((64, 64), (72, 136), (97, 61), (131, 131), (160, 96))


def bench_fcn(config=None, *, n_eval=200, eval_seed=3, sizes=SIZES, progress=False) -> dict:
    """Train FCN-32s, FCN-16s and FCN-8s with the same settings; time and score them.

    Parameters
    ----------
    config : segtutor.fcn.Config, optional
        Shared settings (the variant is replaced); default ``fcn.BENCH_CONFIG``.
    n_eval : int
        Number of held-out scenes scored.
    eval_seed : int
        Seed of the held-out scenes; must differ from the training and validation seeds.
    sizes : sequence of (H, W)
        Sizes at which the trained FCN-8s is scored as well.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        Per variant ``v``: ``fcn{v}_miou``, ``fcn{v}_boundary_f1``, ``fcn{v}_pixel_accuracy``,
        ``fcn{v}_train_s`` (wall seconds), ``fcn{v}_cpu_s`` (process CPU seconds),
        ``fcn{v}_ms_per_iteration``; ``fcn8s_miou_at_HxW`` per size; the settings
        (``iterations``, ``batch_size``, ``train_threads``, ``cpu_count``, ``device``, ``n_eval``), the
        load average before and after, and the verdicts ``target_*`` (bools).
    """
    import torch

    from segtutor import fcn, training

    config = fcn.BENCH_CONFIG if config is None else config
    if eval_seed in (config.train_seed, config.val_seed):
        raise ValueError(f"eval_seed={eval_seed} is used for training or validation; pick another")
    images, labels = fcn.scenes(n_eval, seed=eval_seed, config=config)
    train_set = fcn.scenes(config.train_scenes, seed=config.train_seed, config=config)
    val_set = fcn.scenes(config.val_scenes, seed=config.val_seed, config=config)
    out = {
        "iterations": config.iterations, "batch_size": config.batch_size,
        "train_threads": config.threads or torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "device": training.device().type, "n_eval": n_eval, "size": config.size,
        "load_average_before": os.getloadavg()[0],
    }
    models = {}
    for variant in fcn.VARIANTS:
        cfg = config.replace(variant=variant)
        cpu = time.process_time()
        result = fcn.train(cfg, progress=progress, train_set=train_set, val_set=val_set)
        cpu = time.process_time() - cpu
        model = fcn.load_model(result)
        scores = fcn.evaluate(model, images, labels)
        models[variant] = model
        out[f"fcn{variant}_miou"] = scores["miou"]
        out[f"fcn{variant}_boundary_f1"] = scores["boundary_f1"]
        out[f"fcn{variant}_pixel_accuracy"] = scores["pixel_accuracy"]
        out[f"fcn{variant}_train_s"] = result["seconds"]
        out[f"fcn{variant}_cpu_s"] = cpu
        out[f"fcn{variant}_ms_per_iteration"] = 1000 * result["seconds"] / config.iterations
    for size, scores in fcn.evaluate_sizes(models["8s"], sizes, n=max(n_eval // 10, 8), seed=eval_seed + 1,
                                           config=config).items():
        out[f"fcn8s_miou_at_{size[0]}x{size[1]}"] = scores["miou"]
    out["load_average_after"] = os.getloadavg()[0]
    out["target_fcn8s_miou_at_least_0.90"] = out["fcn8s_miou"] >= 0.90
    out["target_fcn8s_trains_within_60_s"] = out["fcn8s_train_s"] <= 60
    out["target_fcn8s_minus_fcn32s_at_least_0.15"] = out["fcn8s_miou"] - out["fcn32s_miou"] >= 0.15
    out["target_fcn32s_boundary_f1_lower"] = out["fcn32s_boundary_f1"] < out["fcn8s_boundary_f1"]
    return out


if __name__ == "__main__":  # pragma: no cover
    for key, value in bench_fcn(progress=True).items():
        print(f"{key:36s} {value:.4g}" if isinstance(value, float) else f"{key:36s} {value}")
