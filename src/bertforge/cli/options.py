"""Options that several commands share, each written once, the types their values parse with,
and how ``--help`` shows their defaults.

Nothing here imports torch or the jobs: the parser is built on every run of
``bertforge``, ``--help`` included.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from bertforge.errors import UsageError
from bertforge.training.arguments import check_number, describe_range

LONG_TEXT_MODES = ["truncate", "head-tail", "sliding-window"]
POOLINGS = ["mean", "cls", "pooled"]
UNKNOWN_LABELS = ["error", "drop"]


@dataclass(frozen=True)
class Number:
    """An option's type: a number in a range, refused as the command line is read (exit 2).

    The range is worded as the settings' own checks word theirs
    (:func:`~bertforge.training.arguments.check_number`).

    >>> Number(low=1, whole=True)("8"), Number(0, 1)("0.5")
    (8, 0.5)
    >>> Number(low=1, whole=True)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a whole number of at least 1, got 0
    >>> Number(0, 1)("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a number from 0 to 1, got nan
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    whole: bool = False

    def __call__(self, text: str) -> int | float:
        wanted = describe_range(self.low, self.high, low_open=self.low_open, high_open=self.high_open,
                                whole=self.whole)
        try:
            value = int(text) if self.whole else float(text)
            check_number("", value, self.low, self.high, low_open=self.low_open, high_open=self.high_open,
                         whole=self.whole)
        except ValueError:  # not a number, or out of the range (UsageError is a ValueError too)
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {_shown(text)}") from None
        return value


def _shown(text: str) -> str:
    """A value as an error quotes it: a number as written, anything else in quotes."""
    try:
        float(text)
    except ValueError:
        return repr(text)
    return text.strip()


# The numbers most options take.
COUNT = Number(low=1, whole=True)  # batch sizes, steps, answers kept: at least one
POSITIVE = Number(low=0, low_open=True)  # tolerances, rates, durations: above zero
FINITE = Number()  # a score or a threshold: any finite number, negative too


def layers(value: str) -> int | str:
    """A ``--fine-tune-layers`` value: a count of top layers, or ``all``.

    >>> layers("2"), layers("all")
    (2, 'all')
    >>> layers("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a whole number of at least 0, or all; got '-1'
    """
    if value == "all":
        return value
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, or all; got {value!r}")
    return count


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``20m``, ``1.5h`` or ``1h30m``; anything else is bad usage.

    >>> parse_duration("20m"), parse_duration("1h30m"), parse_duration("45")
    (1200.0, 5400.0, 45.0)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    bertforge.errors.UsageError: time budget 'soon' is not understood; write e.g. 90s, 20m, 1.5h or 1h30m
    """
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", value)
        if not value or parts is None:
            raise UsageError(f"time budget {text!r} is not understood; write e.g. 90s, 20m, 1.5h or 1h30m")
        hours, minutes, secs = (float(g) if g else 0.0 for g in parts.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise UsageError(f"time budget {text!r} must be more than zero")
    return seconds


class DefaultsFormatter(argparse.HelpFormatter):
    """``--help`` that ends each option's line with its default, once.

    An option says ``(default: ...)`` in its own words where its value is worked out
    later (None here: "half a window", "as the model was trained"); every other
    option with a value of its own gets it appended. A flag's False and a None are
    not defaults worth a word.

    >>> parser = argparse.ArgumentParser(prog="x", formatter_class=DefaultsFormatter)
    >>> _ = parser.add_argument("--rate", type=float, default=0.5, help="how fast")
    >>> _ = parser.add_argument("--stride", type=int, help="step (default: half a window)")
    >>> _ = parser.add_argument("--quiet", action="store_true", help="say less")
    >>> print(parser.format_help())  # doctest: +NORMALIZE_WHITESPACE
    usage: x [-h] [--rate RATE] [--stride STRIDE] [--quiet]
    <BLANKLINE>
    options:
      -h, --help       show this help message and exit
      --rate RATE      how fast (default: 0.5)
      --stride STRIDE  step (default: half a window)
      --quiet          say less
    <BLANKLINE>
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "(default" in text or "%(default)" in text or default is None or default is argparse.SUPPRESS:
            return text
        if isinstance(default, bool) or action.nargs == 0:  # flags: on when given
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text  # a positional argument that must be given has no default to show
        return f"{text} (default: %(default)s)"


def time_budget(args: argparse.Namespace) -> float | None:
    """The ``--time-budget`` option in seconds, or None when it was not given.

    >>> time_budget(argparse.Namespace(time_budget="2m")), time_budget(argparse.Namespace(time_budget=None))
    (120.0, None)
    """
    return parse_duration(args.time_budget) if args.time_budget else None


def flat_settings(settings: type | object) -> dict[str, Any]:
    """Each field of a settings dataclass and its default (``dataclasses.MISSING`` when required),
    or of a settings object and its value.

    A field that is itself a dataclass contributes its own fields instead, so options
    stay flat however the settings are grouped.

    >>> @dataclasses.dataclass
    ... class Inner:
    ...     rate: float = 0.5
    >>> @dataclasses.dataclass
    ... class Outer:
    ...     name: str
    ...     inner: Inner = dataclasses.field(default_factory=Inner)
    >>> flat_settings(Outer) == {"name": dataclasses.MISSING, "rate": 0.5}
    True
    >>> flat_settings(Outer("run", Inner(0.1)))
    {'name': 'run', 'rate': 0.1}
    """
    flat: dict[str, Any] = {}
    for field in dataclasses.fields(settings):
        if not isinstance(settings, type):
            value = getattr(settings, field.name)
        elif field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            value = dataclasses.MISSING
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            flat.update(flat_settings(value))
        else:
            flat[field.name] = value
    return flat


def add_debug(parser: argparse.ArgumentParser, *, on_command: bool = False) -> None:
    """``--debug``: on the top-level parser, and again on each command so it may follow the command name.

    A command's copy leaves the value alone unless given, so ``--debug`` before the
    command still counts.

    >>> parser = argparse.ArgumentParser()
    >>> add_debug(parser)
    >>> commands = parser.add_subparsers()
    >>> add_debug(commands.add_parser("run"), on_command=True)
    >>> parser.parse_args(["--debug", "run"]).debug, parser.parse_args(["run", "--debug"]).debug
    (True, True)
    >>> parser.parse_args(["run"]).debug
    False
    """
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if on_command else False,
                        help="show the traceback of an error")


def add_optimizer(group: argparse.ArgumentParser | argparse._ArgumentGroup, *, learning_rate: float,
                  warmup_ratio: float) -> None:
    """AdamW's settings and the schedule's warm-up, which fine-tuning and pretraining share
    (each with its own defaults); then clipping and accumulation.

    >>> parser = argparse.ArgumentParser()
    >>> add_optimizer(parser, learning_rate=5e-5, warmup_ratio=0.1)
    >>> args = parser.parse_args(["--max-grad-norm", "0"])
    >>> args.learning_rate, args.warmup_ratio, args.max_grad_norm, args.gradient_accumulation
    (5e-05, 0.1, 0.0, 1)
    """
    group.add_argument("--learning-rate", type=float, default=learning_rate, help="AdamW's peak learning rate")
    group.add_argument("--weight-decay", type=float, default=0.01, help="AdamW's weight decay")
    group.add_argument("--warmup-ratio", type=float, default=warmup_ratio,
                       help="share of the steps the learning rate warms up over, then decays linearly")
    group.add_argument("--max-grad-norm", type=float, default=1.0, help="clip gradients to this norm; 0 turns "
                                                                        "clipping off")
    group.add_argument("--gradient-accumulation", type=int, default=1, help="batches added up into one step")


def add_columns(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The text columns of a labeled or unlabeled file: ``--text-column`` and ``--text-pair-column``.

    >>> parser = argparse.ArgumentParser()
    >>> add_columns(parser)
    >>> parser.parse_args(["--text-column", "question"]).text_column
    'question'
    """
    parser.add_argument("--text-column", help="name or 0-based position of the text column")
    parser.add_argument("--text-pair-column", help="second text, for pair tasks")


def add_tag_column(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--tag-column``: where word-tagged files keep the tag.

    >>> parser = argparse.ArgumentParser()
    >>> add_tag_column(parser)
    >>> parser.parse_args(["--tag-column", "-1"]).tag_column, parser.parse_args(["--tag-column", "ner"]).tag_column
    (-1, 'ner')
    """
    parser.add_argument("--tag-column", type=column_spec,
                        help="word-tagged files: 0-based column of the tag in CoNLL, or its key in JSONL "
                             "(default: the last column; tags in JSONL)")


def add_answers(parser: argparse.ArgumentParser | argparse._ArgumentGroup, saved: bool = True) -> None:
    """How a question answering model picks its answers: ``--n-best``, ``--max-answer-length``
    and ``--null-threshold``; ``saved``: on a fine-tuned model (defaults: as saved).

    >>> parser = argparse.ArgumentParser()
    >>> add_answers(parser)
    >>> args = parser.parse_args(["--n-best", "5"])
    >>> args.n_best, args.max_answer_length, args.null_threshold
    (5, None, None)
    >>> parser = argparse.ArgumentParser()
    >>> add_answers(parser, saved=False)
    >>> parser.parse_args([]).n_best
    20
    """
    default = " (default: as the model was saved)" if saved else ""
    parser.add_argument("--n-best", type=COUNT, default=None if saved else 20,
                        help="question answering: the best answers kept per question" + default)
    parser.add_argument("--max-answer-length", type=COUNT, default=None if saved else 30,
                        help="question answering: the longest answer, in word pieces" + default)
    parser.add_argument("--null-threshold", type=FINITE,
                        help="question answering: answer nothing when the no-answer score beats the best answer's "
                             "by more than this" + (default or " (default: the best on the validation questions, "
                                                               "where some have no answer)"))


def column_spec(text: str) -> int | str:
    """A column given on the command line: a position when it is a whole number, else a name."""
    return int(text) if text.lstrip("-").isdigit() else text


def add_unknown_labels(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str | None = None) -> None:
    """``--unknown-labels``: what to do with a label training never saw.

    >>> parser = argparse.ArgumentParser()
    >>> add_unknown_labels(parser)
    >>> parser.parse_args([]).unknown_labels
    'error'
    """
    parser.add_argument("--unknown-labels", choices=UNKNOWN_LABELS, default="error",
                        help=help or "a label training never saw: stop with its row (error), or leave the row "
                                     "out (drop)")


def add_pooling(parser: argparse.ArgumentParser, help: str) -> None:
    """``--pooling``: how token states become one embedding.

    >>> parser = argparse.ArgumentParser()
    >>> add_pooling(parser, help="pooling")
    >>> parser.parse_args(["--pooling", "cls"]).pooling
    'cls'
    """
    parser.add_argument("--pooling", choices=POOLINGS, default="mean", help=help)


def add_long_text(parser: argparse.ArgumentParser | argparse._ArgumentGroup, as_trained: bool = False,
                  aggregate: bool = True) -> None:
    """The one long-text setting of finetune, evaluate, predict and embed; ``as_trained``: of a
    fine-tuned model (defaults: as it was trained); ``aggregate``: offer ``--window-aggregate``
    (not where the windows are always averaged, as embed's are).

    >>> parser = argparse.ArgumentParser()
    >>> add_long_text(parser)
    >>> args = parser.parse_args(["--stride", "64"])
    >>> args.long_text, args.stride, args.window_aggregate
    (None, 64, None)
    >>> parser = argparse.ArgumentParser()
    >>> add_long_text(parser, aggregate=False)
    >>> long_text(parser.parse_args(["--stride", "64"]))
    LongText(mode='sliding-window', stride=64, aggregate='mean')
    """
    trained = " (default: as the model was trained)"
    parser.add_argument("--long-text", choices=LONG_TEXT_MODES,
                        help="texts longer than the window: keep the start, a quarter from the start and the "
                             "rest from the end, or windows every --stride tokens"
                             + (trained if as_trained else " (default: truncate)"))
    parser.add_argument("--stride", "--doc-stride", type=COUNT,
                        help="sliding-window: tokens between window starts; word tagging: words between window "
                             "starts; question answering: passage pieces between window starts, the step, not "
                             "the overlap run_qa.py calls its stride"
                             + (trained if as_trained else " (default: half a window; for question answering "
                                                           "128, or half the room a question leaves)"))
    if aggregate:
        parser.add_argument("--window-aggregate", choices=["mean", "max"],
                            help="sliding-window: combine the windows' logits by mean or max"
                                 + (trained if as_trained else " (default: mean)"))


def long_text(args: argparse.Namespace):
    """The LongText the options ask for, or None to keep the model's own setting.

    A stride alone asks for sliding windows.

    >>> long_text(argparse.Namespace(long_text=None, stride=None, window_aggregate=None)) is None
    True
    >>> long_text(argparse.Namespace(long_text=None, stride=64, window_aggregate=None)).mode
    'sliding-window'
    """
    from bertforge.text.long_text import LongText

    aggregate = getattr(args, "window_aggregate", None)  # a command without the option averages
    if args.long_text is None and args.stride is None and aggregate is None:
        return None
    mode = args.long_text or ("sliding-window" if args.stride is not None else "truncate")
    return LongText(mode, args.stride, aggregate or "mean")


def add_inference(parser: argparse.ArgumentParser) -> None:
    """How a fine-tuned model runs over a file (evaluate, predict): batch size, device, long texts.

    >>> parser = argparse.ArgumentParser()
    >>> add_inference(parser)
    >>> args = parser.parse_args(["--batch-size", "8", "--device", "cpu"])
    >>> args.batch_size, args.device, args.long_text
    (8, 'cpu', None)
    """
    parser.add_argument("--batch-size", type=COUNT, help="texts per model run (default: 128; 32 for ONNX)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: a GPU when there is one)")
    add_long_text(parser, as_trained=True)
