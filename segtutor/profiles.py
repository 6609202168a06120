"""Quick and full profiles: how big a run of a lesson is on this machine.

=========  ===========================================================================
profile    what the lessons do
=========  ===========================================================================
quick      synthetic data and small models; seconds on a laptop CPU (the default
           without a CUDA device)
full       real data (:mod:`segtutor.datasets`), pretrained backbones, CUDA with mixed
           precision, data-loader workers sized to the machine (the default with CUDA)
=========  ===========================================================================

Choose one with the environment variable ``SEGTUTOR_PROFILE=quick`` or ``full``;
every lesson asks :func:`profile` (or :func:`settings`), so one variable switches the
whole course. The numbers of a run depend only on the profile and the seed: the
full profile on a CPU gives the same numbers for the same seed every time.

Examples
--------
>>> from segtutor import profiles
>>> profiles.profile("quick")
'quick'
>>> profiles.settings("quick").device
'cpu'

The lessons' "on a hub" sections ask :func:`hub_section` whether to run:

>>> profiles.hub_section("pennfudan", "trains Mask R-CNN on the photographs", profile="quick")
On a hub: skipped (quick profile). With SEGTUTOR_PROFILE=full and Penn-Fudan pedestrians in the data folder (`segtutor fetch pennfudan`), this section trains Mask R-CNN on the photographs.
False
"""

from __future__ import annotations

import dataclasses
import os

__all__ = ["PROFILES", "ENV_VAR", "Settings", "profile", "settings", "hub_section"]

#: The profiles, lightest first.
PROFILES = ("quick", "full")

#: The environment variable that chooses the profile.
ENV_VAR = "SEGTUTOR_PROFILE"


def _cuda_available() -> bool:
    try:
        import torch
    except Exception:  # no torch: the quick profile is all there is
        return False
    return bool(torch.cuda.is_available())


def profile(name=None) -> str:
    """The profile to run: ``"quick"`` or ``"full"``.

    Parameters
    ----------
    name : {"quick", "full"}, optional
        Use this profile. By default ``$SEGTUTOR_PROFILE``; when it is unset or
        empty, ``"full"`` if a CUDA device is available and ``"quick"`` otherwise.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For any other value (of ``name`` or of ``SEGTUTOR_PROFILE``).

    Examples
    --------
    >>> profile("full")
    'full'
    >>> profile("fast")
    Traceback (most recent call last):
    ...
    ValueError: unknown profile 'fast': expected 'quick' or 'full'
    """
    source = "profile"
    if name is None:
        name = os.environ.get(ENV_VAR, "").strip()
        source = ENV_VAR
        if not name:
            return "full" if _cuda_available() else "quick"
    if not isinstance(name, str):
        raise TypeError(f"profile must be the string 'quick' or 'full', got {type(name).__name__} {name!r}")
    chosen = name.strip().lower()
    if chosen not in PROFILES:
        where = "" if source == "profile" else f" in {ENV_VAR}"
        raise ValueError(f"unknown profile {name!r}{where}: expected 'quick' or 'full'")
    return chosen


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a profile means on this machine.

    Attributes
    ----------
    name : str
        ``"quick"`` or ``"full"``.
    device : str
        ``"cuda"`` for the full profile when a CUDA device is available, else ``"cpu"``.
    mixed_precision : bool
        Autocast to float16 (only on CUDA: the CPU keeps float32 and its exact numbers).
    num_workers : int
        Data-loader worker processes: 0 for quick, one per core up to 8 (keeping one core
        for the notebook) for full.
    real_data : bool
        Whether lessons use the real datasets of :mod:`segtutor.datasets` when present.
    pretrained : bool
        Whether lessons start from pretrained backbones when the weights are cached.
    """

    name: str
    device: str
    mixed_precision: bool
    num_workers: int
    real_data: bool
    pretrained: bool

    def cache_key(self) -> dict:
        """What of these settings changes a training's numbers: device, precision, workers.

        A part of the key of :func:`segtutor.training.cached` for the "on a hub" runs.

        Examples
        --------
        >>> settings("quick").cache_key()
        {'device': 'cpu', 'mixed_precision': False, 'workers': 0}
        """
        return {"device": self.device, "mixed_precision": self.mixed_precision, "workers": self.num_workers}

    @property
    def _half(self) -> bool:
        return bool(self.mixed_precision) and self.device == "cuda"

    def autocast(self):
        """``torch.autocast`` to float16 on CUDA with mixed precision; a no-op elsewhere.

        Examples
        --------
        >>> import torch
        >>> with settings("quick").autocast():
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32
        """
        import torch

        return torch.autocast(torch.device(self.device).type, dtype=torch.float16, enabled=self._half)

    def grad_scaler(self):
        """A ``torch.amp.GradScaler`` for the device, enabled with :meth:`autocast`'s float16."""
        import torch

        return torch.amp.GradScaler(torch.device(self.device).type, enabled=self._half)


def settings(name=None) -> Settings:
    """The :class:`Settings` of a profile on this machine.

    Parameters
    ----------
    name : {"quick", "full"}, optional
        As for :func:`profile` (default: ``$SEGTUTOR_PROFILE``, else by device).

    Returns
    -------
    Settings

    Examples
    --------
    >>> s = settings("quick")
    >>> s.name, s.device, s.mixed_precision, s.num_workers, s.real_data
    ('quick', 'cpu', False, 0, False)
    """
    chosen = profile(name)
    if chosen == "quick":
        return Settings("quick", "cpu", False, 0, False, False)
    cuda = _cuda_available()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Settings(
        "full",
        "cuda" if cuda else "cpu",
        mixed_precision=cuda,
        num_workers=max(0, min(8, cores - 1)),
        real_data=True,
        pretrained=True,
    )


def hub_section(dataset, shows, *, profile=None, root=None) -> bool:
    """Whether a lesson's "on a hub" section runs here; if not, print one line saying why.

    It runs under the full profile when ``dataset`` is present under ``root`` (saying so
    in one line when there is no CUDA device). Otherwise it prints what it would show and
    how to get there, and returns ``False``: the lesson goes on (its cells call the
    section's functions only when this is ``True``).

    Parameters
    ----------
    dataset : {"voc", "pet", "pennfudan"}
        A dataset of :mod:`segtutor.datasets`.
    shows : str
        What the section does, as the end of a sentence ("trains FCN-8s on ...").
    profile : {"quick", "full"}, optional
        Default: :func:`profile`'s choice (``$SEGTUTOR_PROFILE``, else by device).
    root : str or Path, optional
        The data folder (default :func:`segtutor.paths.data_dir`, ``$SEGTUTOR_DATA``).

    Returns
    -------
    bool

    Examples
    --------
    >>> hub_section("voc", "trains FCN-8s on VOC", profile="full", root="/no/such/folder")
    On a hub: skipped: PASCAL VOC 2012 segmentation is not in /no/such/folder (`segtutor fetch voc` puts it there). With it, this section trains FCN-8s on VOC.
    False
    """
    from segtutor import datasets, paths

    if dataset not in datasets.LAYOUTS:
        raise ValueError(f"dataset must be one of {sorted(datasets.LAYOUTS)}, got {dataset!r}")
    if not isinstance(shows, str) or not shows.strip():
        raise TypeError(f"shows must say what the section does (a non-empty string), got {shows!r}")
    title = datasets.TITLES[dataset]
    shows = shows.strip().rstrip(".")
    chosen = settings(profile)
    if chosen.name == "quick":
        print(f"On a hub: skipped (quick profile). With {ENV_VAR}=full and {title} in the data folder "
              f"(`segtutor fetch {dataset}`), this section {shows}.")
        return False
    folder = paths.data_dir() if root is None else root
    if not datasets.status(folder)[dataset]:
        print(f"On a hub: skipped: {title} is not in {folder} (`segtutor fetch {dataset}` puts it there). "
              f"With it, this section {shows}.")
        return False
    if chosen.device == "cpu":
        print("On a hub: no CUDA device here, so this section runs on the CPU: expect it to take much longer.")
    return True
