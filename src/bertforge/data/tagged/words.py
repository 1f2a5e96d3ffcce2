"""Raw text split into words, each with the character offsets it came from.

Tagged data is word by word, but raw text (a sentence to predict on, a text
annotated with character spans) is not. Words are cut where BERT's basic
tokenizer cuts before WordPiece: at whitespace, around every punctuation
character and around every CJK ideograph (which BERT reads one by one), so a
word never straddles two of BERT's pieces-to-be. The cutting is the
``tokenizers`` library's ``BertPreTokenizer``; its offsets count Python
characters (code points), so ``text[start:end]`` is the word, accents and emoji
included.

>>> split_words("Zürich, 2024!")
[('Zürich', 0, 6), (',', 6, 7), ('2024', 8, 12), ('!', 12, 13)]
"""

from __future__ import annotations

import re

from tokenizers.pre_tokenizers import BertPreTokenizer

_PRE_TOKENIZER = BertPreTokenizer()
# The code blocks BERT's basic tokenizer treats as CJK ideographs, each its own word.
_IDEOGRAPH = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f"
                        "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f]")


def split_words(text: str) -> list[tuple[str, int, int]]:
    """The words of ``text`` as ``(word, start, end)``, end exclusive, in order.

    >>> split_words("Don't  stop")
    [('Don', 0, 3), ("'", 3, 4), ('t', 4, 5), ('stop', 7, 11)]
    >>> split_words("  ")
    []
    >>> split_words("我爱北京 ok")
    [('我', 0, 1), ('爱', 1, 2), ('北', 2, 3), ('京', 3, 4), ('ok', 5, 7)]
    """
    words = []
    for word, (start, end) in _PRE_TOKENIZER.pre_tokenize_str(text):
        if not _IDEOGRAPH.search(word):
            words.append((word, start, end))
            continue
        # BertPreTokenizer leaves ideographs to the normalizer; split them here, keeping the rest whole.
        rest = 0
        for found in _IDEOGRAPH.finditer(word):
            if found.start() > rest:
                words.append((word[rest:found.start()], start + rest, start + found.start()))
            words.append((found.group(), start + found.start(), start + found.end()))
            rest = found.end()
        if rest < len(word):
            words.append((word[rest:], start + rest, end))
    return words
