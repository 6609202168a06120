"""The untrusted side of :mod:`segtutor.grading.cleanroom`.

``python -m segtutor.grading.runner WORKDIR`` reads the learner's cell
(``solution.py``), the notebook's imports (``prelude.py``), the exercise id and
function name (``job.json``) and the case inputs (``args``/``kwargs`` JSON + npz);
it runs the cell, calls the function on every case through the exercise's
:meth:`~segtutor.exercises.Exercise.call` (its ``invoke`` hook, fixtures, torch
seeded and deterministic, one thread) and writes ``results.json`` +
``results.npz``. It never sees the reference results, so nothing it does here can
make a wrong answer count as right.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


class _NullShell:
    """Stands in for IPython's shell so that magics in a cell do nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _error_text(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<your cell>"]
    where = f" (line {frames[-1].lineno} of your cell)" if frames else ""
    text = f"{type(exc).__name__}: {exc}"
    return (text[:500] + "...") if len(text) > 500 else text + where


def main(workdir: str) -> int:
    # One thread for BLAS and torch: several checks run side by side on a grading machine.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    from segtutor.exercises import Case, get
    from segtutor.exercises.wire import dump, load

    os.chdir(workdir)
    with open("job.json") as fh:
        job = json.load(fh)
    func_name = job["func_name"]
    if job.get("spec_module"):
        import importlib

        importlib.import_module(job["spec_module"])  # registers the exercise
    exercise = get(job["exercise_id"])
    args = load("args.json", "args.npz")
    kwargs = load("kwargs.json", "kwargs.npz")
    with open("solution.py") as fh:
        solution = fh.read()
    with open("prelude.py") as fh:
        prelude = fh.read().splitlines()

    def write(payload):
        # The learner's code may have replaced anything by now, including this
        # function's helpers; the grader only ever reads data from these files.
        dump(payload, "results.json", "results.npz")

    namespace = {"__name__": "__main__", "get_ipython": _NullShell}
    for line in prelude:
        try:
            exec(compile(line, "<imports>", "exec"), namespace)
        except BaseException:  # an import that fails in the kernel fails here too: skip it
            pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        solution = TransformerManager().transform_cell(solution)
    except Exception:
        pass
    try:
        exec(compile(solution, "<your cell>", "exec"), namespace)
        func = namespace[func_name]
        if not callable(func):
            raise TypeError(f"{func_name} is a {type(func).__name__}, not a function")
    except KeyError:
        write({"status": "setup_error", "error": f"the cell does not define {func_name}"})
        return 0
    except BaseException as exc:  # SyntaxError, SystemExit, anything the cell raises at top level
        write({"status": "setup_error", "error": _error_text(exc)})
        return 0

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    outcomes = []
    for case_args, case_kwargs in zip(args, kwargs):
        try:
            value = exercise.call(func, Case("", tuple(case_args), dict(case_kwargs)))
            outcomes.append(["ok", value])
        except NotImplementedError as exc:
            outcomes.append(["error", f"NotImplementedError: {exc}".rstrip(": ")])
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included
            outcomes.append(["error", _error_text(exc)])
    try:
        write({"status": "ok", "outcomes": outcomes})
    except Exception:
        # One result could not be encoded: report that per case.
        safe = []
        for status, value in outcomes:
            try:
                dump(value, "probe.json", "probe.npz")
                safe.append([status, value])
            except Exception as exc:
                safe.append(["error", f"returned something that cannot be checked: {exc}"])
        write({"status": "ok", "outcomes": safe})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
