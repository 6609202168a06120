"""Benchmark of the grading pipeline (``segtutor bench`` calls :func:`bench_grading`).

Two figures:

(a) overhead: the wall time of :func:`segtutor.grading.grade` on N synthetic
    submissions, against plain ``nbclient`` execution of the very same notebooks
    (fresh kernel each, the same number of parallel processes). The ratio is
    what sandboxing, the clean-room checks, nbgrader's bookkeeping and the HTML
    feedback cost on top of running the notebooks (target: at most 1.3);
(b) the wall time of grading N submissions of the lesson on ``jobs`` workers.

Synthetic submissions are the released lesson with the instructor's solutions
filled in; every third one gets one exercise wrong and every fifth leaves one
undone, so the benchmark also exercises the failure paths.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

_WRONG = '''

_segtutor_bench_original = {name}


def {name}(*args, **kwargs):  # a deliberately wrong answer (benchmark submission)
    import numpy as _np

    result = _np.asarray(_segtutor_bench_original(*args, **kwargs))
    return _np.logical_not(result) if result.dtype == bool else result + 1
'''


def _solutions(source_nb) -> dict:
    """grade_id -> the instructor's solution cell without the BEGIN/END SOLUTION markers."""
    out = {}
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            out[meta["grade_id"]] = "\n".join(
                line for line in cell.source.splitlines()
                if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    return out


def _function_name(source: str) -> str | None:
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    return names[-1] if names else None


def make_submissions(course_dir: str, assignment: str, out_dir: str, n_students: int) -> dict:
    """Write ``out_dir/<student>/<assignment>.ipynb`` for N synthetic students; returns the expected kind of each."""
    import nbformat

    source = nbformat.read(os.path.join(course_dir, "source", assignment, f"{assignment}.ipynb"), as_version=4)
    released = os.path.join(course_dir, "release", assignment, f"{assignment}.ipynb")
    solutions = _solutions(source)
    solution_ids = list(solutions)
    kinds = {}
    for i in range(n_students):
        student = f"student{i:03d}"
        nb = nbformat.read(released, as_version=4)
        kind = "correct"
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid not in solutions:
                continue
            text = solutions[gid]
            if solution_ids and gid == solution_ids[i % len(solution_ids)]:
                if i % 5 == 4:
                    kind = f"undone {gid}"
                    continue  # leave the released stub (raises NotImplementedError)
                if i % 3 == 2 and _function_name(text):
                    kind = f"wrong {gid}"
                    text += _WRONG.format(name=_function_name(text))
            cell.source = text
        kinds[student] = kind
        os.makedirs(os.path.join(out_dir, student), exist_ok=True)
        nbformat.write(nb, os.path.join(out_dir, student, f"{assignment}.ipynb"))
    return kinds


def plain_execution(paths: list, jobs: int) -> float:
    """Wall time of executing ``paths`` with nbclient in ``jobs`` parallel processes (round-robin)."""
    from segtutor.grading.sandbox import env_with_pythonpath

    groups = [paths[i::jobs] for i in range(jobs)]
    start = time.monotonic()
    procs = [
        subprocess.Popen([sys.executable, "-m", "segtutor.grading.execute", "--allow-errors", *group],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_with_pythonpath())
        for group in groups if group
    ]
    for proc in procs:
        proc.wait()
    return time.monotonic() - start


def bench_grading(lesson: str = "lessons/01_classical.ipynb", n_students: int = 30, jobs: int = 2,
                  cell_timeout: int = 60, keep: str | None = None) -> dict:
    """Measure grading overhead against plain execution, and the wall time for N submissions.

    Returns a dict of figures (seconds), e.g. ``overhead_ratio``,
    ``grade_wall_s``, ``plain_wall_s``, ``per_submission_s``.
    """
    from segtutor import grading, paths
    from segtutor.grading import sandbox

    if not os.path.isabs(lesson) and not os.path.exists(lesson) and paths.lessons_dir() is not None:
        # relative to the checkout, wherever this is called from
        lesson = os.path.join(paths.lessons_dir().parent, lesson)
    lesson = os.path.abspath(lesson)
    if not os.path.exists(lesson):
        raise FileNotFoundError(f"no lesson notebook at {lesson}")
    assignment = os.path.splitext(os.path.basename(lesson))[0]
    root = keep or tempfile.mkdtemp(prefix="segtutor-bench-grading-")
    os.makedirs(root, exist_ok=True)
    try:
        course = os.path.join(root, "course")
        subs = os.path.join(root, "submissions")
        t0 = time.monotonic()
        grading.setup_course(course, [lesson])
        setup_s = time.monotonic() - t0
        kinds = make_submissions(course, assignment, subs, n_students)

        user = "nobody"
        try:
            sandbox.check_interpreter(user)
        except sandbox.SandboxError:
            user = None
        result = grading.grade(course, subs, assignment, jobs=jobs, cell_timeout=cell_timeout,
                               sandbox_user=user, force=True)
        grade_s = result.seconds

        plain_dir = os.path.join(root, "plain")
        shutil.copytree(subs, plain_dir, dirs_exist_ok=True)
        paths = sorted(glob.glob(os.path.join(plain_dir, "*", "*.ipynb")))
        plain_s = plain_execution(paths, jobs)

        totals = result.totals()
        full = sum(1 for s, (score, maximum, _st, _r) in totals.items() if score == maximum)
        expected_full = sum(1 for k in kinds.values() if k == "correct")
        steps = [v for v in result.per_student_seconds.values() if v is not None]
        return {
            "lesson": os.path.relpath(lesson),
            "n_students": n_students,
            "jobs": jobs,
            "cpu_count": os.cpu_count(),
            "privilege_drop": sandbox.privilege_drop_active(user),
            "setup_s": round(setup_s, 2),
            "grade_wall_s": round(grade_s, 2),
            "plain_wall_s": round(plain_s, 2),
            "overhead_ratio": round(grade_s / plain_s, 3) if plain_s else None,
            "per_submission_s": round(sum(steps) / len(steps), 2) if steps else None,
            "per_submission_plain_s": round(plain_s * jobs / max(1, len(paths)), 2),
            "full_marks": full,
            "expected_full_marks": expected_full,
            "statuses": sorted({st for (_s, _m, st, _r) in totals.values()}),
        }
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # python -m segtutor.tools.bench_grading [lesson] [n] [jobs]
    import json

    args = sys.argv[1:]
    print(json.dumps(bench_grading(
        args[0] if args else "lessons/01_classical.ipynb",
        int(args[1]) if len(args) > 1 else 30,
        int(args[2]) if len(args) > 2 else 2,
    ), indent=1))
