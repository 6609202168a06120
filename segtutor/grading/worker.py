"""A grading worker: ``python -m segtutor.grading.worker COURSE_DIR SETTINGS_JSON``.

Started by :func:`segtutor.grading.course.grade`, ``jobs`` at a time. It imports
nbgrader once and then grades one submission per line read on stdin
(``{"assignment": ..., "student": ...}``), answering one JSON line per
submission on its original stdout. Anything else printed goes to stderr (the
worker log). Student code never runs in this process: it runs in sandboxed
kernels and clean-room processes this worker starts and kills.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
import time
import traceback


def _load_config(course_dir: str, settings: dict):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    path = os.path.join(course_dir, "nbgrader_config.py")
    if os.path.exists(path):
        config.merge(PyFileConfigLoader("nbgrader_config.py", path=course_dir).load_config())
    config.merge(settings_config(course_dir, settings))
    return config


def settings_config(course_dir: str, settings: dict):
    """The nbgrader/traitlets configuration segtutor's autograde runs with."""
    from traitlets.config import Config

    c = Config()
    c.CourseDirectory.root = course_dir
    if settings.get("course_id"):
        c.CourseDirectory.course_id = settings["course_id"]
    c.OverwriteCells.add_missing_cells = True
    user = settings.get("sandbox_user", "nobody")
    for section in ("SandboxedExecute", "CleanroomGrades"):
        c[section].cell_timeout = int(settings.get("cell_timeout", 60))
        c[section].memory_limit = str(settings.get("memory_limit", "2G"))
        c[section].sandbox_user = user
        c[section].scratch_root = settings.get("scratch_root") or ""
    c.SandboxedExecute.notebook_timeout = int(settings.get("notebook_timeout", 600))
    c.AcquireGradebookLock.course_dir = course_dir
    return c


def _logger(path: str) -> logging.Logger:
    log = logging.getLogger(f"segtutor.grading.{os.getpid()}")
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("[%(asctime)s %(levelname)s] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def reason(self) -> str:
        """The exception at the end of the first traceback nbgrader logged, else its first error."""
        for message in self.messages:
            if "Traceback (most recent call last)" in message:
                lines = [line for line in message.splitlines() if line.strip()]
                return lines[-1].strip()[:300]
        for message in self.messages:
            if message.strip():
                return message.strip().splitlines()[0][:300]
        return "see the log"


def zero_submission(course_dir: str, course_id: str, assignment: str, student: str,
                    notebooks=None, *, needs_manual: bool = False) -> None:
    """Record a submission in the gradebook with auto scores of 0 (manual scores are kept)."""
    from nbgrader.api import Gradebook

    from segtutor.grading.nbgrader_pp import gradebook_lock

    db_url = f"sqlite:///{os.path.join(course_dir, 'gradebook.db')}"
    with gradebook_lock(course_dir), Gradebook(db_url, course_id) as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        for nb in submission.notebooks:
            if notebooks is not None and nb.name not in notebooks:
                continue
            for grade in nb.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = bool(needs_manual or grade.manual_score is not None)
        gb.db.commit()


def grade_one(course_dir: str, assignment: str, student: str, settings: dict) -> dict:
    """Autograde one student's submission and write its feedback; returns a JSON-able report."""
    import shutil

    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    from segtutor.grading.nbgrader_pp import GradebookAutograde, is_valid_notebook

    start = time.monotonic()
    log = _logger(os.path.join(course_dir, ".segtutor", "logs", assignment, f"{student}.log"))
    errors = _Errors()
    log.addHandler(errors)
    config = _load_config(course_dir, settings)
    course_id = settings.get("course_id") or "segtutor"

    def coursedir():
        cd = CourseDirectory(config=config)
        cd.root = course_dir
        cd.assignment_id = assignment
        cd.student_id = student
        return cd

    submitted = os.path.join(course_dir, "submitted", student, assignment)
    notebooks = sorted(glob.glob(os.path.join(submitted, "*.ipynb")))
    result = {"student": student, "assignment": assignment, "status": "graded", "reason": "", "notebooks": {}}
    invalid = [p for p in notebooks if not is_valid_notebook(p)]
    valid = [p for p in notebooks if p not in invalid]
    for path in invalid:
        name = os.path.splitext(os.path.basename(path))[0]
        result["notebooks"][name] = {"status": "invalid", "reason": "not a valid notebook (the .ipynb file cannot be read)"}

    autograded = os.path.join(course_dir, "autograded", student, assignment)
    feedback = os.path.join(course_dir, "feedback", student, assignment)
    if valid:
        converter = GradebookAutograde(coursedir=coursedir(), config=config, log=log)
        converter.force = True
        try:
            converter.start()
        except Exception as exc:  # nbgrader reports per-submission errors by raising at the end
            log.error("autograde failed: %s", exc)
            log.error("%s", traceback.format_exc())
        for name, report in converter.reports.items():
            entry = {"status": "graded", "reason": report.get("stopped", ""), "cells": report.get("cells", {})}
            if report.get("kernel_failed"):
                entry = {"status": "error", "reason": "grading failed: " + report["stopped"].replace("not run: ", "")}
            elif report.get("stopped"):
                entry["status"] = "stopped"
            result["notebooks"][name] = entry
        for path in valid:
            name = os.path.splitext(os.path.basename(path))[0]
            if name not in result["notebooks"]:
                result["notebooks"][name] = {"status": "error", "reason": f"grading failed: {errors.reason()}"}
    else:
        shutil.rmtree(autograded, ignore_errors=True)
    if not notebooks:
        result["status"] = "missing"
        result["reason"] = "no notebook was submitted"
        zero_submission(course_dir, course_id, assignment, student)
    bad = [n for n, e in result["notebooks"].items() if e["status"] in ("invalid", "error")]
    if invalid:
        zero_submission(course_dir, course_id, assignment, student,
                        notebooks=[os.path.splitext(os.path.basename(p))[0] for p in invalid])
    errored = [n for n, e in result["notebooks"].items() if e["status"] == "error"]
    if errored:
        zero_submission(course_dir, course_id, assignment, student, notebooks=errored, needs_manual=True)
    if bad:
        statuses = {result["notebooks"][n]["status"] for n in bad}
        result["status"] = "error" if "error" in statuses else "invalid"
        result["reason"] = "; ".join(result["notebooks"][n]["reason"] for n in bad)
    elif any(e["status"] == "stopped" for e in result["notebooks"].values()):
        result["status"] = "stopped"
        result["reason"] = "; ".join(e["reason"] for e in result["notebooks"].values() if e["reason"])

    # feedback for what was autograded
    shutil.rmtree(feedback, ignore_errors=True)
    if os.path.isdir(autograded) and glob.glob(os.path.join(autograded, "*.ipynb")):
        try:
            fb = GenerateFeedback(coursedir=coursedir(), config=config, log=log)
            fb.force = True
            fb.start()
        except Exception as exc:
            log.error("feedback failed: %s", exc)
    result["feedback"] = sorted(glob.glob(os.path.join(feedback, "*.html")))
    result["seconds"] = round(time.monotonic() - start, 2)
    log.removeHandler(errors)
    return result


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    course_dir, settings = argv[0], json.loads(argv[1])
    # Keep the protocol channel (stdout) clean: everything else printed goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from segtutor.grading import nbgrader_pp  # the slow imports, once

    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        try:
            result = grade_one(course_dir, task["assignment"], task["student"], settings)
        except Exception as exc:
            result = {
                "student": task.get("student"), "assignment": task.get("assignment"),
                "status": "error", "reason": f"grading failed: {type(exc).__name__}: {exc}",
                "notebooks": {}, "trace": traceback.format_exc(),
            }
        proto.write(json.dumps(result) + "\n")
    nbgrader_pp.close_fork_servers()
    return 0


if __name__ == "__main__":
    sys.exit(main())
