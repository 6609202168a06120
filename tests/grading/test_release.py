"""The student release of the real lessons runs top to bottom.

Every lesson in ``lessons/`` is released with nbgrader (solutions and hidden
tests removed) and executed in a fresh kernel, as a learner's "Run All" would:
it must reach the end, and the only cells allowed to fail are the grade cells,
with ``ExerciseNotDone`` (the exercise stubs still raise ``NotImplementedError``).
"""

from __future__ import annotations

import glob
import os

import nbformat
import pytest
from segtutor import grading
from segtutor.grading.execute import execute_notebook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LESSONS = sorted(glob.glob(os.path.join(ROOT, "lessons", "*.ipynb")))


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    course = tmp / "course"
    out = tmp / "student"
    # the lessons as they are now (others may be adding lessons while the suite runs)
    lessons = sorted(glob.glob(os.path.join(ROOT, "lessons", "*.ipynb")))
    paths = grading.release(os.path.join(ROOT, "lessons"), str(out), course_dir=str(course))
    return {"paths": paths, "out": str(out), "course": str(course), "lessons": lessons}


def test_there_are_lessons():
    assert LESSONS, "no lessons/*.ipynb found"


def test_one_student_notebook_per_lesson(released):
    names = sorted(os.path.basename(p) for p in released["paths"])
    assert names == sorted(os.path.basename(p) for p in released["lessons"])


def test_release_hides_solutions_and_tags_grade_cells(released):
    for path in released["paths"]:
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        assert "hidden_seed" not in text
        grade_cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert grade_cells, f"{path} has no grade cells"
        for cell in grade_cells:
            assert "raises-exception" in cell.metadata.get("tags", []), path
        stubs = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert stubs and all("raise NotImplementedError()" in c.source for c in stubs), path


def test_release_is_idempotent(released, tmp_path):
    before = {p: open(p, "rb").read() for p in released["paths"]}
    again = grading.release(os.path.join(ROOT, "lessons"), released["out"], course_dir=released["course"])
    assert sorted(again) == sorted(before)
    for path, data in before.items():
        assert open(path, "rb").read() == data, path
    # without a course folder (a temporary one is used) the notebooks come out the same
    elsewhere = grading.release(os.path.join(ROOT, "lessons"), str(tmp_path / "other"))
    for path in elsewhere:
        twin = os.path.join(released["out"], os.path.basename(path))
        assert open(path, "rb").read() == before[twin], path


@pytest.mark.slow
@pytest.mark.parametrize("lesson", [os.path.basename(p) for p in LESSONS])
def test_released_lesson_runs_to_the_end(released, lesson):
    path = os.path.join(released["out"], lesson)
    # allow_errors=False: a cell that fails without the raises-exception tag stops the run
    nb = execute_notebook(path, cwd=released["out"], timeout=600, allow_errors=False)
    failed = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if not errors:
            continue
        grade = cell.metadata.get("nbgrader", {}).get("grade")
        failed.append((cell.metadata.get("nbgrader", {}).get("grade_id"), errors[0].ename))
        assert grade, f"a non-grade cell failed: {errors[0].ename}: {errors[0].evalue}\n{cell.source}"
        assert errors[0].ename == "ExerciseNotDone", f"{errors[0].ename}: {errors[0].evalue}"
    n_grade = sum(1 for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    assert len(failed) == n_grade, failed
    assert nb.cells[-1].cell_type != "code" or nb.cells[-1].get("execution_count") is not None


def _cli(*args, cwd):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "segtutor", *args], capture_output=True, text=True, cwd=cwd)


def test_release_names_a_corrupt_or_missing_lesson(tmp_path):
    (tmp_path / "lessons").mkdir()
    (tmp_path / "lessons" / "00_bad.ipynb").write_text("{ not json")
    out = _cli("release", "--lessons", "lessons", "--out", "out", cwd=tmp_path)
    assert out.returncode == 1
    assert "00_bad.ipynb is not a valid notebook" in out.stderr and "Traceback" not in out.stderr
    out = _cli("release", "--lessons", "nowhere", "--out", "out", cwd=tmp_path)
    assert out.returncode == 1 and "no lessons folder or notebook at nowhere" in out.stderr


def test_grade_says_when_there_is_nothing_to_grade_or_the_assignment_is_unknown(released, tmp_path):
    course = released["course"]
    out = _cli("grade", "01_classical", "--course", course, "--submissions", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 1 and "no submissions of 01_classical found" in out.stderr
    out = _cli("grade", "01_clasical", "--course", course, cwd=tmp_path)
    assert out.returncode == 1
    assert "'01_clasical' is not in" in out.stderr and "01_classical" in out.stderr
