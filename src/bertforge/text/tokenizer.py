"""Text to WordPiece ids: load, train and save BERT tokenizers.

:class:`Tokenizer` wraps a ``tokenizers.Tokenizer`` (the Rust WordPiece engine) and
gives it the BERT conventions the rest of bertforge relies on: ``[CLS] A [SEP]`` and
``[CLS] A [SEP] B [SEP]`` layouts, segment ids 0 and 1, longest-first truncation of
pairs, padding with the id of ``[PAD]``. It opens any standard BERT directory
(``tokenizer.json`` or ``vocab.txt``, plus ``tokenizer_config.json``), trains new
vocabularies, and saves directories that ``transformers`` opens with identical ids.

This module knows nothing of torch: batches come back as numpy arrays. The files a
tokenizer is read from and written to are handled in ``vocab_files``, TensorFlow
folders in ``tensorflow_vocab``, vocabulary training in ``vocab_training``.

>>> tok = Tokenizer.train(["the cat sat on the mat", "the dog sat on the log"] * 50,
...                       vocab_size=60, min_frequency=1)
>>> enc = tok.encode("the cat sat")
>>> tok.convert_ids_to_tokens(enc.input_ids)
['[CLS]', 'the', 'cat', 'sat', '[SEP]']
>>> enc.segment_ids
[0, 0, 0, 0, 0]
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tokenizers import normalizers
from tokenizers import Tokenizer as _Backend
from tokenizers.models import WordPiece

from bertforge.errors import BertforgeError
from bertforge.text.inputs import as_list, check_text, check_texts, checked_max_length
from bertforge.text.tensorflow_vocab import tensorflow_layout, tensorflow_vocabulary
from bertforge.text.vocab_files import (DEFAULT_MAX_LENGTH, REQUIRED_ROLES, ROLES, apply_bert_layout,
                                        read_tokenizer_files, tokenizer_file, write_tokenizer_files)
from bertforge.text.vocab_training import DEFAULT_SPECIAL_TOKENS, train_wordpiece

__all__ = ["Tokenizer", "Encoded", "DEFAULT_SPECIAL_TOKENS"]

_PADDING_CHOICES = ("longest", "max_length", False)


class Encoded(NamedTuple):
    """One encoded text (or pair): plain lists, unpackable as ``ids, mask, segs``."""

    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]


class Tokenizer:
    """A BERT WordPiece tokenizer built on the ``tokenizers`` library.

    Open one with :meth:`from_pretrained`, make one with :meth:`train`.

    >>> tok = Tokenizer.train(["a quick brown fox", "a lazy dog"] * 20,
    ...                       vocab_size=100, min_frequency=1)
    >>> tok.pad_id, tok.cls_id, tok.sep_id
    (0, 2, 3)
    >>> batch = tok.encode_batch(["a fox", "a quick brown dog"], padding="longest")
    >>> batch["input_ids"].shape, batch["input_mask"].tolist()[0]
    ((2, 6), [1, 1, 1, 1, 0, 0])
    """

    def __init__(
        self,
        backend: _Backend,
        *,
        special_tokens: dict[str, str] | None = None,
        model_max_length: int = DEFAULT_MAX_LENGTH,
        source: str = "tokenizer",
    ):
        """Wrap a ready ``tokenizers.Tokenizer`` holding a WordPiece model.

        Most users call :meth:`from_pretrained` or :meth:`train` instead. The
        post-processor, padding and truncation of ``backend`` are replaced so that
        every path through this class gives the BERT layout.
        """
        if not isinstance(backend.model, WordPiece):
            raise BertforgeError(
                f"{source}: model is {type(backend.model).__name__}, not WordPiece; "
                "pass a BERT (WordPiece) tokenizer"
            )
        names = {role: f"[{role.upper()}]" for role in ROLES}
        names.update(special_tokens or {})
        self._names = names
        ids = {role: backend.token_to_id(token) for role, token in names.items()}
        missing = [names[r] for r in REQUIRED_ROLES if ids[r] is None]
        if missing:
            raise BertforgeError(
                f"{source}: vocabulary has no {', '.join(missing)} token; pass a BERT "
                "WordPiece vocabulary (it needs [PAD], [UNK], [CLS] and [SEP])"
            )
        self._ids = ids
        self._source = source
        self.model_max_length = int(model_max_length)

        apply_bert_layout(backend, names, ids)
        # Truncation is set per max_length and cached, see _configure.
        self._truncation: int | None = None
        self._backend = backend
        # The backend's truncation setting is shared state: a lock keeps one thread
        # from changing it while another thread's batch is being encoded.
        self._lock = threading.Lock()
        self._encode_many = getattr(backend, "encode_batch_fast", None) or backend.encode_batch

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        do_lower_case: bool | None = None,
        strip_accents: bool | None = None,
    ) -> Tokenizer:
        """Open a BERT model directory, a ``tokenizer.json`` or a ``vocab.txt``.

        In a directory ``tokenizer.json`` is preferred, else ``vocab.txt`` gets the
        standard BERT pipeline. ``do_lower_case``, ``strip_accents``,
        ``tokenize_chinese_chars``, ``model_max_length`` (default 512) and the
        special token names are read from ``tokenizer_config.json`` beside it, which
        overrides the normalizer in ``tokenizer.json`` as ``transformers`` does; the
        arguments here override both (``None`` means "not given"). A ``vocab.txt``
        with no setting anywhere is lower-cased, as in ``transformers``.

        >>> import tempfile
        >>> tok = Tokenizer.train(["Hello World"] * 10, vocab_size=40, lowercase=False)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     saved = tok.save(d)
        ...     again = Tokenizer.from_pretrained(d)
        ...     lower = Tokenizer.from_pretrained(d, do_lower_case=True)
        >>> again.do_lower_case, lower.do_lower_case
        (False, True)
        """
        path = Path(path)
        if path.is_dir() and tensorflow_layout(path) is not None:
            # A TensorFlow folder declares its vocabulary file and lower-casing (or they
            # are guessed); its weights are never read for this.
            vocab, lower = tensorflow_vocabulary(path, do_lower_case=do_lower_case)
            return cls.from_pretrained(vocab, do_lower_case=lower)
        directory, file = tokenizer_file(path)
        found = read_tokenizer_files(directory, file, do_lower_case, strip_accents)
        return cls(found.backend, special_tokens=found.special_tokens, model_max_length=found.model_max_length,
                   source=str(found.file))

    # --------------------------------------------------------------- properties

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return self._backend.get_vocab_size(with_added_tokens=True)

    @property
    def vocab(self) -> dict[str, int]:
        """A fresh ``{token: id}`` dict."""
        return self._backend.get_vocab(with_added_tokens=True)

    @property
    def pad_id(self) -> int:
        """Id of ``[PAD]``: what padding positions hold."""
        return self._ids["pad"]

    @property
    def unk_id(self) -> int:
        return self._ids["unk"]

    @property
    def cls_id(self) -> int:
        return self._ids["cls"]

    @property
    def sep_id(self) -> int:
        return self._ids["sep"]

    @property
    def mask_id(self) -> int | None:
        """Id of ``[MASK]``, or ``None`` for a vocabulary without one."""
        return self._ids["mask"]

    @property
    def special_tokens(self) -> dict[str, str]:
        """Role -> token text, e.g. ``{"pad": "[PAD]", ...}``."""
        return {r: t for r, t in self._names.items() if self._ids[r] is not None}

    @property
    def do_lower_case(self) -> bool:
        """Whether text is lower-cased before WordPiece."""
        norm = self._backend.normalizer
        if isinstance(norm, normalizers.BertNormalizer):
            return bool(norm.lowercase)
        # Any other normalizer: ask it rather than guess from its configuration.
        return norm is not None and norm.normalize_str("A") == "a"

    @property
    def strip_accents(self) -> bool | None:
        norm = self._backend.normalizer
        return norm.strip_accents if isinstance(norm, normalizers.BertNormalizer) else None

    @property
    def backend(self) -> _Backend:
        """The underlying ``tokenizers.Tokenizer`` (do not change its truncation)."""
        return self._backend

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (f"Tokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
                f"model_max_length={self.model_max_length})")

    # ---------------------------------------------------------- token <-> ids

    def tokenize(self, text: str) -> list[str]:
        """WordPiece strings of ``text``, without ``[CLS]``/``[SEP]``.

        >>> tok = Tokenizer.train(["playing played plays"] * 20, vocab_size=40)
        >>> tok.tokenize("Played")
        ['played']
        """
        check_text(text, "text")
        with self._lock:
            self._configure(None)
            return self._backend.encode(text, add_special_tokens=False).tokens

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """WordPiece ids of many texts, in parallel, without special tokens or truncation.

        This is how a pretraining corpus is tokenized: sentences are joined into
        sequences later, so each keeps all of its tokens.

        >>> tok = Tokenizer.train(["red green blue"] * 20, vocab_size=40)
        >>> [len(ids) for ids in tok.token_ids(["red", "green blue red"])]
        [1, 3]
        """
        texts = as_list(texts, "texts")
        check_texts(texts, "texts")
        with self._lock:
            self._configure(None)
            encodings = self._encode_many(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def word_pieces(self, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """The WordPiece ids of every word of every sentence given as words, in parallel.

        Each word is normalized and split as a text would be (a word such as ``"don't"``
        may give several pieces); a word that normalizes to nothing (a zero-width space, a
        control character) gets ``[UNK]``, so every word has a first piece to label.

        >>> tok = Tokenizer.train(["playing played plays"] * 20, vocab_size=40)
        >>> [[tok.convert_ids_to_tokens(ids) for ids in words] for words in tok.word_pieces([["Played", "\\u200b"]])]
        [[['played'], ['[UNK]']]]
        """
        with self._lock:
            self._configure(None)
            # encode_batch_fast skips the word ids that aligning tags to pieces needs.
            encodings = self._backend.encode_batch([list(words) for words in sentences], is_pretokenized=True,
                                                   add_special_tokens=False)
        result = []
        for words, encoding in zip(sentences, encodings):
            pieces: list[list[int]] = [[] for _ in words]
            for piece, word in zip(encoding.ids, encoding.word_ids):
                pieces[word].append(piece)
            result.append([ids or [self.unk_id] for ids in pieces])
        return result

    def pieces_with_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """The WordPiece ids of every text, untruncated and without [CLS]/[SEP], each with
        its ``(start, end)`` character offsets into the text as given (before lower-casing
        or accent stripping), in parallel.

        >>> tok = Tokenizer.train(["the café opened"] * 20, vocab_size=60)
        >>> ids, offsets = tok.pieces_with_offsets(["The Café"])[0]
        >>> [("The Café"[start:end], tok.convert_ids_to_tokens(i)) for i, (start, end) in zip(ids, offsets)]
        [('The', 'the'), ('Café', 'cafe')]
        """
        with self._lock:
            self._configure(None)
            encodings = self._backend.encode_batch(list(texts), add_special_tokens=False)
        return [(encoding.ids, encoding.offsets) for encoding in encodings]

    def continuation_mask(self) -> np.ndarray:
        """Boolean array over ids: True for word pieces that continue a word (``##...``).

        Whole-word masking reads it to keep the pieces of one word together.

        >>> tok = Tokenizer.train(["playing played plays player"] * 20, vocab_size=45)
        >>> mask = tok.continuation_mask()
        >>> bool(mask[tok.cls_id]), mask.shape == (tok.vocab_size,)
        (False, True)
        """
        mask = np.zeros(self.vocab_size, dtype=bool)
        for token, index in self.vocab.items():
            if token.startswith("##") and index < self.vocab_size:
                mask[index] = True
        return mask

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Id of a token (or list of ids); unknown tokens give ``unk_id``."""
        lookup, unk = self._backend.token_to_id, self.unk_id
        if isinstance(tokens, str):
            found = lookup(tokens)
            return unk if found is None else found
        return [unk if (found := lookup(t)) is None else found for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Iterable[int]) -> str | list[str]:
        """Token of an id (or list of tokens); an id outside the vocabulary is an error."""
        if isinstance(ids, (int, np.integer)):
            return self._id_to_token(int(ids))
        return [self._id_to_token(int(i)) for i in ids]

    def _id_to_token(self, index: int) -> str:
        token = self._backend.id_to_token(index) if index >= 0 else None
        if token is None:
            raise BertforgeError(
                f"id {index} is outside the vocabulary (0..{self.vocab_size - 1}); "
                "decode ids made by this tokenizer's vocabulary"
            )
        return token

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of a sequence of ids (``##`` pieces joined, specials dropped by default).

        >>> tok = Tokenizer.train(["hello there world"] * 20, vocab_size=40)
        >>> tok.decode(tok.encode("Hello world").input_ids)
        'hello world'
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1).tolist()
        return self._backend.decode(ids, skip_special_tokens=skip_special_tokens)

    # ------------------------------------------------------------------ encoding

    def _configure(self, max_length: int | None) -> None:
        # Changing the backend's truncation costs little but is shared state;
        # only touch it when the requested length differs from the last call's.
        if max_length == self._truncation:
            return
        if max_length is None:
            self._backend.no_truncation()
        else:
            self._backend.enable_truncation(max_length, strategy="longest_first")
        self._truncation = max_length

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        max_length: int | None = None,
        padding: bool | str = False,
    ) -> Encoded:
        """Encode one text or pair as ``[CLS] A [SEP] (B [SEP])``.

        Sequences longer than ``max_length`` (default ``model_max_length``) are cut
        at the end; pairs lose tokens from the longer text first. ``padding`` True or
        ``"max_length"`` pads with ``pad_id`` up to ``max_length``.

        >>> tok = Tokenizer.train(["one two three four five"] * 20, vocab_size=40)
        >>> ids, mask, segs = tok.encode("one two", "three four five", max_length=6)
        >>> tok.convert_ids_to_tokens(ids), segs
        (['[CLS]', 'one', '[SEP]', 'three', 'four', '[SEP]'], [0, 0, 0, 1, 1, 1])
        >>> tok.encode("one", max_length=5, padding=True).input_mask
        [1, 1, 1, 0, 0]
        """
        check_text(text, "text")
        if text_pair is not None:
            check_text(text_pair, "text_pair")
        if padding not in (False, True, "max_length", "longest"):
            raise BertforgeError(
                f"padding={padding!r} is not understood; pass False, True or 'max_length'"
            )
        length = checked_max_length(max_length, text_pair is not None, self.model_max_length)
        with self._lock:
            self._configure(length)
            enc = self._backend.encode(text, text_pair)
        ids, segs = enc.ids, enc.type_ids
        mask = [1] * len(ids)
        if padding in (True, "max_length"):
            extra = length - len(ids)
            ids += [self.pad_id] * extra
            mask += [0] * extra
            segs += [0] * extra
        return Encoded(ids, mask, segs)

    def encode_batch(
        self,
        texts: Sequence[str],
        text_pairs: Sequence[str | None] | None = None,
        max_length: int | None = 256,
        padding: str | bool = "longest",
    ) -> dict[str, Any]:
        """Encode many texts (or pairs) at once, in parallel, into arrays.

        Returns ``{"input_ids", "input_mask", "segment_ids"}``: int64 numpy arrays of
        shape ``(n, L)`` when padded (``L`` is the longest encoding for
        ``"longest"``, ``max_length`` for ``"max_length"``), lists of lists when
        ``padding=False``. ``max_length=None`` means ``model_max_length``. A
        ``None`` in ``text_pairs`` encodes that row as a single text.

        >>> tok = Tokenizer.train(["red green blue"] * 20, vocab_size=40)
        >>> out = tok.encode_batch(["red", "green blue"], max_length=8, padding="max_length")
        >>> out["input_ids"].shape, out["input_mask"].sum(axis=1).tolist()
        ((2, 8), [3, 4])
        """
        texts = as_list(texts, "texts")
        if padding is True:
            padding = "longest"
        if padding not in _PADDING_CHOICES:
            raise BertforgeError(
                f"padding={padding!r} is not understood; pass 'longest', 'max_length' or False"
            )
        check_texts(texts, "texts")
        if text_pairs is not None:
            text_pairs = as_list(text_pairs, "text_pairs")
            if len(text_pairs) != len(texts):
                raise BertforgeError(
                    f"text_pairs has {len(text_pairs)} items but texts has {len(texts)}; "
                    "pass one second text (or None) per text"
                )
            check_texts(text_pairs, "text_pairs", allow_none=True)
            inputs = [t if p is None else (t, p) for t, p in zip(texts, text_pairs)]
            has_pairs = any(p is not None for p in text_pairs)
        else:
            inputs, has_pairs = texts, False
        length = checked_max_length(max_length, has_pairs, self.model_max_length)

        with self._lock:
            self._configure(length)
            encodings = self._encode_many(inputs, add_special_tokens=True)

        ids = [e.ids for e in encodings]
        if padding is False:
            segs = [e.type_ids for e in encodings] if has_pairs else [[0] * len(i) for i in ids]
            return {"input_ids": ids, "input_mask": [[1] * len(i) for i in ids],
                    "segment_ids": segs}

        n = len(ids)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        width = length if padding == "max_length" else int(lengths.max(initial=0))
        # One flat copy of all real tokens, scattered into the padded grid through the
        # mask: no Python loop over tokens, and no padding lists built in the backend.
        real = np.arange(width) < lengths[:, None]
        total = int(lengths.sum())
        input_ids = np.full((n, width), self.pad_id, dtype=np.int64)
        input_ids[real] = np.fromiter(itertools.chain.from_iterable(ids), np.int64, total)
        segment_ids = np.zeros((n, width), dtype=np.int64)
        if has_pairs:
            segment_ids[real] = np.fromiter(
                itertools.chain.from_iterable(e.type_ids for e in encodings), np.int64, total)
        return {"input_ids": input_ids, "input_mask": real.astype(np.int64),
                "segment_ids": segment_ids}

    # ------------------------------------------------------------- train / save

    @classmethod
    def train(
        cls,
        files_or_iterator: str | os.PathLike | Iterable[str],
        vocab_size: int = 30522,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        min_frequency: int = 2,
        limit_alphabet: int = 1000,
        special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
        model_max_length: int = DEFAULT_MAX_LENGTH,
        show_progress: bool = False,
    ) -> Tokenizer:
        """Learn a WordPiece vocabulary from text files or an iterable of texts.

        ``files_or_iterator`` is a path, a list of paths, or any iterable of strings.
        Special tokens take the first ids in the order given, so ``[PAD]`` is 0 with
        the default ``("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")``.

        >>> tok = Tokenizer.train(["Low lower lowest", "new newer newest"] * 30,
        ...                       vocab_size=60, min_frequency=1)
        >>> tok.vocab_size <= 60, tok.convert_ids_to_tokens([0, 1, 2, 3, 4])
        (True, ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'])
        """
        backend, described = train_wordpiece(
            files_or_iterator, vocab_size, lowercase=lowercase, strip_accents=strip_accents,
            min_frequency=min_frequency, limit_alphabet=limit_alphabet, special_tokens=special_tokens,
            show_progress=show_progress)
        return cls(backend, model_max_length=model_max_length, source=described)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``vocab.txt``, ``tokenizer.json``, ``tokenizer_config.json`` and
        ``special_tokens_map.json`` into ``directory`` (created if needed).

        ``transformers.AutoTokenizer.from_pretrained(directory)`` opens the result
        and gives the same ids. Each file is written under a temporary name and
        renamed, so a crash never leaves a half-written vocabulary.
        """
        settings = {
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self._tokenize_chinese_chars(),
            "model_max_length": self.model_max_length,
        }
        return write_tokenizer_files(Path(directory), self._backend, settings, self.special_tokens, self._source)

    def _tokenize_chinese_chars(self) -> bool:
        norm = self._backend.normalizer
        return bool(norm.handle_chinese_chars) if isinstance(norm, normalizers.BertNormalizer) else True
