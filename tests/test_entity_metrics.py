"""Entity metrics against seqscore (conlleval-compatible scoring), and the token classification report."""

import json
import random
from pathlib import Path

import pytest

from bertforge.data.tagged.schemes import InvalidTag, convert, to_tags
from bertforge.tasks.token_classification.metrics import entity_metrics, summary_line
from bertforge.tasks.token_classification.report import write_report

seqscore_encoding = pytest.importorskip("seqscore.encoding", reason="the reference scorer: pip install seqscore")
seqscore_scoring = pytest.importorskip("seqscore.scoring", reason="the reference scorer: pip install seqscore")

# The real data sets live beside the checkout (see tests/conftest.py).
WNUT_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "wnut17" / "dev.conll"

# Our scheme names and seqscore's.
ENCODINGS = {"iob1": "IOB", "iob2": "BIO", "bioes": "BIOES"}


def reference_scores(gold, predicted, scheme):
    """seqscore's scores. It repairs IOB and BIO the conlleval way; it cannot repair BIOES, so those must be valid."""
    repair = "conlleval" if scheme != "bioes" else None
    classification, accuracy = seqscore_scoring.score_label_sequences(predicted, gold, ENCODINGS[scheme], repair=repair)
    return classification, accuracy


def assert_matches_reference(gold, predicted, scheme):
    ours = entity_metrics(gold, predicted, scheme)
    reference, accuracy = reference_scores(gold, predicted, scheme)
    assert ours["precision"] == pytest.approx(reference.precision, abs=1e-12)
    assert ours["recall"] == pytest.approx(reference.recall, abs=1e-12)
    assert ours["f1"] == pytest.approx(reference.f1, abs=1e-12)
    assert ours["correct_entities"] == reference.true_pos
    assert ours["predicted_entities"] == reference.total_pos
    assert ours["entities"] == reference.total_ref
    assert ours["token_accuracy"] == pytest.approx(accuracy.accuracy, abs=1e-12)
    assert set(ours["per_type"]) == set(reference.type_scores)
    for kind, stats in ours["per_type"].items():
        theirs = reference.type_scores[kind]
        assert (stats["support"], stats["predicted"]) == (theirs.total_ref, theirs.total_pos), kind
        assert stats["f1"] == pytest.approx(theirs.f1, abs=1e-12), kind
    return ours


# --------------------------------------------------------------------------- hand-made repair cases

# Gold and predicted pairs covering every way conlleval repairs a predicted sequence.
IOB2_CASES = [
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),     # all right
    (["B-PER", "I-PER", "O"], ["I-PER", "I-PER", "O"]),                       # opens with I-: still found
    (["O", "B-PER", "O"], ["O", "I-PER", "O"]),                               # I- after O
    (["B-PER", "B-LOC", "I-LOC"], ["B-PER", "I-LOC", "I-LOC"]),               # I- after another type
    (["B-PER", "I-PER", "I-PER"], ["B-PER", "I-PER", "B-PER"]),               # split in two: both wrong
    (["B-PER", "B-PER"], ["B-PER", "I-PER"]),                                 # merged: wrong
    (["B-PER", "I-PER", "O"], ["B-LOC", "I-LOC", "O"]),                       # wrong type
    (["B-PER", "I-PER", "O"], ["B-PER", "O", "O"]),                           # too short
    (["O", "B-PER", "O"], ["B-PER", "I-PER", "O"]),                           # too long
    (["B-ORG", "O", "O"], ["O", "O", "O"]),                                   # missed
    (["O", "O"], ["I-ORG", "B-ORG"]),                                         # spurious, both repair kinds
    (["B-PER", "I-PER", "I-PER"], ["I-LOC", "I-PER", "I-PER"]),               # type change inside
    (["O"], ["O"]),
]


def test_iob2_repair_cases_match_seqscore():
    gold, predicted = zip(*IOB2_CASES)
    m = assert_matches_reference(list(gold), list(predicted), "iob2")
    # Counted by hand: 14 gold entities, 16 predicted, 6 right (two in each of the first and fourth
    # cases, one in each of the second and third).
    assert (m["entities"], m["predicted_entities"], m["correct_entities"]) == (14, 16, 6)


def test_iob1_cases_match_seqscore():
    cases = [
        (["I-PER", "I-PER", "B-PER", "O"], ["I-PER", "I-PER", "B-PER", "O"]),
        (["I-PER", "I-PER", "B-PER", "O"], ["I-PER", "I-PER", "I-PER", "O"]),  # merged
        (["I-PER", "O", "I-LOC"], ["B-PER", "O", "B-LOC"]),                    # B- where IOB1 has no B-: repaired
        (["I-PER", "I-LOC"], ["I-PER", "B-LOC"]),                              # B- after another type
        (["O", "I-ORG", "I-ORG"], ["O", "I-ORG", "I-LOC"]),
        (["I-PER", "B-PER", "I-PER"], ["I-PER", "B-PER", "B-PER"]),
    ]
    gold, predicted = zip(*cases)
    assert_matches_reference(list(gold), list(predicted), "iob1")


def test_bioes_cases_match_seqscore():
    # seqscore reads only valid BIOES; broken BIOES reading is checked by hand below.
    cases = [
        (["B-PER", "I-PER", "E-PER", "O"], ["B-PER", "I-PER", "E-PER", "O"]),
        (["B-PER", "E-PER", "S-PER"], ["B-PER", "I-PER", "E-PER"]),
        (["S-LOC", "O", "S-PER"], ["S-PER", "O", "S-PER"]),
        (["B-ORG", "E-ORG"], ["O", "O"]),
        (["O", "O"], ["S-ORG", "S-ORG"]),
    ]
    gold, predicted = zip(*cases)
    assert_matches_reference(list(gold), list(predicted), "bioes")


def test_broken_bioes_predictions_are_read_leniently():
    gold = [["B-PER", "E-PER", "O", "S-LOC", "O", "S-ORG"]]
    # I- opens PER (and E- closes it: right), B-LOC cut short by O is a one-word LOC (right),
    # E-ORG after O is a one-word ORG (right).
    predicted = [["I-PER", "E-PER", "O", "B-LOC", "O", "E-ORG"]]
    m = entity_metrics(gold, predicted, "bioes")
    assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)
    # Tags compared as given: three of six differ.
    assert m["token_accuracy"] == 0.5


# --------------------------------------------------------------------------- real data


def read_conll_tags(path: Path) -> list[list[str]]:
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.split()[-1])
        elif current:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def corrupt(gold: list[list[str]], seed: int) -> list[list[str]]:
    """Predictions a weak tagger might make, written as (possibly invalid) IOB2 tags."""
    rng = random.Random(seed)
    bio = seqscore_encoding.get_encoding("BIO")
    types = sorted({tag[2:] for tags in gold for tag in tags if tag != "O"})
    predicted = []
    for tags in gold:
        tags = list(tags)
        for mention in bio.decode_labels(tags):
            start, end, kind = mention.span.start, mention.span.end, mention.type
            roll = rng.random()
            if roll < 0.12:  # deleted
                tags[start:end] = ["O"] * (end - start)
            elif roll < 0.24:  # another type
                other = rng.choice([t for t in types if t != kind])
                tags[start:end] = [f"B-{other}"] + [f"I-{other}"] * (end - start - 1)
            elif roll < 0.36:  # opens with I-
                tags[start] = f"I-{kind}"
            elif roll < 0.48:  # a boundary moved by one word
                if rng.random() < 0.5 and end < len(tags) and tags[end] == "O":
                    tags[end] = f"I-{kind}"
                elif end - start > 1:
                    tags[end - 1] = "O"
                elif start > 0 and tags[start - 1] == "O":
                    tags[start - 1], tags[start] = f"B-{kind}", f"I-{kind}"
        for position, tag in enumerate(tags):  # spurious entities, some opening with I-
            if tag == "O" and rng.random() < 0.02:
                tags[position] = f"{rng.choice('BI')}-{rng.choice(types)}"
        predicted.append(tags)
    return predicted


def reencode(sequences, source: str, target: str):
    """Tags written in another scheme by seqscore's own encoders (so the test does not grade our converter by itself)."""
    read, write = seqscore_encoding.get_encoding(source), seqscore_encoding.get_encoding(target)
    result = []
    for tags in sequences:
        valid = read.repair_labels(tags, "conlleval") if source != "BIOES" else tags
        result.append(list(write.encode_mentions(read.decode_labels(valid), len(tags))))
    return result


@pytest.fixture(scope="module")
def wnut_dev():
    if not WNUT_DEV.is_file():
        pytest.skip(f"WNUT 2017 dev file not found at {WNUT_DEV}: place the shared data folder beside the checkout")
    return read_conll_tags(WNUT_DEV)


def test_wnut_dev_iob2_matches_seqscore(wnut_dev):
    predicted = corrupt(wnut_dev, seed=3)
    assert predicted != wnut_dev
    m = assert_matches_reference(wnut_dev, predicted, "iob2")
    assert m["sentences"] == len(wnut_dev) and m["words"] == sum(map(len, wnut_dev))
    assert m["entities"] == 836  # the B- tags of the file
    assert 0.3 < m["f1"] < 0.9   # the corruption did something, and not everything


def test_wnut_dev_iob1_matches_seqscore(wnut_dev):
    gold = reencode(wnut_dev, "BIO", "IOB")
    # The corrupted IOB2 tags written IOB1-style: most B- become I-; the B- left stand either where
    # IOB1 allows them (after an entity of the same type) or where a reader must repair them.
    predicted = [[f"I-{tag[2:]}" if tag.startswith("B-") and (i * 31 + j * 7) % 5 else tag
                  for j, tag in enumerate(tags)] for i, tags in enumerate(corrupt(wnut_dev, seed=5))]
    assert sum(tag.startswith("B-") for tags in predicted for tag in tags) > 50
    assert_matches_reference(gold, predicted, "iob1")


def test_wnut_dev_bioes_matches_seqscore(wnut_dev):
    gold = reencode(wnut_dev, "BIO", "BIOES")
    predicted = reencode(corrupt(wnut_dev, seed=9), "BIO", "BIOES")
    assert_matches_reference(gold, predicted, "bioes")


def test_schemes_of_gold_and_predictions_may_differ(wnut_dev):
    predicted = corrupt(wnut_dev, seed=3)
    same = entity_metrics(wnut_dev, predicted, "iob2")
    gold_iob1 = reencode(wnut_dev, "BIO", "IOB")
    predicted_bioes = reencode(predicted, "BIO", "BIOES")
    mixed = entity_metrics(gold_iob1, predicted_bioes, "iob1", predicted_scheme="bioes")
    for key in ("precision", "recall", "f1", "macro_f1", "correct_entities", "predicted_entities", "per_type",
                "confusion", "errors"):
        assert mixed[key] == same[key], key
    # Tags compared in the gold scheme: the predictions converted to IOB1.
    expected = [convert(tags, "bioes", "iob1") for tags in predicted_bioes]
    hits = sum(g == p for gold, pred in zip(gold_iob1, expected) for g, p in zip(gold, pred))
    assert mixed["token_accuracy"] == hits / mixed["words"]


# --------------------------------------------------------------------------- the other numbers


def test_macro_f1_confusion_and_counts():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "O", "B-PER"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG", "B-LOC"], ["O", "O", "B-PER"]]
    m = entity_metrics(gold, predicted, "iob2")
    assert (m["entities"], m["predicted_entities"], m["correct_entities"]) == (4, 4, 2)
    assert (m["sentences"], m["words"]) == (2, 8)
    assert list(m["per_type"]) == ["LOC", "ORG", "PER"]
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2, "predicted": 2}
    assert m["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 1}
    assert m["per_type"]["ORG"]["predicted"] == 1 and m["per_type"]["ORG"]["support"] == 1
    assert m["macro_f1"] == pytest.approx(1 / 3)
    assert m["token_accuracy"] == 5 / 8
    assert m["confusion"] == {
        "labels": ["LOC", "ORG", "PER", "none"],
        # gold LOC at 3-4 was predicted ORG; gold ORG at 0-1 (sentence 2) got nothing;
        # the predicted LOC at 4-5 spans no gold entity.
        "matrix": [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 2, 0], [1, 0, 0, 0]],
    }


def test_errors_list_the_worst_sentences_first():
    gold = [["B-PER"]] * 14 + [["B-PER", "B-LOC", "B-ORG"]]
    predicted = [["O"]] * 7 + [["B-PER"]] * 7 + [["O", "O", "O"]]
    m = entity_metrics(gold, predicted, "iob2")
    assert len(m["errors"]) == 8
    assert m["errors"][0] == {"sentence": 14, "missed": [["PER", 0, 1], ["LOC", 1, 2], ["ORG", 2, 3]],
                              "spurious": []}
    assert [row["sentence"] for row in m["errors"][1:]] == list(range(7))
    many = entity_metrics([["B-PER"]] * 30, [["O"]] * 30, "iob2")
    assert [row["sentence"] for row in many["errors"]] == list(range(10))


@pytest.mark.parametrize("gold, predicted, accuracy", [
    ([["O", "O"]], [["O", "O"]], 1.0),   # no entities at all
    ([], [], 0.0),                       # no sentences
    ([["B-PER"]], [["O"]], 0.0),         # nothing predicted
    ([["O"]], [["B-PER"]], 0.0),         # nothing to find
])
def test_nothing_to_count_gives_zeros_not_nan(gold, predicted, accuracy):
    m = entity_metrics(gold, predicted, "iob2")
    assert (m["precision"], m["recall"], m["f1"], m["macro_f1"]) == (0.0, 0.0, 0.0, 0.0)
    assert m["token_accuracy"] == accuracy
    json.dumps(m, allow_nan=False)


def test_plain_labels_are_scored_as_runs():
    gold = [["NOUN", "NOUN", "VERB", "O"]]
    predicted = [["NOUN", "VERB", "VERB", "O"]]
    m = entity_metrics(gold, predicted, "plain")
    assert (m["entities"], m["predicted_entities"], m["correct_entities"]) == (2, 2, 0)
    assert m["token_accuracy"] == 0.75


def test_lengths_must_match():
    with pytest.raises(ValueError, match=r"sentence 1 \(0-based\): 2 predicted tags for 3 gold tags"):
        entity_metrics([["O"], ["O", "O", "O"]], [["O"], ["O", "O"]], "iob2")
    with pytest.raises(ValueError, match="1 predicted sentences for 2 gold sentences"):
        entity_metrics([["O"], ["O"]], [["O"]], "iob2")


def test_bad_tags_and_schemes_are_named():
    with pytest.raises(InvalidTag) as caught:
        entity_metrics([["O", "O"], ["O", "B-PER"]], [["O", "O"], ["O", "E-PER"]], "iob2")
    assert (caught.value.sentence, caught.value.position, caught.value.tag) == (1, 1, "E-PER")
    assert "predicted tags" in str(caught.value)
    with pytest.raises(ValueError, match="unknown tag scheme 'BIO'"):
        entity_metrics([["O"]], [["O"]], "BIO")
    with pytest.raises(ValueError, match="unknown tag scheme 'iobes'"):
        entity_metrics([["O"]], [["O"]], "iob2", predicted_scheme="iobes")


def test_summary_line():
    m = entity_metrics([["B-PER", "O", "B-LOC"]], [["B-PER", "O", "O"]], "iob2")
    assert summary_line(m) == "entity F1 0.667 (P 1.000 R 0.500), 2 entities, token accuracy 0.667"


# --------------------------------------------------------------------------- report


def test_report_writes_every_section(tmp_path):
    sentences = [["Ann", "met", "Bob"], ["Rain", "in", "New", "York", "today"]]
    gold = [to_tags([("PER", 0, 1), ("PER", 2, 3)], 3, "iob2"), to_tags([("LOC", 2, 4)], 5, "iob2")]
    predicted = [to_tags([("PER", 0, 1), ("PER", 2, 3)], 3, "iob2"), to_tags([("ORG", 3, 5)], 5, "iob2")]
    metrics = entity_metrics(gold, predicted, "iob2")
    metrics["training"] = {"epochs_run": 2, "train_seconds": 1.5}
    history = [{"epoch": 1, "step": 5, "train_loss": 0.9, "f1": 0.2}, {"epoch": 2, "step": 10, "train_loss": 0.4, "f1": 0.5}]

    path = write_report(tmp_path / "out", metrics, history, "WNUT tagging", sentences=sentences)
    assert path == tmp_path / "out" / "report.md"
    text = path.read_text()
    assert text.startswith("# WNUT tagging\n")
    assert summary_line(metrics) in text
    for section in ("## Metrics", "## Per type", "## Confusion matrix", "## Worst errors", "## Training"):
        assert section in text, section
    assert "| entity F1 (micro) | 0.6667 |" in text
    assert "| token accuracy | 0.6250 |" in text
    assert "| LOC | 0.0000 | 0.0000 | 0.0000 | 1 | 0 |" in text
    assert "| PER | 1.0000 | 1.0000 | 1.0000 | 2 | 2 |" in text
    assert "| **LOC** | 0 | 0 | 0 | 1 |" in text        # gold LOC: no predicted entity over New York
    assert "| **none** | 0 | 1 | 0 | 0 |" in text        # predicted ORG over York today: no gold entity there
    # The sentence with errors, with its words and entities; the right one is not listed.
    errors = text.split("## Worst errors")[1]
    assert "> Rain in New York today" in errors
    assert "missed (gold only): New York [LOC]" in errors
    assert "spurious (predicted only): York today [ORG]" in errors
    assert "Ann met Bob" not in errors
    assert "![Learning curves](learning_curves.png)" in text
    assert (tmp_path / "out" / "learning_curves.png").is_file()
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["training"] == {"epochs_run": 2, "train_seconds": 1.5}
    assert saved["f1"] == metrics["f1"] and saved["errors"] == metrics["errors"]


def test_report_without_sentences_or_history(tmp_path):
    metrics = entity_metrics([["B-PER", "I-PER", "O"]], [["O", "O", "B-LOC"]], "iob2")
    text = write_report(tmp_path, metrics, None, "eval").read_text()
    assert "missed (gold only): words 0-1 [PER]" in text
    assert "spurious (predicted only): words 2-2 [LOC]" in text
    assert "## Training" not in text and not (tmp_path / "learning_curves.png").exists()


def test_report_escapes_markdown_in_words(tmp_path):
    metrics = entity_metrics([["B-PER", "O"]], [["O", "O"]], "iob2")
    text = write_report(tmp_path, metrics, None, "eval", sentences=[["*Ann*", "|"]]).read_text()
    assert "> \\*Ann\\* \\|" in text
