"""The ``svmtrain`` command line: a thin layer over the library.

Each subcommand lives in a module of this package and only parses options, calls library
functions and prints. Library errors (:class:`svmtrain.errors.SvmtrainError`) become one
clear line on stderr and a non-zero exit here, at the edge, and nowhere else.
"""

import click

from svmtrain import __version__
from svmtrain.cli.configs import configs
from svmtrain.cli.data import data
from svmtrain.cli.evaluate import evaluate_cmd
from svmtrain.cli.features import features
from svmtrain.cli.fit import fit
from svmtrain.cli.gradcheck import gradcheck
from svmtrain.cli.plot import plot
from svmtrain.cli.predict import predict_cmd
from svmtrain.cli.search import search
from svmtrain.cli.sweep_step import sweep_step
from svmtrain.errors import ArgumentError, SvmtrainError


class _UserError(click.ClickException):
    """A ClickException that keeps the exit code of the library error it wraps."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Group(click.Group):
    """Turns library errors and Ctrl-C into a message and an exit code, never a traceback.

    A :class:`ProblemSizeError` is a usage error (exit 2) of the option named like its
    argument (num_examples: --num-examples).
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ArgumentError as err:
            # A bad value of a library argument is a usage error of the option of that name.
            command = self.get_command(ctx, ctx.invoked_subcommand)
            raise click.BadParameter(
                str(err),
                ctx=click.Context(command, info_name=ctx.invoked_subcommand, parent=ctx),
                param_hint=["--" + name.replace("_", "-") for name in err.arguments],
            ) from None
        except SvmtrainError as err:
            raise _UserError(str(err), err.exit_code) from None
        except KeyboardInterrupt:
            raise _UserError("Interrupted.", 130) from None
        except MemoryError:
            raise _UserError(
                "Out of memory: the data or the arrays asked for do not fit. Use fewer examples "
                "(e.g. data.num_train, --num-examples) or a machine with more memory.",
                1,
            ) from None


@click.group(
    cls=_Group,
    commands=[
        data,
        features,
        fit,
        evaluate_cmd,
        predict_cmd,
        gradcheck,
        sweep_step,
        search,
        plot,
        configs,
    ],
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "-V", "--version", prog_name="svmtrain")
def main() -> None:
    """Train, sweep and gradient-check linear classifiers (multiclass SVM, softmax)
    on CIFAR-10 with numpy.

    \b
    Start here:
      svmtrain data download          fetch and cache CIFAR-10
      svmtrain fit -c default         train the shipped default config
                                      (svmtrain configs list shows them all)
      svmtrain gradcheck --synthetic  check the analytic gradient
    """
