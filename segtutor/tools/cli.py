"""The ``segtutor`` command.

::

    segtutor open      your workspace of the lessons (student versions) in JupyterLab
    segtutor doctor    versions, device, widgets, data and weights available
    segtutor fetch     pre-cache the pretrained weights and datasets (hubs, full profile)
    segtutor bench     run the benchmarks and print their figures
    segtutor release   write student versions of the lessons (instructors)
    segtutor grade     grade a folder of submissions (instructors)
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path


def _open(args) -> int:
    from segtutor import paths
    from segtutor.tools import workspace

    lessons = paths.lessons_dir()
    if lessons is None:
        print("segtutor open: no lessons/ folder found; run it from the course checkout.", file=sys.stderr)
        return 2
    interactive = sys.stdin is not None and sys.stdin.isatty() and not os.environ.get("CI")
    if args.instructor:
        command = workspace.lab_command(lessons, args.no_browser)
        if args.dry_run or not interactive:
            print("The lessons' sources (solutions included) open in JupyterLab with:")
            print("  " + shlex.join(command))
            return 0
        print(f"Opening the lessons' sources in {lessons} (solutions included; stop with Ctrl-C).", flush=True)
        os.execv(sys.executable, command)
        return 0  # not reached
    folder = Path(args.folder).expanduser().resolve() if args.folder else workspace.default_workspace()
    command = workspace.lab_command(folder, args.no_browser)
    config = folder / workspace.STATE / "jupyter"
    if args.dry_run:
        print(f"segtutor open would put the student versions of the lessons in {folder}"
              + (f" (and the solutions in {folder / workspace.SOLUTIONS})" if args.solutions else "")
              + ", then run:")
        print(f"  JUPYTER_CONFIG_DIR={shlex.quote(str(config))} " + shlex.join(command))
        return 0
    try:
        report = workspace.prepare(folder, lessons, solutions=args.solutions)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"segtutor open: {exc}", file=sys.stderr)
        return 1
    print(f"Your workspace: {folder}" + (" (new)" if report.created else "")
          + f", with the student versions of the lessons in {lessons}")
    for line in report.lines:
        print(f"  {line}")
    if args.solutions:
        print(f"The solutions are in {folder / workspace.SOLUTIONS}.")
    if not interactive:
        print("To open it in JupyterLab, run:")
        print(f"  JUPYTER_CONFIG_DIR={shlex.quote(str(config))} " + shlex.join(command))
        return 0
    print("Opening it in JupyterLab (stop it with Ctrl-C).", flush=True)
    os.execve(sys.executable, command, workspace.jupyter_environment(folder))
    return 0  # not reached


def _doctor(args) -> int:
    from segtutor.tools import doctor

    return doctor.main()


def _fetch(args) -> int:
    from segtutor.tools import fetch

    return fetch.main(args)


def _bench(args) -> int:
    from segtutor.tools import bench

    return bench.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segtutor", description="An image segmentation course.")
    from segtutor import __version__

    parser.add_argument("--version", action="version", version=f"segtutor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "open", help="open your workspace of the lessons (student versions) in JupyterLab",
        description="Put the student versions of the lessons in your workspace (created on first use; "
                    "a notebook you changed is never overwritten: a new version arrives beside it) and "
                    "open it in JupyterLab.")
    p.add_argument("folder", nargs="?", default=None,
                   help="your workspace (default: workspace/ in the course checkout, or $SEGTUTOR_WORKSPACE)")
    p.add_argument("--solutions", action="store_true",
                   help="also put the solutions in <workspace>/solutions/")
    p.add_argument("--instructor", action="store_true",
                   help="open the lessons' sources (solutions included) with nbgrader's instructor tools")
    p.add_argument("--no-browser", action="store_true", help="start the server without opening a browser")
    p.add_argument("--dry-run", action="store_true",
                   help="say what would be done, without doing it (without a terminal or with CI set, "
                        "the workspace is prepared and the command to open it printed)")
    p.set_defaults(func=_open)

    p = sub.add_parser("doctor", help="report versions, device, widgets, data and weights")
    p.set_defaults(func=_doctor)

    p = sub.add_parser(
        "fetch", help="download the pretrained weights and datasets of the full profile (checksums checked)",
        description="Download the torchvision weights and the datasets (VOC 2012, Oxford-IIIT Pet, "
                    "Penn-Fudan) the full profile uses, into $TORCH_HOME and $SEGTUTOR_DATA, checking "
                    "every file's checksum; what is present is kept.")
    from segtutor.tools import fetch

    fetch.add_arguments(p)
    p.set_defaults(func=_fetch)

    p = sub.add_parser("bench", help="run the benchmarks and print their figures")
    from segtutor.tools import bench

    bench.add_arguments(p)
    p.set_defaults(func=_bench)

    from segtutor.grading import course

    course.add_cli(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
