"""Tokenizer: ids identical to transformers on real text, training, saving, bad input."""

import doctest
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import bertforge.text.tokenizer as tokenization
from bertforge.errors import BertforgeError
from bertforge.text.tokenizer import Tokenizer

DATASETS = ("trec/train", "trec/test", "sms_spam/train", "sms_spam/test")


def reference(directory, **kwargs):
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(directory), **kwargs)


def assert_same_as_reference(ours: Tokenizer, theirs, texts, pairs=None, max_length=512):
    """Unpadded ids, segments and masks equal transformers' for every text (or pair).

    ``theirs`` is a transformers tokenizer, or its output for these texts already made.
    """
    got = ours.encode_batch(texts, pairs, max_length=max_length, padding=False)
    want = theirs if isinstance(theirs, dict) else theirs(
        texts, pairs, truncation="longest_first", max_length=max_length)
    for index, (a, b) in enumerate(zip(got["input_ids"], want["input_ids"])):
        assert a == b, f"text {index} {texts[index]!r}: {a} != {b}"
    assert got["segment_ids"] == want["token_type_ids"]
    assert got["input_mask"] == want["attention_mask"]
    assert len(got["input_ids"]) == len(texts)


def one_line_error(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message, message
    for needle in needles:
        assert str(needle) in message, f"{needle!r} not in {message!r}"
    return message


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def minilm_reference(minilm_dir):
    return reference(minilm_dir)


@pytest.fixture(scope="module")
def minilm_reference_ids(minilm_reference, real_texts):
    """transformers' encodings of every real text, made once for the module's tests."""
    return {name: dict(minilm_reference(real_texts[name], truncation=True, max_length=512))
            for name in DATASETS}


@pytest.fixture(scope="module")
def cased_dir(tmp_path_factory, data_dir):
    """A cased vocabulary trained here on Poe, saved; trained once for the module."""
    tokenizer = Tokenizer.train(data_dir / "poe" / "poe.txt", vocab_size=8000, lowercase=False)
    return tokenizer.save(tmp_path_factory.mktemp("poe-cased"))


# ------------------------------------------------------------ parity on real text


def test_minilm_opens_with_the_bert_special_ids(minilm):
    assert (minilm.pad_id, minilm.unk_id, minilm.cls_id, minilm.sep_id, minilm.mask_id) == (0, 100, 101, 102, 103)
    assert minilm.vocab_size == len(minilm.vocab) == 30522
    assert minilm.do_lower_case is True
    assert minilm.model_max_length == 512


@pytest.mark.parametrize("dataset", DATASETS)
def test_ids_match_transformers_on_every_real_text(minilm, minilm_reference_ids, real_texts, dataset):
    assert_same_as_reference(minilm, minilm_reference_ids[dataset], real_texts[dataset])


def test_padded_arrays_match_transformers(minilm, minilm_reference, real_texts):
    texts = real_texts["sms_spam/test"]
    got = minilm.encode_batch(texts, max_length=64, padding="max_length")
    want = minilm_reference(texts, padding="max_length", truncation=True, max_length=64, return_tensors="np")
    assert got["input_ids"].shape == (len(texts), 64)
    assert got["input_ids"].dtype == np.int64
    np.testing.assert_array_equal(got["input_ids"], want["input_ids"])
    np.testing.assert_array_equal(got["input_mask"], want["attention_mask"])
    np.testing.assert_array_equal(got["segment_ids"], want["token_type_ids"])
    # Some SMS texts are longer than 64 tokens: truncation must have kept [SEP] last.
    truncated = got["input_mask"].sum(1) == 64
    assert truncated.any() and (got["input_ids"][truncated, -1] == minilm.sep_id).all()

    longest = minilm.encode_batch(texts[:50], padding="longest")
    width = max(len(ids) for ids in minilm_reference(texts[:50])["input_ids"])
    assert longest["input_ids"].shape == (50, width)


@pytest.mark.parametrize("max_length", [12, 24])
def test_pairs_truncate_longest_first_like_transformers(minilm, minilm_reference, real_texts, max_length):
    texts = real_texts["trec/train"]
    # Consecutive questions as pairs; at 12 tokens nearly every pair is cut, at 24 some.
    firsts, seconds = texts[0:-1:2], texts[1::2]
    assert_same_as_reference(minilm, minilm_reference, firsts, seconds, max_length=max_length)
    padded = minilm.encode_batch(firsts, seconds, max_length=max_length, padding="max_length")
    want = minilm_reference(firsts, seconds, truncation="longest_first", max_length=max_length,
                            padding="max_length", return_tensors="np")
    np.testing.assert_array_equal(padded["segment_ids"], want["token_type_ids"])
    np.testing.assert_array_equal(padded["input_ids"], want["input_ids"])


def test_vocab_txt_path_matches_transformers(minilm_dir, minilm_reference, minilm_reference_ids,
                                            real_texts, tmp_path):
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, tmp_path / name)
    ours = Tokenizer.from_pretrained(tmp_path)
    assert not (tmp_path / "tokenizer.json").exists()
    assert ours.backend.model.max_input_chars_per_word == 100
    for dataset in DATASETS:
        assert_same_as_reference(ours, minilm_reference_ids[dataset], real_texts[dataset])
    texts = real_texts["trec/test"]
    assert_same_as_reference(ours, minilm_reference, texts[:-1], texts[1:], max_length=16)
    # The same vocabulary opened from the file path itself.
    by_file = Tokenizer.from_pretrained(tmp_path / "vocab.txt")
    assert by_file.encode(texts[0]) == ours.encode(texts[0])


def test_cased_vocabulary_trained_here_opens_in_transformers(cased_dir, real_texts):
    from transformers import AutoTokenizer

    ours = Tokenizer.from_pretrained(cased_dir)
    assert ours.pad_id == 0 and ours.convert_ids_to_tokens(0) == "[PAD]"
    assert ours.do_lower_case is False
    assert 7000 < ours.vocab_size <= 8000
    # Cased for real: capitals survive and get their own ids.
    assert ours.tokenize("The") != ours.tokenize("the")
    config = json.loads((cased_dir / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is False and config["tokenizer_class"] == "BertTokenizer"
    vocab_lines = (cased_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert vocab_lines == [token for token, _ in sorted(ours.vocab.items(), key=lambda kv: kv[1])]

    theirs = reference(cased_dir)
    for dataset in DATASETS:
        assert_same_as_reference(ours, theirs, real_texts[dataset])
    auto = AutoTokenizer.from_pretrained(str(cased_dir))
    texts = real_texts["trec/test"]
    assert auto(texts)["input_ids"] == ours.encode_batch(texts, padding=False)["input_ids"]


def test_lower_case_override_matches_transformers(minilm_dir):
    texts = ["Hello World, Émile", "NASA launched Apollo 11", "ÀÉÎ õü naïve"]
    for setting in (False, True):
        ours = Tokenizer.from_pretrained(minilm_dir, do_lower_case=setting)
        theirs = reference(minilm_dir, do_lower_case=setting)
        assert ours.do_lower_case is setting
        assert_same_as_reference(ours, theirs, texts)
    cased = Tokenizer.from_pretrained(minilm_dir, do_lower_case=False)
    assert cased.tokenize("Hello") != cased.tokenize("hello")


@pytest.mark.parametrize("settings", [{"do_lower_case": False}, {"do_lower_case": False, "strip_accents": True},
                                      {"do_lower_case": True, "strip_accents": False}])
def test_tokenizer_config_overrides_the_tokenizer_json_normalizer(minilm_dir, tmp_path, settings):
    shutil.copy(minilm_dir / "tokenizer.json", tmp_path / "tokenizer.json")
    config = json.loads((minilm_dir / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, **settings}))
    ours = Tokenizer.from_pretrained(tmp_path)
    assert ours.do_lower_case is settings["do_lower_case"]
    texts = ["Hello World, Émile", "NASA launched Apollo 11", "ÀÉÎ õü naïve café"]
    assert_same_as_reference(ours, reference(tmp_path), texts)


def test_tokenize_and_decode_match_transformers(minilm, minilm_reference, real_texts):
    text = "Ünïcode naïve café [MASK] tokenization"
    assert minilm.tokenize(text) == ["unicode", "naive", "cafe", "[MASK]", "token", "##ization"]
    enc = minilm.encode(text)
    assert enc.input_ids == [101, 27260, 15743, 7668, 103, 19204, 3989, 102]
    assert minilm.decode(enc.input_ids) == "unicode naive cafe tokenization"
    assert minilm.decode(enc.input_ids, skip_special_tokens=False) == \
        "[CLS] unicode naive cafe [MASK] tokenization [SEP]"
    for text in real_texts["sms_spam/test"][:200]:
        assert minilm.tokenize(text) == minilm_reference.tokenize(text)
        ids = minilm.encode(text).input_ids
        assert minilm.decode(ids) == minilm_reference.decode(ids, skip_special_tokens=True)
    assert minilm.convert_tokens_to_ids(["hello", "world", "no-such-token"]) == [7592, 2088, 100]
    assert minilm.convert_ids_to_tokens([101, 7592]) == ["[CLS]", "hello"]


def test_encode_truncates_and_pads(minilm):
    text = "the quick brown fox jumps over the lazy dog"
    assert minilm.encode(text, max_length=6).input_ids == [101, 1996, 4248, 2829, 4419, 102]
    ids, mask, segs = minilm.encode("hello world", max_length=7, padding="max_length")
    assert (ids, mask, segs) == ([101, 7592, 2088, 102, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0], [0] * 7)
    pair = minilm.encode("the quick brown fox jumps", "hello world", max_length=8)
    assert pair.input_ids == [101, 1996, 4248, 2829, 102, 7592, 2088, 102]
    assert pair.segment_ids == [0, 0, 0, 0, 0, 1, 1, 1]


def test_changing_max_length_between_calls_is_honoured(minilm, real_texts):
    texts = real_texts["sms_spam/test"][:100]
    short = minilm.encode_batch(texts, max_length=10, padding="max_length")["input_ids"]
    long = minilm.encode_batch(texts, max_length=40, padding="max_length")["input_ids"]
    assert minilm.tokenize(texts[0]) == minilm.tokenize(texts[0])  # no truncation here
    assert len(minilm.tokenize(" ".join(texts))) > 40
    again = minilm.encode_batch(texts, max_length=10, padding="max_length")["input_ids"]
    np.testing.assert_array_equal(short, again)
    np.testing.assert_array_equal(short[:, :9], long[:, :9])


def test_mixed_single_and_pair_rows(minilm):
    out = minilm.encode_batch(["hello world", "hello"], ["the dog", None], max_length=10,
                              padding="max_length")
    assert out["input_ids"].tolist() == [[101, 7592, 2088, 102, 1996, 3899, 102, 0, 0, 0],
                                         [101, 7592, 102, 0, 0, 0, 0, 0, 0, 0]]
    assert out["segment_ids"].tolist() == [[0, 0, 0, 0, 1, 1, 1, 0, 0, 0], [0] * 10]


def test_save_and_reopen_round_trip(minilm, minilm_dir, tmp_path, real_texts):
    minilm.save(tmp_path / "copy")
    again = Tokenizer.from_pretrained(tmp_path / "copy")
    texts = real_texts["trec/test"]
    assert again.encode_batch(texts, padding=False) == minilm.encode_batch(texts, padding=False)
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == [
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    assert (tmp_path / "copy" / "vocab.txt").read_bytes() == (minilm_dir / "vocab.txt").read_bytes()


# ------------------------------------------------------------------- training


def test_train_from_an_iterator_puts_pad_first():
    tok = Tokenizer.train(iter(["alpha beta gamma", "beta gamma delta"] * 30), vocab_size=80, min_frequency=1)
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert tok.tokenize("Alpha delta") == ["alpha", "delta"]


def test_train_rejects_a_vocabulary_too_small_for_the_special_tokens():
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.train(["some text"], vocab_size=5)
    one_line_error(excinfo, "vocab_size=5")


def test_train_rejects_a_corpus_without_text(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n   \n\n", encoding="utf-8")
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.train(empty, vocab_size=100)
    one_line_error(excinfo, "empty.txt", "no text")
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.train([], vocab_size=100)
    one_line_error(excinfo, "no text")
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.train([tmp_path / "missing.txt"], vocab_size=100)
    one_line_error(excinfo, "missing.txt")
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.train(["fine", None], vocab_size=100)
    one_line_error(excinfo, "item 1")


# ------------------------------------------------------------------ bad input


def write_vocab(directory: Path, body: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_bytes(body)
    return directory


BAD_VOCABS = {
    "binary": (b"\x00\x01\x02safetensors\x00\xff" * 20, "binary"),
    "empty": (b"", "empty"),
    "no specials": (b"hello\nworld\n##s\n", "[PAD]"),
    "duplicate": (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\nhello\n", "line 7"),
    "not utf-8": (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n", "line 5"),
    "blank line": (b"[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n", "line 3"),
}


@pytest.mark.parametrize("case", BAD_VOCABS)
def test_a_file_that_is_not_a_vocabulary_is_refused(tmp_path, case):
    body, needle = BAD_VOCABS[case]
    directory = write_vocab(tmp_path / "model", body)
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.from_pretrained(directory)
    one_line_error(excinfo, directory / "vocab.txt", needle)


def test_missing_directory_and_missing_vocab(tmp_path):
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.from_pretrained(tmp_path / "nowhere")
    one_line_error(excinfo, tmp_path / "nowhere", "no such")
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.from_pretrained(tmp_path)
    one_line_error(excinfo, tmp_path, "vocab.txt")


def test_broken_tokenizer_json_and_config_are_refused(minilm_dir, tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.from_pretrained(tmp_path)
    one_line_error(excinfo, tmp_path / "tokenizer.json")
    shutil.copy(minilm_dir / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer_config.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(BertforgeError) as excinfo:
        Tokenizer.from_pretrained(tmp_path)
    one_line_error(excinfo, tmp_path / "tokenizer_config.json")


@pytest.mark.parametrize("bad, needle", [("", "texts[2]"), ("  \t\n", "texts[2]"), (None, "texts[2]"),
                                         (42, "texts[2]")])
def test_empty_or_missing_text_names_its_index(minilm, bad, needle):
    with pytest.raises(BertforgeError) as excinfo:
        minilm.encode_batch(["fine", "also fine", bad, "fine again"])
    one_line_error(excinfo, needle)


def test_other_bad_encode_arguments(minilm):
    with pytest.raises(BertforgeError) as excinfo:
        minilm.encode("   ")
    one_line_error(excinfo, "empty")
    with pytest.raises(BertforgeError) as excinfo:
        minilm.encode_batch(["a", "b"], ["c"])
    one_line_error(excinfo, "text_pairs has 1")
    with pytest.raises(BertforgeError) as excinfo:
        minilm.encode_batch("just one text")
    one_line_error(excinfo, "encode()")
    with pytest.raises(BertforgeError) as excinfo:
        minilm.encode_batch(["a"], max_length=513)
    one_line_error(excinfo, "513", "512")
    with pytest.raises(BertforgeError) as excinfo:
        minilm.encode_batch(["a"], ["b"], max_length=2)
    one_line_error(excinfo, "max_length=2")
    with pytest.raises(BertforgeError) as excinfo:
        minilm.encode_batch(["a"], padding="sideways")
    one_line_error(excinfo, "sideways")
    with pytest.raises(BertforgeError) as excinfo:
        minilm.convert_ids_to_tokens([5, 999999])
    one_line_error(excinfo, "999999")


# -------------------------------------------------------------- examples


def test_docstring_examples_run():
    result = doctest.testmod(tokenization, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0
