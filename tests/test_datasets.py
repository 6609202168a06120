"""Real datasets read from tiny copies in their exact on-disk layouts (no network)."""

import socket
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from conftest import COLOURS, DEVKIT_COLOURS, PET_IDS, label_of_colour, labels_map, palette_png, pennfudan, photo, trimap_map  # noqa: E501
from segtutor import datasets

# ----------------------------------------------------------------------------- palette


def test_voc_palette_matches_the_devkit_colours():
    palette = datasets.voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    for label, colour in DEVKIT_COLOURS.items():
        assert tuple(palette[label]) == colour, label
    assert len({tuple(c) for c in palette}) == 256
    assert len(datasets.VOC_CLASSES) == 21 and datasets.VOC_CLASSES[0] == "background"
    assert datasets.VOC_CLASSES[15] == "person" and datasets.VOC_CLASSES[20] == "tvmonitor"


def test_decode_voc_reads_rgb_masks_and_rejects_other_colours():
    labels = np.array([[0, 1, 15], [255, 2, 20]])
    rgb = np.array([[DEVKIT_COLOURS[v] for v in row] for row in labels], np.uint8)
    assert datasets.decode_voc(rgb).tolist() == labels.tolist()
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"colour \(1, 2, 3\)"):
        datasets.decode_voc(rgb)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        datasets.decode_voc(np.zeros((4, 4)))


def test_sources_are_torchvisions_urls_and_checksums():
    from torchvision.datasets import oxford_iiit_pet, voc

    year = voc.DATASET_YEAR_DICT["2012"]
    assert datasets.SOURCES["voc"] == ((year["url"], year["md5"]),)
    assert datasets.SOURCES["pet"] == tuple(oxford_iiit_pet.OxfordIIITPet._RESOURCES)


# ----------------------------------------------------------------------------- VOC


def test_voc_reads_images_and_labels_like_torchvision(voc_root):
    ds = datasets.VOCSegmentation(voc_root, "train")
    assert len(ds) == 2 and len(datasets.VOCSegmentation(voc_root, "trainval")) == 3
    reference = torchvision.datasets.VOCSegmentation(str(voc_root), year="2012", image_set="train")
    for k in range(len(ds)):
        image, mask = ds[k]
        assert isinstance(image, tv_tensors.Image) and isinstance(mask, tv_tensors.Mask)
        assert image.dtype == torch.float32 and tuple(image.shape) == (3, 32, 48)
        assert mask.dtype == torch.int64 and tuple(mask.shape) == (32, 48)
        ref_image, ref_mask = reference[k]
        np.testing.assert_allclose(image.permute(1, 2, 0).numpy() * 255, np.asarray(ref_image), atol=1e-3)
        assert np.array_equal(mask.numpy(), np.asarray(ref_mask))
        truth = labels_map(seed=k)
        assert np.array_equal(mask.numpy(), truth)  # 255 stays 255 (the default ignore_index)
        assert np.abs(image.permute(1, 2, 0).numpy() * 255 - photo(truth)).max() < 8  # JPEG, quality 100
    assert set(np.unique(ds[0][1].numpy())) <= {0, 1, 15, 255}


def test_voc_void_becomes_ignore_index_and_is_ignored_by_the_loss(voc_root):
    truth = labels_map(seed=0)
    _, mask = datasets.VOCSegmentation(voc_root, ignore_index=-100)[0]
    assert np.array_equal(mask.numpy() == -100, truth == 255)
    assert np.array_equal(mask.numpy()[truth != 255], truth[truth != 255])
    # the same logits scored against the void-as-255 mask and the void-as-(-100) mask
    _, mask255 = datasets.VOCSegmentation(voc_root)[0]
    logits = torch.randn(1, 21, *mask.shape, generator=torch.Generator().manual_seed(0))
    a = torch.nn.functional.cross_entropy(logits, mask255[None], ignore_index=255)
    b = torch.nn.functional.cross_entropy(logits, mask[None], ignore_index=-100)
    keep = torch.from_numpy(truth != 255)
    c = torch.nn.functional.cross_entropy(logits[0].permute(1, 2, 0)[keep], mask255[keep])
    assert torch.allclose(a, b) and torch.allclose(a, c)


def test_voc_rgb_mask_is_decoded(voc_root):
    path = voc_root / "VOCdevkit/VOC2012/SegmentationClass/2007_000032.png"
    truth = labels_map(seed=0)
    Image.fromarray(np.array([[DEVKIT_COLOURS[v] for v in row] for row in truth], np.uint8)).save(path)
    assert np.array_equal(datasets.VOCSegmentation(voc_root)[0][1].numpy(), truth)


@pytest.mark.parametrize("seed", range(6))
def test_voc_flip_and_crop_keep_image_and_mask_aligned(voc_root, seed):
    truth = labels_map(seed=0)
    # the shorter side is resized to 24 * 4/3 = 32, as it is: the transforms only crop and flip
    ds = datasets.VOCSegmentation(voc_root, transforms=datasets.segmentation_transforms(
        24, train=True, scale=(4 / 3, 4 / 3)))
    torch.manual_seed(seed)
    image, mask = ds[0]
    assert tuple(image.shape) == (3, 24, 24) and tuple(mask.shape) == (24, 24)
    read, distance = label_of_colour(image)
    assert distance.max() < 24 and np.array_equal(read, mask.numpy())
    # the mask is a 24x24 window of the label map, flipped or not
    windows = [(flipped, r, c) for flipped, labels in ((False, truth), (True, truth[:, ::-1]))
               for r in range(32 - 23) for c in range(48 - 23)
               if np.array_equal(labels[r:r + 24, c:c + 24], mask.numpy())]
    assert windows


def test_random_flips_happen_and_are_seeded(voc_root):
    t = v2.RandomHorizontalFlip(0.5)
    ds = datasets.VOCSegmentation(voc_root, transforms=t)
    truth = labels_map(seed=0)
    flipped = []
    for seed in range(8):
        torch.manual_seed(seed)
        image, mask = ds[0]
        flipped.append(np.array_equal(mask.numpy(), truth[:, ::-1]))
        assert flipped[-1] or np.array_equal(mask.numpy(), truth)
        assert np.array_equal(label_of_colour(image.float() / 255)[0], mask.numpy())
    assert any(flipped) and not all(flipped)
    torch.manual_seed(3)
    first = ds[0][1]
    torch.manual_seed(3)
    assert torch.equal(first, ds[0][1])


def test_padding_fills_the_mask_with_ignore_index(voc_root):
    ds = datasets.VOCSegmentation(voc_root, transforms=datasets.segmentation_transforms(
        64, train=True, scale=(0.5, 0.5), ignore_index=255))
    torch.manual_seed(0)
    image, mask = ds[0]
    assert tuple(mask.shape) == (64, 64)
    padded = (image == 0).all(dim=0)
    assert padded.any() and bool((mask[padded] == 255).all())
    truth = labels_map(seed=0)
    assert (mask != 255).sum() == (truth != 255).sum()  # scale 0.5 of a 32-pixel side: nothing resized


def test_eval_transforms_resize_masks_without_blending(voc_root):
    ds = datasets.VOCSegmentation(voc_root, transforms=datasets.segmentation_transforms(16, normalize=True))
    image, mask = ds[0]
    assert tuple(image.shape) == (3, 16, 16) and image.min() < 0  # normalised
    assert set(np.unique(mask.numpy())) <= {0, 1, 15, 255}


def test_voc_missing_layout_names_it_and_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        datasets.VOCSegmentation(tmp_path)
    message = str(info.value)
    for part in ("VOCdevkit/VOC2012/JPEGImages", "SegmentationClass", "ImageSets/Segmentation/train.txt",
                 "segtutor fetch voc", "download=True"):
        assert part in message
    (tmp_path / "VOCdevkit/VOC2012/JPEGImages").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="SegmentationClass does not exist"):
        datasets.VOCSegmentation(tmp_path)


def test_voc_default_root_is_segtutor_data(voc_root, monkeypatch):
    monkeypatch.setenv("SEGTUTOR_DATA", str(voc_root))
    assert len(datasets.VOCSegmentation(split="val")) == 1
    assert datasets.status() == {"voc": True, "pet": False, "pennfudan": False}


def test_voc_file_listed_but_missing_is_named(voc_root):
    (voc_root / "VOCdevkit/VOC2012/JPEGImages/2007_000039.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"train\.txt are missing, the first .*2007_000039\.jpg"):
        datasets.VOCSegmentation(voc_root)


@pytest.mark.parametrize("which", ["JPEGImages/2007_000039.jpg", "SegmentationClass/2007_000039.png"])
def test_corrupt_image_or_mask_is_named(voc_root, which):
    path = voc_root / "VOCdevkit/VOC2012" / which
    path.write_bytes(path.read_bytes()[:60])  # a truncated download
    ds = datasets.VOCSegmentation(voc_root)
    ds[0]  # the other item still reads
    with pytest.raises(OSError, match=f"cannot read (image|mask) {path}"):
        ds[1]


def test_mask_of_the_wrong_size_or_labels_is_named(voc_root):
    path = voc_root / "VOCdevkit/VOC2012/SegmentationClass/2007_000032.png"
    palette_png(np.zeros((10, 10), np.uint8), path)
    with pytest.raises(ValueError, match=f"mask {path} has shape \\(10, 10\\)"):
        datasets.VOCSegmentation(voc_root)[0]
    palette_png(np.full((32, 48), 40, np.uint8), path)
    with pytest.raises(ValueError, match=f"mask {path} holds label 40"):
        datasets.VOCSegmentation(voc_root)[0]


def test_bad_arguments_are_named(voc_root):
    with pytest.raises(ValueError, match="split must be 'train', 'val' or 'trainval'"):
        datasets.VOCSegmentation(voc_root, "test")
    with pytest.raises(TypeError, match="root must be a path"):
        datasets.VOCSegmentation(42)
    with pytest.raises(TypeError, match="transforms must be callable"):
        datasets.VOCSegmentation(voc_root, transforms="flip")
    with pytest.raises(ValueError, match="idx"):
        datasets.VOCSegmentation(voc_root)[2]
    with pytest.raises(ValueError, match="scale must satisfy"):
        datasets.segmentation_transforms(8, train=True, scale=(2, 1))


def test_offline_download_fails_fast_and_clearly(tmp_path, monkeypatch):
    calls = []

    def offline(url, *args, **kwargs):
        calls.append((url, socket.getdefaulttimeout()))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.voc, "download_and_extract_archive", offline)
    monkeypatch.setattr(torchvision.datasets.oxford_iiit_pet, "download_and_extract_archive", offline)
    before = socket.getdefaulttimeout()
    with pytest.raises(ConnectionError) as info:
        datasets.VOCSegmentation(tmp_path, download=True)
    message = str(info.value)
    assert "could not download PASCAL VOC 2012" in message and datasets.SOURCES["voc"][0][0] in message
    assert "name resolution" in message and str(tmp_path / "VOCdevkit/VOC2012/JPEGImages") in message
    with pytest.raises(ConnectionError, match="could not download Oxford-IIIT Pet"):
        datasets.OxfordPet(tmp_path, download=True)
    # one attempt each, under a timeout (a server that never answers cannot hang the lesson), then restored
    assert [timeout for _, timeout in calls] == [datasets.DOWNLOAD_TIMEOUT] * 2
    assert socket.getdefaulttimeout() == before


def test_download_is_skipped_when_the_data_is_there(voc_root, pet_root, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("nothing should be downloaded")

    monkeypatch.setattr(torchvision.datasets.voc, "download_and_extract_archive", no_network)
    monkeypatch.setattr(torchvision.datasets.oxford_iiit_pet, "download_and_extract_archive", no_network)
    assert len(datasets.VOCSegmentation(voc_root, download=True)) == 2
    assert len(datasets.OxfordPet(pet_root, download=True)) == 2


# ----------------------------------------------------------------------------- Pets


def test_pet_trimaps_become_background_pet_and_ignored_border(pet_root):
    ds = datasets.OxfordPet(pet_root)
    assert len(ds) == 2 and len(datasets.OxfordPet(pet_root, "test")) == 1
    assert ds.breeds == [0, 1]
    reference = torchvision.datasets.OxfordIIITPet(str(pet_root), target_types="segmentation")
    for k in range(2):
        image, mask = ds[k]
        trimap = np.asarray(reference[k][1])
        assert np.array_equal(trimap, trimap_map(seed=k))
        expected = np.where(trimap == 1, 1, np.where(trimap == 2, 0, 255))
        assert np.array_equal(mask.numpy(), expected)
        np.testing.assert_allclose(image.permute(1, 2, 0).numpy() * 255, np.asarray(reference[k][0]), atol=1e-3)
    trimap = trimap_map(seed=0)
    as_pet = datasets.OxfordPet(pet_root, border="pet")[0][1].numpy()
    as_background = datasets.OxfordPet(pet_root, border="background")[0][1].numpy()
    assert np.array_equal(as_pet, (trimap != 2).astype(int))
    assert np.array_equal(as_background, (trimap == 1).astype(int))


def test_pet_flip_keeps_alignment(pet_root):
    ds = datasets.OxfordPet(pet_root, transforms=v2.Compose([v2.RandomHorizontalFlip(1.0), v2.RandomCrop(16)]))
    torch.manual_seed(0)
    image, mask = ds[0]
    read = label_of_colour(image.float() / 255)[0]
    assert np.array_equal(read, mask.numpy())
    flipped = np.where(trimap_map(seed=0) == 1, 1, np.where(trimap_map(seed=0) == 2, 0, 255))[:, ::-1]
    assert any(np.array_equal(flipped[r:r + 16, c:c + 16], mask.numpy()) for r in range(9) for c in range(25))


def test_pet_missing_and_bad_trimaps(pet_root, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match=r"oxford-iiit-pet/annotations/trimaps/<id>\.png(.|\n)*segtutor fetch pet"):
        datasets.OxfordPet(empty)
    path = pet_root / "oxford-iiit-pet/annotations/trimaps/Abyssinian_1.png"
    Image.fromarray(np.full((24, 40), 7, np.uint8), mode="L").save(path)
    with pytest.raises(ValueError, match=f"trimap {path} holds value 7"):
        datasets.OxfordPet(pet_root)[0]
    (pet_root / "oxford-iiit-pet/images/Abyssinian_1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(OSError, match="cannot read image .*Abyssinian_1.jpg"):
        datasets.OxfordPet(pet_root)[0]
    with pytest.raises(ValueError, match="border must be"):
        datasets.OxfordPet(pet_root, border="trimap")


# ----------------------------------------------------------------------------- Penn-Fudan


def test_pennfudan_instances(fudan_root):
    ds = datasets.PennFudan(fudan_root)
    assert len(ds) == 2 and len(datasets.PennFudan(fudan_root / "PennFudanPed")) == 2
    image, target = ds[1]
    assert tuple(image.shape) == (3, 40, 56) and image.dtype == torch.float32
    assert isinstance(target["boxes"], tv_tensors.BoundingBoxes) and isinstance(target["masks"], tv_tensors.Mask)
    assert target["boxes"].tolist() == [[4, 5, 14, 30], [30, 10, 41, 38]]
    assert target["labels"].tolist() == [1, 1] and target["iscrowd"].tolist() == [0, 0]
    assert target["image_id"] == 1 and target["area"].tolist() == [250.0, 308.0]
    # the boxes are torchvision's masks_to_boxes (inclusive corners) plus one pixel
    ref = torchvision.ops.masks_to_boxes(target["masks"])
    assert torch.equal(target["boxes"].as_subclass(torch.Tensor), ref + torch.tensor([0, 0, 1, 1]))
    assert target["masks"].dtype == torch.uint8 and int(target["masks"].sum()) == 250 + 308


def test_pennfudan_flip_moves_boxes_with_masks(fudan_root):
    ds = datasets.PennFudan(fudan_root, transforms=v2.RandomHorizontalFlip(1.0))
    image, target = ds[0]
    ref = torchvision.ops.masks_to_boxes(target["masks"]) + torch.tensor([0, 0, 1, 1])
    assert torch.equal(target["boxes"].as_subclass(torch.Tensor), ref)
    assert target["boxes"].tolist()[0] == [56 - 14, 5, 56 - 4, 30]
    assert image.dtype == torch.uint8  # the transforms' output, as it is
    red = image[0] > 128  # person 1 is red in the photograph
    assert torch.equal(red, target["masks"][0].bool())


def test_pennfudan_semantic_and_errors(fudan_root, tmp_path_factory):
    image, mask = datasets.PennFudan(fudan_root, target="semantic")[0]
    assert isinstance(mask, tv_tensors.Mask) and int(mask.sum()) == 250 + 308 and int(mask.max()) == 1
    with pytest.raises(FileNotFoundError, match=r"PennFudanPed/PedMasks/<name>_mask\.png(.|\n)*segtutor fetch pennfudan"):
        datasets.PennFudan(tmp_path_factory.mktemp("empty"))
    mask_path = fudan_root / "PennFudanPed/PedMasks/FudanPed00002_mask.png"
    mask_path.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(OSError, match=f"cannot read mask {mask_path}"):
        datasets.PennFudan(fudan_root)[1]
    mask_path.unlink()
    with pytest.raises(FileNotFoundError, match="FudanPed00002_mask.png"):
        datasets.PennFudan(fudan_root)


def test_status_finds_each_layout(voc_root):
    pennfudan(voc_root)
    assert datasets.status(voc_root) == {"voc": True, "pet": False, "pennfudan": True}


def test_void_pixels_are_left_out_of_the_confusion_matrix(voc_root):
    from segtutor import metrics

    truth = labels_map(seed=0)
    _, mask = datasets.VOCSegmentation(voc_root)[0]
    pred = np.zeros_like(truth)  # everything predicted as background
    counts = metrics.confusion_matrix(pred, mask.numpy(), 21, ignore_index=datasets.IGNORE_INDEX)
    assert counts.sum() == (truth != 255).sum() and counts[0, 0] == (truth == 0).sum()


def test_pennfudan_split_holds_out_the_last_photographs(fudan_root):
    view = datasets.PennFudan(fudan_root)
    train, test = datasets.pennfudan_split(view)
    assert list(train.indices) == [0] and list(test.indices) == [1] and test.dataset is view
    other = datasets.PennFudan(fudan_root, target="semantic")
    assert datasets.pennfudan_split(view, other)[1].dataset is other
    with pytest.raises(ValueError, match="needs at least 2 photographs"):
        datasets.pennfudan_split([0])
    with pytest.raises(ValueError, match="the same in both views; got 2 and 3"):
        datasets.pennfudan_split([0, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="held_out"):
        datasets.pennfudan_split([0, 1], held_out=0)
