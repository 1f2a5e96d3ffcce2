"""Pretrain a BERT from scratch on your own text: the seed's second path as one job.

text files -> sentences (``data/corpus.py``) -> token shards on disk, made once
(``data/shards.py``) -> sequences, sentence pairs and masks drawn fresh each
epoch (``data/pretraining.py``) -> the shared training loop, data-parallel under
``torchrun`` -> a standard model directory that ``bertforge finetune``,
``BertLayer`` and ``transformers`` all open.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bertforge.apps.output_folder import OutputFolder, kept_run_files
from bertforge.io.model_dir import save_pretrained
from bertforge.model.config import PRESETS, BertConfig
from bertforge.data.corpus import TEXT_FORMATS, check_documents
from bertforge.data.pretraining import PAIR_OBJECTIVES, MaskingSettings, PretrainingBatches, Vocabulary
from bertforge.data.shards import build_shards
from bertforge.errors import UsageError
from bertforge.constants import IGNORE_INDEX
from bertforge.model.heads import BertForMaskedLM, BertForPreTraining
from bertforge.text.tokenizer import Tokenizer
from bertforge.training import distributed
from bertforge.training.arguments import (TrainingArguments, check_number, check_options, resolve_precision,
                                         settings_record, take_loop_options)
from bertforge.training.loop import TrainingLoop


@dataclass
class PretrainSettings:
    """Everything ``bertforge pretrain`` takes.

    The model is a preset (``tiny`` 2x128, ``mini`` 4x256, ``small`` 4x512,
    ``medium`` 8x512, ``base`` 12x768, ``large`` 24x1024) with any of its sizes
    overridden. ``batch_size`` is the global batch: under torchrun it is split
    over the processes, so the same settings train the same model on any number
    of them. Training stops at the first of ``epochs``, ``max_steps`` and
    ``time_budget`` (seconds); with a time budget alone the learning-rate
    schedule follows the clock.
    """

    corpus: list[str]
    vocab: str
    out: str
    preset: str = "mini"
    layers: int | None = None
    heads: int | None = None
    hidden: int | None = None
    intermediate: int | None = None
    seq_len: int = 128
    dropout: float | None = None
    batch_size: int = 32
    mask_rate: float = 0.15
    whole_word_masking: bool = False
    pair_objective: str = "nsp"
    pair_rate: float = 0.5
    short_sequence_rate: float = 0.1
    held_out: float = 0.01
    eval_sequences: int = 1000
    text_format: str = "auto"
    split_clauses: bool = False
    doc_per_line: bool = False
    shards_dir: str | None = None
    workers: int | None = None
    compile: bool = False
    compile_mode: str = "auto"  # with compile: torch.compile's mode; auto: COMPILE_MODES
    device: str | None = None
    resume: bool = False
    overwrite: bool = False  # replace what --out holds (a model, another run) with this run's model
    keep_checkpoint: bool = False  # the finished folder keeps the checkpoint, to train further later
    progress: bool = True
    training: TrainingArguments = dataclasses.field(default_factory=lambda: pretraining_arguments())

    @classmethod
    def of(cls, **options: Any) -> "PretrainSettings":
        """Settings from flat options (``max_steps=100, learning_rate=1e-3, layers=4``): the
        training loop's own go into ``training``, over pretraining's defaults."""
        check_options(cls, options)
        training = pretraining_arguments(**take_loop_options(options))  # before options is unpacked
        return cls(**options, training=training)

    def __post_init__(self) -> None:
        # Every option here, before the vocabulary is opened or the corpus tokenized.
        choices = (("--preset", self.preset, tuple(PRESETS)),
                   ("--pair-objective", self.pair_objective, PAIR_OBJECTIVES),
                   ("--text-format", self.text_format, TEXT_FORMATS),
                   ("--compile-mode", self.compile_mode, ("auto", *COMPILE_MODE_NAMES)))
        for flag, value, allowed in choices:
            if value not in allowed:
                raise UsageError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")
        for flag, value in (("--layers", self.layers), ("--heads", self.heads), ("--hidden", self.hidden),
                            ("--intermediate", self.intermediate), ("--workers", self.workers)):
            check_number(flag, value, 1, whole=True, optional=True)
        check_number("--seq-len", self.seq_len, 8, whole=True)
        # The preset's position table is known before the vocabulary is opened: no need to wait for the model.
        positions = BertConfig.preset(self.preset).max_position_embeddings
        if self.seq_len > positions:
            raise UsageError(f"sequence length {self.seq_len} is above the model's {positions} positions; "
                             f"pass --seq-len {positions} or less")
        check_number("--dropout", self.dropout, 0, 1, high_open=True, optional=True)
        check_number("--batch-size", self.batch_size, 1, whole=True)
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)  # torchrun's processes share the global batch
        if self.batch_size % world:
            raise UsageError(f"--batch-size must be a multiple of the {world} processes torchrun started, "
                             f"got {self.batch_size}")
        check_number("--mask-rate", self.mask_rate, 0, 1, low_open=True, high_open=True)
        check_number("--pair-rate", self.pair_rate, 0, 1)
        check_number("--short-sequence-rate", self.short_sequence_rate, 0, 1)
        check_number("--held-out", self.held_out, 0, 1, high_open=True)
        check_number("--eval-sequences", self.eval_sequences, 1, whole=True)

    def to_dict(self) -> dict[str, Any]:
        """The settings as ``bertforge.json`` records them, flat."""
        return settings_record(self, _RECORDED_TRAINING)


#: torch.compile's modes. With --compile the training batches come in a few fixed shapes
#: (data.pretraining.ShapeBuckets), so each mode compiles static graphs; reduce-overhead
#: also replays each as a CUDA graph.
COMPILE_MODE_NAMES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

#: The mode --compile takes by itself on each kind of device: the fastest measured. On an
#: H200 the only mode measured on BERT-base steps so far is the default one (1.81x
#: transformers, 30.7% MFU; BENCHMARKS.md); benchmarks/gpu_suite.sh times every mode on the
#: fixed-shape step, and this table takes the winner. On a CPU the uncompiled model is
#: faster still (its own attention and dropout masks), and the default mode is the cheapest
#: to compile.
COMPILE_MODES = {"cuda": "default", "cpu": "default"}


def compile_mode(setting: str, device: torch.device) -> str:
    """The torch.compile mode a run takes: the one asked for, or for ``auto`` the device's.

    >>> compile_mode("auto", torch.device("cpu")), compile_mode("reduce-overhead", torch.device("cpu"))
    ('default', 'reduce-overhead')
    """
    return COMPILE_MODES.get(device.type, "default") if setting == "auto" else setting


#: Where pretraining's loop settings differ from fine-tuning's: a larger peak learning rate,
#: a shorter warmup (RoBERTa's 6%), evaluations and checkpoints every 500 steps, bf16 on a GPU.
PRETRAINING_DEFAULTS = dict(learning_rate=5e-4, warmup_ratio=0.06, eval_every=500, checkpoint_every=500,
                            precision="auto", epochs=None)

# The loop settings bertforge.json has always listed among a pretraining run's settings.
_RECORDED_TRAINING = ("learning_rate", "weight_decay", "warmup_ratio", "max_grad_norm", "gradient_accumulation",
                      "epochs", "max_steps", "time_budget", "eval_every", "checkpoint_every", "log_every",
                      "precision", "seed")


def pretraining_arguments(**given: Any) -> TrainingArguments:
    """The loop's settings for pretraining: :data:`PRETRAINING_DEFAULTS` under what is given,
    and one pass over the corpus when nothing says where to stop.

    >>> args = pretraining_arguments(max_steps=100)
    >>> args.learning_rate, args.epochs, args.max_steps, pretraining_arguments().epochs
    (0.0005, None, 100, 1)
    """
    values = {**PRETRAINING_DEFAULTS, **given}
    if values["epochs"] is None and values.get("max_steps") is None and values.get("time_budget") is None:
        values["epochs"] = 1  # a run must end somewhere
    return TrainingArguments(**values)


def model_config(settings: PretrainSettings, vocab_size: int) -> BertConfig:
    """The preset with the settings' overrides, sized to the vocabulary."""
    overrides: dict[str, Any] = {"vocab_size": vocab_size}
    for field, name in (("layers", "num_hidden_layers"), ("hidden", "hidden_size"),
                        ("heads", "num_attention_heads"), ("intermediate", "intermediate_size")):
        if getattr(settings, field) is not None:
            overrides[name] = getattr(settings, field)
    if settings.hidden is not None and settings.heads is None:
        overrides["num_attention_heads"] = max(1, settings.hidden // 64)
    if settings.hidden is not None and settings.intermediate is None:
        overrides["intermediate_size"] = 4 * settings.hidden
    if settings.dropout is not None:
        overrides["hidden_dropout_prob"] = overrides["attention_probs_dropout_prob"] = settings.dropout
    config = BertConfig.preset(settings.preset, **overrides)
    if settings.seq_len > config.max_position_embeddings:
        raise UsageError(f"sequence length {settings.seq_len} is above the model's "
                         f"{config.max_position_embeddings} positions; pass --seq-len "
                         f"{config.max_position_embeddings} or less")
    return config


def evaluate_pretraining(model: nn.Module, batches: PretrainingBatches, device: torch.device,
                         max_sequences: int | None = None, precision: str = "fp32") -> dict[str, float]:
    """Held-out masked-LM loss, accuracy and perplexity, and pair accuracy when trained."""
    loss_sum = correct = masked = 0.0
    pair_correct = pair_total = pair_loss_sum = 0.0
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    for batch in batches.evaluation_batches(max_sequences):
        labels = batch["masked_lm_labels"].reshape(-1)
        targets = labels[labels != IGNORE_INDEX].to(device)
        moved = {key: value.to(device) for key, value in batch.items()}
        with autocast:
            output = model(**moved)
        logits = output.prediction_logits.float()
        loss_sum += float(torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
        correct += float((logits.argmax(-1) == targets).sum())
        masked += len(targets)
        if "next_sentence_label" in batch and getattr(output, "seq_relationship_logits", None) is not None:
            pair_logits = output.seq_relationship_logits.float()
            pair_labels = moved["next_sentence_label"]
            pair_loss_sum += float(torch.nn.functional.cross_entropy(pair_logits, pair_labels, reduction="sum"))
            pair_correct += float((pair_logits.argmax(-1) == pair_labels).sum())
            pair_total += len(pair_labels)
    mlm_loss = loss_sum / max(1.0, masked)
    metrics = {"mlm_loss": round(mlm_loss, 5), "mlm_accuracy": round(correct / max(1.0, masked), 5),
               "perplexity": round(math.exp(min(mlm_loss, 50.0)), 3), "masked_tokens": int(masked)}
    if pair_total:
        metrics["pair_accuracy"] = round(pair_correct / pair_total, 5)
        metrics["pair_loss"] = round(pair_loss_sum / pair_total, 5)
    return metrics


def pretrain(settings: PretrainSettings) -> dict:
    """Run the job; returns the summary also written to ``OUT/bertforge.json``.

    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> text = "\\n\\n".join(f"The day {i} was cold. The wind blew hard. We stayed in." for i in range(40))
    >>> _ = (folder / "corpus.txt").write_text(text)
    >>> _ = Tokenizer.train([text], vocab_size=60).save(folder / "vocab")
    >>> summary = pretrain(PretrainSettings.of(corpus=[str(folder / "corpus.txt")], vocab=str(folder / "vocab"),
    ...     out=str(folder / "model"), preset="tiny", seq_len=32, batch_size=8, max_steps=3, held_out=0.1,
    ...     shards_dir=str(folder / "shards"), progress=False))
    >>> summary["steps"], sorted(p.name for p in (folder / "model").glob("*.safetensors"))
    (3, ['model.safetensors'])
    """
    device = distributed.setup(settings.device)
    rank, world = distributed.rank(), distributed.world_size()
    try:
        return _pretrain(settings, device, rank, world)
    finally:
        distributed.teardown()


def _pretrain(settings: PretrainSettings, device: torch.device, rank: int, world: int) -> dict:
    # Claimed before the corpus is read: a refused --out costs the user nothing.
    with OutputFolder(settings.out, resume=settings.resume, overwrite=settings.overwrite,
                      main_process=rank == 0) as folder:
        return _pretrain_into(folder, settings, device, rank, world)


def _pretrain_into(folder: OutputFolder, settings: PretrainSettings, device: torch.device, rank: int,
                   world: int) -> dict:
    work = folder.work  # the run's checkpoint and log live here until the model is published
    tokenizer = Tokenizer.from_pretrained(settings.vocab)
    config = model_config(settings, tokenizer.vocab_size)
    masking = MaskingSettings(seq_len=settings.seq_len, mask_rate=settings.mask_rate,
                              whole_word_masking=settings.whole_word_masking,
                              pair_objective=settings.pair_objective, pair_rate=settings.pair_rate,
                              short_sequence_rate=settings.short_sequence_rate)
    vocabulary = Vocabulary.from_tokenizer(tokenizer)
    if masking.pair_objective == "nsp":
        # Where documents end is known from the lines alone: too few is said before any splitting.
        held = " (one of them held out for evaluation)" if settings.held_out > 0 else ""
        check_documents(settings.corpus, 3 if held else 2, f"next-sentence prediction{held}",
                        doc_per_line=settings.doc_per_line, otherwise="or use --pair-objective sop or none")

    # Process 0 tokenizes; the others wait, then find its shards by the same key.
    def shards():
        return build_shards(settings.corpus, tokenizer, cache_dir=settings.shards_dir,
                            text_format=settings.text_format, split_clauses=settings.split_clauses,
                            workers=settings.workers, progress=settings.progress and rank == 0,
                            doc_per_line=settings.doc_per_line)
    corpus = shards() if rank == 0 else None
    distributed.barrier()
    corpus = corpus or shards()
    if settings.progress and rank == 0:
        print(f"corpus: {corpus.describe()}")

    # Compiled, the batches come in a few fixed shapes: each compiled once, then replayed.
    train = PretrainingBatches(corpus, vocabulary, masking, settings.batch_size, seed=settings.training.seed,
                               held_out_fraction=settings.held_out, rank=rank, world_size=world,
                               fixed_shapes=settings.compile)
    held_out = None
    if settings.held_out > 0 and rank == 0:
        # The global batch size here too: the held-out masks do not depend on the process count.
        held_out = PretrainingBatches(corpus, vocabulary, masking, settings.batch_size,
                                      seed=settings.training.seed, held_out_fraction=settings.held_out, held_out=True)

    torch.manual_seed(settings.training.seed)  # the same initial weights in every process
    model = (BertForPreTraining if masking.pairs else BertForMaskedLM)(config)
    args = settings.training
    precision = resolve_precision(args.precision, device)
    evaluate = None if held_out is None else (
        lambda module: evaluate_pretraining(module, held_out, device, settings.eval_sequences, precision))
    identity = {"corpus": corpus.directory.name, "masking": dataclasses.asdict(masking),
                "held_out": settings.held_out, "config": config.to_dict()}
    loop = TrainingLoop(model, train, args, work, evaluate=evaluate, metric="mlm_accuracy" if evaluate else None,
                        progress=settings.progress, device=device, compile_model=settings.compile,
                        compile_options={"mode": compile_mode(settings.compile_mode, device)},
                        batch_examples=lambda batch: len(batch["input_ids"]), run_identity=identity)
    state = loop.run(resume=settings.resume)

    (tokens,) = distributed.sum_over_processes([state.tokens])  # each process counted its own share
    summary: dict[str, Any] = {}
    if rank == 0:
        final = {}
        if evaluate is not None:
            model.eval()
            with torch.inference_mode():
                final = evaluate(model)
        summary = {
            "task": "pretraining", "steps": state.step, "epochs_completed": state.epoch,
            "stop_reason": state.stop_reason, "train_seconds": round(state.train_seconds, 2),
            "tokens": int(tokens), "tokens_per_second": round(tokens / max(state.train_seconds, 1e-9), 1),
            "processes": world, "device": str(device), "precision": precision,
            "held_out": final, "corpus": {"files": corpus.meta["files"], "documents": corpus.n_documents,
                                          "sentences": corpus.n_sentences, "tokens": corpus.n_tokens,
                                          "shards": str(corpus.directory)},
            "training_sequences": train.n_sequences,
            "settings": {key: value for key, value in settings.to_dict().items()
                         if key not in ("progress", "resume", "overwrite", "keep_checkpoint")},
        }
        # The whole folder at once: a reader never finds new weights beside an old config.
        with folder.publish(keep=kept_run_files(work, settings.keep_checkpoint)) as staging:
            save_pretrained(model, staging, tokenizer=tokenizer, metadata=summary)
            (staging / "pretraining_history.jsonl").write_text(
                "".join(json.dumps(record) + "\n" for record in state.history), encoding="utf-8")
    distributed.barrier()
    return summary
