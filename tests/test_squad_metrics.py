"""Exact match and F1 by the official SQuAD scripts' rules, worked by hand: the
normalisation, the word-bag F1, the maximum over references, the v1.1 and v2.0 edge
cases, the HasAns/NoAns splits and the no-answer threshold search."""

from __future__ import annotations

import numpy as np
import pytest

from bertforge.tasks.question_answering.metrics import (
    best_threshold,
    exact_match,
    f1_score,
    normalize_answer,
    question_scores,
    squad_scores,
)


@pytest.mark.parametrize("text, expected", [
    ("The  Denver Broncos!", "denver broncos"),
    ("A.B.C. an apple", "abc apple"),  # punctuation goes before articles: "a.b.c." is one word
    ("theatre, then THE end", "theatre then end"),  # articles only as whole words
    ("  \t(1,000)\n", "1000"),
    ("Café «Zürich»", "café «zürich»"),  # only ASCII punctuation is removed, as the script does
])
def test_normalisation_is_the_scripts(text, expected):
    assert normalize_answer(text) == expected


def test_f1_is_the_word_bag_overlap():
    # p = 2/3, r = 1 -> 0.8; "the" is dropped before counting
    assert f1_score("Denver Broncos team", "the Denver Broncos") == pytest.approx(0.8)
    # repeated words count as many times as both sides have them: common = 1 x + 1 y
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert f1_score("Carolina", "Denver Broncos") == 0.0
    assert exact_match("the Broncos.", "Broncos") == 1.0


def test_each_question_scores_its_best_reference():
    assert question_scores("Denver", ["Denver Broncos", "Broncos", "denver!"]) == (1.0, 1.0)
    exact, f1 = question_scores("the Denver team", ["Denver Broncos", "Broncos"])
    assert exact == 0.0 and f1 == pytest.approx(0.5)  # against "Denver Broncos": p = r = 1/2


def test_v1_and_v2_differ_where_the_scripts_do():
    # A reference that normalises to nothing: v1.1 keeps it (EM 1 for an empty answer, F1 0),
    # v2.0 drops it, so the question has no answer and the empty answer scores 1 and 1.
    assert question_scores("", ["the"], version="1.1") == (1.0, 0.0)
    assert question_scores("", ["the"], version="2.0") == (1.0, 1.0)
    assert question_scores("Broncos", ["the"], version="2.0") == (0.0, 0.0)
    assert f1_score("", "Broncos", version="2.0") == 0.0 and f1_score("", "", version="2.0") == 1.0


def test_totals_are_percentages_with_has_answer_and_no_answer_splits():
    references = [["Denver Broncos"], ["Carolina Panthers", "Panthers"], [], []]
    predictions = ["Denver Broncos", "the Panthers team", "", "Santa Clara"]
    scores = squad_scores(references, predictions, version="2.0", worst=10)
    # EM: 1, 0, 1, 0; F1: 1, 2/3 (against "Panthers": p = 1/2, r = 1), 1, 0
    assert scores["exact_match"] == pytest.approx(50.0) and scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0) / 4)
    assert scores["has_answer_total"] == 2 and scores["has_answer_exact_match"] == pytest.approx(50.0)
    assert scores["has_answer_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert scores["no_answer_total"] == 2 and scores["no_answer_exact_match"] == pytest.approx(50.0)
    assert [error["question"] for error in scores["errors"]] == [3, 1]  # worst first, perfect ones left out
    v1 = squad_scores([["Denver Broncos"], ["Panthers"]], ["Denver", "Panthers"])
    assert v1["version"] == "1.1" and v1["exact_match"] == 50.0 and v1["f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert "has_answer_f1" not in v1


def test_the_no_answer_threshold_search_walks_the_differences_from_the_lowest():
    # Question 0 has an answer (scored 1.0 when answered), 1 none, 2 an answer scored 0.5, 3 none.
    answered = np.array([1.0, 0.0, 0.5, 0.0])
    answerable = np.array([True, False, True, False])
    diffs = np.array([-3.0, 2.0, 1.0, -1.0])
    # Answering nothing: 2 of 4. In order -3 (+1: 3), -1 (-1: 2), 1 (+0.5: 2.5), 2 (-1: 1.5).
    best, threshold = best_threshold(answered, diffs, answerable)
    assert (best, threshold) == (75.0, -3.0)
    scores = squad_scores([["Paris"], [], ["big city"], []], ["Paris", "x", "big", "y"], version="2.0",
                          no_answer_diffs=diffs.tolist(), answers=["Paris", "x", "big", "y"])
    assert scores["best_exact_match"] == 75.0 and scores["best_exact_match_threshold"] == -3.0
    # F1 of question 2 answered is 2/3 ("big" against "big city"): 2 -> 3 -> 2 -> 2.667 -> 1.667
    assert scores["best_f1"] == 75.0 and scores["best_f1_threshold"] == -3.0
