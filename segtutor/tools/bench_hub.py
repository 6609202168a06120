"""``segtutor bench --only hub``: lessons 04–06 on real photographs (the full profile).

Runs each lesson's "on a hub" section (:func:`segtutor.fcn.hub_run`,
:func:`segtutor.weak.hub_run`, :func:`segtutor.maskrcnn.hub_run`) and records the
quality it reaches and its training time. A section whose dataset is missing, or
a run under the quick profile, prints its one line and is recorded as skipped.
"""

from __future__ import annotations


def _fcn(run) -> dict:
    return {"dataset": run["dataset"], "val_images": run["val_images"], "miou": run["scores"]["miou"],
            "pixel_accuracy": run["scores"]["pixel_accuracy"], "train_seconds": run["result"]["seconds"],
            "device": run["result"]["device"], "from_cache": run["from_cache"]}


def _summary(run) -> dict:
    """The numbers of a run (lessons 05 and 06): its plain values, nested dicts of numbers kept."""
    out = {}
    for key, value in run.items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            out[key] = value
        elif isinstance(value, dict) and all(isinstance(v, (int, float, str, bool)) for v in value.values()):
            out[key] = dict(value)
    return out


def bench_hub() -> dict:
    from segtutor import fcn, maskrcnn, weak

    figures = {}
    for name, run_of, summary in (("fcn", fcn.hub_run, _fcn), ("weak", weak.hub_run, _summary),
                                  ("maskrcnn", maskrcnn.hub_run, _summary)):
        run = run_of(progress=False)
        figures[name] = {"skipped": True} if run is None else summary(run)
    return figures
