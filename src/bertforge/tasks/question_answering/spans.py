"""From start and end logits over a passage's windows to its best answers, as character spans.

A span is a start piece and an end piece of the passage inside one window, the end not
before the start and at most ``max_answer_length`` pieces on; its score is the sum of
the two logits. Only spans a window holds whole are scored, so an answer that crosses
one window's edge is found in the next window, which holds it. The same span found in
two windows keeps its better score. A passage's no-answer score is the lowest
``[CLS]`` start + end over its windows (the window most sure an answer is there).

:func:`best_spans` gives, per question, an array of ``1 + n_best`` rows ``(score,
start, end)``: the no-answer score first (with -1 offsets), then the best spans by score
(``-inf`` rows where there are fewer). It is what the task's ``fold`` returns.

>>> start = np.array([[0.0, -9, -9, 5.0, 1.0, -9]]); end = np.array([[0.0, -9, -9, 1.0, 4.0, -9]])
>>> offsets = np.array([[[-1, -1], [-1, -1], [-1, -1], [0, 3], [4, 9], [-1, -1]]])
>>> best_spans(start, end, offsets, np.array([0]), 1, n_best=2, max_answer_length=30)[0].tolist()
[[0.0, -1.0, -1.0], [9.0, 0.0, 9.0], [6.0, 0.0, 3.0]]
"""

from __future__ import annotations

import numpy as np

NO_SPAN = (-np.inf, -1.0, -1.0)


def best_spans(start_logits: np.ndarray, end_logits: np.ndarray, char_offsets: np.ndarray, owner: np.ndarray,
               examples: int, n_best: int = 20, max_answer_length: int = 30) -> np.ndarray:
    """``(examples, 1 + n_best, 3)`` float64: per question its no-answer score, then its
    ``n_best`` best spans ``(score, start character, end character)`` over all windows."""
    found: list[dict[tuple[int, int], float]] = [{} for _ in range(examples)]
    null = np.full(examples, np.inf)
    for row in range(len(start_logits)):
        example = int(owner[row])
        null[example] = min(null[example], float(start_logits[row, 0] + end_logits[row, 0]))
        positions = np.flatnonzero(char_offsets[row, :, 0] >= 0)
        if not len(positions):
            continue
        starts, ends = start_logits[row, positions], end_logits[row, positions]
        # Only the n_best best starts and ends can make the n_best best spans.
        top_starts = _top(starts, n_best)
        top_ends = _top(ends, n_best)
        length = top_ends[None, :] - top_starts[:, None]
        valid = (length >= 0) & (length < max_answer_length)
        scores = starts[top_starts][:, None] + ends[top_ends][None, :]
        spans = found[example]
        for i, j in zip(*np.nonzero(valid)):
            first, last = positions[top_starts[i]], positions[top_ends[j]]
            key = (int(char_offsets[row, first, 0]), int(char_offsets[row, last, 1]))
            score = float(scores[i, j])
            if score > spans.get(key, -np.inf):
                spans[key] = score
    result = np.empty((examples, 1 + n_best, 3), dtype=np.float64)
    result[:] = NO_SPAN
    for example, spans in enumerate(found):
        result[example, 0] = (null[example] if np.isfinite(null[example]) else -np.inf, -1, -1)
        ranked = sorted(spans.items(), key=lambda item: (-item[1], item[0]))[:n_best]
        for rank, ((start, end), score) in enumerate(ranked, start=1):
            result[example, rank] = (score, start, end)
    return result


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest values (all of them when fewer), in no set order."""
    if len(values) <= count:
        return np.arange(len(values))
    return np.argpartition(-values, count - 1)[:count]


def answers_of(spans: np.ndarray, context: str, threshold: float | None) -> dict:
    """One question's prediction from its :func:`best_spans` rows: the best span's text
    (exactly as the passage writes it), offsets and score, ``probability`` (softmax over
    the candidates, no answer included when ``threshold`` is not None) and ``n_best``.

    With a ``threshold`` (questions may have no answer), the answer is empty when the
    no-answer score beats the best span's by more than it (``null_score_diff``).

    >>> rows = np.array([[1.0, -1, -1], [3.0, 0, 3], [-np.inf, -1, -1]])
    >>> answer = answers_of(rows, "Ann came.", threshold=None)
    >>> answer["answer"], answer["start"], answer["end"], answer["probability"]
    ('Ann', 0, 3, 1.0)
    >>> answers_of(rows, "Ann came.", threshold=-3.0)["answer"]
    ''
    """
    candidates = [(float(score), int(start), int(end)) for score, start, end in spans[1:] if np.isfinite(score)]
    null_score = float(spans[0, 0])
    scores = np.array([score for score, _, _ in candidates] + ([null_score] if threshold is not None else []))
    probabilities = np.exp(scores - scores.max()) if len(scores) else scores
    probabilities = probabilities / probabilities.sum() if len(scores) else probabilities
    best = [{"text": context[start:end], "start": start, "end": end, "score": round(score, 6),
             "probability": round(float(p), 6)} for (score, start, end), p in zip(candidates, probabilities)]
    prediction = {"answer": "", "start": None, "end": None, "score": None, "probability": None}
    if best:
        prediction.update({"answer": best[0]["text"], "start": best[0]["start"], "end": best[0]["end"],
                           "score": best[0]["score"], "probability": best[0]["probability"]})
    if threshold is not None:
        difference = null_score - candidates[0][0] if candidates else np.inf
        prediction["null_score_diff"] = round(float(difference), 6) if np.isfinite(difference) else None
        if difference > threshold:
            prediction.update({"answer": "", "start": None, "end": None, "score": round(null_score, 6),
                               "probability": round(float(probabilities[-1]), 6)})
    prediction["n_best"] = best
    return prediction
