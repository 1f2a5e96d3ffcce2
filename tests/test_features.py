"""Features: the run_classifier layout, batch = stacked singles, labels, bad input."""

import csv

import numpy as np
import pytest

import bertforge.text.features as features
from bertforge.errors import BertforgeError
from bertforge.text.features import (NO_LABEL, Features, InputExample, convert_examples_to_features,
                                convert_single_example)
from bertforge.text.tokenizer import Tokenizer

# Ids in the uncased BERT vocabulary that MiniLM uses.
CLS, SEP, PAD = 101, 102, 0
THE, QUICK, BROWN, FOX, JUMPS, OVER, LAZY, DOG = 1996, 4248, 2829, 4419, 14523, 2058, 13971, 3899
HELLO, WORLD = 7592, 2088


@pytest.fixture(scope="module")
def tok(minilm_dir):
    return Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def trec_examples(data_dir):
    with open(data_dir / "trec" / "test.csv", newline="", encoding="utf-8") as handle:
        return [InputExample(row["text"], label=row["label"], guid=f"test-{i}")
                for i, row in enumerate(csv.DictReader(handle))]


def one_line_error(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message, message
    for needle in needles:
        assert str(needle) in message, f"{needle!r} not in {message!r}"


def test_text_needing_truncation_keeps_cls_and_sep(tok):
    example = InputExample("the quick brown fox jumps over the lazy dog", label=1)
    ids, mask, segs, label = convert_single_example(tok, example, max_seq_length=6)
    assert ids == [CLS, THE, QUICK, BROWN, FOX, SEP]
    assert mask == [1] * 6
    assert segs == [0] * 6
    assert label == 1


def test_short_text_is_padded_with_zeros(tok):
    ids, mask, segs, label = convert_single_example(tok, InputExample("Hello world!"), max_seq_length=8)
    assert ids == [CLS, HELLO, WORLD, 999, SEP, PAD, PAD, PAD]  # 999 is "!"
    assert mask == [1, 1, 1, 1, 1, 0, 0, 0]
    assert segs == [0] * 8
    assert label is None


def test_pair_layout_and_segments(tok):
    example = InputExample(text_a="hello world", text_b="the lazy dog", label="x")
    ids, mask, segs, label = convert_single_example(tok, example, max_seq_length=10, label_map={"x": 3})
    assert ids == [CLS, HELLO, WORLD, SEP, THE, LAZY, DOG, SEP, PAD, PAD]
    assert mask == [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert segs == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert label == 3


def test_pair_truncation_cuts_the_longer_text_first(tok):
    example = InputExample("the quick brown fox jumps", text_b="hello world")
    ids, mask, segs, _ = convert_single_example(tok, example, max_seq_length=8)
    assert ids == [CLS, THE, QUICK, BROWN, SEP, HELLO, WORLD, SEP]
    assert segs == [0, 0, 0, 0, 0, 1, 1, 1]
    assert mask == [1] * 8


def test_batch_equals_stacked_single_examples(tok, trec_examples):
    label_map = {label: i for i, label in enumerate(sorted({e.label for e in trec_examples}))}
    examples = list(trec_examples[:120])
    # Mix in pairs and unlabeled rows: one batch call must handle both layouts.
    examples += [InputExample(a.text, b.label, text_b=b.text) for a, b in zip(trec_examples[120:160],
                                                                              trec_examples[160:200])]
    examples += [InputExample(e.text) for e in trec_examples[200:220]]
    feats = convert_examples_to_features(tok, examples, max_seq_length=20, label_map=label_map)
    assert isinstance(feats, Features)
    ids, mask, segs, labels = feats
    assert ids.shape == mask.shape == segs.shape == (len(examples), 20)
    assert labels.shape == (len(examples),)
    assert {a.dtype for a in feats} == {np.dtype(np.int64)}
    for row, example in enumerate(examples):
        single = convert_single_example(tok, example, max_seq_length=20, label_map=label_map)
        assert ids[row].tolist() == single[0], row
        assert mask[row].tolist() == single[1], row
        assert segs[row].tolist() == single[2], row
        assert labels[row] == (NO_LABEL if example.label is None else single[3])
    assert (labels[-20:] == NO_LABEL).all() and (labels[:160] >= 0).all()
    assert segs[120:160].max() == 1 and segs[:120].max() == 0


def test_features_match_transformers_on_real_text(tok, minilm_dir, trec_examples):
    from transformers import BertTokenizerFast

    texts = [e.text for e in trec_examples]
    want = BertTokenizerFast.from_pretrained(str(minilm_dir))(
        texts, padding="max_length", truncation=True, max_length=16, return_tensors="np")
    label_map = {label: i for i, label in enumerate(sorted({e.label for e in trec_examples}))}
    got = convert_examples_to_features(tok, trec_examples, max_seq_length=16, label_map=label_map)
    np.testing.assert_array_equal(got.input_ids, want["input_ids"])
    np.testing.assert_array_equal(got.input_mask, want["attention_mask"])
    np.testing.assert_array_equal(got.segment_ids, want["token_type_ids"])
    np.testing.assert_array_equal(got.labels, [label_map[e.label] for e in trec_examples])


def test_the_batch_path_makes_one_encode_batch_call(tok, monkeypatch):
    calls = []
    original = Tokenizer.encode_batch

    def counting(self, *args, **kwargs):
        calls.append(len(args[0]))
        return original(self, *args, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("convert_examples_to_features must not encode one example at a time")

    monkeypatch.setattr(Tokenizer, "encode_batch", counting)
    monkeypatch.setattr(Tokenizer, "encode", refuse)
    feats = convert_examples_to_features(tok, ["one", "two", "three"], max_seq_length=8)
    assert calls == [3]
    assert feats.labels.tolist() == [NO_LABEL] * 3


def test_labels(tok):
    examples = [InputExample("a", label=2), InputExample("b", label=np.int64(0)), InputExample("c")]
    assert convert_examples_to_features(tok, examples, max_seq_length=4).labels.tolist() == [2, 0, -1]
    with pytest.raises(BertforgeError) as excinfo:
        convert_examples_to_features(tok, [InputExample("a", "ham"), InputExample("b", "spam")], 4)
    one_line_error(excinfo, "example 0", "label_map")
    with pytest.raises(BertforgeError) as excinfo:
        convert_examples_to_features(tok, [InputExample("a", "ham"), InputExample("b", "eggs", guid="row-9")],
                                     4, label_map={"ham": 0, "spam": 1})
    one_line_error(excinfo, "example 1", "row-9", "'eggs'")


def test_input_example_names():
    assert InputExample(text_a="x", text_b="y", label=1) == InputExample("x", 1, "y")
    assert InputExample("x").text_a == "x"
    with pytest.raises(BertforgeError):
        InputExample("x", text_a="y")


@pytest.mark.parametrize("length, needle", [(513, "512"), (1, "below 2"), (128.0, "not an int")])
def test_bad_max_seq_length(tok, length, needle):
    with pytest.raises(BertforgeError) as excinfo:
        convert_examples_to_features(tok, [InputExample("hello")], max_seq_length=length)
    one_line_error(excinfo, f"max_seq_length={length}", needle)
    with pytest.raises(BertforgeError):
        convert_single_example(tok, InputExample("hello"), max_seq_length=length)


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_text_names_the_example(tok, text):
    examples = [InputExample("fine"), InputExample("fine too", text_b="ok"), InputExample(text, guid="row-7")]
    with pytest.raises(BertforgeError) as excinfo:
        convert_examples_to_features(tok, examples, max_seq_length=16)
    one_line_error(excinfo, "example 2", "row-7")
    with pytest.raises(BertforgeError) as excinfo:
        convert_examples_to_features(tok, [InputExample("fine", text_b=text or "")], max_seq_length=16)
    one_line_error(excinfo, "example 0", "text_b")


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(features)
    assert result.attempted > 5 and result.failed == 0
