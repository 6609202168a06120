"""Tests of segtutor.backbones against torchvision, its metadata, and measurements.

Independent references: torchvision's weight metadata (parameter counts, operation
counts), torchvision's feature extractor and transforms, PyTorch's own shape rules
(meta-device forward passes), the gradient probe for every stage of every model, and
a published receptive field (VGG-16, Araujo et al., Distill 2019).
"""

import doctest
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import segtutor.backbones as backbones
import segtutor.exercises.backbones as spec  # registers the lesson's exercises
from segtutor import data, exercises, paths

NAMES = list(backbones.MODELS)
DEPTH_IN_THE_NAME = {"alexnet": 8, "vgg16": 16, "googlenet": 22, "resnet18": 18, "resnet50": 50}


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    """Every test sees an empty weights cache unless it fills one itself."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="module")
def resnet18():
    return backbones.build("resnet18", weights="random", seed=1)


@pytest.fixture(scope="module")
def alexnet():
    return backbones.build("alexnet", weights="random", seed=1)


@pytest.fixture(scope="module")
def cat():
    return data.sample_image("chelsea")


# --------------------------------------------------------------------------- import cost


def test_import_segtutor_and_the_exercise_spec_stay_torch_free():
    code = ("import sys, segtutor, segtutor.widgets, segtutor.exercises.backbones\n"
            "assert 'torch' not in sys.modules and 'torchvision' not in sys.modules, 'torch was imported'\n"
            "assert 'backbones' in dir(segtutor) and 'widgets' in dir(segtutor)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- describe


@pytest.mark.parametrize("name", NAMES)
def test_parameters_and_operations_match_torchvisions_metadata(name):
    info = backbones.describe(name)
    meta = torchvision.models.get_model_weights(name)["IMAGENET1K_V1"].meta
    assert info.params == meta["num_params"]
    # torchvision lists giga multiply-adds ("_ops") rounded to 3 decimals
    assert info.macs / 1e9 == pytest.approx(meta["_ops"], abs=6e-4)
    assert info.flops == 2 * info.macs
    assert info.top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]


@pytest.mark.parametrize("name", NAMES)
def test_depth_is_the_number_in_the_papers(name):
    assert backbones.describe(name).depth == DEPTH_IN_THE_NAME[name]


def test_vgg16_receptive_field_is_the_published_one():
    # Araujo, Norris & Sim, "Computing receptive fields of convolutional neural networks",
    # Distill 2019, table of receptive fields: vgg_16 -> 212 px, output stride 32.
    last = backbones.describe("vgg16").stages[-1]
    assert (last.receptive_field, last.stride) == (212, 32)


@pytest.mark.parametrize("name", NAMES)
def test_stage_sizes_from_the_layers_match_a_forward_pass(name):
    # describe() records output shapes from a (meta-device) forward pass; layer_geometry
    # computes them from kernel, stride, padding and ceil mode alone.
    for size in (224, 97):
        if size < backbones.minimum_input_size(name):
            continue
        info = backbones.describe(name, size=size)
        geos = backbones.layer_geometry(name, size=size)
        assert [s.name for s in info.stages] == list(backbones.STAGES[name]) == list(geos)
        for stage in info.stages:
            assert geos[stage.name].size == stage.size
            assert geos[stage.name].channels == stage.channels


def _probe_size(name):
    geos = backbones.layer_geometry(name)
    largest = max(g.receptive_field[0] for g in geos.values())
    stride = max(g.stride[0] for g in geos.values())
    return largest + 2 * stride


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_stride_and_receptive_field_of_every_stage_match_the_gradient_probe(name):
    model = backbones._meta_model(name)
    size = _probe_size(name)
    geos = backbones.layer_geometry(model, size=size)
    for stage, geo in geos.items():
        centre = tuple((n - 1) // 2 for n in geo.size)
        units = [centre, (centre[0] + 1, centre[1] + 1)]
        windows = [geo.window(unit) for unit in units]
        # the centre unit's field lies inside the image, so the probe sees all of it
        assert all(0 <= low and high < size for low, high in windows[0]), (stage, windows[0])
        probe = backbones.receptive_field_probe(model, stage, size=size, units=units)
        clipped = tuple(tuple((max(0, low), min(size - 1, high)) for low, high in w) for w in windows)
        assert probe["boxes"] == clipped, stage
        measured_field = probe["boxes"][0][0][1] - probe["boxes"][0][0][0] + 1
        measured_stride = probe["boxes"][1][0][0] - probe["boxes"][0][0][0]
        assert (measured_field, measured_stride) == (geo.receptive_field[0], geo.stride[0]), stage


def test_the_probe_sees_through_dilation_padding_and_ceil_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=2, dilation=2), nn.MaxPool2d(3, 2, ceil_mode=True),
                          nn.Conv2d(4, 4, (3, 5), stride=2, padding=1), nn.ReLU())
    geo = backbones.layer_geometry(model, ["3"], size=(41, 37))["3"]
    probe = backbones.receptive_field_probe(model, "3", size=(41, 37), units=[(4, 4), (5, 4)])
    for unit, box in zip(probe["units"], probe["boxes"]):
        assert box == geo.window(unit)
    assert geo.receptive_field == (5 + 2 * 1 + 2 * 2, 5 + 2 * 1 + 4 * 2)  # by hand: field += (k - 1) * jump
    assert probe["output_size"] == geo.size


@pytest.mark.parametrize("name", NAMES)
def test_minimum_input_size_is_where_pytorch_stops_accepting_inputs(name):
    model = backbones._meta_model(name)
    minimum = backbones.minimum_input_size(model)
    model(torch.empty(1, 3, minimum, minimum, device="meta"))
    if minimum > 1:
        with pytest.raises(RuntimeError):
            model(torch.empty(1, 3, minimum - 1, minimum - 1, device="meta"))


def test_describe_an_existing_model_without_copying_its_weights(resnet18):
    info = backbones.describe(resnet18)
    assert info.name == "resnet18" and info.params == 11689512
    assert not any(p.is_meta for p in resnet18.parameters())


def test_describe_and_table_print(resnet18):
    text = str(backbones.describe(resnet18))
    assert re.search(r"layer4\s+layer4\s+512 x 7 x 7\s+32\s+435", text)
    table = backbones.format_table(backbones.compare(["alexnet", "googlenet"]))
    assert table.splitlines()[0].split()[:2] == ["model", "parameters"]
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["alexnet", "googlenet"]


# --------------------------------------------------------------------------- building and weights


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="known models: alexnet, vgg16, googlenet, resnet18, resnet50"):
        backbones.build("resnet34")
    with pytest.raises(TypeError, match="model name must be a string"):
        backbones.build(18)
    with pytest.raises(ValueError, match="'auto', 'pretrained' or 'random'"):
        backbones.build("resnet18", weights="imagenet")


def test_weights_file_is_where_torch_hub_looks(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = backbones.weights_file("resnet18").parent
    assert folder == paths.weights_dir() == tmp_path.resolve() / "hub" / "checkpoints"
    assert folder == Path(torch.hub.get_dir()).resolve() / "checkpoints"  # torch's own answer


def test_offline_auto_gives_random_weights_and_one_line(capsys):
    model = backbones.build("resnet18")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no pretrained weights" in out and "resnet18-f37072fd.pth" in out
    assert model.segtutor_weights == "random (seed 0)"
    same = backbones.build("resnet18", weights="random")
    other = backbones.build("resnet18", weights="random", seed=1)
    assert torch.equal(model.conv1.weight, same.conv1.weight)
    assert not torch.equal(model.conv1.weight, other.conv1.weight)


def test_pretrained_without_the_file_says_where_to_put_it():
    with pytest.raises(FileNotFoundError, match=r"(?s)resnet18-f37072fd\.pth.*internet"):
        backbones.build("resnet18", weights="pretrained")


def _fake_checkpoint(name, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    path = backbones.weights_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


def test_a_cached_state_dict_is_loaded(capsys):
    fake = _fake_checkpoint("resnet18")
    model = backbones.build("resnet18")
    assert capsys.readouterr().out == ""  # no "random weights" line
    assert model.segtutor_weights == "pretrained (IMAGENET1K_V1)" and not model.training
    for (key, ours), theirs in zip(model.state_dict().items(), fake.state_dict().values()):
        assert torch.equal(ours, theirs), key


def test_googlenet_pretrained_drops_the_auxiliary_heads_and_keeps_its_input_transform():
    fake = _fake_checkpoint("googlenet", aux_logits=True, transform_input=True, init_weights=False)
    model = backbones.build("googlenet", weights="pretrained")
    assert model.aux1 is None and model.aux2 is None and model.transform_input
    assert torch.equal(model.inception5b.branch1.conv.weight, fake.inception5b.branch1.conv.weight)
    x = torch.rand(1, 3, 96, 96)
    fake.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), fake(x), atol=1e-6)


def test_a_corrupt_file_names_itself_and_how_to_download_again():
    path = backbones.weights_file("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 this download was interrupted")
    with pytest.raises(RuntimeError) as info:
        backbones.build("resnet18")
    message = str(info.value)
    assert str(path) in message and "corrupt" in message
    assert "download it again" in message and "resnet18(weights='IMAGENET1K_V1')" in message


def test_a_file_with_other_weights_is_refused_by_name():
    path = backbones.weights_file("resnet18")
    path.parent.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(RuntimeError, match=re.escape(str(path)) + r".*does not hold resnet18 weights"):
        backbones.build("resnet18")
    torch.save([1, 2, 3], path)
    with pytest.raises(RuntimeError, match="state dict"):
        backbones.build("resnet18")


# --------------------------------------------------------------------------- inputs and feature maps


def _torchvision_eval_transform(size):
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Resize(size, antialias=True),
                       v2.CenterCrop(size), v2.Normalize(backbones.IMAGENET_MEAN, backbones.IMAGENET_STD)])


def test_to_batch_matches_torchvisions_transforms(cat):
    assert torch.allclose(backbones.to_batch(cat, size=224), _torchvision_eval_transform(224)(cat)[None], atol=1e-5)
    tall = np.ascontiguousarray(cat.transpose(1, 0, 2))
    assert torch.allclose(backbones.to_batch(tall, size=101), _torchvision_eval_transform(101)(tall)[None], atol=1e-5)
    assert backbones.to_batch(cat / 255.0).shape == (1, 3, 300, 451)
    assert backbones.to_batch(cat, size=(64, 96)).shape == (1, 3, 64, 96)


@pytest.mark.parametrize("bad, error, text", [
    (np.zeros((32, 32)), ValueError, r"\(H, W, 3\).*grayscale"),
    (np.zeros((32, 32, 4)), ValueError, r"\(H, W, 3\)"),
    (np.full((8, 8, 3), 300), ValueError, "0..255"),
    (np.full((8, 8, 3), 1.5), ValueError, r"\[0, 1\]"),
    (np.array([["a"] * 3] * 2), TypeError, "numbers"),
    (torch.zeros(3, 8, 8), ValueError, r"\(N, C, H, W\)"),
])
def test_to_batch_refuses_bad_images(bad, error, text):
    with pytest.raises(error, match=text):
        backbones.to_batch(bad)


@pytest.mark.parametrize("name, size", [("alexnet", 96), ("vgg16", 64), ("googlenet", 96), ("resnet50", 64)])
def test_feature_maps_match_torchvisions_feature_extractor(name, size):
    from torchvision.models.feature_extraction import create_feature_extractor

    model = backbones.build(name, weights="random")
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    ours = backbones.feature_maps(model, x)
    nodes = {path: stage for stage, path in backbones.STAGES[name].items()}
    extractor = create_feature_extractor(model, return_nodes=nodes)
    with torch.no_grad():
        theirs = extractor(x)
    assert list(ours) == list(backbones.STAGES[name])
    for stage in ours:
        assert torch.equal(ours[stage], theirs[stage]), stage
    assert all(not m._forward_hooks for m in model.modules())


def test_feature_maps_takes_module_paths_and_leaves_no_hooks(resnet18, cat):
    maps = backbones.feature_maps(resnet18, cat, ["layer2.0.conv1", "layer1"], size=64)
    assert list(maps) == ["layer2.0.conv1", "layer1"]
    assert maps["layer2.0.conv1"].shape == (1, 128, 8, 8) and maps["layer1"].shape == (1, 64, 16, 16)
    with pytest.raises(ValueError, match="unknown layer 'layer5'; stages of this model: stem, layer1"):
        backbones.feature_maps(resnet18, cat, ["layer1", "layer5"])
    assert all(not m._forward_hooks for m in resnet18.modules())


def test_inputs_of_the_wrong_shape_or_too_small_are_refused(alexnet):
    with pytest.raises(ValueError, match="3 channels"):
        backbones.feature_maps(alexnet, torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"smaller than the smallest input this network accepts: 63 x 63"):
        backbones.feature_maps(alexnet, torch.zeros(1, 3, 62, 80))
    with pytest.raises(ValueError, match="63 x 63"):
        backbones.logit_difference(alexnet, alexnet, np.zeros((40, 40, 3), np.uint8), size=None)
    fcn = backbones.convolutionalize(alexnet)  # its 6x6 convolution needs a 6x6 map: 223 px at least
    with pytest.raises(ValueError, match="223 x 223"):
        backbones.score_map(fcn, np.zeros((222, 300, 3), np.uint8))
    with pytest.raises(ValueError, match="no weights"):
        backbones.feature_maps("resnet18", torch.zeros(1, 3, 32, 32))
    with pytest.raises(TypeError, match="torch.nn.Module or one of the names"):
        backbones.feature_maps(object(), torch.zeros(1, 3, 32, 32))


# --------------------------------------------------------------------------- convolutionalize


def test_alexnet_convolutionalized_gives_the_same_logits_and_a_score_map(alexnet, cat):
    fcn = backbones.convolutionalize(alexnet)
    x = backbones.to_batch(cat, size=224)
    with torch.no_grad():
        logits, scores = alexnet(x), fcn(x)
    assert scores.shape == (1, 1000, 1, 1)
    assert (logits - scores.flatten(1)).abs().max() <= 1e-5
    assert backbones.logit_difference(alexnet, fcn, cat) <= 1e-5
    big = backbones.score_map(fcn, cat, size=(320, 480))
    assert big.shape == (1000, 4, 9) and big.dtype == np.float32
    # parameters are shared, not copied
    convs = [m for m in fcn if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(6, 6), (1, 1), (1, 1)]
    assert convs[0].weight.data_ptr() == alexnet.classifier[1].weight.data_ptr()


@pytest.mark.slow
def test_vgg16_convolutionalized_gives_the_same_logits(cat):
    vgg = backbones.build("vgg16", weights="random")
    fcn = backbones.convolutionalize(vgg)
    assert backbones.logit_difference(vgg, fcn, cat) <= 1e-5
    assert backbones.score_map(fcn, cat, size=(320, 480)).shape == (1000, 4, 9)


def test_resnet_and_googlenet_heads_become_a_1x1_convolution(resnet18, cat):
    fcn = backbones.convolutionalize(resnet18)
    assert backbones.logit_difference(resnet18, fcn, cat) <= 1e-5
    assert backbones.logit_difference(resnet18, fcn, cat, size=(320, 480)) <= 1e-5
    assert backbones.score_map(fcn, cat, size=(320, 480)).shape == (1000, 10, 15)
    for transform in (False, True):
        googlenet = torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=transform,
                                                 init_weights=False).eval()
        assert backbones.logit_difference(googlenet, backbones.convolutionalize(googlenet), cat, size=160) <= 1e-5


def test_convolutionalize_refuses_other_models():
    with pytest.raises(TypeError, match="cannot convolutionalize a Sequential"):
        backbones.convolutionalize(nn.Sequential(nn.Conv2d(3, 3, 3)))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        backbones.convolutionalize("alexnet")


# --------------------------------------------------------------------------- residual connections


def test_gradients_reach_the_first_layer_only_with_shortcuts():
    flow = backbones.gradient_flow(depth=30, seed=0)
    plain, residual = flow["plain"], flow["residual"]
    assert plain.shape == residual.shape == (30,)
    assert plain[0] / plain[-1] < 1e-6
    assert residual[0] / residual[-1] > 1e-2
    again = backbones.gradient_flow(depth=30, seed=0)
    assert np.array_equal(again["plain"], plain) and np.array_equal(again["residual"], residual)
    with pytest.raises(ValueError, match="depth must be >= 2"):
        backbones.gradient_flow(depth=1)


# --------------------------------------------------------------------------- the exercises' references


@pytest.mark.parametrize("kind", ["conv", "max", "avg"])
def test_output_size_agrees_with_pytorch(kind):
    rng = np.random.default_rng(7)
    for _ in range(150):
        kernel, stride = int(rng.integers(1, 8)), int(rng.integers(1, 5))
        padding = int(rng.integers(0, kernel // 2 + 1))
        dilation = int(rng.integers(1, 4)) if kind != "avg" else 1
        ceil_mode = kind != "conv" and bool(rng.random() < 0.5)
        size = int(rng.integers(dilation * (kernel - 1) + 1, 60))
        if kind == "conv":
            layer = nn.Conv2d(1, 1, kernel, stride, padding, dilation, device="meta")
        elif kind == "max":
            layer = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
        else:
            layer = nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode)
        expected = layer(torch.empty(1, 1, size, 3 * kernel, device="meta")).shape[2]
        assert backbones.output_size(size, kernel, stride, padding, dilation, ceil_mode) == expected
    assert type(backbones.output_size(224, 11, 4, 2)) is int


def test_stack_receptive_field_agrees_with_the_probe():
    rng = np.random.default_rng(3)
    for _ in range(6):
        layers, modules = [], []
        for _ in range(int(rng.integers(1, 6))):
            kernel, stride, dilation = int(rng.integers(1, 5)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
            layers.append((kernel, stride, dilation))
            modules.append(nn.Conv2d(3, 3, kernel, stride, dilation=dilation))
        model = nn.Sequential(*modules)
        field, stride = backbones.stack_receptive_field(layers)
        size = field + 2 * stride
        probe = backbones.receptive_field_probe(model, str(len(modules) - 1), size=size, units=[(0, 0), (1, 1)])
        (top, bottom), _ = probe["boxes"][0]
        assert (top, bottom - top + 1) == (0, field)
        assert probe["boxes"][1][0][0] - top == stride


def test_conv_param_count_agrees_with_pytorch():
    for args, kwargs in [((3, 64, 11), {}), ((96, 256, 5), {"groups": 2}), ((32, 48, (1, 7)), {"bias": False}),
                         ((256, 64, 1), {}), ((8, 8, 3), {"groups": 8})]:
        layer = nn.Conv2d(*args, device="meta", **kwargs)
        assert backbones.conv_param_count(*args, **kwargs) == sum(p.numel() for p in layer.parameters())


def test_fc_to_conv_weight_computes_what_the_linear_layer_computes():
    generator = torch.Generator().manual_seed(0)
    weight, x = torch.randn(5, 4 * 3 * 2, generator=generator), torch.randn(2, 4, 3, 2, generator=generator)
    kernel = backbones.fc_to_conv_weight(weight, 4, 3, 2)
    assert torch.allclose(torch.nn.functional.conv2d(x, kernel).flatten(1), x.flatten(1) @ weight.T, atol=1e-6)
    as_array = backbones.fc_to_conv_weight(weight.numpy(), 4, 3, 2)
    assert isinstance(as_array, np.ndarray) and as_array.dtype == np.float32


@pytest.mark.parametrize("call, error, text", [
    (lambda: backbones.output_size(3, 5), ValueError, "smaller than one window of 5 pixels"),
    (lambda: backbones.output_size(10, 3, stride=0), ValueError, "stride must be >= 1"),
    (lambda: backbones.output_size(10.0, 3), TypeError, "size must be an integer"),
    (lambda: backbones.output_size(10, 3, ceil_mode=1), TypeError, "ceil_mode must be True or False"),
    (lambda: backbones.stack_receptive_field([(3,)]), ValueError, r"layers\[0\] must be \(kernel, stride\)"),
    (lambda: backbones.stack_receptive_field("3x3"), TypeError, "list of"),
    (lambda: backbones.conv_param_count(3, 64, 3, groups=2), ValueError, "divisible by groups"),
    (lambda: backbones.conv_param_count(3, 64, 3, bias="yes"), TypeError, "bias must be True or False"),
    (lambda: backbones.fc_to_conv_weight(np.zeros((4, 10)), 2, 2, 2), ValueError, "flattens to 8"),
    (lambda: backbones.fc_to_conv_weight(np.zeros(8), 2, 2, 2), ValueError, "must be 2-D"),
    (lambda: backbones.fc_to_conv_weight([[1.0]], 1, 1, 1), TypeError, "NumPy array or a torch tensor"),
    (lambda: backbones.describe("alexnet", size=32), ValueError, "smallest input this network accepts, 63"),
    (lambda: backbones.layer_geometry("resnet18", ["fc"]), ValueError, "no spatial output"),
    (lambda: backbones.receptive_field_probe("resnet18", "layer1", size=64, units=[(99, 0)]), ValueError, "outside"),
])
def test_bad_arguments_get_clear_errors(call, error, text):
    with pytest.raises(error, match=text):
        call()


# --------------------------------------------------------------------------- the exercises


BACKBONE_EXERCISES = sorted(k for k in exercises.registry() if k.startswith("backbones."))


def test_the_lesson_has_four_exercises():
    assert BACKBONE_EXERCISES == ["backbones.conv_param_count", "backbones.fc_to_conv_weight",
                                  "backbones.output_size", "backbones.stack_receptive_field"]


@pytest.mark.parametrize("exercise_id", BACKBONE_EXERCISES)
def test_reference_passes_visible_and_hidden_cases(exercise_id, capsys):
    ex = exercises.get(exercise_id)
    verdict = exercises.check(exercise_id, ex.reference_function(), hidden_seed=4242)
    assert verdict.passed and verdict.n_cases == len(ex.cases(4242)) > len(ex.cases())
    assert isinstance(ex.hint, tuple) and len(ex.hint) == 2


def _wrong_answers():
    return [(eid, wa) for eid in BACKBONE_EXERCISES for wa in exercises.get(eid).wrong_answers]


def test_each_exercise_keeps_at_least_four_wrong_answers():
    for eid in BACKBONE_EXERCISES:
        assert len(exercises.get(eid).wrong_answers) >= 4, eid


@pytest.mark.parametrize("exercise_id, wrong", _wrong_answers(), ids=lambda v: getattr(v, "name", v))
def test_visible_cases_reject_each_wrong_answer_and_say_why(exercise_id, wrong):
    with pytest.raises(exercises.ExerciseFailed) as info:
        exercises.check(exercise_id, wrong.func)
    failure_lines = [line for line in str(info.value).splitlines() if line.startswith("- case")]
    assert failure_lines
    assert re.search(wrong.points_at, "\n".join(failure_lines)), str(info.value)


def test_a_float_is_not_a_size():
    with pytest.raises(exercises.ExerciseFailed, match=r"whole number \(int\) 28, got float 28\.0"):
        exercises.check("backbones.output_size", lambda *a, **k: float(backbones.output_size(*a, **k)))


def test_comparators():
    assert spec.whole_number()(5, np.int64(5)) is None
    assert "one window too many" in spec.whole_number()(5, 6)
    assert "whole number" in spec.whole_number()(5, True)
    assert spec.field_and_stride((7, 1), [7, 1]) is None
    assert "pair" in spec.field_and_stride((7, 1), 7)
    assert spec.same_kernel(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1))) is None
    assert "NumPy array" in spec.same_kernel(np.zeros((1, 1, 1, 1)), [[[[0.0]]]])


# --------------------------------------------------------------------------- plots


def test_plots_are_labelled():
    import matplotlib.pyplot as plt

    fig = backbones.plot_comparison(backbones.compare())
    acc, rf = fig.axes
    assert acc.get_ylabel().startswith("ImageNet-1K top-1") and "IMAGENET1K_V1" in acc.get_title()
    assert [t.get_text().split(" (")[0] for t in rf.get_legend().get_texts()] == NAMES
    assert len(acc.collections) == 5
    plt.close(fig)
    ax = backbones.plot_gradient_flow(backbones.gradient_flow(depth=5))
    assert ax.get_yscale() == "log" and ax.get_xlabel()
    plt.close(ax.figure)
    fig = backbones.plot_score_map(np.zeros((3, 2, 2)), np.zeros((20, 20, 3)), 1, categories=["a", "b", "c"])
    assert "class 1 'b'" in fig.axes[1].get_title()
    plt.close(fig)
    ax = backbones.plot_receptive_field_probe("vgg16", "pool3", size=96)
    assert ax.get_title().endswith("computed 44 px, measured 44 px")
    plt.close(ax.figure)


def test_doctests():
    for module in (backbones, spec):
        assert doctest.testmod(module).failed == 0


def test_public_api_is_documented_with_examples():
    for name in backbones.__all__:
        value = getattr(backbones, name)
        if callable(value):
            assert value.__doc__ and "Examples" in value.__doc__, name
