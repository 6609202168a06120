"""segtutor.fcn: upsampling, skips, the FCN head over backbones, training and evaluation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.transform import resize
from sklearn.metrics import jaccard_score

from segtutor import data, fcn, metrics
from segtutor.exercises import fcn as fcn_exercises  # noqa: F401  (registers the lesson's exercises)

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

#: A training small enough for unit tests (a few seconds).
TINY = fcn.Config(iterations=4, batch_size=2, train_scenes=6, val_scenes=3, eval_every=2, size=32, max_size=12,
                  widths=(4, 4, 8, 8, 8), depths=(1, 1, 1, 1, 1), warmup=1)


def upsample_filt(size):
    """The kernel as the FCN authors wrote it (``surgery.py`` of the Caffe FCN code)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)


# =========================================================================== upsampling


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 16, 17, 64])
def test_bilinear_kernel_is_the_fcn_papers(size):
    kernel = fcn.bilinear_kernel(size)
    assert kernel.dtype == np.float64 and kernel.shape == (size, size)
    np.testing.assert_allclose(kernel, upsample_filt(size), rtol=0, atol=1e-15)


@pytest.mark.parametrize("factor", [2, 4, 8, 32])
def test_an_even_kernel_gives_every_output_pixel_weights_that_sum_to_one(factor):
    kernel = fcn.bilinear_kernel(2 * factor)
    assert np.isclose(kernel.sum(), factor ** 2)
    # the taps that land on one output pixel are factor apart
    np.testing.assert_allclose(kernel.reshape(2, factor, 2, factor).sum(axis=(0, 2)), 1.0)


@pytest.mark.parametrize("size, error", [(0, ValueError), (-2, ValueError), (2.5, TypeError), ("4", TypeError),
                                         (True, TypeError), (None, TypeError)])
def test_bilinear_kernel_refuses_bad_sizes(size, error):
    with pytest.raises(error, match="size"):
        fcn.bilinear_kernel(size)


def test_transposed_conv_output_size_is_what_pytorch_produces():
    checked = 0
    for size in (1, 2, 5, 8):
        for kernel in (1, 2, 3, 4, 16):
            for stride in (1, 2, 3, 8):
                for padding in range(0, kernel // 2 + 1):
                    for output_padding in range(stride):
                        for dilation in (1, 2):
                            layer = torch.nn.ConvTranspose2d(1, 1, kernel, stride=stride, padding=padding,
                                                             output_padding=output_padding, dilation=dilation)
                            try:
                                expected = layer(torch.zeros(1, 1, size, size)).shape[-1]
                            except RuntimeError:
                                expected = 0
                            if expected < 1:  # PyTorch fails or returns an empty map: we say why
                                with pytest.raises(ValueError, match="no output pixels"):
                                    fcn.transposed_conv_output_size(size, kernel, stride, padding, output_padding,
                                                                    dilation)
                                continue
                            got = fcn.transposed_conv_output_size(size, kernel, stride, padding, output_padding,
                                                                  dilation)
                            assert type(got) is int and got == expected, (size, kernel, stride, padding)
                            checked += 1
    assert checked > 300


def test_transposed_conv_output_size_refuses_bad_input():
    with pytest.raises(ValueError, match="output_padding must be smaller than stride"):
        fcn.transposed_conv_output_size(4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="no output pixels"):
        fcn.transposed_conv_output_size(1, 1, padding=1)
    with pytest.raises(ValueError, match="size"):
        fcn.transposed_conv_output_size(0, 3)
    with pytest.raises(TypeError, match="stride"):
        fcn.transposed_conv_output_size(4, 3, stride=1.5)


def test_bilinear_upsampling_layer_is_initialised_to_bilinear_per_channel():
    layer = fcn.bilinear_upsampling(3, 4)
    weight = layer.weight.detach().numpy()
    assert weight.shape == (3, 3, 8, 8) and layer.bias is None and layer.stride == (4, 4)
    for i in range(3):
        for j in range(3):
            np.testing.assert_allclose(weight[i, j], upsample_filt(8) if i == j else 0)
    assert layer.weight.requires_grad and not fcn.bilinear_upsampling(3, 4, learnable=False).weight.requires_grad
    with pytest.raises(ValueError, match="factor must be 1 or even"):
        fcn.bilinear_upsampling(3, 3)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_upsampling_matches_scikit_image(factor):
    x = np.random.default_rng(factor).normal(size=(3, 5, 7))
    out = fcn.upsample(x, factor, "bilinear")
    reference = np.stack([resize(c, (5 * factor, 7 * factor), order=1, mode="edge", anti_aliasing=False)
                          for c in x])
    np.testing.assert_allclose(out, reference, atol=1e-12)
    # the transposed convolution computes the same numbers away from the border
    transposed = fcn.upsample(x, factor, "transposed")
    m = factor // 2
    np.testing.assert_allclose(transposed[:, m:-m, m:-m], reference[:, m:-m, m:-m], atol=1e-12)
    assert not np.allclose(transposed, reference)  # ... and fades to 0 at the border, where bilinear repeats


def test_upsample_modes_types_and_shapes():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(fcn.upsample(x, 2, "nearest"), np.kron(x, np.ones((2, 2))))
    assert fcn.upsample(x.astype(np.int64), 4).shape == (8, 12)
    t = torch.arange(24.0).reshape(1, 2, 3, 4)
    out = fcn.upsample(t, 2, "transposed")
    assert isinstance(out, torch.Tensor) and out.shape == (1, 2, 6, 8) and out.dtype == torch.float32
    assert fcn.upsample(x, 1, "bilinear").shape == (2, 3)
    with pytest.raises(ValueError, match="mode must be"):
        fcn.upsample(x, 2, "bicubic")
    with pytest.raises(ValueError, match=r"shape \(H, W\)"):
        fcn.upsample(np.zeros(4), 2)
    with pytest.raises(TypeError, match="numbers"):
        fcn.upsample(np.array([["a"]]), 2)
    with pytest.raises(ValueError, match="factor must be 1 or even"):
        fcn.upsample(x, 3)


# =========================================================================== the skip


def test_fuse_skip_upsamples_crops_and_adds():
    torch.manual_seed(0)
    fuse = fcn.FuseSkip(num_classes=3, skip_channels=5)
    torch.nn.init.normal_(fuse.score.weight)
    scores, features = torch.randn(2, 3, 4, 6), torch.randn(2, 5, 7, 12)
    up = F.conv_transpose2d(scores, fuse.upsample.weight, stride=2)  # 10 x 14
    expected = F.conv2d(features, fuse.score.weight, fuse.score.bias) + up[..., 1:8, 1:13]
    torch.testing.assert_close(fuse(scores, features), expected)


def test_an_untrained_skip_passes_the_coarse_scores_through():
    fuse = fcn.FuseSkip(num_classes=2, skip_channels=4)
    scores = torch.randn(1, 2, 3, 3)
    out = fuse(scores, torch.randn(1, 4, 6, 6))
    torch.testing.assert_close(out[..., 1:-1, 1:-1], fcn.upsample(scores, 2, "bilinear")[..., 1:-1, 1:-1])


def test_fuse_skip_says_when_the_coarse_map_is_too_small():
    fuse = fcn.FuseSkip(num_classes=2, skip_channels=4)
    with pytest.raises(ValueError, match="too small"):
        fuse(torch.randn(1, 2, 2, 2), torch.randn(1, 4, 8, 8))


# =========================================================================== backbones and the head


def test_tiny_backbone_has_strides_8_16_32():
    backbone = fcn.TinyBackbone(widths=(4, 5, 6, 7, 8), depths=(1, 2, 1, 1, 1))
    out = backbone(torch.zeros(2, 3, 96, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "stride8": (2, 6, 12, 8), "stride16": (2, 7, 6, 4), "stride32": (2, 8, 3, 2)}
    assert backbone.channels == {"stride8": 6, "stride16": 7, "stride32": 8}
    with pytest.raises(ValueError, match="5 entries"):
        fcn.TinyBackbone(widths=(4, 4, 4))


SIZES = [(1, 1), (7, 5), (31, 33), (32, 32), (33, 64), (64, 64), (65, 97), (100, 37), (13, 200)]


@pytest.mark.parametrize("variant", fcn.VARIANTS)
def test_the_output_has_the_input_size_whatever_it_is(variant):
    model = fcn.FCN(fcn.TinyBackbone(widths=(4, 4, 8, 8, 8)), num_classes=5, variant=variant).eval()
    with torch.no_grad():
        for height, width in SIZES:
            assert model(torch.rand(1, 3, height, width)).shape == (1, 5, height, width)


def test_the_learned_last_upsampling_also_keeps_the_size():
    model = fcn.FCN(fcn.TinyBackbone(widths=(4, 4, 8, 8, 8)), 3, "16s", learn_final=True).eval()
    assert model.final.weight.requires_grad
    with torch.no_grad():
        for height, width in SIZES:
            assert model(torch.rand(1, 3, height, width)).shape == (1, 3, height, width)


class RampBackbone(torch.nn.Module):
    """Stride-32 features equal to the row coordinate of each cell's centre; zero finer features."""

    channels = {"stride8": 1, "stride16": 1, "stride32": 1}

    def forward(self, x):
        n, _, height, width = x.shape
        rows = 32 * torch.arange(height // 32, dtype=torch.float32) + 15.5
        coarse = rows.view(1, 1, -1, 1).expand(n, 1, height // 32, width // 32)
        return {"stride32": coarse.contiguous(), "stride16": torch.zeros(n, 1, height // 16, width // 16),
                "stride8": torch.zeros(n, 1, height // 8, width // 8)}


@pytest.mark.parametrize("variant", fcn.VARIANTS)
@pytest.mark.parametrize("learn_final", [False, True])
def test_the_output_is_aligned_with_the_input(variant, learn_final):
    # Scores that grow linearly with the row of each cell's centre must come out, after every
    # bilinear upsampling and crop, equal to the row of each output pixel: no shift anywhere.
    model = fcn.FCN(RampBackbone(), 2, variant, learn_final=learn_final).eval()
    with torch.no_grad():
        model.score.weight.fill_(1.0)
        model.score.bias.zero_()
        out = model(torch.zeros(1, 3, 256, 160))
    interior = out[0, :, 64:192, 48:112].numpy()  # a transposed convolution fades at the border
    rows = np.arange(64, 192.0)[None, :, None]
    np.testing.assert_allclose(interior, np.broadcast_to(rows, interior.shape), atol=1e-3)


def test_fcn_checks_its_backbone():
    class Plain(torch.nn.Module):
        def forward(self, x):
            return x

    class MissingStride(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=8, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return {"stride8": y, "stride16": y[..., ::2, ::2]}

    class WrongStride(MissingStride):
        def forward(self, x):
            y = self.conv(x)
            return {"stride8": y, "stride16": y[..., ::2, ::2], "stride32": y[..., ::2, ::2]}

    with pytest.raises(ValueError, match="must return a dict of feature maps"):
        fcn.FCN(Plain(), 4)
    with pytest.raises(ValueError, match=r"strides 8, 16 and 32.*missing \['stride32'\]"):
        fcn.FCN(MissingStride(), 4)
    with pytest.raises(ValueError, match="'stride32' features must have stride 32: 2x2 for a 64x64 input; got 4x4"):
        fcn.FCN(WrongStride(), 4)
    with pytest.raises(TypeError, match="backbone must be a torch.nn.Module"):
        fcn.FCN(lambda x: x, 4)
    with pytest.raises(ValueError, match="variant must be one of"):
        fcn.FCN(fcn.TinyBackbone(), 4, variant="4s")
    with pytest.raises(ValueError, match="num_classes"):
        fcn.FCN(fcn.TinyBackbone(), 1)


def test_fcn_checks_its_input():
    model = fcn.FCN(fcn.TinyBackbone(widths=(4, 4, 8, 8, 8)), 4).eval()
    with pytest.raises(ValueError, match=r"tensor \(N, 3, H, W\) in \[0, 1\]; got shape \(3, 8, 8\)"):
        model(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match=r"got shape \(1, 1, 8, 8\)"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(TypeError, match="float images"):
        model(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="empty batch"):
        model(torch.zeros(0, 3, 8, 8))
    with pytest.raises(ValueError, match="got ndarray|got array"):
        model(np.zeros((1, 3, 8, 8)))


@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_the_same_head_runs_on_lesson_03s_backbones(name):
    backbone = fcn.torchvision_backbone(name, weights="random")
    model = fcn.FCN(backbone, num_classes=21, variant="8s").eval()
    assert model.channels == {"vgg16": {"stride8": 256, "stride16": 512, "stride32": 512},
                              "resnet18": {"stride8": 128, "stride16": 256, "stride32": 512}}[name]
    torch.testing.assert_close(model.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    with torch.no_grad():
        assert model(torch.rand(1, 3, 45, 70)).shape == (1, 21, 45, 70)
    with pytest.raises(ValueError, match="name must be one of"):
        fcn.torchvision_backbone("alexnet")


# =========================================================================== data, training, evaluation


def test_scenes_are_seeded_and_disjoint():
    a, la = fcn.scenes(3, seed=1, config=TINY)
    b, lb = fcn.scenes(3, seed=1, config=TINY)
    c, _ = fcn.scenes(3, seed=2, config=TINY)
    assert a.shape == (3, 32, 32, 3) and la.dtype == np.int64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(la[1], data.make_scene(seed=(1, 1), size=32, min_size=12, max_size=12)[1])


def test_training_is_deterministic_and_the_cache_returns_the_same_model(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path))
    first = fcn.train(TINY, progress=False)
    second = fcn.train(TINY, progress=False)
    assert first["history"]["loss"] == second["history"]["loss"]
    for key, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][key]), key
    model, result, from_cache = fcn.trained_model(TINY, progress=False)
    assert not from_cache
    again, result2, from_cache = fcn.trained_model(TINY, progress=False)
    assert from_cache and result2["history"] == result["history"] == first["history"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]) and torch.equal(value, first["state_dict"][key])
    other = fcn.train(TINY.replace(seed=1), progress=False)
    assert other["history"]["loss"] != first["history"]["loss"]


def test_training_history_and_the_loss_going_down():
    config = TINY.replace(iterations=30, eval_every=10, lr=1e-2, train_scenes=8, batch_size=4)
    result = fcn.train(config, progress=False)
    history = result["history"]
    assert len(history["loss"]) == len(history["lr"]) == 30 and history["eval_at"] == [10, 20, 30]
    assert len(history["val_miou"]) == len(history["val_boundary_f1"]) == 3
    assert np.mean(history["loss"][-5:]) < np.mean(history["loss"][:5])
    assert max(history["lr"]) == pytest.approx(1e-2) and history["lr"][-1] < 1e-3  # warm-up, then poly decay
    assert result["config"] == config.as_dict() and result["seconds"] > 0


def test_ignored_pixels_are_allowed_and_left_out_of_the_loss():
    images, labels = fcn.scenes(4, seed=9, config=TINY)
    ignored = labels.copy()
    ignored[:, :8] = fcn.IGNORE_INDEX
    a = fcn.train(TINY, progress=False, train_set=(images, ignored), val_set=(images, labels))
    b = fcn.train(TINY, progress=False, train_set=(images, labels), val_set=(images, labels))
    assert np.isfinite(a["history"]["loss"]).all() and a["history"]["loss"] != b["history"]["loss"]
    with pytest.raises(ValueError, match="every pixel of train_set labels is ignore_index"):
        fcn.train(TINY, progress=False, train_set=(images, np.full_like(labels, fcn.IGNORE_INDEX)))


def test_bad_data_is_refused_with_a_clear_message():
    images, labels = fcn.scenes(2, seed=0, config=TINY)
    bad = labels.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"contains class 7, but num_classes=4 allows 0..3 \(and 255"):
        fcn.train(TINY, progress=False, train_set=(images, bad))
    with pytest.raises(ValueError, match="empty"):
        fcn.train(TINY, progress=False, train_set=(images[:0], labels[:0]))
    with pytest.raises(ValueError, match=r"shape \(N, H, W, 3\)"):
        fcn.train(TINY, progress=False, train_set=(images[..., :2], labels))
    with pytest.raises(ValueError, match=r"one label map per image, shape \(2, 32, 32\) \(N, H, W\); got \(2, 16, 32\)"):
        fcn.train(TINY, progress=False, train_set=(images, labels[:, :16]))
    with pytest.raises(TypeError, match="integer class ids"):
        fcn.train(TINY, progress=False, train_set=(images, labels.astype(float)))
    with pytest.raises(TypeError, match="pair"):
        fcn.train(TINY, progress=False, train_set=images)
    with pytest.raises(ValueError, match=r"val_set labels contains class 9"):
        fcn.train(TINY, progress=False, val_set=(images, np.where(labels == 3, 9, labels)))
    with pytest.raises(TypeError, match="Config"):
        fcn.train({"iterations": 3})
    with pytest.raises(ValueError, match="variant"):
        fcn.Config(variant="4s")
    with pytest.raises(ValueError, match="iterations"):
        fcn.Config(iterations=0)


def test_evaluate_agrees_with_scikit_learn_and_the_metrics_module():
    model = fcn.build_model(TINY)
    images, labels = fcn.scenes(5, seed=4, config=TINY)
    scores = fcn.evaluate(model, images, labels)
    predictions = fcn.predict(model, images)
    # mIoU of the confusion matrix accumulated over the set, as scikit-learn computes it
    present = np.union1d(np.unique(predictions), np.unique(labels))
    expected = jaccard_score(labels.ravel(), predictions.ravel(), labels=present, average="macro")
    assert scores["miou"] == pytest.approx(expected, abs=1e-12)
    assert scores["pixel_accuracy"] == pytest.approx(np.mean(predictions == labels))
    assert scores["boundary_f1"] == pytest.approx(np.mean([metrics.boundary_f1(p, t)
                                                           for p, t in zip(predictions, labels)]))
    np.testing.assert_array_equal(scores["confusion"].sum(), labels.size)


def test_evaluate_leaves_ignored_pixels_out():
    model = fcn.build_model(TINY)
    images, labels = fcn.scenes(2, seed=4, config=TINY)
    predictions = fcn.predict(model, images)
    ignored = np.where(predictions != labels, fcn.IGNORE_INDEX, labels)  # ignore every mistake
    scores = fcn.evaluate(model, images, ignored)
    assert scores["pixel_accuracy"] == 1.0 and scores["miou"] == 1.0


def test_predict_takes_any_size_single_images_batches_lists_and_uint8():
    model = fcn.build_model(TINY)
    assert fcn.predict(model, np.zeros((45, 71, 3), np.float32)).shape == (45, 71)
    assert fcn.predict(model, np.zeros((2, 9, 13, 3), np.uint8)).shape == (2, 9, 13)
    out = fcn.predict(model, [np.zeros((5, 6, 3)), np.ones((17, 3, 3))])
    assert [o.shape for o in out] == [(5, 6), (17, 3)] and out[0].dtype == np.int64
    with pytest.raises(ValueError, match=r"RGB images of shape \(N, H, W, 3\)"):
        fcn.predict(model, np.zeros((8, 8)))
    with pytest.raises(ValueError, match="empty"):
        fcn.predict(model, [])
    with pytest.raises(ValueError, match="NaN"):
        fcn.predict(model, np.full((4, 4, 3), np.nan))


def test_a_trained_model_reloads_from_its_payload():
    result = fcn.train(TINY, progress=False)
    model = fcn.load_model(result)
    images, labels = fcn.scenes(2, seed=7, config=TINY)
    assert not model.training and model.variant == TINY.variant
    with pytest.raises(TypeError, match="payload"):
        fcn.load_model({"weights": 1})


def test_score_maps_are_coarse_then_full_size():
    model = fcn.build_model(TINY.replace(variant="16s"))
    coarse, full = fcn.score_maps(model, np.zeros((40, 70, 3), np.float32))
    assert coarse.shape == (4, 4, 6) and full.shape == (4, 40, 70)


def test_training_restores_torchs_thread_count():
    before = torch.get_num_threads()
    fcn.train(TINY.replace(threads=1), progress=False)
    assert torch.get_num_threads() == before


# =========================================================================== the lesson's widget


def test_the_explorer_shows_each_scene_through_every_model():
    from segtutor import widgets

    images, labels = fcn.scenes(3, seed=5, config=TINY)
    models = {"32s": {"model": fcn.build_model(TINY.replace(variant="32s"))},
              "8s": {"model": fcn.build_model(TINY)}}
    explorer = widgets.FCNExplorer(models, images, labels)
    assert explorer.names == ["FCN-32s", "FCN-8s"]
    shown = explorer.set(index=2)
    np.testing.assert_array_equal(shown[1], fcn.predict(models["8s"]["model"], images[2]))
    assert explorer.png()[:4] == b"\x89PNG"
    titles = [ax.get_title() for ax in explorer._axes]
    miou = metrics.mean_iou(shown[1], labels[2], num_classes=4)
    assert titles[0].startswith("scene 2: ground truth") and f"mIoU {miou:.2f}" in titles[2]
    explorer.set(zoom=True)
    top, left, height, width = explorer.window()
    assert explorer._axes[1].get_xlim() == (left - 0.5, left + width - 0.5)
    assert explorer.png()[:4] == b"\x89PNG"
    bundle = explorer._repr_mimebundle_()
    assert "image/png" in bundle and bundle["text/plain"].startswith("FCNExplorer(")


def test_the_explorer_refuses_bad_input():
    from segtutor import widgets

    images, labels = fcn.scenes(2, seed=5, config=TINY)
    model = fcn.build_model(TINY)
    with pytest.raises(TypeError, match="models must be a non-empty dict"):
        widgets.FCNExplorer([model], images, labels)
    with pytest.raises(ValueError, match=r"labels must have shape \(2, 32, 32\)"):
        widgets.FCNExplorer({"m": model}, images, labels[:1])
    with pytest.raises(ValueError, match="RGB images"):
        widgets.FCNExplorer({"m": model}, images[..., 0], labels)
    explorer = widgets.FCNExplorer({"m": model}, images, labels)
    with pytest.raises(ValueError, match=r"index must be 0..1"):
        explorer.set(index=2)
    with pytest.raises(TypeError, match="zoom must be True or False"):
        explorer.set(zoom="yes")


def test_the_lessons_model_trains_to_the_same_bits_twice():
    # The lesson's released run reloads the checkpoint its source run wrote; that is only
    # right if training again would give the same weights. The lesson's own model and
    # settings, with fewer steps and scenes:
    config = fcn.LESSON_CONFIG.replace(iterations=12, train_scenes=16, val_scenes=4, eval_every=6)
    first, second = fcn.train(config, progress=False), fcn.train(config, progress=False)
    assert first["history"]["loss"] == second["history"]["loss"]
    assert all(torch.equal(v, second["state_dict"][k]) for k, v in first["state_dict"].items())


def test_trained_model_advances_one_bar_whether_it_trains_or_reloads(tmp_path, monkeypatch):
    import io

    from tqdm.auto import tqdm

    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path))
    for expected_cache in (False, True):
        text = io.StringIO()
        bar = tqdm(total=TINY.iterations, file=text)
        _, _, from_cache = fcn.trained_model(TINY, progress=bar)
        assert from_cache is expected_cache and bar.n == TINY.iterations
        assert ("reloaded" in text.getvalue()) is expected_cache


# ----------------------------------------------------------------------------- on a hub (real photographs)


def _tiny_hub(**changes):
    values = dict(backbone="tiny", size=32, iterations=4, batch_size=2, eval_every=2, warmup=2, lr=0.05,
                  val_images=0, threads=1)
    values.update(changes)
    return fcn.HubConfig(**values)


def _cpu(workers=0):
    from segtutor import profiles

    return profiles.Settings("full", "cpu", mixed_precision=False, num_workers=workers, real_data=True,
                             pretrained=False)


def test_hub_run_is_one_line_without_the_full_profile_or_the_data(tmp_path, capsys):
    assert fcn.hub_run(profile="quick") is None
    first = capsys.readouterr().out
    assert first.count("\n") == 1 and "quick profile" in first and "segtutor fetch voc" in first
    assert fcn.hub_run(fcn.HubConfig(dataset="pet"), profile="full", root=tmp_path) is None
    second = capsys.readouterr().out
    assert second.count("\n") == 1 and f"Oxford-IIIT Pet is not in {tmp_path}" in second


def test_hub_datasets_give_aligned_crops_of_voc_the_pets_and_pennfudan(voc_root, pet_root, tmp_path):
    from conftest import pennfudan

    train, val, classes = fcn.hub_datasets(_tiny_hub(dataset="pennfudan"), pennfudan(tmp_path / "fudan", n=4))
    assert (len(train), len(val), classes) == (3, 1, ("background", "person"))
    assert val.indices == range(3, 4) and set(np.unique(np.asarray(val[0][1]))) == {0, 1}
    train, val, classes = fcn.hub_datasets(_tiny_hub(), voc_root)
    assert (len(train), len(val), len(classes)) == (2, 1, 21)
    image, labels = train[0]
    assert tuple(image.shape) == (3, 32, 32) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert tuple(labels.shape) == (32, 32) and labels.dtype == torch.int64
    assert set(np.unique(labels.numpy())) <= {0, 1, 15, 255}
    train, val, classes = fcn.hub_datasets(_tiny_hub(dataset="pet", val_images=1), pet_root)
    assert (len(train), len(val), classes) == (2, 1, ("background", "pet"))


def test_evaluate_dataset_agrees_with_the_array_evaluation(voc_root):
    """The data-loader scoring equals fcn.evaluate on the same crops (metrics.confusion_matrix)."""
    _, val, classes = fcn.hub_datasets(_tiny_hub(), voc_root)
    model = fcn.hub_model(_tiny_hub(), len(classes))
    images = np.stack([np.asarray(val[i][0]).transpose(1, 2, 0) for i in range(len(val))])
    labels = np.stack([np.asarray(val[i][1]) for i in range(len(val))])
    expected = fcn.evaluate(model, images, labels, num_classes=len(classes))
    got = fcn.evaluate_dataset(model, val, settings=_cpu())
    assert np.array_equal(got["confusion"], expected["confusion"])
    assert got["miou"] == pytest.approx(expected["miou"]) and got["pixel_accuracy"] == pytest.approx(
        expected["pixel_accuracy"])
    assert got["confusion"].sum() == int((labels != fcn.IGNORE_INDEX).sum())


@pytest.mark.parametrize("workers", [0, 2])
def test_train_on_is_deterministic_on_the_cpu(voc_root, workers):
    config = _tiny_hub()
    train, val, classes = fcn.hub_datasets(config, voc_root)
    runs = [fcn.train_on(fcn.hub_model(config, len(classes)), train, val, config, settings=_cpu(workers),
                         progress=False) for _ in range(2)]
    history = runs[0]["history"]
    assert len(history["loss"]) == 4 and history["eval_at"] == [2, 4] and np.isfinite(history["loss"]).all()
    # two warm-up steps up to lr, then poly decay over the two steps left: (1 - 0/2) ** 0.9, (1 - 1/2) ** 0.9
    assert history["lr"] == pytest.approx([0.025, 0.05, 0.05, 0.05 * 0.5 ** 0.9])
    assert runs[0]["history"]["loss"] == runs[1]["history"]["loss"]
    for key, value in runs[0]["state_dict"].items():
        assert torch.equal(value, runs[1]["state_dict"][key]), key
    assert runs[0]["device"] == "cpu"


def test_train_on_learns_the_fixture_colours(voc_root):
    """Labels are colours in the fixture: 60 steps take pixel accuracy well above the majority class."""
    config = _tiny_hub(iterations=60, eval_every=60, lr=0.05, warmup=5)
    train, val, classes = fcn.hub_datasets(config, voc_root)
    result = fcn.train_on(fcn.hub_model(config, len(classes)), train, val, config, settings=_cpu(), progress=False)
    labels = np.asarray(val[0][1])
    counts = np.bincount(labels[labels != 255])
    majority = counts.max() / counts.sum()
    assert result["history"]["val_pixel_accuracy"][-1] > majority + 0.1
    assert np.mean(result["history"]["loss"][-10:]) < np.mean(result["history"]["loss"][:10])


def test_hub_run_trains_reloads_and_plots(voc_root, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("segtutor.profiles._cuda_available", lambda: False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)  # no data-loader workers
    config = _tiny_hub()
    run = fcn.hub_run(config, root=voc_root, profile="full", progress=False, examples=1)
    out = capsys.readouterr().out
    assert "trained in" in out and "validation mIoU" in out and not run["from_cache"]
    assert 0 <= run["scores"]["miou"] <= 1 and run["classes"][15] == "person" and run["val_images"] == 1
    (image, truth, pred), = run["examples"]
    assert image.shape == (32, 32, 3) and truth.shape == pred.shape == (32, 32)
    again = fcn.hub_run(config, root=voc_root, profile="full", progress=False, examples=1)
    assert again["from_cache"] and again["scores"]["miou"] == run["scores"]["miou"]
    fig = fcn.plot_hub_run(run)
    assert len(fig.axes) == 3 and "validation mIoU" in fig.texts[0].get_text() if fig.texts else True
    assert "validation mIoU" in fig._suptitle.get_text()
    with pytest.raises(TypeError, match="what segtutor.fcn.hub_run returned"):
        fcn.plot_hub_run(None)


def test_hub_config_and_train_on_refuse_bad_input(voc_root):
    with pytest.raises(ValueError, match="dataset must be 'voc', 'pet' or 'pennfudan'"):
        fcn.HubConfig(dataset="coco")
    with pytest.raises(ValueError, match="weights must be"):
        fcn.HubConfig(weights="imagenet")
    config = _tiny_hub(batch_size=3)
    train, val, classes = fcn.hub_datasets(config, voc_root)
    with pytest.raises(ValueError, match="fewer than one batch of 3"):
        fcn.train_on(fcn.hub_model(config, 21), train, val, config, settings=_cpu(), progress=False)
    with pytest.raises(TypeError, match="model must be a segtutor.fcn.FCN"):
        fcn.train_on(torch.nn.Linear(2, 2), train, val, _tiny_hub(), settings=_cpu())
    with pytest.raises(TypeError, match="HubConfig"):
        fcn.hub_datasets(fcn.Config(), voc_root)
    with pytest.raises(TypeError, match="the dict returned by segtutor.fcn.train_on"):
        fcn.load_hub_model({"state_dict": {}}, 21)
