"""Tests of segtutor.widgets: the state, the figure it draws, the controls, the static render."""

import base64
import doctest

import numpy as np
import pytest

import segtutor.widgets as widgets
from segtutor import backbones, data

SIZE = 96


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="module")
def resnet18():
    return backbones.build("resnet18", weights="random", seed=2)


@pytest.fixture(scope="module")
def images():
    return {"chelsea": data.sample_image("chelsea"), "coffee": data.sample_image("coffee")}


@pytest.fixture
def explorer(resnet18, images):
    return widgets.FeatureMapExplorer({"resnet18": resnet18, "alexnet": None}, images, stage="layer2", size=SIZE)


def test_the_state_shows_the_chosen_channel_of_the_chosen_stage(explorer, resnet18, images):
    shown = explorer.set(channel=7)
    expected = backbones.feature_maps(resnet18, images["chelsea"], ["layer2"], size=SIZE)["layer2"][0, 7].numpy()
    assert np.array_equal(shown, expected) and np.array_equal(explorer.current, expected)
    assert explorer.n_channels == 128 and explorer.stages == ["stem", "layer1", "layer2", "layer3", "layer4"]
    explorer.set(stage="layer4", channel=511)
    assert explorer.current.shape == (3, 3) and explorer.n_channels == 512
    explorer.set(image="coffee")
    other = backbones.feature_maps(resnet18, images["coffee"], ["layer4"], size=SIZE)["layer4"][0, 511].numpy()
    assert np.array_equal(explorer.current, other)


def test_the_figure_is_updated_in_place(explorer):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    first = explorer.png()
    figure, artist = explorer.figure, explorer._shown_map
    explorer.set(channel=3)
    assert explorer.figure is figure and explorer._shown_map is artist  # no new figure, no new artist
    current = explorer.current
    low, high = current.min(), current.max()
    assert np.allclose(artist.get_array(), (current - low) / (high - low))  # scaled to the channel's range
    assert artist.get_clim() == (0, 1)
    title = explorer._ax_map.get_title()
    assert "channel 3 of 128" in title and "one every 8 px" in title
    assert f"values {low:.3g} to {high:.3g}" in title
    assert "random weights" in explorer._ax_map.get_title()
    assert explorer.png() != first
    explorer.set(channel=0)
    assert explorer.png() == first  # same state, same picture
    explorer.set(stage="layer1")
    assert artist.get_extent() == [-0.5, 23.5, 23.5, -0.5]  # 96 px / stride 4
    assert plt.get_fignums() == before  # nothing drawn through pyplot


def test_a_new_model_keeps_what_it_can(explorer, capsys):
    explorer.set(channel=100)
    explorer.set(model="alexnet")  # built on first use, with random weights offline
    assert "no pretrained weights" in capsys.readouterr().out
    assert explorer.stage == "conv1" and explorer.channel == 0  # no layer2, and conv1 has 64 channels
    explorer.set(stage="pool5", channel=200)
    explorer.set(model="resnet18")
    assert explorer.stage == "stem" and explorer.channel == 0
    explorer.set(stage="layer3", channel=200)
    explorer.set(stage="layer4")
    assert explorer.channel == 200


def test_bad_choices_get_clear_errors(explorer, resnet18, images):
    with pytest.raises(ValueError, match=r"channel must be 0\.\.127 for resnet18 layer2; got 128"):
        explorer.set(channel=128)
    with pytest.raises(TypeError, match="channel must be an integer"):
        explorer.set(channel=1.5)
    with pytest.raises(ValueError, match="unknown stage of resnet18 'pool5'; choose one of stem, layer1"):
        explorer.set(stage="pool5")
    with pytest.raises(ValueError, match="unknown model 'vgg16'; choose one of resnet18, alexnet"):
        explorer.set(model="vgg16")
    with pytest.raises(ValueError, match="unknown model 'resnet34'; choose one of alexnet, vgg16"):
        widgets.FeatureMapExplorer({"resnet34": resnet18}, images)
    with pytest.raises(ValueError, match=r"RGB image \(H, W, 3\)"):
        widgets.FeatureMapExplorer({"resnet18": resnet18}, {"gray": np.zeros((32, 32))})
    with pytest.raises(TypeError, match="models must be"):
        widgets.FeatureMapExplorer(resnet18, images)
    assert explorer.stage == "layer2" and explorer.channel == 0  # a refused choice changes nothing


def test_the_controls_are_labelled_and_drive_the_state(explorer):
    import ipywidgets

    view = explorer.widget()
    assert isinstance(view, ipywidgets.VBox)
    controls = dict(explorer._controls_list)
    assert list(controls) == ["model", "stage", "channel", "image"]
    assert all(c.description == name for name, c in controls.items())
    assert isinstance(controls["channel"], ipywidgets.IntSlider) and controls["channel"].max == 127
    controls["channel"].value = 9  # what a learner's drag does
    assert explorer.channel == 9
    assert explorer._image_widget.value == explorer.png()
    controls["stage"].value = "layer4"
    assert controls["channel"].max == 511 and controls["channel"].value == 9
    controls["model"].value = "alexnet"
    assert list(controls["stage"].options) == list(backbones.STAGES["alexnet"])
    assert controls["stage"].value == "conv1" and controls["channel"].max == 63


def test_static_renders_get_a_png_as_well_as_the_widget(explorer):
    from IPython.core.formatters import DisplayFormatter

    bundle, _ = DisplayFormatter().format(explorer)
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == explorer.png()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("FeatureMapExplorer(model='resnet18', stage='layer2'")


def test_doctests():
    assert doctest.testmod(widgets).failed == 0


# -- the widgets of lessons 00-02 ---------------------------------------------------------------

def _changed(before: bytes, after: bytes) -> bool:
    return before != after


def test_threshold_explorer_moves_the_mask_and_its_iou():
    from segtutor import classical, data, metrics, widgets

    image, truth = data.make_gray_scene(size=64, seed=1)
    explorer = widgets.ThresholdExplorer(image, truth)
    assert explorer.threshold == pytest.approx(classical.otsu_threshold(image))
    first = explorer.png()
    low = explorer.set(threshold=explorer.low)
    assert low.all() or low.mean() > 0.99
    assert explorer.iou == pytest.approx(metrics.iou(image > explorer.low, truth))
    assert _changed(first, explorer.png())
    with pytest.raises(ValueError, match="finite number"):
        explorer.set(threshold=float("nan"))
    with pytest.raises(ValueError, match="truth must have the image's shape"):
        widgets.ThresholdExplorer(image, truth[:10])


def test_local_threshold_explorer_checks_and_applies_its_controls():
    from segtutor import classical, data, widgets

    image, truth = data.make_gray_scene(size=64, gradient=0.6, seed=2)
    explorer = widgets.LocalThresholdExplorer(image, truth, block_size=31, offset=-0.1)
    expected = image > classical.local_threshold(image, block_size=15, offset=-0.1)
    assert np.array_equal(explorer.set(block_size=15), expected)
    assert explorer.block_size == 15
    with pytest.raises(ValueError, match="odd"):
        explorer.set(block_size=16)
    with pytest.raises(ValueError, match="block_size"):
        explorer.set(block_size=1)


def test_kmeans_explorer_follows_k_and_the_position_weight():
    from segtutor import data, widgets

    image, labels = data.make_scene(size=48, seed=3)
    explorer = widgets.KMeansExplorer(image, labels, num_classes=4, k=4)
    first = explorer.png()
    assert len(np.unique(explorer.set(k=2))) <= 2
    assert _changed(first, explorer.png())
    explorer.set(position_weight=2.0)
    assert explorer.position_weight == 2.0 and 0.0 <= explorer.miou <= 1.0
    assert "colour + position" in explorer._title.get_text()
    with pytest.raises(ValueError, match="k"):
        explorer.set(k=1)
    with pytest.raises(ValueError, match="position_weight"):
        explorer.set(position_weight=-1)


def test_label_map_explorer_reads_pixels_and_shifts():
    from segtutor import data, widgets

    scene = data.make_instance_scene(size=64, seed=0)
    explorer = widgets.LabelMapExplorer(scene)
    target = scene["masks"][explorer.object]
    r, c = np.argwhere(target)[0]
    explorer.set(row=r, col=c)
    assert explorer.pixel_instance == explorer.object + 1
    assert explorer.pixel_class == int(scene["labels"][explorer.object])
    assert explorer.set(shift=0) is explorer.semantic and explorer.iou == 1.0
    explorer.set(shift=3)
    assert 0.0 <= explorer.iou < 1.0
    shown = explorer.set(view="instance")
    assert shown is explorer.instances
    with pytest.raises(ValueError, match="view"):
        explorer.set(view="panoptic")
    with pytest.raises(ValueError, match="row"):
        explorer.set(row=10_000)


@pytest.mark.parametrize("name", ["ThresholdExplorer", "LocalThresholdExplorer", "KMeansExplorer",
                                  "LabelMapExplorer"])
def test_lesson_widgets_show_a_static_picture_without_a_front_end(name):
    from segtutor import data, widgets

    gray, truth = data.make_gray_scene(size=48, seed=1)
    rgb, labels = data.make_scene(size=48, seed=1)
    explorer = {
        "ThresholdExplorer": lambda: widgets.ThresholdExplorer(gray, truth),
        "LocalThresholdExplorer": lambda: widgets.LocalThresholdExplorer(gray, truth),
        "KMeansExplorer": lambda: widgets.KMeansExplorer(rgb, labels, num_classes=4),
        "LabelMapExplorer": lambda: widgets.LabelMapExplorer(data.make_instance_scene(size=48, seed=1)),
    }[name]()
    bundle = explorer._repr_mimebundle_()
    import base64

    assert base64.b64decode(bundle["image/png"])[:4] == b"\x89PNG"
    view = explorer.widget()
    controls = view.children[0].children
    assert controls and all(getattr(c, "description", "") for c in controls)  # labelled controls


def test_public_api_is_documented_with_examples():
    for name in widgets.__all__:
        assert "Examples" in getattr(widgets, name).__doc__, name


def test_the_detection_explorer_redraws_what_the_threshold_changes():
    """After the first render only the dynamic artists are redrawn: they must include the ones that change."""
    from segtutor import maskrcnn

    scene = maskrcnn.instance_scenes(1, seed=3)[0]
    n = len(scene["labels"])
    detections = dict(scene, scores=np.linspace(1.0, 0.2, n))
    explorer = widgets.DetectionExplorer(scene["image"], detections, score_threshold=0.95)
    first = explorer.png()
    explorer.set(score_threshold=0.0)
    assert explorer.n_shown == n > 1
    assert explorer.png() != first
    explorer.set(score_threshold=0.95)
    assert explorer.png() == first  # the same state draws the same picture
