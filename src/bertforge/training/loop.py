"""The one training loop, for fine-tuning and pretraining alike.

It knows a model only as "a module whose output has a ``.loss``" and data only as
a :class:`BatchSource` that can replay any epoch from any batch. That is enough
for precision, gradient accumulation, a warmup-then-decay schedule, clipping,
periodic evaluation, early stopping, and checkpoints from which a killed run
resumes to the same weights as a run never stopped.

Under ``torchrun`` (``torch.distributed`` initialised by the job) the model is
wrapped in DistributedDataParallel: each process runs its own share of every
batch, gradients are averaged, and process 0 alone evaluates, logs and writes
checkpoints; decisions to stop are taken together so all processes stop at the
same step. An output that also says how many items each part of its loss is the
mean of (``loss_terms``: ``(mean, count)`` pairs) is weighed by the counts of all
processes, so the run is the one a single process would make of the whole batch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch
from torch import nn

from bertforge.errors import BertforgeError
from bertforge.files import TEMPORARY_PATTERN, replacing, unreadable_reason
from bertforge.training import distributed
from bertforge.training.arguments import TrainingArguments, resolve_precision
from bertforge.training.interrupts import StopOnSignal, TrainingInterrupted

CHECKPOINT_NAME = "checkpoint.pt"


class BatchSource(Protocol):
    """Batches of one epoch, replayable: the same epoch number gives the same batches.

    A source whose batches come in a few fixed shapes says so with a true
    ``fixed_shapes`` attribute (and ``buckets.count``, how many there can be): a
    compiled run then compiles each shape once (see :func:`compile_runner`)."""

    def __len__(self) -> int: ...

    def epoch(self, epoch: int, start: int = 0) -> Iterator[dict[str, Any]]:
        """Batches ``start, start + 1, ...`` of ``epoch``, each a dict of model inputs."""


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def decay_groups(model: nn.Module, weight_decay: float, learning_rate: float) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm weights, as in BERT."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay, "lr": learning_rate},
              {"params": no_decay, "weight_decay": 0.0, "lr": learning_rate}]
    return [group for group in groups if group["params"]]


def warmup_linear_decay(warmup: int, total: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warmup to 1, then linear decay to 0 at ``total``."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


@dataclass
class TrainingState:
    """Where a run stands; everything here goes into the checkpoint."""

    epoch: int = 0
    batch: int = 0  # next batch to run within ``epoch``
    step: int = 0  # optimizer updates so far
    examples: int = 0
    tokens: int = 0  # real (non-padding) tokens this process trained on
    train_seconds: float = 0.0
    best_metric: float | None = None
    best_step: int | None = None
    evaluations_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)
    finished: bool = False
    stop_reason: str | None = None


class TrainingLoop:
    """Runs a model over a batch source until the arguments say stop.

    ``evaluate(model) -> dict`` returns validation metrics; ``metric`` names the
    one early stopping watches (``greater_is_better`` says which way is good);
    ``on_best(model, metrics)`` is called each time it improves, so the job can
    keep the best weights. ``param_groups`` overrides the default AdamW groups
    (layer-wise learning-rate decay builds its own).
    ``run_identity`` adds what else a checkpoint must match to be resumed (the
    job's data and objective settings). ``compile_model`` runs the batches
    through ``torch.compile`` (``compile_options``: its other keywords, such as
    ``mode``): for static shapes when the source says its batches come in a few
    fixed shapes (``fixed_shapes``, with ``buckets.count`` the most there can be),
    so each shape is compiled once and then replayed, a CUDA graph too under
    ``mode="reduce-overhead"``; for any shape otherwise.
    """

    def __init__(self, model: nn.Module, source: BatchSource, args: TrainingArguments, output_dir: str | Path,
                 evaluate: Callable[[nn.Module], dict] | None = None, metric: str | None = None,
                 greater_is_better: bool = True, on_best: Callable[[nn.Module, dict], None] | None = None,
                 param_groups: list[dict] | None = None, progress: bool = True, device: str | torch.device = "cpu",
                 batch_examples: Callable[[dict], int] | None = None, compile_model: bool = False,
                 run_identity: dict | None = None, compile_options: dict | None = None):
        self.model = model
        self.device = torch.device(device)
        self.source = source
        self.args = dataclasses.replace(args, precision=resolve_precision(args.precision, self.device))
        self.output_dir = Path(output_dir)
        self.evaluate = evaluate
        self.metric = metric
        self.greater_is_better = greater_is_better
        self.on_best = on_best
        self.progress = progress
        self.run_identity = run_identity or {}  # what else a checkpoint must match (data, objectives)
        self.batch_examples = batch_examples or (lambda batch: len(next(iter(batch.values()))))
        model.to(self.device)  # before the optimizer, so its state lives where the weights do
        groups = param_groups or decay_groups(model, args.weight_decay, args.learning_rate)
        if not groups:
            raise BertforgeError("nothing to train: every parameter is frozen")
        self.optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, fused=args.fused_optimizer or None)
        self.base_learning_rates = [group["lr"] for group in self.optimizer.param_groups]
        self.total_steps = self._planned_steps()
        self.schedule = warmup_linear_decay(args.warmup_steps(self.total_steps), self.total_steps)
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.is_main = self.rank == 0
        # What runs the batches: the model itself, or its data-parallel / compiled wrapper.
        # Checkpoints, evaluation and the caller keep working on ``self.model``.
        self.runner = distributed.wrap(model, self.device) if self.world_size > 1 else model
        self.compiled = compile_model
        if compile_model:
            self.runner = compile_runner(self.runner, source, compile_options or {})
        self.state = TrainingState()
        self.postfix: dict[str, str] = {}  # live figures shown on the progress bar

    # -- planning -------------------------------------------------------------------

    def _planned_steps(self) -> int:
        per_epoch = math.ceil(len(self.source) / self.args.gradient_accumulation)
        candidates = []
        if self.args.epochs is not None:
            candidates.append(per_epoch * self.args.epochs)
        if self.args.max_steps is not None:
            candidates.append(self.args.max_steps)
        # A time budget alone: the schedule runs on the clock (see learning_rate_factor),
        # in units of 1/10000 of the budget.
        return max(1, min(candidates)) if candidates else 10_000

    def learning_rate_factor(self) -> float:
        """Where the warmup-then-decay schedule stands: by step, or by time spent of a budget."""
        if self.args.budget_schedule:
            spent = min(1.0, self.state.train_seconds / self.args.time_budget)
            return self.schedule(int(spent * self.total_steps))
        return self.schedule(self.state.step)

    @property
    def learning_rate(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    @property
    def checkpoint_path(self) -> Path:
        return self.output_dir / CHECKPOINT_NAME

    # -- checkpoints ----------------------------------------------------------------

    def fingerprint(self) -> dict:
        """What must match for a checkpoint to continue this run exactly."""
        settings = {key: value for key, value in asdict(self.args).items()
                    if key not in ("eval_every", "checkpoint_every", "log_every", "early_stopping_patience")}
        shapes = {name: list(p.shape) for name, p in self.model.named_parameters() if p.requires_grad}
        return {"settings": settings, "batches_per_epoch": len(self.source), "total_steps": self.total_steps,
                "trainable": shapes, **self.run_identity}

    def save_checkpoint(self) -> None:
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "state": asdict(self.state),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy_rng": json.dumps(_jsonable_numpy_state()),
            "python_rng": json.dumps(_jsonable_python_state()),
            "total_steps": self.total_steps,
            "fingerprint": self.fingerprint(),
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with replacing(self.checkpoint_path) as temporary:  # a kill never leaves half a checkpoint
            torch.save(payload, temporary)

    def _remove_stale_temporaries(self) -> None:
        """Half-written checkpoints of a killed run (each as large as the checkpoint)."""
        if self.output_dir.is_dir():
            for path in self.output_dir.glob(".checkpoint*.tmp"):
                if TEMPORARY_PATTERN.fullmatch(path.name):
                    path.unlink(missing_ok=True)

    def _rng_path(self) -> Path:
        return self.output_dir / f"checkpoint.rank{self.rank}.rng"

    def _save_checkpoint_once(self) -> None:
        """Process 0 writes the checkpoint; every other process its own random state
        (its dropout masks), so a resumed data-parallel run continues each stream."""
        if self.is_main:
            self.save_checkpoint()
        else:
            with replacing(self._rng_path()) as temporary:
                torch.save({"step": self.state.step, "torch_rng": torch.get_rng_state(),
                            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                           temporary)
        distributed.barrier()

    def load_checkpoint(self) -> bool:
        """Restore model, optimizer, schedule, random state and position; False if none."""
        if not self.checkpoint_path.is_file():
            return False
        try:
            payload = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise BertforgeError(
                f"{self.checkpoint_path}: cannot read the checkpoint ({unreadable_reason(error)}); "
                "delete it to start over"
            ) from None
        difference = first_difference(payload.get("fingerprint"), self.fingerprint())
        if difference is not None:
            raise BertforgeError(
                f"{self.checkpoint_path}: was written by a run with other data, model or settings ({difference}); "
                "resume with the same ones, or use a new output directory"
            )
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.state = TrainingState(**payload["state"])
        torch.set_rng_state(payload["torch_rng"])
        if payload["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        np.random.set_state(_numpy_state_from_json(json.loads(payload["numpy_rng"])))
        random.setstate(_python_state_from_json(json.loads(payload["python_rng"])))
        if not self.is_main and self._rng_path().is_file():
            own = torch.load(self._rng_path(), map_location="cpu", weights_only=True)
            if own["step"] == self.state.step:  # written with this checkpoint
                torch.set_rng_state(own["torch_rng"])
                if own["cuda_rng"] and torch.cuda.is_available():
                    torch.cuda.set_rng_state_all(own["cuda_rng"])
        return True

    # -- the loop ---------------------------------------------------------------------

    def _autocast(self):
        if self.args.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _to_device(self, batch: dict) -> dict:
        """Tensors (and layouts made of tensors) to the device, without waiting for it."""
        pin = self.device.type == "cuda"  # a copy from pinned memory runs behind the host
        moved = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                if pin and value.device.type == "cpu":
                    value = value.pin_memory()
                value = value.to(self.device, non_blocking=True)
            elif hasattr(value, "to") and not isinstance(value, nn.Module):
                value = value.to(self.device, non_blocking=True)
            moved[key] = value
        return moved

    def _log(self, record: dict) -> None:
        self.state.history.append(record)
        if not self.is_main:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _run_evaluation(self) -> bool:
        """Evaluate, remember the best, and say whether early stopping fires (process 0 decides)."""
        if self.evaluate is None:
            return False
        if not self.is_main:
            return False
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            metrics = self.evaluate(self.model)
        self.model.train(was_training)
        self._log({"step": self.state.step, "epoch": self.state.epoch,
                   "elapsed_s": round(self.state.train_seconds, 3), **{f"val_{k}": v for k, v in metrics.items()}})
        if self.metric is None or metrics.get(self.metric) is None:
            return False
        value = float(metrics[self.metric])
        self.postfix[f"val_{self.metric}"] = f"{value:.4f}"
        best = self.state.best_metric
        improved = best is None or (value > best if self.greater_is_better else value < best)
        if improved:
            self.state.best_metric, self.state.best_step = value, self.state.step
            self.state.evaluations_without_improvement = 0
            if self.on_best is not None:
                self.on_best(self.model, metrics)
            return False
        self.state.evaluations_without_improvement += 1
        patience = self.args.early_stopping_patience
        return patience is not None and self.state.evaluations_without_improvement >= patience

    def _should_stop_for_limits(self) -> str | None:
        if self.args.max_steps is not None and self.state.step >= self.args.max_steps:
            return "max_steps"
        if self.args.time_budget is not None and self.state.train_seconds >= self.args.time_budget:
            return "time_budget"
        return None

    def run(self, resume: bool = False, stop_after_steps: int | None = None) -> TrainingState:
        """Train; with ``resume`` continue from the checkpoint in the output directory.

        ``stop_after_steps`` ends the run early, as a kill would, leaving the last
        checkpoint written (with ``checkpoint_every=1``: the one of that step).
        """
        if not resume and self.checkpoint_path.is_file():
            raise BertforgeError(
                f"{self.output_dir}: holds the checkpoint of an earlier run; pass --resume to continue it, "
                "or use a new output directory"
            )
        distributed.barrier()  # no process may find the checkpoint that another is about to write
        if self.is_main:
            self._remove_stale_temporaries()
        resumed = resume and self.load_checkpoint()
        if resumed and self.state.finished:
            return self.state
        if not resumed:
            set_seed(self.args.seed + self.rank)  # each process its own dropout masks
            if self.is_main:
                (self.output_dir / "log.jsonl").unlink(missing_ok=True)  # a fresh run starts a fresh log
        self.model.to(self.device).train()
        from tqdm.auto import tqdm

        bar = tqdm(total=self.total_steps, initial=self.state.step, disable=not (self.progress and self.is_main),
                   unit="step", dynamic_ncols=True, leave=True)
        epochs = self.args.epochs if self.args.epochs is not None else 10**9
        with StopOnSignal() as signals:
            stop = self._train(bar, epochs, signals, stop_after_steps)
        if stop == "interrupted":
            bar.close()
            raise TrainingInterrupted(
                f"stopped at step {self.state.step} of {self.total_steps} on "
                f"{signal.Signals(signals.received).name}; the checkpoint is in {self.output_dir}: "
                "run the same command with --resume to continue", signals.received)
        if stop == "stopped_early":
            bar.close()
            return self.state
        bar.close()
        if signals.received is not None and self.is_main:
            print(f"{signal.Signals(signals.received).name} came during the last step: the run finishes",
                  file=sys.stderr)
        self.state.finished = True
        self.state.stop_reason = stop or "epochs"
        self._save_checkpoint_once()
        return self.state

    def _train(self, bar, epochs: int, signals: StopOnSignal, stop_after_steps: int | None) -> str | None:
        """The epochs; returns why they ended early (a stop reason), or None."""
        accumulation = self.args.gradient_accumulation
        window = _Window()
        stop = None
        while stop is None and self.state.epoch < epochs:
            started = time.perf_counter()
            micro = 0
            for batch in self.source.epoch(self.state.epoch, self.state.batch):
                self.state.tokens += _real_tokens(batch)  # counted on the host copy: no device sync
                self.state.examples += self.batch_examples(batch)
                batch = self._to_device(batch)
                self.state.batch += 1
                micro += 1
                last_of_epoch = self.state.batch >= len(self.source)
                updates = not (micro % accumulation) or last_of_epoch
                if self.compiled:  # a new step: CUDA graphs may reuse the memory of the last one's outputs
                    torch.compiler.cudagraph_mark_step_begin()
                # Gradients are averaged across processes only on the batch that updates.
                with nullcontext() if updates or self.world_size == 1 else self.runner.no_sync():
                    with self._autocast():
                        loss = self._share_of_batch_loss(self.runner(**batch))
                    # DDP averages the processes' gradients: times the process count, they add up.
                    (loss * self.world_size / accumulation if self.world_size > 1 else loss / accumulation).backward()
                # Summed on the device: reading it every step would stall a GPU.
                window.loss = window.loss + loss.detach().float()
                window.batches += 1
                if not updates:
                    continue
                self._optimizer_step()
                bar.update(1)
                now = time.perf_counter()
                self.state.train_seconds += now - started
                started = now
                if self.state.step % self.args.log_every == 0 or last_of_epoch:
                    self._log_training(window, bar)
                    window = _Window()
                if last_of_epoch:
                    self.state.epoch += 1
                    self.state.batch = 0
                stop = self._after_step(last_of_epoch, interrupted=signals.received is not None)
                started = time.perf_counter()  # evaluation and checkpoints are not training time
                if stop or (stop_after_steps is not None and self.state.step >= stop_after_steps):
                    break
            if stop_after_steps is not None and self.state.step >= stop_after_steps and stop is None:
                return "stopped_early"
        if window.batches and stop != "interrupted":
            self._log_training(window, bar)
        return stop

    def _share_of_batch_loss(self, output) -> torch.Tensor:
        """This process's part of the loss of the whole batch: summed over the processes, the loss.

        A loss term that is a mean over this process's items (its masked tokens) becomes
        their sum over the count of all processes' items: with one process's share of
        masked tokens smaller than another's, a mean of the two means would weigh its
        tokens more than one process running the whole batch does. A loss without
        ``loss_terms`` counts as the same share from each process."""
        terms = getattr(output, "loss_terms", None)
        if self.world_size == 1:
            return output.loss
        if not terms:
            return output.loss / self.world_size
        totals = distributed.sum_counts_over_processes([count for _, count in terms], output.loss.device)
        # A term no process has items for adds nothing (its empty mean is nan).
        return sum(torch.where(total > 0, mean.nan_to_num() * (count / total.clamp(min=1)), 0.0)
                   for (mean, count), total in zip(terms, totals))

    def _log_training(self, window: "_Window", bar) -> None:
        # One collective per log line: each process's share of the loss, and the tokens of all.
        loss, tokens = distributed.sum_over_processes([float(window.loss), self.state.tokens])
        mean_loss = loss / max(1, window.batches)
        seconds = max(self.state.train_seconds, 1e-9)
        self._log({"step": self.state.step, "epoch": self.state.epoch, "train_loss": mean_loss,
                   "learning_rate": self.learning_rate, "tokens": int(tokens),
                   "tokens_per_second": round(tokens / seconds, 1),
                   "elapsed_s": round(self.state.train_seconds, 3)})
        self.postfix["loss"] = f"{mean_loss:.4f}"
        self.postfix["tok/s"] = f"{tokens / seconds:,.0f}"
        if self.args.time_budget is not None:
            self.postfix["left"] = f"{max(0.0, self.args.time_budget - self.state.train_seconds) / 60:.1f}m"
        bar.set_postfix(self.postfix, refresh=False)

    def _optimizer_step(self) -> None:
        factor = self.learning_rate_factor()
        for group, base in zip(self.optimizer.param_groups, self.base_learning_rates):
            group["lr"] = base * factor
        if self.args.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(
                [p for group in self.optimizer.param_groups for p in group["params"]], self.args.max_grad_norm,
                foreach=True)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1

    def _after_step(self, end_of_epoch: bool, interrupted: bool = False) -> str | None:
        stop = None
        every = self.args.eval_every
        if (every and self.state.step % every == 0) or (not every and end_of_epoch):
            if self._run_evaluation():
                stop = "early_stopping"
        stop = stop or self._should_stop_for_limits() or ("interrupted" if interrupted else None)
        stop = distributed.agree_on_stop(stop)  # clocks differ between processes; stop together
        if stop and stop != "interrupted":
            # Recorded before the checkpoint: a kill right after must not train past the stop.
            self.state.finished, self.state.stop_reason = True, stop
        every = self.args.checkpoint_every
        if stop == "interrupted" or (every and self.state.step % every == 0) or (not every and end_of_epoch):
            self._save_checkpoint_once()
        return stop


def compile_runner(runner: nn.Module, source: BatchSource, options: dict) -> nn.Module:
    """``torch.compile`` for the shapes the source makes: static when it makes a few
    fixed ones, each then compiled once (dynamo's default limit of 8 graphs per
    function is raised to the number of shapes, past which it would run the rest
    uncompiled), dynamic otherwise."""
    static = bool(getattr(source, "fixed_shapes", False))
    if static:
        import torch._dynamo as dynamo  # not `import torch._dynamo`: that would make `torch` local here

        shapes = getattr(getattr(source, "buckets", None), "count", 8)
        name = "recompile_limit" if hasattr(dynamo.config, "recompile_limit") else "cache_size_limit"
        setattr(dynamo.config, name, max(getattr(dynamo.config, name), shapes))
    return torch.compile(runner, **{"dynamic": not static, **options})


def first_difference(saved: Any, current: Any, where: str = "") -> str | None:
    """The first setting in which two run fingerprints differ, said as a user reads it, or None.

    >>> first_difference({"settings": {"learning_rate": 1e-4, "seed": 1}}, {"settings": {"learning_rate": 5e-5, "seed": 1}})
    'learning_rate was 0.0001, now 5e-05'
    >>> first_difference({"trainable": {"a": [2, 3]}}, {"trainable": {"a": [2, 3], "b": [4]}})
    'trainable.b was absent, now [4]'
    >>> first_difference({"x": 1}, {"x": 1}) is None
    True
    """
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in list(saved) + [key for key in current if key not in saved]:
            # The training settings are what users change; they read best without the prefix.
            inner = f"{where}.{key}" if where and where != "settings" else ("" if key == "settings" and not where else key)
            if key not in saved or key not in current:
                inner = inner or key
                return (f"{inner} was {_said(saved[key]) if key in saved else 'absent'}, "
                        f"now {_said(current[key]) if key in current else 'absent'}")
            found = first_difference(saved[key], current[key], inner)
            if found is not None:
                return found
        return None
    if saved != current:
        return f"{where or 'the run'} was {_said(saved)}, now {_said(current)}"
    return None


def _said(value: Any) -> str:
    if value is None:
        return "not set"
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class _Window:
    """What the steps since the last log line added up to."""

    loss: Any = 0.0
    batches: int = 0


def _real_tokens(batch: dict) -> int:
    mask = batch.get("input_mask")
    if isinstance(mask, torch.Tensor):
        return int(mask.sum())
    ids = batch.get("input_ids")
    return int(ids.numel()) if isinstance(ids, torch.Tensor) else 0


def _jsonable_numpy_state() -> list:
    name, keys, position, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(position), int(has_gauss), float(cached)]


def _numpy_state_from_json(values: list) -> tuple:
    name, keys, position, has_gauss, cached = values
    return name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached


def _jsonable_python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _python_state_from_json(values: list) -> tuple:
    version, internal, gauss = values
    return version, tuple(internal), gauss
