"""Text to WordPiece ids: load, train and save BERT tokenizers.

:class:`Tokenizer` wraps a ``tokenizers.Tokenizer`` (the Rust WordPiece engine) and
gives it the BERT conventions the rest of bertforge relies on: ``[CLS] A [SEP]`` and
``[CLS] A [SEP] B [SEP]`` layouts, segment ids 0 and 1, longest-first truncation of
pairs, padding with the id of ``[PAD]``. It opens any standard BERT directory
(``tokenizer.json`` or ``vocab.txt``, plus ``tokenizer_config.json``), trains new
vocabularies, and saves directories that ``transformers`` opens with identical ids.

This module knows nothing of torch: batches come back as numpy arrays.

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
import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers import Tokenizer as _Backend
from tokenizers.models import WordPiece

from bertforge.errors import BertforgeError
from bertforge.files import write_text_atomically

__all__ = ["Tokenizer", "Encoded", "DEFAULT_SPECIAL_TOKENS"]

# [PAD] first so that id 0 is padding, as in every BERT checkpoint's embedding table.
DEFAULT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_ROLES = ("pad", "unk", "cls", "sep", "mask")
_REQUIRED_ROLES = ("pad", "unk", "cls", "sep")
_DEFAULT_MAX_LENGTH = 512
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
        model_max_length: int = _DEFAULT_MAX_LENGTH,
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
        names = {role: f"[{role.upper()}]" for role in _ROLES}
        names.update(special_tokens or {})
        self._names = names
        ids = {role: backend.token_to_id(token) for role, token in names.items()}
        missing = [names[r] for r in _REQUIRED_ROLES if ids[r] is None]
        if missing:
            raise BertforgeError(
                f"{source}: vocabulary has no {', '.join(missing)} token; pass a BERT "
                "WordPiece vocabulary (it needs [PAD], [UNK], [CLS] and [SEP])"
            )
        self._ids = ids
        self._source = source
        self.model_max_length = int(model_max_length)

        # Special tokens must be matched whole in raw text and skipped by decode,
        # exactly as transformers does, or ids would differ on texts containing them.
        present = [names[r] for r in _ROLES if ids[r] is not None]
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in present])
        cls_token, sep_token = names["cls"], names["sep"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls_token}:0 $A:0 {sep_token}:0",
            pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
            special_tokens=[(cls_token, ids["cls"]), (sep_token, ids["sep"])],
        )
        if backend.decoder is None:
            backend.decoder = decoders.WordPiece(prefix="##")
        # Padding is done in numpy (cheaper than letting the backend build padded
        # Python lists); truncation is set per max_length and cached, see _configure.
        backend.no_padding()
        backend.no_truncation()
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
        if not path.exists():
            raise BertforgeError(
                f"{path}: no such file or directory; pass a BERT model directory "
                "(with vocab.txt or tokenizer.json) or the path of one of those files"
            )
        if path.is_dir() and _tensorflow_folder(path):
            # A TF Hub module or SavedModel declares its vocabulary file and lower-casing;
            # the converter reads them (with TensorFlow, the optional extra), not the weights.
            from bertforge.io.tensorflow import tensorflow_tokenizer

            return tensorflow_tokenizer(path, do_lower_case=do_lower_case)
        if path.is_dir():
            directory = path
            if (path / "tokenizer.json").is_file():
                file = path / "tokenizer.json"
            elif (path / "vocab.txt").is_file():
                file = path / "vocab.txt"
            else:
                raise BertforgeError(
                    f"{path}: no vocab.txt or tokenizer.json in this directory; "
                    "pass a BERT model directory or the path of its vocabulary file"
                )
        else:
            directory, file = path.parent, path
        config = _read_tokenizer_config(directory / "tokenizer_config.json")

        names = {r: _token_name(config.get(f"{r}_token")) or f"[{r.upper()}]" for r in _ROLES}
        chinese = config.get("tokenize_chinese_chars", True)
        if do_lower_case is None and "do_lower_case" in config:
            do_lower_case = bool(config["do_lower_case"])
        # strip_accents=null in the config is a real setting ("follow lower-casing").
        accents_given = strip_accents is not None or "strip_accents" in config
        if strip_accents is None:
            strip_accents = config.get("strip_accents")

        if file.suffix == ".json":
            backend = _load_tokenizer_json(file)
            norm = backend.normalizer
            if isinstance(norm, normalizers.BertNormalizer):
                backend.normalizer = normalizers.BertNormalizer(
                    clean_text=norm.clean_text,
                    handle_chinese_chars=bool(chinese) if "tokenize_chinese_chars" in config
                    else norm.handle_chinese_chars,
                    strip_accents=strip_accents if accents_given else norm.strip_accents,
                    lowercase=norm.lowercase if do_lower_case is None else do_lower_case,
                )
            elif do_lower_case is not None or accents_given:
                raise BertforgeError(
                    f"{file}: normalizer is {type(norm).__name__}, not BertNormalizer, so "
                    "do_lower_case/strip_accents cannot be applied; drop those settings"
                )
        else:
            vocab = _read_vocab_txt(file)
            missing = [names[r] for r in _REQUIRED_ROLES if names[r] not in vocab]
            if missing:
                raise BertforgeError(
                    f"{file}: no {', '.join(missing)} token in this vocabulary; pass a BERT "
                    "WordPiece vocab.txt (one token per line, with [PAD], [UNK], [CLS], [SEP])"
                )
            backend = _bert_pipeline(
                WordPiece(vocab, unk_token=names["unk"], continuing_subword_prefix="##",
                          max_input_chars_per_word=100),
                lowercase=True if do_lower_case is None else do_lower_case,
                strip_accents=strip_accents,
                handle_chinese_chars=bool(chinese),
            )
        max_length = config.get("model_max_length")
        # transformers writes 1e30 for "no limit"; BERT's position table says 512.
        if not isinstance(max_length, int) or not 0 < max_length <= 1_000_000:
            max_length = _DEFAULT_MAX_LENGTH
        return cls(backend, special_tokens=names, model_max_length=max_length, source=str(file))

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
        _check_text(text, "text")
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
        texts = _as_list(texts, "texts")
        _check_texts(texts, "texts")
        with self._lock:
            self._configure(None)
            encodings = self._encode_many(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

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

    def _resolve_max_length(self, max_length: int | None, pairs: bool) -> int:
        if max_length is None:
            return self.model_max_length
        least = 3 if pairs else 2
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) \
                or max_length < least:
            raise BertforgeError(
                f"max_length={max_length!r} is too small; pass an int of at least {least} "
                f"(room for [CLS] and [SEP]{' twice' if pairs else ''})"
            )
        if max_length > self.model_max_length:
            raise BertforgeError(
                f"max_length={max_length} is above this tokenizer's model_max_length "
                f"({self.model_max_length}); pass max_length <= {self.model_max_length}"
            )
        return int(max_length)

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
        _check_text(text, "text")
        if text_pair is not None:
            _check_text(text_pair, "text_pair")
        if padding not in (False, True, "max_length", "longest"):
            raise BertforgeError(
                f"padding={padding!r} is not understood; pass False, True or 'max_length'"
            )
        length = self._resolve_max_length(max_length, text_pair is not None)
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
        texts = _as_list(texts, "texts")
        if padding is True:
            padding = "longest"
        if padding not in _PADDING_CHOICES:
            raise BertforgeError(
                f"padding={padding!r} is not understood; pass 'longest', 'max_length' or False"
            )
        _check_texts(texts, "texts")
        if text_pairs is not None:
            text_pairs = _as_list(text_pairs, "text_pairs")
            if len(text_pairs) != len(texts):
                raise BertforgeError(
                    f"text_pairs has {len(text_pairs)} items but texts has {len(texts)}; "
                    "pass one second text (or None) per text"
                )
            _check_texts(text_pairs, "text_pairs", allow_none=True)
            inputs = [t if p is None else (t, p) for t, p in zip(texts, text_pairs)]
            has_pairs = any(p is not None for p in text_pairs)
        else:
            inputs, has_pairs = texts, False
        length = self._resolve_max_length(max_length, has_pairs)

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
        model_max_length: int = _DEFAULT_MAX_LENGTH,
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
        special_tokens = [str(t) for t in special_tokens]
        if len(set(special_tokens)) != len(special_tokens):
            raise BertforgeError(
                f"special_tokens {special_tokens} repeat a token; list each special token once")
        missing = [f"[{r.upper()}]" for r in _REQUIRED_ROLES if f"[{r.upper()}]" not in special_tokens]
        if missing:
            raise BertforgeError(
                f"special_tokens {special_tokens} lack {', '.join(missing)}; include "
                "[PAD], [UNK], [CLS] and [SEP] (and usually [MASK])"
            )
        if not isinstance(vocab_size, int) or vocab_size <= len(special_tokens):
            raise BertforgeError(
                f"vocab_size={vocab_size} leaves no room beside the {len(special_tokens)} "
                f"special tokens; pass a vocab_size well above {len(special_tokens)} (BERT uses 30522)"
            )
        backend = _bert_pipeline(
            WordPiece(unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100),
            lowercase=lowercase, strip_accents=strip_accents, handle_chinese_chars=True,
        )
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, limit_alphabet=limit_alphabet,
            special_tokens=special_tokens, continuing_subword_prefix="##",
            show_progress=show_progress,
        )
        files, described = _corpus_files(files_or_iterator)
        if files is not None:
            backend.train(files, trainer)
        else:
            backend.train_from_iterator(_checked_iter(files_or_iterator), trainer)
        if backend.get_vocab_size(with_added_tokens=True) <= len(special_tokens):
            raise BertforgeError(
                f"{described}: no text to learn a vocabulary from; pass a corpus with words in it"
            )
        return cls(backend, model_max_length=model_max_length, source=described)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``vocab.txt``, ``tokenizer.json``, ``tokenizer_config.json`` and
        ``special_tokens_map.json`` into ``directory`` (created if needed).

        ``transformers.AutoTokenizer.from_pretrained(directory)`` opens the result
        and gives the same ids. Each file is written under a temporary name and
        renamed, so a crash never leaves a half-written vocabulary.
        """
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise BertforgeError(f"{directory}: exists and is not a directory; pass a directory path")
        directory.mkdir(parents=True, exist_ok=True)

        vocab = self.vocab
        by_id = sorted(vocab.items(), key=lambda item: item[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise BertforgeError(
                f"{self._source}: token ids are not contiguous from 0, so no vocab.txt can "
                "describe them; rebuild the tokenizer without gaps in its ids"
            )
        state = json.loads(self._backend.to_str())
        # Truncation and padding are per-call choices here, not part of the vocabulary.
        state["truncation"] = None
        state["padding"] = None
        names = self.special_tokens
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self._tokenize_chinese_chars(),
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": True,
            **{f"{role}_token": token for role, token in names.items()},
        }
        special_map = {f"{role}_token": token for role, token in names.items()}

        write_text_atomically(directory / "vocab.txt", "".join(t + "\n" for t, _ in by_id))
        write_text_atomically(directory / "tokenizer.json", json.dumps(state, ensure_ascii=False, indent=2))
        write_text_atomically(directory / "tokenizer_config.json", json.dumps(config, indent=2) + "\n")
        write_text_atomically(directory / "special_tokens_map.json", json.dumps(special_map, indent=2) + "\n")
        return directory

    def _tokenize_chinese_chars(self) -> bool:
        norm = self._backend.normalizer
        return bool(norm.handle_chinese_chars) if isinstance(norm, normalizers.BertNormalizer) else True


# ---------------------------------------------------------------------- helpers


def _bert_pipeline(model: WordPiece, *, lowercase: bool, strip_accents: bool | None,
                   handle_chinese_chars: bool) -> _Backend:
    backend = _Backend(model)
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=handle_chinese_chars,
        strip_accents=strip_accents, lowercase=lowercase,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def _tensorflow_folder(directory: Path) -> bool:
    """A TensorFlow BERT folder (Google checkpoint, TF1 Hub module, TF2 SavedModel) without
    standard weights: where the vocabulary and its casing come from the converter."""
    if not any((directory / name).is_file() for name in ("tfhub_module.pb", "saved_model.pb", "bert_config.json")):
        return False  # the usual case, decided without importing the converter (and torch)
    from bertforge.io.tensorflow import tensorflow_layout  # looks at file names only

    return tensorflow_layout(directory) is not None


def _read_vocab_txt(file: Path) -> dict[str, int]:
    fix = "pass a BERT WordPiece vocab.txt (UTF-8 text, one token per line)"
    try:
        data = file.read_bytes()
    except OSError as error:
        raise BertforgeError(f"{file}: cannot be read ({error.strerror}); {fix}") from None
    if b"\x00" in data:
        raise BertforgeError(f"{file}: is a binary file, not a vocabulary; {fix}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise BertforgeError(f"{file}: line {line} is not UTF-8 text; {fix}") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last token
    if not lines:
        raise BertforgeError(f"{file}: is empty; {fix}")
    vocab: dict[str, int] = {}
    for index, line in enumerate(lines):
        token = line.rstrip("\r")
        if not token:
            raise BertforgeError(f"{file}: line {index + 1} is empty; {fix}")
        if token in vocab:
            raise BertforgeError(
                f"{file}: line {index + 1} repeats the token {token!r} of line "
                f"{vocab[token] + 1}; {fix} with each token once"
            )
        vocab[token] = index
    return vocab


def _load_tokenizer_json(file: Path) -> _Backend:
    try:
        backend = _Backend.from_file(str(file))
    except Exception as error:  # the Rust loader raises a bare Exception
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BertforgeError(
            f"{file}: not a readable tokenizer.json ({reason}); pass a tokenizer.json "
            "saved by the tokenizers library, or the model's vocab.txt"
        ) from None
    return backend


def _read_tokenizer_config(file: Path) -> dict[str, Any]:
    if not file.is_file():
        return {}
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = str(error).splitlines()[0]
        raise BertforgeError(f"{file}: not valid JSON ({reason}); fix or delete this file") from None
    if not isinstance(config, dict):
        raise BertforgeError(f"{file}: holds a {type(config).__name__}, not a JSON object; "
                             "fix or delete this file")
    return config


def _token_name(value: Any) -> str | None:
    # Older transformers releases write special tokens as {"content": ..., ...} objects.
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _as_list(items: Any, what: str) -> list:
    if isinstance(items, (str, bytes)):
        raise BertforgeError(
            f"{what} is a single {type(items).__name__}; pass a list of texts "
            "(or use encode() for one text)"
        )
    try:
        return items if isinstance(items, list) else list(items)
    except TypeError:
        raise BertforgeError(f"{what} is a {type(items).__name__}; pass a list of texts") from None


def _check_text(text: Any, what: str) -> None:
    if not isinstance(text, str):
        raise BertforgeError(f"{what} is {type(text).__name__}, not str; pass a non-empty text")
    if not text.strip():
        raise BertforgeError(f"{what} is empty ({text!r}); pass a text with words in it")


def _check_texts(texts: list, what: str, allow_none: bool = False) -> None:
    # Fast path: one C-level pass; it raises TypeError on the first non-str item.
    try:
        if allow_none:
            fine = all(t is None or t.strip() for t in texts)
        else:
            fine = all(map(str.strip, texts))
    except (TypeError, AttributeError):
        fine = False
    if fine:
        return
    for index, text in enumerate(texts):
        if text is None and allow_none:
            continue
        if not isinstance(text, str):
            raise BertforgeError(
                f"{what}[{index}] is {type(text).__name__}, not str; "
                f"pass one non-empty text per item (row {index} of {len(texts)})"
            )
        if not text.strip():
            raise BertforgeError(
                f"{what}[{index}] is empty ({text!r}); remove that row or fill in its text"
            )


def _corpus_files(source: Any) -> tuple[list[str] | None, str]:
    """Return (file list, description) for a path or list of paths, else (None, ...)."""
    if isinstance(source, (str, os.PathLike)):
        candidates = [source]
    elif isinstance(source, (list, tuple)) and source and (
        isinstance(source[0], os.PathLike)
        or (isinstance(source[0], str) and os.path.isfile(source[0]))
    ):
        candidates = list(source)
    else:
        return None, "training texts"
    files = []
    for item in candidates:
        if not isinstance(item, (str, os.PathLike)) or not os.path.isfile(item):
            raise BertforgeError(
                f"{item}: no such corpus file; pass existing text files, or an iterable of texts"
            )
        files.append(os.fspath(item))
    return files, ", ".join(files)


def _checked_iter(texts: Iterable[Any]) -> Iterable[str]:
    if isinstance(texts, (bytes, bytearray)):
        raise BertforgeError("corpus is bytes; pass text files or an iterable of str")
    try:
        iterator = iter(texts)
    except TypeError:
        raise BertforgeError(
            f"corpus is a {type(texts).__name__}; pass text files or an iterable of str"
        ) from None
    for index, text in enumerate(iterator):
        if not isinstance(text, str):
            raise BertforgeError(
                f"corpus item {index} is {type(text).__name__}, not str; pass an iterable of texts"
            )
        yield text
