"""``segtutor fetch``: pre-cache the pretrained weights and datasets of the full profile.

An instructor runs it once while preparing a hub image (or a shared volume); the
lessons then find everything offline. Each file is checked before it is kept:
torchvision's weight files carry the first hex digits of their SHA-256 in their
name (``resnet18-f37072fd.pth``, checked as ``torch.hub`` checks it), and the
dataset archives have the MD5 sums torchvision publishes. What is already present
and intact is not downloaded again. Without a network it stops at the first
download with one message saying what to do instead.

::

    segtutor fetch                 everything (weights, voc, pet, pennfudan)
    segtutor fetch weights pet     the weights and the Oxford-IIIT Pet
    segtutor fetch --list          what is present and what would be downloaded

Weights go to :func:`segtutor.paths.weights_dir` (``$TORCH_HOME``), datasets to
:func:`segtutor.paths.data_dir` (``$SEGTUTOR_DATA``).

Examples
--------
>>> from segtutor.tools import fetch
>>> [item.name for item in fetch.plan(["resnet18"])]
['resnet18']
>>> fetch.plan(["resnet18"])[0].files[0].checksum
('sha256', 'f37072fd')
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import sys
from pathlib import Path

__all__ = ["WEIGHTS", "DATASETS", "TIMEOUT", "FetchError", "File", "Item", "plan", "present", "fetch", "main",
           "add_arguments"]

#: torchvision weights the lessons use, by name: backbones (lessons 03-05) and Mask R-CNN (06).
WEIGHTS = {
    "alexnet": "AlexNet_Weights.IMAGENET1K_V1",
    "vgg16": "VGG16_Weights.IMAGENET1K_V1",
    "googlenet": "GoogLeNet_Weights.IMAGENET1K_V1",
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
    "resnet50": "ResNet50_Weights.IMAGENET1K_V1",
    "maskrcnn_resnet50_fpn_v2": "MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
}

#: The datasets of :mod:`segtutor.datasets`.
DATASETS = ("voc", "pet", "pennfudan")

#: Seconds to wait for a server before a download fails.
TIMEOUT = 20


class FetchError(RuntimeError):
    """A download failed (offline, server error) or a file did not match its checksum."""


@dataclasses.dataclass(frozen=True)
class File:
    """One file to download: its URL, where it goes, its checksum ``(kind, value)`` or None."""

    url: str
    path: Path
    checksum: tuple | None
    extract_to: Path | None = None


@dataclasses.dataclass(frozen=True)
class Item:
    """A weights file or a dataset: the files to download and where it ends up (``target``)."""

    name: str
    kind: str  # "weights" or "dataset"
    files: tuple
    target: Path


def _weight_item(name: str) -> Item:
    import torch.hub
    import torchvision

    from segtutor import paths

    url = torchvision.models.get_weight(WEIGHTS[name]).url
    filename = url.rsplit("/", 1)[-1]
    match = torch.hub.HASH_REGEX.search(filename)
    checksum = ("sha256", match.group(1)) if match else None
    path = paths.weights_dir() / filename
    return Item(name, "weights", (File(url, path, checksum),), path)


def _dataset_item(name: str) -> Item:
    from segtutor import datasets, paths

    root = paths.data_dir()
    extract_to = {"voc": root, "pet": root / "oxford-iiit-pet", "pennfudan": root}[name]
    target = {"voc": root / "VOCdevkit" / "VOC2012", "pet": root / "oxford-iiit-pet",
              "pennfudan": root / "PennFudanPed"}[name]
    files = tuple(
        File(url, root / "downloads" / url.rsplit("/", 1)[-1], ("md5", md5) if md5 else None, extract_to)
        for url, md5 in datasets.SOURCES[name]
    )
    return Item(name, "dataset", files, target)


def plan(names=("all",)) -> list:
    """The :class:`Item` s that ``names`` stand for.

    Parameters
    ----------
    names : sequence of str
        Weight names (:data:`WEIGHTS`), dataset names (:data:`DATASETS`), ``"weights"``
        (every weight), ``"datasets"`` or ``"all"``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).

    Examples
    --------
    >>> [item.name for item in plan(["datasets"])]
    ['voc', 'pet', 'pennfudan']
    >>> plan(["imagenet"])
    Traceback (most recent call last):
    ...
    ValueError: unknown item 'imagenet'; known: all, weights, datasets, alexnet, vgg16, googlenet, resnet18, resnet50, maskrcnn_resnet50_fpn_v2, voc, pet, pennfudan
    """
    if isinstance(names, str):
        names = [names]
    chosen = []
    for name in names:
        if name == "all":
            chosen += [*WEIGHTS, *DATASETS]
        elif name == "weights":
            chosen += list(WEIGHTS)
        elif name == "datasets":
            chosen += list(DATASETS)
        elif name in WEIGHTS or name in DATASETS:
            chosen.append(name)
        else:
            known = ", ".join(["all", "weights", "datasets", *WEIGHTS, *DATASETS])
            raise ValueError(f"unknown item {name!r}; known: {known}")
    unique = list(dict.fromkeys(chosen))
    return [_weight_item(n) if n in WEIGHTS else _dataset_item(n) for n in unique]


def _digest(path: Path, kind: str) -> str:
    h = hashlib.new(kind)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _intact(file: File, path: Path | None = None) -> bool:
    path = path or file.path
    if not path.is_file():
        return False
    if file.checksum is None:
        return True
    kind, value = file.checksum
    return _digest(path, kind).startswith(value)


def present(item: Item) -> bool:
    """Whether ``item`` is there: the weights file intact (checksum), or the dataset's layout in place.

    Examples
    --------
    >>> present(plan(["pennfudan"])[0]) in (True, False)
    True
    """
    if item.kind == "weights":
        return _intact(item.files[0])
    from segtutor import datasets, paths

    return datasets.status(paths.data_dir())[item.name]


def _default_download(url: str, path: Path):
    import torch.hub

    torch.hub.download_url_to_file(url, str(path), progress=sys.stderr.isatty())


def _offline(url: str, exc: Exception) -> FetchError:
    from segtutor import paths

    return FetchError(
        f"cannot download {url} ({type(exc).__name__}: {exc}). This machine seems to have no "
        f"internet access: run `segtutor fetch` where there is one and copy the weights "
        f"({paths.weights_dir()}, set TORCH_HOME) and the datasets ({paths.data_dir()}, set SEGTUTOR_DATA) here."
    )


def _get(file: File, download, log):
    """Download one file to a partial name, check it, then move it into place."""
    if _intact(file):
        log(f"  {file.path.name}: already downloaded, checksum ok")
        return
    file.path.parent.mkdir(parents=True, exist_ok=True)
    partial = file.path.with_name(file.path.name + ".partial")
    partial.unlink(missing_ok=True)
    log(f"  downloading {file.url}")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TIMEOUT)
    try:
        download(file.url, partial)
    except OSError as exc:  # URLError, timeouts, refused connections, DNS failures
        partial.unlink(missing_ok=True)
        raise _offline(file.url, exc) from None
    finally:
        socket.setdefaulttimeout(previous)
    if not partial.is_file():
        raise FetchError(f"downloading {file.url} produced no file at {partial}")
    if file.checksum is not None:
        kind, value = file.checksum
        got = _digest(partial, kind)
        if not got.startswith(value):
            partial.unlink()
            raise FetchError(f"{file.url} does not match its checksum: {kind} {got[:len(value)]}..., "
                             f"expected {value}; the download was discarded (try again)")
    os.replace(partial, file.path)


def fetch(names=("all",), *, download=None, log=print) -> dict:
    """Download whatever of ``names`` is missing, checking every file.

    Parameters
    ----------
    names : sequence of str
        See :func:`plan`.
    download : callable, optional
        ``download(url, path)`` writes the file at ``url`` to ``path``
        (default: ``torch.hub.download_url_to_file``, with a :data:`TIMEOUT` s timeout).
    log : callable
        Called with each line of progress.

    Returns
    -------
    dict
        ``{name: "present" or "downloaded"}``.

    Raises
    ------
    FetchError
        At the first download that fails (e.g. offline: the message says how to copy
        the files from another machine) or file that does not match its checksum.

    Examples
    --------
    >>> import os, tempfile
    >>> saved = os.environ.get("TORCH_HOME")
    >>> os.environ["TORCH_HOME"] = tempfile.mkdtemp()          # an empty weights cache
    >>> def offline(url, path):
    ...     raise OSError("Network is unreachable")
    >>> fetch(["resnet18"], download=offline, log=lambda line: None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segtutor.tools.fetch.FetchError: cannot download https://download.pytorch.org/models/resnet18-f37072fd.pth (OSError: Network is unreachable)...
    >>> if saved is None: del os.environ["TORCH_HOME"]
    ... else: os.environ["TORCH_HOME"] = saved
    """
    download = download or _default_download
    if not callable(download):
        raise TypeError(f"download must be callable as download(url, path), got {type(download).__name__}")
    done = {}
    for item in plan(names):
        if present(item):
            log(f"{item.name}: present ({item.target})")
            done[item.name] = "present"
            continue
        log(f"{item.name}: fetching into {item.target}")
        for file in item.files:
            _get(file, download, log)
        if item.kind == "dataset":
            from torchvision.datasets.utils import extract_archive

            for file in item.files:
                log(f"  extracting {file.path.name} into {file.extract_to}")
                try:
                    extract_archive(file.path, file.extract_to)
                except Exception as exc:
                    raise FetchError(f"cannot extract {file.path} ({type(exc).__name__}: {exc}); "
                                     f"delete it and run `segtutor fetch {item.name}` again") from None
            if not present(item):
                raise FetchError(f"{item.name}: the archives were extracted but the expected layout is not in "
                                 f"{item.target}; see segtutor.datasets.LAYOUTS[{item.name!r}]")
        done[item.name] = "downloaded"
    return done


def add_arguments(parser):
    """Add the options of ``segtutor fetch`` to an :class:`argparse.ArgumentParser`.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> parser.parse_args(["weights", "pet"]).items
    ['weights', 'pet']
    """
    parser.add_argument("items", nargs="*", default=["all"], metavar="ITEM",
                        help="what to fetch: all (default), weights, datasets, or names: "
                             + ", ".join([*WEIGHTS, *DATASETS]))
    parser.add_argument("--list", action="store_true", help="say what is present and what would be downloaded")


def main(args) -> int:
    """Run ``segtutor fetch`` with parsed arguments; returns the exit status (1: a download failed).

    Examples
    --------
    >>> import argparse
    >>> main(argparse.Namespace(items=["imagenet"], list=False))
    2
    """
    try:
        items = plan(args.items)
    except ValueError as exc:
        print(f"segtutor fetch: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for item in items:
            state = "present" if present(item) else "missing: " + ", ".join(f.url for f in item.files)
            print(f"{item.name:<26} {state}  [{item.target}]")
        return 0
    try:
        done = fetch(args.items)
    except FetchError as exc:
        print(f"segtutor fetch: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a folder that cannot be written, a full disk
        print(f"segtutor fetch: {exc} (TORCH_HOME and SEGTUTOR_DATA choose where the files go)", file=sys.stderr)
        return 1
    print(f"segtutor fetch: {sum(v == 'downloaded' for v in done.values())} downloaded, "
          f"{sum(v == 'present' for v in done.values())} already present")
    return 0
