"""Reading labeled files, task detection, label encoding, splits, and every bad-input message."""

import io
import json
from pathlib import Path

import numpy as np
import pytest

from bertforge.data.labeled import (
    EncodedLabels,
    LabelEncoder,
    LabeledData,
    detect_task,
    read_labeled,
    read_texts,
    stratified_split,
    validate_training_labels,
)
from bertforge.errors import BertforgeError
from file_helpers import error_of, write

# The real data sets live beside the checkout, never inside it (see shared/data/README.md).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")


def assert_names(message: str, path: Path, line: int | None = None) -> None:
    assert str(path) in message, message
    if line is not None:
        assert f"line {line}" in message, message


# ---------------------------------------------------------------- formats


def test_csv_with_header_reads_texts_labels_and_lines(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\nhello there,greet\nbye now,leave\n")
    data = read_labeled(path)
    assert data.texts == ["hello there", "bye now"]
    assert data.labels == ["greet", "leave"]
    assert data.lines == [2, 3]
    assert data.text_pairs is None
    assert data.path == str(path)
    assert len(data) == 2


def test_quoted_multiline_fields_keep_the_line_where_each_row_starts(tmp_path):
    content = ('text,label\n'
               '"first line\nsecond line\nthird line",a\n'
               '"has ""quotes"", and a comma",b\r\n'
               '\n'
               'plain,a\n')
    data = read_labeled(write(tmp_path, "multi.csv", content))
    assert data.texts == ["first line\nsecond line\nthird line", 'has "quotes", and a comma', "plain"]
    assert data.lines == [2, 5, 7]


def test_tsv_treats_quotes_as_text_like_the_sms_release(tmp_path):
    content = 'label\ttext\nham\t"Pete can you ring me" ok\nspam\tWIN "now", 100%\n'
    data = read_labeled(write(tmp_path, "sms.tsv", content))
    assert data.texts == ['"Pete can you ring me" ok', 'WIN "now", 100%']
    assert data.labels == ["ham", "spam"]


def test_tsv_written_with_csv_quoting_is_unquoted(tmp_path):
    content = 'text\tlabel\n"two\nlines"\ta\n"say ""hi"""\tb\n'
    data = read_labeled(write(tmp_path, "quoted.tsv", content))
    assert data.texts == ["two\nlines", 'say "hi"']
    assert data.lines == [2, 4]


def test_delimiter_is_sniffed_from_the_rows_or_given(tmp_path):
    tabbed = write(tmp_path, "data.txt", "text\tlabel\nsome, words\tx\nmore, words, here\ty\n")
    assert read_labeled(tabbed).texts == ["some, words", "more, words, here"]
    semicolons = write(tmp_path, "semi.csv", "text;label\nhello;a\nworld;b\n")
    assert read_labeled(semicolons).labels == ["a", "b"]
    assert read_labeled(semicolons, delimiter=";").labels == ["a", "b"]
    assert read_labeled(tabbed, delimiter="tab").labels == ["x", "y"]


def test_utf8_with_bom_reads_the_first_column_name(tmp_path):
    path = write(tmp_path, "bom.csv", "\ufefftext,label\ncaf\u00e9 ol\u00e9,a\nna\u00efve,b\n".encode("utf-8"))
    data = read_labeled(path, text_column="text")
    assert data.texts == ["caf\u00e9 ol\u00e9", "na\u00efve"]


def test_jsonl_reads_objects_with_lists_numbers_and_blank_lines(tmp_path):
    lines = [json.dumps({"text": "a b", "label": "x"}), "", json.dumps({"text": "c d", "label": 3, "id": 1})]
    data = read_labeled(write(tmp_path, "train.jsonl", "\n".join(lines) + "\n"))
    assert data.texts == ["a b", "c d"]
    assert data.labels == ["x", "3"]
    assert data.lines == [1, 3]
    tags_path = write(tmp_path, "tags.jsonl", '{"text": "t", "labels": ["a", "b"]}\n{"text": "u", "labels": []}\n')
    tags = read_labeled(tags_path)
    assert tags.labels == [("a", "b"), ()]
    assert detect_task(tags) == "multi_label"


def test_headerless_file_is_detected_and_read_by_position(tmp_path):
    content = ("ham\tGo until jurong point, crazy..\n"
               "ham\tOk lar... Joking wif u oni\n"
               "spam\tFree entry in 2 a wkly comp\n")
    path = write(tmp_path, "SMSSpamCollection", content)
    data = read_labeled(path, text_column=1, label_column="0")
    assert data.labels == ["ham", "ham", "spam"]
    assert data.texts[0] == "Go until jurong point, crazy.."
    assert data.lines == [1, 2, 3]
    # Without columns the text is the first column and the label the last one.
    assert read_labeled(path).texts == ["ham", "ham", "spam"]


def test_labels_that_look_like_texts_are_refused(tmp_path):
    rows = "".join(f"{'spam' if i % 4 == 0 else 'ham'}\tmessage number {i} about things\n" for i in range(40))
    path = write(tmp_path, "SMSSpamCollection", rows)
    with pytest.raises(BertforgeError) as error:
        LabelEncoder.fit(read_labeled(path))
    message = str(error.value)
    assert "\n" not in message and "look like texts" in message and "--text-column" in message
    assert LabelEncoder.fit(read_labeled(path, text_column=1, label_column=0)).classes == ("ham", "spam")


def test_integer_labels_up_to_a_hundred_are_classes():
    assert detect_task([str(i % 77) for i in range(400)]) == "classification"
    assert detect_task([str(i) for i in range(400)]) == "regression"


def test_has_header_false_keeps_the_first_row(tmp_path):
    path = write(tmp_path, "plain.csv", "hello,greeting\nbye,farewell\n")
    data = read_labeled(path, has_header=False)
    assert data.texts == ["hello", "bye"]
    assert data.lines == [1, 2]


def test_columns_by_name_and_by_position(tmp_path):
    content = "id,question,coarse,fine\n1,What is it ?,DESC,DESC:def\n2,Who is he ?,HUM,HUM:ind\n"
    path = write(tmp_path, "trec.csv", content)
    by_name = read_labeled(path, text_column="question", label_column="fine")
    by_position = read_labeled(path, text_column=1, label_column="3")
    assert by_name.texts == by_position.texts == ["What is it ?", "Who is he ?"]
    assert by_name.labels == by_position.labels == ["DESC:def", "HUM:ind"]
    assert by_name.label_column == "fine"
    # Defaults: a usual text name, then the last column as the label.
    assert read_labeled(path).labels == ["DESC:def", "HUM:ind"]
    assert read_labeled(path, label_column="COARSE").labels == ["DESC", "HUM"]


def test_usual_column_names_are_found(tmp_path):
    path = write(tmp_path, "reviews.csv", "stars,review,id\n5,loved it,a1\n1,hated it,a2\n")
    data = read_labeled(path, label_column="stars")
    assert data.texts == ["loved it", "hated it"]
    path = write(tmp_path, "cats.csv", "sentence,category,source\nx y,a,web\nz w,b,web\n")
    assert read_labeled(path).labels == ["a", "b"]


def test_pair_column_given_or_found_by_partner_name(tmp_path):
    content = "sentence1,sentence2,label\nA man sleeps.,A man rests.,1\nA dog runs.,A cat sits.,0\n"
    path = write(tmp_path, "pairs.csv", content)
    data = read_labeled(path)
    assert data.texts == ["A man sleeps.", "A dog runs."]
    assert data.text_pairs == ["A man rests.", "A cat sits."]
    explicit = read_labeled(path, text_column=1, text_pair_column="sentence1")
    assert explicit.texts == ["A man rests.", "A cat sits."]
    assert explicit.text_pairs == ["A man sleeps.", "A dog runs."]


def test_multi_label_from_zero_one_columns(tmp_path):
    path = write(tmp_path, "toxic.csv", "text,insult,threat,obscene\nyou fool,1,0,0\nhello,0,0,0\nor else,1,1,0\n")
    data = read_labeled(path, label_columns=["insult", "threat", "obscene"])
    assert data.labels == [("insult",), (), ("insult", "threat")]
    assert data.label_names == ["insult", "threat", "obscene"]
    assert detect_task(data) == "multi_label"
    encoder = LabelEncoder.fit(data)
    assert encoder.classes == ("insult", "threat", "obscene")  # file order, even for a column never set
    targets = encoder.encode(data).targets
    assert targets.dtype == np.float32
    assert targets.tolist() == [[1, 0, 0], [0, 0, 0], [1, 1, 0]]
    assert encoder.decode(targets) == [("insult",), (), ("insult", "threat")]


def test_multi_label_from_a_separator(tmp_path):
    content = "text,labels\nnews about sport,sport|news\nmatch report,sport\nelection,politics | news\n"
    path = write(tmp_path, "topics.csv", content)
    data = read_labeled(path)
    assert detect_task(data.labels, label_separator="|") == "multi_label"
    encoder = LabelEncoder.fit(data, label_separator="|")
    assert encoder.classes == ("news", "politics", "sport")
    assert encoder.encode(data).targets.tolist() == [[1, 0, 1], [0, 0, 1], [1, 1, 0]]
    assert encoder.decode(np.array([[0.9, 0.1, 0.7]])) == [("news", "sport")]


def test_regression_labels_become_float32(tmp_path):
    path = write(tmp_path, "scores.csv", "text,score\na,0.5\nb,3.25\nc,1\n")
    data = read_labeled(path)
    assert detect_task(data) == "regression"
    encoder = LabelEncoder.fit(data)
    encoded = encoder.encode(data)
    assert encoded.targets.dtype == np.float32
    assert encoded.targets.tolist() == [0.5, 3.25, 1.0]
    assert encoder.num_labels == 1 and encoder.problem_type == "regression"
    assert encoder.decode(encoded.targets) == [0.5, 3.25, 1.0]


def test_prediction_input_without_labels(tmp_path):
    path = write(tmp_path, "predict.csv", "id,text\n1,first\n2,second\n")
    data = read_labeled(path, require_labels=False)
    assert data.texts == ["first", "second"] and data.labels is None
    partial = write(tmp_path, "partial.csv", "text,label\nfirst,a\nsecond,\n")
    assert read_labeled(partial, require_labels=False).labels == ["a", None]


def test_read_texts_plain_lines_csv_jsonl_and_streams(tmp_path):
    plain = write(tmp_path, "questions.txt", "What is BERT ?\n\nWho wrote it, and when ?\r\n")
    data = read_texts(plain)
    assert data.texts == ["What is BERT ?", "Who wrote it, and when ?"]
    assert data.lines == [1, 3]
    table = write(tmp_path, "predict.csv", "id,text,label\n1,\"one, two\",x\n2,three,y\n")
    assert read_texts(table).texts == ["one, two", "three"]
    assert read_texts(table).labels is None
    jsonl = write(tmp_path, "predict.jsonl", '{"sentence": "s1"}\n{"sentence": "s2"}\n')
    assert read_texts(jsonl).texts == ["s1", "s2"]
    assert read_texts(io.BytesIO(b"from a stream\nsecond\n")).texts == ["from a stream", "second"]
    assert read_texts(io.StringIO("text\tid\nhi\t1\n")).texts == ["hi"]
    one_column = write(tmp_path, "one.csv", "just a text\nanother text\n")
    assert read_texts(one_column).texts == ["just a text", "another text"]



def test_read_texts_uses_training_columns_where_a_table_has_them(tmp_path):
    named, positions = {"text_column": "question"}, {"text_column": "1"}
    # Plain lines are one text each, whatever columns training read.
    for trained in (named, positions):
        assert read_texts(io.StringIO("Who wrote it ?\nWhere, then ?\n"), trained=trained).texts == \
            ["Who wrote it ?", "Where, then ?"]
    lines = write(tmp_path, "questions.txt", "Who wrote it ?\nid,question\n")
    assert read_texts(lines, trained=named).texts == ["Who wrote it ?", "id,question"]
    # A stream whose first line names the training column is a table; tabs make one for positions.
    assert read_texts(io.StringIO("id,question\n7,Who wrote it ?\n"), trained=named).texts == ["Who wrote it ?"]
    assert read_texts(io.StringIO("HUM\tWho, then ?\nLOC\tWhere ?\n"), trained=positions).texts == \
        ["Who, then ?", "Where ?"]
    jsonl = write(tmp_path, "q.jsonl", '{"id": 1, "question": "Who ?", "text": "other"}\n')
    assert read_texts(jsonl, trained=named).texts == ["Who ?"]
    assert read_texts(jsonl, text_column="text", trained=named).texts == ["other"]  # given now wins
    message = error_of(read_texts, write(tmp_path, "q.csv", "id,body\n1,Who ?\n"), trained=named)
    assert message.endswith("q.csv: line 1: the model was fine-tuned with its text in column 'question', which this "
                            "file does not have (found: id, body); pass --text-column with the column that holds it "
                            "here")
    pairs = read_texts(io.StringIO("premise,claim\nA dog.,An animal.\n"),
                       trained={"text_column": "premise", "text_pair_column": "claim"})
    assert (pairs.texts, pairs.text_pairs, pairs.text_pair_column) == (["A dog."], ["An animal."], "claim")


def test_a_label_separator_reads_several_labels_in_one_cell(tmp_path):
    path = write(tmp_path, "tags.csv", "text,tags\nrain at the match,weather+sport\nsunny,weather\nnone,\n")
    data = read_labeled(path, label_column="tags", label_separator="+", require_labels=False)
    assert data.labels == [("weather", "sport"), ("weather",), None]

def test_dash_reads_stdin(monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO("text,label\nhi,a\nyo,b\n".encode()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert read_texts("-").texts == ["hi", "yo"]


def test_subset_keeps_everything_aligned():
    data = LabeledData(["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"], [2, 3, 5], "f.csv")
    part = data.subset(np.array([2, 0]))
    assert (part.texts, part.labels, part.text_pairs, part.lines, part.path) == (
        ["c", "a"], ["z", "x"], ["r", "p"], [5, 2], "f.csv")


def test_reading_100k_rows_keeps_every_row_and_line(tmp_path):
    rows = "".join(f"question number {i} ?,{'ABCDEF'[i % 6]}\n" for i in range(100_000))
    path = write(tmp_path, "big.csv", "text,label\n" + rows)
    data = read_labeled(path)
    assert len(data) == 100_000 and data.lines[-1] == 100_001
    assert data.texts[-1] == "question number 99999 ?" and data.labels[-1] == "D"


# ---------------------------------------------------------------- task detection


def test_detect_task():
    assert detect_task(["pos", "neg", "pos"]) == "classification"
    assert detect_task(["0", "1", "1"]) == "classification"
    assert detect_task([str(i % 100) for i in range(300)]) == "classification"
    assert detect_task([str(i % 101) for i in range(300)]) == "regression"
    assert detect_task(["1.5", "2", "3"]) == "regression"
    assert detect_task(["a,b", "c"], label_separator=",") == "multi_label"
    assert detect_task([("a",), ()]) == "multi_label"
    assert detect_task(["1", "0"], multi_columns=True) == "multi_label"
    assert detect_task(["1", "x", "2.5"]) == "classification"
    assert detect_task(np.array([0, 1, 2])) == "classification"


# ---------------------------------------------------------------- label encoding


def test_label_encoder_round_trip_and_saved_form():
    encoder = LabelEncoder.fit(["spam", "ham", "ham", "spam"])
    assert encoder.task == "classification"
    assert encoder.classes == ("ham", "spam")
    assert encoder.label2id == {"ham": 0, "spam": 1}
    assert encoder.id2label == {0: "ham", 1: "spam"}
    targets, kept = encoder.encode(["spam", "ham"])
    assert targets.dtype == np.int64 and targets.tolist() == [1, 0]
    assert kept.tolist() == [0, 1]
    assert encoder.decode(targets) == ["spam", "ham"]
    saved = json.loads(json.dumps(encoder.to_dict()))
    assert saved["id2label"] == {"0": "ham", "1": "spam"} and saved["num_labels"] == 2
    assert LabelEncoder.from_dict(saved) == encoder
    # A transformers config.json carries only id2label and problem_type.
    config = {"id2label": {"1": "spam", "0": "ham"}, "problem_type": "single_label_classification"}
    assert LabelEncoder.from_dict(config) == encoder
    with pytest.raises(BertforgeError):
        encoder.decode([2])


def test_fit_accepts_any_iterable_of_labels():
    encoder = LabelEncoder.fit(label for label in ["b", "a", "b"])
    assert encoder.classes == ("a", "b")


def test_numeric_classes_sort_numerically():
    encoder = LabelEncoder.fit(["10", "2", "1", "2"])
    assert encoder.classes == ("1", "2", "10")


def test_unknown_labels_dropped_with_counts(tmp_path):
    train = read_labeled(write(tmp_path, "train.csv", "text,label\na,x\nb,y\n"))
    test = read_labeled(write(tmp_path, "test.csv", "text,label\nc,x\nd,z\ne,y\nf,z\ng,w\n"))
    encoder = LabelEncoder.fit(train)
    encoded = encoder.encode(test, unknown="drop")
    assert isinstance(encoded, EncodedLabels)
    targets, kept = encoded
    assert targets.tolist() == [0, 1] and kept.tolist() == [0, 2]
    assert encoded.dropped == 3 and encoded.unseen == {"z": 2, "w": 1}
    assert test.subset(kept).texts == ["c", "e"]


def test_unknown_multi_label_parts_are_dropped(tmp_path):
    encoder = LabelEncoder.fit(["a|b", "b"], label_separator="|")
    encoded = encoder.encode(["a", "a|c", "b"], unknown="drop")
    assert encoded.kept.tolist() == [0, 2] and encoded.unseen == {"c": 1}


# ---------------------------------------------------------------- splitting


def test_stratified_split_keeps_every_class_on_both_sides():
    labels = ["big"] * 90 + ["small"] * 8 + ["pair"] * 2 + ["single"]
    train, holdout = stratified_split(labels, fraction=0.1, seed=3)
    assert train.dtype == np.int64
    assert sorted(train.tolist() + holdout.tolist()) == list(range(len(labels)))
    in_train = {labels[i] for i in train}
    in_holdout = {labels[i] for i in holdout}
    assert in_train == {"big", "small", "pair", "single"}
    assert in_holdout == {"big", "small", "pair"}
    assert sum(labels[i] == "big" for i in holdout) == 9
    again = stratified_split(labels, fraction=0.1, seed=3)
    assert train.tolist() == again[0].tolist() and holdout.tolist() == again[1].tolist()
    other = stratified_split(labels, fraction=0.1, seed=4)
    assert other[1].tolist() != holdout.tolist()


def test_random_split_for_regression_and_multi_label():
    scores = [str(i * 0.37) for i in range(50)]
    train, holdout = stratified_split(scores, fraction=0.2, seed=0)
    assert len(holdout) == 10 and len(train) == 40
    assert set(train.tolist()).isdisjoint(holdout.tolist())
    tags = [("a",), ("a", "b"), ()] * 10
    train, holdout = stratified_split(tags, fraction=0.1, seed=0)
    assert len(holdout) == 3 and len(train) == 27
    with pytest.raises(BertforgeError):
        stratified_split(scores, fraction=1.5)


# ---------------------------------------------------------------- bad input: one line, file, line, fix


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.csv"
    message = error_of(read_labeled, path)
    assert_names(message, path)
    assert "no such file" in message


def test_empty_file_and_header_only_file(tmp_path):
    empty = write(tmp_path, "empty.csv", b"\xef\xbb\xbf  \n")
    assert "empty" in error_of(read_labeled, empty)
    assert_names(error_of(read_labeled, empty), empty)
    header_only = write(tmp_path, "header.csv", "text,label\n")
    message = error_of(read_labeled, header_only)
    assert_names(message, header_only, 1)
    assert "only row" in message


def test_missing_column_lists_the_columns_found(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\na,x\n")
    message = error_of(read_labeled, path, label_column="category")
    assert_names(message, path, 1)
    assert "'category'" in message and "text, label" in message and "--label-column" in message
    message = error_of(read_labeled, path, text_column=5)
    assert_names(message, path, 1)
    assert "no column 5" in message


def test_named_column_in_a_headerless_file(tmp_path):
    content = "What is the time now ?,NUM\nWho are you there ?,HUM\nWhen was it made ?,NUM\n"
    path = write(tmp_path, "data.csv", content)
    message = error_of(read_labeled, path, text_column="question")
    assert_names(message, path, 1)
    assert "not a header" in message and "position" in message


def test_no_label_column_at_all(tmp_path):
    path = write(tmp_path, "texts.csv", "text\nhello\nworld\n")
    message = error_of(read_labeled, path)
    assert_names(message, path, 1)
    assert "no label column" in message


def test_empty_text_names_its_line(tmp_path):
    path = write(tmp_path, "train.csv", 'text,label\na,x\n"  ",y\n')
    message = error_of(read_labeled, path)
    assert_names(message, path, 3)
    assert "text" in message and "empty" in message
    jsonl = write(tmp_path, "train.jsonl", '{"text": "a", "label": "x"}\n{"label": "y"}\n')
    assert_names(error_of(read_labeled, jsonl), jsonl, 2)
    pairs = write(tmp_path, "pairs.csv", "sentence1,sentence2,label\na,b,1\nc,,0\n")
    message = error_of(read_labeled, pairs)
    assert_names(message, pairs, 3)
    assert "second text" in message


def test_wrong_number_of_fields_names_the_line_and_quoting(tmp_path):
    path = write(tmp_path, "train.csv", "text,label,fine_label\na,x,x:1\nhello, world,y,y:2\n")
    message = error_of(read_labeled, path)
    assert_names(message, path, 3)
    assert "4 fields, expected 3" in message and "double quotes" in message


def test_unclosed_quote_points_at_where_it_opened(tmp_path):
    path = write(tmp_path, "train.csv", 'text,label\na,x\n"never closed,y\nb,x\nc,y\n')
    message = error_of(read_labeled, path)
    assert_names(message, path, 3)
    assert "never closed" in message and "line 5" in message


def test_bytes_that_are_not_utf8(tmp_path):
    path = write(tmp_path, "latin.csv", "text,label\nfine,a\n".encode() + "caf\u00e9,b\n".encode("latin-1"))
    message = error_of(read_labeled, path)
    assert_names(message, path, 3)
    assert "UTF-8" in message and "0xe9" in message


def test_missing_label(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\na,x\nb,\nc,y\n")
    message = error_of(read_labeled, path)
    assert_names(message, path, 3)
    assert "label" in message and "missing" in message
    jsonl = write(tmp_path, "train.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n')
    assert_names(error_of(read_labeled, jsonl), jsonl, 2)


def test_missing_label_in_test_data_when_encoding(tmp_path):
    encoder = LabelEncoder.fit(["x", "y"])
    test_path = write(tmp_path, "test.csv", "text,label\na,x\nb,\n")
    test = read_labeled(test_path, require_labels=False)
    message = error_of(encoder.encode, test)
    assert_names(message, test_path, 3)
    assert "missing" in message and "--unknown-labels drop" in message
    assert encoder.encode(test, unknown="drop").unseen == {None: 1}


def test_missing_jsonl_key_lists_the_keys_found(tmp_path):
    path = write(tmp_path, "train.jsonl", '{"sentence": "a", "y": "x"}\n{"sentence": "b", "y": "z"}\n')
    message = error_of(read_labeled, path, label_column="label")
    assert_names(message, path, 1)
    assert "no key 'label'" in message and "sentence, y" in message


def test_bad_multi_hot_value(tmp_path):
    path = write(tmp_path, "toxic.csv", "text,insult,threat\na,1,0\nb,yes please,0\n")
    message = error_of(read_labeled, path, label_columns=["insult", "threat"])
    assert_names(message, path, 3)
    assert "0 or 1" in message


def test_non_numeric_label_in_a_regression_task(tmp_path):
    train = read_labeled(write(tmp_path, "train.csv", "text,score\na,0.5\nb,1.5\n"))
    test_path = write(tmp_path, "test.csv", "text,score\nc,0.25\nd,high\n")
    encoder = LabelEncoder.fit(train)
    message = error_of(encoder.encode, read_labeled(test_path))
    assert_names(message, test_path, 3)
    assert "not a number" in message
    mixed = write(tmp_path, "mixed.csv", "text,score\na,0.5\nb,n/a\n")
    message = error_of(lambda: LabelEncoder.fit(read_labeled(mixed), task="regression"))  # n/a: missing, on reading
    assert_names(message, mixed, 3)


def test_one_class_only_in_training(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\na,ham\nb,ham\nc,ham\n")
    data = read_labeled(path)
    message = error_of(validate_training_labels, data)
    assert_names(message, path, 2)
    assert "'ham'" in message and "line 4" in message and "two classes" in message
    assert_names(error_of(LabelEncoder.fit, data), path, 2)


def test_unseen_test_labels_are_listed_with_their_first_line(tmp_path):
    train = read_labeled(write(tmp_path, "train.csv", "text,label\na,x\nb,y\n"))
    rows = "".join(f"t{i},new{i}\n" for i in range(7))
    test_path = write(tmp_path, "test.csv", "text,label\nok,x\n" + rows + "again,new0\n")
    message = error_of(LabelEncoder.fit(train).encode, read_labeled(test_path))
    assert_names(message, test_path, 3)
    assert "'new0' (line 3)" in message and "'new4' (line 7)" in message
    assert "new5" not in message and "and 2 more" in message
    assert "--unknown-labels drop" in message


def test_malformed_json_line(tmp_path):
    path = write(tmp_path, "train.jsonl", '{"text": "a", "label": "x"}\n\n{"text": "b", "label": }\n')
    message = error_of(read_labeled, path)
    assert_names(message, path, 3)
    assert "not valid JSON" in message
    not_object = write(tmp_path, "list.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n')
    assert_names(error_of(read_labeled, not_object), not_object, 2)


# ---------------------------------------------------------------- rows in memory


class FakeFrame:
    """The two things read_labeled asks of a pandas DataFrame, with numpy cells and NaN."""

    def __init__(self, columns: dict):
        self.columns = list(columns)
        self._values = list(columns.values())

    def itertuples(self, index=True, name="Pandas"):
        assert index is False and name is None
        return zip(*self._values)


def test_dicts_and_tuples_read_like_a_file():
    dicts = read_labeled([{"text": "hello there", "label": "greet", "id": 7}, {"text": "bye now", "label": "leave"}])
    tuples = read_labeled([("hello there", "greet"), ("bye now", "leave")])
    for data in (dicts, tuples):
        assert data.texts == ["hello there", "bye now"] and data.labels == ["greet", "leave"]
        assert data.lines == [0, 1] and data.unit == "row" and data.path == "<list of 2 rows>"
    assert dicts.label_column == "label" and tuples.label_column == "1"
    pairs = read_labeled([("a cat", "a dog", "no"), ("a cat", "the cat", "yes")], text_pair_column=1)
    assert pairs.text_pairs == ["a dog", "the cat"] and pairs.labels == ["no", "yes"]
    glue = read_labeled([{"sentence1": "a", "sentence2": "b", "gold_label": 1}])
    assert glue.text_pairs == ["b"] and glue.labels == ["1"]
    tags = read_labeled([{"text": "a", "labels": ["x", "y"]}, {"text": "b", "labels": ("y",)}])
    assert tags.labels == [("x", "y"), ("y",)] and detect_task(tags) == "multi_label"
    assert read_texts(["first", "second"]).texts == ["first", "second"]
    assert read_texts([{"id": 1, "review": "fine"}]).texts == ["fine"]


def test_rows_in_memory_flow_into_encoder_and_split():
    rows = [(f"text {i}", "spam" if i % 3 == 0 else "ham") for i in range(12)]
    data = read_labeled(rows)
    encoder = LabelEncoder.fit(data)
    assert encoder.classes == ("ham", "spam") and data.path == "<list of 12 rows>"
    train, holdout = stratified_split(data, fraction=0.25, seed=0)
    assert len(train) + len(holdout) == 12
    assert data.subset(holdout).unit == "row"
    message = error_of(encoder.encode, read_labeled([("a", "ham"), ("b", "eggs")]))
    assert "'eggs' (row 1)" in message, message
    message = error_of(validate_training_labels, read_labeled([("a", "ham"), ("b", "ham")]))
    assert "from row 0 to row 1" in message, message


@pytest.mark.parametrize(("rows", "options", "expected"), [
    ([{"text": "a", "label": "x"}, {"text": " ", "label": "y"}], {}, "<list of 2 rows>: row 1: the text"),
    ([("a", "x"), ("b", None), ("c", "x")], {}, "row 1: the label (column '1') is missing"),
    ([{"text": "a", "label": "x"}], {"text_column": "txt"}, "no key 'txt' (found: text, label); pass text_column="),
    ([("a", "x")], {"text_column": "text"}, "no column named 'text'; pass text_column= as a position (0 to 1)"),
    ([("a", "x")], {"label_column": 5}, "there is no column 5"),
    ([("a", "x"), {"text": "b"}], {}, "row 1: a dict where row 0 is a tuple"),
    ([("a", "x"), ("b", "y", "z")], {}, "row 1: has 3 values, expected 2"),
    ([("a", "x"), 3], {}, "row 1: the row is of type int, not a dict, a tuple or a text"),
    ([{"text": {"nested": 1}, "label": "x"}], {}, "row 0: the text is a dict, not a string"),
    ([], {}, "<list of 0 rows>: there are no rows"),
    ([("a", "x")], {"label_column": 1, "label_columns": [1]}, "pass label_column= for one label per row"),
])
def test_rows_in_memory_errors_name_the_row(rows, options, expected):
    message = error_of(read_labeled, rows, **options)
    assert expected in message, message
    assert "line" not in message and "--" not in message, message


def test_data_frame_is_duck_typed_with_numpy_cells_and_missing_values():
    frame = FakeFrame({"review": np.array(["good", "bad", "ok"], dtype=object),
                       "stars": np.array([5, 1, 3]), "score": np.array([0.5, np.nan, 1.0])})
    data = read_labeled(frame, label_column="stars")
    assert data.texts == ["good", "bad", "ok"] and data.labels == ["5", "1", "3"]
    assert data.path == "<DataFrame>" and data.lines == [0, 1, 2]
    assert read_labeled(frame, label_column="score", require_labels=False).labels == ["0.5", None, "1.0"]
    message = error_of(read_labeled, frame, label_column="score")
    assert message.startswith("<DataFrame>: row 1: the label (column 'score') is missing"), message


def test_pandas_data_frame():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"sentence": ["good film", "bad film", "fine"], "label": [1, 0, pd.NA]},
                         index=[10, 11, 12])
    frame["label"] = frame["label"].astype("Int64")
    data = read_labeled(frame, require_labels=False)
    assert data.texts == ["good film", "bad film", "fine"] and data.labels == ["1", "0", None]
    assert data.lines == [0, 1, 2] and data.path == "<DataFrame>"
    assert "<DataFrame>: row 2: the label (column 'label') is missing" in error_of(read_labeled, frame)
    headerless = pd.DataFrame([["nice", "pos"], ["awful", float("nan")]])
    assert read_labeled(headerless, label_column=1, require_labels=False).labels == ["pos", None]
    assert "<DataFrame>: row 1: the label (column '1') is missing" in error_of(read_labeled, headerless)
    assert read_texts(frame, text_column="sentence").texts == ["good film", "bad film", "fine"]


# ---------------------------------------------------------------- the real data sets


def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}: place the shared data folder beside the checkout")
    return SHARED_DATA


def test_trec_train_and_test():
    data_dir = shared_data()
    train = read_labeled(data_dir / "trec" / "train.csv")
    test = read_labeled(data_dir / "trec" / "test.csv")
    assert len(train) == 5452 and len(test) == 500
    encoder = LabelEncoder.fit(train)
    assert encoder.task == "classification" and encoder.classes == TREC_CLASSES
    targets, kept = encoder.encode(test)
    assert len(kept) == 500 and set(targets.tolist()) <= set(range(6))
    fine = LabelEncoder.fit(read_labeled(data_dir / "trec" / "train.csv", label_column="fine_label"))
    assert len(fine.classes) == 50
    train_rows, holdout_rows = stratified_split(train, fraction=0.1, seed=0)
    assert {train.labels[i] for i in holdout_rows} == set(TREC_CLASSES)


def test_sms_spam_train():
    data_dir = shared_data()
    train = read_labeled(data_dir / "sms_spam" / "train.csv")
    assert len(train) == 4458
    encoder = LabelEncoder.fit(train)
    assert encoder.classes == ("ham", "spam")
    original = read_labeled(data_dir / "sms_spam" / "original" / "SMSSpamCollection", text_column=1, label_column=0)
    assert len(original) == 5574 and set(original.labels) == {"ham", "spam"}
