"""Figures behind lesson 05's targets: FCN-8s trained from boxes vs from true masks, same budget.

Targets (synthetic scenes drawn with a seed used neither for training nor for validation):

* the best box-supervised model reaches at least 0.95 of the fully supervised model's mIoU;
* the filled-box baseline is reported, and is clearly lower;
* self-training: its labels and its model before and after one round (reported, both).

The same settings (``fcn.BENCH_CONFIG``: FCN-8s, 600 steps on 1000 scenes) for every model;
only the training labels differ. Trainings go through the checkpoint cache
(:func:`segtutor.training.cached`), so a second run reloads them; CPU seconds are those of
this run. Run with ``segtutor bench --only weak``.
"""

from __future__ import annotations

import os
import time

__all__ = ["bench_weak"]


def bench_weak(config=None, *, n_eval=200, eval_seed=3, progress=False) -> dict:
    """Train FCN-8s on each kind of pseudo-mask and on the true masks; score them on held-out scenes.

    Parameters
    ----------
    config : segtutor.fcn.Config, optional
        Default ``fcn.BENCH_CONFIG`` (FCN-8s).
    n_eval : int
        Number of held-out scenes scored.
    eval_seed : int
        Seed of the held-out scenes; must differ from the training and validation seeds.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        Per kind ``k`` of :data:`segtutor.weak.KINDS`: ``labels_miou_k`` and ``labelled_k`` (the
        training labels against the true masks), ``val_miou_k``, ``ratio_k`` (to full
        supervision); ``best_box_kind``, ``ratio_best_to_full``, the self-training figures,
        the settings, the load average before and after, CPU seconds, and the verdicts
        ``target_*`` (bools).
    """
    from segtutor import fcn, weak

    config = fcn.BENCH_CONFIG if config is None else config
    if eval_seed in (config.train_seed, config.val_seed):
        raise ValueError(f"eval_seed={eval_seed} is used for training or validation; pick another")
    out = {"iterations": config.iterations, "train_scenes": config.train_scenes, "n_eval": n_eval,
           "variant": config.variant, "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg()[0]}
    cpu = time.process_time()
    scenes = weak.instance_scenes(config.train_scenes, seed=config.train_seed, config=config)
    runs = weak.train_kinds(config, progress=progress, scenes=scenes)
    images, labels = fcn.scenes(n_eval, seed=eval_seed, config=config)
    scores = weak.score_kinds(runs, images, labels)
    out["cpu_s"] = time.process_time() - cpu
    for kind, run in runs.items():
        quality = weak.pseudo_label_scores(run["labels"], scenes["truth"])
        out[f"labels_miou_{kind}"] = quality["miou"]
        out[f"labelled_{kind}"] = quality["labelled"]
        out[f"val_miou_{kind}"] = scores[kind]["miou"]
        out[f"ratio_{kind}"] = scores[kind]["ratio_to_full"]
        out[f"from_cache_{kind}"] = run["from_cache"]
    boxes = [k for k in runs if k != "full"]
    best = max(boxes, key=lambda k: scores[k]["miou"])
    out["best_box_kind"] = best
    out["ratio_best_to_full"] = scores[best]["ratio_to_full"]
    out["ratio_filled_box"] = scores["box"]["ratio_to_full"]
    out["self_training_labels_miou_before_after"] = (out["labels_miou_refined"], out["labels_miou_self-trained"])
    out["self_training_val_miou_before_after"] = (out["val_miou_refined"], out["val_miou_self-trained"])
    out["load_average_after"] = os.getloadavg()[0]
    out["target_best_at_least_0.95_of_full"] = out["ratio_best_to_full"] >= 0.95
    out["target_filled_box_clearly_lower"] = out["ratio_best_to_full"] - out["ratio_filled_box"] >= 0.05
    out["target_self_training_improves_val_miou"] = out["val_miou_self-trained"] > out["val_miou_refined"]
    return out


if __name__ == "__main__":  # pragma: no cover
    for key, value in bench_weak(progress=True).items():
        print(f"{key:44s} {value:.4g}" if isinstance(value, float) else f"{key:44s} {value}")
