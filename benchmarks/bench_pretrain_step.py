"""Pretraining step throughput: bertforge BertForPreTraining against transformers', same GPU.

A BERT of the chosen size (default BERT-base, sequence 128) does masked-LM +
next-sentence training steps (forward, backward, fused AdamW) on the same
synthetic batches on both sides: 15% of each row's tokens after [CLS] carry an
MLM label (rounded, as ``PretrainingBatches`` and Google's data script pick them),
half the pairs an NSP label of 1. Two length profiles: ``full`` (every sequence
128 tokens, as packed data gives) and ``mixed`` (lengths uniform in 32..128, as
sentence pairs give). Prints tokens/s (real tokens), model FLOPs utilisation
against the dense bf16 peak, and the ratio.

``--variants`` lists the bertforge set-ups to time against the one transformers
run: ``eager``; ``dynamic[:MODE]``, compiled for any shape; ``static[:MODE]``,
compiled for fixed shapes, with the batches padded as ``bertforge pretrain
--compile`` pads them (``data.pretraining.ShapeBuckets``: widths and token counts
bucketed, the labelled tokens filled to a fixed count): one graph per bucket, which
``static:reduce-overhead`` replays as a CUDA graph. MODE is torch.compile's mode
(default ``default``). The older ``--compile [--static] [--compile-mode M]`` is one
such variant. ``--profile`` prints each side's busiest kernels over a few more
steps; ``--json FILE`` appends one JSON line per measurement. ``--device cpu`` runs
the same code on the CPU (fp32, no MFU): a check of the script itself, not a
measurement.

bertforge gets, beside the tensors, what its data pipeline hands the model: the
padding layout and the labelled tokens worked out on the CPU
(``padding.Unpadding``, ``padding.TokenSelection``), so the step never waits on
the GPU and ``torch.compile`` traces it as one graph. With attention
dropout 0 (``--attention-dropout 0``, both sides) its attention runs on the
unpadded tokens through ``torch.nn.attention.varlen``.

    python benchmarks/bench_pretrain_step.py [--preset base] [--batch-size 128] [--steps 30] \
        [--attention-dropout 0.1] [--variants eager static static:reduce-overhead] \
        [--profiles full mixed] [--profile] [--json results.jsonl] [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch

from bertforge.data.pretraining import ShapeBuckets
from bertforge.model.layout import TokenSelection, Unpadding

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def make_batches(count, batch, length, vocab, profile, device, seed=0, fixed=False):
    """``count`` batches of the profile; ``fixed``: padded to their bucket's shapes, as
    ``PretrainingBatches(fixed_shapes=True)`` pads them (the same rows and labels)."""
    buckets = ShapeBuckets(length, batch, 0.15, pairs=True)
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
        capacity = width = None
        if fixed:  # every row is `length` wide here: the token count and the labels are bucketed
            layout = layout.fill_to(buckets.tokens(layout.indices.numel(), length))
            capacity, width = buckets.labels(layout.indices.numel(), len(positions)), buckets.query_width(length)
        selection = TokenSelection.for_predictions(positions, layout.cu_seqlens, include_first=True,
                                                   capacity=capacity, width=width)
        batches.append(tuple(t.to(device) for t in (ids, mask, segments, labels, nsp))
                       + (selection.to(device), layout.to(device)))
    return batches


def flops_per_step(config, batches):
    """Model FLOPs (6 x parameters x tokens for the encoder, plus attention), on real tokens."""
    from bertforge.model.flops import model_flops_per_token

    tokens = sum(int(b[1].sum()) for b in batches) / len(batches)
    return model_flops_per_token(config, batches[0][0].shape[1]) * tokens, tokens


COMPILE_MODES = ["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]


def device_name(device):
    return torch.cuda.get_device_name() if device == "cuda" else "CPU"


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_steps(step, batches, device, warmup=8, per_shape=0):
    """Seconds per step over ``batches[warmup:]``, after the warm-up batches; with
    ``per_shape``, each batch shape also runs that many times first (a static compile
    makes a graph per shape, and CUDA graphs record at the second call)."""
    if per_shape:
        firsts = {}
        for batch in batches:
            firsts.setdefault((batch[-2].flat.numel(), batch[-1].indices.numel()), batch)
        for batch in firsts.values():
            for _ in range(per_shape):
                step(*batch)
    for batch in batches[:warmup]:
        step(*batch)
    synchronize(device)
    started = time.perf_counter()
    for batch in batches[warmup:]:
        step(*batch)
    synchronize(device)
    return (time.perf_counter() - started) / (len(batches) - warmup)


def count_syncs(step, batches, device, steps=3):
    """Host synchronisations per step that CUDA's sync debug mode reports (after the
    warm-up, so compiling is not counted); None on a CPU, which has none to count."""
    if device != "cuda":
        return None
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for batch in batches[:steps]:
                step(*batch)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(warning.message) for warning in caught) / steps


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
    parser.add_argument("--variants", nargs="+",
                        help="bertforge set-ups: eager, dynamic[:MODE], static[:MODE] (default: eager)")
    parser.add_argument("--compile", action="store_true", help="one compiled variant (dynamic, or --static)")
    parser.add_argument("--static", action="store_true", help="with --compile: compile for fixed shapes")
    parser.add_argument("--compile-mode", default="default", choices=COMPILE_MODES)
    parser.add_argument("--profiles", nargs="+", default=["full", "mixed"], choices=["full", "mixed"])
    parser.add_argument("--profile", action="store_true", help="print each side's busiest kernels")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--json", help="append one JSON line per measurement to this file")
    parser.add_argument("--sync-check", action="store_true",
                        help="count bertforge's host synchronisations per step (CUDA's sync debug mode)")
    args = parser.parse_args()
    device = args.device
    variants = args.variants or ([f"{'static' if args.static else 'dynamic'}:{args.compile_mode}"]
                                 if args.compile else ["eager"])
    for variant in variants:
        kind, _, mode = variant.partition(":")
        if kind not in ("eager", "dynamic", "static") or (mode and mode not in COMPILE_MODES) or \
                (kind == "eager" and mode):
            parser.error(f"--variants: {variant!r} is not eager, dynamic[:MODE] or static[:MODE] "
                         f"(MODE one of {', '.join(COMPILE_MODES)})")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU (--device cpu checks the script on a CPU)")

    import transformers

    from bertforge import BertConfig, BertForPreTraining

    torch.backends.cuda.matmul.allow_tf32 = True
    config = BertConfig.preset(args.preset, vocab_size=30522, attention_probs_dropout_prob=args.attention_dropout)
    name = device_name(device)
    peak = next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)
    print(f"device: {name}, torch {torch.__version__}, transformers {transformers.__version__}; "
          f"{args.preset} ({config.num_hidden_layers}x{config.hidden_size}), seq {args.seq_len}, "
          f"batch {args.batch_size}, attention dropout {args.attention_dropout}, "
          f"{'bf16 autocast' if device == 'cuda' else 'fp32'}, fused AdamW; bertforge: {', '.join(variants)}",
          flush=True)

    def autocast():
        if device == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def ours_step_factory(variant):
        torch.manual_seed(0)
        model = BertForPreTraining(config).to(device).train()
        runner = model
        kind, _, mode = variant.partition(":")
        if kind != "eager":
            import torch._dynamo as dynamo

            limit = "recompile_limit" if hasattr(dynamo.config, "recompile_limit") else "cache_size_limit"
            setattr(dynamo.config, limit, max(getattr(dynamo.config, limit), 64))  # a graph per shape
            runner = torch.compile(model, dynamic=kind == "dynamic", mode=None if mode in ("", "default") else mode)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step(ids, mask, segments, labels, nsp, selection, layout):
            if runner is not model:  # a new step: CUDA graphs may reuse the last one's outputs
                torch.compiler.cudagraph_mark_step_begin()
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

    warmup = 8
    for profile in args.profiles:
        batches = make_batches(args.steps, args.batch_size, args.seq_len, config.vocab_size, profile, device)
        fixed = make_batches(args.steps, args.batch_size, args.seq_len, config.vocab_size, profile, device, fixed=True)
        shapes = len({(b[-2].flat.numel(), b[-1].indices.numel()) for b in fixed})
        flops, tokens = flops_per_step(config, batches)  # real tokens: padding earns nothing
        results = {}
        sides = [("transformers", "", theirs_step_factory, batches)]
        sides += [("bertforge", variant, lambda v=variant: ours_step_factory(v),
                   fixed if variant.startswith("static") else batches) for variant in variants]
        for label, variant, factory, timed in sides:
            step = factory()
            # A static compile makes a graph per shape; warm each up before the clock starts.
            seconds = time_steps(step, timed, device, warmup, per_shape=3 if variant.startswith("static") else 0)
            results[variant or label] = tokens / seconds
            mfu = flops / seconds / (peak * 1e12) if peak else None
            syncs = count_syncs(step, timed, device) if args.sync_check and variant else None
            who = f"{label} {variant}".strip()
            print(f"  {profile:<6}{who:<36}{tokens / seconds:>14,.0f} tokens/s"
                  + (f", MFU {mfu:.1%}" if mfu is not None else "") + f", {seconds * 1e3:.1f} ms/step"
                  + (f", {syncs:g} host syncs/step" if syncs is not None else ""), flush=True)
            if args.json:
                with open(args.json, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps({
                        "device": device_name(device), "preset": args.preset,
                        "batch_size": args.batch_size, "seq_len": args.seq_len,
                        "attention_dropout": args.attention_dropout, "profile": profile, "side": label,
                        "variant": variant or "eager", "tokens_per_second": round(tokens / seconds, 1),
                        "step_ms": round(seconds * 1e3, 3), "mfu": None if mfu is None else round(mfu, 4),
                        "shapes": shapes if variant.startswith("static") else None,
                        "host_syncs_per_step": syncs}) + "\n")
            if args.profile:
                print_profile(f"{who}, {profile}", step, timed, device)
            del step
            if device == "cuda":
                torch.cuda.empty_cache()
        for variant in variants:
            print(f"  {profile:<6}ratio {variant:<28}{results[variant] / results['transformers']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
