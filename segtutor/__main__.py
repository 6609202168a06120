"""``python -m segtutor``: the ``segtutor`` command."""

if __name__ == "__main__":
    from segtutor.tools.cli import main

    raise SystemExit(main())
