"""What predict and evaluate read: plain lines and tables against the columns a model was
trained on, evaluate's column and label options, and the second text of pairs in predictions."""

import io
import json
import sys

import pytest

from bertforge.apps.finetune import FineTuneSettings, run_finetune
from bertforge.cli.app import main

QUESTIONS = [("Who wrote the poem ?", "HUM"), ("Where is the river ?", "LOC"), ("Who was the first king ?", "HUM"),
             ("Where do penguins live ?", "LOC")]
TAGGED = [("rain at the match", "weather|sport"), ("goal in the rain", "sport|weather"), ("sunny day", "weather"),
          ("late goal", "sport")]


@pytest.fixture(scope="module")
def train(tiny_dir, tmp_path_factory):
    """Fine-tune the tiny model for one epoch on ``content`` written as ``name``; the model folder."""
    def fine_tune(name: str, content: str, **columns):
        folder = tmp_path_factory.mktemp("run")
        (folder / name).write_text(content, encoding="utf-8")
        run_finetune(FineTuneSettings.of(train=str(folder / name), model=str(tiny_dir), out=str(folder / "model"),
                                         epochs=1, batch_size=4, val_fraction=0.0, fine_tune_layers=1,
                                         progress=False, **columns))
        return folder / "model"
    return fine_tune


@pytest.fixture(scope="module")
def by_name(train):
    """Trained on JSONL with its text under ``question`` and its label under ``cls``."""
    rows = "".join(json.dumps({"id": i, "question": text, "cls": label}) + "\n"
                   for i, (text, label) in enumerate(QUESTIONS))
    return train("train.jsonl", rows, text_column="question", label_column="cls")


@pytest.fixture(scope="module")
def by_position(train):
    """Trained on a headerless TSV, label first: ``--text-column 1 --label-column 0``."""
    return train("train.tsv", "".join(f"{label}\t{text}\n" for text, label in QUESTIONS),
                 text_column="1", label_column="0")


def predict_stdin(monkeypatch, capsys, model, stdin: str, *options) -> list[dict]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "-", *options]) == 0, capsys.readouterr().err
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# -- predict: plain lines and tables -----------------------------------------------------------


@pytest.mark.parametrize("model", ["by_name", "by_position"])
def test_plain_lines_on_stdin_are_one_text_each_whatever_the_training_columns(model, request, monkeypatch, capsys):
    model = request.getfixturevalue(model)
    lines = predict_stdin(monkeypatch, capsys, model, "Who wrote The Raven ?\nWhere, then, is Aspen ?\n")
    assert [line["text"] for line in lines] == ["Who wrote The Raven ?", "Where, then, is Aspen ?"]
    assert all(line["label"] in ("HUM", "LOC") for line in lines)


def test_a_txt_file_is_plain_lines_and_a_table_on_stdin_is_read_by_the_training_columns(
        by_name, by_position, tmp_path, monkeypatch, capsys):
    questions = tmp_path / "questions.txt"
    questions.write_text("Who wrote The Raven ?\nHow far is Denver ?\n", encoding="utf-8")
    assert main(["predict", "--model", str(by_name), str(questions), "--output", str(tmp_path / "p.jsonl"),
                 "--quiet"]) == 0
    texts = [json.loads(line)["text"] for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert texts == ["Who wrote The Raven ?", "How far is Denver ?"]
    table = predict_stdin(monkeypatch, capsys, by_name, "id,question\n7,Who wrote The Raven ?\n")
    assert [line["text"] for line in table] == ["Who wrote The Raven ?"]
    jsonl = predict_stdin(monkeypatch, capsys, by_name, '{"question": "Who ?", "text": "not this one"}\n')
    assert [line["text"] for line in jsonl] == ["Who ?"]
    headerless = predict_stdin(monkeypatch, capsys, by_position, "HUM\tWho wrote The Raven ?\nLOC\tWhere ?\n")
    assert [line["text"] for line in headerless] == ["Who wrote The Raven ?", "Where ?"]


def test_a_table_without_the_training_column_names_its_columns_and_the_option(by_name, tmp_path, capsys):
    table = tmp_path / "texts.csv"
    table.write_text("id,body\n1,Who wrote The Raven ?\n", encoding="utf-8")
    assert main(["predict", "--model", str(by_name), str(table)]) == 1
    message = error_line(capsys)
    assert "the model was fine-tuned with its text in column 'question'" in message
    assert "(found: id, body)" in message and "pass --text-column" in message
    capsys.readouterr()
    assert main(["predict", "--model", str(by_name), str(table), "--text-column", "body"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "Who wrote The Raven ?"


def test_a_tagger_trained_with_a_text_column_tags_plain_lines(train, monkeypatch, capsys):
    conll = "John B-PER\nlives O\nin O\nParis B-LOC\n\nMary B-PER\nwent O\nto O\nRome B-LOC\n\n"
    tagger = train("train.conll", conll, text_column="sentence")
    lines = predict_stdin(monkeypatch, capsys, tagger, "Anna lives in Berlin\nBob went home\n")
    assert [line["words"] for line in lines] == [["Anna", "lives", "in", "Berlin"], ["Bob", "went", "home"]]


# -- predict: pairs ----------------------------------------------------------------------------


def test_predictions_of_a_pair_model_hold_the_second_text_under_its_column(train, tmp_path, capsys):
    pairs = [("A dog runs.", "An animal moves.", "yes"), ("A cat sleeps.", "A cat runs.", "no"),
             ("Kids play.", "Children play.", "yes"), ("It rains.", "It is dry.", "no")]
    content = "premise,claim,gold\n" + "".join(f"{a},{b},{label}\n" for a, b, label in pairs)
    model = train("pairs.csv", content, text_column="premise", text_pair_column="claim", label_column="gold")
    source = tmp_path / "pairs.csv"
    source.write_text(content, encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", "--model", str(model), str(source)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["text"], line["claim"]) for line in lines] == [(a, b) for a, b, _ in pairs]
    assert main(["predict", "--model", str(model), str(source), "--output", str(tmp_path / "p.csv"), "--quiet"]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "text,claim,label,p_no,p_yes" and rows[1].startswith("A dog runs.,An animal moves.,")


# -- evaluate: the file's layout ---------------------------------------------------------------


@pytest.fixture(scope="module")
def multi_label(train):
    """Multi-label, trained on one ``tags`` cell per row joined by ``|``."""
    return train("tags.csv", "text,tags\n" + "".join(f"{text},{tags}\n" for text, tags in TAGGED),
                 label_column="tags", label_separator="|")


def evaluate(capsys, model, data, *options) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["evaluate", "--model", str(model), "--data", str(data), *options])
    captured = capsys.readouterr()
    return code, captured.out if code == 0 else captured.err


def test_evaluate_reads_a_file_laid_out_differently_with_finetunes_options(multi_label, tmp_path, capsys):
    code, as_trained = evaluate(capsys, multi_label, multi_label.parent / "tags.csv")
    assert code == 0 and "micro-F1" in as_trained
    semicolons = tmp_path / "tags.txt"
    semicolons.write_text("text;tags\n" + "".join(f"{text};{tags.replace('|', '+')}\n" for text, tags in TAGGED),
                          encoding="utf-8")
    assert evaluate(capsys, multi_label, semicolons, "--delimiter", ";", "--label-separator", "+") == (0, as_trained)
    flags = tmp_path / "flags.tsv"
    flags.write_text("text\tsport\tweather\n" + "".join(
        f"{text}\t{int('sport' in tags)}\t{int('weather' in tags)}\n" for text, tags in TAGGED), encoding="utf-8")
    assert evaluate(capsys, multi_label, flags, "--label-columns", "sport,weather") == (0, as_trained)


def test_evaluate_refuses_several_labels_for_a_one_label_model_and_an_empty_separator(
        by_name, multi_label, capsys):
    code, error = evaluate(capsys, by_name, multi_label.parent / "tags.csv", "--text-column", "text",
                           "--label-column", "tags", "--label-separator", "|")
    assert code == 1 and len(error.strip().splitlines()) == 1
    assert "line 2: the label holds several names (weather, sport), but a classification model" in error
    code, error = evaluate(capsys, multi_label, multi_label.parent / "tags.csv", "--label-separator", "")
    assert code == 2 and "--label-separator must be one or more characters" in error
