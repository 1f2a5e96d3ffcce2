"""The tasks bertforge fine-tunes, by name: the one place that lists them.

Each task is a folder here with one :class:`~bertforge.tasks.base.Task` subclass.
``--task`` values and the ``task`` field of ``bertforge.json`` are that class's
``kinds``; the jobs find the class through :func:`task_class` and never name it.

>>> task_class("multi_label").__name__, task_class(None).__name__
('ClassificationTask', 'ClassificationTask')
"""

from __future__ import annotations

from typing import Any

from bertforge.errors import BertforgeError
from bertforge.tasks.base import Task
from bertforge.tasks.classification.task import ClassificationTask
from bertforge.tasks.question_answering.task import QuestionAnsweringTask
from bertforge.tasks.token_classification.task import TokenClassificationTask

#: Every task, the default (files of texts and labels) first.
TASKS: tuple[type[Task], ...] = (ClassificationTask, TokenClassificationTask, QuestionAnsweringTask)


def all_kinds() -> list[str]:
    """Every ``--task`` value, of every task."""
    return [kind for task in TASKS for kind in task.kinds]


def task_class(kind: str | None) -> type[Task]:
    """The task a ``--task`` value (or a saved ``task`` field) names; None: the default."""
    if kind is None:
        return TASKS[0]
    for task in TASKS:
        if kind in task.kinds:
            return task
    raise BertforgeError(f"--task {kind!r} is not known; use one of {', '.join(all_kinds())}")


def task_for_data(kind: str | None, source) -> type[Task]:
    """The task of a training source: the one ``--task`` names, else the first whose
    :meth:`~bertforge.tasks.base.Task.claims` the data, else the default."""
    if kind is not None:
        return task_class(kind)
    return next((task for task in TASKS[1:] if task.claims(source)), TASKS[0])


def task_for_model(metadata: dict[str, Any], config: dict[str, Any]) -> Task:
    """The task of a model directory, from its ``bertforge.json`` and ``config.json``.

    A directory that no task fine-tuned (``"task": "pretraining"``, a plain encoder) gets
    the default task, whose loading then says the head is missing and how to train one.
    """
    kind = metadata.get("task")
    if kind in all_kinds():
        return task_class(kind).from_metadata(metadata, config)
    # A directory from elsewhere says its head in config.json's architectures.
    task = next((task for task in TASKS[1:] if task.saved_in(metadata, config)), TASKS[0])
    return task.from_metadata(metadata, config)


def fine_tuned(metadata: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether a model directory's files say a task fine-tuned it (it has a task head)."""
    return any(task.saved_in(metadata, config) for task in TASKS)


__all__ = ["TASKS", "Task", "all_kinds", "fine_tuned", "task_class", "task_for_data", "task_for_model"]
