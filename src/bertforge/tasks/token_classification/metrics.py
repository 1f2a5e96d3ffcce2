"""Entity scores of tagged sentences, the numbers conlleval prints, and where they come from.

An entity counts as found only when its sentence, first word, last word and
type all match a gold entity. Entities are read from the tags by
:func:`bertforge.data.tagged.schemes.entities`, with conlleval's rules for
IOB1 and IOB2 (so a predicted entity that opens with ``I-`` still counts), and
gold and predictions may be written in different schemes. Beside the micro
scores: per-type scores, a confusion matrix of entity types over the same spans,
and the sentences with the most errors, for the report.

>>> gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
>>> predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "O"]]
>>> m = entity_metrics(gold, predicted, "iob2")
>>> m["precision"], m["recall"], round(m["f1"], 3)
(0.5, 0.3333333333333333, 0.4)
>>> print(summary_line(m))
entity F1 0.400 (P 0.500 R 0.333), 3 entities, token accuracy 0.667
"""

from __future__ import annotations

from typing import Any, Sequence

from bertforge.data.tagged.schemes import InvalidTag, check_scheme, convert, entities

# The column (and row) of the confusion matrix for "no entity with this span".
NO_ENTITY = "none"
# How many sentences the error list keeps: enough to see a pattern, short enough to read.
MAX_ERROR_SENTENCES = 10


def _ratio(part: int, whole: int) -> float:
    # Undefined ratios (nothing predicted, nothing to find) are 0.0, as conlleval prints them.
    return part / whole if whole else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _sentence_entities(tags: Sequence[str], scheme: str, sentence: int, which: str) -> list[tuple[str, int, int]]:
    try:
        return entities(tags, scheme)
    except InvalidTag as error:
        raise InvalidTag(sentence, error.position, error.tag, f"{error.reason} in the {which} tags", error.fix) from None


def _check_lengths(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(predicted)} predicted sentences for {len(gold)} gold sentences; "
                         "give one predicted tag sequence per gold sentence")
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"sentence {index} (0-based): {len(predicted_tags)} predicted tags for "
                             f"{len(gold_tags)} gold tags; give one predicted tag per word")


def entity_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], scheme: str,
                   predicted_scheme: str | None = None) -> dict[str, Any]:
    """Entity precision, recall and F1 (micro, as conlleval computes them) with their details, JSON-ready.

    ``gold`` and ``predicted`` hold one list of tags per sentence, of the same
    lengths; ``predicted_scheme`` (default ``scheme``) is the scheme of the
    predictions, since entities, not tags, are compared. Scores are fractions;
    one with nothing to count is 0.0. ``token_accuracy`` compares tags as given
    when both use one scheme (what conlleval reports), else the predictions
    converted to the gold scheme. ``macro_f1`` averages the per-type F1 over the
    types found in gold or predictions. ``confusion`` counts, for each gold
    entity, the type predicted over exactly its span (``"none"`` when no
    predicted entity has it), and in its ``"none"`` row the predicted entities
    whose span no gold entity has. ``errors`` lists the sentences with the most
    missed plus spurious entities.

    >>> m = entity_metrics([["I-PER", "I-PER", "O"]], [["B-PER", "E-PER", "O"]], "iob1", predicted_scheme="bioes")
    >>> m["f1"], m["token_accuracy"], m["per_type"]["PER"]["support"]
    (1.0, 1.0, 1)
    >>> m = entity_metrics([["B-PER", "O"]], [["B-LOC", "B-PER"]], "iob2")
    >>> m["confusion"]
    {'labels': ['LOC', 'PER', 'none'], 'matrix': [[0, 0, 0], [1, 0, 0], [0, 1, 0]]}
    >>> m["errors"]
    [{'sentence': 0, 'missed': [['PER', 0, 1]], 'spurious': [['LOC', 0, 1], ['PER', 1, 2]]}]
    """
    check_scheme(scheme)
    predicted_scheme = check_scheme(predicted_scheme or scheme)
    _check_lengths(gold, predicted)

    gold_count: dict[str, int] = {}
    predicted_count: dict[str, int] = {}
    correct_count: dict[str, int] = {}
    # (gold type, predicted type or None) -> count, over gold entities; spurious spans by predicted type.
    span_pairs: dict[tuple[str, str | None], int] = {}
    unmatched_spans: dict[str, int] = {}
    errors = []
    same_tags = words = 0
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        gold_entities = _sentence_entities(gold_tags, scheme, index, "gold")
        predicted_entities = _sentence_entities(predicted_tags, predicted_scheme, index, "predicted")
        if predicted_scheme != scheme:
            predicted_tags = convert(predicted_tags, predicted_scheme, scheme)
        same_tags += sum(g == p for g, p in zip(gold_tags, predicted_tags))
        words += len(gold_tags)

        gold_set, predicted_set = set(gold_entities), set(predicted_entities)
        predicted_by_span = {(start, end): kind for kind, start, end in predicted_entities}
        gold_spans = {(start, end) for _, start, end in gold_entities}
        for kind, start, end in gold_entities:
            gold_count[kind] = gold_count.get(kind, 0) + 1
            pair = (kind, predicted_by_span.get((start, end)))
            span_pairs[pair] = span_pairs.get(pair, 0) + 1
        for kind, start, end in predicted_entities:
            predicted_count[kind] = predicted_count.get(kind, 0) + 1
            if (kind, start, end) in gold_set:
                correct_count[kind] = correct_count.get(kind, 0) + 1
            if (start, end) not in gold_spans:
                unmatched_spans[kind] = unmatched_spans.get(kind, 0) + 1
        missed = [list(entity) for entity in gold_entities if entity not in predicted_set]
        spurious = [list(entity) for entity in predicted_entities if entity not in gold_set]
        if missed or spurious:
            errors.append({"sentence": index, "missed": missed, "spurious": spurious})

    types = sorted(set(gold_count) | set(predicted_count))
    per_type = {}
    for kind in types:
        precision = _ratio(correct_count.get(kind, 0), predicted_count.get(kind, 0))
        recall = _ratio(correct_count.get(kind, 0), gold_count.get(kind, 0))
        per_type[kind] = {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
                          "support": gold_count.get(kind, 0), "predicted": predicted_count.get(kind, 0)}

    total_gold, total_predicted = sum(gold_count.values()), sum(predicted_count.values())
    total_correct = sum(correct_count.values())
    precision, recall = _ratio(total_correct, total_predicted), _ratio(total_correct, total_gold)
    # Most errors first; sorted() keeps sentence order among equals.
    worst = sorted(errors, key=lambda row: -(len(row["missed"]) + len(row["spurious"])))[:MAX_ERROR_SENTENCES]
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "macro_f1": sum(stats["f1"] for stats in per_type.values()) / len(types) if types else 0.0,
        "token_accuracy": _ratio(same_tags, words),
        "entities": total_gold,
        "predicted_entities": total_predicted,
        "correct_entities": total_correct,
        "sentences": len(gold),
        "words": words,
        "scheme": scheme,
        "per_type": per_type,
        "confusion": _confusion(types, span_pairs, unmatched_spans),
        "errors": worst,
    }


def _confusion(types: list[str], span_pairs: dict, unmatched_spans: dict[str, int]) -> dict[str, Any]:
    labels = [*types, NO_ENTITY]
    column = {kind: number for number, kind in enumerate(types)}
    column[None] = len(types)
    matrix = [[0] * len(labels) for _ in labels]
    for (gold_type, predicted_type), count in span_pairs.items():
        matrix[column[gold_type]][column[predicted_type]] += count
    for predicted_type, count in unmatched_spans.items():
        matrix[-1][column[predicted_type]] += count
    return {"labels": labels, "matrix": matrix}


def summary_line(metrics: dict[str, Any]) -> str:
    """The headline of :func:`entity_metrics` in one line for the terminal.

    >>> summary_line({"f1": 0.412, "precision": 0.503, "recall": 0.349, "entities": 1079, "token_accuracy": 0.943})
    'entity F1 0.412 (P 0.503 R 0.349), 1079 entities, token accuracy 0.943'
    """
    return (f"entity F1 {metrics['f1']:.3f} (P {metrics['precision']:.3f} R {metrics['recall']:.3f}), "
            f"{metrics['entities']} entities, token accuracy {metrics['token_accuracy']:.3f}")
