"""The learner's workspace behind ``segtutor open``.

A learner gets the student versions (never the solutions unless asked), in a folder
of their own; re-opening never overwrites a notebook they changed; their JupyterLab
shows neither nbgrader's instructor tools nor the Jupyter news pop-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from segtutor.tools import cli, workspace

ROOT = Path(__file__).resolve().parents[2]


# -- a small course and a quick stand-in for nbgrader's release ---------------------------------


def _lesson(path: Path, text: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {text}"),
        nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION",
                                  metadata={"nbgrader": {"solution": True, "grade": False, "locked": False,
                                                         "grade_id": "f", "schema_version": 3}}),
        nbformat.v4.new_code_cell("assert f() == 42\n### BEGIN HIDDEN TESTS\nassert f() > 0\n### END HIDDEN TESTS",
                                  metadata={"nbgrader": {"grade": True, "solution": False, "locked": True,
                                                         "points": 1, "grade_id": "t", "schema_version": 3}}),
    ]
    nbformat.write(nb, path)


class FakeRelease:
    """Writes 'student versions' the way nbgrader does in spirit (solution out), and counts calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, lessons_dir, out_dir):
        self.calls += 1
        os.makedirs(out_dir, exist_ok=True)
        for path in sorted(Path(lessons_dir).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                if "### BEGIN SOLUTION" in cell.source:
                    cell.source = "def f():\n    raise NotImplementedError()"
                cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
            nbformat.write(nb, Path(out_dir) / path.name)


@pytest.fixture
def course(tmp_path):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    _lesson(lessons / "00_a.ipynb", "lesson A")
    _lesson(lessons / "01_b.ipynb", "lesson B")
    return {"lessons": lessons, "ws": tmp_path / "me", "release": FakeRelease()}


def _open(course, **kwargs):
    return workspace.prepare(course["ws"], course["lessons"], release=course["release"], **kwargs)


def _learner_edits(path: Path, text: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(text))
    nbformat.write(nb, path)


def _sources(path: Path) -> str:
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)


# -- delivering ----------------------------------------------------------------------------------


def test_first_open_gives_student_versions_and_keeps_the_workspace_out_of_git(course):
    report = _open(course)
    ws = course["ws"]
    assert report.created and sorted(p.name for p in ws.glob("*.ipynb")) == ["00_a.ipynb", "01_b.ipynb"]
    text = _sources(ws / "00_a.ipynb")
    assert "return 42" not in text and "raise NotImplementedError()" in text and "HIDDEN" not in text
    assert not (ws / "solutions").exists()
    assert (ws / ".gitignore").read_text().splitlines()[-1] == "*"
    assert report.lines == ["00_a.ipynb: new", "01_b.ipynb: new"]


def test_an_edited_notebook_survives_a_reopen_and_the_new_version_arrives_beside_it(course):
    _open(course)
    ws = course["ws"]
    _learner_edits(ws / "00_a.ipynb", "my_answer = 'mine'")
    mine = (ws / "00_a.ipynb").read_bytes()

    report = _open(course)  # nothing changed in the course: nothing happens
    assert report.lines == [] and (ws / "00_a.ipynb").read_bytes() == mine

    _lesson(course["lessons"] / "00_a.ipynb", "lesson A, second edition")
    report = _open(course)
    assert (ws / "00_a.ipynb").read_bytes() == mine  # the learner's work is untouched
    assert "second edition" in _sources(ws / "00_a-new.ipynb")
    assert report.lines == ["00_a.ipynb: you have changed it, so the course's new version is in "
                            "00_a-new.ipynb, beside it; your notebook is as you left it"]

    _lesson(course["lessons"] / "00_a.ipynb", "lesson A, third edition")
    _open(course)  # the untouched -new copy is refreshed, not multiplied
    assert "third edition" in _sources(ws / "00_a-new.ipynb") and not (ws / "00_a-new-2.ipynb").exists()

    _learner_edits(ws / "00_a-new.ipynb", "also mine")
    _lesson(course["lessons"] / "00_a.ipynb", "lesson A, fourth edition")
    _open(course)
    assert "also mine" in _sources(ws / "00_a-new.ipynb")
    assert "fourth edition" in _sources(ws / "00_a-new-2.ipynb")
    assert (ws / "00_a.ipynb").read_bytes() == mine


def test_an_untouched_notebook_is_updated_in_place_and_a_deleted_one_restored(course):
    _open(course)
    ws = course["ws"]
    _lesson(course["lessons"] / "01_b.ipynb", "lesson B, corrected")
    report = _open(course)
    assert "corrected" in _sources(ws / "01_b.ipynb") and not (ws / "01_b-new.ipynb").exists()
    assert report.lines == ["01_b.ipynb: updated to the course's new version (you had not changed it)"]
    (ws / "00_a.ipynb").unlink()
    assert _open(course).lines == ["00_a.ipynb: restored (it was missing)"]


def test_a_notebook_segtutor_did_not_write_is_never_overwritten(course):
    ws = course["ws"]
    ws.mkdir()
    (ws / "00_a.ipynb").write_text("my own notes")  # a file of the learner's, same name
    report = _open(course)
    assert (ws / "00_a.ipynb").read_text() == "my own notes"
    assert (ws / "00_a-new.ipynb").exists() and "00_a-new.ipynb" in report.lines[0]
    # a damaged record of what was delivered: every file counts as the learner's, and is kept
    (ws / ".segtutor" / "delivered.json").write_text("{not json")
    _learner_edits(ws / "01_b.ipynb", "x = 1")
    edited = (ws / "01_b.ipynb").read_bytes()
    _lesson(course["lessons"] / "01_b.ipynb", "lesson B, corrected")
    _open(course)
    assert (ws / "01_b.ipynb").read_bytes() == edited


def test_reopening_uses_the_cached_release_until_a_lesson_changes(course):
    _open(course)
    _open(course)
    assert course["release"].calls == 1
    _lesson(course["lessons"] / "01_b.ipynb", "lesson B, corrected")
    _open(course)
    assert course["release"].calls == 2
    caches = list((course["ws"] / ".segtutor" / "release").iterdir())
    assert [c.name for c in caches] == [workspace.lessons_hash(course["lessons"])]  # old ones removed


def test_solutions_only_when_asked_and_without_hidden_tests(course):
    _open(course)
    assert not (course["ws"] / "solutions").exists()
    _open(course, solutions=True)
    text = _sources(course["ws"] / "solutions" / "00_a.ipynb")
    assert "return 42" in text and "HIDDEN" not in text


def test_the_workspace_cannot_be_inside_the_lessons(course):
    with pytest.raises(ValueError, match="outside the lessons folder"):
        workspace.prepare(course["lessons"] / "mine", course["lessons"], release=course["release"])
    with pytest.raises(FileNotFoundError, match="no lessons folder"):
        workspace.prepare(course["ws"], course["lessons"] / "nowhere", release=course["release"])


# -- the learner's JupyterLab --------------------------------------------------------------------

SERVER_EXTENSIONS = """
import json
from jupyter_server.serverapp import ServerApp
app = ServerApp()
app.load_config_file()
app.find_server_extensions()   # what the server enables when it starts, without starting it
print(json.dumps({k: v for k, v in app.jpserver_extensions.items() if "nbgrader" in k}))
"""

PAGE_CONFIG = """
import json, os
from jupyter_core.paths import jupyter_config_path
from jupyterlab_server.config import get_page_config
config = get_page_config([os.path.join(p, "labconfig") for p in jupyter_config_path()], logger=None)
print(json.dumps(sorted(config.get("disabledExtensions", []))))
"""


def _jupyter(code: str, env: dict) -> object:
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_learners_jupyterlab_hides_nbgrader_and_the_news_the_instructors_keeps_nbgrader(course):
    _open(course)
    learner = workspace.jupyter_environment(course["ws"])
    instructor = {k: v for k, v in os.environ.items() if k != "JUPYTER_CONFIG_DIR"}
    servers = _jupyter(SERVER_EXTENSIONS, learner)
    assert servers and not any(servers.values()), servers  # formgrader, validate, ... all off
    assert set(workspace.LEARNER_DISABLED_LAB_EXTENSIONS) <= set(_jupyter(PAGE_CONFIG, learner))
    assert any(_jupyter(SERVER_EXTENSIONS, instructor).values())  # installed, and on for instructors
    assert "@jupyter/nbgrader" not in _jupyter(PAGE_CONFIG, instructor)
    news = course["ws"] / ".segtutor/jupyter/lab/user-settings/@jupyterlab/apputils-extension"
    assert json.loads((news / "notification.jupyterlab-settings").read_text())["fetchNews"] == "false"


# -- the command ---------------------------------------------------------------------------------


@pytest.fixture
def command(course, monkeypatch):
    import segtutor.grading

    monkeypatch.setenv("SEGTUTOR_LESSONS", str(course["lessons"]))
    monkeypatch.setenv("CI", "true")  # no terminal: print how to open instead of starting JupyterLab
    monkeypatch.setattr(segtutor.grading, "release", course["release"])
    return course


def test_segtutor_open_prepares_the_workspace_and_says_how_to_open_it(command, capsys):
    ws = command["ws"]
    assert cli.main(["open", str(ws), "--dry-run"]) == 0
    assert not ws.exists() and "would put the student versions" in capsys.readouterr().out
    assert cli.main(["open", str(ws)]) == 0
    out = capsys.readouterr().out
    assert f"Your workspace: {ws} (new), with the student versions of the lessons in {command['lessons']}" in out
    assert "00_a.ipynb: new" in out
    assert f"JUPYTER_CONFIG_DIR={ws}/.segtutor/jupyter" in out and f"jupyter lab {ws}" in out
    assert cli.main(["open", str(ws), "--solutions"]) == 0
    assert "The solutions are in" in capsys.readouterr().out and (ws / "solutions" / "00_a.ipynb").exists()
    assert cli.main(["open", "--instructor"]) == 0
    out = capsys.readouterr().out
    assert f"jupyter lab {command['lessons']}" in out and "JUPYTER_CONFIG_DIR" not in out


def test_segtutor_open_defaults_to_a_workspace_of_its_own(command, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTUTOR_WORKSPACE", str(tmp_path / "chosen"))
    assert cli.main(["open"]) == 0
    assert (tmp_path / "chosen" / "00_a.ipynb").exists()
    monkeypatch.delenv("SEGTUTOR_WORKSPACE")
    assert workspace.default_workspace() == ROOT / "workspace"  # in the checkout, git-ignored by itself


# -- the real lessons ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_real_lessons_arrive_without_a_single_solution(tmp_path):
    report = workspace.prepare(tmp_path / "me", ROOT / "lessons")
    names = sorted(p.name for p in report.notebooks)
    assert names == sorted(p.name for p in (ROOT / "lessons").glob("*.ipynb"))
    for path in report.notebooks:
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text and "hidden_seed" not in text
        stubs = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert stubs and all("raise NotImplementedError()" in c.source for c in stubs), path.name
