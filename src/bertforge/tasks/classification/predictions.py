"""Sentence classification's predictions written out: CSV with a probability column per label, or JSONL."""

from __future__ import annotations

import csv
import json
import sys

from bertforge.data.labeled import LabeledData


def write_predictions(data: LabeledData, rows: list[dict], output: str | None) -> None:
    """CSV (``text[,<pair column>],label,p_<label>...``) or JSONL, chosen by the output's extension.

    The second texts of pairs are written under the column they were read from (``text_pair``
    where the source names no columns, or its name is one the output uses already).

    >>> import contextlib, io
    >>> pairs = LabeledData(["A dog runs."], None, ["An animal moves."], [2], "nli.csv", text_pair_column="hypothesis")
    >>> out = io.StringIO()
    >>> with contextlib.redirect_stdout(out):
    ...     write_predictions(pairs, [{"label": "entailment"}], None)
    >>> out.getvalue()
    '{"text": "A dog runs.", "hypothesis": "An animal moves.", "label": "entailment"}\\n'
    """
    as_csv = output is not None and output.lower().endswith((".csv", ".tsv"))
    names = list(rows[0].get("probabilities", {})) if rows else []
    pair_key = _pair_key(data, names)
    pairs = data.text_pairs if data.text_pairs is not None else [None] * len(data.texts)
    handle = sys.stdout if output is None else open(output, "w", encoding="utf-8", newline="")
    try:
        if as_csv:
            writer = csv.writer(handle, delimiter="\t" if output.lower().endswith(".tsv") else ",")
            writer.writerow(["text", *([pair_key] if pair_key else []), "label"] + [f"p_{name}" for name in names])
            for text, pair, row in zip(data.texts, pairs, rows):
                label = row["label"]
                label = "|".join(label) if isinstance(label, list) else label
                writer.writerow([text, *([pair] if pair_key else []), label]
                                + [row["probabilities"][name] for name in names])
        else:
            for text, pair, row in zip(data.texts, pairs, rows):
                texts = {"text": text, **({pair_key: pair} if pair_key else {})}
                handle.write(json.dumps({**texts, **row}, ensure_ascii=False) + "\n")
    finally:
        if handle is not sys.stdout:
            handle.close()


def _pair_key(data: LabeledData, labels: list[str]) -> str | None:
    """The name the second texts are written under, or None when there are none."""
    if data.text_pairs is None:
        return None
    taken = {"text", "label", "probabilities", *(f"p_{name}" for name in labels)}
    name = data.text_pair_column
    return name if name and name.strip() and name not in taken else "text_pair"
