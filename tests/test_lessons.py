"""The shape every lesson shares (docs/exercises.md, "Writing a lesson").

nbval runs each lesson end to end (see pyproject.toml); these checks keep the lessons
consistent, committed without outputs, seeded and gradable.
"""

import os
import re
from pathlib import Path

import nbformat
import pytest

from segtutor import exercises
from segtutor.grading import cleanroom

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))


def nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def test_the_first_three_lessons_exist():
    assert [p.stem[:2] for p in LESSONS][:3] == ["00", "01", "02"]


@pytest.fixture(params=LESSONS, ids=lambda p: p.stem)
def lesson(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_valid_notebook_without_outputs(lesson):
    path, nb = lesson
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: strip outputs"
    assert nb.metadata.kernelspec.name == "python3"


def test_objectives_first_key_points_and_reading_last(lesson):
    path, nb = lesson
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert markdown[0].startswith(f"# Lesson {path.stem[:2]}")
    assert "Learning objectives" in markdown[0]
    assert "## Key points" in markdown[-1] and "## Further reading" in markdown[-1]


def test_seeded_setup_cell_is_read_only(lesson):
    path, nb = lesson
    setup = next(c for c in nb.cells if c.cell_type == "code")
    meta = nbgrader(setup)
    assert meta.get("grade_id") == "setup" and meta.get("locked") and not meta.get("solution")
    assert re.search(r"default_rng\(\d+\)", setup.source)


def test_randomness_always_goes_through_a_seed(lesson):
    path, nb = lesson
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    setup = next(c for c in nb.cells if c.cell_type == "code").source
    assert not unseeded_randomness(code), f"{path.name}: unseeded randomness: {unseeded_randomness(code)}"
    if re.search(r"\btorch\b", code):
        assert re.search(r"torch\.manual_seed\(\d+\)", setup), f"{path.name}: seed torch in the set-up cell"


def unseeded_randomness(code: str) -> list:
    """Calls that draw random numbers without going through a seeded generator."""
    patterns = [
        # NumPy's legacy global generator
        r"\bnp\.random\.(?!default_rng\(\d|Generator|SeedSequence)[a-z_]+\(",
        r"default_rng\(\s*\)",
        # Python's random module (a seeded random.Random(N) instance is fine)
        r"^\s*import random\b", r"^\s*from random import", r"(?<![\w.])random\.(?!Random\(\d)[a-z_]+\(",
        # torch's generators are seeded by torch.manual_seed in the set-up cell; a fresh
        # torch.Generator() without manual_seed is not
        r"torch\.Generator\(\)(?!\.manual_seed)",
        r"torch\.seed\(\)",
    ]
    return [m.group(0) for p in patterns for m in re.finditer(p, code, flags=re.MULTILINE)]


@pytest.mark.parametrize("code", [
    "x = np.random.rand(3)", "idx = np.random.permutation(10)", "np.random.seed(0)", "rng = np.random.default_rng()",
    "import random\nrandom.shuffle(x)", "from random import choice", "g = torch.Generator()", "torch.seed()",
])
def test_the_randomness_lint_catches_unseeded_calls(code):
    assert unseeded_randomness(code)


@pytest.mark.parametrize("code", [
    "rng = np.random.default_rng(3)\nrng.permutation(10)", "g = torch.Generator().manual_seed(0)",
    "r = random.Random(4)", "torch.manual_seed(0)\nx = torch.randn(3)",
])
def test_the_randomness_lint_accepts_seeded_calls(code):
    assert not unseeded_randomness(code)


def test_at_least_three_graded_exercises_in_the_exercise_format(lesson):
    path, nb = lesson
    ids = [nbgrader(c)["grade_id"] for c in nb.cells if nbgrader(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    code_cells = [c.source for c in nb.cells if c.cell_type == "code"]
    graded = [c for c in nb.cells if nbgrader(c).get("grade")]
    assert len(graded) >= 3
    seeds = []
    for cell in graded:
        meta = nbgrader(cell)
        assert meta["locked"] and meta["points"] > 0 and not meta["solution"]
        assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source
        calls = cleanroom.parse_check_calls(cell.source)
        assert calls, f"{meta['grade_id']}: no exercises.check call"
        for call in calls:
            exercises.get(call.exercise_id)  # registered
            seeds.append(call.hidden_seed)
            definition = cleanroom.find_definition(code_cells, call.func_name)
            assert definition is not None
            solution_cell = next(c for c in nb.cells if c.source == definition)
            assert nbgrader(solution_cell).get("solution"), f"{call.func_name} is not in a solution cell"
            assert "### BEGIN SOLUTION" in definition and "### END SOLUTION" in definition
            # Later cells use the learner's function only through yours_or_reference, so an
            # unfinished exercise never breaks the rest of the lesson.
            for later in nb.cells[nb.cells.index(cell) + 1:]:
                if later.cell_type == "code" and not nbgrader(later).get("grade") and call.func_name in later.source:
                    assert f'yours_or_reference("{call.exercise_id}", {call.func_name})' in later.source
    assert None not in seeds and len(set(seeds)) == len(seeds), "one hidden seed per exercise"


def test_lessons_cite_the_course_notes_resources():
    text = "".join(p.read_text() for p in LESSONS)
    for url in ("cs.toronto.edu/~tingwuwang/semantic_segmentation.pdf",
                "medium.com/nanonets/how-to-do-image-segmentation-using-deep-learning",
                "analyticsvidhya.com/blog/2019/04/introduction-image-segmentation-techniques-python"):
        assert url in text


def _printed_numbers(path):
    """Execute a lesson in a fresh kernel; return what each code cell printed."""
    from conftest import printed_text

    from segtutor.grading.execute import execute_notebook

    nb = execute_notebook(path, timeout=900)
    return [printed_text(cell.get("outputs")) for cell in nb.cells if cell.cell_type == "code"]


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_same_numbers_every_run(path, request):
    """Two runs of a lesson print the same numbers: nbval's run (when this session made one) and a fresh one."""
    from conftest import LESSON_OUTPUTS

    recorded = request.config.stash[LESSON_OUTPUTS].get(os.path.realpath(path))
    first = recorded if recorded is not None else _printed_numbers(path)
    second = _printed_numbers(path)
    assert any(first) and [t for t in first if t] == [t for t in second if t]


# ----------------------------------------------------------------------------- "on a hub" sections

HUB_LESSONS = {"04_fcn": ("fcn", "voc"), "05_weak": ("weak", "pennfudan"), "06_maskrcnn": ("maskrcnn", "pennfudan")}


def _hub_cells(path):
    """The code cells of a lesson's "On a hub" section (from its heading to the key points)."""
    cells, inside = [], False
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            if re.search(r"^## .*On a hub", cell.source, flags=re.M):
                inside = True
            elif cell.source.startswith("## Key points"):
                inside = False
        elif inside:
            cells.append(cell.source)
    return cells


def _tiny_hub_config(module_name):
    from segtutor import fcn, maskrcnn, weak

    if module_name == "fcn":
        return fcn.HubConfig(backbone="tiny", size=32, iterations=2, batch_size=2, eval_every=2, warmup=1,
                             val_images=0, threads=1)
    if module_name == "weak":
        return weak.hub_config().replace(backbone="tiny", size=32, iterations=2, batch_size=2, eval_every=2,
                                         warmup=1, val_images=0, threads=1)
    return maskrcnn.HubConfig(iterations=2, warmup=1, test_images=1, min_size=32, max_size=48, rpn_post_nms_train=8,
                              rpn_post_nms_test=8, box_batch=4, trainable_layers=0, pretrained=False)


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(HUB_LESSONS))
def test_hub_section_cells_run_on_the_real_layout(stem, tmp_path, monkeypatch, capsys):
    """The lesson's own hub cells, run under the full profile on a tiny copy of the dataset (its
    exact on-disk layout), with the section's function given a tiny configuration: they train,
    score and draw without error. (nbval runs them on the quick profile, where they print one line.)"""
    import importlib
    import types

    import matplotlib.pyplot as plt

    from conftest import pennfudan

    module_name, dataset = HUB_LESSONS[stem]
    if dataset == "voc":
        from conftest import labels_map, palette_png, photo, save_jpeg

        base = tmp_path / "VOCdevkit" / "VOC2012"
        for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            (base / sub).mkdir(parents=True)
        for k, name in enumerate(["2007_000032", "2007_000039", "2007_000033"]):
            labels = labels_map(seed=k)
            save_jpeg(photo(labels), base / "JPEGImages" / f"{name}.jpg")
            palette_png(labels, base / "SegmentationClass" / f"{name}.png")
        (base / "ImageSets/Segmentation/train.txt").write_text("2007_000032\n2007_000039\n")
        (base / "ImageSets/Segmentation/val.txt").write_text("2007_000033\n")
        (base / "ImageSets/Segmentation/trainval.txt").write_text("2007_000032\n2007_000039\n2007_000033\n")
    else:
        pennfudan(tmp_path, n=4)
    monkeypatch.setenv("SEGTUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)  # no data-loader workers

    real = importlib.import_module(f"segtutor.{module_name}")
    tiny = _tiny_hub_config(module_name)
    proxy = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("__")})
    proxy.hub_run = lambda **kw: real.hub_run(tiny, root=tmp_path, profile="full", progress=False, **kw)
    namespace = {module_name: proxy}
    for name in ("fcn", "training", "weak", "maskrcnn", "widgets", "viz"):
        namespace.setdefault(name, importlib.import_module(f"segtutor.{name}"))
    cells = _hub_cells(ROOT / "lessons" / f"{stem}.ipynb")
    assert cells and "hub_run()" in cells[0], f"{stem} has no 'On a hub' section calling hub_run()"
    plt.close("all")
    for source in cells:
        exec(compile(source, f"{stem} hub cell", "exec"), namespace)
    assert namespace["hub"] is not None
    assert plt.get_fignums(), f"{stem}'s hub section drew no figure"
    plt.close("all")
