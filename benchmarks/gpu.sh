#!/usr/bin/env bash
# The GPU check, in one prepared run (hand-run on a machine with CUDA; prints and logs, asserts nothing).
#   bash benchmarks/gpu.sh            # logs under $OUT (default ./gpu-out); DEADLINE seconds in all (default 520)
# 1. versions and the card; 2. benchmarks/train_step.py --sd15 (SD-1.5 size, resolution 128, batch 32,
# bf16); 3. benchmarks/edit_throughput.py --sd15 (toy model, then SD-1.5 size 256x128, 25 steps, fp16);
# 4. `dp train` in bf16 and fp16 and `dp edit` in fp16/bf16 on the GPU through the CLI; 5. the test
# suite on the GPU machine (where accelerate, `dp edit` and `dp segment` pick the GPU by themselves),
# with whatever time is left. Python packages missing there can be carried as wheels in .whl/.
set -u
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
DEADLINE=${DEADLINE:-520}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p /tmp/bin && printf '#!/bin/sh\nexec %s -m dp_cli "$@"\n' "$(command -v $PY)" > /tmp/bin/dp && chmod +x /tmp/bin/dp
export PATH=/tmp/bin:$PATH

left() { echo $(( DEADLINE - SECONDS )); }
section() {  # section NAME BUDGET_S CMD...: runs CMD with min(BUDGET, time left), output to the screen and $OUT/NAME.log
  local name=$1 budget=$2; shift 2
  local t=$(left); [ "$budget" -lt "$t" ] && t=$budget
  if [ "$t" -le 5 ]; then echo "== $name: skipped (no time left)"; return; fi
  echo "== $name (up to ${t}s)"; local start=$SECONDS
  timeout "$t" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  tail -n 40 "$OUT/$name.log"; echo "== $name: rc=$rc in $(( SECONDS - start ))s"
}

section env 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c '
import torch, diffusers, transformers, accelerate
print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(0))
print(\"diffusers\", diffusers.__version__, \"transformers\", transformers.__version__, \"accelerate\", accelerate.__version__)'"
section train_sd15 170 $PY benchmarks/train_step.py --sd15 --rounds 3 --steps 2
section edit_sd15 130 $PY benchmarks/edit_throughput.py --sd15 --repeats 2
section cli_precision 150 bash -c '
set -e; W=/tmp/gpu-cli; rm -rf $W
dp toy --out $W/world --persons 24 --height 64 --width 32 --seed 0
python3 -c "from dp_models.tiny import write_tiny_pretrained; write_tiny_pretrained(\"$W/base\", height=64, width=32)"
for p in bf16 fp16; do
  dp train --pretrained-model $W/base/sd --image-encoder $W/base/clip-vision --dataset $W/world --resolution 64x32 \
    --output-dir $W/run-$p --max-train-steps 20 --train-batch-size 8 --mixed-precision $p --checkpointing-steps 10
  tail -n 1 $W/run-$p/train_log.jsonl
done
dp train --pretrained-model $W/base/sd --image-encoder $W/base/clip-vision --dataset $W/world --resolution 64x32 \
  --output-dir $W/run-bf16 --max-train-steps 30 --train-batch-size 8 --mixed-precision bf16 --resume-from-checkpoint latest
for p in fp16 bf16; do
  for k in 1 2; do
    dp edit --dataset $W/world --catalog $W/world/catalog --split test --output-dir $W/edit-$p-$k --persons 2 --variants-per-person 1 \
      --steps 10 --precision $p --device cuda --seed 7 --no-contact-sheet
  done
  cmp -s <(cd $W/edit-$p-1 && find . -name "*.png" | sort | xargs cat) <(cd $W/edit-$p-2 && find . -name "*.png" | sort | xargs cat) \
    && echo "edit $p: same seed, same images" || echo "edit $p: IMAGES DIFFER between two runs with the same seed"
done
time dp demo --out $W/demo'
section pytest 600 $PY -m pytest -q -rf -p no:cacheprovider --durations=15
echo "total ${SECONDS}s"
