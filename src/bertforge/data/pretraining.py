"""Pretraining batches from token shards: sequences, sentence pairs and masks.

The work is split in two so that every epoch is both fresh and replayable:

- **chunks**, planned once per run: runs of whole sentences (a sentence longer
  than a sequence is cut into pieces) that fill a sequence, within one document
  for the sentence-pair objectives, across documents (with a ``[SEP]`` between
  them) when there is no pair objective, as RoBERTa packs its sequences;
- **instances**, drawn per epoch and batch from a generator seeded by
  ``(seed, epoch, batch)``: where a chunk is cut into sentences A and B, whether
  B is replaced by sentences of another document (next-sentence prediction) or
  swapped with A (sentence-order prediction), and which tokens are masked.

The random draws are made for the whole global batch and each process keeps its
rows, so one process and N data-parallel processes see the same examples with
the same masks.

With ``fixed_shapes`` (a compiled step) each batch is padded to one of a few
shapes (:class:`ShapeBuckets`): the same examples and masks, more padding, and a
graph per shape that is compiled once and replayed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from bertforge.errors import BertforgeError
from bertforge.constants import IGNORE_INDEX
from bertforge.model.layout import TokenSelection, Unpadding
from bertforge.data.corpus import DOCUMENT_MARKS
from bertforge.data.shards import Shard, ShardSet

PAIR_OBJECTIVES = ("nsp", "sop", "none")
SPECIAL_SEGMENT_TOKENS = 3  # [CLS] A [SEP] B [SEP]


@dataclass(frozen=True)
class MaskingSettings:
    """How sequences are built and masked.

    ``pair_rate`` is the share of pairs whose B is a random next sentence (nsp) or
    swapped with A (sop). ``short_sequence_rate`` is the share of pair chunks
    planned shorter than the sequence length, so the model also sees short inputs
    (BERT used 0.1).

    >>> MaskingSettings(seq_len=128).max_chunk_tokens
    125
    """

    seq_len: int = 128
    mask_rate: float = 0.15
    whole_word_masking: bool = False
    pair_objective: str = "nsp"
    pair_rate: float = 0.5
    short_sequence_rate: float = 0.1

    def __post_init__(self) -> None:
        if self.pair_objective not in PAIR_OBJECTIVES:
            raise BertforgeError(f"pair objective {self.pair_objective!r} is not known; pass one of "
                                 f"{', '.join(PAIR_OBJECTIVES)}")
        if not 0 < self.mask_rate < 1:
            raise BertforgeError(f"mask rate must be between 0 and 1, got {self.mask_rate}")
        if not 0 <= self.pair_rate <= 1:
            raise BertforgeError(f"pair rate must be between 0 and 1, got {self.pair_rate}")
        if not 0 <= self.short_sequence_rate <= 1:
            raise BertforgeError(f"short-sequence rate must be between 0 and 1, got {self.short_sequence_rate}")
        if self.seq_len < 8:
            raise BertforgeError(f"sequence length {self.seq_len} is too short; pass at least 8")

    @property
    def pairs(self) -> bool:
        return self.pair_objective != "none"

    @property
    def max_chunk_tokens(self) -> int:
        return self.seq_len - (SPECIAL_SEGMENT_TOKENS if self.pairs else 2)


@dataclass(frozen=True)
class Vocabulary:
    """The ids masking needs: specials, the ids random replacements come from, word pieces.

    >>> from bertforge.text.tokenizer import Tokenizer
    >>> vocab = Vocabulary.from_tokenizer(Tokenizer.train(["a b c d e"] * 9, vocab_size=40))
    >>> vocab.mask_id, int(vocab.replacement_ids.min()) > 4
    (4, True)
    """

    cls_id: int
    sep_id: int
    pad_id: int
    mask_id: int
    size: int
    replacement_ids: np.ndarray  # non-special ids a masked token may be replaced with
    continuation: np.ndarray  # bool over ids: "##" pieces

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "Vocabulary":
        if tokenizer.mask_id is None:
            raise BertforgeError("the vocabulary has no [MASK] token; masked-LM pretraining needs one "
                                 "(bertforge vocab adds it)")
        vocab = tokenizer.vocab  # a fresh dict per call: read it once
        special = {vocab[token] for token in tokenizer.special_tokens.values() if token in vocab}
        size = tokenizer.vocab_size
        replacement = np.array([i for i in range(size) if i not in special], dtype=np.int64)
        return cls(tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id, size,
                   replacement, tokenizer.continuation_mask())


@dataclass(frozen=True)
class ShapeBuckets:
    """The few shapes a batch of ``rows`` sequences is padded to, so a compiled step
    (and its CUDA graph) is made once per shape and then replayed.

    - the width: the longest row rounded up to a quarter of the sequence length
      (a multiple of 8, which tensor cores like);
    - the real tokens, rounded up to an eighth of ``rows x width`` (the token list is
      filled with padding positions: ``Unpadding.fill_to``); a batch without padding
      keeps its own, faster, layout;
    - the labelled tokens: the most ``mask_rate`` can label in that many tokens (a
      multiple of 8), so the count of a batch never changes the shape (fillers the
      loss ignores: ``TokenSelection``'s ``capacity``). Whole-word masking can label
      more; such a batch gets a shape of its own.

    Per shape the extra work is at most an eighth of the dense work (on average half
    that) and a few more masked-LM rows than the batch has.

    >>> buckets = ShapeBuckets(seq_len=128, rows=32, mask_rate=0.15, pairs=True)
    >>> buckets.width(70), buckets.tokens(1800, 96), buckets.labels(1920, 300), buckets.query_width(96)
    (96, 1920, 312, 15)
    """

    seq_len: int
    rows: int
    mask_rate: float
    pairs: bool
    width_steps: int = 4
    token_steps: int = 8

    @property
    def width_step(self) -> int:
        share = -(-self.seq_len // self.width_steps)
        return min(self.seq_len, -(-share // 8) * 8)

    def width(self, longest: int) -> int:
        step = self.width_step
        return min(self.seq_len, -(-longest // step) * step)

    def tokens(self, real: int, width: int) -> int:
        grid = self.rows * width
        step = -(-grid // self.token_steps)
        return min(grid, -(-real // step) * step)

    def labels(self, tokens: int, real: int) -> int:
        """Room for the labelled tokens among ``tokens``: each row labels
        max(1, round(mask_rate x its candidates)), at most mask_rate x candidates + 1,
        and has at least two special tokens."""
        bound = math.ceil(self.mask_rate * max(0, tokens - 2 * self.rows) + self.rows)
        return -(-max(bound, real) // 8) * 8

    def query_width(self, width: int) -> int:
        """Room per row in the last layer's query grid: a row's labelled tokens and its [CLS]."""
        return max(1, math.floor(self.mask_rate * (width - 2) + 0.5)) + (1 if self.pairs else 0)

    @property
    def count(self) -> int:
        """How many shapes there can be (each width: a token count per eighth, and full rows)."""
        widths = -(-self.seq_len // self.width_step)
        return widths * (self.token_steps + 1)


# -- documents held out for evaluation --------------------------------------------------


def held_out_documents(shards: ShardSet, fraction: float, seed: int) -> list[np.ndarray]:
    """Per shard, True for documents kept out of training to measure held-out loss.

    At least one document is held out when ``fraction`` > 0 and at least one is
    left for training.
    """
    if not 0 <= fraction < 1:
        raise BertforgeError(f"held-out fraction must be in [0, 1), got {fraction}")
    chosen = []
    for index, shard in enumerate(shards.shards):
        draw = np.random.default_rng([seed, 11, index]).random(shard.n_documents)
        chosen.append(draw < fraction)
    if fraction > 0 and not any(held.any() for held in chosen) and shards.n_documents >= 2:
        largest = max(range(len(chosen)), key=lambda i: shards.shards[i].n_documents)
        chosen[largest][0] = True
    if all(held.all() for held in chosen):
        raise BertforgeError("no document is left for training after holding some out; lower the "
                             "held-out fraction or add documents")
    return chosen


# -- chunks: runs of whole sentences that fill a sequence ------------------------------


def plan_chunks(shard: Shard, documents: np.ndarray, max_tokens: int, cross_documents: bool,
                short_sequence_rate: float, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3)`` int64 rows ``(first token, end token, document)`` over the selected documents.

    Sentences are added to a chunk while they fit; a sentence longer than
    ``max_tokens`` becomes pieces of its own. Across documents each boundary
    costs one token (the ``[SEP]`` put there). Chunks never join documents that
    are not next to each other in the selection.

    >>> shard = Shard(np.arange(10), np.array([0, 2, 5, 6, 10]), np.array([0, 2, 4]))
    >>> plan_chunks(shard, np.array([True, True]), 4, False, 0.0, np.random.default_rng(0)).tolist()
    [[0, 2, 0], [2, 5, 0], [5, 6, 1], [6, 10, 1]]
    >>> plan_chunks(shard, np.array([True, True]), 8, True, 0.0, np.random.default_rng(0)).tolist()
    [[0, 6, 0], [6, 10, 1]]
    """
    starts = shard.sentence_starts
    chunks: list[tuple[int, int, int]] = []
    open_start = open_end = -1
    open_document = used = target = 0
    previous_document = -2

    def new_target() -> int:
        if short_sequence_rate and rng.random() < short_sequence_rate:
            return int(rng.integers(2, max_tokens + 1))
        return max_tokens

    for document in np.flatnonzero(documents):
        first, last = int(shard.document_starts[document]), int(shard.document_starts[document + 1])
        joins = cross_documents and open_start >= 0 and document == previous_document + 1
        if open_start >= 0 and not joins:
            chunks.append((open_start, open_end, open_document))
            open_start = -1
        previous_document = document
        for sentence in range(first, last):
            begin, end = int(starts[sentence]), int(starts[sentence + 1])
            length = end - begin
            extra = 1 if (open_start >= 0 and sentence == first) else 0
            if open_start >= 0 and used + extra + length > target:
                chunks.append((open_start, open_end, open_document))
                open_start, extra = -1, 0
            if length > max_tokens:
                chunks.extend((piece, min(end, piece + max_tokens), int(document))
                              for piece in range(begin, end, max_tokens))
                continue
            if open_start < 0:
                open_start, open_document, used, target = begin, int(document), 0, new_target()
            used += extra + length
            open_end = end
    if open_start >= 0:
        chunks.append((open_start, open_end, open_document))
    return np.asarray(chunks, dtype=np.int64).reshape(-1, 3)


# -- batches -----------------------------------------------------------------------------


class PretrainingBatches:
    """The batch source of a pretraining run (see :class:`bertforge.training.loop.BatchSource`).

    ``batch_size`` is the global batch: with ``world_size`` processes each yields
    its ``batch_size / world_size`` rows of it. ``held_out`` picks the documents:
    False for training, True for the held-out evaluation documents. ``fixed_shapes``
    pads the training batches to the shapes of :attr:`buckets`, for a compiled step
    (evaluation batches keep their own shapes: they run uncompiled).

    >>> import tempfile
    >>> from pathlib import Path
    >>> from bertforge.text.tokenizer import Tokenizer
    >>> from bertforge.data.shards import build_shards
    >>> folder = Path(tempfile.mkdtemp())
    >>> text = "\\n\\n".join(f"Day {i} was cold.\\nThe wind blew hard today." for i in range(20))
    >>> _ = (folder / "c.txt").write_text(text)
    >>> tok = Tokenizer.train([text], vocab_size=80)
    >>> shards = build_shards(folder / "c.txt", tok, cache_dir=folder / "cache")
    >>> batches = PretrainingBatches(shards, Vocabulary.from_tokenizer(tok), MaskingSettings(seq_len=16),
    ...                              batch_size=4, held_out_fraction=0.0)
    >>> batch = next(batches.epoch(0))
    >>> sorted(batch), batch["input_ids"].shape[0]
    (['input_ids', 'input_mask', 'masked_lm_labels', 'next_sentence_label', 'prediction_tokens', 'segment_ids', 'unpadding'], 4)
    """

    def __init__(self, shards: ShardSet, vocabulary: Vocabulary, settings: MaskingSettings, batch_size: int,
                 seed: int = 0, held_out_fraction: float = 0.01, held_out: bool = False, rank: int = 0,
                 world_size: int = 1, fixed_shapes: bool = False):
        if batch_size < 1 or batch_size % world_size:
            raise BertforgeError(f"batch size {batch_size} must be a positive multiple of the "
                                 f"{world_size} processes")
        if vocabulary.size > 1 << 16 and shards.meta.get("dtype") == "uint16":
            raise BertforgeError(f"{shards.directory}: shards were made with a smaller vocabulary; rebuild them")
        self.shards, self.vocabulary, self.settings = shards, vocabulary, settings
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.local_batch = batch_size // world_size
        self.held_out = held_out
        self.fixed_shapes = fixed_shapes  # read by the training loop: compile for static shapes
        self.buckets = ShapeBuckets(settings.seq_len, self.local_batch, settings.mask_rate, settings.pairs)
        self.documents = [held if held_out else ~held for held in held_out_documents(shards, held_out_fraction, seed)]
        self.chunks = self._plan()
        if settings.pair_objective == "nsp":
            # A random next sentence comes from another document of the same shard.
            lonely = [i for i, docs in enumerate(self.documents) if docs.any() and docs.sum() < 2]
            if lonely:
                files = shards.meta.get("files") or [str(shards.directory)]
                where = files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
                held = ", after those held out for evaluation (--held-out)" if held_out_fraction > 0 and not held_out else ""
                raise BertforgeError(
                    f"{where}: next-sentence prediction needs at least two documents{held}, found "
                    f"{int(self.documents[lonely[0]].sum())}; {DOCUMENT_MARKS}; or use --pair-objective sop or none")
        self.document_lists = [np.flatnonzero(docs) for docs in self.documents]
        self.document_rank = [np.cumsum(docs) - 1 for docs in self.documents]
        # Where each document starts among the tokens: packed sequences put a [SEP] there.
        self.document_token_starts = [shard.sentence_starts[shard.document_starts] for shard in shards.shards]

    def _plan(self) -> np.ndarray:
        settings = self.settings
        rows = []
        for index, shard in enumerate(self.shards.shards):
            rng = np.random.default_rng([self.seed, 7, index])
            short = settings.short_sequence_rate if settings.pairs and not self.held_out else 0.0
            chunks = plan_chunks(shard, self.documents[index], settings.max_chunk_tokens,
                                 cross_documents=not settings.pairs, short_sequence_rate=short, rng=rng)
            if settings.pairs:
                chunks = chunks[chunks[:, 1] - chunks[:, 0] >= 2]  # a pair needs a token on each side
            rows.append(np.column_stack([np.full(len(chunks), index, dtype=np.int64), chunks]))
        chunks = np.concatenate(rows) if rows else np.zeros((0, 4), dtype=np.int64)
        if not len(chunks):
            which = "held-out" if self.held_out else "training"
            raise BertforgeError(f"{self.shards.directory}: no {which} sequence can be built; the corpus "
                                 "needs sentences of at least two tokens")
        return chunks

    @property
    def n_sequences(self) -> int:
        return len(self.chunks)

    def __len__(self) -> int:
        # Whole global batches only, so every process runs the same number of steps.
        return max(1, len(self.chunks) // self.batch_size)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        order = np.random.default_rng([self.seed, 1, epoch]).permutation(len(self.chunks))
        if len(order) < self.batch_size:  # a tiny corpus: one batch that repeats sequences
            order = np.resize(order, self.batch_size)
        for batch in range(start, len(self)):
            rows = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            yield self.make_batch(rows, np.random.default_rng([self.seed, 2, epoch, batch]), self.fixed_shapes)

    def evaluation_batches(self, max_sequences: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Every sequence once (up to ``max_sequences``), in planned order, with the same
        masks on every call: held-out figures from different steps compare like for like."""
        count = len(self.chunks) if max_sequences is None else min(len(self.chunks), max_sequences)
        for batch, first in enumerate(range(0, count, self.batch_size)):
            rows = np.arange(first, min(count, first + self.batch_size))
            yield self.make_batch(rows, np.random.default_rng([self.seed, 3, batch]))

    # -- one batch -----------------------------------------------------------------------

    def make_batch(self, chunk_rows: np.ndarray, rng: np.random.Generator,
                   fixed_shapes: bool = False) -> dict[str, torch.Tensor]:
        """The batch of these chunks: every draw is made for the global batch, then sliced.
        ``fixed_shapes``: padded to its bucket's shapes, with the same examples and masks."""
        size, length = len(chunk_rows), self.settings.seq_len
        pair_draws = rng.random((size, 4))
        mask_draws = rng.random((size, length, 2))
        replacement_draws = rng.integers(0, len(self.vocabulary.replacement_ids), (size, length))
        local = slice(self.rank * self.local_batch, (self.rank + 1) * self.local_batch)
        if size < self.batch_size:  # only for evaluation's last, partial batch
            local = slice(0, size) if self.rank == 0 else slice(0, 0)
        sequences, boundaries, labels = [], [], []
        for row, draws in zip(chunk_rows[local], pair_draws[local]):
            ids, boundary, label = self._instance(self.chunks[row], draws)
            sequences.append(ids)
            boundaries.append(boundary)
            labels.append(label)
        buckets = self.buckets if fixed_shapes else None
        longest = max((len(ids) for ids in sequences), default=1)
        input_ids, input_mask, segment_ids = _pad(sequences, boundaries, self.vocabulary.pad_id,
                                                  buckets.width(longest) if buckets else longest)
        # Masks are drawn per row over its own tokens: extra padding changes none of them.
        mlm_labels = self._mask(input_ids, input_mask, mask_draws[local], replacement_draws[local])
        mask = torch.from_numpy(input_mask)
        # The layout and the labelled positions are worked out here, on the CPU, so a
        # model on a GPU never has to read them back (see padding.Unpadding).
        unpadding = Unpadding.from_mask(mask)
        real_labels = mlm_labels.reshape(-1)[unpadding.indices.numpy()]
        labelled = torch.from_numpy(np.flatnonzero(real_labels != IGNORE_INDEX))
        capacity = width = None
        if buckets is not None:
            real_tokens = unpadding.indices.numel()
            unpadding = unpadding.fill_to(buckets.tokens(real_tokens, input_ids.shape[1]))
            capacity = buckets.labels(unpadding.indices.numel(), len(labelled))
            width = buckets.query_width(input_ids.shape[1])
        batch = {"input_ids": torch.from_numpy(input_ids), "input_mask": mask,
                 "segment_ids": torch.from_numpy(segment_ids), "masked_lm_labels": torch.from_numpy(mlm_labels),
                 "unpadding": unpadding,
                 "prediction_tokens": TokenSelection.for_predictions(
                     labelled, unpadding.cu_seqlens, include_first=self.settings.pairs, capacity=capacity,
                     width=width)}
        if self.settings.pairs:
            batch["next_sentence_label"] = torch.tensor(labels, dtype=torch.long)
        return batch

    def _instance(self, chunk: np.ndarray, draws: np.ndarray) -> tuple[np.ndarray, int, int]:
        """Token ids with specials, where segment B starts (0: none), and the pair label."""
        shard_index, begin, end, document = (int(v) for v in chunk)
        shard = self.shards.shards[shard_index]
        vocab = self.vocabulary
        if not self.settings.pairs:
            return self._packed(shard_index, begin, end), 0, 0
        starts = shard.sentence_starts
        inside = starts[np.searchsorted(starts, begin, side="right"):np.searchsorted(starts, end, side="left")]
        if len(inside):  # cut between two sentences
            cut = int(inside[int(draws[0] * len(inside))])
        else:  # one sentence (or a piece of one): cut between two tokens
            cut = begin + 1 + int(draws[0] * (end - begin - 1))
        a = shard.tokens[begin:cut]
        b = shard.tokens[cut:end]
        label = 0
        if draws[1] < self.settings.pair_rate:
            label = 1
            if self.settings.pair_objective == "sop":
                a, b = b, a
            else:
                b = self._random_next(shard_index, document, self.settings.max_chunk_tokens - len(a), draws[2:])
        ids = np.concatenate([[vocab.cls_id], a, [vocab.sep_id], b, [vocab.sep_id]]).astype(np.int64)
        return ids, len(a) + 2, label

    def _random_next(self, shard_index: int, document: int, budget: int, draws: np.ndarray) -> np.ndarray:
        """Sentences from a random other document, starting at a random sentence."""
        shard = self.shards.shards[shard_index]
        candidates = self.document_lists[shard_index]
        position = int(draws[0] * (len(candidates) - 1))
        if position >= self.document_rank[shard_index][document]:
            position += 1  # skip the document the pair comes from
        other = int(candidates[position])
        first, last = int(shard.document_starts[other]), int(shard.document_starts[other + 1])
        sentence = first + int(draws[1] * (last - first))
        begin = int(shard.sentence_starts[sentence])
        end = min(int(shard.sentence_starts[last]), begin + max(1, budget))
        return shard.tokens[begin:end]

    def _packed(self, shard_index: int, begin: int, end: int) -> np.ndarray:
        """``[CLS] doc1 [SEP] doc2 ... [SEP]``: a [SEP] where one document ends and the next starts."""
        vocab, shard = self.vocabulary, self.shards.shards[shard_index]
        starts = self.document_token_starts[shard_index]
        cuts = starts[np.searchsorted(starts, begin, side="right"):np.searchsorted(starts, end, side="left")]
        pieces: list = [[vocab.cls_id]]
        for piece_begin, piece_end in zip([begin, *cuts], [*cuts, end]):
            pieces.extend([shard.tokens[piece_begin:piece_end], [vocab.sep_id]])
        return np.concatenate(pieces).astype(np.int64)

    def _mask(self, input_ids: np.ndarray, input_mask: np.ndarray, draws: np.ndarray,
              replacements: np.ndarray) -> np.ndarray:
        """Pick ``mask_rate`` of each row's tokens (never specials), replace 80/10/10, return labels."""
        vocab = self.vocabulary
        width = input_ids.shape[1]
        draws, replacements = draws[:, :width], replacements[:, :width]
        candidates = (input_mask == 1) & (input_ids != vocab.cls_id) & (input_ids != vocab.sep_id)
        wanted = np.maximum(1, np.rint(candidates.sum(axis=1) * self.settings.mask_rate)).astype(np.int64)
        if self.settings.whole_word_masking:
            chosen = self._whole_words(input_ids, candidates, draws[..., 0], wanted)
        else:
            keys = np.where(candidates, draws[..., 0], 2.0)
            ranks = np.empty_like(input_ids)
            np.put_along_axis(ranks, np.argsort(keys, axis=1, kind="stable"),
                              np.broadcast_to(np.arange(width), input_ids.shape), axis=1)
            chosen = candidates & (ranks < wanted[:, None])
        labels = np.where(chosen, input_ids, IGNORE_INDEX)
        how = draws[..., 1]
        input_ids[chosen & (how < 0.8)] = vocab.mask_id
        randomised = chosen & (how >= 0.8) & (how < 0.9)
        input_ids[randomised] = vocab.replacement_ids[replacements[randomised]]
        return labels  # the remaining 10% keep their token but still carry a label

    def _whole_words(self, input_ids: np.ndarray, candidates: np.ndarray, keys: np.ndarray,
                     wanted: np.ndarray) -> np.ndarray:
        """Masks whole words: a word's pieces are chosen together, words in random order."""
        previous_is_candidate = np.zeros_like(candidates)
        previous_is_candidate[:, 1:] = candidates[:, :-1]
        starts = candidates & ~(self.vocabulary.continuation[input_ids] & previous_is_candidate)
        chosen = np.zeros_like(candidates)
        for row in range(len(input_ids)):
            word_starts = np.flatnonzero(starts[row])
            if not len(word_starts):
                continue
            word_ends = np.empty_like(word_starts)
            word_ends[:-1] = word_starts[1:]
            word_ends[-1] = len(candidates[row])
            # A word ends at the next word start or at the first non-candidate after it.
            non_candidates = np.flatnonzero(~candidates[row])
            after = np.searchsorted(non_candidates, word_starts)
            limit = np.where(after < len(non_candidates), non_candidates[np.minimum(after, len(non_candidates) - 1)],
                             len(candidates[row]))
            word_ends = np.minimum(word_ends, limit)
            order = np.argsort(keys[row, word_starts], kind="stable")
            total = 0
            for word in order:
                size = int(word_ends[word] - word_starts[word])
                if total and total + size > wanted[row]:
                    continue  # too long for what is left; a shorter word may still fit
                chosen[row, word_starts[word]:word_ends[word]] = True
                total += size
                if total >= wanted[row]:
                    break
        return chosen


def _pad(sequences: list[np.ndarray], boundaries: list[int], pad_id: int, width: int):
    """Right-pad to ``width`` (at least the longest sequence); segment 1 from each boundary on."""
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    input_mask = np.zeros((len(sequences), width), dtype=np.int64)
    segment_ids = np.zeros((len(sequences), width), dtype=np.int64)
    for row, (ids, boundary) in enumerate(zip(sequences, boundaries)):
        input_ids[row, :len(ids)] = ids
        input_mask[row, :len(ids)] = 1
        if boundary:
            segment_ids[row, boundary:len(ids)] = 1
    return input_ids, input_mask, segment_ids
