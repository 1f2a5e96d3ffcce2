"""Pretrain a BERT from scratch on your text (masked LM + a sentence-pair objective) and write a model directory.

Run it under torchrun for data-parallel training on several GPUs or processes."""

from __future__ import annotations

import argparse

from bertforge.cli.options import add_optimizer, time_budget

NAME = "pretrain"
SUMMARY = "pretrain a BERT from scratch on your text"
EPILOG = ("example: bertforge pretrain poe.txt --vocab runs/poe-vocab --out runs/poe-bert "
          "--preset mini --time-budget 20m   (several GPUs: torchrun --nproc-per-node 4 -m bertforge "
          "pretrain ...)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``PretrainSettings``, one each.

    The defaults are written here as well as on the settings, because reading them
    from ``bertforge.apps.pretrain`` would import torch for every ``--help``;
    ``tests/test_cli.py`` holds the two equal. The numbers' ranges are the settings'
    own checks (exit 2 before the vocabulary is opened).

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["poe.txt", "--vocab", "v", "--out", "m", "--time-budget", "20m"])
    >>> args.preset, args.seq_len, args.time_budget, args.pair_objective
    ('mini', 128, '20m', 'nsp')
    """
    parser.add_argument("corpus", nargs="+", help="text files, folders or globs (.gz too); a blank line ends a "
                                                  "document")
    parser.add_argument("--vocab", required=True, help="directory from bertforge vocab (or any BERT vocabulary)")
    parser.add_argument("--out", required=True, help="model directory to write (checkpoints and logs too)")
    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="mini", choices=["tiny", "mini", "small", "medium", "base", "large"],
                       help="2x128, 4x256, 4x512, 8x512, 12x768, 24x1024 (layers x hidden)")
    model.add_argument("--layers", type=int, help="encoder blocks (default: the preset's)")
    model.add_argument("--heads", type=int, help="attention heads (default: hidden / 64)")
    model.add_argument("--hidden", type=int, help="hidden size (default: the preset's)")
    model.add_argument("--intermediate", type=int, help="feed-forward size (default: 4 x hidden)")
    model.add_argument("--seq-len", type=int, default=128, help="sequence length in tokens, at most 512")
    model.add_argument("--dropout", type=float, help="hidden and attention dropout (default: 0.1)")
    data = parser.add_argument_group("data and objectives")
    data.add_argument("--mask-rate", type=float, default=0.15, help="share of the tokens the masked LM predicts")
    data.add_argument("--whole-word-masking", action="store_true", help="mask all pieces of a word together")
    data.add_argument("--pair-objective", choices=["nsp", "sop", "none"], default="nsp",
                      help="next-sentence prediction, sentence-order prediction, or none (sequences packed full)")
    data.add_argument("--pair-rate", type=float, default=0.5, help="share of random-next (nsp) or swapped (sop) pairs")
    data.add_argument("--held-out", type=float, default=0.01, help="fraction of documents kept for evaluation")
    data.add_argument("--text-format", choices=["auto", "sentences", "prose", "paragraphs"], default="auto",
                      help="one sentence per line, prose wrapped over lines, or one paragraph per line")
    data.add_argument("--split-clauses", action="store_true",
                      help="also split sentences at commas, semicolons and dashes")
    data.add_argument("--doc-per-line", action="store_true",
                      help="every line is a document (else a blank line or a '= Title =' line starts one)")
    data.add_argument("--shards", help="where token shards are kept (default: the user cache)")
    data.add_argument("--workers", type=int, help="processes for sentence splitting (default: all cores)")
    training = parser.add_argument_group("training")
    training.add_argument("--batch-size", type=int, default=32, help="sequences per step, all processes together")
    add_optimizer(training, learning_rate=5e-4, warmup_ratio=0.06)
    ends = training.add_mutually_exclusive_group()
    ends.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    ends.add_argument("--epochs", type=int, help="passes over the corpus (default: 1 when no other end is given)")
    ends.add_argument("--time-budget", help="train until this much time has passed: 90s, 20m, 1.5h")
    training.add_argument("--eval-every", type=int, default=500, help="steps between held-out evaluations")
    training.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    training.add_argument("--log-every", type=int, default=50, help="steps between lines in the training log")
    training.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                          help="auto: bf16 on a GPU, fp32 on a CPU")
    training.add_argument("--compile", action="store_true",
                          help="run the model through torch.compile (for GPUs: on a CPU the uncompiled model "
                               "with its own attention is faster)")
    training.add_argument("--compile-mode", default="auto",
                          choices=["auto", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                          help="with --compile: torch.compile's mode (auto: the fastest measured on the device)")
    training.add_argument("--device", help="cpu or cuda (default: a GPU when there is one)")
    training.add_argument("--seed", type=int, default=0, help="initial weights, masking and the held-out split")
    training.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    training.add_argument("--overwrite", action="store_true",
                          help="replace what --out holds (an earlier model) with this run's model")
    training.add_argument("--keep-checkpoint", action="store_true",
                          help="keep the resumable checkpoint in the finished model folder")
    training.add_argument("--quiet", action="store_true", help="no progress bars")


def settings(args: argparse.Namespace):
    """The ``PretrainSettings`` the options ask for."""
    from bertforge.apps.pretrain import PretrainSettings

    return PretrainSettings.of(
        corpus=args.corpus, vocab=args.vocab, out=args.out, preset=args.preset, layers=args.layers,
        heads=args.heads, hidden=args.hidden, intermediate=args.intermediate, seq_len=args.seq_len,
        dropout=args.dropout, batch_size=args.batch_size, learning_rate=args.learning_rate,
        weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, max_grad_norm=args.max_grad_norm or None,
        gradient_accumulation=args.gradient_accumulation, epochs=args.epochs, max_steps=args.max_steps,
        time_budget=time_budget(args), mask_rate=args.mask_rate,
        whole_word_masking=args.whole_word_masking, pair_objective=args.pair_objective, pair_rate=args.pair_rate,
        held_out=args.held_out, eval_every=args.eval_every or None, checkpoint_every=args.checkpoint_every or None,
        log_every=args.log_every, text_format=args.text_format, split_clauses=args.split_clauses,
        doc_per_line=args.doc_per_line,
        shards_dir=args.shards, workers=args.workers, precision=args.precision, compile=args.compile,
        compile_mode=args.compile_mode,
        device=args.device, seed=args.seed, resume=args.resume, overwrite=args.overwrite,
        keep_checkpoint=args.keep_checkpoint, progress=not args.quiet,
    )


def run(args: argparse.Namespace) -> int:
    """Pretrain; process 0 prints the run's summary and where the model is."""
    from bertforge.apps.pretrain import pretrain

    summary = pretrain(settings(args))
    if summary:  # process 0
        held = summary.get("held_out") or {}
        figures = ", ".join(f"{key} {value}" for key, value in held.items() if key != "masked_tokens")
        print(f"pretrained {summary['steps']} steps ({summary['stop_reason']}), "
              f"{summary['tokens_per_second']:,.0f} tokens/s{'; held-out ' + figures if figures else ''}")
        print(f"model: {args.out}")
    return 0
