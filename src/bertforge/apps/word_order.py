"""The demo's task: is a sentence in its original word order, or were its two halves swapped?

Both forms hold the same words, so a bag of words cannot tell them apart; only
the order can. Test rows come from held-out docstrings only.
"""

from __future__ import annotations

import random
import re

from bertforge.apps.stdlib_corpus import Docstring, split_sentences

LABELS = ("original", "swapped")

_BARE_WORD = re.compile(r"[A-Za-z][a-z]*")


def order_task_text(sentence: str) -> str | None:
    """A sentence as the task shows it: lower case, no final mark; None when unfit.

    Fit means 8 to 40 words, so that both halves of a swap carry some words.

    >>> order_task_text("Return the number of items in the queue.")
    'return the number of items in the queue'
    >>> order_task_text("Too short.") is None
    True
    """
    words = sentence.rstrip(".!?:").lower().split()
    if not 8 <= len(words) <= 40:
        return None
    return " ".join(words)


def swap_halves(text: str, rng: random.Random) -> str | None:
    """Cut between two bare words (no punctuation at the cut), at least two words from
    either end, and swap the halves; None when there is no such place.

    >>> swap_halves("return the number of items in the queue", random.Random(0))
    'in the queue return the number of items'
    """
    words = text.split()
    cuts = [i for i in range(2, len(words) - 1)
            if _BARE_WORD.fullmatch(words[i - 1]) and _BARE_WORD.fullmatch(words[i])]
    if not cuts:
        return None
    cut = rng.choice(cuts)
    return " ".join(words[cut:] + words[:cut])


def _bag(text: str) -> tuple[str, ...]:
    return tuple(sorted(text.split()))


def word_order_examples(sentences: list[str], seed: int) -> list[tuple[str, str]]:
    """``(text, label)`` rows: each sentence once, in its original order or swapped, half and half.

    >>> rows = word_order_examples(["return the number of items in the queue now",
    ...                             "the lock is released when the block ends here"], seed=1)
    >>> sorted(label for _, label in rows)
    ['original', 'swapped']
    """
    rng = random.Random(seed)
    # A bag of words is kept once (repeated sentences, or "a is b" beside "b is a"), so
    # no bag appears under both labels.
    texts, bags = [], set()
    for text in filter(None, map(order_task_text, sentences)):
        if (bag := _bag(text)) not in bags:
            bags.add(bag)
            texts.append(text)
    swappable = [(text, swapped) for text in texts if (swapped := swap_halves(text, rng)) is not None]
    flags = [i % 2 == 1 for i in range(len(swappable))]
    rng.shuffle(flags)
    return [(swapped if flag else text, LABELS[flag]) for (text, swapped), flag in zip(swappable, flags)]


def build_task(docs: list[Docstring], seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Train and test rows of the word-order task; test rows come from held-out docstrings only,
    and a test sentence whose words also make a training sentence is dropped.

    >>> docs = [Docstring("json", ("Return the number of items in the queue right now.",)),
    ...         Docstring("tempfile", ("Create a new temporary file in the given folder here.",
    ...                                "Return the number of items in the queue right now."))]
    >>> train, test = build_task(docs, seed=0)
    >>> len(train), len(test), test[0][0]  # the held-out copy of the training sentence is dropped
    (1, 1, 'create a new temporary file in the given folder here')
    """
    def sentences(held_out: bool) -> list[str]:
        return [s for doc in docs if doc.held_out == held_out for p in doc.paragraphs for s in split_sentences(p)]

    train_sentences = sentences(False)
    known = {_bag(text) for text in filter(None, map(order_task_text, train_sentences))}
    test_sentences = [s for s in sentences(True) if (text := order_task_text(s)) and _bag(text) not in known]
    return word_order_examples(train_sentences, seed), word_order_examples(test_sentences, seed + 1)


__all__ = ["LABELS", "build_task", "order_task_text", "swap_halves", "word_order_examples"]
