"""The exercise format: specs, the learner-facing check, the clean-room grader."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

import segtutor.exercises as exercises
from segtutor.exercises import compare, wire
from segtutor.grading import cleanroom

LESSONS = sorted((Path(__file__).resolve().parent.parent / "lessons").glob("[0-9][0-9]_*.ipynb"))


# -- every registered exercise -------------------------------------------------------------

ALL = sorted(exercises.registry(load_all=True))


@pytest.mark.parametrize("exercise_id", ALL)
def test_reference_passes_its_own_visible_and_hidden_cases(exercise_id, capsys):
    ex = exercises.get(exercise_id)
    verdict = exercises.check(exercise_id, ex.reference_function(), hidden_seed=12345)
    assert verdict.passed and verdict.n_cases == len(ex.cases(12345))
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [f"\u2713 {ex.title}: all {verdict.n_cases} cases match the reference."]


@pytest.mark.parametrize("exercise_id", [e for e in ALL if exercises.get(e).wrong_answers])
def test_the_visible_cases_reject_every_wrong_answer_of_the_catalogue_with_a_pointed_message(exercise_id):
    ex = exercises.get(exercise_id)
    for wrong in ex.wrong_answers:
        with pytest.raises(exercises.ExerciseFailed) as info:
            exercises.check(exercise_id, wrong.func)
        assert __import__("re").search(wrong.points_at, str(info.value)), (
            f"{exercise_id}, wrong answer '{wrong.name}': the message does not point at the mistake "
            f"(/{wrong.points_at}/):\n{info.value}")


@pytest.mark.parametrize("exercise_id", ALL)
def test_cases_are_deterministic_named_and_hidden_cases_depend_on_the_seed(exercise_id):
    ex = exercises.get(exercise_id)
    visible = ex.cases()
    assert len(visible) >= 3, "give learners at least three visible cases"
    assert all(c.name and not c.name.startswith("hidden") for c in visible)
    a, b, c = ex.cases(1), ex.cases(1), ex.cases(2)
    assert len(a) > len(visible)
    enc = lambda cases: json.dumps(wire.encode_value([list(x.args) for x in cases], arrays := {})) + str(
        [v.tobytes() for v in arrays.values()])
    assert enc(a) == enc(b)
    assert enc(a) != enc(c)


@pytest.mark.parametrize("exercise_id", ALL)
def test_a_constant_answer_is_caught(exercise_id):
    ex = exercises.get(exercise_id)
    with pytest.raises(exercises.ExerciseFailed, match="case"):
        exercises.check(exercise_id, lambda *args, **kwargs: np.zeros((2, 2)))


# -- the learner-facing check --------------------------------------------------------------

def test_not_done_says_so_and_names_the_reference():
    def my_iou(a, b):
        raise NotImplementedError()

    with pytest.raises(exercises.ExerciseNotDone, match="(?s)not done yet.*segtutor.metrics.iou"):
        exercises.check("metrics.iou", my_iou)


def test_a_wrong_answer_names_the_case_and_expected_vs_got():
    def my_iou(a, b):
        return float(np.logical_and(a, b).sum())  # intersection only

    with pytest.raises(exercises.ExerciseFailed) as info:
        exercises.check("metrics.iou", my_iou)
    message = str(info.value)
    assert "case 'overlapping squares'" in message
    assert f"expected {4 / 28:.6g}" in message and "got 4" in message  # 2x2 overlap of two 4x4 squares
    assert "Hint:" in message
    assert "def iou" not in message  # the reference's code is never shown


def test_a_wrong_mask_gets_a_text_diff():
    def my_region_grow(image, seed, tolerance):
        return np.zeros(np.shape(image), dtype=bool)

    with pytest.raises(exercises.ExerciseFailed) as info:
        exercises.check("classical.region_grow", my_region_grow)
    message = str(info.value)
    # the first case: a 4x4 square (16 pixels) the learner's empty mask misses entirely
    assert "case 'square from its centre': 16 of 81 values differ" in message
    lines = message.split("16 of 81 values differ\n", 1)[1].splitlines()
    assert lines[0].startswith("legend:")
    picture = lines[1:10]  # 9 rows of 9 characters, one per pixel, below the legend line
    assert all(len(row) == 9 and set(row) <= {".", "-"} for row in picture), picture
    assert sum(row.count("-") for row in picture) == 16


def test_an_exception_in_the_learner_code_is_reported_with_its_line():
    def my_pixel_accuracy(pred, target):
        return undefined_name  # noqa: F821

    with pytest.raises(exercises.ExerciseFailed, match="NameError.*undefined_name"):
        exercises.check("metrics.pixel_accuracy", my_pixel_accuracy)


def test_a_function_that_writes_into_its_input_cannot_change_the_expected_answer():
    reference = exercises.get("metrics.pixel_accuracy").reference_function()

    def sneaky(pred, target):
        pred[...] = target  # makes the reference (if it shared the array) see a perfect prediction
        return 1.0

    with pytest.raises(exercises.ExerciseFailed, match="worked example"):
        exercises.check("metrics.pixel_accuracy", sneaky)
    assert reference is exercises.get("metrics.pixel_accuracy").reference_function()


def test_check_needs_a_function_and_a_known_id():
    with pytest.raises(TypeError, match="without calling it"):
        exercises.check("metrics.iou", 0.5)
    with pytest.raises(KeyError, match="known exercises: .*metrics.iou"):
        exercises.check("metrics.jaccard", lambda a, b: 0)


def test_yours_or_reference(capsys):
    reference = exercises.get("metrics.iou").reference_function()

    def broken(a, b):
        raise NotImplementedError()

    assert exercises.yours_or_reference("metrics.iou", broken) is reference
    assert "not done yet" in capsys.readouterr().out

    def mine(a, b):
        return reference(a, b)

    assert exercises.yours_or_reference("metrics.iou", mine) is mine
    assert exercises.yours_or_reference("metrics.iou", None) is reference


def test_comparators():
    assert compare.exact(3, 3) is None and "expected 3" in compare.exact(3, 4)
    assert "shape" in compare.exact(np.zeros((2, 2)), np.zeros(4))
    assert "dtype bool" in compare.exact(np.zeros((2, 2), bool), np.zeros((2, 2)))
    assert compare.close()(1.0, 1.0 + 1e-12) is None
    assert "expected" in compare.close()(1.0, 1.1)
    assert "single number" in compare.close()(1.0, "one")
    image = np.array([[1, 2], [3, 4]])
    case = exercises.Case("c", (image,))
    assert compare.same_split()(2.5, 2.9, case) is None
    assert "other side" in compare.same_split()(2.5, 3.5, case)
    bimodal = np.array([0.0] * 50 + [0.1] + [1.0] * 49)
    near = exercises.Case("near", (bimodal,))
    # 0.1 on either side barely changes w0*w1*(mu0-mu1)^2: accepted, as a bin choice
    assert compare.same_split()(0.05, 0.5, near) is None
    assert "between-class variance" in compare.same_split()(0.5, 1.5, near)


# -- the wire format -----------------------------------------------------------------------

def test_wire_format_round_trip(tmp_path):
    value = [(np.arange(6).reshape(2, 3), 1.5, "x", None, True), {"k": np.zeros(2, bool), 3: -1, (1, "a"): 2},
             float("nan"), np.arange(4, dtype=np.uint16)]
    wire.dump(value, tmp_path / "v.json", tmp_path / "v.npz")
    back = wire.load(tmp_path / "v.json", tmp_path / "v.npz")
    assert np.array_equal(back[0][0], value[0][0]) and back[0][1:] == value[0][1:]
    assert back[1]["k"].dtype == bool and np.isnan(back[2])
    assert back[1][3] == -1 and back[1][(1, "a")] == 2  # int and tuple keys survive
    assert back[3].dtype == np.uint16


def test_wire_format_refuses_objects_and_pickles(tmp_path):
    with pytest.raises(TypeError, match="cannot be checked"):
        wire.encode_value(object(), {})
    with pytest.raises(ValueError, match="cannot be checked"):
        wire.encode_value(np.array([object()]), {})
    np.savez(tmp_path / "p.npz", a0=np.array([{"evil": 1}], dtype=object))
    (tmp_path / "p.json").write_text(json.dumps({"array": "a0"}))
    with pytest.raises(ValueError, match="Python objects"):
        wire.load(tmp_path / "p.json", tmp_path / "p.npz")


def test_wire_format_refuses_bombs_links_and_fifos(tmp_path):
    import os

    (tmp_path / "v.json").write_text(json.dumps({"array": "a0"}))
    np.savez_compressed(tmp_path / "v.npz", a0=np.zeros(10**6))  # 1 MB of zeros, compressed to ~1 KB
    with pytest.raises(ValueError, match="compressed"):
        wire.load(tmp_path / "v.json", tmp_path / "v.npz")
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    np.savez(tmp_path / "e.npz")
    with pytest.raises(ValueError, match="JSON|nested|malformed"):
        wire.load(tmp_path / "deep.json", tmp_path / "e.npz")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(ValueError, match="not a regular file"):
        wire.load(tmp_path / "fifo.json", tmp_path / "e.npz")
    os.symlink(tmp_path / "v.json", tmp_path / "link.json")
    with pytest.raises(ValueError, match="cannot be opened"):
        wire.load(tmp_path / "link.json", tmp_path / "e.npz")


def test_importing_the_exercises_imports_no_torch_until_a_torch_exercise_is_used():
    code = ("import sys, segtutor; segtutor.exercises; before = 'torch' in sys.modules; "
            "segtutor.exercises.registry(load_all=True); print(before, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# -- the clean-room grader -----------------------------------------------------------------

def test_parse_check_calls():
    source = (
        "%time x = 1\n"
        'exercises.check("metrics.iou", my_iou)\n'
        "### BEGIN HIDDEN TESTS\n"
        'segtutor.exercises.check("metrics.iou", my_iou, hidden_seed=9)\n'
        'check("metrics.pixel_accuracy", acc)\n'
        "### END HIDDEN TESTS\n"
    )
    calls = cleanroom.parse_check_calls(source)
    assert calls == [cleanroom.CheckCall("metrics.iou", "my_iou", 9),
                     cleanroom.CheckCall("metrics.pixel_accuracy", "acc", None)]
    assert cleanroom.parse_check_calls("pass") == []
    assert cleanroom.parse_check_calls("def (") == []


GOOD = """
import numpy as np

def my_iou(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
"""

CALL = cleanroom.CheckCall("metrics.iou", "my_iou", 77)


def _grade(*cells, timeout=30.0):
    return cleanroom.grade_check(CALL, list(cells), timeout=timeout)


def test_clean_room_passes_a_correct_cell():
    verdict = _grade("import numpy as np", GOOD)
    assert verdict.passed and verdict.n_cases == len(exercises.get("metrics.iou").cases(77))


def test_clean_room_uses_the_last_definition_and_the_notebook_imports():
    wrong = "def my_iou(a, b):\n    return 0.5\n"
    assert not _grade(GOOD, wrong).passed
    no_import = GOOD.replace("import numpy as np\n", "")
    assert _grade("import numpy as np", wrong, no_import).passed


@pytest.mark.parametrize("tamper", [
    "import numpy; numpy.allclose = lambda *a, **k: True; numpy.isclose = lambda *a, **k: True",
    "import segtutor.exercises as e; e.check = lambda *a, **k: None",
    "import builtins; builtins.AssertionError = type('AssertionError', (Exception,), {})",
    "print('all tests passed')",
])
def test_tampering_inside_the_cell_cannot_make_a_wrong_answer_pass(tamper):
    wrong = f"{tamper}\ndef my_iou(a, b):\n    return 0.5\n"
    verdict = _grade(wrong)
    assert not verdict.passed
    assert "expected" in verdict.failures[0].reason


@pytest.mark.parametrize("body, reason", [
    ("import os\n    os._exit(0)", "exited with code 0"),
    ("import sys\n    sys.exit()", "SystemExit"),
    ("while True:\n        pass", "did not finish within 3 s"),
    ("raise NotImplementedError()", "NotImplementedError"),
    ("import numpy as np\n    return np.ones((2, 2))", "expected a single number"),
])
def test_clean_room_reports_a_readable_reason(body, reason):
    verdict = _grade(f"def my_iou(a, b):\n    {body}\n", timeout=3.0)
    assert not verdict.passed
    assert reason in verdict.message()


def test_clean_room_reports_a_broken_or_missing_cell():
    assert "SyntaxError" in _grade("def my_iou(a, b):\n    return (\n").message()
    assert "no cell defines `my_iou`" in _grade("x = 1").message()
    top_level = _grade("import os\nos._exit(3)\ndef my_iou(a, b):\n    return 1.0\n")
    assert "exited with code 3" in top_level.message()


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_solutions_pass_the_clean_room_grader_with_hidden_cases(lesson):
    nb = nbformat.read(lesson, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    graded = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    calls = [call for c in graded for call in cleanroom.parse_check_calls(c.source)]
    assert len(calls) >= 3
    for call in calls:
        assert call.hidden_seed is not None, f"{call.exercise_id} has no hidden cases in {lesson.name}"
        verdict = cleanroom.grade_check(call, code, timeout=60)
        assert verdict.passed, verdict.message()


def test_notebook_shows_the_message_without_the_checkers_code():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("from segtutor import exercises\ndef my_iou(a, b):\n    raise NotImplementedError()")
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        result = shell.run_cell('exercises.check("metrics.iou", my_iou)')
    text = out.getvalue()
    assert isinstance(result.error_in_exec, exercises.ExerciseNotDone)
    assert "ExerciseNotDone" in text and "is not done yet" in text
    assert "verdict" not in text and "_core.py" not in text  # no checker source lines
