"""Export a fine-tuned classifier to ONNX (optionally int8) as one folder: graph, tokenizer
and labels. The graph is checked against the PyTorch model on a sample before the folder is
written; bertforge predict and evaluate run the folder through ONNX Runtime."""

from __future__ import annotations

import argparse

from bertforge.cli.options import COUNT, Number

NAME = "export"
SUMMARY = "export a fine-tuned classifier to ONNX (fp32 or int8), checked"
EPILOG = "example: bertforge export --format onnx --int8 --model runs/trec --out runs/trec-int8"

# bertforge.apps.export's DEFAULT_TOLERANCE, DEFAULT_MIN_AGREEMENT and DEFAULT_OPSET: that module
# imports torch, too slow for every --help, so tests/test_cli.py holds these equal to them.
TOLERANCE = 1e-4
MIN_AGREEMENT = 0.98
OPSET = 18


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, the new folder and the check the export must pass.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--model", "runs/trec", "--out", "runs/trec-int8", "--int8"])
    >>> args.int8, args.tolerance, args.min_agreement, args.opset
    (True, 0.0001, 0.98, 18)
    """
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="the exported format")
    parser.add_argument("--model", required=True, help="directory written by bertforge finetune")
    parser.add_argument("--out", required=True, help="new folder for the exported model")
    parser.add_argument("--int8", action="store_true", help="quantize the weights to int8 (smaller, faster on CPU)")
    parser.add_argument("--sample", help="texts for the check (default: the training file, else random words)")
    parser.add_argument("--text-column", help="text column of --sample")
    parser.add_argument("--tolerance", type=Number(low=0), default=TOLERANCE, help="largest logit difference allowed (fp32)")
    parser.add_argument("--min-agreement", type=Number(0, 1), default=MIN_AGREEMENT,
                        help="least share of equal predictions (int8)")
    parser.add_argument("--opset", type=COUNT, default=OPSET, help="ONNX opset version")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")


def run(args: argparse.Namespace) -> int:
    """Export, check, and print the check's summary."""
    from bertforge.apps.export import export_onnx

    check = export_onnx(args.model, args.out, int8=args.int8, sample=args.sample, text_column=args.text_column,
                        tolerance=args.tolerance, min_agreement=args.min_agreement, opset=args.opset,
                        overwrite=args.overwrite)
    print(f"exported to {args.out}: {check.summary()}")
    return 0
