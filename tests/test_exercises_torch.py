"""The exercise format carries PyTorch exercises: tensors, modules, fixtures, limits.

The worked example (``segtutor/exercises/tutorial.py``) asks for an ``nn.Module``;
it is checked in the notebook path (``exercises.check``), in the clean-room grader
(a separate process) and under ``segtutor grade`` (sandboxed, as the sandbox user),
with the same cases and the same numbers.
"""

import json
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # torch is a dependency of the course: always present

from segtutor import exercises  # noqa: E402
from segtutor.exercises import compare, wire  # noqa: E402
from segtutor.grading import cleanroom  # noqa: E402


GOOD = '''
import torch
from torch import nn


class MyScaleShift(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x):
        return torch.relu(self.proj(x))
'''


@pytest.fixture()
def demo():
    return exercises.get("tutorial.scale_shift")


def _learner_class(source=GOOD):
    namespace = {}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace["MyScaleShift"]


def test_tensors_cross_the_wire_with_dtype_shape_and_grad_flag(tmp_path):
    value = {0: torch.arange(6, dtype=torch.bfloat16).reshape(2, 3),
             1: torch.ones(2, requires_grad=True), "n": torch.tensor(7, dtype=torch.int64),
             "empty": torch.zeros(0, 3), "mask": torch.tensor([True, False])}
    wire.dump(value, tmp_path / "v.json", tmp_path / "v.npz")
    back = wire.load(tmp_path / "v.json", tmp_path / "v.npz")
    assert set(back) == {0, 1, "n", "empty", "mask"}
    assert back[0].dtype == torch.bfloat16 and torch.equal(back[0], value[0])
    assert back[1].requires_grad and torch.equal(back[1].detach(), torch.ones(2))
    assert back["n"].shape == () and back["n"].item() == 7
    assert back["empty"].shape == (0, 3) and back["mask"].dtype == torch.bool
    with pytest.raises(ValueError, match="dense"):
        wire.encode_value(torch.eye(3).to_sparse(), {})


def test_the_notebook_path_checks_a_module_through_invoke_and_fixtures(demo, capsys):
    verdict = exercises.check("tutorial.scale_shift", _learner_class(), hidden_seed=3)
    assert verdict.passed
    assert "all 5 cases match" in capsys.readouterr().out


def test_the_fixture_is_built_deterministically_and_copied_per_use(demo):
    a, b = demo.fixture("batch"), demo.fixture("batch")
    assert torch.equal(a, b) and a is not b
    with pytest.raises(KeyError, match="no fixture 'backbone'"):
        demo.fixture("backbone")


@pytest.mark.parametrize("deterministic", [False, True])
def test_checking_leaves_the_learners_random_numbers_and_settings_alone(demo, deterministic):
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)  # whatever the learner chose (lessons choose True)
    try:
        torch.manual_seed(123)
        expected_next = torch.rand(1)
        torch.manual_seed(123)
        exercises.check("tutorial.scale_shift", _learner_class())
        assert torch.equal(torch.rand(1), expected_next)
        assert torch.are_deterministic_algorithms_enabled() is deterministic
    finally:
        torch.use_deterministic_algorithms(before)


def test_the_wrong_answers_are_rejected_with_pointed_messages(demo):
    for wrong in demo.wrong_answers:
        with pytest.raises(exercises.ExerciseFailed, match=wrong.points_at):
            exercises.check("tutorial.scale_shift", wrong.func)


def test_hints_are_staged(demo, monkeypatch):
    from segtutor.exercises import _core

    monkeypatch.setattr(_core, "_FAILED_CHECKS", {})  # a fresh session
    wrong = demo.wrong_answers[0].func
    messages = []
    for _ in range(3):
        with pytest.raises(exercises.ExerciseFailed) as info:
            exercises.check("tutorial.scale_shift", wrong)
        messages.append(str(info.value).splitlines()[-1])
    assert "mixes the channels" in messages[0] and "kernel_size" in messages[1] and messages[2] == messages[1]


def test_the_clean_room_grades_the_module_in_another_process(demo):
    call = cleanroom.CheckCall("tutorial.scale_shift", "MyScaleShift", 11)
    assert cleanroom.grade_check(call, ["import torch", GOOD], timeout=120).passed
    wrong = GOOD.replace("torch.relu(self.proj(x))", "self.proj(x)")
    verdict = cleanroom.grade_check(call, ["import torch", wrong], timeout=120)
    assert not verdict.passed and "values differ" in verdict.failures[0].reason


def test_the_clean_room_passes_the_exercises_memory_limit_to_the_launcher(demo, tmp_path):
    seen = {}

    def launch(argv, workdir, timeout, memory=None):
        seen.update(memory=memory, timeout=timeout)
        return cleanroom.local_launch(argv, workdir, timeout)

    call = cleanroom.CheckCall("tutorial.scale_shift", "MyScaleShift", None)
    assert cleanroom.grade_check(call, [GOOD], launch=launch, timeout=30).passed
    assert seen == {"memory": "3G", "timeout": 120.0}


def test_tensor_boxes_and_detections_comparators():
    t = torch.ones(2, 3)
    assert compare.tensor_close()(t, t.clone()) is None
    assert "shape" in compare.tensor_close()(t, torch.ones(3, 2))
    assert "values differ" in compare.tensor_close()(t, t + 1)
    assert "torch tensor" in compare.tensor_close()(t, np.ones((2, 3)))
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    assert compare.boxes(0.9)(b, b + 0.1) is None
    assert "box 1" in compare.boxes(0.9)(b, np.array([[0, 0, 10, 10], [25, 25, 35, 35]]))
    assert "expected 2 boxes" in compare.boxes()(b, b[:1])
    want = {"boxes": b, "labels": np.array([1, 2]), "scores": np.array([0.9, 0.5])}
    swapped = {"boxes": torch.tensor(b[::-1].copy()), "labels": torch.tensor([2, 1]), "scores": torch.tensor([0.5, 0.9])}
    assert compare.detections()(want, swapped) is None
    wrong_label = dict(swapped, labels=torch.tensor([1, 2]))
    assert "no match" in compare.detections()(want, wrong_label)
    assert "score" in compare.detections()(want, dict(swapped, scores=torch.tensor([0.1, 0.9])))
    assert "expected 2 detections" in compare.detections()(want, {k: v[:1] for k, v in swapped.items()})


def _torch_lesson():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    def meta(grade_id, **kw):
        return {"nbgrader": {"grade": False, "solution": False, "locked": False, "grade_id": grade_id,
                             "schema_version": 3, **kw}}

    solution = GOOD.replace("        return torch.relu(self.proj(x))",
                            "        ### BEGIN SOLUTION\n        return torch.relu(self.proj(x))\n"
                            "        ### END SOLUTION")
    return new_notebook(cells=[
        new_markdown_cell("# A lesson with a network exercise"),
        new_code_cell("import torch\nfrom segtutor import exercises\ntorch.manual_seed(0)",
                      metadata=meta("setup", locked=True)),
        new_code_cell(solution, metadata=meta("module-solution", solution=True)),
        new_code_cell('exercises.check("tutorial.scale_shift", MyScaleShift)\n'
                      "### BEGIN HIDDEN TESTS\n"
                      'exercises.check("tutorial.scale_shift", MyScaleShift, hidden_seed=31)\n'
                      "### END HIDDEN TESTS\n",
                      metadata=meta("module-tests", grade=True, locked=True, points=2)),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


@pytest.mark.slow
def test_segtutor_grade_scores_a_module_exercise(tmp_path):
    """Sandboxed (as the sandbox user when root, through the runtime), with the exercise's limits."""
    import nbformat

    from segtutor import grading

    lessons = tmp_path / "lessons"
    lessons.mkdir()
    lesson = _torch_lesson()
    nbformat.write(lesson, str(lessons / "tnet.ipynb"))
    inbox = tmp_path / "inbox"
    for student, body in (("correct", None), ("no_relu", "        return self.proj(x)\n")):
        nb = nbformat.from_dict(json.loads(json.dumps(lesson)))
        if body:
            cell = nb.cells[2]
            cell.source = cell.source.split("        ### BEGIN SOLUTION")[0] + body
        (inbox / student).mkdir(parents=True)
        nbformat.write(nb, str(inbox / student / "tnet.ipynb"))
    result = grading.grade(str(tmp_path / "course"), str(inbox), "tnet", lessons=str(lessons), jobs=1,
                           cell_timeout=120, notebook_timeout=300, memory_limit="3G")
    totals = result.totals()
    assert totals["correct"][:2] == (2.0, 2.0), totals
    assert totals["no_relu"][0] == 0.0, totals
    reasons = " ".join(r["reason"] for r in result.rows if r["student"] == "no_relu")
    assert "values differ" in reasons
