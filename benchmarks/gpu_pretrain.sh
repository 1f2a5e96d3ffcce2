#!/usr/bin/env bash
# The GPU checks of pretraining in one prepared run: step throughput and MFU against
# transformers (attention dropout 0.1 and 0; eager, then compiled), each side's busiest
# kernels, the pretrain command end to end under torchrun (NCCL) on the Poe corpus, and
# `bertforge estimate --measure`.
# POE: the Poe text (default .gpu/pretrain/poe/poe.txt, a git-ignored copy for a GPU
# machine without the shared data); EXTRA_PATH: where pysbd is if not installed.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=src:${EXTRA_PATH:-.gpu/pretrain/site} PYTHONUNBUFFERED=1
POE=${POE:-.gpu/pretrain/poe/poe.txt}
OUT=${OUT:-gpu-logs}
WORK=$(mktemp -d)
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; from bertforge.model.attention import _varlen_attn; print('torch', torch.__version__, 'transformers', transformers.__version__, 'varlen attention', _varlen_attn is not None)" | tee -a "$OUT/gpu.txt"
for dropout in 0.1 0; do
  python3 benchmarks/bench_pretrain_step.py --preset base --batch-size 128 --steps 30 --attention-dropout $dropout 2>&1 \
    | tee -a "$OUT/pretrain_step.txt"
done
# Compiled: fixed shapes (one graph, CUDA graphs with reduce-overhead) on full rows; any shape on mixed ones.
for mode in default reduce-overhead; do
  python3 benchmarks/bench_pretrain_step.py --preset base --batch-size 128 --steps 40 --attention-dropout 0.1 \
    --compile --static --compile-mode $mode --profiles full 2>&1 | grep -v -i warn | tee -a "$OUT/pretrain_step.txt"
done
python3 benchmarks/bench_pretrain_step.py --preset base --batch-size 128 --steps 40 --attention-dropout 0.1 --compile \
  --profiles mixed 2>&1 | grep -v -i warn | tee -a "$OUT/pretrain_step.txt"
# Where each side's step time goes, kernel by kernel (eager, full rows).
python3 benchmarks/bench_pretrain_step.py --preset base --batch-size 128 --steps 14 --attention-dropout 0.1 \
  --profiles full --profile 2>&1 | tee "$OUT/pretrain_kernels.txt"
python3 -m bertforge vocab "$POE" --vocab-size 8000 --cased --out "$WORK/vocab" --quiet 2>&1 | tee "$OUT/pretrain_e2e.txt"
torchrun --nproc-per-node 1 -m bertforge pretrain "$POE" --vocab "$WORK/vocab" --out "$WORK/model" --shards "$WORK/shards" \
  --preset small --seq-len 128 --batch-size 256 --max-steps 300 --eval-every 100 --log-every 50 --dropout 0 \
  --pair-objective none --held-out 0.05 --quiet 2>&1 | tail -5 | tee -a "$OUT/pretrain_e2e.txt"
tail -4 "$WORK/model/log.jsonl" | tee -a "$OUT/pretrain_e2e.txt"
python3 -m bertforge fill-mask --model "$WORK/model" "The [MASK] of Amontillado" 2>&1 | tee -a "$OUT/pretrain_e2e.txt"
python3 -m bertforge estimate --preset base --tokens 3.3B --measure --batch-size 128 --price 2-3 2>&1 | tee "$OUT/estimate.txt"
