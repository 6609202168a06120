"""The instructor's side: release the lessons, autograde submissions safely.

=====================  ===========================================================
module                 what it does
=====================  ===========================================================
``course``             set up the nbgrader course, release, import, grade (the API below)
``worker``             a grading worker process (``python -m segtutor.grading.worker``)
``nbgrader_pp``        nbgrader plumbing: sandboxed execution, clean-room grades, locks
``cleanroom``          one ``exercises.check`` re-run in a fresh sandboxed process
``runner``             the untrusted side of the clean room
``sandbox``            resource limits, the privilege drop, a user id per run for student code
``isolation``          a run's private view of the machine (namespaces) and its cgroups
``runtime``            the read-only Python runtime the sandbox user runs from
``safehtml``           removing active content from graded notebooks (feedback, formgrader)
``process``            running a killable process and reading what it left, safely
``execute``            the plain notebook executor (bench, tests, release checks)
=====================  ===========================================================

Imports go downward only: this package uses :mod:`segtutor.exercises` and the
topic modules, never the ``segtutor`` command's tools. ``import segtutor.grading``
is light; nbgrader is imported when a step runs. See ``docs/grading.md``.
"""

from .course import CSV_FIELDS, GradingResult, add_cli, grade, import_submissions, release, setup_course

__all__ = ["CSV_FIELDS", "GradingResult", "add_cli", "grade", "import_submissions", "release", "setup_course"]
