"""nbgrader plumbing for :mod:`segtutor.grading.course`: sandboxed execution and clean-room grades.

Importing this module imports nbgrader (slow, about two seconds): only the
grading worker and the release step do.

Autograde here is nbgrader's ``Autograde`` converter with these changes:

* the submission is read literally (a student folder named ``alice[1]`` is not
  a glob pattern) and without following links: only regular files are copied
  (:class:`GradebookAutograde`);
* :class:`ReconcileCells` makes every cell's grading metadata the lesson's
  (nbgrader's rule: the source's cells are truth), so a forged ``grade: true,
  points: 1000``, a cell id that is not in the lesson, or a test cell pasted
  twice is graded as the lesson says instead of crashing the grader, and the
  report says what was found;
* sanitising (``OverwriteCells``) restores deleted grade cells
  (``add_missing_cells``), also when the cells around them were deleted too,
  and compares a locked cell with its *released* version (hidden tests
  removed), so an untouched test cell is not reported as changed;
* :class:`SandboxedExecute` replaces ``Execute``: the kernel runs through
  :mod:`segtutor.grading.sandbox` (limits, unprivileged user, private scratch copy of
  the submission), a cell that runs past its time limit gets its kernel killed,
  and once the kernel is gone (killed, ``os._exit``, memory) the remaining cells
  are marked *not run* instead of failing the whole submission;
* :class:`CleanroomGrades`, right after it, replaces the outputs of every grade
  cell that calls ``exercises.check`` by the verdict of
  :func:`segtutor.grading.cleanroom.grade_check` (a fresh sandboxed process,
  reference compared in this process), so nothing the notebook did to its own
  kernel changes a score;
* :class:`SanitizeOutputs` removes active content (scripts, event handlers,
  JavaScript outputs, unsafe markdown) from the autograded notebook, so neither
  the HTML feedback nor the formgrader runs anything a student wrote
  (:mod:`segtutor.grading.safehtml`);
* :class:`GradebookAutograde` serialises the parts that write the gradebook
  (a file lock), so several workers can grade at once on one sqlite file.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import shutil
import stat
import sys
import tempfile
import time
import uuid

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.client import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Dict, Integer, List, Unicode

from nbgrader import utils as nbutils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearOutput,
    Execute,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)

from . import cleanroom, safehtml, sandbox

#: Cell metadata key where SandboxedExecute leaves how each code cell ran.
RUN_KEY = "segtutor_run"

# statuses of a cell run
OK, ERROR, TIMED_OUT, DIED, NOT_RUN = "ok", "error", "timed out", "kernel died", "not run"


# -- the gradebook lock -----------------------------------------------------------------


def lock_path(course_dir: str) -> str:
    return os.path.join(course_dir, ".segtutor", "gradebook.lock")


class _LockState:
    """An exclusive ``flock`` on the course's gradebook lock file, held until released."""

    def __init__(self):
        self.handle = None

    def acquire(self, course_dir: str) -> None:
        if self.handle is None:
            path = lock_path(course_dir)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.handle = open(path, "a")
            fcntl.flock(self.handle, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.handle is not None:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_UN)
            finally:
                self.handle.close()
                self.handle = None


@contextlib.contextmanager
def gradebook_lock(course_dir: str):
    """Exclusive lock on the course's gradebook, across processes (``flock``)."""
    lock = _LockState()
    lock.acquire(course_dir)
    try:
        yield
    finally:
        lock.release()


#: The lock a worker holds while nbgrader writes the gradebook (released by the converter).
LOCK = _LockState()


class AcquireGradebookLock(NbGraderPreprocessor):
    """Takes the gradebook lock; placed after the (long) execution, before SaveAutoGrades."""

    course_dir = Unicode("").tag(config=True)

    def preprocess(self, nb, resources):
        LOCK.acquire(self.course_dir or os.getcwd())
        return nb, resources


# -- sanitising --------------------------------------------------------------------------


def _notes(resources) -> list:
    """Where the preprocessors leave what they found, for the student's report."""
    return resources.setdefault("segtutor", {}).setdefault("notes", [])


def _lesson_cells(gradebook, notebook_id: str, assignment_id: str) -> dict:
    """``{grade_id: nbgrader metadata}`` of the lesson's cells, as the release wrote them."""
    source_nb = gradebook.find_notebook(notebook_id, assignment_id)
    grades = {c.name: c.max_score for c in source_nb.grade_cells}
    tasks = {c.name: c.max_score for c in source_nb.task_cells}
    solutions = {c.name for c in source_nb.solution_cells}
    truth = {}
    for cell in source_nb.source_cells:
        meta = {"cell_type": cell.cell_type, "checksum": cell.checksum, "grade": cell.name in grades,
                "grade_id": cell.name, "locked": bool(cell.locked), "schema_version": 3,
                "solution": cell.name in solutions}
        if cell.name in tasks:
            meta.update(task=True, grade=False, points=tasks[cell.name])
        elif cell.name in grades:
            meta["points"] = grades[cell.name]
        truth[cell.name] = meta
    return truth


def _claims(meta: dict) -> dict:
    """The grading-relevant part of a cell's nbgrader metadata, normalised for comparison."""
    out = {k: bool(meta.get(k, False)) for k in ("grade", "solution", "locked", "task")}
    if out["grade"] or out["task"]:
        try:
            out["points"] = float(meta.get("points"))
        except (TypeError, ValueError):
            out["points"] = meta.get("points")
    return out


class ReconcileCells(NbGraderPreprocessor):
    """Give every cell the lesson's grading metadata (nbgrader's rule: the source's cells are truth).

    A submission's cell metadata is the student's to edit. Here, before nbgrader
    reads it:

    * a cell whose ``grade_id`` is not in the lesson (or that has nbgrader
      metadata without an id) becomes a plain cell;
    * a ``grade_id`` found more than once (a test cell pasted twice) is kept on
      its last occurrence, as nbgrader's ``DeduplicateIds`` does; the others
      become plain cells;
    * every kept cell gets the lesson's metadata (``grade``, ``solution``,
      ``locked``, ``task``, ``points``), whatever the submission claimed;
    * missing grade cells are added back later (``OverwriteCells``) and score 0
      when they cannot pass; missing solution cells simply score 0.

    What was found goes into the student's report (``resources["segtutor"]["notes"]``).
    """

    def preprocess(self, nb, resources):
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            truth = _lesson_cells(gb, resources["nbgrader"]["notebook"], resources["nbgrader"]["assignment"])
        notes = _notes(resources)
        last = {}
        for index, cell in enumerate(nb.cells):
            meta = cell.metadata.get("nbgrader")
            if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
                last[meta["grade_id"]] = index
        counts: dict = {}
        for index, cell in enumerate(nb.cells):
            if "nbgrader" not in cell.metadata:
                continue
            meta = cell.metadata["nbgrader"]
            grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
            if not isinstance(grade_id, str) or grade_id not in truth:
                del cell.metadata["nbgrader"]
                label = repr(grade_id)[:60] if isinstance(grade_id, str) else "without an id"
                notes.append(f"cell {index + 1} has grading metadata ({label}) that is not in the lesson: ignored")
                continue
            counts[grade_id] = counts.get(grade_id, 0) + 1
            if last[grade_id] != index:
                del cell.metadata["nbgrader"]
                continue
            expected = truth[grade_id]
            claimed = _claims(meta)
            if claimed != _claims(expected):
                changed = ", ".join(f"{k}: {claimed[k]!r}" for k in sorted(claimed)
                                    if claimed.get(k) != _claims(expected).get(k))
                notes.append(f"the grading metadata of cell {grade_id!r} was changed ({changed}): "
                             "graded as the lesson says")
            cell.metadata["nbgrader"] = copy.deepcopy(expected)
        for grade_id, count in sorted(counts.items()):
            if count > 1:
                notes.append(f"cell {grade_id!r} appears {count} times: the last one is graded, "
                             "the others are ignored")
        return nb, resources


class RobustOverwriteCells(OverwriteCells):
    """``OverwriteCells`` whose restoring of deleted grade cells survives deleted neighbours.

    nbgrader puts a missing grade cell after the previous grade or solution cell
    of the source notebook and fails with ``KeyError`` when that one is missing
    too; this version falls back to the nearest earlier one that is present, or
    to the top of the notebook.
    """

    def preprocess(self, nb, resources):
        self._hidden = ClearHiddenTests(config=self.config)
        return super().preprocess(nb, resources)

    def _released_checksum(self, cell, source_cell) -> str:
        """The checksum the student's copy had at release: hidden tests removed, as the release did."""
        released = copy.deepcopy(cell)
        released.source = source_cell.source
        try:
            self._hidden._remove_hidden_test_region(released)
        except RuntimeError:
            pass
        return nbutils.compute_checksum(released)

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is None:
            return cell, resources
        try:
            source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
        except MissingEntry:  # ReconcileCells removed these already; kept for direct use
            del cell.metadata["nbgrader"]
            return cell, resources
        if cell.cell_type != source_cell.cell_type:
            _notes(resources).append(f"cell {grade_id!r} was changed from {source_cell.cell_type} to "
                                     f"{cell.cell_type}: changed back")
            self.update_cell_type(cell, source_cell.cell_type)
        cell.metadata.nbgrader["locked"] = bool(source_cell.locked)
        if source_cell.locked:
            edited = nbutils.compute_checksum(cell) != self._released_checksum(cell, source_cell)
            if edited:
                _notes(resources).append(f"locked cell {grade_id!r} was edited: the lesson's version was restored")
            cell.source = source_cell.source
        cell.metadata.nbgrader["checksum"] = source_cell.checksum
        if source_cell.locked and nbutils.compute_checksum(cell) != source_cell.checksum:
            raise RuntimeError(f"inconsistent checksums for cell {grade_id}")
        return cell, resources

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = list(source_nb.source_cells)
        order = [cell.name for cell in source_cells]
        order_of = {name: i for i, name in enumerate(order)}
        grade_cells = sorted(source_nb.grade_cells, key=lambda c: order_of.get(c.name, 0))
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        for grade_cell in grade_cells:
            present = {
                cell.metadata["nbgrader"]["grade_id"]: i for i, cell in enumerate(nb.cells)
                if (nbutils.is_grade(cell) or nbutils.is_solution(cell) or nbutils.is_locked(cell))
                and "grade_id" in cell.metadata.get("nbgrader", {})
            }
            if grade_cell.name in present:
                continue
            self.log.info("Missing grade cell %s encountered, adding it back", grade_cell.name)
            _notes(resources).append(f"test cell {grade_cell.name!r} was missing: added back")
            idx = order_of.get(grade_cell.name, 0)
            source_cell = source_cells[idx]
            new_cell = nbformat.from_dict(self.missing_cell_transform(
                source_cell, grade_cell.max_score, is_solution=grade_cell.name in solution_ids))
            if nb.get("nbformat_minor", 0) >= 5:
                taken = {c.get("id") for c in nb.cells}
                new_cell["id"] = uuid.uuid4().hex[:8]
                while new_cell["id"] in taken:
                    new_cell["id"] = uuid.uuid4().hex[:8]
            position = 0
            for earlier in reversed(order[:idx]):
                if earlier in present:
                    position = present[earlier] + 1
                    break
            nb.cells.insert(position, new_cell)
        return nb, resources


# -- sandboxed execution -------------------------------------------------------------------


class SandboxKernelManager(AsyncKernelManager):
    """Starts ``python -m ipykernel_launcher`` through :mod:`segtutor.grading.sandbox`.

    Whatever kernel the notebook asks for, the kernel is this interpreter's
    ipykernel; the connection file is made readable by the sandbox's group only.
    """

    sandbox_prefix = List([])
    sandbox_gid = Integer(None, allow_none=True)

    def format_kernel_cmd(self, extra_arguments=None):
        return list(self.sandbox_prefix) + [
            sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
        ] + list(extra_arguments or [])

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if self.sandbox_gid is not None:
            os.chown(self.connection_file, 0, self.sandbox_gid)
            os.chmod(self.connection_file, 0o640)
        kw["env"] = sandbox.env_with_pythonpath(kw.get("env"))
        return await super()._async_launch_kernel(kernel_cmd, **kw)


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _stream_output(text: str, name: str = "stdout") -> NotebookNode:
    return nbformat.v4.new_output("stream", name=name, text=text)


def _output_size(msg) -> int:
    content = msg.get("content", {})
    if msg.get("msg_type") == "stream":
        return len(content.get("text", ""))
    size = 0
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(str(value))
    size += sum(len(line) for line in content.get("traceback", []) or [])
    return size


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` run in the sandbox, with hard time limits and kernel-death recovery."""

    cell_timeout = Integer(60, help="seconds a cell may run before its kernel is killed").tag(config=True)
    notebook_timeout = Integer(600, help="seconds for the whole notebook").tag(config=True)
    memory_limit = Unicode("2G", help="RLIMIT_DATA of the kernel (e.g. 2G; 'none')").tag(config=True)
    sandbox_user = Unicode("nobody", allow_none=True,
                           help="user the kernel runs as when grading as root (None: no privilege drop)").tag(config=True)
    max_output_bytes = Integer(1_000_000, help="output kept per cell; the rest is dropped").tag(config=True)
    scratch_root = Unicode("", help="where the kernels' scratch folders go (default: the temp dir)").tag(config=True)
    isolate = Bool(True, help="give each kernel a private view of the machine (root; see "
                              "segtutor.grading.isolation)").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)

    # nbclient asks for a cell's timeout through timeout_func
    def _timeout_for(self, cell):
        return self._current_timeout

    def preprocess(self, nb, resources=None, km=None):
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        # cells get their limit from timeout_func; this one is for kernel_info and the like
        self.timeout = max(60, int(self.cell_timeout))
        self.timeout_func = self._timeout_for
        self._current_timeout = self.timeout
        self.interrupt_on_timeout = False
        self.raise_on_iopub_timeout = False
        self.iopub_timeout = 10
        self.shutdown_kernel = "immediate"
        self.startup_timeout = 60
        self.kernel_name = "python3"
        self._output_used = {}
        self._output_cut = set()
        run_sync(self._async_preprocess)(nb, resources)
        return self.nb, self.resources

    def output(self, outs, msg, display_id, cell_index):
        size = _output_size(msg)
        used = self._output_used.get(cell_index, 0)
        if used + size <= self.max_output_bytes:
            self._output_used[cell_index] = used + size
            return super().output(outs, msg, display_id, cell_index)
        if cell_index in self._output_cut:
            return None
        self._output_cut.add(cell_index)
        room = max(0, self.max_output_bytes - used)
        if msg.get("msg_type") == "stream" and room:
            text = msg["content"].get("text", "")[:room]
            outs.append(_stream_output(text, msg["content"].get("name", "stdout")))
        outs.append(_stream_output(
            f"\n[... output truncated by the grader: more than {self.max_output_bytes} characters ...]\n"))
        self._output_used[cell_index] = self.max_output_bytes
        return None

    def _make_scratch(self, resources):
        """``base/work`` (kernel cwd, a copy of the submission) and ``base/conn``, private to the run."""
        drop = sandbox.privilege_drop_active(self.sandbox_user)
        tag = sandbox.tag_gid() if drop else None
        base = tempfile.mkdtemp(prefix="segtutor-kernel-", dir=self.scratch_root or None)
        os.chmod(base, 0o711)
        src = (resources or {}).get("metadata", {}).get("path") or ""
        work = os.path.join(base, "work")
        if src and os.path.isdir(src):
            shutil.copytree(src, work, symlinks=True)
        else:
            os.mkdir(work)
        conn = os.path.join(base, "conn")
        os.mkdir(conn)
        sandbox.prepare_dir(work, tag)
        if tag is not None:
            # the kernel reads its connection file here and, isolated, makes its sockets here
            os.chown(conn, 0, tag)
            os.chmod(conn, 0o2770)
        return base, work, conn, tag

    def create_kernel_manager(self):
        self.km = SandboxKernelManager(kernel_name="python3", config=self.config)
        return self.km

    async def _kill(self, tag):
        try:
            if self.km is not None and self.km.has_kernel:
                await ensure_async(self.km.shutdown_kernel(now=True))
        except Exception:
            pass
        if tag is not None:
            sandbox.kill_tagged(tag)

    async def _async_preprocess(self, nb, resources):
        base, work, conn, tag = self._make_scratch(resources)
        limits = sandbox.Limits(
            memory=sandbox.parse_size(self.memory_limit),
            cpu=int(self.notebook_timeout) + 30,
        )
        user = self.sandbox_user or None
        isolation = _isolation(self.isolate, user, binds=(base,))
        if isolation is not None and len(os.path.join(conn, "k-99999")) >= 100:
            # a Unix socket path this long is refused: keep the loopback network for the kernel
            isolation = sandbox.Isolation(network=True, binds=(base,))
        self.km = self.create_kernel_manager()
        self.km.connection_file = os.path.join(conn, "kernel.json")
        if isolation is not None and not isolation.network:
            # No network inside: kernel and grader talk over Unix sockets in the scratch folder.
            self.km.transport = "ipc"
            self.km.ip = os.path.join(conn, "k")
        self.km.sandbox_gid = tag
        self.km.sandbox_prefix = sandbox.sandbox_command([], limits, user=user, workdir=work, group=tag,
                                                         isolation=isolation)
        deadline = time.monotonic() + self.notebook_timeout
        stopped = None
        report = (resources or {}).setdefault("segtutor", {})
        # The kernel's own stdout/stderr (fd-level writes that bypass the notebook) go to a
        # file the sandbox cannot open by name (mode 0600, in a folder it cannot list);
        # RLIMIT_FSIZE bounds it, the scratch folder ends it.
        kernel_log = os.fdopen(os.open(os.path.join(base, "kernel-output.log"),
                                       os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb")
        try:
            async with self.async_setup_kernel(cwd=work, stdout=kernel_log, stderr=kernel_log):
                msg_id = await ensure_async(self.kc.kernel_info())
                info = await self.async_wait_for_reply(msg_id)
                if info is not None and "language_info" in info["content"]:
                    self.nb.metadata["language_info"] = info["content"]["language_info"]
                number = 0
                for index, cell in enumerate(self.nb.cells):
                    if cell.cell_type != "code":
                        continue
                    number += 1
                    if not cell.source.strip():
                        cell.metadata[RUN_KEY] = {"status": OK}
                        continue
                    if stopped:
                        self._mark_not_run(cell, stopped)
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining < 1:
                        stopped = f"not run: the notebook's time limit ({self.notebook_timeout} s) was reached"
                        self._mark_not_run(cell, stopped)
                        continue
                    by_notebook = remaining < self.cell_timeout
                    self._current_timeout = max(1, int(min(self.cell_timeout, remaining)))
                    try:
                        await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1)
                    except CellTimeoutError:
                        await self._kill(tag)
                        limit = (f"the notebook's time limit ({self.notebook_timeout} s)" if by_notebook
                                 else f"the time limit of {self.cell_timeout} s per cell")
                        why = f"this cell was stopped: it ran past {limit} (an infinite loop?)"
                        cell.outputs.append(_error_output("CellTimeoutError", why))
                        cell.metadata[RUN_KEY] = {"status": TIMED_OUT, "reason": why}
                        stopped = f"not run: the kernel was stopped at code cell {number} ({limit})"
                        report["stopped"] = stopped
                        continue
                    except DeadKernelError:
                        await self._kill(tag)
                        why = ("the kernel died while running this cell (os._exit, a crash, "
                               "or the memory limit)")
                        cell.outputs.append(_error_output("DeadKernelError", why))
                        cell.metadata[RUN_KEY] = {"status": DIED, "reason": why}
                        stopped = f"not run: the kernel died at code cell {number}"
                        report["stopped"] = stopped
                        continue
                    has_error = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
                    cell.metadata[RUN_KEY] = {"status": ERROR if has_error else OK}
                # (no widget state: nothing in a graded notebook needs it, and it is the kernel's to forge)
        except Exception as exc:  # the kernel could not start, or the client broke down
            why = f"not run: the kernel failed ({type(exc).__name__}: {str(exc)[:300]})"
            self.log.error("%s", why)
            report.setdefault("stopped", why)
            report["kernel_failed"] = True  # the grader's problem, not the student's: retried next run
            for cell in self.nb.cells:
                if cell.cell_type == "code" and RUN_KEY not in cell.metadata:
                    self._mark_not_run(cell, why)
        finally:
            await self._kill(tag)
            kernel_log.close()
            shutil.rmtree(base, ignore_errors=True)
            self.log.info("kernel run: %.2f s", time.monotonic() - (deadline - self.notebook_timeout))
        return self.nb, self.resources

    @staticmethod
    def _mark_not_run(cell, why):
        cell.outputs = [_error_output("CellNotRun", why)]
        cell.execution_count = None
        cell.metadata[RUN_KEY] = {"status": NOT_RUN, "reason": why}


# -- clean-room verdicts ------------------------------------------------------------------


class CleanroomGrades(NbGraderPreprocessor):
    """Replace the outputs of ``exercises.check`` grade cells by clean-room verdicts.

    Also collects, in ``resources["segtutor"]["cells"]``, a status and a readable
    reason for every grade cell.
    """

    cell_timeout = Integer(60).tag(config=True)
    memory_limit = Unicode("2G").tag(config=True)
    sandbox_user = Unicode("nobody", allow_none=True).tag(config=True)
    scratch_root = Unicode("").tag(config=True)
    isolate = Bool(True).tag(config=True)
    startup_allowance = Integer(15, help="extra seconds for the clean process to start").tag(config=True)

    def preprocess(self, nb, resources):
        notebook_id = resources["nbgrader"]["notebook"]
        assignment_id = resources["nbgrader"]["assignment"]
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            sources = {c.name: c.source for c in gb.find_notebook(notebook_id, assignment_id).source_cells}
        code_cells = [c.source for c in nb.cells if c.cell_type == "code"]
        limits = sandbox.Limits(memory=sandbox.parse_size(self.memory_limit), cpu=int(self.cell_timeout) + 30)
        prelude = cleanroom.import_prelude(list(sources.values()))
        user = self.sandbox_user or None
        launch = sandbox.sandboxed_launch(limits, user, server=_fork_server(prelude),
                                          isolation=_isolation(self.isolate, user))
        report = resources.setdefault("segtutor", {}).setdefault("cells", {})
        for cell in nb.cells:
            run = cell.metadata.pop(RUN_KEY, None)
            if not nbutils.is_grade(cell):
                continue
            grade_id = cell.metadata.nbgrader["grade_id"]
            source = sources.get(grade_id, cell.source)
            calls = cleanroom.parse_check_calls(source) if cell.cell_type == "code" else []
            entry = {"exercise": " + ".join(c.exercise_id for c in calls)}
            report[grade_id] = entry
            if cell.cell_type != "code":
                entry.update(status="manual", reason="graded by hand")
                continue
            if run is None:
                run = {"status": NOT_RUN, "reason": "not run"}
                cell.outputs = [_error_output("CellNotRun", "not run")]
            if run["status"] in (NOT_RUN, TIMED_OUT, DIED):
                entry.update(status=run["status"], reason=run.get("reason", run["status"]))
                continue
            if not calls:
                failed = any(o.get("output_type") == "error" for o in cell.outputs)
                entry.update(status="failed" if failed else "passed",
                             reason=_first_error(cell) if failed else "")
                continue
            verdicts = []
            for call in calls:
                workdir = tempfile.mkdtemp(prefix="segtutor-check-", dir=self.scratch_root or None)
                started = time.monotonic()
                try:
                    verdicts.append(cleanroom.grade_check(
                        call, code_cells, launch=launch,
                        timeout=self.cell_timeout + self.startup_allowance, workdir=workdir))
                except Exception as exc:  # a bug here must not be a free pass
                    self.log.error("clean-room check %s failed: %s", call, exc)
                    verdicts.append(cleanroom.failed_verdict(call, 1, f"the grader could not check it ({exc})"))
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                self.log.info("clean-room check of %s: %s in %.2f s", call.exercise_id,
                              "passed" if verdicts[-1].passed else "failed", time.monotonic() - started)
            messages = [v.message() for v in verdicts]
            if all(v.passed for v in verdicts):
                cell.outputs = [_stream_output("\n".join(messages) + "\n")]
                entry.update(status="passed", reason="")
            else:
                not_done = all(v.not_done or v.passed for v in verdicts)
                ename = "ExerciseNotDone" if not_done else "ExerciseFailed"
                text = "\n".join(m for v, m in zip(verdicts, messages) if not v.passed)
                cell.outputs = [_error_output(ename, text)]
                entry.update(status="not done" if not_done else "failed", reason=_one_line(text))
        return nb, resources


def _isolation(wanted: bool, user, binds=()):
    """The private view for a sandboxed run, or None when not wanted or not possible here."""
    if not wanted or sandbox.isolation_problem(user) is not None:
        return None
    return sandbox.Isolation(binds=tuple(binds))


_SERVERS: dict = {}


def close_fork_servers() -> None:
    """Stop this process's fork servers (a worker calls it before it exits)."""
    for server in _SERVERS.values():
        server.close()
    _SERVERS.clear()


def _fork_server(prelude: str):
    """This worker's fork server preloaded with the instructor's imports (None if it cannot start)."""
    if os.environ.get("SEGTUTOR_NO_FORK_SERVER"):
        return None
    server = _SERVERS.get(prelude)
    if server is None or server.proc is None or server.proc.poll() is not None:
        for old in _SERVERS.values():
            old.close()
        _SERVERS.clear()
        try:
            server = _SERVERS[prelude] = sandbox.ForkServer(prelude)
        except Exception:
            return None
    return server


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_error(cell) -> str:
    for out in cell.outputs:
        if out.get("output_type") == "error":
            return _one_line(f"{out.get('ename')}: {out.get('evalue')}")
    return ""


# -- removing active content ---------------------------------------------------------------


class SanitizeOutputs(NbGraderPreprocessor):
    """Remove active content from the autograded notebook (:func:`segtutor.grading.safehtml.sanitize_notebook`).

    Runs before the notebook is written, so the HTML feedback and nbgrader's
    formgrader both render the cleaned version.
    """

    def preprocess(self, nb, resources):
        found = safehtml.sanitize_notebook(nb)
        if found:
            shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
            _notes(resources).append(f"active content removed for the feedback: {shown}")
        return nb, resources


# -- gradebook rows without SQLAlchemy warnings ------------------------------------------------


def ensure_submission(gb, assignment: str, student: str):
    """The gradebook's submission of ``student`` for ``assignment``, created if missing.

    nbgrader's ``add_submission`` builds the submission's rows before adding them
    to the session, which SQLAlchemy 2 answers with "not in session" warnings on
    every new student; here each row joins the session before it is linked.
    """
    from nbgrader.api import Comment, Grade, SubmittedAssignment, SubmittedNotebook

    try:
        return gb.find_submission(assignment, student)
    except MissingEntry:
        pass
    db = gb.db
    with db.no_autoflush:
        assignment_row = gb.find_assignment(assignment)
        student_row = gb.find_student(student)
        submission = SubmittedAssignment()
        db.add(submission)
        submission.assignment = assignment_row
        submission.student = student_row
        for notebook in assignment_row.notebooks:
            nb = SubmittedNotebook()
            db.add(nb)
            nb.notebook = notebook
            nb.assignment = submission
            for grade_cell in notebook.grade_cells:
                row = Grade(cell_id=grade_cell.id)
                db.add(row)
                row.notebook = nb
            for cell in list(notebook.solution_cells) + list(notebook.task_cells):
                row = Comment(cell_id=cell.id)
                db.add(row)
                row.notebook = nb
            for task_cell in notebook.task_cells:
                row = Grade(cell_id=task_cell.id)
                db.add(row)
                row.notebook = nb
    db.commit()
    return submission


# -- the converters --------------------------------------------------------------------------


def is_valid_notebook(path: str) -> bool:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return False
    return isinstance(nb.get("cells"), list) and nb.get("nbformat") == 4


class _LiteralNotebooks:
    """nbgrader's ``init_notebooks`` without globbing: the student id is a name, not a pattern.

    nbgrader finds a student's notebooks with ``glob.glob`` on a path holding
    the student id, so a folder named ``alice[1]`` finds nothing and ``*``
    finds everyone. Here the folder is looked up literally, and only regular
    ``.ipynb`` files in it are taken (no links).
    """

    def init_notebooks(self):
        from nbgrader.converters.base import NbGraderException

        self.assignments = {}
        self.notebooks = []
        folder = self._format_source(self.coursedir.assignment_id, self.coursedir.student_id)
        try:
            st = os.lstat(folder)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            found = []
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if name.endswith(".ipynb") and stat.S_ISREG(os.lstat(path).st_mode):
                    found.append(path)
            if found:
                self.assignments[folder] = found
        if not self.assignments:
            msg = f"No notebooks were found in {folder}"
            self.log.error(msg)
            raise NbGraderException(msg)


class GradebookAutograde(_LiteralNotebooks, Autograde):
    """nbgrader's Autograde with the gradebook writes under a file lock, skipping broken notebooks.

    ``reports[notebook]`` collects, per notebook, what the preprocessors found:
    cell statuses and reasons, whether the kernel stopped, and notes.
    """

    invalid_notebooks = List([])
    reports = Dict({})

    sanitize_preprocessors = List([
        ClearOutput, ReconcileCells, OverwriteKernelspec, RobustOverwriteCells, CheckCellMetadata,
    ]).tag(config=True)
    autograde_preprocessors = List([
        SandboxedExecute, CleanroomGrades, SanitizeOutputs, AcquireGradebookLock, IgnorePattern,
        ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]).tag(config=True)

    def init_notebooks(self):
        super().init_notebooks()
        self.invalid_notebooks = []
        for assignment, notebooks in list(self.assignments.items()):
            good = [nb for nb in notebooks if is_valid_notebook(nb)]
            self.invalid_notebooks += [nb for nb in notebooks if nb not in good]
            self.assignments[assignment] = good

    def init_assignment(self, assignment_id, student_id):
        with gradebook_lock(self.coursedir.root):
            with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
                gb.update_or_create_student(student_id)
                ensure_submission(gb, assignment_id, student_id)
            super().init_assignment(assignment_id, student_id)

    def _convert(self, notebook_filename):
        resources = self.init_single_notebook_resources(notebook_filename)
        output, resources = self.exporter.from_filename(notebook_filename, resources=resources)
        self.write_single_notebook(output, resources)
        return resources

    def convert_single_notebook(self, notebook_filename):
        self.log.info("Sanitizing %s", notebook_filename)
        self._sanitizing = True
        self._init_preprocessors()
        with gradebook_lock(self.coursedir.root):
            sanitized = self._convert(notebook_filename)
        notes = list(sanitized.get("segtutor", {}).get("notes", []))
        notebook_filename = os.path.join(self.writer.build_directory, os.path.basename(notebook_filename))
        self.log.info("Autograding %s", notebook_filename)
        self._sanitizing = False
        self._init_preprocessors()
        try:
            with nbutils.setenv(NBGRADER_EXECUTION="autograde"):
                resources = self._convert(notebook_filename)
            report = resources.get("segtutor", {})
            report["notes"] = notes + list(report.get("notes", []))
            self.reports[resources["nbgrader"]["notebook"]] = report
        finally:
            LOCK.release()
            self._sanitizing = True

    def convert_notebooks(self):
        try:
            super().convert_notebooks()
        finally:
            LOCK.release()


class LiteralFeedback(_LiteralNotebooks, GenerateFeedback):
    """nbgrader's GenerateFeedback, finding the student's autograded notebooks literally."""
