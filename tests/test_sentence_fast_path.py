"""The sentence splitter's shortcuts: plain paragraphs cut without pysbd, abbreviations looked up once."""

import re

import pysbd
import pytest

from bertforge.data import segmenter
from bertforge.data.segmenter import FastSegmenter, plain_sentences

REFERENCE = pysbd.Segmenter(language="en", clean=False)


def pysbd_sentences(text: str) -> list[str]:
    return [sentence.strip() for sentence in REFERENCE.segment(text) if sentence.strip()]


# Texts on each side of the line between plain and not: what pysbd treats specially
# (abbreviations, initials, numbers, ellipses, quotes, brackets, ?! mixes, lists,
# e-mail and URLs, exclamation words, a mark before a lower-case word).
TEXTS = [
    "The rain fell; it was cold. Then it stopped! Did it? Yes—it did, at last.",
    "It rained all day",
    "The thousand injuries of Fortunato I had borne as I best could. But when he ventured upon insult, I vowed.",
    "Mr. Poe met Dr. Griswold. They argued.",
    "He spoke to mr. Allan. It was late.",
    "The ship sailed to St. Petersburg. It sank.",
    "Mrs. Usher and Messrs. Allan left. Then nobody.",
    "It was E. A. Poe. He wrote.",
    "I saw a. Then b. Then c.",
    "Point i. The first. Point ii. The second.",
    "He paid 3.50 dollars. It was 1845.",
    "Wait... then nothing. Wait. . . then more.",
    "He left.. Then nothing.",
    "What?! No. Why?? Because!! Really!? Yes.",
    "He said “Go. Now.” Then he left.",
    "He said 'go now.' Then he left.",
    "It was (as I said. Once.) dark. Then light.",
    "Write to poe@example.com. Or see www.poe.org today. Then rest.",
    "Yahoo! It worked. Yum! It tasted.",
    "Stop! he cried. Then he ran.",
    "Why? he asked. Nobody knew.",
    "It is the Co. KG. Then the end.",
    "The vol. It fell. See fig. Then more.",
    "He went to the U.S. Then home.",
    "It was, e.g. this. And i.e. that.",
    "He was no. One knew. Art. It was.",
    "The end of the Ṡtory. It was ſo. The Kelvin scale. Then more.",
    "A line of words  with two spaces. Then more.",
    " Leading space. Then more.",
    "It ends with a mark and a space. ",
    "Caf\u00e9 life was good. Na\u00efve men came. Then they left.",
    "It was the ii. Then the iv. Then the xx.",
    "The {dr} Poe left. Then the dr. Allan came.",
    "He left—Mr. Barnard stayed. It rained.",
    "It sinks if let alone.’ Then it rose.",
    "I am _here!_ To-morrow I shall be free.",
    "The long -- dash. Then more.",
    "The chapter ends here. 1. First item. 2. Second item.",
]


@pytest.mark.parametrize("text", TEXTS)
def test_the_fast_segmenter_gives_what_pysbd_gives(text):
    assert FastSegmenter().segment(text) == pysbd_sentences(text)


def test_plain_paragraphs_are_cut_without_pysbd(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pysbd was called for a plain paragraph")

    monkeypatch.setattr(segmenter._Processor, "process", refuse)
    text = "The rain fell; it was cold. Then it stopped! Did it? Yes—it did, at last."
    assert FastSegmenter().segment(text) == [
        "The rain fell; it was cold.", "Then it stopped!", "Did it?", "Yes—it did, at last."]
    for special in ("Mr. Poe left.", "He said “Go.” Then left.", "In 1845. Then.", "Stop! he cried.", "A. Poe."):
        assert plain_sentences(special) is None


def test_abbreviations_are_not_searched_for_one_by_one(monkeypatch):
    # pysbd searches the whole text once for each of its 188 abbreviations that occurs in it
    # as letters anywhere ("a", "no", "st", "art" occur in most paragraphs).
    searches = []
    findall = re.findall

    def counting(pattern, string, flags=0):
        if pattern.startswith("(?:^|\\s|\\r|\\n)"):
            searches.append(pattern)
        return findall(pattern, string, flags)

    monkeypatch.setattr(re, "findall", counting)
    text = "Mr. Poe met Dr. Griswold at the art gallery, no doubt; a sad story. St. Mary was there."
    assert FastSegmenter().segment(text) == pysbd_sentences(text)
    searches.clear()
    FastSegmenter().segment(text)
    assert searches == []


@pytest.fixture(scope="module")
def poe_paragraphs(data_dir):
    path = data_dir / "poe" / "poe.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def test_every_plain_paragraph_of_poe_is_cut_as_pysbd_cuts_it(poe_paragraphs):
    # The synthetic paragraph-per-line corpus of benchmarks/bench_corpus.py is these paragraphs too.
    plain = [paragraph for paragraph in poe_paragraphs if plain_sentences(paragraph) is not None]
    assert len(plain) > 500
    for paragraph in plain:
        assert plain_sentences(paragraph) == pysbd_sentences(paragraph)


def test_poe_paragraphs_through_the_abbreviation_lookup_are_cut_as_pysbd_cuts_them(poe_paragraphs):
    # A sample other than the one tests/test_corpus.py checks (every 8th from the first).
    sample = [paragraph for paragraph in poe_paragraphs[3::5]
              if plain_sentences(paragraph) is None and len(paragraph) <= 5000]
    assert len(sample) > 500
    fast = FastSegmenter()
    for paragraph in sample:
        assert fast.segment(paragraph) == pysbd_sentences(paragraph)
