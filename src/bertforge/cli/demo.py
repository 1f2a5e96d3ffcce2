"""Run the whole pipeline offline on the standard library's docstrings: learn a vocabulary,
pretrain a small BERT, fine-tune its top layers on a word-order task and compare it with a
bag-of-words baseline on held-out sentences. Writes the models, the data and a report with plots."""

from __future__ import annotations

import argparse

from bertforge.cli.options import Number, flat_settings, time_budget

NAME = "demo"
SUMMARY = "the quick start: pretrain and fine-tune a small BERT offline in minutes"
EPILOG = "example: bertforge demo --out bertforge-demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``DemoSettings`` a user sets, their defaults read from the settings.

    ``bertforge.apps.demo`` imports no torch at module level, so reading it here
    keeps ``--help`` fast.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--quick"])
    >>> args.out, args.seed, args.quick, args.time_budget
    ('bertforge-demo', 0, True, None)
    """
    from bertforge.apps.demo import DemoSettings

    defaults = flat_settings(DemoSettings)
    parser.add_argument("--out", default=defaults["out"], help="folder for the models, data and report")
    parser.add_argument("--model", default=defaults["model"],
                        help="fine-tune this pretrained model directory instead of pretraining one")
    parser.add_argument("--time-budget", help="pretraining time: 90s, 2m ... (default: 2m; 10s with --quick)")
    parser.add_argument("--seed", type=Number(0, 2**32 - 1, whole=True), default=defaults["seed"],
                        help="the task's sentences, the models' initial weights and their shuffling")
    parser.add_argument("--quick", action="store_true", default=defaults["quick"],
                        help="a 10-second pretraining and a slice of the task, to check an installation; "
                             "its figures mean nothing")
    parser.add_argument("--quiet", action="store_true", default=defaults["quiet"],
                        help="no progress bars; the summary table only")


def settings(args: argparse.Namespace):
    """The ``DemoSettings`` the options ask for."""
    from bertforge.apps.demo import DemoSettings

    return DemoSettings(out=args.out, model=args.model, seed=args.seed, quiet=args.quiet, quick=args.quick,
                        time_budget=time_budget(args))


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its summary table."""
    from bertforge.apps.demo import run_demo, summary_table

    print(summary_table(run_demo(settings(args))))
    return 0
