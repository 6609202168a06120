"""`segtutor fetch`: checksums, offline failure and datasets, with fake download functions."""

import hashlib
import io
import subprocess
import sys
import socket
import tarfile
import urllib.error
import zipfile

import numpy as np
import pytest
import torchvision
from PIL import Image

from segtutor import backbones, datasets
from segtutor.tools import doctor, fetch


@pytest.fixture(autouse=True)
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SEGTUTOR_DATA", str(tmp_path / "data"))
    return tmp_path


def _png(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _pennfudan_zip():
    mask = np.zeros((20, 30), np.uint8)
    mask[2:12, 3:9] = 1
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("FudanPed00001", "PennPed00002"):
            archive.writestr(f"PennFudanPed/PNGImages/{name}.png", _png(np.full((20, 30, 3), 100, np.uint8)))
            archive.writestr(f"PennFudanPed/PedMasks/{name}_mask.png", _png(mask, "L"))
        archive.writestr("PennFudanPed/readme.txt", "Penn-Fudan Database for Pedestrian Detection and Segmentation")
    return buffer.getvalue()


def _tar_gz(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class FakeServer:
    """download(url, path) that serves bytes from a dict and records every request."""

    def __init__(self, files):
        self.files, self.calls = files, []

    def __call__(self, url, path):
        self.calls.append(url)
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        path.write_bytes(self.files[url])


def test_weight_files_agree_with_torchvision_backbones_and_doctor():
    items = {item.name: item for item in fetch.plan(["weights"])}
    assert list(items) == list(fetch.WEIGHTS) and set(doctor.KNOWN_WEIGHTS) == set(fetch.WEIGHTS)
    for name, item in items.items():
        assert item.files[0].path.name == doctor.KNOWN_WEIGHTS[name]
        kind, prefix = item.files[0].checksum
        assert kind == "sha256" and item.files[0].path.name.endswith(f"-{prefix}.pth")
    for name in backbones.MODELS:  # the files the lessons read are the files fetched
        assert items[name].files[0].path == backbones.weights_file(name)
    weights = torchvision.models.detection.MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1
    assert items["maskrcnn_resnet50_fpn_v2"].files[0].url == weights.url


def test_offline_fails_fast_at_the_first_download_and_says_what_to_do(empty_caches):
    calls = []

    def offline(url, path):
        calls.append((url, socket.getdefaulttimeout()))
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    before = socket.getdefaulttimeout()
    with pytest.raises(fetch.FetchError) as info:
        fetch.fetch(["all"], download=offline, log=lambda line: None)
    # one attempt, under a timeout, and nothing more is tried
    assert len(calls) == 1 and calls[0][1] == fetch.TIMEOUT and socket.getdefaulttimeout() == before
    message = str(info.value)
    assert calls[0][0] in message and "Network is unreachable" in message and "no internet access" in message
    assert str(empty_caches / "torch" / "hub" / "checkpoints") in message and "TORCH_HOME" in message
    assert "SEGTUTOR_DATA" in message
    assert not list((empty_caches / "torch").rglob("*.partial"))


def test_a_download_that_does_not_match_its_checksum_is_discarded(empty_caches):
    url = torchvision.models.get_weight(fetch.WEIGHTS["resnet18"]).url
    server = FakeServer({url: b"not the resnet18 weights"})
    with pytest.raises(fetch.FetchError, match=r"does not match its checksum: sha256 [0-9a-f]{8}\.\.\., expected f37072fd"):
        fetch.fetch(["resnet18"], download=server, log=lambda line: None)
    assert not (empty_caches / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth").exists()
    assert not list((empty_caches / "torch").rglob("*.partial"))


def test_a_corrupt_cached_weight_file_is_downloaded_again(empty_caches):
    path = backbones.weights_file("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"truncated")
    assert not fetch.present(fetch.plan(["resnet18"])[0])
    server = FakeServer({})
    with pytest.raises(fetch.FetchError, match="HTTP Error 404"):
        fetch.fetch(["resnet18"], download=server, log=lambda line: None)
    assert server.calls == [torchvision.models.get_weight(fetch.WEIGHTS["resnet18"]).url]


def test_pennfudan_is_downloaded_extracted_and_loads(empty_caches):
    url = datasets.SOURCES["pennfudan"][0][0]
    server = FakeServer({url: _pennfudan_zip()})
    lines = []
    assert fetch.fetch(["pennfudan"], download=server, log=lines.append) == {"pennfudan": "downloaded"}
    ds = datasets.PennFudan()
    assert len(ds) == 2 and ds[0][1]["boxes"].tolist() == [[3, 2, 9, 12]]
    assert datasets.status() == {"voc": False, "pet": False, "pennfudan": True}
    # present now: nothing is downloaded again
    assert fetch.fetch(["pennfudan"], download=server, log=lines.append) == {"pennfudan": "present"}
    assert server.calls == [url]
    report = doctor.collect(check_torch=False)
    assert report["datasets"]["pennfudan"] is True
    assert "Datasets         pennfudan" in doctor.format_report(report)


def _pet_archives():
    trimap = np.kron(np.array([[1, 2], [3, 1]], np.uint8), np.ones((8, 8), np.uint8))
    images = _tar_gz({"images/Abyssinian_1.jpg": _jpeg(np.full((16, 16, 3), 120, np.uint8))})
    annotations = _tar_gz({
        "annotations/trimaps/Abyssinian_1.png": _png(trimap, "L"),
        "annotations/trainval.txt": b"Abyssinian_1 1 1 1\n",
        "annotations/test.txt": b"",
    })
    return images, annotations


def test_pet_archives_are_md5_checked_then_extracted(empty_caches, monkeypatch):
    images, annotations = _pet_archives()
    urls = ("https://example.org/images.tar.gz", "https://example.org/annotations.tar.gz")
    monkeypatch.setitem(datasets.SOURCES, "pet", tuple(
        (url, hashlib.md5(data).hexdigest()) for url, data in zip(urls, (images, annotations))))
    server = FakeServer(dict(zip(urls, (images, annotations))))
    assert fetch.fetch(["pet"], download=server, log=lambda line: None) == {"pet": "downloaded"}
    image, mask = datasets.OxfordPet()[0]
    assert np.unique(mask.numpy()).tolist() == [0, 1, 255]


def test_a_dataset_archive_with_the_wrong_md5_is_refused(empty_caches, monkeypatch):
    images, annotations = _pet_archives()
    urls = ("https://example.org/images.tar.gz", "https://example.org/annotations.tar.gz")
    monkeypatch.setitem(datasets.SOURCES, "pet", ((urls[0], "0" * 32), (urls[1], None)))
    server = FakeServer(dict(zip(urls, (images, annotations))))
    with pytest.raises(fetch.FetchError, match="images.tar.gz does not match its checksum: md5"):
        fetch.fetch(["pet"], download=server, log=lambda line: None)
    assert not datasets.status()["pet"] and server.calls == [urls[0]]


def test_an_archive_without_the_layout_is_reported(empty_caches, monkeypatch):
    url = datasets.SOURCES["pennfudan"][0][0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Other/readme.txt", "not the dataset")
    with pytest.raises(fetch.FetchError, match="extracted but the expected layout is not in"):
        fetch.fetch(["pennfudan"], download=FakeServer({url: buffer.getvalue()}), log=lambda line: None)


def test_unknown_items_and_bad_download_functions():
    with pytest.raises(ValueError, match="unknown item 'imagenet'; known: all, weights, datasets"):
        fetch.plan(["imagenet"])
    with pytest.raises(TypeError, match="download must be callable"):
        fetch.fetch(["pennfudan"], download="wget")


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "segtutor", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env)


def test_cli_lists_what_is_missing_and_rejects_unknown_items(empty_caches):
    import os

    out = _cli("fetch", "--list", "resnet18", "pet", env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "resnet18" in out.stdout and "missing: https://download.pytorch.org/models/resnet18-f37072fd.pth" in out.stdout
    assert str(empty_caches / "data" / "oxford-iiit-pet") in out.stdout
    out = _cli("fetch", "imagenet")
    assert out.returncode == 2 and "unknown item 'imagenet'" in out.stderr
    assert "fetch" in _cli("--help").stdout
