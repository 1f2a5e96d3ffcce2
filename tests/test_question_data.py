"""Reading questions about passages: SQuAD v1.1 and v2.0 JSON, JSON Lines, CSV and rows in
memory, detection of the task from the file, and every bad input as one line that names
the file, the record and the fix."""

from __future__ import annotations

import json

import pytest

from bertforge.data.questions import looks_like_questions, read_questions, read_unanswered
from bertforge.errors import BertforgeError

CONTEXT = "Super Bowl 50 was won by the Denver Broncos, who beat the Carolina Panthers 24–10."


def squad(qas, version="2.0", context=CONTEXT) -> dict:
    return {"version": version, "data": [{"title": "Super_Bowl_50", "paragraphs": [
        {"context": "A first passage, with no question.", "qas": []},
        {"context": context, "qas": qas}]}]}


def test_squad_v2_json_gives_every_reference_and_marks_impossible_questions(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(squad([
        {"id": "q1", "question": "Who won Super Bowl 50?",
         "answers": [{"text": "Denver Broncos", "answer_start": 29}, {"text": "the Denver Broncos", "answer_start": 25}]},
        {"id": "q2", "question": "Who lost Super Bowl 51?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "Carolina Panthers", "answer_start": 58}]},
    ])), encoding="utf-8")
    data = read_questions(path)
    assert data.ids == ["q1", "q2"] and data.contexts == [CONTEXT, CONTEXT]
    assert data.answers == [[("Denver Broncos", 29), ("the Denver Broncos", 25)], []]
    assert data.answerable == [True, False] and data.has_unanswerable
    assert data.where(1) == f"{path}: question q2 (article 0, paragraph 1)"
    assert looks_like_questions(str(path))
    assert read_unanswered(path).answers is None


def test_the_real_squad_files_read_whole(data_dir):
    train = read_questions(data_dir / "squad" / "train.json")
    test = read_questions(data_dir / "squad" / "test.json")
    assert (len(train), len(test)) == (7793, 2777)  # as the data README counts them
    assert not train.has_unanswerable and max(map(len, test.answers)) <= 6
    assert not set(train.contexts) & set(test.contexts)  # split by article


def test_flat_rows_in_jsonl_csv_and_memory_read_alike(tmp_path):
    rows = [{"id": "a", "question": "Who won?", "context": CONTEXT, "answer_text": "Denver Broncos", "answer_start": 29},
            {"id": "b", "question": "Who sang?", "context": CONTEXT, "answer_text": "", "answer_start": ""}]
    jsonl = tmp_path / "qa.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    csv = tmp_path / "qa.csv"
    csv.write_text('id,question,context,answer_text,answer_start\na,Who won?,"' + CONTEXT + '",Denver Broncos,29\n'
                   'b,Who sang?,"' + CONTEXT + '",,\n', encoding="utf-8")
    pandas = pytest.importorskip("pandas")
    for source in (jsonl, csv, rows, pandas.DataFrame(rows)):
        data = read_questions(source)
        assert data.answers == [[("Denver Broncos", 29)], []] and data.ids == ["a", "b"], source
        assert looks_like_questions(source if not hasattr(source, "suffix") else str(source))
    assert read_questions(csv).where(1) == f"{csv}: line 3"


def test_datasets_style_answers_and_unlabeled_pairs():
    rows = [{"question": "Who won?", "context": CONTEXT,
             "answers": {"text": ["Denver Broncos", "Broncos"], "answer_start": [29, 36]}}]
    assert read_questions(rows).answers == [[("Denver Broncos", 29), ("Broncos", 36)]]
    data = read_unanswered([("Who won?", CONTEXT)])
    assert data.questions == ["Who won?"] and data.answers is None and data.ids == ["0"]


def test_other_files_are_not_taken_for_questions(tmp_path):
    texts = tmp_path / "train.csv"
    texts.write_text("text,label\ngood film,pos\n", encoding="utf-8")
    conll = tmp_path / "train.conll"
    conll.write_text("Paris\tB-LOC\n", encoding="utf-8")
    assert not looks_like_questions(str(texts)) and not looks_like_questions(str(conll))
    assert not looks_like_questions([("good film", "pos")]) and not looks_like_questions(str(tmp_path / "none.json"))


@pytest.mark.parametrize("record, expected", [
    ({"question": "Who won?", "context": CONTEXT, "answer_text": "Denver Broncos", "answer_start": 30},
     "line 1: answer_start 30 points at 'enver Broncos,', not at the answer 'Denver Broncos'; the text occurs at "
     "character 29; fix answer_start"),
    ({"question": "Who won?", "context": CONTEXT, "answer_text": "Green Bay", "answer_start": 3},
     "line 1: answer_start 3 points at 'er Bowl 5', not at the answer 'Green Bay'; the text is nowhere in the context"),
    ({"question": "", "context": CONTEXT, "answer_text": "Denver", "answer_start": 29},
     "line 1: the question (question) is empty; fill in the question, or remove the record"),
    ({"question": "Who won?", "context": None, "answer_text": "Denver", "answer_start": 29},
     "line 1: the context (context) is missing; fill in the context, or remove the record"),
    ({"question": "Who won?", "context": CONTEXT, "answer_text": "Denver", "answer_start": "first"},
     "line 1: answer_start 'first' is not a character offset (the text occurs at 29)"),
    ({"question": "Who won?", "context": CONTEXT},
     "line 1: has no answer (answer_text and answer_start); add them, leave both empty"),
])
def test_a_bad_record_is_one_line_naming_file_record_and_fix(tmp_path, record, expected):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(BertforgeError) as error:
        read_questions(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {expected}") and "\n" not in message, message


def test_a_bad_squad_question_is_named_by_its_id(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(squad([{"id": "56be4db0", "question": "Who won?", "answers": []}], version="1.1")))
    with pytest.raises(BertforgeError, match=r"train.json: question 56be4db0 \(article 0, paragraph 1\): the question "
                                             r"has no answers; add one, or mark it \"is_impossible\": true"):
        read_questions(path)


@pytest.mark.parametrize("text, expected", [
    ('{"data": [{"paragraphs": [{"context": "x"', "not valid JSON"),
    ('{"version": "1.1", "data": {"x": 1}}', '"data" is not a list of articles'),
    ("text,label\ngood,pos\n", "neither SQuAD JSON nor rows with question and context (found columns: text, label)"),
    ('{"text": "good", "label": "pos"}\n', "neither SQuAD JSON nor rows with question and context (found keys: text"),
])
def test_a_file_of_neither_layout_says_what_to_give(tmp_path, text, expected):
    path = tmp_path / ("train.csv" if text.startswith("text") else "train.json")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BertforgeError) as error:
        read_questions(path)
    assert expected in str(error.value) and "SQuAD JSON" in str(error.value), str(error.value)
