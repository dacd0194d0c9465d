"""What the CLI tests share: running ``svmtrain`` in-process and checking a clean failure."""

from click.testing import CliRunner

from svmtrain.cli import main


def run(*args, env=None):
    """``svmtrain ARGS`` through Click's test runner; each argument is passed as str(arg)."""
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def assert_clean_failure(result, exit_code, *needles):
    """The command exited with ``exit_code``, without a traceback, and each needle is on stderr."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr
