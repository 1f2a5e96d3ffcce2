"""Raw text split into words, each with the character offsets it came from.

Tagged data is word by word, but raw text (a sentence to predict on, a text
annotated with character spans) is not. Words are cut where BERT's basic
tokenizer cuts before WordPiece: at whitespace, and around every punctuation
character, so a word never straddles two of BERT's pieces-to-be. The cutting is
the ``tokenizers`` library's ``BertPreTokenizer``; its offsets count Python
characters (code points), so ``text[start:end]`` is the word, accents and emoji
included.

>>> split_words("Zürich, 2024!")
[('Zürich', 0, 6), (',', 6, 7), ('2024', 8, 12), ('!', 12, 13)]
"""

from __future__ import annotations

from tokenizers.pre_tokenizers import BertPreTokenizer

_PRE_TOKENIZER = BertPreTokenizer()


def split_words(text: str) -> list[tuple[str, int, int]]:
    """The words of ``text`` as ``(word, start, end)``, end exclusive, in order.

    >>> split_words("Don't  stop")
    [('Don', 0, 3), ("'", 3, 4), ('t', 4, 5), ('stop', 7, 11)]
    >>> split_words("  ")
    []
    """
    return [(word, start, end) for word, (start, end) in _PRE_TOKENIZER.pre_tokenize_str(text)]
