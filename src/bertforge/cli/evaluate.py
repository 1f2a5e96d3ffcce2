"""Metrics of a fine-tuned model on a labeled file; with --out, a report with plots too.

The file is read as the model's training files were (the columns and label layout in its
bertforge.json); the column, label and delimiter options override that for a file laid out
differently.
"""

from __future__ import annotations

import argparse

from bertforge.cli.options import add_answers, add_columns, add_inference, add_tag_column, add_unknown_labels, long_text
from bertforge.errors import UsageError

NAME = "evaluate"
SUMMARY = "score a fine-tuned model on a labeled file"
EPILOG = "example: bertforge evaluate --model runs/trec --data trec/test.csv --out runs/trec-eval"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, the labeled file, its columns and where the report goes.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--model", "runs/trec", "--data", "test.csv", "--unknown-labels", "drop"])
    >>> args.out, args.unknown_labels, args.long_text
    (None, 'drop', None)
    >>> parser.parse_args(["--model", "m", "--data", "t.csv", "--label-separator", "|"]).label_separator
    '|'
    """
    parser.add_argument("--model", required=True, help="directory written by bertforge finetune")
    parser.add_argument("--data", required=True, help="labeled file")
    parser.add_argument("--out", help="write metrics.json, report.md and plots here (a new folder, or an "
                                      "earlier report with --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace the earlier report in --out")
    add_columns(parser)
    parser.add_argument("--label-column", help="name or position of the label column (default: as trained)")
    parser.add_argument("--label-columns",
                        help="several 0/1 label columns, comma-separated (multi-label; default: as trained)")
    parser.add_argument("--label-separator",
                        help="labels joined by this in one cell (multi-label; default: as trained)")
    parser.add_argument("--delimiter", help="field delimiter (detected when omitted)")
    add_tag_column(parser)
    add_unknown_labels(parser)
    add_inference(parser)
    add_answers(parser)


def run(args: argparse.Namespace) -> int:
    """Print the metrics summary, and write the report when ``--out`` is given."""
    from bertforge.apps.output_folder import check_report_folder, report_folder
    from bertforge.apps.predictor import Predictor

    label_columns = label_columns_of(args.label_columns)
    if args.label_separator == "":
        raise UsageError("--label-separator must be one or more characters (like '|'), got ''")
    if args.out:  # refused before the model loads and the data is scored, not after
        check_report_folder(args.out, args.model, args.overwrite)
    predictor = Predictor.load(args.model, device=args.device, long_text=long_text(args))
    predictor.task.set_decoding(n_best=args.n_best, max_answer_length=args.max_answer_length,
                                null_threshold=args.null_threshold)
    metrics = predictor.evaluate(args.data, unknown=args.unknown_labels, batch_size=args.batch_size,
                                 text_column=args.text_column, label_column=args.label_column,
                                 text_pair_column=args.text_pair_column, tag_column=args.tag_column,
                                 label_columns=label_columns, label_separator=args.label_separator,
                                 delimiter=args.delimiter)
    if metrics["dropped_rows"]:
        print(f"{args.data}: dropped {metrics['dropped_rows']} {predictor.task.examples_name} whose labels training never saw")
    print(predictor.task.summary(metrics))
    if args.out:
        with report_folder(args.out, args.model, args.overwrite) as staging:
            predictor.task.write_report(staging, metrics, None, title=f"bertforge evaluation: {args.data}")
        print(f"report in {args.out}")
    return 0


def label_columns_of(text: str | None) -> list[str] | None:
    """The ``--label-columns`` names, comma-separated.

    >>> label_columns_of("sport, news"), label_columns_of(None)
    (['sport', 'news'], None)
    """
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise UsageError(f"--label-columns {text!r} has an empty column name; pass names like sport,news")
    return names
