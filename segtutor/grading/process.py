"""Running an untrusted program and reading what it left behind, safely.

Shared by the clean room (:mod:`segtutor.grading.cleanroom`), the sandbox
launcher (:mod:`segtutor.grading.sandbox`) and the scheduler
(:mod:`segtutor.grading.course`). Standard library only.

Examples
--------
>>> import sys, tempfile
>>> with tempfile.TemporaryDirectory() as scratch:
...     result = run_killable([sys.executable, "-c", "import sys; sys.stderr.write('hi')"], scratch, 30)
>>> result.returncode, result.timed_out, result.stderr_tail
(0, False, 'hi')
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess

__all__ = ["LaunchResult", "read_tail", "run_killable"]


@dataclasses.dataclass(frozen=True)
class LaunchResult:
    """How an untrusted process ended."""

    returncode: int | None
    timed_out: bool
    stderr_tail: str = ""


def run_killable(argv: list, workdir: str, timeout: float, *, env=None, cleanup=None) -> LaunchResult:
    """Run ``argv`` in its own session in ``workdir``; at ``timeout`` kill its whole process group.

    stdout is discarded and stderr kept in ``workdir/stderr.txt`` (its tail is returned).
    ``cleanup()`` runs once the process is gone, also after a time-out.
    """
    err_path = os.path.join(workdir, "stderr.txt")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err, start_new_session=True, env=env,
        )
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if cleanup is not None:
                cleanup()
            proc.wait()
    return LaunchResult(None if timed_out else proc.returncode, timed_out, read_tail(err_path))


def read_tail(path: str, size: int = 2000) -> str:
    """The last ``size`` bytes of a regular file as text; ``""`` for anything else.

    The file may have been left by untrusted code: links are not followed
    (``O_NOFOLLOW``), the open never blocks (``O_NONBLOCK``: a FIFO put in its
    place cannot hang the reader), and only a regular file is read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as fh:
        try:
            st = os.fstat(fd)
            import stat

            if not stat.S_ISREG(st.st_mode):
                return ""
            fh.seek(max(0, st.st_size - size))
            return fh.read(size).decode("utf-8", "replace")
        except OSError:
            return ""
