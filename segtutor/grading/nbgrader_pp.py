"""nbgrader plumbing for :mod:`segtutor.grading.course`: sandboxed execution and clean-room grades.

Importing this module imports nbgrader (slow, about two seconds): only the
grading worker and the release step do.

Autograde here is nbgrader's ``Autograde`` converter with these changes:

* sanitising (``OverwriteCells``) restores deleted grade cells
  (``add_missing_cells``), also when the cells around them were deleted too;
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
* :class:`GradebookAutograde` serialises the parts that write the gradebook
  (a file lock), so several workers can grade at once on one sqlite file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import tempfile
import time

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.client import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat.notebooknode import NotebookNode
from traitlets import Dict, Integer, List, Unicode

from nbgrader import utils as nbutils
from nbgrader.api import Gradebook
from nbgrader.converters import Autograde
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    Execute,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)

from . import cleanroom, sandbox

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


class RobustOverwriteCells(OverwriteCells):
    """``OverwriteCells`` whose restoring of deleted grade cells survives deleted neighbours.

    nbgrader puts a missing grade cell after the previous grade or solution cell
    of the source notebook and fails with ``KeyError`` when that one is missing
    too; this version falls back to the nearest earlier one that is present, or
    to the top of the notebook.
    """

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
            self.log.warning("Missing grade cell %s encountered, adding it back", grade_cell.name)
            idx = order_of.get(grade_cell.name, 0)
            source_cell = source_cells[idx]
            new_cell = nbformat.from_dict(self.missing_cell_transform(
                source_cell, grade_cell.max_score, is_solution=grade_cell.name in solution_ids))
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
            os.chown(conn, 0, tag)
            os.chmod(conn, 0o2750)
        return base, work, conn, tag

    def create_kernel_manager(self):
        self.km = SandboxKernelManager(kernel_name="python3", config=self.config)
        return self.km

    async def _kill(self, tag):
        try:
            if self.km is not None and self.km.has_kernel:
                await ensure_async(self.km._async_kill_kernel())
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
        self.km = self.create_kernel_manager()
        self.km.connection_file = os.path.join(conn, "kernel.json")
        self.km.sandbox_gid = tag
        self.km.sandbox_prefix = sandbox.sandbox_command([], limits, user=user, workdir=work, group=tag)
        deadline = time.monotonic() + self.notebook_timeout
        stopped = None
        report = (resources or {}).setdefault("segtutor", {})
        # The kernel's own stdout/stderr (fd-level writes that bypass the notebook) go to a
        # file the sandbox cannot open by name; RLIMIT_FSIZE bounds it, the scratch folder ends it.
        kernel_log = open(os.path.join(base, "kernel-output.log"), "wb")
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
                self.set_widgets_metadata()
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
    startup_allowance = Integer(15, help="extra seconds for the clean process to start").tag(config=True)

    def preprocess(self, nb, resources):
        notebook_id = resources["nbgrader"]["notebook"]
        assignment_id = resources["nbgrader"]["assignment"]
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            sources = {c.name: c.source for c in gb.find_notebook(notebook_id, assignment_id).source_cells}
        code_cells = [c.source for c in nb.cells if c.cell_type == "code"]
        limits = sandbox.Limits(memory=sandbox.parse_size(self.memory_limit), cpu=int(self.cell_timeout) + 30)
        prelude = cleanroom.import_prelude(list(sources.values()))
        launch = sandbox.sandboxed_launch(limits, self.sandbox_user or None, server=_fork_server(prelude))
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
                    verdicts.append(cleanroom._failed(call, 1, f"the grader could not check it ({exc})"))
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


# -- the converter -------------------------------------------------------------------------


def is_valid_notebook(path: str) -> bool:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return False
    return isinstance(nb.get("cells"), list) and nb.get("nbformat") == 4


class GradebookAutograde(Autograde):
    """nbgrader's Autograde with the gradebook writes under a file lock, skipping broken notebooks."""

    invalid_notebooks = List([])
    reports = Dict({})

    sanitize_preprocessors = List([
        ClearOutput, DeduplicateIds, OverwriteKernelspec, RobustOverwriteCells, CheckCellMetadata,
    ]).tag(config=True)
    autograde_preprocessors = List([
        SandboxedExecute, CleanroomGrades, AcquireGradebookLock, IgnorePattern,
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
            self._convert(notebook_filename)
        notebook_filename = os.path.join(self.writer.build_directory, os.path.basename(notebook_filename))
        self.log.info("Autograding %s", notebook_filename)
        self._sanitizing = False
        self._init_preprocessors()
        try:
            with nbutils.setenv(NBGRADER_EXECUTION="autograde"):
                resources = self._convert(notebook_filename)
            self.reports[resources["nbgrader"]["notebook"]] = resources.get("segtutor", {})
        finally:
            LOCK.release()
            self._sanitizing = True

    def convert_notebooks(self):
        try:
            super().convert_notebooks()
        finally:
            LOCK.release()
