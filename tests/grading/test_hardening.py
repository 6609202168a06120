"""The grader's own defences, one at a time: reading what untrusted code left, importing,
naming, locking, fingerprints, the CSV, the HTML, and what a sandboxed run can see.

These are focused tests (seconds each); the same defences meet whole hostile
submissions in ``test_grading.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from segtutor.exercises import wire
from segtutor.grading import course as course_mod
from segtutor.grading import isolation, process, safehtml, sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AS_ROOT = os.geteuid() == 0
ISOLATED = AS_ROOT and sandbox.isolation_problem("nobody") is None


def _within(seconds, fn, *args, **kwargs):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it takes longer than ``seconds``."""
    box = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} blocked for more than {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# -- reading results left by untrusted code --------------------------------------------------


def _npz_with(path, member: str, header_shape, payload: bytes, compress=zipfile.ZIP_STORED):
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False, "shape": header_shape})
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        archive.writestr(member, head.getvalue() + payload)


@pytest.fixture
def results(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"array": "a0"}))
    return tmp_path


def test_wire_refuses_compressed_members(results):
    _npz_with(results / "r.npz", "a0.npy", (4096,), bytes(4096), compress=zipfile.ZIP_DEFLATED)
    with pytest.raises(wire.WireError, match="compressed members are not accepted"):
        wire.load(results / "r.json", results / "r.npz")


def test_wire_checks_headers_against_sizes_before_reading(results):
    # a stored member whose header promises 1 GiB but holds 16 bytes
    _npz_with(results / "r.npz", "a0.npy", (2**30,), bytes(16))
    with pytest.raises(wire.WireError, match="promises more data than the file holds"):
        wire.load(results / "r.json", results / "r.npz")
    # a well-formed result just under the cap passes; one over it is refused
    np.savez(results / "ok.npz", a0=np.zeros(1000, np.uint8))
    assert wire.load(results / "r.json", results / "ok.npz").shape == (1000,)
    with pytest.raises(wire.WireError, match="larger than|more than"):
        wire.load(results / "r.json", results / "ok.npz", max_bytes=500)


def test_wire_refuses_pickles_and_object_arrays(results):
    np.save(results / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(results / "r.npz", "w") as archive:
        archive.write(results / "obj.npy", "a0.npy")
    with pytest.raises(wire.WireError, match="Python objects"):
        wire.load(results / "r.json", results / "r.npz")


def test_wire_caps_json_size_and_depth(results):
    np.savez(results / "r.npz")
    (results / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(wire.WireError, match="not valid JSON"):
        wire.load(results / "deep.json", results / "r.npz")
    (results / "nested.json").write_text(json.dumps(_nested(wire.MAX_DEPTH + 5)))
    with pytest.raises(wire.WireError, match="nested"):
        wire.load(results / "nested.json", results / "r.npz")
    with open(results / "big.json", "w") as fh:
        fh.write('"' + "x" * (wire.MAX_JSON_BYTES + 10) + '"')
    with pytest.raises(wire.WireError, match="larger than"):
        wire.load(results / "big.json", results / "r.npz")


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = {"list": [value]}
    return value


def test_wire_and_read_tail_never_block_on_a_fifo_nor_follow_a_link(results):
    np.savez(results / "r.npz")
    os.mkfifo(results / "fifo.json")
    with pytest.raises(wire.WireError, match="not a regular file"):
        _within(10, wire.load, results / "fifo.json", results / "r.npz")
    os.symlink("/etc/hostname", results / "link.json")
    with pytest.raises(wire.WireError, match="cannot be opened"):
        wire.load(results / "link.json", results / "r.npz")
    os.mkfifo(results / "stderr.txt")
    assert _within(10, process.read_tail, str(results / "stderr.txt")) == ""
    with pytest.raises(ValueError, match="not a regular file"):
        _within(10, process.read_regular, str(results / "stderr.txt"), 100)


def test_results_replaced_by_fifos_fail_the_check_without_blocking(tmp_path):
    """The whole clean room: the learner's process leaves FIFOs where its results should be."""
    from segtutor.grading import cleanroom

    cells = ["import numpy as np", textwrap.dedent('''\
        import json as _json, os as _os

        def my_iou(a, b):
            return 1.0

        def _fifo(obj, fh, *args, **kwargs):
            for name in ("results.json", "results.npz", "stderr.txt"):
                _os.remove(name) if _os.path.exists(name) else None
                _os.mkfifo(name)

        _json.dump = _fifo
        ''')]
    verdict = _within(120, cleanroom.grade_check, cleanroom.CheckCall("metrics.iou", "my_iou"), cells)
    assert not verdict.passed and "not plain files" in verdict.message()


# -- copying folders left by others -------------------------------------------------------------


def test_copy_tree_follows_no_link_and_keeps_to_its_caps(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.ipynb").write_text("{}")
    (src / "sub" / "b.txt").write_text("b")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "s.txt").write_text("secret")
    os.symlink(secret, src / "linked_dir")
    os.symlink(secret / "s.txt", src / "sub" / "linked_file.txt")
    os.mkfifo(src / "pipe")
    for i in range(5):
        (src / f"f{i}.txt").write_text("x" * 100)
    done = _within(10, process.copy_tree, str(src), str(tmp_path / "out"), max_files=4, max_bytes=10_000)
    assert done.copied[0] == "a.ipynb"  # notebooks first, whatever the caps
    assert len(done.copied) == 4
    reasons = dict(done.skipped)
    assert reasons["linked_dir"] == reasons[os.path.join("sub", "linked_file.txt")] == "a symbolic link (not followed)"
    assert "not a regular file" in reasons["pipe"]
    assert any("more than 4 files" in why for why in reasons.values())
    assert not (tmp_path / "out" / "linked_dir").exists()
    assert "secret" not in "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    small = process.copy_tree(str(src), None, max_files=100, max_bytes=150)
    assert any("too large" in why for _rel, why in small.skipped)
    linked = tmp_path / "linked_src"
    os.symlink(src, linked)
    assert process.copy_tree(str(linked), None).skipped == [(".", "a symbolic link (not followed)")]


# -- importing submissions ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from test_grading import fixture_lesson

    tmp = tmp_path_factory.mktemp("import")
    (tmp / "lessons").mkdir()
    nbformat.write(fixture_lesson(), str(tmp / "lessons" / "fx.ipynb"))
    course_dir = str(tmp / "course")
    course_mod.setup_course(course_dir, str(tmp / "lessons"))
    return course_dir


def test_import_takes_names_literally_and_refuses_what_cannot_be_a_student(course, tmp_path):
    inbox = tmp_path / "inbox"
    for name in ("alice[1]", "alice1", "=1+2", "*", "b?b", " pad", "tab\there"):
        (inbox / name).mkdir(parents=True)
        (inbox / name / "fx.ipynb").write_text(json.dumps({"who": name}))
    notes = []
    students = course_mod.import_submissions(course, str(inbox), "fx", notes=notes)
    assert sorted(students) == ["=1+2", "alice1", "alice[1]"]
    for name in ("alice[1]", "alice1", "=1+2"):
        with open(os.path.join(course, "submitted", name, "fx", "fx.ipynb")) as fh:
            assert json.load(fh) == {"who": name}
    text = "\n".join(notes)
    for name, why in (("*", "wildcard"), ("b?b", "wildcard"), (" pad", "white space"), ("tab\there", "control")):
        assert f"{name!r} skipped: not a valid student id" in text and why in text, (name, text)


def test_import_follows_no_link_and_names_what_it_skipped(course, tmp_path):
    inbox = tmp_path / "inbox"
    secret = tmp_path / "root-only"
    (secret / "fx").mkdir(parents=True)
    (secret / "fx" / "fx.ipynb").write_text("SECRET")
    os.chmod(secret, 0o700)
    (inbox / "lf").mkdir(parents=True)
    os.symlink(secret / "fx", inbox / "lf" / "fx")
    (inbox / "lfile").mkdir()
    os.symlink(secret / "fx" / "fx.ipynb", inbox / "lfile" / "fx.ipynb")
    os.symlink(secret, inbox / "ltop")
    (inbox / "pipe").mkdir()
    os.mkfifo(inbox / "pipe" / "fx.ipynb")
    notes = []
    students = _within(30, course_mod.import_submissions, course, str(inbox), "fx")
    students = course_mod.import_submissions(course, str(inbox), "fx", notes=notes)
    assert sorted(students) == ["lf", "lfile", "ltop", "pipe"]
    text = "\n".join(notes)
    assert "lf: nothing imported: lf/fx is a symbolic link (not followed)" in text
    assert "lfile: fx.ipynb not imported: a symbolic link (not followed)" in text
    assert "ltop: nothing imported: ltop is a symbolic link (not followed)" in text
    assert "pipe: fx.ipynb not imported: not a regular file" in text
    for student in students:
        folder = os.path.join(course, "submitted", student, "fx")
        assert os.listdir(folder) == []


def test_student_ids_and_csv_cells():
    problem = course_mod.student_id_problem
    for ok in ("alice", "alice[1]", "Zoë Müller", "=1+2", "@x", "a-b_c.d", "student 7"):
        assert problem(ok) is None, ok
    for bad, why in (("", "empty"), ("*", "wildcard"), ("a/b", "path separator"), (".hidden", "dot"),
                     ("x\x1b[31m", "control"), ("a" * 101, "longer"), ("b ", "white space")):
        assert why in problem(bad), bad
    cell = course_mod._csv_cell
    for text in ("=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert cell(text).startswith("'"), text
    assert cell("alice") == "alice" and cell(3.0) == 3.0
    assert cell("✗ differs\x1b[31m") == "✗ differs [31m"  # no terminal escapes either


def test_the_csv_escapes_formulas_wherever_they_come_from(tmp_path):
    row = {"student": "=HYPERLINK(\"http://x\")", "assignment": "fx", "notebook": "fx", "cell": "c",
           "exercise": "", "score": "-0.5", "max_score": "1", "status": "failed",
           "reason": "=1+2: raised by the learner's code"}
    course_mod._write_csv(str(tmp_path / "g.csv"), [row])
    with open(tmp_path / "g.csv", newline="") as fh:
        back = next(csv.DictReader(fh))
    assert back["student"] == "'=HYPERLINK(\"http://x\")" and back["reason"].startswith("'=1+2")
    assert back["score"] == "-0.5"  # numbers are the grader's own, never rewritten


# -- one grader at a time; workers that never start ---------------------------------------------


def test_a_second_grading_run_on_the_same_course_is_refused(course):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom segtutor.grading.course import course_lock\n"
         "with course_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n", course],
        stdout=subprocess.PIPE, text=True, env=sandbox.env_with_pythonpath())
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(course_mod.CourseBusy, match=f"another grading run is working on .*pid {holder.pid}"):
            course_mod.grade(course, None, "fx", jobs=1)
        assert time.monotonic() - start < 10
        cli = subprocess.run([sys.executable, "-m", "segtutor", "grade", "fx", "--course", course],
                             capture_output=True, text=True, env=sandbox.env_with_pythonpath(), timeout=120)
        assert cli.returncode == 1 and "another grading run is working on" in cli.stderr
        assert "Traceback" not in cli.stderr
    finally:
        holder.kill()
        holder.wait()
    with course_mod.course_lock(course):  # free again, and re-entrant within a process
        with course_mod.course_lock(course):
            pass


def test_a_worker_that_never_says_ready_is_replaced_then_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(course_mod, "WORKER_STARTUP_TIMEOUT", 2)
    monkeypatch.setattr(course_mod, "_worker_command",
                        lambda course_dir, settings: [sys.executable, "-c", "import time; time.sleep(120)"])
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start within 2 s"):
        course_mod._run_tasks(str(tmp_path), [{"assignment": "fx", "student": "s"}], {}, 1, 60)
    assert time.monotonic() - start < 30  # three tries of 2 s, not forever


# -- the regrade fingerprint ---------------------------------------------------------------------


def test_the_fingerprint_covers_what_decides_a_grade(tmp_path):
    package = tmp_path / "segtutor"
    shutil.copytree(os.path.join(ROOT, "segtutor"), package, ignore=shutil.ignore_patterns("__pycache__"))
    course_dir = tmp_path / "course"
    for folder in ("submitted/s/fx", "source/fx"):
        (course_dir / folder).mkdir(parents=True)
    (course_dir / "submitted/s/fx/fx.ipynb").write_text("{}")
    (course_dir / "source/fx/fx.ipynb").write_text("{}")
    (course_dir / "nbgrader_config.py").write_text("c = get_config()\n")
    settings = {"cell_timeout": 60, "scratch_root": ""}

    def fp(**changes):
        return course_mod._fingerprint(str(course_dir), "fx", "s", dict(settings, **changes), package=str(package))

    base = fp()
    assert fp() == base and fp(scratch_root="/elsewhere") == base
    (package / "tools" / "bench.py").write_text("# the segtutor command decides no grade\n")
    assert fp() == base
    with open(package / "metrics.py", "a") as fh:
        fh.write("\n# a fixed reference\n")
    changed = fp()
    assert changed != base
    (course_dir / "nbgrader_config.py").write_text("c = get_config()\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    assert fp() != changed
    again = fp()
    (course_dir / "submitted/s/fx/data.csv").write_text("1,2")
    assert fp() != again
    assert fp(cell_timeout=30) != fp()


# -- active content ---------------------------------------------------------------------------------


def test_clean_html_keeps_formatting_and_drops_everything_active():
    clean = safehtml.clean_html
    table = '<table border="1" class="dataframe"><tr><th>a</th><td>1</td></tr></table>'
    assert "<table" in clean(table) and "<td>1</td>" in clean(table)
    for hostile in ('<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '<a href="javascript:alert(1)">x</a>',
                    '<iframe src="//evil"></iframe>', '<svg onload=alert(1)>', '<a href="JaVa&#115;cript:x">x</a>',
                    '<div style="background:url(//evil)">x</div>', '<object data="x"></object>',
                    '<a href="java\tscript:alert(1)">x</a>', '<img src="data:text/html,<script>1</script>">'):
        out = clean(hostile)
        assert safehtml.html_problem(out) is None, (hostile, out)
        for bad in ("<script", "onerror", "onload", "javascript", "iframe", "style=", "<object"):
            assert bad not in out.lower().replace("\t", ""), (hostile, out)


def test_markdown_with_active_content_is_shown_as_text():
    nb = new_notebook(cells=[
        new_markdown_cell("# Fine\n\n*emphasis*, `code`, a [link](https://scikit-image.org), $a < b$"),
        new_markdown_cell("<img src=x onerror=alert(1)>"),
        new_markdown_cell("[x](javascript:alert(1))"),
        new_markdown_cell("<details><summary>ok</summary>fine</details>"),
    ])
    nb.cells[0].attachments = {"a.png": {"image/png": "iVBORw0KGgo="}, "b.html": {"text/html": "<script>"}}
    honest = [nb.cells[0].source, nb.cells[3].source]
    notes = safehtml.sanitize_notebook(nb)
    assert [nb.cells[0].source, nb.cells[3].source] == honest
    assert nb.cells[0].attachments == {"a.png": {"image/png": "iVBORw0KGgo="}}
    for cell in nb.cells[1:3]:
        assert cell.source.startswith("**[The grader shows this cell as plain text")
        assert safehtml.markdown_problem(cell.source) is None
    assert len(notes) == 3


def test_outputs_keep_only_inert_types():
    cell = new_code_cell("x")
    cell.outputs = [
        new_output("display_data", data={"text/plain": "p", "application/javascript": "alert(1)",
                                         "image/svg+xml": "<svg onload=alert(1)/>", "image/png": '" onerror="x'}),
        new_output("display_data", data={"text/html": "<b>b</b><script>alert(1)</script>", "image/png": "iVBORw0KGgo="},
                   metadata={"image/png": {"width": '1 onerror="x"', "height": 20}}),
        new_output("stream", name="stdout", text="t"),
    ]
    cell.metadata["tags"] = ["ok-tag", 'x" onclick="y']
    nb = new_notebook(cells=[cell])
    # what a hostile kernel can send, past nbformat's schema
    nb.cells[0]["id"] = "bad id!"
    nb.cells[0].outputs[2]["name"] = 'stdout" onclick="x'
    nb.cells[0].outputs.append({"output_type": "weird", "data": {}})
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    notes = safehtml.sanitize_notebook(nb)
    first, second, stream = nb.cells[0].outputs
    assert set(first.data) == {"text/plain"} and "removed by the grader" in first.data["text/plain"]
    assert second.data["text/html"] == "<b>b</b>" and second.data["image/png"] == "iVBORw0KGgo="
    assert second.metadata == {"image/png": {"height": 20}}
    assert stream.name == "stdout"
    assert nb.cells[0].metadata["tags"] == ["ok-tag"] and nb.cells[0]["id"] != "bad id!"
    assert "widgets" not in nb.metadata
    assert notes


# -- what a sandboxed run can see --------------------------------------------------------------------

SEARCH = '''\
import os, sys, time
canary = sys.argv[1] + sys.argv[2]  # never written out whole: this file does not match itself
own = os.getcwd()
hits, seen = [], 0
text = (".ipynb", ".py", ".md", ".txt", ".json", ".rst", ".html", ".cfg", ".toml", ".yml", ".yaml", ".csv", ".log")
for root, dirs, files in os.walk("/"):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")] + (["dev/shm"] if "dev" in dirs else [])
    if root == own or root.startswith(own + os.sep):
        continue
    for name in files:
        path = os.path.join(root, name)
        if not name.endswith(text) and "canary" not in name:
            continue
        try:
            with open(path, "rb") as fh:
                data = fh.read(2_000_000)
        except OSError:
            continue
        seen += 1
        if canary.encode() in data:
            hits.append(path)
        elif name.endswith(".ipynb") and b"BEGIN SOLUTION" in data and b"hidden_seed" in data:
            hits.append(path + " (a lesson with solutions)")
print(repr({"hits": hits, "seen": seen}))
'''


def _plant_canaries(canary):
    """World-readable copies of a lesson holding the canary, where a careless course might leave them."""
    made = []
    for parent in ("/var/tmp", "/tmp", "/dev/shm"):
        folder = tempfile.mkdtemp(prefix="segtutor-canary-", dir=parent)
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "lesson.ipynb")
        with open(path, "w") as fh:
            fh.write(json.dumps({"cells": [{"source": f"### BEGIN SOLUTION\n# {canary}\nhidden_seed=1\n"}]}))
        os.chmod(path, 0o644)
        made.append(folder)
    return made


def _search_as_student(canary, isolation_on):
    from segtutor.grading import runtime

    rt = runtime.prepare()
    runtime.activate(rt)
    base = tempfile.mkdtemp(prefix="segtutor-search-")
    os.chmod(base, 0o711)
    try:
        work = os.path.join(base, "work")
        os.mkdir(work)
        with open(os.path.join(work, "search.py"), "w") as fh:
            fh.write(SEARCH)
        tag = sandbox.tag_gid()
        sandbox.prepare_dir(work, tag)
        half = len(canary) // 2
        cmd = sandbox.sandbox_command([sys.executable, "search.py", canary[:half], canary[half:]],
                                      sandbox.Limits(cpu=300), user="nobody", workdir=work, group=tag,
                                      isolation=sandbox.Isolation() if isolation_on else None)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=sandbox.env_with_pythonpath())
        sandbox.kill_tagged(tag)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return eval(proc.stdout.strip().splitlines()[-1])  # noqa: S307 - our own printout
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not ISOLATED, reason="a private view of the machine needs root and Linux namespaces")
def test_a_filesystem_search_finds_no_solutions_outside_its_own_scratch():
    """Student code reads every text file it can reach, looking for the instructor's lessons.

    World-readable copies of a lesson are planted in /var/tmp, /tmp and /dev/shm; the
    checkout's own lessons/ are world-readable here too. Without the private view the
    search finds them (the test can fail); with it, nothing outside its scratch folder.
    """
    canary = "canary-" + uuid.uuid4().hex
    planted = _plant_canaries(canary)
    try:
        exposed = _search_as_student(canary, isolation_on=False)
        assert len([h for h in exposed["hits"] if "segtutor-canary-" in h]) == 3, exposed["hits"]
        # reachable by others only if every folder on the way lets them through (a checkout
        # under a private home folder is not)
        lessons = os.path.join(ROOT, "lessons")
        ancestors = [p for p in Path(lessons).resolve().parents]
        lessons_readable = (all(os.stat(p).st_mode & stat.S_IXOTH for p in ancestors)
                            and os.stat(lessons).st_mode & stat.S_IROTH and os.stat(lessons).st_mode & stat.S_IXOTH)
        if lessons_readable:
            assert any(h.startswith(os.path.join(ROOT, "lessons")) for h in exposed["hits"]), exposed["hits"]
        private = _search_as_student(canary, isolation_on=True)
        assert private["seen"] > 1000  # it did read the system and library files it can see
        assert private["hits"] == [], private["hits"]
    finally:
        for folder in planted:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(not ISOLATED, reason="a private view of the machine needs root and Linux namespaces")
def test_a_run_has_its_own_uid_cgroup_tmp_and_no_network(tmp_path):
    from segtutor.grading import runtime

    runtime.activate(runtime.prepare())
    base = tempfile.mkdtemp(prefix="segtutor-probe-")
    os.chmod(base, 0o711)
    code = ("import os, socket\nprint('UID', os.getuid())\nprint('CG', open('/proc/self/cgroup').read().count("
            "'segtutor-run-'))\nprint('NET', [n for _, n in socket.if_nameindex()])\n"
            "print('OTHERS', [p for p in os.listdir('/proc') if p.isdigit() and os.stat('/proc/' + p).st_uid != "
            "os.getuid()])\n")
    # cgroups are best effort: a run joins its own where root may write a cpu/pids controller
    cgroups = any(os.access(parent, os.W_OK) for parent in isolation._cgroup_parents().values())
    try:
        uids = []
        for _ in range(2):
            work = os.path.join(base, f"w{len(uids)}")
            os.mkdir(work)
            tag = sandbox.tag_gid()
            sandbox.prepare_dir(work, tag)
            cmd = sandbox.sandbox_command([sys.executable, "-c", code], sandbox.Limits(), user="nobody", workdir=work,
                                          group=tag, isolation=sandbox.Isolation())
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=sandbox.env_with_pythonpath())
            assert proc.returncode == 0, proc.stderr[-2000:]
            out = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
            uids.append(int(out["UID"]))
            assert int(out["UID"]) == tag  # its own user id: the run's tag
            if cgroups:
                assert int(out["CG"]) >= 1  # its own cgroup(s)
            assert eval(out["NET"]) == ["lo"]  # noqa: S307 - no network but a loopback that is down
            assert eval(out["OTHERS"]) == []  # noqa: S307 - /proc shows its own processes only
            sandbox.kill_tagged(tag)
            leftovers = [d for parent in set(isolation._cgroup_parents().values()) if os.path.isdir(parent)
                         for d in os.listdir(parent) if d == f"segtutor-run-{tag}"]
            assert leftovers == []  # removed once the run is over
        assert uids[0] != uids[1]
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_without_root_the_grader_says_there_is_no_private_view():
    if AS_ROOT:
        problem = sandbox.isolation_problem(None)
    else:
        problem = sandbox.isolation_problem("nobody")
    assert problem and "privilege drop" in problem


def test_grading_without_the_private_view_says_so(course):
    """Turned off (or not possible here): grading goes on, and a note says what student code can see."""
    result = course_mod.grade(course, None, "fx", jobs=1, students=[], isolate=False)
    text = "\n".join(result.notes)
    if sandbox.privilege_drop_active("nobody"):
        assert "student code sees this machine's file system, /tmp and network: isolation was turned off" in text
    else:
        assert "grading as a non-root user: student code runs as you" in text


def test_a_grading_worker_runs_under_a_memory_limit():
    """Results are decoded and compared in the worker: it has a memory limit (the kernels' + 2 GiB)."""
    code = textwrap.dedent('''\
        import resource
        import numpy as np
        from segtutor.grading import worker
        worker._limit_memory({"memory_limit": "256M"})
        print("limit", resource.getrlimit(resource.RLIMIT_DATA)[0])
        try:
            np.ones(4 * 2**30, np.uint8)
            print("ALLOCATED 4 GiB")
        except MemoryError:
            print("MemoryError")
        ''')
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=sandbox.env_with_pythonpath())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"limit {256 * 2**20 + 2 * 2**30}" in proc.stdout and "MemoryError" in proc.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the worker's limits from /proc")
def test_a_grading_worker_starts_with_its_memory_limit_and_a_private_umask(tmp_path):
    """The real worker, as the scheduler starts it: limited and private before it reads any task."""
    worker = subprocess.Popen([sys.executable, "-m", "segtutor.grading.worker", str(tmp_path),
                               json.dumps({"memory_limit": "256M"})],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=sandbox.env_with_pythonpath())
    try:
        assert json.loads(_within(120, worker.stdout.readline)) == {"ready": True}
        with open(f"/proc/{worker.pid}/limits") as fh:
            data = next(line for line in fh if line.startswith("Max data size"))
        with open(f"/proc/{worker.pid}/status") as fh:
            umask = next(line for line in fh if line.startswith("Umask:"))
    finally:
        worker.stdin.close()
        worker.wait(60)
    assert data.split()[3] == str(256 * 2**20 + 2 * 2**30), data
    assert umask.split()[1] == "0077", umask
