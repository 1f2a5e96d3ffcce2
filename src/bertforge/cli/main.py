"""The ``bertforge`` command.

Subcommands in the manner of ``git``: each has ``--help`` with an example. Exit
codes: 0 on success, 1 when a job fails, 2 on bad usage. Errors are one line on
stderr; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from bertforge import __version__
from bertforge.errors import BertforgeError


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print a model directory's size, weights report and per-block trainable counts."""
    from bertforge.io.model_dir import load_pretrained
    from bertforge.model.layer import BertLayer
    from bertforge.model.bert import count_parameters

    model = load_pretrained(args.model)
    config = model.config
    print(f"model: {args.model}")
    print(f"layers {config.num_hidden_layers}, hidden {config.hidden_size}, heads {config.num_attention_heads}, "
          f"intermediate {config.intermediate_size}, vocab {config.vocab_size}, "
          f"positions {config.max_position_embeddings}")
    print(f"parameters: {count_parameters(model):,}")
    print(f"weights: {model.load_report}")
    if args.fine_tune_layers is not None:
        BertLayer(model, fine_tune_layers=args.fine_tune_layers, output=args.output).summary()
    return 0


def cmd_tokenize(args: argparse.Namespace) -> int:
    """Print the WordPiece tokens and the features of one text (or a pair)."""
    from bertforge.text.features import InputExample, convert_single_example
    from bertforge.text.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_pretrained(args.model)
    example = InputExample(args.text, text_b=args.text_b)
    input_ids, input_mask, segment_ids, _ = convert_single_example(tokenizer, example, args.max_seq_length)
    real = sum(input_mask)
    print(json.dumps({
        "tokens": tokenizer.convert_ids_to_tokens(input_ids[:real]),
        "input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids,
    }))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert a TensorFlow BERT into a standard model directory: Google's original checkpoints
    (bert_config.json, vocab.txt, bert_model.ckpt.*), TF Hub TF1 modules (tfhub_module.pb) and
    TF2 SavedModels of the TF Model Garden's BertEncoder. Needs the tensorflow extra."""
    from bertforge.io.tensorflow import convert

    do_lower_case = True if args.uncased else False if args.cased else None
    result = convert(args.source, args.out, do_lower_case=do_lower_case, num_attention_heads=args.heads,
                     vocab_file=args.vocab)
    print(result.summary())
    return 0


def _layers(value: str):
    return value if value == "all" else int(value)


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune a classifier on labeled files and write a model directory with metrics and plots."""
    from bertforge.text.long_text import LongText
    from bertforge.apps.finetune import FineTuneSettings, finetune, sweep_layers

    long_text = _long_text(args) or LongText()
    settings = FineTuneSettings(
        train=args.train, val=args.val, test=args.test, model=args.model, out=args.out,
        text_column=args.text_column, label_column=args.label_column, text_pair_column=args.text_pair_column,
        label_columns=args.label_columns.split(",") if args.label_columns else None, delimiter=args.delimiter,
        task=args.task, label_separator=args.label_separator, unknown_labels=args.unknown_labels,
        val_fraction=args.val_fraction, fine_tune_layers=args.fine_tune_layers,
        layerwise_lr_decay=args.layerwise_lr_decay, epochs=args.epochs, batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size, learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio, max_grad_norm=args.max_grad_norm or None,
        gradient_accumulation=args.gradient_accumulation, max_seq_length=args.max_seq_length,
        long_text=long_text.mode, stride=long_text.stride, window_aggregate=long_text.aggregate,
        early_stopping_patience=args.early_stopping, class_weights=args.class_weights,
        frozen_cache=not args.no_frozen_cache, precision=args.precision, seed=args.seed, device=args.device,
        resume=args.resume, keep_checkpoint=args.keep_checkpoint, checkpoint_every=args.checkpoint_every,
        progress=not args.quiet,
    )
    if args.sweep_layers:
        try:
            values = [_layers(value.strip()) for value in args.sweep_layers.split(",")]
        except ValueError:
            raise BertforgeError(f"--sweep-layers {args.sweep_layers!r}: give numbers or 'all', e.g. 0,1,2,4,all") from None
        sweep_layers(settings, values)
    else:
        finetune(settings)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Metrics of a fine-tuned model on a labeled file; with --out, a report with plots too."""
    from bertforge.apps.classifier import Classifier
    from bertforge.evaluation.metrics import format_summary, write_report

    classifier = Classifier.load(args.model, device=args.device, long_text=_long_text(args))
    metrics = classifier.evaluate(args.data, unknown=args.unknown_labels, batch_size=args.batch_size,
                                  text_column=args.text_column, label_column=args.label_column,
                                  text_pair_column=args.text_pair_column)
    if metrics["dropped_rows"]:
        print(f"{args.data}: dropped {metrics['dropped_rows']} rows whose labels training never saw")
    print(format_summary(metrics))
    if args.out:
        labels = list(classifier.encoder.id2label.values()) if classifier.encoder.task != "regression" else None
        write_report(args.out, metrics, labels=labels, title=f"bertforge evaluation: {args.data}")
        print(f"report in {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Label texts from a file (CSV, JSONL or one text per line) or stdin; CSV or JSONL out."""
    from bertforge.apps.classifier import Classifier

    classifier = Classifier.load(args.model, device=args.device, long_text=_long_text(args))
    count = classifier.predict_file(args.input, args.output, text_column=args.text_column,
                                    text_pair_column=args.text_pair_column, batch_size=args.batch_size,
                                    progress=not args.quiet)
    if args.output:
        print(f"{count} predictions written to {args.output}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a fine-tuned classifier to ONNX (optionally int8) as one folder: graph, tokenizer
    and labels. The graph is checked against the PyTorch model on a sample before the folder is
    written; bertforge predict and evaluate run the folder through ONNX Runtime."""
    from bertforge.apps.export import export_onnx

    check = export_onnx(args.model, args.out, int8=args.int8, sample=args.sample, text_column=args.text_column,
                        tolerance=args.tolerance, min_agreement=args.min_agreement, opset=args.opset,
                        overwrite=args.overwrite)
    print(f"exported to {args.out}: {check.summary()}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    """FLOPs, device-hours, wall-clock hours and cost of a pretraining run: a model size, a token
    count and a device. The time comes from --hours when known, from --measure (real steps timed
    here), or from the device's datasheet peak x --utilization."""
    from bertforge.apps import estimate

    config = estimate.build_config(args.preset, args.model, layers=args.layers, hidden=args.hidden,
                                   heads=args.heads, intermediate=args.intermediate,
                                   vocab_size=args.vocab_size, max_positions=args.max_positions)
    phases = estimate.plan_phases(config, args.tokens, args.steps, args.batch_size, args.seq_len)
    # Everything cheap is checked before --measure spends its seconds.
    price = estimate.parse_price(args.price) if args.price is not None else None
    device = estimate.resolve_device(args.device, args.peak_tflops, measuring=args.measure)
    rates = how = None
    if args.measure:
        rates, how = estimate.measure_phases(config, phases, args.devices, args.batch_size, args.measure_steps,
                                             args.hours, args.mlm_fraction)
    result = estimate.estimate_run(config, phases or None, device=device, devices=args.devices,
                                   utilization=args.utilization, price=price, hours=args.hours,
                                   mlm_fraction=args.mlm_fraction, tokens_per_second=rates,
                                   name=args.model or args.preset or "base")
    if args.json:
        print(json.dumps({**result.to_dict(), "measurement": how}, indent=2))
    else:
        print(estimate.format_estimate(result, how))
    return 0


def cmd_vocab(args: argparse.Namespace) -> int:
    """Train a WordPiece vocabulary on a corpus; writes vocab.txt and tokenizer.json with the BERT special tokens."""
    from bertforge.data.corpus import corpus_files, read_documents
    from bertforge.text.tokenizer import Tokenizer

    files = corpus_files(args.corpus)
    plain = all(f.suffix != ".gz" for f in files)
    # Plain files go to the tokenizers library whole (it reads them in parallel);
    # compressed ones are streamed through the corpus reader.
    source = [str(f) for f in files] if plain else (
        " ".join(sentences) for sentences in read_documents(args.corpus, text_format="sentences"))
    tokenizer = Tokenizer.train(source, vocab_size=args.vocab_size, lowercase=not args.cased,
                                min_frequency=args.min_frequency, show_progress=not args.quiet)
    out = tokenizer.save(args.out)
    print(f"vocabulary: {tokenizer.vocab_size:,} tokens ({'cased' if args.cased else 'uncased'}) -> {out}")
    return 0


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``20m``, ``1.5h`` or ``1h30m``.

    >>> parse_duration("20m"), parse_duration("1h30m"), parse_duration("45")
    (1200.0, 5400.0, 45.0)
    """
    import re

    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", value)
        if not value or parts is None:
            raise BertforgeError(f"time budget {text!r} is not understood; write e.g. 90s, 20m, 1.5h or 1h30m")
        hours, minutes, secs = (float(g) if g else 0.0 for g in parts.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise BertforgeError(f"time budget {text!r} must be more than zero")
    return seconds


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Pretrain a BERT from scratch on your text (masked LM + a sentence-pair objective) and write a model directory.

    Run it under torchrun for data-parallel training on several GPUs or processes."""
    from bertforge.apps.pretrain import PretrainSettings, pretrain

    settings = PretrainSettings(
        corpus=args.corpus, vocab=args.vocab, out=args.out, preset=args.preset, layers=args.layers,
        heads=args.heads, hidden=args.hidden, intermediate=args.intermediate, seq_len=args.seq_len,
        dropout=args.dropout, batch_size=args.batch_size, learning_rate=args.learning_rate,
        weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, max_grad_norm=args.max_grad_norm or None,
        gradient_accumulation=args.gradient_accumulation, epochs=args.epochs, max_steps=args.max_steps,
        time_budget=parse_duration(args.time_budget) if args.time_budget else None, mask_rate=args.mask_rate,
        whole_word_masking=args.whole_word_masking, pair_objective=args.pair_objective, pair_rate=args.pair_rate,
        held_out=args.held_out, eval_every=args.eval_every or None, checkpoint_every=args.checkpoint_every or None,
        log_every=args.log_every, text_format=args.text_format, split_clauses=args.split_clauses,
        shards_dir=args.shards, workers=args.workers, precision=args.precision, compile=args.compile,
        device=args.device, seed=args.seed, resume=args.resume, progress=not args.quiet,
    )
    summary = pretrain(settings)
    if summary:  # process 0
        held = summary.get("held_out") or {}
        figures = ", ".join(f"{key} {value}" for key, value in held.items() if key != "masked_tokens")
        print(f"pretrained {summary['steps']} steps ({summary['stop_reason']}), "
              f"{summary['tokens_per_second']:,.0f} tokens/s{'; held-out ' + figures if figures else ''}")
        print(f"model: {args.out}")
    return 0


def cmd_fill_mask(args: argparse.Namespace) -> int:
    """Print the model's top predictions for each [MASK] in a text."""
    from bertforge.apps.fill_mask import FillMask

    filler = FillMask.load(args.model)
    for index, options in enumerate(filler(args.text, top_k=args.top_k), 1):
        listed = "  ".join(f"{p.token} {p.probability:.3f}" for p in options)
        print(f"[MASK] {index}: {listed}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Turn texts from a file (CSV, TSV, JSONL or one text per line) or stdin into sentence
    embeddings, written as .npy (one array), .jsonl (text and embedding per line) or .parquet
    (text and embedding columns)."""
    from bertforge.data.labeled import read_texts
    from bertforge.apps.embedding import Embedder, check_output_path, save_embeddings

    out = check_output_path(args.out)  # a wrong suffix should fail before the model is read
    data = read_texts(sys.stdin if args.input == "-" else args.input, text_column=args.text_column)
    if not data.texts:
        raise BertforgeError(f"{data.path}: no texts found; give one text per line or a text column")
    if args.window_aggregate == "max":
        raise BertforgeError("--window-aggregate max applies to logits; the windows of a long text are averaged "
                             "into one embedding, so leave it out")
    embedder = Embedder.load(args.model, pooling=args.pooling, normalize=args.normalize,
                             max_length=args.max_length, device=args.device, batch_size=args.batch_size,
                             long_text=_long_text(args))
    vectors = embedder.encode(data.texts, progress=not args.quiet)
    save_embeddings(out, data.texts, vectors)
    if not args.quiet:
        print(f"{len(vectors)} embeddings of dimension {vectors.shape[1]} written to {out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a model directory over HTTP: POST /predict (fine-tuned classifiers), POST /embed,
    GET /health, and the OpenAPI description at /openapi.json (docs at /docs). Requests that
    arrive together are batched into one model run. Needs the serve extra."""
    from bertforge.serving.app import serve

    serve(args.model, host=args.host, port=args.port, pooling=args.pooling, normalize=args.normalize,
          max_length=args.max_length, device=args.device, max_texts=args.max_texts,
          max_text_bytes=args.max_text_bytes, max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms,
          access_log=not args.no_access_log)
    return 0


def _add_long_text_options(parser: argparse.ArgumentParser, as_trained: bool = False) -> None:
    """The one long-text setting of finetune, evaluate, predict and embed."""
    default = " (default: as the model was trained)" if as_trained else " (default: truncate)"
    parser.add_argument("--long-text", choices=["truncate", "head-tail", "sliding-window"],
                        help="texts longer than the window: keep the start, a quarter from the start and the "
                             "rest from the end, or windows every --stride tokens" + default)
    parser.add_argument("--stride", type=int, help="sliding-window: tokens between window starts (default: half a window)")
    parser.add_argument("--window-aggregate", choices=["mean", "max"],
                        help="sliding-window: combine the windows' logits by mean or max" + default)


def _long_text(args: argparse.Namespace):
    """The LongText the options ask for, or None to keep the model's own setting."""
    from bertforge.text.long_text import LongText

    if args.long_text is None and args.stride is None and args.window_aggregate is None:
        return None
    mode = args.long_text or ("sliding-window" if args.stride is not None else "truncate")
    return LongText(mode, args.stride, args.window_aggregate or "mean")


def _add_column_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", help="name or 0-based position of the text column")
    parser.add_argument("--text-pair-column", help="second text, for pair tasks")


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole pipeline offline on the standard library's docstrings: learn a vocabulary,
    pretrain a small BERT, fine-tune its top layers on a word-order task and compare it with a
    bag-of-words baseline on held-out sentences. Writes the models, the data and a report with plots."""
    from bertforge.apps.demo import DemoSettings, run_demo, summary_table

    result = run_demo(DemoSettings(out=args.out, model=args.model, seed=args.seed, quiet=args.quiet,
                                   quick=args.quick,
                                   time_budget=parse_duration(args.time_budget) if args.time_budget else None))
    print(summary_table(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertforge", description="BERT on your own data.",
        epilog="example: bertforge inspect ./my-bert --fine-tune-layers 2",
    )
    parser.add_argument("--version", action="version", version=f"bertforge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="the quick start: pretrain and fine-tune a small BERT offline in minutes",
        description=cmd_demo.__doc__, epilog="example: bertforge demo --out bertforge-demo",
    )
    demo.add_argument("--out", default="bertforge-demo", help="folder for the models, data and report "
                                                              "(default: %(default)s)")
    demo.add_argument("--model", help="fine-tune this pretrained model directory instead of pretraining one")
    demo.add_argument("--time-budget", help="pretraining time: 90s, 2m ... (default: 2m; 10s with --quick)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quick", action="store_true", help="a 10-second pretraining and a slice of the task, "
                                                          "to check an installation; its figures mean nothing")
    demo.add_argument("--quiet", action="store_true", help="no progress bars; the summary table only")
    demo.set_defaults(run=cmd_demo)

    inspect = commands.add_parser(
        "inspect", help="describe a model directory",
        description=cmd_inspect.__doc__, epilog="example: bertforge inspect ./all-MiniLM-L6-v2 --fine-tune-layers 2",
    )
    inspect.add_argument("model", help="model directory")
    inspect.add_argument("--fine-tune-layers", type=_layers, help="show what BertLayer would train: N or 'all'")
    inspect.add_argument("--output", default="pooled", choices=["sequence", "pooled", "cls", "mean"])
    inspect.set_defaults(run=cmd_inspect)

    tokenize = commands.add_parser(
        "tokenize", help="show the tokens and features of a text",
        description=cmd_tokenize.__doc__,
        epilog='example: bertforge tokenize ./all-MiniLM-L6-v2 "How far is it from Denver to Aspen ?"',
    )
    tokenize.add_argument("model", help="model directory (or a folder with vocab.txt)")
    tokenize.add_argument("text")
    tokenize.add_argument("text_b", nargs="?", default=None, help="second text of a pair")
    tokenize.add_argument("--max-seq-length", type=int, default=32)
    tokenize.set_defaults(run=cmd_tokenize)

    convert = commands.add_parser(
        "convert", help="turn a TensorFlow BERT into a model directory", description=cmd_convert.__doc__,
        epilog="example: bertforge convert uncased_L-12_H-768_A-12 --out bert-base-uncased",
    )
    convert.add_argument("source", help="Google checkpoint folder, TF Hub TF1 module or TF2 SavedModel folder")
    convert.add_argument("--out", required=True, help="model directory to write")
    case = convert.add_mutually_exclusive_group()
    case.add_argument("--cased", action="store_true", help="keep case (overrides what the model declares)")
    case.add_argument("--uncased", action="store_true", help="lower-case text (overrides what the model declares)")
    convert.add_argument("--heads", type=int, help="attention heads, for TF1 Hub modules that do not record them")
    convert.add_argument("--vocab", help="vocab.txt to use when the folder has none")
    convert.set_defaults(run=cmd_convert)

    finetune = commands.add_parser(
        "finetune", help="fine-tune a classifier on labeled files", description=cmd_finetune.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: bertforge finetune --train trec/train.csv --test trec/test.csv "
               "--model ./all-MiniLM-L6-v2 --out runs/trec --fine-tune-layers 2 --epochs 3",
    )
    files = finetune.add_argument_group("data")
    files.add_argument("--train", required=True, help="labeled training file (CSV, TSV or JSONL)")
    files.add_argument("--val", help="validation file; without it --val-fraction of train is held out")
    files.add_argument("--test", help="test file, scored once at the end")
    _add_column_options(files)
    files.add_argument("--label-column", help="name or position of the label column")
    files.add_argument("--label-columns", help="several 0/1 label columns, comma-separated (multi-label)")
    files.add_argument("--label-separator", help="labels joined by this in one cell (multi-label)")
    files.add_argument("--delimiter", help="field delimiter (detected when omitted)")
    files.add_argument("--task", choices=["classification", "multi_label", "regression"],
                       help="override the task detected from the labels")
    files.add_argument("--unknown-labels", choices=["error", "drop"], default="error",
                       help="validation/test labels training never saw")
    files.add_argument("--val-fraction", type=float, default=0.1, help="held out of train when --val is absent")
    model = finetune.add_argument_group("model and training")
    model.add_argument("--model", required=True, help="pretrained model directory")
    model.add_argument("--out", required=True, help="output directory (a model directory when done)")
    model.add_argument("--fine-tune-layers", type=_layers, default="all", help="top N encoder layers that train, or all")
    model.add_argument("--layerwise-lr-decay", type=float, help="learning-rate factor per layer going down, e.g. 0.9")
    model.add_argument("--sweep-layers", help="fine-tune once per value, e.g. 0,1,2,4,all, and plot metric vs time")
    model.add_argument("--epochs", type=int, default=3)
    model.add_argument("--batch-size", type=int, default=32)
    model.add_argument("--eval-batch-size", type=int, default=128)
    model.add_argument("--learning-rate", type=float, default=5e-5)
    model.add_argument("--weight-decay", type=float, default=0.01)
    model.add_argument("--warmup-ratio", type=float, default=0.1)
    model.add_argument("--max-grad-norm", type=float, default=1.0, help="0 turns clipping off")
    model.add_argument("--gradient-accumulation", type=int, default=1)
    model.add_argument("--max-seq-length", type=int, default=256)
    _add_long_text_options(model)
    model.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop after this many evaluations without improvement")
    model.add_argument("--class-weights", choices=["balanced"], help="weigh classes inversely to their frequency")
    model.add_argument("--no-frozen-cache", action="store_true", help="recompute the frozen layers every epoch")
    model.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    model.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    model.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="checkpoint this often (default: each epoch)")
    model.add_argument("--keep-checkpoint", action="store_true", help="keep the resumable checkpoint after a finished run")
    model.add_argument("--quiet", action="store_true", help="no progress bars or summaries")
    finetune.set_defaults(run=cmd_finetune)

    evaluate = commands.add_parser(
        "evaluate", help="score a fine-tuned model on a labeled file", description=cmd_evaluate.__doc__,
        epilog="example: bertforge evaluate --model runs/trec --data trec/test.csv --out runs/trec-eval",
    )
    evaluate.add_argument("--model", required=True, help="directory written by bertforge finetune")
    evaluate.add_argument("--data", required=True, help="labeled file")
    evaluate.add_argument("--out", help="write metrics.json, report.md and plots here")
    _add_column_options(evaluate)
    evaluate.add_argument("--label-column")
    evaluate.add_argument("--unknown-labels", choices=["error", "drop"], default="error")
    evaluate.add_argument("--batch-size", type=int, help="texts per model run (default: 128; 32 for ONNX)")
    evaluate.add_argument("--device")
    _add_long_text_options(evaluate, as_trained=True)
    evaluate.set_defaults(run=cmd_evaluate)

    predict = commands.add_parser(
        "predict", help="label texts with a fine-tuned model", description=cmd_predict.__doc__,
        epilog="example: cat questions.txt | bertforge predict --model runs/trec - > labels.jsonl",
    )
    predict.add_argument("--model", required=True, help="directory written by bertforge finetune or export")
    predict.add_argument("input", help="file of texts (CSV, JSONL or plain lines), or - for stdin")
    predict.add_argument("--output", help="CSV or JSONL file (by extension); stdout as JSONL when omitted")
    _add_column_options(predict)
    predict.add_argument("--batch-size", type=int, help="texts per model run (default: 128; 32 for ONNX)")
    predict.add_argument("--device")
    _add_long_text_options(predict, as_trained=True)
    predict.add_argument("--quiet", action="store_true")
    predict.set_defaults(run=cmd_predict)

    from bertforge.apps.export import DEFAULT_MIN_AGREEMENT, DEFAULT_OPSET, DEFAULT_TOLERANCE

    export = commands.add_parser(
        "export", help="export a fine-tuned classifier to ONNX (fp32 or int8), checked",
        description=cmd_export.__doc__,
        epilog="example: bertforge export --format onnx --int8 --model runs/trec --out runs/trec-int8",
    )
    export.add_argument("--format", choices=["onnx"], default="onnx", help="the exported format")
    export.add_argument("--model", required=True, help="directory written by bertforge finetune")
    export.add_argument("--out", required=True, help="new folder for the exported model")
    export.add_argument("--int8", action="store_true", help="quantize the weights to int8 (smaller, faster on CPU)")
    export.add_argument("--sample", help="texts for the check (default: the training file, else random words)")
    export.add_argument("--text-column", help="text column of --sample")
    export.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="largest logit difference allowed (fp32)")
    export.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT,
                        help="least share of equal predictions (int8)")
    export.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset version")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    export.set_defaults(run=cmd_export)

    from bertforge.apps.estimate import DEFAULT_MLM_FRACTION, DEFAULT_UTILIZATION, DEVICES

    estimate = commands.add_parser(
        "estimate", help="FLOPs, device-hours and cost of a pretraining run", description=cmd_estimate.__doc__,
        epilog="example (BERT-Large as Devlin et al. pretrained it: 16 TPU devices x 96 h x $4.50-$8.00 = "
               "$6,912-$12,288): bertforge estimate --preset large --steps 900000,100000 --batch-size 256 "
               "--seq-len 128,512 --device tpu-v3 --devices 16 --hours 96 --price 4.50-8.00",
    )
    size = estimate.add_argument_group("model size")
    which = size.add_mutually_exclusive_group()
    which.add_argument("--preset", help="tiny, mini, small, medium, base or large (default: base)")
    which.add_argument("--model", help="a model directory or its config.json")
    size.add_argument("--layers", type=int)
    size.add_argument("--hidden", type=int, help="heads and intermediate follow (hidden/64, 4 x hidden) unless given")
    size.add_argument("--heads", type=int)
    size.add_argument("--intermediate", type=int)
    size.add_argument("--vocab-size", type=int)
    size.add_argument("--max-positions", type=int, help="position table size (longest --seq-len allowed)")
    amount = estimate.add_argument_group("token count (commas separate phases, e.g. --seq-len 128,512)")
    amount.add_argument("--tokens", help="token positions to train on: 3.3e9, 128B, 3.3G, 500M, 20k")
    amount.add_argument("--steps", help="optimizer steps (with --batch-size)")
    amount.add_argument("--batch-size", help="sequences per step, all devices together")
    amount.add_argument("--seq-len", help="sequence length (default: 128)")
    amount.add_argument("--mlm-fraction", type=float, default=DEFAULT_MLM_FRACTION,
                        help="share of positions the MLM decoder runs on (1 for implementations that decode all)")
    hardware = estimate.add_argument_group("devices, time and price")
    hardware.add_argument("--device", help=f"one of {', '.join(DEVICES)} (default: h100; with --measure, this machine)")
    hardware.add_argument("--devices", type=int, default=1, help="how many devices train together")
    hardware.add_argument("--peak-tflops", type=float, help="dense peak per device, for a device not in the table")
    hardware.add_argument("--utilization", type=float, default=DEFAULT_UTILIZATION,
                          help="share of the peak turned into model FLOPs (default %(default)s)")
    hardware.add_argument("--hours", type=float, help="known wall-clock duration: cost = devices x hours x price")
    hardware.add_argument("--price", help="per device-hour: 4.50, or a range 4.50-8.00")
    hardware.add_argument("--measure", action="store_true",
                          help="time real training steps here (cuda if available, else cpu) instead of the datasheet")
    hardware.add_argument("--measure-steps", type=int, default=5, help="timed steps, after 2 warm-up steps")
    estimate.add_argument("--json", action="store_true", help="machine-readable output")
    estimate.set_defaults(run=cmd_estimate)

    vocab = commands.add_parser(
        "vocab", help="train a WordPiece vocabulary on a corpus", description=cmd_vocab.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: bertforge vocab poe.txt --vocab-size 8000 --cased --out runs/poe-vocab",
    )
    vocab.add_argument("corpus", nargs="+", help="text files, folders or globs (.gz too)")
    vocab.add_argument("--vocab-size", type=int, default=30522)
    vocab.add_argument("--cased", action="store_true", help="keep upper case (default: lower-case everything)")
    vocab.add_argument("--min-frequency", type=int, default=2, help="rarest pair the trainer will merge")
    vocab.add_argument("--out", required=True, help="directory for vocab.txt and tokenizer.json")
    vocab.add_argument("--quiet", action="store_true")
    vocab.set_defaults(run=cmd_vocab)

    pretrain = commands.add_parser(
        "pretrain", help="pretrain a BERT from scratch on your text", description=cmd_pretrain.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: bertforge pretrain poe.txt --vocab runs/poe-vocab --out runs/poe-bert "
               "--preset mini --time-budget 20m   (several GPUs: torchrun --nproc-per-node 4 -m bertforge "
               "pretrain ...)",
    )
    pretrain.add_argument("corpus", nargs="+", help="text files, folders or globs (.gz too); a blank line ends a "
                                                   "document")
    pretrain.add_argument("--vocab", required=True, help="directory from bertforge vocab (or any BERT vocabulary)")
    pretrain.add_argument("--out", required=True, help="model directory to write (checkpoints and logs too)")
    model = pretrain.add_argument_group("model")
    model.add_argument("--preset", default="mini", choices=["tiny", "mini", "small", "medium", "base", "large"],
                       help="2x128, 4x256, 4x512, 8x512, 12x768, 24x1024 (layers x hidden)")
    model.add_argument("--layers", type=int)
    model.add_argument("--heads", type=int, help="default hidden / 64")
    model.add_argument("--hidden", type=int)
    model.add_argument("--intermediate", type=int, help="default 4 x hidden")
    model.add_argument("--seq-len", type=int, default=128)
    model.add_argument("--dropout", type=float, help="hidden and attention dropout (default 0.1)")
    data = pretrain.add_argument_group("data and objectives")
    data.add_argument("--mask-rate", type=float, default=0.15)
    data.add_argument("--whole-word-masking", action="store_true", help="mask all pieces of a word together")
    data.add_argument("--pair-objective", choices=["nsp", "sop", "none"], default="nsp",
                      help="next-sentence prediction, sentence-order prediction, or none (sequences packed full)")
    data.add_argument("--pair-rate", type=float, default=0.5, help="share of random-next (nsp) or swapped (sop) pairs")
    data.add_argument("--held-out", type=float, default=0.01, help="fraction of documents kept for evaluation")
    data.add_argument("--text-format", choices=["auto", "sentences", "prose"], default="auto",
                      help="one sentence per line, or prose to split into sentences")
    data.add_argument("--split-clauses", action="store_true",
                      help="also split sentences at commas, semicolons and dashes")
    data.add_argument("--shards", help="where token shards are kept (default: the user cache)")
    data.add_argument("--workers", type=int, help="processes for sentence splitting (default: all cores)")
    training = pretrain.add_argument_group("training")
    training.add_argument("--batch-size", type=int, default=32, help="sequences per step, all processes together")
    training.add_argument("--learning-rate", type=float, default=5e-4)
    training.add_argument("--weight-decay", type=float, default=0.01)
    training.add_argument("--warmup-ratio", type=float, default=0.06)
    training.add_argument("--max-grad-norm", type=float, default=1.0, help="0 turns clipping off")
    training.add_argument("--gradient-accumulation", type=int, default=1)
    ends = training.add_mutually_exclusive_group()
    ends.add_argument("--max-steps", type=int)
    ends.add_argument("--epochs", type=int)
    ends.add_argument("--time-budget", help="train until this much time has passed: 90s, 20m, 1.5h")
    training.add_argument("--eval-every", type=int, default=500, help="steps between held-out evaluations")
    training.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    training.add_argument("--log-every", type=int, default=50)
    training.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                          help="auto: bf16 on a GPU, fp32 on a CPU")
    training.add_argument("--compile", action="store_true",
                          help="run the model through torch.compile (for GPUs: on a CPU the uncompiled model "
                               "with its own attention is faster)")
    training.add_argument("--device", help="cpu or cuda; None means a GPU when there is one")
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    training.add_argument("--quiet", action="store_true", help="no progress bars")
    pretrain.set_defaults(run=cmd_pretrain)

    fill = commands.add_parser(
        "fill-mask", help="show a model's predictions for [MASK] tokens", description=cmd_fill_mask.__doc__,
        epilog='example: bertforge fill-mask --model runs/poe-bert "The [MASK] of Amontillado"',
    )
    fill.add_argument("--model", required=True, help="pretrained model directory")
    fill.add_argument("text", help="text with one or more [MASK]")
    fill.add_argument("--top-k", type=int, default=5)
    fill.set_defaults(run=cmd_fill_mask)

    embed = commands.add_parser(
        "embed", help="turn texts into sentence embeddings", description=cmd_embed.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: bertforge embed --model ./all-MiniLM-L6-v2 --normalize trec/test.csv --out trec.npy",
    )
    embed.add_argument("--model", required=True, help="model directory")
    embed.add_argument("input", help="file of texts (CSV, TSV, JSONL or plain lines), or - for stdin")
    embed.add_argument("--out", required=True, help="output file: .npy, .jsonl or .parquet")
    embed.add_argument("--text-column", help="name or 0-based position of the text column")
    embed.add_argument("--pooling", choices=["mean", "cls", "pooled"], default="mean",
                       help="mean of the tokens, the [CLS] state, or the pooler output")
    embed.add_argument("--normalize", action="store_true", help="scale every vector to unit length")
    embed.add_argument("--batch-size", type=int, default=64)
    _add_long_text_options(embed)
    embed.add_argument("--max-length", type=int, help="window in tokens (default: the "
                                                      "model's positions, at most 512)")
    embed.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    embed.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    embed.set_defaults(run=cmd_embed)

    from bertforge.serving.limits import DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH, DEFAULT_MAX_TEXT_BYTES, DEFAULT_MAX_TEXTS

    serve = commands.add_parser(
        "serve", help="serve a model over HTTP (predict, embed, health)", description=cmd_serve.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: bertforge serve --model runs/trec --port 8000, then: curl -H 'Content-Type: "
               "application/json' -d '{\"texts\": [\"Who wrote The Raven ?\"]}' http://127.0.0.1:8000/predict",
    )
    serve.add_argument("--model", required=True, help="model directory: a fine-tuned classifier, or any encoder")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on; anything but loopback lets other machines in")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    serve.add_argument("--pooling", choices=["mean", "cls", "pooled"], default="mean", help="pooling for /embed")
    serve.add_argument("--normalize", action="store_true",
                       help="unit-length embeddings unless a request says otherwise")
    serve.add_argument("--max-length", type=int, help="truncate texts to this many tokens (default: the "
                                                      "classifier's training length, else the model's positions)")
    serve.add_argument("--max-texts", type=int, default=DEFAULT_MAX_TEXTS, help="texts per request (more: 413)")
    serve.add_argument("--max-text-bytes", type=int, default=DEFAULT_MAX_TEXT_BYTES,
                       help="UTF-8 bytes per text (more: 413)")
    serve.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                       help="most texts gathered from concurrent requests into one model run")
    serve.add_argument("--batch-wait-ms", type=float, default=DEFAULT_BATCH_WAIT_MS,
                       help="how long a lone request waits for others to join its batch")
    serve.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: a GPU when there is one)")
    serve.add_argument("--no-access-log", action="store_true", help="do not log every request")
    serve.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except BertforgeError as error:
        if args.debug:
            traceback.print_exc()
        print(f"bertforge: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bertforge: interrupted", file=sys.stderr)
        return 1
    except Exception as error:  # a failure nobody foresaw: still one line, the details on request
        if args.debug:
            traceback.print_exc()
        reason = str(error).splitlines()[0] if str(error) else ""
        print(f"bertforge: error: {type(error).__name__}: {reason} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
