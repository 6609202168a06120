"""The grader works when the course is checked out under a private folder.

A private home folder (mode 0700) holds the checkout: the sandbox user cannot
traverse it, so it can neither run Python from there nor import segtutor from
there. ``segtutor grade`` prepares a runtime the sandbox user can reach
(:mod:`segtutor.grading.runtime`) and grades through it, without changing the
permissions of any folder it does not own.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import nbformat
import pytest

from segtutor.grading import runtime, sandbox
from test_grading import fixture_lesson  # the two-exercise lesson of the hostile suite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop, and so this situation, needs root")

GRADE = """
import json, sys
from segtutor import grading
course, inbox = sys.argv[1], sys.argv[2]
result = grading.grade(course, inbox, "fx", lessons=sys.argv[3], jobs=1, cell_timeout=60,
                       notebook_timeout=180, sandbox_user="nobody")
print("RESULT " + json.dumps({s: list(t[:3]) for s, t in result.totals().items()}))
print("FROM " + grading.__file__)
"""


@pytest.fixture()
def private_checkout(tmp_path):
    home = tempfile.mkdtemp(prefix="segtutor-private-home-")
    os.chmod(home, 0o700)
    runtime_dir = tempfile.mkdtemp(prefix="segtutor-runtime-", dir="/var/tmp")
    os.chmod(runtime_dir, 0o755)
    try:
        src = os.path.join(home, "checkout")
        shutil.copytree(os.path.join(ROOT, "segtutor"), os.path.join(src, "segtutor"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        lessons = os.path.join(src, "lessons")
        os.makedirs(lessons)
        lesson = fixture_lesson()
        nbformat.write(lesson, os.path.join(lessons, "fx.ipynb"))
        inbox = os.path.join(home, "inbox")
        for student, replace in (("correct", None), ("wrong", "return 0.5")):
            nb = nbformat.from_dict(json.loads(json.dumps(lesson)))
            for cell in nb.cells:
                if replace and "def my_iou" in cell.source:
                    head = cell.source.split("### BEGIN SOLUTION")[0]
                    cell.source = head + "    " + replace + "\n"
            os.makedirs(os.path.join(inbox, student))
            nbformat.write(nb, os.path.join(inbox, student, "fx.ipynb"))
        yield {"home": home, "src": src, "lessons": lessons, "inbox": inbox, "runtime": runtime_dir}
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(runtime_dir, ignore_errors=True)


def test_grading_from_a_checkout_under_a_private_folder(private_checkout):
    p = private_checkout
    mode_before = {path: os.stat(path).st_mode for path in (p["home"], "/root", os.path.dirname(p["home"]))
                   if os.path.exists(path)}
    env = dict(os.environ, PYTHONPATH=p["src"], SEGTUTOR_RUNTIME_DIR=p["runtime"])
    env.pop(runtime.ENV_VAR, None)
    proc = subprocess.run([sys.executable, "-c", GRADE, os.path.join(p["home"], "course"), p["inbox"], p["lessons"]],
                          capture_output=True, text=True, env=env, cwd=p["home"], timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("RESULT", "FROM")))
    assert out["FROM"].startswith(p["src"])  # the grader used the private checkout
    totals = json.loads(out["RESULT"])
    assert totals["correct"][:2] == [3.0, 3.0], totals
    assert totals["wrong"][:2] == [1.0, 3.0], totals  # IoU wrong (2 points), pixel accuracy right (1)
    # nothing was opened up: the private folder is still private, /root unchanged
    assert {path: os.stat(path).st_mode for path in mode_before} == mode_before
    assert stat.S_IMODE(os.stat(p["home"]).st_mode) == 0o700
    # the runtime holds the segtutor package (sources and byte-code), never the checkout's lessons
    built = [d for d in os.listdir(p["runtime"]) if d.startswith("env-")]
    assert len(built) == 1
    pkgs = [d for d in os.listdir(os.path.join(p["runtime"], built[0])) if d.startswith("pkg-")]
    assert len(pkgs) == 1
    pkg = os.path.join(p["runtime"], built[0], pkgs[0])
    assert os.listdir(pkg) == ["segtutor"]
    for dirpath, _dirs, files in os.walk(pkg):
        assert all(f.endswith((".py", ".pyc")) for f in files), (dirpath, files)
    for dirpath, _dirs, files in os.walk(os.path.join(p["runtime"], built[0])):
        assert "fx.ipynb" not in files


def test_the_runtime_is_reused_and_read_only_for_student_code(private_checkout):
    first = runtime.prepare(private_checkout["runtime"])
    again = runtime.prepare(private_checkout["runtime"])
    assert first == again
    for path in (first.python, os.path.join(first.pkg_dir, "segtutor", "__init__.py")):
        st = os.stat(path)
        assert st.st_uid == 0 and not st.st_mode & 0o022, path
    nobody = sandbox.resolve_user("nobody")[1]
    probe = ("import os, segtutor; print(segtutor.__file__); "
             "open(os.path.join(os.path.dirname(segtutor.__file__), 'x'), 'w')")
    scratch = tempfile.mkdtemp(prefix="segtutor-rt-probe-")
    try:
        os.chmod(scratch, 0o777)
        env = dict(first.env(), PATH=os.defpath)
        proc = subprocess.run(
            [sys.executable, "-m", "segtutor.grading.sandbox", "--user", str(nobody), "--workdir", scratch,
             "--runtime", first.encode(), "--", sys.executable, "-c", probe],
            capture_output=True, text=True, timeout=120, env=sandbox.env_with_pythonpath())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert proc.stdout.startswith(first.pkg_dir), proc.stderr[-2000:]
    assert "PermissionError" in proc.stderr


def test_a_runtime_folder_others_can_write_is_refused(tmp_path):
    unsafe = tempfile.mkdtemp(prefix="segtutor-unsafe-", dir="/var/tmp")
    try:
        os.chmod(unsafe, 0o777)
        with pytest.raises(runtime.RuntimeUnavailable, match="SEGTUTOR_RUNTIME_DIR"):
            runtime.prepare(unsafe)
    finally:
        shutil.rmtree(unsafe, ignore_errors=True)
