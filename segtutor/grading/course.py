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

import contextlib
import csv
import dataclasses
import fcntl
import glob
import hashlib
import json
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unicodedata

from segtutor.grading.process import MAX_FILES, MAX_SUBMISSION_BYTES, peak_rss_mib

__all__ = ["GradingResult", "add_cli", "grade", "import_submissions", "release", "setup_course",
           "student_id_problem"]

DEFAULT_COURSE_ID = "segtutor"
RAISES_TAG = "raises-exception"
CSV_FIELDS = ["student", "assignment", "notebook", "cell", "exercise", "score", "max_score", "status", "reason"]
#: CSV columns holding text (escaped against formula injection when written).
_TEXT_FIELDS = ("student", "assignment", "notebook", "cell", "exercise", "status", "reason")
#: Seconds a grading worker may take to import nbgrader and say it is ready.
WORKER_STARTUP_TIMEOUT = 180
#: Default cap on one submission's bytes in all, as the command line takes it (files: ``MAX_FILES``).
MAX_SUBMISSION_SIZE = f"{MAX_SUBMISSION_BYTES // 2**20}M"

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
            paths = sorted(glob.glob(os.path.join(glob.escape(lessons), "*.ipynb")))
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
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isfile(path)):
        os.remove(path)  # never write through a link (or into a FIFO) in the course folder
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


# -- one grader at a time per course ---------------------------------------------------------

_HELD_LOCKS: dict = {}


class CourseBusy(RuntimeError):
    """Another ``segtutor grade`` (or release) is working on this course."""


@contextlib.contextmanager
def course_lock(course_dir: str, what: str = "segtutor grade"):
    """Hold the course's lock (``.segtutor/course.lock``) or fail at once with who holds it.

    Re-entrant within a process (``grade`` sets the course up under its own lock).
    """
    course_dir = os.path.abspath(os.fspath(course_dir))
    if course_dir in _HELD_LOCKS:
        _HELD_LOCKS[course_dir][1] += 1
        try:
            yield
        finally:
            _HELD_LOCKS[course_dir][1] -= 1
        return
    path = os.path.join(_state_dir(course_dir), "course.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.pread(fd, 300, 0).decode(errors="replace").strip()
        finally:
            os.close(fd)
        raise CourseBusy(
            f"another grading run is working on {course_dir} ({holder or 'a process that holds its lock'}); "
            "wait until it finishes (two at once would grade the same submissions and overwrite each "
            "other's results)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{what}, pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
    _HELD_LOCKS[course_dir] = [fd, 1]
    try:
        yield
    finally:
        del _HELD_LOCKS[course_dir]
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# -- student ids -----------------------------------------------------------------------------


def student_id_problem(name: str) -> str | None:
    """``None`` if ``name`` can be a student id, else why it cannot.

    Names are used literally (``alice[1]`` is a name, not a pattern). Refused:
    empty or very long names, leading/trailing spaces or dot, path separators,
    control characters, and the wildcards ``*`` and ``?`` (nbgrader's own
    commands would take them as patterns matching other students).

    >>> student_id_problem("alice[1]") is None, student_id_problem("=1+2") is None
    (True, True)
    >>> student_id_problem("*")
    'it holds * (a wildcard in nbgrader commands)'
    """
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name) > 100:
        return "it is longer than 100 characters"
    if name != name.strip():
        return "it begins or ends with white space"
    if name.startswith("."):
        return "it begins with a dot"
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        return "it holds control characters"
    for ch in ("/", "\\"):
        if ch in name:
            return f"it holds {ch} (a path separator)"
    for ch in ("*", "?"):
        if ch in name:
            return f"it holds {ch} (a wildcard in nbgrader commands)"
    return None


def _printable(text) -> str:
    """``text`` with control characters (escape sequences, newlines) replaced by spaces."""
    return "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(text))


def _csv_cell(value):
    """A text cell that a spreadsheet will not run: formulas (``= + - @``, tab, CR) get a leading quote.

    >>> _csv_cell("=HYPERLINK(1)"), _csv_cell("-1+2"), _csv_cell("alice")
    ("'=HYPERLINK(1)", "'-1+2", 'alice')
    """
    if not isinstance(value, str):
        return value
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        value = "'" + value
    return _printable(value)


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
    with course_lock(course_dir, "segtutor release"):
        return _setup_course(course_dir, lessons, course_id, force)


def _setup_course(course_dir: str, lessons, course_id: str, force: bool) -> list:
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
    found = glob.glob(os.path.join(glob.escape(source), "*.ipynb"))
    names = sorted(os.path.splitext(os.path.basename(p))[0] for p in found)
    if not names:
        known = sorted(d for d in os.listdir(os.path.join(course_dir, "source"))
                       if os.path.isdir(os.path.join(course_dir, "source", d))) \
            if os.path.isdir(os.path.join(course_dir, "source")) else []
        raise FileNotFoundError(
            f"assignment {assignment!r} is not in {course_dir}/source "
            f"(assignments there: {', '.join(known) or 'none'}); pass --lessons DIR to add lessons")
    return names


def _import(course_dir: str, submissions: str, assignment: str, *, max_files: int = MAX_FILES,
            max_bytes: int | None = None):
    """Import submissions; -> (students, {student: [notes]}, [notes about entries that are no student])."""
    from segtutor.grading.process import copy_tree, hidden_entry
    from segtutor.grading.sandbox import parse_size

    max_bytes = int(max_bytes or parse_size(MAX_SUBMISSION_SIZE))
    notebooks = _assignment_notebooks(course_dir, assignment)
    students, per_student, general = [], {}, []
    for entry in sorted(os.listdir(submissions)):
        full = os.path.join(submissions, entry)
        if entry.startswith("."):
            continue
        try:
            st = os.lstat(full)
        except OSError:
            continue
        link = None  # a link where the submission should be: the student is listed, with why nothing came in
        if stat.S_ISLNK(st.st_mode):
            student = entry[: -len(".ipynb")] if entry.endswith(".ipynb") and len(notebooks) == 1 else entry
            link = f"{entry} is a symbolic link (not followed)"
        elif stat.S_ISREG(st.st_mode) and entry.endswith(".ipynb"):
            if len(notebooks) != 1:
                continue
            student = entry[: -len(".ipynb")]
            folder, single = submissions, entry
        elif stat.S_ISDIR(st.st_mode):
            student, single = entry, None
            inner = os.path.join(full, assignment)
            try:
                inner_st = os.lstat(inner)
            except OSError:
                inner_st = None
            if inner_st is not None and stat.S_ISLNK(inner_st.st_mode):
                link = f"{entry}/{assignment} is a symbolic link (not followed)"
            folder = inner if inner_st is not None and stat.S_ISDIR(inner_st.st_mode) else full
        else:
            continue
        why = student_id_problem(student)
        if why is not None:
            general.append(f"{entry!r} skipped: not a valid student id ({why})")
            continue
        dest = os.path.join(course_dir, "submitted", student, assignment)
        for path in (os.path.dirname(dest), dest):
            if os.path.islink(path):
                os.remove(path)
        if link is not None:
            per_student[student] = [f"nothing imported: {link}"]
            os.makedirs(dest, exist_ok=True)
            students.append(student)
            continue
        files = {}

        def keep(rel, data, files=files):
            files[rel] = data

        if single is not None:
            done = copy_tree(folder, None, write=keep, max_files=max_files, max_bytes=max_bytes,
                             ignore=lambda rel, is_dir, single=single: rel != single)
            files = {f"{notebooks[0]}.ipynb": v for v in files.values()}
        else:
            done = copy_tree(folder, None, write=keep, max_files=max_files, max_bytes=max_bytes, ignore=hidden_entry)
            ipynbs = [k for k in files if k.endswith(".ipynb") and os.sep not in k]
            if len(notebooks) == 1 and len(ipynbs) == 1 and ipynbs[0] != f"{notebooks[0]}.ipynb":
                files[f"{notebooks[0]}.ipynb"] = files.pop(ipynbs[0])
        notes = done.notes(" not imported")
        if notes:
            per_student[student] = notes
        for rel, data in files.items():
            _write_if_changed(os.path.join(dest, rel), data)
        os.makedirs(dest, exist_ok=True)
        students.append(student)
    return students, per_student, general


def import_submissions(course_dir: str, submissions: str, assignment: str, *, max_files: int = MAX_FILES,
                       max_size=MAX_SUBMISSION_SIZE, notes: list | None = None) -> list:
    """Copy submissions into the course's ``submitted/<student>/<assignment>/`` folder.

    Accepted layouts of ``submissions``: nbgrader's ``<student>/<assignment>/*.ipynb``,
    ``<student>/*.ipynb``, or flat ``<student>.ipynb`` files (one-notebook
    assignments). Only regular files are copied, following no symbolic link at
    any level; at most ``max_files`` files and ``max_size`` bytes per student
    (e.g. ``"100M"``). Folder names are student ids taken literally; names that
    cannot be one (see :func:`student_id_problem`) are refused. Files are
    written only when their content changed. What was skipped, and why, is
    appended to ``notes`` (a list) when given. Returns the student ids found.
    """
    from segtutor.grading.sandbox import parse_size

    students, per_student, general = _import(course_dir, submissions, assignment, max_files=max_files,
                                             max_bytes=parse_size(max_size))
    if notes is not None:
        notes.extend(general)
        notes.extend(f"{s}: {n}" for s, ns in sorted(per_student.items()) for n in ns)
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
    #: What the grader wants the instructor to know: entries skipped at import, names refused,
    #: a sandbox feature this machine lacks.
    notes: list = dataclasses.field(default_factory=list)
    #: Peak resident memory (MiB) of the grader's own processes: ``scheduler`` and ``workers`` (the largest).
    peak_rss_mib: dict = dataclasses.field(default_factory=dict)

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


def _tree_digest(h, folder: str, settings: dict) -> None:
    """Hash the regular files under ``folder`` (no links followed, the submission caps applied)."""
    from segtutor.grading.process import copy_tree

    def add(rel, data):
        h.update(rel.encode() + b"\0" + _sha(data).encode())

    done = copy_tree(folder, None, write=add, max_files=int(settings.get("max_files") or MAX_FILES),
                     max_bytes=int(settings.get("max_submission_bytes") or 2**62))
    for rel, why in done.skipped:
        h.update(f"skipped\0{rel}\0{why}".encode())
    h.update(b"\1")


def _fingerprint(course_dir: str, assignment: str, student: str, settings: dict, *, package=None) -> str:
    """What decides a grade, hashed: the submission, the lesson, segtutor, the course config, the settings."""
    h = hashlib.sha256()
    _tree_digest(h, os.path.join(course_dir, "submitted", student, assignment), settings)
    _tree_digest(h, os.path.join(course_dir, "source", assignment), {})
    from segtutor import __version__

    # Everything that decides a grade: the whole library (references, specs, checker,
    # grader) and the course's nbgrader configuration (late penalties, limits).
    package = package or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__"
                             and not (dirpath == package and d == "tools"))  # tools decide no grade
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
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
            _worker_command(course_dir, settings),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            start_new_session=True, env=_worker_env(),
        )
        self.buffer = b""
        self.task = None
        self.deadline = None
        self.started = None
        self.ready = False
        self.spawned = time.monotonic()

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


def _worker_command(course_dir: str, settings: dict) -> list:
    return [sys.executable, "-m", "segtutor.grading.worker", course_dir, json.dumps(settings)]


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
            deadlines += [w.spawned + WORKER_STARTUP_TIMEOUT for w in workers if not w.ready]
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
                if not w.ready and now > w.spawned + WORKER_STARTUP_TIMEOUT:
                    # It never said "ready" (stuck importing, a hung file system): replace it.
                    startup_failures += 1
                    retire(w)
                    if startup_failures >= 3:
                        raise RuntimeError(
                            f"the grading workers did not start within {WORKER_STARTUP_TIMEOUT} s "
                            f"(3 tries); see {os.path.join(log_dir, 'workers.log')}:\n{_tail(log_dir)}")
                    spawn()
                    continue
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
        for row in rows:
            writer.writerow({k: (_csv_cell(v) if k in _TEXT_FIELDS else v) for k, v in row.items()})
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
    isolate: bool = True,
    max_files: int = MAX_FILES,
    max_submission_size=MAX_SUBMISSION_SIZE,
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
    isolate : bool
        Give student code a private view of the machine when grading as root
        (:mod:`segtutor.grading.isolation`: no checkout, no shared ``/tmp``, no
        network). Where this machine does not allow it, grading goes on without
        and ``GradingResult.notes`` says so.
    max_files, max_submission_size : int, size
        Caps on one submission (files, and bytes in all, e.g. ``"100M"``); what
        is past them is not imported or graded, and the student's reason says so.

    Only one grading run may work on a course at a time: a second one fails at
    once with :class:`CourseBusy` (a ``RuntimeError``).

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
    os.makedirs(course_dir, exist_ok=True)
    with course_lock(course_dir):
        return _grade(course_dir, submissions, assignment, start, jobs=jobs, cell_timeout=cell_timeout,
                      notebook_timeout=notebook_timeout, memory_limit=memory_limit, sandbox_user=sandbox_user,
                      force=force, csv_path=csv_path, lessons=lessons, scratch_root=scratch_root,
                      progress=progress, students=students, isolate=isolate, max_files=max_files,
                      max_submission_size=max_submission_size)


def _grade(course_dir, submissions, assignment, start, *, jobs, cell_timeout, notebook_timeout, memory_limit,
           sandbox_user, force, csv_path, lessons, scratch_root, progress, students, isolate, max_files,
           max_submission_size) -> GradingResult:
    from segtutor.grading import sandbox

    if lessons is not None or not os.path.isdir(os.path.join(course_dir, "source", assignment)):
        setup_course(course_dir, lessons if lessons is not None else None)
    elif not _in_gradebook(course_dir, assignment):
        _generate_assignment(course_dir, _course_id(course_dir), assignment)
    notebooks = _assignment_notebooks(course_dir, assignment)
    max_bytes = sandbox.parse_size(max_submission_size) or sandbox.parse_size(MAX_SUBMISSION_SIZE)
    notes: list = []
    import_notes: dict = {}
    if submissions is not None and os.path.abspath(os.fspath(submissions)) != os.path.join(course_dir, "submitted"):
        _found, import_notes, general = _import(course_dir, os.fspath(submissions), assignment,
                                                max_files=int(max_files), max_bytes=max_bytes)
        notes += general
    submitted = os.path.join(course_dir, "submitted")
    students_found = []
    for name in sorted(os.listdir(submitted) if os.path.isdir(submitted) else []):
        if name.startswith("."):
            continue
        try:
            st = os.lstat(os.path.join(submitted, name))
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            notes.append(f"submitted/{name}: not a folder (a link?), skipped")
            continue
        if not os.path.lexists(os.path.join(submitted, name, assignment)):
            continue
        why = student_id_problem(name)
        if why is not None:
            notes.append(f"submitted/{name!r} skipped: not a valid student id ({why})")
            continue
        students_found.append(name)
    if students is not None:
        for name in students:
            if student_id_problem(name) is not None:
                raise ValueError(f"{name!r} is not a valid student id ({student_id_problem(name)})")
    _prepare_runtime(sandbox_user)
    problem = sandbox.isolation_problem(sandbox_user) if isolate else "isolation was turned off"
    if sandbox_user is not None and not sandbox.privilege_drop_active(sandbox_user):
        notes.append("grading as a non-root user: student code runs as you, with your access to files and "
                     "network, and sees this machine's /tmp; grade as root for the sandbox (docs/grading.md)")
    elif sandbox.privilege_drop_active(sandbox_user) and problem is not None:
        notes.append(f"student code sees this machine's file system, /tmp and network: {problem}. It can "
                     "read whatever the sandbox user may read (a world-readable checkout's lessons, for "
                     "instance); see docs/grading.md")
    sandbox.check_interpreter(sandbox_user, scratch_root=scratch_root,
                              isolation=sandbox.Isolation() if problem is None else None)

    settings = {
        "cell_timeout": int(cell_timeout), "notebook_timeout": int(notebook_timeout),
        "memory_limit": str(memory_limit), "sandbox_user": sandbox_user,
        "course_id": _course_id(course_dir), "scratch_root": scratch_root or "",
        "isolate": problem is None, "max_files": int(max_files), "max_submission_bytes": int(max_bytes),
    }
    state = _state_dir(course_dir, "results", assignment)
    results, tasks, skipped = {}, [], []
    fingerprints = {}
    only = None if students is None else set(students)
    for student in students_found:
        fp = _fingerprint(course_dir, assignment, student, settings)
        if import_notes.get(student):
            fp = _sha((fp + "\0" + "\0".join(import_notes[student])).encode())
        fingerprints[student] = fp
        stored_path = os.path.join(state, f"{student}.json")
        stored = None
        if os.path.isfile(stored_path):
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
        if import_notes.get(student):
            result["notes"] = import_notes[student] + list(result.get("notes", []))
            result["reason"] = "; ".join([r for r in (result.get("reason"),) if r] + import_notes[student])
        results[student] = result
        with open(os.path.join(state, f"{student}.json"), "w") as fh:
            json.dump({"fingerprint": fingerprints[student], "result": result}, fh, indent=1, sort_keys=True)

    rows = _table(course_dir, assignment, students_found, results)
    csv_path = os.path.abspath(os.fspath(csv_path)) if csv_path else os.path.join(course_dir, "grades", f"{assignment}.csv")
    _write_csv(csv_path, rows)
    workers_rss = [r.get("peak_rss_mib") for r in fresh.values() if r.get("peak_rss_mib")]
    return GradingResult(
        rows=rows, csv_path=csv_path, feedback_dir=os.path.join(course_dir, "feedback"),
        graded=sorted(fresh), skipped=sorted(skipped), seconds=round(time.monotonic() - start, 2),
        per_student_seconds={s: r.get("seconds") for s, r in fresh.items()}, notes=notes,
        peak_rss_mib={"scheduler": peak_rss_mib(),
                      "workers": max(workers_rss) if workers_rss else None},
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
            print(_printable(f"  {result['student']}: {result['status']}"
                             + (f" ({result['reason']})" if result.get("reason") else "")), flush=True)

    try:
        result = grade(
            args.course, args.submissions, args.assignment, jobs=args.jobs,
            cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
            memory_limit=args.memory_limit, sandbox_user=user, force=args.force,
            csv_path=args.csv, lessons=args.lessons, progress=progress, students=args.students,
            scratch_root=args.scratch_dir, isolate=not args.no_isolation, max_files=args.max_files,
            max_submission_size=args.max_submission_size,
        )
    except SandboxError as exc:
        print(f"segtutor grade: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"segtutor grade: {exc}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(_printable(f"segtutor grade: note: {note}"), file=sys.stderr)
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
        print(_printable(f"{student:<{width}}  {score:g}/{maximum:g}  {status}" + (f": {reason}" if reason else "")))
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
    g.add_argument("--no-isolation", action="store_true",
                   help="do not give student code a private view of the machine (its own root, /tmp, "
                        "/dev/shm, no network); see docs/grading.md")
    g.add_argument("--max-files", type=int, default=MAX_FILES,
                   help=f"files per submission at most (default {MAX_FILES})")
    g.add_argument("--max-submission-size", default=MAX_SUBMISSION_SIZE,
                   help=f"bytes per submission at most, e.g. 50M (default {MAX_SUBMISSION_SIZE})")
    g.add_argument("--quiet", "-q", action="store_true", help="no per-student progress lines")
    g.set_defaults(func=_cmd_grade)
