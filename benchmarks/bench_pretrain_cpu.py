"""Pretraining from scratch on a CPU: bertforge against the transformers Trainer, same time budget.

Both sides pretrain the same small BERT (4 layers, hidden 256, 4 heads,
intermediate 1024, 512 positions, dropout 0.1) with a masked-LM objective on the
Poe corpus, with the same cased 8,000-piece WordPiece vocabulary trained on it,
sequences of 128, batches of 32, AdamW (learning rate 5e-4, weight decay 0.01,
6% warmup, linear decay, gradient clipping at 1.0) and seed 0, for the same
number of training seconds, one after the other in this process.

- bertforge: ``pretrain()`` with a time budget (its schedule follows the clock),
  sequences of whole sentences packed across documents, no pair objective.
- transformers: ``BertForMaskedLM`` (sdpa attention) under ``Trainer``, the
  training documents laid out as the ``run_mlm.py`` example does without
  ``line_by_line`` (each document ``[CLS] ... [SEP]``, concatenated, cut into
  blocks of exactly 128 tokens) and masked by ``DataCollatorForLanguageModeling``.
  The Trainer schedules by steps: about ten untimed steps estimate its speed,
  ``max_steps`` is set to fill the budget, and a callback also stops it when the
  budget has passed.

Both models are scored on the same held-out batches (bertforge's held-out
documents, masked once, identical on every call): masked-LM accuracy (argmax
correct / labelled tokens) and loss, at regular intervals of training time (the
evaluations are not counted as training time) and at the end. Tokens/s counts
real (non-padding) tokens. Printed: a table, the tokens/s ratio, the two
accuracy curves; written: JSON results and a PNG of the curves.

Before the two runs, ``--interleaved-rounds`` rounds (default 8, ~20 s each)
time training steps of both sides in turns (``interleaved_speed``): a tokens/s
ratio that the CPU's drift over the half hour of the two runs cannot bias.

    python benchmarks/bench_pretrain_cpu.py                     # 15 minutes per side
    python benchmarks/bench_pretrain_cpu.py --budget 900 --finetune-trec
    python benchmarks/bench_pretrain_cpu.py --budget 40 --work-dir /tmp/bpc --out /tmp/bpc/pretrain_cpu.json

With ``--finetune-trec`` the bertforge-pretrained model is then fine-tuned on
TREC-6 (as ``bertforge finetune --epochs 3 --batch-size 32 --learning-rate 1e-4``)
and a TF-IDF + logistic-regression baseline is scored on the same split.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
# The shared data folder beside the checkout; BERTFORGE_DATA points elsewhere.
DATA = Path(os.environ.get("BERTFORGE_DATA", ROOT.parent / "shared" / "data"))
IGNORE_INDEX = -100

MODEL = {"layers": 4, "hidden": 256, "heads": 4, "intermediate": 1024}
SEQ_LEN = 128
BATCH_SIZE = 32
VOCAB_SIZE = 8000
WEIGHT_DECAY = 0.01
WARMUP_RATIO = 0.06
MAX_GRAD_NORM = 1.0
MLM_PROBABILITY = 0.15


# -- machine ----------------------------------------------------------------------------


def machine_info() -> dict:
    import transformers

    cpu = platform.processor() or platform.machine()
    memory = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(), "memory": memory,
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "load_average_1min": round(os.getloadavg()[0], 2),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


# -- shared data ------------------------------------------------------------------------


def prepare_data(args, work: Path):
    """Vocabulary, token shards and the held-out evaluation batches both sides are scored on."""
    from bertforge.data.pretraining import MaskingSettings, PretrainingBatches, Vocabulary
    from bertforge.data.shards import build_shards
    from bertforge.text.tokenizer import Tokenizer

    started = time.perf_counter()
    # Training again on the same text does not give exactly the same pieces, and a new
    # vocabulary means new shards: a work folder keeps the vocabulary of its corpus.
    vocab_dir, source_file = work / "vocab", work / "vocab_source.json"
    stat = args.corpus.stat()
    source = {"corpus": str(args.corpus.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
              "vocab_size": VOCAB_SIZE, "lowercase": False}
    reused = source_file.is_file() and json.loads(source_file.read_text(encoding="utf-8")) == source
    if not reused:
        source_file.unlink(missing_ok=True)
        Tokenizer.train([str(args.corpus)], vocab_size=VOCAB_SIZE, lowercase=False).save(fresh(vocab_dir))
        source_file.write_text(json.dumps(source) + "\n", encoding="utf-8")
    tokenizer = Tokenizer.from_pretrained(vocab_dir)
    shards = build_shards([str(args.corpus)], tokenizer, cache_dir=work / "shards")
    held_out = PretrainingBatches(shards, Vocabulary.from_tokenizer(tokenizer),
                                  MaskingSettings(seq_len=SEQ_LEN, pair_objective="none"), batch_size=BATCH_SIZE,
                                  seed=args.seed, held_out_fraction=args.held_out, held_out=True)
    print(f"data: {args.corpus.name}: {shards.describe()}; vocabulary {tokenizer.vocab_size} pieces (cased"
          f"{', reused' if reused else ''}); "
          f"{held_out.n_sequences} held-out sequences ({time.perf_counter() - started:.1f} s)", flush=True)
    return tokenizer, Path(vocab_dir), shards, held_out


def settings_for(args, work: Path, vocab_dir: Path, out: Path, **overrides):
    from bertforge.apps.pretrain import PretrainSettings

    values = dict(corpus=[str(args.corpus)], vocab=str(vocab_dir), out=str(out), seq_len=SEQ_LEN,
                  batch_size=BATCH_SIZE, learning_rate=args.learning_rate, weight_decay=WEIGHT_DECAY,
                  warmup_ratio=WARMUP_RATIO, max_grad_norm=MAX_GRAD_NORM, dropout=0.1, pair_objective="none",
                  held_out=args.held_out, shards_dir=str(work / "shards"), progress=False, log_every=10,
                  seed=args.seed, **MODEL)
    values.update(overrides)
    return PretrainSettings.of(**values)


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def steps_per_second(times: list[float], skip: int = 2) -> float:
    """Steps per second from the end time of each step: the median step after the first ``skip``."""
    durations = np.diff([0.0, *times])
    durations = durations[skip:] if len(durations) > skip else durations
    return 1.0 / max(float(np.median(durations)), 1e-9)


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


# -- bertforge ---------------------------------------------------------------------------


def run_bertforge(args, work: Path, vocab_dir: Path, tokenizer, held_out) -> dict:
    from bertforge.io.load import load_pretrained
    from bertforge.model.heads import BertForMaskedLM
    from bertforge.apps.pretrain import evaluate_pretraining, model_config, pretrain

    device = torch.device("cpu")
    # A few untimed steps measure the speed, so the held-out evaluations can be
    # spaced in steps about as often (in training seconds) as on the Trainer side.
    calibration = pretrain(settings_for(
        args, work, vocab_dir, fresh(work / "bertforge_calibration"), max_steps=args.calibration_steps,
        eval_every=None, eval_sequences=BATCH_SIZE, checkpoint_every=None, log_every=1))
    times = [record["elapsed_s"] for record in read_jsonl(work / "bertforge_calibration" / "log.jsonl")
             if "train_loss" in record]
    speed = steps_per_second(times)
    eval_every = max(1, round(args.eval_every_s * speed))
    print(f"bertforge: {speed:.3f} steps/s over {calibration['steps']} calibration steps; "
          f"held-out evaluation every {eval_every} steps", flush=True)

    settings = settings_for(args, work, vocab_dir, fresh(work / "bertforge_model"), time_budget=args.budget,
                            eval_every=eval_every, eval_sequences=held_out.n_sequences, checkpoint_every=None)
    config = model_config(settings, tokenizer.vocab_size)
    torch.manual_seed(args.seed)  # the weights pretrain() starts from
    initial = evaluate_model_bertforge(BertForMaskedLM(config), held_out, evaluate_pretraining, device)

    print(f"bertforge: pretraining for {args.budget:.0f} s ...", flush=True)
    summary = pretrain(settings)
    log = read_jsonl(Path(settings.out) / "log.jsonl")
    model = load_pretrained(settings.out, BertForMaskedLM)
    final = evaluate_model_bertforge(model, held_out, evaluate_pretraining, device)
    curve = [{"seconds": 0.0, "step": 0, "accuracy": initial["mlm_accuracy"], "loss": initial["mlm_loss"]}]
    curve += [{"seconds": r["elapsed_s"], "step": r["step"], "accuracy": r["val_mlm_accuracy"],
               "loss": r["val_mlm_loss"]} for r in log if "val_mlm_accuracy" in r]
    if curve[-1]["step"] != summary["steps"]:
        curve.append({"seconds": summary["train_seconds"], "step": summary["steps"],
                      "accuracy": final["mlm_accuracy"], "loss": final["mlm_loss"]})
    train_losses = [r["train_loss"] for r in log if "train_loss" in r]
    return {
        "side": "bertforge", "steps": summary["steps"], "tokens": summary["tokens"],
        "train_seconds": summary["train_seconds"], "tokens_per_second": summary["tokens_per_second"],
        "held_out_mlm_accuracy": final["mlm_accuracy"], "held_out_mlm_loss": final["mlm_loss"],
        "held_out_masked_tokens": final["masked_tokens"], "held_out_in_summary": summary["held_out"],
        "last_train_loss": train_losses[-1] if train_losses else None, "stop_reason": summary["stop_reason"],
        "epochs_completed": summary["epochs_completed"], "training_sequences": summary["training_sequences"],
        "calibration_steps_per_second": round(speed, 4), "eval_every_steps": eval_every,
        "optimizer": "torch.optim.AdamW(fused=True)", "model_dir": settings.out, "curve": curve,
    }


def evaluate_model_bertforge(model, held_out, evaluate_pretraining, device) -> dict:
    model.eval()
    with torch.inference_mode():
        return evaluate_pretraining(model, held_out, device)


# -- transformers ------------------------------------------------------------------------


class BlockDataset(torch.utils.data.Dataset):
    """Rows of ``input_ids`` as ``run_mlm.py``'s ``group_texts`` gives them."""

    def __init__(self, blocks: np.ndarray):
        self.blocks = blocks
        self.ones = [1] * blocks.shape[1]
        self.zeros = [0] * blocks.shape[1]

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.blocks[index].tolist(), "token_type_ids": self.zeros,
                "attention_mask": self.ones}


def training_blocks(shards, tokenizer, fraction: float, seed: int) -> np.ndarray:
    """The training documents (not held out), each ``[CLS] tokens [SEP]``, back to back,
    cut into blocks of exactly ``SEQ_LEN`` tokens (the remainder dropped)."""
    from bertforge.data.pretraining import held_out_documents

    cls, sep = np.array([tokenizer.cls_id], dtype=np.int64), np.array([tokenizer.sep_id], dtype=np.int64)
    pieces = []
    for shard, held in zip(shards.shards, held_out_documents(shards, fraction, seed)):
        for document in np.flatnonzero(~held):
            begin, end = shard.document_token_range(int(document))
            pieces += [cls, np.asarray(shard.tokens[begin:end], dtype=np.int64), sep]
    flat = np.concatenate(pieces)
    usable = len(flat) // SEQ_LEN * SEQ_LEN
    return flat[:usable].reshape(-1, SEQ_LEN)


def evaluate_transformers(model, batches: list[dict]) -> dict:
    """Masked-LM loss and accuracy of a transformers model on the held-out batches."""
    was_training = model.training
    model.eval()
    loss_sum = correct = masked = 0.0
    with torch.inference_mode():
        for batch in batches:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["input_mask"],
                           token_type_ids=batch["segment_ids"]).logits
            labels = batch["masked_lm_labels"]
            chosen = labels != IGNORE_INDEX
            picked, targets = logits[chosen].float(), labels[chosen]
            loss_sum += float(torch.nn.functional.cross_entropy(picked, targets, reduction="sum"))
            correct += float((picked.argmax(-1) == targets).sum())
            masked += int(targets.numel())
    model.train(was_training)
    return {"mlm_loss": round(loss_sum / max(masked, 1.0), 5), "mlm_accuracy": round(correct / max(masked, 1.0), 5),
            "masked_tokens": int(masked)}


def transformers_config(config):
    """The same model as a transformers ``BertConfig`` (sdpa attention)."""
    import transformers

    return transformers.BertConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act, hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
        initializer_range=config.initializer_range, layer_norm_eps=config.layer_norm_eps,
        pad_token_id=config.pad_token_id, attn_implementation="sdpa")


def run_transformers(args, work: Path, vocab_dir: Path, tokenizer, shards, held_out, config) -> dict:
    import transformers
    from transformers import (BertTokenizerFast, DataCollatorForLanguageModeling, Trainer, TrainerCallback,
                              TrainingArguments)
    from transformers.trainer_callback import PrinterCallback

    hf_tokenizer = BertTokenizerFast.from_pretrained(str(vocab_dir))
    if hf_tokenizer.mask_token_id != tokenizer.mask_id or len(hf_tokenizer) != tokenizer.vocab_size:
        raise SystemExit(f"{vocab_dir}: transformers reads another vocabulary ({len(hf_tokenizer)} tokens, "
                         f"[MASK] {hf_tokenizer.mask_token_id}) than bertforge ({tokenizer.vocab_size}, "
                         f"{tokenizer.mask_id})")
    blocks = training_blocks(shards, tokenizer, args.held_out, args.seed)
    dataset = BlockDataset(blocks)
    collator = DataCollatorForLanguageModeling(tokenizer=hf_tokenizer, mlm_probability=MLM_PROBABILITY)
    eval_batches = list(held_out.evaluation_batches())
    hf_config = transformers_config(config)

    def new_model():
        transformers.set_seed(args.seed)
        model = transformers.BertForMaskedLM(hf_config)
        if model.config._attn_implementation != "sdpa":
            raise SystemExit(f"transformers picked {model.config._attn_implementation!r} attention, not sdpa")
        return model

    # transformers 5 takes the warmup ratio as a float warmup_steps (below 1); 4.x had warmup_ratio.
    warmup = ({"warmup_steps": WARMUP_RATIO}
              if "float" in str(next(f for f in dataclasses.fields(TrainingArguments) if f.name == "warmup_steps").type)
              else {"warmup_ratio": WARMUP_RATIO})

    def trainer_for(model, out: Path, max_steps: int, callbacks) -> Trainer:
        training_args = TrainingArguments(
            output_dir=str(out), max_steps=max_steps, per_device_train_batch_size=BATCH_SIZE,
            learning_rate=args.learning_rate, weight_decay=WEIGHT_DECAY, lr_scheduler_type="linear",
            max_grad_norm=MAX_GRAD_NORM, logging_steps=10, report_to=[], save_strategy="no",
            dataloader_num_workers=0, use_cpu=True, seed=args.seed, disable_tqdm=True,
            include_num_input_tokens_seen="non_padding", **warmup)
        trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=collator,
                          callbacks=callbacks)
        trainer.remove_callback(PrinterCallback)
        return trainer

    class StepTimes(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.started, self.times = time.perf_counter(), []

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self.started)

    class Budget(TrainerCallback):
        """Training clock (evaluations excluded), held-out evaluations, stop at the budget."""

        def __init__(self, model):
            self.model, self.curve, self.logs = model, [], []
            self.excluded = 0.0
            self.seconds = 0.0
            self.stopped_by_budget = False
            self.next_eval = args.eval_every_s

        def elapsed(self) -> float:
            return time.perf_counter() - self.started - self.excluded

        def on_train_begin(self, args_, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args_, state, control, **kwargs):
            self.seconds = self.elapsed()
            self.tokens = state.num_input_tokens_seen
            if self.seconds >= args.budget:
                control.should_training_stop = True
                self.stopped_by_budget = True
            elif self.seconds >= self.next_eval:
                paused = time.perf_counter()
                metrics = evaluate_transformers(self.model, eval_batches)
                self.curve.append({"seconds": round(self.seconds, 3), "step": state.global_step,
                                   "accuracy": metrics["mlm_accuracy"], "loss": metrics["mlm_loss"]})
                while self.next_eval <= self.seconds:
                    self.next_eval += args.eval_every_s
                self.excluded += time.perf_counter() - paused

        def on_log(self, args_, state, control, logs=None, **kwargs):
            self.logs.append({"step": state.global_step, **(logs or {})})

    # Untimed steps: the Trainer schedules by steps, so its speed sets max_steps.
    timer = StepTimes()
    trainer_for(new_model(), fresh(work / "transformers_calibration"), args.calibration_steps, [timer]).train()
    speed = steps_per_second(timer.times)
    max_steps = max(1, round(args.budget * speed))
    print(f"transformers: {speed:.3f} steps/s over {len(timer.times)} calibration steps; max_steps {max_steps}",
          flush=True)

    model = new_model()
    initial = evaluate_transformers(model, eval_batches)
    budget = Budget(model)
    trainer = trainer_for(model, fresh(work / "transformers_model"), max_steps, [budget])
    print(f"transformers: pretraining for {args.budget:.0f} s ...", flush=True)
    trainer.train()
    steps = trainer.state.global_step
    final = evaluate_transformers(model, eval_batches)
    curve = [{"seconds": 0.0, "step": 0, "accuracy": initial["mlm_accuracy"], "loss": initial["mlm_loss"]}]
    curve += budget.curve
    if curve[-1]["step"] != steps:
        curve.append({"seconds": round(budget.seconds, 3), "step": steps, "accuracy": final["mlm_accuracy"],
                      "loss": final["mlm_loss"]})
    train_losses = [record["loss"] for record in budget.logs if "loss" in record]
    tokens = int(budget.tokens)
    return {
        "side": "transformers", "steps": steps, "tokens": tokens, "train_seconds": round(budget.seconds, 2),
        "tokens_per_second": round(tokens / max(budget.seconds, 1e-9), 1),
        "held_out_mlm_accuracy": final["mlm_accuracy"], "held_out_mlm_loss": final["mlm_loss"],
        "held_out_masked_tokens": final["masked_tokens"],
        "last_train_loss": train_losses[-1] if train_losses else None,
        "stop_reason": "time_budget" if budget.stopped_by_budget else "max_steps",
        "training_sequences": len(blocks), "calibration_steps_per_second": round(speed, 4), "max_steps": max_steps,
        "optimizer": str(trainer.args.optim.value if hasattr(trainer.args.optim, "value") else trainer.args.optim),
        "curve": curve,
    }


# -- tokens/s, interleaved ------------------------------------------------------------


def interleaved_speed(args, vocab_dir: Path, tokenizer, shards, config) -> dict:
    """Training steps of both sides taken in turns, to read the tokens/s ratio free of drift.

    On a shared machine the CPU's speed drifts over minutes, and the two
    15-minute runs happen at different times. Here each round times 10 bertforge
    steps and then 5 transformers steps (about the same seconds) on fresh models
    of the same size: the step as each side's training runs it (forward, backward,
    clipping, fused AdamW with weight decay off for biases and LayerNorm), with
    each side's own data (bertforge's batches; transformers' blocks through its
    MLM collator). The Trainer's own bookkeeping is left out, which favours the
    transformers side slightly. The median of the per-round ratios is reported.
    """
    import transformers
    from transformers import BertTokenizerFast, DataCollatorForLanguageModeling

    from bertforge.data.pretraining import MaskingSettings, PretrainingBatches, Vocabulary
    from bertforge.model.heads import BertForMaskedLM
    from bertforge.training.loop import decay_groups

    def stepper(model, parameters, batches, count_tokens):
        optimizer = torch.optim.AdamW(decay_groups(model, WEIGHT_DECAY, args.learning_rate),
                                      lr=args.learning_rate, fused=True)
        model.train()

        def run(steps: int) -> float:
            tokens, started = 0, time.perf_counter()
            for _ in range(steps):
                batch = next(batches)
                tokens += count_tokens(batch)
                model(**batch).loss.backward()
                torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM, foreach=True)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            return tokens / (time.perf_counter() - started)
        return run

    torch.manual_seed(args.seed)
    ours = BertForMaskedLM(config)
    source = PretrainingBatches(shards, Vocabulary.from_tokenizer(tokenizer),
                                MaskingSettings(seq_len=SEQ_LEN, pair_objective="none"), batch_size=BATCH_SIZE,
                                seed=args.seed, held_out_fraction=args.held_out)
    our_batches = (batch for epoch in range(10**6) for batch in source.epoch(epoch))
    run_ours = stepper(ours, list(ours.parameters()), our_batches, lambda batch: int(batch["input_mask"].sum()))

    transformers.set_seed(args.seed)
    peer = transformers.BertForMaskedLM(transformers_config(config))
    dataset = BlockDataset(training_blocks(shards, tokenizer, args.held_out, args.seed))
    collator = DataCollatorForLanguageModeling(tokenizer=BertTokenizerFast.from_pretrained(str(vocab_dir)),
                                               mlm_probability=MLM_PROBABILITY)
    order = np.random.default_rng(args.seed).permutation(len(dataset))
    peer_batches = (collator([dataset[int(i)] for i in order[start:start + BATCH_SIZE]])
                    for epoch in range(10**6) for start in range(0, len(order) - BATCH_SIZE + 1, BATCH_SIZE))
    run_peer = stepper(peer, list(peer.parameters()), peer_batches, lambda batch: int(batch["attention_mask"].sum()))

    run_ours(3), run_peer(2)  # warm-up
    rounds = []
    for index in range(args.interleaved_rounds):
        ours_speed, peer_speed = run_ours(10), run_peer(5)
        rounds.append({"bertforge": round(ours_speed, 1), "transformers": round(peer_speed, 1),
                       "ratio": round(ours_speed / peer_speed, 3)})
        print(f"interleaved round {index + 1}/{args.interleaved_rounds}: bertforge {ours_speed:,.0f} tokens/s, "
              f"transformers {peer_speed:,.0f}, ratio {ours_speed / peer_speed:.2f}x", flush=True)
    ratios = sorted(r["ratio"] for r in rounds)
    median = float(np.median(ratios))
    return {"rounds": rounds, "median_ratio": round(median, 3), "min_ratio": ratios[0], "max_ratio": ratios[-1],
            "median_bertforge": round(float(np.median([r["bertforge"] for r in rounds])), 1),
            "median_transformers": round(float(np.median([r["transformers"] for r in rounds])), 1)}


# -- TREC-6 -----------------------------------------------------------------------------


def run_trec(args, work: Path, model_dir: str | None) -> dict:
    import csv

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train_path, test_path = args.data / "trec" / "train.csv", args.data / "trec" / "test.csv"
    if not train_path.is_file():
        print(f"{train_path}: not found; TREC-6 skipped", flush=True)
        return {}

    def read(path):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        return [row["text"] for row in rows], [row["label"] for row in rows]

    texts, labels = read(train_path)
    test_texts, test_labels = read(test_path)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    classifier = LogisticRegression(max_iter=2000).fit(vectorizer.fit_transform(texts), labels)
    predicted = classifier.predict(vectorizer.transform(test_texts))
    result = {"tfidf_logreg_accuracy": round(float(np.mean(predicted == np.asarray(test_labels))), 4),
              "tfidf_logreg": "TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + LogisticRegression()"}
    if model_dir is not None:
        from bertforge.apps.finetune import FineTuneSettings, run_finetune

        out = fresh(work / "trec_finetune")
        result["bertforge_command"] = (
            f"python -m bertforge finetune --train {train_path} --test {test_path} --model {model_dir} "
            f"--out {out} --epochs {args.trec_epochs} --batch-size 32 --learning-rate 1e-4 --quiet")
        started = time.perf_counter()
        run_finetune(FineTuneSettings.of(train=str(train_path), test=str(test_path), model=model_dir, out=str(out),
                                  epochs=args.trec_epochs, batch_size=32, learning_rate=1e-4, seed=args.seed,
                                  progress=False))
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        result.update({"bertforge_finetuned_accuracy": round(float(metrics["accuracy"]), 4),
                       "bertforge_finetune_epochs": args.trec_epochs,
                       "bertforge_finetune_seconds": round(time.perf_counter() - started, 1)})
    return result


# -- report ------------------------------------------------------------------------------


def plot(rows: list[dict], path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for row in rows:
        curve = row["curve"]
        axis.plot([p["seconds"] for p in curve], [p["accuracy"] for p in curve], marker="o", markersize=3,
                  label=f"{row['side']} ({row['tokens_per_second']:,.0f} tok/s)")
    axis.set_xlabel("training seconds")
    axis.set_ylabel("held-out masked-LM accuracy")
    axis.set_title(f"Pretraining from scratch on {args.corpus.name}, CPU "
                   f"({MODEL['layers']}x{MODEL['hidden']}, seq {SEQ_LEN}, batch {BATCH_SIZE})", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def portable(text: str, work: Path) -> str:
    """Results name the data as ../shared/data/... and the work folder as <work-dir>,
    not as paths of the machine that ran them."""
    text = text.replace(str(DATA.resolve()), "../shared/data").replace(str(DATA), "../shared/data")
    return text.replace(str(work.resolve()), "<work-dir>").replace(str(work), "<work-dir>")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DATA / "poe" / "poe.txt")
    parser.add_argument("--budget", type=float, default=900.0, help="training seconds per side (default: 900)")
    parser.add_argument("--eval-every-s", type=float, help="held-out evaluation every this many training seconds "
                                                           "(default: budget / 6)")
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--held-out", type=float, default=0.05, help="share of documents held out (default: 0.05)")
    parser.add_argument("--calibration-steps", type=int, default=10,
                        help="untimed steps per side that measure its speed (default: 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads (default: all usable cores)")
    parser.add_argument("--work-dir", type=Path, help="vocabulary, shards and models (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pretrain_cpu.json")
    parser.add_argument("--plot", type=Path, help="PNG of the curves (default: beside --out, NAME_curve.png)")
    parser.add_argument("--finetune-trec", action="store_true",
                        help="then fine-tune the bertforge model on TREC-6, with a TF-IDF baseline")
    parser.add_argument("--trec-epochs", type=int, default=3)
    parser.add_argument("--interleaved-rounds", type=int, default=8,
                        help="rounds of the interleaved tokens/s comparison, ~20 s each (0: skip it)")
    parser.add_argument("--skip-hf", action="store_true", help="bertforge only (no ratio)")
    parser.add_argument("--skip-ours", action="store_true", help="transformers only (no ratio)")
    args = parser.parse_args()
    args.data = DATA
    if not args.corpus.is_file():
        sys.exit(f"{args.corpus}: not found; place the shared data folder beside the checkout, "
                 "set BERTFORGE_DATA, or pass --corpus")
    if args.budget <= 0:
        sys.exit("--budget must be positive")
    args.eval_every_s = args.eval_every_s or args.budget / 6
    args.plot = args.plot or args.out.with_name(f"{args.out.stem}_curve.png")
    torch.set_num_threads(args.threads)

    temporary = None
    if args.work_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="bench_pretrain_cpu-")
        args.work_dir = Path(temporary.name)
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores ({machine['torch_threads']} torch threads), "
          f"torch {machine['torch']}, transformers {machine['transformers']}, {machine['date']}", flush=True)
    print(f"model: {MODEL['layers']} layers x {MODEL['hidden']}, {MODEL['heads']} heads, intermediate "
          f"{MODEL['intermediate']}; seq {SEQ_LEN}, batch {BATCH_SIZE}, lr {args.learning_rate}, budget "
          f"{args.budget:.0f} s per side, held-out evaluation every {args.eval_every_s:.0f} s", flush=True)

    from bertforge.apps.pretrain import model_config

    tokenizer, vocab_dir, shards, held_out = prepare_data(args, work)
    config = model_config(settings_for(args, work, vocab_dir, work / "unused", max_steps=1), tokenizer.vocab_size)
    interleaved = None
    if args.interleaved_rounds and not (args.skip_ours or args.skip_hf):
        interleaved = interleaved_speed(args, vocab_dir, tokenizer, shards, config)
    rows = []
    if not args.skip_ours:
        rows.append(run_bertforge(args, work, vocab_dir, tokenizer, held_out))
    if not args.skip_hf:
        rows.append(run_transformers(args, work, vocab_dir, tokenizer, shards, held_out, config))
    trec = None
    if args.finetune_trec:
        trec = run_trec(args, work, None if args.skip_ours else rows[0]["model_dir"])

    print()
    print(f"{'side':<14}{'steps':>7}{'tokens':>12}{'seconds':>9}{'tokens/s':>10}{'held-out acc':>14}"
          f"{'held-out loss':>15}{'stop':>13}")
    for row in rows:
        print(f"{row['side']:<14}{row['steps']:>7}{row['tokens']:>12,}{row['train_seconds']:>9.1f}"
              f"{row['tokens_per_second']:>10,.0f}{row['held_out_mlm_accuracy']:>14.4f}"
              f"{row['held_out_mlm_loss']:>15.4f}{row['stop_reason']:>13}")
    for row in rows:
        if row["stop_reason"] == "max_steps" and row["train_seconds"] < 0.9 * args.budget:
            print(f"note: {row['side']} reached max_steps after {row['train_seconds']:.0f} of {args.budget:.0f} s: "
                  "its calibration steps ran slower than training did (is something else using the CPU?)")
    load = round(os.getloadavg()[0], 2)
    if max(load, machine["load_average_1min"]) > args.threads + 0.5:
        print(f"note: load average {machine['load_average_1min']} at the start, {load} at the end, on "
              f"{args.threads} threads: other processes shared the CPU and the timings are not clean")
    comparison = {"load_average_1min_at_end": load}
    if len(rows) == 2:
        ours, peer = rows
        comparison.update({
            "tokens_per_second_ratio": round(ours["tokens_per_second"] / peer["tokens_per_second"], 3),
            "held_out_accuracy_difference": round(ours["held_out_mlm_accuracy"] - peer["held_out_mlm_accuracy"], 5),
            "bertforge_higher_accuracy": ours["held_out_mlm_accuracy"] > peer["held_out_mlm_accuracy"],
        })
        print(f"bertforge/transformers tokens/s: {comparison['tokens_per_second_ratio']:.2f}x; held-out accuracy "
              f"{ours['held_out_mlm_accuracy']:.4f} vs {peer['held_out_mlm_accuracy']:.4f}: bertforge is "
              f"{'higher' if comparison['bertforge_higher_accuracy'] else 'not higher'} "
              f"({comparison['held_out_accuracy_difference']:+.4f})")
    if interleaved:
        print(f"interleaved steps, {len(interleaved['rounds'])} rounds: bertforge/transformers tokens/s median "
              f"{interleaved['median_ratio']:.2f}x (range {interleaved['min_ratio']:.2f}-{interleaved['max_ratio']:.2f}; "
              f"{interleaved['median_bertforge']:,.0f} vs {interleaved['median_transformers']:,.0f} tokens/s)")
    print(f"held-out set: {held_out.n_sequences} sequences, "
          f"{rows[0]['held_out_masked_tokens'] if rows else 0} masked tokens")
    for row in rows:
        points = ", ".join(f"{p['seconds']:.0f}s {p['accuracy']:.4f}" for p in row["curve"])
        print(f"curve {row['side']}: {points}")
    if trec:
        line = f"TREC-6 test accuracy: TF-IDF + logistic regression {trec['tfidf_logreg_accuracy']:.4f}"
        if "bertforge_finetuned_accuracy" in trec:
            line += (f"; bertforge-pretrained model fine-tuned {trec['bertforge_finetune_epochs']} epochs "
                     f"{trec['bertforge_finetuned_accuracy']:.4f} ({trec['bertforge_finetune_seconds']:.0f} s)")
        print(line)

    result = {
        "benchmark": "pretrain_cpu", "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine,
        "settings": {"corpus": str(args.corpus), "budget_s": args.budget, "eval_every_s": args.eval_every_s,
                     "vocab_size": tokenizer.vocab_size, "lowercase": False, "seq_len": SEQ_LEN,
                     "batch_size": BATCH_SIZE, "learning_rate": args.learning_rate, "weight_decay": WEIGHT_DECAY,
                     "warmup_ratio": WARMUP_RATIO, "max_grad_norm": MAX_GRAD_NORM, "held_out": args.held_out,
                     "seed": args.seed, "threads": args.threads, "config": config.to_dict(),
                     "held_out_sequences": held_out.n_sequences, "corpus_documents": shards.n_documents,
                     "corpus_tokens": shards.n_tokens},
        "results": rows, **comparison,
    }
    if interleaved is not None:
        result["interleaved"] = interleaved
    if trec is not None:
        result["trec"] = trec
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(portable(json.dumps(result, indent=2), work) + "\n", encoding="utf-8")
    if rows:
        plot(rows, args.plot, args)
    print(f"wrote {args.out}" + (f" and {args.plot}" if rows else ""))
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()
