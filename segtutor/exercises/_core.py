"""The graded-exercise format: specs, the learner-facing check, and a data-only wire format.

An :class:`Exercise` pairs a reference implementation from the library with a
case generator and a comparison. The same spec serves three places:

* in a lesson, :func:`check` runs the learner's function on the visible cases
  and explains the first differences (expected vs got, a mask diff);
* in a student release, :func:`yours_or_reference` lets the lesson continue with
  the reference while an exercise is unfinished;
* when grading, :mod:`segtutor.grading.cleanroom` runs the learner's cell in a
  clean, sandboxed process on visible *and* hidden cases and compares the results
  here, in the grader's own process, which student code never touches.

Specs are registered by the topic's spec module (``segtutor/exercises/fcn.py`` for
``"fcn.*"`` ids), imported on first use: ``import segtutor.exercises`` imports
neither the spec modules nor torch.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import pkgutil
import sys
import traceback
from typing import Any, Callable

import numpy as np

from .wire import Fixture

__all__ = [
    "Case",
    "CaseFailure",
    "Exercise",
    "ExerciseFailed",
    "ExerciseNotDone",
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

    def _ipython_display_(self):
        """Nothing more to show in a notebook: :func:`check` already printed its one line."""

    def message(self, attempt: int = 1) -> str:
        """The learner-facing text; ``attempt`` picks the stage of the hint (1: the idea)."""
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
        hint = ex.hint_for(attempt)
        if hint:
            lines.append(f"Hint: {hint}")
        return "\n".join(lines)


Comparator = Callable[[Any, Any, Case], "str | None"]


@dataclasses.dataclass(frozen=True)
class WrongAnswer:
    """A plausible mistake, kept with its exercise to prove the visible cases catch it.

    ``func`` is a learner's function that makes this mistake; ``points_at`` is a
    regular expression the failure message must match, so the message points at the
    mistake (for example ``"lower class"`` for an off-by-one at ties).
    """

    name: str
    func: Callable
    points_at: str


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
    hint : str or tuple of str
        Shown after a failure. A tuple gives staged hints: the idea after the first
        failed check, a pointer after the second (never the answer itself).
    wrong_answers : tuple of WrongAnswer
        The catalogue of plausible mistakes; the test suite proves the visible cases
        reject each one with a message matching its ``points_at``.
    invoke : callable, optional
        ``invoke(learner_object, *args, **kwargs) -> result`` replaces the plain
        call ``learner_object(*args, **kwargs)``: e.g. build the learner's
        ``nn.Module`` class, load a fixed state dict, run forward and return the
        output. It runs identically in the notebook and in the clean-room grader,
        and is applied to the reference too.
    fixtures : dict, optional
        ``{name: builder}``: zero-argument, deterministic functions that build
        objects a case uses (a backbone, a batch). A case refers to one with
        ``Fixture(name)``; each side builds it itself, so nothing but the name
        crosses the process boundary and the grader need not re-run the notebook.
    limits : dict, optional
        Resources of the clean-room process for this exercise: ``memory``
        (``"4G"``) and ``timeout`` (seconds), for exercises that need more than
        the grader's defaults (e.g. a forward pass of a small network).
    """

    id: str
    title: str
    reference: str
    make_cases: Callable[[np.random.Generator, bool], list]
    compare: Comparator
    hint: "str | tuple" = ""
    wrong_answers: tuple = ()
    invoke: "Callable | None" = None
    fixtures: dict = dataclasses.field(default_factory=dict)
    limits: dict = dataclasses.field(default_factory=dict)

    def hint_for(self, attempt: int = 1) -> str:
        """The hint stage for the ``attempt``-th failed check (the last stage repeats)."""
        stages = (self.hint,) if isinstance(self.hint, str) else tuple(self.hint)
        stages = tuple(s for s in stages if s)
        if not stages:
            return ""
        return stages[min(max(attempt, 1), len(stages)) - 1]

    @property
    def spec_module(self) -> str:
        """The module that defines this exercise (the clean room imports it to find the spec)."""
        return getattr(self.make_cases, "__module__", "") or ""

    def reference_function(self) -> Callable:
        module, _, name = self.reference.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def fixture(self, name: str):
        """A fresh copy of the fixture ``name`` (built once per process, copied per use)."""
        if name not in self.fixtures:
            raise KeyError(f"exercise {self.id!r} has no fixture {name!r} (it has: {sorted(self.fixtures)})")
        cache = _FIXTURES.setdefault(self.id, {})
        if name not in cache:
            with _torch_determinism():
                cache[name] = self.fixtures[name]()
        return copy.deepcopy(cache[name])

    def call(self, obj: Callable, case: "Case"):
        """Run ``obj`` (the learner's or the reference's) on one case.

        Each call gets its own copy of the inputs (a function that writes into its
        input cannot change what the other side sees), fixtures resolved, torch's
        random numbers seeded and deterministic algorithms on.
        """
        args = _resolve(self, copy.deepcopy(case.args))
        kwargs = _resolve(self, copy.deepcopy(case.kwargs))
        with _torch_determinism():
            if self.invoke is not None:
                return self.invoke(obj, *args, **kwargs)
            return obj(*args, **kwargs)

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
_FIXTURES: dict[str, dict] = {}

#: Modules of this package that hold no exercise specs.
_NOT_SPECS = frozenset({"compare", "wire"})


def _resolve(exercise: Exercise, value):
    if isinstance(value, Fixture):
        return exercise.fixture(value.name)
    if isinstance(value, tuple):
        return tuple(_resolve(exercise, v) for v in value)
    if isinstance(value, list):
        return [_resolve(exercise, v) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(exercise, v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _torch_determinism(seed: int = 0):
    """Seed torch and turn on its deterministic algorithms, restoring both afterwards.

    Does nothing (and imports nothing) when torch is not in use.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    was = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was, warn_only=was_warn)

#: Failed checks per exercise in this session: the hint gets more specific each time.
_FAILED_CHECKS: dict[str, int] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (ids are unique)."""
    if exercise.id in _REGISTRY and _REGISTRY[exercise.id] != exercise:
        raise ValueError(f"an exercise with id {exercise.id!r} is already registered")
    _REGISTRY[exercise.id] = exercise
    return exercise


def spec_modules() -> list:
    """Names of the spec modules (one per topic), without importing them."""
    package = sys.modules[__name__.rpartition(".")[0]]
    return sorted(
        m.name for m in pkgutil.iter_modules(package.__path__)
        if not m.name.startswith("_") and m.name not in _NOT_SPECS
    )


def _load_spec(topic: str) -> None:
    if topic in spec_modules():
        importlib.import_module(f"{__name__.rpartition('.')[0]}.{topic}")


def registry(load_all: bool = False) -> dict[str, Exercise]:
    """The registered exercises by id; ``load_all=True`` first imports every spec module."""
    if load_all:
        for topic in spec_modules():
            _load_spec(topic)
    return dict(_REGISTRY)


def get(exercise_id: str) -> Exercise:
    """Return the exercise with this id, or raise ``KeyError`` listing the known ids.

    The spec module of the id's topic (``"fcn"`` in ``"fcn.bilinear_kernel"``) is
    imported on first use.
    """
    if not isinstance(exercise_id, str):
        raise TypeError(f"exercise id must be a string like 'classical.otsu_threshold', got {exercise_id!r}")
    if exercise_id not in _REGISTRY:
        _load_spec(exercise_id.partition(".")[0])
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        known = ", ".join(sorted(registry(load_all=True)))
        raise KeyError(f"unknown exercise {exercise_id!r}; known exercises: {known}") from None


# -- running a function on the cases -------------------------------------------------------


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
        expected = exercise.call(reference, case)
        reason = exercise.compare(expected, value, case)
        if reason:
            failures.append(CaseFailure(case.name, reason))
    if len(outcomes) < len(cases):
        failures.append(CaseFailure(cases[len(outcomes)].name, "no result was returned"))
    return Verdict(exercise.id, not failures, len(cases), tuple(failures), not_done and len(failures) == len(cases))


def run_cases(func: Callable, cases: list[Case], exercise: "Exercise | None" = None) -> list:
    """Call ``func`` on every case; return ``("ok", value)`` or ``("error", text)`` each.

    With ``exercise``, calls go through :meth:`Exercise.call` (its ``invoke``
    hook, fixtures and torch seeding); without, they are plain calls.
    """
    outcomes = []
    for case in cases:
        try:
            if exercise is not None:
                outcomes.append(("ok", exercise.call(func, case)))
            else:
                outcomes.append(("ok", func(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))))
        except NotImplementedError as exc:
            outcomes.append(("error", f"NotImplementedError: {exc}".rstrip(": ")))
        except Exception as exc:  # the learner's bug, reported with the case
            outcomes.append(("error", _learner_traceback(exc)))
    return outcomes


def _as_map(value):
    """``value`` as a 2-D mask or label map that can be drawn, or None (a number, features, NaN...)."""
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.ndim != 2 or array.size == 0:
        return None
    if array.dtype == bool or (np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 255):
        return array
    return None


def _show_mask_diff(verdict: Verdict, exercise: Exercise, cases: list[Case], outcomes: list) -> None:
    """In a notebook, draw expected / yours / difference for the first failing mask or label map.

    Only masks and label maps are drawn (numbers, feature arrays and float images are not
    pictures of a segmentation), on one colour scale with a legend; a result that cannot be
    drawn (NaN, floats, another shape) gets no figure: the message already says what is wrong.
    """
    if "IPython" not in sys.modules:
        return
    try:
        from IPython import get_ipython

        if get_ipython() is None or not verdict.failures:
            return
        name = verdict.failures[0].case
        index = [c.name for c in cases].index(name)
        status, got = outcomes[index]
        if status != "ok":
            return
        expected = _as_map(exercise.call(exercise.reference_function(), cases[index]))
        got = _as_map(got)
        if expected is None or got is None or got.shape != expected.shape:
            return
        if expected.dtype == bool and got.dtype != bool:
            return  # the message says a mask must be boolean
        import matplotlib.pyplot as plt

        from segtutor import viz

        viz.diff_figure(expected, got, title=f"case '{name}'")
        plt.show()
    except Exception:  # a picture is a bonus; the text message already says what differs
        return


def _say(line: str) -> None:
    """Print one line in one write (a notebook then shows it as one piece of output, every run)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


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
    ✓ IoU of two masks: all 5 cases match the reference.
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
    outcomes = run_cases(func, cases, exercise)
    verdict = compare_results(exercise, cases, outcomes)
    if verdict.not_done:
        raise ExerciseNotDone(
            verdict.message()
            + f"\nUntil then the lesson uses the reference {exercise.reference}."
        )
    if not verdict.passed:
        _FAILED_CHECKS[exercise_id] = _FAILED_CHECKS.get(exercise_id, 0) + 1
        _show_mask_diff(verdict, exercise, cases, outcomes)
        raise ExerciseFailed(verdict.message(attempt=_FAILED_CHECKS[exercise_id]))
    _say(verdict.message())
    return verdict


#: Seed of the further cases :func:`yours_or_reference` tries before handing a function on.
HANDOVER_SEED = 7


def yours_or_reference(exercise_id: str, func: Callable) -> Callable:
    """Return the learner's function if it is safe to use in the rest of the lesson, else the reference.

    Lessons call this after an exercise so that the rest of the lesson runs even
    when the exercise is unfinished or wrong. The learner's function is handed on
    only when it matches the reference on the visible cases *and* on a few further
    cases (drawn like the hidden ones, with a fixed seed), result type, dtype and
    shape included; otherwise the message says why and the reference is used, so
    an accepted answer never breaks a later cell.

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
    name = getattr(func, "__name__", "function")
    if callable(func):
        visible = exercise.cases()
        rng = np.random.default_rng([VISIBLE_SEED, HANDOVER_SEED])
        further = [dataclasses.replace(c, name=f"further check {i + 1}")
                   for i, c in enumerate(exercise.make_cases(rng, True))]
        cases = visible + further
        verdict = compare_results(exercise, cases, run_cases(func, cases, exercise))
        if verdict.passed:
            _say(f"Using your {name} for the rest of the lesson.")
            return func
        if verdict.not_done:
            state = "is not done yet"
        else:
            first = verdict.failures[0]
            reason = first.reason.splitlines()[0]
            state = f"does not match the reference yet: case '{first.case}': {reason}"
    else:
        state = "is not a function"
    _say(f"Using the reference {exercise.reference} for the rest of the lesson (your {name} {state}).")
    return exercise.reference_function()
