"""Installation, the README's two commands, the CLI and `segtutor doctor`."""

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest

import segtutor

ROOT = Path(__file__).resolve().parent.parent

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


def _requirement_names(requirements):
    return {re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in requirements}


@pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11")
def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _requirement_names(project["dependencies"] + project["optional-dependencies"]["test"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_section = lines[lines.index("  - pip:") + 1:]
    listed = [line.strip()[2:] for line in pip_section if line.strip().startswith("- ") and "-e ." not in line]
    assert _requirement_names(listed) == wanted
    assert "  - python=3.11" in lines


def test_torch_and_torchvision_are_pinned():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"torch==2.14.1"' in text and '"torchvision==0.29.1"' in text


def _readme_commands():
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", readme.split("## Quick start", 1)[1].split("## ", 1)[0])


def test_readme_has_two_commands_and_ci_runs_exactly_them():
    setup, tests = _readme_commands()
    assert "python3.11 -m venv .venv" in setup and '-e ".[test]"' in setup
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup in ci
    # the test command runs after the set-up, exactly as written (CI adds only exit-code handling)
    assert any(line.startswith(tests + " ") for line in ci[ci.index(setup) + 1:])


def test_import_is_fast_and_does_not_import_torch():
    code = (
        "import sys, time; t = time.perf_counter(); import segtutor, segtutor.data, segtutor.metrics, "
        "segtutor.classical, segtutor.cluster, segtutor.viz, segtutor.exercises; "
        "print(time.perf_counter() - t); print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "False"]
    # the budget is 1 s on a laptop; the measured figure is printed by `segtutor bench`
    assert float(out[0]) < 5.0


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        segtutor.nope
    assert "classical" in dir(segtutor)


def test_package_doctest():
    assert doctest.testmod(segtutor).failed == 0


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "segtutor", *args], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL)


def test_cli_help_lists_every_command():
    out = _cli("--help")
    assert out.returncode == 0
    for command in ("open", "doctor", "fetch", "bench", "release", "grade"):
        assert command in out.stdout


def test_open_without_a_terminal_prints_how_to_open_the_course():
    out = _cli("open")
    assert out.returncode == 0
    assert "jupyter lab" in out.stdout and str(ROOT / "lessons") in out.stdout


def test_doctor_reports_versions_device_widgets_data_and_weights():
    out = _cli("doctor")
    assert out.returncode == 0, out.stderr
    for word in ("python", "torch", "torchvision", "jupyterlab", "ipywidgets", "nbgrader",
                 "Device", "Widgets", "Sample images", "Pretrained", "Datasets", "Lessons"):
        assert word in out.stdout
    assert "not installed" not in out.stdout.split("Interpreter")[0].replace("nbval", "")


def test_doctor_finds_a_cached_weight_file(tmp_path, monkeypatch):
    from segtutor.tools import doctor

    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / doctor.KNOWN_WEIGHTS["resnet18"]).write_bytes(b"")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    report = doctor.collect()
    assert report["weights"]["resnet18"] is True and report["weights"]["vgg16"] is False
    assert "resnet18" in doctor.format_report(report)


def test_hub_guide_is_linked_and_its_segtutor_commands_parse():
    import shlex

    from segtutor.tools import cli, fetch

    assert "(docs/hub.md)" in (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "hub.md").read_text()
    blocks = re.findall(r"```bash\n(.+?)```", guide, flags=re.S)
    commands = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    commands = [shlex.split(c)[1:] for c in commands if c.startswith("segtutor ")]
    assert {c[0] for c in commands} >= {"fetch", "release", "grade"}
    parser = cli.build_parser()
    for args in commands:
        parsed = parser.parse_args(args)  # an unknown command or option exits here
        if args[0] == "fetch":
            fetch.plan(parsed.items)
    # the items of the guide's table are the command's items
    table = re.findall(r"^\| `(\w+)` \|", guide.split("segtutor fetch weights pennfudan", 1)[1], flags=re.M)
    assert table == ["weights", "voc", "pet", "pennfudan"]


def test_bench_rejects_an_unknown_section():
    out = _cli("bench", "--only", "lessons,speed")
    assert out.returncode == 2 and "unknown section" in out.stderr


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_bench_records_its_profile_and_the_hub_sections_say_what_they_skip(tmp_path, profile):
    """`segtutor bench --profile P --only hub`: the profile goes into the figures; without the
    datasets (full) or on the quick profile each real-data section prints its one line."""
    import json
    import os

    env = {**os.environ, "SEGTUTOR_DATA": str(tmp_path / "no-data"), "SEGTUTOR_PROFILE": "quick"}
    out = _cli("bench", "--profile", profile, "--only", "hub", "--json", str(tmp_path / "b.json"), env=env)
    assert out.returncode == 0, out.stderr
    assert f"{profile} profile on cpu" in out.stdout
    skipped = [line for line in out.stdout.splitlines() if line.startswith("On a hub: skipped")]
    assert len(skipped) == 3
    assert all(("quick profile" in line) == (profile == "quick") for line in skipped)
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["profile"]["name"] == profile and figures["machine"]["gpu"] is None
    assert figures["hub"] == {"fcn": {"skipped": True}, "weak": {"skipped": True}, "maskrcnn": {"skipped": True}}
