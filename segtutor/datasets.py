"""Real segmentation datasets: PASCAL VOC 2012, Oxford-IIIT Pet, Penn-Fudan.

The full profile (:mod:`segtutor.profiles`) runs the lessons on real photographs.
The datasets are not shipped with the course: an instructor pre-caches them on a
hub with ``segtutor fetch``, or a learner downloads them with ``download=True``.
All three live under one folder, :func:`segtutor.paths.data_dir`
(``$SEGTUTOR_DATA``), in the layout their publishers (and torchvision) use:

* :class:`VOCSegmentation`: ``VOCdevkit/VOC2012/JPEGImages/<id>.jpg``, the palette PNGs
  ``VOCdevkit/VOC2012/SegmentationClass/<id>.png`` and the split files
  ``VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt``; 21 classes
  (:data:`VOC_CLASSES`) and 255 for "void" (object outlines, unclear pixels).
* :class:`OxfordPet`: ``oxford-iiit-pet/images/<id>.jpg``, the trimaps
  ``oxford-iiit-pet/annotations/trimaps/<id>.png`` (1 pet, 2 background, 3 border) and
  ``oxford-iiit-pet/annotations/{trainval,test}.txt``; background and pet, the border ignored.
* :class:`PennFudan`: ``PennFudanPed/PNGImages/<name>.png`` and the instance masks
  ``PennFudanPed/PedMasks/<name>_mask.png`` (0, then 1..N); one instance per person.

VOC and the Pets are listed by :class:`torchvision.datasets.VOCSegmentation` and
:class:`torchvision.datasets.OxfordIIITPet` (which also download them); the images
are read here, so a corrupt file gives an error that names it. An item is
``(image, target)``: a :class:`torchvision.tv_tensors.Image` and a
:class:`torchvision.tv_tensors.Mask` (for Penn-Fudan instances a detection target
dict), so the transforms of :mod:`torchvision.transforms.v2` move the image and its
labels together (:func:`segmentation_transforms`). Pixels to leave out of the loss
and the scores (VOC's "void" outlines, the Pets' trimap borders) carry
``ignore_index`` (255 by default, as :mod:`segtutor.fcn` uses it: pass the same value to
``torch.nn.CrossEntropyLoss(ignore_index=...)`` and
:func:`segtutor.metrics.confusion_matrix`).

torch and torchvision are imported when a dataset is opened, not with this module.

Examples
--------
>>> from segtutor import datasets
>>> datasets.VOC_CLASSES[15], datasets.voc_palette()[15].tolist()
('person', [192, 128, 128])
>>> sorted(datasets.status(root="/no/such/folder").values())
[False, False, False]
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import numpy as np

from segtutor import data as _data
from segtutor._checks import as_int, describe

__all__ = [
    "IGNORE_INDEX",
    "DOWNLOAD_TIMEOUT",
    "VOC_CLASSES",
    "PET_CLASSES",
    "PENNFUDAN_CLASSES",
    "LAYOUTS",
    "TITLES",
    "SOURCES",
    "VOCSegmentation",
    "OxfordPet",
    "PennFudan",
    "pennfudan_split",
    "voc_palette",
    "decode_voc",
    "segmentation_transforms",
    "status",
]

#: The label of pixels left out of losses and scores.
IGNORE_INDEX = 255

#: PASCAL VOC's 21 classes, indexed by label (0 is the background; 255 is "void").
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)

#: The Pets' labels after reading the trimaps (border pixels become ``ignore_index``).
PET_CLASSES = ("background", "pet")

#: Penn-Fudan's classes (every instance is a person).
PENNFUDAN_CLASSES = ("background", "person")

#: The on-disk layout each dataset needs, relative to the data folder.
LAYOUTS = {
    "voc": ("VOCdevkit/VOC2012/JPEGImages/<id>.jpg",
            "VOCdevkit/VOC2012/SegmentationClass/<id>.png",
            "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt (and val.txt, trainval.txt)"),
    "pet": ("oxford-iiit-pet/images/<id>.jpg",
            "oxford-iiit-pet/annotations/trimaps/<id>.png",
            "oxford-iiit-pet/annotations/trainval.txt (and test.txt)"),
    "pennfudan": ("PennFudanPed/PNGImages/<name>.png",
                  "PennFudanPed/PedMasks/<name>_mask.png"),
}

#: Where each dataset comes from: archive URLs and MD5 checksums (VOC's and the Pets'
#: are torchvision's; the Penn-Fudan page publishes no checksum).
SOURCES = {
    "voc": (("https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
             "6cd6e144f989b92b3379bac3b3de84fd"),),
    "pet": (("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
             "5c4f3ee8e5d25df40f4fd59a7f44e54c"),
            ("https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
             "95a8c909bbe2e81eed6a22bccdf3f68f")),
    "pennfudan": (("https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip", None),),
}

#: Each dataset's name in messages.
TITLES = {"voc": "PASCAL VOC 2012 segmentation", "pet": "Oxford-IIIT Pet",
          "pennfudan": "Penn-Fudan pedestrians"}
_HOW = {
    "voc": "run `segtutor fetch voc` (or pass download=True) where there is internet access",
    "pet": "run `segtutor fetch pet` (or pass download=True) where there is internet access",
    "pennfudan": "run `segtutor fetch pennfudan` where there is internet access, or unzip "
                 "PennFudanPed.zip from https://www.cis.upenn.edu/~jshi/ped_html/ there",
}

#: Seconds a download may wait for the server before it fails (an offline machine fails at once).
DOWNLOAD_TIMEOUT = 30


# =========================================================================== palette


def voc_palette(n=256) -> np.ndarray:
    """The colours of VOC's label PNGs: ``(n, 3)`` uint8, row ``k`` the colour of label ``k``.

    The devkit's bit-interleaving colour map: label 1 is dark red, 15 (person) pink,
    255 (void, the outlines) cream.

    Examples
    --------
    >>> p = voc_palette()
    >>> p.shape, p[1].tolist(), p[255].tolist()
    ((256, 3), [128, 0, 0], [224, 224, 192])
    """
    n = as_int(n, "n", minimum=1, maximum=256)
    palette = np.zeros((n, 3), np.uint8)
    for label in range(n):
        c, rgb = label, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << (7 - bit)
            c >>= 3
        palette[label] = rgb
    return palette


def decode_voc(rgb, *, name="mask") -> np.ndarray:
    """Labels of a VOC mask saved as RGB colours (instead of palette indices).

    Parameters
    ----------
    rgb : (H, W, 3) uint8 array
    name : str
        How the error message names the mask (e.g. its file).

    Returns
    -------
    (H, W) uint8 array of labels (0..20, 255).

    Raises
    ------
    ValueError
        If a colour is not one of VOC's.

    Examples
    --------
    >>> import numpy as np
    >>> decode_voc(voc_palette()[np.array([[0, 15], [255, 1]])]).tolist()
    [[0, 15], [255, 1]]
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB image, got {describe(rgb)}")
    palette = voc_palette().astype(np.int32)
    keys = palette[:, 0] << 16 | palette[:, 1] << 8 | palette[:, 2]
    labels = np.concatenate([np.arange(len(VOC_CLASSES)), [255]])
    code = rgb.astype(np.int32)
    code = code[..., 0] << 16 | code[..., 1] << 8 | code[..., 2]
    lookup = dict(zip(keys[labels].tolist(), labels.tolist()))
    unknown = sorted(set(np.unique(code).tolist()) - set(lookup))
    if unknown:
        c = unknown[0]
        raise ValueError(f"{name} has colour {(c >> 16, (c >> 8) & 255, c & 255)}, which is not a VOC class colour")
    out = np.zeros(code.shape, np.uint8)
    for key, label in lookup.items():
        out[code == key] = label
    return out


# =========================================================================== reading


def _check_root(root, dataset: str) -> Path:
    if root is None:
        from segtutor import paths

        return paths.data_dir()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path to the data folder (holding {LAYOUTS[dataset][0].split('/')[0]}/), "
                        f"got {describe(root)}")
    return Path(root).expanduser()


def _missing(dataset: str, root: Path, what: Path) -> FileNotFoundError:
    layout = "\n".join(f"  {root / entry}" for entry in LAYOUTS[dataset])
    return FileNotFoundError(
        f"{TITLES[dataset]} not found: {what} does not exist. Expected the layout\n{layout}\n"
        f"To get it, {_HOW[dataset]} (the data folder is $SEGTUTOR_DATA, now {root})."
    )


def _open(path: Path, what: str):
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} is missing")
    try:
        image = Image.open(path)
        image.load()
    except Exception as exc:  # truncated download, not an image, ...
        raise OSError(f"cannot read {what} {path}: the file is corrupt or not an image "
                      f"({type(exc).__name__}: {exc}); replace it with a fresh copy") from None
    return image


def _read_image(path: Path) -> np.ndarray:
    return np.asarray(_open(path, "image").convert("RGB"))


def _check_pair(image: np.ndarray, mask: np.ndarray, mask_path: Path):
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask_path} has shape {mask.shape}; expected the image's size {image.shape[:2]}")


def _to_tv(image: np.ndarray, mask: np.ndarray):
    import torch
    from torchvision import tv_tensors

    image = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
    return image, tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(mask)))


def _finish(image, target, transforms):
    """Apply the transforms; with none, the image comes out as float32 in [0, 1]."""
    if transforms is not None:
        return transforms(image, target)
    import torch
    from torchvision.transforms.v2 import functional as TF

    return TF.to_dtype(image, torch.float32, scale=True), target


@contextlib.contextmanager
def _download_guard(dataset: str, root: Path):
    """Turn a network failure into one clear error, after at most DOWNLOAD_TIMEOUT seconds."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    try:
        yield
    except (OSError, RuntimeError) as exc:  # URLError, socket errors, torchvision's checksum error
        urls = ", ".join(url for url, _ in SOURCES[dataset])
        layout = "\n".join(f"  {root / entry}" for entry in LAYOUTS[dataset])
        raise ConnectionError(
            f"could not download {TITLES[dataset]} from {urls} ({type(exc).__name__}: {exc}). "
            f"Without internet access, copy the dataset from a machine that has it, in the layout\n{layout}"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _check_transforms(transforms):
    if transforms is not None and not callable(transforms):
        raise TypeError(f"transforms must be callable as transforms(image, target), got {describe(transforms)}")
    return transforms


def _check_ignore(ignore_index):
    return as_int(ignore_index, "ignore_index", minimum=-(2**31), maximum=2**31 - 1)


class _Segmentation:
    """Shared by the semantic datasets: files, reading, transforms."""

    images: list
    masks: list

    def __len__(self):
        return len(self.images)

    def _index(self, idx) -> int:
        return as_int(idx, "idx", minimum=-len(self), maximum=len(self) - 1) % len(self)

    def _check_files(self, split_file: Path):
        missing = [p for pair in zip(self.images, self.masks) for p in pair if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} file(s) listed in {split_file} are missing, the first {missing[0]}"
            )

    def _labels(self, mask: np.ndarray, path: Path) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, idx):
        idx = self._index(idx)
        image_path, mask_path = Path(self.images[idx]), Path(self.masks[idx])
        image = _read_image(image_path)
        labels = self._labels(_open(mask_path, "mask"), mask_path)
        _check_pair(image, labels, mask_path)
        return _finish(*_to_tv(image, labels), self.transforms)

    def __repr__(self):
        return f"{type(self).__name__}({len(self)} images, split {self.split!r}, root {str(self.root)!r})"


class VOCSegmentation(_Segmentation):
    """PASCAL VOC 2012 semantic segmentation (1464 train, 1449 val images).

    Parameters
    ----------
    root : str or Path, optional
        The folder holding ``VOCdevkit/`` (default :func:`segtutor.paths.data_dir`).
    split : {"train", "val", "trainval"}
    transforms : callable, optional
        ``transforms(image, mask) -> (image, mask)`` on a uint8
        :class:`~torchvision.tv_tensors.Image` ``(3, H, W)`` and an int64
        :class:`~torchvision.tv_tensors.Mask` ``(H, W)``, e.g.
        :func:`segmentation_transforms`. Without it the image comes out float32 in [0, 1].
    download : bool
        Download and extract the 2 GB archive first (torchvision's download, MD5 checked)
        unless it is there.
    ignore_index : int
        The label of VOC's void pixels (255 in the files).

    Attributes
    ----------
    images, masks : list of str
        The files of the split, in order.
    classes : tuple of str
        :data:`VOC_CLASSES`.

    Raises
    ------
    FileNotFoundError
        If the data is not there; the message shows the layout expected and how to get it.
    ConnectionError
        If ``download=True`` and the download fails (e.g. offline).

    Examples
    --------
    >>> VOCSegmentation("/no/such/folder")   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: PASCAL VOC 2012 segmentation not found: /no/such/folder/VOCdevkit/VOC2012 does not exist...
    """

    classes = VOC_CLASSES

    def __init__(self, root=None, split="train", *, transforms=None, download=False, ignore_index=IGNORE_INDEX):
        self.root = _check_root(root, "voc")
        if split not in ("train", "val", "trainval"):
            raise ValueError(f"split must be 'train', 'val' or 'trainval', got {describe(split)}")
        self.split = split
        self.transforms = _check_transforms(transforms)
        self.ignore_index = _check_ignore(ignore_index)
        base = self.root / "VOCdevkit" / "VOC2012"
        import torchvision

        if download and not status(self.root)["voc"]:
            with _download_guard("voc", self.root):
                torchvision.datasets.VOCSegmentation(str(self.root), year="2012", image_set=split, download=True)
        split_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        for needed in (base, base / "JPEGImages", base / "SegmentationClass", split_file):
            if not needed.exists():
                raise _missing("voc", self.root, needed)
        listing = torchvision.datasets.VOCSegmentation(str(self.root), year="2012", image_set=split)
        self.images, self.masks = list(listing.images), list(listing.masks)
        self._check_files(split_file)

    def _labels(self, mask, path):
        if mask.mode in ("P", "L"):
            labels = np.asarray(mask).astype(np.uint8, copy=False)
        elif mask.mode == "RGB":
            labels = decode_voc(np.asarray(mask), name=f"mask {path}")
        else:
            raise ValueError(f"mask {path} has PIL mode {mask.mode!r}; expected a palette ('P') PNG of labels")
        bad = np.setdiff1d(np.unique(labels), np.r_[np.arange(len(VOC_CLASSES)), 255])
        if bad.size:
            raise ValueError(f"mask {path} holds label {int(bad[0])}; VOC labels are 0..20 and 255 (void)")
        out = labels.astype(np.int64)
        out[labels == 255] = self.ignore_index
        return out


class OxfordPet(_Segmentation):
    """The Oxford-IIIT Pet dataset's trimaps as pet/background segmentation.

    7349 photographs of 37 cat and dog breeds (3680 trainval, 3669 test). The trimaps
    mark each pixel as pet (1), background (2) or the uncertain border (3); here they
    become labels 1 pet, 0 background and ``border`` for the border.

    Parameters
    ----------
    root : str or Path, optional
        The folder holding ``oxford-iiit-pet/`` (default :func:`segtutor.paths.data_dir`).
    split : {"trainval", "test"}
    transforms : callable, optional
        As for :class:`VOCSegmentation`.
    download : bool
        Download the two archives (800 MB, MD5 checked) with torchvision unless present.
    border : {"ignore", "pet", "background"}
        What the trimap border becomes: ``ignore_index`` (default), the pet or the background.
    ignore_index : int

    Attributes
    ----------
    images, masks : list of str
    breeds : list of int
        The breed (0..36) of each image, from the split file.

    Examples
    --------
    >>> OxfordPet("/no/such/folder")   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: Oxford-IIIT Pet not found: /no/such/folder/oxford-iiit-pet does not exist...
    """

    classes = PET_CLASSES

    def __init__(self, root=None, split="trainval", *, transforms=None, download=False, border="ignore",
                 ignore_index=IGNORE_INDEX):
        self.root = _check_root(root, "pet")
        if split not in ("trainval", "test"):
            raise ValueError(f"split must be 'trainval' or 'test', got {describe(split)}")
        if border not in ("ignore", "pet", "background"):
            raise ValueError(f"border must be 'ignore', 'pet' or 'background', got {describe(border)}")
        self.split, self.border = split, border
        self.transforms = _check_transforms(transforms)
        self.ignore_index = _check_ignore(ignore_index)
        base = self.root / "oxford-iiit-pet"
        import torchvision

        if download and not status(self.root)["pet"]:
            with _download_guard("pet", self.root):
                torchvision.datasets.OxfordIIITPet(str(self.root), split=split, download=True)
        split_file = base / "annotations" / f"{split}.txt"
        for needed in (base, base / "images", base / "annotations" / "trimaps", split_file):
            if not needed.exists():
                raise _missing("pet", self.root, needed)
        try:
            listing = torchvision.datasets.OxfordIIITPet(str(self.root), split=split)
        except ValueError as exc:
            raise ValueError(f"{split_file} is malformed ({exc}); each line must read "
                             "'<image id> <class 1..37> <species 1..2> <breed id>'") from None
        # torchvision keeps the file names private; its public listing is the order of the split file
        ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
        if len(ids) != len(listing):
            raise ValueError(f"{split_file} lists {len(ids)} images but torchvision reads {len(listing)}")
        self.images = [str(base / "images" / f"{i}.jpg") for i in ids]
        self.masks = [str(base / "annotations" / "trimaps" / f"{i}.png") for i in ids]
        self.breeds = [int(line.split()[1]) - 1 for line in split_file.read_text().splitlines() if line.strip()]
        self._check_files(split_file)

    def _labels(self, mask, path):
        trimap = np.asarray(mask)
        if trimap.ndim != 2:
            raise ValueError(f"trimap {path} has shape {trimap.shape}; expected one channel of values 1, 2, 3")
        bad = np.setdiff1d(np.unique(trimap), [1, 2, 3])
        if bad.size:
            raise ValueError(f"trimap {path} holds value {int(bad[0])}; expected 1 (pet), 2 (background), 3 (border)")
        border = {"ignore": self.ignore_index, "pet": 1, "background": 0}[self.border]
        return np.select([trimap == 1, trimap == 2], [1, 0], border).astype(np.int64)


class PennFudan:
    """Penn-Fudan pedestrians (170 images, 345 people) in torchvision's tutorial layout.

    ``PennFudanPed/PNGImages/<name>.png`` and the instance masks
    ``PennFudanPed/PedMasks/<name>_mask.png`` (0 background, 1..N one value per person).

    Parameters
    ----------
    root : str or Path, optional
        The folder holding ``PennFudanPed/``, or that folder itself (default
        :func:`segtutor.paths.data_dir`).
    target : {"instances", "semantic"}
        ``"instances"``: a detection target dict, as torchvision's Mask R-CNN takes it:
        ``boxes`` (:class:`~torchvision.tv_tensors.BoundingBoxes`, XYXY, ``x1``, ``y1``
        exclusive), ``labels`` (all 1), ``masks`` (:class:`~torchvision.tv_tensors.Mask`
        ``(N, H, W)`` uint8), ``image_id``, ``area`` (of the boxes), ``iscrowd``.
        ``"semantic"``: a :class:`~torchvision.tv_tensors.Mask` ``(H, W)``, 1 person, 0 background.
    transforms : callable, optional
        ``transforms(image, target) -> (image, target)``; the
        :mod:`torchvision.transforms.v2` transforms move boxes and masks with the image.

    Examples
    --------
    >>> PennFudan("/no/such/folder")   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: Penn-Fudan pedestrians not found: /no/such/folder/PennFudanPed does not exist...
    """

    classes = PENNFUDAN_CLASSES

    def __init__(self, root=None, *, target="instances", transforms=None):
        self.root = _check_root(root, "pennfudan")
        if target not in ("instances", "semantic"):
            raise ValueError(f"target must be 'instances' or 'semantic', got {describe(target)}")
        self.target = target
        self.transforms = _check_transforms(transforms)
        base = self.root if (self.root / "PNGImages").is_dir() else self.root / "PennFudanPed"
        for needed in (base, base / "PNGImages", base / "PedMasks"):
            if not needed.is_dir():
                raise _missing("pennfudan", self.root, needed)
        self.base = base
        names = sorted(p.name for p in (base / "PNGImages").iterdir() if p.suffix.lower() == ".png")
        self.images = [str(base / "PNGImages" / n) for n in names]
        self.masks = [str(base / "PedMasks" / f"{Path(n).stem}_mask.png") for n in names]
        missing = [m for m in self.masks if not Path(m).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} image(s) in {base / 'PNGImages'} have no mask, "
                                    f"the first: expected {missing[0]}")

    def __len__(self):
        return len(self.images)

    def __repr__(self):
        return f"PennFudan({len(self)} images, target {self.target!r}, root {str(self.base)!r})"

    def __getitem__(self, idx):
        import torch
        from torchvision import tv_tensors

        idx = as_int(idx, "idx", minimum=-len(self), maximum=len(self) - 1) % len(self)
        image = _read_image(Path(self.images[idx]))
        mask_path = Path(self.masks[idx])
        mask = np.asarray(_open(mask_path, "mask"))
        if mask.ndim != 2:
            raise ValueError(f"mask {mask_path} has shape {mask.shape}; expected one channel of instance ids")
        _check_pair(image, mask, mask_path)
        if self.target == "semantic":
            return _finish(*_to_tv(image, (mask > 0).astype(np.int64)), self.transforms)
        ids = np.unique(mask)
        ids = ids[ids != 0]
        masks = mask[None] == ids[:, None, None]
        boxes = _data.mask_boxes(masks)
        image_tv, masks_tv = _to_tv(image, masks.astype(np.uint8))
        target = {
            "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY", canvas_size=mask.shape),
            "labels": torch.ones(len(ids), dtype=torch.int64),
            "masks": masks_tv,
            "image_id": idx,
            "area": torch.from_numpy((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])),
            "iscrowd": torch.zeros(len(ids), dtype=torch.int64),
        }
        return _finish(image_tv, target, self.transforms)


def pennfudan_split(train_view, test_view=None, *, held_out=None):
    """Penn-Fudan's held-out photographs: the last ones in name order; the rest train.

    torchvision's detection tutorial holds out 50 of the 170 photographs; lessons
    05 and 06 hold out the same last 50.

    Parameters
    ----------
    train_view, test_view : sequence
        The same photographs seen with the training and the test transforms
        (``test_view`` defaults to ``train_view``).
    held_out : int, optional
        How many to hold out (at most ``n - 1``). Default ``round(n * 50 / 170)``, at
        least 1: 50 of the full set, and the same share of a smaller copy.

    Returns
    -------
    train, test : torch.utils.data.Subset

    Examples
    --------
    >>> train, test = pennfudan_split(list(range(170)))
    >>> len(train), len(test), test.indices[0]
    (120, 50, 120)
    >>> [len(part) for part in pennfudan_split(list(range(4)))], [len(part) for part in pennfudan_split(list(range(4)), held_out=50)]
    ([3, 1], [1, 3])
    """
    from torch.utils.data import Subset

    test_view = train_view if test_view is None else test_view
    n = len(train_view)
    if n < 2 or len(test_view) != n:
        raise ValueError(f"Penn-Fudan needs at least 2 photographs (one to train, one to test), the same in both "
                         f"views; got {n} and {len(test_view)}")
    held = max(1, round(n * 50 / 170)) if held_out is None else as_int(held_out, "held_out", minimum=1)
    held = min(held, n - 1)
    return Subset(train_view, range(n - held)), Subset(test_view, range(n - held, n))


# =========================================================================== transforms


def segmentation_transforms(size, *, train=False, scale=(0.5, 2.0), flip=True, normalize=False,
                            ignore_index=IGNORE_INDEX):
    """Paired transforms for an image and its label mask (torchvision ``transforms.v2``).

    Parameters
    ----------
    size : int
        Side of the square crops that come out (a batch needs one size).
    train : bool
        ``True``: resize the shorter side to a random ``size * scale``, crop a random
        ``size`` square (padding the image with 0 and the mask with ``ignore_index``
        where it is too small) and flip left-right with probability 1/2.
        ``False``: resize the shorter side to ``size`` and take the centre square.
    scale : (float, float)
        Range of the random scale (``train`` only).
    flip : bool
        Random left-right flips (``train`` only).
    normalize : bool
        Subtract ImageNet's mean and divide by its standard deviation, as pretrained
        backbones expect.
    ignore_index : int
        The label of padded mask pixels.

    Returns
    -------
    torchvision.transforms.v2.Compose
        Called as ``transforms(image, mask)``; masks are resized with nearest-neighbour
        interpolation (labels are never blended), and the image comes out float32.

    Examples
    --------
    >>> import torch
    >>> from torchvision import tv_tensors
    >>> t = segmentation_transforms(4)
    >>> image = tv_tensors.Image(torch.zeros(3, 8, 12, dtype=torch.uint8))
    >>> mask = tv_tensors.Mask(torch.ones(8, 12, dtype=torch.int64))
    >>> out_image, out_mask = t(image, mask)
    >>> tuple(out_image.shape), out_image.dtype, tuple(out_mask.shape), out_mask.dtype
    ((3, 4, 4), torch.float32, (4, 4), torch.int64)
    """
    import torch
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    size = as_int(size, "size", minimum=1)
    ignore_index = _check_ignore(ignore_index)
    if train:
        try:
            low, high = (float(s) for s in scale)
        except (TypeError, ValueError):
            raise TypeError(f"scale must be two numbers (low, high), got {describe(scale)}") from None
        if not 0 < low <= high:
            raise ValueError(f"scale must satisfy 0 < low <= high, got {scale!r}")
        steps = [
            v2.RandomResize(max(1, round(size * low)), max(2, round(size * high) + 1)),
            v2.RandomCrop(size, pad_if_needed=True, fill={tv_tensors.Mask: ignore_index, "others": 0}),
        ]
        if flip:
            steps.append(v2.RandomHorizontalFlip(0.5))
    else:
        steps = [v2.Resize(size), v2.CenterCrop(size)]
    steps.append(v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True))
    if normalize:
        from segtutor.backbones import IMAGENET_MEAN, IMAGENET_STD

        steps.append(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return v2.Compose(steps)


# =========================================================================== status


def status(root=None) -> dict:
    """Which datasets are present under ``root`` (default :func:`segtutor.paths.data_dir`).

    Checks the folders and split files of each layout (no image is read, torch is
    not imported).

    Returns
    -------
    dict
        ``{"voc": bool, "pet": bool, "pennfudan": bool}``

    Examples
    --------
    >>> status("/no/such/folder")
    {'voc': False, 'pet': False, 'pennfudan': False}
    """
    root = _check_root(root, "voc")
    voc = root / "VOCdevkit" / "VOC2012"
    pet = root / "oxford-iiit-pet"
    fudan = root / "PennFudanPed"
    return {
        "voc": all(p.exists() for p in (voc / "JPEGImages", voc / "SegmentationClass",
                                        voc / "ImageSets" / "Segmentation" / "train.txt")),
        "pet": all(p.exists() for p in (pet / "images", pet / "annotations" / "trimaps",
                                        pet / "annotations" / "trainval.txt")),
        "pennfudan": (fudan / "PNGImages").is_dir() and (fudan / "PedMasks").is_dir(),
    }
