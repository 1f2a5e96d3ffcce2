"""Pretraining step throughput: bertforge BertForPreTraining against transformers', same GPU.

A BERT of the chosen size (default BERT-base, sequence 128) does masked-LM +
next-sentence training steps (forward, backward, fused AdamW) on the same
synthetic batches on both sides: 15% of each row's tokens after [CLS] carry an
MLM label (rounded, as ``PretrainingBatches`` and Google's data script pick them),
half the pairs an NSP label of 1. Two length profiles: ``full`` (every sequence
128 tokens, as packed data gives) and ``mixed`` (lengths uniform in 32..128, as
sentence pairs give). Prints tokens/s (real tokens), model FLOPs utilisation
against the dense bf16 peak, and the ratio.

``--compile`` compiles bertforge's model for any shape; ``--compile --static``
compiles it for the shapes of the ``full`` profile, which never change there (the
same token count and label count every step), so ``--compile-mode
reduce-overhead`` can replay the whole step's kernels as a CUDA graph.
``--profile`` prints each side's busiest kernels over a few more steps.
``--device cpu`` runs the same code on the CPU (fp32, no MFU): a check of the
script itself, not a measurement.

bertforge gets, beside the tensors, what its data pipeline hands the model: the
padding layout and the labelled tokens worked out on the CPU
(``padding.Unpadding``, ``padding.TokenSelection``), so the step never waits on
the GPU and ``torch.compile`` traces it as one graph. With attention
dropout 0 (``--attention-dropout 0``, both sides) its attention runs on the
unpadded tokens through ``torch.nn.attention.varlen``.

    python benchmarks/bench_pretrain_step.py [--preset base] [--batch-size 128] [--steps 30] \
        [--attention-dropout 0.1] [--compile [--static] [--compile-mode reduce-overhead]] \
        [--profiles full mixed] [--profile] [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from bertforge.model.layout import TokenSelection, Unpadding

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def make_batches(count, batch, length, vocab, profile, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        if profile == "full":
            lengths = torch.full((batch,), length)
        else:
            lengths = torch.randint(length // 4, length + 1, (batch,), generator=generator)
        positions = torch.arange(length)
        mask = (positions[None, :] < lengths[:, None]).long()
        ids = torch.randint(5, vocab, (batch, length), generator=generator) * mask
        segments = ((positions[None, :] >= (lengths[:, None] // 2)) & mask.bool()).long()
        # round(15%) of each row's tokens after [CLS], at random places among them.
        scores = torch.rand(batch, length, generator=generator).masked_fill(~mask.bool(), 2.0)
        scores[:, 0] = 2.0
        wanted = torch.round((lengths - 1) * 0.15).long()
        chosen = scores.argsort(dim=1).argsort(dim=1) < wanted[:, None]
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        nsp = torch.randint(0, 2, (batch,), generator=generator)
        layout = Unpadding.from_mask(mask)
        positions = torch.nonzero(labels.reshape(-1)[layout.indices] != -100, as_tuple=True)[0]
        selection = TokenSelection.for_predictions(positions, layout.cu_seqlens, include_first=True)
        batches.append(tuple(t.to(device) for t in (ids, mask, segments, labels, nsp))
                       + (selection.to(device), layout.to(device)))
    return batches


def flops_per_step(config, batches):
    """Model FLOPs (6 x parameters x tokens for the encoder, plus attention), on real tokens."""
    from bertforge.model.flops import model_flops_per_token

    tokens = sum(int(b[1].sum()) for b in batches) / len(batches)
    return model_flops_per_token(config, batches[0][0].shape[1]) * tokens, tokens


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_steps(step, batches, device, warmup=8):
    for batch in batches[:warmup]:
        step(*batch)
    synchronize(device)
    started = time.perf_counter()
    for batch in batches[warmup:]:
        step(*batch)
    synchronize(device)
    return (time.perf_counter() - started) / (len(batches) - warmup)


def print_profile(label, step, batches, device, rows=15):
    """The kernels (on a CPU: the operators) that took the most time over a few steps."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as profiler:
        for batch in batches[:5]:
            step(*batch)
        synchronize(device)
    key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    print(f"  busiest kernels, {label}, 5 steps:")
    print(profiler.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=70))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--attention-dropout", type=float, default=0.1, help="both sides")
    parser.add_argument("--compile", action="store_true", help="torch.compile bertforge's model")
    parser.add_argument("--static", action="store_true",
                        help="with --compile: compile for fixed shapes (the full profile keeps them)")
    parser.add_argument("--compile-mode", default="default",
                        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"])
    parser.add_argument("--profiles", nargs="+", default=["full", "mixed"], choices=["full", "mixed"])
    parser.add_argument("--profile", action="store_true", help="print each side's busiest kernels")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = parser.parse_args()
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU (--device cpu checks the script on a CPU)")

    import transformers

    from bertforge import BertConfig, BertForPreTraining

    torch.backends.cuda.matmul.allow_tf32 = True
    config = BertConfig.preset(args.preset, vocab_size=30522, attention_probs_dropout_prob=args.attention_dropout)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    peak = next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)
    compiled = ""
    if args.compile:
        compiled = f", compiled ({'static' if args.static else 'dynamic'} shapes, mode {args.compile_mode})"
    print(f"device: {name}, torch {torch.__version__}, transformers {transformers.__version__}; "
          f"{args.preset} ({config.num_hidden_layers}x{config.hidden_size}), seq {args.seq_len}, "
          f"batch {args.batch_size}, attention dropout {args.attention_dropout}, "
          f"{'bf16 autocast' if device == 'cuda' else 'fp32'}, fused AdamW{compiled}")

    def autocast():
        if device == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def ours_step_factory():
        torch.manual_seed(0)
        model = BertForPreTraining(config).to(device).train()
        runner = model
        if args.compile:
            mode = None if args.compile_mode == "default" else args.compile_mode
            runner = torch.compile(model, dynamic=False if args.static else True, mode=mode)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step(ids, mask, segments, labels, nsp, selection, layout):
            with autocast():
                loss = runner(ids, mask, segments, masked_lm_labels=labels, next_sentence_label=nsp,
                              prediction_tokens=selection, unpadding=layout).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    def theirs_step_factory():
        torch.manual_seed(0)
        hf_config = transformers.BertConfig(**config.to_dict(), attn_implementation="sdpa")
        model = transformers.BertForPreTraining(hf_config).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step(ids, mask, segments, labels, nsp, selection, layout):
            with autocast():
                loss = model(input_ids=ids, attention_mask=mask, token_type_ids=segments, labels=labels,
                             next_sentence_label=nsp).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    for profile in args.profiles:
        batches = make_batches(args.steps, args.batch_size, args.seq_len, config.vocab_size, profile, device)
        flops, tokens = flops_per_step(config, batches)
        results = {}
        for label, factory in (("transformers", theirs_step_factory), ("bertforge", ours_step_factory)):
            step = factory()
            seconds = time_steps(step, batches, device)
            results[label] = tokens / seconds
            mfu = f", MFU {flops / seconds / (peak * 1e12):.1%}" if peak else ""
            print(f"  {profile:<6}{label:<14}{tokens / seconds:>14,.0f} tokens/s{mfu}", flush=True)
            if args.profile:
                print_profile(f"{label}, {profile}", step, batches, device)
            del step
            if device == "cuda":
                torch.cuda.empty_cache()
        print(f"  {profile:<6}ratio {results['bertforge'] / results['transformers']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
