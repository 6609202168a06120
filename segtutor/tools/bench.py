"""``segtutor bench``: the figures behind the course's speed and quality targets.

Each section prints a table and all figures go to one JSON file:

* ``lessons``   — every lesson executed top to bottom in a fresh kernel: wall time and the
  kernel's peak resident memory (budget: 60 s per lesson for 00–02);
* ``classical`` — Otsu and connected components vs scikit-image (target: Otsu <= 2x);
* ``cluster``   — k-means inertia and time vs scikit-learn (target: inertia within 1 %);
* ``backbones`` — lesson 03's models: parameters, multiply-adds, forward time;
* ``fcn``       — lesson 04: FCN-32s/16s/8s trained under one budget, mIoU and boundary F
  (targets: FCN-8s >= 0.90 mIoU within 60 s; 8s - 32s >= 0.15);
* ``weak``      — lesson 05: FCN-8s trained from boxes (filled, banded, refined, self-trained) and
  from true masks under one budget (target: best box-supervised >= 0.95 of full supervision);
* ``maskrcnn``  — lesson 06: Mask R-CNN trained within 180 s, COCO box and mask AP
  (targets: mask AP50 >= 0.90, mask AP >= 0.60);
* ``grading``   — grading overhead vs plain execution, and 30 submissions of lesson 01
  (slow: minutes; run it with ``--only grading``);
* ``hub``       — the "on a hub" runs of lessons 04–06 on real photographs (full profile with
  the datasets present; otherwise each says in one line what it skipped).

``--profile quick|full`` runs everything under that profile (``SEGTUTOR_PROFILE``, which the
lessons' kernels inherit) and records it with the figures: on a GPU hub,
``segtutor bench --profile full --only lessons,hub`` times the lessons with their real-data
sections and records the quality they reach (written to ``bench-results/bench-full.json``).

Examples
--------
``segtutor bench`` runs the default sections; ``segtutor bench --only lessons --json out.json``;
``segtutor bench --only all`` every section, the whole course's figures (about half an hour
on a 2-core CPU).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_SECTIONS = ("lessons", "classical", "cluster", "widgets")
ALL_SECTIONS = DEFAULT_SECTIONS + ("backbones", "fcn", "weak", "maskrcnn", "grading", "hub")

#: Where each section's function lives: ``module:function`` returning a dict of figures.
SECTIONS = {
    "classical": "segtutor.tools.bench_classical:bench_classical",
    "cluster": "segtutor.tools.bench_cluster:bench_cluster",
    "grading": "segtutor.tools.bench_grading:bench_grading",
    "widgets": "segtutor.tools.bench_widgets:bench_widgets",
    "backbones": "segtutor.tools.bench_backbones:bench_backbones",
    "fcn": "segtutor.tools.bench_fcn:bench_fcn",
    "weak": "segtutor.tools.bench_weak:bench_weak",
    "maskrcnn": "segtutor.tools.bench_maskrcnn:bench_maskrcnn",
    "hub": "segtutor.tools.bench_hub:bench_hub",
}


def _section(name: str):
    import importlib

    module, _, func = SECTIONS[name].partition(":")
    return getattr(importlib.import_module(module), func)


def add_arguments(parser) -> None:
    parser.add_argument("--only", default=",".join(DEFAULT_SECTIONS),
                        help=f"comma-separated sections out of {', '.join(ALL_SECTIONS)}, or all "
                             f"(default: {','.join(DEFAULT_SECTIONS)})")
    parser.add_argument("--json", default=None,
                        help="where to write the figures (default: bench-results/bench.json, "
                             "bench-results/bench-full.json for the full profile)")
    parser.add_argument("--profile", default=None, choices=("quick", "full"),
                        help="run under this profile (default: $SEGTUTOR_PROFILE, else full with CUDA, quick without)")
    parser.add_argument("--lessons", default=None, help="lessons folder (default: the checkout's)")


def run_lesson(path) -> dict:
    """Execute a lesson in a fresh kernel; return wall seconds and the kernel's peak RSS (MiB)."""
    from segtutor.grading.execute import measure

    try:
        return measure([path])[0]
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return {"error": str(exc)}


def bench_lessons(lessons_dir=None) -> dict:
    from segtutor import paths

    folder = Path(lessons_dir) if lessons_dir else paths.lessons_dir()
    if folder is None:
        raise SystemExit("segtutor bench: no lessons/ folder found")
    results = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        results[path.stem] = run_lesson(path)
        fig = results[path.stem]
        if "error" in fig:
            print(f"  {path.stem:<16} FAILED: {fig['error']}")
        else:
            print(f"  {path.stem:<16} {fig['seconds']:6.1f} s   peak RSS {fig['peak_rss_mib']:6.0f} MiB")
    ok = [r["seconds"] for r in results.values() if "seconds" in r]
    results["total_seconds"] = sum(ok)
    print(f"  {'total':<16} {sum(ok):6.1f} s")
    return results


def machine() -> dict:
    """The machine the figures come from: platform, Python, CPUs, and the GPU's name (or None)."""
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception as exc:  # a broken CUDA set-up is worth printing, not a crash
        gpu = f"unavailable ({type(exc).__name__})"
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "gpu": gpu}


def _print_flat(figures: dict, indent: str = "  ") -> None:
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_flat(value, indent + "  ")
        elif isinstance(value, float):
            print(f"{indent}{key:<34} {value:.4g}")
        else:
            print(f"{indent}{key:<34} {value}")


def main(args) -> int:
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    if sections == ["all"]:
        sections = list(ALL_SECTIONS)
    unknown = sorted(set(sections) - set(ALL_SECTIONS))
    if unknown:
        print(f"segtutor bench: unknown section(s) {unknown}; choose from {list(ALL_SECTIONS)}", file=sys.stderr)
        return 2
    from segtutor import profiles

    if args.profile:
        os.environ[profiles.ENV_VAR] = args.profile  # the lessons' kernels inherit it
    chosen = profiles.settings()
    figures = {"machine": machine(), "profile": {"name": chosen.name, "device": chosen.device,
                                                 "mixed_precision": chosen.mixed_precision,
                                                 "num_workers": chosen.num_workers}}
    print(f"segtutor bench: {chosen.name} profile on {chosen.device} "
          f"({figures['machine']['gpu'] or str(figures['machine']['cpus']) + ' CPUs'})")
    for section in sections:
        print(f"\n== {section}")
        start = time.perf_counter()
        if section == "lessons":
            figures[section] = bench_lessons(args.lessons)
        else:
            figures[section] = _section(section)()
            _print_flat(figures[section])
        print(f"  ({time.perf_counter() - start:.1f} s)")
    out = Path(args.json or ("bench-results/bench-full.json" if chosen.name == "full" else "bench-results/bench.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, default=str))
    print(f"\nFigures written to {out}")
    return 0

