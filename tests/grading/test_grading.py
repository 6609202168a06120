"""Grading of hostile submissions, and the sandbox under it.

A small fixture lesson (two real exercises: ``metrics.iou`` worth 2 points and
``metrics.pixel_accuracy`` worth 1) is released, then submitted by synthetic
students, each trying one thing: a wrong answer, an infinite loop, 50 GB, a
deleted test cell, a patched NumPy, ``os._exit``, 100 MB of output, results
replaced by FIFOs, a zip bomb, JSON nested 200,000 deep, forged grading
metadata, a test cell pasted twice, an nbformat-3 notebook, scripts in the
outputs, links to root-only files, names like ``alice[1]`` and ``=1+2``, a
search for the instructor's files... The whole class is graded once, two at a
time, with short time limits; each test then checks one student's scores and
reasons, and that nobody else's changed. A second, smaller batch grades a fork
bomb, a process killer and a ``/dev/shm`` filler side by side with an honest
neighbour.
"""

from __future__ import annotations

import copy
import contextlib
import csv
import functools
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from html.parser import HTMLParser

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from segtutor import grading, paths
from segtutor.exercises import get
from segtutor.grading import sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AS_ROOT = os.geteuid() == 0
ISOLATED = AS_ROOT and sandbox.isolation_problem("nobody") is None
CELL_TIMEOUT = 5
#: Written into the instructor's solution and hidden tests only: no student may ever read it.
CANARY = "canary-" + uuid.uuid4().hex

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
    # {CANARY}
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


def _rss_mib() -> float:
    """This process's resident memory now (MiB)."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))


def fixture_lesson():
    cells = [
        new_markdown_cell("# A small graded lesson"),
        new_code_cell("%matplotlib inline\nimport numpy as np\nfrom segtutor import exercises\n",
                      metadata=_nbgrader("setup", locked=True)),
        new_code_cell(IOU.replace("{CANARY}", CANARY), metadata=_nbgrader("iou-solution", solution=True)),
        new_code_cell('exercises.check("metrics.iou", my_iou)\n'
                      "### BEGIN HIDDEN TESTS\n"
                      'exercises.check("metrics.iou", my_iou, hidden_seed=1234)\n'
                      f"# {CANARY}\n"
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


def _answering(released_path):
    base = nbformat.read(released_path, as_version=4)

    def answered(iou=GOOD_IOU, pa=GOOD_PA):
        nb = copy.deepcopy(base)
        _set_solution(nb, "iou-solution", iou)
        _set_solution(nb, "pixel-accuracy-solution", pa)
        return nb

    return base, answered


def build_class(released_path, course):
    """{student: notebook (or raw bytes for a corrupt one)} for the hostile class."""
    base, answered = _answering(released_path)

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
    if AS_ROOT:
        # Only with the privilege drop: without it student code runs with the grader's rights
        # (docs/grading.md, threat model) and would really write into the course and the checkout.
        nb = answered()
        subs["intruder"] = _insert_after(nb, "setup", INTRUDER.replace("{TARGETS!r}", repr(targets)))
    return subs, targets


# -- students who go after the grader's own process, its reading and its writing --------------

# Each replaces how the clean room's runner writes its results (it calls json.dump and
# numpy.savez): the answer itself is right, what reaches the grader is hostile.
FIFO_IOU = GOOD_IOU + textwrap.dedent('''
    import json as _json, os as _os

    def _fifo_dump(obj, fh, *args, **kwargs):
        # results.json, results.npz and stderr.txt become FIFOs: a reader that opens one blocks
        for name in ("results.json", "results.npz", "stderr.txt"):
            try:
                _os.remove(name)
            except OSError:
                pass
            _os.mkfifo(name)

    _json.dump = _fifo_dump
    ''')

BOMB_IOU = GOOD_IOU + textwrap.dedent('''
    import io as _io, struct as _struct, zlib as _zlib

    def _zip_bomb(path, *args, **kwargs):
        """A 1 MB results.npz whose one array decompresses to 1 GiB of zeros."""
        n_chunks, chunk = 64, 2**24
        head = _io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False,
                                                    "shape": (n_chunks * chunk,)})
        head = head.getvalue()
        z = _zlib.compressobj(9, _zlib.DEFLATED, -15)
        zeros = bytes(chunk)
        start = z.compress(head) + z.flush(_zlib.Z_FULL_FLUSH)
        block = z.compress(zeros) + z.flush(_zlib.Z_FULL_FLUSH)
        data = start + block * n_chunks + z.flush()
        crc = _zlib.crc32(head)
        for _ in range(n_chunks):
            crc = _zlib.crc32(zeros, crc)
        name, total = b"a0.npy", len(head) + n_chunks * chunk
        local = _struct.pack("<4s5H3I2H", b"PK\\x03\\x04", 20, 0, 8, 0, 0, crc, len(data), total, len(name), 0) + name
        central = _struct.pack("<4s6H3I5H2I", b"PK\\x01\\x02", 20, 20, 0, 8, 0, 0, crc, len(data), total,
                               len(name), 0, 0, 0, 0, 0, 0) + name
        end = _struct.pack("<4s4H2IH", b"PK\\x05\\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
        with open(path, "wb") as fh:
            fh.write(local + data + central + end)

    np.savez = _zip_bomb
    ''')

DEEP_JSON_IOU = GOOD_IOU + textwrap.dedent('''
    import json as _json

    def _deep_dump(obj, fh, *args, **kwargs):
        fh.write("[" * 200_000 + "]" * 200_000)  # 400 kB, nested 200,000 deep

    _json.dump = _deep_dump
    ''')

ACTIVE_OUTPUT = textwrap.dedent('''
    import sys
    from IPython.display import HTML, SVG, Javascript, Markdown, display
    display(HTML('<b>bold</b><script>window.PWNED = 1</script><img src=x onerror="window.PWNED = 2">'))
    display(Javascript("window.PWNED = 3"))
    display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>window.PWNED = 4</script></svg>'))
    display(Markdown("[click me](javascript:window.PWNED=5)"))
    get_ipython().display_pub.publish(
        {"text/plain": "a picture", "image/png": '" onerror="window.PWNED = 6'},
        metadata={"image/png": {"width": '1 onerror="window.PWNED = 7"'}})
    sys.stdout.name = 'stdout" onmouseover="window.PWNED = 8'
    print("a stream")
    sys.stdout.name = "stdout"
    ''')
ACTIVE_MARKDOWN = ('My answer <img src=x onerror="window.PWNED = 9"> and '
                   '[a link](javascript:window.PWNED=10) <iframe src="javascript:window.PWNED=11"></iframe>')

SNOOP = textwrap.dedent('''
    import glob, os, stat
    found = []
    for pattern in {PATTERNS!r}:
        for path in glob.glob(pattern, recursive=True):
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
                secret = b"BEGIN SOLUTION" in data or b"hidden_seed" in data
                found.append(path + (" (solutions)" if secret else ""))
            except OSError as exc:
                found.append(f"{path}: refused ({type(exc).__name__})")
    print("FOUND", found)
    print("ROOT", sorted(os.listdir("/")))
    print("TMP", sorted(os.listdir("/tmp")))
    print("SHM", sorted(os.listdir("/dev/shm")))
    log = os.path.join(os.path.dirname(os.getcwd()), "kernel-output.log")
    try:
        print("LOGMODE", oct(stat.S_IMODE(os.stat(log).st_mode)))
        open(log).read()
        print("READ THE KERNEL LOG")
    except OSError as exc:
        print("LOG", type(exc).__name__)
    ''')


def build_hostile_round_two(base, answered, course, lessons_dir):
    """The second round of hostile students: {student: notebook (or raw bytes)}."""
    subs = {}
    subs["fifo_results"] = answered(iou=FIFO_IOU)
    subs["npz_bomb"] = answered(iou=BOMB_IOU)
    subs["deep_json"] = answered(iou=DEEP_JSON_IOU)
    subs["alice[1]"] = answered()
    subs["alice1"] = answered(iou=WRONG_IOU)
    for name in ("=1+2", "@SUM(A1)", "+cmd", "-2"):
        subs[name] = answered()

    nb = answered()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == "iou-solution":
            meta.update(grade=True, points=1000)
    nb.cells.append(new_code_cell("print('bonus')", metadata=_nbgrader("bonus", grade=True, locked=True, points=1000)))
    subs["forged_meta"] = nb

    nb = answered()
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "iou-tests")
    twin = copy.deepcopy(nb.cells[index])
    twin["id"] = "pasted-twice"
    nb.cells.insert(index + 1, twin)
    subs["dup_ids"] = nb

    subs["nbformat3"] = nbformat.writes(nbformat.convert(answered(), 3)).encode()
    subs["nbformat3_empty"] = json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                                          "worksheets": []}).encode()

    nb = answered()
    _insert_after(nb, "iou-tests", ACTIVE_OUTPUT)
    nb.cells.insert(1, new_markdown_cell(ACTIVE_MARKDOWN))
    nb.cells[1].metadata["tags"] = ['x" onclick="window.PWNED = 12']
    subs["html_js"] = nb

    patterns = [os.path.join(ROOT, "lessons", "*.ipynb"), os.path.join(lessons_dir, "*.ipynb"),
                os.path.join(course, "source", "**", "*.ipynb"), "/work/*/lessons/*.ipynb", "/root/**/*.ipynb"]
    nb = answered()
    subs["snoop"] = _insert_after(nb, "setup", SNOOP.replace("{PATTERNS!r}", repr(patterns)))
    return subs


def plant_special_students(tmp, inbox, course, answered):
    """Students whose submission is a link, a FIFO, too many files or too large; -> the root-only marker."""
    secret_dir = tmp / "root-only"
    secret_dir.mkdir()
    os.chmod(secret_dir, 0o700)
    marker = "ROOT-ONLY-" + uuid.uuid4().hex
    secret_nb = answered()
    secret_nb.cells.insert(0, new_markdown_cell(marker))
    (secret_dir / "fx").mkdir()
    nbformat.write(secret_nb, str(secret_dir / "fx" / "fx.ipynb"))
    os.chmod(secret_dir / "fx" / "fx.ipynb", 0o600)
    # <student>/<assignment> is a link to a root-only folder
    (inbox / "link_folder").mkdir()
    os.symlink(secret_dir / "fx", inbox / "link_folder" / "fx")
    # <student>/<assignment>/<notebook> is a link to a root-only notebook
    (inbox / "link_file" / "fx").mkdir(parents=True)
    os.symlink(secret_dir / "fx" / "fx.ipynb", inbox / "link_file" / "fx" / "fx.ipynb")
    # a link put straight into the course (as nbgrader collect might leave one)
    collected = os.path.join(course, "submitted", "collected_link", "fx")
    os.makedirs(collected)
    os.symlink(secret_dir / "fx" / "fx.ipynb", os.path.join(collected, "fx.ipynb"))
    # a FIFO instead of a notebook: importing must not block on it
    (inbox / "fifo_inbox").mkdir()
    os.mkfifo(inbox / "fifo_inbox" / "fx.ipynb")
    # too many files (the class is graded with max_files=50)
    (inbox / "many_files").mkdir()
    nbformat.write(answered(), str(inbox / "many_files" / "fx.ipynb"))
    for i in range(80):
        (inbox / "many_files" / f"data{i:03d}.txt").write_text("x")
    # too large (the class is graded with max_submission_size="2M")
    big = answered()
    big.cells.append(new_markdown_cell("x" * (3 * 2**20)))
    (inbox / "too_big").mkdir()
    nbformat.write(big, str(inbox / "too_big" / "fx.ipynb"))
    # a name that cannot be a student id
    (inbox / "*").mkdir()
    nbformat.write(answered(), str(inbox / "*" / "fx.ipynb"))
    return marker, ["link_folder", "link_file", "collected_link", "fifo_inbox", "many_files", "too_big"]


def _digest(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


# -- one graded class for the whole module ------------------------------------------------


def _release_fixture_lesson(tmp):
    """The fixture lesson, written under ``tmp`` and released into a course; -> (lessons, course, student copy)."""
    lessons = tmp / "lessons"
    lessons.mkdir()
    nbformat.write(fixture_lesson(), str(lessons / "fx.ipynb"))
    course = str(tmp / "course")
    released = grading.release(str(lessons), str(tmp / "release"), course_dir=course)
    assert [os.path.basename(p) for p in released] == ["fx.ipynb"]
    return str(lessons), course, released[0]


#: Submission caps the class is graded with (small, so that the "too big" students are cheap).
LIMITS = {"max_files": 50, "max_submission_size": "2M"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading")
    # The regrade fingerprint hashes the segtutor package; others may be editing the checkout
    # while this module runs, so it hashes a snapshot taken now (test_hardening proves that a
    # change to the package does change the fingerprint).
    snapshot = tmp / "package-snapshot"
    shutil.copytree(os.path.join(ROOT, "segtutor"), snapshot, ignore=shutil.ignore_patterns("__pycache__"))
    patch = pytest.MonkeyPatch()
    patch.setattr(grading.course, "_fingerprint",
                  functools.partial(grading.course._fingerprint, package=str(snapshot)))
    lessons, course, released = _release_fixture_lesson(tmp)
    subs, targets = build_class(released, course)
    _base, answered = _answering(released)
    subs.update(build_hostile_round_two(_base, answered, course, lessons))
    inbox = tmp / "inbox"
    for student, nb in subs.items():
        (inbox / student).mkdir(parents=True)
        path = inbox / student / "fx.ipynb"
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        else:
            nbformat.write(nb, str(path))
    marker, special = plant_special_students(tmp, inbox, course, answered)

    # A first, well-behaved student so that the intruder has real files to aim at.
    first = grading.grade(course, str(inbox), "fx", jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=60,
                          students=["correct"], **LIMITS)
    assert first.totals()["correct"][0] == 3
    before = {path: _digest(path) for path in targets}
    nobody_before = _sandboxed_processes(SCRATCH)

    # The scheduler runs in this (test) process, which earlier tests may have made large: start its
    # high-water mark afresh (Linux: "5" > /proc/self/clear_refs) and remember where it starts.
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    scheduler_start = _rss_mib()
    start = time.monotonic()
    result = grading.grade(course, str(inbox), "fx", jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=60,
                           scratch_root=SCRATCH, **LIMITS)
    elapsed = time.monotonic() - start
    yield {
        "result": result, "course": course, "inbox": str(inbox), "subs": subs, "targets": targets,
        "before": before, "elapsed": elapsed, "nobody_before": nobody_before, "marker": marker,
        "scheduler_start": scheduler_start,
        "students": sorted(set(subs) | set(special)), "lessons": lessons, "tmp": tmp,
    }
    patch.undo()


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


def _csv_name(student):
    return "'" + student if student[:1] in "=+-@" else student


def test_csv_lists_every_student(graded):
    result = graded["result"]
    with open(result.csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    students = set(graded["students"])
    assert {r["student"] for r in rows} == {_csv_name(s) for s in students}
    assert len(rows) == 3 * len(students)  # two grade cells and a total each
    assert list(rows[0]) == grading.CSV_FIELDS
    for r in rows:
        assert r["status"], r


def test_batch_time_and_grader_memory(graded):
    """The whole hostile class finishes within its bound, and the grader's own memory stays small."""
    result, n = graded["result"], len(graded["students"])
    peak = result.peak_rss_mib
    print(f"\ngraded {n} hostile submissions in {graded['elapsed']:.1f} s (2 jobs, shared 2-core machine); "
          f"peak RSS: scheduler {peak['scheduler']} MiB, largest worker {peak['workers']} MiB")
    # a hang (a FIFO read, a never-ready worker) would be stopped only by the per-submission budget
    # of several minutes; honest and hostile submissions alike take seconds each
    assert graded["elapsed"] < 30 * n
    # the zip bomb (1 GiB once inflated) and the 100 MB of output never reached the grader's memory
    assert peak["workers"] is not None and peak["workers"] < 1024
    assert peak["scheduler"] - graded["scheduler_start"] < 1024, (peak, graded["scheduler_start"])


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
    n = len(get("metrics.iou").cases(1234))  # the hidden check (seed 1234) is the one graded
    assert f"1 of {n} cases differ" in row["reason"] and "both empty" in row["reason"]


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
    # a user id of its own (the run's tag), not the shared nobody; no supplementary groups
    uid = int(text.split("uid ")[1].split()[0])
    assert uid >= sandbox.TAG_BASE and uid != pwd.getpwnam("nobody").pw_uid
    assert "groups []" in text
    assert "WROTE" not in text and "BECAME ROOT" not in text
    # every target refused: not writable, or (isolated) not even there
    refused = [line for line in text.splitlines() if line.startswith("refused ") and "setuid" not in line]
    assert len(refused) == len(graded["targets"]), text
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


# -- the second round: the grader's own process, imports, reading and writing ------------------


def _total(result, student):
    return result.totals()[student]


@pytest.mark.parametrize("student, why", [
    ("fifo_results", "not plain files"),
    ("npz_bomb", "compressed members are not accepted"),
    ("deep_json", "not valid JSON (RecursionError)"),
])
def test_hostile_result_files_fail_only_their_check(graded, student, why):
    """FIFOs, a 1 MB npz that inflates to 1 GiB, JSON nested 200,000 deep: that check fails, readably."""
    result = graded["result"]
    assert _scores(result, student) == (0, 1)
    row = _row(result, student, "iou-tests")
    assert row["status"] == "failed" and why in row["reason"], row["reason"]
    assert _total(result, student)[2] == "graded"


def test_names_are_taken_literally(graded):
    """``alice[1]`` is a name, not a glob pattern matching ``alice1``: each gets their own grade."""
    result = graded["result"]
    assert _scores(result, "alice[1]") == (2, 1)
    assert _scores(result, "alice1") == (0, 1)
    assert os.path.exists(os.path.join(graded["course"], "feedback", "alice[1]", "fx", "fx.html"))


def test_formula_like_names_are_escaped_in_the_csv(graded):
    result = graded["result"]
    with open(result.csv_path, newline="") as fh:
        names = {r["student"] for r in csv.DictReader(fh)}
    for name in ("=1+2", "@SUM(A1)", "+cmd", "-2"):
        assert _scores(result, name) == (2, 1)  # graded under their own names
        assert "'" + name in names and name not in names
    with open(result.csv_path, newline="") as fh:
        for row in csv.reader(fh):
            assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in row), row


def test_a_name_that_cannot_be_a_student_id_is_refused_with_a_reason(graded):
    result = graded["result"]
    assert "*" not in result.totals()
    assert any("'*' skipped: not a valid student id" in note and "wildcard" in note for note in result.notes)


def test_forged_grading_metadata_is_graded_as_the_lesson_says(graded):
    result = graded["result"]
    score, maximum, status, reason = _total(result, "forged_meta")
    assert (score, maximum, status) == (3, 3, "graded")
    assert "grading metadata of cell 'iou-solution' was changed" in reason and "points: 1000" in reason
    assert "'bonus'" in reason and "not in the lesson" in reason
    assert {r["cell"] for r in result.rows if r["student"] == "forged_meta"} == {
        "iou-tests", "pixel-accuracy-tests", "TOTAL"}


def test_a_test_cell_pasted_twice(graded):
    score, maximum, status, reason = _total(graded["result"], "dup_ids")
    assert (score, maximum, status) == (3, 3, "graded")
    assert "'iou-tests' appears 2 times" in reason


def test_nbformat_3(graded):
    result = graded["result"]
    score, maximum, status, reason = _total(result, "nbformat3")
    assert (score, maximum, status) == (3, 3, "graded")
    assert "converted from the old notebook format (nbformat 3)" in reason
    score, maximum, status, reason = _total(result, "nbformat3_empty")
    assert (score, maximum, status) == (0, 3, "invalid")
    assert reason == "old notebook format (nbformat 3), no cells found"


class _ActiveContent(HTMLParser):
    """Scripts, event handlers and script URLs in an HTML page, and where "PWNED" appears."""

    def __init__(self):
        super().__init__()
        self.scripts, self.handlers, self.script_urls, self.pwned_in_markup = [], [], [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._in_script = True
            self.scripts.append(dict(attrs).get("src") or dict(attrs).get("type"))
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name))
            if value and value.replace(" ", "").lower().startswith(("javascript:", "data:text")):
                self.script_urls.append((tag, name, value))
            if value and "PWNED" in value:
                self.pwned_in_markup.append((tag, name, value))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and "PWNED" in data:
            self.pwned_in_markup.append(("script", "", data[:80]))


def _active(path):
    parser = _ActiveContent()
    with open(path, encoding="utf-8") as fh:
        parser.feed(fh.read())
    return parser


def test_active_content_never_reaches_the_feedback_or_the_formgrader(graded):
    course = graded["course"]
    result = graded["result"]
    assert _scores(result, "html_js") == (2, 1)
    assert "active content removed for the feedback" in _total(result, "html_js")[3]
    hostile = _active(os.path.join(course, "feedback", "html_js", "fx", "fx.html"))
    honest = _active(os.path.join(course, "feedback", "correct", "fx", "fx.html"))
    # the page's own scripts (MathJax and its configuration) and nothing else
    assert sorted(map(str, hostile.scripts)) == sorted(map(str, honest.scripts))
    assert hostile.handlers == [] and hostile.script_urls == [] and hostile.pwned_in_markup == []
    # the student's text is still there, as text
    with open(os.path.join(course, "feedback", "html_js", "fx", "fx.html"), encoding="utf-8") as fh:
        page = fh.read()
    assert "window.PWNED = 9" in page and "a stream" in page and "<b>bold</b>" in page
    # the autograded notebook (what the formgrader renders) holds no active output either
    nb = _autograded(course, "html_js")
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            assert not set(data) - {"text/plain", "text/html", "image/png", "image/jpeg", "text/latex"}, data
            assert "PWNED" not in data.get("text/html", "")
            assert out.get("name", "stdout") in ("stdout", "stderr")
        assert all("PWNED" not in tag for tag in cell.metadata.get("tags", []))


@pytest.mark.skipif(not ISOLATED, reason="a private view of the machine needs root and Linux namespaces")
def test_student_code_cannot_find_the_instructors_files(graded):
    """The checkout's lessons, the course's source, other runs' /tmp: none of it is there to read."""
    text = _all_text(_autograded(graded["course"], "snoop"))
    assert "FOUND []" in text, text
    root = eval(text.split("ROOT ")[1].splitlines()[0])  # noqa: S307 - our own printout
    allowed = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "sys", "tmp", "usr", "var"}
    # the pretrained-weights cache is shown read-only when it exists (as the grader sets TORCH_HOME)
    torch_home = os.environ.get("TORCH_HOME") or str(paths.weights_dir().parent.parent)
    if os.path.isdir(torch_home):
        allowed.add(os.path.realpath(torch_home).strip(os.sep).split(os.sep)[0])
    assert set(root) <= allowed, root
    tmp = eval(text.split("TMP ")[1].splitlines()[0])  # noqa: S307
    # only the way to its own scratch folder (under this module's SCRATCH, itself in the host's /tmp)
    under = os.path.relpath(os.path.realpath(SCRATCH), "/tmp")
    assert tmp == ([] if under.startswith("..") else [under.split(os.sep)[0]]), tmp
    assert "SHM []" in text
    assert _scores(graded["result"], "snoop") == (2, 1)


@pytest.mark.skipif(not AS_ROOT, reason="the privilege drop needs root")
def test_the_kernel_output_log_is_private(graded):
    text = _all_text(_autograded(graded["course"], "snoop"))
    assert "LOGMODE 0o600" in text and "LOG PermissionError" in text and "READ THE KERNEL LOG" not in text


def test_links_are_never_followed(graded):
    """A linked folder, a linked notebook, a link in submitted/: listed as missing with why; nothing copied."""
    result = graded["result"]
    for student, where in (("link_folder", "link_folder/fx is a symbolic link"),
                           ("link_file", "fx.ipynb not imported: a symbolic link"),
                           ("collected_link", "fx.ipynb: a symbolic link (not followed)")):
        score, maximum, status, reason = _total(result, student)
        assert (score, maximum, status) == (0, 3, "missing"), (student, reason)
        assert where in reason, (student, reason)
    for folder in ("submitted", "autograded", "feedback"):
        for dirpath, _dirs, files in os.walk(os.path.join(graded["course"], folder)):
            for name in files:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):  # the link planted for collected_link: it stays a link
                    assert dirpath.endswith(os.path.join("submitted", "collected_link", "fx")), path
                    continue
                with open(path, "rb") as fh:
                    assert graded["marker"].encode() not in fh.read(), path


def test_a_fifo_in_the_submissions_does_not_block_the_import(graded):
    score, maximum, status, reason = _total(graded["result"], "fifo_inbox")
    assert (score, status) == (0, "missing")
    assert "not a regular file" in reason


def test_submission_caps(graded):
    result = graded["result"]
    score, _maximum, status, reason = _total(result, "many_files")
    assert (score, status) == (3, "graded")  # the notebook is taken first, the files past the cap are not
    assert "more than 50 files" in reason
    score, _maximum, status, reason = _total(result, "too_big")
    assert (score, status) == (0, "missing")
    assert "fx.ipynb not imported: too large" in reason and "2 MiB" in reason


def test_locked_cells_are_compared_with_the_release(graded):
    """An untouched test cell (hidden tests removed at release) is not reported; an edited one is."""
    logs = os.path.join(graded["course"], ".segtutor", "logs")
    with open(os.path.join(logs, "fx", "correct.log")) as fh:
        log = fh.read()
    assert "has changed" not in log and "WARNING" not in log
    assert "locked cell 'iou-tests' was edited" in _total(graded["result"], "edit_locked")[3]
    assert "edited" not in _total(graded["result"], "correct")[3]


def test_the_logs_hold_no_warnings(graded):
    """No SQLAlchemy "not in session", no nbformat missing-id warning, no tracebacks of the grader."""
    logs = os.path.join(graded["course"], ".segtutor", "logs")
    with open(os.path.join(logs, "workers.log")) as fh:
        workers = fh.read()
    for bad in ("SAWarning", "MissingIDFieldWarning", "Traceback", "not in session"):
        assert bad not in workers, workers[-3000:]
    for student in ("correct", "delete_test", "forged_meta", "dup_ids", "nbformat3", "alice[1]"):
        with open(os.path.join(logs, "fx", f"{student}.log")) as fh:
            log = fh.read()
        assert "Warning" not in log and "Traceback" not in log, (student, log[-2000:])


def test_the_workers_files_are_private(graded):
    """Workers create their files with a private umask (077): a student's log is the grader's alone."""
    logs = os.path.join(graded["course"], ".segtutor", "logs", "fx")
    for student in ("correct", "snoop", "=1+2"):
        mode = stat.S_IMODE(os.stat(os.path.join(logs, f"{student}.log")).st_mode)
        assert mode & 0o077 == 0, (student, oct(mode))


# -- neighbours: a fork bomb, a process killer and a /dev/shm filler beside an honest student -------

BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
KILLER = ("import os, signal, time\nfor _ in range(25):\n    try:\n        os.kill(-1, signal.SIGKILL)\n"
          "    except OSError:\n        pass\n    time.sleep(0.1)\nprint('still here')\n")
FILLER = textwrap.dedent('''
    import os
    written = {}
    for folder in ("/dev/shm", "/tmp"):
        with open(os.path.join(folder, "segtutor-filler-marker"), "w") as fh:
            fh.write("left behind")
        n = 0
        try:
            with open(os.path.join(folder, "segtutor-filler.bin"), "wb") as fh:
                while n < 2048:
                    fh.write(b"\\0" * 2**20)
                    n += 1
        except OSError as exc:
            written[folder + " stopped"] = type(exc).__name__
        written[folder] = n
    print("FILLED MiB", written)
    ''')
LOOK_AROUND = ("import os\nprint('UID', os.getuid())\nprint('SHM', sorted(os.listdir('/dev/shm')))\n"
               "print('TMP', sorted(os.listdir('/tmp')))\n")
NAP = "import time\nfor _ in range(6):\n    time.sleep(0.25)\nprint('awake')\n"


@pytest.fixture(scope="module")
def neighbours(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("neighbours")
    _lessons, course, released = _release_fixture_lesson(tmp)
    _base, answered = _answering(released)
    subs = {}
    nb = answered()
    subs["bomb"] = _insert_after(nb, "iou-tests", BOMB)
    nb = answered()
    subs["killer"] = _insert_after(nb, "iou-tests", KILLER)
    nb = answered()
    subs["filler"] = _insert_after(nb, "iou-tests", FILLER)
    nb = answered()
    for cell in (LOOK_AROUND, NAP, NAP, NAP, NAP, NAP, LOOK_AROUND):
        _insert_after(nb, "setup", cell)
    subs["neighbour"] = nb
    inbox = tmp / "inbox"
    for student, nb in subs.items():
        (inbox / student).mkdir(parents=True)
        nbformat.write(nb, str(inbox / student / "fx.ipynb"))
    host_before = {folder: set(os.listdir(folder)) for folder in ("/dev/shm", "/tmp")}
    processes_before = _sandboxed_processes(SCRATCH)
    result = grading.grade(course, str(inbox), "fx", jobs=4, cell_timeout=CELL_TIMEOUT, notebook_timeout=90,
                           scratch_root=SCRATCH)
    return {"result": result, "course": course, "host_before": host_before,
            "processes_before": processes_before}


pytestmark_neighbours = pytest.mark.skipif(not ISOLATED, reason="per-run users and private /tmp need root and "
                                                                 "Linux namespaces")


@pytestmark_neighbours
def test_a_fork_bomb_beside_an_honest_neighbour(neighbours):
    result = neighbours["result"]
    assert _scores(result, "bomb") == (2, 0)
    row = _row(result, "bomb", "pixel-accuracy-tests")
    assert row["status"] == "not run" and "kernel was stopped" in row["reason"]
    assert result.totals()["neighbour"][:3] == (3, 3, "graded"), result.totals()["neighbour"]
    text = _all_text(_autograded(neighbours["course"], "neighbour"))
    assert text.count("awake") == 5
    # nothing of the batch is left running
    assert _sandboxed_processes(SCRATCH) <= neighbours["processes_before"]


@pytestmark_neighbours
def test_signals_cannot_reach_a_neighbour(neighbours):
    """kill(-1) signals every process of one's own user: with a user id per run, that is only one's own."""
    result = neighbours["result"]
    assert result.totals()["killer"][:3] == (3, 3, "graded")
    assert "still here" in _all_text(_autograded(neighbours["course"], "killer"))
    assert result.totals()["neighbour"][0] == 3 and result.totals()["bomb"][0] == 2
    uids = {student: int(_all_text(_autograded(neighbours["course"], student)).split("UID ")[1].split()[0])
            for student in ("neighbour",)}
    assert uids["neighbour"] >= sandbox.TAG_BASE


@pytestmark_neighbours
def test_dev_shm_and_tmp_are_private_and_gone_after_the_run(neighbours):
    result = neighbours["result"]
    assert result.totals()["filler"][:3] == (3, 3, "graded")
    filled = _all_text(_autograded(neighbours["course"], "filler"))
    assert "FILLED MiB" in filled and "/dev/shm stopped" in filled  # it hit the size limit
    text = _all_text(_autograded(neighbours["course"], "neighbour"))
    assert "segtutor-filler" not in text and "SHM []" in text
    for folder, before in neighbours["host_before"].items():
        left = {name for name in set(os.listdir(folder)) - before if name.startswith("segtutor-filler")}
        assert not left, (folder, left)


def test_rerun_is_idempotent_and_keeps_manual_grades(graded):
    course, inbox = graded["course"], graded["inbox"]
    first = graded["result"]
    with open(first.csv_path, "rb") as fh:
        before = fh.read()
    again = grading.grade(course, inbox, "fx", jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=60, **LIMITS)
    assert again.graded == [] and sorted(again.skipped) == graded["students"]
    with open(again.csv_path, "rb") as fh:
        assert fh.read() == before

    # an instructor's manual grade survives regrading
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db", "segtutor") as gb:
        grade = gb.find_grade("iou-tests", "fx", "fx", "wrong")
        grade.manual_score = 1.5
        gb.db.commit()
    third = grading.grade(course, inbox, "fx", jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=60,
                          force=True, students=["wrong"], **LIMITS)
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
    # a user id of its own: the run's tag, as user and group, with no supplementary groups
    uid, euid, gid = (int(x) for x in proc.stdout.split("ids ")[1].split()[:3])
    assert uid == euid == gid >= sandbox.TAG_BASE and "[]" in proc.stdout
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
     "    return 1.0 if u == 0 else float((a & b).sum() / u)", f"all {len(get('metrics.iou').cases(77))} cases match"),
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
    isolation = sandbox.Isolation() if ISOLATED else None
    for server in (fork_server, None):
        work = scratch / f"check-{len(messages)}"
        work.mkdir()
        launch = sandbox.sandboxed_launch(limits, "nobody", server=server, isolation=isolation)
        messages.append(cleanroom.grade_check(call, cells, launch=launch, timeout=3, workdir=str(work)).message())
    assert expect in messages[0], messages[0]
    assert messages[0] == messages[1]
