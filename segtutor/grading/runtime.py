"""A read-only Python runtime that the sandbox user can reach, wherever the course lives.

When the grader runs as root it drops student code to an unprivileged user
(``nobody``). That user must be able to run Python and import the packages the
lessons use; but the course's interpreter and virtual environment often live
under a private folder (``/root``, or a home folder of mode 0700). Rather than
opening folders the course does not own, the grader prepares a **runtime**:

* ``<location>/env-<fingerprint>/python/``: the interpreter, its standard
  library and the environment's site-packages, laid out as a plain Python
  installation. Files are **hard links** to the originals (no copy of the
  gigabytes of torch; same inode, same read-only mode); the folders are new,
  owned by root and traversable by everyone;
* ``<location>/env-<fingerprint>/pkg-<fingerprint>/segtutor/``: a copy of the
  installed ``segtutor`` package only — never the checkout around it, so student
  code cannot read the instructor's ``lessons/`` (solutions, hidden seeds).

It is built once and reused; the fingerprints change (and a new runtime is
built) when the environment's packages or segtutor's source change. Folders
are made under ``/var/lib/segtutor/runtime`` by default (``SEGTUTOR_RUNTIME_DIR``
chooses another), which must be on the same file system as the interpreter and
the environment (hard links cannot cross file systems); otherwise
:class:`RuntimeUnavailable` says what to do.

The grader announces the runtime to its sandbox launchers through the
``SEGTUTOR_SANDBOX_RUNTIME`` environment variable (see :func:`activate`); the
launcher then runs the runtime's interpreter instead of the grader's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import site
import stat
import sys
import sysconfig
import time

__all__ = ["ENV_VAR", "Runtime", "RuntimeUnavailable", "activate", "active", "default_location", "prepare"]

#: The grader's processes find the active runtime here (student code never sees it).
ENV_VAR = "SEGTUTOR_SANDBOX_RUNTIME"
#: Where runtimes are built unless SEGTUTOR_RUNTIME_DIR says otherwise.
DEFAULT_LOCATION = "/var/lib/segtutor/runtime"

_PYVER = f"python{sys.version_info.major}.{sys.version_info.minor}"
# Parts of the standard library student code never needs.
_SKIP_STDLIB = {"site-packages", "dist-packages", "test", "idlelib", "turtledemo", "ensurepip"}


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot be built here (the message says what to do)."""


@dataclasses.dataclass(frozen=True)
class Runtime:
    """A prepared runtime: ``env_dir`` (interpreter + packages) and ``pkg_dir`` (segtutor)."""

    env_dir: str
    pkg_dir: str

    @property
    def home(self) -> str:
        return os.path.join(self.env_dir, "python")

    @property
    def python(self) -> str:
        return os.path.join(self.home, "bin", _PYVER)

    def env(self) -> dict:
        """Environment variables that make :attr:`python` use the runtime's files only."""
        return {
            "PYTHONHOME": self.home,
            "PYTHONPATH": self.pkg_dir,
            "LD_LIBRARY_PATH": os.path.join(self.home, "lib"),
        }

    def encode(self) -> str:
        return os.pathsep.join((self.env_dir, self.pkg_dir))

    @classmethod
    def decode(cls, text: str) -> "Runtime":
        env_dir, _, pkg_dir = text.partition(os.pathsep)
        if not (os.path.isabs(env_dir) and os.path.isabs(pkg_dir)):
            raise RuntimeUnavailable(f"malformed {ENV_VAR}: {text!r}")
        return cls(env_dir, pkg_dir)


def default_location() -> str:
    return os.environ.get("SEGTUTOR_RUNTIME_DIR") or DEFAULT_LOCATION


def active() -> Runtime | None:
    """The runtime this grading process announced (see :func:`activate`), or None."""
    text = os.environ.get(ENV_VAR, "")
    return Runtime.decode(text) if text else None


def activate(runtime: Runtime | None) -> None:
    """Announce ``runtime`` to this process and the workers and launchers it starts."""
    if runtime is None:
        os.environ.pop(ENV_VAR, None)
    else:
        os.environ[ENV_VAR] = runtime.encode()


# -- fingerprints ------------------------------------------------------------------------------


def _site_dirs() -> list:
    dirs = []
    for path in [*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]:
        path = os.path.realpath(path)
        if os.path.isdir(path) and path not in dirs:
            dirs.append(path)
    return dirs


def _package_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def _skip_site_entry(name: str) -> bool:
    # the editable install's hooks point at the checkout: the runtime has its own copy instead
    return name.startswith("__editable__") and "segtutor" in name or name == "segtutor"


def _env_fingerprint() -> str:
    h = hashlib.sha256()
    h.update(f"{sys.version}\0{os.path.realpath(sys.base_prefix)}\0{os.path.realpath(sys.prefix)}".encode())
    for folder in _site_dirs():
        h.update(folder.encode())
        for name in sorted(os.listdir(folder)):
            if _skip_site_entry(name):
                continue
            st = os.lstat(os.path.join(folder, name))
            h.update(f"\0{name}\0{st.st_mtime_ns}\0{st.st_size}".encode())
    return h.hexdigest()[:16]


def _package_files() -> list:
    root = _package_dir()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")  # byte-code is rebuilt there
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")):
                out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def _package_fingerprint(files: list) -> str:
    root, h = _package_dir(), hashlib.sha256()
    for rel in files:
        with open(os.path.join(root, rel), "rb") as fh:
            h.update(rel.encode() + b"\0" + hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:16]


# -- building ----------------------------------------------------------------------------------


def _secure_dir(path: str) -> None:
    """Create ``path`` (and missing parents, mode 0755) and check nobody else can change it.

    Every existing folder on the way must be owned by root or us and writable by
    others only with the sticky bit (like ``/tmp``); ``path`` itself must be ours,
    not a link, and writable by us alone.
    """
    path = os.path.abspath(path)
    current = os.sep
    for part in path.split(os.sep)[1:]:
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            os.chmod(current, 0o755)
            st = os.lstat(current)
        if stat.S_ISLNK(st.st_mode):
            st = os.stat(current)
        if st.st_uid not in (0, os.geteuid()) or (st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX):
            raise RuntimeUnavailable(
                f"{current} can be changed by other users ({stat.filemode(st.st_mode)}, uid {st.st_uid}); "
                "set SEGTUTOR_RUNTIME_DIR to a folder only the grader can change")
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise RuntimeUnavailable(
            f"{path} must be a folder of uid {os.geteuid()} that only it can write "
            f"(it is {stat.filemode(st.st_mode)}, uid {st.st_uid}); choose another SEGTUTOR_RUNTIME_DIR")


def _link_tree(src: str, dst: str, skip=lambda rel, name: False) -> int:
    """Mirror ``src`` into ``dst``: new folders (0755), hard links to world-readable files."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        dirnames[:] = [d for d in dirnames if not skip(rel, d)]
        target = os.path.normpath(os.path.join(dst, rel))
        os.makedirs(target, mode=0o755, exist_ok=True)
        for name in dirnames:  # folders that are links (not walked by os.walk): keep them as links
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                os.symlink(os.readlink(full), os.path.join(target, name))
        for name in filenames:
            if skip(rel, name):
                continue
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and not os.path.isabs(os.readlink(full)):
                os.symlink(os.readlink(full), os.path.join(target, name))
                continue
            try:
                st = os.stat(full)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or not st.st_mode & stat.S_IROTH:
                continue  # never widen access to a file others may not read
            try:
                os.link(full, os.path.join(target, name))
            except OSError as exc:
                if exc.errno == getattr(__import__("errno"), "EXDEV"):
                    raise RuntimeUnavailable(
                        f"{dst} is on another file system than {src}, so the runtime cannot share its "
                        "files; set SEGTUTOR_RUNTIME_DIR to a folder on the same file system "
                        "(outside any private folder)") from None
                raise
            count += 1
    return count


def _build_env(final: str) -> None:
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    home = os.path.join(tmp, "python")
    base = os.path.realpath(sys.base_prefix)
    os.makedirs(os.path.join(home, "bin"), mode=0o755)
    real_python = os.path.realpath(sys.executable)
    os.link(real_python, os.path.join(home, "bin", _PYVER))
    libdir = os.path.join(base, "lib")
    os.makedirs(os.path.join(home, "lib"), mode=0o755, exist_ok=True)
    for name in os.listdir(libdir):  # libpython, for interpreters built with --enable-shared
        full = os.path.join(libdir, name)
        if name.startswith("libpython") and os.path.isfile(full):
            os.link(os.path.realpath(full), os.path.join(home, "lib", name))
    stdlib = os.path.join(libdir, _PYVER)
    _link_tree(stdlib, os.path.join(home, "lib", _PYVER),
               skip=lambda rel, name: rel == "." and name in _SKIP_STDLIB)
    site_target = os.path.join(home, "lib", _PYVER, "site-packages")
    for folder in _site_dirs():
        _link_tree(folder, site_target,
                   skip=lambda rel, name: rel == "." and _skip_site_entry(name))
    for dirpath, dirnames, _files in os.walk(tmp):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    os.chmod(tmp, 0o755)
    try:
        os.rename(tmp, final)
    except OSError:  # another grader built it at the same time
        shutil.rmtree(tmp, ignore_errors=True)


def _build_pkg(final: str, files: list) -> None:
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    root = _package_dir()
    for rel in files:
        dest = os.path.join(tmp, "segtutor", rel)
        os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
        shutil.copyfile(os.path.join(root, rel), dest)
        os.chmod(dest, 0o644)
    import compileall

    # Byte-code now, once: the sandbox cannot write it, and compiling segtutor and the
    # lesson modules on every import would cost seconds per kernel.
    compileall.compile_dir(tmp, quiet=2, workers=1)
    for dirpath, dirnames, filenames in os.walk(tmp):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(folder: str, prefix: str, keep: str, age: float) -> None:
    now = time.time()
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(prefix) and path != keep and now - os.lstat(path).st_mtime > age:
            shutil.rmtree(path, ignore_errors=True)


def prepare(location: str | None = None) -> Runtime:
    """Build (or reuse) the runtime for this interpreter, environment and segtutor; return it.

    Raises :class:`RuntimeUnavailable` when it cannot be built (not root, another
    file system, a foreign or writable folder in the way).
    """
    location = os.path.abspath(location or default_location())
    _secure_dir(location)
    env_dir = os.path.join(location, f"env-{_env_fingerprint()}")
    if not os.path.isdir(env_dir):
        _build_env(env_dir)
        _remove_stale(location, "env-", env_dir, age=3600)
    files = _package_files()
    pkg_dir = os.path.join(env_dir, f"pkg-{_package_fingerprint(files)}")
    if not os.path.isdir(pkg_dir):
        _build_pkg(pkg_dir, files)
        _remove_stale(env_dir, "pkg-", pkg_dir, age=3600)
    os.utime(env_dir)
    os.utime(pkg_dir)
    return Runtime(env_dir, pkg_dir)
