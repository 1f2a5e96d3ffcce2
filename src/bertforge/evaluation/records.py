"""Run records as tables and plots read them: which values are numbers, and the sweep's order.

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
