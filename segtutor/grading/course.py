"""Classroom grading on top of nbgrader: release the lessons, autograde submissions safely.

Three steps, each also a ``segtutor`` subcommand (see ``docs/grading.md``):

* :func:`setup_course` makes an nbgrader course folder from the lessons (one
  assignment per lesson notebook, named after it, e.g. ``01_classical``) and
  runs nbgrader's ``generate_assignment``, so the gradebook knows every grade cell;
* :func:`release` writes the student versions of the lessons (solutions and
  hidden tests removed, grade cells tagged ``raises-exception`` so "Run All"
  continues past an unfinished exercise);
* :func:`grade` autogrades every submission with nbgrader, ``jobs`` at a time,
  each kernel sandboxed (:mod:`segtutor.grading.sandbox`) and every ``exercises.check``
  grade cell scored in a clean process (:mod:`segtutor.grading.cleanroom`),
  then writes a CSV of per-exercise scores with reasons and nbgrader's HTML feedback.

``import segtutor.grading`` is light; nbgrader is imported when a step runs.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time

__all__ = ["GradingResult", "add_cli", "grade", "release", "setup_course"]

DEFAULT_COURSE_ID = "segtutor"
RAISES_TAG = "raises-exception"
CSV_FIELDS = ["student", "assignment", "notebook", "cell", "exercise", "score", "max_score", "status", "reason"]

_CONFIG_TEMPLATE = '''\
# nbgrader configuration of the segtutor course (written by `segtutor grade`/`setup_course`).
# `segtutor grade` adds its own autograde settings on top of this file: sandboxed
# execution, clean-room exercise checks, restoring deleted test cells; see docs/grading.md.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
# Knobs you may want:
# c.LimitOutput.max_lines = 1000        # lines of output kept per cell in autograded notebooks
# c.LimitOutput.max_traceback = 100
# c.SandboxedExecute.max_output_bytes = 1000000   # characters of output kept per cell
'''


def _lesson_paths(lessons) -> list:
    if lessons is None:
        from segtutor import paths

        lessons = paths.lessons_dir()
        if lessons is None:
            raise FileNotFoundError(
                "no lessons folder found: pass --lessons DIR (or set SEGTUTOR_LESSONS), "
                "or run from the course checkout")
    if isinstance(lessons, (str, os.PathLike)):
        lessons = os.fspath(lessons)
        if os.path.isdir(lessons):
            paths = sorted(glob.glob(os.path.join(lessons, "*.ipynb")))
        elif os.path.isfile(lessons):
            paths = [lessons]
        else:
            raise FileNotFoundError(f"no lessons folder or notebook at {lessons}")
    else:
        paths = [os.fspath(p) for p in lessons]
    if not paths:
        raise FileNotFoundError(f"no lesson notebooks (*.ipynb) found in {lessons}")
    import nbformat

    for path in paths:
        try:
            nbformat.validate(nbformat.read(path, as_version=4))
        except FileNotFoundError:
            raise FileNotFoundError(f"lesson notebook {path} does not exist") from None
        except Exception as exc:  # not JSON, not a notebook, schema errors
            raise ValueError(f"lesson {path} is not a valid notebook: {str(exc).splitlines()[0]}") from None
    return [os.path.abspath(p) for p in paths]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: str) -> str:
    with open(path, "rb") as fh:
        return _sha(fh.read())


def _write_if_changed(path: str, data: bytes) -> bool:
    if os.path.exists(path):
        with open(path, "rb") as fh:
            if fh.read() == data:
                return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        os.chmod(path, 0o644)
    with open(path, "wb") as fh:
        fh.write(data)
    return True


def _state_dir(course_dir: str, *parts) -> str:
    path = os.path.join(course_dir, ".segtutor", *parts)
    os.makedirs(path, exist_ok=True)
    return path


class _Capture:
    """A logger for nbgrader that keeps its messages (shown only when something fails)."""

    def __init__(self):
        import logging

        self.records = []
        capture = self

        class Handler(logging.Handler):
            def emit(self, record):
                capture.records.append(record)

        self.log = logging.getLogger(f"segtutor.grading.nbgrader.{id(self)}")
        self.log.handlers[:] = [Handler(logging.INFO)]
        self.log.setLevel(logging.INFO)
        self.log.propagate = False

    def errors(self) -> str:
        import logging

        lines = [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]
        return "\n".join(lines[-6:])


def _ensure_alembic() -> None:
    """nbgrader runs ``alembic`` from PATH when it creates a gradebook: find it next to Python."""
    if shutil.which("alembic") is None:
        bindir = os.path.dirname(sys.executable)
        if os.path.exists(os.path.join(bindir, "alembic")):
            os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _coursedir(course_dir: str, course_id: str, assignment: str = "", student: str = "*"):
    from nbgrader.coursedir import CourseDirectory

    cd = CourseDirectory()
    cd.root = course_dir
    cd.course_id = course_id
    cd.assignment_id = assignment
    cd.student_id = student
    return cd


def _course_id(course_dir: str) -> str:
    path = os.path.join(course_dir, "nbgrader_config.py")
    if os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("c.CourseDirectory.course_id"):
                    try:
                        import ast

                        return ast.literal_eval(line.split("=", 1)[1].strip())
                    except (ValueError, SyntaxError):
                        pass
    return DEFAULT_COURSE_ID


# -- setting up the course -----------------------------------------------------------------


def setup_course(course_dir, lessons=None, course_id: str = DEFAULT_COURSE_ID, *, force: bool = False) -> list:
    """Create or update an nbgrader course folder with one assignment per lesson.

    Parameters
    ----------
    course_dir : path
        The course folder (created; made private to its owner, mode 700, since
        it will hold the gradebook and every student's work).
    lessons : folder, notebook, or list of notebooks, optional
        The instructor versions of the lessons (default: the repository's ``lessons/``).
    course_id : str
        nbgrader course id, written to ``nbgrader_config.py`` when that file is new.
    force : bool
        Regenerate the assignments even if the lesson did not change.

    Returns
    -------
    list of str
        The assignment names, e.g. ``["00_intro", "01_classical"]``.
    """
    course_dir = os.path.abspath(os.fspath(course_dir))
    _ensure_alembic()
    os.makedirs(course_dir, exist_ok=True)
    os.chmod(course_dir, 0o700)
    config = os.path.join(course_dir, "nbgrader_config.py")
    if not os.path.exists(config):
        with open(config, "w") as fh:
            fh.write(_CONFIG_TEMPLATE.format(course_id=course_id))
    state_path = os.path.join(_state_dir(course_dir), "sources.json")
    state = {}
    if os.path.exists(state_path):
        with open(state_path) as fh:
            state = json.load(fh)
    names = []
    for path in _lesson_paths(lessons):
        name = os.path.splitext(os.path.basename(path))[0]
        names.append(name)
        with open(path, "rb") as fh:
            data = fh.read()
        _write_if_changed(os.path.join(course_dir, "source", name, f"{name}.ipynb"), data)
        released = os.path.join(course_dir, "release", name, f"{name}.ipynb")
        if force or state.get(name) != _sha(data) or not os.path.exists(released) or not _in_gradebook(course_dir, name):
            _generate_assignment(course_dir, _course_id(course_dir), name)
            state[name] = _sha(data)
            with open(state_path, "w") as fh:
                json.dump(state, fh, indent=1, sort_keys=True)
        _tag_grade_cells(released)
    return names


def _in_gradebook(course_dir: str, assignment: str) -> bool:
    db = os.path.join(course_dir, "gradebook.db")
    if not os.path.exists(db):
        return False
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{db}", _course_id(course_dir)) as gb:
        try:
            gb.find_assignment(assignment)
            return True
        except MissingEntry:
            return False


def _generate_assignment(course_dir: str, course_id: str, assignment: str) -> None:
    from nbgrader.converters import GenerateAssignment
    from traitlets.config import Config

    from segtutor.grading.nbgrader_pp import gradebook_lock

    config = Config()
    config.CourseDirectory.root = course_dir
    config.CourseDirectory.course_id = course_id
    capture = _Capture()
    converter = GenerateAssignment(coursedir=_coursedir(course_dir, course_id, assignment, "."),
                                   config=config, log=capture.log)
    converter.force = True
    with gradebook_lock(course_dir):
        try:
            converter.start()
        except Exception as exc:
            raise RuntimeError(
                f"nbgrader generate_assignment failed for {assignment}: {exc}\n{capture.errors()}") from exc


def _tag_grade_cells(path: str) -> bool:
    """Add the ``raises-exception`` tag to every grade cell of a released notebook."""
    import nbformat

    if not os.path.exists(path):
        return False
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            tags = list(cell.metadata.get("tags", []))
            if RAISES_TAG not in tags:
                cell.metadata["tags"] = tags + [RAISES_TAG]
                changed = True
    if changed:
        _write_if_changed(path, nbformat.writes(nb).encode() + b"\n")
    return changed


# -- release ---------------------------------------------------------------------------------


def release(lessons_dir=None, out_dir="release", course_dir=None) -> list:
    """Write the student versions of every lesson to ``out_dir`` (idempotent).

    The notebooks are nbgrader's ``generate_assignment`` output (solutions
    replaced by ``raise NotImplementedError()``, hidden tests removed, cells
    locked), with every grade cell tagged ``raises-exception``. With
    ``course_dir`` the course folder is set up (or updated) there and its
    ``release/`` folder holds the same notebooks; without, a temporary one is used.

    Returns the paths written in ``out_dir``, one notebook per lesson.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    own = course_dir is None
    course_dir = tempfile.mkdtemp(prefix="segtutor-course-") if own else os.fspath(course_dir)
    try:
        names = setup_course(course_dir, lessons_dir)
        os.makedirs(out_dir, exist_ok=True)
        written = []
        for name in names:
            folder = os.path.join(course_dir, "release", name)
            for src in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
                if os.path.isdir(src) or ".ipynb_checkpoints" in src:
                    continue
                dest = os.path.join(out_dir, os.path.relpath(src, folder))
                with open(src, "rb") as fh:
                    _write_if_changed(dest, fh.read())
                if dest.endswith(".ipynb"):
                    written.append(dest)
        return written
    finally:
        if own:
            shutil.rmtree(course_dir, ignore_errors=True)


# -- collecting submissions --------------------------------------------------------------------


def _assignment_notebooks(course_dir: str, assignment: str) -> list:
    source = os.path.join(course_dir, "source", assignment)
    names = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(source, "*.ipynb")))
    if not names:
        known = sorted(d for d in os.listdir(os.path.join(course_dir, "source"))
                       if os.path.isdir(os.path.join(course_dir, "source", d))) \
            if os.path.isdir(os.path.join(course_dir, "source")) else []
        raise FileNotFoundError(
            f"assignment {assignment!r} is not in {course_dir}/source "
            f"(assignments there: {', '.join(known) or 'none'}); pass --lessons DIR to add lessons")
    return names


def import_submissions(course_dir: str, submissions: str, assignment: str) -> list:
    """Copy submissions into the course's ``submitted/<student>/<assignment>/`` folder.

    Accepted layouts of ``submissions``: nbgrader's ``<student>/<assignment>/*.ipynb``,
    ``<student>/*.ipynb``, or flat ``<student>.ipynb`` files (one-notebook
    assignments). Files are copied only when their content changed (symbolic
    links are skipped). Returns the student ids found.
    """
    notebooks = _assignment_notebooks(course_dir, assignment)
    students = []
    for entry in sorted(os.listdir(submissions)):
        full = os.path.join(submissions, entry)
        if entry.startswith(".") or os.path.islink(full):
            continue
        if os.path.isfile(full) and entry.endswith(".ipynb"):
            if len(notebooks) != 1:
                continue
            student, files = entry[: -len(".ipynb")], {f"{notebooks[0]}.ipynb": full}
        elif os.path.isdir(full):
            student = entry
            folder = os.path.join(full, assignment) if os.path.isdir(os.path.join(full, assignment)) else full
            files = {}
            for root, _dirs, names in os.walk(folder):
                for name in names:
                    path = os.path.join(root, name)
                    if os.path.islink(path) or ".ipynb_checkpoints" in path:
                        continue
                    files[os.path.relpath(path, folder)] = path
            ipynbs = [k for k in files if k.endswith(".ipynb") and os.sep not in k]
            if len(notebooks) == 1 and len(ipynbs) == 1 and ipynbs[0] != f"{notebooks[0]}.ipynb":
                files[f"{notebooks[0]}.ipynb"] = files.pop(ipynbs[0])
        else:
            continue
        dest = os.path.join(course_dir, "submitted", student, assignment)
        for rel, path in files.items():
            with open(path, "rb") as fh:
                _write_if_changed(os.path.join(dest, rel), fh.read())
        students.append(student)
    return students


# -- grading -------------------------------------------------------------------------------------


@dataclasses.dataclass
class GradingResult:
    """What :func:`grade` did: the CSV rows, where things are, and timings."""

    rows: list
    csv_path: str
    feedback_dir: str
    graded: list
    skipped: list
    seconds: float
    per_student_seconds: dict

    def totals(self) -> dict:
        """``{student: (score, max_score, status, reason)}`` from the TOTAL rows."""
        return {
            r["student"]: (float(r["score"]), float(r["max_score"]), r["status"], r["reason"])
            for r in self.rows if r["cell"] == "TOTAL"
        }

    def scores(self) -> dict:
        """``{student: {cell: score}}`` for the grade cells."""
        out: dict = {}
        for r in self.rows:
            if r["cell"] != "TOTAL":
                out.setdefault(r["student"], {})[r["cell"]] = float(r["score"])
        return out


def _fingerprint(course_dir: str, assignment: str, student: str, settings: dict) -> str:
    h = hashlib.sha256()
    for folder in (os.path.join(course_dir, "submitted", student, assignment),
                   os.path.join(course_dir, "source", assignment)):
        for path in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
            if os.path.isfile(path):
                h.update(os.path.relpath(path, folder).encode() + b"\0" + _file_sha(path).encode())
        h.update(b"\1")
    from segtutor import __version__

    # Everything that decides a grade: the whole library (references, specs, checker,
    # grader) and the course's nbgrader configuration (late penalties, limits).
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for path in sorted(glob.glob(os.path.join(package, "**", "*.py"), recursive=True)):
        if os.path.relpath(path, package).startswith("tools" + os.sep):
            continue  # the segtutor command and benchmarks decide no grade
        h.update(os.path.relpath(path, package).encode() + b"\0" + _file_sha(path).encode())
    config = os.path.join(course_dir, "nbgrader_config.py")
    if os.path.isfile(config):
        h.update(b"config\0" + _file_sha(config).encode())
    # where the scratch folders go does not change a grade
    h.update(json.dumps({k: settings[k] for k in sorted(settings) if k != "scratch_root"}, sort_keys=True).encode())
    h.update(__version__.encode())
    return h.hexdigest()


class _Worker:
    """One ``segtutor.grading.worker`` process and the task it is on."""

    def __init__(self, course_dir: str, settings: dict, log_path: str):
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "segtutor.grading.worker", course_dir, json.dumps(settings)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            start_new_session=True, env=_worker_env(),
        )
        self.buffer = b""
        self.task = None
        self.deadline = None
        self.started = None
        self.ready = False

    def send(self, task: dict, budget: float) -> None:
        self.task = task
        self.started = time.monotonic()
        self.deadline = self.started + budget
        self.proc.stdin.write((json.dumps(task) + "\n").encode())
        self.proc.stdin.flush()

    def read_lines(self) -> list:
        chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not chunk:
            raise EOFError
        self.buffer += chunk
        lines = self.buffer.split(b"\n")
        self.buffer = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]

    def kill(self) -> None:
        from segtutor.grading import sandbox

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if os.geteuid() == 0:
            sandbox.kill_tagged(set(sandbox.tag_range(self.proc.pid)))
        self.proc.wait()
        self.log.close()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


def _prepare_runtime(sandbox_user) -> None:
    """With a privilege drop, give student code a runtime it can reach (see segtutor.grading.runtime).

    The runtime holds the interpreter, the environment's packages and a copy of the
    segtutor package, never the checkout around it. When it cannot be built, grading
    goes on with this interpreter, and the interpreter check says what to do if the
    sandbox user cannot run it.
    """
    from segtutor.grading import runtime, sandbox

    if not sandbox.privilege_drop_active(sandbox_user):
        runtime.activate(None)
        return
    try:
        runtime.activate(runtime.prepare())
    except (runtime.RuntimeUnavailable, OSError) as exc:
        runtime.activate(None)
        print(f"segtutor grade: no sandbox runtime ({exc}); student code runs with {sys.executable}",
              file=sys.stderr)


def _worker_env() -> dict:
    from segtutor import paths
    from segtutor.grading import sandbox

    env = sandbox.env_with_pythonpath()
    # The pretrained-weights cache, read-only for student code (the sandbox keeps TORCH_HOME).
    env.setdefault("TORCH_HOME", str(paths.weights_dir().parent.parent))
    return env


def _run_tasks(course_dir: str, tasks: list, settings: dict, jobs: int, budget: float, progress=None) -> dict:
    """Grade ``tasks`` with ``jobs`` workers; a worker that crashes or overruns is replaced."""
    results: dict = {}
    pending = list(tasks)
    log_dir = _state_dir(course_dir, "logs")
    workers: list = []
    sel = selectors.DefaultSelector()
    startup_failures = 0

    def spawn():
        w = _Worker(course_dir, settings, os.path.join(log_dir, "workers.log"))
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        workers.append(w)
        return w

    def retire(w, result=None):
        try:
            sel.unregister(w.proc.stdout)
        except (KeyError, ValueError):
            pass
        workers.remove(w)
        if w.task is not None and result is not None:
            results[w.task["student"]] = result
        w.kill()

    def failure(w, reason):
        task = w.task
        return {"student": task["student"], "assignment": task["assignment"], "status": "error",
                "reason": reason, "notebooks": {}, "seconds": round(time.monotonic() - w.started, 2)}

    try:
        for _ in range(min(jobs, len(pending))):
            spawn()
        while pending or any(w.task is not None for w in workers):
            for w in list(workers):
                if w.ready and w.task is None and pending:
                    w.send(pending.pop(0), budget)
            deadlines = [w.deadline for w in workers if w.task is not None]
            wait = max(0.05, min(deadlines) - time.monotonic()) if deadlines else 1.0
            for key, _ in sel.select(timeout=min(wait, 5.0)):
                w = key.data
                try:
                    messages = w.read_lines()
                except (EOFError, OSError, ValueError):
                    code = w.proc.poll()
                    if not w.ready:
                        startup_failures += 1
                        if startup_failures >= 3:
                            retire(w)
                            raise RuntimeError(
                                "the grading workers cannot start (exit code "
                                f"{code}); see {os.path.join(log_dir, 'workers.log')}:\n{_tail(log_dir)}")
                    if w.task is not None:
                        retire(w, failure(w, f"grading failed: the grading worker stopped (exit code {code})"))
                    else:
                        retire(w)
                    if pending or len(workers) < min(jobs, len(pending)):
                        spawn()
                    continue
                for msg in messages:
                    if msg.get("ready"):
                        w.ready = True
                    elif w.task is not None:
                        results[w.task["student"]] = msg
                        if progress:
                            progress(msg)
                        w.task = None
                        w.deadline = None
            now = time.monotonic()
            for w in list(workers):
                if w.task is not None and now > w.deadline:
                    retire(w, failure(w, f"grading failed: the submission took longer than {budget:.0f} s "
                                         "to grade and was stopped"))
                    if pending:
                        spawn()
            if not workers and pending:
                spawn()
    finally:
        for w in list(workers):
            w.close()
        sel.close()
    return results


def _tail(log_dir: str, size: int = 1500) -> str:
    from segtutor.grading.process import read_tail as tail_of

    return tail_of(os.path.join(log_dir, "workers.log"), size)


def _zero(course_dir: str, assignment: str, student: str, needs_manual: bool) -> None:
    from segtutor.grading.worker import zero_submission

    zero_submission(course_dir, _course_id(course_dir), assignment, student, needs_manual=needs_manual)


def _fmt(x) -> str:
    return f"{float(x):g}"


def _table(course_dir: str, assignment: str, students: list, results: dict) -> list:
    """CSV rows from the gradebook (scores, manual ones included) and the grading reports (reasons)."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    from segtutor.grading.cleanroom import parse_check_calls

    notebooks = _assignment_notebooks(course_dir, assignment)
    order, exercise_of = {}, {}
    for nb_name in notebooks:
        nb = nbformat.read(os.path.join(course_dir, "source", assignment, f"{nb_name}.ipynb"), as_version=4)
        ids = []
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                ids.append(meta["grade_id"])
                calls = parse_check_calls(cell.source) if cell.cell_type == "code" else []
                exercise_of[(nb_name, meta["grade_id"])] = " + ".join(c.exercise_id for c in calls)
        order[nb_name] = ids
    rows = []
    db_url = f"sqlite:///{os.path.join(course_dir, 'gradebook.db')}"
    with Gradebook(db_url, _course_id(course_dir)) as gb:
        for student in sorted(students):
            result = results.get(student, {})
            total = maximum = 0.0
            for nb_name in notebooks:
                nb_report = result.get("notebooks", {}).get(nb_name, {})
                try:
                    grades = {g.name: g for g in gb.find_submission_notebook(nb_name, assignment, student).grades}
                except MissingEntry:
                    grades = {}
                for cell_id in order[nb_name]:
                    grade = grades.get(cell_id)
                    score = float(grade.score) if grade is not None and grade.score is not None else 0.0
                    max_score = float(grade.max_score) if grade is not None else float(
                        gb.find_graded_cell(cell_id, nb_name, assignment).max_score)
                    cell_report = nb_report.get("cells", {}).get(cell_id)
                    if cell_report is not None:
                        status, reason = cell_report.get("status", ""), cell_report.get("reason", "")
                    elif nb_report:
                        status, reason = nb_report.get("status", ""), nb_report.get("reason", "")
                    else:
                        status, reason = result.get("status", "missing"), result.get("reason", "not graded")
                    if grade is not None and grade.manual_score is not None:
                        auto = "none" if grade.auto_score is None else _fmt(grade.auto_score)
                        status, reason = "manual", f"graded by hand (autograder: {auto}; {reason or status})"
                    rows.append({
                        "student": student, "assignment": assignment, "notebook": nb_name, "cell": cell_id,
                        "exercise": exercise_of.get((nb_name, cell_id), ""), "score": _fmt(score),
                        "max_score": _fmt(max_score), "status": status, "reason": reason,
                    })
                    total += score
                    maximum += max_score
            rows.append({
                "student": student, "assignment": assignment, "notebook": "", "cell": "TOTAL", "exercise": "",
                "score": _fmt(total), "max_score": _fmt(maximum), "status": result.get("status", "missing"),
                "reason": result.get("reason", ""),
            })
    return rows


def _write_csv(path: str, rows: list) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def grade(
    course_dir,
    submissions=None,
    assignment: str | None = None,
    *,
    jobs: int | None = None,
    cell_timeout: int = 60,
    notebook_timeout: int = 600,
    memory_limit: str = "2G",
    sandbox_user: str | None = "nobody",
    force: bool = False,
    csv_path=None,
    lessons=None,
    scratch_root: str | None = None,
    progress=None,
    students=None,
) -> GradingResult:
    """Autograde every submission of ``assignment`` and write the scores CSV and HTML feedback.

    Parameters
    ----------
    course_dir : path
        nbgrader course folder (made with :func:`setup_course`; set up here from
        ``lessons`` when the assignment is not in it yet).
    submissions : path, optional
        Folder of submissions to import first (``<student>/<assignment>/*.ipynb``,
        ``<student>/*.ipynb`` or ``<student>.ipynb``); default: the course's
        ``submitted/`` folder as nbgrader's ``collect`` leaves it.
    assignment : str
        Assignment name (lesson notebook stem), e.g. ``"01_classical"``.
    jobs : int
        Submissions graded at once (one worker process each); default ``os.cpu_count()``.
    cell_timeout, notebook_timeout : int
        Seconds per cell (the kernel is killed when it runs over, later cells are
        not run) and for the whole notebook. Each exercise check gets ``cell_timeout`` too.
    memory_limit : str
        Memory limit of each kernel and check process (``RLIMIT_DATA``), e.g. ``"2G"``.
    scratch_root : path, optional
        Where the kernels' and checks' scratch folders go (default: the temp dir).
    sandbox_user : str or None
        Unprivileged user student code runs as when grading as root; ``None``
        runs it as the grader's own user (then it could write the gradebook).
    force : bool
        Regrade submissions that did not change since the last run.
    csv_path : path, optional
        Where the scores go (default ``<course_dir>/grades/<assignment>.csv``).
    students : list of str, optional
        Grade only these students (the CSV still lists everyone, with their last results).
    progress : callable, optional
        Called with each student's report as soon as it is graded.

    Returns
    -------
    GradingResult
        One row per student per grade cell plus a ``TOTAL`` row per student, each
        with ``score``, ``max_score``, ``status`` and a readable ``reason``.
    """
    from segtutor.grading import sandbox

    if not assignment:
        raise ValueError("which assignment? e.g. assignment='01_classical'")
    start = time.monotonic()
    course_dir = os.path.abspath(os.fspath(course_dir))
    if lessons is not None or not os.path.isdir(os.path.join(course_dir, "source", assignment)):
        setup_course(course_dir, lessons if lessons is not None else None)
    elif not _in_gradebook(course_dir, assignment):
        _generate_assignment(course_dir, _course_id(course_dir), assignment)
    notebooks = _assignment_notebooks(course_dir, assignment)
    if submissions is not None and os.path.abspath(os.fspath(submissions)) != os.path.join(course_dir, "submitted"):
        import_submissions(course_dir, os.fspath(submissions), assignment)
    submitted = os.path.join(course_dir, "submitted")
    students_found = sorted(
        s for s in (os.listdir(submitted) if os.path.isdir(submitted) else [])
        if not s.startswith(".") and os.path.isdir(os.path.join(submitted, s, assignment))
    )
    _prepare_runtime(sandbox_user)
    sandbox.check_interpreter(sandbox_user, scratch_root=scratch_root)

    settings = {
        "cell_timeout": int(cell_timeout), "notebook_timeout": int(notebook_timeout),
        "memory_limit": str(memory_limit), "sandbox_user": sandbox_user,
        "course_id": _course_id(course_dir), "scratch_root": scratch_root or "",
    }
    state = _state_dir(course_dir, "results", assignment)
    results, tasks, skipped = {}, [], []
    fingerprints = {}
    only = None if students is None else set(students)
    for student in students_found:
        fingerprints[student] = fp = _fingerprint(course_dir, assignment, student, settings)
        stored_path = os.path.join(state, f"{student}.json")
        stored = None
        if os.path.exists(stored_path):
            with open(stored_path) as fh:
                stored = json.load(fh)
        if only is not None and student not in only:
            results[student] = (stored or {}).get("result", {"status": "missing", "reason": "not graded yet"})
            skipped.append(student)
            continue
        if not force and stored is not None:
            autograded = os.path.isdir(os.path.join(course_dir, "autograded", student, assignment))
            result = stored.get("result", {})
            if stored.get("fingerprint") == fp and (
                result.get("status") in ("invalid", "missing")
                or (result.get("status") in ("graded", "stopped") and autograded)
            ):
                results[student] = result
                skipped.append(student)
                continue
        tasks.append({"assignment": assignment, "student": student})

    n_checks = 0
    for nb_name in notebooks:
        with open(os.path.join(course_dir, "source", assignment, f"{nb_name}.ipynb")) as fh:
            n_checks += fh.read().count("check(")
    budget = notebook_timeout + n_checks * (cell_timeout + 20) + 180
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    fresh = _run_tasks(course_dir, tasks, settings, jobs, budget, progress) if tasks else {}
    for student, result in fresh.items():
        if result.get("status") == "error" and not result.get("notebooks"):
            # The worker died or overran: whatever it left in the gradebook is not a grade.
            _zero(course_dir, assignment, student, needs_manual=True)
        results[student] = result
        with open(os.path.join(state, f"{student}.json"), "w") as fh:
            json.dump({"fingerprint": fingerprints[student], "result": result}, fh, indent=1, sort_keys=True)

    rows = _table(course_dir, assignment, students_found, results)
    csv_path = os.path.abspath(os.fspath(csv_path)) if csv_path else os.path.join(course_dir, "grades", f"{assignment}.csv")
    _write_csv(csv_path, rows)
    return GradingResult(
        rows=rows, csv_path=csv_path, feedback_dir=os.path.join(course_dir, "feedback"),
        graded=sorted(fresh), skipped=sorted(skipped), seconds=round(time.monotonic() - start, 2),
        per_student_seconds={s: r.get("seconds") for s, r in fresh.items()},
    )


# -- command line --------------------------------------------------------------------------------


def _cmd_release(args) -> int:
    try:
        written = release(args.lessons, args.out, course_dir=args.course)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"segtutor release: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"released {os.path.relpath(path)}")
    return 0


def _cmd_grade(args) -> int:
    from segtutor.grading.sandbox import SandboxError

    user = None if args.no_privilege_drop else args.sandbox_user

    def progress(result):
        if not args.quiet:
            print(f"  {result['student']}: {result['status']}"
                  + (f" ({result['reason']})" if result.get("reason") else ""), flush=True)

    try:
        result = grade(
            args.course, args.submissions, args.assignment, jobs=args.jobs,
            cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
            memory_limit=args.memory_limit, sandbox_user=user, force=args.force,
            csv_path=args.csv, lessons=args.lessons, progress=progress, students=args.students,
            scratch_root=args.scratch_dir,
        )
    except SandboxError as exc:
        print(f"segtutor grade: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"segtutor grade: {exc}", file=sys.stderr)
        return 1
    totals = result.totals()
    if not totals:
        where = args.submissions or os.path.join(args.course, "submitted")
        print(f"segtutor grade: no submissions of {args.assignment} found in {where} "
              f"(expected <student>/{args.assignment}/<notebook>.ipynb, <student>/<notebook>.ipynb "
              "or <student>.ipynb)", file=sys.stderr)
        return 1
    width = max([len(s) for s in totals] + [7])
    print(f"{'student':<{width}}  score  status")
    for student, (score, maximum, status, reason) in sorted(totals.items()):
        print(f"{student:<{width}}  {score:g}/{maximum:g}  {status}" + (f": {reason}" if reason else ""))
    print(f"graded {len(result.graded)}, unchanged {len(result.skipped)}, in {result.seconds:.1f} s")
    print(f"scores: {result.csv_path}")
    print(f"feedback: {result.feedback_dir}/<student>/{args.assignment}/")
    return 0


def add_cli(subparsers) -> None:
    """Register ``segtutor release`` and ``segtutor grade`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "release", help="write the student versions of the lessons",
        description="Write the student versions of the lessons (nbgrader generate_assignment), "
                    "grade cells tagged raises-exception.")
    p.add_argument("--lessons", default=None, help="folder of instructor lessons (default: the repository's lessons/)")
    p.add_argument("--out", default="release", help="where the student notebooks go (default ./release)")
    p.add_argument("--course", default=None, help="also set up / update this nbgrader course folder")
    p.set_defaults(func=_cmd_release)

    g = subparsers.add_parser(
        "grade", help="autograde submissions (sandboxed), write scores CSV and feedback",
        description="Autograde every submission of an assignment with nbgrader: sandboxed kernels, "
                    "clean-room exercise checks, a CSV of per-exercise scores with reasons, HTML feedback.")
    g.add_argument("assignment", help="assignment (lesson) name, e.g. 01_classical")
    g.add_argument("--course", default="course", help="nbgrader course folder (default ./course)")
    g.add_argument("--submissions", default=None,
                   help="folder of submissions to import (<student>/<assignment>/*.ipynb, <student>/*.ipynb "
                        "or <student>.ipynb); default: the course's submitted/ folder")
    g.add_argument("--lessons", default=None, help="(re)create the course's assignments from these lessons")
    g.add_argument("--jobs", "-j", type=int, default=os.cpu_count(), help="submissions graded at once (default: CPUs)")
    g.add_argument("--cell-timeout", type=int, default=60, help="seconds per cell and per exercise check (default 60)")
    g.add_argument("--notebook-timeout", type=int, default=600, help="seconds per notebook (default 600)")
    g.add_argument("--memory-limit", default="2G", help="memory per kernel / check process (default 2G)")
    g.add_argument("--sandbox-user", default="nobody", help="user student code runs as when root (default nobody)")
    g.add_argument("--no-privilege-drop", action="store_true",
                   help="run student code as yourself (it could then write the gradebook)")
    g.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    g.add_argument("--student", action="append", default=None, dest="students",
                   help="grade only this student (repeatable)")
    g.add_argument("--csv", default=None, help="scores CSV path (default <course>/grades/<assignment>.csv)")
    g.add_argument("--scratch-dir", default=None,
                   help="where kernels get their scratch copies (default: the temp dir; must be traversable "
                        "by the sandbox user)")
    g.add_argument("--quiet", "-q", action="store_true", help="no per-student progress lines")
    g.set_defaults(func=_cmd_grade)
