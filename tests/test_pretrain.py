"""The pretraining job end to end: commands, resume, data parallel, what the model opens in."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch
import torch

from bertforge.cli.app import main
from bertforge.io.load import load_pretrained
from bertforge.model.config import BertConfig
from bertforge.data.pretraining import MaskingSettings, PretrainingBatches, Vocabulary
from bertforge.data.shards import build_shards
from bertforge.model.heads import BertForMaskedLM, BertForPreTraining
from bertforge.text.tokenizer import Tokenizer
from bertforge.training.arguments import TrainingArguments
from bertforge.training.loop import TrainingLoop

TOPICS = ["the river ran cold under the old stone bridge", "a raven sat upon the bust above my chamber door",
          "the cask was opened in the deep and silent vault", "we walked along the shore until the light failed",
          "the letter lay in plain sight upon the table", "a bell tolled somewhere far beyond the hills"]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrain")
    rng = np.random.default_rng(0)
    documents = []
    for d in range(60):
        sentences = []
        for s in range(5):
            words = TOPICS[(d + s) % len(TOPICS)].split()
            rng.shuffle(words[2:])
            sentences.append(" ".join(words).capitalize() + ".")
        documents.append(" ".join(sentences))  # prose: sentences to be split by the reader
    path = folder / "corpus.txt"
    path.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    return path


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def pretrained(corpus_file, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    assert main(["vocab", str(corpus_file), "--vocab-size", "120", "--out", str(folder / "vocab"), "--quiet"]) == 0
    assert main(["pretrain", str(corpus_file), "--vocab", str(folder / "vocab"), "--out", str(folder / "bert"),
                 "--shards", str(folder / "shards"), "--preset", "tiny", "--seq-len", "48", "--batch-size", "8",
                 "--max-steps", "8", "--eval-every", "4", "--held-out", "0.1", "--workers", "1", "--quiet"]) == 0
    return folder


def test_vocab_command_writes_a_bert_vocabulary(pretrained):
    tokenizer = Tokenizer.from_pretrained(pretrained / "vocab")
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (pretrained / "vocab" / "vocab.txt").is_file() and (pretrained / "vocab" / "tokenizer.json").is_file()
    assert tokenizer.vocab_size <= 120 and tokenizer.do_lower_case


def test_pretrain_writes_a_model_directory_with_its_record(pretrained):
    model_dir = pretrained / "bert"
    meta = json.loads((model_dir / "bertforge.json").read_text())
    assert meta["steps"] == 8 and meta["stop_reason"] == "max_steps"
    assert 0 <= meta["held_out"]["mlm_accuracy"] <= 1 and meta["held_out"]["masked_tokens"] > 0
    assert "pair_accuracy" in meta["held_out"]
    log = [json.loads(line) for line in (model_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "val_mlm_accuracy" in r] == [4, 8]
    assert all(r["tokens_per_second"] > 0 for r in log if "train_loss" in r)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["hidden_size"] == 128


def test_transformers_opens_it_with_the_same_logits(pretrained):
    transformers = pytest.importorskip("transformers")
    model_dir = pretrained / "bert"
    ours = load_pretrained(model_dir, BertForPreTraining).eval()
    theirs = transformers.BertForPreTraining.from_pretrained(model_dir).eval()
    tokenizer = Tokenizer.from_pretrained(model_dir)
    batch = tokenizer.encode_batch(["The raven sat upon the bridge.", "A bell tolled far"],
                                   ["The cask was opened.", "in the vault"], max_length=32)
    ids, mask, segments = (torch.from_numpy(batch[k]) for k in ("input_ids", "input_mask", "segment_ids"))
    with torch.no_grad():
        mine = ours(ids, mask, segments)
        reference = theirs(input_ids=ids, attention_mask=mask, token_type_ids=segments)
    real = mask.bool()
    torch.testing.assert_close(mine.prediction_logits[real], reference.prediction_logits[real], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mine.seq_relationship_logits, reference.seq_relationship_logits, atol=1e-4,
                               rtol=1e-4)


def test_fill_mask_and_finetune_use_the_pretrained_model(pretrained, tmp_path, capsys):
    code, out, _ = _cli(capsys, "fill-mask", "--model", pretrained / "bert", "The [MASK] sat upon the bust",
                        "--top-k", "3")
    assert code == 0 and out.startswith("[MASK] 1: ") and len(out.split("  ")) == 3
    rows = ["text,label"] + [f"{TOPICS[i % 2]} number {i},{'a' if i % 2 else 'b'}" for i in range(40)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    code, out, err = _cli(capsys, "finetune", "--train", tmp_path / "train.csv", "--model", pretrained / "bert",
                          "--out", tmp_path / "clf", "--epochs", "1", "--batch-size", "8", "--quiet")
    assert code == 0, err
    assert (tmp_path / "clf" / "model.safetensors").is_file()


def test_fill_mask_without_a_mask_is_one_line(pretrained, capsys):
    code, _, err = _cli(capsys, "fill-mask", "--model", pretrained / "bert", "No mask here")
    assert code == 1 and "[MASK]" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("objective", ["nsp", "none"])
def test_resume_after_a_kill_gives_the_same_weights(corpus_file, tmp_path, objective):
    tokenizer = Tokenizer.train([corpus_file], vocab_size=120)
    shards = build_shards(corpus_file, tokenizer, cache_dir=tmp_path / "shards", workers=1)
    config = BertConfig.preset("tiny", vocab_size=tokenizer.vocab_size)  # dropout 0.1: RNG state matters

    def run(out, stop_after=None, resume=False):
        torch.manual_seed(0)
        source = PretrainingBatches(shards, Vocabulary.from_tokenizer(tokenizer),
                                    MaskingSettings(seq_len=32, pair_objective=objective), batch_size=4,
                                    held_out_fraction=0.0)
        model = BertForPreTraining(config)
        args = TrainingArguments(epochs=None, max_steps=7, learning_rate=1e-3, checkpoint_every=1, log_every=1)
        loop = TrainingLoop(model, source, args, out, progress=False)
        loop.run(resume=resume, stop_after_steps=stop_after)
        return model

    straight = run(tmp_path / "straight")
    run(tmp_path / "killed", stop_after=3)
    resumed = run(tmp_path / "killed", resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("objective", ["nsp", "none"])
def test_the_compiled_training_step_is_one_graph(corpus_file, tmp_path, objective):
    """What the data pipeline hands the model (layout, labelled tokens) lets
    torch.compile trace a training step whole: no graph break, which on a GPU would
    split the step's kernels (and its CUDA graph) and wait on the device. In
    evaluation mode the compiled model gives the eager model's losses."""
    import torch._dynamo

    tokenizer = Tokenizer.train([corpus_file], vocab_size=120)
    shards = build_shards(corpus_file, tokenizer, cache_dir=tmp_path / "shards", workers=1)
    source = PretrainingBatches(shards, Vocabulary.from_tokenizer(tokenizer),
                                MaskingSettings(seq_len=32, pair_objective=objective), batch_size=4,
                                held_out_fraction=0.0)
    batches = [batch for batch, _ in zip(source.epoch(0), range(3))]
    torch.manual_seed(0)
    model_class = BertForPreTraining if objective == "nsp" else BertForMaskedLM  # as the pretrain command picks
    model = model_class(BertConfig.preset("tiny", vocab_size=tokenizer.vocab_size))
    compiled = torch.compile(model, backend="eager", fullgraph=True, dynamic=True)  # as TrainingLoop does for any shape
    torch._dynamo.reset()
    try:
        for batch in batches:
            compiled(**batch).loss.backward()  # fullgraph: a graph break raises
        model.eval()
        with torch.no_grad():
            pairs = [(float(model(**batch).loss), float(compiled(**batch).loss)) for batch in batches]
    finally:
        torch._dynamo.reset()
    for eager, traced in pairs:
        assert traced == pytest.approx(eager, rel=1e-5)


def _shape_of(batch) -> tuple:
    """What a static compile specialises on: the padded grid, the token list and the selection."""
    selection, unpadding = batch["prediction_tokens"], batch["unpadding"]
    return (tuple(batch["input_ids"].shape), unpadding.indices.numel(), unpadding.filled,
            selection.flat.numel(), selection.width)


def _fixed_and_free_sources(corpus_file, tmp_path, objective):
    tokenizer = Tokenizer.train([corpus_file], vocab_size=120)
    shards = build_shards(corpus_file, tokenizer, cache_dir=tmp_path / "shards", workers=1)
    # Short sequences in pairs give rows of many lengths, and so batches of several shapes.
    masking = MaskingSettings(seq_len=32, pair_objective=objective, short_sequence_rate=0.5)
    sources = [PretrainingBatches(shards, Vocabulary.from_tokenizer(tokenizer), masking, batch_size=4,
                                  held_out_fraction=0.0, fixed_shapes=fixed) for fixed in (True, False)]
    config = BertConfig.preset("tiny", vocab_size=tokenizer.vocab_size, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)  # the same losses eager and compiled
    return sources, config


@pytest.mark.parametrize("objective", ["nsp", "none"])
def test_a_static_compiled_step_compiles_once_per_bucket_with_the_eager_losses(corpus_file, tmp_path, objective):
    """Fixed-shape batches (the same examples and masks, padded to their bucket's shapes:
    labelled tokens filled to a fixed count, widths and token counts bucketed) let a
    static compile (and a CUDA graph) replay one graph per bucket. Its losses and
    gradients are those of the eager model on the batches as they come, and the
    masked-LM count it reports stays the real number of labelled tokens."""
    import copy

    import torch._dynamo
    from torch._dynamo.testing import CompileCounterWithBackend

    (fixed, free), config = _fixed_and_free_sources(corpus_file, tmp_path, objective)
    pairs = list(zip(fixed.epoch(0), free.epoch(0)))
    by_shape: dict[tuple, list] = {}
    for pair in pairs:
        by_shape.setdefault(_shape_of(pair[0]), []).append(pair)
    # The two most common shapes, several batches each: two graphs for all of them.
    common = sorted(by_shape.values(), key=len, reverse=True)[:2]
    chosen = [pair for group in common for pair in group[:3]]
    assert len(by_shape) >= 2 and len(chosen) >= 5
    # One shape holds batches of other real token and label counts.
    assert len({(int(batch["unpadding"].cu_seqlens[-1]), int(batch["prediction_tokens"].labelled_count))
                for batch, _ in common[0][:3]}) > 1

    torch.manual_seed(0)
    model_class = BertForPreTraining if objective == "nsp" else BertForMaskedLM
    eager = model_class(config)
    traced = copy.deepcopy(eager)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(traced, backend=counter, fullgraph=True, dynamic=False)  # as TrainingLoop does
    torch._dynamo.reset()
    try:
        for fixed_batch, free_batch in chosen:
            mine, theirs = compiled(**fixed_batch), eager(**free_batch)
            assert float(mine.loss.detach()) == pytest.approx(float(theirs.loss.detach()), rel=1e-5)
            assert [int(count) for _, count in mine.loss_terms] == [int(count) for _, count in theirs.loss_terms]
            mine.loss.backward()
            theirs.loss.backward()
    finally:
        torch._dynamo.reset()
    assert counter.frame_count == len(common)  # no recompilation within a bucket
    for (name, a), b in zip(eager.named_parameters(), traced.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_the_loop_compiles_fixed_shape_batches_statically_with_the_eager_run(corpus_file, tmp_path):
    """``--compile``'s path through the loop: a source of fixed-shape batches is compiled
    for static shapes, one graph per shape met, and trains as the eager loop does."""
    import torch._dynamo
    from torch._dynamo.testing import CompileCounterWithBackend

    (fixed, free), config = _fixed_and_free_sources(corpus_file, tmp_path, "nsp")
    steps = 4
    shapes = {_shape_of(batch) for batch, _ in zip(fixed.epoch(0), range(steps))}
    runs = {}
    counter = CompileCounterWithBackend("aot_eager")
    torch._dynamo.reset()
    try:
        for name, source, options in (("eager", free, None), ("compiled", fixed, {"backend": counter})):
            torch.manual_seed(0)
            model = BertForPreTraining(config)
            args = TrainingArguments(epochs=None, max_steps=steps, learning_rate=1e-3, log_every=1,
                                     checkpoint_every=None)
            loop = TrainingLoop(model, source, args, tmp_path / name, progress=False,
                                compile_model=options is not None, compile_options=options)
            state = loop.run()
            runs[name] = ([record["train_loss"] for record in state.history if "train_loss" in record], model)
    finally:
        torch._dynamo.reset()
    assert counter.frame_count == len(shapes) >= 2  # a graph per shape (a dynamic compile: one for all)
    (eager_losses, eager_model), (compiled_losses, compiled_model) = runs["eager"], runs["compiled"]
    assert len(compiled_losses) == steps and compiled_losses == pytest.approx(eager_losses, rel=1e-4)
    for (name, a), b in zip(eager_model.state_dict().items(), compiled_model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


def test_time_budget_ends_the_run(corpus_file, tmp_path, capsys):
    main(["vocab", str(corpus_file), "--vocab-size", "120", "--out", str(tmp_path / "vocab"), "--quiet"])
    code, out, err = _cli(capsys, "pretrain", corpus_file, "--vocab", tmp_path / "vocab", "--out", tmp_path / "m",
                          "--shards", tmp_path / "shards", "--preset", "tiny", "--seq-len", "32", "--batch-size",
                          "4", "--time-budget", "2s", "--held-out", "0", "--workers", "1", "--log-every", "1", "--quiet")
    assert code == 0, err
    meta = json.loads((tmp_path / "m" / "bertforge.json").read_text())
    assert meta["stop_reason"] == "time_budget" and meta["steps"] > 0


def test_a_time_budget_alone_schedules_the_learning_rate_by_the_clock(corpus_file, tmp_path):
    tokenizer = Tokenizer.train([corpus_file], vocab_size=120)
    shards = build_shards(corpus_file, tokenizer, cache_dir=tmp_path / "shards", workers=1)
    source = PretrainingBatches(shards, Vocabulary.from_tokenizer(tokenizer), MaskingSettings(seq_len=32),
                                batch_size=4, held_out_fraction=0.0)
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=tokenizer.vocab_size))
    args = TrainingArguments(epochs=None, time_budget=100.0, warmup_ratio=0.1, learning_rate=1.0)
    loop = TrainingLoop(model, source, args, tmp_path / "out", progress=False)
    factors = []
    for seconds in (0.0, 5.0, 10.0, 55.0, 100.0):
        loop.state.train_seconds = seconds
        loop.state.step = 12345  # the step count plays no part
        factors.append(loop.learning_rate_factor())
    assert factors[0] < 0.01 and factors[1] == pytest.approx(0.5, abs=0.01)
    assert factors[2] == pytest.approx(1.0, abs=0.01) and factors[3] == pytest.approx(0.5, abs=0.01)
    assert factors[4] == 0.0


def test_a_second_run_is_refused_unless_it_overwrites_or_resumes_a_kept_checkpoint(pretrained, corpus_file, capsys):
    argv = ["pretrain", corpus_file, "--vocab", pretrained / "vocab", "--out", pretrained / "bert", "--shards",
            pretrained / "shards", "--preset", "tiny", "--seq-len", "48", "--batch-size", "8", "--max-steps", "8",
            "--eval-every", "4", "--held-out", "0.1", "--workers", "1", "--quiet"]
    code, _, err = _cli(capsys, *argv)
    assert code == 1 and "already holds a model" in err and "--overwrite" in err
    # The finished folder keeps no checkpoint: nothing to resume, and the refusal says so.
    code, _, err = _cli(capsys, *argv, "--resume")
    assert code == 1 and "no checkpoint to resume" in err and "--keep-checkpoint" in err
    code, _, err = _cli(capsys, *argv, "--overwrite", "--keep-checkpoint")
    assert code == 0, err
    assert (pretrained / "bert" / "checkpoint.pt").is_file()
    code, _, err = _cli(capsys, *argv, "--resume")  # the run is finished: resuming it ends at once
    assert code == 0, err


@pytest.mark.parametrize("extra, message", [
    (["--seq-len", "1024", "--max-steps", "1"], "above the model's 512 positions"),
    (["--time-budget", "soon"], "not understood"),
])
def test_bad_settings_are_one_line(pretrained, corpus_file, tmp_path, capsys, extra, message):
    code, _, err = _cli(capsys, "pretrain", corpus_file, "--vocab", pretrained / "vocab", "--out", tmp_path / "m",
                        "--shards", pretrained / "shards", "--preset", "tiny", "--quiet", *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1  # bad usage, before any work
    assert not (tmp_path / "m").exists()


def test_bad_corpora_are_one_line(pretrained, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"caf\xe9 au lait\n" * 3)
    short = tmp_path / "short.txt"
    short.write_text("the\n\na\n\nthe\n")
    for corpus, message in ((empty, "no sentences"), (binary, "UTF-8"), (short, "longer than one token"),
                            (tmp_path / "missing.txt", "no such file")):
        code, _, err = _cli(capsys, "pretrain", corpus, "--vocab", pretrained / "vocab", "--out", tmp_path / "m",
                            "--shards", tmp_path / "shards", "--preset", "tiny", "--max-steps", "1", "--quiet",
                            "--text-format", "sentences")
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1, (corpus, err)


def test_vocab_too_small_is_one_line(corpus_file, tmp_path, capsys):
    code, _, err = _cli(capsys, "vocab", corpus_file, "--vocab-size", "4", "--out", tmp_path / "v", "--quiet")
    assert code == 1 and "special tokens" in err and len(err.strip().splitlines()) == 1


def _pretrain_with_processes(processes: int, pretrained, corpus_file, out, *extra) -> subprocess.CompletedProcess:
    """``bertforge pretrain`` under torchrun with ``processes`` CPU processes (gloo)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "-m", "bertforge", "pretrain", str(corpus_file), "--vocab", str(pretrained / "vocab"),
               "--out", str(out), "--shards", str(pretrained / "shards"), "--preset", "tiny", "--seq-len", "48",
               "--batch-size", "8", "--log-every", "1", "--held-out", "0.1", "--workers", "1", "--quiet",
               *map(str, extra)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.parametrize("objective", ["nsp", "none"])
def test_two_processes_are_the_same_run_as_one(pretrained, corpus_file, tmp_path, objective):
    """The global batch split over 2 processes (DDP, gloo) trains the same weights as 1 process.

    Masks and pairs are drawn for the global batch; each loss term is a sum over the
    process's labelled tokens divided by the count over all processes, so a process
    with few masked tokens weighs as much per token as one with many. Dropout is off:
    each process draws its own dropout masks (README, "Many processes"). What is left
    is float rounding in the order the gradients are summed."""
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"run{processes}"
        _pretrain_with_processes(processes, pretrained, corpus_file, out, "--max-steps", 20, "--dropout", 0,
                                 "--eval-every", 20, "--pair-objective", objective)
        records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        weights = safetensors.torch.load_file(out / "model.safetensors")  # as saved: no head made up
        runs[processes] = ({r["step"]: r["train_loss"] for r in records if "train_loss" in r}, weights,
                           [r["val_mlm_loss"] for r in records if "val_mlm_loss" in r])
    (losses1, weights1, val1), (losses2, weights2, val2) = runs[1], runs[2]
    assert sorted(losses1) == sorted(losses2) == list(range(1, 21))
    for step in losses1:  # the logged loss is the mean over the global batch, not a mean of means
        assert losses2[step] == pytest.approx(losses1[step], rel=1e-4, abs=1e-5)
    assert val2 == pytest.approx(val1, rel=1e-4)
    for name, tensor in weights1.items():
        torch.testing.assert_close(weights2[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    assert losses1[20] < losses1[1]  # and it did learn
