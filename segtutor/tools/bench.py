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
  (slow: minutes; run it with ``--only grading``).

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
ALL_SECTIONS = DEFAULT_SECTIONS + ("backbones", "fcn", "weak", "maskrcnn", "grading")

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
}


def _section(name: str):
    import importlib

    module, _, func = SECTIONS[name].partition(":")
    return getattr(importlib.import_module(module), func)


def add_arguments(parser) -> None:
    parser.add_argument("--only", default=",".join(DEFAULT_SECTIONS),
                        help=f"comma-separated sections out of {', '.join(ALL_SECTIONS)}, or all "
                             f"(default: {','.join(DEFAULT_SECTIONS)})")
    parser.add_argument("--json", default="bench-results/bench.json", help="where to write the figures")
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
    figures = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                           "cpus": os.cpu_count()}}
    for section in sections:
        print(f"\n== {section}")
        start = time.perf_counter()
        if section == "lessons":
            figures[section] = bench_lessons(args.lessons)
        else:
            figures[section] = _section(section)()
            _print_flat(figures[section])
        print(f"  ({time.perf_counter() - start:.1f} s)")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, default=str))
    print(f"\nFigures written to {out}")
    return 0

