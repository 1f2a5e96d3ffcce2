"""Reading word-tagged data (CoNLL, JSON Lines, rows in memory), splitting texts into words, every bad-input message."""

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bertforge.data.tagged import TaggedData, looks_tagged, read_tagged, read_untagged, split_words
from bertforge.errors import BertforgeError
from file_helpers import error_of, write

# The real data sets live beside the checkout, never inside it (see shared/data/README.md).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PREFIX_FIX = "use O or B-, I-, E- or S- followed by the type"


def jsonl(*records) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def assert_points_at(message: str, source, where: str, fix: str) -> None:
    """The message starts with the source and the place (``line 3``, ``row 1``) and carries the fix."""
    assert message.startswith(f"{source}: {where}: "), message
    assert fix in message.split("; ", 1)[1], message


# ---------------------------------------------------------------- words


def test_split_words_cuts_at_whitespace_and_every_punctuation_mark_with_offsets_into_the_text():
    text = "Zürich's café, 🇨🇭 ok!?"
    found = split_words(text)
    assert [word for word, _, _ in found] == ["Zürich", "'", "s", "café", ",", "🇨🇭", "ok", "!", "?"]
    assert all(text[start:end] == word for word, start, end in found)
    assert found[0] == ("Zürich", 0, 6)  # characters, not UTF-8 bytes (Zürich is 7 bytes)


def test_split_words_of_blank_text_is_empty():
    assert split_words(" \t\n ") == []


# ---------------------------------------------------------------- CoNLL


def test_conll_reads_words_tags_lines_and_joined_texts(tmp_path):
    path = write(tmp_path, "train.conll", "EU\tB-ORG\nrejects O\n\nPeter B-PER\nBlackburn\tI-PER\n")
    data = read_tagged(path)
    assert isinstance(data, TaggedData)
    assert data.words == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert data.tags == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    assert data.texts == ["EU rejects", "Peter Blackburn"]
    assert data.offsets == [[(0, 2), (3, 10)], [(0, 5), (6, 15)]]
    assert data.lines == [1, 4]
    assert data.path == str(path) and data.unit == "line" and data.scheme == "iob2"
    assert len(data) == 2
    assert data.where(1) == f"{path}: line 4"


def test_conll_with_four_columns_reads_the_last_or_the_tag_column_given(tmp_path):
    content = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nGerman JJ B-NP B-MISC\n"
    path = write(tmp_path, "train.txt", content)
    assert read_tagged(path).tags == [["B-ORG", "O"], ["B-MISC"]]
    pos = read_tagged(path, tag_column=1)
    assert pos.tags == [["NNP", "VBZ"], ["JJ"]] and pos.scheme == "plain"
    assert read_tagged(path, tag_column=-2).tags == [["B-NP", "B-VP"], ["B-NP"]]
    assert read_tagged(path, tag_column="2").tags == read_tagged(path, tag_column=-2).tags
    assert read_tagged(path, tag_column=1).words == [["EU", "rejects"], ["German"]]


def test_conll_tag_column_outside_the_columns_or_on_the_word_fails(tmp_path):
    path = write(tmp_path, "train.conll", "\nEU NNP B-NP B-ORG\n")
    assert_points_at(error_of(read_tagged, path, tag_column=4), path, "line 2", "--tag-column from 1 to 3")
    assert "no column 4: lines have 4 columns" in error_of(read_tagged, path, tag_column=4)
    assert "is the word" in error_of(read_tagged, path, tag_column=0)
    assert "is the word" in error_of(read_tagged, path, tag_column=-4)
    assert "CoNLL columns have none" in error_of(read_tagged, path, tag_column="ner")


def test_conll_skips_docstart_and_its_blank_and_takes_blank_runs_as_one_separator(tmp_path):
    content = ("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n\n\n\nrejects VBZ B-VP O\n"
               "-DOCSTART- -X- -X- O\n\r\nGerman JJ B-NP B-MISC\r\ncall NN I-NP O")  # no trailing newline
    data = read_tagged(write(tmp_path, "train.conll", content))
    assert data.words == [["EU"], ["rejects"], ["German", "call"]]
    assert data.lines == [3, 7, 10]
    assert data.tags[2] == ["B-MISC", "O"]


def test_conll_whitespace_only_lines_separate_sentences_like_wnut_train(tmp_path):
    content = "@paul\tO\nhere\tO\n\t\nEmpire\tB-location\nState\tI-location\n \t \nok O\n"
    data = read_tagged(write(tmp_path, "train.conll", content))
    assert data.words == [["@paul", "here"], ["Empire", "State"], ["ok"]]
    assert data.lines == [1, 4, 7]


def test_utf8_bom_is_dropped(tmp_path):
    data = read_tagged(write(tmp_path, "train.conll", "\ufeffZürich B-LOC\n".encode("utf-8")))
    assert data.words == [["Zürich"]]


@pytest.mark.parametrize("tags, scheme", [
    (["I-PER", "I-PER", "O", "I-LOC"], "iob1"),
    (["B-PER", "I-PER", "O", "B-LOC"], "iob2"),
    (["B-PER", "E-PER", "O", "S-LOC"], "bioes"),
    (["NNP", "NNP", "VBZ", "DT"], "plain"),
])
def test_scheme_is_detected_through_the_reader(tmp_path, tags, scheme):
    words = ["Peter", "Smith", "visits", "Bonn"]
    path = write(tmp_path, "train.conll", "".join(f"{word} {tag}\n" for word, tag in zip(words, tags)))
    assert read_tagged(path).scheme == scheme


def test_scheme_is_detected_over_all_sentences_of_a_file(tmp_path):
    # I- opening an entity only in the second sentence still makes the file IOB1.
    path = write(tmp_path, "train.conll", "Peter B-PER\nSmith I-PER\n\nin O\nBonn I-LOC\n")
    assert read_tagged(path).scheme == "iob1"


# ---------------------------------------------------------------- JSON Lines: word lists


@pytest.mark.parametrize("key", ["tags", "ner_tags", "labels"])
def test_jsonl_word_lists_take_tags_under_each_usual_key(tmp_path, key):
    content = jsonl({"id": 1, "tokens": ["EU", "rejects"], key: ["B-ORG", "O"]},
                    {"id": 2, "tokens": ["Bonn"], key: ["B-LOC"]})
    data = read_tagged(write(tmp_path, "train.jsonl", "\n" + content))
    assert data.words == [["EU", "rejects"], ["Bonn"]]
    assert data.tags == [["B-ORG", "O"], ["B-LOC"]]
    assert data.texts == ["EU rejects", "Bonn"] and data.offsets[0] == [(0, 2), (3, 10)]
    assert data.lines == [2, 3] and data.scheme == "iob2"


def test_jsonl_tag_column_names_the_key(tmp_path):
    content = jsonl({"tokens": ["EU", "rejects"], "pos_tags": ["NNP", "VBZ"], "tags": ["B-ORG", "O"]})
    path = write(tmp_path, "train.txt", content)  # a first "{" makes it JSON Lines whatever the name
    data = read_tagged(path, tag_column="pos_tags")
    assert data.tags == [["NNP", "VBZ"]] and data.scheme == "plain"
    assert read_tagged(path).tags == [["B-ORG", "O"]]


# ---------------------------------------------------------------- JSON Lines: texts with character spans


def test_jsonl_spans_become_iob2_tags_of_the_words_of_the_text(tmp_path):
    text = "I met Ana Lima in Zürich 🎉."
    content = jsonl({"text": text, "entities": [{"start": 18, "end": 24, "label": "LOC"},
                                                {"start": 6, "end": 14, "label": "PER"}]},
                    {"text": "Nothing here", "entities": []})
    data = read_tagged(write(tmp_path, "doccano.jsonl", content))
    assert data.words[0] == ["I", "met", "Ana", "Lima", "in", "Zürich", "🎉", "."]
    assert data.tags == [["O", "O", "B-PER", "I-PER", "O", "B-LOC", "O", "O"], ["O", "O"]]
    assert data.texts[0] == text
    assert [text[start:end] for start, end in data.offsets[0]] == data.words[0]
    assert data.scheme == "iob2"


def test_jsonl_spans_under_doccano_label_lists_spans_and_offset_keys(tmp_path):
    text = "Ana flew to Rome"
    content = jsonl({"text": text, "label": [[12, 16, "LOC"], [0, 3, "PER"]]},
                    {"text": text, "spans": [{"start_offset": 12, "end_offset": 16, "label": "LOC"}]},
                    {"text": text, "entities": [{"start": 0, "end": 3, "labels": ["PER"]}]})
    data = read_tagged(write(tmp_path, "export.jsonl", content))
    assert data.tags == [["B-PER", "O", "O", "B-LOC"], ["O", "O", "O", "B-LOC"], ["B-PER", "O", "O", "O"]]


def test_adjacent_spans_of_one_type_stay_two_entities(tmp_path):
    content = jsonl({"text": "Ana Lima", "entities": [[0, 3, "PER"], [4, 8, "PER"]]})
    assert read_tagged(write(tmp_path, "t.jsonl", content)).tags == [["B-PER", "B-PER"]]


# ---------------------------------------------------------------- rows in memory


def test_in_memory_lists_of_dicts_and_of_pairs():
    dicts = read_tagged([{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]},
                         {"tokens": ["Bonn"], "tags": ["B-LOC"]}])
    assert dicts.words == [["EU", "rejects"], ["Bonn"]] and dicts.tags == [["B-ORG", "O"], ["B-LOC"]]
    assert dicts.path == "<list of 2 rows>" and dicts.unit == "row" and dicts.lines == [0, 1]
    assert dicts.where(1) == "<list of 2 rows>: row 1"
    pairs = read_tagged([(["Peter", "Smith"], ["I-PER", "I-PER"]), (("ok",), ("O",))])
    assert pairs.words == [["Peter", "Smith"], ["ok"]] and pairs.scheme == "iob1"
    assert pairs.texts == ["Peter Smith", "ok"]
    spans = read_tagged([{"text": "Ana flew", "entities": [[0, 3, "PER"]]}])
    assert spans.tags == [["B-PER", "O"]]


def test_in_memory_dataframes_of_word_lists_and_of_texts_with_spans():
    pandas = pytest.importorskip("pandas")
    # Hugging Face datasets' to_pandas() gives numpy arrays in list columns.
    frame = pandas.DataFrame({"tokens": [np.array(["EU", "rejects"]), ["Bonn"]],
                              "ner_tags": [np.array(["B-ORG", "O"]), ["B-LOC"]]})
    data = read_tagged(frame)
    assert data.words == [["EU", "rejects"], ["Bonn"]] and data.tags == [["B-ORG", "O"], ["B-LOC"]]
    assert data.path == "<DataFrame>" and data.lines == [0, 1]
    texts = pandas.DataFrame({"text": ["Ana flew", "to Rome"], "entities": [[[0, 3, "PER"]], [[3, 7, "LOC"]]]})
    assert read_tagged(texts).tags == [["B-PER", "O"], ["O", "B-LOC"]]


def test_subset_keeps_the_order_given_and_the_places():
    data = read_tagged([(["a"], ["O"]), (["b"], ["B-X"]), (["c"], ["O"])])
    picked = data.subset([2, 0])
    assert picked.words == [["c"], ["a"]] and picked.tags == [["O"], ["O"]] and picked.lines == [2, 0]
    assert picked.texts == ["c", "a"] and picked.scheme == data.scheme and picked.unit == "row"


# ---------------------------------------------------------------- read_untagged


def test_untagged_plain_lines_split_into_words_whose_offsets_slice_back(tmp_path):
    path = write(tmp_path, "predict.txt", "Ana flew to Zürich, didn't she?\n\n   \n  Bonn 🎉 ok\r\n")
    data = read_untagged(path)
    assert data.tags is None and data.scheme is None
    assert data.lines == [1, 4]
    assert data.texts == ["Ana flew to Zürich, didn't she?", "  Bonn 🎉 ok"]
    assert data.words[1] == ["Bonn", "🎉", "ok"]
    for text, words, offsets in zip(data.texts, data.words, data.offsets):
        assert [text[start:end] for start, end in offsets] == words
    assert data.words[0][3:7] == ["Zürich", ",", "didn", "'"]


def test_untagged_jsonl_texts_and_tokens(tmp_path):
    texts = read_untagged(write(tmp_path, "p.jsonl", jsonl({"text": "Hi, Ana", "id": 3}, {"text": "Bye"})))
    assert texts.words == [["Hi", ",", "Ana"], ["Bye"]] and texts.offsets[0] == [(0, 2), (2, 3), (4, 7)]
    tokens = read_untagged(write(tmp_path, "q.jsonl", jsonl({"tokens": ["New", "York"], "tags": ["B-LOC", "X"]})))
    assert tokens.words == [["New", "York"]] and tokens.texts == ["New York"] and tokens.tags is None


def test_untagged_conll_takes_the_first_column_and_ignores_any_tags(tmp_path):
    path = write(tmp_path, "test.iob", "-DOCSTART- O\n\nEU B-ORG\nrejects\n\nBonn X\n")
    data = read_untagged(path)
    assert data.words == [["EU", "rejects"], ["Bonn"]] and data.lines == [3, 6] and data.tags is None
    # A file laid out as tagged CoNLL is read as one, whatever its name.
    assert read_untagged(write(tmp_path, "test.txt", "EU B-ORG\nrejects O\n\nBonn O\n")).words == data.words


def test_untagged_in_memory_texts_and_token_lists():
    texts = read_untagged(["Ana flew.", "Bonn"])
    assert texts.words == [["Ana", "flew", "."], ["Bonn"]] and texts.unit == "row" and texts.lines == [0, 1]
    tokens = read_untagged([["New", "York"], ("ok",)])
    assert tokens.words == [["New", "York"], ["ok"]] and tokens.offsets[0] == [(0, 3), (4, 8)]


def test_untagged_reads_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("Hi Ana\n".encode()), encoding="utf-8"))
    assert read_untagged("-").words == [["Hi", "Ana"]]


# ---------------------------------------------------------------- looks_tagged


def test_looks_tagged_on_files(tmp_path):
    assert not looks_tagged(write(tmp_path, "train.csv", "text,label\ngreat film,pos\ndull,neg\n"))
    assert looks_tagged(write(tmp_path, "train.conll", "anything at all\n"))
    assert looks_tagged(write(tmp_path, "tokens.jsonl", jsonl({"tokens": ["a"], "ner_tags": ["O"]})))
    assert looks_tagged(write(tmp_path, "spans.jsonl", jsonl({"text": "a", "entities": []})))
    assert looks_tagged(write(tmp_path, "doccano.jsonl", jsonl({"text": "Ana", "label": [[0, 3, "PER"]]})))
    assert not looks_tagged(write(tmp_path, "classes.jsonl", jsonl({"text": "great film", "label": "pos"})))
    assert looks_tagged(write(tmp_path, "train.txt", "-DOCSTART- O\n\nEU\tB-ORG\nrejects O\n\t\nBonn I-LOC\n"))
    assert not looks_tagged(write(tmp_path, "one.txt", "EU B-ORG\nrejects O\n"))  # no blank line
    assert not looks_tagged(write(tmp_path, "pos.txt", "EU NNP\nrejects VBZ\n\nok JJ\n"))
    assert not looks_tagged(write(tmp_path, "prose.txt", "Hello there O\n\nsome text here\n"))


def test_looks_tagged_never_raises_on_what_it_cannot_read(tmp_path):
    assert not looks_tagged(tmp_path / "missing.conll")
    assert not looks_tagged(tmp_path)
    assert not looks_tagged(write(tmp_path, "bad.jsonl", "{not json\n"))
    # A wrong encoding does not hide the layout; the reader then reports the bytes.
    assert looks_tagged(write(tmp_path, "latin1.txt", "caf\xe9 O\n\nok O\n".encode("latin-1")))
    assert not looks_tagged("-")


def test_looks_tagged_reads_only_the_start_of_a_big_file(tmp_path):
    big = "word O\n" * 20000 + "\n"  # 140 KB: the blank line lies past the first 64 KB
    assert not looks_tagged(write(tmp_path, "big.txt", big))
    assert looks_tagged(write(tmp_path, "big2.txt", "a O\n\n" + big))


def test_looks_tagged_on_rows_in_memory():
    assert looks_tagged([(["Hi"], ["O"])])
    assert looks_tagged([{"tokens": ["Hi"], "tags": ["O"]}])
    assert looks_tagged([{"text": "Hi", "entities": []}])
    assert not looks_tagged([{"text": "Hi", "label": "greet"}])
    assert not looks_tagged([("great film", "pos")])
    assert not looks_tagged(["great film"])
    assert not looks_tagged([])
    pandas = pytest.importorskip("pandas")
    assert looks_tagged(pandas.DataFrame({"tokens": [np.array(["Hi"])], "tags": [np.array(["O"])]}))
    assert not looks_tagged(pandas.DataFrame({"text": ["great"], "label": ["pos"]}))


# ---------------------------------------------------------------- bad input: files


def test_bytes_that_are_not_utf8_fail_naming_the_file_and_line(tmp_path):
    path = write(tmp_path, "train.conll", "ok O\n\ncaf\xe9 O\n".encode("latin-1"))
    assert_points_at(error_of(read_tagged, path), path, "line 3", "re-save the file as UTF-8")


def test_empty_files_fail(tmp_path):
    path = write(tmp_path, "train.conll", "\n \t\n")
    message = error_of(read_tagged, path)
    assert message.startswith(f"{path}: the file is empty; ") and "one word and its tag per line" in message
    only_marks = write(tmp_path, "marks.conll", "-DOCSTART- O\n\n-DOCSTART- O\n")
    message = error_of(read_tagged, only_marks)
    assert message.startswith(f"{only_marks}: no sentences") and "one word and its tag per line" in message
    assert error_of(read_untagged, write(tmp_path, "p.txt", "\n\n")).endswith("write one sentence per line")


def test_a_missing_file_fails_in_one_line(tmp_path):
    path = tmp_path / "nope.conll"
    assert error_of(read_tagged, path) == f"{path}: no such file; check the path and the current folder"


def test_conll_line_with_other_columns_than_the_first_fails_at_it(tmp_path):
    content = "-DOCSTART- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nNew York NNP B-NP B-LOC\n"
    path = write(tmp_path, "train.conll", content)
    message = error_of(read_tagged, path)
    assert message.startswith(f"{path}: line 6: 5 columns where line 3 has 4; "), message
    assert "give every word line the same columns" in message


def test_conll_with_one_column_has_no_tags(tmp_path):
    path = write(tmp_path, "train.conll", "EU\nrejects\n")
    assert_points_at(error_of(read_tagged, path), path, "line 1", "write each word's tag after it")


def test_conll_tag_that_fits_no_scheme_fails_at_its_word_line(tmp_path):
    path = write(tmp_path, "train.conll", "Peter B-PER\nSmith I-PER\n\nin O\nBonn X-LOC\n")
    message = error_of(read_tagged, path)
    assert_points_at(message, path, "line 5", PREFIX_FIX)
    assert "'X-LOC'" in message


def test_jsonl_tag_that_fits_no_scheme_fails_at_its_record_naming_the_token(tmp_path):
    path = write(tmp_path, "train.jsonl", jsonl({"tokens": ["Peter"], "tags": ["B-PER"]},
                                                {"tokens": ["in", "Bonn"], "tags": ["O", "LOC"]}))
    message = error_of(read_tagged, path)
    assert_points_at(message, path, "line 2", PREFIX_FIX)
    assert "tokens[1] 'Bonn'" in message and "'LOC'" in message


def test_jsonl_tags_of_another_length_than_the_tokens(tmp_path):
    path = write(tmp_path, "train.jsonl", jsonl({"tokens": ["a"], "tags": ["O"]},
                                                {"tokens": list("abcdef"), "tags": ["O"] * 5}))
    assert error_of(read_tagged, path) == f"{path}: line 2: 5 tags for 6 tokens; give one tag per token"


@pytest.mark.parametrize("record, what, fix", [
    ({"tokens": [], "tags": []}, "the sentence has no tokens", "give it its tokens or delete it"),
    ({"tokens": ["New York"], "tags": ["B-LOC"]}, "tokens[0] 'New York' holds whitespace", "one token per word"),
    ({"tokens": ["a", ""], "tags": ["O", "O"]}, "tokens[1] is empty", "delete it"),
    ({"tokens": ["a", 3], "tags": ["O", "O"]}, "tokens[1] is a number", "write every token as a string"),
    ({"tokens": "a b", "tags": ["O", "O"]}, '"tokens" is a string, not a list', "list of strings"),
    ({"tokens": ["EU"], "ner_tags": [3]}, "ner_tags[0] is the number 3", "list of tag names"),
    ({"tokens": ["EU"], "tags": "O"}, "'tags' is a string, not a list", "one per token"),
    ({"tokens": ["EU"], "pos": ["O"]}, "no tags: none of the keys tags, ner_tags, labels (found: tokens, pos)",
     "--tag-column"),
    ({"words": ["EU"]}, 'no "tokens" or "text" (found: words)', '"tokens" and "tags"'),
    ({"text": "", "entities": []}, "the text is empty", "fill it in or delete it"),
    ({"text": "  \t ", "entities": []}, "the text holds no words", "fill it in or delete it"),
    ({"text": "Ana", "label": "PER"}, "this looks like text classification", '"label": [[start, end, "TYPE"]'),
    ({"text": "Ana"}, "no entities: none of the keys entities, spans, label", "an empty list when the text has none"),
    ({"text": "Ana flew", "entities": [[0, 30, "PER"]]},
     "entities[0] ('PER', 0-30) does not fit the text of 8 characters",
     "give 0 <= start < end <= 8"),
    ({"text": "Ana flew", "entities": [[4, 4, "PER"]]}, "does not fit the text", "start < end"),
    ({"text": "Ana flew", "entities": [[0, 3, ""]]}, "entities[0] 'Ana' (0-3) has no label",
     "give every entity a label"),
    ({"text": "Ana flew", "entities": [{"begin": 0, "end": 3, "label": "PER"}]}, "not character offsets",
     '{"start": 0, "end": 5, "label": "LOC"}'),
    ({"text": "Ana flew", "entities": ["PER"]}, "entities[0] is 'PER', not an entity", "[0, 5, \"LOC\"]"),
])
def test_bad_records_fail_at_their_line(tmp_path, record, what, fix):
    path = write(tmp_path, "train.jsonl", "\n" + jsonl(record))
    message = error_of(read_tagged, path)
    assert_points_at(message, path, "line 2", fix)
    assert what in message, message


def test_span_that_cuts_words_names_its_text_and_the_nearest_word_boundaries(tmp_path):
    text = "I met Ana Lima in Bonn"
    path = write(tmp_path, "train.jsonl", jsonl({"text": text, "entities": [[7, 12, "PER"]]}))
    message = error_of(read_tagged, path)
    assert message == (f"{path}: line 1: entities[0] 'na Li' (PER, 7-12) does not start where a word starts and"
                       " end where a word ends; the nearest word boundaries are 6-14 ('Ana Lima');"
                       " words split at whitespace and punctuation")
    # A span that takes in the space before a word is the word.
    assert read_tagged(write(tmp_path, "b.jsonl", jsonl({"text": text, "label": [[17, 22, "LOC"]]}))).tags == [
        ["O", "O", "O", "O", "O", "B-LOC"]]
    # Punctuation is a word of its own, so a span ending before a comma is fine, and one inside a word is not.
    assert read_tagged([{"text": "Bonn, ok", "entities": [[0, 4, "LOC"]]}]).tags == [["B-LOC", "O", "O"]]
    assert "6-8 ('ok')" in error_of(read_tagged, [{"text": "Bonn, ok", "entities": [[7, 8, "X"]]}])


def test_overlapping_spans_fail_naming_both(tmp_path):
    text = "New York City"
    path = write(tmp_path, "train.jsonl", jsonl({"text": text, "entities": [[4, 13, "LOC"], [0, 8, "LOC"]]}))
    message = error_of(read_tagged, path)
    assert message == (f"{path}: line 1: entities[0] 'York City' (LOC, 4-13) overlaps entities[1] 'New York'"
                       " (LOC, 0-8); keep one of them: word tags hold one entity per word")


def test_records_of_two_forms_fail_at_the_first_that_differs(tmp_path):
    path = write(tmp_path, "train.jsonl", jsonl({"tokens": ["a"], "tags": ["O"]}, {"text": "b", "entities": []}))
    assert error_of(read_tagged, path) == (f'{path}: line 2: a record with "text" where line 1 has "tokens";'
                                           " give every line the same form")


def test_invalid_json_and_json_arrays_fail_at_their_line(tmp_path):
    path = write(tmp_path, "train.jsonl", jsonl({"tokens": ["a"], "tags": ["O"]}) + '{"tokens": ["b"]\n')
    assert_points_at(error_of(read_tagged, path), path, "line 2", "one JSON object per line")
    array = write(tmp_path, "array.json", '[{"tokens": ["a"], "tags": ["O"]}]\n')
    assert_points_at(error_of(read_tagged, array), array, "line 1", "rewrite the JSON array")


def test_a_position_as_tag_column_of_json_lines_fails(tmp_path):
    path = write(tmp_path, "train.jsonl", jsonl({"tokens": ["a"], "tags": ["O"]}))
    message = error_of(read_tagged, path, tag_column=1)
    assert message.startswith(f"{path}: tag column 1 is a position") and "--tag-column with the key" in message


# ---------------------------------------------------------------- bad input: rows in memory


def test_bad_rows_in_memory_fail_naming_the_row():
    rows = [(["a", "b"], ["O", "O"]), (["c"], ["O", "O"])]
    assert error_of(read_tagged, rows) == "<list of 2 rows>: row 1: 2 tags for 1 token; give one tag per token"
    message = error_of(read_tagged, [(["a"], ["O"]), ["b", "c"]])
    assert_points_at(message, "<list of 2 rows>", "row 1", "give every row the same form")
    message = error_of(read_tagged, [{"tokens": ["a"], "tags": ["O"]}, {"tokens": ["b"]}])
    assert_points_at(message, "<list of 2 rows>", "row 1", 'add "tags" with one tag per token')
    assert "tag_column=" in message and "--tag-column" not in message  # the keyword, not the flag, in memory
    message = error_of(read_tagged, [{"tokens": ["a"], "pos": ["O"]}, {"tokens": ["b"]}], tag_column="pos")
    assert_points_at(message, "<list of 2 rows>", "row 1", "give every record its tags")
    message = error_of(read_tagged, [(["B"], ["B-X"]), (["x"], ["Y-X"])])
    assert_points_at(message, "<list of 2 rows>", "row 1", PREFIX_FIX)


def test_rows_without_tags_fail_in_a_labeled_read():
    message = error_of(read_tagged, ["Ana flew", "Bonn"])
    assert message.startswith("<list of 2 rows>: the rows are texts, with no tags; give rows as")
    assert "the rows are token lists, with no tags" in error_of(read_tagged, [["Ana", "flew"]])
    assert error_of(read_tagged, []) == "<list of 0 rows>: there are no rows; pass one row per sentence"
    assert_points_at(error_of(read_tagged, [(["a"], ["O"]), 3]), "<list of 2 rows>", "row 1", "give rows as")


# ---------------------------------------------------------------- real data


def test_wnut17_train_reads_as_released():
    path = SHARED_DATA / "wnut17" / "train.conll"
    if not path.is_file():
        pytest.skip(f"WNUT 2017 not found at {path}: place the shared data folder beside the checkout")
    data = read_tagged(path)
    assert len(data) == 3394
    assert sum(len(words) for words in data.words) == 62730
    assert data.scheme == "iob2"
    assert len({tag for tags in data.tags for tag in tags}) == 13
    assert data.words[0][:3] == ["@paulwalk", "It", "'s"] and data.lines[:2] == [1, 29]
    assert all(len(words) == len(tags) for words, tags in zip(data.words, data.tags))
    assert looks_tagged(path)


def test_texts_to_tag_come_from_a_csv_column(tmp_path):
    path = tmp_path / "texts.csv"
    path.write_text('id,text\n1,"Hello, Paris"\n2,Bye now\n', encoding="utf-8")
    data = read_untagged(path)
    assert data.words == [["Hello", ",", "Paris"], ["Bye", "now"]] and data.lines == [2, 3]
    assert data.texts == ["Hello, Paris", "Bye now"] and data.offsets[0][2] == (7, 12)


def test_a_span_that_takes_in_a_space_is_the_words_it_covers():
    data = read_tagged([{"text": "I love New York .", "entities": [{"start": 6, "end": 15, "label": "LOC"}]}])
    assert data.tags == [["O", "O", "B-LOC", "I-LOC", "O"]]
    with pytest.raises(BertforgeError, match=r"row 0: entities\[0\] \('LOC', 6-8\) covers only whitespace"):
        read_tagged([{"text": "I love  New York .", "entities": [{"start": 6, "end": 8, "label": "LOC"}]}])
