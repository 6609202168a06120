"""Graded exercises: the learner-facing checks and the specs behind them.

A lesson exercise is a function (or an ``nn.Module`` class) the learner writes in
one cell, followed by a graded test cell::

    exercises.check("metrics.iou", my_iou)

:func:`check` runs the learner's code and the library's reference on the same
cases and explains any difference. The specs live next to the module they
exercise: ``segtutor/exercises/metrics.py`` holds the exercises on
``segtutor.metrics``, and so on; a spec module is imported the first time one of
its exercises is used, so ``import segtutor.exercises`` stays quick and never
imports torch. See ``docs/exercises.md`` for the format.

Examples
--------
>>> from segtutor import exercises
>>> exercises.get("classical.otsu_threshold").title
"Otsu's threshold"
>>> "metrics.iou" in exercises.registry(load_all=True)
True
"""

from ._core import (
    Case,
    CaseFailure,
    Exercise,
    ExerciseFailed,
    ExerciseNotDone,
    Verdict,
    WrongAnswer,
    check,
    compare_results,
    get,
    register,
    registry,
    run_cases,
    spec_modules,
    yours_or_reference,
)
from .wire import Fixture

__all__ = [
    "Case",
    "CaseFailure",
    "Exercise",
    "ExerciseFailed",
    "ExerciseNotDone",
    "Fixture",
    "Verdict",
    "WrongAnswer",
    "check",
    "compare_results",
    "get",
    "register",
    "registry",
    "run_cases",
    "spec_modules",
    "yours_or_reference",
]
