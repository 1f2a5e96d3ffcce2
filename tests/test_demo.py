"""bertforge demo: the offline quick start, its corpus, its task and its report."""

import json
import random

import pytest

from bertforge.apps.predictor import Classifier
from bertforge.cli.app import main
from bertforge.apps.demo import DemoSettings, run_demo
from bertforge.apps.stdlib_corpus import prose_paragraphs, stdlib_docstrings
from bertforge.apps.word_order import LABELS, build_task, order_task_text, swap_halves, word_order_examples


@pytest.fixture(scope="module")
def docstrings():
    return stdlib_docstrings()


def test_corpus_is_the_standard_librarys_prose_in_a_fixed_order(docstrings):
    assert [doc.source for doc in stdlib_docstrings()] == [doc.source for doc in docstrings]
    sources = {doc.source for doc in docstrings}
    assert {"collections.OrderedDict.popitem", "pydoc topic: if"} <= sources
    assert not any(source.split(".")[0] in ("antigravity", "this", "idlelib", "tkinter") for source in sources)
    characters = sum(len(p) for doc in docstrings for p in doc.paragraphs)
    assert characters > 500_000  # the demo's corpus is about a megabyte of prose
    assert not any(p.startswith(">>>") or "\n" in p for doc in docstrings for p in doc.paragraphs)


def test_code_and_signatures_are_not_prose():
    text = "add(a, b) -> int\n\nReturn the sum of two\nnumbers, which may be floats.\n\n    >>> add(1, 2)\n    3\n"
    assert prose_paragraphs(text) == ["Return the sum of two numbers, which may be floats."]


def test_a_swap_keeps_the_words_and_changes_their_order():
    rng = random.Random(3)
    text = order_task_text("Return the number of items in the queue, if any.")
    swapped = swap_halves(text, rng)
    assert sorted(swapped.split()) == sorted(text.split()) and swapped != text
    words = swapped.split()
    assert words[-1] != "any" and "queue," in words  # cut between bare words, never after a comma


def test_task_is_balanced_and_a_bag_of_words_cannot_see_the_label(docstrings):
    train, test = build_task(docstrings, seed=0)
    assert len(train) > 5000 and len(test) > 800
    for rows in (train, test):
        counts = [sum(label == wanted for _, label in rows) for wanted in LABELS]
        assert abs(counts[0] - counts[1]) <= 1
    # Every sentence appears once, in one form; the test split shares no sentence with train.
    bags = [tuple(sorted(text.split())) for text, _ in train]
    assert len(set(bags)) == len(bags)
    assert not {tuple(sorted(text.split())) for text, _ in test} & set(bags)


def test_the_same_seed_gives_the_same_rows():
    sentences = [f"the value number {word} is kept in the table for later" for word in ("one", "two", "three")]
    assert word_order_examples(sentences, seed=5) == word_order_examples(sentences, seed=5)


def test_quick_demo_pretrains_fine_tunes_and_reports(tmp_path):
    out = tmp_path / "demo"
    result = run_demo(DemoSettings(out=str(out), quick=True, quiet=True, time_budget=4))
    for name in ("vocab/vocab.txt", "pretrained/model.safetensors", "pretrained/config.json",
                 "classifier/model.safetensors", "data/corpus.txt", "data/train.csv", "data/test.csv",
                 "report.md", "comparison.png", "pretraining_curve.png", "demo.json",
                 "classifier/confusion_matrix.png", "classifier/learning_curves.png"):
        assert (out / name).is_file(), name
    assert not list((out / "pretrained").glob("checkpoint*"))  # the finished run leaves no resume point
    assert result.pretraining["steps"] > 0 and result.task == json.loads((out / "demo.json").read_text())["task"]
    report = (out / "report.md").read_text()
    assert "halves swapped" in report and f"{result.fine_tuned['accuracy']:.4f}" in report
    assert f"{result.baseline['accuracy']:.4f}" in report
    # The classifier is a standard model directory that bertforge predict opens.
    predictions = Classifier.load(out / "classifier").predict(["return the number of items in the queue"])
    assert predictions[0]["label"] in LABELS
    # A second run into the same folder starts afresh instead of refusing.
    again = run_demo(DemoSettings(out=str(out), quick=True, quiet=True, time_budget=2))
    assert again.task == result.task


def test_cli_fine_tunes_a_given_model(tmp_path, minilm_dir, capsys):
    out = tmp_path / "minilm"
    assert main(["demo", "--quick", "--quiet", "--model", str(minilm_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fine-tuned BERT" in printed and "bag of words" in printed
    assert not (out / "pretrained").exists() and (out / "classifier" / "config.json").is_file()
    summary = json.loads((out / "demo.json").read_text())
    assert summary["pretraining"] is None and summary["task"]["train"] == 600


def test_bad_output_folder_is_one_line(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    assert main(["demo", "--quick", "--out", str(target)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "taken" in error and "not a folder" in error


@pytest.mark.slow
def test_full_demo_beats_its_bag_of_words_baseline(tmp_path):
    """The demo as the README runs it: its fine-tuned model must beat the baseline clearly."""
    result = run_demo(DemoSettings(out=str(tmp_path / "demo"), quiet=True))
    baseline, fine_tuned = result.baseline["accuracy"], result.fine_tuned["accuracy"]
    assert 0.4 < baseline < 0.6  # both forms hold the same words: chance
    assert fine_tuned > baseline + 0.1, (fine_tuned, baseline)
