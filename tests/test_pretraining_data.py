"""Token shards, sequence planning, sentence pairs and masking for pretraining."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertforge.data import shards as shards_module
from bertforge.data.pretraining import MaskingSettings, PretrainingBatches, Vocabulary, plan_chunks
from bertforge.data.shards import Shard, build_shards, open_shards
from bertforge.errors import BertforgeError
from bertforge.constants import IGNORE_INDEX
from bertforge.text.tokenizer import Tokenizer

DOCUMENTS = 40
SENTENCES = 6


def _word(document: int, index: int) -> str:
    # Every document has words of its own, so any token id tells which document it came from.
    return f"d{document}x{chr(97 + index % 26)}{chr(97 + index // 26)}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    documents = []
    for d in range(DOCUMENTS):
        sentences = [" ".join(_word(d, (s * 7 + w) % 30) for w in range(3 + (s + d) % 9)) + "."
                     for s in range(SENTENCES)]
        documents.append("\n".join(sentences))
    text = "\n\n".join(documents) + "\n"
    (folder / "corpus.txt").write_text(text, encoding="utf-8")
    words = sorted({w for doc in documents for w in doc.replace(".", " ").split()})
    tokenizer = Tokenizer.train([text, " ".join(words)] * 3, vocab_size=2000, min_frequency=1)
    shards = build_shards(folder / "corpus.txt", tokenizer, cache_dir=folder / "cache", text_format="sentences",
                          workers=1)
    return folder, tokenizer, shards, documents


def _document_of(tokenizer: Tokenizer, token_id: int) -> int | None:
    token = tokenizer.convert_ids_to_tokens(int(token_id))
    if token.startswith("d") and "x" in token:
        return int(token[1:token.index("x")])
    return None


def test_shards_hold_every_sentence_in_order(corpus):
    folder, tokenizer, shards, documents = corpus
    assert shards.n_documents == DOCUMENTS and shards.n_sentences == DOCUMENTS * SENTENCES
    shard = shards.shards[0]
    expected = tokenizer.token_ids([s for doc in documents for s in doc.split("\n")])
    for index, ids in enumerate(expected):
        start, end = shard.sentence_starts[index], shard.sentence_starts[index + 1]
        assert shard.tokens[start:end].tolist() == ids
    assert shard.document_starts.tolist() == list(range(0, DOCUMENTS * SENTENCES + 1, SENTENCES))
    assert isinstance(shard.tokens, np.memmap)


def test_shards_are_reused_and_rebuilt_when_the_corpus_changes(corpus, tmp_path, monkeypatch):
    folder, tokenizer, shards, _ = corpus
    calls = []
    real = shards_module.read_documents
    monkeypatch.setattr(shards_module, "read_documents", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = build_shards(folder / "corpus.txt", tokenizer, cache_dir=folder / "cache", text_format="sentences",
                         workers=1)
    assert again.directory == shards.directory and not calls  # found, not tokenized again

    changed = tmp_path / "corpus.txt"
    changed.write_text((folder / "corpus.txt").read_text() + "\nOne more sentence here.\n")
    other = build_shards(changed, tokenizer, cache_dir=folder / "cache", text_format="sentences", workers=1)
    assert calls and other.directory != shards.directory and other.n_sentences == shards.n_sentences + 1


def test_small_shards_split_at_document_boundaries(corpus, tmp_path):
    folder, tokenizer, shards, _ = corpus
    split = build_shards(folder / "corpus.txt", tokenizer, cache_dir=tmp_path, text_format="sentences",
                         workers=1, shard_tokens=200)
    assert len(split.shards) > 3
    assert split.n_tokens == shards.n_tokens and split.n_documents == DOCUMENTS
    joined = np.concatenate([np.asarray(s.tokens) for s in split.shards])
    assert joined.tolist() == np.asarray(shards.shards[0].tokens).tolist()
    reopened = open_shards(split.directory)
    assert [s.n_documents for s in reopened.shards] == [s.n_documents for s in split.shards]


def test_plan_chunks_keeps_sentences_whole_and_fits_the_sequence():
    lengths = [5, 9, 3, 40, 7, 2, 6]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    shard = Shard(np.arange(starts[-1]), starts, np.array([0, 3, 7]))
    chunks = plan_chunks(shard, np.array([True, True]), 12, False, 0.0, np.random.default_rng(0))
    for begin, end, document in chunks:
        assert end - begin <= 12
        first, last = shard.document_token_range(document)
        assert first <= begin < end <= last  # never across documents
    covered = sorted((int(b), int(e)) for b, e, _ in chunks)
    assert covered[0][0] == 0 and covered[-1][1] == starts[-1]
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))  # every token once
    boundaries = set(starts.tolist())
    long_sentence = set(range(int(starts[3]), int(starts[4]) + 1))
    assert all(b in boundaries or b in long_sentence for b, _, _ in chunks)  # cuts at sentences, or in the long one


def _batches(shards, tokenizer, **options):
    settings = dict(seq_len=64)
    settings.update({k: options.pop(k) for k in list(options) if k in MaskingSettings.__dataclass_fields__})
    return PretrainingBatches(shards, Vocabulary.from_tokenizer(tokenizer), MaskingSettings(**settings),
                              held_out_fraction=options.pop("held_out_fraction", 0.0), **options)


def _all_batches(source, epoch=0):
    return list(source.epoch(epoch))


def test_masking_statistics(corpus):
    _, tokenizer, shards, _ = corpus
    source = _batches(shards, tokenizer, batch_size=16, pair_objective="none")
    labelled = candidates = masked = random = kept = 0
    for batch in _all_batches(source) + _all_batches(source, 1) + _all_batches(source, 2):
        ids, labels, mask = batch["input_ids"], batch["masked_lm_labels"], batch["input_mask"].bool()
        chosen = labels != IGNORE_INDEX
        original = torch.where(chosen, labels, ids)
        special = (original == tokenizer.cls_id) | (original == tokenizer.sep_id) | ~mask
        assert not (chosen & special).any()  # never a special token or padding
        assert torch.equal(ids[special], original[special])  # and those are never altered
        candidates += int((~special).sum())
        labelled += int(chosen.sum())
        masked += int((chosen & (ids == tokenizer.mask_id)).sum())
        kept += int((chosen & (ids == labels)).sum())
        random += int((chosen & (ids != labels) & (ids != tokenizer.mask_id)).sum())
    assert labelled / candidates == pytest.approx(0.15, abs=0.01)
    assert masked / labelled == pytest.approx(0.8, abs=0.03)
    assert random / labelled == pytest.approx(0.1, abs=0.02)
    assert kept / labelled == pytest.approx(0.1, abs=0.02)


def test_masks_are_fresh_each_epoch_and_the_same_on_replay(corpus):
    _, tokenizer, shards, _ = corpus
    source = _batches(shards, tokenizer, batch_size=8, pair_objective="nsp")
    first, replay, later = _all_batches(source, 0), _all_batches(source, 0), _all_batches(source, 1)
    for a, b in zip(first, replay):
        for key in ("input_ids", "masked_lm_labels", "segment_ids", "next_sentence_label"):
            assert torch.equal(a[key], b[key])
    resumed = list(source.epoch(0, start=2))
    assert torch.equal(resumed[0]["input_ids"], first[2]["input_ids"])
    assert not all(torch.equal(a["masked_lm_labels"], b["masked_lm_labels"]) for a, b in zip(first, later))


def test_whole_word_masking_keeps_words_whole(corpus, tmp_path):
    folder = corpus[0]
    # A small vocabulary, so most words are several pieces.
    tokenizer = Tokenizer.train([folder / "corpus.txt"], vocab_size=120, min_frequency=1)
    shards = build_shards(folder / "corpus.txt", tokenizer, cache_dir=tmp_path, text_format="sentences", workers=1)
    continuation = tokenizer.continuation_mask()
    source = _batches(shards, tokenizer, batch_size=16, pair_objective="none", whole_word_masking=True)
    pieces_seen = 0
    for batch in _all_batches(source):
        labels = batch["masked_lm_labels"]
        originals = torch.where(labels != IGNORE_INDEX, labels, batch["input_ids"])
        chosen = labels != IGNORE_INDEX
        for row in range(len(labels)):
            for position in range(1, labels.shape[1]):
                if continuation[int(originals[row, position])] and batch["input_mask"][row, position]:
                    pieces_seen += 1
                    # A piece is chosen exactly when the piece before it in the same word is.
                    assert bool(chosen[row, position]) == bool(chosen[row, position - 1])
        rate = chosen.sum() / (batch["input_mask"].sum() - 2 * len(labels))
        assert 0.08 < float(rate) < 0.22
    assert pieces_seen > 50  # the corpus really has words of several pieces


def _segments(batch, row, tokenizer):
    ids = torch.where(batch["masked_lm_labels"][row] != IGNORE_INDEX, batch["masked_lm_labels"][row],
                      batch["input_ids"][row])
    real = batch["input_mask"][row].bool()
    segments = batch["segment_ids"][row]
    a = ids[real & (segments == 0)][1:-1]  # without [CLS] and [SEP]
    b = ids[real & (segments == 1)][:-1]
    return a.tolist(), b.tolist()


def test_next_sentence_pairs(corpus):
    _, tokenizer, shards, _ = corpus
    source = _batches(shards, tokenizer, batch_size=16, pair_objective="nsp", pair_rate=0.5)
    flat = np.asarray(shards.shards[0].tokens).tolist()
    labels = []
    for batch in _all_batches(source) + _all_batches(source, 1):
        for row in range(len(batch["input_ids"])):
            a, b = _segments(batch, row, tokenizer)
            assert a and b
            label = int(batch["next_sentence_label"][row])
            labels.append(label)
            doc_a = {_document_of(tokenizer, t) for t in a} - {None}
            doc_b = {_document_of(tokenizer, t) for t in b} - {None}
            assert len(doc_a) == 1 and len(doc_b) == 1
            if label == 0:  # B is what follows A in the same document
                assert doc_a == doc_b
                start = _find(flat, a)
                assert flat[start + len(a):start + len(a) + len(b)] == b
            else:  # a random next sentence from another document
                assert doc_a != doc_b
    assert np.mean(labels) == pytest.approx(0.5, abs=0.08)


def _find(haystack: list, needle: list) -> int:
    for start in range(len(haystack) - len(needle) + 1):
        if haystack[start:start + len(needle)] == needle:
            return start
    raise AssertionError("segment A is not in the corpus")


def test_sentence_order_pairs(corpus):
    _, tokenizer, shards, _ = corpus
    source = _batches(shards, tokenizer, batch_size=16, pair_objective="sop", pair_rate=0.3)
    flat = np.asarray(shards.shards[0].tokens).tolist()
    labels = []
    for batch in _all_batches(source):
        for row in range(len(batch["input_ids"])):
            a, b = _segments(batch, row, tokenizer)
            label = int(batch["next_sentence_label"][row])
            labels.append(label)
            first, second = (b, a) if label else (a, b)  # swapped pairs are put back in order
            start = _find(flat, first)
            assert flat[start + len(first):start + len(first) + len(second)] == second
    assert np.mean(labels) == pytest.approx(0.3, abs=0.1)


def test_packed_sequences_separate_documents(corpus):
    _, tokenizer, shards, _ = corpus
    source = _batches(shards, tokenizer, batch_size=8, pair_objective="none", seq_len=64)
    fill = []
    for batch in _all_batches(source):
        assert "next_sentence_label" not in batch and int(batch["segment_ids"].sum()) == 0
        for row in range(len(batch["input_ids"])):
            ids = torch.where(batch["masked_lm_labels"][row] != IGNORE_INDEX, batch["masked_lm_labels"][row],
                              batch["input_ids"][row])[batch["input_mask"][row].bool()].tolist()
            assert ids[0] == tokenizer.cls_id and ids[-1] == tokenizer.sep_id and len(ids) <= 64
            fill.append(len(ids))
            # Between two [SEP]s lies exactly one document's text.
            pieces = _split(ids[1:], tokenizer.sep_id)
            for piece in pieces:
                assert len({_document_of(tokenizer, t) for t in piece} - {None}) == 1
    assert np.mean(fill) > 40  # packed, not one short sentence per sequence


def _split(ids: list, separator: int) -> list[list]:
    pieces, current = [], []
    for token in ids:
        if token == separator:
            pieces.append(current)
            current = []
        else:
            current.append(token)
    return [p for p in pieces if p]


def test_processes_share_the_global_batch(corpus):
    _, tokenizer, shards, _ = corpus
    whole = _batches(shards, tokenizer, batch_size=8, pair_objective="nsp")
    halves = [_batches(shards, tokenizer, batch_size=8, pair_objective="nsp", rank=r, world_size=2)
              for r in range(2)]
    assert len(whole) == len(halves[0]) == len(halves[1])
    for full, first, second in zip(whole.epoch(1), halves[0].epoch(1), halves[1].epoch(1)):
        assert len(first["input_ids"]) == 4
        for key in ("masked_lm_labels", "next_sentence_label"):
            joined = _cat(first[key], second[key])
            assert torch.equal(joined, _cat(full[key][:4], full[key][4:]))


def _cat(a, b):
    if a.dim() == 1:
        return torch.cat([a, b])
    width = max(a.shape[1], b.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]), value=IGNORE_INDEX)  # noqa: E731
    return torch.cat([pad(a), pad(b)])


def test_held_out_documents_never_reach_training(corpus):
    _, tokenizer, shards, _ = corpus
    train = _batches(shards, tokenizer, batch_size=4, pair_objective="sop", held_out_fraction=0.2)
    held = _batches(shards, tokenizer, batch_size=4, pair_objective="sop", held_out_fraction=0.2, held_out=True)

    def documents(batches):
        found = set()
        for batch in batches:
            ids = torch.where(batch["masked_lm_labels"] != IGNORE_INDEX, batch["masked_lm_labels"], batch["input_ids"])
            found |= {_document_of(tokenizer, t) for t in ids.flatten().tolist()} - {None}
        return found

    seen_in_training = documents(_all_batches(train))
    seen_held_out = documents(held.evaluation_batches())
    assert seen_held_out and not (seen_in_training & seen_held_out)
    first = [b["masked_lm_labels"] for b in held.evaluation_batches()]
    again = [b["masked_lm_labels"] for b in held.evaluation_batches()]
    assert all(torch.equal(x, y) for x, y in zip(first, again))


def test_model_layout_from_the_pipeline_matches_the_mask(corpus):
    from bertforge.model.config import BertConfig
    from bertforge.model.heads import BertForPreTraining

    _, tokenizer, shards, _ = corpus
    batch = next(_batches(shards, tokenizer, batch_size=8, pair_objective="nsp").epoch(0))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64)
    model = BertForPreTraining(config).eval()
    fast = model(**batch)
    plain = model(batch["input_ids"], batch["input_mask"], batch["segment_ids"],
                  masked_lm_labels=batch["masked_lm_labels"], next_sentence_label=batch["next_sentence_label"])
    assert torch.equal(fast.masked_positions, plain.masked_positions)
    torch.testing.assert_close(fast.loss, plain.loss)
    torch.testing.assert_close(fast.prediction_logits, plain.prediction_logits)


@pytest.mark.parametrize("objective", ["nsp", "none"])
def test_last_layer_on_labelled_tokens_only_is_exact(corpus, objective):
    """With labels the last layer runs only where the loss reads it; loss and
    gradients equal those of the full network read at the same places."""
    from bertforge.model.config import BertConfig
    from bertforge.model.heads import BertForMaskedLM, BertForPreTraining

    _, tokenizer, shards, _ = corpus
    batch = next(_batches(shards, tokenizer, batch_size=8, pair_objective=objective).epoch(0))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = (BertForPreTraining if objective == "nsp" else BertForMaskedLM)(config).train()
    sparse = model(**batch)
    sparse_grads = torch.autograd.grad(sparse.loss, list(model.parameters()), allow_unused=True)

    full = model(batch["input_ids"], batch["input_mask"], batch["segment_ids"])  # no labels: every position
    labels = batch["masked_lm_labels"].reshape(-1)
    chosen = labels != IGNORE_INDEX
    logits = full.prediction_logits.reshape(-1, config.vocab_size)[chosen]
    loss = torch.nn.functional.cross_entropy(logits, labels[chosen])
    if objective == "nsp":
        loss = loss + torch.nn.functional.cross_entropy(full.seq_relationship_logits, batch["next_sentence_label"])
        torch.testing.assert_close(sparse.seq_relationship_logits, full.seq_relationship_logits)
    full_grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(sparse.prediction_logits, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sparse.loss, loss)
    for (name, _), a, b in zip(model.named_parameters(), sparse_grads, full_grads):
        if a is None or b is None:
            assert a is None and b is None, name
            continue
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4, msg=name)


@pytest.mark.parametrize("options", [dict(pair_objective="nsp", short_sequence_rate=0.5),
                                     dict(pair_objective="none", whole_word_masking=True)])
def test_fixed_shape_batches_hold_the_same_examples_and_masks_in_few_shapes(corpus, options):
    """A compiled run's batches: the ones it would get anyway, padded to their bucket."""
    _, tokenizer, shards, _ = corpus
    free = _all_batches(_batches(shards, tokenizer, batch_size=8, **options))
    source = _batches(shards, tokenizer, batch_size=8, fixed_shapes=True, **options)
    fixed = _all_batches(source)
    pad = tokenizer.pad_id
    shapes = set()
    for ours, theirs in zip(fixed, free):
        width, grid = theirs["input_ids"].shape[1], ours["input_ids"].numel()
        for key in ("input_ids", "input_mask", "segment_ids", "masked_lm_labels"):
            assert torch.equal(ours[key][:, :width], theirs[key]), key
        assert (ours["input_ids"][:, width:] == pad).all() and (ours["masked_lm_labels"][:, width:] == IGNORE_INDEX).all()
        assert ours["input_ids"].shape[1] % 16 == 0  # a quarter of 64
        unpadding, real = ours["unpadding"], theirs["unpadding"]
        rows, columns = real.indices // width, real.indices % width  # the same tokens, in a wider grid
        assert torch.equal(unpadding.indices[:real.indices.numel()], rows * ours["input_ids"].shape[1] + columns)
        assert unpadding.indices.unique().numel() == unpadding.indices.numel()  # fillers are padding positions
        assert unpadding.indices.numel() == grid or unpadding.indices.numel() % (grid // 8) == 0
        selection, plain = ours["prediction_tokens"], theirs["prediction_tokens"]
        labelled = plain.labelled.numel()
        assert int(selection.labelled_count) == labelled
        assert torch.equal(selection.flat[selection.labelled[:labelled]], plain.flat[plain.labelled])
        assert (selection.flat[selection.labelled[labelled:]] == 0).all()  # fillers read token 0, never labelled
        assert selection.slots.unique().numel() == selection.slots.numel() <= selection.batch * selection.width
        shapes.add((ours["input_ids"].shape, unpadding.indices.numel(), selection.flat.numel(), selection.width))
    assert len(shapes) < len(fixed) and len(shapes) <= source.buckets.count


@pytest.mark.parametrize("text, message", [
    ("", "no sentences"),
    ("\n\n   \n", "no sentences"),
    ("a\nb\n\nc\n", "longer than one token"),
])
def test_unusable_corpora_are_one_line(tmp_path, text, message):
    (tmp_path / "c.txt").write_text(text)
    tokenizer = Tokenizer.train(["a b c some words here"] * 5, vocab_size=60)
    with pytest.raises(BertforgeError, match=message) as caught:
        build_shards(tmp_path / "c.txt", tokenizer, cache_dir=tmp_path / "cache", text_format="sentences",
                     workers=1)
    assert "\n" not in str(caught.value)
    assert not list((tmp_path / "cache").glob("*/meta.json"))  # nothing half-built is kept


def test_bad_settings_are_one_line():
    for options, message in ((dict(pair_objective="mlm"), "not known"), (dict(mask_rate=0), "mask rate"),
                             (dict(pair_rate=1.5), "pair rate"), (dict(seq_len=4), "too short")):
        with pytest.raises(BertforgeError, match=message) as caught:
            MaskingSettings(**options)
        assert "\n" not in str(caught.value)


def test_next_sentence_prediction_needs_two_documents(tmp_path):
    (tmp_path / "c.txt").write_text("The first line is here.\nThe second line is here.\nA third one too.\n")
    tokenizer = Tokenizer.train([(tmp_path / "c.txt").read_text()] * 5, vocab_size=60)
    shards = build_shards(tmp_path / "c.txt", tokenizer, cache_dir=tmp_path / "cache", text_format="sentences",
                          workers=1)
    with pytest.raises(BertforgeError, match="at least two documents"):
        _batches(shards, tokenizer, batch_size=2, pair_objective="nsp")
    assert len(_batches(shards, tokenizer, batch_size=2, pair_objective="sop")) >= 1
