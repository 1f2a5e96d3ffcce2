r"""Labels: what kind they are (classes, several per row, numbers), checked, encoded and decoded.

The label kinds are named once here: :data:`TASKS` and their ``transformers``
names :data:`PROBLEM_TYPES`. :func:`detect_task` tells the kind from the labels,
:func:`validate_training_labels` checks that training labels can teach
something, and :class:`LabelEncoder`, fitted on the training labels only, turns
labels into the arrays a classifier trains on and class ids back into labels.

>>> import io
>>> from bertforge.data.labeled.read import read_labeled
>>> train = read_labeled(io.StringIO("text,label\ngreat film,pos\ndull,neg\nfun,pos\n"))
>>> encoder = LabelEncoder.fit(train)
>>> encoder.classes, encoder.encode(train).targets.tolist()
(('neg', 'pos'), [1, 0, 1])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn

import numpy as np

from bertforge.data.labeled.formats import as_number, is_missing
from bertforge.data.labeled.messages import fail, listing, places, show
from bertforge.data.labeled.read import LabeledData
from bertforge.errors import BertforgeError

TASKS = ("classification", "multi_label", "regression")
# The same tasks under the names transformers' config.json gives them (``problem_type``).
PROBLEM_TYPES = {"classification": "single_label_classification", "multi_label": "multi_label_classification",
                 "regression": "regression"}

# Numeric labels: classes or a score? Up to FEW_INTEGER_CLASSES distinct whole numbers are
# classes (0/1, 1-5 stars, grades 0-9). More of them stay classes while they read as class
# ids, counted from 0 or 1 and filling at least half of that range (intent sets such as
# Banking77 have 77), and up to MAX_INTEGER_CLASSES; otherwise (ages 18-90, years, prices)
# they are a score. Numbers written with a decimal point or an exponent ("10.0", "1e3") are
# a score too, unless there are only two (the "0.0"/"1.0" pandas writes for a 0/1 column
# that had a gap in it).
FEW_INTEGER_CLASSES = 10
MAX_INTEGER_CLASSES = 100


# --------------------------------------------------------------------------- label kinds


def _is_multi(value) -> bool:
    return isinstance(value, (tuple, list, set, frozenset, np.ndarray))


def detect_task(labels, label_separator: str | None = None, multi_columns: bool = False) -> str:
    """``"classification"``, ``"multi_label"`` or ``"regression"`` for these labels.

    Multi-label when several label columns were read (``multi_columns``, or
    rows holding tuples), or a separator splits labels; regression when every
    label is a number and the numbers read as a score: some are not whole, or are
    written as decimals (more than two values), or there are many distinct ones
    that are not class ids (see :data:`FEW_INTEGER_CLASSES`); classification
    otherwise. ``labels`` may be a :class:`LabeledData`; :func:`numbers_note` says
    the reading in words.

    >>> detect_task(["pos", "neg"]), detect_task(["0.5", "3"]), detect_task(["1", "2", "1"])
    ('classification', 'regression', 'classification')
    >>> detect_task(["10.0", "7.0", "3.0"]), detect_task(["0.0", "1.0"]), detect_task(list(map(str, range(18, 90))))
    ('regression', 'classification', 'regression')
    >>> detect_task(["sport|news", "news"], label_separator="|")
    'multi_label'
    """
    _check_separator(label_separator)
    if isinstance(labels, LabeledData):
        multi_columns = multi_columns or labels.label_names is not None
        labels = labels.labels or []
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        return "multi_label"
    if multi_columns or label_separator:
        return "multi_label"
    if any(_is_multi(label) for label in labels):
        return "multi_label"
    reading = _read_numbers(labels)
    return reading[0] if reading else "classification"


def _read_numbers(labels) -> tuple[str, str] | None:
    """``(task, what the labels are)`` when every label is a number; None otherwise."""
    # Look at each distinct label once: files have many rows but few labels.
    distinct = {label.item() if isinstance(label, np.generic) else label for label in labels} - {None}
    numbers = {as_number(label) for label in distinct}
    if not distinct or None in numbers:
        return None
    count = f"{len(numbers)} distinct value" + ("" if len(numbers) == 1 else "s")
    if any(not number.is_integer() for number in numbers):
        return "regression", f"numbers with {count}"
    if len(numbers) > 2 and any(_written_as_decimal(label) for label in distinct):
        return "regression", f"numbers written as decimals, {count}"
    if len(numbers) > MAX_INTEGER_CLASSES or (len(numbers) > FEW_INTEGER_CLASSES and not _class_ids(numbers)):
        return "regression", f"whole numbers with {count}"
    return "classification", f"whole numbers with {count}"


def _written_as_decimal(label) -> bool:
    """``10.0``, ``1e3`` or a float value: a measurement, where ``10`` may be a class id."""
    if isinstance(label, (float, np.floating)):
        return True
    return isinstance(label, str) and any(mark in label for mark in ".eE")


def _class_ids(numbers: set[float]) -> bool:
    """Whole numbers counted from 0 or 1 that fill at least half of their range (0..76)."""
    low, high = min(numbers), max(numbers)
    return low in (0.0, 1.0) and 2 * len(numbers) >= high - low + 1


def numbers_note(labels, label_separator: str | None = None, multi_columns: bool = False) -> str | None:
    """The line that says how numeric labels were read (classes or a score) and how to
    override it, as the column guess is said; None unless every label is a number.

    >>> numbers_note([f"{10 + i / 4}" for i in range(57)])
    'label: numbers with 57 distinct values, read as regression (--task classification overrides)'
    >>> numbers_note(["1", "5", "3", "4", "2"])
    'label: whole numbers with 5 distinct values, read as classes (--task regression overrides)'
    >>> numbers_note(["pos", "neg"]) is None
    True
    """
    task = detect_task(labels, label_separator, multi_columns)
    name = f"{labels.path}: " if isinstance(labels, LabeledData) else ""
    values = (labels.labels or []) if isinstance(labels, LabeledData) else labels
    reading = None if task == "multi_label" else _read_numbers(values)
    if reading is None:
        return None
    task, what = reading
    column = f" {show(labels.label_column)}" if isinstance(labels, LabeledData) and labels.label_column else ""
    read_as, other = ("regression", "classification") if task == "regression" else ("classes", "regression")
    return f"{name}label{column}: {what}, read as {read_as} (--task {other} overrides)"


@dataclass
class _Labels:
    """Labels with what a message needs: the source, and where each row was (a line or a row)."""

    values: list
    name: str
    lines: list[int] | None = None
    column: str | None = None
    label_names: list[str] | None = None
    unit: str = "line"

    @classmethod
    def of(cls, labels) -> "_Labels":
        if isinstance(labels, LabeledData):
            if labels.labels is None:
                fail(labels.path, None, "no label column was read", "add a label column or pass --label-column")
            return cls(list(labels.labels), labels.path, labels.lines, labels.label_column, labels.label_names,
                       labels.unit)
        return cls(list(labels.tolist() if isinstance(labels, np.ndarray) else labels), "labels")

    def where(self, row: int) -> str:
        return f"{self.unit} {self.lines[row]}" if self.lines is not None else f"item {row}"

    def places(self, rows: list[int]) -> str:
        """Where these rows are: ``lines 4 and 9`` (``items 3 and 8`` for a plain list)."""
        return places(self.unit, [self.lines[row] for row in rows]) if self.lines is not None else places("item", rows)

    def fail(self, row: int | None, what: str, fix: str) -> NoReturn:
        if row is not None and self.lines is None:
            fail(self.name, None, f"item {row}: {what}", fix)
        fail(self.name, None if row is None else self.lines[row], what, fix, self.unit)


def _split_label(label, separator: str | None) -> list[str]:
    if _is_multi(label):
        return [str(part).strip() for part in label if str(part).strip()]
    parts = str(label).split(separator) if separator else [str(label)]
    return [part.strip() for part in parts if part.strip()]


def sorted_classes(classes) -> list[str]:
    """Numeric labels in numeric order (2 before 10), others alphabetically: the same every run.

    >>> sorted_classes(["10", "2", "2"]), sorted_classes(["spam", "ham"])
    (['2', '10'], ['ham', 'spam'])
    """
    classes = [str(label) for label in set(classes)]
    if classes and all(as_number(label) is not None for label in classes):
        return sorted(classes, key=lambda label: (as_number(label), label))
    return sorted(classes)


def _check_separator(separator) -> None:
    if separator is not None and (not isinstance(separator, str) or not separator):
        raise BertforgeError(f"label_separator={separator!r} splits nothing; pass one or more characters, like '|'")


def _spells_infinity(label) -> bool:
    """A label that reads as a number but not a finite one (``inf``, ``-Infinity``)."""
    if _is_multi(label) or label is None or isinstance(label, bool):
        return False
    try:
        return not math.isfinite(float(str(label).strip()))
    except ValueError:
        return False


def _regression_target(source: _Labels, row: int) -> float:
    number = as_number(source.values[row])
    if number is None:
        column = f" (column {show(source.column)})" if source.column else ""
        kind = "a finite number" if _spells_infinity(source.values[row]) else "a number"
        source.fail(row, f"the label {show(source.values[row])}{column} is not {kind}",
                    "a regression task needs a number in every row: fix it, or choose another --label-column")
    return number


def _check_numbers_are_finite(source: _Labels) -> None:
    """Numeric labels with an infinity among them: name those rows, rather than make ``inf`` a
    class (or call many distinct numbers "texts")."""
    distinct = {label for label in source.values if not _is_multi(label)}
    infinite = {label for label in distinct if _spells_infinity(label)}
    if not infinite or any(as_number(label) is None for label in distinct - infinite):
        return
    rows = [row for row, label in enumerate(source.values) if label in infinite]
    shown = ", ".join(sorted(show(label) for label in infinite)[:5])
    fail(source.name, None, f"{source.places(rows)}: the label is not a finite number ({shown}), where the other "
         "labels are numbers", "write a number in those rows, or delete them")


def validate_training_labels(labels, task: str | None = None, label_separator: str | None = None) -> str:
    r"""Check that training labels can teach something; return the task.

    Every row needs a label; classification needs two classes or more,
    multi-label at least one label set somewhere, and regression numbers that
    are not all the same. ``labels`` is a :class:`LabeledData` (messages name
    its file and lines) or a plain list.

    >>> validate_training_labels(["spam", "ham"])
    'classification'
    >>> validate_training_labels(["ham", "ham"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: labels: every row from item 0 to item 1 has the label 'ham'; a classifier needs...
    """
    source = _Labels.of(labels)
    given = task
    task = task or detect_task(labels if isinstance(labels, LabeledData) else source.values, label_separator,
                               multi_columns=source.label_names is not None)
    _check_task(task)
    if not source.values:
        source.fail(None, "there are no rows", "add training examples")
    for row, label in enumerate(source.values):
        if is_missing(label):
            source.fail(row, "the label is missing", "every training row needs a label: fill it in or delete the row")
    if task == "classification" and given is None:
        _check_numbers_are_finite(source)
    if task == "regression":
        targets = {_regression_target(source, row) for row in range(len(source.values))}
        if len(targets) < 2:
            _fail_one_value(source, f"the number {show(source.values[0])}",
                            "a regression target must vary: check --label-column")
    elif task == "multi_label":
        if not any(_split_label(label, label_separator) for label in source.values):
            _fail_one_value(source, "no label set",
                            "a multi-label classifier needs rows with labels: check the label columns")
    else:
        classes = set(map(str, source.values))
        if len(classes) < 2:
            _fail_one_value(source, f"the label {show(source.values[0])}",
                            "a classifier needs at least two classes:"
                            " check --label-column or add examples of the other classes")
        if len(source.values) >= 20 and len(classes) > len(source.values) // 2:
            # Most rows with a label of their own: the label column holds the texts.
            source.fail(None, f"{len(classes)} different labels in {len(source.values)} rows look like texts, "
                              "not classes", "name the columns with --text-column and --label-column")
    return task


def _fail_one_value(source: _Labels, value: str, fix: str) -> NoReturn:
    last = len(source.values) - 1
    if source.lines:
        span = f"from {source.unit} {source.lines[0]} to {source.unit} {source.lines[last]}"
    else:
        span = f"from item 0 to item {last}"
    column = f" in column {show(source.column)}" if source.column else ""
    fail(source.name, None, f"every row {span} has {value}{column}", fix)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise BertforgeError(f"unknown task {show(task)}; pass one of {', '.join(TASKS)}")


# --------------------------------------------------------------------------- label encoding


class EncodedLabels(tuple):
    """``(targets, kept)`` from :meth:`LabelEncoder.encode`, with ``dropped`` and ``unseen``.

    ``targets`` are the arrays to train on, ``kept`` the row positions they belong
    to (``data.subset(kept)`` lines texts up with targets), ``dropped`` how many
    rows were left out and ``unseen`` how many rows each dropped label had
    (missing labels count under ``None``).
    """

    def __new__(cls, targets: np.ndarray, kept: np.ndarray, dropped: int = 0, unseen: dict | None = None):
        encoded = super().__new__(cls, (targets, kept))
        encoded.dropped = dropped
        encoded.unseen = unseen or {}
        return encoded

    @property
    def targets(self) -> np.ndarray:
        return self[0]

    @property
    def kept(self) -> np.ndarray:
        return self[1]


@dataclass(frozen=True)
class LabelEncoder:
    r"""Labels to training targets and back, fitted on the training labels only.

    ``classes`` are sorted (numbers numerically) so ids are the same every run;
    for 0/1 label columns they keep the file's column order. Regression has no
    classes but a scale: the mean and standard deviation of the training targets,
    which :meth:`standardize` takes out for training and :meth:`unstandardize`
    puts back into the head's outputs. ``to_dict``/``from_dict`` store it in a model's ``bertforge.json``;
    ``id2label``/``label2id``/``num_labels``/``problem_type`` are the fields a
    ``config.json`` wants.

    >>> encoder = LabelEncoder.fit(["spam", "ham", "ham"])
    >>> encoder.id2label, encoder.decode([1, 0])
    ({0: 'ham', 1: 'spam'}, ['spam', 'ham'])
    >>> LabelEncoder.from_dict(encoder.to_dict()) == encoder
    True
    >>> tags = LabelEncoder.fit(["a|b", "b"], label_separator="|")
    >>> tags.task, tags.encode(["b|a", "a"]).targets.tolist()
    ('multi_label', [[1.0, 1.0], [1.0, 0.0]])
    >>> scores = LabelEncoder.fit(["8.0", "10.0", "12.0"])
    >>> scores.target_mean, round(scores.target_std, 3), [round(float(v), 2) for v in scores.standardize([8.0, 12.0])]
    (10.0, 1.633, [-1.22, 1.22])
    """

    task: str
    classes: tuple[str, ...] = ()
    label_separator: str | None = None
    # Regression: what standardize() takes out of the targets. The defaults leave values as they
    # are, which is how a model saved without a scale was trained.
    target_mean: float = 0.0
    target_std: float = 1.0

    def __post_init__(self):
        _check_task(self.task)
        _check_separator(self.label_separator)
        object.__setattr__(self, "classes", tuple(self.classes))
        if not (math.isfinite(self.target_mean) and math.isfinite(self.target_std) and self.target_std > 0):
            raise BertforgeError(f"the target scale (mean {self.target_mean!r}, std {self.target_std!r}) is not a"
                                 " finite mean and a positive standard deviation; re-save the model with bertforge")

    @classmethod
    def fit(cls, labels, task: str | None = None, label_separator: str | None = None) -> "LabelEncoder":
        """Learn the classes of training ``labels`` (a :class:`LabeledData` or a list).

        ``task`` defaults to :func:`detect_task`. The labels are first checked
        with :func:`validate_training_labels`.
        """
        source = _Labels.of(labels)
        task = validate_training_labels(labels if isinstance(labels, LabeledData) else source.values,
                                        task, label_separator)
        if task == "regression":
            return cls(task, **_target_scale([_regression_target(source, row) for row in range(len(source.values))]))
        if task == "multi_label":
            if source.label_names is not None:
                return cls(task, tuple(source.label_names))
            found = {part for label in source.values for part in _split_label(label, label_separator)}
            return cls(task, tuple(sorted_classes(found)), label_separator)
        return cls(task, tuple(sorted_classes(map(str, source.values))))

    @cached_property
    def label2id(self) -> dict[str, int]:
        if self.task == "regression":
            return {"LABEL_0": 0}
        return {label: index for index, label in enumerate(self.classes)}

    @cached_property
    def id2label(self) -> dict[int, str]:
        return {index: label for label, index in self.label2id.items()}

    @property
    def num_labels(self) -> int:
        """Output width of the classifier head: 1 for regression."""
        return 1 if self.task == "regression" else len(self.classes)

    @property
    def problem_type(self) -> str:
        """The ``transformers`` name of the task, for ``config.json``."""
        return PROBLEM_TYPES[self.task]

    def standardize(self, targets: np.ndarray) -> np.ndarray:
        """Regression targets on the scale the head learns (mean 0, standard deviation 1 over
        the training targets); other tasks' targets unchanged."""
        if self.task != "regression":
            return targets
        return ((np.asarray(targets, dtype=np.float64) - self.target_mean) / self.target_std).astype(np.float32)

    def unstandardize(self, outputs: np.ndarray) -> np.ndarray:
        """The head's regression outputs back on the targets' own scale, in float64 (a mean of
        1e6 would lose its decimals in float32); other tasks' outputs unchanged."""
        if self.task != "regression":
            return outputs
        return np.asarray(outputs, dtype=np.float64) * self.target_std + self.target_mean

    def encode(self, data, unknown: str = "error") -> EncodedLabels:
        """Targets for ``data`` (a :class:`LabeledData` or a list of labels).

        Classification gives int64 class ids ``(n,)``, multi-label float32 multi-hot
        ``(n, num_labels)``, regression float32 ``(n,)``. A label training never saw
        (or a missing one) raises one line listing up to five such labels with the
        line of each first occurrence, unless ``unknown="drop"``: then those rows
        are left out, and the result's ``kept``, ``dropped`` and ``unseen`` say which.
        A label that is not a number in a regression task always raises.
        """
        if unknown not in ("error", "drop"):
            raise BertforgeError(f"unknown={show(unknown)} is not a choice; pass 'error' or 'drop'")
        source = _Labels.of(data)
        kept, first_row, rows_per_label = [], {}, {}
        for row, label in enumerate(source.values):
            unseen = self._unseen_in(label)
            for key in unseen:
                first_row.setdefault(key, row)
                rows_per_label[key] = rows_per_label.get(key, 0) + 1
            if not unseen:
                kept.append(row)
        if first_row and unknown == "error":
            self._fail_unseen(source, first_row)
        targets = self._targets(source, kept)
        return EncodedLabels(targets, np.array(kept, dtype=np.int64), len(source.values) - len(kept), rows_per_label)

    def _unseen_in(self, label) -> list:
        """Labels in this row that training never saw; ``[None]`` for a missing label."""
        if label is None:
            return [None]
        if self.task == "regression":
            return []
        if self.task == "classification":
            return [] if str(label) in self.label2id else [str(label)]
        return [part for part in _split_label(label, self.label_separator) if part not in self.label2id]

    def _targets(self, source: _Labels, rows: list[int]) -> np.ndarray:
        values = source.values
        if self.task == "regression":
            return np.array([_regression_target(source, row) for row in rows], dtype=np.float32)
        if self.task == "classification":
            return np.array([self.label2id[str(values[row])] for row in rows], dtype=np.int64)
        multi_hot = np.zeros((len(rows), len(self.classes)), dtype=np.float32)
        for position, row in enumerate(rows):
            multi_hot[position, [self.label2id[part] for part in _split_label(values[row], self.label_separator)]] = 1.0
        return multi_hot

    def _fail_unseen(self, source: _Labels, first_rows: dict) -> NoReturn:
        if None in first_rows:
            source.fail(first_rows[None], "the label is missing",
                        "fill it in, or pass --unknown-labels drop to skip rows without a label")
        shown = [f"{show(label)} ({source.where(row)})" for label, row in list(first_rows.items())[:5]]
        more = f" and {len(first_rows) - 5} more" if len(first_rows) > 5 else ""
        count = f"{len(first_rows)} label" + ("" if len(first_rows) == 1 else "s")
        fail(source.name, None, f"{count} never seen in training: {', '.join(shown)}{more}"
              f" (training had {listing(list(self.classes))})",
              "fix them, or pass --unknown-labels drop to skip those rows")

    def decode(self, ids, threshold: float = 0.5) -> list:
        """Labels for class ids; multi-label takes ``(n, k)`` scores and gives tuples of labels
        scoring at least ``threshold``; regression returns the floats unchanged."""
        values = np.asarray(ids)
        if self.task == "regression":
            return [float(value) for value in values.reshape(-1)]
        if self.task == "multi_label":
            return [tuple(self.classes[k] for k in np.flatnonzero(row >= threshold)) for row in np.atleast_2d(values)]
        out_of_range = values[(values < 0) | (values >= len(self.classes))]
        if out_of_range.size:
            raise BertforgeError(f"class id {int(out_of_range[0])} is out of range; this encoder has"
                                 f" {len(self.classes)} classes (ids 0 to {len(self.classes) - 1})")
        return [self.classes[int(value)] for value in values.reshape(-1)]

    def to_dict(self) -> dict:
        """JSON-ready fields for ``bertforge.json`` (and ``config.json``: string keys in ``id2label``)."""
        scale = {"target_mean": self.target_mean, "target_std": self.target_std} if self.task == "regression" else {}
        return {"task": self.task, "classes": list(self.classes), "label_separator": self.label_separator,
                "num_labels": self.num_labels, "problem_type": self.problem_type,
                "id2label": {str(index): label for index, label in self.id2label.items()},
                "label2id": dict(self.label2id), **scale}

    @classmethod
    def from_dict(cls, saved: dict) -> "LabelEncoder":
        """The encoder saved by :meth:`to_dict`; also reads a ``config.json`` (``id2label``, ``problem_type``).

        A regression model saved without a target scale (before there was one, or from
        elsewhere) predicts its outputs as they are."""
        tasks = {problem: task for task, problem in PROBLEM_TYPES.items()}
        task = saved.get("task") or tasks.get(saved.get("problem_type") or "single_label_classification")
        if task is None:
            raise BertforgeError(f"saved labels have an unknown problem_type {show(saved.get('problem_type'))};"
                                 " re-save the model with bertforge")
        classes = saved.get("classes")
        if classes is None and task != "regression":
            id2label = saved.get("id2label") or {}
            classes = [id2label[key] for key in sorted(id2label, key=int)]
        scale = {}
        if task == "regression":
            try:
                scale = {name: float(saved.get(name, default)) for name, default in (("target_mean", 0.0),
                                                                                      ("target_std", 1.0))}
            except (TypeError, ValueError):
                raise BertforgeError("saved labels have a target_mean or target_std that is not a number;"
                                     " re-save the model with bertforge") from None
        return cls(task, tuple(classes or ()), saved.get("label_separator"), **scale)


def _target_scale(targets: list[float]) -> dict[str, float]:
    """The mean and standard deviation of training targets, as :class:`LabelEncoder` keeps them.

    A head starts near 0 with outputs of about unit spread: targets far from that (a mean of
    10) take it many steps just to reach their level, and its predictions stay near constant.
    Standardised, targets of every scale train as those near 0 do.
    """
    values = np.asarray(targets, dtype=np.float64)
    mean, std = float(values.mean()), float(values.std())
    # Targets too far apart for float64 (1e308 and -1e308): train on them as they are.
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        return {}
    return {"target_mean": mean, "target_std": std}


