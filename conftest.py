"""Test-session settings shared by the unit tests, the doctests and nbval's lesson runs."""

import atexit
import os
import re
import shutil
import tempfile

# Trained checkpoints go to a fresh cache for each test run (unless one is chosen with
# SEGTUTOR_CACHE), so a cache left on this machine never stands in for a training run the
# tests should make. The lessons' kernels inherit this environment.
if not os.environ.get("SEGTUTOR_CACHE"):
    _cache = tempfile.mkdtemp(prefix="segtutor-test-cache-")
    os.environ["SEGTUTOR_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
os.environ.setdefault("MPLBACKEND", "Agg")

# -- what nbval's run of each lesson printed ------------------------------------------------
#
# tests/test_lessons.py checks that a lesson prints the same numbers every run. nbval runs
# every lesson first (testpaths lists lessons/ before tests/), and its outputs are kept here,
# so that check needs one more run of each lesson, not two.

import pytest  # noqa: E402

LESSON_OUTPUTS = pytest.StashKey[dict]()


_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_PROGRESS = re.compile(r"\d+%\|.*\| *\d+/\d+ \[")


def printed_text(outputs) -> str:
    """Everything a cell printed or returned as text (figures left out), in order."""
    parts = []
    for output in outputs or []:
        kind = output.get("output_type")
        if kind == "stream":
            text = output.get("text", "")
            if output.get("name") == "stderr":  # progress bars (tqdm without widgets) redraw with \r
                text = "".join(line for line in text.splitlines(keepends=True) if not _PROGRESS.search(line))
            parts.append(text)
        elif kind == "display_data":
            if _WIDGET_VIEW in output.get("data", {}):
                # a widget (a tqdm bar, an explorer): its text is a placeholder of the live view;
                # a bar appears when a model is trained and not when it is reloaded
                continue
            # Explicit displays only. A cell's result (execute_result) is left out: nbval runs
            # cells without history, so IPython does not suppress a result after a trailing
            # ";" there as Jupyter does, and "<Axes ...>"/"Text(...)" would differ from a real run.
            data = output.get("data", {})
            text = data.get("text/plain", "")
            if text and "image/png" not in data and not (text.startswith("<") and text.endswith(">")):
                parts.append(text)
        elif kind == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(parts)


def pytest_configure(config):
    config.stash[LESSON_OUTPUTS] = {}


def pytest_runtest_teardown(item, nextitem):
    if type(item).__name__ == "IPyNbCell" and getattr(item, "test_outputs", None) is not None:
        path = os.path.realpath(str(item.parent.path))
        item.config.stash[LESSON_OUTPUTS].setdefault(path, []).append(printed_text(item.test_outputs))


# -- tiny copies of the real datasets, in their exact on-disk layouts -------------------------
#
# tests/test_datasets.py reads them with segtutor.datasets; the lessons' "on a hub" code
# (tests/test_fcn.py, test_weak.py, test_maskrcnn.py) trains on them.

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

# Colours of the fixture photographs, one per label: far apart, so a label can be read
# back from a pixel's colour after JPEG compression and transforms.
COLOURS = {0: (40, 40, 40), 1: (210, 40, 40), 15: (40, 210, 210), 255: (150, 150, 40)}

# VOC devkit colours (VOCdevkit/VOCcode/labelcolormap.m), written out as the devkit documents them.
DEVKIT_COLOURS = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128),
                  8: (64, 0, 0), 12: (64, 0, 128), 15: (192, 128, 128), 20: (0, 64, 128),
                  255: (224, 224, 192)}


def labels_map(h=32, w=48, seed=0):
    """A label map of 8x8 blocks (aligned with JPEG blocks) of 0, 1, 15 and void 255."""
    rng = np.random.default_rng(seed)
    blocks = rng.choice([0, 1, 15, 255], size=(h // 8, w // 8))
    return np.kron(blocks, np.ones((8, 8), int)).astype(np.uint8)


def photo(labels):
    out = np.zeros(labels.shape + (3,), np.uint8)
    for label, colour in COLOURS.items():
        out[labels == label] = colour
    return out


def save_jpeg(array, path):
    Image.fromarray(array).save(path, quality=100, subsampling=0)


def label_of_colour(image):
    """Read labels back from a (3, H, W) float image in [0, 1]: the nearest fixture colour."""
    rgb = image.permute(1, 2, 0).numpy() * 255
    keys = list(COLOURS)
    dist = np.stack([np.abs(rgb - np.array(COLOURS[k])).sum(-1) for k in keys])
    return np.array(keys)[dist.argmin(0)], dist.min(0)


def palette_png(labels, path):
    png = Image.fromarray(labels, mode="P")
    flat = [c for label in range(256) for c in DEVKIT_COLOURS.get(label, (label, label, label))]
    png.putpalette(flat)
    png.save(path)


@pytest.fixture
def voc_root(tmp_path):
    base = tmp_path / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True)
    ids = {"train": ["2007_000032", "2007_000039"], "val": ["2007_000033"]}
    for k, name in enumerate(ids["train"] + ids["val"]):
        labels = labels_map(seed=k)
        save_jpeg(photo(labels), base / "JPEGImages" / f"{name}.jpg")
        palette_png(labels, base / "SegmentationClass" / f"{name}.png")
    for split, names in ids.items():
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    (base / "ImageSets" / "Segmentation" / "trainval.txt").write_text("\n".join(ids["train"] + ids["val"]) + "\n")
    return tmp_path


PET_IDS = {"trainval": [("Abyssinian_1", 1, 1, 1), ("american_bulldog_10", 2, 2, 1)],
           "test": [("Abyssinian_2", 1, 1, 1)]}


def trimap_map(h=24, w=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.kron(rng.choice([1, 2, 3], size=(h // 8, w // 8)), np.ones((8, 8), int)).astype(np.uint8)


@pytest.fixture
def pet_root(tmp_path):
    base = tmp_path / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    k = 0
    for split, rows in PET_IDS.items():
        lines = []
        for image_id, cls, species, breed in rows:
            trimap = trimap_map(seed=k)
            k += 1
            save_jpeg(photo(np.select([trimap == 1, trimap == 2], [1, 0], 255).astype(np.uint8)),
                       base / "images" / f"{image_id}.jpg")
            Image.fromarray(trimap, mode="L").save(base / "annotations" / "trimaps" / f"{image_id}.png")
            lines.append(f"{image_id} {cls} {species} {breed}")
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def pennfudan(root, n=2):
    base = root / "PennFudanPed"
    (base / "PNGImages").mkdir(parents=True)
    (base / "PedMasks").mkdir(parents=True)
    for k in range(1, n + 1):
        mask = np.zeros((40, 56), np.uint8)
        mask[5:30, 4:14] = 1          # person 1: rows 5..29, columns 4..13
        mask[10:38, 30:41] = 2        # person 2: rows 10..37, columns 30..40
        photo = np.full((40, 56, 3), 90, np.uint8)
        photo[mask == 1] = (200, 30, 30)
        photo[mask == 2] = (30, 30, 200)
        Image.fromarray(photo).save(base / "PNGImages" / f"FudanPed{k:05d}.png")
        Image.fromarray(mask, mode="L").save(base / "PedMasks" / f"FudanPed{k:05d}_mask.png")
    return root


@pytest.fixture
def fudan_root(tmp_path):
    return pennfudan(tmp_path)
