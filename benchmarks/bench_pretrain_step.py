"""Pretraining step throughput: bertforge BertForPreTraining against transformers', same GPU.

A BERT of the chosen size (default BERT-base, sequence 128) does masked-LM +
next-sentence training steps (forward, backward, fused AdamW) on the same
synthetic batches on both sides: 15% of real tokens carry an MLM label, half the
pairs an NSP label of 1. Two length profiles: ``full`` (every sequence 128 tokens,
as packed data gives) and ``mixed`` (lengths uniform in 32..128, as sentence pairs
give). Prints tokens/s (real tokens), model FLOPs utilisation against the dense
bf16 peak, and the ratio.

bertforge gets, beside the tensors, what its data pipeline hands the model: the
padding layout and the labelled positions worked out on the CPU
(``padding.Unpadding``), so the step never waits on the GPU. With attention
dropout 0 (``--attention-dropout 0``, both sides) its attention runs on the
unpadded tokens through ``torch.nn.attention.varlen``.

    python benchmarks/bench_pretrain_step.py [--preset base] [--batch-size 128] [--steps 30] \
        [--attention-dropout 0.1] [--compile]
"""

from __future__ import annotations

import argparse
import time

import torch

from bertforge.padding import Unpadding

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
        chosen = (torch.rand(batch, length, generator=generator) < 0.15) & mask.bool()
        chosen[:, 0] = False
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        nsp = torch.randint(0, 2, (batch,), generator=generator)
        layout = Unpadding.from_mask(mask)
        positions = torch.nonzero(labels.reshape(-1)[layout.indices] != -100, as_tuple=True)[0]
        batches.append(tuple(t.to(device) for t in (ids, mask, segments, labels, nsp, positions))
                       + (layout.to(device),))
    return batches


def flops_per_step(config, batches):
    """Model FLOPs (6 x parameters x tokens for the encoder, plus attention), on real tokens."""
    from bertforge.model import model_flops_per_token

    tokens = sum(int(b[1].sum()) for b in batches) / len(batches)
    return model_flops_per_token(config, batches[0][0].shape[1]) * tokens, tokens


def time_steps(step, batches, warmup=8):
    for batch in batches[:warmup]:
        step(*batch)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in batches[warmup:]:
        step(*batch)
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / (len(batches) - warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--attention-dropout", type=float, default=0.1, help="both sides")
    parser.add_argument("--compile", action="store_true", help="torch.compile bertforge's model")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")

    import transformers

    from bertforge import BertConfig, BertForPreTraining

    torch.backends.cuda.matmul.allow_tf32 = True
    config = BertConfig.preset(args.preset, vocab_size=30522, attention_probs_dropout_prob=args.attention_dropout)
    name = torch.cuda.get_device_name()
    peak = next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)
    print(f"device: {name}, torch {torch.__version__}, transformers {transformers.__version__}; "
          f"{args.preset} ({config.num_hidden_layers}x{config.hidden_size}), seq {args.seq_len}, "
          f"batch {args.batch_size}, attention dropout {args.attention_dropout}, bf16 autocast, fused AdamW"
          f"{', compiled' if args.compile else ''}")

    def ours_step_factory():
        torch.manual_seed(0)
        model = BertForPreTraining(config).cuda().train()
        runner = torch.compile(model, dynamic=True) if args.compile else model
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step(ids, mask, segments, labels, nsp, positions, layout):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = runner(ids, mask, segments, masked_lm_labels=labels, next_sentence_label=nsp,
                              masked_lm_positions=positions, unpadding=layout).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    def theirs_step_factory():
        torch.manual_seed(0)
        hf_config = transformers.BertConfig(**config.to_dict(), attn_implementation="sdpa")
        model = transformers.BertForPreTraining(hf_config).cuda().train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step(ids, mask, segments, labels, nsp, positions, layout):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(input_ids=ids, attention_mask=mask, token_type_ids=segments, labels=labels,
                             next_sentence_label=nsp).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    for profile in ("full", "mixed"):
        batches = make_batches(args.steps, args.batch_size, args.seq_len, config.vocab_size, profile, "cuda")
        flops, tokens = flops_per_step(config, batches)
        results = {}
        for label, factory in (("transformers", theirs_step_factory), ("bertforge", ours_step_factory)):
            seconds = time_steps(factory(), batches)
            results[label] = tokens / seconds
            mfu = f", MFU {flops / seconds / (peak * 1e12):.1%}" if peak else ""
            print(f"  {profile:<6}{label:<14}{tokens / seconds:>14,.0f} tokens/s{mfu}", flush=True)
            torch.cuda.empty_cache()
        print(f"  {profile:<6}ratio {results['bertforge'] / results['transformers']:.2f}x")


if __name__ == "__main__":
    main()
