"""``python -m svmtrain`` and the ``svmtrain`` console script: the command line.

:func:`run` imports the command line inside its guard, so Ctrl-C while the program is still
starting (numpy, click and the commands take a moment to import) ends it as Ctrl-C later
does: "Interrupted.", exit 130, no traceback.
"""

import sys


def run() -> None:
    """The ``svmtrain`` command: :func:`svmtrain.cli.run`, with Ctrl-C during start-up handled."""
    try:
        from svmtrain.cli import run as run_cli

        run_cli()
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)


if __name__ == "__main__":
    run()
