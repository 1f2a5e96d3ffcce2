#!/usr/bin/env bash
# The GPU measurements in one prepared run (inference, fine-tuning, pretraining steps).
# MODEL_DIR: a BERT model directory (all-MiniLM-L6-v2 for the published figures);
# BERTFORGE_DATA: a folder holding trec/train.csv and trec/test.csv. The defaults point
# at a git-ignored .gpu/ folder where a copy of both is placed for a GPU machine that
# has neither the weights package nor the shared data. Logs go under OUT (./gpu-logs).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
MODEL_DIR=${MODEL_DIR:-.gpu/minilm}
export BERTFORGE_DATA=${BERTFORGE_DATA:-.gpu/data}
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
python3 benchmarks/bench_inference.py --model-dir "$MODEL_DIR" --texts 4096 --batch-size 256 --repeats 5 2>&1 \
  | grep -v Loading | tee "$OUT/inference.txt"
python3 benchmarks/bench_inference.py --model-dir "$MODEL_DIR" --texts 4096 --batch-size 256 --repeats 5 \
  --dtype bfloat16 2>&1 | grep -v Loading | tee -a "$OUT/inference.txt"
python3 benchmarks/bench_pretrain_step.py --preset base --batch-size 128 --steps 30 2>&1 | tee "$OUT/pretrain.txt"
python3 benchmarks/bench_finetune.py --model-dir "$MODEL_DIR" --data trec --epochs 3 --layers all --layers 2 2>&1 \
  | grep -v -E "Loading|^\{'loss'" | tee "$OUT/finetune.txt"
