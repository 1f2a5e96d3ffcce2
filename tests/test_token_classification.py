"""Token classification end to end: alignment, windows, the head against transformers,
fine-tuning on real WNUT 2017 sentences, predictions with character offsets, evaluate,
export, serve, and the model directory opened by AutoModelForTokenClassification."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bertforge.constants import IGNORE_INDEX
from bertforge.errors import BertforgeError
from bertforge.text.tokenizer import Tokenizer
from bertforge.text.word_windows import WordWindows, encode_words, fold_words

WORDS = ["Unaffable", "bureaucrats", "in", "Zürich", "tweeted", "#blessed", "at", "@paulwalk", "😀", "\u200b"]


@pytest.fixture(scope="module")
def tokenizer(minilm_dir) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_dir)


def test_word_pieces_are_those_of_transformers_on_split_words(tokenizer, minilm_dir):
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))
    encoding = reference(WORDS, is_split_into_words=True, add_special_tokens=False)
    expected: list[list[int]] = [[] for _ in WORDS]
    for piece, word in zip(encoding["input_ids"], encoding.word_ids()):
        expected[word].append(piece)
    got = tokenizer.word_pieces([WORDS])[0]
    # transformers drops a word that normalizes to nothing; it gets [UNK] here so it has a piece to tag.
    assert got[:-1] == expected[:-1] and expected[-1] == [] and got[-1] == [tokenizer.unk_id]
    assert max(map(len, got)) >= 3  # the test holds words that split into many pieces


def test_the_tag_goes_on_the_first_piece_and_the_rest_are_ignored(tokenizer):
    tags = list(range(len(WORDS)))
    rows = encode_words(tokenizer, [WORDS], max_length=64, tags=[tags])
    pieces = tokenizer.word_pieces([WORDS])[0]
    firsts = np.cumsum([1] + [len(p) for p in pieces[:-1]])  # after [CLS]
    labels = rows.labels[0, : rows.input_mask[0].sum()]
    assert labels[firsts].tolist() == tags
    assert (np.delete(labels, firsts) == IGNORE_INDEX).all()
    assert rows.word_index[0, firsts].tolist() == list(range(len(WORDS)))
    # --label-all-pieces: the later pieces learn the tag continuation maps to
    continuation = [t + 100 for t in range(len(WORDS))]
    every = encode_words(tokenizer, [WORDS], max_length=64, tags=[tags], continuation=continuation)
    labels = every.labels[0, 1: every.input_mask[0].sum() - 1]
    expected = [tag if i == 0 else tag + 100 for tag, p in zip(tags, pieces) for i in range(len(p))]
    assert labels.tolist() == expected


def test_long_sentences_are_read_in_windows_and_every_word_once(tokenizer):
    sentence = [f"word{i % 7}" for i in range(120)] + ["Unaffable"] * 5
    rows = encode_words(tokenizer, [sentence, ["short", "one"]], max_length=24, windows=WordWindows(stride=5),
                        tags=[[i % 3 for i in range(len(sentence))], [0, 1]])
    assert rows.num_rows > 5 and rows.input_mask.sum(axis=1).max() <= 24
    owner = rows.row_owner
    read = rows.word_index[owner == 0]
    assert sorted(read[read >= 0].tolist()) == list(range(len(sentence)))  # each word read from one window
    # every window trains on all of its words: the overlaps learn twice
    assert (rows.labels[owner == 0] != IGNORE_INDEX).sum() > len(sentence)
    outputs = np.random.default_rng(0).normal(size=(*rows.input_ids.shape, 3)).astype(np.float32)
    folded = fold_words(outputs, rows)
    assert folded.shape == (2, len(sentence), 3)
    r, p = np.nonzero(rows.word_index >= 0)
    assert np.array_equal(folded[owner[r], rows.word_index[r, p]], outputs[r, p])


def test_a_word_is_read_from_the_window_where_it_has_most_context():
    from bertforge.text.word_windows import best_windows, window_spans

    spans = window_spans([1] * 30, budget=10, stride=3)
    assert spans[0][0] == 0 and spans[-1][1] == 30
    assert all(b[0] - a[0] <= 3 and b[0] < a[1] for a, b in zip(spans, spans[1:]))  # overlapping, nothing skipped
    best = best_windows(spans, 30)
    for word in range(30):
        def context(window):
            start, end = spans[window]
            return min(word - start if start else 30, end - 1 - word if end < 30 else 30)
        holding = [w for w, (start, end) in enumerate(spans) if start <= word < end]
        assert best[word] in holding and context(best[word]) == max(map(context, holding))
    # a word longer than the whole window still gets a window of its own
    assert window_spans([2, 50, 1], budget=10, stride=None) == [(0, 1), (1, 2), (2, 3)]


def test_the_head_matches_transformers_on_real_weights(minilm_dir, tmp_path):
    transformers = pytest.importorskip("transformers")
    from bertforge.io.load import load_pretrained
    from bertforge.io.model_dir import save_pretrained
    from bertforge.model.heads import BertForTokenClassification

    torch.manual_seed(0)
    tags = {0: "O", 1: "B-person", 2: "I-person"}
    model = load_pretrained(minilm_dir, BertForTokenClassification, id2label=tags).eval()
    save_pretrained(model, tmp_path, tokenizer=Tokenizer.from_pretrained(minilm_dir))
    theirs = transformers.AutoModelForTokenClassification.from_pretrained(str(tmp_path)).eval()
    assert theirs.config.id2label == tags
    ids = torch.tensor([[101, 7592, 2088, 2003, 102, 0, 0], [101, 2023, 2003, 1037, 3231, 2006, 102]])
    mask = (ids != 0).long()
    with torch.no_grad():
        ours = model(ids, mask, torch.zeros_like(ids)).logits
        reference = theirs(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    assert torch.allclose(ours[real], reference[real], atol=1e-5)


# -- fine-tuning on real sentences ------------------------------------------------------------


def _conll_slice(source: Path, target: Path, sentences: int) -> Path:
    blocks = [block for block in source.read_text(encoding="utf-8").replace("\t\n", "\n").split("\n\n")
              if block.strip()]
    # the sentences with entities first, so a small slice still holds every type
    blocks.sort(key=lambda block: "B-" not in block)
    target.write_text("\n\n".join(blocks[:sentences]) + "\n", encoding="utf-8")
    return target


