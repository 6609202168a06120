"""A private view of the machine for one sandboxed run: its own root, ``/tmp``, ``/dev/shm``, no network.

A privilege drop (:mod:`segtutor.grading.sandbox`) keeps student code from
*writing* what is not its own, but it can still *read* every world-readable file
of the host: a course checkout's ``lessons/`` (solutions, hidden seeds), other
courses, and whatever neighbours left in the shared ``/tmp`` and ``/dev/shm``.
So, when the grader is root and the kernel allows it, each sandboxed run gets,
just before it drops its privileges:

* a **mount namespace** whose root is a small, read-only ``tmpfs`` holding only
  what a Python program needs, each bound read-only from the host: the system
  folders (``/usr``, ``/etc``, ``/bin``, ``/lib*``, ``/sys``), the interpreter
  and its packages (the grading runtime of :mod:`segtutor.grading.runtime`, which
  holds a copy of the ``segtutor`` package and nothing else of the checkout),
  and the torchvision weights cache when one is set; then its own scratch
  folder (read-write), a private ``/tmp`` and ``/dev/shm`` (size-limited
  ``tmpfs``, gone when the run ends), a minimal ``/dev`` and a ``/proc`` that
  shows only its own processes (``hidepid=2``). Home folders, ``/root``,
  ``/work``-style checkouts, other runs' scratch folders and the course folder
  are simply not there;
* a **network namespace** with nothing but a loopback interface that is down
  (the kernel then talks to the grader over Unix sockets in its scratch
  folder);
* an **IPC namespace** (System V shared memory and semaphores of its own);
* **cgroups** of its own where the machine has them (:func:`join_cgroups`): a
  share of the CPU equal to every other run's (and to one ordinary process's),
  however many processes the run starts, and a cap on its tasks.

All of it needs root (``CAP_SYS_ADMIN``) and Linux namespaces; :func:`probe`
says whether this machine allows it, and why not. Standard library only: the
launcher calls :func:`enter` as root, before it drops its privileges, and after
it nothing of the grader's own interpreter is reachable any more.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import sys

__all__ = ["Isolation", "IsolationError", "default_exposed", "enter", "join_cgroups", "probe", "remove_cgroups"]

_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "ppc64le": 203, "s390x": 217}

#: Top-level folders of the host bound read-only into every sandbox (when present).
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "sys")
#: Devices bound into the sandbox's ``/dev``.
DEVICES = ("null", "zero", "full", "random", "urandom")


class IsolationError(OSError):
    """The private view could not be set up (the message says which step failed)."""


@dataclasses.dataclass(frozen=True)
class Isolation:
    """What a sandboxed run sees of the machine.

    ``binds`` are extra folders bound read-write at the same path (the run's
    scratch folder always is), ``expose`` extra paths bound read-only.
    ``network=True`` keeps the host's network.
    """

    network: bool = False
    tmp_size: int = 256 * 2**20
    shm_size: int = 256 * 2**20
    binds: tuple = ()
    expose: tuple = ()

    def argv(self) -> list:
        out = ["--isolate", "--tmp-size", str(int(self.tmp_size)), "--shm-size", str(int(self.shm_size))]
        if self.network:
            out.append("--network")
        for path in self.binds:
            out += ["--bind", os.fspath(path)]
        for path in self.expose:
            out += ["--expose", os.fspath(path)]
        return out

    def to_dict(self) -> dict:
        return {"network": self.network, "tmp_size": int(self.tmp_size), "shm_size": int(self.shm_size),
                "binds": [os.fspath(p) for p in self.binds], "expose": [os.fspath(p) for p in self.expose]}

    @classmethod
    def from_dict(cls, data: dict) -> "Isolation":
        return cls(network=bool(data.get("network")), tmp_size=int(data.get("tmp_size", 256 * 2**20)),
                   shm_size=int(data.get("shm_size", 256 * 2**20)), binds=tuple(data.get("binds", ())),
                   expose=tuple(data.get("expose", ())))


_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc.unshare.argtypes = [ctypes.c_int]
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise IsolationError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags: int, data=None) -> None:
    enc = (lambda s: None if s is None else os.fsencode(s))
    _check(_lib().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _bind(source: str, target: str, *, writable: bool) -> None:
    _mount(source, target, None, _MS_BIND | _MS_REC)
    flags = _MS_REMOUNT | _MS_BIND | _MS_NOSUID | _MS_NODEV | (0 if writable else _MS_RDONLY)
    _mount(None, target, None, flags)


def _mountpoint(root: str, path: str, is_dir: bool) -> str:
    """Create ``root + path`` (folders on the way: root's, mode 0755) unless it exists."""
    target = root + path
    if os.path.lexists(target):
        return target
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755)
    if is_dir:
        os.mkdir(target, 0o755)
    else:
        open(target, "w").close()
    return target


def _within(path: str, folders) -> bool:
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def default_exposed(runtime=None) -> list:
    """Read-only paths a sandboxed Python needs besides the system folders.

    With a grading runtime: its interpreter and packages, and its copy of
    segtutor. Without: the interpreter's prefix and package folders, and the
    ``segtutor`` package folder itself (never the checkout around it). Also the
    torchvision weights cache (``TORCH_HOME``) when it exists.
    """
    import sysconfig

    paths = []
    if runtime is not None:
        paths += [runtime.home, runtime.pkg_dir]
    else:
        paths += [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))]
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            try:
                paths.append(sysconfig.get_path(key))
            except KeyError:
                pass
        package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
        paths.append(package)
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home and os.path.isdir(torch_home):
        paths.append(torch_home)
    out = []
    for p in paths:
        p = os.path.realpath(p)
        if p and os.path.exists(p) and p not in out:
            out.append(p)
    return out


def enter(isolation: Isolation, workdir: str, exposed=()) -> None:
    """Move this process (root, single-threaded) into its private view of the machine.

    ``workdir`` and ``isolation.binds`` stay writable at the same paths;
    ``exposed`` and ``isolation.expose`` are visible read-only; nothing else of
    the host's file system is. Raises :class:`IsolationError` when a step fails:
    the caller must then not run the untrusted program.
    """
    libc = _lib()
    os.umask(0o022)  # the folders made here must be traversable by the sandbox user
    flags = _CLONE_NEWNS | _CLONE_NEWIPC | (0 if isolation.network else _CLONE_NEWNET)
    _check(libc.unshare(flags), "unshare (mount/network namespaces)")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)

    binds = [os.path.realpath(p) for p in (workdir, *isolation.binds)]
    ro = [os.path.realpath(p) for p in (*exposed, *isolation.expose)]
    # Hold every source by a descriptor first: the new root is built on /tmp,
    # which hides whatever the host has there (scratch folders included).
    held = {}
    try:
        for path in binds + ro:
            if path not in held and os.path.exists(path):
                held[path] = os.open(path, os.O_PATH | getattr(os, "O_CLOEXEC", 0))
        new = "/tmp"
        _mount("tmpfs", new, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=4m,mode=0755")
        system = []
        for name in SYSTEM_DIRS:
            host = "/" + name
            if os.path.islink(host):
                os.symlink(os.readlink(host), new + host)
            elif os.path.isdir(host):
                _bind(host, _mountpoint(new, host, True), writable=False)
                system.append(os.path.realpath(host))
        for path in ro:
            if path in held and not _within(path, system):
                target = _mountpoint(new, path, os.path.isdir(path))
                _bind(f"/proc/self/fd/{held[path]}", target, writable=False)
        # /dev: a few devices; /dev/shm private and size-limited
        dev = _mountpoint(new, "/dev", True)
        _mount("tmpfs", dev, "tmpfs", _MS_NOSUID | _MS_NOEXEC, "size=64k,mode=0755")
        for name in DEVICES:
            if os.path.exists("/dev/" + name):
                _mount("/dev/" + name, _mountpoint(new, "/dev/" + name, False), None, _MS_BIND)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"{dev}/{name}")
        _mount("tmpfs", _mountpoint(new, "/dev/shm", True), "tmpfs", _MS_NOSUID | _MS_NODEV,
               f"size={int(isolation.shm_size)},mode=1777")
        # /proc showing only the run's own processes
        _mount("proc", _mountpoint(new, "/proc", True), "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "hidepid=2")
        # a private /tmp (and /var/tmp pointing at it), then the scratch folders
        _mount("tmpfs", _mountpoint(new, "/tmp", True), "tmpfs", _MS_NOSUID | _MS_NODEV,
               f"size={int(isolation.tmp_size)},mode=1777")
        if not os.path.lexists(new + "/var/tmp"):
            _mountpoint(new, "/var", True)
            os.symlink("/tmp", new + "/var/tmp")
        for path in binds:
            if path in held:
                _bind(f"/proc/self/fd/{held[path]}", _mountpoint(new, path, True), writable=True)
    finally:
        for fd in held.values():
            os.close(fd)
    os.chdir(new)
    machine = os.uname().machine
    if machine not in _SYS_PIVOT_ROOT:
        raise IsolationError(0, f"pivot_root: unknown system call number on {machine}")
    _check(libc.syscall(_SYS_PIVOT_ROOT[machine], b".", b"."), "pivot_root")
    _check(libc.umount2(b".", _MNT_DETACH), "detaching the host's file system")
    os.chdir("/")
    _mount(None, "/", None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)


_PROBED: dict = {}


def _kernel_version() -> tuple:
    """``(major, minor)`` of the running Linux kernel (``(0, 0)`` if it cannot be read)."""
    import re

    match = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def probe() -> str | None:
    """``None`` when sandboxed runs can be isolated here, else why not (one line).

    Tries it in a throw-away child process (a few milliseconds); the answer is
    cached for this process.
    """
    if "answer" in _PROBED:
        return _PROBED["answer"]
    if not sys.platform.startswith("linux"):
        answer = "private file system views need Linux namespaces"
    elif os.geteuid() != 0:
        answer = "private file system views need root (the grader is not root)"
    elif _kernel_version() < (5, 8):
        # before 5.8 a /proc mounted with hidepid= changes the options of the host's /proc too
        answer = f"private file system views need Linux 5.8 or later (this is {os.uname().release})"
    else:
        _lib()  # loaded before the fork: the child only makes system calls
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (child)
            os.close(read)
            message = b""
            try:
                _check(_lib().unshare(_CLONE_NEWNS | _CLONE_NEWIPC | _CLONE_NEWNET), "unshare")
                _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
                _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64k")
                _mount("proc", "/tmp", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "hidepid=2")
            except BaseException as exc:  # noqa: BLE001
                message = str(exc).encode()[:500]
            os.write(write, message)
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as fh:
            message = fh.read().decode(errors="replace")
        os.waitpid(pid, 0)
        answer = f"the kernel refused a private file system view ({message})" if message else None
    _PROBED["answer"] = answer
    return answer


# -- a fair share of the CPU and a process budget per run (cgroups) ---------------------------

_CGROUP_PREFIX = "segtutor-run-"


def _cgroup_parents() -> dict:
    """``{controller: folder}`` where this process's cpu and pids cgroups are (v1 or v2)."""
    found = {}
    try:
        with open("/proc/self/cgroup") as fh:
            own = dict((line.split(":", 2)[1], line.split(":", 2)[2].strip()) for line in fh if line.count(":") >= 2)
        with open("/proc/self/mountinfo") as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return found
    for fields in mounts:
        sep = fields.index("-")
        point, fstype, options = fields[4], fields[sep + 1], fields[sep + 3].split(",")
        if fstype == "cgroup":
            for controller in ("cpu", "pids"):
                if controller in options and controller not in found:
                    key = next((k for k in own if controller in k.split(",")), None)
                    if key is not None:
                        found[controller] = point + own[key].rstrip("/")
        elif fstype == "cgroup2" and "v2" not in found:
            found["v2"] = point + own.get("", "/").rstrip("/")
    return found


def join_cgroups(name: str, nproc: int | None) -> list:
    """Move this process (root) into cgroups of its own: a CPU share of its own, at most ``nproc`` tasks.

    Each run's cgroup has the default CPU weight, the weight of one ordinary
    process: concurrent runs share the CPU equally whatever they do (a fork
    bomb's hundreds of processes weigh as much as a neighbour's one kernel), and
    a run competes with the machine's other processes as one of them would. The
    tasks of a run are capped machine-wide. Best effort: where no cgroup
    controller is writable nothing happens. Returns the folders made.
    """
    made = []
    pid = str(os.getpid()).encode()
    parents = _cgroup_parents()
    plan = []
    if "cpu" in parents or "pids" in parents:
        if "cpu" in parents:
            plan.append((parents["cpu"], {}))
        if "pids" in parents:
            plan.append((parents["pids"], {"pids.max": nproc} if nproc else {}))
    elif "v2" in parents:
        plan.append((parents["v2"], {"pids.max": nproc} if nproc else {}))
    for parent, settings in plan:
        folder = os.path.join(parent, _CGROUP_PREFIX + name)
        try:
            os.mkdir(folder, 0o755)
        except FileExistsError:
            pass
        except OSError:
            continue
        made.append(folder)
        for key, value in settings.items():
            try:
                with open(os.path.join(folder, key), "wb") as fh:
                    fh.write(str(value).encode())
            except OSError:
                pass
        try:
            with open(os.path.join(folder, "cgroup.procs"), "wb") as fh:
                fh.write(pid)
        except OSError:
            pass
    return made


def remove_cgroups(names=None, tries: int = 20) -> int:
    """Remove the (empty) cgroups of the runs ``names`` (a name or several), or of every finished run.

    Returns how many were removed. A cgroup whose tasks are not reaped yet is
    retried for a moment when one run is named, else left for a later sweep.
    """
    import time

    if isinstance(names, (str, int)):
        names = [names]
    wanted = None if names is None else {str(n) for n in names}
    removed = 0
    for parent in set(_cgroup_parents().values()):
        try:
            entries = os.listdir(parent)
        except OSError:
            continue
        for entry in entries:
            if not entry.startswith(_CGROUP_PREFIX):
                continue
            if wanted is not None and entry[len(_CGROUP_PREFIX):] not in wanted:
                continue
            for _attempt in range(tries if wanted is not None and len(wanted) == 1 else 1):
                try:
                    os.rmdir(os.path.join(parent, entry))
                    removed += 1
                    break
                except FileNotFoundError:
                    break
                except OSError:  # tasks not reaped yet
                    time.sleep(0.01)
    return removed
