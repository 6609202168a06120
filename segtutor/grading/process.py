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

__all__ = ["MAX_FILES", "MAX_SUBMISSION_BYTES", "LaunchResult", "TreeCopy", "copy_tree", "hidden_entry",
           "read_regular", "read_tail", "run_killable"]

#: Default caps on one submission: files, and bytes in all.
MAX_FILES = 200
MAX_SUBMISSION_BYTES = 100 * 2**20


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


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (``VmHWM``), since it started its program.

    ``VmHWM`` belongs to the process's own address space, so a worker started with
    fork + exec does not count its parent's pages; ``ru_maxrss`` (the fallback where
    ``/proc`` is missing) survives ``exec`` and would.
    """
    import resource

    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


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


# -- reading folders left by others: no links, no FIFOs, bounded ------------------------------


@dataclasses.dataclass
class TreeCopy:
    """What :func:`copy_tree` did: files copied (relative paths) and entries skipped, with why."""

    copied: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    total_bytes: int = 0

    def notes(self, verb: str = "", limit: int = 3) -> list:
        """One line per skipped entry, ``"{rel}{verb}: {why}"``; many with one reason make one line."""
        by_reason: dict = {}
        for rel, why in self.skipped:
            by_reason.setdefault(why, []).append(rel)
        out = []
        for why, rels in by_reason.items():
            if len(rels) <= limit:
                out += [f"{rel}{verb}: {why}" for rel in rels]
            else:
                out.append(f"{len(rels)} entries ({', '.join(rels[:limit])}, ...){verb}: {why}")
        return out


def hidden_entry(rel: str, is_dir: bool = False) -> bool:
    """Whether a submission's entry is never copied: a hidden one (Jupyter's checkpoints among them).

    >>> hidden_entry(".ipynb_checkpoints/a.ipynb", False), hidden_entry("a.ipynb", False)
    (True, False)
    """
    return any(part.startswith(".") for part in rel.split(os.sep))


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"


def copy_tree(src: str, dst: str | None, *, max_files: int = 200, max_bytes: int = 100 * 2**20,
              ignore=None, write=None) -> TreeCopy:
    """Copy the regular files under ``src`` to ``dst``, following no link at any level.

    Symbolic links (to files or folders), FIFOs, sockets and devices are skipped
    and listed with the reason; so are files past ``max_files`` or past
    ``max_bytes`` in total (a single file larger than ``max_bytes`` too). Every
    folder and file is opened relative to its parent's descriptor with
    ``O_NOFOLLOW`` (and files ``O_NONBLOCK``), so a link swapped in meanwhile is
    refused too. ``ignore(relpath, is_dir)`` leaves entries out silently.
    ``write(relpath, data)`` replaces the plain write into ``dst`` (``dst=None``
    only checks). ``src`` itself must be a real folder, not a link.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     os.mkdir(f"{d}/in"); _ = open(f"{d}/in/a.txt", "w").write("hi")
    ...     os.symlink("/etc/hostname", f"{d}/in/b.txt")
    ...     done = copy_tree(f"{d}/in", f"{d}/out")
    ...     done.copied, done.notes(), open(f"{d}/out/a.txt").read()
    (['a.txt'], ['b.txt: a symbolic link (not followed)'], 'hi')
    """
    import stat

    out = TreeCopy()
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)
    try:
        top = os.open(src, flags_dir)
    except OSError as exc:
        why = "a symbolic link (not followed)" if os.path.islink(src) else f"not a readable folder ({exc.strerror})"
        out.skipped.append((".", why))
        return out

    def save(rel: str, data: bytes) -> None:
        if write is not None:
            write(rel, data)
        elif dst is not None:
            path = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)

    def walk(dirfd: int, rel: str) -> None:
        with os.scandir(dirfd) as it:  # notebooks first: they are what the caps must not push out
            entries = sorted(it, key=lambda e: (not e.name.endswith(".ipynb"), e.name))
        for entry in entries:
            name = entry.name
            relname = os.path.join(rel, name) if rel else name
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except OSError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if ignore is not None and ignore(relname, is_dir):
                continue
            if stat.S_ISLNK(st.st_mode):
                out.skipped.append((relname, "a symbolic link (not followed)"))
            elif is_dir:
                try:
                    fd = os.open(name, flags_dir, dir_fd=dirfd)
                except OSError as exc:
                    out.skipped.append((relname, f"a folder that cannot be read ({exc.strerror})"))
                    continue
                try:
                    walk(fd, relname)
                finally:
                    os.close(fd)
            elif not stat.S_ISREG(st.st_mode):
                out.skipped.append((relname, "not a regular file (a FIFO, socket or device)"))
            elif len(out.copied) >= max_files:
                out.skipped.append((relname, f"more than {max_files} files"))
            elif out.total_bytes + st.st_size > max_bytes:
                out.skipped.append((relname, f"too large ({_mib(st.st_size)}; at most {_mib(max_bytes)} in all)"))
            else:
                data = _read_regular_at(dirfd, name, max_bytes - out.total_bytes)
                if data is None:
                    out.skipped.append((relname, "changed or grew while it was read"))
                    continue
                save(relname, data)
                out.copied.append(relname)
                out.total_bytes += len(data)

    try:
        walk(top, "")
    finally:
        os.close(top)
    return out


def _read_regular_at(dirfd: int, name: str, limit: int):
    """Contents of the regular file ``name`` in ``dirfd`` (no links, no FIFOs), or None past ``limit`` bytes."""
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(name, flags, dir_fd=dirfd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        data = fh.read(st.st_size + 1)
    return None if len(data) > st.st_size else data


def read_regular(path: str, max_bytes: int) -> bytes:
    """The contents of a regular file left by untrusted code, at most ``max_bytes``.

    Raises ``ValueError`` for a link, a FIFO or anything else that is not a
    regular file, or a file larger than ``max_bytes``; the open never blocks.
    """
    parent, name = os.path.split(os.path.abspath(path))
    dirfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        data = _read_regular_at(dirfd, name, max_bytes)
    finally:
        os.close(dirfd)
    if data is None:
        raise ValueError(f"{name} is not a regular file of at most {max_bytes} bytes")
    return data
