"""Run records as tables and plots read them: which values are numbers, which keys are
metrics, and the sweep's order.

A training history and a layer sweep are lists of dicts. Both the markdown
tables (:mod:`bertforge.evaluation.report`) and the figures
(:mod:`bertforge.evaluation.plots`) take from them only real numbers, and show
the sweep in order of fine-tuned layers.

>>> rows = [{"fine_tune_layers": "all", "accuracy": 0.9}, {"fine_tune_layers": "2", "accuracy": 0.8}]
>>> [row["fine_tune_layers"] for row in sorted_sweep_rows(rows, "accuracy")]
['2', 'all']
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from bertforge.errors import BertforgeError


def is_number(value) -> bool:
    """Whether ``value`` is an int or float (numpy's too), booleans excepted.

    >>> is_number(3), is_number(np.float32(0.5)), is_number(True), is_number("3")
    (True, True, False, False)
    """
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


# What a history row holds besides scores: counters, clocks and settings the loop logs
# (step, epoch, tokens, elapsed_s, learning_rate, val_num_examples, masked_tokens...).
# A key is one of these when its name, without a split prefix, is listed, or begins
# or ends with a listed part; every other numeric key is a metric (loss, accuracy, f1...).
SPLIT_PREFIXES = ("train_", "val_", "eval_", "test_")
_COUNTED = ("steps", "epochs", "tokens", "words", "entities", "sentences", "sequences", "examples", "samples",
            "batches", "rows", "total", "count", "size", "seconds", "threshold")
COUNTER_NAMES = frozenset(_COUNTED + ("step", "epoch", "support", "predicted", "elapsed", "time",
                                      "learning_rate", "lr"))
COUNTER_PREFIXES = ("num_", "n_", "total_")
COUNTER_SUFFIXES = tuple(f"_{name}" for name in _COUNTED) + ("_step", "_epoch", "_s", "_per_second")


def is_metric(key: str) -> bool:
    """Whether a history key scores the model (a curve to plot) rather than counts or times the run.

    >>> [key for key in ("train_loss", "val_accuracy", "val_macro_f1", "perplexity", "val_num_examples",
    ...                  "step", "epoch", "tokens", "tokens_per_second", "elapsed_s", "learning_rate",
    ...                  "val_masked_tokens", "val_correct_entities", "val_best_f1", "val_best_f1_threshold")
    ...  if is_metric(key)]
    ['train_loss', 'val_accuracy', 'val_macro_f1', 'perplexity', 'val_best_f1']
    """
    name = next((key[len(prefix):] for prefix in SPLIT_PREFIXES if key.startswith(prefix)), key)
    return not (name in COUNTER_NAMES or name.startswith(COUNTER_PREFIXES) or name.endswith(COUNTER_SUFFIXES))


def _layer_order(layers) -> tuple:
    text = str(layers)
    if text.isdigit():
        return (0, int(text), text)
    return (1 if text == "all" else 2, 0, text)


def sorted_sweep_rows(rows: Sequence[dict], metric: str, needed: tuple[str, ...] = ()) -> list[dict]:
    """The sweep's rows, checked to hold ``fine_tune_layers``, ``metric`` and ``needed``, in order
    of fine-tuned layers: numbers ascending, then ``"all"``, then any other setting."""
    if not rows:
        raise BertforgeError("the layer sweep has no results to show: run at least one setting")
    for index, row in enumerate(rows):
        missing = [key for key in ("fine_tune_layers", metric, *needed) if key not in row]
        if missing:
            raise BertforgeError(f"sweep row {index} lacks {', '.join(missing)}: every row needs "
                                 f"fine_tune_layers, {metric} and {', '.join(needed) or 'train_seconds'}")
    return sorted(rows, key=lambda row: _layer_order(row["fine_tune_layers"]))
