"""Graded exercises: the learner-facing checks and the specs behind them.

A lesson exercise is a function the learner writes in one cell, followed by a
graded test cell::

    exercises.check("metrics.iou", my_iou)

:func:`check` runs the learner's function and the library's reference on the
same cases and explains any difference. The specs live next to the module they
exercise: ``segtutor/exercises/metrics.py`` holds the exercises on
``segtutor.metrics``, and so on. See ``docs/exercises.md`` for the format.

Examples
--------
>>> from segtutor import exercises
>>> sorted(exercises.registry())[:2]
['classical.multi_threshold', 'classical.otsu_threshold']
"""

from . import classical as _classical  # noqa: F401  (registers the exercises)
from . import cluster as _cluster  # noqa: F401
from . import metrics as _metrics  # noqa: F401
from ._core import (
    Case,
    CaseFailure,
    Exercise,
    ExerciseFailed,
    ExerciseNotDone,
    Verdict,
    check,
    compare_results,
    get,
    register,
    registry,
    run_cases,
    yours_or_reference,
)

__all__ = [
    "Case",
    "CaseFailure",
    "Exercise",
    "ExerciseFailed",
    "ExerciseNotDone",
    "Verdict",
    "check",
    "compare_results",
    "get",
    "register",
    "registry",
    "run_cases",
    "yours_or_reference",
]
