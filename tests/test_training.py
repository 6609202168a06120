"""segtutor.training: devices, seeds, the checkpoint cache and the history plot."""

import random

import numpy as np
import pytest
import torch

from segtutor import data, metrics, paths, training


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache and no SEGTUTOR_RETRAIN."""
    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEGTUTOR_RETRAIN", raising=False)
    return tmp_path / "cache"


def tiny_training(seed=0, steps=15):
    """A small deterministic training: a two-layer convnet on four synthetic scenes."""
    training.seed_everything(seed)
    images, labels = data.make_scenes(4, size=16, max_size=8, seed=seed)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    y = torch.from_numpy(labels)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.Dropout2d(0.2), torch.nn.Conv2d(8, 4, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        pick = torch.randint(0, 4, (2,))  # random numbers from the seeded global generator
        loss = torch.nn.functional.cross_entropy(model(x[pick]), y[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {"state_dict": {k: v.clone() for k, v in model.state_dict().items()},
            "history": {"loss": losses}, "seconds": 0.0}


CONFIG = {"seed": 0, "steps": 15, "model": "tiny", "widths": [8, 4]}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


# -- device and seeds -------------------------------------------------------------------------

def test_device_is_cuda_exactly_when_cuda_is_available(monkeypatch):
    assert training.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training.device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training.device() == torch.device("cuda")


def test_seed_everything_seeds_python_numpy_and_torch():
    def draw():
        return random.random(), np.random.random(), torch.rand(3).tolist(), torch.randint(0, 1000, (1,)).item()

    training.seed_everything(7)
    first = draw()
    training.seed_everything(7)
    assert draw() == first
    training.seed_everything(8)
    assert draw() != first
    assert torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**32, ValueError), (1.5, TypeError),
                                         ("0", TypeError), (True, TypeError), (None, TypeError)])
def test_seed_everything_refuses_bad_seeds(seed, error):
    with pytest.raises(error, match="seed must be"):
        training.seed_everything(seed)


def test_two_deterministic_trainings_give_bit_identical_weights():
    a, b = tiny_training(seed=3), tiny_training(seed=3)
    assert same_state(a["state_dict"], b["state_dict"])
    assert a["history"] == b["history"]
    c = tiny_training(seed=4)  # the comparison can fail: another seed, other weights
    assert not same_state(a["state_dict"], c["state_dict"])


# -- the cache --------------------------------------------------------------------------------

def test_a_miss_trains_and_saves_then_a_hit_loads_the_same_weights(cache):
    calls = []

    def train():
        calls.append(1)
        return tiny_training()

    first, from_cache = training.cached("tiny", CONFIG, train)
    assert not from_cache and len(calls) == 1
    files = list((cache / "checkpoints").iterdir())
    key = training.cache_key("tiny", CONFIG, train)
    assert [f.name for f in files] == [f"tiny-{key[:16]}.pt"]
    assert files[0] == training.checkpoint_path("tiny", key)
    second, from_cache = training.cached("tiny", CONFIG, train)
    assert from_cache and len(calls) == 1
    assert same_state(first["state_dict"], second["state_dict"])
    assert second["history"] == first["history"]
    # ... and the reloaded weights are those a new training gives
    assert same_state(second["state_dict"], tiny_training()["state_dict"])


def test_the_checkpoint_lives_under_the_course_cache(cache):
    key = training.cache_key("tiny", CONFIG)
    path = training.checkpoint_path("tiny", key)
    assert path.parent == paths.cache_dir() / "checkpoints" == cache / "checkpoints"
    assert path.name == f"tiny-{key[:16]}.pt" and len(key) == 64


def test_other_settings_miss_the_cache():
    calls = []

    def train():
        calls.append(1)
        return {"x": torch.tensor([len(calls)])}

    training.cached("tiny", CONFIG, train)
    training.cached("tiny", {**CONFIG, "steps": 16}, train)
    training.cached("other", CONFIG, train)
    assert len(calls) == 3
    assert training.cached("tiny", dict(reversed(list(CONFIG.items()))), train)[1]  # key order is irrelevant


def test_the_key_covers_name_config_versions_and_source(monkeypatch):
    base = training.cache_key("tiny", CONFIG)
    assert base == training.cache_key("tiny", dict(CONFIG))
    assert base != training.cache_key("tiny2", CONFIG)
    assert base != training.cache_key("tiny", {**CONFIG, "widths": [8, 5]})
    assert base != training.cache_key("tiny", {**CONFIG, "seed": 0.0})  # 0 and 0.0 are other settings
    # the source of the module defining train, and of extra sources
    assert training.cache_key("tiny", CONFIG, metrics.iou) != training.cache_key("tiny", CONFIG, data.make_scene)
    assert training.cache_key("tiny", CONFIG, sources=[metrics]) != base
    assert training.cache_key("tiny", CONFIG, sources=["segtutor.metrics"]) == \
        training.cache_key("tiny", CONFIG, sources=[metrics])
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert training.cache_key("tiny", CONFIG) != base


def test_retrain_env_var_trains_again_and_refreshes_the_file(monkeypatch):
    calls = []

    def train():
        calls.append(1)
        return {"n": len(calls)}

    assert training.cached("tiny", CONFIG, train) == ({"n": 1}, False)
    monkeypatch.setenv("SEGTUTOR_RETRAIN", "1")
    assert training.cached("tiny", CONFIG, train) == ({"n": 2}, False)
    monkeypatch.setenv("SEGTUTOR_RETRAIN", "0")
    assert training.cached("tiny", CONFIG, train) == ({"n": 2}, True)  # the refreshed file


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other key", "not ours", "pickle with code"])
def test_an_unusable_checkpoint_is_retrained_with_a_one_line_message(damage, capsys, tmp_path):
    calls = []

    def train():
        calls.append(1)
        return {"state_dict": {"w": torch.arange(4.0)}, "n": len(calls)}

    training.cached("tiny", CONFIG, train)
    path = training.checkpoint_path("tiny", training.cache_key("tiny", CONFIG, train))
    good = path.read_bytes()
    marker = tmp_path / "code-ran"
    if damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 10)
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "other key":
        torch.save({"format": 1, "key": "0" * 64, "payload": {"n": -1}}, path)
    elif damage == "not ours":
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        class Evil:
            def __reduce__(self):
                return (open, (str(marker), "w"))

        torch.save({"format": 1, "payload": Evil()}, path)
    capsys.readouterr()
    payload, from_cache = training.cached("tiny", CONFIG, train)
    assert not from_cache and payload["n"] == 2 and len(calls) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "cannot be used" in out and "training again" in out and path.name in out
    assert not marker.exists()  # weights_only loading never runs code from the file
    again, from_cache = training.cached("tiny", CONFIG, train)  # the file was rewritten
    assert from_cache and again["n"] == 2 and torch.equal(again["state_dict"]["w"], torch.arange(4.0))


def test_a_failed_training_leaves_no_file_behind(cache):
    def train():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        training.cached("tiny", CONFIG, train)
    assert not (cache / "checkpoints").exists() or not list((cache / "checkpoints").iterdir())


def test_writing_leaves_no_temporary_files(cache):
    training.cached("tiny", CONFIG, lambda: {"w": torch.zeros(3)})
    assert [p.suffix for p in (cache / "checkpoints").iterdir()] == [".pt"]


def test_an_unwritable_cache_still_returns_the_training(cache, capsys):
    cache.mkdir()
    (cache / "checkpoints").write_text("a file where the folder should be")
    payload, from_cache = training.cached("tiny", CONFIG, lambda: {"n": 1})
    assert payload == {"n": 1} and not from_cache
    assert "Could not save" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["", "a/b", "../up", ".hidden", "x" * 101, "sp ace"])
def test_bad_names_are_refused(name):
    with pytest.raises(ValueError, match="name must be"):
        training.cached(name, CONFIG, lambda: {})


@pytest.mark.parametrize("config, error, match", [
    ([("seed", 0)], TypeError, "config must be a dict"),
    ({"seed": object()}, TypeError, r"config\['seed'\] is object"),
    ({"lr": float("nan")}, ValueError, r"finite; config\['lr'\]"),
    ({1: "a"}, TypeError, "keys must be strings"),
    ({"sizes": [1, {2: 3}]}, TypeError, "keys must be strings"),
    ({"array": np.zeros(2)}, TypeError, r"config\['array'\] is array"),
])
def test_bad_configs_are_refused(config, error, match):
    with pytest.raises(error, match=match):
        training.cached("tiny", config, lambda: {})


def test_bad_train_functions_are_refused():
    with pytest.raises(TypeError, match="train must be a function"):
        training.cached("tiny", CONFIG, {"state_dict": {}})
    with pytest.raises(TypeError, match=r"train\(\) must return a dict"):
        training.cached("tiny", CONFIG, lambda: [1, 2])
    with pytest.raises(TypeError, match=r"train\(\) must return a dict"):
        training.cached("tiny", CONFIG, lambda: None)
    with pytest.raises(TypeError, match="name must be a string"):
        training.cached(3, CONFIG, lambda: {})
    with pytest.raises(ValueError, match="key must be"):
        training.checkpoint_path("tiny", "not-a-key")


def test_describe_run():
    assert training.describe_run(False, 41.4) == "trained in 41 s"
    assert "SEGTUTOR_RETRAIN=1" in training.describe_run(True, 41.4)


# -- the curve --------------------------------------------------------------------------------

def test_plot_history_draws_the_loss_and_the_validation_curves():
    import matplotlib.pyplot as plt

    history = {"loss": list(np.linspace(1, 0.1, 60)), "val_miou": [0.3, 0.6, 0.8],
               "val_boundary_f1": [0.2, 0.5, 0.7], "eval_at": [20, 40, 60]}
    ax = training.plot_history(history, metrics=("val_miou", "val_boundary_f1"), title="t")
    assert ax.get_title() == "t" and ax.get_xlabel() == "iteration"
    assert [line.get_label() for line in ax.right.get_lines()] == ["validation mIoU", "validation boundary F-score"]
    assert list(ax.right.get_lines()[0].get_xdata()) == [20, 40, 60]
    assert len(ax.get_lines()) == 2  # the raw loss and its running mean
    plt.close(ax.figure)


def test_plot_history_refuses_bad_histories():
    with pytest.raises(TypeError, match="history must be a dict"):
        training.plot_history([1, 2])
    with pytest.raises(ValueError, match="no 'val_miou' curve"):
        training.plot_history({"loss": [1.0]})
    with pytest.raises(ValueError, match="non-empty"):
        training.plot_history({"loss": [], "val_miou": []})
    with pytest.raises(ValueError, match="eval_at"):
        training.plot_history({"loss": [1.0, 0.5], "val_miou": [0.5], "eval_at": [1, 2]})
