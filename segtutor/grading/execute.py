"""The one plain notebook executor: a fresh kernel runs a notebook top to bottom.

Used by ``segtutor bench`` (lesson times, and the plain baseline the grader's
overhead is measured against), by the test suite (student releases run to the
end) and by the release checks. The grader's own, sandboxed execution is
:class:`segtutor.grading.nbgrader_pp.SandboxedExecute`, built on the same nbclient.

From a shell, ``python -m segtutor.grading.execute [--allow-errors] NOTEBOOK...``
executes each notebook and prints one JSON line per notebook with its wall time
and the kernel's peak resident memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

__all__ = ["execute_notebook", "measure"]


def _kernel_env(extra: dict | None = None) -> dict:
    """This environment with segtutor importable from anywhere and a non-interactive backend."""
    from segtutor.grading.sandbox import env_with_pythonpath

    env = env_with_pythonpath()
    env.setdefault("MPLBACKEND", "Agg")
    env.update(extra or {})
    return env


def execute_notebook(nb, *, cwd=None, timeout: float = 600, allow_errors: bool = False, env: dict | None = None):
    """Execute a notebook (a path or a ``NotebookNode``) in a fresh ``python3`` kernel.

    Returns the executed ``NotebookNode`` (outputs filled in). With
    ``allow_errors=False`` the first failing cell without the ``raises-exception``
    tag stops the run with ``nbclient.exceptions.CellExecutionError``. ``env``
    adds variables to the kernel's environment. ``cwd`` defaults to the
    notebook's folder (or the current one for a ``NotebookNode``).
    """
    import nbformat
    from nbclient import NotebookClient

    if isinstance(nb, (str, os.PathLike)):
        path = os.fspath(nb)
        cwd = cwd or os.path.dirname(os.path.abspath(path))
        nb = nbformat.read(path, as_version=4)
    cwd = os.fspath(cwd or os.getcwd())
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": cwd}})
    kernel_env = _kernel_env(env)
    client.execute(env=kernel_env)
    return nb


def measure(paths, *, allow_errors: bool = False, timeout: float = 900) -> list:
    """Execute each notebook in a separate process; ``[{"path", "seconds", "peak_rss_mib"}]``.

    The peak memory is that of the kernel (the process's largest child).
    """
    out = []
    for path in paths:
        argv = [sys.executable, "-m", "segtutor.grading.execute", "--json"]
        argv += ["--allow-errors"] if allow_errors else []
        proc = subprocess.run(argv + [os.fspath(path)], capture_output=True, text=True, timeout=timeout,
                              env=_kernel_env())
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{path} did not run to the end: " + " | ".join(tail))
        out.append(json.loads(lines[-1]))
    return out


def main(argv=None) -> int:
    import argparse
    import resource

    parser = argparse.ArgumentParser(prog="python -m segtutor.grading.execute",
                                     description="Execute notebooks top to bottom in fresh kernels.")
    parser.add_argument("--allow-errors", action="store_true", help="continue past failing cells")
    parser.add_argument("--json", action="store_true", help="print wall time and peak RSS as JSON lines")
    parser.add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        start = time.perf_counter()
        execute_notebook(path, allow_errors=args.allow_errors)
        seconds = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if args.json:
            print(json.dumps({"path": path, "seconds": round(seconds, 3), "peak_rss_mib": round(peak_kib / 1024, 1)}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
