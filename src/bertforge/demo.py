"""``bertforge demo``: the whole pipeline, offline, on text every Python installation carries.

The corpus is the English prose of the standard library's docstrings and of
``pydoc_data``'s topic pages. The demo learns a WordPiece vocabulary on it,
pretrains a small BERT with masked LM for a fixed time, then fine-tunes the top
layers on a task drawn from the same text and scores it on held-out sentences
next to a bag-of-words baseline.

The task: is a sentence in its original word order, or were its two halves
swapped ("return the number of items in the queue" against "items in the queue
return the number of")? Both versions hold the same words, so a bag of words
cannot tell them apart and sits at chance; telling them apart takes a model of
word order, which is what pretraining gives. The test sentences come from
docstrings that neither pretraining nor fine-tuning saw.

Nothing here trains on its own: it composes ``Tokenizer.train``, ``pretrain``,
``finetune`` and ``Classifier``, and writes their outputs side by side.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import inspect
import io
import json
import pkgutil
import random
import re
import shutil
import sys
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .errors import BertforgeError

# Modules whose import does something (opens a browser, prints, starts a GUI, changes
# the terminal) or that are only tests, scripts or Windows-only.
SKIPPED_MODULES = frozenset({
    "this", "antigravity", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3", "readline",
    "rlcompleter", "ensurepip", "pydoc_data", "__hello__", "__phello__", "encodings",
})
_SKIPPED_PARTS = frozenset({"test", "tests", "idle_test", "__main__"})

LABELS = ("original", "swapped")
TEST_FRACTION = 0.15

# A word of plain prose: letters, an optional apostrophe suffix, then at most one mark.
_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]*(?:'[a-z]+)?[,.;:!?]?")
_BARE_WORD = re.compile(r"[A-Za-z][a-z]*")
_UNDERLINE = re.compile(r"([*=~^-])\1+")
# A sentence ends at . ! or ? after a lower-case letter, digit or closer, before a capital.
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\"'][.!?])\s+(?=[A-Z\"(])")


# -- the corpus ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Docstring:
    """One documented object: where it comes from and its prose paragraphs."""

    source: str  # "collections.OrderedDict.popitem", "pydoc topic: if"
    paragraphs: tuple[str, ...]

    @property
    def held_out(self) -> bool:
        """Whether this docstring belongs to the test split (a stable hash of its source)."""
        return zlib.crc32(self.source.encode()) % 1000 < TEST_FRACTION * 1000


def _import_quietly(name: str):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return importlib.import_module(name)


def stdlib_modules() -> dict[str, Any]:
    """The importable public modules of the standard library, submodules included, by name.

    >>> modules = stdlib_modules()
    >>> "collections" in modules and "email.mime.text" in modules and "antigravity" not in modules
    True
    """
    modules: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated modules say so on import
        for name in sorted(sys.stdlib_module_names):
            if name.startswith("_") or name in SKIPPED_MODULES:
                continue
            try:
                module = _import_quietly(name)
            except BaseException:  # absent on this platform, or refuses to import: not our corpus
                continue
            modules[name] = module
            for info in pkgutil.walk_packages(getattr(module, "__path__", []), f"{name}.", onerror=lambda _: None):
                parts = info.name.split(".")[1:]
                if any(part.startswith("_") or part in _SKIPPED_PARTS for part in parts):
                    continue
                try:
                    modules[info.name] = _import_quietly(info.name)
                except BaseException:
                    continue
    return dict(sorted(modules.items()))


def _documented_objects(name: str, module) -> Iterator[tuple[str, Any]]:
    """The module, then its own public classes (with their methods) and functions."""
    yield name, module
    for attribute, value in sorted(vars(module).items()):
        if attribute.startswith("_") or getattr(value, "__module__", None) != name:
            continue
        if inspect.isclass(value):
            yield f"{name}.{attribute}", value
            for member, item in sorted(vars(value).items()):
                if member.startswith("_"):
                    continue
                if isinstance(item, (classmethod, staticmethod)):
                    item = item.__func__
                if inspect.isroutine(item) or isinstance(item, property):
                    yield f"{name}.{attribute}.{member}", item
        elif inspect.isroutine(value):
            yield f"{name}.{attribute}", value


def prose_paragraphs(text: str) -> list[str]:
    """The paragraphs of a docstring that read as English prose, each on one line.

    Indented blocks, doctest lines, headings and paragraphs of mostly non-words
    (signatures, tables, code) are left out.

    >>> prose_paragraphs("Return the sum.\\n\\n    >>> add(1, 2)\\n    3\\n\\nBoth numbers must be\\nintegers or floats.")
    ['Both numbers must be integers or floats.']
    >>> prose_paragraphs("f(x) -> y\\n\\nx must be positive, and y is its square root here.")
    ['x must be positive, and y is its square root here.']
    """
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.split("\n") if line.strip()]
        if len(lines) > 1 and _UNDERLINE.fullmatch(lines[1].strip()):
            lines = lines[2:]  # a heading and its underline
        if not lines or any(line.startswith((" ", "\t", ">>>", "...")) for line in lines):
            continue
        words = " ".join(line.strip() for line in lines).split()
        if len(words) < 6:
            continue
        plain = sum(1 for word in words if _PLAIN_WORD.fullmatch(word.strip("\"'()`")))
        if plain >= 0.75 * len(words):
            paragraphs.append(" ".join(words))
    return paragraphs


def split_sentences(paragraph: str) -> list[str]:
    """Cut a paragraph at sentence ends (a fast rule, good enough for docstrings).

    >>> split_sentences("Return the value. It is cached, e.g. by the caller. Done!")
    ['Return the value.', 'It is cached, e.g. by the caller.', 'Done!']
    """
    return _SENTENCE_END.split(paragraph)


def stdlib_docstrings() -> list[Docstring]:
    """The prose of the standard library's docstrings and ``pydoc_data``'s topics, in a fixed order.

    >>> docs = stdlib_docstrings()
    >>> len(docs) > 1000 and any(doc.source == "pydoc topic: if" for doc in docs)
    True
    """
    docs: list[Docstring] = []
    seen: set[str] = set()  # inherited and aliased objects repeat their docstrings
    for name, module in stdlib_modules().items():
        for source, value in _documented_objects(name, module):
            text = inspect.getdoc(value)
            if not text or text in seen:
                continue
            seen.add(text)
            paragraphs = prose_paragraphs(text)
            if paragraphs:
                docs.append(Docstring(source, tuple(paragraphs)))
    from pydoc_data.topics import topics

    for topic, text in sorted(topics.items()):
        paragraphs = prose_paragraphs(text)
        if paragraphs:
            docs.append(Docstring(f"pydoc topic: {topic}", tuple(paragraphs)))
    return docs


# -- the labeled task ----------------------------------------------------------------------


def order_task_text(sentence: str) -> str | None:
    """A sentence as the task shows it: lower case, no final mark; None when unfit.

    Fit means 8 to 40 words, so that both halves of a swap carry some words.

    >>> order_task_text("Return the number of items in the queue.")
    'return the number of items in the queue'
    >>> order_task_text("Too short.") is None
    True
    """
    words = sentence.rstrip(".!?:").lower().split()
    if not 8 <= len(words) <= 40:
        return None
    return " ".join(words)


def swap_halves(text: str, rng: random.Random) -> str | None:
    """Cut between two bare words (no punctuation at the cut), at least two words from
    either end, and swap the halves; None when there is no such place.

    >>> swap_halves("return the number of items in the queue", random.Random(0))
    'items in the queue return the number of'
    """
    words = text.split()
    cuts = [i for i in range(2, len(words) - 1)
            if _BARE_WORD.fullmatch(words[i - 1]) and _BARE_WORD.fullmatch(words[i])]
    if not cuts:
        return None
    cut = rng.choice(cuts)
    return " ".join(words[cut:] + words[:cut])


def word_order_examples(sentences: list[str], seed: int) -> list[tuple[str, str]]:
    """``(text, label)`` rows: each sentence once, in its original order or swapped, half and half.

    >>> rows = word_order_examples(["return the number of items in the queue now",
    ...                             "the lock is released when the block ends here"], seed=1)
    >>> sorted(label for _, label in rows)
    ['original', 'swapped']
    """
    rng = random.Random(seed)
    texts = list(dict.fromkeys(filter(None, map(order_task_text, sentences))))
    swappable = [(text, swapped) for text in texts if (swapped := swap_halves(text, rng)) is not None]
    flags = [i % 2 == 1 for i in range(len(swappable))]
    rng.shuffle(flags)
    return [(swapped if flag else text, LABELS[flag]) for (text, swapped), flag in zip(swappable, flags)]


# -- the run -------------------------------------------------------------------------------


@dataclass
class DemoSettings:
    """What ``bertforge demo`` takes. ``quick`` shrinks every stage for a smoke test."""

    out: str = "bertforge-demo"
    model: str | None = None  # fine-tune this model instead of pretraining one
    time_budget: float = 120.0  # seconds of pretraining
    seed: int = 0
    quiet: bool = False
    quick: bool = False
    vocab_size: int = 6000
    layers: int = 4
    hidden: int = 256
    seq_len: int = 128
    fine_tune_layers: int = 2
    epochs: int = 3
    learning_rate: float = 1e-3
    max_train_examples: int | None = None


@dataclass
class Stage:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class DemoResult:
    out: Path
    corpus: dict
    task: dict
    metrics: dict
    baseline: dict
    stages: list[Stage] = field(default_factory=list)


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def bag_of_words_baseline(train: list[tuple[str, str]], test: list[tuple[str, str]], seed: int) -> dict:
    """TF-IDF over words and logistic regression: the metrics on ``test``.

    >>> rows = [("good film", "pos"), ("bad film", "neg")] * 10
    >>> bag_of_words_baseline(rows, rows, seed=0)["accuracy"]
    1.0
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from .evaluation import classification_metrics

    labels = sorted({label for _, label in train})
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=1)
    features = vectorizer.fit_transform([text for text, _ in train])
    model = LogisticRegression(max_iter=2000, random_state=seed)
    model.fit(features, [labels.index(label) for _, label in train])
    predicted = model.predict(vectorizer.transform([text for text, _ in test]))
    return classification_metrics([labels.index(label) for _, label in test], predicted, labels)


def run_demo(settings: DemoSettings) -> DemoResult:
    """Build the corpus and task, pretrain (unless ``settings.model``), fine-tune, report."""
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    data_dir.mkdir(exist_ok=True)
    stages: list[Stage] = []
    say = (lambda *_: None) if settings.quiet else (lambda text: print(text, file=sys.stderr, flush=True))

    clock = time.perf_counter()
    docs = stdlib_docstrings()
    train_docs = [doc for doc in docs if not doc.held_out]
    test_docs = [doc for doc in docs if doc.held_out]
    corpus_path = data_dir / "corpus.txt"
    with open(corpus_path, "w", encoding="utf-8") as handle:
        for doc in train_docs:
            handle.write("\n".join(s for p in doc.paragraphs for s in split_sentences(p)) + "\n\n")
    corpus = {"docstrings": len(docs), "pretraining_docstrings": len(train_docs),
              "characters": sum(len(p) for doc in train_docs for p in doc.paragraphs),
              "python": sys.version.split()[0]}
    train_rows = word_order_examples([s for doc in train_docs for p in doc.paragraphs for s in split_sentences(p)],
                                     settings.seed)
    seen = {text for text, _ in train_rows} | {" ".join(text.split()[::-1]) for text, _ in train_rows}
    test_rows = [row for row in word_order_examples(
        [s for doc in test_docs for p in doc.paragraphs for s in split_sentences(p)], settings.seed + 1)]
    if settings.max_train_examples:
        train_rows = train_rows[:settings.max_train_examples]
    _write_csv(data_dir / "train.csv", train_rows)
    _write_csv(data_dir / "test.csv", test_rows)
    stages.append(Stage("corpus", time.perf_counter() - clock,
                        f"{len(docs):,} docstrings, {corpus['characters']:,} characters"))
    say(f"corpus: {stages[-1].detail}; task: {len(train_rows):,} train / {len(test_rows):,} test sentences")

    clock = time.perf_counter()
    baseline = bag_of_words_baseline(train_rows, test_rows, settings.seed)
    stages.append(Stage("baseline", time.perf_counter() - clock))
    say(f"bag of words: accuracy {baseline['accuracy']:.3f}")

    model_dir = settings.model
    if model_dir is None:
        from .tokenization import Tokenizer
        from .training.pretrain import PretrainSettings, pretrain

        clock = time.perf_counter()
        tokenizer = Tokenizer.train([str(corpus_path)], vocab_size=settings.vocab_size)
        tokenizer.save(out / "vocab")
        stages.append(Stage("vocabulary", time.perf_counter() - clock, f"{tokenizer.vocab_size:,} tokens"))

        clock = time.perf_counter()
        pretrained = out / "pretrained"
        for leftover in pretrained.glob("checkpoint*"):
            leftover.unlink()  # the demo always starts afresh
        with tempfile.TemporaryDirectory() as shards:
            summary = pretrain(PretrainSettings(
                corpus=[str(corpus_path)], vocab=str(out / "vocab"), out=str(pretrained),
                layers=settings.layers, hidden=settings.hidden, seq_len=settings.seq_len,
                batch_size=32, learning_rate=1e-3, pair_objective="none", time_budget=settings.time_budget,
                text_format="sentences", shards_dir=shards, held_out=0.02, eval_every=100, eval_sequences=200,
                checkpoint_every=None, log_every=20, workers=1, seed=settings.seed, progress=not settings.quiet))
        for leftover in pretrained.glob("checkpoint*"):
            leftover.unlink()
        stages.append(Stage("pretraining", time.perf_counter() - clock,
                            f"{summary['steps']} steps, held-out MLM accuracy "
                            f"{summary['held_out'].get('mlm_accuracy', float('nan')):.3f}"))
        model_dir = str(pretrained)

    from .training.finetune import FineTuneSettings, finetune

    clock = time.perf_counter()
    classifier_dir = out / "classifier"
    result = finetune(FineTuneSettings(
        train=str(data_dir / "train.csv"), test=str(data_dir / "test.csv"), model=model_dir,
        out=str(classifier_dir), fine_tune_layers=settings.fine_tune_layers, epochs=settings.epochs,
        learning_rate=settings.learning_rate, batch_size=32, max_seq_length=64,
        seed=settings.seed, progress=not settings.quiet))
    stages.append(Stage("fine-tuning", time.perf_counter() - clock))
    metrics = result["metrics"]["test"]
    say(f"fine-tuned: accuracy {metrics['accuracy']:.3f}")
    for stage in stages:
        say(f"{stage.name:12s} {stage.seconds:7.1f} s  {stage.detail}")
    return DemoResult(out, corpus, {"train": len(train_rows), "test": len(test_rows)}, metrics, baseline, stages)


if __name__ == "__main__":
    run_demo(DemoSettings(out=sys.argv[1], **json.loads(sys.argv[2])))
