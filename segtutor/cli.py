"""The ``segtutor`` command.

::

    segtutor open      open the lessons in JupyterLab
    segtutor doctor    versions, device, widgets, data and weights available
    segtutor bench     run the benchmarks and print their figures
    segtutor release   write student versions of the lessons (instructors)
    segtutor grade     grade a folder of submissions (instructors)
"""

from __future__ import annotations

import argparse
import os
import sys


def _open(args) -> int:
    from segtutor.doctor import lessons_dir

    lessons = lessons_dir()
    if lessons is None:
        print("segtutor open: no lessons/ folder found; run it from the course checkout.", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "jupyter", "lab", str(lessons)]
    if args.no_browser:
        command.append("--no-browser")
    interactive = sys.stdin is not None and sys.stdin.isatty() and not os.environ.get("CI")
    if args.dry_run or not interactive:
        print("The course is installed. To open it in JupyterLab, run:")
        print("  " + " ".join(command))
        return 0
    print(f"Opening {lessons} in JupyterLab (stop it with Ctrl-C).", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


def _doctor(args) -> int:
    from segtutor import doctor

    return doctor.main()


def _bench(args) -> int:
    from segtutor import bench

    return bench.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segtutor", description="An image segmentation course.")
    from segtutor import __version__

    parser.add_argument("--version", action="version", version=f"segtutor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("open", help="open the lessons in JupyterLab")
    p.add_argument("--no-browser", action="store_true", help="start the server without opening a browser")
    p.add_argument("--dry-run", action="store_true",
                   help="print the command instead of running it (the default without a terminal or with CI set)")
    p.set_defaults(func=_open)

    p = sub.add_parser("doctor", help="report versions, device, widgets, data and weights")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("bench", help="run the benchmarks and print their figures")
    from segtutor import bench

    bench.add_arguments(p)
    p.set_defaults(func=_bench)

    from segtutor import grading

    grading.add_cli(sub)
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
