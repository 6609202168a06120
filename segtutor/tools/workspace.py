"""The learner's workspace: what ``segtutor open`` creates and opens.

The notebooks in ``lessons/`` are the instructor's sources, with every solution
in them. A learner works on the **student versions** (nbgrader's release:
solutions replaced by ``raise NotImplementedError()``, hidden tests removed),
in a folder of their own::

    workspace/                  (default: ``workspace/`` in the checkout; any folder may be named)
        00_intro.ipynb ...      the learner's copies of the lessons
        solutions/              only after ``segtutor open --solutions``
        .segtutor/              what was delivered (hashes), the cached release, JupyterLab settings
        .gitignore              ``*``: a workspace inside the checkout stays out of git

Nothing a learner wrote is ever overwritten. :func:`prepare` records the hash of
every notebook it delivers; on the next run a notebook whose bytes still have that
hash (untouched) is updated in place when the lesson changed, while an edited
notebook is left alone and the new version arrives beside it as
``NAME-new.ipynb`` (``NAME-new-2.ipynb``, ... when that one was edited too), with a
message saying so.

The release takes a while (nbgrader runs on every lesson), so it is cached in the
workspace under the hash of the lessons' contents: opening the course again is quick.

JupyterLab opens the workspace with settings of its own (``JUPYTER_CONFIG_DIR``
points into ``.segtutor/jupyter``): nbgrader's instructor interface (formgrader,
"Create Assignment", "Validate") is switched off, and so is the "Jupyter news"
pop-up. ``--instructor`` opens the sources in ``lessons/`` with the usual
settings, nbgrader's interface included.

Examples
--------
>>> from segtutor.tools import workspace
>>> workspace.new_name("01_classical.ipynb", taken={"01_classical-new.ipynb"})
'01_classical-new-2.ipynb'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = [
    "Report",
    "default_workspace",
    "jupyter_environment",
    "lab_command",
    "lessons_hash",
    "new_name",
    "prepare",
    "student_versions",
    "write_jupyter_config",
]

STATE = ".segtutor"
DELIVERED = "delivered.json"
SOLUTIONS = "solutions"

#: nbgrader's JupyterLab extension (formgrader, "Create Assignment", "Validate", assignment and
#: course lists) and JupyterLab's "Jupyter news" pop-up: not shown to a learner.
LEARNER_DISABLED_LAB_EXTENSIONS = ("@jupyter/nbgrader", "@jupyterlab/apputils-extension:announcements")
#: nbgrader's server extensions, off for a learner.
LEARNER_DISABLED_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)


@dataclasses.dataclass
class Report:
    """What :func:`prepare` did: the folder, and one line per notebook that changed or was kept."""

    folder: Path
    created: bool = False
    lines: list = dataclasses.field(default_factory=list)
    notebooks: list = dataclasses.field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


# -- where -------------------------------------------------------------------------------------


def default_workspace() -> Path:
    """``SEGTUTOR_WORKSPACE``, else ``workspace/`` in the course checkout, else ``./segtutor-workspace``."""
    chosen = os.environ.get("SEGTUTOR_WORKSPACE", "").strip()
    if chosen:
        return Path(chosen).expanduser().resolve()
    from segtutor import paths

    root = paths.checkout()
    return (root / "workspace") if root is not None else (Path.cwd() / "segtutor-workspace").resolve()


# -- the student versions, cached by the lessons' contents ----------------------------------------


def _lesson_files(lessons: Path) -> list:
    return sorted(p for p in Path(lessons).glob("*.ipynb") if p.is_file())


def lessons_hash(lessons) -> str:
    """A hash of everything the student versions depend on: the lessons' names and bytes, and
    the versions of segtutor and nbgrader.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "00_a.ipynb").write_text("{}")
    >>> a = lessons_hash(folder)
    >>> _ = (folder / "00_a.ipynb").write_text('{"changed": 1}')
    >>> a == lessons_hash(folder)
    False
    """
    from importlib.metadata import PackageNotFoundError, version

    import segtutor

    digest = hashlib.sha256()
    try:
        nbgrader_version = version("nbgrader")
    except PackageNotFoundError:  # pragma: no cover - nbgrader is a dependency
        nbgrader_version = "?"
    digest.update(f"segtutor {segtutor.__version__} nbgrader {nbgrader_version}\n".encode())
    for path in _lesson_files(lessons):
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:20]


def student_versions(lessons, state_dir, release=None) -> dict:
    """``{file name: bytes}`` of the student version of every lesson, from the cache when it holds them.

    ``release(lessons_dir, out_dir)`` writes the student versions (default
    :func:`segtutor.grading.release`); it runs only when the cache has no copy for these lessons.
    """
    lessons = Path(lessons)
    names = [p.name for p in _lesson_files(lessons)]
    if not names:
        raise FileNotFoundError(f"no lesson notebooks (*.ipynb) in {lessons}")
    cache_root = Path(state_dir) / "release"
    cache = cache_root / lessons_hash(lessons)
    if not (cache / "complete").is_file():
        if release is None:
            from segtutor.grading import release
        cache_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="release-", dir=cache_root))
        try:
            release(str(lessons), str(scratch / "out"))
            (scratch / "out" / "complete").write_text("")
            if cache.exists():
                shutil.rmtree(cache)
            os.replace(scratch / "out", cache)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        for old in cache_root.iterdir():  # keep only the release of the current lessons
            if old != cache:
                shutil.rmtree(old, ignore_errors=True)
    missing = [n for n in names if not (cache / n).is_file()]
    if missing:
        raise RuntimeError(f"the student release has no {', '.join(missing)}; remove {cache} and try again")
    return {name: (cache / name).read_bytes() for name in names}


def _solutions(lessons) -> dict:
    """The instructor versions, without the hidden tests: ``{file name: bytes}``."""
    import nbformat

    out = {}
    for path in _lesson_files(Path(lessons)):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if "### BEGIN HIDDEN TESTS" in cell.source:
                kept, hidden = [], False
                for line in cell.source.splitlines():
                    if line.strip() == "### BEGIN HIDDEN TESTS":
                        hidden = True
                    elif line.strip() == "### END HIDDEN TESTS":
                        hidden = False
                    elif not hidden:
                        kept.append(line)
                cell.source = "\n".join(kept).rstrip()
        out[path.name] = (nbformat.writes(nb) + "\n").encode()
    return out


# -- delivering without ever overwriting the learner's work ---------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_name(name: str, taken) -> str:
    """``NAME-new.ipynb``, or ``NAME-new-2.ipynb``, ... : the first name not in ``taken``."""
    stem, suffix = os.path.splitext(name)
    candidate, n = f"{stem}-new{suffix}", 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-new-{n}{suffix}"
    return candidate


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _deliver(folder: Path, files: dict, delivered: dict, report: Report, prefix: str = "") -> None:
    """Copy ``files`` into ``folder``; never overwrite a file the learner changed.

    ``delivered`` maps a path (relative to the workspace) to the hash of the bytes last written
    there; a file whose bytes no longer have that hash was changed by the learner.
    """
    for name, data in files.items():
        path, key, digest = folder / name, prefix + name, _sha(data)
        report.notebooks.append(path)
        if not path.exists():
            report.say(f"{key}: {'restored (it was missing)' if key in delivered else 'new'}")
            _write(path, data)
            delivered[key] = digest
            continue
        current = _sha(path.read_bytes())
        if current == digest:
            delivered[key] = digest
            continue
        if delivered.get(key) == current:  # untouched since it was delivered: update in place
            _write(path, data)
            delivered[key] = digest
            report.say(f"{key}: updated to the course's new version (you had not changed it)")
            continue
        if delivered.get(key) == digest:
            continue  # the learner's own copy of the version they have: theirs, nothing new
        # Changed by the learner, and the course has a new version: keep theirs, put the new one
        # beside it (refreshing an earlier copy the learner has not touched, not adding another).
        stem = os.path.splitext(name)[0]
        beside = sorted(folder.glob(f"{stem}-new*.ipynb"))
        if any(_sha(p.read_bytes()) == digest for p in beside):
            continue  # already there
        untouched = [p for p in beside if delivered.get(prefix + p.name) == _sha(p.read_bytes())]
        target = untouched[0] if untouched else folder / new_name(name, {p.name for p in folder.iterdir()})
        _write(target, data)
        delivered[prefix + target.name] = digest
        report.say(f"{key}: you have changed it, so the course's new version is in {prefix}{target.name}, "
                   "beside it; your notebook is as you left it")


def _load_delivered(state: Path) -> dict:
    path = state / DELIVERED
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a damaged record: every existing file then counts as edited, and is kept
    return value if isinstance(value, dict) else {}


def prepare(folder=None, lessons=None, *, solutions: bool = False, release=None) -> Report:
    """Create or update a learner's workspace with the student versions of the lessons.

    Parameters
    ----------
    folder : path, optional
        The workspace (default :func:`default_workspace`); created when missing.
    lessons : path, optional
        The lessons' source notebooks (default :func:`segtutor.paths.lessons_dir`).
    solutions : bool
        Also put the solutions (the instructor versions, without hidden tests) in
        ``solutions/``.
    release : callable, optional
        ``release(lessons_dir, out_dir)``; default :func:`segtutor.grading.release`.

    Returns
    -------
    Report
        The folder and one line per notebook that was added, updated or kept.
    """
    if lessons is None:
        from segtutor import paths

        lessons = paths.lessons_dir()
        if lessons is None:
            raise FileNotFoundError("no lessons/ folder found; run segtutor from the course checkout "
                                    "or set SEGTUTOR_LESSONS")
    lessons = Path(lessons).resolve()
    if not lessons.is_dir():
        raise FileNotFoundError(f"no lessons folder at {lessons}")
    folder = Path(folder).expanduser().resolve() if folder is not None else default_workspace()
    if folder == lessons or lessons in folder.parents:
        raise ValueError(f"the workspace must be outside the lessons folder {lessons}")
    report = Report(folder, created=not folder.exists())
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ".gitignore").exists():
        (folder / ".gitignore").write_text("# a learner's workspace: not part of the course repository\n*\n")
    state = folder / STATE
    state.mkdir(exist_ok=True)
    delivered = _load_delivered(state)
    try:
        _deliver(folder, student_versions(lessons, state, release), delivered, report)
        if solutions:
            _deliver(folder / SOLUTIONS, _solutions(lessons), delivered, report, prefix=f"{SOLUTIONS}/")
    finally:
        _write(state / DELIVERED, json.dumps(delivered, indent=1, sort_keys=True).encode())
    write_jupyter_config(state / "jupyter")
    return report


# -- JupyterLab for the learner --------------------------------------------------------------------


def write_jupyter_config(config_dir) -> Path:
    """Write the learner's Jupyter settings into ``config_dir`` (used as ``JUPYTER_CONFIG_DIR``).

    nbgrader's lab and server extensions are disabled, and JupyterLab neither asks about nor
    fetches the Jupyter news.
    """
    config_dir = Path(config_dir)
    _write(config_dir / "labconfig" / "page_config.json", json.dumps(
        {"disabledExtensions": {name: True for name in LEARNER_DISABLED_LAB_EXTENSIONS}}, indent=1).encode())
    _write(config_dir / "jupyter_server_config.json", json.dumps(
        {"ServerApp": {"jpserver_extensions": {name: False for name in LEARNER_DISABLED_SERVER_EXTENSIONS}}},
        indent=1).encode())
    settings = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    if not (settings / "notification.jupyterlab-settings").exists():  # the learner may change it later
        _write(settings / "notification.jupyterlab-settings",
               json.dumps({"fetchNews": "false", "checkForUpdates": False}, indent=1).encode())
    return config_dir


def jupyter_environment(folder) -> dict:
    """The environment for the learner's JupyterLab on workspace ``folder``."""
    env = dict(os.environ)
    env["JUPYTER_CONFIG_DIR"] = str(Path(folder) / STATE / "jupyter")
    return env


def lab_command(folder, no_browser: bool = False) -> list:
    """The command that starts JupyterLab on ``folder``."""
    command = [sys.executable, "-m", "jupyter", "lab", str(folder)]
    if no_browser:
        command.append("--no-browser")
    return command
