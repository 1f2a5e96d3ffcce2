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

#: Every task, the default (files of texts and labels) first.
TASKS: tuple[type[Task], ...] = (ClassificationTask,)


def all_kinds() -> list[str]:
    return [kind for task in TASKS for kind in task.kinds]


def task_class(kind: str | None) -> type[Task]:
    """The task a ``--task`` value (or a saved ``task`` field) names; None: the default."""
    if kind is None:
        return TASKS[0]
    for task in TASKS:
        if kind in task.kinds:
            return task
    raise BertforgeError(f"--task {kind!r} is not known; use one of {', '.join(all_kinds())}")


def task_for_model(metadata: dict[str, Any], config: dict[str, Any]) -> Task:
    """The task of a fine-tuned model directory, from its ``bertforge.json`` and ``config.json``."""
    return task_class(metadata.get("task")).from_metadata(metadata, config)


__all__ = ["TASKS", "Task", "all_kinds", "task_class", "task_for_model"]
