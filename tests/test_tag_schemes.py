"""Tag schemes: detection, entity reading (with conlleval's repairs), writing, conversion."""

import random
import time
from pathlib import Path

import pytest

from bertforge.data.tagged.schemes import (
    OUTSIDE,
    SCHEMES,
    InvalidTag,
    convert,
    detect_scheme,
    entities,
    repair,
    split_tag,
    to_tags,
)
from bertforge.errors import BertforgeError

# The real data sets live beside the checkout (see tests/conftest.py).
WNUT_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "wnut17" / "dev.conll"


# --------------------------------------------------------------------------- split_tag


@pytest.mark.parametrize("tag, parts", [
    ("B-PER", ("B", "PER")), ("I-PER", ("I", "PER")), ("E-LOC", ("E", "LOC")), ("S-LOC", ("S", "LOC")),
    ("O", ("O", "")), ("NOUN", ("", "NOUN")), ("PRON-DEM", ("", "PRON-DEM")),
    ("B-creative-work", ("B", "creative-work")), ("B-", ("", "B-")), ("b-per", ("", "b-per")),
    ("X-PER", ("", "X-PER")), ("", ("", "")),
])
def test_split_tag(tag, parts):
    assert split_tag(tag) == parts


def test_schemes_and_outside_names():
    assert SCHEMES == ("iob1", "iob2", "bioes", "plain")
    assert OUTSIDE == "O"


# --------------------------------------------------------------------------- detect_scheme


@pytest.mark.parametrize("sequences, scheme", [
    ([["B-PER", "I-PER", "O"], ["O", "B-LOC", "B-LOC"]], "iob2"),
    ([["I-PER", "I-PER", "O"]], "iob1"),                      # I- first in its sentence
    ([["B-PER", "O", "I-LOC"]], "iob1"),                      # I- after O
    ([["B-PER", "I-LOC"]], "iob1"),                           # I- after another type
    ([["I-PER", "B-PER"]], "iob1"),
    ([["B-PER", "E-PER", "O"]], "bioes"),
    ([["S-PER"], ["I-LOC"]], "bioes"),                        # E/S wins over the iob1 evidence
    ([["NOUN", "VERB", "O"], ["PRON-DEM"]], "plain"),
    ([["b-per", "i-per", "O"]], "plain"),                     # lower case is not a prefix
    ([], "iob2"), ([[]], "iob2"), ([["O", "O"], ["O"]], "iob2"),
])
def test_detect_scheme(sequences, scheme):
    assert detect_scheme(sequences) == scheme


def test_detect_scheme_takes_any_iterable():
    assert detect_scheme(iter([("I-PER",), ("O",)])) == "iob1"


@pytest.mark.parametrize("bad, words", [
    ("X-PER", "the prefix 'X', not one of B, I, E, S"),
    ("PER", "has no B-/I-/E-/S- prefix"),
    ("B-", "has no type after its prefix"),
    ("b-per", "lower-case prefix"),
])
def test_detect_scheme_names_the_first_bad_tag(bad, words):
    sequences = [["O", "B-PER", "I-PER"], ["O", "O", bad, "B-LOC", bad]]
    with pytest.raises(InvalidTag) as caught:
        detect_scheme(sequences)
    error = caught.value
    assert (error.sentence, error.position, error.tag) == (1, 2, bad)
    assert words in error.reason
    assert "B-, I-, E- or S-" in error.fix
    message = str(error)
    assert message.startswith("sentence 2, word 3: ") and "\n" not in message
    assert isinstance(error, BertforgeError) and isinstance(error, ValueError)


def test_detect_scheme_reports_a_bad_tag_met_before_any_prefixed_one():
    with pytest.raises(InvalidTag) as caught:
        detect_scheme([["PER", "O"], ["B-PER"]])
    assert (caught.value.sentence, caught.value.position) == (0, 0)


def test_detect_scheme_rejects_an_empty_tag_in_plain_data():
    with pytest.raises(InvalidTag) as caught:
        detect_scheme([["NOUN", ""]])
    assert (caught.value.sentence, caught.value.position, caught.value.tag) == (0, 1, "")


@pytest.mark.skipif(not WNUT_DEV.is_file(), reason=f"{WNUT_DEV} is not on this machine")
def test_detect_scheme_on_wnut_dev():
    sentences, current = [], []
    for line in WNUT_DEV.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.split()[-1])
        elif current:
            sentences.append(current)
            current = []
    assert detect_scheme(sentences + [current]) == "iob2"


# --------------------------------------------------------------------------- entities


@pytest.mark.parametrize("tags, found", [
    ([], []),
    (["O", "O"], []),
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["B-PER", "I-PER"], [("PER", 0, 2)]),                           # entity at the sentence end
    (["I-PER", "I-PER", "O"], [("PER", 0, 2)]),                      # opens with I-: repaired, not dropped
    (["O", "I-PER", "O"], [("PER", 1, 2)]),                          # I- after O
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),   # I- after another type
    (["I-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),   # B- after I- of the same type splits
    (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    (["B-PER", "B-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),
    (["I-PER", "I-LOC", "B-LOC"], [("PER", 0, 1), ("LOC", 1, 2), ("LOC", 2, 3)]),
    (["B-creative-work", "I-creative-work"], [("creative-work", 0, 2)]),
])
@pytest.mark.parametrize("scheme", ["iob1", "iob2"])
def test_entities_iob_follow_conlleval(tags, found, scheme):
    assert entities(tags, scheme) == found


@pytest.mark.parametrize("tags, found", [
    (["B-PER", "I-PER", "E-PER", "S-LOC", "O"], [("PER", 0, 3), ("LOC", 3, 4)]),
    (["S-PER", "S-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    (["B-PER", "E-PER", "B-PER", "E-PER"], [("PER", 0, 2), ("PER", 2, 4)]),
    # broken sequences, read leniently:
    (["O", "I-PER", "E-PER"], [("PER", 1, 3)]),                      # I- after O starts
    (["O", "E-PER", "O"], [("PER", 1, 2)]),                          # E- after O: a one-word entity
    (["B-PER", "O"], [("PER", 0, 1)]),                               # B- cut short by O
    (["B-PER"], [("PER", 0, 1)]),                                    # ... or by the sentence end
    (["B-PER", "I-PER"], [("PER", 0, 2)]),
    (["B-PER", "B-PER", "E-PER"], [("PER", 0, 1), ("PER", 1, 3)]),
    (["B-PER", "S-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    (["B-PER", "E-PER", "I-PER", "E-PER"], [("PER", 0, 2), ("PER", 2, 4)]),   # I- after E- starts anew
    (["B-PER", "E-PER", "E-PER"], [("PER", 0, 2), ("PER", 2, 3)]),
    (["S-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    (["B-PER", "I-LOC", "E-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),
    (["B-PER", "E-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),
])
def test_entities_bioes(tags, found):
    assert entities(tags, "bioes") == found


def test_entities_plain_are_runs_of_one_label():
    tags = ["NOUN", "NOUN", "O", "VERB", "PRON-DEM", "PRON-DEM", "B-PER"]
    assert entities(tags, "plain") == [("NOUN", 0, 2), ("VERB", 3, 4), ("PRON-DEM", 4, 6), ("B-PER", 6, 7)]


@pytest.mark.parametrize("scheme, tags, position", [
    ("iob2", ["B-PER", "E-PER"], 1),
    ("iob1", ["O", "S-PER"], 1),
    ("bioes", ["B-PER", "PER"], 1),
    ("iob2", ["X-PER"], 0),
])
def test_entities_reject_tags_outside_the_scheme(scheme, tags, position):
    with pytest.raises(InvalidTag) as caught:
        entities(tags, scheme)
    assert caught.value.position == position and caught.value.sentence is None
    assert caught.value.tag == tags[position]


# --------------------------------------------------------------------------- to_tags, convert, repair


SPANS = [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5), ("ORG", 5, 8)]


@pytest.mark.parametrize("scheme, tags", [
    ("iob1", ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "I-ORG"]),
    ("iob2", ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "I-ORG"]),
    ("bioes", ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-ORG", "I-ORG", "E-ORG"]),
    ("plain", ["PER", "PER", "PER", "O", "LOC", "ORG", "ORG", "ORG"]),
])
def test_to_tags(scheme, tags):
    assert to_tags(SPANS, 8, scheme) == tags
    assert to_tags(list(reversed(SPANS)), 8, scheme) == tags   # any order of spans
    assert to_tags([], 3, scheme) == ["O", "O", "O"]


@pytest.mark.parametrize("spans, words", [
    ([("PER", 0, 2), ("LOC", 1, 3)], "overlaps"),
    ([("PER", 2, 5)], "does not fit"),
    ([("PER", 2, 2)], "does not fit"),
    ([("PER", -1, 1)], "does not fit"),
    ([("", 0, 1)], "no type"),
])
def test_to_tags_rejects_bad_spans(spans, words):
    with pytest.raises(ValueError, match=words):
        to_tags(spans, 4, "iob2")


@pytest.mark.parametrize("source", ["iob1", "iob2", "bioes"])
@pytest.mark.parametrize("target", ["iob1", "iob2", "bioes"])
def test_convert_keeps_entities(source, target):
    tags = to_tags(SPANS, 8, source)
    converted = convert(tags, source, target)
    assert converted == to_tags(SPANS, 8, target)
    assert entities(converted, target) == SPANS


def test_convert_to_plain_merges_touching_entities_of_one_type():
    # Plain tags cannot mark where one entity ends and the next of its type begins.
    assert entities(convert(to_tags(SPANS, 8, "iob2"), "iob2", "plain"), "plain")[0] == ("PER", 0, 3)


@pytest.mark.parametrize("scheme, tags, repaired", [
    ("iob2", ["I-PER", "I-PER", "O", "I-LOC", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]),
    ("iob2", ["B-PER", "I-LOC"], ["B-PER", "B-LOC"]),
    ("iob1", ["B-PER", "I-PER", "O", "B-LOC"], ["I-PER", "I-PER", "O", "I-LOC"]),
    ("bioes", ["B-PER", "O", "I-LOC", "I-LOC", "E-ORG"], ["S-PER", "O", "B-LOC", "E-LOC", "S-ORG"]),
    ("bioes", ["B-PER", "I-PER"], ["B-PER", "E-PER"]),
])
def test_repair(scheme, tags, repaired):
    assert repair(tags, scheme) == repaired
    assert entities(repaired, scheme) == entities(tags, scheme)


def _random_tags(rng, length, prefixes, types=("PER", "LOC", "creative-work")):
    choices = ["O"] * 3 + [f"{prefix}-{kind}" for prefix in prefixes for kind in types]
    return [rng.choice(choices) for _ in range(length)]


@pytest.mark.parametrize("scheme, prefixes", [("iob1", "BI"), ("iob2", "BI"), ("bioes", "BIES")])
def test_repair_of_random_tags_is_valid_and_keeps_entities(scheme, prefixes):
    rng = random.Random(7)
    for _ in range(300):
        tags = _random_tags(rng, rng.randint(0, 12), prefixes)
        found = entities(tags, scheme)
        repaired = repair(tags, scheme)
        assert entities(repaired, scheme) == found
        assert repair(repaired, scheme) == repaired
        for kind, start, end in found:
            first, last = split_tag(repaired[start])[0], split_tag(repaired[end - 1])[0]
            if scheme == "iob2":
                assert first == "B"
            elif scheme == "bioes":
                assert (first, last) == ("S", "S") if end - start == 1 else (first, last) == ("B", "E")
            else:  # iob1: B- exactly where an entity touches one of its type
                touching = any(other == (kind, s, start) for other in found for s in range(start))
                assert (first == "B") == touching


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "bioes"])
def test_random_spans_round_trip(scheme):
    rng = random.Random(11)
    for _ in range(300):
        length, spans, position = rng.randint(0, 15), [], 0
        while position < length:
            if rng.random() < 0.4:
                end = rng.randint(position + 1, min(length, position + 3))
                spans.append((rng.choice(["PER", "LOC"]), position, end))
                position = end
            else:
                position += 1
        tags = to_tags(spans, length, scheme)
        assert detect_scheme([tags]) in (scheme, "iob2")   # too few entities to tell some schemes apart
        assert entities(tags, scheme) == spans


@pytest.mark.parametrize("call", [
    lambda: entities(["O"], "bio"),
    lambda: to_tags([], 1, "IOB2"),
    lambda: convert(["O"], "iob2", "bilou"),
    lambda: convert(["O"], "iobes", "iob2"),
    lambda: repair(["O"], ""),
])
def test_unknown_scheme_names_the_known_ones(call):
    with pytest.raises(ValueError, match="unknown tag scheme .*iob1, iob2, bioes, plain"):
        call()


def test_reading_is_linear_in_length():
    # A WNUT test file is about 23k words; read ten times that in one go.
    tags = ["B-PER", "I-PER", "O", "I-LOC", "O"] * 46_000
    started = time.perf_counter()
    found = entities(tags, "iob2")
    detect_scheme([tags])
    repair(tags, "bioes")
    assert len(found) == 2 * 46_000
    assert time.perf_counter() - started < 5
