"""Grade an exercise in a clean process that student code cannot tamper with.

A grade cell of a lesson reads, for example::

    exercises.check("classical.otsu_threshold", my_otsu_threshold)
    ### BEGIN HIDDEN TESTS
    exercises.check("classical.otsu_threshold", my_otsu_threshold, hidden_seed=7301)
    ### END HIDDEN TESTS

Running that cell in the student's kernel proves little: earlier cells may have
patched NumPy, segtutor or IPython itself. So the grader reads the *instructor's*
grade cell (restored by nbgrader from the gradebook), finds the ``check`` calls
with :func:`parse_check_calls`, and for each one:

1. builds a program from the notebook's import statements and the one cell
   that defines the learner's function (:func:`find_definition`);
2. runs it in a fresh, sandboxed interpreter (``python -m
   segtutor.grading.runner``) that receives only the case *inputs* and sends
   back only *data* (JSON + ``.npz``, read without pickle);
3. computes the reference results and compares them here, in the grader's own
   process, which student code never runs in.

Student code can therefore print anything, patch anything, exit or loop: the
worst it achieves is a wrong or missing result for its own exercise.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import signal
import sys
import tempfile
from typing import Callable, Sequence

from segtutor.exercises import CaseFailure, Verdict, compare_results, get
from segtutor.exercises.wire import dump, load

from .process import LaunchResult, run_killable

__all__ = [
    "CheckCall",
    "LaunchResult",
    "failed_verdict",
    "find_definition",
    "grade_check",
    "import_prelude",
    "local_launch",
    "parse_check_calls",
]


@dataclasses.dataclass(frozen=True)
class CheckCall:
    """One ``check(exercise_id, function, hidden_seed=...)`` call found in a grade cell."""

    exercise_id: str
    func_name: str
    hidden_seed: int | None = None


def parse_check_calls(source: str) -> list[CheckCall]:
    """Find the ``check`` calls in a grade cell's source.

    Recognises ``check(...)``, ``exercises.check(...)`` and
    ``segtutor.exercises.check(...)`` with a literal exercise id, a plain
    function name and an optional literal ``hidden_seed``. Calls with the same
    exercise and function are merged (the hidden seed wins).

    Examples
    --------
    >>> parse_check_calls('exercises.check("metrics.iou", my_iou, hidden_seed=3)')
    [CheckCall(exercise_id='metrics.iou', func_name='my_iou', hidden_seed=3)]
    """
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        return []
    found: dict[tuple, CheckCall] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name != "check" or len(node.args) < 2:
            continue
        ex, fn = node.args[0], node.args[1]
        if not (isinstance(ex, ast.Constant) and isinstance(ex.value, str) and isinstance(fn, ast.Name)):
            continue
        seed = None
        for kw in node.keywords:
            if kw.arg == "hidden_seed" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int):
                seed = kw.value.value
        key = (ex.value, fn.id)
        if key not in found or seed is not None:
            found[key] = CheckCall(ex.value, fn.id, seed)
    return list(found.values())


def _strip_magics(source: str) -> str:
    """Comment out IPython magics and shell escapes so ``ast`` can read a cell."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(("# " + line) if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def _defines(tree: ast.Module, name: str) -> bool:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


def find_definition(code_cells: Sequence[str], func_name: str) -> str | None:
    """Source of the last code cell that defines ``func_name`` at top level, or None."""
    found = None
    for source in code_cells:
        try:
            tree = ast.parse(_strip_magics(source))
        except SyntaxError:
            # A cell that does not parse may still be the one (the learner's typo):
            # keep it if it mentions the definition, so the learner sees the SyntaxError.
            if f"def {func_name}(" in source or f"class {func_name}" in source:
                found = source
            continue
        if _defines(tree, func_name):
            found = source
    return found


def import_prelude(code_cells: Sequence[str]) -> str:
    """The top-level ``import`` statements of a notebook, one per line, in order."""
    lines: list[str] = []
    for source in code_cells:
        try:
            tree = ast.parse(_strip_magics(source))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0):
                line = ast.unparse(node)
                if line not in lines:
                    lines.append(line)
    return "\n".join(lines)


Launch = Callable[[list, str, float], LaunchResult]


def local_launch(argv: list, workdir: str, timeout: float, memory=None) -> LaunchResult:
    """Run ``argv`` in ``workdir`` as the current user, killing its process group at ``timeout``.

    :mod:`segtutor.grading.course` passes a sandboxed launcher instead (memory limit,
    unprivileged user); this one is for checking a notebook on one's own machine and
    sets no memory limit (``memory`` is accepted for the launcher protocol).
    """
    return run_killable(argv, workdir, timeout)


def failed_verdict(call: CheckCall, n_cases: int, reason: str) -> Verdict:
    """The verdict of a check that could not be graded: every case failed, for ``reason``."""
    return Verdict(call.exercise_id, False, n_cases, (CaseFailure("all cases", reason),))


def grade_check(
    call: CheckCall,
    code_cells: Sequence[str],
    *,
    launch: Launch = local_launch,
    timeout: float = 60.0,
    workdir: str | None = None,
) -> Verdict:
    """Grade one ``check`` call against a notebook's code, in a clean process.

    Parameters
    ----------
    call : CheckCall
        From :func:`parse_check_calls` on the instructor's grade cell.
    code_cells : sequence of str
        Sources of the submitted notebook's code cells, in order.
    launch : callable
        ``launch(argv, workdir, timeout) -> LaunchResult`` runs the untrusted
        program (see :func:`local_launch`; the grader passes a sandboxed one).
        An exercise with a ``limits["memory"]`` gets ``memory=`` too.
    timeout : float
        Seconds allowed for the learner's cell and all cases together; an
        exercise's ``limits["timeout"]``, when larger, replaces it.
    workdir : str, optional
        Scratch folder; ``launch`` makes it writable by the process it starts.
        A temporary one is made (and removed) when omitted.

    Returns
    -------
    Verdict
        With a readable reason for each failure.
    """
    exercise = get(call.exercise_id)
    cases = exercise.cases(call.hidden_seed)
    source = find_definition(code_cells, call.func_name)
    if source is None:
        return failed_verdict(call, len(cases), f"no cell defines `{call.func_name}` (was the exercise cell deleted or renamed?)")

    own_dir = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="segtutor-check-")
    try:
        with open(os.path.join(workdir, "solution.py"), "w") as fh:
            fh.write(source)
        with open(os.path.join(workdir, "prelude.py"), "w") as fh:
            fh.write(import_prelude(code_cells))
        with open(os.path.join(workdir, "job.json"), "w") as fh:
            json.dump({"func_name": call.func_name, "exercise_id": call.exercise_id,
                       "spec_module": exercise.spec_module}, fh)
        dump([list(c.args) for c in cases], os.path.join(workdir, "args.json"), os.path.join(workdir, "args.npz"))
        dump([c.kwargs for c in cases], os.path.join(workdir, "kwargs.json"), os.path.join(workdir, "kwargs.npz"))
        # No chmod here: the launcher makes the folder usable by the process it starts
        # (segtutor.grading.sandbox.sandboxed_launch gives it to that run's group only). A
        # world-writable folder would let any other process of the sandbox user
        # write this run's results.

        argv = [sys.executable, "-m", "segtutor.grading.runner", workdir]
        timeout = max(float(timeout), float(exercise.limits.get("timeout", 0)))
        if exercise.limits.get("memory"):
            result = launch(argv, workdir, timeout, memory=exercise.limits["memory"])
        else:
            result = launch(argv, workdir, timeout)
        return _verdict_from_files(call, cases, workdir, result, timeout)
    finally:
        if own_dir:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


def _verdict_from_files(call, cases, workdir, result: LaunchResult, timeout) -> Verdict:
    if result.timed_out:
        return failed_verdict(
            call, len(cases),
            f"did not finish within {timeout:g} s and was stopped (an infinite loop, or far too slow)",
        )
    out_json, out_npz = os.path.join(workdir, "results.json"), os.path.join(workdir, "results.npz")
    if any(os.path.islink(p) or (os.path.exists(p) and not os.path.isfile(p)) for p in (out_json, out_npz)):
        # The untrusted process is gone by now (launch kills it), so this cannot change
        # before the grader reads: a link would make the grader read some other file.
        return failed_verdict(call, len(cases), "the results were not plain files (links, FIFOs and devices are refused)")
    if not (os.path.exists(out_json) and os.path.exists(out_npz)):
        code = result.returncode
        if code is not None and code < 0:
            why = f"the process was killed by signal {-code}"
            if -code in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT):
                why += " (usually the memory limit)"
        else:
            why = f"the process exited with code {code} before returning results (sys.exit or os._exit in your code?)"
        tail = result.stderr_tail.strip().splitlines()[-1:] if result.stderr_tail.strip() else []
        if tail and "MemoryError" in tail[0]:
            why += "; MemoryError: the memory limit was reached"
        return failed_verdict(call, len(cases), why)
    try:
        payload = load(out_json, out_npz)
        status = payload["status"]
        if status == "setup_error":
            return failed_verdict(call, len(cases), f"running your cell failed: {payload['error']}")
        outcomes = [(str(s), v) for s, v in payload["outcomes"]]
    except Exception as exc:
        return failed_verdict(call, len(cases), f"the results could not be read ({type(exc).__name__}: {exc})")
    return compare_results(get(call.exercise_id), cases, outcomes)
