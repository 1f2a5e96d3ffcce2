"""The ``bertforge`` command: the parser assembled from the command modules, and the error policy.

Subcommands in the manner of ``git``: each has ``--help`` with an example. Exit
codes: 0 on success, 1 when a job fails, 2 on bad usage (an option value out of
its range too). Errors are one line on stderr; ``--debug``, before or after the
command, shows the traceback as well.

Each command is a module of this package with

- its docstring: the command's description in ``--help``;
- ``NAME``, ``SUMMARY`` (its line in ``bertforge --help``) and ``EPILOG`` (its example);
- ``SHOW_DEFAULTS = True`` where its ``--help`` lists every default;
- ``add_arguments(parser)``, its options, and ``run(args) -> int``, the job.

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
from bertforge.cli.options import add_debug
from bertforge.errors import BertforgeError, UsageError
from bertforge.training.interrupts import TrainingInterrupted

# The order of ``bertforge --help``.
COMMANDS = (demo, inspect, tokenize, convert, finetune, evaluate, predict, export, estimate, vocab, pretrain,
            fill_mask, embed, serve)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the global options and one subparser per command.

    >>> parser = build_parser()
    >>> args = parser.parse_args(["inspect", "./bert", "--debug"])
    >>> args.command, args.model, args.debug
    ('inspect', './bert', True)
    """
    parser = argparse.ArgumentParser(
        prog="bertforge", description="BERT on your own data.",
        epilog="example: bertforge inspect ./my-bert --fine-tune-layers 2",
    )
    parser.add_argument("--version", action="version", version=f"bertforge {__version__}")
    add_debug(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        formatter = argparse.ArgumentDefaultsHelpFormatter if getattr(command, "SHOW_DEFAULTS", False) \
            else argparse.HelpFormatter
        subparser = commands.add_parser(command.NAME, help=command.SUMMARY, description=command.__doc__,
                                        epilog=command.EPILOG, formatter_class=formatter)
        command.add_arguments(subparser)
        add_debug(subparser, on_command=True)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``bertforge`` command line and return its exit code.

    A failed job is one line on stderr and exit code 1:

    >>> import contextlib
    >>> with contextlib.redirect_stderr(sys.stdout):
    ...     main(["demo", "--time-budget", "soon"])
    bertforge: error: time budget 'soon' is not understood; write e.g. 90s, 20m, 1.5h or 1h30m
    1
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
