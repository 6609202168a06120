"""The graded-exercise format: specs, the learner-facing check, and a data-only wire format.

An :class:`Exercise` pairs a reference implementation from the library with a
case generator and a comparison. The same spec serves three places:

* in a lesson, :func:`check` runs the learner's function on the visible cases
  and explains the first differences (expected vs got, a mask diff);
* in a student release, :func:`yours_or_reference` lets the lesson continue with
  the reference while an exercise is unfinished;
* when grading, :mod:`segtutor.grading` runs the learner's cell in a clean,
  sandboxed process on visible *and* hidden cases and compares the results here,
  in the grader's own process, which student code never touches.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import sys
import traceback
from typing import Any, Callable

import numpy as np

__all__ = [
    "Case",
    "CaseFailure",
    "Exercise",
    "ExerciseFailed",
    "ExerciseNotDone",
    "Verdict",
    "check",
    "compare_results",
    "decode_value",
    "encode_value",
    "get",
    "register",
    "registry",
    "yours_or_reference",
]

#: Seed of the visible cases: the cases a learner sees are the same every run.
VISIBLE_SEED = 20261125


class _ExerciseError(AssertionError):
    """Base of the checker's errors: IPython shows the message alone, without a traceback.

    The traceback would only show the checker's own code; the message already names the
    case, what was expected and what the learner's function returned or raised.
    """

    def _render_traceback_(self):  # IPython's hook for custom error display
        first, *rest = str(self).splitlines() or [""]
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {first}", *rest]


class ExerciseNotDone(_ExerciseError):
    """The learner's function still raises ``NotImplementedError``."""


class ExerciseFailed(_ExerciseError):
    """The learner's function disagrees with the reference on some case."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One call of an exercise: a readable name and the arguments."""

    name: str
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CaseFailure:
    """Why one case failed: the case's name and a readable reason."""

    case: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Outcome of an exercise on a set of cases."""

    exercise: str
    passed: bool
    n_cases: int
    failures: tuple = ()
    not_done: bool = False

    def message(self) -> str:
        ex = get(self.exercise)
        if self.not_done:
            return (
                f"Exercise '{ex.title}' is not done yet: the function still raises "
                "NotImplementedError. Replace `raise NotImplementedError()` with your code."
            )
        if self.passed:
            return f"\u2713 {ex.title}: all {self.n_cases} cases match the reference."
        lines = [f"\u2717 {ex.title}: {len(self.failures)} of {self.n_cases} cases differ from the reference."]
        for failure in self.failures[:3]:
            lines.append(f"- case '{failure.case}': {failure.reason}")
        if len(self.failures) > 3:
            lines.append(f"- ... and {len(self.failures) - 3} more")
        if ex.hint:
            lines.append(f"Hint: {ex.hint}")
        return "\n".join(lines)


Comparator = Callable[[Any, Any, Case], "str | None"]


@dataclasses.dataclass(frozen=True)
class Exercise:
    """A graded exercise.

    Parameters
    ----------
    id : str
        ``"<module>.<function>"`` of the reference, e.g. ``"classical.otsu_threshold"``.
    title : str
        Short human title shown in messages.
    reference : str
        Dotted path of the reference implementation, e.g.
        ``"segtutor.classical.otsu_threshold"``; imported on first use.
    make_cases : callable
        ``make_cases(rng, hidden) -> list[Case]``. With ``hidden=False`` it gets a
        generator seeded with :data:`VISIBLE_SEED` and returns the few, named
        cases a learner sees; with ``hidden=True`` a generator seeded by the
        grade cell's hidden seed, and returns further cases.
    compare : callable
        ``compare(expected, got, case) -> None`` when they agree, else a short
        reason; see :mod:`segtutor.exercises.compare`.
    hint : str
        One line shown after a failure.
    """

    id: str
    title: str
    reference: str
    make_cases: Callable[[np.random.Generator, bool], list]
    compare: Comparator
    hint: str = ""

    def reference_function(self) -> Callable:
        module, _, name = self.reference.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def cases(self, hidden_seed: int | None = None) -> list[Case]:
        """Visible cases, followed by hidden ones when ``hidden_seed`` is given."""
        cases = list(self.make_cases(np.random.default_rng(VISIBLE_SEED), False))
        if hidden_seed is not None:
            rng = np.random.default_rng([VISIBLE_SEED, int(hidden_seed)])
            cases += [
                dataclasses.replace(c, name=f"hidden {i + 1}")
                for i, c in enumerate(self.make_cases(rng, True))
            ]
        return cases


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (ids are unique)."""
    if exercise.id in _REGISTRY and _REGISTRY[exercise.id] != exercise:
        raise ValueError(f"an exercise with id {exercise.id!r} is already registered")
    _REGISTRY[exercise.id] = exercise
    return exercise


def registry() -> dict[str, Exercise]:
    """All registered exercises by id."""
    return dict(_REGISTRY)


def get(exercise_id: str) -> Exercise:
    """Return the exercise with this id, or raise ``KeyError`` listing the known ids."""
    if not isinstance(exercise_id, str):
        raise TypeError(f"exercise id must be a string like 'classical.otsu_threshold', got {exercise_id!r}")
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown exercise {exercise_id!r}; known exercises: {known}") from None


# -- running a function on the cases -------------------------------------------------------


def _call(func: Callable, case: Case):
    # Each call gets its own copy, so a function that writes into its input
    # cannot change what the other side sees.
    return func(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


def _learner_traceback(exc: BaseException) -> str:
    """The last frame of the learner's code, without segtutor's frames."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if "segtutor" not in f.filename.replace("\\", "/").split("/")[-3:-1]
    ]
    where = ""
    if frames:
        last = frames[-1]
        where = f" (line {last.lineno}: {last.line})" if last.line else f" (line {last.lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


def compare_results(exercise: Exercise, cases: list[Case], outcomes: list) -> Verdict:
    """Compare learner outcomes with the reference, case by case.

    ``outcomes[i]`` is either ``("ok", value)`` or ``("error", "<ExcType>: message")``.
    The reference runs here, in the caller's process.
    """
    reference = exercise.reference_function()
    failures = []
    not_done = False
    for case, (status, value) in zip(cases, outcomes):
        if status == "error":
            if str(value).startswith("NotImplementedError"):
                not_done = True
            failures.append(CaseFailure(case.name, f"your function raised {value}"))
            continue
        expected = _call(reference, case)
        reason = exercise.compare(expected, value, case)
        if reason:
            failures.append(CaseFailure(case.name, reason))
    if len(outcomes) < len(cases):
        failures.append(CaseFailure(cases[len(outcomes)].name, "no result was returned"))
    return Verdict(exercise.id, not failures, len(cases), tuple(failures), not_done and len(failures) == len(cases))


def run_cases(func: Callable, cases: list[Case]) -> list:
    """Call ``func`` on every case; return ``("ok", value)`` or ``("error", text)`` each."""
    outcomes = []
    for case in cases:
        try:
            outcomes.append(("ok", _call(func, case)))
        except NotImplementedError as exc:
            outcomes.append(("error", f"NotImplementedError: {exc}".rstrip(": ")))
        except Exception as exc:  # the learner's bug, reported with the case
            outcomes.append(("error", _learner_traceback(exc)))
    return outcomes


def _show_mask_diff(verdict: Verdict, exercise: Exercise, cases: list[Case], outcomes: list) -> None:
    """In a notebook, draw expected / got / difference for the first failing mask case."""
    if "IPython" not in sys.modules:
        return
    try:
        from IPython import get_ipython

        if get_ipython() is None or not verdict.failures:
            return
        name = verdict.failures[0].case
        index = [c.name for c in cases].index(name)
        status, got = outcomes[index]
        expected = _call(exercise.reference_function(), cases[index])
        if status != "ok" or np.ndim(expected) != 2 or np.shape(got) != np.shape(expected):
            return
        import matplotlib.pyplot as plt

        from segtutor import viz

        fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
        for ax, mask, title in ((axes[0], expected, "expected"), (axes[1], np.asarray(got), "yours")):
            ax.imshow(mask, cmap="gray", interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
        viz.mask_diff(expected, np.asarray(got), ax=axes[2], title="difference")
        fig.suptitle(f"case '{name}'", fontsize=10, y=1.06)
        plt.show()
    except Exception:  # a picture is a bonus; the text message already says what differs
        return


def check(exercise_id: str, func: Callable, *, hidden_seed: int | None = None) -> Verdict:
    """Check a learner's function against the reference.

    Prints a short confirmation when every case matches. Otherwise raises
    :class:`ExerciseFailed` naming the first cases that differ, with expected vs
    got (and, in a notebook, a picture of the mask difference), or
    :class:`ExerciseNotDone` while the function still raises
    ``NotImplementedError``.

    Parameters
    ----------
    exercise_id : str
        Id of the exercise, e.g. ``"metrics.iou"``.
    func : callable
        The learner's function.
    hidden_seed : int, optional
        Adds the hidden cases drawn with this seed (used by grade cells).

    Returns
    -------
    Verdict

    Examples
    --------
    >>> from segtutor import exercises
    >>> from segtutor.metrics import iou
    >>> exercises.check("metrics.iou", iou).passed
    ✓ IoU of two masks: all 4 cases match the reference.
    True
    """
    __tracebackhide__ = True  # IPython and pytest hide this frame
    exercise = get(exercise_id)
    if not callable(func):
        raise TypeError(
            f"check({exercise_id!r}, ...) needs your function itself (without calling it), "
            f"got {type(func).__name__}"
        )
    cases = exercise.cases(hidden_seed)
    outcomes = run_cases(func, cases)
    verdict = compare_results(exercise, cases, outcomes)
    if verdict.not_done:
        raise ExerciseNotDone(
            verdict.message()
            + f"\nUntil then the lesson uses the reference {exercise.reference}."
        )
    if not verdict.passed:
        _show_mask_diff(verdict, exercise, cases, outcomes)
        raise ExerciseFailed(verdict.message())
    print(verdict.message())
    return verdict


def yours_or_reference(exercise_id: str, func: Callable) -> Callable:
    """Return the learner's function if it passes the visible cases, else the reference.

    Lessons call this after an exercise so that the rest of the lesson runs even
    when the exercise is unfinished or wrong.

    Examples
    --------
    >>> from segtutor import exercises
    >>> def my_iou(a, b):
    ...     raise NotImplementedError()
    >>> f = exercises.yours_or_reference("metrics.iou", my_iou)
    Using the reference segtutor.metrics.iou for the rest of the lesson (your my_iou is not done yet).
    >>> f.__name__
    'iou'
    """
    exercise = get(exercise_id)
    if callable(func):
        cases = exercise.cases()
        verdict = compare_results(exercise, cases, run_cases(func, cases))
        if verdict.passed:
            print(f"Using your {getattr(func, '__name__', 'function')} for the rest of the lesson.")
            return func
        state = "is not done yet" if verdict.not_done else "does not match the reference yet"
    else:
        state = "is not a function"
    name = getattr(func, "__name__", "function")
    print(f"Using the reference {exercise.reference} for the rest of the lesson (your {name} {state}).")
    return exercise.reference_function()


# -- a data-only wire format for values crossing the sandbox boundary --------------------
#
# Values are nested tuples/lists/dicts of numbers, strings, None and NumPy arrays.
# They travel as JSON plus an .npz of arrays, both read without pickle, so a
# hostile process can send wrong data but never code.

_SCALARS = (bool, int, float, str, type(None))


def encode_value(value, arrays: dict, prefix: str = "a"):
    """Turn ``value`` into a JSON-able description; arrays go into ``arrays``."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and not np.isfinite(value):
            return {"float": repr(value)}
        return value
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError("arrays of Python objects cannot be compared; return numbers")
        key = f"{prefix}{len(arrays)}"
        arrays[key] = array
        return {"array": key}
    if isinstance(value, (tuple, list)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [encode_value(v, arrays, prefix) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[str(k), encode_value(v, arrays, prefix)] for k, v in value.items()]}
    raise TypeError(f"a value of type {type(value).__name__} cannot be checked; return numbers or arrays")


def decode_value(desc, arrays):
    """Inverse of :func:`encode_value`."""
    if isinstance(desc, dict):
        if "array" in desc:
            return np.asarray(arrays[desc["array"]])
        if "float" in desc:
            return float(desc["float"])
        if "tuple" in desc:
            return tuple(decode_value(v, arrays) for v in desc["tuple"])
        if "list" in desc:
            return [decode_value(v, arrays) for v in desc["list"]]
        if "dict" in desc:
            return {k: decode_value(v, arrays) for k, v in desc["dict"]}
        raise ValueError(f"malformed value description: {sorted(desc)}")
    return desc


def dump(value, json_path, npz_path) -> None:
    """Write a value as ``json_path`` + ``npz_path`` (no pickle)."""
    arrays: dict = {}
    desc = encode_value(value, arrays)
    np.savez(npz_path, **arrays)
    with open(json_path, "w") as fh:
        json.dump(desc, fh)


def load(json_path, npz_path, max_bytes: int = 256 * 2**20):
    """Read a value written by :func:`dump`, refusing pickles and oversize files."""
    import os

    for path in (json_path, npz_path):
        if os.path.getsize(path) > max_bytes:
            raise ValueError(f"{os.path.basename(path)} is larger than {max_bytes} bytes")
    with open(json_path) as fh:
        desc = json.load(fh)
    with np.load(npz_path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return decode_value(desc, arrays)
