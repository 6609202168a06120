"""Test-session settings shared by the unit tests, the doctests and nbval's lesson runs."""

import atexit
import os
import re
import shutil
import tempfile

# Trained checkpoints go to a fresh cache for each test run (unless one is chosen with
# SEGTUTOR_CACHE), so a cache left on this machine never stands in for a training run the
# tests should make. The lessons' kernels inherit this environment.
if not os.environ.get("SEGTUTOR_CACHE"):
    _cache = tempfile.mkdtemp(prefix="segtutor-test-cache-")
    os.environ["SEGTUTOR_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
os.environ.setdefault("MPLBACKEND", "Agg")

# -- what nbval's run of each lesson printed ------------------------------------------------
#
# tests/test_lessons.py checks that a lesson prints the same numbers every run. nbval runs
# every lesson first (testpaths lists lessons/ before tests/), and its outputs are kept here,
# so that check needs one more run of each lesson, not two.

import pytest  # noqa: E402

LESSON_OUTPUTS = pytest.StashKey[dict]()


_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_PROGRESS = re.compile(r"\d+%\|.*\| *\d+/\d+ \[")


def printed_text(outputs) -> str:
    """Everything a cell printed or returned as text (figures left out), in order."""
    parts = []
    for output in outputs or []:
        kind = output.get("output_type")
        if kind == "stream":
            text = output.get("text", "")
            if output.get("name") == "stderr":  # progress bars (tqdm without widgets) redraw with \r
                text = "".join(line for line in text.splitlines(keepends=True) if not _PROGRESS.search(line))
            parts.append(text)
        elif kind == "display_data":
            if _WIDGET_VIEW in output.get("data", {}):
                # a widget (a tqdm bar, an explorer): its text is a placeholder of the live view;
                # a bar appears when a model is trained and not when it is reloaded
                continue
            # Explicit displays only. A cell's result (execute_result) is left out: nbval runs
            # cells without history, so IPython does not suppress a result after a trailing
            # ";" there as Jupyter does, and "<Axes ...>"/"Text(...)" would differ from a real run.
            data = output.get("data", {})
            text = data.get("text/plain", "")
            if text and "image/png" not in data and not (text.startswith("<") and text.endswith(">")):
                parts.append(text)
        elif kind == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(parts)


def pytest_configure(config):
    config.stash[LESSON_OUTPUTS] = {}


def pytest_runtest_teardown(item, nextitem):
    if type(item).__name__ == "IPyNbCell" and getattr(item, "test_outputs", None) is not None:
        path = os.path.realpath(str(item.parent.path))
        item.config.stash[LESSON_OUTPUTS].setdefault(path, []).append(printed_text(item.test_outputs))
