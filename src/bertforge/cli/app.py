"""The ``bertforge`` command: the parser assembled from the command modules, and the error policy.

Subcommands in the manner of ``git``: each has ``--help`` with an example, and
every option there has a line that ends with its default. Exit codes: 0 on
success, 1 when a job fails, 2 on bad usage (an option value out of its range
too, whether the parser or a later check finds it). Errors are one line on
stderr; ``--debug``, before or after the command, shows the traceback as well.

Each command is a module of this package with

- its docstring: the command's description in ``--help``;
- ``NAME``, ``SUMMARY`` (its line in ``bertforge --help``) and ``EPILOG`` (its example);
- ``add_arguments(parser)``, its options, and ``run(args) -> int``, the job.

A number's range is checked by its type (``cli.options.Number``) where the command
line alone knows it, or by the job's settings (their ``UsageError``) where those
check it for Python callers too; ranges that depend on the model are checked as soon
as its config is read. ``tests/test_cli_options.py`` walks every option for all of this.

A command module imports its job inside ``run``, so building the parser stays
quick enough for every ``--help``.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from bertforge import __version__
from bertforge.cli import (
    convert, demo, embed, estimate, evaluate, export, fill_mask, finetune, inspect, predict, pretrain, serve,
    tokenize, vocab,
)
from bertforge.cli.options import DefaultsFormatter, add_debug
from bertforge.errors import BertforgeError, UsageError
from bertforge.training.interrupts import TrainingInterrupted

# The order of ``bertforge --help``.
COMMANDS = (demo, inspect, tokenize, convert, finetune, evaluate, predict, export, estimate, vocab, pretrain,
            fill_mask, embed, serve)


class CommandLineParser(argparse.ArgumentParser):
    """argparse's parser with its errors on one line, as every other error of ``bertforge`` is.

    >>> import contextlib
    >>> parser = CommandLineParser(prog="bertforge tokenize")
    >>> _ = parser.add_argument("--max-seq-length", type=int)
    >>> with contextlib.redirect_stderr(sys.stdout):
    ...     try:
    ...         parser.parse_args(["--max-seq-length", "abc"])
    ...     except SystemExit as exit:
    ...         print("exit", exit.code)
    bertforge: error: argument --max-seq-length: invalid int value: 'abc' (see bertforge tokenize --help)
    exit 2
    """

    def error(self, message: str):
        # argparse prints the whole usage first: for finetune that is a screenful above the one line that matters.
        # The line starts as the job's own errors do, whichever command's parser found it.
        self.exit(2, f"{self.prog.split()[0]}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the global options and one subparser per command.

    >>> parser = build_parser()
    >>> args = parser.parse_args(["inspect", "./bert", "--debug"])
    >>> args.command, args.model, args.debug
    ('inspect', './bert', True)
    """
    parser = CommandLineParser(
        prog="bertforge", description="BERT on your own data.",
        epilog="example: bertforge inspect ./my-bert --fine-tune-layers 2",
    )
    parser.add_argument("--version", action="version", version=f"bertforge {__version__}")
    add_debug(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        subparser = commands.add_parser(command.NAME, help=command.SUMMARY, description=command.__doc__,
                                        epilog=command.EPILOG, formatter_class=DefaultsFormatter)
        command.add_arguments(subparser)
        add_debug(subparser, on_command=True)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``bertforge`` command line and return its exit code.

    A failed job is one line on stderr and exit code 1; bad usage, exit code 2:

    >>> import contextlib
    >>> with contextlib.redirect_stderr(sys.stdout):
    ...     main(["tokenize", "no-such-model", "Who?"])
    bertforge: error: no-such-model: no such file or directory; pass a BERT model directory (with vocab.txt or tokenizer.json) or the path of one of those files
    1
    >>> with contextlib.redirect_stderr(sys.stdout):
    ...     main(["demo", "--time-budget", "soon"])
    bertforge: error: time budget 'soon' is not understood; write e.g. 90s, 20m, 1.5h or 1h30m
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except TrainingInterrupted as error:  # the checkpoint is saved: say how to go on, exit as the signal asks
        print(f"bertforge: {error}", file=sys.stderr)
        return error.exit_code
    except UsageError as error:  # an option value out of its range is bad usage, as argparse's own errors are
        if args.debug:
            traceback.print_exc()
        print(f"bertforge: error: {error}", file=sys.stderr)
        return 2
    except BertforgeError as error:
        if args.debug:
            traceback.print_exc()
        print(f"bertforge: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bertforge: interrupted", file=sys.stderr)
        return 130  # the shell's code for a command ended by Ctrl+C
    except Exception as error:  # a failure nobody foresaw: still one line, the details on request
        if args.debug:
            traceback.print_exc()
        reason = str(error).splitlines()[0] if str(error) else ""
        print(f"bertforge: error: {type(error).__name__}: {reason} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
