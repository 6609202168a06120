"""A grading worker: ``python -m segtutor.grading.worker COURSE_DIR SETTINGS_JSON``.

Started by :func:`segtutor.grading.course.grade`, ``jobs`` at a time. It imports
nbgrader once and then grades one submission per line read on stdin
(``{"assignment": ..., "student": ...}``), answering one JSON line per
submission on its original stdout. Anything else printed goes to stderr (the
worker log). Student code never runs in this process: it runs in sandboxed
kernels and clean-room processes this worker starts and kills.

The worker itself is hardened against what those processes leave behind: it
reads a submission only through a staging copy made without following links
(:func:`segtutor.grading.process.copy_tree`, with size and file-count caps),
creates its files private (umask 077), and runs under a memory limit, so a
result file that decodes to gigabytes fails that one check instead of the
machine.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
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
        c[section].isolate = bool(settings.get("isolate", True))
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

    from segtutor.grading.nbgrader_pp import ensure_submission, gradebook_lock

    db_url = f"sqlite:///{os.path.join(course_dir, 'gradebook.db')}"
    with gradebook_lock(course_dir), Gradebook(db_url, course_id) as gb:
        gb.update_or_create_student(student)
        submission = ensure_submission(gb, assignment, student)
        for nb in submission.notebooks:
            if notebooks is not None and nb.name not in notebooks:
                continue
            for grade in nb.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = bool(needs_manual or grade.manual_score is not None)
        gb.db.commit()


def stage_submission(course_dir: str, assignment: str, student: str, staging_root: str, settings: dict):
    """Copy ``submitted/<student>/<assignment>`` into ``staging_root`` the safe way; -> (folder, notes, problem).

    Only regular files are copied, following no link at any level (a student
    folder or assignment folder that is a link is refused), within the caps on
    file count and size. ``problem`` says why there is nothing to grade.
    """
    from segtutor.grading.process import MAX_FILES, MAX_SUBMISSION_BYTES, copy_tree, hidden_entry

    staged = os.path.join(staging_root, student, assignment)
    os.makedirs(staged, mode=0o700)
    top = os.path.join(course_dir, "submitted", student)
    for path in (top, os.path.join(top, assignment)):
        try:
            st = os.lstat(path)
        except OSError:
            return staged, [], "no submission folder"
        if stat.S_ISLNK(st.st_mode):
            return staged, [], f"{os.path.relpath(path, course_dir)} is a symbolic link (not followed)"
        if not stat.S_ISDIR(st.st_mode):
            return staged, [], f"{os.path.relpath(path, course_dir)} is not a folder"
    done = copy_tree(os.path.join(top, assignment), staged,
                     max_files=int(settings.get("max_files") or MAX_FILES),
                     max_bytes=int(settings.get("max_submission_bytes") or MAX_SUBMISSION_BYTES),
                     ignore=hidden_entry)
    notes = [f"not graded: {note}" for note in done.notes()]
    return staged, notes, "; ".join(done.notes()) or None


def _notebook_format(path: str):
    """(nbformat version, whether it has cells) of a notebook file; (None, None) if it cannot be read."""
    import nbformat

    try:
        with open(path, "rb") as fh:
            raw = json.loads(fh.read())
        version = int(raw.get("nbformat", 0))
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        return version, bool(nb.cells)
    except Exception:
        return None, None


def _limit_memory(settings: dict) -> None:
    """A memory limit (soft ``RLIMIT_DATA``) for this worker: results are decoded and compared here.

    The memory limit of one kernel plus 2 GiB for nbgrader and the reference
    computations. Sandboxed processes started from here set their own limits.
    """
    import resource

    from segtutor.grading.sandbox import parse_size

    kernel = parse_size(settings.get("memory_limit", "2G"))
    if kernel is None:
        return
    limit = kernel + 2 * 2**30
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def grade_one(course_dir: str, assignment: str, student: str, settings: dict) -> dict:
    """Autograde one student's submission and write its feedback; returns a JSON-able report."""
    from nbgrader.coursedir import CourseDirectory

    from segtutor.grading.nbgrader_pp import GradebookAutograde, LiteralFeedback, is_valid_notebook
    from segtutor.grading.process import peak_rss_mib

    start = time.monotonic()
    log = _logger(os.path.join(course_dir, ".segtutor", "logs", assignment, f"{student}.log"))
    errors = _Errors()
    log.addHandler(errors)
    course_id = settings.get("course_id") or "segtutor"
    # nbgrader reads the submission from a staging copy made without following links
    staging_root = os.path.join(course_dir, ".segtutor", "staging", str(os.getpid()))
    shutil.rmtree(staging_root, ignore_errors=True)
    config = _load_config(course_dir, settings)
    config.CourseDirectory.submitted_directory = os.path.relpath(staging_root, course_dir)

    def coursedir():
        cd = CourseDirectory(config=config)
        cd.root = course_dir
        cd.assignment_id = assignment
        cd.student_id = student
        return cd

    result = {"student": student, "assignment": assignment, "status": "graded", "reason": "", "notebooks": {}}
    try:
        staged, notes, problem = stage_submission(course_dir, assignment, student, staging_root, settings)
        notebooks = sorted(os.path.join(staged, n) for n in os.listdir(staged)
                           if n.endswith(".ipynb") and os.path.isfile(os.path.join(staged, n)))
        invalid = {}
        for path in notebooks:
            name = os.path.splitext(os.path.basename(path))[0]
            version, has_cells = _notebook_format(path)
            if version is not None and version < 4 and not has_cells:
                invalid[path] = f"old notebook format (nbformat {version}), no cells found"
            elif not is_valid_notebook(path):
                invalid[path] = "not a valid notebook (the .ipynb file cannot be read)"
            elif version is not None and version < 4:
                notes.append(f"{name}.ipynb was converted from the old notebook format (nbformat {version})")
        valid = [p for p in notebooks if p not in invalid]
        for path, why in invalid.items():
            result["notebooks"][os.path.splitext(os.path.basename(path))[0]] = {"status": "invalid", "reason": why}
            os.remove(path)  # nbgrader must not see it

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
                    why = report["stopped"].replace("not run: ", "")
                    entry = {"status": "error", "reason": f"grading failed: {why}"}
                elif report.get("stopped"):
                    entry["status"] = "stopped"
                result["notebooks"][name] = entry
                notes += report.get("notes", [])
            for path in valid:
                name = os.path.splitext(os.path.basename(path))[0]
                if name not in result["notebooks"]:
                    result["notebooks"][name] = {"status": "error", "reason": f"grading failed: {errors.reason()}"}
        else:
            shutil.rmtree(autograded, ignore_errors=True)
        if not notebooks:
            result["status"] = "missing"
            result["reason"] = f"no notebook was graded ({problem})" if problem else "no notebook was submitted"
            notes = [n for n in notes if not problem or n[len("not graded: "):] not in problem]
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
        result["notes"] = notes
        if notes:
            result["reason"] = "; ".join([r for r in (result["reason"],) if r] + notes)

        # feedback for what was autograded
        shutil.rmtree(feedback, ignore_errors=True)
        if os.path.isdir(autograded) and any(n.endswith(".ipynb") for n in os.listdir(autograded)):
            try:
                fb = LiteralFeedback(coursedir=coursedir(), config=config, log=log)
                fb.force = True
                fb.start()
            except Exception as exc:
                log.error("feedback failed: %s", exc)
        result["feedback"] = sorted(os.path.join(feedback, n) for n in
                                    (os.listdir(feedback) if os.path.isdir(feedback) else []) if n.endswith(".html"))
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - start, 2)
    result["peak_rss_mib"] = peak_rss_mib()
    log.removeHandler(errors)
    return result


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    course_dir, settings = argv[0], json.loads(argv[1])
    os.umask(0o077)  # logs, kernel output, staging copies: the grader's alone
    _limit_memory(settings)
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
