#!/usr/bin/env bash
# The GPU check of issue 17, in one prepared run (hand-run on a machine with CUDA; prints and logs, asserts
# nothing); about 8 minutes on one H200:
#   bash benchmarks/gpu.sh            # logs under $OUT (default ./gpu-out); DEADLINE seconds in all (default 480)
# 1. versions and the card; 2. benchmarks/train_step.py --sd15 (SD-1.5 size, resolution 128, batch 32, bf16,
# 6 DataLoader workers): full step / bare UNet step (target <= 1.3), localization overhead (<= 10%),
# samples/s and the 30k-step projection, eager; 3. the same with compile = reduce-overhead (torch.compile +
# CUDA graphs; its warm-up compiles); 4. benchmarks/edit_throughput.py --sd15 (256x128, 25 steps, fp16) at
# batch 8 and 16: full edit / bare loop (target <= 1.15), images/s and the 100k-edit projection, eager then
# compiled; the eager one also runs a whole dp edit on a 12-person toy world at 256x128 (--end-to-end: loading,
# verifying and writing included, against its pipeline calls). Each section gets at most its budget and what
# is left of DEADLINE. Python packages missing there
# can be carried as wheels in .whl/.
set -u
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
DEADLINE=${DEADLINE:-480}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

left() { echo $(( DEADLINE - SECONDS )); }
section() {  # section NAME BUDGET_S CMD...: runs CMD with min(BUDGET, time left), output to the screen and $OUT/NAME.log
  local name=$1 budget=$2; shift 2
  local t=$(left); [ "$budget" -lt "$t" ] && t=$budget
  if [ "$t" -le 5 ]; then echo "== $name: skipped (no time left)"; return; fi
  echo "== $name (up to ${t}s)"; local start=$SECONDS
  timeout "$t" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  tail -n 40 "$OUT/$name.log"; echo "== $name: rc=$rc in $(( SECONDS - start ))s"
}

section env 20 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c '
import torch, diffusers, transformers, accelerate
print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(0))
print(\"diffusers\", diffusers.__version__, \"transformers\", transformers.__version__, \"accelerate\", accelerate.__version__)'"
TRAIN="benchmarks/train_step.py --sd15 --rounds 3 --steps 2 --workers 6"
EDIT="benchmarks/edit_throughput.py --sd15 --sd15-only --batches 8 16 --repeats 2"
section train_sd15 100 $PY $TRAIN
section train_sd15_compiled 170 $PY $TRAIN --compile reduce-overhead
section edit_sd15 80 $PY $EDIT --end-to-end 12
section edit_sd15_compiled 100 $PY $EDIT --compile reduce-overhead
echo "total ${SECONDS}s"
