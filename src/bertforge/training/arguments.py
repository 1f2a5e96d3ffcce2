"""The settings of a training run: when it ends, the optimizer and its schedule, precision, cadences.

A job's settings hold one of these (``FineTuneSettings.training``,
``PretrainSettings.training``), checked here once; :class:`~bertforge.training.loop.TrainingLoop`
runs by it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from bertforge.errors import BertforgeError, UsageError

if TYPE_CHECKING:  # the command line checks its numbers with check_number while building --help: no torch
    import torch


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
        # Every value checked here, before any data is read: a nan learning rate would
        # otherwise surface as the optimizer's error, a nan clipping norm as "diverged".
        if self.epochs is None and self.max_steps is None and self.time_budget is None:
            raise UsageError("training needs an end: give --epochs, --max-steps or --time-budget")
        check_number("--epochs", self.epochs, 1, whole=True, optional=True)
        check_number("--max-steps", self.max_steps, 1, whole=True, optional=True)
        check_number("--time-budget", self.time_budget, 0, low_open=True, optional=True)
        check_number("--learning-rate", self.learning_rate, 0, low_open=True)
        check_number("--weight-decay", self.weight_decay, 0)
        check_number("--warmup-ratio", self.warmup_ratio, 0, 1)
        check_number("--max-grad-norm", self.max_grad_norm, 0, low_open=True, optional=True)
        check_number("--gradient-accumulation", self.gradient_accumulation, 1, whole=True)
        if self.precision not in ("fp32", "bf16", "auto"):
            raise UsageError(f"--precision must be fp32, bf16 or auto, got {self.precision!r}")
        check_number("--seed", self.seed, 0, 2**32 - 1, whole=True)  # numpy's seeds are 32-bit
        check_number("--eval-every", self.eval_every, 1, whole=True, optional=True)
        check_number("--early-stopping", self.early_stopping_patience, 1, whole=True, optional=True)
        check_number("--checkpoint-every", self.checkpoint_every, 1, whole=True, optional=True)
        check_number("--log-every", self.log_every, 1, whole=True)

    def warmup_steps(self, total_steps: int) -> int:
        return int(round(self.warmup_ratio * total_steps))

    @property
    def budget_schedule(self) -> bool:
        """A time budget without a step count: warmup and decay follow the clock."""
        return self.time_budget is not None and self.max_steps is None and self.epochs is None


def check_number(flag: str, value: Any, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, whole: bool = False,
                 optional: bool = False) -> None:
    """Raise :class:`UsageError`, one line naming ``flag`` and its range, unless ``value`` is a
    finite number (a whole one when ``whole``) from ``low`` to ``high`` (either end left out
    when ``low_open`` / ``high_open``); None passes when ``optional``.

    >>> check_number("--warmup-ratio", 0.1, 0, 1)
    >>> check_number("--learning-rate", float("nan"), 0, low_open=True)
    Traceback (most recent call last):
    ...
    bertforge.errors.UsageError: --learning-rate must be positive (a finite number above 0), got nan
    >>> check_number("--checkpoint-every", -5, 1, whole=True)
    Traceback (most recent call last):
    ...
    bertforge.errors.UsageError: --checkpoint-every must be a whole number of at least 1, got -5
    """
    if value is None and optional:
        return
    kind = numbers.Integral if whole else numbers.Real
    # Whole numbers are always finite (and math.isfinite overflows on the huge ones).
    if (isinstance(value, kind) and not isinstance(value, bool)
            and (isinstance(value, numbers.Integral) or math.isfinite(value))
            and (low is None or value > low or (value == low and not low_open))
            and (high is None or value < high or (value == high and not high_open))):
        return
    shown = repr(value) if isinstance(value, str) or value is None or isinstance(value, bool) else f"{value}"
    wanted = describe_range(low, high, low_open=low_open, high_open=high_open, whole=whole)
    raise UsageError(f"{flag} must be {wanted}, got {shown}")


def describe_range(low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False,
                   whole: bool = False) -> str:
    """How a message words the numbers an option allows.

    >>> describe_range(0, 1), describe_range(0, 1, low_open=True, high_open=True)
    ('a number from 0 to 1', 'a number above 0 and below 1')
    >>> describe_range(1, None, whole=True), describe_range(0, 1, high_open=True)
    ('a whole number of at least 1', 'a number of at least 0 and below 1')
    """
    if low == 0 and low_open and high is None and not whole:
        return "positive (a finite number above 0)"
    noun = "a whole number" if whole else "a number" if high is not None else "a finite number"
    shown = (lambda end: f"{end:,}" if isinstance(end, int) else f"{end:g}")  # 4,294,967,295, not 4.29e+09
    if low is not None and high is not None and not (low_open or high_open):
        return f"{noun} from {shown(low)} to {shown(high)}"
    lower = None if low is None else f"above {shown(low)}" if low_open else f"of at least {shown(low)}"
    upper = None if high is None else f"below {shown(high)}" if high_open else f"of at most {shown(high)}"
    if lower and upper:
        return f"{noun} {lower} and {upper.removeprefix('of ')}"
    return f"{noun} {lower or upper}" if lower or upper else noun


def resolve_precision(setting: str, device: torch.device) -> str:
    """``"auto"`` as the device wants it; ``fp32`` and ``bf16`` as they are.

    >>> import torch
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
