"""Test-session settings shared by the unit tests, the doctests and nbval's lesson runs."""

import atexit
import os
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
