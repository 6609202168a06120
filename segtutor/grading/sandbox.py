"""Run untrusted code (student notebooks) with resource limits as an unprivileged user.

The launcher is a tiny program that prepares its own process and then
``exec``\\ s the command, so the command *is* the sandboxed process (same pid)::

    python -m segtutor.grading.sandbox [--memory 2G] [--cpu SECONDS] [--fsize 256M] \\
        [--user nobody] [--workdir DIR] -- CMD ...

Before the ``exec`` it

* sets resource limits: ``RLIMIT_DATA`` (the memory limit: heap and private
  mappings, so a huge ``np.ones`` fails at once with ``MemoryError``; unlike
  ``RLIMIT_AS`` it leaves room for the big *virtual* reservations of thread
  stacks and BLAS), a larger ``RLIMIT_AS`` backstop (it also catches shared
  anonymous mappings, which ``RLIMIT_DATA`` does not count), ``RLIMIT_CORE=0``,
  ``RLIMIT_FSIZE``, ``RLIMIT_CPU``, ``RLIMIT_NPROC`` and ``RLIMIT_NOFILE``;
* when started as root, drops privileges for good: ``setgroups([])``,
  ``setgid``, ``setuid`` (default user ``nobody``) and ``PR_SET_NO_NEW_PRIVS``
  (setuid/setgid programs then give nothing back);
* with ``--isolate`` (root, Linux namespaces; see :mod:`segtutor.grading.isolation`),
  moves into a private view of the machine first: a read-only root holding only
  the system folders, the interpreter and its packages, its own scratch folder,
  a private ``/tmp`` and ``/dev/shm``, a ``/proc`` of its own processes, and no
  network;
* with ``--own-uid``, runs as a user id of its own (the run's tag, see
  :func:`tag_gid`) rather than the shared sandbox user, so that concurrent runs
  can neither signal each other nor exhaust each other's process limit;
* sets ``PR_SET_PDEATHSIG=SIGKILL`` so it dies with the process that started it;
* replaces the environment by a short allow-list, with ``HOME``, ``TMPDIR``,
  ``MPLCONFIGDIR`` and ``IPYTHONDIR`` pointing at the scratch directory, and
  ``chdir``\\ s there.

:func:`sandbox_command` builds that command line, :func:`sandboxed_launch`
returns a launcher for :mod:`segtutor.grading.cleanroom`, and
:func:`check_interpreter` tells, before any grading, whether the unprivileged
user can run this Python at all (a common trap: a Python installed under
``/root``, which is mode 700).

The module imports only the standard library: the launcher runs as root until
it drops privileges, and should be quick.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

__all__ = [
    "ForkServer",
    "Isolation",
    "Limits",
    "SandboxError",
    "check_interpreter",
    "env_with_pythonpath",
    "isolation_problem",
    "kill_tagged",
    "main",
    "parse_size",
    "prepare_dir",
    "privilege_drop_active",
    "processes_with_gids",
    "resolve_user",
    "sandbox_command",
    "sandbox_env_paths",
    "sandboxed_launch",
    "tag_gid",
]

from .isolation import Isolation  # noqa: E402  (standard library only)

DEFAULT_USER = "nobody"

#: Environment variables the sandboxed process keeps (everything else is dropped,
#: so tokens and credentials in the grader's environment never reach student code).
KEEP_ENV = (
    "PATH", "TORCH_HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TERM", "TZ",
    "PYTHONPATH", "PYTHONIOENCODING", "PYTHONHASHSEED", "PYTHONWARNINGS",
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "MPLBACKEND", "JPY_PARENT_PID", "JPY_SESSION_NAME", "PYDEVD_DISABLE_FILE_VALIDATION",
)

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38

# Group ids used to tag every process of one sandboxed run (see tag_gid). An
# unprivileged process can neither leave its group (no CAP_SETGID, and setgid
# programs are neutralised by NO_NEW_PRIVS) nor read or trace processes of
# another group, so the tag finds every descendant, double-forked daemons included.
TAG_BASE = 3_000_000_000
_tag_lock = threading.Lock()
_tag_counter = 0


class SandboxError(RuntimeError):
    """The sandbox cannot run as configured (the message says what to do)."""


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(value) -> int | None:
    """``"2G"`` -> 2147483648. Accepts ints, ``K/M/G/T`` suffixes (binary), ``"none"``.

    >>> parse_size("512M"), parse_size(1024), parse_size("none")
    (536870912, 1024, None)
    """
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value) if value > 0 else None
    text = str(value).strip()
    if text.lower() in ("", "none", "unlimited", "0"):
        return None
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 2G, 512M, 1073741824 or none)")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed process (``None`` = no limit).

    ``memory`` is ``RLIMIT_DATA``; ``address_space`` is the ``RLIMIT_AS``
    backstop, by default twice the memory limit plus 4 GiB (address space
    includes reservations that never use memory: thread stacks, BLAS buffers,
    shared libraries).
    """

    memory: int | None = 2 * 2**30
    address_space: int | None = -1  # -1: derived from memory
    cpu: int | None = None
    fsize: int | None = 256 * 2**20
    nproc: int | None = 512
    nofile: int | None = 1024

    def effective_address_space(self) -> int | None:
        if self.address_space == -1:
            return None if self.memory is None else 2 * self.memory + 4 * 2**30
        return self.address_space

    def argv(self) -> list:
        out = []
        for flag, value in (
            ("--memory", self.memory), ("--address-space", self.effective_address_space()),
            ("--cpu", self.cpu), ("--fsize", self.fsize), ("--nproc", self.nproc),
            ("--nofile", self.nofile),
        ):
            out += [flag, "none" if value is None else str(int(value))]
        return out


# -- users -------------------------------------------------------------------------


def privilege_drop_active(user) -> bool:
    """Whether a sandbox for ``user`` changes user: only root can, and ``user=None`` opts out."""
    return user is not None and os.geteuid() == 0


def resolve_user(user) -> tuple:
    """``(name, uid, gid)`` of a user name or numeric uid."""
    import pwd

    try:
        entry = pwd.getpwuid(int(user)) if str(user).isdigit() else pwd.getpwnam(str(user))
    except (KeyError, ValueError):
        if str(user).isdigit():
            return str(user), int(user), int(user)
        raise SandboxError(
            f"sandbox user {user!r} does not exist on this machine; choose another one "
            "(--sandbox-user) or create it"
        ) from None
    if entry.pw_uid == 0:
        raise SandboxError("the sandbox user must not be root")
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def tag_gid() -> int:
    """A fresh group id for one sandboxed run, unique among this machine's concurrent runs.

    Derived from this process's pid and a per-process counter, so runs started by
    different grading workers never share a tag.
    """
    global _tag_counter
    with _tag_lock:
        _tag_counter = (_tag_counter + 1) % 256
        return TAG_BASE + ((os.getpid() & 0x3FFFFF) << 8) + _tag_counter


def tag_range(pid: int) -> range:
    """Every tag :func:`tag_gid` can hand out in process ``pid``."""
    start = TAG_BASE + ((pid & 0x3FFFFF) << 8)
    return range(start, start + 256)


def processes_with_gids(gids) -> list:
    """Pids of the live processes (not zombies) with any of ``gids`` as real, effective, saved or fs group."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                for line in fh:
                    if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                        break  # a zombie: already dead, only waiting to be reaped
                    if line.startswith("Gid:"):
                        fields = line.split()
                        # real, effective, saved, filesystem: any of them carrying the tag
                        if any(int(g) in gids for g in fields[1:]):
                            found.append(int(entry))
                        break
        except (OSError, ValueError):
            continue
    return found


def kill_tagged(gids, rounds: int = 20) -> int:
    """SIGKILL every process whose group is one of ``gids``; returns how many were killed.

    Stops them first and repeats until none is left, so a process that keeps
    forking cannot outrun the sweep.
    """
    if isinstance(gids, int):
        gids = {gids}
    gids = set(gids)
    killed = 0
    for _ in range(rounds):
        pids = [p for p in processes_with_gids(gids) if p != os.getpid()]
        if not pids:
            break
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        killed += len(pids)
        time.sleep(0.01)
    if os.geteuid() == 0:
        from .isolation import remove_cgroups

        remove_cgroups(gids)
    return killed


def prepare_dir(path: str, gid: int | None) -> None:
    """Make ``path`` the sandbox's private scratch folder.

    With privilege drop: owned by root and the run's tag group, mode ``2770``:
    the sandboxed process (and only it, not other sandboxed runs) may read and
    write, and new files inherit the group. Without: left as the caller made it.
    """
    if gid is None:
        return
    for root, dirs, files in os.walk(path):
        for name in dirs:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                os.chown(full, 0, gid)
                os.chmod(full, 0o2770)
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                os.chown(full, 0, gid)
                os.chmod(full, (os.stat(full).st_mode & 0o777) | 0o060)
    os.chown(path, 0, gid)
    os.chmod(path, 0o2770)


# -- checking that the user can run this Python ------------------------------------------


def _can_access(st: os.stat_result, uid: int, gid: int, bit: int) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid == gid:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def sandbox_env_paths() -> list:
    """Folders the sandboxed interpreter must reach: its binary, stdlib, site-packages, segtutor."""
    import sysconfig

    paths = [os.path.realpath(sys.executable)]
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            paths.append(os.path.realpath(sysconfig.get_path(key)))
        except KeyError:
            pass
    paths.append(_package_root())
    seen, out = set(), []
    for p in paths:
        if p and p not in seen:
            seen.add(p)
            out.append(p)
    return out


def check_interpreter(user=DEFAULT_USER, *, python: str | None = None, run: bool = True,
                      scratch_root: str | None = None, isolation: Isolation | None = None) -> None:
    """Raise :class:`SandboxError` unless ``user`` can run this Python and import segtutor.

    First a quick walk over the folders (a folder the user cannot traverse is named
    in the message), then, with ``run=True``, a real start of the interpreter
    through the sandbox, as grading starts it (a user id of its own, and the
    private view of the machine when ``isolation`` is given). For this
    interpreter, the grading runtime (:mod:`segtutor.grading.runtime`) is
    prepared and announced first when none is, as ``segtutor grade`` does.
    """
    if not privilege_drop_active(user):
        return
    name, uid, gid = resolve_user(user)
    python = python or sys.executable
    if python == sys.executable and _active_runtime() is None:
        # as grading does: student code runs from a runtime it can reach, where one can be built
        from . import runtime

        try:
            runtime.activate(runtime.prepare())
        except (runtime.RuntimeUnavailable, OSError):
            pass
    rt = _active_runtime() if python == sys.executable else None
    if rt is not None:
        paths = [rt.python, rt.home, rt.pkg_dir]
    elif python == sys.executable:
        paths = sandbox_env_paths()
    else:
        paths = [os.path.realpath(python)]
    for path in paths:
        parts = path.split(os.sep)
        for i in range(2, len(parts) + 1):
            prefix = os.sep.join(parts[:i]) or os.sep
            try:
                st = os.stat(prefix)
            except OSError:
                break
            is_dir = stat.S_ISDIR(st.st_mode)
            if is_dir and not _can_access(st, uid, gid, 1):
                raise SandboxError(_unreachable_message(name, prefix, st, python))
            if not is_dir and prefix == os.path.realpath(python) and not _can_access(st, uid, gid, 1):
                raise SandboxError(_unreachable_message(name, prefix, st, python))
    if not run:
        return
    with tempfile.TemporaryDirectory(prefix="segtutor-sandbox-check-", dir=scratch_root or None) as scratch:
        tag = tag_gid()
        prepare_dir(scratch, tag)
        cmd = sandbox_command(
            [python, "-c", "import segtutor.grading.runner, numpy; print('ok')"],
            Limits(), user=user, workdir=scratch, group=tag, isolation=isolation,
        )
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                                  env=env_with_pythonpath(), stdin=subprocess.DEVNULL)
        finally:
            kill_tagged(tag)
        if proc.returncode != 0 or "ok" not in proc.stdout:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            if any("private view" in line for line in tail):
                raise SandboxError(
                    f"the sandbox could not isolate student code: {' | '.join(tail)}. Grade without "
                    "isolation knowingly (--no-isolation / isolate=False), see docs/grading.md")
            if any("cannot enter its scratch folder" in line for line in tail):
                raise SandboxError(
                    f"the sandbox user {name!r} cannot reach the scratch folders under "
                    f"{os.path.dirname(scratch)}: make that folder traversable (chmod o+x), or put the "
                    "scratch folders elsewhere (TMPDIR, --scratch-dir / scratch_root=)")
            raise SandboxError(
                f"the sandbox user {name!r} cannot start {python} with segtutor and numpy "
                f"(exit code {proc.returncode}): " + " | ".join(tail) + ". " + _WHAT_TO_DO
            )


_WHAT_TO_DO = (
    "segtutor grade normally prepares a runtime the sandbox user can reach "
    "(segtutor.grading.runtime, under SEGTUTOR_RUNTIME_DIR, default /var/lib/segtutor/runtime, which "
    "must be on the interpreter's file system). Otherwise make the interpreter's folders "
    "traversable and readable by other users, choose a sandbox "
    "user that can run it (--sandbox-user / sandbox_user=), or, knowingly, grade without "
    "a privilege drop (--no-privilege-drop / sandbox_user=None: student code then runs as "
    "the grader's own user and can write the gradebook)."
)


def _unreachable_message(name, prefix, st, python) -> str:
    mode = stat.filemode(st.st_mode)
    return (
        f"the sandbox user {name!r} cannot run the Python interpreter {python}: "
        f"{prefix} is {mode} (owner uid {st.st_uid}) and {name!r} may not traverse it. "
        + _WHAT_TO_DO
    )


# -- building a sandboxed command ---------------------------------------------------------


def _package_root() -> str:
    """The folder that holds the ``segtutor`` package (site-packages, or the checkout)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def env_with_pythonpath(env: dict | None = None) -> dict:
    """``env`` (default: this process's) with segtutor's folder on PYTHONPATH.

    The sandboxed process runs in a scratch folder, so segtutor must be
    importable from there even when it is used from a source checkout.
    """
    env = dict(os.environ if env is None else env)
    root = _package_root()
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        parts.insert(0, root)
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _active_runtime():
    from .runtime import active

    return active()


def isolation_problem(user=DEFAULT_USER) -> str | None:
    """``None`` when runs of ``user`` can get a private view of the machine here, else why not.

    The view (:mod:`segtutor.grading.isolation`) needs root and Linux mount and
    network namespaces; without a privilege drop there is none.
    """
    if not privilege_drop_active(user):
        return ("without a privilege drop (grading as a non-root user, or --no-privilege-drop) student "
                "code runs with the grader's own view of the machine")
    from .isolation import probe

    return probe()


def own_uid_for(user, group) -> bool:
    """Whether a run for ``user`` tagged ``group`` gets a user id of its own (the tag).

    It does for the default sandbox user when privileges are dropped: ``nobody``
    is shared by every concurrent run, a run's own id is not. An explicitly
    chosen other account is used as it is.
    """
    return group is not None and str(user) == DEFAULT_USER and privilege_drop_active(user)


def sandbox_command(cmd, limits: Limits, *, user=DEFAULT_USER, workdir: str | None = None,
                    group: int | None = None, python: str | None = None,
                    isolation: Isolation | None = None) -> list:
    """The ``python -m segtutor.grading.sandbox ... -- CMD`` command line for ``cmd``.

    ``user=None`` keeps the current user (no privilege drop); so does running
    as a non-root user. With a tag ``group`` and the default user, the run gets
    a user id of its own (:func:`own_uid_for`). ``isolation`` (root only) gives it
    a private view of the machine (:mod:`segtutor.grading.isolation`).
    """
    argv = [python or sys.executable, "-m", "segtutor.grading.sandbox"] + limits.argv()
    if user is None:
        argv.append("--no-privilege-drop")
    else:
        argv += ["--user", str(user)]
        if group is not None:
            argv += ["--group", str(group)]
        if own_uid_for(user, group):
            argv.append("--own-uid")
        rt = _active_runtime()
        if rt is not None and privilege_drop_active(user):
            argv += ["--runtime", rt.encode()]
        if isolation is not None and privilege_drop_active(user):
            argv += isolation.argv()
    if workdir is not None:
        argv += ["--workdir", workdir]
    return argv + ["--"] + [str(c) for c in cmd]


def sandboxed_launch(limits: Limits = Limits(), user=DEFAULT_USER, server: "ForkServer | None" = None,
                     isolation: Isolation | None = None):
    """A ``launch(argv, workdir, timeout, memory=None) -> LaunchResult`` for :mod:`segtutor.grading.cleanroom`.

    The program runs through the sandbox launcher with ``limits``, as ``user``
    when the grader is root, in ``workdir`` (made private to this run), and is
    killed, with every process it started, at ``timeout`` seconds or when it ends.
    With a :class:`ForkServer`, ``python -m MODULE`` programs are started by
    forking the server instead (same sandbox, without the import time).
    ``isolation`` gives each run a private view of the machine (root only).
    """
    from .process import LaunchResult, read_tail, run_killable

    drop = privilege_drop_active(user)
    base = limits

    def launch(argv, workdir, timeout, memory=None):
        limits = base if memory is None else dataclasses.replace(base, memory=parse_size(memory))
        tag = tag_gid() if drop else None
        prepare_dir(workdir, tag)
        err_path = os.path.join(workdir, "stderr.txt")
        if server is not None and len(argv) >= 3 and argv[1] == "-m":
            try:
                code, timed_out = server.run(argv, workdir, timeout, limits, user if drop else None, tag,
                                             isolation=isolation if drop else None)
                return LaunchResult(code, timed_out, read_tail(err_path))
            except (TimeoutError, EOFError, OSError, ValueError):
                pass  # the server broke down (and was restarted): run this one the slow way
            finally:
                if tag is not None:
                    kill_tagged(tag)
        cmd = sandbox_command(argv, limits, user=user, workdir=workdir, group=tag, isolation=isolation)
        return run_killable(cmd, workdir, timeout, env=env_with_pythonpath(),
                            cleanup=(lambda: kill_tagged(tag)) if tag is not None else None)

    return launch


# -- the launcher itself ----------------------------------------------------------------


def _prctl(option: int, arg: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _set_limit(resource_mod, which: str, value) -> None:
    if value is None:
        return
    res = getattr(resource_mod, which, None)
    if res is None:
        return
    soft = hard = int(value)
    if which == "RLIMIT_CPU":
        hard = soft + 2  # SIGXCPU at the soft limit, SIGKILL two seconds later
    current_soft, current_hard = resource_mod.getrlimit(res)
    if current_hard != resource_mod.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource_mod.setrlimit(res, (soft, hard))


def _size_arg(text: str):
    return parse_size(text)


def _int_arg(text: str):
    return None if str(text).lower() in ("none", "unlimited") else int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m segtutor.grading.sandbox",
        description="Run CMD with resource limits, as an unprivileged user when started as root.",
    )
    parser.add_argument("--memory", type=_size_arg, default=2 * 2**30,
                        help="RLIMIT_DATA in bytes or with a K/M/G suffix (default 2G; 'none' for no limit)")
    parser.add_argument("--address-space", type=_size_arg, default=-1,
                        help="RLIMIT_AS backstop (default: 2 x memory + 4G)")
    parser.add_argument("--cpu", type=_int_arg, default=None, help="RLIMIT_CPU in seconds (default none)")
    parser.add_argument("--fsize", type=_size_arg, default=256 * 2**20,
                        help="largest file the process may write (default 256M)")
    parser.add_argument("--nproc", type=_int_arg, default=512, help="RLIMIT_NPROC (default 512)")
    parser.add_argument("--nofile", type=_int_arg, default=1024, help="RLIMIT_NOFILE (default 1024)")
    parser.add_argument("--user", default=None,
                        help=f"user to run as when started as root (default {DEFAULT_USER})")
    parser.add_argument("--group", default=None, help="group id to run with (default: the user's group)")
    parser.add_argument("--no-privilege-drop", action="store_true",
                        help="keep the current user even when root (student code can then do anything root can)")
    parser.add_argument("--workdir", default=None,
                        help="scratch folder: the working directory and HOME/TMPDIR (default: a new temporary one)")
    parser.add_argument("--keep-env", action="append", default=[], metavar="VAR",
                        help="also pass this environment variable through")
    parser.add_argument("--runtime", default=None, metavar="ENV_DIR:PKG_DIR",
                        help="run Python from this prepared runtime (segtutor.grading.runtime) instead of "
                             "the launcher's own interpreter")
    parser.add_argument("--own-uid", action="store_true",
                        help="run as a user id of its own, the --group tag (root only)")
    parser.add_argument("--isolate", action="store_true",
                        help="a private view of the machine: read-only system folders and interpreter, "
                             "the scratch folder, private /tmp and /dev/shm, no network (root only)")
    parser.add_argument("--network", action="store_true", help="with --isolate: keep the host's network")
    parser.add_argument("--tmp-size", type=_size_arg, default=256 * 2**20,
                        help="with --isolate: size of the private /tmp (default 256M)")
    parser.add_argument("--shm-size", type=_size_arg, default=256 * 2**20,
                        help="with --isolate: size of the private /dev/shm (default 256M)")
    parser.add_argument("--bind", action="append", default=[], metavar="DIR",
                        help="with --isolate: also keep this folder, read-write (the workdir always is)")
    parser.add_argument("--expose", action="append", default=[], metavar="PATH",
                        help="with --isolate: also show this path, read-only")
    parser.add_argument("--fork-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- followed by the command to run")
    return parser


def _sandbox_env(workdir: str, keep=()) -> dict:
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV or k in keep}
    env.setdefault("PATH", os.defpath)
    for var in ("HOME", "TMPDIR", "MPLCONFIGDIR", "IPYTHONDIR"):
        env[var] = workdir
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _enter(limits: Limits, user, group, workdir: str, parent: int, env: dict, *,
           own_uid: bool = False, isolation: Isolation | None = None, exposed=()) -> None:
    """Turn this process into the sandbox (view, limits, user, parent-death signal, cwd).

    Raises SandboxError / OSError when that is not possible; the caller must then
    not run the untrusted command.
    """
    import ctypes  # noqa: F401  (used by _prctl after the privilege drop, when the
    import resource  # interpreter's own files may be out of reach: import both now)

    from . import isolation as isolation_mod

    values = dict(
        memory=limits.memory, address=limits.effective_address_space(), cpu=limits.cpu,
        fsize=limits.fsize, nproc=limits.nproc, nofile=limits.nofile,
    )
    if privilege_drop_active(user):
        name, uid, gid = resolve_user(user)
        if group is not None:
            gid = int(group) if str(group).isdigit() else __import__("grp").getgrnam(group).gr_gid
        if own_uid:
            if group is None or not str(group).isdigit():
                raise SandboxError("a user id of its own (--own-uid) needs a numeric --group tag")
            uid, name = gid, "sandbox"
        env["USER"] = env["LOGNAME"] = name
        if group is not None and str(group).isdigit():
            # an equal CPU share and a task budget of its own, where cgroups allow
            isolation_mod.join_cgroups(str(group), limits.nproc)
        if isolation is not None:
            try:
                isolation_mod.enter(isolation, workdir, exposed)
            except OSError as exc:
                raise SandboxError(f"no private view of the machine for student code: {exc}") from None
            workdir = os.path.realpath(workdir)
        # Limits first (root may set them), then the user: the hard limits stay.
        _apply_limits(resource, values, nproc=True)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid or os.getgroups():
            raise SandboxError("the privilege drop did not take effect")
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:
            raise SandboxError("the privilege drop can be undone")
    else:
        # RLIMIT_NPROC counts every process of the real user: without a privilege
        # drop that would be the grader's own processes too, so it is left alone.
        _apply_limits(resource, values, nproc=False)
    # After the credentials change: commit_creds() clears the parent-death signal.
    if sys.platform.startswith("linux"):
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        if os.getppid() != parent:  # the parent died before the signal was armed
            raise SandboxError("the parent process is gone")
    os.umask(0o077)
    try:
        os.chdir(workdir)
    except PermissionError:
        raise SandboxError(
            f"the sandboxed process (uid {os.getuid()}) cannot enter its scratch folder {workdir}: "
            "it or one of its parent folders is not open to it") from None


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.fork_server:
        return _serve()
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("segtutor.sandbox: no command given (put it after --)", file=sys.stderr)
        return 2
    parent = os.getppid()
    workdir = os.path.realpath(args.workdir or tempfile.mkdtemp(prefix="segtutor-sandbox-"))
    env = _sandbox_env(workdir, args.keep_env)
    rt = None
    if args.runtime:
        cmd, rt = _use_runtime(cmd, env, args.runtime)
    user = None if args.no_privilege_drop else (args.user or DEFAULT_USER)
    isolation = exposed = None
    if args.isolate:
        from .isolation import default_exposed

        isolation = Isolation(network=args.network, tmp_size=args.tmp_size or 0, shm_size=args.shm_size or 0,
                              binds=tuple(args.bind), expose=tuple(args.expose))
        exposed = default_exposed(rt)
    limits = Limits(memory=args.memory, address_space=args.address_space, cpu=args.cpu,
                    fsize=args.fsize, nproc=args.nproc, nofile=args.nofile)
    try:
        if args.workdir is None and privilege_drop_active(user):
            _, uid, gid = resolve_user(user)
            os.chown(workdir, uid, gid)
        _enter(limits, user, args.group, workdir, parent, env, own_uid=args.own_uid,
               isolation=isolation, exposed=exposed or ())
    except (SandboxError, OSError, KeyError) as exc:
        print(f"segtutor.sandbox: {exc}", file=sys.stderr)
        return 126
    try:
        os.execvpe(cmd[0], cmd, env)
    except OSError as exc:
        print(f"segtutor.sandbox: cannot run {cmd[0]}: {exc}. {_WHAT_TO_DO if user else ''}".rstrip(),
              file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 0  # pragma: no cover (exec does not return)


def _use_runtime(cmd: list, env: dict, encoded: str) -> list:
    """Run this interpreter's programs with the runtime's interpreter and files instead."""
    from .runtime import Runtime

    rt = Runtime.decode(encoded)
    if os.path.realpath(cmd[0]) == os.path.realpath(sys.executable):
        cmd = [rt.python] + list(cmd[1:])
    env.update(rt.env())
    return cmd, rt


def _apply_limits(resource, values: dict, nproc: bool) -> None:
    _set_limit(resource, "RLIMIT_CORE", 0)
    _set_limit(resource, "RLIMIT_DATA", values["memory"])
    _set_limit(resource, "RLIMIT_AS", values["address"])
    _set_limit(resource, "RLIMIT_CPU", values["cpu"])
    _set_limit(resource, "RLIMIT_FSIZE", values["fsize"])
    if nproc:
        _set_limit(resource, "RLIMIT_NPROC", values["nproc"])
    _set_limit(resource, "RLIMIT_NOFILE", values["nofile"])


# -- a fork server: sandboxed Python jobs without paying for the imports each time ----------------
#
# A clean-room check is a fresh interpreter that imports the notebook's modules
# (matplotlib, scikit-image, segtutor...) and then runs a few milliseconds of the
# learner's code: the imports are 95% of its time. The fork server is a separate,
# trusted process that imports the *instructor's* import lines once and then, per
# job, fork()s a child that closes every inherited file descriptor, enters the
# sandbox exactly like the launcher (limits, setgroups/setgid/setuid, parent-death
# signal, NO_NEW_PRIVS, scratch cwd, scrubbed environment) and runs the job's
# ``python -m MODULE ARGS`` in-process. The server holds no student data, and a
# child can change nothing in it (separate address space, no shared descriptors).


class ForkServer:
    """Client side of the fork server (one per grading worker).

    ``preload`` lines are trusted Python (the instructor's import statements)
    run once in the server.
    """

    def __init__(self, preload: str = ""):
        self.preload = preload
        self.proc = None
        self.lock = threading.Lock()
        self._start()

    def _start(self):
        env = env_with_pythonpath()
        python = sys.executable
        rt = _active_runtime()
        if rt is not None and os.geteuid() == 0:
            # The server's children drop privileges: they must import from the runtime.
            env.update(rt.env())
            python = rt.python
        # One BLAS thread: a process that forks should have no other threads.
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
        self.proc = subprocess.Popen(
            [python, "-m", "segtutor.grading.sandbox", "--fork-server"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd="/", env=env, start_new_session=True,
        )
        self._request({"preload": self.preload}, timeout=300)

    def _request(self, message: dict, timeout: float) -> dict:
        import json
        import select

        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("the fork server did not answer")
        line = self.proc.stdout.readline()
        if not line:
            raise EOFError("the fork server stopped")
        return json.loads(line)

    def run(self, argv, workdir: str, timeout: float, limits: Limits, user, group, *,
            isolation: Isolation | None = None):
        """Run ``argv`` (``[python, -m, module, args...]``) like the launcher would; -> (returncode, timed_out)."""
        with self.lock:
            message = {
                "argv": list(argv), "workdir": workdir, "timeout": timeout, "user": user, "group": group,
                "limits": dataclasses.asdict(limits), "own_uid": own_uid_for(user, group),
                "isolation": None if isolation is None else isolation.to_dict(),
            }
            try:
                reply = self._request(message, timeout + 30)
            except (TimeoutError, EOFError, OSError, ValueError):
                self.close()
                self._start()
                raise
            return reply.get("returncode"), bool(reply.get("timed_out"))

    def close(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            self.proc = None


def _serve() -> int:
    """The fork server's loop (see :class:`ForkServer`)."""
    import json

    parent = os.getppid()
    if sys.platform.startswith("linux"):
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            return 1
    proto_in = sys.stdin.buffer
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything printed (an import, say) must not reach the protocol channel
    sys.stdout = sys.stderr
    for raw in proto_in:
        if not raw.strip():
            continue
        request = json.loads(raw)
        if "preload" in request:
            namespace: dict = {}
            for line in (request["preload"] or "").splitlines():
                try:
                    exec(compile(line, "<preload>", "exec"), namespace)
                except BaseException:
                    pass
            try:
                import segtutor.grading.runner  # noqa: F401
                from IPython.core.inputtransformer2 import TransformerManager  # noqa: F401
            except Exception:
                pass
            reply = {"ok": True}
        else:
            reply = _serve_one(request)
        proto_out.write((json.dumps(reply) + "\n").encode())
    return 0


def _serve_one(request: dict) -> dict:
    import select

    workdir = request["workdir"]
    limits = Limits(**request["limits"])
    err_path = os.path.join(workdir, "stderr.txt")
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the server loop
        code = 126
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o660)
            os.dup2(err, 2)
            os.closerange(3, 1 << 16)
            os.setsid()
            env = _sandbox_env(workdir, keep=("PYTHONHOME", "LD_LIBRARY_PATH"))
            isolation = exposed = None
            if request.get("isolation") is not None:
                from .isolation import default_exposed

                isolation = Isolation.from_dict(request["isolation"])
                exposed = default_exposed(_active_runtime())
            _enter(limits, request.get("user"), request.get("group"), workdir, parent, env,
                   own_uid=bool(request.get("own_uid")), isolation=isolation, exposed=exposed or ())
            workdir = os.path.realpath(workdir)
            os.environ.clear()
            os.environ.update(env)
            argv = request["argv"]
            if len(argv) >= 3 and argv[1] == "-m":
                import runpy

                sys.argv = [argv[2]] + list(argv[3:])
                sys.path[0] = workdir
                try:
                    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            else:
                os.execvpe(argv[0], argv, env)
        except BaseException as exc:  # noqa: BLE001 - report and leave
            try:
                os.write(2, f"segtutor.sandbox: {type(exc).__name__}: {exc}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code if isinstance(code, int) else 1)
    timed_out = False
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    deadline = time.monotonic() + float(request["timeout"])
    status = None
    if fd is not None:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        os.close(fd)
        timed_out = not ready
    else:
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            timed_out = True
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    if request.get("group") is not None:
        kill_tagged(int(request["group"]))
    if status is None:
        _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        code = -os.WTERMSIG(status)
    else:
        code = os.WEXITSTATUS(status)
    return {"returncode": None if timed_out else code, "timed_out": timed_out}


if __name__ == "__main__":
    sys.exit(main())
