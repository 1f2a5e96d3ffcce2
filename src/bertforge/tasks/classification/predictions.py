"""Sentence classification's predictions written out: CSV with a probability column per label, or JSONL."""

from __future__ import annotations

import csv
import json
import sys

from bertforge.data.labeled import LabeledData


def write_predictions(data: LabeledData, rows: list[dict], output: str | None) -> None:
    """CSV (``text,label,p_<label>...``) or JSONL, chosen by the output's extension."""
    as_csv = output is not None and output.lower().endswith((".csv", ".tsv"))
    handle = sys.stdout if output is None else open(output, "w", encoding="utf-8", newline="")
    try:
        if as_csv:
            writer = csv.writer(handle, delimiter="\t" if output.lower().endswith(".tsv") else ",")
            names = list(rows[0].get("probabilities", {})) if rows else []
            writer.writerow(["text", "label"] + [f"p_{name}" for name in names])
            for text, row in zip(data.texts, rows):
                label = row["label"]
                label = "|".join(label) if isinstance(label, list) else label
                writer.writerow([text, label] + [row["probabilities"][name] for name in names])
        else:
            for text, row in zip(data.texts, rows):
                handle.write(json.dumps({"text": text, **row}, ensure_ascii=False) + "\n")
    finally:
        if handle is not sys.stdout:
            handle.close()
