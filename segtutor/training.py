"""Training utilities shared by the deep-learning lessons (04 FCN, 05, 06 Mask R-CNN).

Three small pieces that every training lesson needs, and nothing more (the training
loops themselves stay in the topic modules, readable top to bottom):

=============================  ====================================================
function                       what it does
=============================  ====================================================
:func:`device`                 CUDA when present, else the CPU
:func:`seed_everything`        seeds Python, NumPy and torch; deterministic CPU ops
:func:`cached`                 runs a deterministic training once, then reloads it
:func:`cache_key`              the key :func:`cached` files a training under
:func:`checkpoint_path`        where that checkpoint lives
:func:`describe_run`           "trained in 41 s" / "loaded the model trained ..."
:func:`plot_history`           loss and validation curves of a training
=============================  ====================================================

torch is imported inside the functions, so ``import segtutor.training`` is quick.

Examples
--------
>>> import os, tempfile
>>> from segtutor import training
>>> saved = os.environ.get("SEGTUTOR_CACHE")
>>> os.environ["SEGTUTOR_CACHE"] = tempfile.mkdtemp()
>>> def train():
...     return {"answer": 42}
>>> training.cached("doc-example", {"steps": 1}, train)
({'answer': 42}, False)
>>> training.cached("doc-example", {"steps": 1}, train)
({'answer': 42}, True)
>>> if saved is None:
...     del os.environ["SEGTUTOR_CACHE"]
... else:
...     os.environ["SEGTUTOR_CACHE"] = saved
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import math
import numbers
import os
import random
import re
import sys
import tempfile
import types
from pathlib import Path
from typing import Callable

import numpy as np

from segtutor._checks import describe

__all__ = [
    "cache_key",
    "cached",
    "checkpoint_path",
    "cpu_threads",
    "data_loader",
    "describe_run",
    "device",
    "plot_history",
    "seed_everything",
]

#: Format of the file written by :func:`cached`; bump it when the layout changes.
_FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_TRUE = {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- device, seeds


def device():
    """The device to train on: ``cuda`` when a GPU is available, else ``cpu``.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> from segtutor import training
    >>> training.device().type in ("cpu", "cuda")
    True
    """
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def cpu_threads(n):
    """Run a block with ``n`` torch CPU threads (0 or ``None``: keep the setting), then restore it.

    The course's CPU trainings use one thread: the same bits on every CPU, and no
    slow-down when other programs share the machine (threads that wait on each other
    on a busy CPU can be ten times slower).

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with cpu_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    import torch

    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def data_loader(data, batch_size, settings, *, shuffle, seed=0, collate_fn=None, drop_last=False,
                persistent_workers=False):
    """A ``torch.utils.data.DataLoader`` set up by a profile's :class:`~segtutor.profiles.Settings`.

    ``settings.num_workers`` worker processes, pinned memory on CUDA, and the order
    (and the workers' seeds) drawn from a generator seeded with ``seed``: on the CPU
    the same seed gives the same batches, with or without workers.

    Examples
    --------
    >>> from segtutor import profiles
    >>> loader = data_loader(list(range(5)), 2, profiles.settings("quick"), shuffle=True, seed=3)
    >>> [batch.tolist() for batch in loader] == [batch.tolist() for batch in loader.__class__(
    ...     list(range(5)), batch_size=2, shuffle=True, generator=__import__("torch").Generator().manual_seed(3))]
    True
    """
    import torch
    from torch.utils.data import DataLoader

    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, collate_fn=collate_fn,
                      num_workers=settings.num_workers, generator=torch.Generator().manual_seed(seed),
                      persistent_workers=persistent_workers and settings.num_workers > 0,
                      pin_memory=settings.device == "cuda")


def seed_everything(seed) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Also asks torch for deterministic algorithms where it has them
    (``torch.use_deterministic_algorithms(True, warn_only=True)``): on the CPU
    this costs nothing for the layers the course uses, and the same seed gives
    bit-identical weights. On a GPU, results may still differ in the last bits
    from a CPU run and between GPU models.

    Parameters
    ----------
    seed : int
        0 to 2**32 - 1.

    Examples
    --------
    >>> import torch
    >>> from segtutor import training
    >>> training.seed_everything(0); a = torch.rand(2)
    >>> training.seed_everything(0); b = torch.rand(2)
    >>> bool(torch.equal(a, b))
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {describe(seed)}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be between 0 and 2**32 - 1, got {int(seed)}")
    import torch

    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    torch.use_deterministic_algorithms(True, warn_only=True)


# --------------------------------------------------------------------------- the checkpoint cache


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'fcn8s', got {describe(name)}")
    if not _NAME.match(name):
        raise ValueError(
            "name must be 1 to 100 letters, digits, '.', '_' or '-' (it becomes part of a file "
            f"name) and start with a letter or digit; got {name!r}"
        )
    return name


def _canonical_json(config) -> str:
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict of settings, got {describe(config)}")

    def check(value, where):
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"config keys must be strings; {where} has the key {key!r}")
                check(item, f"{where}[{key!r}]")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                check(item, f"{where}[{i}]")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"config values must be finite; {where} is {value!r}")
        elif not (value is None or isinstance(value, (bool, int, str))):
            raise TypeError(
                f"config values must be numbers, strings, None, lists or dicts of them "
                f"(so that they have one JSON spelling); {where} is {describe(value)}"
            )

    check(config, "config")
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _module_of(func) -> types.ModuleType | None:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.getmodule(func)


def _source_text(module) -> str:
    """The source of a module (a module object or a dotted name)."""
    if isinstance(module, str):
        import importlib

        module = importlib.import_module(module)
    if not isinstance(module, types.ModuleType):
        raise TypeError(f"sources must hold modules or module names, got {describe(module)}")
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):  # e.g. a notebook's __main__: it has no source file
        return f"<no source for {module.__name__}>"


def cache_key(name: str, config: dict, train: Callable | None = None, *, sources=()) -> str:
    """The sha256 under which :func:`cached` files a training.

    It changes whenever anything that could change the trained weights changes:
    the ``name``, the ``config`` (as canonical JSON: sorted keys, one spelling per
    value), the versions of segtutor, torch and torchvision, and the source code of
    the module that defines ``train`` and of each module in ``sources``.

    Parameters
    ----------
    name : str
        Short name of the training, e.g. ``"fcn8s"``.
    config : dict
        Every setting of the training: numbers, strings, None, lists and dicts.
    train : callable, optional
        The training function; the source of its module is part of the key.
    sources : sequence of modules or module names
        Further modules whose source is part of the key (the model's, say).

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> from segtutor import training
    >>> a = training.cache_key("fcn8s", {"lr": 0.01, "steps": 300})
    >>> a == training.cache_key("fcn8s", {"steps": 300, "lr": 0.01})  # key order does not matter
    True
    >>> a == training.cache_key("fcn8s", {"lr": 0.01, "steps": 301})
    False
    """
    import torch
    import torchvision

    import segtutor

    parts = [
        f"format={_FORMAT}",
        f"name={_check_name(name)}",
        f"config={_canonical_json(config)}",
        f"segtutor={segtutor.__version__}",
        f"torch={torch.__version__}",
        f"torchvision={torchvision.__version__}",
    ]
    if isinstance(sources, (str, types.ModuleType)):
        sources = [sources]
    modules = list(sources)
    if train is not None:
        if not callable(train):
            raise TypeError(f"train must be a function that returns a dict, got {describe(train)}")
        module = _module_of(train)
        if module is not None:
            modules.insert(0, module)
    for module in modules:
        parts.append(_source_text(module))
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def checkpoint_path(name: str, key: str) -> Path:
    """Where the checkpoint of a training lives: ``cache_dir()/checkpoints/<name>-<key[:16]>.pt``.

    Examples
    --------
    >>> from segtutor import training
    >>> training.checkpoint_path("fcn8s", "0123456789abcdef" * 4).name
    'fcn8s-0123456789abcdef.pt'
    """
    from segtutor import paths

    if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{16,64}", key):
        raise ValueError(f"key must be a hexadecimal sha256 from cache_key(), got {describe(key)}")
    return paths.cache_dir() / "checkpoints" / f"{_check_name(name)}-{key[:16]}.pt"


def _retrain_requested() -> bool:
    return os.environ.get("SEGTUTOR_RETRAIN", "").strip().lower() in _TRUE


def _save_atomically(obj, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _load(path: Path, key: str):
    """The payload stored at ``path``; raises ``ValueError`` when the file is not ours or broken."""
    import torch

    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated file, garbage, a pickle with code in it, ...
        raise ValueError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(stored, dict) or stored.get("format") != _FORMAT:
        raise ValueError("not a segtutor checkpoint")
    if stored.get("key") != key:
        raise ValueError("it was written for other settings")
    if not isinstance(stored.get("payload"), dict):
        raise ValueError("it holds no payload")
    return stored["payload"]


def cached(name: str, config: dict, train: Callable[[], dict], *, sources=()) -> tuple[dict, bool]:
    """Run a deterministic training once; later calls with the same settings reload its result.

    The result of ``train()`` is saved under :func:`checkpoint_path`, keyed by
    :func:`cache_key` (name, config, library versions, source code). Because the
    training is deterministic, reloading gives the same weights as training again,
    only faster.

    * ``SEGTUTOR_RETRAIN=1`` in the environment trains again (and refreshes the file).
    * A checkpoint that cannot be read (truncated, not a checkpoint, written for other
      settings) is reported in one line and the model is trained again.
    * Files are written atomically (a temporary file, then a rename) and read with
      ``torch.load(weights_only=True)``, which runs no code from the file.

    Parameters
    ----------
    name : str
        Short name of the training (letters, digits, ``.``, ``_``, ``-``), e.g. ``"fcn8s"``.
    config : dict
        Every setting that changes the result (numbers, strings, lists, dicts).
    train : callable
        ``train()`` trains and returns the payload: a dict of tensors, numbers,
        strings, and lists/dicts of them, e.g. ``{"state_dict": ..., "history": ...}``.
    sources : sequence of modules or module names
        Further modules whose source code is part of the key; the module that
        defines ``train`` always is.

    Returns
    -------
    payload : dict
        What ``train()`` returned, now or in an earlier run.
    from_cache : bool
        True when it was loaded from the cache.

    Raises
    ------
    TypeError, ValueError
        On a bad name or config, a ``train`` that is not callable or that returns
        something other than a dict.

    Examples
    --------
    >>> import os, tempfile
    >>> from segtutor import training
    >>> saved = os.environ.get("SEGTUTOR_CACHE")
    >>> os.environ["SEGTUTOR_CACHE"] = tempfile.mkdtemp()
    >>> calls = []
    >>> def train():
    ...     calls.append(1)
    ...     return {"loss": [0.9, 0.5]}
    >>> training.cached("example", {"lr": 0.1}, train)[1], training.cached("example", {"lr": 0.1}, train)[1]
    (False, True)
    >>> len(calls)  # trained once
    1
    >>> if saved is None:
    ...     del os.environ["SEGTUTOR_CACHE"]
    ... else:
    ...     os.environ["SEGTUTOR_CACHE"] = saved
    """
    _check_name(name)
    if not callable(train):
        raise TypeError(f"train must be a function that returns a dict, got {describe(train)}")
    key = cache_key(name, config, train, sources=sources)
    path = checkpoint_path(name, key)
    if path.exists() and not _retrain_requested():
        try:
            return _load(path, key), True
        except ValueError as exc:
            print(f"The saved checkpoint {path.name} cannot be used ({exc}); training again.")
    payload = train()
    if not isinstance(payload, dict):
        raise TypeError(f"train() must return a dict (e.g. {{'state_dict': ...}}), got {describe(payload)}")
    record = {"format": _FORMAT, "name": name, "key": key, "config": _canonical_json(config), "payload": payload}
    try:
        _save_atomically(record, path)
    except OSError as exc:  # a read-only cache must not lose a finished training
        print(f"Could not save the checkpoint to {path} ({exc}); it will be trained again next time.",
              file=sys.stderr)
    return payload, False


def describe_run(from_cache: bool, seconds: float | None = None) -> str:
    """One line saying whether a model was trained now or reloaded.

    Examples
    --------
    >>> from segtutor import training
    >>> training.describe_run(False, 41.2)
    'trained in 41 s'
    >>> training.describe_run(True)
    'loaded the model trained earlier with the same settings (SEGTUTOR_RETRAIN=1 retrains)'
    """
    if from_cache:
        return "loaded the model trained earlier with the same settings (SEGTUTOR_RETRAIN=1 retrains)"
    if seconds is None:
        return "trained now"
    return f"trained in {float(seconds):.0f} s"


# --------------------------------------------------------------------------- curves


_LABELS = {"loss": "training loss", "val_miou": "validation mIoU", "val_boundary_f1": "validation boundary F-score",
           "val_pixel_accuracy": "validation pixel accuracy"}


def plot_history(history: dict, *, loss="loss", metrics=("val_miou",), ax=None, title=None, legend=True):
    """Plot a training's loss (left axis) and validation metrics (right axis).

    Parameters
    ----------
    history : dict
        ``history[loss]`` is a list of losses, one per iteration (or per logged
        step); ``history[name]`` for each name in ``metrics`` a list of values, with
        ``history["eval_at"]`` the iterations at which they were measured (default:
        evenly spread over the run).
    loss : str
        Key of the loss curve.
    metrics : sequence of str
        Keys of the validation curves (values in [0, 1]).
    ax : matplotlib Axes, optional
    title : str, optional
    legend : bool
        Draw a legend on the axes (turn it off to draw one for several plots).

    Returns
    -------
    matplotlib.axes.Axes
        The loss axes; the metrics are on its twin (``ax.right``).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from segtutor import training
    >>> history = {"loss": [1.0, 0.6, 0.4, 0.3], "val_miou": [0.5, 0.8], "eval_at": [2, 4]}
    >>> ax = training.plot_history(history)
    >>> ax.get_ylabel(), ax.right.get_ylabel()
    ('training loss', 'validation score')
    >>> plt.close(ax.figure)
    """
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict of lists, got {describe(history)}")
    if isinstance(metrics, str):
        metrics = (metrics,)
    for key in (loss, *metrics):
        if key not in history:
            raise ValueError(f"history has no {key!r} curve; it has {sorted(history)}")
    losses = np.asarray(history[loss], dtype=float)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"history[{loss!r}] must be a non-empty list of numbers")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.4), layout="constrained")
    steps = np.arange(1, losses.size + 1)
    name = _LABELS.get(loss, loss.replace("_", " "))
    ax.plot(steps, losses, color="0.6", linewidth=0.8, label=f"{name}, per step")
    if losses.size >= 20:  # a running mean shows the trend under the noise of mini-batches
        width = max(5, losses.size // 20)
        smooth = np.convolve(losses, np.ones(width) / width, mode="valid")
        ax.plot(steps[width - 1:], smooth, color="black", linewidth=1.5, label=f"{name}, mean of {width} steps")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    right = ax.twinx()
    colors = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")  # Okabe-Ito
    for i, key in enumerate(metrics):
        values = np.asarray(history[key], dtype=float)
        at = history.get("eval_at")
        at = np.asarray(at) if at is not None else np.linspace(losses.size / values.size, losses.size, values.size)
        if len(at) != len(values):
            raise ValueError(f"history['eval_at'] has {len(at)} entries but {key!r} has {len(values)}")
        right.plot(at, values, "o-", color=colors[i % len(colors)], label=_LABELS.get(key, key.replace("_", " ")))
    right.set_ylim(0, 1)
    right.set_ylabel("validation score")
    if legend:
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="center right", fontsize="small")
    if title is not None:
        ax.set_title(str(title))
    ax.right = right
    return ax
