"""Metrics of a fine-tuned model on a labeled file; with --out, a report with plots too."""

from __future__ import annotations

import argparse

from bertforge.cli.options import add_answers, add_columns, add_inference, add_tag_column, add_unknown_labels, long_text

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
    """
    parser.add_argument("--model", required=True, help="directory written by bertforge finetune")
    parser.add_argument("--data", required=True, help="labeled file")
    parser.add_argument("--out", help="write metrics.json, report.md and plots here (a new folder, or an "
                                      "earlier report with --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace the earlier report in --out")
    add_columns(parser)
    parser.add_argument("--label-column")
    add_tag_column(parser)
    add_unknown_labels(parser)
    add_inference(parser)
    add_answers(parser)


def run(args: argparse.Namespace) -> int:
    """Print the metrics summary, and write the report when ``--out`` is given."""
    from bertforge.apps.output_folder import check_report_folder, report_folder
    from bertforge.apps.predictor import Predictor

    if args.out:  # refused before the model loads and the data is scored, not after
        check_report_folder(args.out, args.model, args.overwrite)
    predictor = Predictor.load(args.model, device=args.device, long_text=long_text(args))
    predictor.task.set_decoding(n_best=args.n_best, max_answer_length=args.max_answer_length,
                                null_threshold=args.null_threshold)
    metrics = predictor.evaluate(args.data, unknown=args.unknown_labels, batch_size=args.batch_size,
                                 text_column=args.text_column, label_column=args.label_column,
                                 text_pair_column=args.text_pair_column, tag_column=args.tag_column)
    if metrics["dropped_rows"]:
        print(f"{args.data}: dropped {metrics['dropped_rows']} {predictor.task.examples_name} whose labels training never saw")
    print(predictor.task.summary(metrics))
    if args.out:
        with report_folder(args.out, args.model, args.overwrite) as staging:
            predictor.task.write_report(staging, metrics, None, title=f"bertforge evaluation: {args.data}")
        print(f"report in {args.out}")
    return 0
