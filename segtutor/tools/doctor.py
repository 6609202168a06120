"""``segtutor doctor``: what this installation has, in one screen.

Examples
--------
>>> from segtutor.tools import doctor
>>> report = doctor.collect(check_torch=False)
>>> "python" in report["versions"]
True
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

__all__ = ["collect", "format_report", "main"]

PACKAGES = ("segtutor", "numpy", "scikit-image", "scikit-learn", "torch", "torchvision",
            "jupyterlab", "ipywidgets", "nbgrader", "nbval")

# torchvision weights the later lessons can use when they are cached (hubs pre-cache them).
KNOWN_WEIGHTS = {
    "alexnet": "alexnet-owt-7be5be79.pth",
    "vgg16": "vgg16-397923af.pth",
    "googlenet": "googlenet-1378be20.pth",
    "resnet18": "resnet18-f37072fd.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "maskrcnn_resnet50_fpn_v2": "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
}


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _widgets_enabled() -> bool:
    from jupyter_core.paths import jupyter_path

    return any(
        Path(base, "@jupyter-widgets", "jupyterlab-manager").is_dir()
        for base in jupyter_path("labextensions")
    )


def _torch_info() -> dict:
    try:
        import torch
    except Exception as exc:  # a broken install should not break the doctor
        return {"device": f"torch unavailable ({type(exc).__name__}: {exc})"}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        device = f"cuda: {props.name}, {props.total_memory / 2**30:.1f} GiB"
    else:
        device = f"cpu ({os.cpu_count()} cores); no CUDA device"
    return {"device": device}


def collect(check_torch: bool = True) -> dict:
    """Gather versions, devices and data availability into a dict."""
    versions = {"python": platform.python_version()}
    versions.update({name: _version(name) for name in PACKAGES})
    report = {"versions": versions, "executable": sys.executable}
    report["widgets"] = _widgets_enabled() if versions["jupyterlab"] != "not installed" else False
    torch_info = _torch_info() if check_torch else {"device": "not checked"}
    report["device"] = torch_info["device"]
    from segtutor import data, paths

    cache = paths.weights_dir()
    report["weights"] = {name: (cache / filename).is_file() for name, filename in KNOWN_WEIGHTS.items()}
    report["weights_dir"] = str(cache)
    from segtutor import datasets

    report["datasets"] = datasets.status()
    report["data_dir"] = str(paths.data_dir())

    samples = {}
    for name in data.SAMPLE_IMAGES:
        try:
            data.sample_image(name)
            samples[name] = True
        except Exception:
            samples[name] = False
    report["sample_images"] = samples
    lessons = paths.lessons_dir()
    report["lessons"] = sorted(p.name for p in lessons.glob("*.ipynb")) if lessons else []
    report["lessons_dir"] = str(lessons) if lessons else None
    return report


def format_report(report: dict) -> str:
    lines = ["segtutor doctor", "", "Versions"]
    lines += [f"  {name:<14} {version}" for name, version in report["versions"].items()]
    lines += ["", f"Interpreter      {report['executable']}", f"Device           {report['device']}"]
    lines.append(f"Widgets          {'enabled' if report['widgets'] else 'NOT enabled (pip install ipywidgets)'}")
    ok = [n for n, v in report["sample_images"].items() if v]
    missing = [n for n, v in report["sample_images"].items() if not v]
    lines.append(f"Sample images    {len(ok)} available offline" + (f"; missing: {', '.join(missing)}" if missing else ""))
    cached = [n for n, v in report["weights"].items() if v]
    lines.append(
        "Pretrained       "
        + (", ".join(cached) if cached else "none cached (lessons 03-06 start from random weights)")
        + (f"  [{report['weights_dir']}]" if report["weights_dir"] else "")
    )
    have = [n for n, v in report["datasets"].items() if v]
    lines.append(
        "Datasets         "
        + (", ".join(have) if have else "none (the full profile's real data: segtutor fetch datasets)")
        + f"  [{report['data_dir']}]"
    )
    lessons = report["lessons"]
    lines.append(f"Lessons          {len(lessons)} in {report['lessons_dir']}" if lessons else "Lessons          not found (run from the course checkout)")
    return "\n".join(lines)


def main(args=None) -> int:
    print(format_report(collect()))
    return 0
