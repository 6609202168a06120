"""Grading of hostile submissions, and the sandbox under it.

A small fixture lesson (two real exercises: ``metrics.iou`` worth 2 points and
``metrics.pixel_accuracy`` worth 1) is released, then submitted by synthetic
students, each trying one thing: a wrong answer, an infinite loop, 50 GB, a
deleted test cell, a patched NumPy, ``os._exit``, 100 MB of output... The whole
class is graded once, two at a time, with short time limits; each test then
checks one student's scores and reasons, and that nobody else's changed.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from segtutor import exercises, grading
from segtutor.grading import sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AS_ROOT = os.geteuid() == 0
CELL_TIMEOUT = 5

# -- the fixture lesson --------------------------------------------------------------------


def _nbgrader(grade_id, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


IOU = '''\
import numpy as np


def my_iou(mask_a, mask_b):
    """IoU of two boolean masks of the same shape."""
    ### BEGIN SOLUTION
    a, b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
    ### END SOLUTION
'''

PIXEL_ACCURACY = '''\
import numpy as np


def my_pixel_accuracy(pred, target):
    """Fraction of pixels where pred equals target."""
    ### BEGIN SOLUTION
    return float((np.asarray(pred) == np.asarray(target)).mean())
    ### END SOLUTION
'''


def fixture_lesson():
    cells = [
        new_markdown_cell("# A small graded lesson"),
        new_code_cell("%matplotlib inline\nimport numpy as np\nfrom segtutor import exercises\n",
                      metadata=_nbgrader("setup", locked=True)),
        new_code_cell(IOU, metadata=_nbgrader("iou-solution", solution=True)),
        new_code_cell('exercises.check("metrics.iou", my_iou)\n'
                      "### BEGIN HIDDEN TESTS\n"
                      'exercises.check("metrics.iou", my_iou, hidden_seed=1234)\n'
                      "### END HIDDEN TESTS\n",
                      metadata=_nbgrader("iou-tests", grade=True, locked=True, points=2)),
        new_code_cell('iou = exercises.yours_or_reference("metrics.iou", my_iou)\n'),
        new_code_cell(PIXEL_ACCURACY, metadata=_nbgrader("pixel-accuracy-solution", solution=True)),
        new_code_cell('exercises.check("metrics.pixel_accuracy", my_pixel_accuracy)\n'
                      "### BEGIN HIDDEN TESTS\n"
                      'exercises.check("metrics.pixel_accuracy", my_pixel_accuracy, hidden_seed=99)\n'
                      "### END HIDDEN TESTS\n",
                      metadata=_nbgrader("pixel-accuracy-tests", grade=True, locked=True, points=1)),
        new_code_cell('pixel_accuracy = exercises.yours_or_reference("metrics.pixel_accuracy", my_pixel_accuracy)\n'
                      'print("end of the lesson")\n'),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def _answer(template):
    return "\n".join(line for line in template.splitlines() if "###" not in line) + "\n"


GOOD_IOU, GOOD_PA = _answer(IOU), _answer(PIXEL_ACCURACY)
WRONG_IOU = "def my_iou(mask_a, mask_b):\n    return 0.5\n"
# right except on two empty masks (0/0): partly correct
PARTIAL_IOU = ("import numpy as np\n\ndef my_iou(mask_a, mask_b):\n"
               "    a, b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)\n"
               "    with np.errstate(invalid='ignore'):\n"
               "        return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())\n")
LOOP_PA = "def my_pixel_accuracy(pred, target):\n    while True:\n        pass\n"
HUGE_PA = ("import numpy as np\n\ndef my_pixel_accuracy(pred, target):\n"
           "    scratch = np.ones(50 * 2**30 // 8)  # 50 GB\n"
           "    return float((np.asarray(pred) == np.asarray(target)).mean())\n")


def _set_solution(nb, grade_id, source):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
            return nb
    raise KeyError(grade_id)


def _insert_after(nb, index_of, source):
    """Insert a plain code cell after the cell ``index_of`` (a grade_id or an index)."""
    if isinstance(index_of, str):
        index_of = next(i for i, c in enumerate(nb.cells)
                        if c.metadata.get("nbgrader", {}).get("grade_id") == index_of)
    nb.cells.insert(index_of + 1, new_code_cell(source))
    return nb


def _after_iou(nb):
    """Index of the yours_or_reference cell that follows the IoU test cell."""
    return next(i for i, c in enumerate(nb.cells) if "yours_or_reference(\"metrics.iou\"" in c.source)


INTRUDER = '''\
import os, subprocess, sys
attempts = {TARGETS!r}
print("uid", os.getuid(), "gid", os.getgid(), "groups", os.getgroups())
for path in attempts:
    try:
        with open(path, "a") as fh:
            fh.write("tampered")
        print("WROTE", path)
    except OSError as exc:
        print("refused", type(exc).__name__, path)
try:
    os.setuid(0)
    print("BECAME ROOT")
except OSError as exc:
    print("refused setuid", type(exc).__name__)
daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
print("daemon", daemon.pid)
'''


def build_class(released_path, course):
    """{student: notebook (or raw bytes for a corrupt one)} for the hostile class."""
    base = nbformat.read(released_path, as_version=4)

    def answered(iou=GOOD_IOU, pa=GOOD_PA):
        nb = copy.deepcopy(base)
        _set_solution(nb, "iou-solution", iou)
        _set_solution(nb, "pixel-accuracy-solution", pa)
        return nb

    subs = {}
    subs["correct"] = answered()
    subs["wrong"] = answered(iou=WRONG_IOU)
    subs["partial"] = answered(iou=PARTIAL_IOU)
    subs["blank"] = copy.deepcopy(base)
    subs["loop_solution"] = answered(pa=LOOP_PA)
    nb = answered()
    subs["loop_toplevel"] = _insert_after(nb, _after_iou(nb), "while True:\n    pass\n")
    nb = answered(pa=HUGE_PA)
    subs["huge_alloc"] = _insert_after(nb, _after_iou(nb), "import numpy as np\nblob = np.ones(50 * 2**30 // 8)\n")
    nb = answered(iou=WRONG_IOU)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "iou-tests":
            cell.source = "pass\n"
    subs["edit_locked"] = nb
    nb = answered()
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "iou-tests"]
    subs["delete_test"] = nb
    nb = answered(iou=WRONG_IOU)
    subs["patch_numpy"] = _insert_after(nb, "setup", textwrap.dedent('''\
        import numpy, numpy.testing
        numpy.allclose = lambda *a, **k: True
        numpy.isclose = lambda *a, **k: True
        numpy.testing.assert_allclose = lambda *a, **k: None
        '''))
    nb = answered(iou=WRONG_IOU)
    subs["patch_exercises"] = _insert_after(nb, "setup", textwrap.dedent('''\
        import segtutor.exercises, segtutor.exercises._core as core
        segtutor.exercises.check = lambda *a, **k: print("all cases match the reference")
        exercises.check = segtutor.exercises.check
        core.compare_results = lambda ex, cases, outcomes: core.Verdict(ex.id, True, len(cases))
        '''))
    nb = answered(iou=WRONG_IOU)
    subs["patch_builtins"] = _insert_after(nb, "setup", textwrap.dedent('''\
        import builtins
        class Harmless(Exception):
            pass
        builtins.AssertionError = Harmless
        get_ipython().showtraceback = lambda *a, **k: None
        '''))
    nb = answered(iou=WRONG_IOU)
    subs["blank_cells"] = _insert_after(nb, "setup", textwrap.dedent('''\
        ip = get_ipython()
        ip.input_transformers_cleanup.append(lambda lines: [])
        '''))
    nb = answered(iou=WRONG_IOU)
    subs["prints_passed"] = _insert_after(nb, "iou-tests", 'print("all tests passed")\nprint("✓ 9 of 9 cases match")\n')
    nb = answered()
    subs["os_exit"] = _insert_after(nb, _after_iou(nb), "import os\nos._exit(0)\n")
    nb = answered()
    subs["sys_exit"] = _insert_after(nb, _after_iou(nb), "import sys\nsys.exit()\n")
    subs["corrupt"] = b'{"cells": [{"cell_type": "code", "source": "trunc'
    nb = answered()
    nb.metadata["kernelspec"] = {"name": "evil-kernel", "display_name": "Evil", "language": "python"}
    subs["other_kernel"] = nb
    nb = answered()
    subs["flood"] = _insert_after(nb, "setup", "for _ in range(1000):\n    print('x' * 100_000)\n")
    targets = [
        os.path.join(course, "gradebook.db"),
        os.path.join(course, "source", "fx", "fx.ipynb"),
        os.path.join(course, "submitted", "correct", "fx", "fx.ipynb"),
        os.path.join(course, "autograded", "correct", "fx", "fx.ipynb"),
        os.path.join(course, "feedback", "correct", "fx", "fx.html"),
        os.path.join(course, "nbgrader_config.py"),
        os.path.join(ROOT, "segtutor", "exercises", "_core.py"),
    ]
    nb = answered()
    subs["intruder"] = _insert_after(nb, "setup", INTRUDER.replace("{TARGETS!r}", repr(targets)))
    return subs, targets


def _digest(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


# -- one graded class for the whole module ------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading")
    lessons = tmp / "lessons"
    lessons.mkdir()
    nbformat.write(fixture_lesson(), str(lessons / "fx.ipynb"))
    course = str(tmp / "course")
    released = grading.release(str(lessons), str(tmp / "release"), course_dir=course)
    assert [os.path.basename(p) for p in released] == ["fx.ipynb"]

    subs, targets = build_class(released[0], course)
    inbox = tmp / "inbox"
    for student, nb in subs.items():
        (inbox / student).mkdir(parents=True)
        path = inbox / student / "fx.ipynb"
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        else:
            nbformat.write(nb, str(path))

    # A first, well-behaved student so that the intruder has real files to aim at.
    first = grading.grade(course, str(inbox), "fx", jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=60,
                          students=["correct"])
    assert first.totals()["correct"][0] == 3
    before = {path: _digest(path) for path in targets}
    nobody_before = _sandboxed_processes(SCRATCH)

    start = time.monotonic()
    result = grading.grade(course, str(inbox), "fx", jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=60,
                           scratch_root=SCRATCH)
    elapsed = time.monotonic() - start
    return {
        "result": result, "course": course, "inbox": str(inbox), "subs": subs, "targets": targets,
        "before": before, "elapsed": elapsed, "nobody_before": nobody_before,
    }


# This module's grading runs put their scratch folders here, so that the processes of *this*
# run can be told from those of any other grading on the machine.
SCRATCH = tempfile.mkdtemp(prefix="segtutor-test-scratch-")
os.chmod(SCRATCH, 0o755)


def _sandboxed_processes(scratch_root):
    """Live processes with a sandbox tag group (see sandbox.tag_gid) whose HOME is under ``scratch_root``."""
    tags = range(sandbox.TAG_BASE, sandbox.TAG_BASE + (1 << 30))
    found = set()
    for pid in sandbox.processes_with_gids(tags):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(b"HOME=" + os.fsencode(scratch_root)) for v in env):
            found.add(pid)
    return found


def _row(result, student, cell):
    return next(r for r in result.rows if r["student"] == student and r["cell"] == cell)


def _scores(result, student):
    return (float(_row(result, student, "iou-tests")["score"]),
            float(_row(result, student, "pixel-accuracy-tests")["score"]))


def _autograded(course, student):
    return nbformat.read(os.path.join(course, "autograded", student, "fx", "fx.ipynb"), as_version=4)


def _all_text(nb):
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + o.get("evalue", ""))
    return "\n".join(out)


# -- the class, student by student ------------------------------------------------------------


def test_csv_lists_every_student(graded):
    result = graded["result"]
    with open(result.csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    students = set(graded["subs"])
    assert {r["student"] for r in rows} == students
    assert len(rows) == 3 * len(students)  # two grade cells and a total each
    assert list(rows[0]) == grading.CSV_FIELDS
    for r in rows:
        assert r["status"], r
    print(f"\ngraded {len(students)} hostile submissions in {graded['elapsed']:.1f} s (2 jobs)")


def test_correct(graded):
    result = graded["result"]
    assert _scores(result, "correct") == (2, 1)
    assert result.totals()["correct"][:3] == (3, 3, "graded")
    assert _row(result, "correct", "iou-tests")["exercise"] == "metrics.iou"
    feedback = os.path.join(graded["course"], "feedback", "correct", "fx", "fx.html")
    assert os.path.exists(feedback)


def test_wrong(graded):
    result = graded["result"]
    assert _scores(result, "wrong") == (0, 1)
    row = _row(result, "wrong", "iou-tests")
    assert row["status"] == "failed"
    assert "differ from the reference" in row["reason"] and "expected" in row["reason"]


def test_partly_correct(graded):
    result = graded["result"]
    assert _scores(result, "partial") == (0, 1)
    row = _row(result, "partial", "iou-tests")
    assert row["status"] == "failed"
    n_cases = len(exercises.get("metrics.iou").cases(1234))
    assert f"1 of {n_cases} cases differ" in row["reason"] and "both empty" in row["reason"]


def test_not_done(graded):
    result = graded["result"]
    assert _scores(result, "blank") == (0, 0)
    assert _row(result, "blank", "iou-tests")["status"] == "not done"
    assert "not done yet" in _row(result, "blank", "iou-tests")["reason"]


def test_infinite_loop_in_solution(graded):
    result = graded["result"]
    assert _scores(result, "loop_solution") == (2, 0)
    row = _row(result, "loop_solution", "pixel-accuracy-tests")
    assert row["status"] == "timed out"
    assert f"time limit of {CELL_TIMEOUT} s" in row["reason"]


def test_infinite_loop_at_top_level(graded):
    result = graded["result"]
    assert _scores(result, "loop_toplevel") == (2, 0)
    row = _row(result, "loop_toplevel", "pixel-accuracy-tests")
    assert row["status"] == "not run"
    assert "kernel was stopped" in row["reason"]
    assert result.totals()["loop_toplevel"][2] == "stopped"


def test_50_gb_allocation(graded):
    result = graded["result"]
    assert _scores(result, "huge_alloc") == (2, 0)
    row = _row(result, "huge_alloc", "pixel-accuracy-tests")
    assert row["status"] == "failed" and "MemoryError" in row["reason"]
    # the top-level allocation failed in the kernel, which lived on
    assert "MemoryError" in _all_text(_autograded(graded["course"], "huge_alloc"))


def test_edited_locked_test_cell(graded):
    result = graded["result"]
    assert _scores(result, "edit_locked") == (0, 1)
    nb = _autograded(graded["course"], "edit_locked")
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "iou-tests")
    assert "exercises.check" in cell.source and "hidden_seed=1234" in cell.source


def test_deleted_test_cell_comes_back(graded):
    result = graded["result"]
    assert _scores(result, "delete_test") == (2, 1)
    nb = _autograded(graded["course"], "delete_test")
    assert any(c.metadata.get("nbgrader", {}).get("grade_id") == "iou-tests" for c in nb.cells)


@pytest.mark.parametrize("student", ["patch_numpy", "patch_exercises", "patch_builtins", "blank_cells",
                                     "prints_passed"])
def test_tampering_in_the_kernel_changes_nothing(graded, student):
    result = graded["result"]
    assert _scores(result, student) == (0, 1), student
    row = _row(result, student, "iou-tests")
    assert row["status"] == "failed" and "differ from the reference" in row["reason"]


def test_os_exit(graded):
    result = graded["result"]
    assert _scores(result, "os_exit") == (2, 0)
    row = _row(result, "os_exit", "pixel-accuracy-tests")
    assert row["status"] == "not run" and "kernel died" in row["reason"]


def test_sys_exit(graded):
    result = graded["result"]
    assert _scores(result, "sys_exit") == (2, 1)


def test_corrupt_notebook(graded):
    result = graded["result"]
    assert _scores(result, "corrupt") == (0, 0)
    score, maximum, status, reason = result.totals()["corrupt"]
    assert (score, maximum, status) == (0, 3, "invalid")
    assert "not a valid notebook" in reason
    assert "not a valid notebook" in _row(result, "corrupt", "iou-tests")["reason"]


def test_other_kernel_name(graded):
    assert _scores(graded["result"], "other_kernel") == (2, 1)
    nb = _autograded(graded["course"], "other_kernel")
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_100_mb_of_output(graded):
    assert _scores(graded["result"], "flood") == (2, 1)
    path = os.path.join(graded["course"], "autograded", "flood", "fx", "fx.ipynb")
    assert os.path.getsize(path) < 5 * 2**20
    assert "output truncated" in _all_text(_autograded(graded["course"], "flood"))


@pytest.mark.skipif(not AS_ROOT, reason="privilege drop needs root")
def test_student_code_runs_unprivileged_and_cannot_write(graded):
    result = graded["result"]
    assert _scores(result, "intruder") == (2, 1)
    text = _all_text(_autograded(graded["course"], "intruder"))
    nobody = pwd.getpwnam("nobody").pw_uid
    assert f"uid {nobody} " in text and "groups []" in text
    assert "WROTE" not in text and "BECAME ROOT" not in text
    assert text.count("refused PermissionError") == len(graded["targets"])
    for path in graded["targets"]:
        if path.endswith("gradebook.db"):  # grading the others changed it; the intruder did not
            with open(path, "rb") as fh:
                assert not fh.read().endswith(b"tampered")
        else:
            assert _digest(path) == graded["before"][path], path
    # the background process it started did not outlive its kernel
    daemon = int(text.split("daemon ")[1].split()[0])
    assert not os.path.exists(f"/proc/{daemon}") or open(f"/proc/{daemon}/status").read().find("State:\tZ") >= 0
    # nothing of this run's sandboxes is left (processes carrying a sandbox tag group that
    # were not there before; other processes of the sandbox user are none of our business)
    assert _sandboxed_processes(SCRATCH) <= graded["nobody_before"]


def test_other_students_untouched(graded):
    """The hostile students' neighbours keep their grades: the well-behaved ones are exact."""
    result = graded["result"]
    for student in ("correct", "sys_exit", "other_kernel", "flood", "delete_test"):
        assert result.totals()[student][0] == 3, student


def test_rerun_is_idempotent_and_keeps_manual_grades(graded):
    course, inbox = graded["course"], graded["inbox"]
    first = graded["result"]
    with open(first.csv_path, "rb") as fh:
        before = fh.read()
    again = grading.grade(course, inbox, "fx", jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=60)
    assert again.graded == [] and sorted(again.skipped) == sorted(graded["subs"])
    with open(again.csv_path, "rb") as fh:
        assert fh.read() == before

    # an instructor's manual grade survives regrading
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db", "segtutor") as gb:
        grade = gb.find_grade("iou-tests", "fx", "fx", "wrong")
        grade.manual_score = 1.5
        gb.db.commit()
    third = grading.grade(course, inbox, "fx", jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=60,
                          force=True, students=["wrong"])
    assert third.graded == ["wrong"]
    row = _row(third, "wrong", "iou-tests")
    assert float(row["score"]) == 1.5 and row["status"] == "manual"
    assert "autograder: 0" in row["reason"]
    assert third.totals()["correct"] == first.totals()["correct"]


# -- the sandbox on its own --------------------------------------------------------------------


@pytest.fixture
def scratch():
    """A folder the sandbox user can reach (pytest's tmp_path is private to root)."""
    import tempfile
    from pathlib import Path

    base = tempfile.mkdtemp(prefix="segtutor-test-")
    os.chmod(base, 0o711)
    yield Path(base)
    shutil.rmtree(base, ignore_errors=True)


def _sandboxed(code, tmp_path, *extra, user="nobody"):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    tag = sandbox.tag_gid() if sandbox.privilege_drop_active(user) else None
    sandbox.prepare_dir(str(work), tag)
    cmd = sandbox.sandbox_command([sys.executable, "-c", code], sandbox.Limits(memory=512 * 2**20, cpu=20),
                                  user=user, workdir=str(work), group=tag)
    cmd[cmd.index("--"):cmd.index("--")] = list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=sandbox.env_with_pythonpath())


def test_sandbox_limits(scratch):
    code = textwrap.dedent('''\
        import os, resource, numpy as np
        print("data", resource.getrlimit(resource.RLIMIT_DATA)[0])
        print("core", resource.getrlimit(resource.RLIMIT_CORE)[0])
        print("cpu", resource.getrlimit(resource.RLIMIT_CPU)[0])
        print("fsize", resource.getrlimit(resource.RLIMIT_FSIZE)[0])
        print("home", os.environ["HOME"] == os.getcwd() == os.environ["TMPDIR"] == os.environ["MPLCONFIGDIR"])
        print("secret", os.environ.get("SEGTUTOR_TEST_SECRET"))
        try:
            np.ones(1 * 2**30 // 8)
        except MemoryError:
            print("MemoryError")
        import ctypes
        sig = ctypes.c_int()
        ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)
        print("pdeathsig", sig.value)
        ''')
    os.environ["SEGTUTOR_TEST_SECRET"] = "s3cret"
    try:
        proc = _sandboxed(code, scratch, "--fsize", "1M")
    finally:
        del os.environ["SEGTUTOR_TEST_SECRET"]
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"data {512 * 2**20}" in out and "core 0" in out and "cpu 20" in out
    assert f"fsize {2**20}" in out and "home True" in out and "secret None" in out
    assert "MemoryError" in out and "pdeathsig 9" in out


def test_sandbox_50_gb_fails_fast(scratch):
    start = time.monotonic()
    proc = _sandboxed("import numpy as np\ntry:\n    np.ones(50 * 2**30 // 8)\nexcept MemoryError:\n"
                      "    print('MemoryError')\n", scratch)
    assert "MemoryError" in proc.stdout and time.monotonic() - start < 20


@pytest.mark.skipif(not AS_ROOT, reason="privilege drop needs root")
def test_sandbox_drops_privileges(tmp_path, scratch):
    secret = tmp_path / "root-only.txt"
    secret.write_text("secret")
    os.chmod(secret, 0o600)
    code = textwrap.dedent(f'''\
        import os
        print("ids", os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
        for action in (lambda: open({str(secret)!r}).read(), lambda: os.setuid(0),
                       lambda: open("/etc/shadow").read()):
            try:
                action()
                print("ALLOWED")
            except OSError as exc:
                print("refused", type(exc).__name__)
        open("mine.txt", "w").write("ok")
        print("wrote own scratch")
        ''')
    proc = _sandboxed(code, scratch)
    assert proc.returncode == 0, proc.stderr
    nobody = pwd.getpwnam("nobody").pw_uid
    assert f"ids {nobody} {nobody} " in proc.stdout and "[]" in proc.stdout
    assert "ALLOWED" not in proc.stdout and proc.stdout.count("refused") == 3
    assert "wrote own scratch" in proc.stdout


@pytest.mark.skipif(not AS_ROOT, reason="privilege drop needs root")
def test_clear_error_when_interpreter_unreachable(scratch):
    private = scratch / "private"
    private.mkdir()
    os.chmod(private, 0o700)
    python = private / "python3"
    shutil.copy2(os.path.realpath(sys.executable), python)
    with pytest.raises(sandbox.SandboxError) as info:
        sandbox.check_interpreter("nobody", python=str(python))
    message = str(info.value)
    assert str(private) in message and "traversable" in message and "--no-privilege-drop" in message
    assert "SEGTUTOR_RUNTIME_DIR" in message
    # the launcher itself says the same when asked to run it
    proc = subprocess.run(
        sandbox.sandbox_command([str(python), "-c", "print(1)"], sandbox.Limits(), user="nobody",
                                workdir=str(scratch)),
        capture_output=True, text=True, env=sandbox.env_with_pythonpath())
    assert proc.returncode == 126 and "traversable" in proc.stderr


@pytest.mark.skipif(not AS_ROOT, reason="privilege drop needs root")
def test_interpreter_reachable_here_through_the_runtime(monkeypatch):
    """Wherever this suite's Python lives (here: under /root, mode 700), the runtime reaches it."""
    from segtutor.grading import runtime

    monkeypatch.delenv(runtime.ENV_VAR, raising=False)
    rt = runtime.prepare()
    runtime.activate(rt)
    sandbox.check_interpreter("nobody")


def test_tagged_processes_are_swept(scratch):
    if not AS_ROOT:
        pytest.skip("process tags need root")
    work = scratch / "w"
    work.mkdir()
    tag = sandbox.tag_gid()
    sandbox.prepare_dir(str(work), tag)
    code = ("import os, subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
            " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint(p.pid, flush=True)\n")
    cmd = sandbox.sandbox_command([sys.executable, "-c", code], sandbox.Limits(), workdir=str(work), group=tag)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=sandbox.env_with_pythonpath())
    orphan = int(proc.stdout.split()[0])
    assert os.path.exists(f"/proc/{orphan}")
    assert sandbox.kill_tagged(tag) >= 1
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{orphan}") or "State:\tZ" in open(f"/proc/{orphan}/status").read()


def test_parse_size():
    assert sandbox.parse_size("2G") == 2 * 2**30
    assert sandbox.parse_size("512m") == 512 * 2**20
    assert sandbox.parse_size("none") is None
    with pytest.raises(ValueError):
        sandbox.parse_size("lots")


def test_cli_registers_release_and_grade():
    import argparse

    parser = argparse.ArgumentParser(prog="segtutor")
    grading.add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grade", "01_classical", "--jobs", "3", "--cell-timeout", "7", "--no-privilege-drop"])
    assert args.func.__name__ == "_cmd_grade" and args.jobs == 3 and args.cell_timeout == 7
    args = parser.parse_args(["release", "--out", "x"])
    assert args.func.__name__ == "_cmd_release" and args.out == "x"


def test_import_is_light():
    code = "import sys, segtutor.grading, segtutor.grading.sandbox; print('nbgrader' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert out.split() == ["False", "False"]


@pytest.fixture(scope="module")
def fork_server():
    server = sandbox.ForkServer("import numpy as np\nfrom segtutor import exercises")
    yield server
    server.close()


@pytest.mark.parametrize("body, expect", [
    ("a, b = np.asarray(a, bool), np.asarray(b, bool)\n    u = (a | b).sum()\n"
     "    return 1.0 if u == 0 else float((a & b).sum() / u)", "cases match"),
    ("import os\n    os._exit(0)", "exited with code 0"),
    ("while True:\n        pass", "did not finish within 3 s"),
    ("return float(np.ones(50 * 2**30 // 8).sum())", "MemoryError"),
    ("import os\n    return float(os.getuid())", "expected"),
])
def test_fork_server_and_launcher_agree(fork_server, scratch, body, expect):
    """Checks started by the fork server give the verdicts a freshly launched interpreter gives."""
    from segtutor.grading import cleanroom

    call = cleanroom.CheckCall("metrics.iou", "my_iou", 77)
    cells = ["import numpy as np", f"def my_iou(a, b):\n    {body}\n"]
    limits = sandbox.Limits(memory=512 * 2**20)
    messages = []
    for server in (fork_server, None):
        work = scratch / f"check-{len(messages)}"
        work.mkdir()
        launch = sandbox.sandboxed_launch(limits, "nobody", server=server)
        messages.append(cleanroom.grade_check(call, cells, launch=launch, timeout=3, workdir=str(work)).message())
    assert expect in messages[0], messages[0]
    assert messages[0] == messages[1]
