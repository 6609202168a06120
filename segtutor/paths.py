"""Where the course's files are: lessons, data, caches and pretrained weights.

Every part of segtutor asks here, so the answer is the same for the ``segtutor``
command, the lessons, the tests, the benchmarks and the grader.

=========================  =============================================  ==========================
function                   what it returns                                overridden by
=========================  =============================================  ==========================
:func:`checkout`           the course checkout segtutor runs from         --
:func:`lessons_dir`        its ``lessons/`` (nbgrader source notebooks)   ``SEGTUTOR_LESSONS``
:func:`data_dir`           datasets for the full profile (VOC, Pets, …)   ``SEGTUTOR_DATA``
:func:`cache_dir`          checkpoints of trained models, other caches    ``SEGTUTOR_CACHE``
:func:`weights_dir`        torchvision's pretrained-weights cache         ``TORCH_HOME``
=========================  =============================================  ==========================

Examples
--------
>>> from segtutor import paths
>>> paths.lessons_dir().name
'lessons'
>>> paths.cache_dir().is_absolute()
True
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "checkout", "data_dir", "lessons_dir", "weights_dir"]


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else None


def checkout() -> Path | None:
    """The checkout this copy of segtutor was installed from (editable install), or None.

    None for a plain (non-editable) installation, where the lessons are not next to
    the package.
    """
    root = Path(__file__).resolve().parent.parent
    if (root / "lessons").is_dir() and (root / "pyproject.toml").is_file():
        return root
    return None


def lessons_dir() -> Path | None:
    """The folder of lesson source notebooks, or None when there is none.

    ``SEGTUTOR_LESSONS`` when set; else the checkout's ``lessons/``; else
    ``./lessons`` when it holds notebooks.
    """
    chosen = _env_path("SEGTUTOR_LESSONS")
    if chosen is not None:
        return chosen
    root = checkout()
    if root is not None:
        return root / "lessons"
    here = Path.cwd() / "lessons"
    if here.is_dir() and any(here.glob("*.ipynb")):
        return here
    return None


def _user_cache() -> Path:
    base = _env_path("XDG_CACHE_HOME") or Path.home() / ".cache"
    return base.resolve()


def cache_dir() -> Path:
    """Where trained checkpoints and other caches go (``SEGTUTOR_CACHE``, else ``~/.cache/segtutor``).

    The folder is not created here; writers create it.
    """
    return _env_path("SEGTUTOR_CACHE") or _user_cache() / "segtutor"


def data_dir() -> Path:
    """Where real datasets live (``SEGTUTOR_DATA``, else ``~/.cache/segtutor/data``)."""
    return _env_path("SEGTUTOR_DATA") or cache_dir() / "data"


def weights_dir() -> Path:
    """torchvision's weights cache: ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch`` by default).

    Computed as torch computes it, without importing torch.
    """
    torch_home = _env_path("TORCH_HOME") or _user_cache() / "torch"
    return torch_home / "hub" / "checkpoints"
