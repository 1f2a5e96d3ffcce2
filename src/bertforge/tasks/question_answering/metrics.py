"""Exact match and F1 of answers, by the rules of the official SQuAD evaluation scripts.

An answer and a reference are compared after normalisation: lower case, punctuation
removed, the articles *a*, *an*, *the* removed, white space collapsed. Exact match is
1 when the two are equal; F1 is the harmonic mean of precision and recall over their
words (as a bag). Each question scores the maximum over its references, and the
totals are percentages, as the scripts print them.

The two releases differ at the edges, and :func:`squad_scores` follows each:

- **v1.1** (``evaluate-v1.1.py``): every reference counts; an F1 with no word in common
  is 0, so an empty answer never scores F1 against anything.
- **v2.0** (``evaluate-v2.0.py``): references that normalise to nothing are left out,
  and a question left with none is unanswerable, whose only reference is the empty
  answer; when either side has no words, F1 is 1 if both are empty and 0 otherwise.
  Scores are also given for the questions with an answer (``has_answer_*``) and
  without (``no_answer_*``).

>>> normalize_answer("The  Denver Broncos!")
'denver broncos'
>>> round(f1_score("the Broncos of Denver", "Denver Broncos"), 4)
0.8
>>> scores = squad_scores([["Denver Broncos", "The Broncos"], []], ["Broncos team", ""], version="2.0")
>>> scores["exact_match"], scores["f1"], scores["has_answer_f1"], scores["no_answer_exact_match"]
(50.0, 83.33333333333333, 66.66666666666666, 100.0)
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any, Sequence

import numpy as np

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the scripts' order)."""
    text = "".join(character for character in text.lower() if character not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the two are equal after normalisation."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1_score(prediction: str, reference: str, version: str = "1.1") -> float:
    """The word-overlap F1 of one prediction against one reference.

    >>> f1_score("", "", version="1.1"), f1_score("", "", version="2.0"), f1_score("a", "the", version="2.0")
    (0.0, 1.0, 1.0)
    """
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if version == "2.0" and (not predicted or not expected):
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def question_scores(prediction: str, references: Sequence[str], version: str = "1.1") -> tuple[float, float]:
    """``(exact match, F1)`` of one answer: the best over the question's references.

    >>> question_scores("Denver", ["Denver Broncos", "Denver"])
    (1.0, 1.0)
    """
    if version == "2.0":
        references = [reference for reference in references if normalize_answer(reference)] or [""]
    elif not references:
        references = [""]
    return (max(exact_match(prediction, reference) for reference in references),
            max(f1_score(prediction, reference, version) for reference in references))


def squad_scores(references: Sequence[Sequence[str]], predictions: Sequence[str], version: str = "1.1",
                 worst: int = 0, no_answer_diffs: Sequence[float] | None = None,
                 answers: Sequence[str] | None = None) -> dict[str, Any]:
    """The official totals over all questions (percentages), and for v2.0 the splits by
    whether a question has an answer. ``worst`` > 0 lists that many misses, lowest F1
    first (``errors``: question index, prediction, references, scores).

    With ``no_answer_diffs`` (each question's no-answer score minus its best answer's)
    and ``answers`` (the best non-empty answers), v2.0 also finds the threshold on that
    difference above which answering nothing scores best: ``best_f1`` and
    ``best_f1_threshold``, ``best_exact_match`` and ``best_exact_match_threshold``.
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} questions")
    pairs = [question_scores(prediction, refs, version) for prediction, refs in zip(predictions, references)]
    exact = np.array([pair[0] for pair in pairs])
    f1 = np.array([pair[1] for pair in pairs])
    result: dict[str, Any] = {"exact_match": _percent(exact), "f1": _percent(f1), "total": len(pairs),
                              "version": version}
    if version == "2.0":
        answerable = np.array([bool([r for r in refs if normalize_answer(r)]) for refs in references], dtype=bool)
        for name, rows in (("has_answer", answerable), ("no_answer", ~answerable)):
            result[f"{name}_exact_match"] = _percent(exact[rows]) if rows.any() else None
            result[f"{name}_f1"] = _percent(f1[rows]) if rows.any() else None
            result[f"{name}_total"] = int(rows.sum())
        if no_answer_diffs is not None and answers is not None:
            for metric, index in (("exact_match", 0), ("f1", 1)):
                answered = np.array([question_scores(answer, refs, version)[index]
                                     for answer, refs in zip(answers, references)])
                best, threshold = best_threshold(answered, np.asarray(no_answer_diffs, dtype=float), answerable)
                result[f"best_{metric}"], result[f"best_{metric}_threshold"] = best, threshold
    if worst:
        order = sorted(range(len(pairs)), key=lambda i: (f1[i], exact[i], i))
        result["errors"] = [{"question": i, "prediction": predictions[i], "references": list(references[i]),
                             "exact_match": float(exact[i]), "f1": float(f1[i])}
                            for i in order[:worst] if f1[i] < 1.0]
    return result


def best_threshold(answered: np.ndarray, no_answer_diffs: np.ndarray, answerable: np.ndarray) -> tuple[float, float]:
    """The best total (percent) and its threshold when a question gets no answer where its
    no-answer difference is above the threshold and its best answer otherwise, as
    ``find_best_thresh`` of the v2.0 script searches it: the thresholds tried are the
    differences themselves, from the lowest, starting from answering nothing.

    ``answered``: each question's score when answered; ``answerable``: whether it has an
    answer (an empty answer scores 1 exactly where it has none).

    >>> best_threshold(np.array([1.0, 0.0, 1.0]), np.array([-2.0, 3.0, 0.5]), np.array([True, False, True]))
    (100.0, 0.5)
    """
    if not len(answered):
        return 0.0, 0.0
    score = best = float((~answerable).sum())  # nothing answered: every unanswerable question is right
    threshold = 0.0
    for index in np.argsort(no_answer_diffs, kind="stable"):
        score += answered[index] if answerable[index] else -1.0
        if score > best:
            best, threshold = score, float(no_answer_diffs[index])
    return 100.0 * float(best) / len(answered), threshold


def summary_line(metrics: dict[str, Any]) -> str:
    """The scores in one line for the terminal.

    >>> summary_line({"exact_match": 71.5, "f1": 80.25, "total": 200, "version": "1.1"})
    'exact match 71.50, F1 80.25 on 200 questions (SQuAD v1.1 rules)'
    """
    line = (f"exact match {metrics['exact_match']:.2f}, F1 {metrics['f1']:.2f} on {metrics['total']} questions "
            f"(SQuAD v{metrics['version']} rules)")
    if metrics.get("version") == "2.0":
        for name, label in (("has_answer", "with an answer"), ("no_answer", "without")):
            if metrics.get(f"{name}_total"):
                line += f"; {label}: EM {metrics[f'{name}_exact_match']:.2f}, F1 {metrics[f'{name}_f1']:.2f}"
        if metrics.get("best_f1") is not None:
            line += f"; best F1 {metrics['best_f1']:.2f} at no-answer threshold {metrics['best_f1_threshold']:.3f}"
    return line


def _percent(values: np.ndarray) -> float:
    return 100.0 * float(values.mean()) if len(values) else 0.0
