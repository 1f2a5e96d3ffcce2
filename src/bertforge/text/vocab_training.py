"""Learning a WordPiece vocabulary from a corpus: text files or an iterable of texts.

The ``tokenizers`` library's trainer does the work; this module checks what it is
given (special tokens, size, the corpus itself) so that a bad corpus fails with one
line instead of an empty vocabulary. ``Tokenizer.train`` is the way in.

>>> backend, described = train_wordpiece(["a cat sat", "a dog sat"] * 10, vocab_size=40)
>>> described, backend.token_to_id("[PAD]"), backend.token_to_id("sat") is not None
('training texts', 0, True)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from tokenizers import Tokenizer as Backend
from tokenizers import trainers
from tokenizers.models import WordPiece

from bertforge.errors import BertforgeError
from bertforge.text.file_encoding import SNIFF_BYTES, file_encoding_problem, head_encoding_problem
from bertforge.text.vocab_files import REQUIRED_ROLES, bert_pipeline

# [PAD] first so that id 0 is padding, as in every BERT checkpoint's embedding table.
DEFAULT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece(files_or_iterator: str | os.PathLike | Iterable[str], vocab_size: int = 30522, *,
                    lowercase: bool = True, strip_accents: bool | None = None, min_frequency: int = 2,
                    limit_alphabet: int = 1000, special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
                    show_progress: bool = False) -> tuple[Backend, str]:
    """A BERT WordPiece backend trained on the corpus, and how the corpus is named in messages.

    Special tokens take the first ids in the order given; see ``Tokenizer.train``.
    """
    special_tokens = [str(t) for t in special_tokens]
    if len(set(special_tokens)) != len(special_tokens):
        raise BertforgeError(
            f"special_tokens {special_tokens} repeat a token; list each special token once")
    missing = [f"[{r.upper()}]" for r in REQUIRED_ROLES if f"[{r.upper()}]" not in special_tokens]
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
    backend = bert_pipeline(
        WordPiece(unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100),
        lowercase=lowercase, strip_accents=strip_accents, handle_chinese_chars=True,
    )
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, limit_alphabet=limit_alphabet,
        special_tokens=special_tokens, continuing_subword_prefix="##",
        show_progress=show_progress,
    )
    files, described = corpus_files(files_or_iterator)
    if files is not None:
        _train_on_files(backend, trainer, files)
    else:
        backend.train_from_iterator(checked_iter(files_or_iterator), trainer)
    if backend.get_vocab_size(with_added_tokens=True) <= len(special_tokens):
        raise BertforgeError(
            f"{described}: no text to learn a vocabulary from; pass a corpus with words in it"
        )
    return backend, described


def _train_on_files(backend: Backend, trainer, files: list[str]) -> None:
    """Train on whole files; a file that is not UTF-8 text is one line naming it and the fix.

    The library reads UTF-16 of plain text as valid UTF-8 (NUL bytes between the
    letters), so each file's start is looked at first; other bad bytes are found
    only when the library stops on them, to cost nothing on a good corpus.
    """
    for name in files:
        with open(name, "rb") as file:
            problem = head_encoding_problem(file.read(SNIFF_BYTES), example=_example(name))
        if problem is not None:
            raise BertforgeError(f"{name}: {problem.what}; {problem.fix}")
    try:
        backend.train(files, trainer)
    except Exception as error:  # the library raises a plain Exception, its message naming no file
        if "UTF-8" not in str(error):
            raise
        for name in files:
            problem = file_encoding_problem(name, example=_example(name))
            if problem is not None:
                where = f"line {problem.line}: " if problem.line is not None else ""
                raise BertforgeError(f"{name}: {where}{problem.what}; {problem.fix}") from None
        raise


def _example(name: str) -> str:
    return "in" + (os.path.splitext(name)[1] or ".txt")


def corpus_files(source: Any) -> tuple[list[str] | None, str]:
    """``(file list, description)`` for a path or list of paths, else ``(None, "training texts")``.

    >>> corpus_files(["the first text", "the second"])
    (None, 'training texts')
    """
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


def checked_iter(texts: Iterable[Any]) -> Iterable[str]:
    """The texts of a corpus, each checked to be a ``str`` as it is drawn.

    >>> list(checked_iter(iter(["a", "b"])))
    ['a', 'b']
    """
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
