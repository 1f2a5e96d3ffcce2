"""The settings of a training run: when it ends, the optimizer and its schedule, precision, cadences.

A job's settings hold one of these (``FineTuneSettings.training``,
``PretrainSettings.training``), checked here once; :class:`~bertforge.training.loop.TrainingLoop`
runs by it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch

from bertforge.errors import BertforgeError


@dataclass
class TrainingArguments:
    """Settings of a training run.

    Training stops at whichever comes first of ``epochs``, ``max_steps`` and
    ``time_budget`` (seconds). One step is one optimizer update, that is
    ``gradient_accumulation`` batches.

    >>> TrainingArguments(epochs=2, learning_rate=1e-4).warmup_steps(total_steps=1000)
    100
    """

    epochs: int | None = 3
    max_steps: int | None = None
    time_budget: float | None = None
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float | None = 1.0
    gradient_accumulation: int = 1
    precision: str = "fp32"  # or "bf16": autocast to bfloat16; "auto": bf16 on a GPU, fp32 on a CPU
    seed: int = 0
    eval_every: int | None = None  # steps; None evaluates at the end of each epoch
    early_stopping_patience: int | None = None  # evaluations without improvement
    checkpoint_every: int | None = None  # steps; None saves at the end of each epoch
    log_every: int = 50
    fused_optimizer: bool = True  # one kernel for the whole AdamW update: ~6x faster on CPU too

    def __post_init__(self) -> None:
        if self.epochs is None and self.max_steps is None and self.time_budget is None:
            raise BertforgeError("training needs an end: give --epochs, --max-steps or --time-budget")
        if self.epochs is not None and self.epochs < 1:
            raise BertforgeError(f"--epochs must be at least 1, got {self.epochs}")
        if self.gradient_accumulation < 1:
            raise BertforgeError(f"--gradient-accumulation must be at least 1, got {self.gradient_accumulation}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise BertforgeError(f"--precision must be fp32, bf16 or auto, got {self.precision!r}")
        if self.learning_rate <= 0:
            raise BertforgeError(f"--learning-rate must be positive, got {self.learning_rate}")

    def warmup_steps(self, total_steps: int) -> int:
        return int(round(self.warmup_ratio * total_steps))

    @property
    def budget_schedule(self) -> bool:
        """A time budget without a step count: warmup and decay follow the clock."""
        return self.time_budget is not None and self.max_steps is None and self.epochs is None


def resolve_precision(setting: str, device: torch.device) -> str:
    """``"auto"`` as the device wants it; ``fp32`` and ``bf16`` as they are.

    >>> resolve_precision("auto", torch.device("cpu")), resolve_precision("bf16", torch.device("cpu"))
    ('fp32', 'bf16')
    """
    if setting == "auto":
        # bf16 matmuls on CPUs without native support run ~100x slower than fp32.
        return "bf16" if device.type == "cuda" else "fp32"
    return setting


def check_options(settings_class: type, options: dict[str, Any]) -> None:
    """One line naming options that are neither a job setting nor a loop setting.

    >>> @dataclass
    ... class Job:
    ...     model: str = "bert"
    >>> check_options(Job, {"model": "x", "epochs": 1, "epoch": 2})
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: unknown option epoch: use the fields of Job or TrainingArguments (e.g. model, epochs)
    """
    known = {field.name for field in fields(settings_class)} | {field.name for field in fields(TrainingArguments)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise BertforgeError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: use the fields "
                             f"of {settings_class.__name__} or TrainingArguments (e.g. model, epochs)")


def take_loop_options(options: dict[str, Any]) -> dict[str, Any]:
    """The :class:`TrainingArguments` fields among flat options, taken out of ``options``.

    >>> options = {"epochs": 2, "batch_size": 8, "learning_rate": 1e-4}
    >>> take_loop_options(options), options
    ({'epochs': 2, 'learning_rate': 0.0001}, {'batch_size': 8})
    """
    names = {field.name for field in fields(TrainingArguments)}
    return {name: options.pop(name) for name in list(options) if name in names}


def settings_record(settings: Any, recorded: tuple[str, ...]) -> dict[str, Any]:
    """A job's settings flat, as ``bertforge.json`` records them: the job's own fields, then the
    loop settings (of its ``training``) that the job has always recorded."""
    values = {field.name: getattr(settings, field.name) for field in fields(settings) if field.name != "training"}
    return values | {name: getattr(settings.training, name) for name in recorded}
