"""SEGTUTOR_PROFILE: quick or full, chosen by the environment or by the device."""

import pytest
import torch

from segtutor import profiles


@pytest.mark.parametrize("cuda, expected", [(False, "quick"), (True, "full")])
def test_default_follows_the_device(monkeypatch, cuda, expected):
    monkeypatch.delenv("SEGTUTOR_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert profiles.profile() == expected
    monkeypatch.setenv("SEGTUTOR_PROFILE", "  ")  # empty counts as unset
    assert profiles.profile() == expected


@pytest.mark.parametrize("value, expected", [("quick", "quick"), ("full", "full"), (" FULL ", "full")])
def test_environment_chooses(monkeypatch, value, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("SEGTUTOR_PROFILE", value)
    assert profiles.profile() == expected
    assert profiles.settings().name == expected


def test_bad_values_are_named(monkeypatch):
    monkeypatch.setenv("SEGTUTOR_PROFILE", "turbo")
    with pytest.raises(ValueError, match="unknown profile 'turbo' in SEGTUTOR_PROFILE: expected 'quick' or 'full'"):
        profiles.profile()
    with pytest.raises(ValueError, match="unknown profile 'turbo'"):
        profiles.settings()
    with pytest.raises(TypeError, match="profile must be the string 'quick' or 'full', got int 1"):
        profiles.profile(1)


def test_an_argument_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("SEGTUTOR_PROFILE", "full")
    assert profiles.profile("quick") == "quick"


@pytest.mark.parametrize("cuda", [False, True])
def test_settings(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    quick = profiles.settings("quick")
    assert (quick.device, quick.mixed_precision, quick.num_workers, quick.real_data, quick.pretrained) == (
        "cpu", False, 0, False, False)
    full = profiles.settings("full")
    assert full.device == ("cuda" if cuda else "cpu") and full.mixed_precision is cuda
    assert full.real_data and full.pretrained
    import os

    cores = len(os.sched_getaffinity(0))
    assert full.num_workers == min(8, cores - 1) and 0 <= full.num_workers < cores


def test_importing_profiles_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, segtutor.profiles; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_hub_section_runs_only_on_the_full_profile_with_the_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "PennFudanPed" / "PNGImages").mkdir(parents=True)
    assert not profiles.hub_section("pennfudan", "trains a model", profile="full", root=tmp_path)
    assert capsys.readouterr().out.count("\n") == 1  # PedMasks/ is missing: skipped in one line
    (tmp_path / "PennFudanPed" / "PedMasks").mkdir()
    assert not profiles.hub_section("pennfudan", "trains a model", profile="quick", root=tmp_path)
    assert "quick profile" in capsys.readouterr().out
    assert profiles.hub_section("pennfudan", "trains a model", profile="full", root=tmp_path)
    assert "no CUDA device" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profiles.hub_section("pennfudan", "trains a model", profile="full", root=tmp_path)
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("SEGTUTOR_DATA", str(tmp_path))
    assert profiles.hub_section("pennfudan", "trains a model")  # CUDA: full by default, data from SEGTUTOR_DATA
    with pytest.raises(ValueError, match="dataset must be one of"):
        profiles.hub_section("coco", "trains a model")
    with pytest.raises(TypeError, match="shows must say what the section does"):
        profiles.hub_section("voc", "")


def test_mixed_precision_only_on_cuda(monkeypatch):
    cpu = profiles.Settings("full", "cpu", mixed_precision=True, num_workers=0, real_data=True, pretrained=True)
    with cpu.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32  # the CPU keeps its exact numbers
    assert not cpu.grad_scaler().is_enabled()
    seen = []
    monkeypatch.setattr(torch, "autocast", lambda device_type, dtype, enabled: seen.append((device_type, dtype, enabled)))
    cuda = profiles.Settings("full", "cuda", mixed_precision=True, num_workers=2, real_data=True, pretrained=True)
    cuda.autocast()
    cuda_fp32 = profiles.Settings("full", "cuda", mixed_precision=False, num_workers=2, real_data=True, pretrained=True)
    cuda_fp32.autocast()
    assert seen == [("cuda", torch.float16, True), ("cuda", torch.float16, False)]
